//! The DDI format against the real tools: `veritysetup format` and
//! `verify` for the hash tree, `sfdisk` and `systemd-dissect` for the
//! partition table, `openssl` and GnuTLS's `certtool` for signatures, and
//! `systemd-repart` for what systemd itself builds from the same squashfs.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use portable_service::ddi::gpt::{self, Guid};
use portable_service::ddi::signature::{self, Certificate, Openssl, Signer};
use portable_service::ddi::{
    self, verity, Architecture, Ddi, ErrorKind, Finding, Verified,
};

use crate::util::*;

/// A portable service's tree: os-release, a unit, the files and
/// directories portabled binds over.
fn service_tree(root: &Path, payload: &[u8]) {
    let file = |path: &str, contents: &[u8]| {
        let path = root.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, contents).unwrap();
    };
    file(
        "usr/lib/os-release",
        b"ID=nixos\nVERSION_ID=1\nPORTABLE_PREFIXES=demo\n",
    );
    file(
        "etc/systemd/system/demo.service",
        b"[Service]\nExecStart=/bin/true\n",
    );
    file("etc/resolv.conf", b"");
    file("etc/machine-id", b"");
    std::os::unix::fs::symlink(
        "../usr/lib/os-release",
        root.join("etc/os-release"),
    )
    .unwrap();
    file("usr/share/payload", payload);
    for dir in ["proc", "sys", "dev", "run", "tmp", "var/tmp"] {
        fs::create_dir_all(root.join(dir)).unwrap();
    }
}

/// A squashfs of `service_tree`, made as `src/mksquashfs.rs` makes images
/// (from a directory here, not a tar stream).
fn squashfs(dir: &Path, payload: &[u8]) -> PathBuf {
    let root = dir.join("tree");
    service_tree(&root, payload);
    let image = dir.join("demo.squashfs");
    let output = run(Command::new("mksquashfs")
        .arg(&root)
        .arg(&image)
        .args(["-noappend", "-exit-on-error", "-quiet", "-no-progress"])
        .args(["-no-exports", "-no-xattrs", "-all-root"])
        .args(["-root-mode", "755", "-processors", "1"])
        .env("SOURCE_DATE_EPOCH", "0"));
    assert!(output.status.success(), "mksquashfs: {}", stderr(&output));
    image
}

/// Bytes that do not compress, different for each `seed`.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn build_demo(dir: &Path, payload: &[u8]) -> (PathBuf, PathBuf, Ddi) {
    let squashfs = squashfs(dir, payload);
    let image = dir.join("demo_1.0.raw");
    let ddi = ddi::build(&squashfs, Architecture::X86_64, &image).unwrap();
    (squashfs, image, ddi)
}

pub(crate) fn read_range(path: &Path, offset: u64, len: u64) -> Vec<u8> {
    let mut buf = vec![0u8; len as usize];
    fs::File::open(path).unwrap().read_exact_at(&mut buf, offset).unwrap();
    buf
}

pub(crate) fn flip(path: &Path, offset: u64) {
    let file =
        fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut b = [0u8];
    file.read_exact_at(&mut b, offset).unwrap();
    file.write_all_at(&[b[0] ^ 0x01], offset).unwrap();
}

/// `veritysetup verify DATA HASH ROOT`: true if it accepts.
pub(crate) fn veritysetup_verify(
    data: &Path,
    hash: &Path,
    root_hash: &str,
) -> bool {
    let output = run(Command::new("veritysetup")
        .arg("verify")
        .arg(data)
        .arg(hash)
        .arg(root_hash));
    output.status.success()
}

/// The root and verity partitions of `image` as files of their own.
pub(crate) fn split(
    image: &Path,
    ddi: &Ddi,
    dir: &Path,
) -> (PathBuf, PathBuf) {
    let (data, hash) = (dir.join("root.part"), dir.join("verity.part"));
    fs::write(&data, read_range(image, ddi.root.offset(), ddi.root.size()))
        .unwrap();
    fs::write(
        &hash,
        read_range(image, ddi.verity.offset(), ddi.verity.size()),
    )
    .unwrap();
    (data, hash)
}

#[test]
fn hash_device_is_what_veritysetup_format_writes() {
    let dir = tempfile::tempdir().unwrap();
    // One block (no levels), one hash block, two, and three levels.
    for blocks in [1usize, 2, 128, 129, 128 * 128 + 1] {
        let data = dir.path().join(format!("data-{blocks}"));
        let contents = noise(blocks * 4096, blocks as u64);
        fs::write(&data, &contents).unwrap();
        let salt = noise(32, 99 + blocks as u64);
        let uuid = Guid::parse_const("01234567-89ab-4def-8123-456789abcdef");

        let mut builder = verity::Builder::new(&salt);
        // In uneven chunks, as a caller may pass them.
        for chunk in contents.chunks(4096 * 100) {
            builder.update(chunk);
        }
        let ours = builder.finish(|_| uuid);

        let hash = dir.path().join(format!("hash-{blocks}"));
        fs::write(&hash, b"").unwrap();
        let out = stdout_of(
            "veritysetup",
            &[
                "format",
                &format!("--salt={}", portable_service::digest::hex(&salt)),
                &format!("--uuid={uuid}"),
                data.to_str().unwrap(),
                hash.to_str().unwrap(),
            ],
        );
        let out = String::from_utf8(out).unwrap();
        let theirs = out
            .lines()
            .find_map(|l| l.strip_prefix("Root hash:"))
            .unwrap()
            .trim()
            .to_string();
        assert_eq!(
            portable_service::digest::hex(&ours.root_hash),
            theirs,
            "{blocks} blocks"
        );
        assert!(
            fs::read(&hash).unwrap() == ours.bytes,
            "{blocks} blocks: the hash devices differ"
        );
        assert_eq!(
            verity::verify(&ours.bytes[..], &contents[..], &ours.root_hash)
                .unwrap(),
            vec![]
        );
    }
}

