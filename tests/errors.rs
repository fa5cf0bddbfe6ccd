//! Bad input gets a clear message naming the value and the rule: at
//! evaluation time where the value is known (checked with
//! nix-instantiate, which builds nothing), from the builder otherwise.
//! Each case is a test of its own, so that one failure hides no other.
//! The rules themselves are checked value by value, on both sides, in
//! `rules.rs`; these cases show that the function and the builder apply
//! them to real arguments.

use crate::util::*;

/// A unit file derivation.
fn unit(name: &str) -> String {
    format!(r#"(writeText "{name}" "[Service]\nExecStart=/bin/true\n")"#)
}

fn symlink(object: &str, link: &str) -> String {
    format!(r#"{{ object = {object}; symlink = "{link}"; }}"#)
}

const SH: &str = r#""${busybox}/bin/sh""#;

/// `name: arguments => needles;`: the demo image with `arguments` fails to
/// evaluate, with a message holding every needle.
macro_rules! refused_at_evaluation {
    ($($name:ident: $arguments:expr => [$($needle:expr),+ $(,)?];)+) => {
        $(
            #[test]
            fn $name() {
                let arguments: String = $arguments;
                let message = eval_fails(&demo_image(&arguments));
                assert_contains(
                    &message,
                    &["error: portableService: ", $($needle),+],
                );
            }
        )+
    };
}

refused_at_evaluation! {
    unit_without_the_prefix:
        format!("units = [ {} ];", unit("demonstration.service")) => [
        "unit 'demonstration.service' does not match the image prefix \
         'demo': portabled only attaches units named 'demo' followed by \
         '.', '-' or '@'",
    ];
    unit_of_a_type_portabled_ignores:
        format!("units = [ {} ];", unit("demo.mount")) => [
        "unit 'demo.mount' has type 'mount', which portabled does not attach",
    ];
    unit_name_that_is_not_one:
        format!(
            r#"units = [ {{ name = "demo@x@.service "; file = {}; }} ];"#,
            unit("x.service")
        ) => [
        "unit 'demo@x@.service ' is not a valid systemd unit name",
    ];
    two_units_of_one_name:
        format!(
            r#"units = [ {} {{ name = "demo.service"; file = {}; }} ];"#,
            unit("demo.service"),
            unit("other")
        ) => [
        "two units are named 'demo.service': /nix/store/",
        "-demo.service and /nix/store/",
    ];
    no_units: "units = [ ];".to_string() => ["units is empty"];
    unit_that_is_a_string:
        r#"units = [ "not-a-unit" ];"#.to_string() => [
        "units must be derivations, paths or { name; file; } sets",
    ];
    pname_with_an_underscore: r#"pname = "my_app";"#.to_string() => [
        "pname 'my_app' is not a valid image prefix", "no '_'",
    ];
    version_with_a_slash: r#"version = "1.0/2";"#.to_string() => [
        "version '1.0/2' would break the image file name",
    ];
    relative_symlink:
        format!("symlinks = [ {} ];", symlink(SH, "bin/sh")) => [
        "symlink 'bin/sh' is relative",
    ];
    symlink_into_the_store:
        format!("symlinks = [ {} ];", symlink(SH, "/nix/var/sh")) => [
        "symlink '/nix/var/sh' lands in /nix, which holds the image's Nix \
         store",
    ];
    symlink_among_the_units:
        format!(
            "symlinks = [ {} ];",
            symlink(SH, "/etc/systemd/system/demo.service")
        ) => [
        "symlink '/etc/systemd/system/demo.service' lands in \
         /etc/systemd/system, where portabled looks for units",
    ];
    symlink_where_portabled_also_reads_units:
        format!(
            "symlinks = [ {} ];",
            symlink(SH, "/usr/lib/systemd/system/demo.service")
        ) => [
        "symlink '/usr/lib/systemd/system/demo.service' lands in \
         /usr/lib/systemd/system, where portabled looks for units",
    ];
    symlink_for_an_os_release:
        format!("symlinks = [ {} ];", symlink(SH, "/usr/lib/os-release")) => [
        "symlink '/usr/lib/os-release' lands in /usr/lib/os-release, which \
         portabled would read as the image's os-release",
    ];
    symlink_on_a_file_the_image_has:
        format!("symlinks = [ {} ];", symlink(SH, "/etc/os-release")) => [
        "symlink '/etc/os-release': '/etc/os-release' is already in the \
         image, as a file",
    ];
    symlink_inside_another:
        format!(
            "symlinks = [ {} {} ];",
            symlink(r#""${busybox}/bin""#, "/bin"),
            symlink(SH, "/bin/sh")
        ) => [
        "symlink '/bin/sh': '/bin/sh' would lie inside '/bin', which is a \
         symlink to '/nix/store/",
    ];
    symlink_to_a_path_outside_the_store:
        r#"symlinks = [ { object = "/usr/bin/env"; symlink = "/bin/env"; } ];"#
            .to_string() => [
        "symlink '/bin/env' points to '/usr/bin/env', which must be a path \
         in the Nix store",
    ];
    symlink_to_a_store_path_without_its_context:
        r#"symlinks = [ {
             object = builtins.unsafeDiscardStringContext "${busybox}/bin/sh";
             symlink = "/bin/sh";
           } ];"#
            .to_string() => [
        "a store path Nix does not know it depends on",
    ];
    unknown_compressor: r#"squash-compression = "brotli";"#.to_string() => [
        "squash-compression 'brotli' names an unknown compressor 'brotli'",
    ];
    option_for_mksquashfs_itself:
        r#"squash-compression = "xz -e /etc";"#.to_string() => [
        "squash-compression 'xz -e /etc' has the option '-e'",
    ];
    block_size_out_of_range: r#"squash-block-size = "3M";"#.to_string() => [
        "squash-block-size '3M' is not a power of two from 4K to 1M",
    ];
    description_of_two_lines:
        r#"description = "two\nlines";"#.to_string() => [
        r#"description "two\nlines" has a newline or control character"#,
    ];
    both_spellings_of_squashfs_tools:
        "squashfsTools = squashfsTools; squashfs-tools = squashfsTools;"
            .to_string() => [
        "both squashfsTools and squashfs-tools are given",
    ];
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

