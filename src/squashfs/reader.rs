/*!
Reads an image: its superblock, its tree, and its files' bytes.

Opening reads the superblock, the options, the id and fragment tables and
the whole inode and directory tables (decoded, they are a few bytes per
entry: a few MB for a closure of hundreds of thousands of files), so that
walking the tree costs no I/O. File data is read when asked for, with
positioned reads on one shared file handle: an `Image` is cheap to clone
and `Sync`, and threads reading different files do not wait for each
other. Only the few most recent fragment blocks are kept decoded.

Nothing in the image is trusted: every size, count, offset and reference
is checked before it is used, and a bad one is an `Error` of kind
`Corrupt` naming the image and, where known, the byte, never a panic or an
allocation the size of a corrupt field.
*/

use std::collections::{HashSet, VecDeque};
use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::compressor::{Codec, Compressor};
use super::directory::{self, DirEntry};
use super::error::{Error, ErrorKind, Result};
use super::inode::{self, BlockSize, Directory, Inode, InodeData};
use super::metadata::{self, MetaRef, Table};
use super::source::Source;
use super::superblock::{self, Flags, Superblock, NO_TABLE};
use super::table::{self, Fragment};

/// Fragment blocks kept decoded: enough for a few threads reading files in
/// tree order, where neighbours share fragment blocks.
const FRAGMENT_CACHE: usize = 16;

/// Deeper than any real tree (Linux's paths stop at 4096 bytes); it stops
/// a walk around a loop of directories in a corrupt image.
const MAX_DEPTH: usize = 2048;

