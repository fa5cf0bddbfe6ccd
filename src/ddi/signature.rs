/*!
The PKCS#7 signature of a root hash, made and checked by the `openssl`
command, and the fingerprint of the certificate.

# What systemd wants

The Discoverable Partitions Specification ("Verity"): `signature` is "the
PKCS#7 signature of the root hash, in Base64-encoded DER format ... the
same format used by the Linux kernel's dm-verity signature logic, i.e. the
signed data should be the exact string representation of the hash", the
lowercase hex string. systemd-repart makes it with
`PKCS7_sign(cert, key, NULL, hex, PKCS7_DETACHED|PKCS7_NOATTR|PKCS7_BINARY)`
(systemd-stable v252.31 `src/partition/repart.c:3783`): detached, no
signed attributes, the signer's certificate included. The kernel checks it
against its keyrings when the verity device is activated, and newer
systemd falls back to checking it in user space against
the `.crt` files in `/etc/verity.d` (`do_crypt_activate_verity()`; see
shared/research/systemd.md section 4.4). The kernel's PKCS#7 parser takes
RSA and, on recent kernels, ECDSA signers.

# Why the openssl command

Three ways were weighed:

- The `openssl` command (this module). `openssl smime -sign -binary
  -noattr` calls the same `PKCS7_sign()` with the same three flags as
  systemd-repart (apps/smime.c sets `PKCS7_DETACHED` unless `-nodetach`),
  so the output is what systemd and the kernel already accept; systemd's
  own documentation signs root hashes with `openssl smime -sign`. It reads
  every key OpenSSL reads: RSA and EC, PKCS#8 and traditional PEM,
  encrypted keys (the passphrase is asked on the terminal, or given with
  OpenSSL's `-passin` syntax), and keys in tokens through OpenSSL 3
  providers. It costs the builder nothing: no library to link and nothing
  to build. Signing happens outside Nix, by design (a private key must
  never enter the store), on a machine where `openssl` is almost always
  installed already.
- The `openssl` crate: the same library, in process. It would need
  `pkg-config` and OpenSSL's headers to build the builder, and put
  libssl in its closure, for every image build in every Nix sandbox,
  while only `sign` and `verify --certificate` use it.
- RustCrypto (`cms`, `x509-cert`, `rsa`, `p256`): pure Rust, but the
  `rsa` crate's private-key operation leaks timing (RUSTSEC-2023-0071,
  the Marvin attack; the advisory listed no patched version as of
  rustsec/advisory-db#3208, September 2026, and rsa 0.10.0, out since,
  is yet to be judged), which rules it out for signing for now; `cms` is
  pre-1.0, encrypted traditional PEM keys are not read, and each key
  type would be code of ours to get right.

The price: output that must match systemd's is made by a program we do
not ship, and its errors are text. Exit statuses are documented
(`openssl-smime(1)`: 4 means the signature did not verify), and the one
error worth its own kind, a key that does not belong to the certificate,
is recognised from OpenSSL's stable reason string. The end-to-end tests
check the signatures with a second, independent implementation (GnuTLS's
`certtool --p7-verify`) as well as `openssl cms -verify`.
*/

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use base64::Engine;
use sha2::{Digest, Sha256};

/// How to run `openssl`.
#[derive(Clone, Debug)]
pub struct Openssl {
    pub program: PathBuf,
}

impl Default for Openssl {
    /// `openssl` from `PATH`.
    fn default() -> Openssl {
        Openssl { program: "openssl".into() }
    }
}

/// A private key and the certificate that goes with it, both PEM files.
#[derive(Clone, Debug)]
pub struct Signer {
    pub key: PathBuf,
    pub certificate: PathBuf,
    /// For an encrypted key: OpenSSL's `-passin` argument (`pass:...`,
    /// `env:VAR`, `file:PATH`, `fd:N`). Without it OpenSSL asks on the
    /// terminal.
    pub passin: Option<OsString>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("cannot run {program}: {source}")]
    Run { program: PathBuf, source: std::io::Error },
    #[error("the key {key} does not belong to the certificate {certificate}")]
    KeyDoesNotMatchCertificate { key: PathBuf, certificate: PathBuf },
    #[error("{certificate}: not a PEM certificate (no BEGIN CERTIFICATE)")]
    NotPemCertificate { certificate: PathBuf },
    #[error("{program} failed to {action} ({status}): {stderr}")]
    Openssl {
        program: PathBuf,
        action: &'static str,
        status: std::process::ExitStatus,
        stderr: String,
    },
}

/// What a signature check concluded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    /// With OpenSSL's reason.
    Rejected(String),
}

