/*!
Reads a squashfs image, such as a built `NAME_VERSION.raw`, without root
and without mounting it: its superblock, its tree, a file's bytes, and the
NAR digest of any directory, file or symlink in it.

The reading is done in-process by the `backhand` crate rather than by
driving `unsquashfs`. Speed does not decide between them: on a 690 MB tree
(xz, 1 MiB blocks, tail ends in fragments; see `examples/nar_bench.rs`)
and 2 cores, in rounds where nothing else ran, `unsquashfs -d` extracted
the image in 5.2 s, the NAR digests of its 1090 top-level entries took
4.9 s (0.94x; 1000 MB of NAR, as hard-linked files are read once per name)
and the whole image as one NAR 6.0 s (1.15x), while `unsquashfs -pf`, its
only way to stream contents without writing them to disk, took 0.87x of
`-d` before any hashing. What decides: backhand reads a single file
(`inspect` reads `closure.json`) without starting a process; it gives
typed metadata where unsquashfs 4.5.1 gives text that cannot always be
parsed back (`-lln` prints names as they are, so a newline or ` -> ` in a
name is ambiguous, and `-pf` escapes spaces but not newlines); and it
needs no program at run time. It reads images of every compressor
mksquashfs offers: gzip, lzma, lzo, xz, lz4 and zstd.

Memory: the image's metadata (every inode and directory entry) is held
while the image is open, and each file being read holds a few decompressed
blocks. backhand also keeps every fragment block it has decompressed (the
tails and small files packed together) until the image is dropped, so
reading the whole image holds all of its fragment blocks: the benchmark
image has 181, and peaked at 238 MB, where `unsquashfs -d` took 420 MB.

Paths are absolute inside the image (`/nix/store/...`); a relative path is
taken from the root. Entries come depth-first, each directory's names
sorted bytewise, which is also the order of a NAR.
*/

use std::fs::File;
use std::io::{self, BufReader, Read, Seek};
use std::path::{Component, Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use backhand::compression::Compressor;
use backhand::kind::Kind;
use backhand::{
    FilesystemReader, InnerNode, Node, Squashfs, SquashfsFileReader,
};

mod nar;

/// Facts from the image's superblock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Superblock {
    /// As `mksquashfs -comp` names it: gzip, lzma, lzo, xz, lz4 or zstd.
    pub compressor: &'static str,
    pub block_size: u32,
    /// The file system's own size; the file is padded beyond it (to 4 KiB
    /// by mksquashfs).
    pub bytes_used: u64,
    /// The image file's size.
    pub file_size: u64,
    pub inode_count: u32,
    pub fragment_count: u32,
    pub mkfs_time: u32,
}

/// One entry of the image's tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Absolute inside the image: `/` is the root.
    pub path: &'a Path,
    pub kind: EntryKind<'a>,
    /// Permission bits, with setuid, setgid and sticky (`0o7777`).
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind<'a> {
    Directory,
    File { size: u64 },
    Symlink { target: &'a Path },
    CharDevice,
    BlockDevice,
    Fifo,
    Socket,
}

pub struct Image {
    path: PathBuf,
    superblock: Superblock,
    fs: FilesystemReader<'static>,
}

impl Image {
    pub fn open(path: &Path) -> Result<Image> {
        let opened = Image::load(path);
        opened.with_context(|| format!("reading the image {}", path.display()))
    }

    fn load(path: &Path) -> Result<Image> {
        let mut reader = BufReader::new(File::open(path)?);
        let file_size = reader.seek(io::SeekFrom::End(0))?;
        reader.rewind()?;
        // backhand reads lzma images only when told to expect lzma, so the
        // superblock is read first to learn the compressor.
        let (sb, _) = Squashfs::superblock_and_compression_options(
            &mut reader,
            &kind("le_v4_0"),
        )?;
        let compressor = compressor_name(sb.compressor)?;
        let kind = kind(match sb.compressor {
            Compressor::Lzma => "le_v4_0_lzma",
            _ => "le_v4_0",
        });
        reader.rewind()?;
        let squashfs =
            Squashfs::from_reader_with_offset_and_kind(reader, 0, kind)?;
        let sb = &squashfs.superblock;
        let superblock = Superblock {
            compressor,
            block_size: sb.block_size,
            bytes_used: sb.bytes_used,
            file_size,
            inode_count: sb.inode_count,
            fragment_count: sb.frag_count,
            mkfs_time: sb.mod_time,
        };
        let fs = squashfs.into_filesystem_reader()?;
        Ok(Image { path: path.to_path_buf(), superblock, fs })
    }

