/*!
Plans the image: a pure function from the settings, the units and the base
(for an extension image) to the tree of the image's root file system.

A full image is laid out as the portable service specification and
portabled ask, as nixpkgs' portableService lays it out:

- the closure under `/usr/nix/store`, and `/nix` a relative symlink to
  `usr/nix`, so that every `/nix/store/...` path resolves. The store lives
  under `/usr` because systemd overlays extension images on `/usr` (and
  `/opt`) only: this way any image can serve as the base of an extension
  image, whose store paths then appear beside the base's;
- the units in `/etc/systemd/system`;
- `/etc/os-release`, and empty `/etc/resolv.conf` and `/etc/machine-id`,
  which portabled's profiles bind-mount over and a read-only image cannot
  create;
- the directories it mounts over: `/proc /sys /dev /run /tmp /var/tmp`,
  and `/var/lib /var/cache /var/log` for the service's state;
- the user's symlinks;
- the manifest (see `crate::manifest`) for `inspect`, `verify` and
  extensions.

An extension image holds only what systemd overlays on its base's `/usr`:
the store paths of its closure that the base lacks, under
`/usr/nix/store`; its units in `/usr/lib/systemd/system`; its release file,
`/usr/lib/extension-release.d/extension-release.<pname>_<version>` (up to
systemd 255 the name must be the image's file name without `.raw`); the
manifest; and the user's symlinks, which must lie under `/usr` or `/opt`.
*/

use anyhow::{Context, Result};

use crate::builder::base::BaseImage;
use crate::builder::config::Config;
use crate::builder::mount_points;
use crate::builder::tree::{Content, ImagePath, Node, Tree};
use crate::builder::units::Unit;
use crate::layout::layout;
use crate::manifest::{self, Manifest, ManifestBase};
use crate::systemd::os_release::Release;

pub fn plan(
    config: &Config,
    units: &[Unit],
    base: Option<&BaseImage>,
) -> Result<Tree> {
    let layout = layout();
    let mut tree = Tree::new();
    let manifest = manifest_for(config, base);
    let store_dir = path(&layout.store_dir);
    for info in &manifest.paths {
        let node = Node::StorePath(info.path.clone());
        tree.insert(store_dir.join(info.path.base_name()), node)?;
    }

    let unit_dir = match base {
        None => {
            full_image_files(&mut tree, config, &manifest)?;
            path(&layout.unit_dir)
        }
        Some(base) => {
            let release = Release {
                pname: &config.pname,
                description: config.description.as_deref(),
                homepage: config.homepage.as_deref(),
                sysext_level: &base.sysext_level,
            };
            let name = layout.extension_release(&config.file_name);
            tree.insert(path(&name), file(release.extension_release()))?;
            path(&layout.extension_unit_dir)
        }
    };
    tree.insert(unit_dir.clone(), Node::Dir { mode: 0o755 })?;
    for unit in units {
        let content = Content::HostFile(unit.source.clone());
        let node = Node::File { mode: 0o644, content };
        tree.insert(unit_dir.join(&unit.name), node)
            .with_context(|| format!("unit '{}'", unit.name))?;
    }

    tree.insert(path(&layout.manifest), file(manifest.to_json()))?;

    for symlink in &config.symlinks {
        let node = Node::Symlink { target: symlink.object.clone() };
        tree.insert(symlink.link.clone(), node)
            .with_context(|| format!("symlink '{}'", symlink.link))?;
    }
    let needed = mount_points::needed(units, &config.mount_points);
    mount_points::add(&mut tree, &needed, base, &config.closure)?;
    Ok(tree)
}

/// What the image holds: the whole closure, or for an extension the part
/// of it its base lacks; its roots, and the meta of its whole closure.
fn manifest_for(config: &Config, base: Option<&BaseImage>) -> Manifest {
    let in_base = |p| base.is_some_and(|b| b.paths.contains(p));
    Manifest {
        closure_version: manifest::VERSION,
        paths: config
            .closure
            .infos()
            .filter(|i| !in_base(&i.path))
            .cloned()
            .collect(),
        roots: Some(config.roots.clone()),
        meta: config.package_meta.clone(),
        base: base.map(|b| ManifestBase {
            image_file_name: b.image_file_name.clone(),
            sysext_level: b.sysext_level.clone(),
            paths: config
                .closure
                .paths()
                .filter(|p| in_base(p))
                .cloned()
                .collect(),
        }),
    }
}

/// What a full image has besides its store, units and symlinks.
fn full_image_files(
    tree: &mut Tree,
    config: &Config,
    manifest: &Manifest,
) -> Result<()> {
    let layout = layout();
    let link = &layout.store_link;
    tree.insert(
        path(&link.path),
        Node::Symlink { target: link.target.clone() },
    )?;
    let release = Release {
        pname: &config.pname,
        description: config.description.as_deref(),
        homepage: config.homepage.as_deref(),
        sysext_level: &manifest.sysext_level(),
    };
    tree.insert(path(&layout.os_release), file(release.os_release()))?;
    for empty in &layout.empty_files {
        tree.insert(path(empty), file(String::new()))?;
    }
    for (dir, mode) in layout.mount_points() {
        tree.insert(path(dir), Node::Dir { mode })?;
    }
    Ok(())
}

fn file(text: String) -> Node {
    Node::File { mode: 0o644, content: Content::Bytes(text.into_bytes()) }
}

