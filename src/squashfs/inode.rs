/*!
Inodes, both ways. Basic and extended forms are one type here: parsing
accepts either, and `write` picks the basic form whenever it can hold
the values, as mksquashfs does, so that only what needs them pays for the
wider fields.
*/

use super::bytes::Cursor;
use super::error::{Error, ErrorKind, Result};

pub const NO_FRAGMENT: u32 = u32::MAX;
pub const NO_XATTR: u32 = u32::MAX;
/// The most data blocks a file may have here: 4 TiB in blocks of 1 MiB,
/// 16 GiB in blocks of 4 KiB. It bounds the memory of reading an inode,
/// whose block list is read whole.
pub const MAX_BLOCKS: u64 = 1 << 22;
/// Linux's limit for a symlink's target (`PATH_MAX` less the NUL); the
/// kernel's squashfs refuses more than a page.
pub const MAX_SYMLINK: usize = 4095;

/// The basic types; the extended ones are these plus 7.
pub const DIR: u16 = 1;
pub const FILE: u16 = 2;
pub const SYMLINK: u16 = 3;
pub const BLOCK_DEVICE: u16 = 4;
pub const CHAR_DEVICE: u16 = 5;
pub const FIFO: u16 = 6;
pub const SOCKET: u16 = 7;
const EXTENDED: u16 = 7;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inode {
    /// Permission bits with setuid, setgid and sticky (`0o7777`).
    pub mode: u16,
    /// Indices into the id table, not ids.
    pub uid_index: u16,
    pub gid_index: u16,
    pub mtime: u32,
    /// 1 to the number of inodes; hard links share one inode.
    pub number: u32,
    pub xattr: u32,
    /// The extended form: as read, or asked for when writing (mksquashfs
    /// gives big directories the extended form even without an index).
    /// The writer uses it anyway when a value needs it.
    pub extended: bool,
    pub data: InodeData,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InodeData {
    Directory(Directory),
    File(File),
    Symlink { nlink: u32, target: Vec<u8> },
    BlockDevice { nlink: u32, rdev: u32 },
    CharDevice { nlink: u32, rdev: u32 },
    Fifo { nlink: u32 },
    Socket { nlink: u32 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directory {
    /// The listing's first block, from the directory table's start.
    pub start_block: u32,
    pub offset: u16,
    /// The listing's size plus 3 (for `.` and `..`, which are not
    /// stored); 3 for an empty directory.
    pub size: u32,
    /// 2 plus the number of subdirectories.
    pub nlink: u32,
    pub parent: u32,
    pub index: Vec<DirIndex>,
}

/// An entry of an extended directory's index: where, in a big listing,
/// the header that starts with `name` is, so that a lookup can skip the
/// headers before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirIndex {
    /// The header's offset in the listing.
    pub index: u32,
    /// The stored offset of the header's metadata block from the
    /// directory table's start.
    pub start_block: u32,
    pub name: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    /// Where the first data block is, from the image's start.
    pub blocks_start: u64,
    pub size: u64,
    /// Bytes in all-zero blocks that are not stored (information only).
    pub sparse: u64,
    pub nlink: u32,
    /// The fragment block and the offset in it of the file's tail.
    pub fragment: Option<(u32, u32)>,
    pub blocks: Vec<BlockSize>,
}

/// A data block's size word: bit 24 set when the block is stored as it
/// is, the low 24 bits its stored size, 0 for a block of zeros that is
/// not stored at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockSize(pub u32);

impl BlockSize {
    pub const STORED: u32 = 1 << 24;

    pub fn stored_len(self) -> u32 {
        self.0 & !BlockSize::STORED
    }

    pub fn is_compressed(self) -> bool {
        self.0 & BlockSize::STORED == 0
    }

    pub fn is_sparse(self) -> bool {
        self.stored_len() == 0
    }
}

impl File {
    /// How many size words a file's inode holds: a tail in a fragment
    /// takes no block.
    pub fn block_count(size: u64, block_size: u32, fragment: bool) -> u64 {
        let bs = block_size as u64;
        if fragment {
            size / bs
        } else {
            size.div_ceil(bs)
        }
    }
}

impl InodeData {
    pub fn nlink(&self) -> u32 {
        match self {
            InodeData::Directory(d) => d.nlink,
            InodeData::File(f) => f.nlink,
            InodeData::Symlink { nlink, .. }
            | InodeData::BlockDevice { nlink, .. }
            | InodeData::CharDevice { nlink, .. }
            | InodeData::Fifo { nlink }
            | InodeData::Socket { nlink } => *nlink,
        }
    }

    /// The basic type, as directory entries record it.
    pub fn basic_type(&self) -> u16 {
        match self {
            InodeData::Directory(_) => DIR,
            InodeData::File(_) => FILE,
            InodeData::Symlink { .. } => SYMLINK,
            InodeData::BlockDevice { .. } => BLOCK_DEVICE,
            InodeData::CharDevice { .. } => CHAR_DEVICE,
            InodeData::Fifo { .. } => FIFO,
            InodeData::Socket { .. } => SOCKET,
        }
    }
}

impl Inode {
    /// Parses the inode at the start of `bytes` (which may hold more).
    pub fn parse(bytes: &[u8], block_size: u32) -> Result<Inode> {
        let mut c = Cursor::new(bytes);
        let kind = c.u16()?;
        let mode = c.u16()?;
        if mode & !0o7777 != 0 {
            return Err(Error::corrupt(format!(
                "inode mode {mode:#o} has bits beyond 0o7777"
            )));
        }
        let uid_index = c.u16()?;
        let gid_index = c.u16()?;
        let mtime = c.u32()?;
        let number = c.u32()?;
        let mut xattr = NO_XATTR;
        let data = match kind {
            DIR => {
                let start_block = c.u32()?;
                let nlink = c.u32()?;
                let size = c.u16()?.into();
                let offset = c.u16()?;
                let parent = c.u32()?;
                InodeData::Directory(Directory {
                    start_block,
                    offset,
                    size,
                    nlink,
                    parent,
                    index: Vec::new(),
                })
            }
            k if k == DIR + EXTENDED => {
                let nlink = c.u32()?;
                let size = c.u32()?;
                let start_block = c.u32()?;
                let parent = c.u32()?;
                let count = c.u16()?;
                let offset = c.u16()?;
                xattr = c.u32()?;
                let mut index = Vec::new();
                for _ in 0..count {
                    let at = c.u32()?;
                    let start_block = c.u32()?;
                    let len = c.u32()? as usize + 1;
                    if len > 256 {
                        return Err(Error::corrupt(format!(
                            "a directory index name of {len} bytes"
                        )));
                    }
                    let name = c.take(len)?.to_vec();
                    index.push(DirIndex { index: at, start_block, name });
                }
                InodeData::Directory(Directory {
                    start_block,
                    offset,
                    size,
                    nlink,
                    parent,
                    index,
                })
            }
            FILE => {
                let blocks_start = c.u32()?.into();
                let fragment = c.u32()?;
                let offset = c.u32()?;
                let size = c.u32()?.into();
                file(
                    &mut c,
                    block_size,
                    blocks_start,
                    size,
                    0,
                    1,
                    fragment,
                    offset,
                )?
            }
            k if k == FILE + EXTENDED => {
                let blocks_start = c.u64()?;
                let size = c.u64()?;
                let sparse = c.u64()?;
                let nlink = c.u32()?;
                let fragment = c.u32()?;
                let offset = c.u32()?;
                xattr = c.u32()?;
                file(
                    &mut c,
                    block_size,
                    blocks_start,
                    size,
                    sparse,
                    nlink,
                    fragment,
                    offset,
                )?
            }
            k if k == SYMLINK || k == SYMLINK + EXTENDED => {
                let nlink = c.u32()?;
                let len = c.u32()? as usize;
                if len > MAX_SYMLINK + 1 {
                    return Err(Error::corrupt(format!(
                        "a symlink target of {len} bytes"
                    )));
                }
                let target = c.take(len)?.to_vec();
                if target.is_empty() || target.contains(&0) {
                    // Linux reads a target up to its first NUL.
                    return Err(Error::corrupt(format!(
                        "a symlink target of {len} bytes that is empty or \
                         holds a NUL"
                    )));
                }
                if k != SYMLINK {
                    xattr = c.u32()?;
                }
                InodeData::Symlink { nlink, target }
            }
            4..=7 | 11..=14 => {
                let k = kind;
                let basic = if k > SOCKET { k - EXTENDED } else { k };
                let nlink = c.u32()?;
                let rdev = match basic {
                    BLOCK_DEVICE | CHAR_DEVICE => c.u32()?,
                    _ => 0,
                };
                if k > SOCKET {
                    xattr = c.u32()?;
                }
                match basic {
                    BLOCK_DEVICE => InodeData::BlockDevice { nlink, rdev },
                    CHAR_DEVICE => InodeData::CharDevice { nlink, rdev },
                    FIFO => InodeData::Fifo { nlink },
                    _ => InodeData::Socket { nlink },
                }
            }
            _ => {
                return Err(Error::corrupt(format!("inode type {kind}")));
            }
        };
        let extended = kind > SOCKET;
        Ok(Inode {
            mode,
            uid_index,
            gid_index,
            mtime,
            number,
            xattr,
            extended,
            data,
        })
    }

    /// Appends the inode in its smallest form.
    pub fn write(&self, out: &mut Vec<u8>) -> Result<()> {
        let wide = self.xattr != NO_XATTR || self.extended;
        let (kind, extended) = match &self.data {
            InodeData::Directory(d) => {
                (DIR, wide || !d.index.is_empty() || d.size > 0xffff)
            }
            InodeData::File(f) => (
                FILE,
                wide || f.nlink != 1
                    || f.sparse != 0
                    || f.size > u32::MAX.into()
                    || f.blocks_start > u32::MAX.into(),
            ),
            other => (other.basic_type(), wide),
        };
        let kind = if extended { kind + EXTENDED } else { kind };
        out.extend(kind.to_le_bytes());
        out.extend(self.mode.to_le_bytes());
        out.extend(self.uid_index.to_le_bytes());
        out.extend(self.gid_index.to_le_bytes());
        out.extend(self.mtime.to_le_bytes());
        out.extend(self.number.to_le_bytes());
        let u16le = |out: &mut Vec<u8>, n: u16| out.extend(n.to_le_bytes());
        let u32le = |out: &mut Vec<u8>, n: u32| out.extend(n.to_le_bytes());
        let u64le = |out: &mut Vec<u8>, n: u64| out.extend(n.to_le_bytes());
        match &self.data {
            InodeData::Directory(d) if extended => {
                let count = u16::try_from(d.index.len()).map_err(|_| {
                    Error::new(
                        ErrorKind::Invalid,
                        "a directory index over 65535 entries",
                    )
                })?;
                u32le(out, d.nlink);
                u32le(out, d.size);
                u32le(out, d.start_block);
                u32le(out, d.parent);
                u16le(out, count);
                u16le(out, d.offset);
                u32le(out, self.xattr);
                for i in &d.index {
                    u32le(out, i.index);
                    u32le(out, i.start_block);
                    u32le(out, i.name.len() as u32 - 1);
                    out.extend(&i.name);
                }
            }
            InodeData::Directory(d) => {
                u32le(out, d.start_block);
                u32le(out, d.nlink);
                u16le(out, d.size as u16);
                u16le(out, d.offset);
                u32le(out, d.parent);
            }
            InodeData::File(f) => {
                let (fragment, offset) =
                    f.fragment.unwrap_or((NO_FRAGMENT, 0));
                if extended {
                    u64le(out, f.blocks_start);
                    u64le(out, f.size);
                    u64le(out, f.sparse);
                    u32le(out, f.nlink);
                    u32le(out, fragment);
                    u32le(out, offset);
                    u32le(out, self.xattr);
                } else {
                    u32le(out, f.blocks_start as u32);
                    u32le(out, fragment);
                    u32le(out, offset);
                    u32le(out, f.size as u32);
                }
                for b in &f.blocks {
                    u32le(out, b.0);
                }
            }
            InodeData::Symlink { nlink, target } => {
                if target.is_empty() || target.len() > MAX_SYMLINK {
                    return Err(Error::new(
                        ErrorKind::Invalid,
                        format!("a symlink target of {} bytes", target.len()),
                    ));
                }
                u32le(out, *nlink);
                u32le(out, target.len() as u32);
                out.extend(target);
                if extended {
                    u32le(out, self.xattr);
                }
            }
            InodeData::BlockDevice { nlink, rdev }
            | InodeData::CharDevice { nlink, rdev } => {
                u32le(out, *nlink);
                u32le(out, *rdev);
                if extended {
                    u32le(out, self.xattr);
                }
            }
            InodeData::Fifo { nlink } | InodeData::Socket { nlink } => {
                u32le(out, *nlink);
                if extended {
                    u32le(out, self.xattr);
                }
            }
        }
        Ok(())
    }
}

#[allow(clippy::too_many_arguments)]
fn file(
    c: &mut Cursor,
    block_size: u32,
    blocks_start: u64,
    size: u64,
    sparse: u64,
    nlink: u32,
    fragment: u32,
    offset: u32,
) -> Result<InodeData> {
    let fragment = (fragment != NO_FRAGMENT).then_some((fragment, offset));
    if fragment.is_some_and(|(_, offset)| offset >= block_size) {
        return Err(Error::corrupt(format!(
            "a fragment offset of {offset} in blocks of {block_size}"
        )));
    }
    if fragment.is_some() && size.is_multiple_of(u64::from(block_size)) {
        return Err(Error::corrupt(format!(
            "a file of {size} bytes, a whole number of blocks, with a tail \
             in a fragment (the kernel refuses it: `squashfs_read_inode`)"
        )));
    }
    let count = File::block_count(size, block_size, fragment.is_some());
    if count > MAX_BLOCKS {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "a file of {size} bytes in {count} blocks; this reader takes \
                 files of at most {MAX_BLOCKS} blocks"
            ),
        ));
    }
    // Checked before allocating: a corrupt size must not reserve memory.
    if count > (c.remaining() / 4) as u64 {
        return Err(Error::new(
            ErrorKind::Short,
            format!(
                "a file of {size} bytes needs {count} block sizes, which the \
                 inode table does not hold"
            ),
        ));
    }
    let mut blocks = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let word = BlockSize(c.u32()?);
        if word.0 & !(BlockSize::STORED | 0xff_ffff) != 0
            || word.stored_len() > block_size
        {
            return Err(Error::corrupt(format!(
                "a data block size word {:#x} with blocks of {block_size}",
                word.0
            )));
        }
        blocks.push(word);
    }
    Ok(InodeData::File(File {
        blocks_start,
        size,
        sparse,
        nlink,
        fragment,
        blocks,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inode(data: InodeData) -> Inode {
        Inode {
            mode: 0o4755,
            uid_index: 1,
            gid_index: 2,
            mtime: 3,
            number: 4,
            xattr: NO_XATTR,
            extended: false,
            data,
        }
    }

    fn round_trip(inode: &Inode) -> Vec<u8> {
        let mut out = Vec::new();
        inode.write(&mut out).unwrap();
        let parsed = Inode::parse(&out, 4096).unwrap();
        assert_eq!(&Inode { extended: inode.extended, ..parsed }, inode);
        out
    }

    #[test]
    fn every_type_round_trips_in_both_forms() {
        let file = File {
            blocks_start: 96,
            size: 9000,
            sparse: 0,
            nlink: 1,
            fragment: Some((0, 100)),
            blocks: vec![BlockSize(100), BlockSize(4096 | BlockSize::STORED)],
        };
        assert_eq!(
            round_trip(&inode(InodeData::File(file.clone()))).len(),
            40
        );
        let linked = File { nlink: 2, sparse: 4096, ..file };
        assert_eq!(round_trip(&inode(InodeData::File(linked))).len(), 64);
        let dir = Directory {
            start_block: 5,
            offset: 6,
            size: 3,
            nlink: 2,
            parent: 9,
            index: Vec::new(),
        };
        assert_eq!(
            round_trip(&inode(InodeData::Directory(dir.clone()))).len(),
            32
        );
        let index = vec![DirIndex {
            index: 8000,
            start_block: 77,
            name: b"m".to_vec(),
        }];
        let big = Directory { size: 70000, index, ..dir };
        assert_eq!(round_trip(&inode(InodeData::Directory(big))).len(), 53);
        let target = vec![b'x'; MAX_SYMLINK];
        round_trip(&inode(InodeData::Symlink { nlink: 1, target }));
        round_trip(&inode(InodeData::CharDevice { nlink: 1, rdev: 0x103 }));
        round_trip(&inode(InodeData::BlockDevice { nlink: 1, rdev: 7 }));
        round_trip(&inode(InodeData::Fifo { nlink: 1 }));
        let mut socket = inode(InodeData::Socket { nlink: 3 });
        socket.xattr = 0;
        assert_eq!(round_trip(&socket).len(), 24);
    }

    #[test]
    fn absurd_values_are_errors() {
        let mut out = Vec::new();
        let file = File {
            blocks_start: 96,
            size: 1 << 40,
            sparse: 0,
            nlink: 1,
            fragment: None,
            blocks: Vec::new(),
        };
        inode(InodeData::File(file)).write(&mut out).unwrap();
        assert!(Inode::parse(&out, 4096).is_err());
        for len in 0..out.len() {
            assert!(Inode::parse(&out[..len], 4096).is_err());
        }
        let mut bad_type = out.clone();
        bad_type[0] = 15;
        assert!(Inode::parse(&bad_type, 4096).is_err());
        let long =
            inode(InodeData::Symlink { nlink: 1, target: vec![b'x'; 4096] });
        assert!(long.write(&mut Vec::new()).is_err());
    }
}
