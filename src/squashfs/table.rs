/*!
The tables of fixed-size records: fragments (16 bytes each), ids (4) and
the export table (8). Each is metadata blocks followed by an index of
8-byte positions, one per block; the superblock points at the index, so a
reader finds any record with two reads and a writer appends blocks before
it knows where the index goes.
*/

use std::sync::{Arc, Mutex};

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

/// Where the kernel lets a table's index end (`fs/squashfs/super.c`,
/// `squashfs_fill_super`): the tables are checked from the end of the
/// image backwards, each index ending where the previous table's blocks
/// begin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexEnd {
    /// The id, export and xattr id tables: the index's size must be
    /// exactly the room up to the next table (`id.c`, `export.c`,
    /// `xattr_id.c`).
    Exactly(u64),
    /// The fragment table: the index must fit before it (`fragment.c`).
    Before(u64),
}

/// The index of a table of `count` records of `record` bytes: the
/// positions of its metadata blocks, one per 8 KiB of records, read at
/// `start` and checked as the kernel checks it. For the tables with an
/// exact end, each block must start after the one before, at most 8 KiB
/// and its header further on, and the last must end right before the
/// index; for the fragment table, the first block must be before it.
pub fn read_index(
    source: &Source,
    start: u64,
    count: u64,
    record: u64,
    end: IndexEnd,
) -> Result<Vec<u64>> {
    let blocks = (count * record).div_ceil(BLOCK_SIZE as u64);
    let len = blocks * 8;
    let fits = match end {
        IndexEnd::Exactly(next) => next.checked_sub(start) == Some(len),
        IndexEnd::Before(next) => start.checked_add(len) <= Some(next),
    };
    // Each block takes at least 3 bytes before the index.
    if count == 0 || !fits || blocks * 3 > start {
        return Err(Error::corrupt(format!(
            "the index of a table of {count} records of {record} bytes at \
             {start}: {len} bytes, which do not fit {}",
            match end {
                IndexEnd::Exactly(next) => format!("exactly before {next}"),
                IndexEnd::Before(next) => format!("before {next}"),
            }
        ))
        .at(start));
    }
    let bytes = source.read_vec(start, len as usize)?;
    let mut c = Cursor::new(&bytes);
    let index = (0..blocks).map(|_| c.u64()).collect::<Result<Vec<_>>>()?;
    let bad = |problem: String| Err(Error::corrupt(problem).at(start));
    if index[0] >= start {
        return bad(format!(
            "a table's first block at {}, not before its index at {start}",
            index[0]
        ));
    }
    if let IndexEnd::Exactly(_) = end {
        let most = (BLOCK_SIZE + 2) as u64;
        let mut ends = index.iter().skip(1).chain([&start]);
        for (at, next) in index.iter().zip(&mut ends) {
            if at >= next || next - at > most {
                return bad(format!(
                    "a table's blocks at {at} and {next}: each must start \
                     after the one before, at most {most} bytes on"
                ));
            }
        }
    }
    Ok(index)
}

/// A table of fixed-size records, read a block at a time when a record
/// is asked for, as the kernel reads the fragment and export tables.
#[derive(Debug)]
pub struct Records {
    source: Arc<Source>,
    codec: Codec,
    index: Vec<u64>,
    /// Where the index is: every block must come before it.
    index_start: u64,
    count: u64,
    record: usize,
    cache: Mutex<Option<(usize, Arc<Vec<u8>>)>>,
}

impl Records {
    pub fn new(
        source: Arc<Source>,
        codec: &Codec,
        index_start: u64,
        index: Vec<u64>,
        count: u64,
        record: usize,
    ) -> Records {
        Records {
            source,
            codec: codec.clone(),
            index,
            index_start,
            count,
            record,
            cache: Mutex::new(None),
        }
    }

    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The bytes of record `i`.
    pub fn get(&self, i: u64) -> Result<Vec<u8>> {
        if i >= self.count {
            return Err(Error::corrupt(format!(
                "record {i} of a table of {}",
                self.count
            )));
        }
        let at = i as usize * self.record;
        let block = self.block(at / BLOCK_SIZE)?;
        let from = at % BLOCK_SIZE;
        Ok(block[from..from + self.record].to_vec())
    }

    /// Decoded block `n`, which must hold exactly the records the count
    /// gives it: 8 KiB, or what is left for the last.
    fn block(&self, n: usize) -> Result<Arc<Vec<u8>>> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((cached, block)) = &*cache {
            if *cached == n {
                return Ok(block.clone());
            }
        }
        let pos = self.index[n];
        if pos >= self.index_start {
            return Err(Error::corrupt(format!(
                "a table's block at {pos}, after its index at {}",
                self.index_start
            )));
        }
        let (data, _) = metadata::read_block(&self.source, &self.codec, pos)?;
        let total = self.count as usize * self.record;
        let expected = (total - n * BLOCK_SIZE).min(BLOCK_SIZE);
        if data.len() != expected {
            return Err(Error::corrupt(format!(
                "a table block of {} bytes where {expected} were expected",
                data.len()
            ))
            .at(pos));
        }
        let block = Arc::new(data);
        *cache = Some((n, block.clone()));
        Ok(block)
    }

    /// Every record, in order.
    pub fn all(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for n in 0..self.index.len() {
            out.extend_from_slice(&self.block(n)?);
        }
        Ok(out)
    }
}

/// A fragment table entry: `u64 start, u32 size word, u32 unused`.
pub fn parse_fragment(
    bytes: &[u8],
    i: u64,
    block_size: u32,
) -> Result<Fragment> {
    let mut c = Cursor::new(bytes);
    let start = c.u64()?;
    let size = BlockSize(c.u32()?);
    if size.is_sparse()
        || size.0 & !(BlockSize::STORED | 0xff_ffff) != 0
        || size.stored_len() > block_size
    {
        return Err(Error::corrupt(format!(
            "fragment {i} has a size word of {:#x}",
            size.0
        )));
    }
    Ok(Fragment { start, size })
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
        let source = Arc::new(Source::open(file.path(), None).unwrap());
        let end = IndexEnd::Exactly(out.len() as u64);
        let index = read_index(&source, start, 1000, 16, end).unwrap();
        let records =
            Records::new(source.clone(), &codec, start, index, 1000, 16);
        let read: Vec<_> = (0..1000)
            .map(|i| parse_fragment(&records.get(i).unwrap(), i, 4096))
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(read, fragments);
        assert!(records.get(1000).is_err());
        assert_eq!(records.all().unwrap(), fragment_records(&fragments));
        // The kernel's rules for an index that must end exactly.
        for (count, end) in [
            (1025, IndexEnd::Exactly(out.len() as u64)),
            (1000, IndexEnd::Exactly(out.len() as u64 + 1)),
            (1000, IndexEnd::Before(out.len() as u64 - 1)),
            (u32::MAX.into(), IndexEnd::Before(u64::MAX)),
        ] {
            assert!(read_index(&source, start, count, 16, end).is_err());
        }
        assert!(read_index(
            &source,
            start,
            1000,
            16,
            IndexEnd::Before(u64::MAX)
        )
        .is_ok());
    }
}
