//! Real services in a read-only image: the builder gives the image the
//! mount points its units' settings need (and those of `mountPoints`),
//! and refuses what cannot work, naming the unit, the setting and the
//! path. Symlinks with long targets read back everywhere.

use std::path::Path;

use crate::util::*;

/// The demo image with `units` and more arguments.
fn image_with(units: &str, extra: &str) -> String {
    format!(
        r#"portableService ({{
             pname = "app";
             version = "1.0";
             units = [ {units} ];
           }} // {{ {extra} }})"#
    )
}

fn service(name: &str, body: &str) -> String {
    format!(
        "(writeText \"{name}\" ''\n[Service]\nExecStart=${{busybox}}/bin/sleep 1\n{body}\n'')"
    )
}

/// What an image has at `path`, as `unsquashfs -lln` shows it.
fn mode_and_target(
    image: &Unsquashfs,
    path: &str,
) -> (String, Option<String>) {
    let entries = image.entries();
    let entry = entries
        .get(path)
        .unwrap_or_else(|| panic!("{path} is not in the image"));
    (format!("{} {}", entry.mode, entry.owner), entry.target.clone())
}

#[test]
fn mount_points_for_every_setting() {
    let out = build(&image_with(
        &service(
            "app.service",
            "DynamicUser=yes
StateDirectory=app app2:app2-link
CacheDirectory=app
LogsDirectory=app
ConfigurationDirectory=app
RuntimeDirectory=app
BindReadOnlyPaths=/etc/ssl/certs -/etc/app.env:/etc/app.env
BindPaths=/srv/app-data
ReadWritePaths=/var/opt/app -/var/opt/optional
TemporaryFileSystem=/var/spool/app:mode=0700
WorkingDirectory=/var/lib/app
EnvironmentFile=-/etc/default/app
PrivateTmp=yes",
        ),
        "",
    ));
    let image = Unsquashfs::new(out.join("app_1.0.raw"));
    let dir = ("drwxr-xr-x 0/0".to_string(), None);
    for path in [
        "var/lib/app",
        "var/lib/app2",
        "var/cache/app",
        "var/log/app",
        "etc/app",
        "etc/ssl/certs",
        "etc/app.env",
        "srv/app-data",
        "var/opt/app",
        "var/spool/app",
    ] {
        assert_eq!(mode_and_target(&image, path), dir, "{path}");
    }
    assert_eq!(
        mode_and_target(&image, "var/lib/app2-link").1.as_deref(),
        Some("app2")
    );
    let entries = image.entries();
    for absent in ["run/app", "var/opt/optional", "etc/default"] {
        assert!(!entries.contains_key(absent), "{absent} is in the image");
    }
    let output = verify(&out.join("app_1.0.raw"), None);
    assert!(output.status.success(), "{}", stderr(&output));
}

/// A unit inside a directory derivation, the NixOS form, gets the same.
#[test]
fn mount_points_for_units_in_a_directory() {
    let out = build(&image_with(
        r#"(runCommand "unit-app.service" { } ''
             mkdir $out
             printf '[Service]\nExecStart=/bin/true\nStateDirectory=app\n' > $out/app.service
           '')"#,
        "",
    ));
    let image = Unsquashfs::new(out.join("app_1.0.raw"));
    assert!(image.entries().contains_key("var/lib/app"));
}

#[test]
fn mount_points_argument() {
    let out = build(&image_with(
        &service(
            "app.service",
            "BindReadOnlyPaths=/etc/ssl/certs/ca-certificates.crt",
        ),
        r#"mountPoints = [
             "/srv/extra"
             { path = "/etc/ssl/certs/ca-certificates.crt"; type = "file"; }
           ];"#,
    ));
    let image = Unsquashfs::new(out.join("app_1.0.raw"));
    let entries = image.entries();
    assert_eq!(entries["srv/extra"].mode, "drwxr-xr-x");
    let file = &entries["etc/ssl/certs/ca-certificates.crt"];
    assert_eq!((file.mode.as_str(), file.size), ("-rw-r--r--", 0));
}

/// Specifiers systemd fixes for every system service, and those the unit
/// file's name gives, are resolved; what only an instance knows (%i in a
/// template) cannot be, unless the mount point is its fixed parent.
#[test]
fn specifiers_resolved_where_they_can_be() {
    let out = build(&image_with(
        &format!(
            "{} {{ name = \"app@.service\"; file = {}; }}",
            service(
                "app.service",
                "StateDirectory=%N\nBindPaths=/srv/%p-data"
            ),
            service("app-at", "StateDirectory=tpl tpl/%i\nLogsDirectory=%p")
        ),
        "",
    ));
    let image = Unsquashfs::new(out.join("app_1.0.raw"));
    let entries = image.entries();
    for path in ["var/lib/app", "srv/app-data", "var/lib/tpl", "var/log/app"] {
        assert!(entries.contains_key(path), "{path}");
    }
    assert!(!entries.keys().any(|p| p.starts_with("var/lib/tpl/")));

    let log = build_fails(&image_with(
        &format!(
            "{{ name = \"app@.service\"; file = {}; }}",
            service("app-at", "StateDirectory=tpl/%i")
        ),
        "",
    ));
    assert_contains(
        &log,
        &[
            "portable-service-builder: error: ",
            "unit 'app@.service', line 3: StateDirectory=tpl/%i: the image \
             needs a mount point at /var/lib/tpl/%i, but %i is",
            "(StateDirectory=tpl tpl/%i)",
        ],
    );
}