const SERVICE: &str = "[Service]\\nExecStart=/bin/true\\n";

/// `name: units => needles;`: the demo image with these `units` fails to
/// build, and the builder's message holds every needle.
macro_rules! refused_by_the_builder {
    ($($name:ident: $units:expr => [$($needle:expr),+ $(,)?];)+) => {
        $(
            #[test]
            fn $name() {
                let units: String = $units;
                let log = build_fails(&demo_image(&format!(
                    "units = [ {units} ];"
                )));
                assert_contains(
                    &log,
                    &["portable-service-builder: error: ", $($needle),+],
                );
            }
        )+
    };
}

refused_by_the_builder! {
    unit_in_a_directory_without_the_prefix:
        unit_dir(
            "demo-units",
            &[("demo.service", SERVICE), ("other.service", SERVICE)]
        ) => ["unit 'other.service' does not match the image prefix 'demo'"];
    unit_in_a_directory_of_a_type_portabled_ignores:
        unit_dir("demo-units", &[("demo.automount", SERVICE)]) => [
        "unit 'demo.automount' has type 'automount', which portabled does \
         not attach",
    ];
    empty_unit_in_a_directory:
        unit_dir("demo-units", &[("demo.service", "")]) => [
        "is empty: portabled skips empty unit files",
    ];
    file_in_a_directory_that_is_no_unit:
        unit_dir("demo-units", &[("demo.service", SERVICE), ("README", "x")])
        => ["unit 'README' is not a valid systemd unit name"];
    empty_unit_directory:
        unit_dir("demo-units", &[]) => ["holds no unit files"];
    two_units_of_one_name_in_and_out_of_a_directory:
        format!(
            "{} {}",
            unit_dir("demo-units", &[("demo.service", SERVICE)]),
            unit("demo.service")
        ) => ["two units are named 'demo.service'"];
    drop_in_directory:
        "(runCommand \"demo-units\" { } ''mkdir -p $out/demo.service.d; \
         printf '[Service]\\nExecStart=/bin/true\\n' > $out/demo.service'')"
            .to_string() => [
        "demo.service.d is a directory",
        "portabled ignores drop-in directories",
    ];
    named_unit_that_is_a_directory:
        format!(
            r#"{{ name = "demo@.service"; file = {}; }}"#,
            unit_dir("d", &[("demo.service", SERVICE)])
        ) => [
        "unit 'demo@.service' is given as { name; file; }, but",
        "is a directory",
    ];
}

/// A symlink above a directory portabled reads units from, into a package
/// that ships units there, would let portabled attach them unchecked.
#[test]
fn symlink_that_leads_portabled_to_units() {
    let log = build_fails(&demo_image(
        r#"symlinks = [ {
             object = "${runCommand "pkg" { } ''
               mkdir -p $out/lib/systemd/system
               echo "[Service]" > $out/lib/systemd/system/demo-extra.service
             ''}/lib";
             symlink = "/lib";
           } ];"#,
    ));
    assert_contains(
        &log,
        &[
            "portable-service-builder: error: symlink '/lib' -> '/nix/store/",
            "-pkg/lib' makes portabled read units from /nix/store/",
            "-pkg/lib/systemd/system, past every check on units",
        ],
    );
}
