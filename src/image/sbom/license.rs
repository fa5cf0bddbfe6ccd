/*!
A store path's licences in CycloneDX 1.6: `meta.license` as the manifest
keeps it (`crate::manifest::meta::License`) turned into a component's
`licenses`, which the schema's `licenseChoice` makes either a list of
licences, each `{"license": {"id"}}` or `{"license": {"name"}}`, or a
list of exactly one `{"expression"}`:

- a licence of `lib.licenses` is `{"id": spdxId}` when its `spdxId` is
  one the schema accepts (`spdx-ids.txt`, the schema's enumeration: any
  other `id` makes the document invalid), else `{"name": ...}`: its
  `spdxId`, else `fullName`, else `shortName`, else `unknown` (nixpkgs
  has a licence there that says nothing of itself). One that nixpkgs
  marks `free = false` (`lib.licenses.unfree` and the like) carries the
  property `nixpkgs:free` = `false`, so that unfree software can be found
  without knowing every licence's name;
- a list (nixpkgs does not say whether all or any of them apply, and
  neither does CycloneDX's list) is one entry per licence; a string, as
  old nixpkgs wrote licences, is a `name`;
- an expression of nixpkgs' licence operators is one SPDX expression,
  written as nixpkgs' `lib.licenses.toSPDX` writes it (`spdxId`, else
  `LicenseRef-nixos-<shortName>`; parentheses around compound parts);
  inside a list it is a licence named by that expression, since the two
  forms cannot be mixed.
*/

use std::collections::BTreeSet;
use std::sync::OnceLock;

use serde::Serialize;

use crate::image::sbom::Property;
use crate::manifest::meta::{Expression, License, SimpleLicense};

