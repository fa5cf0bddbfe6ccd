/*!
Every path the image layout fixes, read from `nix/layout.json`: the one
table that this builder, the reader and `nix/portable-service.nix` (through
`nix/layout.nix`) all take them from.

- The store is under `/usr/nix/store`, with `/nix` a relative symlink to
  `usr/nix` so that every `/nix/store/...` path resolves: systemd
  overlays extension images on `/usr` (and `/opt`) only, so any image can
  serve as a base, whose extensions' store paths appear beside its own.
  Images other builders made keep a real `/nix/store` (the foreign store
  directories), which the reader knows too.
- A full image keeps its units in `/etc/systemd/system`, an extension in
  `/usr/lib/systemd/system` (`/etc` is not overlaid); portabled reads
  units from all five `portabledUnitDirs`, in that order.
- `/etc/os-release`, and an extension's
  `/usr/lib/extension-release.d/extension-release.<image name>`, named
  after the image file without `.raw` as systemd up to 255 requires.
- The empty files and the mount-point directories portabled's profiles
  mount over, which a read-only image cannot create.
- The manifest, at `/usr/lib/portable-service/closure.json`.
- The reserved paths: where no user symlink may land, because it would
  hide the store, put units in the image past their checks, or replace
  the os-release portabled reads.
*/

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::Deserialize;

/// The table, as `nix/layout.json` has it. Paths are absolute inside the
/// image.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Layout {
    pub store_dir: String,
    pub store_link: StoreLink,
    /// Where images other builders made keep their store.
    pub foreign_store_dirs: Vec<String>,
    /// A full image's units.
    pub unit_dir: String,
    /// An extension image's units.
    pub extension_unit_dir: String,
    /// Where portabled reads units inside an image, in its order.
    pub portabled_unit_dirs: Vec<String>,
    pub os_release: String,
    /// The os-release portabled reads when `/etc/os-release` is missing.
    pub usr_os_release: String,
    pub extension_release_dir: String,
    /// What systemd overlays of an extension image on its base.
    pub extension_roots: Vec<String>,
    pub manifest: String,
    pub empty_files: Vec<String>,
    /// Directory and mode, in octal.
    pub mount_points: BTreeMap<String, String>,
    pub reserved: Vec<Reserved>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreLink {
    pub path: String,
    pub target: String,
}

/// A path no user symlink may lie at or under, and why, in words that
/// follow "lands in <path>, ".
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reserved {
    pub path: String,
    pub why: String,
}

static LAYOUT: LazyLock<Layout> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../nix/layout.json"))
        .expect("nix/layout.json matches layout::Layout")
});

pub fn layout() -> &'static Layout {
    &LAYOUT
}

impl Layout {
    /// An extension's release file, named after its image file.
    pub fn extension_release(&self, image_file_name: &str) -> String {
        let stem =
            image_file_name.strip_suffix(".raw").unwrap_or(image_file_name);
        format!("{}/extension-release.{stem}", self.extension_release_dir)
    }

    /// Every store directory the reader looks for, this builder's first.
    pub fn store_dirs(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.store_dir.as_str())
            .chain(self.foreign_store_dirs.iter().map(String::as_str))
    }

    /// Whether `path` is in the image's store under either name a unit may
    /// use: at or under the link (`/nix`) or where it leads (`/usr/nix`).
    pub fn in_store(&self, path: &str) -> bool {
        let target = format!("/{}", self.store_link.target);
        is_at_or_under(path, &self.store_link.path)
            || is_at_or_under(path, &target)
    }

    /// Whether mounting on `path` would hide the store: `path` is `/`, or
    /// a store directory or one of its parents, under either name.
    pub fn hides_store(&self, path: &str) -> bool {
        path == "/" || self.store_dirs().any(|dir| is_at_or_under(dir, path))
    }

    /// The reserved path that `path` lies at or under, if any.
    pub fn reserved_at(&self, path: &str) -> Option<&Reserved> {
        self.reserved.iter().find(|r| is_at_or_under(path, &r.path))
    }

    /// Whether an extension image may hold `path`: whether it lies at or
    /// under one of the roots systemd overlays on the base.
    pub fn in_extension_roots(&self, path: &str) -> bool {
        self.extension_roots.iter().any(|root| is_at_or_under(path, root))
    }

    /// The mount points with their modes.
    pub fn mount_points(&self) -> impl Iterator<Item = (&str, u32)> {
        self.mount_points.iter().map(|(path, mode)| {
            let mode = u32::from_str_radix(mode, 8)
                .expect("nix/layout.json gives modes in octal");
            (path.as_str(), mode)
        })
    }
}

/// Whether the normalised absolute `path` is `dir` or lies under it.
pub fn is_at_or_under(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_reads() {
        let layout = layout();
        assert!(layout.store_dir.starts_with('/'));
        assert!(layout.portabled_unit_dirs.contains(&layout.unit_dir));
        assert!(layout
            .portabled_unit_dirs
            .contains(&layout.extension_unit_dir));
        assert_eq!(
            layout.mount_points().find(|(p, _)| *p == "/tmp"),
            Some(("/tmp", 0o1777))
        );
        assert_eq!(
            layout.extension_release("app_2.0.raw"),
            "/usr/lib/extension-release.d/extension-release.app_2.0"
        );
    }

    #[test]
    fn the_store_under_both_names() {
        let layout = layout();
        for inside in ["/nix", "/nix/store/abc-foo/etc", "/usr/nix/store/x"] {
            assert!(layout.in_store(inside), "{inside}");
        }
        assert!(!layout.in_store("/usr/share"));
        for hiding in ["/", "/usr", "/usr/nix", "/usr/nix/store", "/nix"] {
            assert!(layout.hides_store(hiding), "{hiding}");
        }
        assert!(!layout.hides_store("/usr/share"));
        assert!(!layout.hides_store("/nix/store/abc-foo"));
    }
}