#[test]
fn table_is_what_sfdisk_reads() {
    let dir = tempfile::tempdir().unwrap();
    let (squashfs, image, ddi) = build_demo(dir.path(), b"hello");
    let json: serde_json::Value = serde_json::from_slice(&stdout_of(
        "sfdisk",
        &["--json", image.to_str().unwrap()],
    ))
    .unwrap();
    let table = &json["partitiontable"];
    assert_eq!(table["label"], "gpt");
    assert_eq!(table["sectorsize"], 512);
    assert_eq!(table["firstlba"], 2048);
    assert_eq!(
        table["id"].as_str().unwrap().to_lowercase(),
        ddi.gpt.disk_guid.to_string()
    );
    let parts = table["partitions"].as_array().unwrap();
    let hex = ddi.root_hash_hex();
    let uuid = |h: &str| {
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    };
    let expected = [
        (
            "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709",
            uuid(&hex[..32]),
            "root-x86-64",
        ),
        (
            "2C7357ED-EBD2-46D9-AEC1-23D437EC2BF5",
            uuid(&hex[32..]),
            "root-x86-64-verity",
        ),
    ];
    assert_eq!(parts.len(), 2);
    for (part, (ty, uuid, name)) in parts.iter().zip(expected) {
        assert_eq!(part["type"], ty);
        assert_eq!(part["uuid"].as_str().unwrap().to_lowercase(), uuid);
        assert_eq!(part["name"], name);
        assert_eq!(part["attrs"], "GUID:60");
    }
    assert_eq!(parts[0]["start"], 2048);
    // The root partition holds the squashfs as it is, padded to 4 KiB.
    let squashfs = fs::read(squashfs).unwrap();
    let root = read_range(&image, ddi.root.offset(), ddi.root.size());
    assert_eq!(&root[..squashfs.len()], &squashfs[..]);
    assert!(root[squashfs.len()..].iter().all(|&b| b == 0));
    // sfdisk finds nothing to complain about.
    let output = run(Command::new("sfdisk").arg("--verify").arg(&image));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_contains(
        &String::from_utf8_lossy(&output.stdout),
        &["No errors detected."],
    );
    assert_eq!(Ddi::read(&image).unwrap(), ddi);
}

/// `systemd-dissect ARGS IMAGE` in a UTF-8 locale: stdout, or stderr
/// as the error.
pub(crate) fn dissect(image: &Path, args: &[&str]) -> Result<String, String> {
    let output = run(Command::new("systemd-dissect")
        .args(args)
        .arg(image)
        .env("LC_ALL", "C.UTF-8")
        .env("SYSTEMD_COLORS", "0"));
    match output.status.success() {
        true => Ok(String::from_utf8_lossy(&output.stdout).into_owned()),
        false => Err(stderr(&output)),
    }
}

/// The VERITY column of the partition `designator` in dissect's table
/// (RW DESIGNATOR UUID LABEL FSTYPE ARCHITECTURE VERITY ...).
pub(crate) fn verity_column(table: &str, designator: &str) -> String {
    table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cols| cols.get(1) == Some(&designator))
        .unwrap_or_else(|| panic!("no {designator} in\n{table}"))[6]
        .to_string()
}

#[test]
fn systemd_dissect_sees_a_portable_service() {
    let dir = tempfile::tempdir().unwrap();
    let (_, image, ddi) = build_demo(dir.path(), b"hello");
    let stdout = dissect(&image, &[]).unwrap();
    assert_contains(
        &stdout,
        &[
            "✓ portable service",
            "PORTABLE_PREFIXES=demo",
            &format!("ro root        {} root-x86-64 ", ddi.root.guid),
            &format!("ro root-verity {} root-x86-64-verity ", ddi.verity.guid),
        ],
    );
    // Without a root hash dissect cannot tell the partitions belong
    // together; given ours, it finds them by their UUIDs.
    assert_eq!(verity_column(&stdout, "root"), "no");
    let hex = ddi.root_hash_hex();
    let with_hash = dissect(&image, &[&format!("--root-hash={hex}")]);
    assert_eq!(verity_column(&with_hash.unwrap(), "root"), "yes");
    let other = format!("{}{}", &hex[..32], "1".repeat(32));
    let err = dissect(&image, &[&format!("--root-hash={other}")]);
    assert_contains(
        &err.unwrap_err(),
        &["No root partition for specified root hash"],
    );

    // Signed: dissect reads the root hash from the signature partition.
    // It cannot check the signature here (that takes device-mapper, which
    // this kernel lacks: `systemd-dissect --mount` fails with "Failed to
    // decrypt image"), but it reads the image and calls it signed.
    let signed = dir.path().join("signed").join("demo_1.0.raw");
    fs::create_dir(signed.parent().unwrap()).unwrap();
    sign(&image, &rsa(dir.path()).signer(), &signed).unwrap();
    let stdout = dissect(&signed, &[]).unwrap();
    assert_contains(
        &stdout,
        &["✓ portable service", "root-x86-64-verity-sig"],
    );
    assert_eq!(verity_column(&stdout, "root"), "signed");
}

#[test]
fn veritysetup_and_verify_reject_changed_blocks() {
    let dir = tempfile::tempdir().unwrap();
    // Large enough for two levels: 600 data blocks.
    let (_, image, ddi) = build_demo(dir.path(), &noise(600 * 4096, 1));
    assert_eq!(ddi.verify().unwrap(), vec![]);
    let (data, hash) = split(&image, &ddi, dir.path());
    let root_hash = ddi.root_hash_hex();
    assert!(veritysetup_verify(&data, &hash, &root_hash));

    // A data block: the 300th of the root partition.
    let broken = dir.path().join("data-broken.raw");
    fs::copy(&image, &broken).unwrap();
    flip(&broken, ddi.root.offset() + 300 * 4096 + 17);
    let (data, hash) = split(&broken, &ddi, dir.path());
    assert!(!veritysetup_verify(&data, &hash, &root_hash));
    let findings = Ddi::read(&broken).unwrap().verify().unwrap();
    assert_eq!(
        findings,
        vec![Finding::Verity {
            finding: verity::Finding::DataBlock { index: 300 },
            offset: ddi.root.offset() + 300 * 4096,
            len: 4096,
        }]
    );

    // Each block of the tree: level 0 (blocks 2 to 6), level 1 (block 1).
    for (block, level, index) in [(1u64, 1usize, 0u64), (2, 0, 0), (4, 0, 2)] {
        let broken = dir.path().join("hash-broken.raw");
        fs::copy(&image, &broken).unwrap();
        flip(&broken, ddi.verity.offset() + block * 4096 + 100);
        let (data, hash) = split(&broken, &ddi, dir.path());
        assert!(
            !veritysetup_verify(&data, &hash, &root_hash),
            "block {block}"
        );
        let expected = if level == 1 {
            verity::Finding::RootHash { hash_block: 1 }
        } else {
            verity::Finding::HashBlock { level, index, hash_block: block }
        };
        assert_eq!(
            Ddi::read(&broken).unwrap().verify().unwrap(),
            vec![Finding::Verity {
                finding: expected,
                offset: ddi.verity.offset() + block * 4096,
                len: 4096,
            }],
            "hash block {block}"
        );
    }

    // Bytes no tool hashes: the superblock's UUID and padding, which
    // veritysetup does not check.
    for offset in [20u64, 400, 1000] {
        let broken = dir.path().join("sb-broken.raw");
        fs::copy(&image, &broken).unwrap();
        flip(&broken, ddi.verity.offset() + offset);
        let findings = Ddi::read(&broken).unwrap().verify().unwrap();
        assert!(!findings.is_empty(), "superblock byte {offset}");
    }
    // A table rewritten by another tool, valid but not ours.
    let relabelled = dir.path().join("relabelled.raw");
    fs::copy(&image, &relabelled).unwrap();
    stdout_of(
        "sfdisk",
        &["--part-attrs", relabelled.to_str().unwrap(), "2", ""],
    );
    let findings = Ddi::read(&relabelled).unwrap().verify().unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_contains(
        &findings[0].to_string(),
        &[
            "the partition table's partition 2 is",
            "attributes 0x0 ",
            "expected",
        ],
    );
    // Between the table and the first partition.
    let broken = dir.path().join("gap-broken.raw");
    fs::copy(&image, &broken).unwrap();
    flip(&broken, 100_000);
    assert_eq!(
        Ddi::read(&broken).unwrap().verify().unwrap(),
        vec![Finding::NotZero {
            region: "the gap between the primary partition table and \
                     partition 1"
                .into(),
            offset: 100_000,
            count: 1
        }]
    );
}

