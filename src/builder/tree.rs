/*!
The image's file tree as a plain value: what goes where, with which mode,
before anything is read or written.

Paths are kept as lists of components, so the tree's order is a depth-first
walk with the names of each directory sorted bytewise, and every parent
comes before its children: the order in which the archive is written.
Inserting refuses a path that is already taken or that would lie inside a
file or symlink, which is how symlinks that collide with the image's own
files are caught.
*/

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::nix::store_path::StorePath;

/// A path inside the image, relative to its root.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImagePath(Vec<String>);

impl ImagePath {
    /// Parses `/a/b` or `a/b`. Every component must be a plain name: no
    /// empty ones (`//`, a trailing `/`), no `.`, no `..`.
    pub fn parse(path: &str) -> Result<ImagePath> {
        let relative = path.strip_prefix('/').unwrap_or(path);
        let components: Vec<String> =
            relative.split('/').map(str::to_string).collect();
        if relative.is_empty()
            || components.iter().any(|c| c.is_empty() || c == "." || c == "..")
        {
            bail!(
                "'{path}' is not a normalised path: no empty, '.' or '..' \
                 components, no trailing '/'"
            );
        }
        Ok(ImagePath(components))
    }

    pub fn join(&self, name: &str) -> ImagePath {
        let mut components = self.0.clone();
        components.push(name.to_string());
        ImagePath(components)
    }

    pub fn components(&self) -> &[String] {
        &self.0
    }

    /// The path without its leading `/`, as archives name entries.
    pub fn relative(&self) -> String {
        self.0.join("/")
    }
}

impl fmt::Display for ImagePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.relative())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    Dir {
        mode: u32,
    },
    File {
        mode: u32,
        content: Content,
    },
    Symlink {
        target: String,
    },
    /// A whole store path, copied from the host's store as it is when the
    /// image is written.
    StorePath(StorePath),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    Bytes(Vec<u8>),
    /// A host file, read when the image is written.
    HostFile(PathBuf),
}

impl Node {
    fn noun(&self) -> String {
        match self {
            Node::Dir { .. } => "a directory".to_string(),
            Node::File { .. } => "a file".to_string(),
            Node::Symlink { target } => format!("a symlink to '{target}'"),
            Node::StorePath(p) => format!("the store path {p}"),
        }
    }
}

/// Mode of the directories `insert` creates on the way to a path.
pub const PARENT_DIR_MODE: u32 = 0o755;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tree {
    nodes: BTreeMap<ImagePath, Node>,
}

impl Tree {
    pub fn new() -> Tree {
        Tree::default()
    }

    /// Adds `node` at `path`, creating missing parent directories.
    pub fn insert(&mut self, path: ImagePath, node: Node) -> Result<()> {
        for depth in 1..path.0.len() {
            let parent = ImagePath(path.0[..depth].to_vec());
            match self.nodes.get(&parent) {
                None => {
                    self.nodes
                        .insert(parent, Node::Dir { mode: PARENT_DIR_MODE });
                }
                Some(Node::Dir { .. }) => {}
                Some(other) => bail!(
                    "'{path}' would lie inside '{parent}', which is {}",
                    other.noun()
                ),
            }
        }
        if let Some(old) = self.nodes.get(&path) {
            bail!("'{path}' is already in the image, as {}", old.noun());
        }
        self.nodes.insert(path, node);
        Ok(())
    }

    /// Makes sure `node`, a directory, an empty file or a symlink (what a
    /// mount point needs), is at `path`: as `insert`, but what is there
    /// already will do when it is of the same kind (a symlink: to the same
    /// target).
    pub fn provide(&mut self, path: ImagePath, node: Node) -> Result<()> {
        match (self.nodes.get(&path), &node) {
            (Some(Node::Dir { .. }), Node::Dir { .. })
            | (Some(Node::File { .. }), Node::File { .. }) => Ok(()),
            (
                Some(Node::Symlink { target: a }),
                Node::Symlink { target: b },
            ) if a == b => Ok(()),
            _ => self.insert(path, node),
        }
    }

