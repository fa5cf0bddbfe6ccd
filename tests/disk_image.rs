//! `format = "ddi"`, end to end: images built by the real nix-build in the
//! sandbox, read back by `systemd-dissect` (252, on the host),
//! `veritysetup verify` (which checks the hash tree in user space),
//! `unsquashfs` and our `inspect` and `verify`; signed by our `sign` with a
//! throw-away key and checked by `openssl` on its own.
//!
//! Not tested here, because this kernel has no device-mapper: the kernel
//! checking blocks as it reads them, and a signature checked by the kernel
//! keyring. `tests/systemd/` attaches the images (signed and unsigned) to
//! systemd 252 and 257 and says what the signed one needs.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use portable_service::ddi::Ddi;

use crate::ddi::{
    dissect, ec, flip, openssl_cms_verify, read_range, rsa, sign_args, split,
    verity_column, veritysetup_verify,
};
use crate::util::*;

const DDI: &str = r#"format = "ddi";"#;

/// A writable copy of `image` (store files are read-only) in `dir`.
fn copy(image: &Path, dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(name);
    fs::copy(image, &to).unwrap();
    fs::set_permissions(&to, fs::Permissions::from_mode(0o644)).unwrap();
    to
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The files in `dir`, by name.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn the_disk_image_holds_the_squashfs_image_under_verity() {
    let squashfs = build(&demo_image("")).join("demo_1.0.raw");
    let image = build(&demo_image(DDI)).join("demo_1.0.raw");
    let ddi = Ddi::read(&image).unwrap();

    // The root partition is the squashfs format's image, padded with
    // zeros to the partition's end.
    let root = read_range(&image, ddi.root.offset(), ddi.root.size());
    let squashfs_bytes = fs::read(&squashfs).unwrap();
    assert_eq!(
        root.len() as u64,
        (squashfs_bytes.len() as u64).div_ceil(4096) * 4096
    );
    assert!(root[..squashfs_bytes.len()] == squashfs_bytes[..]);
    assert!(root[squashfs_bytes.len()..].iter().all(|&b| b == 0));

    let table = dissect(&image, &[]).unwrap();
    assert_contains(
        &table,
        &[
            "✓ portable service",
            &format!("ro root        {} root-x86-64 ", ddi.root.guid),
            &format!("ro root-verity {} root-x86-64-verity ", ddi.verity.guid),
        ],
    );

    // inspect reports the format, the partitions and the root hash that
    // veritysetup accepts the partitions with.
    let facts = inspect_json(&image);
    assert_eq!(facts["format"], "ddi");
    let roothash = facts["roothash"].as_str().unwrap().to_string();
    assert_eq!(roothash, ddi.root_hash_hex());
    let labels: Vec<&str> = facts["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["root-x86-64", "root-x86-64-verity"]);
    assert_eq!(facts["units"][0]["name"], "demo.service");
    let text =
        String::from_utf8(builder(&["inspect", path(&image)]).stdout).unwrap();
    assert_contains(
        &text,
        &[
            "demo_1.0.raw: portable service",
            "disk image of a squashfs",
            &format!("root hash: {roothash}"),
            "  1  root-x86-64 ",
            "  2  root-x86-64-verity ",
            "demo.service",
        ],
    );
    assert_eq!(inspect_json(&squashfs)["format"], "squashfs");
    assert!(inspect_json(&squashfs).get("roothash").is_none());

    let dir = tempfile::tempdir().unwrap();
    let (data, hash) = split(&image, &ddi, dir.path());
    assert!(veritysetup_verify(&data, &hash, &roothash));
    let verified = verify(&image, None);
    assert_verified(
        &verified,
        "demo_1.0.raw: verified 2 store paths and 1 unit\n",
    );

    // A flipped byte in either partition: veritysetup and verify reject it.
    for (partition, at) in [(&ddi.root, 70_000), (&ddi.verity, 100)] {
        let (data, hash) = split(&image, &ddi, dir.path());
        let part = if partition == &ddi.root { &data } else { &hash };
        flip(part, at);
        assert!(
            !veritysetup_verify(&data, &hash, &roothash),
            "{}",
            partition.name
        );

        let damaged = copy(&image, dir.path(), "demo_1.0.raw");
        flip(&damaged, partition.offset() + at);
        let stdout = findings(&[path(&damaged)]);
        assert!(stdout.starts_with("demo_1.0.raw: "), "{stdout}");
        assert_contains(&stdout, &["image bytes"]);
    }
}

#[test]
fn the_same_inputs_give_the_same_disk_image() {
    let expr = demo_image(&format!(r#"{DDI} description = "twice";"#));
    build(&expr);
    rebuild_and_compare(&expr, &[]);
}

#[test]
fn sign_then_verify_with_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let image = build(&demo_image(DDI)).join("demo_1.0.raw");
    let (key, other) = (rsa(dir.path()), ec(dir.path()));
    let signed = dir.path().join("signed").join("demo_1.0.raw");
    fs::create_dir(signed.parent().unwrap()).unwrap();
    let output =
        builder(&sign_args(&image, &key.key, &key.certificate, &signed));
    assert!(output.status.success(), "{}", stderr(&output));
    let roothash = Ddi::read(&image).unwrap().root_hash_hex();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("{}: signed root hash {roothash}\n", signed.display())
    );

    let certificate = ["--certificate", path(&key.certificate)];
    let output =
        builder(&[&["verify", path(&signed)][..], &certificate].concat());
    assert_verified(
        &output,
        "demo_1.0.raw: verified 2 store paths and 1 unit\n",
    );
    let table = dissect(&signed, &[]).unwrap();
    assert_contains(&table, &["✓ portable service", "root-x86-64-verity-sig"]);
    assert_eq!(verity_column(&table, "root"), "signed");
    assert_eq!(
        inspect_json(&signed)["partitions"][2]["label"],
        "root-x86-64-verity-sig"
    );

    // The signature, checked without our code: the partition found by
    // sfdisk, its JSON read as systemd reads it, the PKCS#7 signature of
    // the root hash's text checked by openssl.
    let sfdisk: serde_json::Value = serde_json::from_slice(&stdout_of(
        "sfdisk",
        &["--json", path(&signed)],
    ))
    .unwrap();
    let sig = &sfdisk["partitiontable"]["partitions"][2];
    assert_eq!(sig["name"], "root-x86-64-verity-sig");
    let (start, sectors) =
        (sig["start"].as_u64().unwrap(), sig["size"].as_u64().unwrap());
    let raw = read_range(&signed, start * 512, sectors * 512);
    let end = raw.iter().position(|&b| b == 0).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&raw[..end]).unwrap();
    assert_eq!(json["rootHash"], roothash);
    let base64 = dir.path().join("signature.b64");
    fs::write(&base64, json["signature"].as_str().unwrap()).unwrap();
    let der = dir.path().join("signature.der");
    fs::write(&der, stdout_of("base64", &["-d", path(&base64)])).unwrap();
    let content = dir.path().join("roothash.txt");
    fs::write(&content, &roothash).unwrap();
    let openssl =
        |certificate: &Path| openssl_cms_verify(&der, &content, certificate);
    let accepted = openssl(&key.certificate);
    assert!(accepted.status.success(), "{}", stderr(&accepted));
    assert!(!openssl(&other.certificate).status.success());

    // Another certificate: findings, exit status 1.
    let stdout =
        findings(&[path(&signed), "--certificate", path(&other.certificate)]);
    assert_contains(
        &stdout,
        &[
            "demo_1.0.raw: the signature names certificate ",
            "demo_1.0.raw: the signature does not verify with the given certificate",
        ],
    );
    // The unsigned image, and a squashfs image, have no signature.
    assert_contains(
        &findings(&[&[path(&image)][..], &certificate].concat()),
        &["demo_1.0.raw: the image has no verity signature partition"],
    );
    let squashfs = build(&demo_image("")).join("demo_1.0.raw");
    assert_contains(
        &findings(&[&[path(&squashfs)][..], &certificate].concat()),
        &["demo_1.0.raw: is a squashfs image, which carries no signature"],
    );
}

#[test]
fn sign_refuses_bad_input_and_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let image = build(&demo_image(DDI)).join("demo_1.0.raw");
    let squashfs = build(&demo_image("")).join("demo_1.0.raw");
    let (rsa, ec) = (rsa(dir.path()), ec(dir.path()));
    let out = dir.path().join("out");
    fs::create_dir(&out).unwrap();
    let sign = |image: &Path, key: &Path| {
        builder(&sign_args(
            image,
            key,
            &rsa.certificate,
            &out.join("signed.raw"),
        ))
    };
    let refused = |output: Output, needles: &[&str]| {
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        assert_contains(&stderr(&output), needles);
        assert!(listing(&out).is_empty(), "{:?}", listing(&out));
    };
    refused(
        sign(&image, &ec.key),
        &[
            &format!("portable-service-builder: error: {}: ", image.display()),
            &format!(
                "the key {} does not belong to the certificate",
                ec.key.display()
            ),
        ],
    );
    refused(
        sign(&squashfs, &rsa.key),
        &[&format!(
            "error: {}: is a squashfs image: only a disk image (format = \"ddi\") carries a signature",
            squashfs.display()
        )],
    );
    let truncated = copy(&image, dir.path(), "truncated.raw");
    let len = fs::metadata(&truncated).unwrap().len();
    fs::File::options()
        .write(true)
        .open(&truncated)
        .unwrap()
        .set_len(len - 4096)
        .unwrap();
    refused(
        sign(&truncated, &rsa.key),
        &[&format!("error: {}: ", truncated.display())],
    );
}

