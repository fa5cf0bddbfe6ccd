//! The builder run by hand, as Nix runs it: each way it can fail gives a
//! clear message, a non-zero status, and no output at all.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::util::*;

struct Failure {
    output: Output,
}

impl Failure {
    #[track_caller]
    fn says(&self, needles: &[&str]) {
        assert_eq!(
            self.output.status.code(),
            Some(2),
            "{}",
            stderr(&self.output)
        );
        let mut needles = needles.to_vec();
        needles.push("portable-service-builder: error: ");
        assert_contains(&stderr(&self.output), &needles);
    }
}

/// Runs the builder on `attrs` and checks that it failed without leaving
/// its output directory behind.
fn fails(attrs: &serde_json::Value, dir: &Path) -> Failure {
    let output = run_builder(attrs, dir, "022", "2");
    assert!(!output.status.success());
    let out = PathBuf::from(attrs["outputs"]["out"].as_str().unwrap());
    assert!(!out.exists(), "a failed build left {}", out.display());
    Failure { output }
}

fn demo_attrs(dir: &Path) -> serde_json::Value {
    attrs_for_hand_run(
        &demo_image(r#"description = "direct";"#),
        &dir.join("out"),
    )
}

#[test]
fn succeeds_when_run_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_builder(&demo_attrs(dir.path()), dir.path(), "022", "2");
    assert!(output.status.success(), "{}", stderr(&output));
    let names: Vec<String> = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| file_name(&e.unwrap().path()))
        .collect();
    assert_eq!(names, ["demo_1.0.raw"]);
}

#[test]
fn missing_attrs() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(Command::new(BUILDER)
        .env_clear()
        .env("NIX_BUILD_TOP", dir.path())
        .env("NIX_ATTRS_JSON_FILE", "/nonexistent/.attrs.json"));
    assert_eq!(output.status.code(), Some(2));
    assert_contains(
        &stderr(&output),
        &["found no .attrs.json", "__structuredAttrs"],
    );
}

#[test]
fn malformed_attrs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".attrs.json"), "{\"pname\": ").unwrap();
    let output = run(Command::new(BUILDER)
        .env_clear()
        .env("NIX_BUILD_TOP", dir.path()));
    assert_eq!(output.status.code(), Some(2));
    let attrs_file = dir.path().join(".attrs.json");
    assert_contains(
        &stderr(&output),
        &[&format!("parsing {}", attrs_file.display()), "EOF while parsing"],
    );

    let mut attrs = demo_attrs(dir.path());
    attrs.as_object_mut().unwrap().remove("units");
    fails(&attrs, dir.path()).says(&["missing field `units`"]);

    let mut attrs = demo_attrs(dir.path());
    attrs["attrsVersion"] = 7.into();
    fails(&attrs, dir.path())
        .says(&["has attrsVersion 7, but this builder reads version 3"]);
}

#[test]
fn missing_closure_path() {
    let dir = tempfile::tempdir().unwrap();
    let mut attrs = demo_attrs(dir.path());
    let missing = "/nix/store/00000000000000000000000000000000-missing";
    attrs["closure"].as_array_mut().unwrap().push(serde_json::json!({
        "path": missing, "narHash": "sha256:0", "narSize": 1, "references": [],
    }));
    fails(&attrs, dir.path())
        .says(&[&format!("reading {missing}"), "No such file"]);
}

/// A directory in the store that Nix does not know, removed on drop.
struct FakeStorePath(PathBuf);

impl Drop for FakeStorePath {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
#[ignore = "writes a directory into /nix/store behind Nix's back; \
            scripts/test runs it (cargo test -- --include-ignored)"]
fn unreadable_closure_path() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeStorePath(PathBuf::from(
        "/nix/store/11111111111111111111111111111111-unreadable",
    ));
    std::fs::create_dir_all(&fake.0).unwrap();
    let secret = fake.0.join("secret");
    std::fs::write(&secret, "x").unwrap();
    Command::new("chmod").arg("400").arg(&secret).status().unwrap();

    let mut attrs = demo_attrs(dir.path());
    attrs["closure"].as_array_mut().unwrap().push(serde_json::json!({
        "path": fake.0, "narHash": "sha256:0", "narSize": 1, "references": [],
    }));
    std::fs::write(
        dir.path().join(".attrs.json"),
        serde_json::to_vec(&attrs).unwrap(),
    )
    .unwrap();
    Command::new("chmod").arg("777").arg(dir.path()).status().unwrap();
    // As root every file is readable: run as nobody, as Nix's build users
    // are not root either.
    let output = run(Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", BUILDER])
        .env_clear()
        .env("NIX_BUILD_TOP", dir.path()));
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert_contains(
        &stderr(&output),
        &[&format!("opening {}", secret.display()), "Permission denied"],
    );
    assert!(
        !dir.path().join("out").exists(),
        "a failed build left its output"
    );
}

#[test]
fn missing_mksquashfs() {
    let dir = tempfile::tempdir().unwrap();
    let mut attrs = demo_attrs(dir.path());
    attrs["mksquashfs"] = "/nonexistent/bin/mksquashfs".into();
    fails(&attrs, dir.path())
        .says(&["starting /nonexistent/bin/mksquashfs", "No such file"]);
}

#[test]
fn failing_mksquashfs() {
    let dir = tempfile::tempdir().unwrap();
    let mut attrs = demo_attrs(dir.path());
    // The builder lets -X options through; mksquashfs refuses this one.
    attrs["squashCompression"] = "xz -Xdict-size 3%".into();
    let failure = fails(&attrs, dir.path());
    failure.says(&["mksquashfs failed (exit status: 1)"]);
    // mksquashfs's own message reaches the log too.
    assert_contains(&stderr(&failure.output), &["dict-size"]);
}
