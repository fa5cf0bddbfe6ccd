/*!
Metadata blocks: the framing of the inode, directory, fragment, id and
lookup tables, and references into them.

A metadata block is a 2-byte header and at most 8 KiB of data; the
header's low 15 bits are the stored size and bit 15 says the data is
stored as it is. A table is its blocks back to back, so a reference to a
byte in it is the stored offset of a block from the table's start and an
offset into that block's decoded bytes; a record may run on into the next
block, so a table is read as one run of decoded bytes (`Table`), whose
blocks are decoded as they are needed.
*/

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::compressor::Codec;
use super::error::{Error, Result};
use super::source::Source;

pub const BLOCK_SIZE: usize = 8192;
pub const STORED: u16 = 0x8000;

/// Where a record starts: `block` bytes from the table's start to its
/// block's header, `offset` into the block's decoded bytes. Packed as
/// `block << 16 | offset` in inode references.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MetaRef {
    pub block: u32,
    pub offset: u16,
}

impl MetaRef {
    pub fn from_raw(raw: u64) -> MetaRef {
        MetaRef { block: (raw >> 16) as u32, offset: raw as u16 }
    }

    pub fn raw(self) -> u64 {
        (self.block as u64) << 16 | self.offset as u64
    }
}

/// A block's header at `pos`: whether it is stored as it is, and its
/// stored size, 1 to 8 KiB (the kernel refuses more or none,
/// `block.c`, `squashfs_read_data`).
fn header(source: &Source, pos: u64) -> Result<(bool, usize)> {
    let mut header = [0; 2];
    source.read_at(pos, &mut header)?;
    let header = u16::from_le_bytes(header);
    let size = (header & !STORED) as usize;
    if size == 0 || size > BLOCK_SIZE {
        return Err(Error::corrupt(format!(
            "a metadata block of {size} bytes, not 1 to {BLOCK_SIZE}"
        ))
        .at(pos));
    }
    Ok((header & STORED != 0, size))
}

/// Reads the block at `pos`; returns its decoded bytes and where the next
/// block starts.
pub fn read_block(
    source: &Source,
    codec: &Codec,
    pos: u64,
) -> Result<(Vec<u8>, u64)> {
    let (stored_as_is, size) = header(source, pos)?;
    let stored = source.read_vec(pos + 2, size)?;
    let data = if stored_as_is {
        stored
    } else {
        let mut out = Vec::with_capacity(BLOCK_SIZE);
        codec
            .decompress(&stored, &mut out, BLOCK_SIZE)
            .map_err(|e| e.at(pos))?;
        out
    };
    Ok((data, pos + 2 + size as u64))
}

/// Decoded blocks kept per table: enough for a walk in tree order, where
/// neighbours share blocks, and for a few threads doing so at once.
const CACHED_BLOCKS: usize = 64;

/// A table whose blocks are decoded when a record in them is read, as the
/// kernel reads them, so that memory does not depend on how much the
/// image's tables decode to.
///
/// Opening it walks the block headers only, and holds the table to the
/// form mksquashfs writes (`mksquashfs.c`: every block but the last is
/// filled to 8 KiB before it is compressed): a position in the decoded
/// table is then `8192 * block + offset`, which is also how the kernel
/// turns a directory index into a place in a listing (`namei.c`,
/// `get_dir_index_using_name`). A block that decodes to another size is
/// an error when it is read.
#[derive(Debug)]
pub struct Table {
    source: Arc<Source>,
    codec: Codec,
    /// Where its first block's header is in the image.
    start: u64,
    /// The stored offset of each block's header from `start`.
    blocks: Vec<u32>,
    /// The decoded size of the whole table.
    len: usize,
    cache: Mutex<VecDeque<(usize, Arc<Vec<u8>>)>>,
}

