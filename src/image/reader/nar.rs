/*!
The NAR of a directory, file or symlink inside an image, written from the
image's nodes as they come: depth-first with sorted names, the NAR's own
order, so a subtree is the run of nodes that follow its root.

Decompression is what costs, so it is spread over the cores three ways:
`nar_digests` hashes several store paths at once; backhand decompresses
the blocks of a large file in parallel; and the files of at most one block
(one block, or a tail in a fragment), which give backhand nothing to split,
are read ahead together in runs of up to `READ_AHEAD_BYTES` and handed to
the writer in order. Memory stays bounded: a run, plus the few blocks that
backhand holds for each file it reads.
*/

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use backhand::{InnerNode, SquashfsFileReader};
use rayon::prelude::*;

use super::{describe, entry, file_size, Image};
use crate::nix::nar::writer::{self, Node as NarNode};
use crate::nix::nar::{NarDigest, NarHasher};

/// The most bytes of small files read ahead at once, per NAR being written.
const READ_AHEAD_BYTES: u64 = 16 << 20;

impl Image {
    /// Writes the entry at `path` and everything below it as `node`.
    pub fn write_nar(
        &self,
        path: &Path,
        node: NarNode<impl Write>,
    ) -> Result<()> {
        let start = self.index(path)?;
        let nodes = &self.fs.root.nodes;
        let root = &nodes[start].fullpath;
        let end = start
            + nodes[start..]
                .iter()
                .take_while(|n| n.fullpath.starts_with(root))
                .count();
        let mut walk = Walk { image: self, end, ahead: VecDeque::new() };
        walk.write(start, node)?;
        Ok(())
    }

    /// The NAR digest of the entry at `path`, as Nix would compute it for
    /// a store path holding the same tree.
    pub fn nar_digest(&self, path: &Path) -> Result<NarDigest> {
        let mut hasher = NarHasher::new();
        let root = writer::open(&mut hasher).expect("hashing cannot fail");
        self.write_nar(path, root)?;
        Ok(hasher.finish())
    }

    /// `nar_digest` for each of `paths`, computed in parallel; the results
    /// come in the order of `paths`.
    pub fn nar_digests<P>(&self, paths: &[P]) -> Vec<Result<NarDigest>>
    where
        P: AsRef<Path> + Sync,
    {
        paths.par_iter().map(|p| self.nar_digest(p.as_ref())).collect()
    }

    fn small_file(&self, index: usize) -> Option<&SquashfsFileReader> {
        match &self.fs.root.nodes[index].inner {
            InnerNode::File(file)
                if file_size(file)
                    <= u64::from(self.superblock.block_size) =>
            {
                Some(file)
            }
            _ => None,
        }
    }

    fn read_small_file(&self, index: usize) -> Result<Vec<u8>> {
        let file = self.small_file(index).expect("a small file");
        let mut contents = Vec::with_capacity(file_size(file) as usize);
        self.fs.file(file).reader().read_to_end(&mut contents).with_context(
            || {
                format!(
                    "reading {} in {}",
                    self.fs.root.nodes[index].fullpath.display(),
                    self.path.display()
                )
            },
        )?;
        Ok(contents)
    }
}

/// Writing one NAR: the subtree ends before node `end`, and `ahead` holds
/// the small files read ahead, by node index, in order.
struct Walk<'a> {
    image: &'a Image,
    end: usize,
    ahead: VecDeque<(usize, Vec<u8>)>,
}

impl Walk<'_> {
    /// Writes the node at `index` and its subtree; returns the index after
    /// the subtree.
    fn write(
        &mut self,
        index: usize,
        nar: NarNode<impl Write>,
    ) -> Result<usize> {
        let image = self.image;
        let node = &image.fs.root.nodes[index];
        let adding = || {
            format!(
                "adding {} in {} to the NAR",
                node.fullpath.display(),
                image.path.display()
            )
        };
        match &node.inner {
            InnerNode::File(file) => {
                // Nix looks only at the owner's execute bit.
                let executable = node.header.permissions & 0o100 != 0;
                let size = file_size(file);
                if image.small_file(index).is_some() {
                    let contents = self.small_file(index)?;
                    nar.file(executable, size, &contents[..])
                } else {
                    nar.file(executable, size, image.fs.file(file).reader())
                }
                .with_context(adding)?;
                Ok(index + 1)
            }
            InnerNode::Symlink(link) => {
                nar.symlink(link.link.as_os_str().as_bytes())
                    .with_context(adding)?;
                Ok(index + 1)
            }
            InnerNode::Dir(_) => {
                let mut dir = nar.directory().with_context(adding)?;
                let mut next = index + 1;
                while next < self.end
                    && image.fs.root.nodes[next].fullpath.parent()
                        == Some(&node.fullpath)
                {
                    let child = &image.fs.root.nodes[next].fullpath;
                    let name = child.file_name().expect("a child has a name");
                    let entry =
                        dir.entry(name.as_bytes()).with_context(adding)?;
                    next = self.write(next, entry)?;
                }
                dir.close().with_context(adding)?;
                Ok(next)
            }
            _ => bail!(
                "{} in {} is {}, which a NAR cannot hold",
                node.fullpath.display(),
                image.path.display(),
                describe(&entry(node).kind)
            ),
        }
    }

    /// The contents of the small file at `index`. When they are not read
    /// yet, reads them together with the small files that follow.
    fn small_file(&mut self, index: usize) -> Result<Vec<u8>> {
        if self.ahead.is_empty() {
            let mut run = Vec::new();
            let mut bytes = 0;
            for i in index..self.end {
                let Some(file) = self.image.small_file(i) else { continue };
                bytes += file_size(file);
                if bytes > READ_AHEAD_BYTES && !run.is_empty() {
                    break;
                }
                run.push(i);
            }
            let contents: Vec<Vec<u8>> = run
                .par_iter()
                .map(|&i| self.image.read_small_file(i))
                .collect::<Result<_>>()?;
            self.ahead = run.into_iter().zip(contents).collect();
        }
        let (read, contents) = self.ahead.pop_front().expect("read ahead");
        assert_eq!(read, index, "small files are written in order");
        Ok(contents)
    }
}
