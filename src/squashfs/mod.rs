/*!
TODO spec
*/

pub mod assemble;
mod bytes;
pub mod compressor;
pub mod directory;
mod error;
pub mod inode;
pub mod metadata;
pub mod reader;
pub mod source;
pub mod superblock;
pub mod table;
pub mod writer;

pub use assemble::{assemble, Stats};
pub use error::{Error, ErrorKind, Result};
pub use reader::{Entry, EntryKind, FileReader, Image};
