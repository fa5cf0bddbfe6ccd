//! Images built with the real nix-build and mksquashfs, read back with
//! unsquashfs: the layout, every argument of the specification, both unit
//! forms, and the squashfs package actually used.

use sha2::Digest;

use crate::util::*;

#[test]
fn minimal_image_layout() {
    let out = build(&demo_image(""));
    let files: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| file_name(&e.unwrap().path()))
        .collect();
    assert_eq!(files, ["demo_1.0.raw"]);
    let image = Unsquashfs::new(out.join("demo_1.0.raw"));
    let entries = image.entries();

    for (path, entry) in &entries {
        assert_eq!(entry.owner, "0/0", "{path} is not owned by root");
    }
    let mode = |path: &str| entries[path].mode.clone();
    assert_eq!(mode(""), "drwxr-xr-x");
    for dir in [
        "etc",
        "etc/systemd",
        "etc/systemd/system",
        "proc",
        "sys",
        "dev",
        "run",
        "var",
        "var/lib",
        "var/cache",
        "var/log",
        "usr",
        "usr/nix",
        "usr/nix/store",
    ] {
        assert_eq!(mode(dir), "drwxr-xr-x", "{dir}");
    }
    assert_eq!(mode("tmp"), "drwxrwxrwt");
    assert_eq!(mode("var/tmp"), "drwxrwxrwt");
    for file in ["etc/resolv.conf", "etc/machine-id"] {
        assert_eq!(mode(file), "-rw-r--r--", "{file}");
        assert_eq!(entries[file].size, 0, "{file} is not empty");
    }
    assert_eq!(mode("etc/os-release"), "-rw-r--r--");
    // SYSEXT_LEVEL is a digest of the closure's description.
    let description = image.cat("usr/lib/portable-service/closure.json");
    let digest = sha2::Sha256::digest(&description);
    let level: String =
        digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        image.cat_string("etc/os-release"),
        format!(
            "BUILD_ID=rolling\nID=nixos\nPORTABLE_ID=demo\n\
             PORTABLE_PREFIXES=demo\nPRETTY_NAME=NixOS\nSYSEXT_LEVEL={level}\n"
        )
    );

    let unit = image.cat_string("etc/systemd/system/demo.service");
    assert_contains(&unit, &["[Service]", "/bin/sleep infinity"]);
    assert_eq!(mode("etc/systemd/system/demo.service"), "-rw-r--r--");
    let units: Vec<&String> = entries
        .keys()
        .filter(|p| p.starts_with("etc/systemd/system/"))
        .collect();
    assert_eq!(units, ["etc/systemd/system/demo.service"]);

    // The closure, under /usr/nix/store with /nix a link to it: the unit
    // file, busybox (which the unit names), nothing else; store paths keep
    // Nix's modes.
    assert_eq!(entries["nix"].target.as_deref(), Some("usr/nix"));
    let store: Vec<&String> = entries
        .keys()
        .filter(|p| {
            p.starts_with("usr/nix/store/") && p.matches('/').count() == 3
        })
        .collect();
    assert_eq!(store.len(), 2, "{store:?}");
    let busybox =
        store.iter().find(|p| p.ends_with("-busybox-static")).unwrap();
    assert_eq!(mode(busybox), "dr-xr-xr-x");
    assert_eq!(mode(&format!("{busybox}/bin/busybox")), "-r-xr-xr-x");
    let sh = &entries[&format!("{busybox}/bin/sh")];
    assert_eq!(sh.target.as_deref(), Some("busybox"));
    let unit_path =
        store.iter().find(|p| p.ends_with("-demo.service")).unwrap();
    assert_eq!(mode(unit_path), "-r--r--r--");
    assert_eq!(image.cat_string(unit_path), unit);

    let closure: serde_json::Value = serde_json::from_slice(
        &image.cat("usr/lib/portable-service/closure.json"),
    )
    .unwrap();
    assert_eq!(closure["closureVersion"], 2);
    let described: Vec<String> = closure["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| format!("usr{}", p["path"].as_str().unwrap()))
        .collect();
    assert_eq!(
        described,
        store.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    );

    let superblock = image.superblock();
    assert_contains(&superblock, &["Compression xz", "Block size 1048576"]);
}

