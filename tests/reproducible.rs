//! The same inputs give the same image bytes, whatever the core count,
//! the build directory, the umask or the hard links in the store.

use std::os::unix::fs::MetadataExt;
use std::process::Command;

use crate::util::*;

/// A closure with two identical files, which `nix-store --optimise` turns
/// into hard links.
const TWINS: &str = r#"(runCommand "twins" { } ''
    mkdir -p $out/a $out/b
    echo "reproducible-twins-7c1e" > $out/a/twin
    echo "reproducible-twins-7c1e" > $out/b/twin
  '')"#;

#[test]
fn nix_build_check_passes_across_cores_build_dirs_and_hard_links() {
    let expr = demo_image(&format!(r#"contents = [ {TWINS} ];"#));
    let out = build(&expr);
    let image = std::fs::read(out.join("demo_1.0.raw")).unwrap();

    rebuild_and_compare(&expr, &["--cores", "1"]);
    rebuild_and_compare(&expr, &["--cores", "2"]);
    // Outside the sandbox the build directory is /tmp/nix-build-*-N.
    rebuild_and_compare(&expr, &["--option", "sandbox", "false"]);

    let twins = build(TWINS);
    let output = run(Command::new("nix-store").arg("--optimise"));
    assert!(output.status.success(), "{}", stderr(&output));
    let a = std::fs::metadata(twins.join("a/twin")).unwrap();
    let b = std::fs::metadata(twins.join("b/twin")).unwrap();
    assert_eq!(a.ino(), b.ino(), "nix-store --optimise did not hard-link");
    rebuild_and_compare(&expr, &[]);

    assert_eq!(std::fs::read(out.join("demo_1.0.raw")).unwrap(), image);
}

#[test]
fn builder_output_ignores_umask_and_build_directory() {
    let expr = demo_image(r#"description = "umask";"#);
    let mut images = Vec::new();
    for (umask, cores) in [("022", "1"), ("077", "2")] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let output = run_builder(
            &attrs_for_hand_run(&expr, &out),
            dir.path(),
            umask,
            cores,
        );
        assert!(output.status.success(), "{}", stderr(&output));
        images.push(std::fs::read(out.join("demo_1.0.raw")).unwrap());
    }
    assert!(
        images[0] == images[1],
        "umask or build directory changed the image"
    );
}
