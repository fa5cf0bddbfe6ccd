/*!
Metadata blocks: the framing of the inode, directory, fragment, id and
lookup tables, and references into them.

A metadata block is a 2-byte header and at most 8 KiB of data; the
header's low 15 bits are the stored size and bit 15 says the data is
stored as it is. A table is its blocks back to back, so a reference to a
byte in it is the stored offset of a block from the table's start and an
offset into that block's decoded bytes; a record may run on into the next
block, which is why a table is decoded as one run of bytes here.
*/

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

/// Reads the block at `pos`; returns its decoded bytes and where the next
/// block starts.
pub fn read_block(
    source: &Source,
    codec: &Codec,
    pos: u64,
) -> Result<(Vec<u8>, u64)> {
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
    let stored = source.read_vec(pos + 2, size)?;
    let data = if header & STORED != 0 {
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

/// A whole table decoded, with the stored offset of each block so that
/// references can be turned into positions.
#[derive(Debug, Default)]
pub struct Table {
    bytes: Vec<u8>,
    /// (stored offset from the table's start, start in `bytes`), sorted.
    blocks: Vec<(u32, usize)>,
}

impl Table {
    /// Decodes the blocks that fill `start..end` of the image.
    pub fn read(
        source: &Source,
        codec: &Codec,
        start: u64,
        end: u64,
    ) -> Result<Table> {
        let mut table = Table::default();
        let mut pos = start;
        while pos < end {
            let (data, next) = read_block(source, codec, pos)?;
            if next > end {
                return Err(Error::corrupt(format!(
                    "a metadata block runs past the table's end at {end}"
                ))
                .at(pos));
            }
            let block = u32::try_from(pos - start)
                .map_err(|_| Error::corrupt("a table over 4 GiB").at(pos))?;
            table.blocks.push((block, table.bytes.len()));
            table.bytes.extend(data);
            pos = next;
        }
        Ok(table)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The position in `bytes()` that `r` names.
    pub fn position(&self, r: MetaRef) -> Result<usize> {
        let found = self.blocks.binary_search_by_key(&r.block, |b| b.0);
        let Ok(i) = found else {
            return Err(Error::corrupt(format!(
                "a reference to block {} of a table, where no block starts",
                r.block
            )));
        };
        let start = self.blocks[i].1;
        let end = self.blocks.get(i + 1).map_or(self.bytes.len(), |b| b.1);
        if usize::from(r.offset) >= end - start {
            return Err(Error::corrupt(format!(
                "a reference to offset {} of a {}-byte metadata block",
                r.offset,
                end - start
            )));
        }
        Ok(start + usize::from(r.offset))
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
        let source = Source::open(&path, None).unwrap();
        let read =
            Table::read(&source, &codec, 0, table.len() as u64).unwrap();
        assert_eq!(read.bytes(), &[7; 8201][..]);
        assert_eq!(read.position(second).unwrap(), 8200);
        let past = MetaRef { block: second.block, offset: 9 };
        assert!(read.position(past).is_err());
        let nowhere = MetaRef { block: 1, offset: 0 };
        assert!(read.position(nowhere).is_err());
    }
}