/// `Ddi::verify` of `path`: its findings as text, or why it cannot be
/// read.
fn verified(path: &Path) -> Result<Vec<String>, String> {
    let ddi = Ddi::read(path).map_err(|e| e.to_string())?;
    Ok(ddi.verify().unwrap().iter().map(ToString::to_string).collect())
}

fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .write_all_at(bytes, offset)
        .unwrap();
}

/// Changes the header sector at `lba` of `path` with `change`, then sets
/// its CRC32s as a tool that meant the change would: the entry array's
/// (over the array the header now describes) and the header's.
fn rewrite_header(path: &Path, lba: u64, change: impl Fn(&mut [u8])) {
    let mut h = read_range(path, lba * 512, 512);
    change(&mut h);
    let u32_at = |h: &[u8], i: usize| {
        u32::from_le_bytes(h[i..i + 4].try_into().unwrap()) as u64
    };
    let entries_lba = u64::from_le_bytes(h[72..80].try_into().unwrap());
    let array = u32_at(&h, 80) * u32_at(&h, 84);
    if array <= 1 << 20 {
        let entries = read_range(path, entries_lba * 512, array);
        h[88..92].copy_from_slice(&gpt::crc32(&entries).to_le_bytes());
    }
    let header_size = u32_at(&h, 12).clamp(92, 512) as usize;
    h[16..20].fill(0);
    let crc = gpt::crc32(&h[..header_size]);
    h[16..20].copy_from_slice(&crc.to_le_bytes());
    write_at(path, lba * 512, &h);
}

