/*!
The validated build settings, derived from `.attrs.json`.

Every check on the user's arguments lives here or in the rule modules it
calls, with the same rules `nix/portable-service.nix` applies at evaluation
time: the builder can be run without the Nix function, and some values
(the units inside directories) are only known when it runs.
*/

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::builder::attrs::{Attrs, BaseArg};
use crate::builder::closure::Closure;
use crate::builder::format::ImageFormat;
use crate::builder::mksquashfs::Settings;
use crate::builder::mount_points::MountPointArg;
use crate::builder::symlink::Symlink;
use crate::builder::units::UnitSource;
use crate::manifest::meta::PackageMeta;
use crate::nix::store_path::StorePath;
use crate::systemd::image_name;

#[derive(Debug)]
pub struct Config {
    pub pname: String,
    /// `<pname>_<version>.raw`.
    pub file_name: String,
    pub description: Option<String>,
    pub homepage: Option<String>,
    pub units: Vec<UnitSource>,
    pub symlinks: Vec<Symlink>,
    pub mount_points: Vec<MountPointArg>,
    /// How the squashfs is written.
    pub squashfs: Settings,
    /// The output directory; the image is `out/file_name`.
    pub out: PathBuf,
    pub closure: Closure,
    /// The store paths the arguments name, sorted.
    pub roots: Vec<StorePath>,
    /// What nixpkgs' meta says of the closure's store paths.
    pub package_meta: BTreeMap<StorePath, PackageMeta>,
    /// Set for an extension image.
    pub base: Option<BaseArg>,
    /// For the final layer of a layered image: the store paths the other
    /// layers hold, which it leaves out.
    pub layered: BTreeSet<StorePath>,
    /// The file to write, when it is not the image (a final layer).
    pub output_file: Option<String>,
    pub format: ImageFormat,
}

impl Config {
    pub fn from_attrs(attrs: Attrs) -> Result<Config> {
        let file_name = image_name::file_name(&attrs.pname, &attrs.version)?;
        let description = text_field("description", attrs.description)?;
        let homepage = text_field("homepage", attrs.homepage)?;
        let squashfs = Settings::from_attrs(&attrs.squashfs)?;
        let format = ImageFormat::from_attrs(&attrs.format)?;
        let closure = Closure::new(attrs.closure)?;
        let mut roots = attrs.roots;
        roots.sort();
        roots.dedup();
        if let Some(root) = roots.iter().find(|r| !closure.contains(r)) {
            bail!("the root {root} is not in the closure");
        }
        // The walk reaches build inputs too: only what the image holds
        // (or leaves to its base) is kept.
        let package_meta = attrs
            .package_meta
            .into_iter()
            .flat_map(|m| {
                m.paths.into_iter().map(move |p| (p, m.meta.clone()))
            })
            .filter(|(path, _)| closure.contains(path))
            .collect();

        let mut units = Vec::new();
        for unit in attrs.units {
            let path =
                StorePath::from_absolute_path(&unit.path.to_string_lossy())
                    .with_context(|| format!("unit '{}'", unit.name))?;
            if !closure.contains(&path) {
                bail!("unit '{}' at {path} is not in the closure", unit.name);
            }
            units.push(UnitSource {
                name: unit.name,
                path,
                explicit_name: unit.explicit_name,
            });
        }
        if units.is_empty() {
            bail!("units is empty: an image needs at least one unit");
        }

        if let Some(base) = &attrs.base {
            if base.pname == attrs.pname {
                bail!(
                    "this extension's pname '{}' is its base's too: an \
                     extension needs a prefix of its own",
                    attrs.pname
                );
            }
        }

        let mut symlinks = Vec::new();
        for s in attrs.symlinks {
            let symlink =
                Symlink::new(&s.object, &s.symlink, attrs.base.is_some())?;
            if !closure.contains(&symlink.object_store_path) {
                bail!(
                    "symlink '{}' points to '{}', whose store path is not in \
                     the closure",
                    s.symlink,
                    s.object
                );
            }
            symlinks.push(symlink);
        }

        let mount_points = attrs
            .mount_points
            .iter()
            .map(|m| {
                MountPointArg::new(&m.path, &m.kind, attrs.base.is_some())
            })
            .collect::<Result<_>>()?;

        let out = attrs.outputs.out()?.to_path_buf();
        Ok(Config {
            pname: attrs.pname,
            file_name,
            description,
            homepage,
            units,
            symlinks,
            mount_points,
            squashfs,
            out,
            closure,
            roots,
            package_meta,
            base: attrs.base,
            layered: attrs.layered.into_iter().map(|i| i.path).collect(),
            output_file: attrs.output_file,
            format,
        })
    }

    /// What the build writes: the image, or the final layer's file.
    pub fn output_path(&self) -> PathBuf {
        self.out.join(self.output_file.as_ref().unwrap_or(&self.file_name))
    }
}

/// `description` and `homepage` go into os-release, one line each; an
/// empty value is left out. Control characters are ASCII's, as POSIX
/// regular expressions' `[:cntrl:]` in `nix/rules.nix` sees them.
pub fn text_field(
    field: &str,
    value: Option<String>,
) -> Result<Option<String>> {
    match value {
        Some(v) if v.chars().any(|c| c.is_ascii_control()) => bail!(
            "{field} {} has a newline or control character, which an \
             os-release value cannot hold",
            serde_json::Value::from(v)
        ),
        Some(v) if v.is_empty() => Ok(None),
        v => Ok(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_fields() {
        assert_eq!(text_field("description", None).unwrap(), None);
        assert_eq!(
            text_field("description", Some(String::new())).unwrap(),
            None
        );
        assert_eq!(
            text_field("homepage", Some("https://x".into())).unwrap(),
            Some("https://x".into())
        );
        for bad in ["a\nb", "a\tb", "a\u{7f}"] {
            let err = text_field("description", Some(bad.into())).unwrap_err();
            assert!(err.to_string().contains("control character"), "{err}");
        }
    }
}
