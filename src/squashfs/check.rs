/*!
The canonical form: what only a walk of the whole tree shows, checked so
that no two readers can take an image two ways.

The reader already refuses what the kernel refuses at mount, listings
out of order, and indexes that disagree with their listings. What is
left is the inode numbers: the kernel keeps inodes by number
(`fs/squashfs/namei.c`, `squashfs_lookup` calls `squashfs_iget`, which
calls `iget_locked(sb, number)`), so two inodes that carry one number are
one inode to it, whichever it reads first, while a reader that follows
references sees two. mksquashfs numbers every inode once, from 1 to the
count in the superblock, and so does the assembly (`writer`). Here:

- every number from 1 to the superblock's count is carried by exactly one
  inode (hard links are one inode reached from several entries);
- each directory's `parent` is its parent's number (the root's is the
  count plus 1), and its link count is 2 plus its subdirectories; every
  other inode's link count is the number of entries that reach it;
- no inode has extended attributes, and there is no xattr table: the
  kernel would apply them (`security.capability` makes a program
  privileged), and a NAR cannot hold them, so nothing checks them;
- the export table, where there is one, maps each number to its inode
  (the kernel uses it to open files by NFS handle, `export.c`);
- the image is padded to a multiple of 4 KiB, as mksquashfs pads it;
- the compressor is one the kernel has (squashfs-tools can write lzma,
  which the reader reads for `inspect`, but the kernel cannot).
*/

use std::fmt;

use super::compressor::Compressor;
use super::inode::{InodeData, NO_XATTR};
use super::metadata::MetaRef;
use super::reader::{Entry, Image};
use super::superblock::NO_TABLE;

/// Where the image departs from the canonical form, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The entry or the structure.
    pub at: String,
    pub what: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.what)
    }
}

/// The smallest inode: a basic fifo or socket, 20 bytes.
const MIN_INODE: usize = 20;

/// The departures of `image` from the canonical form; none for an image
/// mksquashfs or the assembly made. A tree that cannot be walked is one
/// problem, the reader's error.
pub fn canonical(image: &Image) -> Vec<Problem> {
    let mut walk = Walk { image, problems: Vec::new(), numbers: Vec::new() };
    walk.superblock();
    let count = image.superblock().inode_count as usize;
    let (inode_table, _) = image.table_sizes();
    if count > inode_table / MIN_INODE {
        walk.problem(
            "the superblock",
            format!(
                "counts {count} inodes, where the inode table holds at most \
                 {}",
                inode_table / MIN_INODE
            ),
        );
        return walk.problems;
    }
    walk.numbers = vec![None; count];
    if let Err(err) = walk.tree() {
        walk.problem("the tree", err.to_string());
        return walk.problems;
    }
    walk.finish();
    walk.problems
}

struct Walk<'a> {
    image: &'a Image,
    problems: Vec<Problem>,
    /// Per inode number: the inode that carries it, and how many entries
    /// reach it.
    numbers: Vec<Option<(MetaRef, u32, u32)>>,
}

