// The image reader against mksquashfs: the tree, file contents and NAR
// digests read out of images of every compressor, and of an image written
// by the builder's own squashfs stage, checked against Nix's records.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use portable_service::compression::{Compression, COMPRESSORS};
use portable_service::image::{EntryKind, Image};
use portable_service::mksquashfs::{self, Settings};
use portable_service::nar::{host, writer};
use portable_service::store_path::StorePath;
use portable_service::tree::{ImagePath, Node, Tree};

use crate::util::{run_line, stdout_of, store_like_tree};

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

/// The host tree under `root` as the image should list it: path inside
/// the image, kind, mode and, for files, contents.
fn host_listing(root: &Path) -> Vec<(PathBuf, String, u16, Vec<u8>)> {
    let mut listing = Vec::new();
    let mut stack = vec![PathBuf::from("/")];
    while let Some(path) = stack.pop() {
        let host = root.join(path.strip_prefix("/").unwrap());
        let meta = fs::symlink_metadata(&host).unwrap();
        let mode = (meta.mode() & 0o7777) as u16;
        let (kind, contents) = if meta.is_dir() {
            let mut names: Vec<_> = fs::read_dir(&host)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
            stack.extend(names.iter().rev().map(|n| path.join(n)));
            ("directory".to_string(), Vec::new())
        } else if meta.is_symlink() {
            let target = fs::read_link(&host).unwrap();
            (format!("symlink to {}", target.display()), Vec::new())
        } else {
            (format!("file of {}", meta.len()), fs::read(&host).unwrap())
        };
        listing.push((path, kind, mode, contents));
    }
    listing
}

fn image_listing(image: &Image) -> Vec<(PathBuf, String, u16, Vec<u8>)> {
    image
        .entries()
        .map(|e| {
            let (kind, contents) = match e.kind {
                EntryKind::Directory => ("directory".to_string(), vec![]),
                EntryKind::Symlink { target } => {
                    (format!("symlink to {}", target.display()), vec![])
                }
                EntryKind::File { size } => (
                    format!("file of {size}"),
                    image.read_file(e.path).unwrap(),
                ),
                other => panic!("{}: unexpected {other:?}", e.path.display()),
            };
            assert_eq!((e.uid, e.gid), (0, 0), "{}", e.path.display());
            (e.path.to_path_buf(), kind, e.mode, contents)
        })
        .collect()
}

#[test]
fn reads_every_compressor() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("tree");
    source_tree(&source);
    let expected_digest = host::digest(&source).unwrap();
    let expected_listing = host_listing(&source);
    for compressor in COMPRESSORS {
        let path = dir.path().join(format!("{compressor}.raw"));
        mksquashfs(&source, &path, &["-comp", compressor, "-b", "4K"]);
        let image = Image::open(&path).unwrap();

        let sb = image.superblock();
        assert_eq!(sb.compressor, compressor);
        assert_eq!(sb.block_size, 4096);
        assert_eq!(sb.file_size, fs::metadata(&path).unwrap().len());
        assert!(sb.bytes_used <= sb.file_size, "{sb:?}");
        assert_eq!(sb.inode_count as usize, expected_listing.len());

        assert!(image_listing(&image) == expected_listing, "{compressor}");
        assert_eq!(
            image.nar_digest(Path::new("/")).unwrap(),
            expected_digest,
            "{compressor}"
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
        image.write_nar(Path::new(inside), root).unwrap();
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
            run_line("nix-store", &["--add", source.to_str().unwrap()]);
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
        mksquashfs: Path::new("mksquashfs"),
        compression: &Compression::parse("xz -Xdict-size 100%").unwrap(),
        block_size: 1 << 20,
        processors: 2,
    };
    mksquashfs::write_image(&settings, &tree, &path).unwrap();

    let image = Image::open(&path).unwrap();
    let inside: Vec<String> =
        store_paths.iter().map(|p| p.to_absolute_path()).collect();
    let digests = image.nar_digests(&inside);
    for (store_path, digest) in inside.iter().zip(digests) {
        let digest = digest.unwrap();
        let hash = run_line("nix-store", &["--query", "--hash", store_path]);
        let size = run_line("nix-store", &["--query", "--size", store_path]);
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
    assert_eq!(null.kind, EntryKind::CharDevice);

    let error =
        |result: anyhow::Result<()>| format!("{:#}", result.unwrap_err());
    let err = error(image.nar_digest(Path::new("/bin")).map(drop));
    assert!(err.contains("/bin/null in"), "{err}");
    assert!(err.contains("a character device, which a NAR cannot"), "{err}");
    let err = error(image.read_file(Path::new("/bin")).map(drop));
    assert!(err.contains("/bin in") && err.contains("is not a file"), "{err}");
    let err = error(image.nar_digest(Path::new("/nix/store")).map(drop));
    assert!(err.contains("/nix/store is not in the image"), "{err}");
    let err = error(image.entry(Path::new("/bin/../etc")).map(drop));
    assert!(err.contains("not a normalised path"), "{err}");

    let not_an_image = dir.path().join("tree/share/doc/README");
    let err = error(Image::open(&not_an_image).map(drop));
    assert!(err.contains("reading the image"), "{err}");
}
