/*!
The base of an extension image: what the extension's build needs to know
of it, read from the base image itself.

A base is an image this builder made: it records the store paths it holds
(`/usr/lib/portable-service/closure.json`) and its `SYSEXT_LEVEL`
(`/etc/os-release`), which `survey` reads back as for `inspect`. The extension leaves those paths out and takes that
level, so systemd attaches it only to this base. The base's unit names
matter too: portablectl attaches every unit of the base and of the
extension that matches the prefix it is given, and on a name clash the
base's unit wins, so no base unit may match the extension's prefix.
*/

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::image::survey::{self, EntryType, Facts};
use crate::nix::store_path::StorePath;
use crate::systemd::unit_name;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseImage {
    pub image_file_name: String,
    pub sysext_level: String,
    /// The store paths the base holds.
    pub paths: BTreeSet<StorePath>,
    pub units: Vec<String>,
    /// What the base has outside its store, such as mount points.
    pub entries: BTreeMap<String, EntryType>,
}

impl BaseImage {
    /// Reads the base image at `path`.
    pub fn read(path: &Path) -> Result<BaseImage> {
        let read = || {
            let facts = survey::open(path)?.facts;
            BaseImage::from_facts(&facts)
        };
        read().with_context(|| {
            format!("reading the base image {}", path.display())
        })
    }

    /// Makes sense of what was read from a base image: its release data,
    /// its manifest and the names in its unit directories.
    pub fn from_facts(facts: &Facts) -> Result<BaseImage> {
        let not_ours = format!(
            "base image {} is not a portableService image: build the base \
             with portableService",
            facts.image
        );
        let manifest = match &facts.manifest {
            Ok(manifest) => manifest,
            Err(why) => bail!("{not_ours}: {why}"),
        };
        if let Some(base) = &manifest.base {
            bail!(
                "base image {} is itself an extension (of {}): an \
                 extension's base must be a full image",
                facts.image,
                base.image_file_name
            );
        }
        let sysext_level =
            facts.release.as_ref().ok().and_then(|r| r.get("SYSEXT_LEVEL"));
        let Some(sysext_level) = sysext_level else {
            bail!("{not_ours}: its os-release has no SYSEXT_LEVEL");
        };
        Ok(BaseImage {
            image_file_name: facts.image.clone(),
            sysext_level: sysext_level.clone(),
            paths: manifest.store_paths(),
            units: facts
                .units
                .iter()
                .map(|u| u.name.to_string_lossy().into_owned())
                .collect(),
            entries: facts.outside_store.clone(),
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
    use crate::image::survey::fixture;

    const MANIFEST: &[u8] = br#"{"closureVersion":1,"paths":[{"path":"/nix/store/11111111111111111111111111111111-a","narHash":"sha256:0","narSize":1,"references":[]}]}"#;

    #[test]
    fn reads_a_base() {
        let mut facts =
            fixture::facts("ID=nixos\nSYSEXT_LEVEL=abc\n", MANIFEST);
        facts.image = "runtime_1.0.raw".into();
        facts.units[0].name = "runtime.service".into();
        let base = BaseImage::from_facts(&facts).unwrap();
        assert_eq!(base.sysext_level, "abc");
        assert_eq!(base.paths.len(), 1);
        base.check_prefix("app").unwrap();
        base.check_prefix("runtime-x").unwrap();
        let err = base.check_prefix("runtime").unwrap_err().to_string();
        assert!(err.contains("has the unit 'runtime.service'"), "{err}");
    }

    #[test]
    fn refuses_what_is_not_a_base() {
        let mut facts = fixture::facts("ID=nixos\n", MANIFEST);
        facts.image = "x_1.raw".into();
        facts.manifest = Err("it is missing".into());
        let err = BaseImage::from_facts(&facts).unwrap_err().to_string();
        assert_eq!(
            err,
            "base image x_1.raw is not a portableService image: build the \
             base with portableService: it is missing"
        );
        let facts = fixture::facts("ID=nixos\n", MANIFEST);
        let err = BaseImage::from_facts(&facts).unwrap_err().to_string();
        assert!(err.contains("has no SYSEXT_LEVEL"), "{err}");
        let extension = fixture::facts(
            "ID=nixos\nSYSEXT_LEVEL=a\n",
            br#"{"closureVersion":1,"paths":[],"base":{"imageFileName":"r_1.raw","sysextLevel":"a","paths":[]}}"#,
        );
        let err = BaseImage::from_facts(&extension).unwrap_err().to_string();
        assert!(err.contains("is itself an extension (of r_1.raw)"), "{err}");
    }
}
