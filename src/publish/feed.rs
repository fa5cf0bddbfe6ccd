/*!
A feed: the directory a web server serves to hosts that follow it with
systemd-sysupdate, and the names of the files in it.

The feed is the files `SHA256SUMS` lists (`crate::systemd::sha256sums`),
beside it in one directory, and `SHA256SUMS.gpg`, a detached signature of
it, when the feed is signed. Its files are of three kinds, by name:

- **image files**, `NAME_VERSION.raw`, which a host's transfer
  (`MatchPattern=NAME_@v.raw`) installs: `NAME` as portablectl cuts the
  prefix (`crate::systemd::image_name`), `VERSION` a version for this
  project's builder and for systemd-sysupdate (`crate::systemd::version`),
  and without `.raw` in it, where sysupdate's pattern would end the
  version early and miss the file;
- **companions** of an image: its SBOM, `NAME_VERSION.cdx.json`
  (`COMPANION_SUFFIXES`), which goes and stays with it;
- **other files**, which sysupdate ignores and `publish` keeps.

No other name may start with an image file's name: systemd-sysupdate 257
matches `MatchPattern=NAME_@v.raw` against the start of a name only (its
`pattern_match()` does not check that the name ends with the pattern;
later versions do), so it takes `NAME_VERSION.raw.anything` for version
VERSION of the image and installs it in the image's place (seen: a
`counter_1.raw.cdx.json` installed as `counter_1.raw`).

Names starting with `.` are not the feed's: `publish` writes its files
aside under such names (`.publish-N`) before it renames them into place.
*/

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::systemd::sha256sums::{self, Digest, Entries};
use crate::systemd::{image_name, version};

/// The manifest's name, which systemd-sysupdate appends to the URL.
pub const MANIFEST: &str = "SHA256SUMS";
/// Its detached signature's.
pub const SIGNATURE: &str = "SHA256SUMS.gpg";
/// What every file `publish` writes aside is named, followed by more.
pub const ASIDE_PREFIX: &str = ".publish-";
/// What a companion's name ends with in place of its image's `.raw`: the
/// SBOM's (`passthru.sbom`, `portable-service-builder sbom`).
pub const COMPANION_SUFFIXES: &[&str] = &[".cdx.json"];

/// What a file of a feed is, by its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `NAME_VERSION.raw`.
    Image { pname: String, version: String },
    /// `NAME_VERSION` and a companion suffix: goes with the image `image`.
    Companion { image: String },
    /// Anything else.
    Other,
}

/// What `name` is in a feed; fails when no host could take it or it is
/// not a feed's file at all.
pub fn classify(name: &str) -> Result<Kind> {
    if name == MANIFEST || name == SIGNATURE {
        bail!(
            "'{name}' is the feed's own (publish writes it): it cannot be \
             published as a file"
        );
    }
    if name.starts_with('.') {
        bail!(
            "'{name}' starts with '.': a feed's files are visible (web \
             servers often hide such names, and publish writes its \
             temporary files under them)"
        );
    }
    sha256sums::check_name(name)
        .map_err(|e| anyhow::anyhow!("{e}: systemd-sysupdate refuses it"))?;
    if let Some(image) = name.strip_suffix(".raw") {
        let (pname, version) = image_parts(name, image)?;
        return Ok(Kind::Image { pname, version });
    }
    if let Some(image) = image_at_start(name) {
        bail!(
            "'{name}' starts with the image file name '{image}': \
             systemd-sysupdate 257 would take it for that image and install \
             it in the image's place (a companion is named \
             NAME_VERSION{}, without '.raw')",
            COMPANION_SUFFIXES.join(" or NAME_VERSION")
        );
    }
    for suffix in COMPANION_SUFFIXES {
        if let Some(stem) = name.strip_suffix(suffix) {
            if stem.contains('_') {
                let image = format!("{stem}.raw");
                image_parts(&image, stem).with_context(|| {
                    format!(
                        "'{name}' is named as a file that goes with the \
                         image '{image}'"
                    )
                })?;
                return Ok(Kind::Companion { image });
            }
        }
    }
    Ok(Kind::Other)
}

