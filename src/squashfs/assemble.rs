/*!
Merges layer images into one image without decompressing file data.

Each layer is an ordinary image made by mksquashfs from part of the tree
(some store paths, with the directories above them). mksquashfs writes
the superblock, the options, then every data and fragment block, then the
tables; so a layer's blocks are one run of bytes, from the end of its
options to its first table. That run is not taken on trust: it is the
region from the options' end to the lowest position of any table or table
block the superblock leads to, and every block any file or fragment names
must lie inside it, or the layer is refused. The runs are copied one after
the other, unchanged; the files' block positions and fragment indices are
moved by where their layer's run landed, and new tables are written for
the merged tree.

The layers must agree on what decoding their blocks takes (compressor,
options, block size) and on the flags that describe the data, since one
superblock will speak for all of them. Directories may appear in several
layers (`/usr/nix/store` in all of them) if they agree on mode and owner;
any other path in two layers is a clash.

Identical files in two layers are not merged: layers hold different store
paths, whose files rarely match, and sharing blocks would mean copying
blocks one by one instead of a layer's run at once.
*/

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use super::error::{Error, ErrorKind, Result};
use super::inode::InodeData;
use super::metadata::MetaRef;
use super::reader::{Entry, Image};
use super::table::Fragment;
use super::writer::{
    FileData, Node, NodeKind, Settings, Tree, Writer, DATA_FLAGS, ROOT,
};
use crate::atomic_write::write_atomically;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub layers: usize,
    /// Entries in the merged tree, the root included.
    pub entries: u64,
    /// Bytes of data and fragment blocks copied from the layers.
    pub data_bytes: u64,
    /// The image's size, padding included.
    pub image_bytes: u64,
}

/// Writes the image made of `layers` at `output`, through a temporary file
/// next to it that is renamed at the end; on error nothing is left.
pub fn assemble(layers: &[&Path], output: &Path) -> Result<Stats> {
    write_atomically(
        output,
        |partial, file| build(layers, partial, file),
        |what, e| Error::io(what, e).in_file(output),
    )
}

fn build(layers: &[&Path], partial: &Path, file: File) -> Result<Stats> {
    let Some(first) = layers.first() else {
        return Err(Error::new(ErrorKind::Invalid, "no layers to assemble"));
    };
    let images = layers
        .iter()
        .map(|path| Image::open(path))
        .collect::<Result<Vec<_>>>()?;
    for (image, path) in images.iter().zip(layers).skip(1) {
        check_compatible(&images[0], first, image, path)?;
    }
    for (image, path) in images.iter().zip(layers) {
        if image.superblock().xattr_id_table_start
            != super::superblock::NO_TABLE
        {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "the layer has xattrs, which assembly would drop (build it \
                 with -no-xattrs)",
            )
            .in_file(path));
        }
    }
    let sb = images[0].superblock();
    let settings = Settings {
        codec: images[0].codec().clone(),
        block_size: sb.block_size,
        data_flags: sb.flags.0 & DATA_FLAGS,
        mkfs_time: images
            .iter()
            .map(|i| i.superblock().mkfs_time)
            .max()
            .unwrap_or(0),
    };
    let mut writer =
        Writer::create(file, settings).map_err(|e| e.in_file(partial))?;
    let mut merge = Merge::new(&images[0])?;
    let (mut data_bytes, mut fragments) = (0, 0u32);
    for (layer, (image, path)) in images.iter().zip(layers).enumerate() {
        let (start, end) = image.data_region();
        let (source, base) = image.file();
        let landed = writer
            .copy_from(source, base + start, end - start)
            .map_err(|e| e.in_file(path))?;
        data_bytes += end - start;
        let layer_fragments = image.fragments()?;
        let count = layer_fragments.len() as u32;
        let moved =
            Moved { start, end, landed, first_fragment: fragments, count };
        for fragment in layer_fragments {
            let len = fragment.size.stored_len().into();
            let at = moved
                .block(fragment.start, len)
                .map_err(|e| e.in_file(path))?;
            writer.add_fragment(Fragment { start: at, size: fragment.size });
        }
        fragments = fragments.checked_add(count).ok_or_else(|| {
            Error::new(ErrorKind::Invalid, "more than 2^32 fragments")
        })?;
        merge.layer(layer, image, path, layers, &moved)?;
    }
    let sb = writer.finish(&merge.tree).map_err(|e| e.in_file(partial))?;
    Ok(Stats {
        layers: layers.len(),
        entries: merge.entries,
        data_bytes,
        image_bytes: sb.bytes_used.div_ceil(4096) * 4096,
    })
}

/// Refuses a layer whose blocks the first layer's superblock and options
/// would not describe.
fn check_compatible(
    first: &Image,
    first_path: &Path,
    image: &Image,
    path: &Path,
) -> Result<()> {
    let (a, b) = (first.superblock(), image.superblock());
    let differ = |what: &str, theirs: String, ours: String| {
        Err(Error::new(
            ErrorKind::Mismatch,
            format!(
                "{what} {theirs}, where {} has {ours}",
                first_path.display()
            ),
        )
        .in_file(path))
    };
    if first.compressor() != image.compressor() {
        let (theirs, ours) = (image.compressor(), first.compressor());
        return differ("compressor", theirs.to_string(), ours.to_string());
    }
    if first.codec().options() != image.codec().options() {
        let (theirs, ours) =
            (image.codec().options(), first.codec().options());
        return differ(
            "compressor options",
            format!("{theirs:?}"),
            format!("{ours:?}"),
        );
    }
    if a.block_size != b.block_size {
        let (theirs, ours) = (b.block_size, a.block_size);
        return differ("block size", theirs.to_string(), ours.to_string());
    }
    if a.flags.0 & DATA_FLAGS != b.flags.0 & DATA_FLAGS {
        let (theirs, ours) = (b.flags.0 & DATA_FLAGS, a.flags.0 & DATA_FLAGS);
        return differ(
            "data flags",
            format!("{theirs:#x}"),
            format!("{ours:#x}"),
        );
    }
    Ok(())
}

