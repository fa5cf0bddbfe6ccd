//! Releases and feeds end to end: `passthru.release` and
//! `passthru.sysupdate` built by the real nix-build, `publish` run as the
//! built binary, and the feed checked with `sha256sum -c`, as a host
//! without systemd-sysupdate checks it.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::util::{assert_contains, build, eval_fails, run, stderr, BUILDER};

fn sha256sum_check(dir: &Path) {
    let output = run(Command::new("sha256sum")
        .args(["--check", "--strict", "SHA256SUMS"])
        .current_dir(dir));
    assert!(
        output.status.success(),
        "sha256sum -c in {}: {output:?}",
        dir.display()
    );
}

fn publish(args: &[&Path]) -> std::process::Output {
    run(Command::new(BUILDER).arg("publish").args(args))
}

#[test]
fn release_of_an_image() {
    let release = build("demo.release");
    let image = build("demo");
    let sbom = build("demo.sbom");
    let mut names: Vec<String> = fs::read_dir(&release)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["SHA256SUMS", "demo_1.0.cdx.json", "demo_1.0.raw"]);
    // The image under its own name and its SBOM beside it, byte for byte.
    assert_eq!(
        fs::read(release.join("demo_1.0.raw")).unwrap(),
        fs::read(image.join("demo_1.0.raw")).unwrap()
    );
    assert_eq!(
        fs::read(release.join("demo_1.0.cdx.json")).unwrap(),
        fs::read(&sbom).unwrap()
    );
    sha256sum_check(&release);
}

#[test]
fn publish_releases_into_a_feed() {
    let tmp = tempfile::TempDir::new().unwrap();
    let feed = tmp.path().join("feed");
    let one = build("demo.release");
    let two = build(
        "(portableService { pname = \"demo\"; version = \"1.10\"; \
         units = [ (writeText \"demo.service\" \"[Service]\\nExecStart=/bin/true\\n\") ]; \
         format = \"ddi\"; }).release",
    );
    let output = publish(&[&feed, &one, &two]);
    assert!(output.status.success(), "{}", stderr(&output));
    let said = String::from_utf8_lossy(&output.stdout);
    assert_contains(
        &said,
        &[
            "added demo_1.0.cdx.json, demo_1.0.raw, demo_1.10.cdx.json, \
             demo_1.10.raw",
            "SHA256SUMS lists 4 file(s)",
        ],
    );
    sha256sum_check(&feed);
    // --keep 1 keeps 1.10, which systemd orders after 1.0.
    let output = publish(&[&feed, Path::new("--keep"), Path::new("1")]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!feed.join("demo_1.0.raw").exists());
    assert!(!feed.join("demo_1.0.cdx.json").exists());
    assert!(feed.join("demo_1.10.raw").exists());
    assert!(feed.join("demo_1.10.cdx.json").exists());
    sha256sum_check(&feed);
    // The same release again with other bytes: refused, exit status 2.
    let other = tmp.path().join("demo_1.10.raw");
    fs::write(&other, "other bytes").unwrap();
    let before = fs::read(feed.join("SHA256SUMS")).unwrap();
    let output = publish(&[&feed, &other]);
    assert_eq!(output.status.code(), Some(2));
    assert_contains(
        &stderr(&output),
        &[
            "portable-service-builder: error: ",
            "demo_1.10.raw is already published with other bytes",
        ],
    );
    assert_eq!(fs::read(feed.join("SHA256SUMS")).unwrap(), before);
}

#[test]
fn host_tree() {
    let tree =
        build("demo.sysupdate { url = \"https://example.com/feed/\"; }");
    let transfer =
        fs::read_to_string(tree.join("etc/sysupdate.demo.d/demo.transfer"))
            .unwrap();
    assert_contains(
        &transfer,
        &[
            "Verify=yes\n",
            "Path=https://example.com/feed/\n",
            "MatchPattern=demo_@v.raw\n",
            "InstancesMax=2\n",
        ],
    );
    assert_eq!(
        fs::read_to_string(tree.join("etc/sysupdate.demo.d/demo.conf"))
            .unwrap(),
        transfer
    );
    let script = tree.join("usr/local/sbin/portable-update");
    assert_eq!(
        fs::metadata(&script).unwrap().permissions().mode() & 0o777,
        0o555
    );
    assert!(fs::read_to_string(&script).unwrap().starts_with("#!/bin/sh\n"));
    for unit in ["portable-update@.service", "portable-update@.timer"] {
        assert!(
            tree.join("etc/systemd/system").join(unit).is_file(),
            "{unit}"
        );
    }
    assert_eq!(
        fs::read_link(tree.join("etc/systemd/system/timers.target.wants/portable-update@demo.timer")).unwrap(),
        Path::new("/etc/systemd/system/portable-update@.timer")
    );
    // The script parses as POSIX sh (dash, Debian's /bin/sh).
    let output = run(Command::new("dash").arg("-n").arg(&script));
    assert!(output.status.success(), "{}", stderr(&output));
    let unverified = build("demo.sysupdate { url = \"http://127.0.0.1:8098/\"; verify = false; instancesMax = 3; }");
    let transfer = fs::read_to_string(
        unverified.join("etc/sysupdate.demo.d/demo.transfer"),
    )
    .unwrap();
    assert_contains(&transfer, &["Verify=no\n", "InstancesMax=3\n"]);
}

#[test]
fn host_tree_arguments_checked_at_evaluation() {
    for (args, message) in [
        ("{ url = \"ftp://example.com/\"; }", "url \"ftp://example.com/\" is not a feed systemd-sysupdate can read"),
        ("{ url = \"https://example.com/a b\"; }", "without spaces or control characters"),
        ("{ url = \"https://example.com/\"; verify = \"no\"; }", "verify must be true or false, not \"no\""),
        ("{ url = \"https://example.com/\"; instancesMax = 1; }", "instancesMax = 1 would keep no version to roll back to"),
    ] {
        let err = eval_fails(&format!("demo.sysupdate {args}"));
        assert_contains(&err, &["portableService: passthru.sysupdate: ", message]);
    }
}
