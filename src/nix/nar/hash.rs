/*!
A NAR's size and SHA-256, computed as it is written: what Nix records as
`narSize` and `narHash`.

`NarHasher` is a `Write` sink that counts and hashes the bytes and keeps
none, so hashing a store path of any size needs no temporary file and
little memory. Nix writes the hash as `sha256:<nix base-32>`; `parse_sha256`
also takes the hexadecimal form that `nix-store --query --hash` has printed
in some versions.
*/

use std::fmt;
use std::io::{self, Write};

use sha2::{Digest, Sha256};

use crate::nix::nixbase32;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NarDigest {
    /// The NAR's length in bytes.
    pub size: u64,
    pub sha256: [u8; 32],
}

impl NarDigest {
    /// `sha256:<nix base-32>`, as Nix writes `narHash`.
    pub fn nar_hash(&self) -> String {
        format!("sha256:{}", nixbase32::encode(&self.sha256))
    }
}

impl fmt::Display for NarDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} bytes)", self.nar_hash(), self.size)
    }
}

#[derive(Clone, Default)]
pub struct NarHasher {
    sha256: Sha256,
    size: u64,
}

impl NarHasher {
    pub fn new() -> NarHasher {
        NarHasher::default()
    }

    pub fn finish(self) -> NarDigest {
        NarDigest { size: self.size, sha256: self.sha256.finalize().into() }
    }
}

impl Write for NarHasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sha256.update(buf);
        self.size += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Why a `narHash` cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    #[error("narHash '{0}' does not start with 'sha256:'")]
    NotSha256(String),
    #[error("narHash '{hash}': '{pair}' is not a hexadecimal byte")]
    Hex { hash: String, pair: String },
    #[error("narHash '{hash}': {source}")]
    Base32 { hash: String, source: nixbase32::DecodeError },
}

/// Parses a `narHash`: `sha256:` and 52 characters of Nix base-32, or 64
/// hexadecimal digits.
pub fn parse_sha256(nar_hash: &str) -> Result<[u8; 32], HashError> {
    let Some(digest) = nar_hash.strip_prefix("sha256:") else {
        return Err(HashError::NotSha256(nar_hash.to_string()));
    };
    if digest.len() == 64 {
        return parse_hex(nar_hash, digest);
    }
    nixbase32::decode_array(digest).map_err(|source| HashError::Base32 {
        hash: nar_hash.to_string(),
        source,
    })
}

fn parse_hex(nar_hash: &str, hex: &str) -> Result<[u8; 32], HashError> {
    let mut bytes = [0u8; 32];
    for (byte, pair) in bytes.iter_mut().zip(hex.as_bytes().chunks(2)) {
        let pair = String::from_utf8_lossy(pair);
        *byte = u8::from_str_radix(&pair, 16).map_err(|_| HashError::Hex {
            hash: nar_hash.to_string(),
            pair: pair.to_string(),
        })?;
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The NAR of an empty regular file, and its hash and size as Nix gives
    // them (`nix-hash --type sha256 --base32` of an empty file).
    const EMPTY_FILE_HASH: &str =
        "sha256:0ip26j2h11n1kgkz36rl4akv694yz65hr72q4kv4b3lxcbi65b3p";

    fn empty_file_nar() -> Vec<u8> {
        let mut nar = Vec::new();
        for s in ["nix-archive-1", "(", "type", "regular", "contents", "", ")"]
        {
            nar.extend((s.len() as u64).to_le_bytes());
            nar.extend(s.as_bytes());
            nar.resize(nar.len().div_ceil(8) * 8, 0);
        }
        nar
    }

    #[test]
    fn counts_and_hashes_what_is_written() {
        let nar = empty_file_nar();
        let mut hasher = NarHasher::new();
        for chunk in nar.chunks(5) {
            hasher.write_all(chunk).unwrap();
        }
        let digest = hasher.finish();
        assert_eq!(digest.size, nar.len() as u64);
        assert_eq!(digest.size, 112);
        assert_eq!(digest.nar_hash(), EMPTY_FILE_HASH);
        assert_eq!(parse_sha256(EMPTY_FILE_HASH).unwrap(), digest.sha256);
    }

    #[test]
    fn parses_hex_and_refuses_other_forms() {
        let hex = format!("sha256:{}", "0f".repeat(32));
        assert_eq!(parse_sha256(&hex).unwrap(), [0x0f; 32]);
        let sha1 = "sha1:kpcd173cq987hw957sx6m0868wv3x6d9";
        assert_eq!(parse_sha256(sha1), Err(HashError::NotSha256(sha1.into())));
        let sri = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
        assert_eq!(parse_sha256(sri), Err(HashError::NotSha256(sri.into())));
        let short =
            "sha256:0ip26j2h11n1kgkz36rl4akv694yz65hr72q4kv4b3lxcbi65b3";
        let err = parse_sha256(short).unwrap_err();
        assert!(matches!(err, HashError::Base32 { .. }), "{err}");
        assert!(err.to_string().contains("takes 52 characters, not 51"));
        let bad_hex = format!("sha256:{}", "0g".repeat(32));
        assert_eq!(
            parse_sha256(&bad_hex),
            Err(HashError::Hex { hash: bad_hex.clone(), pair: "0g".into() })
        );
    }
}
