/*!
Reads an image: its superblock, its tree, and its files' bytes, seeing
what the kernel sees when it mounts the image.

Opening checks what the kernel checks at mount (`fs/squashfs/super.c`,
`squashfs_fill_super`, and the table readers it calls: `id.c`,
`export.c`, `xattr_id.c`, `fragment.c`; the options in
`decompressor.c`, `lz4_wrapper.c`, `xz_wrapper.c`), so an image the
kernel will not mount does not open. The inode and directory tables are
then read as the kernel reads them, a metadata block when a record in it
is needed (`metadata::Table`); directory listings are read entry by
entry and checked against their index (`directory::Listing`). Memory so
depends on how deep the tree is and on the few blocks kept decoded, not
on sizes the image claims. File data is read when asked for, with
positioned reads on one shared file handle: an `Image` is cheap to clone
and `Sync`, and threads reading different files do not wait for each
other.

Nothing in the image is trusted: every size, count, offset and reference
is checked before it is used, and a bad one is an `Error` of kind
`Corrupt` naming the image and, where known, the byte, never a panic or an
allocation the size of a corrupt field. What only a walk of the whole
tree can show (inode numbers, link counts) is `check`'s.
*/

use std::collections::{HashSet, VecDeque};
use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::bytes::Cursor;
use super::compressor::{Codec, Compressor};
use super::directory::{DirEntry, Listing};
use super::error::{Error, ErrorKind, Result};
use super::inode::{self, BlockSize, Directory, Inode, InodeData};
use super::metadata::{self, MetaRef, Table};
use super::source::Source;
use super::superblock::{self, Flags, Superblock, NO_TABLE};
use super::table::{self, Fragment, IndexEnd, Records};

/// Fragment blocks kept decoded: enough for a few threads reading files in
/// tree order, where neighbours share fragment blocks.
const FRAGMENT_CACHE: usize = 16;

/// Linux's `PATH_MAX` less the NUL: a longer path cannot be opened by
/// name, and walks refuse it, which also bounds what they hold (a path
/// per open directory) and ends a walk around a loop of directories.
pub const MAX_PATH: usize = 4095;

/// The most bytes an inode takes: an extended directory with 65,535
/// index entries of 256-byte names, or a file of `inode::MAX_BLOCKS`.
const MAX_INODE: usize = 18 << 20;

#[derive(Clone, Debug)]
pub struct Image {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    source: Arc<Source>,
    superblock: Superblock,
    codec: Codec,
    ids: Vec<u32>,
    fragments: Records,
    /// The export table, which maps inode numbers to inodes for NFS.
    exports: Option<Records>,
    inodes: Table,
    directories: Table,
    /// Where the options end and data blocks may start.
    data_start: u64,
    /// Where the inode table starts: data blocks end before it.
    tables_start: u64,
    cache: Mutex<VecDeque<(u32, Arc<Vec<u8>>)>>,
}

/// One entry of the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Absolute inside the image: `/` is the root.
    pub path: PathBuf,
    /// Where the inode is; hard links have the same.
    pub inode_ref: MetaRef,
    pub inode: Inode,
    pub uid: u32,
    pub gid: u32,
}

/// What an entry is, with what `ls -l` shows of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind<'a> {
    Directory,
    File { size: u64 },
    Symlink { target: &'a Path },
    CharDevice { major: u32, minor: u32 },
    BlockDevice { major: u32, minor: u32 },
    Fifo,
    Socket,
}

