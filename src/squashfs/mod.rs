/*!
Squashfs 4.0, read and written by our own code: the reader that `inspect`
and `verify` need, and the assembly of layer images into one image
without decompressing file data.

Sources: `squashfs-tools` 4.5.1, `squashfs-tools/squashfs_fs.h` (the
on-disk structures) and `mksquashfs.c` (`add_dir`, `write_dir`,
`dir_scan6`, `create_inode`, `write_filesystem_tables`: the rules that
readers expect because mksquashfs follows them); the kernel's
`Documentation/filesystems/squashfs.rst` and `fs/squashfs/` (what a mount
checks). Everything is little-endian.

# Layout

```text
superblock (96 bytes)
compression options   one metadata block, stored, if flag 0x0400
data and fragment blocks
inode table           metadata blocks
directory table       metadata blocks
fragment table        metadata blocks, then their index
export table          likewise (only with -exports)
id table              likewise
xattr tables          (only without -no-xattrs)
zero padding          to a multiple of 4 KiB
```

mksquashfs writes in that order, and the kernel checks at mount that the
tables follow each other so (inodes before directories, each table's
blocks before its index, each index before the next table's blocks);
`bytes_used` ends before the padding.

# Superblock

```text
u32 magic 0x73717368 ("hsqs")   u32 inode count    u32 mkfs time
u32 block size                  u32 fragment count
u16 compressor (1 gzip, 2 lzma, 3 lzo, 4 xz, 5 lz4, 6 zstd)
u16 log2(block size)            u16 flags          u16 id count
u16 major 4                     u16 minor 0
u64 root inode reference        u64 bytes used
u64 id table      u64 xattr id table   u64 inode table
u64 directory table   u64 fragment table   u64 export table
```

The block size is a power of two from 4 KiB to 1 MiB. A table that is
not there points at `u64::MAX` (the fragment table instead points at an
empty index when there are no fragments). Flags: 0x0001 inodes stored
uncompressed, 0x0002 data, 0x0008 fragments, 0x0010 no fragments, 0x0020
always fragments, 0x0040 duplicates removed, 0x0080 exportable, 0x0100
xattrs uncompressed, 0x0200 no xattrs, 0x0400 compression options present,
0x0800 ids uncompressed (0x0004 is an unused "check" bit). Only 0x0400
changes how an image is read; the others say how it was made.

# Metadata blocks and references

The tables are made of metadata blocks: a `u16` header, then the stored
bytes. The header's low 15 bits are the stored size and bit 15 (0x8000)
says the bytes are stored as they are, not compressed; a block decodes to
at most 8 KiB, and every block but a table's last decodes to exactly
8 KiB. Records run on from one block into the next. A reference to a
record is the offset of its block's header from the table's start and an
offset into the decoded block, packed as `block << 16 | offset` (48 bits)
for inodes.

# Data blocks and fragments

A file's data is blocks of the block size, stored back to back from its
`blocks_start`; its inode lists a `u32` size word per block: bit 24 set
when the block is stored uncompressed, the low 24 bits the stored size,
and 0 for a block of zeros that is not stored at all (a sparse block). The
file's last partial block, and a whole file smaller than a block, may
instead be a slice of a fragment block, which packs such tails together:
the inode then names the fragment's index and the slice's offset, and has
no size word for the tail. A fragment table entry is `u64 start, u32 size
word, u32 unused`. Identical files share blocks (mksquashfs's duplicate
check); hard links share one inode.

# Inodes

Every inode starts with `u16 type, u16 mode (permission bits), u16 uid
index, u16 gid index (into the id table), u32 mtime, u32 inode number`.
Numbers run from 1 to the inode count. The basic types are 1 directory,
2 file, 3 symlink, 4 block device, 5 char device, 6 fifo, 7 socket; type +
7 is the extended form, which adds an xattr index and wider fields.

```text
dir (1)        u32 start block, u32 nlink, u16 size, u16 offset,
               u32 parent inode
dir (8)        u32 nlink, u32 size, u32 start block, u32 parent inode,
               u16 index count, u16 offset, u32 xattr, index entries
file (2)       u32 blocks start, u32 fragment, u32 offset, u32 size,
               u32 size word per block
file (9)       u64 blocks start, u64 size, u64 sparse bytes, u32 nlink,
               u32 fragment, u32 offset, u32 xattr, size words
symlink (3)    u32 nlink, u32 target size, target (no NUL)
symlink (10)   as 3, then u32 xattr
device (4, 5)  u32 nlink, u32 rdev; 11, 12 add u32 xattr
ipc (6, 7)     u32 nlink; 13, 14 add u32 xattr
```

A fragment of `0xffffffff` means none; the xattr index `0xffffffff` none.
A directory's start block and offset point into the directory table, its
size is the listing's size plus 3 (for `.` and `..`, which are not
stored), its nlink is 2 plus its subdirectories, and the root's parent is
the inode count plus 1. `rdev` packs major and minor as Linux's
`new_encode_dev`: `minor & 0xff | major << 8 | (minor & !0xff) << 12`. The
kernel refuses symlink targets longer than a page; Linux makes none over
4095 bytes. mksquashfs uses the extended file form when a file has more
than one link, sparse blocks, or a size or start past 32 bits; the
extended directory form when the directory has 257 entries or more or
its names take 8 KiB or more.

# Directory table

A directory's listing is runs of entries, each behind a header:

```text
header   u32 count - 1, u32 inode block (from the inode table's start),
         u32 base inode number
entry    u16 inode offset in that block, i16 inode number - base,
         u16 basic type, u16 name size - 1, name (no NUL)
```

Entries are sorted by name, bytewise (the kernel compares with `strcmp`
when it uses the index). A run holds at most 256 entries whose inodes
are in one metadata block and whose numbers are within an `i16` of the
base; names are 1 to 256 bytes. mksquashfs also starts a new run where
the bytes since the last indexed run would pass 8 KiB, and lists that run
in the extended inode's index: `u32 offset of the run's header in the
listing, u32 directory table block holding that header, u32 name size - 1,
the run's first name`. A lookup reads the index, jumps to the last run
whose first name is not after the name sought, and reads from there.

# Other tables

The fragment (16-byte entries), export (8-byte inode references, by inode
number - 1) and id (`u32` uid or gid) tables are records in metadata
blocks, followed by an index of `u64` positions of those blocks, one per
8 KiB of records; the superblock points at the index. The xattr id table
is `u64 start of the xattr key/value blocks, u32 count, u32 unused`, then
an index to 16-byte records (`u64 reference, u32 count, u32 size`).

# What the kernel checks, and what we mirror

`verify` must see what the kernel sees, so the reader refuses whatever
the kernel reads differently or not at all (Linux 6.12, `fs/squashfs/`),
and `check` adds the canonical form mksquashfs writes where the kernel
would take an image one way and another reader another way:

| kernel (file, function) | what it checks or does | here |
|---|---|---|
| `super.c`, `squashfs_fill_super` | magic, version 4.0, known compressor, `bytes_used` within the device, block size 4 KiB to 1 MiB matching its log, root inode offset | `superblock::Superblock::parse`, `reader` (the device is whole 512-byte sectors, as a loop device shows a file) |
| `super.c`, `squashfs_fill_super` | tables checked from the end backwards: xattr ids, ids, export table, fragments; the directory table ends by the next table and starts after the inode table | `reader::Tables::read` |
| `id.c`, `export.c`, `xattr_id.c`: `squashfs_read_*_table` | an index exactly as long as the room before the next table, blocks rising by at most 8 KiB plus a header, the last right before the index | `table::read_index` with `IndexEnd::Exactly` |
| `fragment.c`, `squashfs_read_fragment_index_table` | the index fits before the next table, its first block before it | `IndexEnd::Before` |
| `decompressor.c`, `get_comp_opts` | the options block is read before there is a decompressor, so it must be stored | `reader::read_options` |
| `lz4_wrapper.c`, `lz4_comp_opts` | lz4 images have options, version 1 | `reader`, `compressor::Codec::new` |
| `xz_wrapper.c`, `squashfs_xz_comp_opts`, `squashfs_xz_uncompress` | the dictionary is 2^n or 3·2^n; streams needing more than it fail | `Codec::new`, `compressor::unxz` (and one block per stream, as mksquashfs writes) |
| `zstd_wrapper.c`, `zstd_init` | a window of at most the block size | `compressor::unzstd` |
| `decompressor.c` | lzma is not read at all | `check` |
| `block.c`, `squashfs_read_data` | metadata blocks of 1 to 8 KiB stored, data blocks at most the block size | `metadata`, `inode` |
| `cache.c`, `squashfs_read_metadata` | records run on into the next block; a block's length is what it decodes to | `metadata::Table` (and every block but the last is 8 KiB, which `namei.c`'s index arithmetic assumes) |
| `inode.c`, `squashfs_read_inode`, `squashfs_new_inode` | inode number not 0, ids in the id table, a fragment tail only when the size is not whole blocks, symlinks up to a page | `reader::Image::inode`, `inode` |
| `namei.c`, `get_dir_index_using_name`, `squashfs_lookup` | the index sends a lookup to `start_block`, `(index + offset) % 8192`; runs of at most 256 entries and names of at most 256 bytes; the scan stops at the first name past the one sought, which only a listing in byte order makes safe | `directory::Listing` |
| `namei.c` → `inode.c`, `squashfs_iget` | inodes are kept by number (`iget_locked`) | `check` (each number on one inode) |
| `xattr.c` | extended attributes are applied | `check` (none allowed) |
| `export.c`, `squashfs_export_iget` | NFS handles open inodes through the export table | `check` (the table agrees with the tree) |

# What this module does with it

`reader` reads all of the above except xattrs (which our images do not
have; their table is only checked, to bound the others). `check` walks
a whole image for the canonical form. `writer` writes images without
export and xattr tables, with every metadata block compressed unless
that does not make it smaller. `assemble` puts layers together; its
module doc says how a layer's data blocks are found.
*/

pub mod assemble;
mod bytes;
pub mod check;
pub mod compressor;
pub mod directory;
mod error;
pub mod inode;
pub mod metadata;
pub mod reader;
pub mod source;
pub mod superblock;
pub mod table;
pub mod writer;

pub use assemble::{assemble, Stats};
pub use error::{Error, ErrorKind, Result};
pub use reader::{Entry, EntryKind, FileReader, Image};