#[test]
fn every_argument() {
    let out = build(&demo_image(
        r#"
        version = "2.1+rc1";
        description = ''A "demo" service for $HOME'';
        homepage = "https://example.org/demo";
        symlinks = [
          { object = "${busybox}/bin/sh"; symlink = "/bin/sh"; }
          { object = "${busybox}/bin"; symlink = "/usr/local/bin"; }
          { object = "${runCommand "certs" { } "mkdir -p $out/etc/ssl; echo cert > $out/etc/ssl/ca.pem"}/etc/ssl"; symlink = "/etc/ssl"; }
        ];
        contents = [ (writeText "extra-data" "extra") ];
        squash-compression = "zstd -Xcompression-level 3";
        squash-block-size = "128K";
        "#,
    ));
    let image = Unsquashfs::new(out.join("demo_2.1+rc1.raw"));
    let entries = image.entries();

    let os_release = image.cat_string("etc/os-release");
    assert_contains(
        &os_release,
        &[
            "HOME_URL=\"https://example.org/demo\"\n",
            "PORTABLE_PRETTY_NAME=\"A \\\"demo\\\" service for \\$HOME\"\n",
            "PORTABLE_PREFIXES=demo\n",
        ],
    );

    let target = |link: &str| entries[link].target.clone().unwrap();
    assert!(target("bin/sh").ends_with("-busybox-static/bin/sh"));
    assert!(target("usr/local/bin").ends_with("-busybox-static/bin"));
    assert!(target("etc/ssl").ends_with("-certs/etc/ssl"));
    assert_eq!(entries["bin"].mode, "drwxr-xr-x");
    assert_eq!(entries["usr/local"].mode, "drwxr-xr-x");
    // Every object is in the image's store.
    for link in ["bin/sh", "usr/local/bin", "etc/ssl"] {
        let object = format!("usr{}", target(link));
        assert!(entries.contains_key(&object), "{object}");
    }
    let certs = format!("usr{}", target("etc/ssl"));
    assert_eq!(image.cat_string(&format!("{certs}/ca.pem")), "cert\n");

    let extra = entries
        .keys()
        .find(|p| {
            p.starts_with("usr/nix/store/") && p.ends_with("-extra-data")
        })
        .expect("contents are in the store");
    assert_eq!(image.cat_string(extra), "extra");

    let superblock = image.superblock();
    assert_contains(&superblock, &["Compression zstd", "Block size 131072"]);
}

#[test]
fn compressors_and_block_sizes() {
    for (compression, block, shown) in [
        ("gzip", "4K", "Block size 4096"),
        ("lz4 -Xhc", "65536", "Block size 65536"),
        ("xz -Xbcj x86", "1m", "Block size 1048576"),
    ] {
        let out = build(&demo_image(&format!(
            r#"squash-compression = "{compression}"; squash-block-size = "{block}";"#
        )));
        let image = Unsquashfs::new(out.join("demo_1.0.raw"));
        let compressor = compression.split(' ').next().unwrap();
        assert_contains(
            &image.superblock(),
            &[&format!("Compression {compressor}"), shown],
        );
    }
}

#[test]
fn unit_forms() {
    let dir = tempfile::tempdir().unwrap();
    let path_unit = dir.path().join("demo-path.service");
    std::fs::write(&path_unit, "[Service]\nExecStart=/bin/true\n").unwrap();
    let out = build(&format!(
        r#"portableService {{
             pname = "demo";
             version = "1.0";
             units = [
               # One file named after the unit.
               (writeText "demo.service" "[Service]\nExecStart=${{busybox}}/bin/sleep 1\n")
               # A directory of units, as NixOS builds them, with a template.
               (runCommand "unit-demo.socket" {{ }} ''
                 mkdir $out
                 printf '[Socket]\nListenStream=80\nAccept=yes\n' > $out/demo.socket
                 printf '[Service]\nExecStart=${{busybox}}/bin/cat\n' > $out/demo@.service
               '')
               # A template given its name explicitly.
               {{ name = "demo-worker@.service"; file = writeText "worker" "[Service]\nExecStart=${{busybox}}/bin/echo %i\n"; }}
               # A path.
               {path}
             ];
           }}"#,
        path = path_unit.display(),
    ));
    let image = Unsquashfs::new(out.join("demo_1.0.raw"));
    assert_eq!(
        image.units(),
        [
            "demo-path.service",
            "demo-worker@.service",
            "demo.service",
            "demo.socket",
            "demo@.service"
        ]
    );
    let unit =
        |name: &str| image.cat_string(&format!("etc/systemd/system/{name}"));
    assert_eq!(unit("demo.socket"), "[Socket]\nListenStream=80\nAccept=yes\n");
    assert_contains(&unit("demo@.service"), &["-busybox-static/bin/cat"]);
    assert_contains(&unit("demo-worker@.service"), &["/bin/echo %i"]);
    assert_eq!(unit("demo-path.service"), "[Service]\nExecStart=/bin/true\n");
}

