//! Helpers for the end-to-end tests: build expressions with the real
//! `nix-build` (in the Nix sandbox, against `nix/host.nix` and the builder
//! that cargo built for this run), and look into images with the real
//! `unsquashfs`.
//!
//! Tools are never optional: a missing `nix-build` or `unsquashfs` fails
//! the test with a message naming it (CI installs them).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BUILDER: &str = env!("CARGO_BIN_EXE_portable-service-builder");

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A Nix command with the settings every build of this project gets
/// (`scripts/nix.conf`: the sandbox, with the host's tools let in for
/// `nix/host.nix`, and no binary cache).
pub fn nix_command(program: &str) -> Command {
    let conf = repo().join("scripts/nix.conf");
    let settings = fs::read_to_string(&conf)
        .unwrap_or_else(|e| panic!("reading {}: {e}", conf.display()));
    let mut cmd = Command::new(program);
    cmd.env("NIX_CONFIG", settings);
    cmd
}

/// The version of the Nix the tests run, as (major, minor).
pub fn nix_version() -> (u32, u32) {
    let line = stdout_line("nix-build", &["--version"]);
    let version = line.rsplit(' ').next().unwrap_or_default();
    let mut parts = version.split('.').map(|p| p.parse().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// `expr` evaluated with the host package set's attributes in scope
/// (`portableService`, `writeText`, `runCommand`, `busybox`, ...).
pub fn with_host(expr: &str) -> String {
    format!(
        "with import {}/nix/host.nix {{ builderBinary = {BUILDER}; }}; {expr}",
        repo().display()
    )
}

pub fn run(cmd: &mut Command) -> Output {
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {program} (is it installed?): {e}")
    })
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Builds `expr` (with the host package set in scope) and returns the
/// output path; panics with the build log on failure.
pub fn build(expr: &str) -> PathBuf {
    let output = run(nix_command("nix-build")
        .arg("--no-out-link")
        .arg("-E")
        .arg(with_host(expr)));
    assert!(
        output.status.success(),
        "nix-build failed:\n{}\nexpression: {expr}",
        stderr(&output)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    PathBuf::from(stdout.trim())
}

/// Builds `expr`, which must fail, and returns the build's stderr.
pub fn build_fails(expr: &str) -> String {
    let output = run(nix_command("nix-build")
        .arg("--no-out-link")
        .arg("-E")
        .arg(with_host(expr)));
    assert!(!output.status.success(), "nix-build succeeded: {expr}");
    stderr(&output)
}

/// Builds `expr` again with `nix-build --check`, which fails unless the
/// new output is bit for bit the one already in the store, and returns the
/// build log. `options` go to nix-build (`--cores 1`, ...).
pub fn rebuild_and_compare(expr: &str, options: &[&str]) -> String {
    let output = run(nix_command("nix-build")
        .args(["--no-out-link", "--check"])
        .args(options)
        .arg("-E")
        .arg(with_host(expr)));
    assert!(
        output.status.success(),
        "nix-build --check {options:?} failed:\n{}",
        stderr(&output)
    );
    stderr(&output)
}

/// Instantiates `expr`, which must fail at evaluation time, and returns
/// the message. Nothing is built, which shows that the error comes from
/// evaluation.
pub fn eval_fails(expr: &str) -> String {
    let output = run(Command::new("nix-instantiate")
        .arg("--eval")
        .arg("--strict")
        .arg("-E")
        .arg(with_host(&format!("({expr}).drvPath"))));
    assert!(!output.status.success(), "evaluation succeeded: {expr}");
    stderr(&output)
}

/// Asserts that `haystack` contains each of `needles`.
#[track_caller]
pub fn assert_contains(haystack: &str, needles: &[&str]) {
    for needle in needles {
        assert!(
            haystack.contains(needle),
            "expected to find\n```\n{needle}\n```\nin\n```\n{haystack}\n```"
        );
    }
}

/// One entry of `unsquashfs -lln`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub mode: String,
    pub owner: String,
    pub size: u64,
    pub target: Option<String>,
}

/// A squashfs image, read with `unsquashfs`.
pub struct Unsquashfs {
    pub path: PathBuf,
}

impl Unsquashfs {
    pub fn new(path: impl Into<PathBuf>) -> Unsquashfs {
        let path = path.into();
        assert!(path.is_file(), "no image at {}", path.display());
        Unsquashfs { path }
    }

    fn unsquashfs(&self, args: &[&str]) -> String {
        let output =
            run(Command::new("unsquashfs").args(args).arg(&self.path));
        assert!(output.status.success(), "unsquashfs: {}", stderr(&output));
        String::from_utf8(output.stdout).unwrap()
    }

    /// Every entry, by path relative to the root (the root is "").
    pub fn entries(&self) -> BTreeMap<String, Entry> {
        let listing = self.unsquashfs(&["-lln", "-d", ""]);
        let mut entries = BTreeMap::new();
        for line in listing.lines() {
            // mode owner size date time path[ -> target]
            let (fields, rest) = split_fields(line, 5);
            let (path, target) = match rest.split_once(" -> ") {
                Some((p, t)) => (p, Some(t.to_string())),
                None => (rest, None),
            };
            entries.insert(
                path.trim_start_matches('/').to_string(),
                Entry {
                    mode: fields[0].to_string(),
                    owner: fields[1].to_string(),
                    size: fields[2].parse().unwrap(),
                    target,
                },
            );
        }
        entries
    }

    pub fn cat(&self, path: &str) -> Vec<u8> {
        let output = run(Command::new("unsquashfs")
            .arg("-cat")
            .arg(&self.path)
            .arg(path));
        assert!(
            output.status.success(),
            "unsquashfs -cat {path}: {}",
            stderr(&output)
        );
        output.stdout
    }

    pub fn cat_string(&self, path: &str) -> String {
        String::from_utf8(self.cat(path)).unwrap()
    }

    /// The names in /etc/systemd/system.
    pub fn units(&self) -> Vec<String> {
        self.entries()
            .into_keys()
            .filter_map(|p| {
                p.strip_prefix("etc/systemd/system/").map(str::to_string)
            })
            .collect()
    }

    /// The superblock facts `unsquashfs -s` prints.
    pub fn superblock(&self) -> String {
        self.unsquashfs(&["-s"])
    }
}

/// `portable-service-builder ARGS...`.
pub fn builder(args: &[&str]) -> Output {
    run(Command::new(BUILDER).args(args))
}

/// `inspect --json` of `image`, which must succeed.
#[track_caller]
pub fn inspect_json(image: &Path) -> serde_json::Value {
    let output =
        run(Command::new(BUILDER).args(["inspect", "--json"]).arg(image));
    assert!(output.status.success(), "{}", stderr(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// `verify ARGS...`, which must find something (exit status 1): its
/// findings.
#[track_caller]
pub fn findings(args: &[&str]) -> String {
    let output = builder(&[&["verify"][..], args].concat());
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(
        output.status.code(),
        Some(1),
        "verify {args:?}: {stdout}{}",
        stderr(&output)
    );
    stdout
}

/// `portable-service-builder verify IMAGE [--base BASE]`.
pub fn verify(image: &Path, base: Option<&Path>) -> Output {
    let mut cmd = Command::new(BUILDER);
    cmd.arg("verify").arg(image);
    if let Some(base) = base {
        cmd.arg("--base").arg(base);
    }
    run(&mut cmd)
}

/// Asserts that `verify` passed and said `report`.
#[track_caller]
pub fn assert_verified(output: &Output, report: &str) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", stderr(output));
    assert_eq!(stdout, report);
}

/// The first `n` whitespace-separated fields of `line`, and the rest of it
/// after the single space that follows them.
fn split_fields(line: &str, n: usize) -> (Vec<&str>, &str) {
    let mut fields = Vec::new();
    let mut rest = line;
    for _ in 0..n {
        rest = rest.trim_start();
        let end = rest.find(' ').unwrap_or(rest.len());
        fields.push(&rest[..end]);
        rest = &rest[end..];
    }
    (fields, rest.strip_prefix(' ').unwrap_or(rest))
}

pub fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// A minimal image's expression: `pname` "demo" with one service unit;
/// `extra` (Nix attribute bindings) adds or overrides arguments.
pub fn demo_image(extra: &str) -> String {
    format!(
        r#"portableService ({{
             pname = "demo";
             version = "1.0";
             units = [ (writeText "demo.service" ''
               [Service]
               ExecStart=${{busybox}}/bin/sleep infinity
             '') ];
           }} // {{ {extra} }})"#
    )
}

/// An `.attrs.json` for running the builder by hand, as Nix would write it
/// for the derivation `expr`: its structured attributes, the closure that
/// `exportReferencesGraph` asks for (its roots are built first), and `out`
/// as the output.
pub fn attrs_for_hand_run(expr: &str, out: &Path) -> serde_json::Value {
    let output =
        run(nix_command("nix-instantiate").arg("-E").arg(with_host(expr)));
    assert!(output.status.success(), "nix-instantiate: {}", stderr(&output));
    let drv = String::from_utf8(output.stdout).unwrap().trim().to_string();
    let output = run(Command::new("nix")
        .args(["--extra-experimental-features", "nix-command"])
        .args(["show-derivation", &drv]));
    assert!(
        output.status.success(),
        "nix show-derivation: {}",
        stderr(&output)
    );
    let shown: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap();
    let derivation = &shown[&drv];
    let mut attrs: serde_json::Value =
        serde_json::from_str(derivation["env"]["__json"].as_str().unwrap())
            .unwrap();
    let input_drvs: Vec<&String> =
        derivation["inputDrvs"].as_object().unwrap().keys().collect();
    let output =
        run(nix_command("nix-store").arg("--realise").args(&input_drvs));
    assert!(
        output.status.success(),
        "nix-store --realise: {}",
        stderr(&output)
    );
    let roots: Vec<String> = attrs["exportReferencesGraph"]["closure"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    attrs["closure"] = closure_info(&roots);
    attrs["outputs"] = serde_json::json!({ "out": out });
    attrs
}

/// The closure of `roots` as `exportReferencesGraph` describes it.
pub fn closure_info(roots: &[String]) -> serde_json::Value {
    let query = |args: &[&str]| -> Vec<String> {
        let output = run(Command::new("nix-store").arg("--query").args(args));
        assert!(
            output.status.success(),
            "nix-store --query: {}",
            stderr(&output)
        );
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    };
    let mut args = vec!["--requisites"];
    args.extend(roots.iter().map(String::as_str));
    let paths = query(&args);
    let infos: Vec<serde_json::Value> = paths
        .iter()
        .map(|p| {
            serde_json::json!({
                "path": p,
                "narHash": query(&["--hash", p])[0],
                "narSize": query(&["--size", p])[0].parse::<u64>().unwrap(),
                "references": query(&["--references", p]),
            })
        })
        .collect();
    serde_json::Value::Array(infos)
}

/// Runs the builder as Nix would, on `attrs`, in the build directory
/// `build_dir`, with `umask` and `$NIX_BUILD_CORES` set to `cores`.
pub fn run_builder(
    attrs: &serde_json::Value,
    build_dir: &Path,
    umask: &str,
    cores: &str,
) -> Output {
    let file = build_dir.join(".attrs.json");
    std::fs::write(&file, serde_json::to_vec(attrs).unwrap()).unwrap();
    run(Command::new("/bin/sh")
        .args(["-c", &format!("umask {umask}; exec \"$0\""), BUILDER])
        .env_clear()
        .env("NIX_BUILD_TOP", build_dir)
        .env("NIX_BUILD_CORES", cores)
        .current_dir(build_dir))
}

/// Runs `program` with `args` and returns its standard output; panics,
/// naming the program, when it is missing or fails.
pub fn stdout_of(program: &str, args: &[&str]) -> Vec<u8> {
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

/// `stdout_of`, with the output as one trimmed line of text.
pub fn stdout_line(program: &str, args: &[&str]) -> String {
    String::from_utf8(stdout_of(program, args)).unwrap().trim().to_string()
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