/// `sign` checks everything `verify` does: a disk image whose structure
/// and hash tree are right, but whose squashfs holds a changed store path,
/// is refused with verify's findings.
#[test]
fn sign_refuses_an_image_whose_squashfs_does_not_verify() {
    let dir = tempfile::tempdir().unwrap();
    let squashfs = build(&demo_image("")).join("demo_1.0.raw");
    let changed = copy(&squashfs, dir.path(), "changed.squashfs");
    // Inside the first data block, past the 96-byte superblock.
    flip(&changed, 4096);
    let image = dir.path().join("demo_1.0.raw");
    portable_service::ddi::build(
        &changed,
        portable_service::ddi::Architecture::X86_64,
        &image,
    )
    .unwrap();
    assert_eq!(Ddi::read(&image).unwrap().verify().unwrap(), vec![]);
    let found = findings(&[path(&image)]);
    assert!(!found.is_empty());

    let key = rsa(dir.path());
    let signed = dir.path().join("signed.raw");
    let output =
        builder(&sign_args(&image, &key.key, &key.certificate, &signed));
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let listed: String = found.lines().map(|l| format!("  {l}\n")).collect();
    // One line each, as verify gives them.
    assert_eq!(
        stderr(&output),
        format!(
            "portable-service-builder: error: {}: refusing to sign an image \
             that does not verify:\n{listed}",
            image.display()
        )
    );
    assert!(!signed.exists());
}

