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
  every key file OpenSSL reads: RSA and EC, PKCS#8 and traditional PEM,
  encrypted keys (the passphrase is asked on the terminal, or given with
  OpenSSL's `-passin` syntax). It costs the builder nothing: no library
  to link and nothing to build. Signing happens outside Nix, by design (a
  private key must never enter the store), on a machine where `openssl`
  is almost always installed already.
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

# What openssl is given

The key and certificate files are read by us, not by `openssl`: a regular
file of at most [`FILE_MAX`] bytes each, or an error naming the file (a
certificate path of `/dev/zero` would otherwise fill memory, a FIFO wait
forever). `openssl` gets the bytes we read, through files in memory
(`memfd_create`, passed as `/proc/self/fd/N`), so that what it signs with
is what we checked and took the fingerprint of, and the key is not copied
to a disk. A certificate file holds exactly one certificate: with two, the
signature partition could name one while the other signed, and
`-certfile` would accept either.

The price: output that must match systemd's is made by a program we do
not ship, and its errors are text. Exit statuses are documented
(`openssl-smime(1)`: 4 means the signature did not verify), and the one
error worth its own kind, a key that does not belong to the certificate,
is recognised from OpenSSL's stable reason string. The end-to-end tests
check the signatures with a second, independent implementation (GnuTLS's
`certtool --p7-verify`) as well as `openssl cms -verify`.
*/

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use base64::Engine;
use sha2::{Digest, Sha256};

/// The most a key or certificate file may hold: a PEM certificate with a
/// long chain of names is a few KiB, an RSA-16384 key under 13 KiB.
pub const FILE_MAX: u64 = 1 << 20;

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

/// A certificate file, read: exactly one PEM certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificate {
    path: PathBuf,
    /// The file as read, which is what `openssl` gets.
    pem: Vec<u8>,
    der: Vec<u8>,
}

/// A private key file, read (PEM or anything else `openssl` takes).
#[derive(Clone)]
pub struct Key {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        // Not the key.
        f.debug_struct("Key").field("path", &self.path).finish()
    }
}

/// A private key and the certificate that goes with it.
#[derive(Clone, Debug)]
pub struct Signer {
    pub key: Key,
    pub certificate: Certificate,
    /// For an encrypted key: OpenSSL's `-passin` argument (`pass:...`,
    /// `env:VAR`, `file:PATH`, `fd:N`). Without it OpenSSL asks on the
    /// terminal.
    pub passin: Option<OsString>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: the {what} must be a regular file, not {file_type}")]
    NotRegularFile {
        path: PathBuf,
        what: &'static str,
        file_type: &'static str,
    },
    #[error(
        "{path}: the {what} file is larger than {FILE_MAX} bytes, which no \
         PEM {what} needs"
    )]
    TooLarge { path: PathBuf, what: &'static str },
    #[error("cannot run {program}: {source}")]
    Run { program: PathBuf, source: io::Error },
    #[error("the key {key} does not belong to the certificate {certificate}")]
    KeyDoesNotMatchCertificate { key: PathBuf, certificate: PathBuf },
    #[error("{certificate}: not a PEM certificate (no BEGIN CERTIFICATE)")]
    NotPemCertificate { certificate: PathBuf },
    #[error(
        "{certificate}: holds {} PEM blocks ({}); a certificate file must \
         hold exactly one, the signer's certificate",
        blocks.len(),
        blocks.join(", ")
    )]
    NotOneCertificate { certificate: PathBuf, blocks: Vec<String> },
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

impl Signer {
    /// Reads the key and the certificate files (see [`Certificate::read`]).
    pub fn read(
        key: &Path,
        certificate: &Path,
        passin: Option<OsString>,
    ) -> Result<Signer, Error> {
        Ok(Signer {
            key: Key { path: key.to_owned(), bytes: read_small(key, "key")? },
            certificate: Certificate::read(certificate)?,
            passin,
        })
    }
}

impl Certificate {
    /// Reads a certificate file, which must hold one PEM certificate and
    /// no other PEM block: with two, a signature could name one and be
    /// made by the other. Text around the block is allowed (`openssl x509
    /// -text` writes some).
    pub fn read(path: &Path) -> Result<Certificate, Error> {
        let pem = read_small(path, "certificate")?;
        let not_pem =
            || Error::NotPemCertificate { certificate: path.to_owned() };
        let text = std::str::from_utf8(&pem).map_err(|_| not_pem())?;
        const BEGIN: &str = "-----BEGIN ";
        let blocks: Vec<String> = text
            .match_indices(BEGIN)
            .map(|(at, _)| {
                let label = &text[at + BEGIN.len()..];
                let end = label.find("-----").unwrap_or(label.len());
                label[..end].chars().take(40).collect()
            })
            .collect();
        match &blocks[..] {
            [] => return Err(not_pem()),
            [one] if one == "CERTIFICATE" => {}
            _ => {
                return Err(Error::NotOneCertificate {
                    certificate: path.to_owned(),
                    blocks,
                })
            }
        }
        let (_, rest) = text
            .split_once("-----BEGIN CERTIFICATE-----")
            .ok_or_else(not_pem)?;
        let (body, _) = rest
            .split_once("-----END CERTIFICATE-----")
            .ok_or_else(not_pem)?;
        let b64: String = body.split_whitespace().collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| not_pem())?;
        Ok(Certificate { path: path.to_owned(), pem, der })
    }

    /// The SHA-256 of the certificate in DER, as lowercase hex: the DPS's
    /// `certificateFingerprint`.
    pub fn fingerprint(&self) -> String {
        crate::digest::hex(&Sha256::digest(&self.der))
    }
}

