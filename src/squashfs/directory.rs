/*!
Directory listings in the directory table, both ways.

A listing is runs of entries, each run behind a header that holds what
its entries share: the metadata block of their inodes and a base inode
number. The writer follows the rules of mksquashfs's `add_dir`, which the
kernel relies on: a run has at most 256 entries, one inode block, inode
numbers within an `i16` of the base; and a new run starts (and gets an
entry in the directory's index) wherever the bytes since the last indexed
run would pass 8 KiB, so that a lookup that jumps to an indexed run never
reads more than about one metadata block to find a name.
*/

use super::bytes::Cursor;
use super::error::{Error, Result};
use super::inode::{DirIndex, DIR, SOCKET};
use super::metadata::{self, MetaRef};

const HEADER: usize = 12;
const ENTRY: usize = 8;
const MAX_RUN: u32 = 256;
pub const MAX_NAME: usize = 256;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub name: Vec<u8>,
    pub inode: MetaRef,
    pub number: u32,
    /// The basic inode type (1 to 7).
    pub kind: u16,
}

/// Parses a listing of `len` bytes at the start of `bytes`.
pub fn parse(bytes: &[u8], len: usize) -> Result<Vec<DirEntry>> {
    let Some(listing) = bytes.get(..len) else {
        return Err(Error::corrupt(format!(
            "a directory listing of {len} bytes where the table holds {}",
            bytes.len()
        )));
    };
    let mut c = Cursor::new(listing);
    let mut entries = Vec::new();
    while c.remaining() > 0 {
        let count = c.u32()?.wrapping_add(1);
        let block = c.u32()?;
        let base = c.u32()?;
        if count > MAX_RUN || count as usize * ENTRY > c.remaining() {
            return Err(Error::corrupt(format!(
                "a directory header announcing {count} entries"
            )));
        }
        for _ in 0..count {
            let offset = c.u16()?;
            let delta = c.u16()? as i16;
            let kind = c.u16()?;
            let name_len = c.u16()? as usize + 1;
            if name_len > MAX_NAME || !(DIR..=SOCKET).contains(&kind) {
                return Err(Error::corrupt(format!(
                    "a directory entry of type {kind} with a {name_len}-byte \
                     name"
                )));
            }
            let name = c.take(name_len)?;
            check_name(name)?;
            entries.push(DirEntry {
                name: name.to_vec(),
                inode: MetaRef { block, offset },
                number: base.wrapping_add_signed(delta.into()),
                kind,
            });
        }
    }
    Ok(entries)
}

/// A name a directory may hold: what Linux allows in one path component.
pub fn check_name(name: &[u8]) -> Result<()> {
    if name.is_empty()
        || name.len() > MAX_NAME
        || name == b"."
        || name == b".."
        || name.contains(&b'/')
        || name.contains(&0)
    {
        return Err(Error::corrupt(format!(
            "the name {:?} in a directory",
            String::from_utf8_lossy(name)
        )));
    }
    Ok(())
}

/// What the directory's inode records about its listing.
pub struct Written {
    pub start: MetaRef,
    /// The listing's size plus 3, as inodes count it.
    pub size: u32,
    pub index: Vec<DirIndex>,
}