/// Every byte outside the partitions' contents is what build and sign
/// write, or a finding names where it is not: changes that `sfdisk`,
/// `blkid` and systemd may read differently, with their CRC32s fixed.
#[test]
fn verify_compares_every_byte_outside_the_payload() {
    let dir = tempfile::tempdir().unwrap();
    let (squashfs, image, ddi) = build_demo(dir.path(), b"bytes");
    let last = ddi.gpt.sectors - 1;
    let damaged = dir.path().join("damaged.raw");
    let fresh = || {
        fs::copy(&image, &damaged).unwrap();
        damaged.as_path()
    };
    assert_eq!(verified(&image), Ok(vec![]));

    // The protective MBR's partition type 0x83: sfdisk then reads a DOS
    // table, and Gpt::read does not look at the MBR.
    write_at(fresh(), 450, &[0x83]);
    let sfdisk: serde_json::Value = serde_json::from_slice(&stdout_of(
        "sfdisk",
        &["--json", damaged.to_str().unwrap()],
    ))
    .unwrap();
    assert_eq!(sfdisk["partitiontable"]["label"], "dos");
    assert_eq!(
        verified(&damaged),
        Ok(vec!["the protective MBR differs at its byte 450, the partition \
                 record's type (image byte 450): found 0x83, expected 0xee"
            .to_string()])
    );
    // sign refuses it.
    let err = sign(&damaged, &rsa(dir.path()).signer(), &dir.path().join("s"))
        .unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Unverified(_)), "{err}");
    assert_contains(
        &err.to_string(),
        &["refusing to sign an image that does not verify:\n  the \
             protective MBR differs at its byte 450"],
    );

    // Each header's fields: those the reader does not check, with both
    // CRC32s right.
    for (lba, which) in [(1, "primary"), (last, "backup")] {
        for (at, value, field) in [
            (8usize, 1u8, "the revision"),
            (12, 96, "the header size"),
            (20, 1, "the reserved field"),
            (200, 1, "the rest of the sector"),
        ] {
            rewrite_header(fresh(), lba, |h| h[at] = value);
            let expected = read_range(&image, lba * 512 + at as u64, 1)[0];
            assert_eq!(
                verified(&damaged),
                Ok(vec![format!(
                    "the {which} GPT header differs at its byte {at}, \
                     {field} (image byte {}): found {value:#04x}, expected \
                     {expected:#04x}",
                    lba * 512 + at as u64
                )]),
                "{which} header byte {at}"
            );
        }
    }
    // Fields both headers must agree on, changed in both.
    let both = |change: &dyn Fn(&mut [u8])| {
        fresh();
        rewrite_header(&damaged, 1, change);
        rewrite_header(&damaged, last, change);
    };
    both(&|h| h[40..48].copy_from_slice(&34u64.to_le_bytes()));
    let last_usable = ddi.gpt.last_usable_lba;
    assert_eq!(
        verified(&damaged),
        Ok(vec![format!(
            "the partition table's usable sectors is 34..={last_usable}, \
             expected 2048..={last_usable}"
        )])
    );
    both(&|h| h[56] ^= 1);
    let findings = verified(&damaged).unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_contains(&findings[0], &["the partition table's disk GUID is "]);
    both(&|h| h[80] = 127);
    assert_eq!(
        verified(&damaged),
        Ok(["primary", "backup"]
            .map(|which| {
                let lba = if which == "primary" { 1 } else { last };
                format!(
                    "the {which} GPT header differs at its byte 80, the \
                     number of entries (image byte {}): found 0x7f, \
                     expected 0x80",
                    lba * 512 + 80
                )
            })
            .to_vec())
    );
    // Fields the reader checks: an error, as before.
    for (lba, change, error) in [
        (
            1,
            &(|h: &mut [u8]| h[0] = b'X') as &dyn Fn(&mut [u8]),
            "no GPT: no \"EFI PART\" signature at byte 512".to_string(),
        ),
        (1, &|h| h[24] = 2, "it says it is at LBA 2".into()),
        (1, &|h| h[32] ^= 1, "the backup GPT header should be at LBA".into()),
        (
            last,
            &|h| h[32] = 3,
            "the primary and backup GPTs differ in the backup header's \
             pointer back"
                .into(),
        ),
        (1, &|h| h[72] = 3, "differ in the entry arrays".into()),
    ] {
        rewrite_header(fresh(), lba, change);
        let err = verified(&damaged).unwrap_err();
        assert_contains(&err, &[&error]);
    }

    // An unused entry's name, and the bytes after a used entry's name, in
    // both entry arrays.
    for (at, entry) in
        [(2 * 128 + 56u64, "entry 3's name"), (86, "entry 1's name")]
    {
        fresh();
        for lba in [2, last - 32] {
            write_at(&damaged, lba * 512 + at, b"x");
        }
        rewrite_header(&damaged, 1, |_| {});
        rewrite_header(&damaged, last, |_| {});
        assert_eq!(
            verified(&damaged),
            Ok([(2, "primary"), (last - 32, "backup")]
                .map(|(lba, which)| format!(
                    "the {which} GPT entry array differs at its byte {at}, \
                     {entry} (image byte {}): found 0x78, expected 0x00",
                    lba * 512 + at
                ))
                .to_vec())
        );
    }

    // The gap before the backup table, and the root partition after the
    // squashfs (also a data block there, as it is hashed).
    let verity_end = ddi.verity.offset() + ddi.verity.size();
    let backup = (last - 32) * 512;
    assert!(verity_end < backup);
    write_at(fresh(), backup - 1, &[1]);
    assert_eq!(
        verified(&damaged),
        Ok(vec![format!(
            "the gap between partition 2 and the backup partition table \
             holds 1 non-zero byte, the first at image byte {}; it should \
             be zero",
            backup - 1
        )])
    );
    let bytes_used =
        u64::from_le_bytes(read_range(&squashfs, 40, 8).try_into().unwrap());
    assert!(bytes_used < ddi.root.size());
    let at = ddi.root.offset() + bytes_used;
    write_at(fresh(), at, &[1, 1]);
    let block = bytes_used / 4096;
    assert_eq!(
        verified(&damaged),
        Ok(vec![
            format!(
                "data block {block} does not match its digest (image bytes \
                 {}..{})",
                ddi.root.offset() + block * 4096,
                ddi.root.offset() + (block + 1) * 4096
            ),
            format!(
                "the root partition after the squashfs holds 2 non-zero \
                 bytes, the first at image byte {at}; it should be zero"
            ),
        ])
    );
}

/// The signature partition is byte for byte what sign writes for its
/// JSON: no space, the keys in sign's order, NUL bytes after it.
#[test]
fn verify_compares_the_signature_partition_with_what_sign_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (_, image, _) = build_demo(dir.path(), b"signed");
    let signer = rsa(dir.path()).signer();
    let signed = dir.path().join("signed.raw");
    let ddi = sign(&image, &signer, &signed).unwrap();
    let sig = ddi.verity_sig.clone().unwrap();
    let raw = read_range(&signed, sig.offset(), sig.size());
    let text_len = raw.iter().position(|&b| b == 0).unwrap();
    let text = String::from_utf8(raw[..text_len].to_vec()).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let damaged = dir.path().join("damaged.raw");
    let fingerprint = json["certificateFingerprint"].as_str().unwrap();
    let (root_hash, signature) = (&json["rootHash"], &json["signature"]);
    for (text, problem) in [
        (
            text.replacen('{', "{ ", 1),
            "differs from what sign writes at its byte 1, in the JSON: \
             found 0x20 (' '), expected 0x22 ('\"')"
                .to_string(),
        ),
        (
            format!("{text}\n"),
            format!(
                "differs from what sign writes at its byte {text_len}, in \
                 the NUL bytes after the JSON: found 0x0a, expected 0x00"
            ),
        ),
        (
            // The order serde_json gives a map, which sign wrote before.
            format!(
                r#"{{"certificateFingerprint":"{fingerprint}","rootHash":{root_hash},"signature":{signature}}}"#
            ),
            "differs from what sign writes at its byte 2, in the JSON: \
             found 0x63 ('c'), expected 0x72 ('r')"
                .into(),
        ),
        (
            format!(r#"{{"rootHash":{root_hash},"signature":{signature}}}"#),
            "no certificateFingerprint, which sign writes".into(),
        ),
    ] {
        fs::copy(&signed, &damaged).unwrap();
        let mut partition = text.into_bytes();
        partition.resize(sig.size() as usize, 0);
        write_at(&damaged, sig.offset(), &partition);
        assert_eq!(
            verified(&damaged),
            Ok(vec![format!("the verity signature partition: {problem}")])
        );
        // Signing again replaces it.
        let again = dir.path().join("again.raw");
        let resigned = sign(&damaged, &signer, &again).unwrap();
        assert_eq!(resigned.verify().unwrap(), vec![]);
    }
}

