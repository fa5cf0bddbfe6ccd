/*!
What `publish` does to a feed, as a plain value: the steps, in the order
that keeps the feed valid whichever step is the last to run.

A host reads `SHA256SUMS` first and then fetches what it lists, so the
feed it sees is what the manifest in place says. Every step therefore
leaves a manifest in place whose every line names a file that is there
with that digest:

1. leftovers of a run that stopped (`.publish-N`, never listed) go;
2. each new file is copied aside, under a hidden name, and its bytes
   checked against the digest planned for it;
3. the new `SHA256SUMS` is written aside, and signed aside with `gpg`
   when the feed is signed;
4. the new files are renamed into place: there, but not yet listed;
5. `SHA256SUMS.gpg`, then `SHA256SUMS`, are renamed into place: the
   new feed is served from this one rename on;
6. the files of pruned versions, no longer listed, are removed.

Nothing that a host may be reading is ever written over: a file of a
version is never replaced (publish refuses other bytes under a published
name), and the manifest and signature are replaced by rename. A run that
stops before step 5 leaves the previous feed served, with files that are
there but not listed (the next `publish` lists them, as it lists every
file there, or prunes them); one that stops in step 6 leaves files no
longer listed, which the next `publish --keep` removes.

One pair of renames cannot be one: between the signature's rename and the
manifest's (two system calls), a signed feed's signature is that of the
manifest to come. A host reading the feed then refuses it, as it refuses a
bad signature, and installs nothing; the next `publish` writes both again.

Each file written aside is flushed to disk before it is renamed, and the
directory after each rename and removal, so that after a power cut the
manifest names no file whose rename was lost.
*/

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::publish::feed::{self, Kind, Listing, MANIFEST, SIGNATURE};
use crate::publish::gpg::Signing;
use crate::systemd::sha256sums::{self, Digest, Entries};
use crate::systemd::version;

/// A file to publish: where it is, the name it gets, and its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addition {
    pub name: String,
    pub source: PathBuf,
    pub digest: Digest,
    /// Where the digest comes from, for the error when the bytes differ:
    /// a release's manifest, or the file as read before.
    pub digest_from: String,
}

/// One step of a plan, run in the feed's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Removes a file an interrupted run left aside.
    RemoveLeftover { name: String },
    /// Copies `source` to the hidden file `aside`, which must hash to
    /// `digest`.
    CopyAside {
        source: PathBuf,
        aside: String,
        digest: Digest,
        digest_from: String,
    },
    /// Writes the new manifest to the hidden file `aside`.
    WriteManifestAside { aside: String, text: String },
    /// Signs the manifest written aside, into the hidden file `aside`.
    SignAside { manifest: String, aside: String, signing: Signing },
    /// Renames `from` to `to` in the feed.
    Rename { from: String, to: String },
    /// Removes a file the manifest in place no longer lists.
    Remove { name: String },
}

/// The steps, and what they do to the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// What the new manifest lists.
    pub manifest: Entries,
    /// The files the feed gets.
    pub added: Vec<String>,
    /// Files given that the feed has already, with the same bytes.
    pub present: Vec<String>,
    /// The files of the versions `keep` prunes.
    pub removed: Vec<String>,
}

fn aside_name(what: &str) -> String {
    format!("{}{what}", feed::ASIDE_PREFIX)
}

