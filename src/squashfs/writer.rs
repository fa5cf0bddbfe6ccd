/*!
Writes an image whose file data is already compressed: the caller puts
data and fragment blocks in place (copying them from other images) and
describes a tree whose files point at them; the writer adds the
superblock, the options and the tables.

The tables are laid out as mksquashfs lays them, which is also the order
the kernel checks at mount: inodes, directories, the fragment table (its
blocks, then its index), the id table (likewise); no export table and no
xattrs, as our images are built with `-no-exports -no-xattrs`. Inodes are
numbered and written in mksquashfs's order (numbers depth-first with each
directory's entries in name order and the root last; inodes children
first, so each directory's listing can name its children's inodes). The
bytes depend only on the tree, the blocks and the settings.
*/

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;

use super::compressor::Codec;
use super::directory::{self, DirEntry};
use super::error::{Error, ErrorKind, Result};
use super::inode::{self, BlockSize, Inode, InodeData, NO_XATTR};
use super::metadata::{self, MetaRef};
use super::superblock::{self, Flags, Superblock, NO_TABLE};
use super::table::{self, Fragment};

/// mksquashfs pads images to a multiple of 4 KiB, for block devices.
const PAD: u64 = 4096;

#[derive(Clone, Debug)]
pub struct Settings {
    pub codec: Codec,
    pub block_size: u32,
    /// Flags that describe the data blocks (`NO_FRAGMENTS`,
    /// `DUPLICATES`, ...); the writer sets those about its tables itself.
    pub data_flags: u16,
    pub mkfs_time: u32,
}

/// The flags about data, which the writer takes from its caller.
pub const DATA_FLAGS: u16 = Flags::UNCOMPRESSED_DATA
    | Flags::CHECK
    | Flags::UNCOMPRESSED_FRAGMENTS
    | Flags::NO_FRAGMENTS
    | Flags::ALWAYS_FRAGMENTS
    | Flags::DUPLICATES;

/// The tree to write: nodes in an arena, so that hard links are two
/// directory entries naming one node. Node 0 is the root directory.
#[derive(Clone, Debug)]
pub struct Tree {
    nodes: Vec<Node>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u32,
    pub kind: NodeKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// Entries by name; names sort bytewise, as the kernel's lookups
    /// require.
    Directory(BTreeMap<Vec<u8>, usize>),
    File(FileData),
    Symlink(Vec<u8>),
    BlockDevice(u32),
    CharDevice(u32),
    Fifo,
    Socket,
}

/// A file whose blocks are already in the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileData {
    pub size: u64,
    /// Where the first block is in the output.
    pub blocks_start: u64,
    pub blocks: Vec<BlockSize>,
    /// An index into the fragments given to the writer, and the offset
    /// of the file's tail in that fragment block.
    pub fragment: Option<(u32, u32)>,
    pub sparse: u64,
}

pub const ROOT: usize = 0;

impl Tree {
    pub fn new(mode: u16, uid: u32, gid: u32, mtime: u32) -> Tree {
        let root = Node {
            mode,
            uid,
            gid,
            mtime,
            kind: NodeKind::Directory(BTreeMap::new()),
        };
        Tree { nodes: vec![root] }
    }

    pub fn node(&self, id: usize) -> &Node {
        &self.nodes[id]
    }

    pub fn child(&self, dir: usize, name: &[u8]) -> Option<usize> {
        match &self.nodes[dir].kind {
            NodeKind::Directory(entries) => entries.get(name).copied(),
            _ => None,
        }
    }

    /// Adds `node` as `name` in the directory `dir`; returns its id.
    pub fn add(
        &mut self,
        dir: usize,
        name: &[u8],
        node: Node,
    ) -> Result<usize> {
        let id = self.nodes.len();
        self.nodes.push(node);
        self.insert(dir, name, id).inspect_err(|_| {
            self.nodes.pop();
        })?;
        Ok(id)
    }

