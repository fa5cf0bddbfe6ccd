/*!
Signing a feed's manifest: `SHA256SUMS.gpg`, a detached OpenPGP signature
of `SHA256SUMS`, which systemd-sysupdate (through systemd-pull) checks
with `gpg` against the host's import keyring before it trusts a line of
the manifest.

The `gpg` command signs, with a key from the signer's own keyring (or the
one `--gpg-homedir` names), so the key never leaves where it is kept and
never enters the Nix store; a passphrase or a smartcard is gpg's business
(its agent asks, as for any other signature).
*/

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Who signs: a key gpg knows by `key` (an ID, a fingerprint or a user
/// ID), in the keyring of `homedir` (gpg's default when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signing {
    pub key: OsString,
    pub homedir: Option<PathBuf>,
}

impl Signing {
    /// Writes the detached signature of `manifest` to `signature`, a path
    /// that does not exist yet.
    pub fn sign(&self, manifest: &Path, signature: &Path) -> Result<()> {
        let mut command = Command::new("gpg");
        command.args(["--batch", "--no-tty"]);
        if let Some(homedir) = &self.homedir {
            command.arg("--homedir").arg(homedir);
        }
        command
            .arg("--local-user")
            .arg(&self.key)
            .arg("--output")
            .arg(signature)
            .arg("--detach-sign")
            .arg(manifest);
        let output = command
            .output()
            .context("cannot run gpg (Debian: apt-get install gpg)")?;
        if !output.status.success() {
            let _ = std::fs::remove_file(signature);
            bail!(
                "gpg could not sign with the key '{}' ({}): {}",
                self.key.to_string_lossy(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }
}
