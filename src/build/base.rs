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

use crate::manifest::Manifest;
use crate::nix::store_path::StorePath;
use crate::image::survey::Survey;
use crate::systemd::unit_name;

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
        let read = || {
            let survey = Survey::new(path)?;
            let units = survey.units.iter().map(|u| u.name.clone()).collect();
            Base::from_parts(
                &survey.file_name,
                survey.release.as_ref(),
                survey.manifest.as_ref().map_err(String::as_str),
                units,
            )
        };
        read().with_context(|| {
            format!("reading the base image {}", path.display())
        })
    }

    /// Makes sense of what was read from the base image
    /// `image_file_name`: its release data (None when it has none), its
    /// closure description (or why it could not be read) and the names in
    /// its unit directories.
    pub fn from_parts(
        image_file_name: &str,
        release: Option<&BTreeMap<String, String>>,
        manifest: Result<&Manifest, &str>,
        units: Vec<String>,
    ) -> Result<Base> {
        let not_ours = format!(
            "base image {image_file_name} is not a portableService image: \
             build the base with portableService"
        );
        let manifest = match manifest {
            Ok(manifest) => manifest,
            Err(why) => bail!("{not_ours}: {why}"),
        };
        if let Some(base) = &manifest.base {
            bail!(
                "base image {image_file_name} is itself an extension (of {}): \
                 an extension's base must be a full image",
                base.image_file_name
            );
        }
        let Some(sysext_level) = release.and_then(|r| r.get("SYSEXT_LEVEL"))
        else {
            bail!("{not_ours}: its os-release has no SYSEXT_LEVEL");
        };
        Ok(Base {
            image_file_name: image_file_name.to_string(),
            sysext_level: sysext_level.clone(),
            paths: manifest.store_paths(),
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
    use crate::systemd::os_release;

    const MANIFEST: &[u8] = br#"{"closureVersion":1,"paths":[{"path":"/nix/store/11111111111111111111111111111111-a","narHash":"sha256:0","narSize":1,"references":[]}]}"#;

    fn manifest(json: &[u8]) -> Manifest {
        Manifest::from_json(json).unwrap()
    }

    #[test]
    fn reads_a_base() {
        let release = os_release::parse("ID=nixos\nSYSEXT_LEVEL=abc\n");
        let base = Base::from_parts(
            "runtime_1.0.raw",
            Some(&release),
            Ok(&manifest(MANIFEST)),
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
        let release = os_release::parse("ID=nixos\n");
        let err = Base::from_parts(
            "x_1.raw",
            Some(&release),
            Err("it is missing"),
            vec![],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("x_1.raw is not a portableService image: build the base with portableService: it is missing"),
            "{err}"
        );
        let err = Base::from_parts(
            "x_1.raw",
            Some(&release),
            Ok(&manifest(MANIFEST)),
            vec![],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("has no SYSEXT_LEVEL"), "{err}");
        let extension = manifest(br#"{"closureVersion":1,"paths":[],"base":{"imageFileName":"r_1.raw","sysextLevel":"a","paths":[]}}"#);
        let err = Base::from_parts("x_1.raw", None, Ok(&extension), vec![])
            .unwrap_err()
            .to_string();
        assert!(err.contains("is itself an extension (of r_1.raw)"), "{err}");
    }
}
