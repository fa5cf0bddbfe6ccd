/*!
`portable-service-builder sbom IMAGE [--output FILE]`: a CycloneDX 1.6
JSON document (<https://cyclonedx.org/docs/1.6/json/>) of what an image
holds, read from the image file alone, without Nix: its manifest (see
`crate::manifest`), its release data and, for a disk image, its root hash.

The document, field by field:

- `serialNumber`: `urn:uuid:` and a version-4 UUID whose other 122 bits
  are the first bits of the image file's SHA-256 (the schema's pattern
  takes an RFC 4122 UUID; the same image gives the same number);
  `version` 1; `metadata.timestamp` only when `SOURCE_DATE_EPOCH` is set
  (reproducible builds' convention), so the same image gives the same
  bytes; `metadata.tools`: this builder and its version;
- `metadata.component`, the image: type `container` (CycloneDX: "a
  packaging and/or runtime format ... which isolates software inside the
  container from software outside of a container through virtualization
  technology": an image is a root file system that portabled runs in its
  own mount namespace, holding one or more services); `bom-ref`
  `image:<file name>`; name and version from the file name
  `NAME_VERSION.raw`, as portablectl reads it; description and homepage
  from the release data; the SHA-256 of the file; properties
  `portable-service:format`, `portable-service:kind`,
  `portable-service:manifest_version`, a disk image's
  `portable-service:roothash` and an extension's `portable-service:base`;
- `components`, one per store path of the closure, in the manifest's
  order (by store path): type `application` (the schema's choice for
  software of no known kind), `bom-ref` the store path's base name, name
  and version from nixpkgs' `pname` and `version` when the manifest has
  them, else the store path name split as `builtins.parseDrvName` splits
  it (`crate::nix::drv_name`; no version when it has none; a name that
  would split into an empty name is kept whole), description, licences
  (`license`) and homepage (a `website` reference, when it is a URL) from
  nixpkgs' `meta`, `purl` `pkg:nix/NAME@VERSION` (see `purl`), the NAR
  hash as `SHA-256` hex, and properties `nix:store_path` and
  `nix:nar_size`. An extension's store paths that its base holds are
  components too, with what is known without the base (no hash), and the
  property `portable-service:provided_by`, the base's file name;
- `dependencies`: for each store path the image holds, exactly Nix's
  references less itself (empty when there are none), and the image
  depending on its roots. What is not known is left out, as CycloneDX
  asks ("components ... not represented in the dependency graph may have
  unknown dependencies"): the store paths left to a base, and the image
  itself in a version 1 manifest, which has no roots (nor `meta`: such
  an image's document has no licences, descriptions or homepages).

The document trusts the manifest: `verify` is what checks that the image
holds what it records.
*/

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::atomic_write::write_atomically;
use crate::image::survey::{self, Facts, Format, ImageKind};
use crate::manifest::meta::PackageMeta;
use crate::manifest::Manifest;
use crate::nix::drv_name::DrvName;
use crate::nix::nar::hash::parse_sha256;
use crate::nix::store_path::StorePath;

pub mod license;

use license::LicenseChoice;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Bom {
    bom_format: &'static str,
    spec_version: &'static str,
    serial_number: String,
    version: u32,
    metadata: Metadata,
    components: Vec<Component>,
    dependencies: Vec<Dependency>,
}

#[derive(Serialize)]
struct Metadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<String>,
    tools: Tools,
    component: Component,
}

/// The 1.5 and later form of `tools`.
#[derive(Serialize)]
struct Tools {
    components: Vec<Component>,
}

#[derive(Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Component {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "bom-ref", skip_serializing_if = "Option::is_none")]
    bom_ref: Option<String>,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hashes: Vec<Hash>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    licenses: Vec<LicenseChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    purl: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    external_references: Vec<ExternalReference>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    properties: Vec<Property>,
}

#[derive(Serialize)]
struct Hash {
    alg: &'static str,
    content: String,
}