    /// Takes out the store paths of `paths`, which other layers hold.
    pub fn remove_store_paths(&mut self, paths: &BTreeSet<StorePath>) {
        self.nodes.retain(
            |_, node| !matches!(node, Node::StorePath(p) if paths.contains(p)),
        );
    }

    pub fn get(&self, path: &ImagePath) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// Every node, parents first, each directory's names sorted.
    pub fn iter(&self) -> impl Iterator<Item = (&ImagePath, &Node)> {
        self.nodes.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(path: &str) -> ImagePath {
        ImagePath::parse(path).unwrap()
    }

    #[test]
    fn parses_only_normalised_paths() {
        assert_eq!(p("/etc/ssl").relative(), "etc/ssl");
        assert_eq!(p("/etc/ssl").to_string(), "/etc/ssl");
        for bad in ["", "/", "//etc", "/etc/", "/etc/./x", "/etc/../x", ".."] {
            let err = ImagePath::parse(bad).unwrap_err().to_string();
            assert!(err.contains("not a normalised path"), "{bad}: {err}");
        }
    }

    #[test]
    fn orders_depth_first_with_sorted_names() {
        let mut tree = Tree::new();
        for path in ["/foo-bar", "/foo/b", "/foo/a/x", "/a"] {
            let node = Node::Symlink { target: "/t".into() };
            tree.insert(p(path), node).unwrap();
        }
        let order: Vec<String> =
            tree.iter().map(|(path, _)| path.to_string()).collect();
        assert_eq!(
            order,
            ["/a", "/foo", "/foo/a", "/foo/a/x", "/foo/b", "/foo-bar"]
        );
        assert_eq!(tree.get(&p("/foo")), Some(&Node::Dir { mode: 0o755 }));
    }

    #[test]
    fn provides_what_may_be_there() {
        let mut tree = Tree::new();
        let dir = Node::Dir { mode: 0o755 };
        let file = Node::File { mode: 0o644, content: Content::Bytes(vec![]) };
        tree.insert(p("/var/lib"), dir.clone()).unwrap();
        tree.provide(p("/var/lib"), dir.clone()).unwrap();
        tree.provide(p("/var/lib/app"), dir.clone()).unwrap();
        tree.provide(p("/etc/hostname"), file.clone()).unwrap();
        tree.provide(p("/etc/hostname"), file.clone()).unwrap();
        let err = tree.provide(p("/var/lib"), file).unwrap_err();
        assert_eq!(
            err.to_string(),
            "'/var/lib' is already in the image, as a directory"
        );
        let link = Node::Symlink { target: "/nix/store/x".into() };
        tree.insert(p("/srv"), link).unwrap();
        let err = tree.provide(p("/srv/data"), dir).unwrap_err();
        assert_eq!(
            err.to_string(),
            "'/srv/data' would lie inside '/srv', which is a symlink to \
             '/nix/store/x'"
        );
    }

    #[test]
    fn refuses_collisions() {
        let mut tree = Tree::new();
        let file = Node::File { mode: 0o644, content: Content::Bytes(vec![]) };
        tree.insert(p("/etc/os-release"), file.clone()).unwrap();
        let link = Node::Symlink { target: "/nix/store/x".into() };
        let err = tree.insert(p("/etc/os-release"), link.clone()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "'/etc/os-release' is already in the image, as a file"
        );
        let err = tree.insert(p("/etc"), link.clone()).unwrap_err();
        assert!(err.to_string().contains("as a directory"), "{err}");
        tree.insert(p("/bin"), link.clone()).unwrap();
        let err = tree.insert(p("/bin/sh"), file).unwrap_err();
        assert_eq!(
            err.to_string(),
            "'/bin/sh' would lie inside '/bin', which is a symlink to \
             '/nix/store/x'"
        );
    }
}