impl Entry {
    pub fn kind(&self) -> EntryKind<'_> {
        let device = |rdev: u32| {
            ((rdev >> 8) & 0xfff, (rdev & 0xff) | ((rdev >> 12) & 0xfff00))
        };
        match &self.inode.data {
            InodeData::Directory(_) => EntryKind::Directory,
            InodeData::File(f) => EntryKind::File { size: f.size },
            InodeData::Symlink { target, .. } => EntryKind::Symlink {
                target: Path::new(OsStr::from_bytes(target)),
            },
            InodeData::CharDevice { rdev, .. } => {
                let (major, minor) = device(*rdev);
                EntryKind::CharDevice { major, minor }
            }
            InodeData::BlockDevice { rdev, .. } => {
                let (major, minor) = device(*rdev);
                EntryKind::BlockDevice { major, minor }
            }
            InodeData::Fifo { .. } => EntryKind::Fifo,
            InodeData::Socket { .. } => EntryKind::Socket,
        }
    }

    /// Permission bits with setuid, setgid and sticky.
    pub fn mode(&self) -> u16 {
        self.inode.mode
    }

    pub fn mtime(&self) -> u32 {
        self.inode.mtime
    }
}

impl Image {
    pub fn open(path: &Path) -> Result<Image> {
        Image::load(path, None).map_err(|e| e.in_file(path))
    }

    /// The image in `len` bytes at `offset` in the file at `path`.
    pub fn open_range(path: &Path, offset: u64, len: u64) -> Result<Image> {
        Image::load(path, Some((offset, len))).map_err(|e| e.in_file(path))
    }

