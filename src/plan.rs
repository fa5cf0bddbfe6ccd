/*!
Plans the image: a pure function from the settings and the units to the
tree of the image's root file system.

The layout is what the portable service specification and portabled ask
for, as nixpkgs' portableService lays it out:

- the closure under `/nix/store`;
- the units in `/etc/systemd/system`;
- `/etc/os-release`, and empty `/etc/resolv.conf` and `/etc/machine-id`,
  which portabled's profiles bind-mount over and a read-only image cannot
  create;
- the directories it mounts over: `/proc /sys /dev /run /tmp /var/tmp`,
  and `/var/lib /var/cache /var/log` for the service's state;
- the user's symlinks;
- `/usr/lib/portable-service/closure.json`, the closure's description
  (store paths, NAR hashes and sizes, references) for `inspect` and
  `verify`.
*/

use anyhow::{Context, Result};

use crate::config::Config;
use crate::os_release::OsRelease;
use crate::tree::{Content, ImagePath, Node, Tree};
use crate::units::Unit;

pub const STORE_DIR: &str = "nix/store";
pub const UNIT_DIR: &str = "etc/systemd/system";
pub const CLOSURE_FILE: &str = "usr/lib/portable-service/closure.json";

const DIRS: [(&str, u32); 9] = [
    ("proc", 0o755),
    ("sys", 0o755),
    ("dev", 0o755),
    ("run", 0o755),
    ("tmp", 0o1777),
    ("var/tmp", 0o1777),
    ("var/lib", 0o755),
    ("var/cache", 0o755),
    ("var/log", 0o755),
];

const EMPTY_FILES: [&str; 2] = ["etc/resolv.conf", "etc/machine-id"];

pub fn plan(config: &Config, units: &[Unit]) -> Result<Tree> {
    let mut tree = Tree::new();
    let store_dir = path(STORE_DIR);
    for store_path in config.closure.paths() {
        let node = Node::StorePath(store_path.clone());
        tree.insert(store_dir.join(store_path.base_name()), node)?;
    }

    let os_release = OsRelease {
        pname: &config.pname,
        description: config.description.as_deref(),
        homepage: config.homepage.as_deref(),
    };
    let content = Content::Bytes(os_release.render().into_bytes());
    tree.insert(path("etc/os-release"), Node::File { mode: 0o644, content })?;
    for file in EMPTY_FILES {
        let content = Content::Bytes(Vec::new());
        tree.insert(path(file), Node::File { mode: 0o644, content })?;
    }

    let unit_dir = path(UNIT_DIR);
    tree.insert(unit_dir.clone(), Node::Dir { mode: 0o755 })?;
    for unit in units {
        let content = Content::HostFile(unit.source.clone());
        let node = Node::File { mode: 0o644, content };
        tree.insert(unit_dir.join(&unit.name), node)
            .with_context(|| format!("unit '{}'", unit.name))?;
    }

    let content = Content::Bytes(config.closure.to_json().into_bytes());
    tree.insert(path(CLOSURE_FILE), Node::File { mode: 0o644, content })?;

    for (dir, mode) in DIRS {
        tree.insert(path(dir), Node::Dir { mode })?;
    }

    for symlink in &config.symlinks {
        let node = Node::Symlink { target: symlink.object.clone() };
        tree.insert(symlink.link.clone(), node).with_context(|| {
            format!("symlink '{}' -> '{}'", symlink.link, symlink.object)
        })?;
    }
    Ok(tree)
}

fn path(relative: &str) -> ImagePath {
    ImagePath::parse(relative).expect("the layout's paths are normalised")
}