impl Table {
    /// Finds the blocks that fill `start..end` of the image, and decodes
    /// the last to learn the table's size.
    pub fn read(
        source: Arc<Source>,
        codec: &Codec,
        start: u64,
        end: u64,
    ) -> Result<Table> {
        let mut blocks = Vec::new();
        let mut pos = start;
        while pos < end {
            let (_, stored) = header(&source, pos)?;
            let next = pos + 2 + stored as u64;
            if next > end {
                return Err(Error::corrupt(format!(
                    "a metadata block runs past the table's end at {end}"
                ))
                .at(pos));
            }
            let block = u32::try_from(pos - start)
                .map_err(|_| Error::corrupt("a table over 4 GiB").at(pos))?;
            blocks.push(block);
            pos = next;
        }
        let mut table = Table {
            source,
            codec: codec.clone(),
            start,
            blocks,
            len: 0,
            cache: Mutex::new(VecDeque::new()),
        };
        if let Some(last) = table.blocks.len().checked_sub(1) {
            table.len = last * BLOCK_SIZE + table.block(last)?.len();
        }
        Ok(table)
    }

    /// The decoded size.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The position in the decoded table that `r` names.
    pub fn position(&self, r: MetaRef) -> Result<usize> {
        let Ok(i) = self.blocks.binary_search(&r.block) else {
            return Err(Error::corrupt(format!(
                "a reference to block {} of a table, where no block starts",
                r.block
            )));
        };
        let at = i * BLOCK_SIZE + usize::from(r.offset);
        if usize::from(r.offset) >= BLOCK_SIZE || at >= self.len {
            return Err(Error::corrupt(format!(
                "a reference to offset {} of block {}, beyond the table's \
                 {} bytes",
                r.offset, r.block, self.len
            )));
        }
        Ok(at)
    }

    /// The reference to the decoded position `at` (`position`'s
    /// inverse), if the table reaches that far.
    pub fn reference(&self, at: usize) -> Option<MetaRef> {
        let block = *self.blocks.get(at / BLOCK_SIZE)?;
        Some(MetaRef { block, offset: (at % BLOCK_SIZE) as u16 })
    }

    /// The `len` decoded bytes at `at`.
    pub fn read_at(&self, at: usize, len: usize) -> Result<Vec<u8>> {
        if at.checked_add(len).is_none_or(|end| end > self.len) {
            return Err(Error::corrupt(format!(
                "{len} bytes at {at} of a table of {} bytes",
                self.len
            )));
        }
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            let pos = at + out.len();
            let block = self.block(pos / BLOCK_SIZE)?;
            let from = pos % BLOCK_SIZE;
            let n = (block.len() - from).min(len - out.len());
            out.extend_from_slice(&block[from..from + n]);
        }
        Ok(out)
    }

    /// Up to `len` decoded bytes at `at`: fewer where the table ends.
    pub fn read_up_to(&self, at: usize, len: usize) -> Result<Vec<u8>> {
        self.read_at(at, len.min(self.len.saturating_sub(at)))
    }

    /// The decoded block `i`.
    fn block(&self, i: usize) -> Result<Arc<Vec<u8>>> {
        let cache = || self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, block)) = cache().iter().find(|(n, _)| *n == i) {
            return Ok(block.clone());
        }
        let pos = self.start + u64::from(self.blocks[i]);
        let (data, _) = read_block(&self.source, &self.codec, pos)?;
        let last = i + 1 == self.blocks.len();
        if !last && data.len() != BLOCK_SIZE {
            return Err(Error::corrupt(format!(
                "a metadata block of {} bytes before the table's last; \
                 mksquashfs fills every block but the last to {BLOCK_SIZE}",
                data.len()
            ))
            .at(pos));
        }
        let block = Arc::new(data);
        let mut cache = cache();
        if cache.len() == CACHED_BLOCKS {
            cache.pop_front();
        }
        cache.push_back((i, block.clone()));
        Ok(block)
    }
}

/// Builds a table: bytes go in, blocks of 8 KiB come out compressed (or
/// stored when that is not smaller).
pub struct Writer<'a> {
    codec: &'a Codec,
    done: Vec<u8>,
    pending: Vec<u8>,
}