    fn load(path: &Path, range: Option<(u64, u64)>) -> Result<Image> {
        let source = Arc::new(Source::open(path, range)?);
        let mut sb = [0; superblock::SIZE];
        source.read_at(0, &mut sb)?;
        let sb = Superblock::parse(&sb)?;
        // A loop device shows whole 512-byte sectors only.
        let device = source.size() / 512 * 512;
        if sb.bytes_used > device {
            return Err(Error::corrupt(format!(
                "the superblock says {} bytes are used, the image has {} \
                 (in whole 512-byte sectors, as a loop device shows it)",
                sb.bytes_used, device
            ))
            .at(40));
        }
        let compressor = Compressor::from_id(sb.compressor)?;
        let mut data_start = superblock::SIZE as u64;
        let options = if sb.flags.has(Flags::COMPRESSOR_OPTIONS) {
            let (options, next) = read_options(&source)?;
            data_start = next;
            Some(options)
        } else {
            None
        };
        if compressor == Compressor::Lz4 && options.is_none() {
            return Err(Error::corrupt(
                "an lz4 image without its options block, which the kernel \
                 refuses (lz4_wrapper.c: lz4 images always have options)",
            )
            .at(24));
        }
        let codec = Codec::new(compressor, options.as_deref(), sb.block_size)
            .map_err(|e| e.at(superblock::SIZE as u64))?;
        let tables = Tables::read(&source, &sb)?;
        let ids = table::Records::new(
            source.clone(),
            &codec,
            sb.id_table_start,
            tables.ids,
            sb.id_count.into(),
            4,
        )
        .all()?;
        let ids = ids
            .chunks(4)
            .map(|w| Cursor::new(w).u32())
            .collect::<Result<_>>()?;
        let fragments = Records::new(
            source.clone(),
            &codec,
            sb.fragment_table_start,
            tables.fragments,
            sb.fragment_count.into(),
            16,
        );
        let exports = tables.exports.map(|index| {
            Records::new(
                source.clone(),
                &codec,
                sb.lookup_table_start,
                index,
                sb.inode_count.into(),
                8,
            )
        });
        if sb.inode_table_start < data_start {
            return Err(Error::corrupt(format!(
                "the inode table starts at {}, within the superblock and \
                 options ({data_start} bytes)",
                sb.inode_table_start
            )));
        }
        let inodes = Table::read(
            source.clone(),
            &codec,
            sb.inode_table_start,
            sb.directory_table_start,
        )?;
        let directories = Table::read(
            source.clone(),
            &codec,
            sb.directory_table_start,
            tables.directories_end,
        )?;
        Ok(Image {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                source,
                tables_start: sb.inode_table_start,
                superblock: sb,
                codec,
                ids,
                fragments,
                exports,
                inodes,
                directories,
                data_start,
                cache: Mutex::new(VecDeque::new()),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub fn superblock(&self) -> &Superblock {
        &self.inner.superblock
    }

    pub fn compressor(&self) -> Compressor {
        self.inner.codec.compressor()
    }

    /// The compressor with the image's options, as the options block
    /// holds them.
    pub fn codec(&self) -> &Codec {
        &self.inner.codec
    }

    /// The image's size: the file's, or the range's; mksquashfs pads it
    /// beyond `bytes_used` to a multiple of 4 KiB.
    pub fn size(&self) -> u64 {
        self.inner.source.size()
    }

    pub fn block_size(&self) -> u32 {
        self.inner.superblock.block_size
    }

    pub fn ids(&self) -> &[u32] {
        &self.inner.ids
    }

    /// Every fragment table entry (the assembly copies them all).
    pub fn fragments(&self) -> Result<Vec<Fragment>> {
        let records = &self.inner.fragments;
        (0..records.len()).map(|i| self.fragment_entry(i as u32)).collect()
    }

    /// The fragment table entry `index`.
    fn fragment_entry(&self, index: u32) -> Result<Fragment> {
        let records = &self.inner.fragments;
        let bytes = records.get(index.into()).map_err(|e| self.err(e))?;
        table::parse_fragment(&bytes, index.into(), self.block_size())
            .map_err(|e| self.err(e))
    }

    /// The export table's entry for inode number `number`: the inode's
    /// reference, if the image has the table.
    pub fn export(&self, number: u32) -> Option<Result<MetaRef>> {
        let records = self.inner.exports.as_ref()?;
        let raw = number
            .checked_sub(1)
            .ok_or_else(|| Error::corrupt("inode number 0"))
            .and_then(|i| records.get(i.into()))
            .and_then(|bytes| Cursor::new(&bytes).u64());
        Some(raw.map(MetaRef::from_raw).map_err(|e| self.err(e)))
    }

    /// The decoded sizes of the inode and directory tables.
    pub fn table_sizes(&self) -> (usize, usize) {
        (self.inner.inodes.len(), self.inner.directories.len())
    }

    /// The bytes where data and fragment blocks may be: after the
    /// superblock and options, before the first table or table block.
    pub fn data_region(&self) -> (u64, u64) {
        (self.inner.data_start, self.inner.tables_start)
    }

    /// The open file and the image's offset in it.
    pub fn file(&self) -> (&std::fs::File, u64) {
        self.inner.source.file()
    }

    fn err(&self, e: Error) -> Error {
        e.in_file(&self.inner.path)
    }

    /// The inode at `r` in the inode table. Its length shows only as it is
    /// parsed, so it is read in growing pieces, to at most `MAX_INODE`.
    pub fn inode(&self, r: MetaRef) -> Result<Inode> {
        let inodes = &self.inner.inodes;
        let parse = |at: usize| {
            let mut want = 256;
            loop {
                let bytes = inodes.read_up_to(at, want)?;
                let reached_end = bytes.len() < want || want >= MAX_INODE;
                match Inode::parse(&bytes, self.block_size()) {
                    Err(e) if !reached_end && e.kind() == ErrorKind::Short => {
                        want = (want * 4).min(MAX_INODE);
                    }
                    parsed => return parsed,
                }
            }
        };
        let parsed = inodes.position(r).and_then(parse);
        let inode = parsed.map_err(|e| {
            self.err(Error::corrupt(format!(
                "the inode at block {} offset {}: {}",
                r.block,
                r.offset,
                e.message()
            )))
        })?;
        if inode.number == 0 {
            return Err(self.err(Error::corrupt(format!(
                "the inode at block {} offset {} has number 0, which the \
                 kernel refuses",
                r.block, r.offset
            ))));
        }
        Ok(inode)
    }

    pub fn root(&self) -> Result<Entry> {
        let r = self.inner.superblock.root_inode;
        let entry = self.make_entry(PathBuf::from("/"), r, self.inode(r)?)?;
        if !matches!(entry.inode.data, InodeData::Directory(_)) {
            return Err(
                self.err(Error::corrupt("the root is not a directory"))
            );
        }
        Ok(entry)
    }

    fn make_entry(
        &self,
        path: PathBuf,
        r: MetaRef,
        inode: Inode,
    ) -> Result<Entry> {
        let id = |i: u16| {
            self.inner.ids.get(usize::from(i)).copied().ok_or_else(|| {
                self.err(Error::corrupt(format!(
                    "{} names id {i} of {}",
                    path.display(),
                    self.inner.ids.len()
                )))
            })
        };
        let (uid, gid) = (id(inode.uid_index)?, id(inode.gid_index)?);
        Ok(Entry { path, inode_ref: r, inode, uid, gid })
    }

    /// The entries of a directory, in the listing's order, which is the
    /// names' byte order; checked as they are read (see
    /// `directory::Listing`).
    pub fn listing(
        &self,
        dir: &Directory,
    ) -> Result<impl Iterator<Item = Result<DirEntry>> + '_> {
        let listing = Listing::new(&self.inner.directories, dir);
        let listing = listing.map_err(|e| self.err(e))?;
        Ok(listing.map(|e| e.map_err(|e| self.err(e))))
    }

    /// The entries of the directory `dir`, sorted by name; none for
    /// anything else.
    pub fn children<'a>(
        &'a self,
        dir: &'a Entry,
    ) -> Result<impl Iterator<Item = Result<Entry>> + 'a> {
        let listing = match &dir.inode.data {
            InodeData::Directory(listing) => Some(self.listing(listing)?),
            _ => None,
        };
        Ok(listing
            .into_iter()
            .flatten()
            .map(|e| e.and_then(|e| self.child(&dir.path, &e))))
    }