/// `sign` writes `.OUT.partial` itself, exclusively: a symlink planted
/// there is removed, not written through, and a stale file from a killed
/// run does not stop it.
#[test]
fn sign_does_not_follow_a_planted_link() {
    let dir = tempfile::tempdir().unwrap();
    let image = build(&demo_image(DDI)).join("demo_1.0.raw");
    let key = rsa(dir.path());
    let out = dir.path().join("out");
    fs::create_dir(&out).unwrap();
    let signed = out.join("signed.raw");
    let partial = out.join(".signed.raw.partial");
    let victim = dir.path().join("victim");
    fs::write(&victim, "must survive").unwrap();
    let sign =
        || builder(&sign_args(&image, &key.key, &key.certificate, &signed));
    std::os::unix::fs::symlink(&victim, &partial).unwrap();
    let output = sign();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(fs::read_to_string(&victim).unwrap(), "must survive");
    assert_eq!(listing(&out), ["signed.raw"]);
    assert_eq!(Ddi::read(&signed).unwrap().verify().unwrap(), vec![]);

    fs::write(&partial, "left by a killed run").unwrap();
    let output = sign();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(listing(&out), ["signed.raw"]);
}

/// Certificates and keys that are not one small regular file: an error
/// (exit status 2) naming the file, from verify and sign alike, and never
/// a hang (`timeout` would end it with 124).
#[test]
fn bad_certificate_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let image = build(&demo_image(DDI)).join("demo_1.0.raw");
    let (key, other) = (rsa(dir.path()), ec(dir.path()));
    let signed = dir.path().join("signed.raw");
    let both = dir.path().join("both.crt");
    let mut pem = fs::read(&key.certificate).unwrap();
    pem.extend(fs::read(&other.certificate).unwrap());
    fs::write(&both, pem).unwrap();
    let timed = |args: &[&str]| {
        run(std::process::Command::new("timeout")
            .arg("30")
            .arg(BUILDER)
            .args(args))
    };
    for (certificate, message) in [
        (
            Path::new("/dev/zero"),
            "/dev/zero: the certificate must be a regular file, not a \
             character device"
                .to_string(),
        ),
        (
            &both,
            format!(
                "{}: holds 2 PEM blocks (CERTIFICATE, CERTIFICATE); a \
                 certificate file must hold exactly one, the signer's \
                 certificate",
                both.display()
            ),
        ),
    ] {
        let expected = format!("portable-service-builder: error: {message}\n");
        let output = timed(&[
            "verify",
            path(&image),
            "--certificate",
            path(certificate),
        ]);
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        assert_eq!(stderr(&output), expected);
        let output = timed(&sign_args(&image, &key.key, certificate, &signed));
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        assert_eq!(stderr(&output), expected);
    }
    let output = timed(&sign_args(
        &image,
        Path::new("/dev/zero"),
        &key.certificate,
        &signed,
    ));
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert_eq!(
        stderr(&output),
        "portable-service-builder: error: /dev/zero: the key must be a \
         regular file, not a character device\n"
    );
    assert!(!signed.exists());
}

