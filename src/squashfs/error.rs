/*!
The one error type of the module: a kind to match on, and the image file,
the byte offset and the words that say what is wrong, for people.

Parsing code knows the offset but not the file; the reader and the
assembly add the file as the error passes them (`in_file`), so every
message that reaches a user names the image it is about.
*/

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The operating system failed to read or write.
    Io,
    /// The bytes are not a squashfs 4.0 image, or a damaged one.
    Corrupt,
    /// A record runs past the bytes it was parsed from: corrupt, unless
    /// more bytes were to be had (the reader then reads more).
    Short,
    /// A file larger than the caller reads whole.
    TooBig,
    /// A valid image that uses something this code does not handle.
    Unsupported,
    /// No entry has this path.
    NotFound,
    /// The entry exists but is not of the kind asked for (a directory
    /// opened as a file).
    WrongKind,
    /// Layers that cannot go into one image: another compressor, block
    /// size or set of flags.
    Mismatch,
    /// Two layers hold different things at the same path.
    Clash,
    /// The tree given to the writer breaks a limit of the format.
    Invalid,
}

#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    file: Option<PathBuf>,
    offset: Option<u64>,
    source: Option<io::Error>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            file: None,
            offset: None,
            source: None,
        }
    }

    pub fn corrupt(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Corrupt, message)
    }

    pub fn io(message: impl Into<String>, source: io::Error) -> Error {
        Error { source: Some(source), ..Error::new(ErrorKind::Io, message) }
    }

    /// The byte offset in the image the error is about, unless one was
    /// already given (the innermost is the most precise).
    pub fn at(mut self, offset: u64) -> Error {
        self.offset.get_or_insert(offset);
        self
    }

    /// The file the error is about, unless one was already given.
    pub fn in_file(mut self, file: &Path) -> Error {
        if self.file.is_none() {
            self.file = Some(file.to_path_buf());
        }
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    pub fn offset(&self) -> Option<u64> {
        self.offset
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}: ", file.display())?;
        }
        f.write_str(&self.message)?;
        if let Some(offset) = self.offset {
            write!(f, " (at byte {offset})")?;
        }
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

/// The cause is part of the message (`Display`), so that a plain
/// `{err}` says all; it is not given again as `source()`, which `{:#}` of
/// anyhow would print a second time.
impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_file_offset_and_cause() {
        let err = Error::io("reading", io::ErrorKind::UnexpectedEof.into())
            .at(96)
            .at(7)
            .in_file(Path::new("a.raw"))
            .in_file(Path::new("b.raw"));
        assert_eq!(err.kind(), ErrorKind::Io);
        assert_eq!(
            err.to_string(),
            "a.raw: reading (at byte 96): unexpected end of file"
        );
    }
}