fn path(relative: &str) -> ImagePath {
    ImagePath::parse(relative).expect("the layout's paths are normalised")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::attrs::Attrs;

    const BASH: &str = "/nix/store/4nfb4995bpj54nsc3abjm3z60f0nfwgf-bash";
    const UNIT: &str =
        "/nix/store/5nfb4995bpj54nsc3abjm3z60f0nfwgf-demo.service";

    fn config(symlinks: serde_json::Value) -> Config {
        let attrs: Attrs = serde_json::from_value(serde_json::json!({
            "attrsVersion": 3,
            "pname": "demo",
            "version": "1.0",
            "units": [{ "name": "demo.service", "path": UNIT, "explicitName": false }],
            "symlinks": symlinks,
            "mountPoints": [],
            "description": null,
            "homepage": null,
            "squashCompression": "xz",
            "squashBlockSize": "1M",
            "format": "squashfs",
            "hostSystem": "x86_64-linux",
            "mksquashfs": "/bin/mksquashfs",
            "closure": [
                { "path": BASH, "narHash": "", "narSize": 1, "references": [] },
                { "path": UNIT, "narHash": "", "narSize": 1, "references": [BASH] },
            ],
            "roots": [UNIT],
            "packageMeta": [],
            "outputs": { "out": "/nix/store/6nfb4995bpj54nsc3abjm3z60f0nfwgf-out" },
        }))
        .unwrap();
        Config::from_attrs(attrs).unwrap()
    }

    fn units() -> Vec<Unit> {
        vec![Unit {
            name: "demo.service".into(),
            source: UNIT.into(),
            mount_points: vec![],
            warnings: vec![],
        }]
    }

    #[test]
    fn lays_out_the_image() {
        let symlinks = serde_json::json!([
            { "object": format!("{BASH}/bin/bash"), "symlink": "/bin/sh" }
        ]);
        let tree = plan(&config(symlinks), &units(), None).unwrap();
        let listing: Vec<String> = tree
            .iter()
            .map(|(path, node)| match node {
                Node::Dir { mode } => format!("{path} dir {mode:o}"),
                Node::File { mode, .. } => format!("{path} file {mode:o}"),
                Node::Symlink { target } => format!("{path} -> {target}"),
                Node::StorePath(p) => format!("{path} store {}", p.name()),
            })
            .collect();
        assert_eq!(
            listing,
            [
                "/bin dir 755".to_string(),
                format!("/bin/sh -> {BASH}/bin/bash"),
                "/dev dir 755".into(),
                "/etc dir 755".into(),
                "/etc/machine-id file 644".into(),
                "/etc/os-release file 644".into(),
                "/etc/resolv.conf file 644".into(),
                "/etc/systemd dir 755".into(),
                "/etc/systemd/system dir 755".into(),
                "/etc/systemd/system/demo.service file 644".into(),
                "/nix -> usr/nix".into(),
                "/proc dir 755".into(),
                "/run dir 755".into(),
                "/sys dir 755".into(),
                "/tmp dir 1777".into(),
                "/usr dir 755".into(),
                "/usr/lib dir 755".into(),
                "/usr/lib/portable-service dir 755".into(),
                "/usr/lib/portable-service/closure.json file 644".into(),
                "/usr/nix dir 755".into(),
                "/usr/nix/store dir 755".into(),
                "/usr/nix/store/4nfb4995bpj54nsc3abjm3z60f0nfwgf-bash store \
                 bash"
                    .into(),
                "/usr/nix/store/5nfb4995bpj54nsc3abjm3z60f0nfwgf-demo.service \
                 store demo.service"
                    .into(),
                "/var dir 755".into(),
                "/var/cache dir 755".into(),
                "/var/lib dir 755".into(),
                "/var/log dir 755".into(),
                "/var/tmp dir 1777".into(),
            ]
        );
        let unit = tree.get(&path("etc/systemd/system/demo.service"));
        assert_eq!(
            unit,
            Some(&Node::File {
                mode: 0o644,
                content: Content::HostFile(UNIT.into())
            })
        );
    }

    #[test]
    fn symlinks_may_not_collide() {
        for (links, message) in [
            (
                vec!["/etc/os-release"],
                "symlink '/etc/os-release': '/etc/os-release' is \
                 already in the image, as a file",
            ),
            (
                vec!["/var/lib"],
                "symlink '/var/lib': '/var/lib' is already in the \
                 image, as a directory",
            ),
            (
                vec!["/usr/lib/portable-service/closure.json/x"],
                "'/usr/lib/portable-service/closure.json/x' would lie inside \
                 '/usr/lib/portable-service/closure.json', which is a file",
            ),
            (
                vec!["/bin", "/bin/sh"],
                "symlink '/bin/sh': '/bin/sh' would lie inside \
                 '/bin', which is a symlink to '{BASH}'",
            ),
            (
                vec!["/opt/x", "/opt/x"],
                "'/opt/x' is already in the image, as a symlink",
            ),
        ] {
            let symlinks: Vec<_> = links
                .iter()
                .map(|l| serde_json::json!({ "object": BASH, "symlink": l }))
                .collect();
            let err =
                plan(&config(symlinks.into()), &units(), None).unwrap_err();
            let message = message.replace("{BASH}", BASH);
            assert!(format!("{err:#}").contains(&message), "{err:#}");
        }
    }
}