/// The image file name `name` starts with and goes on after, as
/// systemd-sysupdate 257 matches `MatchPattern=NAME_@v.raw`: `NAME_`, a
/// version up to the first `.raw`, then anything.
fn image_at_start(name: &str) -> Option<&str> {
    let (pname, rest) = name.split_once('_')?;
    let image = &name[..pname.len() + 1 + rest.find(".raw")? + 4];
    let stem = image.strip_suffix(".raw")?;
    (image.len() < name.len() && image_parts(image, stem).is_ok())
        .then_some(image)
}

/// The pname and version of the image file `name` (`stem` without
/// `.raw`).
fn image_parts(name: &str, stem: &str) -> Result<(String, String)> {
    let Some((pname, version)) = stem.split_once('_') else {
        bail!(
            "the image file '{name}' has no version: a feed's images are \
             NAME_VERSION.raw, which a host's MatchPattern=NAME_@v.raw \
             finds"
        );
    };
    image_name::check_pname(pname)
        .with_context(|| format!("the image file '{name}'"))?;
    image_name::check_version(version)
        .with_context(|| format!("the image file '{name}'"))?;
    if !version::is_valid(version) {
        bail!(
            "the image file '{name}': systemd-sysupdate does not take \
             '{version}' for a version (letters, digits and .,_-+ only)"
        );
    }
    if version.contains(".raw") {
        bail!(
            "the image file '{name}': its version '{version}' holds \
             '.raw', where systemd-sysupdate's MatchPattern=\
             {pname}_@v.raw ends the version, so no host would find it"
        );
    }
    Ok((pname.to_string(), version.to_string()))
}

/// How `Listing::read` reads a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// A feed: every file is hashed, and a listed file must match its
    /// line (a file not listed is listed when the feed is next published).
    Feed,
    /// A release: its listed files must be there, and no other; their
    /// bytes are checked as they are copied, so that publish reads them
    /// once.
    Release,
}

/// A directory of files and its manifest, as read: a feed, or a release
/// (a feed of one image version, as `passthru.release` builds it).
#[derive(Debug)]
pub struct Listing {
    pub dir: PathBuf,
    /// What `SHA256SUMS` lists (empty when there is none).
    pub manifest: Entries,
    /// Whether there is a `SHA256SUMS` at all.
    pub has_manifest: bool,
    /// Whether there is a `SHA256SUMS.gpg`.
    pub signed: bool,
    /// The visible files that are there, each with its digest: as listed
    /// (after checking it) or, for files not listed, as read.
    pub files: BTreeMap<String, Digest>,
    /// Files `publish` wrote aside and a run that stopped left there.
    pub leftovers: Vec<String>,
}

