/*!
A minimal tar writer: directories, regular files and symlinks, all owned by
root with time 0, in the GNU format that `mksquashfs -tar` reads (4.5 and
later).

Names and link targets longer than the 100 bytes a header holds go in a GNU
long-name (`L`) or long-link (`K`) record before the entry. (squashfs-tools
4.5 mangled PAX link targets, so PAX is avoided.) Sizes up to 8 GiB use
octal; larger ones GNU's base-256 form.
*/

use std::io::{self, Read, Write};

const BLOCK: usize = 512;
const NAME_LEN: usize = 100;
/// How much of a file is read at a time.
const COPY_CHUNK: usize = 256 << 10;

pub struct TarWriter<W: Write> {
    out: W,
    /// Reused for every file's data.
    chunk: Vec<u8>,
}

impl<W: Write> TarWriter<W> {
    pub fn new(out: W) -> TarWriter<W> {
        TarWriter { out, chunk: Vec::new() }
    }

    /// A directory; `path` has no trailing slash.
    pub fn dir(&mut self, path: &[u8], mode: u32) -> io::Result<()> {
        let mut name = path.to_vec();
        name.push(b'/');
        self.header(&name, b'5', mode, 0, b"")
    }

    pub fn symlink(&mut self, path: &[u8], target: &[u8]) -> io::Result<()> {
        self.header(path, b'2', 0o777, 0, target)
    }

    /// A regular file of exactly `size` bytes read from `data`.
    ///
    /// The data goes through `out`'s own buffering: `io::copy` would flush
    /// `out` before every file (to try a kernel copy), which costs a write
    /// and a wake-up of the reader per file, most of the builder's time on
    /// a closure of small files.
    pub fn file(
        &mut self,
        path: &[u8],
        mode: u32,
        size: u64,
        data: &mut impl Read,
    ) -> io::Result<()> {
        self.header(path, b'0', mode, size, b"")?;
        if self.chunk.is_empty() {
            self.chunk = vec![0; COPY_CHUNK];
        }
        let mut copied = 0;
        while copied < size {
            let want = (size - copied).min(COPY_CHUNK as u64) as usize;
            let n = match data.read(&mut self.chunk[..want]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("file ended after {copied} of {size} bytes"),
                    ))
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.out.write_all(&self.chunk[..n])?;
            copied += n as u64;
        }
        self.pad(size)
    }

    /// Writes the end-of-archive marker and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0; 2 * BLOCK])?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn header(
        &mut self,
        name: &[u8],
        kind: u8,
        mode: u32,
        size: u64,
        link: &[u8],
    ) -> io::Result<()> {
        if link.len() > NAME_LEN {
            self.long_record(b'K', link)?;
        }
        if name.len() > NAME_LEN {
            self.long_record(b'L', name)?;
        }
        let mut h = [0u8; BLOCK];
        put(&mut h[0..100], &name[..name.len().min(NAME_LEN)]);
        octal(&mut h[100..108], mode.into());
        octal(&mut h[108..116], 0);
        octal(&mut h[116..124], 0);
        size_field(&mut h[124..136], size);
        octal(&mut h[136..148], 0);
        h[156] = kind;
        put(&mut h[157..257], &link[..link.len().min(NAME_LEN)]);
        // GNU magic and version: "ustar  \0".
        put(&mut h[257..265], b"ustar  \0");
        // No user or group name: mksquashfs looks a name up (getpwnam,
        // getgrnam: open and read /etc/passwd and /etc/group) for every
        // entry that has one, and uses the numeric ids, 0, otherwise.
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        octal(&mut h[148..155], sum.into());
        h[155] = b' ';
        self.out.write_all(&h)
    }

    fn long_record(&mut self, kind: u8, value: &[u8]) -> io::Result<()> {
        let mut data = value.to_vec();
        data.push(0);
        self.header(b"././@LongLink", kind, 0o644, data.len() as u64, b"")?;
        self.out.write_all(&data)?;
        self.pad(data.len() as u64)
    }

    fn pad(&mut self, size: u64) -> io::Result<()> {
        let rest = (size % BLOCK as u64) as usize;
        if rest != 0 {
            self.out.write_all(&[0; BLOCK][..BLOCK - rest])?;
        }
        Ok(())
    }
}

fn put(field: &mut [u8], value: &[u8]) {
    field[..value.len()].copy_from_slice(value);
}

/// Octal digits, zero-padded, NUL-terminated, filling the field. (Written
/// by hand: `format!` cost a few percent of the builder's time on a
/// closure of small files.)
fn octal(field: &mut [u8], value: u64) {
    let (digits, nul) = field.split_at_mut(field.len() - 1);
    debug_assert!(value >> (3 * digits.len()) == 0, "{value:o} overflows");
    let mut rest = value;
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (rest & 7) as u8;
        rest >>= 3;
    }
    nul[0] = 0;
}

fn size_field(field: &mut [u8], size: u64) {
    if size < 1 << 33 {
        octal(field, size);
    } else {
        field.fill(0);
        field[0] = 0x80;
        field[4..].copy_from_slice(&size.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout() {
        let mut tar = TarWriter::new(Vec::new());
        tar.file(b"etc/os-release", 0o644, 3, &mut &b"ID\n"[..]).unwrap();
        let bytes = tar.finish().unwrap();
        assert_eq!(bytes.len(), 4 * BLOCK);
        assert_eq!(&bytes[..14], b"etc/os-release");
        assert_eq!(&bytes[100..108], b"0000644\0");
        assert_eq!(&bytes[124..136], b"00000000003\0");
        assert_eq!(bytes[156], b'0');
        assert_eq!(&bytes[BLOCK..BLOCK + 3], b"ID\n");
        let sum: u32 = bytes[..BLOCK]
            .iter()
            .enumerate()
            .map(|(i, &b)| if (148..156).contains(&i) { 32 } else { b.into() })
            .sum();
        let field = std::str::from_utf8(&bytes[148..154]).unwrap();
        assert_eq!(u32::from_str_radix(field, 8).unwrap(), sum);
    }

    #[test]
    fn long_names_use_gnu_records() {
        let mut tar = TarWriter::new(Vec::new());
        let name = vec![b'n'; 150];
        let target = vec![b't'; 120];
        tar.symlink(&name, &target).unwrap();
        let bytes = tar.finish().unwrap();
        assert_eq!(bytes[156], b'K');
        assert_eq!(&bytes[BLOCK..BLOCK + 120], &target[..]);
        assert_eq!(bytes[2 * BLOCK + 156], b'L');
        assert_eq!(&bytes[3 * BLOCK..3 * BLOCK + 150], &name[..]);
        assert_eq!(bytes[4 * BLOCK + 156], b'2');
    }

    #[test]
    fn short_file_is_an_error() {
        let mut tar = TarWriter::new(Vec::new());
        let err = tar.file(b"f", 0o444, 10, &mut &b"abc"[..]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn huge_sizes_use_base_256() {
        let mut field = [0u8; 12];
        size_field(&mut field, 1 << 34);
        assert_eq!(field[0], 0x80);
        assert_eq!(&field[4..], &(1u64 << 34).to_be_bytes());
    }
}