/// A verity partition, or a root partition and its tree, that claim
/// gigabytes (a sparse file): verify and sign read what is there, not what
/// is claimed, in bounded memory and time.
#[test]
fn partitions_that_claim_gigabytes_cost_what_they_hold() {
    let dir = tempfile::tempdir().unwrap();
    let (_, image, ddi) = build_demo(dir.path(), b"sparse");
    let (root, verity) = (&ddi.root, &ddi.verity);
    // A copy of the image with the root partition `root_grow` bytes and
    // the verity partition `verity_grow` bytes larger (and the disk with
    // them), the verity partition's bytes moved to its new place, and a
    // valid table: a sparse file.
    let grown = |name: &str, root_grow: u64, verity_grow: u64| {
        let path = dir.path().join(name);
        fs::copy(&image, &path).unwrap();
        let mut partitions = ddi.gpt.partitions.clone();
        partitions[0].last_lba += root_grow / 512;
        partitions[1].first_lba += root_grow / 512;
        partitions[1].last_lba += (root_grow + verity_grow) / 512;
        let sectors = ddi.gpt.sectors + (root_grow + verity_grow) / 512;
        let gpt = gpt::Gpt::new(ddi.gpt.disk_guid, sectors, partitions);
        let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
        let hash_device = read_range(&image, verity.offset(), verity.size());
        let old_end = ddi.gpt.sectors * 512;
        file.write_all_at(
            &vec![0; (old_end - verity.offset()) as usize],
            verity.offset(),
        )
        .unwrap();
        file.set_len(sectors * 512).unwrap();
        file.write_all_at(&hash_device, verity.offset() + root_grow).unwrap();
        gpt.write(&file).unwrap();
        path
    };
    let grow = 3u64 << 30;
    let big_verity = grown("big-verity_1.0.raw", 0, grow);
    // One byte in the claimed tail is found: only holes are skipped.
    let tail = verity.offset() + verity.size() + grow / 2;
    write_at(&big_verity, tail, &[7]);
    // The root partition grown, with a superblock that claims all of it
    // and a verity partition as large as its tree then is: the tree's top
    // block, where the old one's only block is, does not match the root
    // hash.
    let data_blocks = (root.size() + grow) / 4096;
    let needed = verity::Geometry::new(data_blocks, 4096).hash_device_size();
    assert!(needed > 20 << 20);
    let big_root = grown("big-root_1.0.raw", grow, needed - verity.size());
    let verity_offset = verity.offset() + grow;
    write_at(&big_root, verity_offset + 72, &data_blocks.to_le_bytes());
    assert_eq!(
        verified(&big_root),
        Ok(vec![format!(
            "the top hash block (hash block 1) does not match the root hash \
             (image bytes {}..{})",
            verity_offset + 4096,
            verity_offset + 8192
        )])
    );

    let pair = rsa(dir.path());
    let limited = |args: &[&OsStr]| {
        let started = std::time::Instant::now();
        let output = run(Command::new("prlimit")
            .arg(format!("--as={}", 256 << 20))
            .arg("--")
            .arg(BUILDER)
            .args(args)
            // Thread stacks take address space by the number of cores,
            // which is not what is measured.
            .env("RAYON_NUM_THREADS", "2"));
        (output, started.elapsed())
    };
    for (path, needle) in [
        (
            &big_verity,
            format!(
                "the verity partition after the hash tree holds 1 non-zero \
                 byte, the first at image byte {tail}; it should be zero"
            ),
        ),
        (&big_root, "the top hash block (hash block 1)".into()),
    ] {
        let (output, took) = limited(&["verify".as_ref(), path.as_ref()]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{stdout}{}",
            stderr(&output)
        );
        assert_contains(&stdout, &[&needle]);
        assert!(took.as_secs() < 10, "verify took {took:?}");

        let (output, took) = limited(&[
            "sign".as_ref(),
            path.as_ref(),
            "--key".as_ref(),
            pair.key.as_ref(),
            "--certificate".as_ref(),
            pair.certificate.as_ref(),
            "--output".as_ref(),
            dir.path().join("signed.raw").as_ref(),
        ]);
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        assert_contains(
            &stderr(&output),
            &["refusing to sign an image that does not verify", &needle],
        );
        assert!(took.as_secs() < 10, "sign took {took:?}");
    }
}

#[test]
fn same_inputs_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (squashfs, image, ddi) = build_demo(dir.path(), b"same");
    let again = dir.path().join("again.raw");
    let ddi2 = ddi::build(&squashfs, Architecture::X86_64, &again).unwrap();
    assert_eq!(Ddi { path: image.clone(), ..ddi2 }, ddi);
    assert!(fs::read(&image).unwrap() == fs::read(&again).unwrap());
    // No temporary file is left behind.
    let names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| file_name(&e.unwrap().path()))
        .collect();
    assert!(!names.iter().any(|n| n.ends_with(".partial")), "{names:?}");

    // Another payload: another salt, root hash, disk GUID.
    let other_dir = tempfile::tempdir().unwrap();
    let (_, _, other) = build_demo(other_dir.path(), b"different");
    assert_ne!(other.superblock.salt, ddi.superblock.salt);
    assert_ne!(other.root_hash, ddi.root_hash);
    assert_ne!(other.gpt.disk_guid, ddi.gpt.disk_guid);

    // Another architecture: other types and names, the same root hash.
    let arm = dir.path().join("arm.raw");
    let arm = ddi::build(&squashfs, Architecture::Arm64, &arm).unwrap();
    assert_eq!(arm.root_hash, ddi.root_hash);
    assert_eq!(arm.root.type_guid, Architecture::Arm64.types().root);
    assert_eq!(arm.verity.name, "root-arm64-verity");
}

/// A key file and its certificate's.
#[derive(Clone, Debug)]
pub(crate) struct KeyPair {
    pub key: PathBuf,
    pub certificate: PathBuf,
}

impl KeyPair {
    pub fn signer(&self) -> Signer {
        Signer::read(&self.key, &self.certificate, None).unwrap()
    }

    pub fn certificate(&self) -> Certificate {
        Certificate::read(&self.certificate).unwrap()
    }
}

/// The arguments of `portable-service-builder sign`: `image` signed with
/// `key` and `certificate` into `output`.
pub(crate) fn sign_args<'a>(
    image: &'a Path,
    key: &'a Path,
    certificate: &'a Path,
    output: &'a Path,
) -> [&'a str; 8] {
    let path = |p: &'a Path| p.to_str().unwrap();
    [
        "sign",
        path(image),
        "--key",
        path(key),
        "--certificate",
        path(certificate),
        "--output",
        path(output),
    ]
}

/// `Verified::open` and `Verified::sign`.
pub(crate) fn sign(
    image: &Path,
    signer: &Signer,
    output: &Path,
) -> Result<Ddi, ddi::Error> {
    Verified::open(image)?.sign(&Openssl::default(), signer, output)
}

