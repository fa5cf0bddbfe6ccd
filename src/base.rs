/*!
The base of an extension image: what the extension's build needs to know
of it, read from the base image itself.

A base is an image this builder made: it records the store paths it holds
(`/usr/lib/portable-service/closure.json`) and its `SYSEXT_LEVEL`
(`/etc/os-release`). The extension leaves those paths out and takes that
level, so systemd attaches it only to this base. The base's unit names
matter too: portablectl attaches every unit of the base and of the
extension that matches the prefix it is given, and on a name clash the
base's unit wins, so no base unit may match the extension's prefix.
*/

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::description::{self, Description};
use crate::image::Image;
use crate::os_release;
use crate::plan::{EXTENSION_UNIT_DIR, UNIT_DIR};
use crate::store_path::StorePath;
use crate::unit_name;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Base {
    pub image_file_name: String,
    pub sysext_level: String,
    /// The store paths the base holds.
    pub paths: BTreeSet<StorePath>,
    pub units: Vec<String>,
}

impl Base {
    /// Reads the base image at `path`.
    pub fn read(path: &Path) -> Result<Base> {
        let read = || -> Result<Base> {
            let image = Image::open(path)?;
            let os_release = image.read_file(Path::new("/etc/os-release"))?;
            let description_path = Path::new("/").join(description::PATH);
            let description = match image.entry(&description_path) {
                Ok(_) => Some(image.read_file(&description_path)?),
                Err(_) => None,
            };
            let unit_dirs =
                [UNIT_DIR, EXTENSION_UNIT_DIR].map(|d| Path::new("/").join(d));
            let units = image
                .entries()
                .filter(|e| {
                    e.path
                        .parent()
                        .is_some_and(|p| unit_dirs.iter().any(|d| d == p))
                })
                .filter_map(|e| {
                    e.path.file_name()?.to_str().map(str::to_string)
                })
                .collect();
            let file_name =
                path.file_name().unwrap_or_default().to_string_lossy();
            Base::from_files(
                &file_name,
                &String::from_utf8_lossy(&os_release),
                description.as_deref(),
                units,
            )
        };
        read().with_context(|| {
            format!("reading the base image {}", path.display())
        })
    }

    /// Makes sense of the files read from the base image `image_file_name`:
    /// its os-release, its closure description (None when it has none) and
    /// the names in its unit directories.
    pub fn from_files(
        image_file_name: &str,
        os_release: &str,
        description: Option<&[u8]>,
        units: Vec<String>,
    ) -> Result<Base> {
        let not_ours = || {
            format!(
                "base image {image_file_name} is not a portableService image: \
                 build the base with portableService"
            )
        };
        let Some(description) = description else {
            bail!("{}: it has no /{}", not_ours(), crate::description::PATH);
        };
        let description =
            Description::from_json(description).with_context(not_ours)?;
        if let Some(base) = &description.base {
            bail!(
                "base image {image_file_name} is itself an extension (of {}): \
                 an extension's base must be a full image",
                base.image_file_name
            );
        }
        let fields = os_release::parse(os_release);
        let Some(sysext_level) = fields.get("SYSEXT_LEVEL") else {
            bail!("{}: its os-release has no SYSEXT_LEVEL", not_ours());
        };
        Ok(Base {
            image_file_name: image_file_name.to_string(),
            sysext_level: sysext_level.clone(),
            paths: description.held(),
            units,
        })
    }

    /// Fails if one of the base's units would be attached with the
    /// extension's prefix.
    pub fn check_prefix(&self, prefix: &str) -> Result<()> {
        if let Some(unit) =
            self.units.iter().find(|u| unit_name::matches_prefix(u, prefix))
        {
            bail!(
                "the base image {} has the unit '{unit}', which matches this \
                 extension's prefix '{prefix}': portablectl would attach the \
                 base's unit too (and prefer it to the extension's on a name \
                 clash); choose a pname that no unit of the base starts with",
                self.image_file_name
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DESCRIPTION: &[u8] = br#"{"closureVersion":1,"paths":[{"path":"/nix/store/11111111111111111111111111111111-a","narHash":"sha256:0","narSize":1,"references":[]}]}"#;

    #[test]
    fn reads_a_base() {
        let base = Base::from_files(
            "runtime_1.0.raw",
            "ID=nixos\nSYSEXT_LEVEL=abc\n",
            Some(DESCRIPTION),
            vec!["runtime.service".into()],
        )
        .unwrap();
        assert_eq!(base.sysext_level, "abc");
        assert_eq!(base.paths.len(), 1);
        base.check_prefix("app").unwrap();
        base.check_prefix("runtime-x").unwrap();
        let err = base.check_prefix("runtime").unwrap_err().to_string();
        assert!(err.contains("has the unit 'runtime.service'"), "{err}");
    }

    #[test]
    fn refuses_what_is_not_a_base() {
        let err = Base::from_files("x_1.raw", "ID=nixos\n", None, vec![])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("x_1.raw is not a portableService image"),
            "{err}"
        );
        let err = Base::from_files(
            "x_1.raw",
            "ID=nixos\n",
            Some(DESCRIPTION),
            vec![],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("has no SYSEXT_LEVEL"), "{err}");
        let extension = br#"{"closureVersion":1,"paths":[],"base":{"imageFileName":"r_1.raw","sysextLevel":"a","paths":[]}}"#;
        let err = Base::from_files("x_1.raw", "", Some(extension), vec![])
            .unwrap_err()
            .to_string();
        assert!(err.contains("is itself an extension (of r_1.raw)"), "{err}");
    }
}
