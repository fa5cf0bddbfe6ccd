/*!
`portable-service-builder publish DIR RELEASE...`: adds releases (or
image files) to a feed, the directory a web server serves to hosts that
follow it with systemd-sysupdate, several versions side by side.

- `feed`: the feed's files, their names and what a host takes;
- `plan`: what publishing does, as a list of steps that keep the feed
  valid whichever runs last (its documentation tells how);
- `gpg`: the manifest's signature, made by the `gpg` command.

A RELEASE is a directory that lists its files in a `SHA256SUMS` (what
`passthru.release` builds: the image and what goes with it): each listed
file is published, checked against its line as it is copied. Any other
argument is one file, published under its own name; a file that is
itself a store object (`/nix/store/<hash>-NAME`, as `passthru.sbom` is)
under its store name, `NAME`. The new `SHA256SUMS`
lists every file of the feed; `--keep N` keeps the newest N versions of
each image name (in systemd-sysupdate's order) and removes the others'
files; with `--gpg-key`, `SHA256SUMS.gpg` signs it.

What a host could not follow is refused before anything is written, and
the feed is left as it was: a name sysupdate or portablectl would not take,
two files of one version, a published file given again with other bytes,
a listed file that no longer matches its line, a signed feed given no key.
*/

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

pub mod feed;
pub mod gpg;
pub mod plan;

#[cfg(test)]
mod tests;

use crate::nix::store_path::StorePath;
use feed::{Listing, Reading, MANIFEST, SIGNATURE};
use gpg::Signing;
use plan::{Addition, Plan};

/// What `publish` was asked to do.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    pub dir: PathBuf,
    pub inputs: Vec<PathBuf>,
    pub keep: Option<usize>,
    pub signing: Option<Signing>,
}

/// The files to publish from `inputs`: each release's listed files, each
/// other path itself.
pub fn read_inputs(inputs: &[PathBuf]) -> Result<Vec<Addition>> {
    let mut additions = Vec::new();
    for input in inputs {
        let kind = std::fs::metadata(input)
            .with_context(|| format!("cannot read {}", input.display()))?;
        if kind.is_dir() {
            additions.extend(read_release(input)?);
            continue;
        }
        let Some(name) = input.file_name().and_then(|n| n.to_str()) else {
            bail!(
                "{}: its file name is not UTF-8, which systemd-sysupdate \
                 refuses in a manifest",
                input.display()
            );
        };
        let name =
            match StorePath::from_absolute_path(&input.to_string_lossy()) {
                Ok(object) => object.name().to_string(),
                Err(_) => name.to_string(),
            };
        additions.push(Addition {
            name,
            source: input.clone(),
            digest: crate::digest::hash_file(input)?,
            digest_from: "publish, which read it before,".to_string(),
        });
    }
    Ok(additions)
}

/// The files a release directory lists in its `SHA256SUMS`.
fn read_release(dir: &Path) -> Result<Vec<Addition>> {
    if !dir.join(MANIFEST).exists() {
        bail!(
            "{} is a directory without {MANIFEST}, so not a release \
             (passthru.release has one): give a release or files",
            dir.display()
        );
    }
    let listing = Listing::read(dir, Reading::Release).with_context(|| {
        format!("{} is not a release publish can take", dir.display())
    })?;
    let manifest_path = dir.join(MANIFEST);
    Ok(listing
        .manifest
        .iter()
        .map(|(name, digest)| Addition {
            name: name.clone(),
            source: dir.join(name),
            digest: *digest,
            digest_from: format!("{}", manifest_path.display()),
        })
        .collect())
}

/// Holds the feed against another `publish` for as long as it lives
/// (the lock goes with the descriptor): a second publish to the same
/// directory waits, and then plans from what the first left.
struct Lock {
    _directory: File,
}

impl Lock {
    fn take(dir: &Path) -> Result<Lock> {
        let file = File::open(dir)
            .with_context(|| format!("cannot open {}", dir.display()))?;
        loop {
            // SAFETY: flock on a descriptor this function owns.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(Lock { _directory: file });
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(err).with_context(|| {
                    format!("cannot lock {}", dir.display())
                });
            }
        }
    }
}

/// Publishes, and says what was done.
pub fn run(request: &Request) -> Result<String> {
    let dir = &request.dir;
    if !dir.exists() {
        std::fs::create_dir(dir).with_context(|| {
            format!("cannot create the feed directory {}", dir.display())
        })?;
    }
    let _lock = Lock::take(dir)?;
    let listing = Listing::read(dir, Reading::Feed)?;
    let additions = read_inputs(&request.inputs)?;
    let plan = plan::plan(
        &listing,
        &additions,
        request.keep,
        request.signing.as_ref(),
    )?;
    plan.run(dir)?;
    Ok(summary(dir, &plan, request.signing.as_ref()))
}

fn summary(dir: &Path, plan: &Plan, signing: Option<&Signing>) -> String {
    let mut lines = Vec::new();
    let list = |names: &[String]| names.join(", ");
    if !plan.added.is_empty() {
        lines.push(format!("added {}", list(&plan.added)));
    }
    if !plan.present.is_empty() {
        lines.push(format!("already there: {}", list(&plan.present)));
    }
    if !plan.removed.is_empty() {
        lines.push(format!("removed {}", list(&plan.removed)));
    }
    lines.push(format!(
        "{MANIFEST} lists {} file(s){}",
        plan.manifest.len(),
        match signing {
            Some(signing) => format!(
                ", signed by '{}' in {SIGNATURE}",
                signing.key.to_string_lossy()
            ),
            None => String::new(),
        }
    ));
    let digests: Vec<String> = plan
        .manifest
        .iter()
        .filter(|(name, _)| plan.added.contains(name))
        .map(|(name, digest)| {
            format!("  {}  {name}", crate::digest::hex(digest))
        })
        .collect();
    let mut text = format!("{}: {}\n", dir.display(), lines.join("; "));
    for line in digests {
        text.push_str(&line);
        text.push('\n');
    }
    text
}

/// `--gpg-key` and `--gpg-homedir` as the command line gives them.
pub fn signing(
    key: Option<OsString>,
    homedir: Option<PathBuf>,
) -> Result<Option<Signing>> {
    match (key, homedir) {
        (Some(key), homedir) => Ok(Some(Signing { key, homedir })),
        (None, Some(_)) => {
            bail!("--gpg-homedir names the keyring of --gpg-key: give both")
        }
        (None, None) => Ok(None),
    }
}