/// One entry of a component's `licenses`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum LicenseChoice {
    License { license: LicenseObject },
    Expression { expression: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LicenseObject {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<Property>,
}

/// Whether the CycloneDX 1.6 schema accepts `id` as a licence's `id`.
pub fn is_schema_spdx_id(id: &str) -> bool {
    static IDS: OnceLock<BTreeSet<&'static str>> = OnceLock::new();
    IDS.get_or_init(|| {
        include_str!("spdx-ids.txt")
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect()
    })
    .contains(id)
}

/// `licenses` for `meta.license`; empty when it names none.
pub fn licenses(license: &License) -> Vec<LicenseChoice> {
    match license {
        License::Expression(e) => {
            vec![LicenseChoice::Expression { expression: expression(e) }]
        }
        License::List(items) => {
            let mut choices = Vec::new();
            flatten(items, &mut choices);
            choices
        }
        single => {
            let mut choices = Vec::new();
            flatten(std::slice::from_ref(single), &mut choices);
            choices
        }
    }
}

fn flatten(items: &[License], out: &mut Vec<LicenseChoice>) {
    for item in items {
        match item {
            License::List(inner) => flatten(inner, out),
            License::Simple(l) => out.push(simple(l)),
            License::Name(name) => out.push(named(name.clone(), vec![])),
            License::Expression(e) => out.push(named(expression(e), vec![])),
        }
    }
}

fn named(name: String, properties: Vec<Property>) -> LicenseChoice {
    LicenseChoice::License {
        license: LicenseObject { id: None, name: Some(name), properties },
    }
}

fn simple(l: &SimpleLicense) -> LicenseChoice {
    let properties = match l.free {
        Some(false) => vec![Property::new("nixpkgs:free", "false")],
        _ => vec![],
    };
    match &l.spdx_id {
        Some(id) if is_schema_spdx_id(id) => LicenseChoice::License {
            license: LicenseObject {
                id: Some(id.clone()),
                name: None,
                properties,
            },
        },
        _ => {
            let name = [&l.spdx_id, &l.full_name, &l.short_name]
                .into_iter()
                .flatten()
                .find(|n| !n.is_empty())
                .cloned()
                .unwrap_or_else(|| "unknown".to_string());
            named(name, properties)
        }
    }
}

/// An SPDX expression, as `lib.licenses.toSPDX` writes one.
fn expression(e: &Expression) -> String {
    match e {
        Expression::And { licenses } => joined(licenses, " AND "),
        Expression::Or { licenses } => joined(licenses, " OR "),
        Expression::With { license, exception } => {
            format!("{} WITH {}", bracketed(license), bracketed(exception))
        }
        Expression::Plus { license } => format!("{}+", bracketed(license)),
    }
}

fn joined(licenses: &[License], operator: &str) -> String {
    licenses.iter().map(bracketed).collect::<Vec<_>>().join(operator)
}

/// A part of an expression; compound parts in parentheses. A list, which
/// nixpkgs' operators do not make, is read as all of its licences.
fn bracketed(license: &License) -> String {
    match license {
        License::Simple(l) => match (&l.spdx_id, &l.short_name) {
            (Some(id), _) => id.clone(),
            (None, Some(short)) => license_ref(short),
            (None, None) => "LicenseRef-unknown".to_string(),
        },
        License::Name(name) => license_ref(name),
        License::Expression(e @ Expression::Plus { .. }) => expression(e),
        License::Expression(e) => format!("({})", expression(e)),
        License::List(items) => format!("({})", joined(items, " AND ")),
    }
}

/// `LicenseRef-nixos-<name>`, as toSPDX names a licence without an SPDX
/// id, with what SPDX's idstring does not allow (`[A-Za-z0-9.-]`) as `-`.
fn license_ref(name: &str) -> String {
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("LicenseRef-nixos-{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> License {
        serde_json::from_str(json).unwrap()
    }

    fn json(choices: &[LicenseChoice]) -> String {
        serde_json::to_string(choices).unwrap()
    }

    #[test]
    fn knows_the_schemas_ids() {
        assert!(is_schema_spdx_id("MIT"));
        assert!(is_schema_spdx_id("GPL-3.0-or-later"));
        assert!(is_schema_spdx_id("LLVM-exception"));
        assert!(!is_schema_spdx_id("mit"));
        assert!(!is_schema_spdx_id("# The SPDX licence"));
    }

    #[test]
    fn renders_each_form() {
        for (meta, expected) in [
            (
                r#"{"spdxId":"MIT","fullName":"MIT License","free":true}"#,
                r#"[{"license":{"id":"MIT"}}]"#,
            ),
            (
                r#"{"fullName":"Unfree","shortName":"unfree","free":false}"#,
                r#"[{"license":{"name":"Unfree","properties":[{"name":"nixpkgs:free","value":"false"}]}}]"#,
            ),
            (
                r#"{"spdxId":"Not-In-The-List-1.0","fullName":"X"}"#,
                r#"[{"license":{"name":"Not-In-The-List-1.0"}}]"#,
            ),
            (r#"{}"#, r#"[{"license":{"name":"unknown"}}]"#),
            (r#""GPL""#, r#"[{"license":{"name":"GPL"}}]"#),
            (
                r#"[{"spdxId":"MIT"},[{"spdxId":"Apache-2.0"}],"BSD"]"#,
                r#"[{"license":{"id":"MIT"}},{"license":{"id":"Apache-2.0"}},{"license":{"name":"BSD"}}]"#,
            ),
            (r#"[]"#, r#"[]"#),
            (
                r#"{"operator":"AND","licenses":[{"spdxId":"NCSA"},{"operator":"WITH","license":{"spdxId":"Apache-2.0"},"exception":{"spdxId":"LLVM-exception"}}]}"#,
                r#"[{"expression":"NCSA AND (Apache-2.0 WITH LLVM-exception)"}]"#,
            ),
            (
                r#"{"operator":"OR","licenses":[{"shortName":"my licence"},{"operator":"+","license":{"spdxId":"EUPL-1.1"}}]}"#,
                r#"[{"expression":"LicenseRef-nixos-my-licence OR EUPL-1.1+"}]"#,
            ),
            (
                r#"[{"spdxId":"MIT"},{"operator":"OR","licenses":[{"spdxId":"MIT"},{"spdxId":"0BSD"}]}]"#,
                r#"[{"license":{"id":"MIT"}},{"license":{"name":"MIT OR 0BSD"}}]"#,
            ),
        ] {
            assert_eq!(json(&licenses(&parse(meta))), expected, "{meta}");
        }
    }
}