/// Plans publishing `additions` into the feed `listing`, keeping the
/// newest `keep` versions of each image (all when `None`), signed with
/// `signing` when given. Fails, naming the file and the rule, when a
/// host could not follow the feed that would result.
pub fn plan(
    listing: &Listing,
    additions: &[Addition],
    keep: Option<usize>,
    signing: Option<&Signing>,
) -> Result<Plan> {
    if keep == Some(0) {
        bail!("--keep 0 would remove every version: keep at least 1");
    }
    if listing.signed && signing.is_none() {
        bail!(
            "{} is signed ({SIGNATURE}), and a new {MANIFEST} without a \
             new signature would make hosts refuse it: give --gpg-key, or \
             remove {SIGNATURE} to publish unsigned",
            listing.dir.display()
        );
    }

    // The files of the new feed: those there and those given.
    let mut files: BTreeMap<String, Digest> = listing.files.clone();
    let mut new: BTreeMap<String, &Addition> = BTreeMap::new();
    let mut present = Vec::new();
    for addition in additions {
        let name = &addition.name;
        feed::classify(name)
            .with_context(|| format!("{}", addition.source.display()))?;
        if let Some(other) = new.get(name) {
            if other.digest != addition.digest {
                bail!(
                    "{} and {} are both named '{name}', with other bytes: a \
                     feed has one file of a name",
                    other.source.display(),
                    addition.source.display()
                );
            }
            continue;
        }
        match listing.files.get(name) {
            Some(there) if *there == addition.digest => {
                present.push(name.clone());
            }
            Some(there) if !listing.manifest.contains_key(name) => bail!(
                "{} is in the feed's directory, not yet listed (left by a \
                 publish that stopped, or put there by hand), with other \
                 bytes (sha256 {}) than {} (sha256 {}): remove it, or \
                 publish without {} to list it",
                listing.dir.join(name).display(),
                crate::digest::hex(there),
                addition.source.display(),
                crate::digest::hex(&addition.digest),
                addition.source.display()
            ),
            Some(there) => bail!(
                "{} is already published with other bytes (sha256 {}), \
                 and {} has sha256 {}: a published version's files never \
                 change, since hosts that have it would not fetch it \
                 again; give the new build a new version",
                listing.dir.join(name).display(),
                crate::digest::hex(there),
                addition.source.display(),
                crate::digest::hex(&addition.digest)
            ),
            None => {
                new.insert(name.clone(), addition);
                files.insert(name.clone(), addition.digest);
            }
        }
    }

    // The images of each name, and the files that go with each image.
    let mut images: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut companions: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for name in files.keys() {
        let path = listing.dir.join(name);
        match feed::classify(name)
            .with_context(|| format!("{}", path.display()))?
        {
            Kind::Image { pname, version } => {
                images.entry(pname).or_default().push((version, name.clone()))
            }
            Kind::Companion { image } => {
                companions.entry(image).or_default().push(name.clone())
            }
            Kind::Other => {}
        }
    }
    for (image, names) in &companions {
        if !files.contains_key(image) {
            bail!(
                "'{}' goes with the image '{image}', which the feed would \
                 not have: publish the image with it",
                names[0]
            );
        }
    }

    // Newest first, in systemd-sysupdate's order; one file a version.
    let mut removed = Vec::new();
    for versions in images.values_mut() {
        versions.sort_by(|(a, _), (b, _)| version::compare(b, a));
        for pair in versions.windows(2) {
            if version::compare(&pair[0].0, &pair[1].0).is_eq() {
                bail!(
                    "'{}' and '{}' are one version to systemd-sysupdate, \
                     which orders versions with strverscmp_improved() \
                     (leading zeros and characters other than letters, \
                     digits and ~-^. do not count): a host would take either",
                    pair[1].1,
                    pair[0].1
                );
            }
        }
        let Some(keep) = keep else { continue };
        for (version, name) in versions.iter().skip(keep) {
            if new.contains_key(name) {
                bail!(
                    "--keep {keep} would remove '{name}' as soon as it is \
                     published: the feed has {keep} newer version(s) of it \
                     than {version}"
                );
            }
            // Its companions first: a run that stops in between leaves
            // an image without them, which the next run lists or prunes
            // again, never a companion without its image.
            removed
                .extend(companions.get(name).into_iter().flatten().cloned());
            removed.push(name.clone());
        }
    }
    let gone: BTreeSet<&String> = removed.iter().collect();
    let manifest: Entries = files
        .iter()
        .filter(|(name, _)| !gone.contains(name))
        .map(|(name, digest)| (name.clone(), *digest))
        .collect();
    let text = sha256sums::render(&manifest)?;

    let mut steps: Vec<Step> = listing
        .leftovers
        .iter()
        .map(|name| Step::RemoveLeftover { name: name.clone() })
        .collect();
    let asides: Vec<(String, &Addition)> = new
        .values()
        .enumerate()
        .map(|(k, addition)| (aside_name(&k.to_string()), *addition))
        .collect();
    for (aside, addition) in &asides {
        steps.push(Step::CopyAside {
            source: addition.source.clone(),
            aside: aside.clone(),
            digest: addition.digest,
            digest_from: addition.digest_from.clone(),
        });
    }
    let manifest_aside = aside_name(MANIFEST);
    steps.push(Step::WriteManifestAside {
        aside: manifest_aside.clone(),
        text,
    });
    let signature_aside = aside_name(SIGNATURE);
    if let Some(signing) = signing {
        steps.push(Step::SignAside {
            manifest: manifest_aside.clone(),
            aside: signature_aside.clone(),
            signing: signing.clone(),
        });
    }
    for (aside, addition) in &asides {
        steps.push(Step::Rename {
            from: aside.clone(),
            to: addition.name.clone(),
        });
    }
    if signing.is_some() {
        steps.push(Step::Rename {
            from: signature_aside,
            to: SIGNATURE.to_string(),
        });
    }
    steps
        .push(Step::Rename { from: manifest_aside, to: MANIFEST.to_string() });
    steps.extend(
        removed.iter().map(|name| Step::Remove { name: name.clone() }),
    );

    Ok(Plan {
        steps,
        manifest,
        added: new.into_keys().collect(),
        present,
        removed,
    })
}

