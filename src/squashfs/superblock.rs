/*!
The 96-byte superblock at the start of every image: what the rest of the
image is, and where its tables are.
*/

use super::bytes::Cursor;
use super::error::{Error, ErrorKind, Result};
use super::metadata::MetaRef;

pub const SIZE: usize = 96;
pub const MAGIC: u32 = 0x7371_7368;
/// Where a table that is not there points (`SQUASHFS_INVALID_BLK`).
pub const NO_TABLE: u64 = u64::MAX;
pub const MIN_BLOCK_SIZE: u32 = 4096;
pub const MAX_BLOCK_SIZE: u32 = 1 << 20;

/// The superblock's flags (`SQUASHFS_MKFLAGS` in `squashfs_fs.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flags(pub u16);

impl Flags {
    pub const UNCOMPRESSED_INODES: u16 = 1 << 0;
    pub const UNCOMPRESSED_DATA: u16 = 1 << 1;
    pub const CHECK: u16 = 1 << 2;
    pub const UNCOMPRESSED_FRAGMENTS: u16 = 1 << 3;
    pub const NO_FRAGMENTS: u16 = 1 << 4;
    pub const ALWAYS_FRAGMENTS: u16 = 1 << 5;
    pub const DUPLICATES: u16 = 1 << 6;
    pub const EXPORTABLE: u16 = 1 << 7;
    pub const UNCOMPRESSED_XATTRS: u16 = 1 << 8;
    pub const NO_XATTRS: u16 = 1 << 9;
    pub const COMPRESSOR_OPTIONS: u16 = 1 << 10;
    pub const UNCOMPRESSED_IDS: u16 = 1 << 11;

    pub fn has(self, flag: u16) -> bool {
        self.0 & flag != 0
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Superblock {
    pub inode_count: u32,
    pub mkfs_time: u32,
    pub block_size: u32,
    pub fragment_count: u32,
    /// The compressor's id, 1 to 6 (see `compressor::Compressor`).
    pub compressor: u16,
    pub block_log: u16,
    pub flags: Flags,
    pub id_count: u16,
    pub root_inode: MetaRef,
    pub bytes_used: u64,
    pub id_table_start: u64,
    pub xattr_id_table_start: u64,
    pub inode_table_start: u64,
    pub directory_table_start: u64,
    pub fragment_table_start: u64,
    pub lookup_table_start: u64,
}

impl Superblock {
    /// Parses and checks what can be checked without the rest of the
    /// image: magic, version, block size and its log, table order.
    pub fn parse(bytes: &[u8]) -> Result<Superblock> {
        let mut c = Cursor::new(bytes);
        let magic = c.u32()?;
        if magic != MAGIC {
            return Err(Error::corrupt(format!(
                "no squashfs magic (found {magic:#010x}, expected \
                 {MAGIC:#010x} \"hsqs\")"
            ))
            .at(0));
        }
        let inode_count = c.u32()?;
        let mkfs_time = c.u32()?;
        let block_size = c.u32()?;
        let fragment_count = c.u32()?;
        let compressor = c.u16()?;
        let block_log = c.u16()?;
        let flags = Flags(c.u16()?);
        let id_count = c.u16()?;
        let major = c.u16()?;
        let minor = c.u16()?;
        let sb = Superblock {
            inode_count,
            mkfs_time,
            block_size,
            fragment_count,
            compressor,
            block_log,
            flags,
            id_count,
            root_inode: MetaRef::from_raw(c.u64()?),
            bytes_used: c.u64()?,
            id_table_start: c.u64()?,
            xattr_id_table_start: c.u64()?,
            inode_table_start: c.u64()?,
            directory_table_start: c.u64()?,
            fragment_table_start: c.u64()?,
            lookup_table_start: c.u64()?,
        };
        if (major, minor) != (4, 0) {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!("squashfs version {major}.{minor}, not 4.0"),
            )
            .at(28));
        }
        if !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&block_size)
            || !block_size.is_power_of_two()
            || 1u32.checked_shl(block_log.into()) != Some(block_size)
        {
            return Err(Error::corrupt(format!(
                "block size {block_size} with log {block_log}"
            ))
            .at(12));
        }
        if sb.inode_table_start >= sb.directory_table_start
            || sb.directory_table_start > sb.bytes_used
            || sb.id_table_start >= sb.bytes_used
            || (sb.inode_table_start as usize) < SIZE
        {
            return Err(Error::corrupt(format!(
                "tables out of order: inodes at {}, directories at {}, \
                 ids at {}, {} bytes used",
                sb.inode_table_start,
                sb.directory_table_start,
                sb.id_table_start,
                sb.bytes_used
            ))
            .at(40));
        }
        if sb.inode_count == 0 || sb.id_count == 0 {
            return Err(Error::corrupt("no inodes or no ids").at(4));
        }
        Ok(sb)
    }

    pub fn to_bytes(&self) -> [u8; SIZE] {
        let mut out = Vec::with_capacity(SIZE);
        out.extend(MAGIC.to_le_bytes());
        out.extend(self.inode_count.to_le_bytes());
        out.extend(self.mkfs_time.to_le_bytes());
        out.extend(self.block_size.to_le_bytes());
        out.extend(self.fragment_count.to_le_bytes());
        out.extend(self.compressor.to_le_bytes());
        out.extend(self.block_log.to_le_bytes());
        out.extend(self.flags.0.to_le_bytes());
        out.extend(self.id_count.to_le_bytes());
        out.extend(4u16.to_le_bytes());
        out.extend(0u16.to_le_bytes());
        for n in [
            self.root_inode.raw(),
            self.bytes_used,
            self.id_table_start,
            self.xattr_id_table_start,
            self.inode_table_start,
            self.directory_table_start,
            self.fragment_table_start,
            self.lookup_table_start,
        ] {
            out.extend(n.to_le_bytes());
        }
        out.try_into().expect("the fields add up to 96 bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Superblock {
        Superblock {
            inode_count: 3,
            mkfs_time: 0,
            block_size: 4096,
            fragment_count: 1,
            compressor: 1,
            block_log: 12,
            flags: Flags(Flags::NO_XATTRS | Flags::DUPLICATES),
            id_count: 1,
            root_inode: MetaRef { block: 0, offset: 64 },
            bytes_used: 500,
            id_table_start: 480,
            xattr_id_table_start: NO_TABLE,
            inode_table_start: 200,
            directory_table_start: 300,
            fragment_table_start: 460,
            lookup_table_start: NO_TABLE,
        }
    }

    #[test]
    fn round_trips() {
        let sb = sample();
        assert_eq!(Superblock::parse(&sb.to_bytes()).unwrap(), sb);
    }

    #[test]
    fn refuses_bad_block_log_and_order() {
        let mut sb = sample();
        sb.block_log = 13;
        assert!(Superblock::parse(&sb.to_bytes()).is_err());
        let mut sb = sample();
        sb.directory_table_start = 100;
        assert!(Superblock::parse(&sb.to_bytes()).is_err());
        assert!(Superblock::parse(&sample().to_bytes()[..95]).is_err());
    }
}
