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

/// `nix-build --check` fails unless the new output is bit for bit the one
/// in the store.
#[test]
#[ignore = "runs nix-store --optimise over the whole store; scripts/test \
            runs it (cargo test -- --include-ignored)"]
fn nix_build_check_passes_across_cores_build_dirs_and_hard_links() {
    let expr = demo_image(&format!(r#"contents = [ {TWINS} ];"#));
    build(&expr);

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
}

/// The builder run by hand, outside Nix, with other umasks, core counts and
/// build directories, gives the bytes Nix's build gave.
#[test]
fn builder_output_ignores_umask_and_build_directory() {
    let expr = demo_image(r#"description = "umask";"#);
    let built = std::fs::read(build(&expr).join("demo_1.0.raw")).unwrap();
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
        images.iter().all(|image| *image == built),
        "umask, cores or build directory changed the image"
    );
}
