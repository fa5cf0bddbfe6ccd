//! `portable-service-builder sbom` (issue 19): CycloneDX 1.6 documents of
//! real images, built by the real nix-build, checked by the CycloneDX
//! project's own library (cyclonedx-python-lib, which scripts/install-deps
//! installs) and against what the Nix store says of the closure.
//!
//! Under tests/nix-2.26/run, whose container has no Python, the documents
//! are copied to `$SBOM_VALIDATE_LATER` instead, and that script
//! validates them on the host after the container's run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use portable_service::nix::drv_name::DrvName;
use portable_service::nix::nar::hash::parse_sha256;
use serde_json::Value;

use crate::ddi::{rsa, sign_args};
use crate::util::*;

/// Where scripts/install-deps puts the validator's virtual environment.
const CYCLONEDX_VENV: &str =
    "/var/cache/portable-service-tests/cyclonedx-venv";

/// `sbom IMAGE`, which must succeed, with no `SOURCE_DATE_EPOCH`.
#[track_caller]
fn sbom(image: &Path) -> Vec<u8> {
    let output = sbom_run(image, None);
    assert!(output.status.success(), "sbom: {}", stderr(&output));
    output.stdout
}

fn sbom_run(image: &Path, epoch: Option<&str>) -> Output {
    let mut cmd = Command::new(BUILDER);
    cmd.arg("sbom").arg(image).env_remove("SOURCE_DATE_EPOCH");
    if let Some(epoch) = epoch {
        cmd.env("SOURCE_DATE_EPOCH", epoch);
    }
    run(&mut cmd)
}

/// Checks `document` with cyclonedx-python-lib (or leaves it for
/// tests/nix-2.26/run to check), and returns it parsed.
#[track_caller]
fn validated(name: &str, document: &[u8]) -> Value {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let parsed: Value = serde_json::from_slice(document).unwrap();
    if let Some(dir) = std::env::var_os("SBOM_VALIDATE_LATER") {
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let file = Path::new(&dir)
            .join(format!("{}-{n}-{name}.cdx.json", std::process::id()));
        std::fs::write(file, document).unwrap();
        return parsed;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("{name}.cdx.json"));
    std::fs::write(&file, document).unwrap();
    let python = Path::new(CYCLONEDX_VENV).join("bin/python");
    let output = run(Command::new(&python)
        .arg(repo().join("tests/lib/validate-cyclonedx.py"))
        .arg(&file));
    assert!(
        output.status.success(),
        "cyclonedx-python-lib ({}; scripts/install-deps installs it) \
         refuses the document of {name}:\n{}{}",
        python.display(),
        String::from_utf8_lossy(&output.stdout),
        stderr(&output)
    );
    parsed
}

fn nix_store(args: &[&str]) -> Vec<String> {
    String::from_utf8(stdout_of("nix-store", args))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The roots `expr`'s image exports the closure of, as its derivation
/// (a layered image's final layer) records them.
fn roots_of(expr: &str) -> BTreeSet<String> {
    let output =
        run(nix_command("nix-instantiate").arg("-E").arg(with_host(expr)));
    assert!(output.status.success(), "nix-instantiate: {}", stderr(&output));
    let mut drv = String::from_utf8(output.stdout).unwrap().trim().to_string();
    loop {
        let output = run(Command::new("nix")
            .args(["--extra-experimental-features", "nix-command"])
            .args(["show-derivation", &drv]));
        assert!(output.status.success(), "{}", stderr(&output));
        let shown: Value = serde_json::from_slice(&output.stdout).unwrap();
        let derivation = &shown[&drv];
        let attrs: Value = serde_json::from_str(
            derivation["env"]["__json"].as_str().unwrap(),
        )
        .unwrap();
        if let Some(roots) =
            attrs["exportReferencesGraph"]["closure"].as_array()
        {
            return roots
                .iter()
                .map(|r| r.as_str().unwrap().to_string())
                .collect();
        }
        drv = derivation["inputDrvs"]
            .as_object()
            .unwrap()
            .keys()
            .find(|d| d.contains("-final-layer-"))
            .unwrap_or_else(|| panic!("{drv} exports no closure"))
            .clone();
    }
}

fn property<'a>(component: &'a Value, name: &str) -> Option<&'a str> {
    component["properties"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["value"].as_str())
}