/// A self-signed certificate and its key, made by `openssl req`.
pub(crate) fn key_pair(dir: &Path, name: &str, algorithm: &[&str]) -> KeyPair {
    let key = dir.join(format!("{name}.key"));
    let certificate = dir.join(format!("{name}.crt"));
    let mut args = vec!["req", "-x509", "-nodes", "-days", "3650"];
    args.extend(algorithm);
    let subject = format!("/CN={name}");
    args.extend(["-subj", &subject, "-keyout", key.to_str().unwrap()]);
    args.extend(["-out", certificate.to_str().unwrap()]);
    let output = run(Command::new("openssl").args(&args));
    assert!(output.status.success(), "openssl req: {}", stderr(&output));
    KeyPair { key, certificate }
}

/// `openssl cms -verify` of the detached DER signature `der` of the file
/// `content` by the signer `certificate`, whose chain is not checked (it is
/// self-signed), and only as the signature's signer (`-nointern`).
pub(crate) fn openssl_cms_verify(
    der: &Path,
    content: &Path,
    certificate: &Path,
) -> std::process::Output {
    run(Command::new("openssl")
        .args(["cms", "-verify", "-binary", "-inform", "der", "-noverify"])
        .arg("-nointern")
        .arg("-in")
        .arg(der)
        .arg("-content")
        .arg(content)
        .arg("-certfile")
        .arg(certificate)
        .args(["-out", "/dev/null"]))
}

pub(crate) fn rsa(dir: &Path) -> KeyPair {
    key_pair(dir, "rsa", &["-newkey", "rsa:2048"])
}

pub(crate) fn ec(dir: &Path) -> KeyPair {
    key_pair(
        dir,
        "ec",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    )
}

#[test]
fn sign_and_check_with_rsa_and_ec_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (_, image, ddi) = build_demo(dir.path(), b"signed");
    let openssl = Openssl::default();
    for pair in [rsa(dir.path()), ec(dir.path())] {
        let signer = pair.signer();
        let signed = dir.path().join("signed.raw");
        let ddi_signed = sign(&image, &signer, &signed).unwrap();
        assert_eq!(Ddi::read(&signed).unwrap(), ddi_signed);
        assert_eq!(ddi_signed.root_hash, ddi.root_hash);
        assert_eq!(ddi_signed.gpt.disk_guid, ddi.gpt.disk_guid);
        let sig = ddi_signed.verity_sig.as_ref().unwrap();
        assert_eq!(sig.size(), 16 * 1024);
        assert_eq!(sig.name, "root-x86-64-verity-sig");
        // The root and verity partitions are unchanged.
        for p in [&ddi.root, &ddi.verity] {
            assert!(
                read_range(&image, p.offset(), p.size())
                    == read_range(&signed, p.offset(), p.size())
            );
        }
        assert_eq!(ddi_signed.verify().unwrap(), vec![]);
        assert_eq!(
            ddi_signed.check_signature(&openssl, &pair.certificate()).unwrap(),
            vec![]
        );

        // The partition as systemd reads it.
        let raw = read_range(&signed, sig.offset(), sig.size());
        let text_len = raw.iter().position(|&b| b == 0).unwrap();
        assert!(raw[text_len..].iter().all(|&b| b == 0));
        let json: serde_json::Value =
            serde_json::from_slice(&raw[..text_len]).unwrap();
        assert_eq!(json["rootHash"], ddi.root_hash_hex());
        let fingerprint = stdout_line(
            "openssl",
            &[
                "x509",
                "-in",
                pair.certificate.to_str().unwrap(),
                "-noout",
                "-fingerprint",
                "-sha256",
            ],
        );
        let fingerprint = fingerprint
            .split_once('=')
            .unwrap()
            .1
            .replace(':', "")
            .to_lowercase();
        assert_eq!(json["certificateFingerprint"], fingerprint);
        // In systemd-repart's order, without spaces.
        let text = String::from_utf8(raw[..text_len].to_vec()).unwrap();
        assert_eq!(
            text,
            format!(
                r#"{{"rootHash":"{}","certificateFingerprint":"{fingerprint}","signature":{}}}"#,
                ddi.root_hash_hex(),
                json["signature"]
            )
        );

        // Independent checks of the signature over the root hash's text.
        let parsed = ddi_signed.read_signature().unwrap().unwrap();
        let der = dir.path().join("sig.der");
        fs::write(&der, &parsed.signature).unwrap();
        let content = dir.path().join("roothash.txt");
        fs::write(&content, ddi.root_hash_hex()).unwrap();
        let openssl = openssl_cms_verify(&der, &content, &pair.certificate);
        assert!(openssl.status.success(), "openssl: {}", stderr(&openssl));
        let gnutls = run(Command::new("certtool")
            .args(["--p7-verify", "--inder", "--load-certificate"])
            .arg(&pair.certificate)
            .arg("--load-data")
            .arg(&content)
            .arg("--infile")
            .arg(&der));
        assert!(
            gnutls.status.success(),
            "certtool: {}{}",
            String::from_utf8_lossy(&gnutls.stdout),
            stderr(&gnutls)
        );
        // Detached, without signed attributes, the certificate included:
        // as systemd-repart's PKCS7_sign() flags make it.
        let printed = stdout_line(
            "openssl",
            &[
                "pkcs7",
                "-inform",
                "der",
                "-in",
                der.to_str().unwrap(),
                "-print",
            ],
        );
        assert_contains(
            &printed,
            &["d.data: <ABSENT>", "auth_attr:\n          <ABSENT>", "cert:"],
        );
    }
}

