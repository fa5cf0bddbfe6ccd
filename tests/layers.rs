//! Layered images, built by the real nix-build in the sandbox: the same
//! tree as the unlayered image of the same arguments, the layers' roots
//! as contents (listing and file contents, by unsquashfs), for 1, 2 and 5 layers and every compressor;
//! an app change rebuilds only the final layer and the assembly; a damaged
//! layer is refused.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::*;

/// Five packages, each with a file of many blocks ending in a fragment, a
/// small file, an empty one, a symlink, a 200-byte name, and a file that
/// every package has the same (duplicates across layers); `all` refers
/// to p1 to p3.
const PACKAGES: &str = r#"
  let
    package = name: runCommand name { } ''
      mkdir -p $out/share/${name}
      cd $out/share/${name}
      i=0; while [ $i -lt 60000 ]; do echo "${name} line $i"; i=$((i + 1)); done > big
      echo "${name}" > small
      : > empty
      ln -s small link
      echo "the same in every package" > same
      echo long > ${builtins.substring 0 200 (builtins.concatStringsSep "" (builtins.genList (i: "abcdefghij") 20))}
    '';
    p1 = package "p1"; p2 = package "p2"; p3 = package "p3";
    p4 = package "p4"; p5 = package "p5";
    all = writeText "all" "${p1} ${p2} ${p3}";
  in
"#;

/// The image `layered` with the five packages as contents, `extra`
/// arguments and `layers` (a Nix list, or "" for none).
fn image(layers: &str, extra: &str) -> String {
    let layers = if layers.is_empty() {
        String::new()
    } else {
        format!("layers = {layers};")
    };
    image_with(&layers, "", extra)
}

/// The image with `layers` (Nix bindings), and `more` contents.
fn image_with(layers: &str, more: &str, extra: &str) -> String {
    format!(
        r#"{PACKAGES} portableService {{
             pname = "layered";
             version = "1.0";
             units = [ (writeText "layered.service" "[Service]\nExecStart=${{busybox}}/bin/sleep 1\n") ];
             contents = [ p1 p2 p3 p4 p5 all ]{more};
             {layers}
             {extra}
           }}"#
    )
}

/// `unsquashfs -lln` of the image, and its files extracted into `dir`.
fn unpack(image: &Path, dir: &Path) -> String {
    let listing = stdout_of("unsquashfs", &["-lln", image.to_str().unwrap()]);
    let output = run(Command::new("unsquashfs")
        .args(["-no-xattrs", "-q", "-n", "-d"])
        .arg(dir)
        .arg(image));
    assert!(output.status.success(), "{}", stderr(&output));
    String::from_utf8(listing).unwrap()
}

/// Builds both images and asserts the same tree and contents. The
/// unlayered image has the layers' roots as contents, which they are (the
/// manifest records both among the image's roots).
#[track_caller]
fn assert_same_as_unlayered(layers: &str, extra: &str) -> PathBuf {
    let more = format!(" ++ builtins.concatLists {layers}");
    let plain = build(&image_with("", &more, extra)).join("layered_1.0.raw");
    let layered = build(&image(layers, extra)).join("layered_1.0.raw");
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("plain"), dir.path().join("layered"));
    let plain_listing = unpack(&plain, &a);
    let layered_listing = unpack(&layered, &b);
    assert_eq!(layered_listing, plain_listing, "layers {layers}");
    let diff = run(Command::new("diff")
        .arg("-r")
        .arg("--no-dereference")
        .arg(&a)
        .arg(&b));
    assert!(
        diff.status.success(),
        "{}",
        String::from_utf8_lossy(&diff.stdout)
    );
    let verified = verify(&layered, None);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
    layered
}

#[test]
fn one_two_and_five_layers_make_the_unlayered_tree() {
    for layers in [
        "[ [ p1 ] ]",
        "[ [ p1 p2 ] [ p3 busybox ] ]",
        "[ [ p1 ] [ p2 ] [ p3 ] [ p4 ] [ p5 ] ]",
    ] {
        assert_same_as_unlayered(layers, "");
    }
}

#[test]
fn every_compressor() {
    for compression in ["gzip", "lz4", "lzo", "xz", "zstd"] {
        let extra = format!(
            r#"squash-compression = "{compression}"; squash-block-size = "64K";"#
        );
        let image = assert_same_as_unlayered("[ [ p1 ] [ p2 p3 ] ]", &extra);
        let superblock =
            stdout_of("unsquashfs", &["-s", image.to_str().unwrap()]);
        assert_contains(
            &String::from_utf8(superblock).unwrap(),
            &[&format!("Compression {compression}"), "Block size 65536"],
        );
    }
}

/// `all` refers to p1 to p3, so a later layer of p1 holds nothing.
#[test]
fn a_layer_that_earlier_layers_hold_already() {
    assert_same_as_unlayered("[ [ all ] [ p1 ] ]", "");
}

