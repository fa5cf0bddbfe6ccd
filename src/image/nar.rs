/*!
The NAR of a directory, file or symlink inside an image, written from the
image as it is read: a directory's entries come sorted by name, the NAR's
own order. What Nix records of a store path (its NAR hash and size) can
so be checked against what the image holds, without extracting it.

Decompression is what costs; `nar_digests` hashes several store paths at
once, one per core. Memory stays bounded: the reader's few cached blocks
and the block each file is read through. So does time: a digest stops
as soon as the NAR grows past the size Nix recorded (an image can claim
a file of a terabyte in a few bytes of sparse blocks).
*/

use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::nix::nar::writer::{self, Node};
use crate::nix::nar::{NarDigest, NarHasher};
use crate::squashfs::{self, Entry, EntryKind, Image};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Read(#[from] squashfs::Error),
    #[error("{} is {what}, which a NAR cannot hold", path.display())]
    NotInNar { path: PathBuf, what: &'static str },
    #[error("adding {} to the NAR: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("its NAR is longer than the {limit} bytes recorded")]
    TooLong { limit: u64 },
}

/// Writes the entry at `path` and everything below it as `node`.
pub fn write_nar(
    image: &Image,
    path: &Path,
    node: Node<impl Write>,
) -> Result<(), Error> {
    write_entry(image, &image.entry(path)?, node)
}

/// The NAR digest of the entry at `path`, as Nix would compute it for a
/// store path holding the same tree, if the NAR takes at most `limit`
/// bytes.
pub fn nar_digest(
    image: &Image,
    path: &Path,
    limit: u64,
) -> Result<NarDigest, Error> {
    let mut hasher = Bounded { hasher: NarHasher::new(), left: limit };
    let root = writer::open(&mut hasher).expect("hashing cannot fail");
    match write_nar(image, path, root) {
        Err(Error::Write { source, .. })
            if source.kind() == io::ErrorKind::FileTooLarge =>
        {
            Err(Error::TooLong { limit })
        }
        result => result.map(|()| hasher.hasher.finish()),
    }
}

/// `nar_digest` for each of `paths` with its limit, computed in
/// parallel; the results come in the order of `paths`.
pub fn nar_digests<P>(
    image: &Image,
    paths: &[(P, u64)],
) -> Vec<Result<NarDigest, Error>>
where
    P: AsRef<Path> + Sync,
{
    paths
        .par_iter()
        .map(|(p, limit)| nar_digest(image, p.as_ref(), *limit))
        .collect()
}

/// A hasher that refuses bytes past its limit.
struct Bounded {
    hasher: NarHasher,
    left: u64,
}

impl Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len() as u64;
        if n > self.left {
            return Err(io::ErrorKind::FileTooLarge.into());
        }
        self.left -= n;
        self.hasher.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn write_entry(
    image: &Image,
    entry: &Entry,
    node: Node<impl Write>,
) -> Result<(), Error> {
    let write_error =
        |source| Error::Write { path: entry.path.clone(), source };
    match entry.kind() {
        EntryKind::File { size } => {
            // Nix looks only at the owner's execute bit.
            let executable = entry.mode() & 0o100 != 0;
            let contents = image.open_entry(entry)?;
            node.file(executable, size, contents).map_err(write_error)
        }
        EntryKind::Symlink { target } => {
            node.symlink(target.as_os_str().as_bytes()).map_err(write_error)
        }
        EntryKind::Directory => {
            let mut dir = node.directory().map_err(write_error)?;
            for child in image.children(entry)? {
                let child = child?;
                let name = child.path.file_name().expect("a child has a name");
                let node = dir.entry(name.as_bytes()).map_err(write_error)?;
                write_entry(image, &child, node)?;
            }
            dir.close().map_err(write_error)
        }
        other => Err(Error::NotInNar {
            path: entry.path.clone(),
            what: match other {
                EntryKind::CharDevice { .. } => "a character device",
                EntryKind::BlockDevice { .. } => "a block device",
                EntryKind::Fifo => "a named pipe",
                _ => "a socket",
            },
        }),
    }
}
