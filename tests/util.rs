/*!
Helpers shared by the end-to-end tests: running the real tools (`nix-store`,
`nix-hash`, `mksquashfs`, `unsquashfs`) and building fixture trees.

A missing tool is a failure naming the tool, never a skipped test: the
machines that run these tests install them.
*/

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::Command;

/// Runs `program` with `args` and returns its standard output; panics,
/// naming the program, when it is missing or fails.
pub fn run(program: &str, args: &[&str]) -> Vec<u8> {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (install it): {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// `run`, with the output as one trimmed line of text.
pub fn run_line(program: &str, args: &[&str]) -> String {
    String::from_utf8(run(program, args)).unwrap().trim().to_string()
}

/// Builds, at `root`, a tree with every kind of thing a store path holds:
/// plain, executable and empty files, symlinks (one dangling), nested and
/// empty directories, and names whose byte order differs from a locale's
/// (case, punctuation, digits, UTF-8 and a name that is not UTF-8).
pub fn store_like_tree(root: &Path) {
    let file = |path: &str, contents: &[u8], mode: u32| {
        let path = root.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, contents).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    };
    file("bin/hello", b"#!/bin/sh\necho hello\n", 0o755);
    file("share/doc/README", b"eight by", 0o644);
    file("share/doc/empty", b"", 0o644);
    file("share/doc/odd", &[0xa5; 1001], 0o600);
    file("lib/deeply/nested/dirs/file", b"deep\n", 0o444);
    fs::create_dir_all(root.join("share/empty-dir")).unwrap();
    symlink("hello", root.join("bin/hi")).unwrap();
    symlink("../share/doc", root.join("bin/doc")).unwrap();
    symlink("/nonexistent/target", root.join("dangling")).unwrap();
    for name in ["B", "a", "Z", "_z", "a.b", "a-b", "a_b", "10", "9", "A b"] {
        file(&format!("names/{name}"), name.as_bytes(), 0o644);
    }
    file("names/\u{e9}t\u{e9}", b"utf-8", 0o644);
    let not_utf8 = root.join("names").join(OsStr::from_bytes(b"\xff\xfe"));
    fs::write(not_utf8, b"bytes").unwrap();
}
