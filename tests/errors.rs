//! Bad input gets a clear message naming the value and the rule: at
//! evaluation time where the value is known (checked with
//! nix-instantiate, which builds nothing), from the builder otherwise.

use crate::util::*;

/// A unit file derivation.
fn unit(name: &str) -> String {
    format!(r#"(writeText "{name}" "[Service]\nExecStart=/bin/true\n")"#)
}

const SH: &str = r#""${busybox}/bin/sh""#;

#[test]
fn evaluation_errors() {
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            demo_image(&format!("units = [ {} ];", unit("demonstration.service"))),
            vec!["unit 'demonstration.service' does not match the image prefix 'demo'"],
        ),
        (
            demo_image(&format!("units = [ {} ];", unit("other.service"))),
            vec!["unit 'other.service' does not match the image prefix 'demo'",
                 "followed by '.', '-' or '@'"],
        ),
        (
            demo_image(&format!("units = [ {} ];", unit("demo.mount"))),
            vec!["unit 'demo.mount' has type 'mount', which portabled does not attach"],
        ),
        (
            demo_image(&format!(
                r#"units = [ {{ name = "demo@x@.service "; file = {}; }} ];"#,
                unit("x.service")
            )),
            vec!["unit 'demo@x@.service ' is not a valid systemd unit name"],
        ),
        (
            demo_image(&format!(
                r#"units = [ {} {{ name = "demo.service"; file = {}; }} ];"#,
                unit("demo.service"),
                unit("other")
            )),
            vec!["two units are named 'demo.service'"],
        ),
        (demo_image("units = [ ];"), vec!["units is empty"]),
        (
            demo_image(r#"units = [ "not-a-unit" ];"#),
            vec!["units must be derivations, paths or { name; file; } sets"],
        ),
        (
            demo_image(r#"pname = "my_app";"#),
            vec!["pname 'my_app' is not a valid image prefix", "no '_'"],
        ),
        (
            demo_image(r#"pname = ".demo";"#),
            vec!["pname '.demo' is not a valid image prefix"],
        ),
        (
            demo_image(r#"version = "1.0/2";"#),
            vec!["version '1.0/2' would break the image file name"],
        ),
        (
            demo_image(r#"version = "";"#),
            vec!["version '' would break the image file name"],
        ),
        (
            demo_image(&format!(r#"symlinks = [ {{ object = {SH}; symlink = "bin/sh"; }} ];"#)),
            vec!["symlink 'bin/sh' is relative"],
        ),
        (
            demo_image(&format!(r#"symlinks = [ {{ object = {SH}; symlink = "/usr/../bin/sh"; }} ];"#)),
            vec!["symlink '/usr/../bin/sh' is not a normalised path"],
        ),
        (
            demo_image(&format!(r#"symlinks = [ {{ object = {SH}; symlink = "/nix/var/sh"; }} ];"#)),
            vec!["symlink '/nix/var/sh' lands in /nix or /usr/nix"],
        ),
        (
            demo_image(&format!(r#"symlinks = [ {{ object = {SH}; symlink = "/usr/nix/x"; }} ];"#)),
            vec!["symlink '/usr/nix/x' lands in /nix or /usr/nix"],
        ),
        (
            demo_image(&format!(r#"symlinks = [ {{ object = {SH}; symlink = "/etc/os-release"; }} ];"#)),
            vec!["symlink '/etc/os-release' lands on /etc/os-release, which the image already has"],
        ),
        (
            demo_image(&format!(r#"symlinks = [ {{ object = {SH}; symlink = "/tmp"; }} ];"#)),
            vec!["symlink '/tmp' lands on /tmp, which the image already has"],
        ),
        (
            demo_image(&format!(r#"symlinks = [ {{ object = {SH}; symlink = "/usr/lib"; }} ];"#)),
            vec!["symlink '/usr/lib' lands on /usr/lib, which the image already has"],
        ),
        (
            demo_image(&format!(r#"symlinks = [ {{ object = {SH}; symlink = "/etc/machine-id/x"; }} ];"#)),
            vec!["symlink '/etc/machine-id/x' would lie inside a file the image already has"],
        ),
        (
            demo_image(&format!(r#"symlinks = [ {{ object = {SH}; symlink = "/etc/systemd/system/demo.service"; }} ];"#)),
            vec!["symlink '/etc/systemd/system/demo.service' lands in /etc/systemd/system"],
        ),
        (
            demo_image(&format!(
                r#"symlinks = [ {{ object = {SH}; symlink = "/bin/sh"; }} {{ object = {SH}; symlink = "/bin/sh"; }} ];"#
            )),
            vec!["symlink '/bin/sh' is given twice"],
        ),
        (
            demo_image(&format!(
                r#"symlinks = [ {{ object = {SH}; symlink = "/bin"; }} {{ object = {SH}; symlink = "/bin/sh"; }} ];"#
            )),
            vec!["symlink '/bin/sh' would lie inside another symlink"],
        ),
        (
            demo_image(r#"symlinks = [ { object = "/usr/bin/env"; symlink = "/bin/env"; } ];"#),
            vec!["symlink '/bin/env' points to '/usr/bin/env', which must be a path in the Nix store"],
        ),
        (
            demo_image(r#"squash-compression = "brotli";"#),
            vec!["squash-compression 'brotli' names an unknown compressor"],
        ),
        (
            demo_image(r#"squash-compression = "xz -e /etc";"#),
            vec!["squash-compression 'xz -e /etc' has an option that is not the compressor's own"],
        ),
        (
            demo_image(r#"squash-block-size = "3M";"#),
            vec!["squash-block-size '3M' is not a power of two from 4K to 1M"],
        ),
        (
            demo_image(r#"squash-block-size = "2K";"#),
            vec!["squash-block-size '2K' is not a power of two from 4K to 1M"],
        ),
        (
            demo_image(r#"squash-block-size = "100K";"#),
            vec!["squash-block-size '100K' is not a power of two from 4K to 1M"],
        ),
        (
            demo_image(r#"description = "two\nlines";"#),
            vec![r#"description "two\nlines" has a newline or control character"#],
        ),
        (
            demo_image(r#"homepage = "https://x.org/\t";"#),
            vec![r#"homepage "https://x.org/\t" has a newline or control character"#],
        ),
        (
            demo_image(r#"squashfsTools = squashfsTools; squashfs-tools = squashfsTools;"#),
            vec!["both squashfsTools and squashfs-tools are given"],
        ),
    ];
    for (expr, needles) in cases {
        let message = eval_fails(&expr);
        let mut needles = needles.clone();
        needles.push("portableService: ");
        assert_contains(&message, &needles);
    }
}

#[test]
fn unknown_argument_is_named() {
    let message = eval_fails(&demo_image(r#"squash-compresion = "zstd";"#));
    assert_contains(&message, &["unexpected argument 'squash-compresion'"]);
}

/// A directory derivation holding `files` (name, content).
fn unit_dir(name: &str, files: &[(&str, &str)]) -> String {
    let script: String = files
        .iter()
        .map(|(file, content)| match *content {
            // `''` would end the Nix string.
            "" => format!(": > \"$out/{file}\"\n"),
            _ => format!("printf '{content}' > \"$out/{file}\"\n"),
        })
        .collect();
    format!("(runCommand \"{name}\" {{ }} ''\nmkdir -p $out\n{script}'')")
}

#[test]
fn build_errors_for_units_inside_directories() {
    let service = "[Service]\\nExecStart=/bin/true\\n";
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            unit_dir("demo-units", &[("demo.service", service), ("other.service", service)]),
            vec!["unit 'other.service' does not match the image prefix 'demo'"],
        ),
        (
            unit_dir("demo-units", &[("demo.automount", service)]),
            vec!["unit 'demo.automount' has type 'automount', which portabled does not attach"],
        ),
        (
            unit_dir("demo-units", &[("demo.service", "")]),
            vec!["is empty: portabled skips empty unit files"],
        ),
        (
            unit_dir("demo-units", &[("demo.service", service), ("README", "x")]),
            vec!["unit 'README' is not a valid systemd unit name"],
        ),
        (
            unit_dir("demo-units", &[]),
            vec!["holds no unit files"],
        ),
        (
            format!(
                "{} {}",
                unit_dir("demo-units", &[("demo.service", service)]),
                unit("demo.service")
            ),
            vec!["two units are named 'demo.service'"],
        ),
        (
            "(runCommand \"demo-units\" { } ''mkdir -p $out/demo.service.d; \
             printf '[Service]\\nExecStart=/bin/true\\n' > $out/demo.service'')"
                .to_string(),
            vec!["demo.service.d is a directory", "portabled ignores drop-in directories"],
        ),
        (
            format!(r#"{{ name = "demo@.service"; file = {}; }}"#, unit_dir("d", &[("demo.service", service)])),
            vec!["unit 'demo@.service' is given as { name; file; }, but", "is a directory"],
        ),
    ];
    for (units, needles) in cases {
        let log = build_fails(&demo_image(&format!("units = [ {units} ];")));
        let mut needles = needles.clone();
        needles.push("portable-service-builder: error: ");
        assert_contains(&log, &needles);
    }
}