impl<'a> Writer<'a> {
    pub fn new(codec: &'a Codec) -> Writer<'a> {
        Writer { codec, done: Vec::new(), pending: Vec::new() }
    }

    /// Where the next byte written will be.
    pub fn position(&self) -> Result<MetaRef> {
        let block = u32::try_from(self.done.len()).map_err(|_| {
            Error::new(super::ErrorKind::Invalid, "a table over 4 GiB")
        })?;
        Ok(MetaRef { block, offset: self.pending.len() as u16 })
    }

    pub fn write(&mut self, mut bytes: &[u8]) -> Result<()> {
        while !bytes.is_empty() {
            let n = bytes.len().min(BLOCK_SIZE - self.pending.len());
            self.pending.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.pending.len() == BLOCK_SIZE {
                self.flush()?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        let block = std::mem::take(&mut self.pending);
        push_block(&mut self.done, self.codec, &block)
    }

    /// The table's stored bytes; a last, partial block is written too.
    pub fn finish(mut self) -> Result<Vec<u8>> {
        if !self.pending.is_empty() {
            self.flush()?;
        }
        Ok(self.done)
    }
}

/// Appends one metadata block holding `data` (at most 8 KiB) to `out`.
pub fn push_block(
    out: &mut Vec<u8>,
    codec: &Codec,
    data: &[u8],
) -> Result<()> {
    debug_assert!(!data.is_empty() && data.len() <= BLOCK_SIZE);
    match codec.compress(data)? {
        Some(packed) => {
            out.extend((packed.len() as u16).to_le_bytes());
            out.extend(packed);
        }
        None => {
            out.extend((data.len() as u16 | STORED).to_le_bytes());
            out.extend(data);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::compressor::Compressor;
    use super::*;

    #[test]
    fn refs_pack_block_and_offset() {
        let r = MetaRef { block: 0x1234_5678, offset: 0x9abc };
        assert_eq!(r.raw(), 0x1234_5678_9abc);
        assert_eq!(MetaRef::from_raw(r.raw()), r);
    }

    #[test]
    fn writer_splits_into_8k_blocks_and_positions_follow() {
        let codec = Codec::new(Compressor::Gzip, None, 4096).unwrap();
        let mut w = Writer::new(&codec);
        w.write(&[7; 8000]).unwrap();
        assert_eq!(w.position().unwrap(), MetaRef { block: 0, offset: 8000 });
        w.write(&[7; 200]).unwrap();
        let second = w.position().unwrap();
        assert_eq!(second.offset, 8);
        assert!(second.block > 2 && second.block < 200);
        w.write(&[7]).unwrap();
        let table = w.finish().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        std::fs::write(&path, &table).unwrap();
        let source = Arc::new(Source::open(&path, None).unwrap());
        let read = Table::read(source.clone(), &codec, 0, table.len() as u64)
            .unwrap();
        assert_eq!(read.len(), 8201);
        assert_eq!(read.read_at(0, 8201).unwrap(), [7; 8201]);
        assert_eq!(read.position(second).unwrap(), 8200);
        assert_eq!(read.reference(8200), Some(second));
        let past = MetaRef { block: second.block, offset: 9 };
        assert!(read.position(past).is_err());
        assert!(read.read_at(8200, 2).is_err());
        let nowhere = MetaRef { block: 1, offset: 0 };
        assert!(read.position(nowhere).is_err());
    }

    /// A block short of 8 KiB before the last: its records would lie
    /// elsewhere for the kernel, which counts 8 KiB a block.
    #[test]
    fn a_short_block_before_the_last_is_refused() {
        let codec = Codec::new(Compressor::Gzip, None, 4096).unwrap();
        let mut stored = Vec::new();
        push_block(&mut stored, &codec, &[1; 100]).unwrap();
        push_block(&mut stored, &codec, &[2; 100]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        std::fs::write(&path, &stored).unwrap();
        let source = Arc::new(Source::open(&path, None).unwrap());
        let table =
            Table::read(source, &codec, 0, stored.len() as u64).unwrap();
        let err = table.read_at(0, 1).unwrap_err();
        assert!(err.to_string().contains("before the table's last"), "{err}");
    }
}
