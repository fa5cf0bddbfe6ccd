/*!
The bytes of an image: a whole file, or a range of one (an image inside a
partition of a disk image). Reads are positioned (`pread`), so one open
file serves any number of threads without a lock or a shared cursor.
*/

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::error::{Error, Result};

#[derive(Debug)]
pub struct Source {
    file: File,
    base: u64,
    len: u64,
}

impl Source {
    /// The whole file, or `len` bytes from `offset` in it.
    pub fn open(path: &Path, range: Option<(u64, u64)>) -> Result<Source> {
        let file =
            File::open(path).map_err(|e| Error::io("opening the image", e))?;
        let size = file
            .metadata()
            .map_err(|e| Error::io("reading the image's size", e))?
            .len();
        let (base, len) = range.unwrap_or((0, size));
        if base.checked_add(len).is_none_or(|end| end > size) {
            return Err(Error::corrupt(format!(
                "the range of {len} bytes at {base} is not inside the \
                 file's {size} bytes"
            )));
        }
        Ok(Source { file, base, len })
    }

    pub fn size(&self) -> u64 {
        self.len
    }

    /// Fills `buf` from `pos`, which is relative to the image's start.
    pub fn read_at(&self, pos: u64, buf: &mut [u8]) -> Result<()> {
        let n = buf.len() as u64;
        if pos.checked_add(n).is_none_or(|end| end > self.len) {
            return Err(Error::corrupt(format!(
                "{n} bytes at {pos} reach beyond the image's {} bytes",
                self.len
            ))
            .at(pos));
        }
        self.file
            .read_exact_at(buf, self.base + pos)
            .map_err(|e| Error::io(format!("reading {n} bytes"), e).at(pos))
    }

    pub fn read_vec(&self, pos: u64, len: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0; len];
        self.read_at(pos, &mut buf)?;
        Ok(buf)
    }

    /// The open file and where the image starts in it, for copying a
    /// range without reading it through this process.
    pub fn file(&self) -> (&File, u64) {
        (&self.file, self.base)
    }
}