    /// The entry of a directory's child, checked against what the
    /// directory says of it.
    fn child(&self, parent: &Path, e: &DirEntry) -> Result<Entry> {
        let path = parent.join(OsStr::from_bytes(&e.name));
        if path.as_os_str().len() > MAX_PATH {
            return Err(self.err(Error::corrupt(format!(
                "a path of {} bytes under {}, longer than Linux opens \
                 ({MAX_PATH})",
                path.as_os_str().len(),
                parent.display()
            ))));
        }
        let inode = self.inode(e.inode)?;
        if inode.data.basic_type() != e.kind || inode.number != e.number {
            return Err(self.err(Error::corrupt(format!(
                "{}: the directory says type {} inode {}, the inode says type \
                 {} inode {}",
                path.display(),
                e.kind,
                e.number,
                inode.data.basic_type(),
                inode.number
            ))));
        }
        self.make_entry(path, e.inode, inode)
    }

    /// Every entry, the root first, depth-first with each directory's
    /// names sorted bytewise.
    pub fn entries(&self) -> Entries<'_> {
        Entries {
            image: self,
            stack: Vec::new(),
            seen: HashSet::new(),
            started: false,
        }
    }

    /// The entry at `path` (absolute or relative to the root).
    pub fn entry(&self, path: &Path) -> Result<Entry> {
        let mut entry = self.root()?;
        for component in path.components() {
            let name = match component {
                Component::RootDir => continue,
                Component::Normal(name) => name,
                _ => {
                    return Err(self.err(Error::new(
                        ErrorKind::NotFound,
                        format!("{} is not a normalised path", path.display()),
                    )))
                }
            };
            let InodeData::Directory(dir) = &entry.inode.data else {
                return Err(self.err(Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "{} is not in the image: {} is not a directory",
                        path.display(),
                        entry.path.display()
                    ),
                )));
            };
            let mut found = None;
            for e in self.listing(dir)? {
                let e = e?;
                match e.name.as_slice().cmp(name.as_bytes()) {
                    std::cmp::Ordering::Less => continue,
                    std::cmp::Ordering::Equal => found = Some(e),
                    std::cmp::Ordering::Greater => {}
                }
                break;
            }
            let Some(found) = found else {
                return Err(self.err(Error::new(
                    ErrorKind::NotFound,
                    format!("{} is not in the image", path.display()),
                )));
            };
            entry = self.child(&entry.path, &found)?;
        }
        Ok(entry)
    }

    /// A reader of `entry`, a file found already (without looking its path
    /// up again).
    pub fn open_entry(&self, entry: &Entry) -> Result<FileReader> {
        match &entry.inode.data {
            InodeData::File(file) => Ok(self.file_reader(file.clone())),
            _ => Err(self.err(Error::new(
                ErrorKind::WrongKind,
                format!("{} is not a file", entry.path.display()),
            ))),
        }
    }

    /// The contents of the file at `path`, if it holds at most `limit`
    /// bytes.
    pub fn read_file(&self, path: &Path, limit: u64) -> Result<Vec<u8>> {
        self.read_entry(&self.entry(path)?, limit)
    }

    /// The contents of `entry`, a file found already, if it holds at most
    /// `limit` bytes.
    pub fn read_entry(&self, entry: &Entry, limit: u64) -> Result<Vec<u8>> {
        let mut reader = self.open_entry(entry)?;
        if reader.file.size > limit {
            return Err(self.err(Error::new(
                ErrorKind::TooBig,
                format!(
                    "{} holds {} bytes, more than the {limit} read of it",
                    entry.path.display(),
                    reader.file.size
                ),
            )));
        }
        let mut bytes = Vec::with_capacity(reader.file.size as usize);
        reader
            .read_to_end(&mut bytes)
            .map_err(|e| into_error(e, &entry.path))?;
        Ok(bytes)
    }

    /// A reader of the contents of a file's inode.
    pub fn file_reader(&self, file: inode::File) -> FileReader {
        FileReader {
            image: self.clone(),
            next_block: 0,
            pos: file.blocks_start,
            file,
            buf: Vec::new(),
            buf_pos: 0,
            done: 0,
        }
    }

    /// The decoded fragment block `index`.
    pub fn fragment(&self, index: u32) -> Result<Arc<Vec<u8>>> {
        let cache =
            || self.inner.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, block)) = cache().iter().find(|(i, _)| *i == index) {
            return Ok(block.clone());
        }
        let fragment = self.fragment_entry(index)?;
        let block =
            Arc::new(self.read_block(fragment.start, fragment.size, None)?);
        let mut cache = cache();
        if cache.len() == FRAGMENT_CACHE {
            cache.pop_front();
        }
        cache.push_back((index, block.clone()));
        Ok(block)
    }

    /// Reads and decodes the data block at `pos`; `expected` is its
    /// decoded length where the inode tells it (a fragment block's is
    /// only bounded by the block size).
    fn read_block(
        &self,
        pos: u64,
        size: BlockSize,
        expected: Option<usize>,
    ) -> Result<Vec<u8>> {
        let block_size = self.block_size() as usize;
        let len = size.stored_len() as usize;
        let check = |pos: u64| {
            if pos < self.inner.data_start
                || pos + len as u64 > self.inner.tables_start
            {
                return Err(Error::corrupt(format!(
                    "a data block of {len} bytes at {pos}, outside the data \
                     region {}..{}",
                    self.inner.data_start, self.inner.tables_start
                )));
            }
            Ok(())
        };
        let result = check(pos).and_then(|()| {
            let stored = self.inner.source.read_vec(pos, len)?;
            let data = if size.is_compressed() {
                let mut out = Vec::with_capacity(block_size);
                self.inner.codec.decompress(&stored, &mut out, block_size)?;
                out
            } else {
                stored
            };
            match expected {
                Some(n) if data.len() != n => Err(Error::corrupt(format!(
                    "a data block decodes to {} bytes, not {n}",
                    data.len()
                ))),
                _ => Ok(data),
            }
        });
        result.map_err(|e| self.err(e.at(pos)))
    }
}