    pub fn superblock(&self) -> &Superblock {
        &self.superblock
    }

    /// Every entry, the root first, depth-first with sorted names.
    pub fn entries(&self) -> impl Iterator<Item = Entry<'_>> {
        self.fs.files().map(entry)
    }

    pub fn entry(&self, path: &Path) -> Result<Entry<'_>> {
        Ok(entry(self.node(path)?))
    }

    /// A reader of the contents of the file at `path`.
    pub fn open_file(&self, path: &Path) -> Result<impl Read + '_> {
        let node = self.node(path)?;
        match &node.inner {
            InnerNode::File(file) => Ok(self.fs.file(file).reader()),
            _ => bail!(
                "{} in {} is not a file",
                node.fullpath.display(),
                self.path.display()
            ),
        }
    }

    /// The contents of the file at `path`.
    pub fn read_file(&self, path: &Path) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.open_file(path)?.read_to_end(&mut bytes).with_context(|| {
            format!("reading {} in {}", path.display(), self.path.display())
        })?;
        Ok(bytes)
    }

    fn node(&self, path: &Path) -> Result<&Node<SquashfsFileReader>> {
        Ok(&self.fs.root.nodes[self.index(path)?])
    }

    fn index(&self, path: &Path) -> Result<usize> {
        let path = absolute(path)?;
        self.fs
            .root
            .nodes
            .binary_search_by(|node| node.fullpath.as_path().cmp(&path))
            .map_err(|_| {
                anyhow!(
                    "{} is not in the image {}",
                    path.display(),
                    self.path.display()
                )
            })
    }
}

fn entry(node: &Node<SquashfsFileReader>) -> Entry<'_> {
    let kind = match &node.inner {
        InnerNode::Dir(_) => EntryKind::Directory,
        InnerNode::File(file) => EntryKind::File { size: file_size(file) },
        InnerNode::Symlink(link) => EntryKind::Symlink { target: &link.link },
        InnerNode::CharacterDevice(_) => EntryKind::CharDevice,
        InnerNode::BlockDevice(_) => EntryKind::BlockDevice,
        InnerNode::NamedPipe => EntryKind::Fifo,
        InnerNode::Socket => EntryKind::Socket,
    };
    Entry {
        path: &node.fullpath,
        kind,
        mode: node.header.permissions & 0o7777,
        uid: node.header.uid,
        gid: node.header.gid,
        mtime: node.header.mtime,
    }
}

fn describe(kind: &EntryKind) -> &'static str {
    match kind {
        EntryKind::Directory => "a directory",
        EntryKind::File { .. } => "a file",
        EntryKind::Symlink { .. } => "a symlink",
        EntryKind::CharDevice => "a character device",
        EntryKind::BlockDevice => "a block device",
        EntryKind::Fifo => "a named pipe",
        EntryKind::Socket => "a socket",
    }
}

fn file_size(file: &SquashfsFileReader) -> u64 {
    file.file_len() as u64
}

/// `path` made absolute inside the image, refusing `.` and `..`, which the
/// image's paths never hold.
fn absolute(path: &Path) -> Result<PathBuf> {
    let mut absolute = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::RootDir => {}
            Component::Normal(name) => absolute.push(name),
            _ => bail!(
                "'{}' is not a normalised path inside an image",
                path.display()
            ),
        }
    }
    Ok(absolute)
}

/// backhand's name for a little-endian squashfs 4.0, with the compressor
/// read one way or the other.
fn kind(target: &str) -> Kind {
    Kind::from_target(target).expect("backhand knows its own kinds")
}

fn compressor_name(compressor: Compressor) -> Result<&'static str> {
    Ok(match compressor {
        Compressor::Gzip => "gzip",
        Compressor::Lzma => "lzma",
        Compressor::Lzo => "lzo",
        Compressor::Xz => "xz",
        Compressor::Lz4 => "lz4",
        Compressor::Zstd => "zstd",
        Compressor::Uncompressed => {
            bail!("the superblock names no compressor, which mksquashfs never writes")
        }
    })
}
