//! `inspect` and `verify` on real images: good ones pass, and each way an
//! image can be wrong is named. Broken images are made by unpacking a good
//! one with unsquashfs, changing it, and packing it again with mksquashfs.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::*;

fn demo() -> PathBuf {
    build(&demo_image("")).join("demo_1.0.raw")
}

/// A copy of `image` with `edit` applied to its unpacked tree, under the
/// same file name (from which the unit prefix comes).
fn repack(image: &Path, dir: &Path, edit: impl FnOnce(&Path)) -> PathBuf {
    let root = dir.join("root");
    let output =
        run(Command::new("unsquashfs").arg("-d").arg(&root).arg(image));
    assert!(output.status.success(), "{}", stderr(&output));
    edit(&root);
    let copy = dir.join(file_name(image));
    let output = run(Command::new("mksquashfs").arg(&root).arg(&copy).args([
        "-noappend",
        "-all-root",
        "-no-xattrs",
        "-quiet",
        "-no-progress",
    ]));
    assert!(output.status.success(), "{}", stderr(&output));
    copy
}

/// The one store path in the unpacked `root` whose name ends with `name`.
fn store_path(root: &Path, name: &str) -> PathBuf {
    std::fs::read_dir(root.join("usr/nix/store"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| file_name(p).ends_with(name))
        .unwrap_or_else(|| panic!("no store path named {name}"))
}

#[track_caller]
fn verify_finds(image: &Path, needles: &[&str]) -> String {
    let stdout = findings(&[image.to_str().unwrap()]);
    assert_contains(&stdout, needles);
    stdout
}

#[test]
fn verify_passes_on_good_images() {
    assert_verified(
        &verify(&demo(), None),
        "demo_1.0.raw: verified 2 store paths and 1 unit\n",
    );
}

#[test]
fn one_changed_byte_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let mut busybox = PathBuf::new();
    let image = repack(&demo(), dir.path(), |root| {
        busybox = store_path(root, "-busybox-static");
        let binary = busybox.join("bin/busybox");
        let mut bytes = std::fs::read(&binary).unwrap();
        bytes[1000] ^= 1;
        std::fs::write(&binary, bytes).unwrap();
    });
    let store_path = format!("/nix/store/{}", file_name(&busybox));
    let stdout = verify_finds(
        &image,
        &[
            &format!("{store_path}: the image holds sha256:"),
            "but the manifest records sha256:",
        ],
    );
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
}

#[test]
fn a_missing_store_path_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let mut busybox = PathBuf::new();
    let image = repack(&demo(), dir.path(), |root| {
        busybox = store_path(root, "-busybox-static");
        std::fs::remove_dir_all(&busybox).unwrap();
    });
    let store_path = format!("/nix/store/{}", file_name(&busybox));
    verify_finds(
        &image,
        &[
            &format!("{store_path}: is recorded in the manifest, but not in the image"),
            &format!("refers to {store_path}, which the image does not hold"),
            &format!("names {store_path}/bin/sleep, which is not in the image"),
        ],
    );
}

#[test]
fn os_release_without_id_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let image = repack(&demo(), dir.path(), |root| {
        let os_release = root.join("etc/os-release");
        let text = std::fs::read_to_string(&os_release).unwrap();
        let text: String = text
            .lines()
            .filter(|l| !l.starts_with("ID="))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&os_release, text).unwrap();
    });
    let stdout = verify_finds(
        &image,
        &["/etc/os-release: has no ID=, which portabled requires"],
    );
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
}

#[test]
fn missing_mount_points_and_units_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let image = repack(&demo(), dir.path(), |root| {
        std::fs::remove_file(root.join("etc/machine-id")).unwrap();
        std::fs::remove_dir(root.join("proc")).unwrap();
        std::fs::write(root.join("etc/systemd/system/demo.service"), "")
            .unwrap();
    });
    verify_finds(
        &image,
        &[
            "/etc/machine-id: is not a file in the image",
            "/proc: is not a directory in the image",
            "/etc/systemd/system: no unit file that portabled would attach with the prefix 'demo'",
        ],
    );
}

