/*!
Nix's own formats, with no knowledge of images: store paths, Nix's
base-32, the NAR archive and its hash, and what Nix records of a store
path. The crate `nix-compat` would hold these, but on crates.io it is an
empty placeholder.
*/

pub mod nar;
pub mod nixbase32;
pub mod path_info;
pub mod store_path;