impl Walk<'_> {
    fn problem(&mut self, at: impl fmt::Display, what: impl Into<String>) {
        self.problems.push(Problem { at: at.to_string(), what: what.into() });
    }

    fn superblock(&mut self) {
        let sb = self.image.superblock();
        if self.image.compressor() == Compressor::Lzma {
            self.problem(
                "the superblock",
                "names lzma, which the kernel does not read (decompressor.c \
                 has no lzma decompressor)",
            );
        }
        if sb.xattr_id_table_start != NO_TABLE {
            self.problem(
                "the superblock",
                "has an xattr table; images are made without xattrs",
            );
        }
        if !self.image.size().is_multiple_of(4096) {
            self.problem(
                "the image",
                format!(
                    "is {} bytes, not a multiple of 4096 as mksquashfs pads \
                     it",
                    self.image.size()
                ),
            );
        }
    }

    /// Walks the tree depth-first, keeping the open directories' numbers
    /// for their entries' `parent` and their link counts.
    fn tree(&mut self) -> super::Result<()> {
        let image = self.image;
        // Per open directory: its entry and the subdirectories met so far.
        let mut open: Vec<(Entry, u32)> = Vec::new();
        for entry in image.entries() {
            let entry = entry?;
            while let Some((dir, _)) = open.last() {
                if entry.path.parent() == Some(dir.path.as_path()) {
                    break;
                }
                let (dir, subdirectories) = open.pop().expect("not empty");
                self.close(&dir, subdirectories);
            }
            self.visit(&entry);
            let InodeData::Directory(listing) = &entry.inode.data else {
                continue;
            };
            let parent = match open.last_mut() {
                Some((dir, subdirectories)) => {
                    *subdirectories += 1;
                    dir.inode.number
                }
                None => image.superblock().inode_count.wrapping_add(1),
            };
            if listing.parent != parent {
                self.problem(
                    entry.path.display(),
                    format!(
                        "names inode {} as its parent, which is {parent}",
                        listing.parent
                    ),
                );
            }
            open.push((entry, 0));
        }
        while let Some((dir, subdirectories)) = open.pop() {
            self.close(&dir, subdirectories);
        }
        Ok(())
    }

    /// Checks a directory's link count once its entries are all met.
    fn close(&mut self, dir: &Entry, subdirectories: u32) {
        let InodeData::Directory(listing) = &dir.inode.data else {
            return;
        };
        let expected = u64::from(subdirectories) + 2;
        if u64::from(listing.nlink) != expected {
            self.problem(
                dir.path.display(),
                format!(
                    "has a link count of {}, where its {subdirectories} \
                     subdirectories make {expected}",
                    listing.nlink
                ),
            );
        }
    }

    /// Records that an entry reaches `entry`'s inode.
    fn visit(&mut self, entry: &Entry) {
        let inode = &entry.inode;
        if inode.xattr != NO_XATTR {
            self.problem(
                entry.path.display(),
                format!("has extended attributes (xattr {})", inode.xattr),
            );
        }
        let number = inode.number;
        let Some(slot) = self.numbers.get_mut(number as usize - 1) else {
            self.problem(
                entry.path.display(),
                format!(
                    "has inode number {number}, beyond the {} the superblock \
                     counts",
                    self.numbers.len()
                ),
            );
            return;
        };
        let nlink = match &inode.data {
            InodeData::Directory(_) => 1,
            data => data.nlink(),
        };
        match slot {
            None => *slot = Some((entry.inode_ref, nlink, 1)),
            Some((r, _, reached)) if *r == entry.inode_ref => *reached += 1,
            Some((r, _, _)) => {
                let r = *r;
                self.problem(
                    entry.path.display(),
                    format!(
                        "has inode number {number}, which the inode at block \
                         {} offset {} carries too: the kernel keeps inodes \
                         by number, and would give one for the other",
                        r.block, r.offset
                    ),
                );
            }
        }
    }

    fn finish(&mut self) {
        let mut missing = Vec::new();
        for (i, slot) in self.numbers.iter().enumerate() {
            let number = i as u32 + 1;
            let Some((r, nlink, reached)) = *slot else {
                missing.push(number);
                continue;
            };
            if nlink != reached {
                self.problems.push(Problem {
                    at: format!("inode {number}"),
                    what: format!(
                        "has a link count of {nlink}, and {reached} entries \
                         reach it"
                    ),
                });
            }
            if let Some(export) = self.image.export(number) {
                match export {
                    Ok(exported) if exported == r => {}
                    Ok(exported) => self.problems.push(Problem {
                        at: "the export table".into(),
                        what: format!(
                            "maps inode {number} to block {} offset {}, \
                             where it is at block {} offset {}",
                            exported.block, exported.offset, r.block, r.offset
                        ),
                    }),
                    Err(err) => self.problems.push(Problem {
                        at: "the export table".into(),
                        what: err.to_string(),
                    }),
                }
            }
        }
        if let Some(first) = missing.first() {
            self.problem(
                "the inode numbers",
                format!(
                    "{} of the {} the superblock counts are carried by no \
                     inode (the first: {first})",
                    missing.len(),
                    self.numbers.len()
                ),
            );
        }
    }
}