    /// Names the existing file (or symlink, device...) `id` `name` in
    /// `dir` as well: a hard link.
    pub fn link(&mut self, dir: usize, name: &[u8], id: usize) -> Result<()> {
        if matches!(self.nodes[id].kind, NodeKind::Directory(_)) {
            return Err(Error::new(
                ErrorKind::Invalid,
                "a directory cannot be hard-linked",
            ));
        }
        self.insert(dir, name, id)
    }

    fn insert(&mut self, dir: usize, name: &[u8], id: usize) -> Result<()> {
        directory::check_name(name)
            .map_err(|e| Error::new(ErrorKind::Invalid, e.message()))?;
        let NodeKind::Directory(entries) = &mut self.nodes[dir].kind else {
            return Err(Error::new(
                ErrorKind::Invalid,
                "adding to a non-directory",
            ));
        };
        if entries.insert(name.to_vec(), id).is_some() {
            return Err(Error::new(
                ErrorKind::Invalid,
                format!("{:?} added twice", String::from_utf8_lossy(name)),
            ));
        }
        Ok(())
    }
}

/// Builds an image in `file`: create, place the data, finish.
pub struct Writer {
    file: File,
    settings: Settings,
    pos: u64,
    fragments: Vec<Fragment>,
}

impl Writer {
    /// Starts an image in `file` (which should be empty); data goes from
    /// `position()` on.
    pub fn create(file: File, settings: Settings) -> Result<Writer> {
        let mut start = vec![0; superblock::SIZE];
        if let Some(options) = settings.codec.options() {
            // Always stored as it is (mksquashfs does the same), so a
            // reader can read it before it knows the options.
            start.extend(
                (options.len() as u16 | metadata::STORED).to_le_bytes(),
            );
            start.extend(options);
        }
        let mut writer =
            Writer { file, settings, pos: 0, fragments: Vec::new() };
        writer.write(&start)?;
        Ok(writer)
    }

    pub fn position(&self) -> u64 {
        self.pos
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.file
            .write_all_at(bytes, self.pos)
            .map_err(|e| Error::io("writing the image", e).at(self.pos))?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    /// Appends `len` bytes from `offset` in `from`; returns where they
    /// start. The kernel copies them (`copy_file_range`), so they do not
    /// pass through this process, and may share extents on a file system
    /// that can.
    pub fn copy_from(
        &mut self,
        from: &File,
        offset: u64,
        len: u64,
    ) -> Result<u64> {
        use std::os::fd::AsRawFd;
        let start = self.pos;
        let (mut off_in, mut off_out) = (offset as i64, start as i64);
        let mut left = len;
        while left > 0 {
            let chunk = left.min(1 << 30) as usize;
            // SAFETY: both descriptors are open files this process owns,
            // and the offsets are plain integers the call updates.
            let n = unsafe {
                libc::copy_file_range(
                    from.as_raw_fd(),
                    &mut off_in,
                    self.file.as_raw_fd(),
                    &mut off_out,
                    chunk,
                    0,
                )
            };
            if n < 0 {
                let err = std::io::Error::last_os_error();
                let unsupported = [
                    libc::EXDEV,
                    libc::ENOSYS,
                    libc::EOPNOTSUPP,
                    libc::EINVAL,
                ];
                if unsupported.contains(&err.raw_os_error().unwrap_or(0)) {
                    self.pos = off_out as u64;
                    self.copy_by_reading(from, off_in as u64, left)?;
                    return Ok(start);
                }
                return Err(
                    Error::io("copying data blocks", err).at(off_out as u64)
                );
            }
            if n == 0 {
                return Err(Error::corrupt(format!(
                    "the source ends {left} bytes before the data region \
                     does"
                ))
                .at(off_in as u64));
            }
            left -= n as u64;
        }
        self.pos = start + len;
        Ok(start)
    }

    /// The copy for file systems where `copy_file_range` does not work.
    fn copy_by_reading(
        &mut self,
        from: &File,
        mut offset: u64,
        mut left: u64,
    ) -> Result<()> {
        let mut buf = vec![0; 1 << 20];
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            from.read_exact_at(&mut buf[..n], offset)
                .map_err(|e| Error::io("reading data blocks", e).at(offset))?;
            self.write(&buf[..n])?;
            offset += n as u64;
            left -= n as u64;
        }
        Ok(())
    }