#[test]
fn wrong_certificate_and_wrong_key() {
    let dir = tempfile::tempdir().unwrap();
    let (_, image, _) = build_demo(dir.path(), b"signed");
    let openssl = Openssl::default();
    let (rsa, ec) = (rsa(dir.path()), ec(dir.path()));
    let signed = dir.path().join("signed.raw");
    let ddi = sign(&image, &rsa.signer(), &signed).unwrap();

    let findings = ddi.check_signature(&openssl, &ec.certificate()).unwrap();
    assert_eq!(findings.len(), 2, "{findings:?}");
    assert!(matches!(findings[0], Finding::CertificateFingerprint { .. }));
    let Finding::SignatureRejected(reason) = &findings[1] else {
        panic!("{findings:?}")
    };
    assert_contains(reason, &["signer certificate not found"]);
    // The unsigned image has nothing to check.
    let unsigned = Ddi::read(&image).unwrap();
    assert_eq!(
        unsigned.check_signature(&openssl, &rsa.certificate()).unwrap(),
        vec![Finding::NoSignature]
    );

    // A key that is not the certificate's: an error, and no output.
    let mismatched = Signer::read(&ec.key, &rsa.certificate, None).unwrap();
    let out = dir.path().join("mismatched.raw");
    let err = sign(&image, &mismatched, &out).unwrap_err();
    assert!(
        matches!(
            err.kind,
            ErrorKind::Signature(
                signature::Error::KeyDoesNotMatchCertificate { .. }
            )
        ),
        "{err}"
    );
    assert!(!out.exists());
    assert!(!dir.path().join(".mismatched.raw.partial").exists());

    // An encrypted key, its passphrase given as OpenSSL takes it.
    let encrypted = dir.path().join("rsa-encrypted.key");
    stdout_of(
        "openssl",
        &[
            "pkey",
            "-in",
            rsa.key.to_str().unwrap(),
            "-aes256",
            "-passout",
            "pass:secret",
            "-out",
            encrypted.to_str().unwrap(),
        ],
    );
    let with_pass =
        Signer::read(&encrypted, &rsa.certificate, Some("pass:secret".into()))
            .unwrap();
    let out = dir.path().join("encrypted.raw");
    let ddi = sign(&image, &with_pass, &out).unwrap();
    assert_eq!(
        ddi.check_signature(&openssl, &rsa.certificate()).unwrap(),
        vec![]
    );
    let wrong_pass = Signer { passin: Some("pass:wrong".into()), ..with_pass };
    let err =
        sign(&image, &wrong_pass, &dir.path().join("x.raw")).unwrap_err();
    assert!(
        matches!(
            err.kind,
            ErrorKind::Signature(signature::Error::Openssl { .. })
        ),
        "{err}"
    );
}

/// A certificate file must hold exactly the signer's certificate, and a
/// signature is only checked against it: one that another key made fails
/// even when the JSON names the given certificate and the PKCS#7 carries
/// the other one (which `openssl smime -verify` without `-nointern` would
/// use).
#[test]
fn the_certificate_is_the_signer() {
    let dir = tempfile::tempdir().unwrap();
    let (_, image, _) = build_demo(dir.path(), b"signed");
    let openssl = Openssl::default();
    let (rsa, ec) = (rsa(dir.path()), ec(dir.path()));

    // Two certificates in one file: refused for signing and checking.
    let both = dir.path().join("both.crt");
    let mut pem = fs::read(&rsa.certificate).unwrap();
    pem.extend(fs::read(&ec.certificate).unwrap());
    fs::write(&both, &pem).unwrap();
    let message = format!(
        "{}: holds 2 PEM blocks (CERTIFICATE, CERTIFICATE); a certificate \
         file must hold exactly one, the signer's certificate",
        both.display()
    );
    let err = Certificate::read(&both).unwrap_err();
    assert_eq!(err.to_string(), message);
    let err = Signer::read(&rsa.key, &both, None).unwrap_err();
    assert_eq!(err.to_string(), message);
    // A key in the certificate file is another block.
    let with_key = dir.path().join("with-key.crt");
    let mut pem = fs::read(&rsa.certificate).unwrap();
    pem.extend(fs::read(&rsa.key).unwrap());
    fs::write(&with_key, &pem).unwrap();
    assert_contains(
        &Certificate::read(&with_key).unwrap_err().to_string(),
        &["holds 2 PEM blocks (CERTIFICATE, PRIVATE KEY)"],
    );
    // Text around the one block, as `openssl x509 -text` writes, is fine.
    let text = dir.path().join("text.crt");
    let printed = stdout_of(
        "openssl",
        &["x509", "-in", rsa.certificate.to_str().unwrap(), "-text"],
    );
    fs::write(&text, printed).unwrap();
    assert_eq!(
        Certificate::read(&text).unwrap().fingerprint(),
        rsa.certificate().fingerprint()
    );

    // Signed with the EC key, the JSON then rewritten (in the form sign
    // writes, so that verify finds nothing) to name the RSA certificate.
    let signed = dir.path().join("signed.raw");
    let ddi = sign(&image, &ec.signer(), &signed).unwrap();
    let sig = ddi.verity_sig.clone().unwrap();
    let mut json = ddi.read_signature().unwrap().unwrap();
    json.certificate_fingerprint = Some(rsa.certificate().fingerprint());
    let partition = json.partition(sig.size() as usize).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&signed)
        .unwrap()
        .write_all_at(&partition, sig.offset())
        .unwrap();
    assert_eq!(ddi.verify().unwrap(), vec![]);
    let findings = ddi.check_signature(&openssl, &rsa.certificate()).unwrap();
    let [Finding::SignatureRejected(reason)] = &findings[..] else {
        panic!("{findings:?}")
    };
    assert_contains(reason, &["signer certificate not found"]);
    // The embedded certificate is the EC one: without -nointern, openssl
    // would take it and accept the signature.
    let der = dir.path().join("sig.der");
    fs::write(&der, &json.signature).unwrap();
    let content = dir.path().join("roothash.txt");
    fs::write(&content, &json.root_hash).unwrap();
    let interning = run(Command::new("openssl")
        .args(["smime", "-verify", "-binary", "-inform", "der", "-noverify"])
        .arg("-in")
        .arg(&der)
        .arg("-content")
        .arg(&content)
        .arg("-certfile")
        .arg(&rsa.certificate)
        .args(["-out", "/dev/null"]));
    assert!(interning.status.success(), "{}", stderr(&interning));
}

/// Key and certificate files are read by us, a regular file of at most
/// 1 MiB each: `/dev/zero` would fill memory, a FIFO never end.
#[test]
fn key_and_certificate_files_must_be_small_regular_files() {
    let dir = tempfile::tempdir().unwrap();
    let rsa = rsa(dir.path());
    let fifo = dir.path().join("fifo");
    let output = run(Command::new("mkfifo").arg(&fifo));
    assert!(output.status.success(), "{}", stderr(&output));
    let big = dir.path().join("big.crt");
    let mut pem = fs::read(&rsa.certificate).unwrap();
    pem.resize(signature::FILE_MAX as usize + 1, b'\n');
    fs::write(&big, pem).unwrap();
    for (path, message) in [
        (
            Path::new("/dev/zero"),
            "/dev/zero: the certificate must be a regular file, not a \
             character device"
                .to_string(),
        ),
        (
            &fifo,
            format!(
                "{}: the certificate must be a regular file, not a FIFO",
                fifo.display()
            ),
        ),
        (
            dir.path(),
            format!(
                "{}: the certificate must be a regular file, not a \
                 directory",
                dir.path().display()
            ),
        ),
        (
            &big,
            format!(
                "{}: the certificate file is larger than 1048576 bytes, \
                 which no PEM certificate needs",
                big.display()
            ),
        ),
    ] {
        let err = Certificate::read(path).unwrap_err();
        assert_eq!(err.to_string(), message);
        let err = Signer::read(&rsa.key, path, None).unwrap_err();
        assert_eq!(err.to_string(), message);
        let err = Signer::read(path, &rsa.certificate, None).unwrap_err();
        assert_eq!(err.to_string(), message.replace("certificate", "key"));
    }
}

