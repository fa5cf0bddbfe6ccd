/*!
The tables of fixed-size records: fragments (16 bytes each), ids (4) and
the export table (8). Each is metadata blocks followed by an index of
8-byte positions, one per block; the superblock points at the index, so a
reader finds any record with two reads and a writer appends blocks before
it knows where the index goes.
*/

use super::bytes::Cursor;
use super::compressor::Codec;
use super::error::{Error, Result};
use super::inode::BlockSize;
use super::metadata::{self, BLOCK_SIZE};
use super::source::Source;

/// A fragment block: tails of files and small files, packed together and
/// compressed as one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fragment {
    pub start: u64,
    pub size: BlockSize,
}

/// The positions of the metadata blocks of a table of `count` records of
/// `record` bytes whose index is at `start`.
pub fn read_index(
    source: &Source,
    start: u64,
    count: u64,
    record: u64,
) -> Result<Vec<u64>> {
    let blocks = (count * record).div_ceil(BLOCK_SIZE as u64);
    // Each block takes at least 3 bytes before the index.
    if blocks * 3 > start {
        return Err(Error::corrupt(format!(
            "a table of {count} records of {record} bytes cannot fit before \
             its index"
        ))
        .at(start));
    }
    let bytes = source.read_vec(start, blocks as usize * 8)?;
    let mut c = Cursor::new(&bytes);
    (0..blocks).map(|_| c.u64()).collect()
}

/// Reads the `count` records of `record` bytes of the table whose index is
/// at `start`.
pub fn read(
    source: &Source,
    codec: &Codec,
    start: u64,
    count: u64,
    record: u64,
) -> Result<Vec<u8>> {
    let index = read_index(source, start, count, record)?;
    let want = (count * record) as usize;
    let mut bytes = Vec::with_capacity(want);
    for pos in index {
        if pos >= start {
            return Err(Error::corrupt(format!(
                "a table's block at {pos}, after its index at {start}"
            )));
        }
        let (data, _) = metadata::read_block(source, codec, pos)?;
        let expected = (want - bytes.len()).min(BLOCK_SIZE);
        if data.len() != expected {
            return Err(Error::corrupt(format!(
                "a table block of {} bytes where {expected} were expected",
                data.len()
            ))
            .at(pos));
        }
        bytes.extend(data);
    }
    Ok(bytes)
}

pub fn read_fragments(
    source: &Source,
    codec: &Codec,
    start: u64,
    count: u32,
    block_size: u32,
) -> Result<Vec<Fragment>> {
    let bytes = read(source, codec, start, count.into(), 16)?;
    let mut c = Cursor::new(&bytes);
    (0..count)
        .map(|i| {
            let start = c.u64()?;
            let size = BlockSize(c.u32()?);
            c.u32()?;
            if size.is_sparse() || size.stored_len() > block_size {
                return Err(Error::corrupt(format!(
                    "fragment {i} has a size word of {:#x}",
                    size.0
                )));
            }
            Ok(Fragment { start, size })
        })
        .collect()
}

pub fn read_ids(
    source: &Source,
    codec: &Codec,
    start: u64,
    count: u16,
) -> Result<Vec<u32>> {
    let bytes = read(source, codec, start, count.into(), 4)?;
    let mut c = Cursor::new(&bytes);
    (0..count).map(|_| c.u32()).collect()
}

/// Appends a table holding `records` to `out`, which will be written at
/// `pos` in the image; returns where its index starts.
pub fn write(
    out: &mut Vec<u8>,
    pos: u64,
    codec: &Codec,
    records: &[u8],
) -> Result<u64> {
    let mut index = Vec::new();
    for chunk in records.chunks(BLOCK_SIZE) {
        index.extend((pos + out.len() as u64).to_le_bytes());
        metadata::push_block(out, codec, chunk)?;
    }
    let start = pos + out.len() as u64;
    out.extend(index);
    Ok(start)
}

pub fn fragment_records(fragments: &[Fragment]) -> Vec<u8> {
    let mut out = Vec::with_capacity(fragments.len() * 16);
    for f in fragments {
        out.extend(f.start.to_le_bytes());
        out.extend(f.size.0.to_le_bytes());
        out.extend(0u32.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::compressor::Compressor;
    use super::*;

    #[test]
    fn fragments_round_trip_over_several_blocks() {
        let codec = Codec::new(Compressor::Zstd, None, 4096).unwrap();
        let fragments: Vec<_> = (0..1000u64)
            .map(|i| Fragment {
                start: 96 + i * 4096,
                size: BlockSize(i as u32 % 4096 + 1),
            })
            .collect();
        let mut out = vec![0; 100];
        let start =
            write(&mut out, 0, &codec, &fragment_records(&fragments)).unwrap();
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &out).unwrap();
        let source = Source::open(file.path(), None).unwrap();
        let read = read_fragments(&source, &codec, start, 1000, 4096).unwrap();
        assert_eq!(read, fragments);
        assert!(read_fragments(&source, &codec, start, 1025, 4096).is_err());
        assert!(
            read_fragments(&source, &codec, start, u32::MAX, 4096).is_err()
        );
        assert!(read_ids(&source, &codec, start, 3).is_err());
    }
}