/// The contents of the `what` file at `path`, which must be a regular file
/// of at most [`FILE_MAX`] bytes: anything else (`/dev/zero`, a FIFO that
/// nothing writes to) could take all memory or wait forever.
fn read_small(path: &Path, what: &'static str) -> Result<Vec<u8>, Error> {
    let io = |source| Error::Io { path: path.to_owned(), source };
    // Opening a FIFO would wait for a writer; O_NONBLOCK does not, and
    // the file type is checked before anything is read.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(io)?;
    let file_type = file.metadata().map_err(io)?.file_type();
    if !file_type.is_file() {
        let file_type = if file_type.is_dir() {
            "a directory"
        } else if file_type.is_char_device() {
            "a character device"
        } else if file_type.is_block_device() {
            "a block device"
        } else if file_type.is_fifo() {
            "a FIFO"
        } else {
            "a socket"
        };
        return Err(Error::NotRegularFile {
            path: path.to_owned(),
            what,
            file_type,
        });
    }
    let mut bytes = Vec::new();
    // One byte more than allowed tells a file that grew past the limit.
    file.take(FILE_MAX + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > FILE_MAX {
        return Err(Error::TooLarge { path: path.to_owned(), what });
    }
    Ok(bytes)
}

impl Openssl {
    /// The DER PKCS#7 detached signature of `root_hash_hex` by `signer`.
    /// `openssl` gets the key and the certificate as they were read.
    pub fn sign(
        &self,
        signer: &Signer,
        root_hash_hex: &str,
    ) -> Result<Vec<u8>, Error> {
        let key = self.in_memory(&signer.key.bytes)?;
        let certificate = self.in_memory(&signer.certificate.pem)?;
        let mut cmd = Command::new(&self.program);
        cmd.args(["smime", "-sign", "-binary", "-noattr", "-md", "sha256"])
            .args(["-outform", "der"])
            .arg("-signer")
            .arg(certificate.path())
            .arg("-inkey")
            .arg(key.path());
        if let Some(passin) = &signer.passin {
            cmd.arg("-passin").arg(passin);
        }
        let output = self.run(
            &mut cmd,
            root_hash_hex.as_bytes(),
            &[&key, &certificate],
        )?;
        if output.status.success() && !output.stdout.is_empty() {
            return Ok(output.stdout);
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        // PKCS7_sign_add_signer's reason, from X509_check_private_key().
        if stderr.contains("private key does not match certificate") {
            return Err(Error::KeyDoesNotMatchCertificate {
                key: signer.key.path.clone(),
                certificate: signer.certificate.path.clone(),
            });
        }
        Err(self.failed("sign the root hash", &output))
    }

    /// Checks that `signature` (DER) signs `root_hash_hex` with the key of
    /// `certificate`. Only that certificate is used to find the signer
    /// (`-nointern`: a certificate the signature carries is not looked
    /// at, so a signature by another key fails whatever it embeds), and
    /// its chain is not checked (`-noverify`): whether to trust it is the
    /// host's business (`/etc/verity.d`, the kernel's keyring), not ours.
    pub fn check(
        &self,
        certificate: &Certificate,
        root_hash_hex: &str,
        signature: &[u8],
    ) -> Result<Verdict, Error> {
        let content = self.in_memory(root_hash_hex.as_bytes())?;
        let certfile = self.in_memory(&certificate.pem)?;
        let mut cmd = Command::new(&self.program);
        cmd.args(["smime", "-verify", "-binary", "-inform", "der"])
            .args(["-nointern", "-noverify", "-out", "/dev/null"])
            .arg("-content")
            .arg(content.path())
            .arg("-certfile")
            .arg(certfile.path());
        let output = self.run(&mut cmd, signature, &[&content, &certfile])?;
        match output.status.code() {
            Some(0) => Ok(Verdict::Valid),
            // openssl-smime(1): "an error occurred verifying the message".
            Some(4) => Ok(Verdict::Rejected(reason(&output.stderr))),
            _ => Err(self.failed("check the signature", &output)),
        }
    }

    fn in_memory(&self, bytes: &[u8]) -> Result<InMemory, Error> {
        InMemory::new(bytes).map_err(|source| Error::Run {
            program: self.program.clone(),
            source,
        })
    }

    /// Runs `cmd` with `stdin`; the child gets `files` too.
    fn run(
        &self,
        cmd: &mut Command,
        stdin: &[u8],
        files: &[&InMemory],
    ) -> Result<Output, Error> {
        let run_error =
            |source| Error::Run { program: self.program.clone(), source };
        let fds: Vec<RawFd> = files.iter().map(|f| f.0.as_raw_fd()).collect();
        // SAFETY: between fork and exec the closure only calls fcntl(2),
        // which is async-signal-safe, on descriptors this process holds
        // open until the child has exited; it allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                for &fd in &fds {
                    if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
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

/// Bytes handed to `openssl` as a file that exists in memory only
/// (memfd_create(2)): it reads exactly what we read and checked, and a
/// private key is not copied to any disk. The descriptor is closed on exec
/// except in the child that `Openssl::run` starts, which opens it by its
/// `/proc/self/fd` path.
struct InMemory(File);

impl InMemory {
    fn new(bytes: &[u8]) -> io::Result<InMemory> {
        // SAFETY: a NUL-terminated name and flags; the result is checked.
        let fd = unsafe {
            libc::memfd_create(c"portable-service".as_ptr(), libc::MFD_CLOEXEC)
        };
        if fd == -1 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new descriptor that nothing else owns.
        let mut file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        file.write_all(bytes)?;
        Ok(InMemory(file))
    }

    /// Opening it gives a new file description, read from the start.
    fn path(&self) -> String {
        format!("/proc/self/fd/{}", self.0.as_raw_fd())
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
