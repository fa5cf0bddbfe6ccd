/*!
The manifest: what every image records of its closure, in the file
`/usr/lib/portable-service/closure.json` (the name images have had since
the first; the record is called the manifest everywhere else):

```json
{"closureVersion": 1,
 "paths": [{"path": "/nix/store/...", "narHash": "sha256:<nix base-32>",
            "narSize": 123, "references": ["/nix/store/..."]}],
 "base": {"imageFileName": "runtime_1.0.raw", "sysextLevel": "...",
          "paths": ["/nix/store/..."]}}
```

`paths` are the store paths the image holds, sorted, with what Nix said
of them. An extension image adds `base`: the image it extends, that image's
`SYSEXT_LEVEL`, and the store paths of its closure that it leaves to the
base. `inspect` and `verify` read it, and an extension's build reads its
base's.
*/

use std::collections::BTreeSet;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::nix::path_info::PathInfo;
use crate::nix::store_path::StorePath;

pub const VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub closure_version: u32,
    pub paths: Vec<PathInfo>,
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
        if manifest.closure_version != VERSION {
            bail!(
                "the manifest has version {}, but this builder \
                 reads version {VERSION}",
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
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
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
            closure_version: 1,
            paths: vec![PathInfo {
                path: path("a"),
                nar_hash: "sha256:0".into(),
                nar_size: 1,
                references: vec![path("a")],
            }],
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
    fn refuses_other_versions() {
        let err = Manifest::from_json(br#"{"closureVersion":2,"paths":[]}"#)
            .unwrap_err();
        assert!(err.to_string().contains("has version 2"), "{err}");
    }
}