impl Openssl {
    /// The DER PKCS#7 detached signature of `root_hash_hex` by `signer`.
    pub fn sign(
        &self,
        signer: &Signer,
        root_hash_hex: &str,
    ) -> Result<Vec<u8>, Error> {
        let mut cmd = Command::new(&self.program);
        cmd.args(["smime", "-sign", "-binary", "-noattr", "-md", "sha256"])
            .args(["-outform", "der"])
            .arg("-signer")
            .arg(&signer.certificate)
            .arg("-inkey")
            .arg(&signer.key);
        if let Some(passin) = &signer.passin {
            cmd.arg("-passin").arg(passin);
        }
        let output = self.run(&mut cmd, root_hash_hex.as_bytes())?;
        if output.status.success() && !output.stdout.is_empty() {
            return Ok(output.stdout);
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        // PKCS7_sign_add_signer's reason, from X509_check_private_key().
        if stderr.contains("private key does not match certificate") {
            return Err(Error::KeyDoesNotMatchCertificate {
                key: signer.key.clone(),
                certificate: signer.certificate.clone(),
            });
        }
        Err(self.failed("sign the root hash", &output))
    }

    /// Checks that `signature` (DER) signs `root_hash_hex` with the key of
    /// `certificate`. Only that certificate is used to find the signer
    /// (`-nointern`), and its chain is not checked (`-noverify`): whether
    /// to trust it is the host's business (`/etc/verity.d`, the kernel's
    /// keyring), not ours.
    pub fn check(
        &self,
        certificate: &Path,
        root_hash_hex: &str,
        signature: &[u8],
    ) -> Result<Verdict, Error> {
        let mut content =
            tempfile::NamedTempFile::new().map_err(|source| Error::Io {
                path: std::env::temp_dir(),
                source,
            })?;
        content.write_all(root_hash_hex.as_bytes()).map_err(|source| {
            Error::Io { path: content.path().to_owned(), source }
        })?;
        let mut cmd = Command::new(&self.program);
        cmd.args(["smime", "-verify", "-binary", "-inform", "der"])
            .args(["-nointern", "-noverify", "-out", "/dev/null"])
            .arg("-content")
            .arg(content.path())
            .arg("-certfile")
            .arg(certificate);
        let output = self.run(&mut cmd, signature)?;
        match output.status.code() {
            Some(0) => Ok(Verdict::Valid),
            // openssl-smime(1): "an error occurred verifying the message".
            Some(4) => Ok(Verdict::Rejected(reason(&output.stderr))),
            _ => Err(self.failed("check the signature", &output)),
        }
    }

    fn run(&self, cmd: &mut Command, stdin: &[u8]) -> Result<Output, Error> {
        let run_error =
            |source| Error::Run { program: self.program.clone(), source };
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(run_error)?;
        let mut pipe = child.stdin.take().expect("stdin is piped");
        // A broken pipe means openssl stopped reading; its status and
        // stderr say why.
        let _ = pipe.write_all(stdin);
        drop(pipe);
        child.wait_with_output().map_err(run_error)
    }

    fn failed(&self, action: &'static str, output: &Output) -> Error {
        Error::Openssl {
            program: self.program.clone(),
            action,
            status: output.status,
            stderr: reason(&output.stderr),
        }
    }
}

/// OpenSSL's messages, one line: the error queue's reason strings, which
/// come after the fifth colon of `...:error:CODE:LIB:FUNC:reason:file:line:`
/// lines, or the text as it is.
fn reason(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| match l.split(':').collect::<Vec<_>>().as_slice() {
            [_, "error", _, _, _, reason, ..] => reason,
            _ => l,
        })
        .collect();
    lines.join("; ")
}

/// The SHA-256 of the first certificate in a PEM file, in DER, as
/// lowercase hex: the DPS's `certificateFingerprint`.
pub fn certificate_fingerprint(certificate: &Path) -> Result<String, Error> {
    let pem = std::fs::read_to_string(certificate).map_err(|source| {
        Error::Io { path: certificate.to_owned(), source }
    })?;
    let not_pem =
        || Error::NotPemCertificate { certificate: certificate.to_owned() };
    let (_, rest) =
        pem.split_once("-----BEGIN CERTIFICATE-----").ok_or_else(not_pem)?;
    let (body, _) =
        rest.split_once("-----END CERTIFICATE-----").ok_or_else(not_pem)?;
    let b64: String = body.split_whitespace().collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| not_pem())?;
    Ok(hex(&Sha256::digest(der)))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_keeps_openssl_reasons() {
        let stderr = b"Verification failure\n\
            80EB0052607F0000:error:10800080:PKCS7 routines:\
            PKCS7_get0_signers:signer certificate not found:\
            ../crypto/pkcs7/pk7_smime.c:425:\n";
        assert_eq!(
            reason(stderr),
            "Verification failure; signer certificate not found"
        );
    }
}