/// A squashfs-tools package that records its call next to the image and
/// then runs Debian's mksquashfs.
const RECORDING_SQUASHFS: &str = r#"(runCommand "recording-squashfs" { } ''
    mkdir -p $out/bin
    cat > $out/bin/mksquashfs <<'EOF'
    #!/bin/sh
    echo "$@" > "$(dirname "$2")/mksquashfs-args"
    exec /usr/bin/mksquashfs "$@"
    EOF
    chmod +x $out/bin/mksquashfs
  '')"#;

#[test]
fn squashfs_package_argument_is_used() {
    for spelling in ["squashfsTools", "squashfs-tools"] {
        let out =
            build(&demo_image(&format!("{spelling} = {RECORDING_SQUASHFS};")));
        let args = std::fs::read_to_string(out.join("mksquashfs-args"))
            .unwrap_or_else(|_| {
                panic!("{spelling}: the given mksquashfs did not run")
            });
        assert_contains(
            &args,
            &[
                "-tar",
                "-all-root",
                "-root-mode 755",
                "-b 1048576",
                "-comp xz -Xdict-size 100%",
            ],
        );
        Unsquashfs::new(out.join("demo_1.0.raw"));
    }
}

/// The image holds its whole closure, so its output must refer to no store
/// path, or Nix would keep the closure alive beside it and copy it along.
/// From Nix 2.18, `unsafeDiscardReferences` drops the names Nix finds in
/// the image; older Nix cannot, and there lz4, which leaves names readable,
/// shows that the check finds them.
#[test]
fn image_output_refers_to_no_store_path() {
    let discards = nix_version() >= (2, 18);
    for compressor in ["gzip", "lz4", "lzo", "xz", "zstd"] {
        let out = build(&demo_image(&format!(
            r#"squash-compression = "{compressor}";"#
        )));
        let output = run(std::process::Command::new("nix-store")
            .args(["--query", "--references"])
            .arg(&out));
        assert!(output.status.success(), "{}", stderr(&output));
        let references = String::from_utf8_lossy(&output.stdout);
        if discards {
            assert_eq!(references, "", "{compressor}");
        } else if compressor == "lz4" {
            assert_contains(&references, &["-busybox-static\n"]);
        }
    }
}

/// The build log's summary line, which `bench/` reads, describes the build:
/// the image, its closure and what was streamed into it.
#[test]
fn build_log_has_a_summary() {
    let expr = demo_image(r#"description = "summary";"#);
    let out = build(&expr);
    let log = rebuild_and_compare(&expr, &[]);
    let line = log
        .lines()
        .find_map(|l| l.strip_prefix("portable-service-builder: summary "))
        .unwrap_or_else(|| panic!("no summary line in\n{log}"));
    let summary: serde_json::Value = serde_json::from_str(line).unwrap();
    let image = std::fs::metadata(out.join("demo_1.0.raw")).unwrap();
    assert_eq!(summary["image"], "demo_1.0.raw");
    assert_eq!(summary["storePaths"], 2);
    assert_eq!(summary["imageBytes"], image.len());
    // busybox, its links' target, the unit, os-release, the manifest...
    assert!(summary["files"].as_u64().unwrap() >= 4, "{summary}");
    assert!(summary["bytesIn"].as_u64().unwrap() > 1 << 20, "{summary}");
    for key in ["seconds", "cpuBuilder", "cpuMksquashfs"] {
        assert!(summary[key].as_f64().unwrap() >= 0.0, "{summary}");
    }
    assert_contains(
        &log,
        &["portable-service-builder: demo_1.0.raw: 2 store paths, "],
    );
}

#[test]
fn systemd_dissect_calls_the_demo_a_portable_service() {
    let output = run(nix_command("nix-build")
        .arg("--no-out-link")
        .arg(repo().join("nix/host.nix"))
        .args(["--arg", "builderBinary", BUILDER, "-A", "demo"]));
    assert!(output.status.success(), "{}", stderr(&output));
    let out = String::from_utf8(output.stdout).unwrap();
    let image = std::path::Path::new(out.trim()).join("demo_1.0.raw");
    // The check mark is printed only in a UTF-8 locale.
    let output = run(std::process::Command::new("systemd-dissect")
        .arg(&image)
        .env("LC_ALL", "C.UTF-8"));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}{}", stderr(&output));
    assert_contains(
        &text,
        &["✓ portable service", "PORTABLE_PREFIXES=demo", "squashfs"],
    );
}