impl Listing {
    /// Reads `dir`: every listed file must be there.
    pub fn read(dir: &Path, reading: Reading) -> Result<Listing> {
        let manifest_path = dir.join(MANIFEST);
        let (manifest, has_manifest) = match fs::read(&manifest_path) {
            Ok(bytes) => (
                sha256sums::parse(&bytes).with_context(|| {
                    format!(
                        "{} is not a manifest systemd-sysupdate reads",
                        manifest_path.display()
                    )
                })?,
                true,
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                (Entries::new(), false)
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("cannot read {}", manifest_path.display())
                })
            }
        };
        let mut listing = Listing {
            dir: dir.to_path_buf(),
            manifest,
            has_manifest,
            signed: false,
            files: BTreeMap::new(),
            leftovers: Vec::new(),
        };
        let entries = fs::read_dir(dir)
            .with_context(|| format!("cannot read {}", dir.display()))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry
                .with_context(|| format!("cannot read {}", dir.display()))?;
            let Ok(name) = entry.file_name().into_string() else {
                bail!(
                    "{}: a name there is not UTF-8 ({:?}), which \
                     systemd-sysupdate refuses in a manifest",
                    dir.display(),
                    entry.file_name()
                );
            };
            names.push(name);
        }
        names.sort();
        for name in names {
            let path = dir.join(&name);
            if name.starts_with(ASIDE_PREFIX) {
                listing.leftovers.push(name);
                continue;
            }
            if name.starts_with('.') || name == MANIFEST {
                continue;
            }
            let kind = fs::symlink_metadata(&path)
                .with_context(|| format!("cannot stat {}", path.display()))?
                .file_type();
            if !kind.is_file() {
                bail!(
                    "{} is not a regular file: a feed holds files only \
                     (publish renames them into place, and lists each)",
                    path.display()
                );
            }
            if name == SIGNATURE {
                listing.signed = true;
                continue;
            }
            let digest = match (listing.manifest.get(&name), reading) {
                (Some(listed), Reading::Release) => *listed,
                (Some(listed), Reading::Feed) => {
                    let digest = crate::digest::hash_file(&path)?;
                    if digest != *listed {
                        bail!(
                            "{} does not match {MANIFEST}: it lists sha256 \
                             {}, the file has {}, so it changed after \
                             {MANIFEST} was written, and hosts refuse it: \
                             restore it, or remove it and its line (an \
                             image with its companions and theirs)",
                            path.display(),
                            crate::digest::hex(listed),
                            crate::digest::hex(&digest)
                        );
                    }
                    digest
                }
                (None, Reading::Feed) => crate::digest::hash_file(&path)?,
                (None, Reading::Release) => bail!(
                    "{} is not listed in {}",
                    path.display(),
                    manifest_path.display()
                ),
            };
            listing.files.insert(name, digest);
        }
        for name in listing.manifest.keys() {
            if !listing.files.contains_key(name) {
                bail!(
                    "{} lists '{name}', which is not in {}: restore it, or \
                     remove its line",
                    manifest_path.display(),
                    dir.display()
                );
            }
        }
        Ok(listing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(pname: &str, version: &str) -> Kind {
        Kind::Image { pname: pname.into(), version: version.into() }
    }

    #[test]
    fn names_of_a_feed() {
        assert_eq!(classify("demo_1.0.raw").unwrap(), image("demo", "1.0"));
        assert_eq!(
            classify("my-app.v2_2024.01_rc1+x.raw").unwrap(),
            image("my-app.v2", "2024.01_rc1+x")
        );
        assert_eq!(
            classify("demo_1.0.cdx.json").unwrap(),
            Kind::Companion { image: "demo_1.0.raw".into() }
        );
        assert_eq!(
            classify("demo_1.0.2.cdx.json").unwrap(),
            Kind::Companion { image: "demo_1.0.2.raw".into() }
        );
        assert_eq!(classify("README").unwrap(), Kind::Other);
        assert_eq!(classify("demo.txt").unwrap(), Kind::Other);
    }

    #[test]
    fn names_a_host_would_not_take() {
        for (name, why) in [
            ("SHA256SUMS", "is the feed's own"),
            ("SHA256SUMS.gpg", "is the feed's own"),
            (".hidden", "starts with '.'"),
            ("a\tb", "control character"),
            ("demo.raw", "has no version"),
            ("_1.raw", "pname ''"),
            ("demo_1~rc1.raw", "would break the image file name"),
            ("demo_1.rawx.raw", "holds '.raw'"),
            ("demo_.raw", "would break the image file name"),
            ("demo_1.0.raw.cdx.json", "257 would take it for that image"),
            (
                "demo_1.0.raw.sig",
                "starts with the image file name 'demo_1.0.raw'",
            ),
            ("demo_1.0.rawx", "would take it for that image"),
            ("demo_1~rc.cdx.json", "goes with the image 'demo_1~rc.raw'"),
        ] {
            let err = format!("{:#}", classify(name).unwrap_err());
            assert!(err.contains(why), "{name}: {err}");
        }
        // A pname with '_' is cut as portablectl cuts it, and what is
        // left is a version; only a bad prefix is refused.
        assert_eq!(classify("de_mo_1.raw").unwrap(), image("de", "mo_1"));
    }
}
