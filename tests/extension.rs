//! Extension images: built on a base image, they hold only the store
//! paths the base lacks, their units under /usr, and the release file that
//! ties them to that base.

use crate::util::*;

/// A base holding busybox and some data, and an extension whose service
/// runs a script (only in the extension) that uses both.
const IMAGES: &str = r#"
  let
    greeting = runCommand "greeting" { } ''
      mkdir -p $out
      echo "Greetings from the base" > $out/greeting.txt
    '';
    runtime = portableService {
      pname = "runtime";
      version = "1.0";
      units = [ (writeText "runtime.service" "[Service]\nExecStart=${busybox}/bin/sleep infinity\n") ];
      contents = [ busybox greeting ];
    };
    hello = writeScript "hello" ''
      #!${busybox}/bin/sh
      cat ${greeting}/greeting.txt
    '';
    app = portableService {
      pname = "app";
      version = "2.0";
      description = "An extension";
      base = runtime;
      units = [ (writeText "app.service" "[Service]\nExecStart=${hello}\n") ];
      symlinks = [ { object = "${hello}"; symlink = "/usr/bin/hello"; } ];
    };
  in
"#;

fn store_entries(image: &Unsquashfs) -> Vec<String> {
    image
        .entries()
        .into_keys()
        .filter(|p| {
            p.starts_with("usr/nix/store/") && p.matches('/').count() == 3
        })
        .map(|p| p.rsplit_once('-').unwrap().1.to_string())
        .collect()
}