/// The rest of a directory's listing.
type Rest<'a> = Box<dyn Iterator<Item = Result<DirEntry>> + 'a>;

/// Entries depth-first; see `Image::entries`.
pub struct Entries<'a> {
    image: &'a Image,
    /// Per open directory: its path and the rest of its listing.
    stack: Vec<(PathBuf, Rest<'a>)>,
    /// Directories entered, so that a corrupt image's loop ends.
    seen: HashSet<MetaRef>,
    started: bool,
}

impl<'a> Entries<'a> {
    fn enter(&mut self, entry: &Entry) -> Result<()> {
        if let InodeData::Directory(dir) = &entry.inode.data {
            if !self.seen.insert(entry.inode_ref) {
                return Err(self.image.err(Error::corrupt(format!(
                    "{} is a directory met twice",
                    entry.path.display()
                ))));
            }
            let listing = self.image.listing(dir)?;
            self.stack.push((entry.path.clone(), Box::new(listing)));
        }
        Ok(())
    }

    fn step(&mut self) -> Option<Result<Entry>> {
        if !self.started {
            self.started = true;
            let root = self.image.root();
            return Some(
                root.and_then(|root| self.enter(&root).map(|()| root)),
            );
        }
        loop {
            let (path, listing) = self.stack.last_mut()?;
            let Some(child) = listing.next() else {
                self.stack.pop();
                continue;
            };
            let path = path.clone();
            let entry =
                child.and_then(|child| self.image.child(&path, &child));
            return Some(
                entry.and_then(|entry| self.enter(&entry).map(|()| entry)),
            );
        }
    }
}