/// Where a layer's data region went.
struct Moved {
    start: u64,
    end: u64,
    landed: u64,
    /// The index in the output of the layer's first fragment, and how
    /// many the layer has.
    first_fragment: u32,
    count: u32,
}

impl Moved {
    /// The new position of `len` bytes at `pos` in the layer, which must
    /// lie inside its data region.
    fn block(&self, pos: u64, len: u64) -> Result<u64> {
        if pos < self.start
            || pos.checked_add(len).is_none_or(|end| end > self.end)
        {
            return Err(Error::corrupt(format!(
                "{len} bytes of data at {pos}, outside the data region \
                 {}..{}",
                self.start, self.end
            )));
        }
        Ok(pos - self.start + self.landed)
    }
}

struct Merge {
    tree: Tree,
    entries: u64,
    /// Per path: the node and the layer that brought it.
    by_path: HashMap<PathBuf, (usize, usize)>,
}

impl Merge {
    /// Starts from the first layer's root, which the other layers' roots
    /// must match.
    fn new(first: &Image) -> Result<Merge> {
        let r = first.root()?;
        let tree = Tree::new(r.mode(), r.uid, r.gid, r.mtime());
        let mut by_path = HashMap::new();
        by_path.insert(PathBuf::from("/"), (ROOT, 0));
        Ok(Merge { tree, entries: 1, by_path })
    }

    fn layer(
        &mut self,
        layer: usize,
        image: &Image,
        path: &Path,
        layers: &[&Path],
        moved: &Moved,
    ) -> Result<()> {
        let mut hard_links: HashMap<MetaRef, usize> = HashMap::new();
        for entry in image.entries() {
            let entry = entry?;
            if let Some(&(node, owner)) = self.by_path.get(&entry.path) {
                let existing = self.tree.node(node);
                let same_dir = matches!(existing.kind, NodeKind::Directory(_))
                    && matches!(entry.inode.data, InodeData::Directory(_))
                    && existing.mode == entry.mode()
                    && existing.uid == entry.uid
                    && existing.gid == entry.gid;
                if !same_dir {
                    return Err(Error::new(
                        ErrorKind::Clash,
                        format!(
                            "{} is in both {} and {}, and they differ (only \
                             directories of the same mode and owner may be \
                             shared)",
                            entry.path.display(),
                            layers[owner].display(),
                            path.display()
                        ),
                    ));
                }
                continue;
            }
            let parent_path = entry.path.parent().unwrap_or(Path::new("/"));
            let (parent, _) = self.by_path[parent_path];
            let name = entry.path.file_name().map(|n| {
                use std::os::unix::ffi::OsStrExt;
                n.as_bytes().to_vec()
            });
            let name = name.unwrap_or_default();
            let is_dir = matches!(entry.inode.data, InodeData::Directory(_));
            let node = match hard_links.get(&entry.inode_ref) {
                Some(&node) if !is_dir => {
                    self.tree.link(parent, &name, node)?;
                    node
                }
                _ => {
                    let node = node_of(&entry, moved).map_err(|e| {
                        Error::corrupt(format!(
                            "{}: {}",
                            entry.path.display(),
                            e.message()
                        ))
                        .in_file(path)
                    })?;
                    let id = self.tree.add(parent, &name, node)?;
                    hard_links.insert(entry.inode_ref, id);
                    id
                }
            };
            self.entries += 1;
            self.by_path.insert(entry.path.clone(), (node, layer));
        }
        Ok(())
    }
}

fn node_of(entry: &Entry, moved: &Moved) -> Result<Node> {
    let kind = match &entry.inode.data {
        InodeData::Directory(_) => NodeKind::Directory(Default::default()),
        InodeData::File(f) => {
            let stored: u64 =
                f.blocks.iter().map(|b| u64::from(b.stored_len())).sum();
            let blocks_start = if stored == 0 {
                moved.landed
            } else {
                moved.block(f.blocks_start, stored)?
            };
            NodeKind::File(FileData {
                size: f.size,
                blocks_start,
                blocks: f.blocks.clone(),
                fragment: match f.fragment {
                    Some((index, _)) if index >= moved.count => {
                        return Err(Error::corrupt(format!(
                            "fragment {index} of {}",
                            moved.count
                        )))
                    }
                    Some((index, offset)) => {
                        Some((index + moved.first_fragment, offset))
                    }
                    None => None,
                },
                sparse: f.sparse,
            })
        }
        InodeData::Symlink { target, .. } => NodeKind::Symlink(target.clone()),
        InodeData::BlockDevice { rdev, .. } => NodeKind::BlockDevice(*rdev),
        InodeData::CharDevice { rdev, .. } => NodeKind::CharDevice(*rdev),
        InodeData::Fifo { .. } => NodeKind::Fifo,
        InodeData::Socket { .. } => NodeKind::Socket,
    };
    Ok(Node {
        mode: entry.mode(),
        uid: entry.uid,
        gid: entry.gid,
        mtime: entry.mtime(),
        kind,
    })
}
