/*!
The manifest: what every image records of its closure, in the file
`/usr/lib/portable-service/closure.json` (the name images have had since
the first; the record is called the manifest everywhere else):

```json
{"closureVersion": 2,
 "paths": [{"path": "/nix/store/...", "narHash": "sha256:<nix base-32>",
            "narSize": 123, "references": ["/nix/store/..."]}],
 "roots": ["/nix/store/..."],
 "meta": {"/nix/store/...": {"pname": "hello", "version": "2.12.1",
                             "license": {"spdxId": "GPL-3.0-or-later"}}},
 "base": {"imageFileName": "runtime_1.0.raw", "sysextLevel": "...",
          "paths": ["/nix/store/..."]}}
```

`paths` are the store paths the image holds, sorted, with what Nix said
of them. `roots` are the store paths the image's arguments name (units,
`contents`, the layers' roots, the symlinks' objects), sorted: the image's
own dependencies. `meta` is what nixpkgs' `meta` says of the packages of
the closure's store paths, where the Nix function could reach their
derivations (`meta`, the module; left out when there is none). An
extension image adds `base`: the image it extends, that image's
`SYSEXT_LEVEL`, and the store paths of its closure that it leaves to the
base. `inspect`, `verify` and `sbom` read it, and an extension's build
reads its base's.

Version 1, which images built before `roots` and `meta` carry, has neither;
this reader reads both versions, and writes version 2.
*/

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::manifest::meta::PackageMeta;
use crate::nix::path_info::PathInfo;
use crate::nix::store_path::StorePath;

pub mod meta;

/// The version this builder writes.
pub const VERSION: u32 = 2;
/// The oldest version it reads.
pub const OLDEST_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub closure_version: u32,
    pub paths: Vec<PathInfo>,
    /// None in a version 1 manifest, which did not record them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roots: Option<Vec<StorePath>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<StorePath, PackageMeta>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<ManifestBase>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestBase {
    pub image_file_name: String,
    pub sysext_level: String,
    pub paths: Vec<StorePath>,
}

impl Manifest {
    pub fn to_json(&self) -> String {
        let mut json =
            serde_json::to_string(self).expect("a description serialises");
        json.push('\n');
        json
    }

    pub fn from_json(json: &[u8]) -> Result<Manifest> {
        let manifest: Manifest =
            serde_json::from_slice(json).context("parsing the manifest")?;
        if !(OLDEST_VERSION..=VERSION).contains(&manifest.closure_version) {
            bail!(
                "the manifest has version {}, but this builder \
                 reads versions {OLDEST_VERSION} to {VERSION}",
                manifest.closure_version
            );
        }
        Ok(manifest)
    }

    /// The store paths the image holds.
    pub fn store_paths(&self) -> BTreeSet<StorePath> {
        self.paths.iter().map(|info| info.path.clone()).collect()
    }

    /// The `SYSEXT_LEVEL` of a full image: a digest of its description, so
    /// that systemd attaches an extension only to the base it was built
    /// for, the one that holds the store paths the extension leaves out.
    pub fn sysext_level(&self) -> String {
        let digest = Sha256::digest(self.to_json().as_bytes());
        crate::digest::hex(&digest[..16])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(name: &str) -> StorePath {
        StorePath::from_base_name(&format!("{}-{name}", "1".repeat(32)))
            .unwrap()
    }

    fn full() -> Manifest {
        Manifest {
            closure_version: VERSION,
            paths: vec![PathInfo {
                path: path("a"),
                nar_hash: "sha256:0".into(),
                nar_size: 1,
                references: vec![path("a")],
            }],
            roots: Some(vec![path("a")]),
            meta: BTreeMap::new(),
            base: None,
        }
    }

    #[test]
    fn round_trips_and_leaves_out_a_missing_base() {
        let json = full().to_json();
        assert!(!json.contains("base"), "{json}");
        assert_eq!(Manifest::from_json(json.as_bytes()).unwrap(), full());
        let mut extension = full();
        extension.base = Some(ManifestBase {
            image_file_name: "runtime_1.0.raw".into(),
            sysext_level: "abc".into(),
            paths: vec![path("b")],
        });
        let json = extension.to_json();
        assert!(json.contains(r#""base":{"imageFileName":"runtime_1.0.raw""#));
        assert_eq!(Manifest::from_json(json.as_bytes()).unwrap(), extension);
    }

    #[test]
    fn sysext_level_is_a_lower_case_digest_of_the_content() {
        let level = full().sysext_level();
        assert_eq!(level.len(), 32);
        assert!(level
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()));
        let mut other = full();
        other.paths[0].nar_size = 2;
        assert_ne!(other.sysext_level(), level);
    }

    #[test]
    fn reads_version_1_and_refuses_other_versions() {
        let v1 = Manifest::from_json(br#"{"closureVersion":1,"paths":[]}"#)
            .unwrap();
        assert_eq!((v1.roots, v1.meta.len()), (None, 0));
        for version in [0, 3] {
            let json = format!(r#"{{"closureVersion":{version},"paths":[]}}"#);
            let err = Manifest::from_json(json.as_bytes()).unwrap_err();
            assert!(
                err.to_string().contains(&format!("has version {version}")),
                "{err}"
            );
        }
    }

    #[test]
    fn keeps_meta_by_store_path() {
        let mut manifest = full();
        manifest.meta.insert(
            path("a"),
            PackageMeta { pname: Some("a".into()), ..Default::default() },
        );
        let json = manifest.to_json();
        let expected = format!(
            r#""roots":["{a}"],"meta":{{"{a}":{{"pname":"a"}}}}}}"#,
            a = path("a")
        );
        assert!(json.contains(&expected), "{json}");
        assert_eq!(Manifest::from_json(json.as_bytes()).unwrap(), manifest);
    }
}