/// Writes the listing of `entries`, sorted by name, to the directory
/// table.
pub fn write(
    entries: &[DirEntry],
    table: &mut metadata::Writer,
) -> Result<Written> {
    let mut listing = Vec::new();
    // Offsets in `listing` of the indexed runs, with their first names.
    let mut indexed: Vec<(usize, &[u8])> = Vec::new();
    let mut run: Option<(usize, u32, u32, u32)> = None; // at, count, block, base
    let mut index_from = 0;
    for e in entries {
        let entry_len = ENTRY + e.name.len();
        let too_far =
            listing.len() + entry_len - index_from > metadata::BLOCK_SIZE;
        let delta =
            run.map(|(_, _, _, base)| i64::from(e.number) - i64::from(base));
        let fits = run.is_some_and(|(_, count, block, _)| {
            count < MAX_RUN && block == e.inode.block && !too_far
        }) && delta.is_some_and(|d| i16::try_from(d).is_ok());
        if !fits {
            if let Some((at, count, _, _)) = run {
                listing[at..at + 4]
                    .copy_from_slice(&(count - 1).to_le_bytes());
                if too_far {
                    indexed.push((listing.len(), &e.name));
                    index_from = listing.len();
                }
            }
            run = Some((listing.len(), 0, e.inode.block, e.number));
            let mut header = [0; HEADER];
            header[4..8].copy_from_slice(&e.inode.block.to_le_bytes());
            header[8..].copy_from_slice(&e.number.to_le_bytes());
            listing.extend(header);
        }
        let (_, count, _, base) = run.as_mut().expect("a run was started");
        *count += 1;
        let delta = (i64::from(e.number) - i64::from(*base)) as i16;
        listing.extend(e.inode.offset.to_le_bytes());
        listing.extend(delta.to_le_bytes());
        listing.extend(e.kind.to_le_bytes());
        listing.extend((e.name.len() as u16 - 1).to_le_bytes());
        listing.extend(&e.name);
    }
    if let Some((at, count, _, _)) = run {
        listing[at..at + 4].copy_from_slice(&(count - 1).to_le_bytes());
    }
    let start = table.position()?;
    let mut index = Vec::with_capacity(indexed.len());
    let mut written = 0;
    for (at, name) in indexed {
        table.write(&listing[written..at])?;
        written = at;
        index.push(DirIndex {
            index: at as u32,
            start_block: table.position()?.block,
            name: name.to_vec(),
        });
    }
    table.write(&listing[written..])?;
    let size = u32::try_from(listing.len() + 3).map_err(|_| {
        Error::new(super::ErrorKind::Invalid, "a directory listing over 4 GiB")
    })?;
    Ok(Written { start, size, index })
}

#[cfg(test)]
mod tests {
    use super::super::compressor::{Codec, Compressor};
    use super::*;

    fn entry(i: u32, block: u32) -> DirEntry {
        DirEntry {
            name: format!("{i:0>200}").into_bytes(),
            inode: MetaRef { block, offset: (i % 8000) as u16 },
            number: 1000 + i,
            kind: 2,
        }
    }

    #[test]
    fn big_listings_get_runs_and_an_index() {
        let codec = Codec::new(Compressor::Gzip, None, 4096).unwrap();
        let mut table = metadata::Writer::new(&codec);
        table.write(&[1; 5000]).unwrap();
        let entries: Vec<_> =
            (0..600).map(|i| entry(i, i / 300 * 9000)).collect();
        let written = write(&entries, &mut table).unwrap();
        assert_eq!(written.start, MetaRef { block: 0, offset: 5000 });
        let listing_len = written.size as usize - 3;
        // 600 entries of 208 bytes, a header per run.
        let runs = (listing_len - 600 * 208) / HEADER;
        assert!(runs > 600 * 208 / 8192, "{runs} runs");
        assert!(!written.index.is_empty());
        let mut last = 0;
        for i in &written.index {
            assert!(i.index as usize - last <= 8192);
            last = i.index as usize;
        }
        let stored = table.finish().unwrap();
        let path = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(path.path(), &stored).unwrap();
        let source =
            super::super::source::Source::open(path.path(), None).unwrap();
        let t = metadata::Table::read(&source, &codec, 0, stored.len() as u64)
            .unwrap();
        let at = t.position(written.start).unwrap();
        let parsed = parse(&t.bytes()[at..], listing_len).unwrap();
        assert_eq!(parsed, entries);
        for i in &written.index {
            let r = MetaRef {
                block: i.start_block,
                offset: ((5000 + i.index) % 8192) as u16,
            };
            let at = t.position(r).unwrap();
            let rest = listing_len - i.index as usize;
            let from_index = parse(&t.bytes()[at..], rest).unwrap();
            assert_eq!(from_index[0].name, i.name);
        }
    }

    #[test]
    fn corrupt_listings_are_errors() {
        let mut listing = Vec::new();
        listing.extend(300u32.to_le_bytes());
        listing.extend([0; 8]);
        assert!(parse(&listing, listing.len()).is_err());
        assert!(parse(&listing, 100).is_err());
        for name in [&b""[..], b".", b"..", b"a/b", b"a\0"] {
            assert!(check_name(name).is_err());
        }
    }
}