#[test]
fn broken_and_foreign_files_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (squashfs, image, _) = build_demo(dir.path(), b"x");
    let kind = |path: &Path| Ddi::read(path).unwrap_err().kind;

    // Not a DDI: the squashfs itself, an empty file, noise.
    assert!(matches!(
        kind(&squashfs),
        ErrorKind::Gpt(gpt::Error::TooSmall { .. })
    ));
    let big_squashfs = dir.path().join("big.squashfs");
    fs::write(&big_squashfs, noise(1 << 20, 5)).unwrap();
    assert!(matches!(kind(&big_squashfs), ErrorKind::Gpt(gpt::Error::NoGpt)));
    let empty = dir.path().join("empty");
    fs::write(&empty, b"").unwrap();
    assert!(matches!(
        kind(&empty),
        ErrorKind::Gpt(gpt::Error::TooSmall { .. })
    ));
    assert_eq!(
        Ddi::read(&big_squashfs).unwrap_err().to_string(),
        format!(
            "{}: no GPT: no \"EFI PART\" signature at byte 512",
            big_squashfs.display()
        )
    );

    // Truncated: at every 64 KiB step, and by one sector.
    let full = fs::read(&image).unwrap();
    let cut = dir.path().join("cut.raw");
    for len in (0..full.len()).step_by(65536).chain([full.len() - 512]) {
        fs::write(&cut, &full[..len]).unwrap();
        assert!(Ddi::read(&cut).is_err(), "truncated to {len}");
    }
    fs::write(&cut, &full[..full.len() - 512]).unwrap();
    assert!(matches!(
        kind(&cut),
        ErrorKind::Gpt(gpt::Error::BackupMisplaced { .. })
    ));

    // A flipped byte anywhere in the first 48 KiB (MBR, table, the start
    // of the squashfs) or the table at the end never panics.
    let flipped = dir.path().join("flipped.raw");
    let tail = full.len() - 33 * 512;
    for offset in
        (0..48 * 1024).step_by(97).chain((tail..full.len()).step_by(61))
    {
        let mut bytes = full.clone();
        bytes[offset] ^= 0x80;
        fs::write(&flipped, &bytes).unwrap();
        if let Ok(ddi) = Ddi::read(&flipped) {
            let _ = ddi.verify();
        }
    }

    // Building from something that is not a squashfs: an error, no output.
    let out = dir.path().join("out.raw");
    let err =
        ddi::build(&big_squashfs, Architecture::X86_64, &out).unwrap_err();
    assert!(matches!(err.kind, ErrorKind::NotSquashfs(_)), "{err}");
    assert!(!out.exists());
}

/// systemd-repart 252, given the same squashfs (`CopyBlocks=`) and
/// `Verity=data`/`hash`/`signature`, makes an image our reader and
/// verifier understand: its hash tree (random salt, 512-byte blocks)
/// verifies against the root hash in its partition UUIDs, and its
/// signature of that root hash is byte for byte the one we make with the
/// same RSA key (PKCS#1 v1.5 signatures are deterministic).
#[test]
fn systemd_repart_makes_what_we_read_and_sign() {
    let dir = tempfile::tempdir().unwrap();
    let squashfs = squashfs(dir.path(), &noise(300 * 4096, 3));
    let definitions = dir.path().join("repart.d");
    fs::create_dir(&definitions).unwrap();
    let conf = |name: &str, text: String| {
        let text = format!("[Partition]\n{text}VerityMatchKey=root\n");
        fs::write(definitions.join(name), text).unwrap()
    };
    let copy = format!("CopyBlocks={}\n", squashfs.display());
    conf("10-root.conf", format!("Type=root\n{copy}Verity=data\n"));
    conf("20-verity.conf", "Type=root-verity\nVerity=hash\n".into());
    conf("30-sig.conf", "Type=root-verity-sig\nVerity=signature\n".into());
    let signer = rsa(dir.path());
    let image = dir.path().join("repart.raw");
    let output = run(Command::new("systemd-repart")
        .arg(format!("--definitions={}", definitions.display()))
        .args(["--empty=create", "--size=auto", "--dry-run=no"])
        .arg("--seed=e2a40bf9-73f1-4278-9160-49c031e7aef8")
        .arg(format!("--private-key={}", signer.key.display()))
        .arg(format!("--certificate={}", signer.certificate.display()))
        .arg(&image));
    assert!(output.status.success(), "systemd-repart: {}", stderr(&output));

    let ddi = Ddi::read(&image).unwrap();
    assert_eq!(ddi.superblock.data_block_size, 512);
    let squashfs = fs::read(&squashfs).unwrap();
    let root = read_range(&image, ddi.root.offset(), squashfs.len() as u64);
    assert!(root == squashfs);
    let findings = ddi.verify().unwrap();
    assert!(
        !findings.iter().any(|f| matches!(f, Finding::Verity { .. })),
        "{findings:#?}"
    );
    // Its layout is not ours: a 10 MiB minimum size, its own UUIDs.
    assert!(findings.iter().any(|f| matches!(f, Finding::Table { .. })));
    // Its signature partition is byte for byte what sign writes: the same
    // keys in the same order, no space, NUL padding.
    assert!(
        !findings.iter().any(|f| matches!(f, Finding::SignatureJson(_))),
        "{findings:#?}"
    );

    // read_signature checked that its rootHash is the UUIDs' root hash.
    let json = ddi.read_signature().unwrap().unwrap();
    let openssl = Openssl::default();
    assert_eq!(
        ddi.check_signature(&openssl, &signer.certificate()).unwrap(),
        vec![]
    );
    assert!(
        openssl.sign(&signer.signer(), &ddi.root_hash_hex()).unwrap()
            == json.signature
    );
}
