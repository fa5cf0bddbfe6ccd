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
use super::inode::{DirIndex, Directory, DIR, SOCKET};
use super::metadata::{self, MetaRef, Table};

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

/// A directory's listing, read entry by entry from the directory table
/// and checked as it is read, so that what it yields is what the kernel's
/// lookups find (`fs/squashfs/namei.c`, `squashfs_lookup`): runs of 1 to
/// 256 entries (`SQUASHFS_DIR_COUNT`) that end exactly where the inode's
/// size says, names strictly increasing bytewise (the kernel stops
/// scanning at the first name past the one it looks for, and its
/// `strcmp` compares bytes as unsigned), and an index that agrees with
/// the listing. The kernel starts a lookup at the last index entry whose
/// name is not after the one sought: at `start_block` in the directory
/// table, at `(index + the listing's offset) % 8192` in that block. Each
/// index entry must therefore name a run's header, by its offset in the
/// listing and its block, and carry that run's first name; otherwise the
/// kernel would read another listing, or start inside this one.
pub struct Listing<'a> {
    table: &'a Table,
    /// The listing's first byte, and the next one to read, in `table`.
    start: usize,
    at: usize,
    end: usize,
    /// Entries left in the current run, its inode block and base number.
    run: (u32, u32, u32),
    previous: Option<Vec<u8>>,
    /// The index entries not yet met, the first last.
    index: Vec<DirIndex>,
    /// The index entry whose name the next entry must carry.
    indexed: Option<DirIndex>,
    failed: bool,
}

impl<'a> Listing<'a> {
    /// The listing of the directory `dir`, in `table`.
    pub fn new(table: &'a Table, dir: &Directory) -> Result<Listing<'a>> {
        let len = dir.size.checked_sub(3).ok_or_else(|| {
            Error::corrupt(format!("a directory of size {}", dir.size))
        })? as usize;
        let start = if len == 0 {
            0
        } else {
            let r = MetaRef { block: dir.start_block, offset: dir.offset };
            table.position(r)?
        };
        if len > 0 && start + len > table.len() {
            return Err(Error::corrupt(format!(
                "a listing of {len} bytes at {}, beyond the directory \
                 table's {} bytes",
                start,
                table.len()
            )));
        }
        if len == 0 && !dir.index.is_empty() {
            return Err(Error::corrupt("an empty directory with an index"));
        }
        Ok(Listing {
            table,
            start,
            at: start,
            end: start + len,
            run: (0, 0, 0),
            previous: None,
            index: dir.index.iter().rev().cloned().collect(),
            indexed: None,
            failed: false,
        })
    }

    fn header(&mut self) -> Result<()> {
        let offset = self.at - self.start;
        if let Some(next) = self.index.last() {
            if (next.index as usize) < offset {
                return Err(Error::corrupt(format!(
                    "the directory index names offset {} of the listing, \
                     which is not where a run starts",
                    next.index
                )));
            }
            if next.index as usize == offset {
                let block = self.table.reference(self.at).map(|r| r.block);
                if block != Some(next.start_block) {
                    return Err(Error::corrupt(format!(
                        "the directory index puts the run at offset {offset} \
                         of the listing in block {}, where the table has it \
                         in block {}",
                        next.start_block,
                        block.unwrap_or_default()
                    )));
                }
                self.indexed = self.index.pop();
            }
        }
        let bytes = self.take(HEADER)?;
        let mut c = Cursor::new(&bytes);
        let count = c.u32()?.wrapping_add(1);
        let block = c.u32()?;
        let base = c.u32()?;
        if count > MAX_RUN {
            return Err(Error::corrupt(format!(
                "a directory header announcing {count} entries"
            )));
        }
        self.run = (count, block, base);
        Ok(())
    }

    fn entry(&mut self) -> Result<DirEntry> {
        if self.run.0 == 0 {
            self.header()?;
        }
        let bytes = self.take(ENTRY)?;
        let mut c = Cursor::new(&bytes);
        let offset = c.u16()?;
        let delta = c.u16()? as i16;
        let kind = c.u16()?;
        let name_len = c.u16()? as usize + 1;
        if name_len > MAX_NAME || !(DIR..=SOCKET).contains(&kind) {
            return Err(Error::corrupt(format!(
                "a directory entry of type {kind} with a {name_len}-byte name"
            )));
        }
        let name = self.take(name_len)?;
        check_name(&name)?;
        if self.previous.as_ref().is_some_and(|p| *p >= name) {
            return Err(Error::corrupt(format!(
                "{:?} follows {:?} in a directory listing: names must be \
                 strictly in byte order, which the kernel's lookups rely on",
                String::from_utf8_lossy(&name),
                String::from_utf8_lossy(self.previous.as_deref().unwrap())
            )));
        }
        if let Some(indexed) = self.indexed.take() {
            if indexed.name != name {
                return Err(Error::corrupt(format!(
                    "the directory index names {:?} for the run that starts \
                     with {:?}",
                    String::from_utf8_lossy(&indexed.name),
                    String::from_utf8_lossy(&name)
                )));
            }
        }
        let (count, block, base) = self.run;
        self.run.0 = count - 1;
        self.previous = Some(name.clone());
        Ok(DirEntry {
            name,
            inode: MetaRef { block, offset },
            number: base.wrapping_add_signed(delta.into()),
            kind,
        })
    }

    /// The next `n` bytes of the listing.
    fn take(&mut self, n: usize) -> Result<Vec<u8>> {
        if self.at + n > self.end {
            return Err(Error::corrupt(format!(
                "a directory listing of {} bytes ends inside a record",
                self.end - self.start
            )));
        }
        let bytes = self.table.read_at(self.at, n)?;
        self.at += n;
        Ok(bytes)
    }

    fn finish(&self) -> Result<()> {
        if self.run.0 > 0 {
            return Err(Error::corrupt(format!(
                "a directory listing of {} bytes ends {} entries short of \
                 its last run",
                self.end - self.start,
                self.run.0
            )));
        }
        if let Some(left) = self.index.last() {
            return Err(Error::corrupt(format!(
                "the directory index names offset {} of a listing of {} \
                 bytes, which is not where a run starts",
                left.index,
                self.end - self.start
            )));
        }
        Ok(())
    }
}

impl Iterator for Listing<'_> {
    type Item = Result<DirEntry>;