/// A unit that names a store path whose context was discarded: Nix does
/// not know the dependency, so the build leaves the path out of the image.
const DANGLING: &str = r#"portableService {
    pname = "demo";
    version = "1.0";
    units = [ (writeText "demo.service" ''
      [Service]
      ExecStart=${builtins.unsafeDiscardStringContext "${runCommand "elsewhere" { } "mkdir -p $out/bin"}"}/bin/run
    '') ];
  }"#;

#[test]
fn a_unit_naming_a_store_path_not_in_the_image_is_found() {
    let image = build(DANGLING).join("demo_1.0.raw");
    let stdout = verify_finds(
        &image,
        &["/etc/systemd/system/demo.service: names /nix/store/"],
    );
    assert_contains(
        &stdout,
        &["-elsewhere/bin/run, which is not in the image"],
    );
    // The image's own check, in Nix, fails the same way.
    let log = build_fails(&format!("({DANGLING}).tests.verify"));
    assert_contains(&log, &["-elsewhere/bin/run, which is not in the image"]);
}

#[test]
fn tests_verify_builds_its_report() {
    let report = build(&format!("({}).tests.verify", demo_image("")));
    assert_eq!(
        std::fs::read_to_string(report).unwrap(),
        "demo_1.0.raw: verified 2 store paths and 1 unit\n"
    );
}

#[test]
fn inspect_shows_what_the_image_holds() {
    let out = build(&demo_image(
        r#"symlinks = [ { object = "${busybox}/bin/sh"; symlink = "/bin/sh"; } ];
           squash-compression = "zstd"; squash-block-size = "256K";"#,
    ));
    let image = out.join("demo_1.0.raw");
    let output = builder(&["inspect", image.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    let size = std::fs::metadata(&image).unwrap().len();
    assert_contains(
        &text,
        &[
            &format!("demo_1.0.raw: portable service, {size} bytes, squashfs, zstd with 262144-byte blocks"),
            "  PORTABLE_PREFIXES=demo\n",
            "units portabled attaches with the prefix 'demo':\n  demo.service  (/etc/systemd/system/demo.service)\n",
            "  /nix -> usr/nix\n",
            "  /bin/sh -> /nix/store/",
            "store paths in /usr/nix/store (2, ",
            "-busybox-static\n",
        ],
    );

    let json = inspect_json(&image);
    assert_eq!(json["kind"], "portable-service");
    assert_eq!(json["prefix"], "demo");
    assert_eq!(json["compressor"], "zstd");
    assert_eq!(json["blockSize"], 262144);
    assert_eq!(json["imageSize"], size);
    assert_eq!(json["units"][0]["name"], "demo.service");
    assert!(json["units"][0]["ignoredBecause"].is_null());
    let busybox = json["storePaths"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["path"].as_str().unwrap().ends_with("-busybox-static"))
        .unwrap();
    let recorded = stdout_line(
        "nix-store",
        &["--query", "--size", busybox["path"].as_str().unwrap()],
    );
    assert_eq!(busybox["narSize"].to_string(), recorded);
}

#[test]
fn inspect_names_the_units_portabled_ignores() {
    let dir = tempfile::tempdir().unwrap();
    let image = repack(&demo(), dir.path(), |root| {
        let units = root.join("etc/systemd/system");
        std::fs::write(units.join("other.service"), "[Service]\n").unwrap();
        std::fs::write(units.join("demo-empty.service"), "").unwrap();
    });
    let output = builder(&["inspect", image.to_str().unwrap()]);
    assert_contains(
        &String::from_utf8_lossy(&output.stdout),
        &[
            "unit files it ignores:\n",
            "/etc/systemd/system/demo-empty.service: the file is empty",
            "/etc/systemd/system/other.service: unit 'other.service' does not match the image prefix 'demo'",
        ],
    );
}