/// Flushes the directory, so that renames and removals in it last.
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot flush {} to disk", dir.display()))
}

/// A new hidden file in the feed, which must not exist.
fn create_aside(path: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

impl Step {
    /// Runs the step in the feed `dir`.
    pub fn run(&self, dir: &Path) -> Result<()> {
        match self {
            Step::RemoveLeftover { name } | Step::Remove { name } => {
                let path = dir.join(name);
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(e).with_context(|| {
                            format!("cannot remove {}", path.display())
                        })
                    }
                }
                sync_dir(dir)
            }
            Step::CopyAside { source, aside, digest, digest_from } => {
                let path = dir.join(aside);
                let result = copy_checked(source, &path, digest, digest_from);
                if result.is_err() {
                    let _ = fs::remove_file(&path);
                }
                result
            }
            Step::WriteManifestAside { aside, text } => {
                let path = dir.join(aside);
                let mut file = create_aside(&path)?;
                io::Write::write_all(&mut file, text.as_bytes())
                    .and_then(|()| file.sync_all())
                    .with_context(|| {
                        format!("cannot write {}", path.display())
                    })
            }
            Step::SignAside { manifest, aside, signing } => {
                signing.sign(&dir.join(manifest), &dir.join(aside))
            }
            Step::Rename { from, to } => {
                let (from, to) = (dir.join(from), dir.join(to));
                fs::rename(&from, &to).with_context(|| {
                    format!(
                        "cannot rename {} to {}",
                        from.display(),
                        to.display()
                    )
                })?;
                sync_dir(dir)
            }
        }
    }
}

/// Copies `source` to `aside`, flushed to disk, and fails unless the
/// bytes copied hash to `digest`.
fn copy_checked(
    source: &Path,
    aside: &Path,
    digest: &Digest,
    digest_from: &str,
) -> Result<()> {
    let mut input = File::open(source)
        .with_context(|| format!("cannot open {}", source.display()))?;
    let mut output = create_aside(aside)?;
    let copied = crate::digest::copy_hashing(&mut input, &mut output)
        .with_context(|| {
            format!("cannot copy {} to {}", source.display(), aside.display())
        })?;
    if copied != *digest {
        bail!(
            "{} has sha256 {}, but {digest_from} says {}: it changed, or \
             was damaged, since; nothing of it was published",
            source.display(),
            crate::digest::hex(&copied),
            crate::digest::hex(digest)
        );
    }
    output
        .sync_all()
        .with_context(|| format!("cannot write {}", aside.display()))
}

impl Plan {
    /// Runs every step in the feed `dir`. A failed step leaves the feed
    /// valid (see the module's documentation); what a failure left aside
    /// is removed on the way out when it can be, and else by the next
    /// run.
    pub fn run(&self, dir: &Path) -> Result<()> {
        for (k, step) in self.steps.iter().enumerate() {
            if let Err(err) = step.run(dir) {
                self.discard_asides(dir, k);
                return Err(err);
            }
        }
        Ok(())
    }

    /// Removes the hidden files that steps before `failed` wrote and no
    /// rename has moved yet.
    fn discard_asides(&self, dir: &Path, failed: usize) {
        let renamed: BTreeSet<&String> = self.steps[..failed]
            .iter()
            .filter_map(|step| match step {
                Step::Rename { from, .. } => Some(from),
                _ => None,
            })
            .collect();
        for step in &self.steps[..failed] {
            let aside = match step {
                Step::CopyAside { aside, .. }
                | Step::WriteManifestAside { aside, .. }
                | Step::SignAside { aside, .. } => aside,
                _ => continue,
            };
            if !renamed.contains(aside) {
                let _ = fs::remove_file(dir.join(aside));
            }
        }
    }
}