    fn next(&mut self) -> Option<Result<DirEntry>> {
        if self.failed {
            return None;
        }
        let item = if self.at < self.end || self.run.0 > 0 {
            Some(self.entry())
        } else {
            self.finish().err().map(Err)
        };
        if matches!(item, Some(Err(_)) | None) {
            self.failed = true;
        }
        item
    }
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
    use std::sync::Arc;

    use super::super::compressor::{Codec, Compressor};
    use super::super::source::Source;
    use super::*;

    fn entry(i: u32, block: u32) -> DirEntry {
        DirEntry {
            name: format!("{i:0>200}").into_bytes(),
            inode: MetaRef { block, offset: (i % 8000) as u16 },
            number: 1000 + i,
            kind: 2,
        }
    }

    /// `entries` written after 5000 bytes of something else, read back as
    /// a table, and the directory inode that names the listing.
    fn written(entries: &[DirEntry]) -> (tempfile::TempDir, Table, Directory) {
        let codec = Codec::new(Compressor::Gzip, None, 4096).unwrap();
        let mut table = metadata::Writer::new(&codec);
        table.write(&[1; 5000]).unwrap();
        let written = write(entries, &mut table).unwrap();
        let stored = table.finish().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        std::fs::write(&path, &stored).unwrap();
        let source = Arc::new(Source::open(&path, None).unwrap());
        let table =
            Table::read(source, &codec, 0, stored.len() as u64).unwrap();
        let inode = Directory {
            start_block: written.start.block,
            offset: written.start.offset,
            size: written.size,
            nlink: 2,
            parent: 1,
            index: written.index,
        };
        (dir, table, inode)
    }

    fn read(table: &Table, dir: &Directory) -> Result<Vec<DirEntry>> {
        Listing::new(table, dir)?.collect()
    }

    #[test]
    fn big_listings_get_runs_and_an_index() {
        let entries: Vec<_> =
            (0..600).map(|i| entry(i, i / 300 * 9000)).collect();
        let (_dir, table, inode) = written(&entries);
        assert_eq!(inode.offset, 5000);
        let listing_len = inode.size as usize - 3;
        // 600 entries of 208 bytes, a header per run.
        let runs = (listing_len - 600 * 208) / HEADER;
        assert!(runs > 600 * 208 / 8192, "{runs} runs");
        assert!(!inode.index.is_empty());
        let mut last = 0;
        for i in &inode.index {
            assert!(i.index as usize - last <= 8192);
            last = i.index as usize;
        }
        assert_eq!(read(&table, &inode).unwrap(), entries);
    }

    /// Each way an index can send the kernel elsewhere is refused.
    #[test]
    fn an_index_that_disagrees_with_its_listing_is_refused() {
        let entries: Vec<_> = (0..600).map(|i| entry(i, 0)).collect();
        let (_dir, table, inode) = written(&entries);
        let tampered = |change: &dyn Fn(&mut DirIndex)| {
            let mut inode = inode.clone();
            change(&mut inode.index[0]);
            read(&table, &inode).unwrap_err().to_string()
        };
        let err = tampered(&|i| i.start_block += 1);
        assert!(err.contains("where the table has it in block"), "{err}");
        let err = tampered(&|i| i.index += 8);
        assert!(err.contains("which is not where a run starts"), "{err}");
        let err = tampered(&|i| i.name = b"0".to_vec());
        assert!(err.contains("the directory index names \"0\""), "{err}");
        let mut inode = inode.clone();
        inode.index.swap(0, 1);
        assert!(read(&table, &inode).is_err());
    }

    #[test]
    fn unsorted_and_corrupt_listings_are_refused() {
        let mut entries: Vec<_> = (0..3).map(|i| entry(i, 0)).collect();
        entries.swap(1, 2);
        let (_dir, table, inode) = written(&entries);
        let err = read(&table, &inode).unwrap_err().to_string();
        assert!(err.contains("strictly in byte order"), "{err}");

        let (_dir, table, mut inode) = written(&[entry(0, 0)]);
        inode.size -= 1;
        assert!(read(&table, &inode).is_err());
        inode.size += 2;
        assert!(read(&table, &inode).is_err());
        for name in [&b""[..], b".", b"..", b"a/b", b"a\0"] {
            assert!(check_name(name).is_err());
        }
    }
}