    /// Records a fragment block already in place; returns its index.
    pub fn add_fragment(&mut self, fragment: Fragment) -> u32 {
        self.fragments.push(fragment);
        self.fragments.len() as u32 - 1
    }

    /// Writes the tables and the superblock; returns the superblock.
    pub fn finish(mut self, tree: &Tree) -> Result<Superblock> {
        let codec = self.settings.codec.clone();
        let mut tables = Tables::new(&codec, tree);
        tables.number(ROOT);
        let root_number = tables.next_number;
        tables.next_number += 1;
        tables.numbers[ROOT] = root_number;
        let root = tables.write_dir(ROOT, root_number + 1)?;
        let inode_count = tables.next_number - 1;
        let (inodes, directories, ids) = tables.finish()?;
        let id_count = u16::try_from(ids.len()).map_err(|_| {
            Error::new(ErrorKind::Invalid, "more than 65535 owner ids")
        })?;

        let inode_table_start = self.pos;
        let mut out = inodes;
        let directory_table_start = inode_table_start + out.len() as u64;
        out.extend(directories);
        let fragment_records = table::fragment_records(&self.fragments);
        let fragment_table_start = table::write(
            &mut out,
            inode_table_start,
            &codec,
            &fragment_records,
        )?;
        let id_records: Vec<u8> =
            ids.iter().flat_map(|id| id.to_le_bytes()).collect();
        let id_table_start =
            table::write(&mut out, inode_table_start, &codec, &id_records)?;
        self.write(&out)?;
        let bytes_used = self.pos;
        let padding = (PAD - bytes_used % PAD) % PAD;
        self.write(&vec![0; padding as usize])?;

        let mut flags =
            self.settings.data_flags & DATA_FLAGS | Flags::NO_XATTRS;
        if codec.options().is_some() {
            flags |= Flags::COMPRESSOR_OPTIONS;
        }
        let sb = Superblock {
            inode_count,
            mkfs_time: self.settings.mkfs_time,
            block_size: self.settings.block_size,
            fragment_count: self.fragments.len() as u32,
            compressor: codec.compressor().id(),
            block_log: self.settings.block_size.trailing_zeros() as u16,
            flags: Flags(flags),
            id_count,
            root_inode: root,
            bytes_used,
            id_table_start,
            xattr_id_table_start: NO_TABLE,
            inode_table_start,
            directory_table_start,
            fragment_table_start,
            lookup_table_start: NO_TABLE,
        };
        self.pos = 0;
        self.write(&sb.to_bytes())?;
        self.file
            .sync_all()
            .map_err(|e| Error::io("flushing the image to disk", e))?;
        Ok(sb)
    }
}

/// The inode and directory tables being built.
struct Tables<'a> {
    tree: &'a Tree,
    inodes: metadata::Writer<'a>,
    directories: metadata::Writer<'a>,
    /// Per node: its inode number (0 until numbered), its inode's place
    /// once written, how many names it has.
    numbers: Vec<u32>,
    refs: Vec<Option<MetaRef>>,
    links: Vec<u32>,
    next_number: u32,
    ids: Vec<u32>,
    id_index: BTreeMap<u32, u16>,
}