#[derive(Serialize)]
struct ExternalReference {
    #[serde(rename = "type")]
    kind: &'static str,
    url: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Property {
    pub name: String,
    pub value: String,
}

impl Property {
    pub fn new(name: &str, value: impl Into<String>) -> Property {
        Property { name: name.to_string(), value: value.into() }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Dependency {
    #[serde(rename = "ref")]
    reference: String,
    depends_on: Vec<String>,
}

/// What the document needs besides the survey.
pub struct Subject<'a> {
    pub facts: &'a Facts,
    /// The SHA-256 of the image file.
    pub sha256: [u8; 32],
    /// `SOURCE_DATE_EPOCH`, when set.
    pub source_date_epoch: Option<u64>,
}

/// The document for `subject`, as pretty-printed JSON and a newline.
pub fn document(subject: &Subject) -> Result<Vec<u8>> {
    let facts = subject.facts;
    let manifest = match &facts.manifest {
        Ok(manifest) => manifest,
        Err(why) => bail!(
            "{}: {why}: the SBOM lists the store paths the manifest records, \
             which every image of this builder carries",
            facts.image
        ),
    };
    let image_ref = format!("image:{}", facts.image);
    let mut components = Vec::new();
    let mut dependencies = Vec::new();
    if let Some(roots) = &manifest.roots {
        // A set: the schema wants each once, and a manifest made by hand
        // may repeat one.
        let depends_on: BTreeSet<String> =
            roots.iter().map(|r| r.base_name().into()).collect();
        let depends_on = depends_on.into_iter().collect();
        dependencies
            .push(Dependency { reference: image_ref.clone(), depends_on });
    }
    for info in &manifest.paths {
        let sha256 = parse_sha256(&info.nar_hash).with_context(|| {
            format!("the manifest's record of {}", info.path)
        })?;
        let mut component = store_path(&info.path, manifest);
        component.hashes = vec![Hash {
            alg: "SHA-256",
            content: crate::digest::hex(&sha256),
        }];
        component
            .properties
            .push(Property::new("nix:nar_size", info.nar_size.to_string()));
        components.push(component);
        let depends_on: BTreeSet<String> = info
            .references
            .iter()
            .filter(|r| **r != info.path)
            .map(|r| r.base_name().to_string())
            .collect();
        dependencies.push(Dependency {
            reference: info.path.base_name().to_string(),
            depends_on: depends_on.into_iter().collect(),
        });
    }
    if let Some(base) = &manifest.base {
        for path in &base.paths {
            let mut component = store_path(path, manifest);
            component.properties.push(Property::new(
                "portable-service:provided_by",
                base.image_file_name.clone(),
            ));
            components.push(component);
        }
        components.sort_by(|a, b| a.bom_ref.cmp(&b.bom_ref));
    }

    let bom = Bom {
        bom_format: "CycloneDX",
        spec_version: "1.6",
        serial_number: serial_number(&subject.sha256),
        version: 1,
        metadata: Metadata {
            timestamp: subject.source_date_epoch.map(timestamp).transpose()?,
            tools: Tools {
                components: vec![Component {
                    kind: "application",
                    name: "portable-service-builder".into(),
                    version: Some(env!("CARGO_PKG_VERSION").into()),
                    ..Component::default()
                }],
            },
            component: image(facts, manifest, image_ref, &subject.sha256),
        },
        components,
        dependencies,
    };
    let mut json =
        serde_json::to_vec_pretty(&bom).expect("a document serialises");
    json.push(b'\n');
    Ok(json)
}

/// The image itself.
fn image(
    facts: &Facts,
    manifest: &Manifest,
    bom_ref: String,
    sha256: &[u8; 32],
) -> Component {
    let release = facts.release.as_ref().ok();
    let field = |key: &str| release.and_then(|r| r.get(key)).cloned();
    let mut properties = vec![
        Property::new(
            "portable-service:format",
            match facts.format {
                Format::Squashfs => "squashfs",
                Format::Ddi => "ddi",
            },
        ),
        Property::new(
            "portable-service:kind",
            match facts.kind {
                ImageKind::PortableService => "portable-service",
                ImageKind::Extension => "extension",
            },
        ),
        Property::new(
            "portable-service:manifest_version",
            manifest.closure_version.to_string(),
        ),
    ];
    if let Some(roothash) = &facts.roothash {
        properties.push(Property::new("portable-service:roothash", roothash));
    }
    if let Some(base) = &manifest.base {
        properties.push(Property::new(
            "portable-service:base",
            base.image_file_name.clone(),
        ));
    }
    Component {
        kind: "container",
        bom_ref: Some(bom_ref),
        name: facts.prefix.clone(),
        version: file_name_version(&facts.image),
        description: field("PORTABLE_PRETTY_NAME"),
        hashes: vec![Hash {
            alg: "SHA-256",
            content: crate::digest::hex(sha256),
        }],
        external_references: website(field("HOME_URL")),
        properties,
        ..Component::default()
    }
}

/// A store path of the closure, with what its name and meta say.
fn store_path(path: &StorePath, manifest: &Manifest) -> Component {
    let meta = manifest.meta.get(path).cloned().unwrap_or_default();
    let (name, version) = name_and_version(path.name(), &meta);
    Component {
        kind: "application",
        bom_ref: Some(path.base_name().to_string()),
        purl: Some(purl(&name, version.as_deref())),
        name,
        version,
        description: meta.description.filter(|d| !d.is_empty()),
        licenses: meta
            .license
            .as_ref()
            .map(license::licenses)
            .unwrap_or_default(),
        external_references: website(meta.homepage),
        properties: vec![Property::new("nix:store_path", path.to_string())],
        ..Component::default()
    }
}

/// nixpkgs' `pname` and `version` when it gives a `pname`, else the
/// store path name as `builtins.parseDrvName` splits it.
pub fn name_and_version(
    store_name: &str,
    meta: &PackageMeta,
) -> (String, Option<String>) {
    let nonempty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    if let Some(pname) = nonempty(&meta.pname) {
        return (pname, nonempty(&meta.version));
    }
    let split = DrvName::parse(store_name);
    if split.name.is_empty() {
        return (store_name.to_string(), None);
    }
    let version = Some(split.version.to_string()).filter(|v| !v.is_empty());
    (split.name.to_string(), version)
}

/// `pkg:nix/NAME@VERSION`. The purl type `nix` is not registered yet
/// (purl-spec pull requests 314 and 877 propose it, with `pname` and
/// `version` as here, and qualifiers for the derivation path and the
/// output, which an image does not record); this is bombon's and
/// sbomnix's form, without qualifiers. The store path is the component's
/// `bom-ref` and `nix:store_path`. Every character but
/// `[A-Za-z0-9._~-]` is percent-encoded, as the purl specification asks
/// of a name and a version (`+` in a version among them).
pub fn purl(name: &str, version: Option<&str>) -> String {
    let mut purl = format!("pkg:nix/{}", percent_encode(name));
    if let Some(version) = version {
        purl.push('@');
        purl.push_str(&percent_encode(version));
    }
    purl
}

fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for byte in s.bytes() {
        if byte.is_ascii_alphanumeric() || b"._~-".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A `website` reference to `url`, when it is one: a scheme, and no
/// space or control character (the schema wants an IRI).
fn website(url: Option<String>) -> Vec<ExternalReference> {
    let is_url = |u: &str| {
        let scheme = u.split_once(':').map_or("", |(s, _)| s);
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
            && !u.chars().any(|c| c.is_whitespace() || c.is_control())
    };
    url.filter(|u| is_url(u))
        .map(|url| ExternalReference { kind: "website", url })
        .into_iter()
        .collect()
}

/// `VERSION` of `NAME_VERSION.raw` (portablectl's prefix is `NAME`).
fn file_name_version(file_name: &str) -> Option<String> {
    let (_, rest) = file_name.split_once('_')?;
    let version = rest.strip_suffix(".raw").unwrap_or(rest);
    Some(version.to_string()).filter(|v| !v.is_empty())
}

/// `urn:uuid:` and a version-4 (random) UUID whose random bits are the
/// image's SHA-256: a number the same image always gets. (RFC 9562 would
/// make a SHA-256 name-based UUID version 8, which the schema's RFC 4122
/// wording leaves out.)
pub fn serial_number(sha256: &[u8; 32]) -> String {
    let mut b: [u8; 16] = sha256[..16].try_into().expect("16 of 32 bytes");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = crate::digest::hex(&b);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// The latest `SOURCE_DATE_EPOCH` written as a 4-digit year allows.
const LAST_EPOCH: u64 = 253_402_300_799;

/// `SOURCE_DATE_EPOCH` as RFC 3339 UTC (`1970-01-01T00:00:00Z`).
pub fn timestamp(epoch: u64) -> Result<String> {
    if epoch > LAST_EPOCH {
        bail!(
            "SOURCE_DATE_EPOCH={epoch} is after the year 9999, which a \
             CycloneDX timestamp cannot hold"
        );
    }
    let (days, secs) = ((epoch / 86_400) as i64, epoch % 86_400);
    // Howard Hinnant's civil_from_days (days since 1970-01-01).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    Ok(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    ))
}

/// `SOURCE_DATE_EPOCH` from the environment: None when unset or empty.
pub fn source_date_epoch() -> Result<Option<u64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Ok(v) if v.is_empty() => Ok(None),
        Ok(v) => match v.parse::<u64>() {
            Ok(epoch) => Ok(Some(epoch)),
            Err(_) => bail!(
                "SOURCE_DATE_EPOCH='{v}' is not a number of seconds since \
                 1970 (reproducible builds' convention: digits only)"
            ),
        },
        Err(std::env::VarError::NotUnicode(v)) => bail!(
            "SOURCE_DATE_EPOCH={v:?} is not a number of seconds since 1970"
        ),
    }
}

/// Writes the document of `image` to standard output, or to `output`,
/// which is then complete or absent.
pub fn run(image: &Path, output: Option<&Path>) -> Result<()> {
    let source_date_epoch = source_date_epoch()?;
    let facts = survey::open(image)?.facts;
    let sha256 = crate::digest::hash_file(image)?;
    let json =
        document(&Subject { facts: &facts, sha256, source_date_epoch })?;
    match output {
        None => {
            let mut stdout = io::stdout().lock();
            stdout.write_all(&json)?;
            stdout.flush()?;
        }
        Some(output) => write_atomically(
            output,
            |partial, mut file| {
                file.write_all(&json)
                    .with_context(|| format!("writing {}", partial.display()))
            },
            |what, err| anyhow::Error::new(err).context(what),
        )?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::survey::fixture;

    #[test]
    fn serial_numbers_are_rfc_4122_uuids_of_the_hash() {
        let sha = [0xffu8; 32];
        assert_eq!(
            serial_number(&sha),
            "urn:uuid:ffffffff-ffff-4fff-bfff-ffffffffffff"
        );
        assert_eq!(
            serial_number(&[0u8; 32]),
            "urn:uuid:00000000-0000-4000-8000-000000000000"
        );
    }

    #[test]
    fn timestamps_are_utc_dates() {
        for (epoch, expected) in [
            (0, "1970-01-01T00:00:00Z"),
            (315_532_800, "1980-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_700_000_000, "2023-11-14T22:13:20Z"),
            (LAST_EPOCH, "9999-12-31T23:59:59Z"),
        ] {
            assert_eq!(timestamp(epoch).unwrap(), expected);
        }
        assert!(timestamp(LAST_EPOCH + 1).is_err());
    }

    #[test]
    fn names_versions_and_purls() {
        let none = PackageMeta::default();
        let cases = [
            ("hello-2.12.1", &none, "hello", Some("2.12.1")),
            ("demo-at.service", &none, "demo-at.service", None),
            ("-1", &none, "-1", None),
        ];
        for (store_name, meta, name, version) in cases {
            assert_eq!(
                name_and_version(store_name, meta),
                (name.to_string(), version.map(str::to_string)),
            );
        }
        let meta = PackageMeta {
            pname: Some("openssl".into()),
            version: Some("3.0.13".into()),
            ..PackageMeta::default()
        };
        assert_eq!(
            name_and_version("openssl-3.0.13-dev", &meta),
            ("openssl".into(), Some("3.0.13".into()))
        );
        assert_eq!(purl("hello", Some("2.12")), "pkg:nix/hello@2.12");
        assert_eq!(
            purl("a+b?c=d", Some("1.0+git")),
            "pkg:nix/a%2Bb%3Fc%3Dd@1.0%2Bgit"
        );
        assert_eq!(purl("demo.service", None), "pkg:nix/demo.service");
    }

    #[test]
    fn file_names_give_versions() {
        assert_eq!(file_name_version("demo_1.0.raw").as_deref(), Some("1.0"));
        assert_eq!(file_name_version("demo.raw"), None);
        assert_eq!(file_name_version("demo_.raw"), None);
    }

    #[test]
    fn websites_are_urls() {
        assert_eq!(website(Some("https://a.org/x".into())).len(), 1);
        for bad in ["", "a.org", "https://a b", "1http://a", "ht tp://a"] {
            assert!(website(Some(bad.into())).is_empty(), "{bad}");
        }
    }

    #[test]
    fn a_missing_or_damaged_manifest_is_an_error() {
        let facts = fixture::facts("ID=nixos\n", b"{");
        let err = document(&Subject {
            facts: &facts,
            sha256: [0; 32],
            source_date_epoch: None,
        })
        .unwrap_err();
        assert!(
            err.to_string().starts_with("demo_1.0.raw: parsing the manifest"),
            "{err}"
        );
    }
}
