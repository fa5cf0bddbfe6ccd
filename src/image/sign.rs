/*!
`portable-service-builder sign IMAGE --key KEY --certificate CERT --output
OUT`: signs a disk image only when `verify` finds nothing wrong with it.

`ddi::Verified` checks the disk (its table, hash tree, superblock and the
zeros between), then `verify::squashfs` what the squashfs in its root
partition holds (the store paths against the manifest and their NAR
hashes, portabled's rules, the paths the units name), as `verify` does;
only then is the signature made. The key and the certificate are read
first, so that a wrong file is reported before the image is read.
*/

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::ddi::signature::{Openssl, Signer};
use crate::ddi::{Ddi, Verified};
use crate::image::{survey, verify};

/// Writes `output`, the disk image `image` signed by `signer`, if `image`
/// verifies; returns the signed image.
pub fn sign(
    image: &Path,
    openssl: &Openssl,
    signer: &Signer,
    output: &Path,
) -> Result<Ddi> {
    let verified = Verified::open(image)?;
    let opened = survey::open(image)?;
    // The survey opens the path again: it must have found the file that
    // was verified and is signed, not one put in its place meanwhile.
    let identity = |m: std::fs::Metadata| (m.dev(), m.ino());
    let surveyed = opened.image.file().0.metadata();
    let checked = verified.file().metadata();
    let reading = || format!("reading {}", image.display());
    if identity(surveyed.with_context(reading)?)
        != identity(checked.with_context(reading)?)
    {
        bail!("{} was replaced while it was being checked", image.display());
    }
    let findings = verify::squashfs(&opened, None);
    if !findings.is_empty() {
        let lines: Vec<String> =
            findings.iter().map(|f| format!("  {f}")).collect();
        bail!(
            "{}: refusing to sign an image that does not verify:\n{}",
            image.display(),
            lines.join("\n")
        );
    }
    Ok(verified.sign(openssl, signer, output)?)
}