impl<'a> Tables<'a> {
    fn new(codec: &'a Codec, tree: &'a Tree) -> Tables<'a> {
        let mut links = vec![0; tree.nodes.len()];
        for node in &tree.nodes {
            if let NodeKind::Directory(entries) = &node.kind {
                for id in entries.values() {
                    links[*id] += 1;
                }
            }
        }
        Tables {
            tree,
            inodes: metadata::Writer::new(codec),
            directories: metadata::Writer::new(codec),
            numbers: vec![0; tree.nodes.len()],
            refs: vec![None; tree.nodes.len()],
            links,
            next_number: 1,
            ids: Vec::new(),
            id_index: BTreeMap::new(),
        }
    }

    /// Numbers the entries of `dir` as mksquashfs's `dir_scan6` does:
    /// each entry in name order, a subdirectory's entries right after it.
    fn number(&mut self, dir: usize) {
        let NodeKind::Directory(entries) = &self.tree.nodes[dir].kind else {
            return;
        };
        for &id in entries.values() {
            if self.numbers[id] == 0 {
                self.numbers[id] = self.next_number;
                self.next_number += 1;
            }
            self.number(id);
        }
    }

    fn id(&mut self, id: u32) -> Result<u16> {
        if let Some(index) = self.id_index.get(&id) {
            return Ok(*index);
        }
        let index = u16::try_from(self.ids.len()).map_err(|_| {
            Error::new(ErrorKind::Invalid, "more than 65536 owner ids")
        })?;
        self.ids.push(id);
        self.id_index.insert(id, index);
        Ok(index)
    }

    fn inode(
        &mut self,
        id: usize,
        data: InodeData,
        extended: bool,
    ) -> Result<MetaRef> {
        let node = &self.tree.nodes[id];
        let inode = Inode {
            mode: node.mode & 0o7777,
            uid_index: self.id(node.uid)?,
            gid_index: self.id(node.gid)?,
            mtime: node.mtime,
            number: self.numbers[id],
            xattr: NO_XATTR,
            extended,
            data,
        };
        let mut bytes = Vec::new();
        inode.write(&mut bytes)?;
        let at = self.inodes.position()?;
        self.inodes.write(&bytes)?;
        self.refs[id] = Some(at);
        Ok(at)
    }

    /// Writes everything below `dir`, then its listing and its inode.
    fn write_dir(&mut self, dir: usize, parent: u32) -> Result<MetaRef> {
        let NodeKind::Directory(entries) = &self.tree.nodes[dir].kind else {
            unreachable!("write_dir is called on directories");
        };
        let mut listing = Vec::with_capacity(entries.len());
        let mut subdirs = 0;
        for (name, &id) in entries {
            let node = &self.tree.nodes[id];
            let at = match (&node.kind, self.refs[id]) {
                (NodeKind::Directory(_), _) => {
                    subdirs += 1;
                    self.write_dir(id, self.numbers[dir])?
                }
                (_, Some(at)) => at,
                (kind, None) => {
                    let nlink = self.links[id];
                    let data = match kind {
                        NodeKind::File(f) => InodeData::File(inode::File {
                            blocks_start: f.blocks_start,
                            size: f.size,
                            sparse: f.sparse,
                            nlink,
                            fragment: f.fragment,
                            blocks: f.blocks.clone(),
                        }),
                        NodeKind::Symlink(target) => InodeData::Symlink {
                            nlink,
                            target: target.clone(),
                        },
                        NodeKind::BlockDevice(rdev) => {
                            InodeData::BlockDevice { nlink, rdev: *rdev }
                        }
                        NodeKind::CharDevice(rdev) => {
                            InodeData::CharDevice { nlink, rdev: *rdev }
                        }
                        NodeKind::Fifo => InodeData::Fifo { nlink },
                        NodeKind::Socket => InodeData::Socket { nlink },
                        NodeKind::Directory(_) => {
                            unreachable!("matched above")
                        }
                    };
                    self.inode(id, data, false)?
                }
            };
            let kind = match &node.kind {
                NodeKind::Directory(_) => inode::DIR,
                NodeKind::File(_) => inode::FILE,
                NodeKind::Symlink(_) => inode::SYMLINK,
                NodeKind::BlockDevice(_) => inode::BLOCK_DEVICE,
                NodeKind::CharDevice(_) => inode::CHAR_DEVICE,
                NodeKind::Fifo => inode::FIFO,
                NodeKind::Socket => inode::SOCKET,
            };
            listing.push(DirEntry {
                name: name.clone(),
                inode: at,
                number: self.numbers[id],
                kind,
            });
        }
        // mksquashfs's rule (`dir_scan6`), which keeps our inodes the size
        // of its own.
        let names: usize = listing.iter().map(|e| 8 + e.name.len()).sum();
        let extended = listing.len() >= 257 || names >= metadata::BLOCK_SIZE;
        let written = directory::write(&listing, &mut self.directories)?;
        let data = InodeData::Directory(inode::Directory {
            start_block: written.start.block,
            offset: written.start.offset,
            size: written.size,
            nlink: 2 + subdirs,
            parent,
            index: written.index,
        });
        self.inode(dir, data, extended)
    }

    fn finish(self) -> Result<(Vec<u8>, Vec<u8>, Vec<u32>)> {
        Ok((self.inodes.finish()?, self.directories.finish()?, self.ids))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::compressor::Compressor;
    use super::super::reader::{EntryKind, Image};
    use super::*;

    fn node(kind: NodeKind) -> Node {
        Node { mode: 0o644, uid: 1000, gid: 100, mtime: 7, kind }
    }

    #[test]
    fn trees_refuse_what_a_directory_cannot_hold() {
        let mut tree = Tree::new(0o755, 0, 0, 0);
        let dir =
            tree.add(ROOT, b"d", node(NodeKind::Directory(BTreeMap::new())));
        let dir = dir.unwrap();
        assert!(tree.add(ROOT, b"d", node(NodeKind::Fifo)).is_err());
        assert!(tree.add(ROOT, b"a/b", node(NodeKind::Fifo)).is_err());
        assert!(tree.add(ROOT, b"..", node(NodeKind::Fifo)).is_err());
        assert!(tree.link(ROOT, b"again", dir).is_err());
        let fifo = tree.add(dir, b"p", node(NodeKind::Fifo)).unwrap();
        assert!(tree.add(fifo, b"x", node(NodeKind::Socket)).is_err());
        tree.link(ROOT, b"p", fifo).unwrap();
        assert_eq!(tree.child(ROOT, b"p"), Some(fifo));
    }

    /// Blocks placed by hand, stored as they are, read back by our reader.
    #[test]
    fn writes_what_the_reader_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("img");
        let file = File::create(&path).unwrap();
        let codec = Codec::new(Compressor::Zstd, Some(&[3, 0, 0, 0]), 4096);
        let settings = Settings {
            codec: codec.unwrap(),
            block_size: 4096,
            data_flags: Flags::DUPLICATES,
            mkfs_time: 0,
        };
        let mut writer = Writer::create(file, settings).unwrap();
        let block: Vec<u8> = (0..4096u32).map(|i| i as u8).collect();
        let start = writer.position();
        writer.write(&block).unwrap();
        let tail = writer.position();
        writer.write(b"tail!").unwrap();
        let stored = |n: u32| BlockSize(n | BlockSize::STORED);
        let fragment = Fragment { start: tail, size: stored(5) };
        let index = writer.add_fragment(fragment);
        let mut tree = Tree::new(0o755, 0, 0, 0);
        let data = FileData {
            size: 4096 * 2 + 3,
            blocks_start: start,
            blocks: vec![stored(4096), BlockSize(0)],
            fragment: Some((index, 2)),
            sparse: 4096,
        };
        let f = tree.add(ROOT, b"f", node(NodeKind::File(data))).unwrap();
        tree.link(ROOT, b"g", f).unwrap();
        let long = vec![b'x'; 4095];
        tree.add(ROOT, b"l", node(NodeKind::Symlink(long))).unwrap();
        let sb = writer.finish(&tree).unwrap();
        assert_eq!(
            (sb.inode_count, sb.id_count, sb.fragment_count),
            (3, 3, 1)
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len() % 4096, 0);

        let image = Image::open(&path).unwrap();
        assert_eq!(image.codec().options(), Some(&[3, 0, 0, 0][..]));
        let mut expected = block.clone();
        expected.extend([0; 4096]);
        expected.extend(b"il!");
        assert_eq!(
            image.read_file(Path::new("/g"), u64::MAX).unwrap(),
            expected
        );
        let f = image.entry(Path::new("/f")).unwrap();
        assert_eq!((f.uid, f.gid, f.mode(), f.mtime()), (1000, 100, 0o644, 7));
        assert_eq!(f.inode.data.nlink(), 2);
        let l = image.entry(Path::new("/l")).unwrap();
        let EntryKind::Symlink { target } = l.kind() else { panic!() };
        assert_eq!(target.as_os_str().len(), 4095);
        let root = image.root().unwrap();
        assert_eq!(root.inode.number, 3);
    }
}
