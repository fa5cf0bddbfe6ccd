//! flake.nix and the overlay against a small nixpkgs-shaped stub, with
//! nixpkgs' own lib where the Nix running the tests can evaluate it (2.18
//! and later): the flake evaluates, `packages.default` (the builder,
//! compiled for real from the committed sources and Cargo.lock) and `demo`
//! build offline, and `nix flake check` passes.

use std::path::Path;
use std::process::Command;

use crate::util::*;

/// A copy of tests/nixpkgs-stub with the host's Rust toolchain and the
/// crates this repository needs, vendored.
fn stub(dir: &Path) -> String {
    let output = run(Command::new("cp")
        .arg("-r")
        .arg(repo().join("tests/nixpkgs-stub/."))
        .arg(dir));
    assert!(output.status.success(), "cp: {}", stderr(&output));
    let output = run(Command::new("cargo")
        .args(["vendor", "--locked", "--quiet"])
        .arg(dir.join("vendor"))
        .current_dir(repo()));
    assert!(output.status.success(), "cargo vendor: {}", stderr(&output));
    let output = run(Command::new("rustc").args(["--print", "sysroot"]));
    let toolchain =
        String::from_utf8(output.stdout).unwrap().trim().to_string();
    std::fs::write(
        dir.join("host-paths.nix"),
        format!("{{ toolchain = \"{toolchain}\"; vendor = ./vendor; }}\n"),
    )
    .unwrap();
    toolchain
}

fn nix_flake(
    toolchain: &str,
    stub: &Path,
    args: &[&str],
) -> std::process::Output {
    run(nix_command("nix")
        .args(["--extra-experimental-features", "nix-command flakes"])
        .args(args)
        .arg("--override-input")
        .arg("nixpkgs")
        .arg(format!("path:{}", stub.display()))
        .args(["--option", "extra-sandbox-paths", toolchain])
        .current_dir(repo()))
}

#[test]
fn flake_builds_and_checks_offline_against_a_stub() {
    let dir = tempfile::tempdir().unwrap();
    let toolchain = stub(dir.path());

    // The lib the stub gives this Nix: nixpkgs' own from 2.18 on.
    let release = run(Command::new("nix-instantiate")
        .arg("--eval")
        .arg("-E")
        .arg(format!(
            "(import {}/lib.nix).trivial.release or \"ours\"",
            dir.path().display()
        )));
    assert!(release.status.success(), "{}", stderr(&release));
    let vendored = std::fs::read_to_string(
        repo().join("tests/nixpkgs-stub/nixpkgs-lib/lib/.version"),
    )
    .unwrap();
    let expected =
        if nix_version() >= (2, 18) { vendored.trim() } else { "ours" };
    assert_eq!(
        String::from_utf8_lossy(&release.stdout).trim(),
        format!("\"{expected}\"")
    );

    let output = nix_flake(
        &toolchain,
        dir.path(),
        &["build", "--no-link", "--json", ".#default", ".#demo"],
    );
    assert!(output.status.success(), "nix build: {}", stderr(&output));
    let built: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap();
    // `nix build --json` lists the outputs in no particular order.
    let out = |name: &str| {
        built
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["outputs"]["out"].as_str().unwrap().to_string())
            .find(|out| out.contains(name))
            .unwrap_or_else(|| panic!("no output named {name}: {built}"))
    };

    let builder = Path::new(&out("-portable-service-builder-"))
        .join("bin/portable-service-builder");
    let help = run(Command::new(&builder).arg("--help"));
    assert!(help.status.success());
    assert_contains(
        &String::from_utf8_lossy(&help.stdout),
        &["usage: portable-service-builder"],
    );

    let image =
        Unsquashfs::new(Path::new(&out("-demo-img-")).join("demo_1.0.raw"));
    assert_contains(
        &image.cat_string("etc/os-release"),
        &["PORTABLE_PREFIXES=demo\n"],
    );
    assert_eq!(image.units(), ["demo.socket", "demo@.service"]);

    let output = nix_flake(&toolchain, dir.path(), &["flake", "check"]);
    assert!(output.status.success(), "nix flake check: {}", stderr(&output));

    let output = nix_flake(
        &toolchain,
        dir.path(),
        &[
            "eval",
            "--json",
            ".#packages.x86_64-linux.demo.passthru.imageFileName",
        ],
    );
    assert!(output.status.success(), "nix eval: {}", stderr(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "\"demo_1.0.raw\""
    );
}