/// The document's store path components, by store path.
fn by_store_path(document: &Value) -> BTreeMap<String, &Value> {
    document["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (property(c, "nix:store_path").unwrap().to_string(), c))
        .collect()
}

/// The components named `name`.
fn named<'a>(document: &'a Value, name: &str) -> &'a Value {
    let found: Vec<&Value> = document["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == name)
        .collect();
    assert_eq!(found.len(), 1, "components named {name}: {found:?}");
    found[0]
}

fn dependencies(document: &Value) -> BTreeMap<String, BTreeSet<String>> {
    document["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let on = d["dependsOn"].as_array().unwrap();
            let on = on.iter().map(|r| r.as_str().unwrap().to_string());
            (d["ref"].as_str().unwrap().to_string(), on.collect())
        })
        .collect()
}

fn base_name(path: &str) -> String {
    path.strip_prefix("/nix/store/").unwrap().to_string()
}

/// The document says of the closure exactly what the store says:
/// components are `nix-store -qR` of the roots, their hashes
/// `nix-store -q --hash`, their dependencies `nix-store -q --references`
/// (less themselves), and the image depends on its roots.
#[track_caller]
fn assert_matches_the_store(document: &Value, roots: &BTreeSet<String>) {
    let mut args = vec!["-qR"];
    args.extend(roots.iter().map(String::as_str));
    let closure: BTreeSet<String> = nix_store(&args).into_iter().collect();
    let components = by_store_path(document);
    assert_eq!(
        components.keys().cloned().collect::<BTreeSet<_>>(),
        closure,
        "the components are not the closure"
    );
    let deps = dependencies(document);
    for path in &closure {
        let hash = &nix_store(&["-q", "--hash", path])[0];
        let hex: String = parse_sha256(hash)
            .unwrap()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let component = components[path];
        assert_eq!(component["hashes"][0]["alg"], "SHA-256", "{path}");
        assert_eq!(component["hashes"][0]["content"], hex, "{path}");
        assert_eq!(component["bom-ref"], base_name(path));
        let references: BTreeSet<String> =
            nix_store(&["-q", "--references", path])
                .iter()
                .filter(|r| *r != path)
                .map(|r| base_name(r))
                .collect();
        assert_eq!(deps[&base_name(path)], references, "{path}");
    }
    let image_ref = document["metadata"]["component"]["bom-ref"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        deps[&image_ref],
        roots.iter().map(|r| base_name(r)).collect::<BTreeSet<_>>()
    );
    assert_eq!(deps.len(), closure.len() + 1);
}

#[test]
fn names_split_as_parse_drv_name_splits() {
    let names = [
        "hello-2.12.1",
        "hello",
        "openssl-3.0.13-dev",
        "openssl-3.0.13",
        "demo-at.service",
        "demo.socket",
        "busybox-static",
        "glibc-2.40-66",
        "python3.12-requests-2.32.3",
        "perl5.38.2-URI-5.21",
        "gcc-wrapper-13.2.0",
        "xz-5.6.2-bin",
        "util-linux-minimal-2.39.4-lib",
        "nss-cacert-3.101",
        "source",
        "a--b",
        "-1",
        "a-",
        "-",
        "x-_y",
        "x-.y",
        "x-+y",
        "x-?y",
        "x-=y",
        "foo-bar-baz",
        "foo-Bar-1",
        "foo-1bar",
        "foo-1-bar-2",
        "0-1",
        "a-b-c-d-1.0",
        "linux-6.6.30-modules",
        "bench-large-lib-007",
        "unit-demo.service",
        "etc-os-release",
        "ca-certificates.crt",
        "z",
        "1.0",
        "v-1",
        "name-v1.0",
        "name-1.0_rc1",
        "name-unstable-2024-01-01",
        "name-0-unstable-2024-01-01",
    ];
    let list: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    let output = run(Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json", "-E"])
        .arg(format!("map builtins.parseDrvName [ {} ]", list.join(" "))));
    assert!(output.status.success(), "{}", stderr(&output));
    let nix: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    for (name, nix) in names.iter().zip(nix) {
        let ours = DrvName::parse(name);
        assert_eq!(
            (ours.name, ours.version),
            (nix["name"].as_str().unwrap(), nix["version"].as_str().unwrap()),
            "{name}"
        );
    }
}