#[derive(Clone, Debug)]
pub struct Image {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    source: Source,
    superblock: Superblock,
    codec: Codec,
    ids: Vec<u32>,
    fragments: Vec<Fragment>,
    inodes: Table,
    directories: Table,
    /// Where the options end and data blocks may start.
    data_start: u64,
    /// Where the first table starts: data blocks end before it.
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
        let source = Source::open(path, range)?;
        let mut sb = [0; superblock::SIZE];
        source.read_at(0, &mut sb)?;
        let sb = Superblock::parse(&sb)?;
        if sb.bytes_used > source.size() {
            return Err(Error::corrupt(format!(
                "the superblock says {} bytes are used, the image has {}",
                sb.bytes_used,
                source.size()
            ))
            .at(40));
        }
        let compressor = Compressor::from_id(sb.compressor)?;
        let mut data_start = superblock::SIZE as u64;
        let options = if sb.flags.has(Flags::COMPRESSOR_OPTIONS) {
            let plain = Codec::new(compressor, None, sb.block_size)?;
            let (options, next) =
                metadata::read_block(&source, &plain, data_start)?;
            data_start = next;
            Some(options)
        } else {
            None
        };
        let codec = Codec::new(compressor, options.as_deref(), sb.block_size)
            .map_err(|e| e.at(superblock::SIZE as u64))?;
        let ids =
            table::read_ids(&source, &codec, sb.id_table_start, sb.id_count)?;
        let fragments = if sb.fragment_count == 0 {
            Vec::new()
        } else {
            table::read_fragments(
                &source,
                &codec,
                sb.fragment_table_start,
                sb.fragment_count,
                sb.block_size,
            )?
        };
        let bounds = table_bounds(&source, &sb)?;
        let tables_start = bounds[0];
        if tables_start < data_start {
            return Err(Error::corrupt(format!(
                "a table starts at {tables_start}, within the superblock and \
                 options ({data_start} bytes)"
            )));
        }
        let end_of = |start: u64| {
            bounds
                .iter()
                .copied()
                .find(|b| *b > start)
                .unwrap_or(sb.bytes_used)
        };
        let inodes = Table::read(
            &source,
            &codec,
            sb.inode_table_start,
            sb.directory_table_start,
        )?;
        let directories = Table::read(
            &source,
            &codec,
            sb.directory_table_start,
            end_of(sb.directory_table_start),
        )?;
        Ok(Image {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                source,
                superblock: sb,
                codec,
                ids,
                fragments,
                inodes,
                directories,
                data_start,
                tables_start,
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

    pub fn fragments(&self) -> &[Fragment] {
        &self.inner.fragments
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

    /// The inode at `r` in the inode table.
    pub fn inode(&self, r: MetaRef) -> Result<Inode> {
        let inodes = &self.inner.inodes;
        let parsed = inodes.position(r).and_then(|at| {
            Inode::parse(&inodes.bytes()[at..], self.block_size())
        });
        parsed.map_err(|e| {
            self.err(Error::corrupt(format!(
                "the inode at block {} offset {}: {}",
                r.block,
                r.offset,
                e.message()
            )))
        })
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

    /// The entries of a directory, sorted by name.
    pub fn read_dir(&self, dir: &Directory) -> Result<Vec<DirEntry>> {
        let table = &self.inner.directories;
        let listing = dir.size.checked_sub(3).ok_or_else(|| {
            Error::corrupt(format!("a directory of size {}", dir.size))
        });
        let entries = listing.and_then(|len| {
            if len == 0 {
                return Ok(Vec::new());
            }
            let r = MetaRef { block: dir.start_block, offset: dir.offset };
            let at = table.position(r)?;
            directory::parse(&table.bytes()[at..], len as usize)
        });
        let mut entries = entries.map_err(|e| self.err(e))?;
        if !entries.is_sorted_by(|a, b| a.name < b.name) {
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            if entries.windows(2).any(|w| w[0].name == w[1].name) {
                return Err(self
                    .err(Error::corrupt("a directory names an entry twice")));
            }
        }
        Ok(entries)
    }

    /// The entries of the directory `dir`, sorted by name; none for
    /// anything else.
    pub fn children(&self, dir: &Entry) -> Result<Vec<Entry>> {
        let InodeData::Directory(listing) = &dir.inode.data else {
            return Ok(Vec::new());
        };
        self.read_dir(listing)?
            .iter()
            .map(|e| self.child(&dir.path, e))
            .collect()
    }

    /// The entry of a directory's child, checked against what the
    /// directory says of it.
    fn child(&self, parent: &Path, e: &DirEntry) -> Result<Entry> {
        let inode = self.inode(e.inode)?;
        let path = parent.join(OsStr::from_bytes(&e.name));
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
            let entries = self.read_dir(dir)?;
            let found = entries
                .binary_search_by(|e| e.name.as_slice().cmp(name.as_bytes()))
                .map_err(|_| {
                    self.err(Error::new(
                        ErrorKind::NotFound,
                        format!("{} is not in the image", path.display()),
                    ))
                })?;
            entry = self.child(&entry.path, &entries[found])?;
        }
        Ok(entry)
    }

    /// A reader of the contents of the file at `path`.
    pub fn open_file(&self, path: &Path) -> Result<FileReader> {
        self.open_entry(&self.entry(path)?)
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

    /// The contents of the file at `path`.
    pub fn read_file(&self, path: &Path) -> Result<Vec<u8>> {
        self.read_entry(&self.entry(path)?)
    }

    /// The contents of `entry`, a file found already.
    pub fn read_entry(&self, entry: &Entry) -> Result<Vec<u8>> {
        let mut reader = self.open_entry(entry)?;
        let mut bytes =
            Vec::with_capacity(reader.file.size.min(64 << 20) as usize);
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
        let fragment =
            self.inner.fragments.get(index as usize).ok_or_else(|| {
                self.err(Error::corrupt(format!(
                    "fragment {index} of {}",
                    self.inner.fragments.len()
                )))
            })?;
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

/// Entries depth-first; see `Image::entries`.
pub struct Entries<'a> {
    image: &'a Image,
    /// Per open directory: its path and its children left, reversed.
    stack: Vec<(PathBuf, Vec<DirEntry>)>,
    /// Directories entered, so that a corrupt image's loop ends.
    seen: HashSet<MetaRef>,
    started: bool,
}

impl Entries<'_> {
    fn enter(&mut self, entry: &Entry) -> Result<()> {
        if let InodeData::Directory(dir) = &entry.inode.data {
            if !self.seen.insert(entry.inode_ref)
                || self.stack.len() >= MAX_DEPTH
            {
                return Err(self.image.err(Error::corrupt(format!(
                    "{} is a directory met twice or too deep",
                    entry.path.display()
                ))));
            }
            let mut children = self.image.read_dir(dir)?;
            children.reverse();
            self.stack.push((entry.path.clone(), children));
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
            let (path, children) = self.stack.last_mut()?;
            let Some(child) = children.pop() else {
                self.stack.pop();
                continue;
            };
            let path = path.clone();
            let entry = self.image.child(&path, &child);
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

/// Every position where a table or a table's block starts, sorted: data
/// blocks end before the first, and each table ends where the next
/// starts.
fn table_bounds(source: &Source, sb: &Superblock) -> Result<Vec<u64>> {
    let mut bounds: Vec<u64> = vec![
        sb.inode_table_start,
        sb.directory_table_start,
        sb.id_table_start,
        sb.bytes_used,
    ];
    let first_block = |start: u64, count: u64, record: u64| -> Result<_> {
        let index = table::read_index(source, start, count, record)?;
        Ok([Some(start), index.first().copied()].into_iter().flatten())
    };
    bounds.extend(first_block(sb.id_table_start, sb.id_count.into(), 4)?);
    if sb.fragment_count > 0 {
        let count = sb.fragment_count.into();
        bounds.extend(first_block(sb.fragment_table_start, count, 16)?);
    } else if sb.fragment_table_start != NO_TABLE {
        bounds.push(sb.fragment_table_start);
    }
    if sb.lookup_table_start != NO_TABLE {
        let count = sb.inode_count.into();
        bounds.extend(first_block(sb.lookup_table_start, count, 8)?);
    }
    if sb.xattr_id_table_start != NO_TABLE {
        bounds.push(sb.xattr_id_table_start);
        let mut start = [0; 8];
        source.read_at(sb.xattr_id_table_start, &mut start)?;
        bounds.push(u64::from_le_bytes(start));
    }
    if let Some(beyond) = bounds.iter().find(|b| **b > sb.bytes_used) {
        return Err(Error::corrupt(format!(
            "a table at {beyond}, beyond the {} bytes used",
            sb.bytes_used
        )));
    }
    bounds.sort_unstable();
    Ok(bounds)
}