/// Truncated and foreign files: inspect gives an error naming the file,
/// verify a finding (exit status 1); neither panics.
#[test]
fn damaged_disk_images_are_reported_not_panicked_on() {
    let dir = tempfile::tempdir().unwrap();
    let image = build(&demo_image(DDI)).join("demo_1.0.raw");
    let bytes = fs::read(&image).unwrap();
    let len = bytes.len();
    let damaged = dir.path().join("demo_1.0.raw");
    for cut in [0, 100, 512, 4096, 1 << 20, len / 2, len - 512] {
        fs::write(&damaged, &bytes[..cut]).unwrap();
        let output = builder(&["inspect", path(&damaged)]);
        assert_eq!(
            output.status.code(),
            Some(2),
            "cut at {cut}: {}",
            stderr(&output)
        );
        assert_contains(
            &stderr(&output),
            &["portable-service-builder: error: ", path(&damaged)],
        );
        let stdout = findings(&[path(&damaged)]);
        assert!(
            stdout.starts_with("demo_1.0.raw: cannot be read as an image: "),
            "{stdout}"
        );
    }
    let output = verify(&dir.path().join("missing.raw"), None);
    assert_eq!(output.status.code(), Some(2));
    assert_contains(&stderr(&output), &["missing.raw", "No such file"]);
}

/// An extension on a base, both disk images, and a layered disk image
/// (whose root partition is the layered squashfs image).
#[test]
fn extensions_and_layers_are_disk_images_too() {
    let images = format!(
        r#"let
             runtime = portableService {{
               pname = "runtime";
               version = "1.0";
               {DDI}
               units = [ (writeText "runtime.service" "[Service]\nExecStart=${{busybox}}/bin/sleep infinity\n") ];
               contents = [ busybox ];
             }};
             app = portableService {{
               pname = "app";
               version = "2.0";
               {DDI}
               base = runtime;
               units = [ (writeText "app.service" "[Service]\nExecStart=${{busybox}}/bin/sleep 1\n") ];
             }};
           in {{ inherit runtime app; }}"#
    );
    let runtime =
        build(&format!("({images}).runtime")).join("runtime_1.0.raw");
    let app = build(&format!("({images}).app")).join("app_2.0.raw");
    assert_eq!(inspect_json(&app)["kind"], "extension");
    assert_eq!(inspect_json(&app)["format"], "ddi");
    let output = verify(&app, Some(&runtime));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );

    let layered =
        build(&demo_image(&format!("{DDI} layers = [ [ busybox ] ];")))
            .join("demo_1.0.raw");
    let squashfs =
        build(&demo_image("layers = [ [ busybox ] ];")).join("demo_1.0.raw");
    let ddi = Ddi::read(&layered).unwrap();
    let root = read_range(&layered, ddi.root.offset(), ddi.root.size());
    let squashfs_bytes = fs::read(&squashfs).unwrap();
    assert!(root[..squashfs_bytes.len()] == squashfs_bytes[..]);
    assert_verified(
        &verify(&layered, None),
        "demo_1.0.raw: verified 2 store paths and 1 unit\n",
    );
}
