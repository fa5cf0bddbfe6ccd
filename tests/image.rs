//! The NAR of what an image holds against Nix's: the NAR digests read out
//! of images of every compressor, and of an image written by the builder's
//! own squashfs stage, checked against `nix-store --dump` and Nix's
//! records. (The squashfs reader itself is checked against unsquashfs in
//! squashfs.rs.)

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use portable_service::builder::compression::{Compression, COMPRESSORS};
use portable_service::builder::mksquashfs::{self, Settings};
use portable_service::builder::tree::{ImagePath, Node, Tree};
use portable_service::image::nar::{nar_digest, nar_digests, write_nar};
use portable_service::nix::nar::{host, writer};
use portable_service::nix::store_path::StorePath;
use portable_service::squashfs::{EntryKind, Image};

use crate::util::{stdout_line, stdout_of, store_like_tree};

/// `store_like_tree` plus files that span many 4 KiB blocks, one of them
/// with a block of zeros that mksquashfs stores as a hole.
fn source_tree(root: &Path) {
    store_like_tree(root);
    let pattern: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(root.join("share/big"), &pattern).unwrap();
    let mut holey = pattern[..20_000].to_vec();
    holey.extend([0; 8192]);
    holey.extend(&pattern[..5000]);
    fs::write(root.join("share/holey"), holey).unwrap();
}

fn mksquashfs(source: &Path, image: &Path, args: &[&str]) {
    let mut all = vec![
        source.to_str().unwrap(),
        image.to_str().unwrap(),
        "-noappend",
        "-quiet",
        "-no-progress",
        "-all-root",
    ];
    all.extend(args);
    stdout_of("mksquashfs", &all);
}

#[test]
fn digests_images_of_every_compressor() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("tree");
    source_tree(&source);
    let expected = host::digest(&source).unwrap();
    for compressor in COMPRESSORS {
        let path = dir.path().join(format!("{compressor}.raw"));
        mksquashfs(&source, &path, &["-comp", compressor, "-b", "4K"]);
        let image = Image::open(&path).unwrap();
        let digest = nar_digest(&image, Path::new("/"), u64::MAX).unwrap();
        assert_eq!(digest, expected, "{compressor}");
        // Hashing stops past the size Nix recorded.
        let root = Path::new("/");
        assert_eq!(nar_digest(&image, root, expected.size).unwrap(), expected);
        let err = nar_digest(&image, root, expected.size - 1).unwrap_err();
        assert!(
            matches!(err, portable_service::image::nar::Error::TooLong { .. }),
            "{err}"
        );
    }
}

#[test]
fn writes_the_nar_that_nix_store_dumps() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("tree");
    source_tree(&source);
    let path = dir.path().join("tree.raw");
    mksquashfs(&source, &path, &["-comp", "xz", "-b", "1M"]);
    let image = Image::open(&path).unwrap();
    for inside in ["/", "/bin", "bin/hello", "/bin/hi", "/share/big", "names"]
    {
        let mut ours = Vec::new();
        let root = writer::open(&mut ours).unwrap();
        write_nar(&image, Path::new(inside), root).unwrap();
        let host = source.join(inside.trim_start_matches('/'));
        let nix = stdout_of("nix-store", &["--dump", host.to_str().unwrap()]);
        assert!(ours == nix, "{inside}: our NAR differs from Nix's");
    }
}

#[test]
fn digests_store_paths_as_nix_records_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut store_paths = Vec::new();
    for name in ["portable-service-image-test", "portable-service-file-test"] {
        let source = dir.path().join(name);
        if name.contains("file") {
            fs::write(&source, b"a store path that is a file\n").unwrap();
            let exec = fs::Permissions::from_mode(0o755);
            fs::set_permissions(&source, exec).unwrap();
        } else {
            source_tree(&source);
        }
        let added =
            stdout_line("nix-store", &["--add", source.to_str().unwrap()]);
        store_paths.push(StorePath::from_absolute_path(&added).unwrap());
    }

    // The image as the builder writes it: a tar stream into mksquashfs.
    let mut tree = Tree::new();
    for store_path in &store_paths {
        let at = format!("nix/store/{}", store_path.base_name());
        let node = Node::StorePath(store_path.clone());
        tree.insert(ImagePath::parse(&at).unwrap(), node).unwrap();
    }
    let path = dir.path().join("store.raw");
    let settings = Settings {
        mksquashfs: "mksquashfs".into(),
        compression: Compression::parse("xz -Xdict-size 100%").unwrap(),
        block_size: 1 << 20,
        processors: 2,
    };
    mksquashfs::write_image(&settings, &tree, &path).unwrap();

    let image = Image::open(&path).unwrap();
    let inside: Vec<(String, u64)> =
        store_paths.iter().map(|p| (p.to_absolute_path(), u64::MAX)).collect();
    let digests = nar_digests(&image, &inside);
    for ((store_path, _), digest) in inside.iter().zip(digests) {
        let digest = digest.unwrap();
        let hash =
            stdout_line("nix-store", &["--query", "--hash", store_path]);
        let size =
            stdout_line("nix-store", &["--query", "--size", store_path]);
        assert_eq!(digest.nar_hash(), hash, "{store_path}");
        assert_eq!(digest.size.to_string(), size, "{store_path}");
    }
}

#[test]
fn says_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("tree");
    store_like_tree(&source);
    let path = dir.path().join("devices.raw");
    // A pseudo-file definition adds a device node without root.
    mksquashfs(&source, &path, &["-p", "bin/null c 666 0 0 1 3"]);
    let image = Image::open(&path).unwrap();
    let null = image.entry(Path::new("/bin/null")).unwrap();
    assert_eq!(null.kind(), EntryKind::CharDevice { major: 1, minor: 3 });

    let err = nar_digest(&image, Path::new("/bin"), u64::MAX)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "/bin/null is a character device, which a NAR cannot hold"
    );
    let err =
        nar_digest(&image, Path::new("/nix/store"), u64::MAX).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}: /nix/store is not in the image", path.display())
    );
}
