// The NAR writer against Nix itself: `nix-store --dump`, `nix-hash` and the
// hash and size that Nix records for a path added to its store.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use portable_service::nix::nar::host;
use portable_service::nix::nixbase32;

use crate::util::{stdout_line, stdout_of, store_like_tree};

/// Checks our NAR of `path` against Nix's, byte for byte, and our digest
/// against `nix-hash`.
fn assert_same_as_nix(path: &Path) {
    let ours = {
        let mut nar = Vec::new();
        host::dump(path, &mut nar).unwrap();
        nar
    };
    let path_str = path.to_str().unwrap();
    let nix = stdout_of("nix-store", &["--dump", path_str]);
    assert!(ours == nix, "our NAR of {} differs from Nix's", path.display());
    let digest = host::digest(path).unwrap();
    assert_eq!(digest.size, nix.len() as u64, "{}", path.display());
    let nix_hash =
        stdout_line("nix-hash", &["--type", "sha256", "--base32", path_str]);
    assert_eq!(digest.nar_hash(), format!("sha256:{nix_hash}"));
}

#[test]
fn single_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("file");
    fs::write(&path, b"hello, world\n").unwrap();
    assert_same_as_nix(&path);
}

#[test]
fn empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty");
    fs::write(&path, b"").unwrap();
    assert_same_as_nix(&path);
}

#[test]
fn executable_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("script");
    // Lengths that are and are not multiples of 8 test the padding.
    for contents in [&b"#!/bin/sh\n"[..], b"#!/bin/sh\nexit 0\n"] {
        fs::write(&path, contents).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        assert_same_as_nix(&path);
    }
}

#[test]
fn symlink_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("link");
    symlink("/nix/store/some-target", &path).unwrap();
    assert_same_as_nix(&path);
}

#[test]
fn empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty");
    fs::create_dir(&path).unwrap();
    assert_same_as_nix(&path);
}

#[test]
fn whole_tree() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    store_like_tree(&root);
    assert_same_as_nix(&root);
}

#[test]
fn what_nix_records_in_its_store() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("portable-service-nar-test");
    store_like_tree(&root);
    let store_path =
        stdout_line("nix-store", &["--add", root.to_str().unwrap()]);
    let digest = host::digest(Path::new(&store_path)).unwrap();
    let hash = stdout_line("nix-store", &["--query", "--hash", &store_path]);
    let size = stdout_line("nix-store", &["--query", "--size", &store_path]);
    assert_eq!(digest.nar_hash(), hash, "{store_path}");
    assert_eq!(digest.size.to_string(), size, "{store_path}");
    // And Nix's base-32 of it decodes to our bytes.
    let nix32 = hash.strip_prefix("sha256:").unwrap();
    assert_eq!(nixbase32::decode(nix32).unwrap(), digest.sha256);
}

/// Digests of each length Nix prints, of varied bytes.
#[test]
fn nixbase32_agrees_with_nix_hash() {
    for seed in 1..=8u32 {
        for (kind, len) in [("sha256", 32), ("sha1", 20), ("sha512", 64)] {
            let bytes: Vec<u8> = (0..len)
                .map(|i| (seed.wrapping_mul(2_654_435_761) >> (i % 24)) as u8)
                .collect();
            let hex: String =
                bytes.iter().map(|b| format!("{b:02x}")).collect();
            let nix32 = stdout_line(
                "nix-hash",
                &["--type", kind, "--to-base32", &hex],
            );
            assert_eq!(nixbase32::encode(&bytes), nix32, "{kind} {hex}");
            assert_eq!(nixbase32::decode(&nix32).unwrap(), bytes, "{nix32}");
        }
    }
}