#[test]
fn extension_holds_what_its_base_lacks() {
    let base = build(&format!("{IMAGES} runtime"));
    let base = Unsquashfs::new(base.join("runtime_1.0.raw"));
    let out = build(&format!("{IMAGES} app"));
    let image = Unsquashfs::new(out.join("app_2.0.raw"));
    let entries = image.entries();

    // Only what the base lacks: the script and the unit file, not busybox
    // or the greeting.
    let mut held = store_entries(&image);
    held.sort();
    assert_eq!(held, ["app.service", "hello"]);
    assert!(store_entries(&base).contains(&"greeting".to_string()));

    // Everything is under /usr: systemd overlays nothing else.
    let top: Vec<&String> =
        entries.keys().filter(|p| !p.is_empty() && !p.contains('/')).collect();
    assert_eq!(top, ["usr"]);
    assert_contains(
        &image.cat_string("usr/lib/systemd/system/app.service"),
        &["ExecStart=/nix/store/", "-hello\n"],
    );
    assert!(entries["usr/bin/hello"]
        .target
        .as_deref()
        .unwrap()
        .ends_with("-hello"));

    // The release file: named after the image's file name, matching the
    // base's ID and SYSEXT_LEVEL.
    let base_level = base
        .cat_string("etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("SYSEXT_LEVEL=").map(str::to_string))
        .unwrap();
    assert_eq!(
        image.cat_string("usr/lib/extension-release.d/extension-release.app_2.0"),
        format!(
            "ID=nixos\nPORTABLE_PREFIXES=app\nPORTABLE_PRETTY_NAME=\"An extension\"\n\
             SYSEXT_LEVEL={base_level}\nSYSEXT_SCOPE=portable\n"
        )
    );

    // The description names the base and what the extension leaves to it.
    let description: serde_json::Value = serde_json::from_slice(
        &image.cat("usr/lib/portable-service/closure.json"),
    )
    .unwrap();
    assert_eq!(description["base"]["imageFileName"], "runtime_1.0.raw");
    assert_eq!(description["base"]["sysextLevel"], base_level.as_str());
    let mut left_to_base: Vec<String> = description["base"]["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().rsplit_once('-').unwrap().1.to_string())
        .collect();
    left_to_base.sort();
    assert_eq!(left_to_base, ["greeting", "static"]);
}

#[test]
fn extension_errors() {
    for (app, needles) in [
        (
            r#"portableService { pname = "app"; version = "1"; base = busybox; units = [ (writeText "app.service" "x") ]; }"#,
            vec!["base must be an image built by portableService"],
        ),
        (
            r#"portableService { pname = "runtime"; version = "2"; base = runtime; units = [ (writeText "runtime-x.service" "x") ]; }"#,
            vec!["this extension's pname 'runtime' is its base's too"],
        ),
        (
            r#"portableService { pname = "runtime.service"; version = "2"; base = runtime; units = [ (writeText "runtime.service.x.service" "x") ]; }"#,
            vec!["the base image runtime_1.0.raw has the unit 'runtime.service', which matches this extension's prefix 'runtime.service'"],
        ),
        (
            r#"portableService { pname = "app"; version = "2"; base = app; units = [ (writeText "app-x.service" "x") ]; }"#,
            vec!["base app_2.0.raw is itself an extension image"],
        ),
        (
            r#"portableService { pname = "app2"; version = "2"; base = runtime; units = [ (writeText "app2.service" "x") ];
                 symlinks = [ { object = "${busybox}/bin/sh"; symlink = "/bin/sh"; } ]; }"#,
            vec!["symlink '/bin/sh' is outside /usr and /opt"],
        ),
    ] {
        let message = eval_fails(&format!("{IMAGES} {app}"));
        assert_contains(&message, &needles);
    }
}

#[test]
fn base_unit_matching_the_extension_prefix_is_refused() {
    // The base's unit is inside a directory: only the build sees its name.
    let message = build_fails(&format!(
        r#"{IMAGES}
        let
          base = portableService {{
            pname = "tool";
            version = "1";
            units = [ (runCommand "units" {{ }} ''
              mkdir $out
              printf '[Service]\nExecStart=/bin/true\n' > $out/tool.service
              printf '[Service]\nExecStart=/bin/true\n' > $out/tool-app.service
            '') ];
          }};
        in portableService {{
          pname = "tool-app";
          version = "1";
          inherit base;
          units = [ (writeText "tool-app.service" "[Service]\nExecStart=/bin/true\n") ];
        }}"#
    ));
    assert_contains(
        &message,
        &["the base image tool_1.raw has the unit 'tool-app.service', which matches this extension's prefix 'tool-app'"],
    );
}

#[test]
fn a_base_unit_known_at_evaluation_is_refused_then() {
    let message = eval_fails(&format!(
        r#"{IMAGES} let base = portableService {{ pname = "x"; version = "1";
             units = [ (writeText "x-y.service" "[Service]\nExecStart=/bin/true\n") ]; }};
           in portableService {{ pname = "x-y"; version = "1"; inherit base;
             units = [ (writeText "x-y.socket" "x") ]; }}"#
    ));
    assert_contains(
        &message,
        &["the base image x_1.raw has the unit 'x-y.service', which matches this extension's prefix 'x-y'"],
    );
}

#[test]
fn verify_checks_an_extension_against_its_base() {
    let base = build(&format!("{IMAGES} runtime")).join("runtime_1.0.raw");
    let image = build(&format!("{IMAGES} app")).join("app_2.0.raw");
    for base in [None, Some(base.as_path())] {
        assert_verified(
            &verify(&image, base),
            "app_2.0.raw: verified 2 store paths and 1 unit\n",
        );
    }

    // Another base holds neither the paths the extension leaves to its base
    // nor the same SYSEXT_LEVEL.
    let other = build(&demo_image("")).join("demo_1.0.raw");
    let output = verify(&image, Some(&other));
    assert_eq!(output.status.code(), Some(1));
    assert_contains(
        &String::from_utf8_lossy(&output.stdout),
        &[
            "-greeting: is left to the base, but demo_1.0.raw does not hold it",
            "/usr/lib/extension-release.d/extension-release.app_2.0: has SYSEXT_LEVEL=",
            "but the base demo_1.0.raw has SYSEXT_LEVEL=",
        ],
    );

    // The extension's own check in Nix runs with its base.
    let report = build(&format!("{IMAGES} app.tests.verify"));
    assert_eq!(
        std::fs::read_to_string(report).unwrap(),
        "app_2.0.raw: verified 2 store paths and 1 unit\n"
    );
}