#[test]
fn mount_point_under_a_symlink_is_refused() {
    let log = build_fails(&image_with(
        &service("app.service", "BindPaths=/srv/data"),
        r#"symlinks = [ { object = "${busybox}"; symlink = "/srv"; } ];"#,
    ));
    assert_contains(
        &log,
        &["portable-service-builder: error: unit 'app.service', line 3: \
             BindPaths=/srv/data needs /srv/data: '/srv/data' would lie \
             inside '/srv', which is a symlink to '/nix/store/"],
    );
}

#[test]
fn mount_point_in_the_store_is_refused() {
    let log = build_fails(&image_with(
        &service("app.service", "BindPaths=/etc/app:/nix/store/x"),
        "",
    ));
    assert_contains(
        &log,
        &["unit 'app.service', line 3: BindPaths=/etc/app:/nix/store/x: \
             the mount point /nix/store/x is inside the Nix store"],
    );
}

/// Settings that only need their path to exist may name one in the
/// closure: nothing is made for them, and a store path the closure lacks
/// (a path written without its string context) is refused.
#[test]
fn paths_in_the_closure_need_nothing() {
    let body = "WorkingDirectory=${busybox}/bin\nReadOnlyPaths=${busybox}/bin";
    let plain = build(&image_with(&service("app.service", ""), ""));
    let out = build(&image_with(&service("app.service", body), ""));
    let entries = |out: &Path| {
        Unsquashfs::new(out.join("app_1.0.raw"))
            .entries()
            .into_keys()
            .filter(|p| !p.contains("-app.service"))
            .collect::<Vec<_>>()
    };
    assert_eq!(entries(&out), entries(&plain));

    let missing = "/nix/store/00000000000000000000000000000000-missing";
    let log = build_fails(&image_with(
        &service("app.service", &format!("WorkingDirectory={missing}/share")),
        "",
    ));
    assert_contains(
        &log,
        &[&format!(
            "portable-service-builder: error: unit 'app.service', line 3: \
             WorkingDirectory={missing}/share names {missing}/share, but the \
             image's closure does not hold {missing}"
        )],
    );
}

/// An extension cannot add /var/lib/NAME to its base: the base must have
/// it, which it gets from its own units or its mountPoints.
#[test]
fn extension_mount_points_come_from_the_base() {
    let images = |base_extra: &str| {
        format!(
            r#"let
                 base = portableService {{
                   pname = "runtime";
                   version = "1.0";
                   units = [ {} ];
                   {base_extra}
                 }};
               in portableService {{
                 pname = "app";
                 version = "2.0";
                 base = base;
                 units = [ {} ];
               }}"#,
            service("runtime.service", ""),
            service("app.service", "StateDirectory=app\nCacheDirectory=app")
        )
    };
    let log = build_fails(&images(""));
    assert_contains(
        &log,
        &["unit 'app.service', line 3: StateDirectory=app needs \
             /var/lib/app in the image, which an extension cannot add \
             (systemd overlays only /usr and /opt of it on its base), and \
             the base runtime_1.0.raw does not have it: give the base \
             mountPoints = [ \"/var/lib/app\" ]"],
    );
    let out = build(&images(
        r#"mountPoints = [ "/var/lib/app" "/var/cache/app" ];"#,
    ));
    let image = Unsquashfs::new(out.join("app_2.0.raw"));
    assert!(!image.entries().keys().any(|p| p.starts_with("var")));
}

/// Symlinks whose targets are 255, 256, 1000 and 4095 bytes long (Linux's
/// limit): the reader reads them back for inspect and verify, and an
/// extension builds on the image.
#[test]
fn long_symlink_targets_read_back() {
    let lengths = [255usize, 256, 1000, 4095];
    let links: String = lengths
        .iter()
        .map(|&len| {
            format!(
                r#"{{ object = "${{busybox}}" + {suffix}; symlink = "/opt/link{len}"; }}"#,
                suffix = suffix_nix(len)
            )
        })
        .collect();
    let base = format!(
        r#"portableService {{
             pname = "runtime";
             version = "1.0";
             units = [ {} ];
             symlinks = [ {links} ];
           }}"#,
        service("runtime.service", "")
    );
    let out = build(&base);
    let image = out.join("runtime_1.0.raw");
    let listing = Unsquashfs::new(&image).entries();
    let facts = inspect_json(&image);
    for len in lengths {
        let link = format!("opt/link{len}");
        let target = listing[&link].target.clone().unwrap();
        assert_eq!(target.len(), len, "{link}");
        let found = facts["symlinks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["path"] == format!("/{link}"))
            .unwrap_or_else(|| panic!("inspect does not list /{link}"));
        assert_eq!(found["target"], target.as_str());
    }
    let output = verify(&image, None);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );

    let extension = build(&format!(
        r#"portableService {{
             pname = "app";
             version = "2.0";
             base = {base};
             units = [ {} ];
           }}"#,
        service("app.service", "")
    ));
    let output =
        verify(&extension.join("app_2.0.raw"), Some(Path::new(&image)));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

/// A Nix string that makes "${busybox}" a symlink target of `len` bytes,
/// in components of at most 200 bytes (a name may have 255).
fn suffix_nix(len: usize) -> String {
    let store_path =
        "/nix/store/00000000000000000000000000000000-busybox-static";
    let mut left = len - store_path.len();
    let mut parts = String::new();
    while left > 0 {
        let chunk = left.min(200);
        assert!(chunk >= 2, "a component needs '/' and a name");
        parts.push('/');
        parts.push_str(&"a".repeat(chunk - 1));
        left -= chunk;
    }
    format!("\"{parts}\"")
}
