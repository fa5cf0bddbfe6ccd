/*!
The mount points an image gives its services. A read-only image cannot
have systemd create them when a unit starts, so every path a unit's
settings mount on, change into or link at (`StateDirectory=`,
`BindPaths=`, ... ; `crate::systemd::unit_file` works them out) is in the
image already, and so is every path of the `mountPoints` argument, for
what no unit names (a host directory bound in by a drop-in, say).

A mount point is an empty directory owned by root, mode 755 (systemd
needs only that the directories leading to it can be searched), or an
empty file where a file is bound (the `mountPoints` argument says which:
a unit cannot, as the type of a bind source is the host's). What the
image has at that path already will do if it is of the same kind. A mount
point may not lie in the store, in a reserved path, or under a symlink
(systemd would mount on what the symlink points to, in the store), nor
hide the store (`/`, `/usr`, the store and its parents under either
name), and an extension image can add only what lies under `/usr` and
`/opt` to its base: for anything else, the base must have it. A setting
that only needs its path to exist (`WorkingDirectory=`, `ReadOnlyPaths=`,
...) may name a path in the store: the closure must hold its store path,
and nothing is made for it.
*/

use anyhow::{bail, Result};

use crate::builder::base::BaseImage;
use crate::builder::closure::Closure;
use crate::builder::placement;
use crate::builder::tree::{Content, ImagePath, Node, Tree};
use crate::builder::units::Unit;
use crate::image::survey::EntryType;
use crate::layout::layout;
use crate::nix::store_path::StorePath;
use crate::systemd::unit_file::{Kind, Mounts};

/// An entry of the `mountPoints` argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountPointArg {
    pub path: String,
    pub file: bool,
}

impl MountPointArg {
    /// Checks an entry of a full image's `mountPoints`, or of an extension
    /// image's when `extension`: `kind` is "directory" or "file".
    pub fn new(
        path: &str,
        kind: &str,
        extension: bool,
    ) -> Result<MountPointArg> {
        let entry = format!("mountPoints entry '{path}'");
        let file = match kind {
            "directory" => false,
            "file" => true,
            _ => bail!(
                "{entry} has type '{kind}': use \"directory\" or \"file\""
            ),
        };
        placement::check(&entry, path, extension)?;
        Ok(MountPointArg { path: path.to_string(), file })
    }
}

/// What the image must hold at a path, and who asks for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountPoint {
    pub path: String,
    pub needs: Needs,
    /// What the setting does there (a `mountPoints` entry is mounted on).
    pub mounts: Mounts,
    /// The unit's setting, or the `mountPoints` entry, in words.
    pub by: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Needs {
    Directory,
    File,
    /// A relative symlink with this target.
    Symlink(String),
}

/// The mount points of `units` and of the `mountPoints` argument, in that
/// order; an argument says whether a unit's bind target is a file.
pub fn needed(units: &[Unit], args: &[MountPointArg]) -> Vec<MountPoint> {
    let mut needed: Vec<MountPoint> = Vec::new();
    for unit in units {
        for point in &unit.mount_points {
            let file = args.iter().any(|a| a.file && a.path == point.path);
            let needs = match &point.kind {
                Kind::Symlink { target } => Needs::Symlink(target.clone()),
                Kind::BindTarget if file => Needs::File,
                Kind::Directory | Kind::BindTarget | Kind::Existing => {
                    Needs::Directory
                }
            };
            needed.push(MountPoint {
                path: point.path.clone(),
                needs,
                mounts: point.mounts,
                by: point.origin.to_string(),
            });
        }
    }
    for arg in args {
        needed.push(MountPoint {
            path: arg.path.clone(),
            needs: if arg.file { Needs::File } else { Needs::Directory },
            mounts: Mounts::Yes,
            by: format!("mountPoints entry '{}'", arg.path),
        });
    }
    needed
}

/// Puts the mount points into the planned tree of a full image, or of an
/// extension image of `base`; `closure` is the image's whole closure.
pub fn add(
    tree: &mut Tree,
    needed: &[MountPoint],
    base: Option<&BaseImage>,
    closure: &Closure,
) -> Result<()> {
    for point in needed {
        let path = &point.path;
        let by = &point.by;
        if point.mounts != Mounts::No && layout().hides_store(path) {
            bail!(
                "{by}: mounting on {path} would hide the Nix store the \
                 service runs from"
            );
        }
        if point.mounts == Mounts::Yes && layout().in_store(path) {
            bail!(
                "{by}: the mount point {path} is inside the Nix store, which \
                 the image holds exactly as the closure: mount somewhere else"
            );
        }
        if let Ok((store_path, _)) = StorePath::split_absolute_path(path) {
            if !closure.contains(&store_path) {
                bail!(
                    "{by} names {path}, but the image's closure does not hold \
                     {store_path}: write the path as ${{pkg}}/..., so that \
                     Nix knows the unit depends on it"
                );
            }
            continue;
        }
        if let Some(reserved) = layout().reserved_at(path) {
            bail!(
                "{by} needs {path}, which lands in {}, {}",
                reserved.path,
                reserved.why
            );
        }
        if let Some(base) = base {
            if !layout().in_extension_roots(path) {
                let has = base.entries.get(path);
                let fits = match point.needs {
                    Needs::Directory => has == Some(&EntryType::Directory),
                    Needs::File => has == Some(&EntryType::File),
                    Needs::Symlink(_) => has == Some(&EntryType::Symlink),
                };
                if !fits {
                    bail!(
                        "{by} needs {path} in the image, which an extension \
                         cannot add (systemd overlays only {} of it on its \
                         base), and the base {} does not have it: give the \
                         base mountPoints = [ \"{path}\" ]",
                        layout().extension_roots.join(" and "),
                        base.image_file_name
                    );
                }
                continue;
            }
        }
        let at = ImagePath::parse(path).expect("mount points are normalised");
        let node = match &point.needs {
            Needs::Directory => Node::Dir { mode: 0o755 },
            Needs::File => {
                Node::File { mode: 0o644, content: Content::Bytes(Vec::new()) }
            }
            Needs::Symlink(target) => Node::Symlink { target: target.clone() },
        };
        tree.provide(at, node)
            .map_err(|e| anyhow::anyhow!("{by} needs {path}: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the store is: refused as a mount point, or as a path that
    /// would hide it; a path that only needs to exist may be in it, if
    /// the closure holds its store path.
    #[test]
    fn the_store_under_both_names() {
        let closure = Closure::new(Vec::new()).unwrap();
        let refusal = |path: &str, mounts: Mounts| {
            let point = MountPoint {
                path: path.into(),
                needs: Needs::Directory,
                mounts,
                by: "unit 'app.service', line 2: S=v".into(),
            };
            add(&mut Tree::new(), &[point], None, &closure)
                .unwrap_err()
                .to_string()
        };
        for (path, mounts, words) in [
            ("/nix/store/abc-foo", Mounts::Yes, "is inside the Nix store"),
            ("/usr/nix/store/abc-foo/etc", Mounts::Yes, "inside the Nix"),
            ("/nix/var", Mounts::Yes, "is inside the Nix store"),
            ("/usr", Mounts::Yes, "would hide the Nix store"),
            ("/", Mounts::Yes, "would hide the Nix store"),
            ("/nix", Mounts::Hides, "would hide the Nix store"),
            (
                "/nix/store/00000000000000000000000000000000-x/share",
                Mounts::No,
                "the image's closure does not hold",
            ),
        ] {
            let err = refusal(path, mounts);
            assert!(err.contains(words), "{path}: {err}");
            assert!(err.starts_with("unit 'app.service', line 2: S=v"));
        }
    }
}