impl Iterator for Entries<'_> {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        let item = self.step();
        if matches!(item, Some(Err(_))) {
            // After an error the walk cannot know what it skipped.
            self.stack.clear();
        }
        item
    }
}

/// The contents of one file, block by block.
pub struct FileReader {
    image: Image,
    file: inode::File,
    next_block: usize,
    /// Where the next stored block starts.
    pos: u64,
    buf: Vec<u8>,
    buf_pos: usize,
    /// Bytes handed out so far.
    done: u64,
}

impl FileReader {
    pub fn size(&self) -> u64 {
        self.file.size
    }

    /// Decodes the next block (or the tail) into `buf`.
    fn fill(&mut self) -> Result<()> {
        let block_size = self.image.block_size() as u64;
        let left = self.file.size - self.done;
        self.buf_pos = 0;
        if let Some(&size) = self.file.blocks.get(self.next_block) {
            self.next_block += 1;
            let expected = left.min(block_size) as usize;
            if size.is_sparse() {
                self.buf.clear();
                self.buf.resize(expected, 0);
            } else {
                self.buf =
                    self.image.read_block(self.pos, size, Some(expected))?;
                self.pos += u64::from(size.stored_len());
            }
            return Ok(());
        }
        let Some((index, offset)) = self.file.fragment else {
            return Err(self.image.err(Error::corrupt(format!(
                "a file of {} bytes runs out of blocks after {}",
                self.file.size, self.done
            ))));
        };
        let block = self.image.fragment(index)?;
        let (start, end) = (offset as u64, offset as u64 + left);
        let tail = block.get(start as usize..end as usize).ok_or_else(|| {
            self.image.err(Error::corrupt(format!(
                "a tail of {left} bytes at {start} in fragment {index} of {} bytes",
                block.len()
            )))
        })?;
        self.buf.clear();
        self.buf.extend_from_slice(tail);
        Ok(())
    }
}

impl Read for FileReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.done == self.file.size || out.is_empty() {
            return Ok(0);
        }
        if self.buf_pos == self.buf.len() {
            self.fill()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
        let n = out.len().min(self.buf.len() - self.buf_pos);
        out[..n].copy_from_slice(&self.buf[self.buf_pos..self.buf_pos + n]);
        self.buf_pos += n;
        self.done += n as u64;
        Ok(n)
    }
}

/// Our error back out of the `io::Error` that `Read` had to wrap it in.
fn into_error(e: io::Error, path: &Path) -> Error {
    match e.into_inner().map(|inner| inner.downcast::<Error>()) {
        Some(Ok(ours)) => *ours,
        Some(Err(other)) => Error::new(
            ErrorKind::Io,
            format!("reading {}: {other}", path.display()),
        ),
        None => {
            Error::new(ErrorKind::Io, format!("reading {}", path.display()))
        }
    }
}

