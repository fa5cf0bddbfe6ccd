/*!
SHA-256 digests: of files, read in pieces so that memory does not grow
with their size, and written as lower-case hex, as `sha256sum`,
`SHA256SUMS` manifests, CycloneDX hashes and dm-verity tools write them.
*/

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use anyhow::{Context, Result};
use sha2::{Digest as _, Sha256};

/// A SHA-256 digest.
pub type Digest = [u8; 32];

/// `bytes` in lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(2 * bytes.len());
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// The SHA-256 of what `reader` gives, and copies it to `sink`.
pub fn copy_hashing(
    reader: &mut impl Read,
    sink: &mut impl Write,
) -> io::Result<Digest> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 20];
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buffer[..n]);
        sink.write_all(&buffer[..n])?;
    }
    Ok(hasher.finalize().into())
}

/// The SHA-256 of the file at `path`.
pub fn hash_file(path: &Path) -> Result<Digest> {
    let mut file = File::open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    copy_hashing(&mut file, &mut io::sink())
        .with_context(|| format!("cannot read {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_file_digests() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "abc").unwrap();
        assert_eq!(
            hex(&hash_file(&path).unwrap()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