/// The demo: a valid document that is its closure, the same bytes from
/// `passthru.sbom`, from a rebuild and from a second run; a timestamp only
/// from `SOURCE_DATE_EPOCH`.
#[test]
fn the_demos_document_is_its_closure() {
    let out = build("demo");
    let image = out.join("demo_1.0.raw");
    let bytes = sbom(&image);
    let document = validated("demo", &bytes);
    assert_matches_the_store(&document, &roots_of("demo"));

    let component = &document["metadata"]["component"];
    assert_eq!(component["type"], "container");
    assert_eq!(component["name"], "demo");
    assert_eq!(component["version"], "1.0");
    let sha256 = stdout_line("sha256sum", &[image.to_str().unwrap()]);
    assert_eq!(component["hashes"][0]["content"], sha256[..64]);
    assert_eq!(document["serialNumber"].as_str().unwrap()[9..17], sha256[..8]);
    assert!(document["metadata"].get("timestamp").is_none());
    assert_eq!(
        document["metadata"]["tools"]["components"][0]["name"],
        "portable-service-builder"
    );
    let busybox = named(&document, "busybox-static");
    assert_eq!(busybox["purl"], "pkg:nix/busybox-static");
    assert!(busybox.get("version").is_none());

    // passthru.sbom, built by Nix, and built again with --check.
    let passthru = build("demo.sbom");
    assert_eq!(std::fs::read(&passthru).unwrap(), bytes);
    rebuild_and_compare("demo.sbom", &[]);
    assert_eq!(sbom(&image), bytes);

    // --output writes the same bytes.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("demo.cdx.json");
    let output = builder(&[
        "sbom",
        image.to_str().unwrap(),
        "--output",
        file.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(std::fs::read(&file).unwrap(), bytes);

    let output = sbom_run(&image, Some("1700000000"));
    assert!(output.status.success(), "{}", stderr(&output));
    let stamped = validated("demo-stamped", &output.stdout);
    assert_eq!(stamped["metadata"]["timestamp"], "2023-11-14T22:13:20Z");
    let output = sbom_run(&image, Some("yesterday"));
    assert_eq!(output.status.code(), Some(2));
    assert_contains(
        &stderr(&output),
        &["SOURCE_DATE_EPOCH='yesterday' is not a number of seconds"],
    );

    let text = String::from_utf8(stdout_of(
        BUILDER,
        &["inspect", image.to_str().unwrap()],
    ))
    .unwrap();
    assert_contains(
        &text,
        &["SBOM: `portable-service-builder sbom` writes it from manifest version 2"],
    );
    assert_eq!(inspect_json(&image)["manifestVersion"], 2);
}

/// Licences as nixpkgs' lib.licenses shapes them.
const LICENSES: &str = r#"
  mit = { shortName = "mit"; spdxId = "MIT"; fullName = "MIT License"; free = true; deprecated = false; redistributable = true; licenseType = "simple"; url = "https://spdx.org/licenses/MIT.html"; };
  asl20 = { shortName = "asl20"; spdxId = "Apache-2.0"; fullName = "Apache License 2.0"; free = true; deprecated = false; redistributable = true; licenseType = "simple"; };
  unfree = { shortName = "unfree"; fullName = "Unfree"; free = false; deprecated = false; redistributable = false; licenseType = "simple"; };
"#;

/// A closure whose packages carry each kind of `meta.license`, reached
/// only through derivation inputs: `app` refers to every package, and
/// `tool`, a build input it does not refer to, is not in the closure.
fn packages(licenses: &str) -> String {
    format!(
        r#"
  let
    {licenses}
    package = name: meta: deps:
      (runCommand name {{ inherit deps; }} ''
        mkdir -p $out
        echo ${{name}} $deps > $out/refs
      '') // {{ inherit meta; }};
    single = package "single-1.0" {{ license = mit; description = "One licence"; homepage = "https://example.org/single"; }} [ ];
    listed = package "listed-2.0" {{ license = [ mit asl20 ]; }} [ ];
    proprietary = package "proprietary-3.0" {{ license = unfree; }} [ ];
    missing = package "missing-4.0" {{ }} [ ];
    stringly = package "stringly-5.0" {{ license = "GPL"; homepage = "not a url"; }} [ ];
    broken = package "broken-6.0" {{ license = throw "this licence was removed"; }} [ ];
    pnamed = package "pnamed-7.0-custom" {{ license = mit; }} [ ] // {{ pname = "pnamed"; version = "7.0"; }};
    tool = package "tool-9.0" {{ license = mit; }} [ ];
    app = (runCommand "app-1.0" {{ deps = [ single listed proprietary missing stringly broken pnamed ]; nativeBuildInputs = [ tool ]; }} ''
      mkdir -p $out
      echo $deps > $out/refs
    '') // {{ meta.license = asl20; }};
  in
"#
    )
}

fn licences_of(component: &Value) -> Value {
    component.get("licenses").cloned().unwrap_or(Value::Null)
}

#[test]
fn licences_come_from_nixpkgs_meta() {
    let expr = format!(
        "{} {}",
        packages(LICENSES),
        demo_image("contents = [ app ];")
    );
    let out = build(&expr);
    let image = out.join("demo_1.0.raw");
    let document = validated("licences", &sbom(&image));
    assert_matches_the_store(&document, &roots_of(&expr));

    let id = |id: &str| serde_json::json!({ "license": { "id": id } });
    assert_eq!(
        licences_of(named(&document, "app")),
        Value::Array(vec![id("Apache-2.0")])
    );
    let single = named(&document, "single");
    assert_eq!(single["version"], "1.0");
    assert_eq!(single["purl"], "pkg:nix/single@1.0");
    assert_eq!(licences_of(single), Value::Array(vec![id("MIT")]));
    assert_eq!(single["description"], "One licence");
    assert_eq!(
        single["externalReferences"],
        serde_json::json!([{ "type": "website", "url": "https://example.org/single" }])
    );
    assert_eq!(
        licences_of(named(&document, "listed")),
        Value::Array(vec![id("MIT"), id("Apache-2.0")])
    );
    assert_eq!(
        licences_of(named(&document, "proprietary")),
        serde_json::json!([{ "license": { "name": "Unfree", "properties": [
            { "name": "nixpkgs:free", "value": "false" }
        ] } }])
    );
    assert_eq!(licences_of(named(&document, "missing")), Value::Null);
    let stringly = named(&document, "stringly");
    assert_eq!(
        licences_of(stringly),
        serde_json::json!([{ "license": { "name": "GPL" } }])
    );
    assert!(stringly.get("externalReferences").is_none());
    // A meta that throws loses its entry, not the evaluation.
    assert_eq!(licences_of(named(&document, "broken")), Value::Null);
    let pnamed = named(&document, "pnamed");
    assert_eq!(
        (&pnamed["version"], &pnamed["purl"]),
        (&"7.0".into(), &"pkg:nix/pnamed@7.0".into())
    );
    assert!(document["components"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["name"] != "tool"));

    // Without the walk: the same closure, and no licences.
    let expr = format!(
        "{} {}",
        packages(LICENSES),
        demo_image("contents = [ app ]; collectMeta = false;")
    );
    let document =
        validated("no-meta", &sbom(&build(&expr).join("demo_1.0.raw")));
    assert!(document["components"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c.get("licenses").is_none()));
}

/// The walk against nixpkgs' own lib.licenses (the stub's pinned copy),
/// operators included, where this Nix can evaluate that lib (2.18 on;
/// tests/nix-2.26/run runs it under 2.26).
#[test]
fn licences_of_nixpkgs_lib() {
    if nix_version() < (2, 18) {
        eprintln!(
            "nixpkgs' lib needs Nix 2.18; Nix {:?} runs the hand-shaped \
             licences of licences_come_from_nixpkgs_meta only",
            nix_version()
        );
        return;
    }
    let lib = repo().join("tests/nixpkgs-stub/lib.nix");
    let licenses = format!(
        r#"
    lib = import {};
    inherit (lib.licenses) mit asl20 unfree;
    "#,
        lib.display()
    );
    let expr = format!(
        "{} {}",
        packages(&licenses).replace(
            "tool = package",
            "expression = package \"expression-8.0\" { license = with lib.licenses; AND [ ncsa (WITH asl20 llvm-exception) ]; } [ ];\n    tool = package"
        ).replace("pnamed ];", "pnamed expression ];"),
        demo_image("contents = [ app ];")
    );
    let document =
        validated("nixpkgs-lib", &sbom(&build(&expr).join("demo_1.0.raw")));
    assert_eq!(
        licences_of(named(&document, "listed")),
        serde_json::json!([{ "license": { "id": "MIT" } }, { "license": { "id": "Apache-2.0" } }])
    );
    assert_eq!(
        licences_of(named(&document, "proprietary")),
        serde_json::json!([{ "license": { "name": "Unfree", "properties": [
            { "name": "nixpkgs:free", "value": "false" }
        ] } }])
    );
    assert_eq!(
        licences_of(named(&document, "expression")),
        serde_json::json!([{ "expression": "NCSA AND (Apache-2.0 WITH LLVM-exception)" }])
    );
}

/// Every kind of image: an extension (its base's store paths are
/// components too, with no hash and no known dependencies), a layered
/// image, a disk image (its root hash a property) and a signed one.
#[test]
fn every_kind_of_image_has_a_valid_document() {
    const IMAGES: &str = r#"
      let
        runtime = portableService {
          pname = "runtime";
          version = "1.0";
          units = [ (writeText "runtime.service" "[Service]\nExecStart=${busybox}/bin/sleep infinity\n") ];
          contents = [ busybox ];
        };
        app = portableService {
          pname = "app";
          version = "2.0";
          base = runtime;
          units = [ (writeText "app.service" "[Service]\nExecStart=${busybox}/bin/sleep 1\n") ];
        };
        www = runCommand "sbom-www" { } "mkdir $out; echo hi > $out/index.html";
        layered = portableService {
          pname = "layered";
          version = "1.0";
          units = [ (writeText "layered.service" "[Service]\nExecStart=${busybox}/bin/httpd -h ${www}\n") ];
          layers = [ [ busybox ] ];
          format = "ddi";
        };
      in
    "#;
    let out = build(&format!("{IMAGES} app"));
    let document = validated("extension", &sbom(&out.join("app_2.0.raw")));
    assert_eq!(
        property(&document["metadata"]["component"], "portable-service:base"),
        Some("runtime_1.0.raw")
    );
    let busybox = named(&document, "busybox-static");
    assert_eq!(
        property(busybox, "portable-service:provided_by"),
        Some("runtime_1.0.raw")
    );
    assert!(busybox.get("hashes").is_none());
    let deps = dependencies(&document);
    assert!(!deps.contains_key(busybox["bom-ref"].as_str().unwrap()));
    let roots = roots_of(&format!("{IMAGES} app"));
    let mut args = vec!["-qR"];
    args.extend(roots.iter().map(String::as_str));
    assert_eq!(
        by_store_path(&document).into_keys().collect::<BTreeSet<_>>(),
        nix_store(&args).into_iter().collect::<BTreeSet<_>>()
    );

    let expr = format!("{IMAGES} layered");
    let image = build(&expr).join("layered_1.0.raw");
    let document = validated("layered-ddi", &sbom(&image));
    assert_matches_the_store(&document, &roots_of(&expr));
    let roothash =
        inspect_json(&image)["roothash"].as_str().unwrap().to_string();
    let component = &document["metadata"]["component"];
    assert_eq!(
        property(component, "portable-service:roothash"),
        Some(&*roothash)
    );
    assert_eq!(property(component, "portable-service:format"), Some("ddi"));

    let dir = tempfile::tempdir().unwrap();
    let key = rsa(dir.path());
    let signed: PathBuf = dir.path().join("layered_1.0.raw");
    let output =
        builder(&sign_args(&image, &key.key, &key.certificate, &signed));
    assert!(output.status.success(), "{}", stderr(&output));
    let signed_document = validated("signed", &sbom(&signed));
    let component = &signed_document["metadata"]["component"];
    assert_eq!(
        property(component, "portable-service:roothash"),
        Some(&*roothash)
    );
    assert_ne!(signed_document["serialNumber"], document["serialNumber"]);
    assert_eq!(signed_document["components"], document["components"]);
}

/// A squashfs image of the tree at `root`, made by mksquashfs.
fn squashfs_of(root: &Path, image: &Path) {
    let output = run(Command::new("mksquashfs").arg(root).arg(image).args([
        "-quiet",
        "-no-progress",
        "-noappend",
        "-all-root",
    ]));
    assert!(output.status.success(), "mksquashfs: {}", stderr(&output));
}

/// Images this builder did not make, or made before: no manifest, a
/// damaged one, a version 1 manifest (no roots, no meta: a valid document
/// without licences or the image's own dependencies); and a store path
/// name the splitter cannot split into a non-empty name.
#[test]
fn bad_and_old_images() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let manifest_dir = root.join("usr/lib/portable-service");
    std::fs::create_dir_all(&manifest_dir).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(
        root.join("etc/os-release"),
        "ID=nixos\nPORTABLE_PREFIXES=old\n",
    )
    .unwrap();

    let image = dir.path().join("old_1.0.raw");
    squashfs_of(&root, &image);
    let output = sbom_run(&image, None);
    assert_eq!(output.status.code(), Some(2));
    assert_contains(
        &stderr(&output),
        &["error: old_1.0.raw: /usr/lib/portable-service/closure.json is missing: the SBOM lists the store paths the manifest records"],
    );

    std::fs::write(manifest_dir.join("closure.json"), "{\"closureVersion\":")
        .unwrap();
    squashfs_of(&root, &image);
    let output = sbom_run(&image, None);
    assert_eq!(output.status.code(), Some(2));
    assert_contains(
        &stderr(&output),
        &["error: old_1.0.raw: parsing the manifest: EOF while parsing"],
    );

    // Version 1, as images built before `roots` and `meta` record it,
    // of a real store path: busybox.
    let busybox = build("busybox");
    let busybox = busybox.to_str().unwrap();
    let info = closure_info(&[busybox.to_string()]);
    std::fs::write(
        manifest_dir.join("closure.json"),
        serde_json::json!({ "closureVersion": 1, "paths": info }).to_string(),
    )
    .unwrap();
    squashfs_of(&root, &image);
    let document = validated("version-1", &sbom(&image));
    assert_eq!(
        by_store_path(&document).into_keys().collect::<Vec<_>>(),
        [busybox]
    );
    let deps = dependencies(&document);
    assert!(!deps.contains_key("image:old_1.0.raw"), "{deps:?}");
    assert_eq!(
        property(
            &document["metadata"]["component"],
            "portable-service:manifest_version"
        ),
        Some("1")
    );
    let text = String::from_utf8(stdout_of(
        BUILDER,
        &["inspect", image.to_str().unwrap()],
    ))
    .unwrap();
    assert_contains(
        &text,
        &["from manifest version 1, which records no licences"],
    );

    // A store path named "-1": parseDrvName gives an empty name.
    let expr = demo_image(r#"contents = [ (builtins.toFile "-1" "x") ];"#);
    let document =
        validated("dash-one", &sbom(&build(&expr).join("demo_1.0.raw")));
    let component = named(&document, "-1");
    assert!(component.get("version").is_none());
    assert_eq!(component["purl"], "pkg:nix/-1");
}
