/*!
What nixpkgs' `meta` says of the package a store path belongs to, as
`nix/meta.nix` finds it at evaluation time (in `.attrs.json`, attribute
`packageMeta`) and the manifest keeps it (`meta`, by store path), so that
`portable-service-builder sbom` can name licences on a host without Nix.

The JSON form is the same in both places, with context-free strings and
every field optional (null or left out); an entry of `packageMeta` also
has `paths`, the output paths of the derivation it describes:

```json
{"pname": "hello", "version": "2.12.1",
 "description": "A program that produces a familiar, friendly greeting",
 "homepage": "https://www.gnu.org/software/hello/",
 "license": {"spdxId": "GPL-3.0-or-later", "fullName": "...",
             "shortName": "gpl3Plus", "free": true}}
```

`license` is `meta.license` with what `lib.licenses` gives kept and the
rest left out (nixpkgs' `lib/licenses/licenses.nix`, `operators.nix`):

- a licence: `{spdxId?, fullName?, shortName?, free?}` (none of them:
  nixpkgs has a licence there that says nothing of itself);
- a list of them, as most of nixpkgs writes several licences;
- an expression of nixpkgs' licence operators: `{"operator": "AND" | "OR",
  "licenses": [...]}`, `{"operator": "WITH", "license", "exception"}`,
  `{"operator": "+", "license"}`;
- a string, as old nixpkgs wrote licences (`"GPL"`).
*/

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<License>,
}

/// `meta.license`, in the forms the module doc lists. An object with an
/// `operator` this reader does not know reads as a licence that says
/// nothing of itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum License {
    Expression(Expression),
    // Before `Simple`, which serde would also read from an empty list.
    List(Vec<License>),
    Simple(SimpleLicense),
    Name(String),
}

/// One of `lib.licenses`: `{ spdxId; fullName; shortName; free; ... }`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimpleLicense {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spdx_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free: Option<bool>,
}

/// nixpkgs' licence operators `AND`, `OR`, `WITH` and `PLUS`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "operator")]
pub enum Expression {
    #[serde(rename = "AND")]
    And { licenses: Vec<License> },
    #[serde(rename = "OR")]
    Or { licenses: Vec<License> },
    #[serde(rename = "WITH")]
    With { license: Box<License>, exception: Box<License> },
    #[serde(rename = "+")]
    Plus { license: Box<License> },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> License {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn reads_every_form() {
        let mit = SimpleLicense {
            spdx_id: Some("MIT".into()),
            full_name: Some("MIT License".into()),
            short_name: Some("mit".into()),
            free: Some(true),
        };
        let json = r#"{"spdxId":"MIT","fullName":"MIT License","shortName":"mit","free":true}"#;
        assert_eq!(parse(json), License::Simple(mit.clone()));
        assert_eq!(
            parse(&format!("[{json},\"GPL\"]")),
            License::List(vec![
                License::Simple(mit.clone()),
                License::Name("GPL".into())
            ])
        );
        assert_eq!(
            parse(&format!(r#"{{"operator":"OR","licenses":[{json}]}}"#)),
            License::Expression(Expression::Or {
                licenses: vec![License::Simple(mit.clone())]
            })
        );
        assert_eq!(
            parse(&format!(r#"{{"operator":"+","license":{json}}}"#)),
            License::Expression(Expression::Plus {
                license: Box::new(License::Simple(mit))
            })
        );
        assert_eq!(
            parse(r#"{"operator":"XOR","licenses":[]}"#),
            License::Simple(SimpleLicense::default())
        );
    }

    #[test]
    fn writes_what_it_reads() {
        let json = r#"{"pname":"a","license":{"operator":"WITH","license":{"spdxId":"GPL-2.0-only"},"exception":{"spdxId":"Classpath-exception-2.0"}}}"#;
        let meta: PackageMeta = serde_json::from_str(json).unwrap();
        assert_eq!(serde_json::to_string(&meta).unwrap(), json);
    }
}