#[test]
fn an_extension_in_layers() {
    let images = |layers: &str| {
        format!(
            r#"{PACKAGES} let
                 base = portableService {{
                   pname = "runtime";
                   version = "1.0";
                   units = [ (writeText "runtime.service" "[Service]\nExecStart=${{busybox}}/bin/sleep 1\n") ];
                   contents = [ busybox p1 ];
                 }};
               in portableService {{
                 pname = "layered";
                 version = "1.0";
                 base = base;
                 units = [ (writeText "layered.service" "[Service]\nExecStart=${{busybox}}/bin/sleep 1\n") ];
                 contents = [ p1 p2 p3 ];
                 {layers}
               }}"#
        )
    };
    let plain = build(&images("")).join("layered_1.0.raw");
    let layered = build(&images("layers = [ [ p1 p2 ] [ p3 ] ];"))
        .join("layered_1.0.raw");
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        unpack(&layered, &dir.path().join("b")),
        unpack(&plain, &dir.path().join("a"))
    );
    // p1 is the base's: neither image holds it.
    let listing = stdout_of("unsquashfs", &["-l", layered.to_str().unwrap()]);
    assert!(!String::from_utf8(listing).unwrap().contains("-p1/"));
}

/// What nix-build would build for `expr`: the derivation names.
fn to_build(expr: &str) -> Vec<String> {
    let output = run(nix_command("nix-build")
        .args(["--dry-run", "--no-out-link", "-E"])
        .arg(with_host(expr)));
    assert!(output.status.success(), "{}", stderr(&output));
    stderr(&output)
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("/nix/store/") && l.ends_with(".drv"))
        .map(|l| {
            l.split_once('-').unwrap().1.trim_end_matches(".drv").to_string()
        })
        .collect()
}

/// After a change to the service (its unit), Nix builds the unit, the final
/// layer and the assembly: no other layer.
#[test]
fn an_app_change_rebuilds_only_the_final_layer_and_the_assembly() {
    let layers = "[ [ p1 p2 ] [ p3 p4 p5 ] ]";
    build(&image(layers, ""));
    let changed = image(layers, r#"description = "changed";"#).replace(
        r#""[Service]\nExecStart=${busybox}/bin/sleep 1\n""#,
        r#""[Service]\nExecStart=${busybox}/bin/sleep 2\n""#,
    );
    let mut names = to_build(&changed);
    names.sort();
    assert_eq!(
        names,
        ["layered-final-layer-1.0", "layered-img-1.0", "layered.service"]
    );
}

#[test]
fn layered_build_is_reproducible() {
    let expr = image("[ [ p1 p2 ] [ p3 ] ]", r#"description = "check";"#);
    build(&expr);
    rebuild_and_compare(&expr, &["--max-jobs", "1", "--cores", "1"]);
    rebuild_and_compare(&expr, &["--max-jobs", "2"]);
}

/// The assembly run by hand on a truncated layer, in either format: a
/// clear message, exit status 2, no output.
#[test]
fn a_truncated_layer_is_refused() {
    let out = build(&image("[ [ p1 ] ]", r#"description = "truncated";"#));
    let dir = tempfile::tempdir().unwrap();
    // The first layer's file, from the store, truncated.
    let layer = find_layer(&out);
    let bytes = std::fs::read(&layer).unwrap();
    let truncated = dir.path().join("layer.squashfs");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let final_layer = find_final_layer(&out);
    for format in ["squashfs", "ddi"] {
        let image_out = dir.path().join(format!("out-{format}"));
        let attrs = serde_json::json!({
            "attrsVersion": 3,
            "kind": "assemble",
            "layers": [truncated, final_layer],
            "fileName": "layered_1.0.raw",
            "format": format,
            "hostSystem": "x86_64-linux",
            "outputs": { "out": image_out },
        });
        let output = run_builder(&attrs, dir.path(), "022", "2");
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        assert_contains(
            &stderr(&output),
            &[
                "portable-service-builder: error: assembling the image from its layers: ",
                &truncated.display().to_string(),
            ],
        );
        assert!(
            !image_out.exists(),
            "a failed {format} assembly left its output"
        );
    }
}

/// The layer files an image was assembled from, as its derivation names
/// them.
fn layer_files(out: &Path) -> Vec<PathBuf> {
    let output =
        run(Command::new("nix-store").args(["--query", "--deriver"]).arg(out));
    let drv = String::from_utf8(output.stdout).unwrap().trim().to_string();
    let output = run(Command::new("nix").args([
        "--extra-experimental-features",
        "nix-command",
        "show-derivation",
        &drv,
    ]));
    let shown: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap();
    let attrs: serde_json::Value =
        serde_json::from_str(shown[&drv]["env"]["__json"].as_str().unwrap())
            .unwrap();
    attrs["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| PathBuf::from(l.as_str().unwrap()))
        .collect()
}

fn find_layer(out: &Path) -> PathBuf {
    layer_files(out).remove(0)
}

fn find_final_layer(out: &Path) -> PathBuf {
    layer_files(out).pop().unwrap()
}