/// The options block after the superblock, which must be stored as it is:
/// the kernel reads it before it has a decompressor
/// (`decompressor.c`, `get_comp_opts`). Returns it and where it ends.
fn read_options(source: &Source) -> Result<(Vec<u8>, u64)> {
    let at = superblock::SIZE as u64;
    let mut header = [0; 2];
    source.read_at(at, &mut header)?;
    let header = u16::from_le_bytes(header);
    let len = header & !metadata::STORED;
    if header & metadata::STORED == 0 || len == 0 || len > 4096 {
        return Err(Error::corrupt(format!(
            "an options block with header {header:#06x}: it must be stored \
             as it is, 1 to 4096 bytes, for the kernel to read it"
        ))
        .at(at));
    }
    let options = source.read_vec(at + 2, len.into())?;
    Ok((options, at + 2 + u64::from(len)))
}

/// The indexes of the tables after the directory table, read and
/// checked in the kernel's order, from the end of the image backwards:
/// the xattr id table (ending at `bytes_used`), the id table (ending where
/// the xattrs start, or at `bytes_used`), the export table (ending at the
/// id table's first block), the fragment table (before the export or id
/// table's first block); the directory table must end by then, and start
/// after the inode table (`squashfs_fill_super`).
struct Tables {
    ids: Vec<u64>,
    exports: Option<Vec<u64>>,
    fragments: Vec<u64>,
    /// Where the directory table's blocks must end: the first block of
    /// the next table.
    directories_end: u64,
}

impl Tables {
    fn read(source: &Source, sb: &Superblock) -> Result<Tables> {
        let mut next = sb.bytes_used;
        if sb.xattr_id_table_start != NO_TABLE {
            next = xattr_table_start(source, sb)?;
        }
        let ids = table::read_index(
            source,
            sb.id_table_start,
            sb.id_count.into(),
            4,
            IndexEnd::Exactly(next),
        )?;
        next = ids[0];
        let mut exports = None;
        if sb.lookup_table_start != NO_TABLE {
            let index = table::read_index(
                source,
                sb.lookup_table_start,
                sb.inode_count.into(),
                8,
                IndexEnd::Exactly(next),
            )?;
            next = index[0];
            exports = Some(index);
        }
        let mut fragments = Vec::new();
        if sb.fragment_count > 0 {
            fragments = table::read_index(
                source,
                sb.fragment_table_start,
                sb.fragment_count.into(),
                16,
                IndexEnd::Before(next),
            )?;
            next = fragments[0];
        }
        if sb.directory_table_start > next {
            return Err(Error::corrupt(format!(
                "the directory table starts at {}, after the next table's \
                 first block at {next}",
                sb.directory_table_start
            ))
            .at(64));
        }
        Ok(Tables { ids, exports, fragments, directories_end: next })
    }
}

/// Where the xattr key and value blocks start, from the xattr id table at
/// `sb.xattr_id_table_start` (`xattr_id.c`, `squashfs_read_xattr_id_table`):
/// `u64 xattr_table_start, u32 ids, u32 unused`, then the index of the id
/// records, which must end exactly at `bytes_used`; the key and value
/// blocks start before the first id block.
fn xattr_table_start(source: &Source, sb: &Superblock) -> Result<u64> {
    let at = sb.xattr_id_table_start;
    let mut header = [0; 16];
    source.read_at(at, &mut header)?;
    let mut c = Cursor::new(&header);
    let start = c.u64()?;
    let ids = c.u32()?;
    let index = table::read_index(
        source,
        at + 16,
        ids.into(),
        16,
        IndexEnd::Exactly(sb.bytes_used),
    )?;
    if start >= index[0] {
        return Err(Error::corrupt(format!(
            "the xattrs start at {start}, not before their id table's \
             first block at {}",
            index[0]
        ))
        .at(at));
    }
    Ok(start)
}
