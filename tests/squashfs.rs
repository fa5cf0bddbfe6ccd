// Our squashfs code against the real tools: images made by mksquashfs
// read back as unsquashfs reads them, damaged images refused without a
// panic, and layers assembled into images that unsquashfs and the kernel
// read as the image mksquashfs makes of the whole tree.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::Command;

use portable_service::image::sbom::timestamp;
use portable_service::squashfs::{EntryKind, ErrorKind, Image};

use crate::util::{run, stderr};

const COMPRESSORS: [&str; 6] = ["gzip", "lzma", "lzo", "xz", "lz4", "zstd"];

/// Runs `program`, which must succeed; a missing tool fails the test
/// naming it.
fn ok(cmd: &mut Command) -> Vec<u8> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let output = run(cmd);
    assert!(output.status.success(), "{program} failed: {}", stderr(&output));
    output.stdout
}

/// mksquashfs as the project runs it (`src/mksquashfs.rs`), from a
/// directory; `extra` flags go last.
fn mksquashfs(
    src: &Path,
    image: &Path,
    comp: &str,
    block: u32,
    extra: &[&str],
) {
    ok(Command::new("mksquashfs")
        .arg(src)
        .arg(image)
        .args(["-noappend", "-exit-on-error", "-quiet", "-no-progress"])
        .args(["-no-exports", "-no-xattrs", "-root-mode", "755"])
        .args(["-b", &block.to_string(), "-comp", comp])
        .args(extra)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("SOURCE_DATE_EPOCH", "0"));
}

/// `unsquashfs -lln`, one line per entry with runs of spaces made one, in
/// UTC.
fn unsquashfs_listing(image: &Path) -> Vec<String> {
    let out = ok(Command::new("unsquashfs")
        .args(["-lln", "-d", ""])
        .arg(image)
        .env("TZ", "UTC"));
    out.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            String::from_utf8_lossy(l)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

fn mode_string(kind: &EntryKind, mode: u16) -> String {
    let mut s = String::new();
    s.push(match kind {
        EntryKind::Directory => 'd',
        EntryKind::File { .. } => '-',
        EntryKind::Symlink { .. } => 'l',
        EntryKind::CharDevice { .. } => 'c',
        EntryKind::BlockDevice { .. } => 'b',
        EntryKind::Fifo => 'p',
        EntryKind::Socket => 's',
    });
    for (shift, special, letter) in
        [(6, 0o4000, 's'), (3, 0o2000, 's'), (0, 0o1000, 't')]
    {
        let bits = mode >> shift;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(match (bits & 1 != 0, mode & special != 0) {
            (true, true) => letter,
            (false, true) => letter.to_ascii_uppercase(),
            (true, false) => 'x',
            (false, false) => '-',
        });
    }
    s
}

/// `YYYY-MM-DD HH:MM` in UTC, as unsquashfs prints it with TZ=UTC: the
/// start of the SBOM's timestamp (`YYYY-MM-DDTHH:MM:SSZ`).
fn date(secs: u32) -> String {
    let stamp = timestamp(u64::from(secs)).unwrap();
    stamp[..16].replacen('T', " ", 1)
}

/// Our reader's listing in the form of `unsquashfs_listing`.
fn our_listing(image: &Image) -> Vec<String> {
    image
        .entries()
        .map(|e| {
            let e = e.unwrap();
            let kind = e.kind();
            let size = match (&kind, &e.inode.data) {
                (
                    _,
                    portable_service::squashfs::inode::InodeData::Directory(d),
                ) => d.size.to_string(),
                (EntryKind::File { size }, _) => size.to_string(),
                (EntryKind::Symlink { target }, _) => {
                    target.as_os_str().len().to_string()
                }
                (EntryKind::CharDevice { major, minor }, _)
                | (EntryKind::BlockDevice { major, minor }, _) => {
                    format!("{major}, {minor}")
                }
                _ => "0".to_string(),
            };
            let path = if e.path == Path::new("/") {
                String::new()
            } else {
                e.path.to_string_lossy().into_owned()
            };
            let mut line = format!(
                "{} {}/{} {size} {} {path}",
                mode_string(&kind, e.mode()),
                e.uid,
                e.gid,
                date(e.mtime()),
            );
            if let EntryKind::Symlink { target } = kind {
                line += &format!(" -> {}", target.to_string_lossy());
            }
            line.split_whitespace().collect::<Vec<_>>().join(" ")
        })
        .collect()
}

fn assert_same_lines(ours: &[String], theirs: &[String], what: &str) {
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        assert_eq!(a, b, "{what}: line {i} differs");
    }
    assert_eq!(ours.len(), theirs.len(), "{what}: number of entries");
}

/// Every file read by our reader equals the one unsquashfs extracted.
fn assert_same_contents(image: &Image, extracted: &Path) {
    let mut files = 0;
    for e in image.entries() {
        let e = e.unwrap();
        if let EntryKind::File { size } = e.kind() {
            let ours = image.read_file(&e.path, u64::MAX).unwrap();
            assert_eq!(ours.len() as u64, size, "{}", e.path.display());
            let rel = e.path.strip_prefix("/").unwrap();
            let theirs = fs::read(extracted.join(rel)).unwrap();
            assert!(ours == theirs, "{} differs", e.path.display());
            files += 1;
        }
    }
    assert!(files > 0);
}

fn unsquashfs_extract(image: &Path, dest: &Path) {
    ok(Command::new("unsquashfs")
        .arg("-no-xattrs")
        .arg("-d")
        .arg(dest)
        .arg(image));
}

/// Bytes that compress a little, as most files do.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    (0..len)
        .map(|i| {
            if i % 3 == 0 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
            }
            (x >> (i % 3 * 8)) as u8 & 0x3f
        })
        .collect()
}

fn write(path: &Path, contents: &[u8], mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, contents).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// A tree shaped like an image's: store paths under `usr/nix/store`, each
/// holding one kind of trouble for a squashfs reader or writer, plus a
/// file outside the store. Sizes are in terms of `block`.
fn fixture(root: &Path, block: usize) {
    let store = root.join("usr/nix/store");
    let files = store.join("0aaa-files");
    write(&files.join("empty"), b"", 0o644);
    write(&files.join("tiny"), b"0123456789", 0o444);
    write(&files.join("exact1"), &pattern(block, 1), 0o644);
    write(&files.join("exact3"), &pattern(3 * block, 2), 0o755);
    write(&files.join("blocks-and-tail"), &pattern(2 * block + 100, 3), 0o644);
    write(&files.join("big"), &pattern(1_500_007, 4), 0o644);
    let mut holey = pattern(block, 5);
    holey.extend(vec![0; 2 * block]);
    holey.extend(pattern(block + 10, 6));
    write(&files.join("sparse"), &holey, 0o644);
    write(&files.join("zeros"), &vec![0; 3 * block], 0o644);
    write(&files.join("dup-1"), &pattern(2 * block + 50, 7), 0o644);
    write(&files.join("dup-2"), &pattern(2 * block + 50, 7), 0o644);
    write(&files.join("small-dup-1"), &pattern(100, 8), 0o644);
    write(&files.join("small-dup-2"), &pattern(100, 8), 0o644);
    write(&files.join("setuid"), b"#!/bin/sh\n", 0o4755);
    write(&files.join("link-1"), &pattern(5000, 9), 0o644);
    fs::hard_link(files.join("link-1"), files.join("link-2")).unwrap();
    fs::create_dir(files.join("sticky")).unwrap();
    fs::set_permissions(
        files.join("sticky"),
        fs::Permissions::from_mode(0o1777),
    )
    .unwrap();

    let links = store.join("1bbb-links");
    fs::create_dir_all(&links).unwrap();
    for len in [1, 255, 256, 1000, 4095] {
        let target: String =
            (0..len).map(|i| if i % 100 == 99 { '/' } else { 'x' }).collect();
        symlink(&target, links.join(format!("target-{len}"))).unwrap();
    }
    symlink("../0aaa-files/tiny", links.join("relative")).unwrap();

    let names = store.join("2ccc-names");
    crate::util::store_like_tree(&names);
    write(&names.join("n".repeat(255)), b"long name", 0o644);

    let big_dir = store.join("3ddd-big-dir");
    for i in 0..3000 {
        write(
            &big_dir.join(format!("entry-{i:05}")),
            format!("{i}\n").as_bytes(),
            0o644,
        );
    }

    let mut deep = store.join("4eee-deep");
    for i in 0..60 {
        deep.push(format!("d{i}"));
    }
    write(&deep.join("bottom"), b"deep\n", 0o644);

    fs::create_dir_all(store.join("5fff-empty")).unwrap();
    write(&root.join("etc/os-release"), b"ID=test\n", 0o644);
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Our listing and every file's bytes equal what unsquashfs reads.
fn assert_reads_like_unsquashfs(image_path: &Path, work: &Path) {
    let image = Image::open(image_path).unwrap();
    let what = image_path.display().to_string();
    assert_same_lines(
        &our_listing(&image),
        &unsquashfs_listing(image_path),
        &what,
    );
    let extracted = work.join("extracted");
    let _ = fs::remove_dir_all(&extracted);
    unsquashfs_extract(image_path, &extracted);
    assert_same_contents(&image, &extracted);
    fs::remove_dir_all(&extracted).unwrap();
}

fn reader_matches_unsquashfs(block: u32) {
    let dir = tempdir();
    let src = dir.path().join("src");
    fixture(&src, block as usize);
    for comp in COMPRESSORS {
        let image = dir.path().join(format!("{comp}.raw"));
        mksquashfs(&src, &image, comp, block, &["-all-root"]);
        assert_reads_like_unsquashfs(&image, dir.path());
        let opened = Image::open(&image).unwrap();
        assert_eq!(opened.compressor().name(), comp);
        assert_eq!(opened.block_size(), block);
        assert_eq!(opened.superblock().mkfs_time, 0);
    }
}

#[test]
fn reader_matches_unsquashfs_4k() {
    reader_matches_unsquashfs(4096);
}

#[test]
fn reader_matches_unsquashfs_1m() {
    reader_matches_unsquashfs(1 << 20);
}

/// Owners other than root, devices, pipes and sockets (mksquashfs keeps
/// them without `-all-root`).
#[test]
fn reader_reads_owners_and_special_files() {
    let dir = tempdir();
    let src = dir.path().join("src");
    crate::util::store_like_tree(&src);
    let chown = |path: &str, owner: &str| {
        ok(Command::new("chown").arg("-h").arg(owner).arg(src.join(path)));
    };
    chown("bin/hello", "1000:100");
    chown("bin/hi", "65534:65533");
    chown("share/doc", "4000000:7");
    ok(Command::new("mknod").arg(src.join("null")).args(["c", "1", "3"]));
    ok(Command::new("mknod")
        .arg(src.join("disk"))
        .args(["b", "259", "300000"]));
    ok(Command::new("mkfifo").arg(src.join("fifo")));
    std::os::unix::net::UnixListener::bind(src.join("socket")).unwrap();
    let image = dir.path().join("owners.raw");
    mksquashfs(&src, &image, "zstd", 4096, &[]);
    let opened = Image::open(&image).unwrap();
    assert!(opened.ids().len() >= 5, "{:?}", opened.ids());
    let disk = opened.entry(Path::new("/disk")).unwrap();
    let expected = EntryKind::BlockDevice { major: 259, minor: 300_000 };
    assert_eq!(disk.kind(), expected);
    // unsquashfs 4.5.1 prints minors over 255 wrongly; the kernel decodes
    // them as we do (`new_decode_dev`).
    let without_disk = |lines: Vec<String>| -> Vec<String> {
        lines.into_iter().filter(|l| !l.ends_with(" /disk")).collect()
    };
    assert_same_lines(
        &without_disk(our_listing(&opened)),
        &without_disk(unsquashfs_listing(&image)),
        "owners",
    );
}

#[test]
fn reader_opens_an_image_inside_a_larger_file() {
    let dir = tempdir();
    let src = dir.path().join("src");
    crate::util::store_like_tree(&src);
    let image = dir.path().join("plain.raw");
    mksquashfs(&src, &image, "xz", 4096, &["-all-root"]);
    let bytes = fs::read(&image).unwrap();
    let mut disk = vec![0xa5; 1 << 20];
    disk.extend(&bytes);
    disk.extend(vec![0x5a; 12345]);
    let disk_path = dir.path().join("disk");
    fs::write(&disk_path, disk).unwrap();
    let inner =
        Image::open_range(&disk_path, 1 << 20, bytes.len() as u64).unwrap();
    let plain = Image::open(&image).unwrap();
    assert_eq!(our_listing(&inner), our_listing(&plain));
    assert_eq!(
        inner.read_file(Path::new("/share/doc/odd"), u64::MAX).unwrap(),
        vec![0xa5; 1001]
    );
    let beyond = Image::open_range(&disk_path, 1 << 20, 1 << 30).unwrap_err();
    assert_eq!(beyond.kind(), ErrorKind::Corrupt);
    let off =
        Image::open_range(&disk_path, 1000, bytes.len() as u64).unwrap_err();
    assert_eq!(off.kind(), ErrorKind::Corrupt);
    assert!(off.to_string().contains("magic"), "{off}");
    assert!(
        off.to_string().contains(&disk_path.display().to_string()),
        "{off}"
    );
}

#[test]
fn reader_lookups_and_errors() {
    let dir = tempdir();
    let src = dir.path().join("src");
    fixture(&src, 4096);
    let image_path = dir.path().join("img.raw");
    mksquashfs(&src, &image_path, "gzip", 4096, &["-all-root"]);
    let image = Image::open(&image_path).unwrap();
    let tiny = Path::new("usr/nix/store/0aaa-files/tiny");
    assert_eq!(image.read_file(tiny, u64::MAX).unwrap(), b"0123456789");
    assert_eq!(
        image.entry(Path::new("/")).unwrap().kind(),
        EntryKind::Directory
    );
    let link = image
        .entry(Path::new("/usr/nix/store/1bbb-links/target-4095"))
        .unwrap();
    let EntryKind::Symlink { target } = link.kind() else {
        panic!("{link:?}")
    };
    assert_eq!(target.as_os_str().len(), 4095);
    let missing = image.entry(Path::new("/usr/nope")).unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
    assert!(missing.to_string().contains("/usr/nope"), "{missing}");
    let through_file =
        image.entry(&Path::new("/").join(tiny).join("x")).unwrap_err();
    assert_eq!(through_file.kind(), ErrorKind::NotFound);
    let dir_as_file =
        image.read_file(Path::new("/usr"), u64::MAX).unwrap_err();
    assert_eq!(dir_as_file.kind(), ErrorKind::WrongKind);
    let a =
        image.entry(Path::new("/usr/nix/store/0aaa-files/link-1")).unwrap();
    let b =
        image.entry(Path::new("/usr/nix/store/0aaa-files/link-2")).unwrap();
    assert_eq!(a.inode_ref, b.inode_ref);
    assert_eq!(a.inode.data.nlink(), 2);
    let not_an_image = Image::open(&src.join("etc/os-release")).unwrap_err();
    assert_eq!(not_an_image.kind(), ErrorKind::Corrupt);
    let absent = Image::open(&dir.path().join("absent")).unwrap_err();
    assert_eq!(absent.kind(), ErrorKind::Io);
}

/// Reads everything an image holds, as `verify` would; errors are
/// expected on damaged images, panics are not.
fn read_everything(
    image: &Image,
) -> Result<(), portable_service::squashfs::Error> {
    for e in image.entries() {
        let e = e?;
        if let EntryKind::File { .. } = e.kind() {
            image.read_file(&e.path, u64::MAX)?;
        }
    }
    Ok(())
}

/// Truncated, bit-flipped and overwritten copies of real images give
/// errors, never a panic (a panic fails this test).
#[test]
fn reader_survives_damaged_images() {
    let dir = tempdir();
    let src = dir.path().join("src");
    crate::util::store_like_tree(&src);
    write(&src.join("many-blocks"), &pattern(40_000, 3), 0o644);
    for comp in COMPRESSORS {
        let image_path = dir.path().join(format!("{comp}.raw"));
        mksquashfs(&src, &image_path, comp, 4096, &["-all-root"]);
        let good = fs::read(&image_path).unwrap();
        let used =
            Image::open(&image_path).unwrap().superblock().bytes_used as usize;
        let damaged = dir.path().join("damaged.raw");
        for len in (0..used).step_by(97).chain([used - 1]) {
            fs::write(&damaged, &good[..len]).unwrap();
            let err = Image::open(&damaged).unwrap_err();
            assert!(err.file() == Some(damaged.as_path()), "{err}");
        }
        let (mut errors, mut copies) = (0, 0);
        for at in (0..used).step_by(11) {
            for value in [0xff, good[at] ^ 0x10] {
                copies += 1;
                let mut bytes = good.clone();
                bytes[at] = value;
                fs::write(&damaged, &bytes).unwrap();
                match Image::open(&damaged) {
                    Ok(image) => {
                        errors += usize::from(read_everything(&image).is_err())
                    }
                    Err(_) => errors += 1,
                }
            }
        }
        eprintln!("{comp}: {errors} of {copies} damaged copies refused");
        assert!(errors > 0, "{comp}: no damaged copy refused");
    }
}

/// Splits the tree at `src` into `n` layer trees under `dest`, as the
/// layered build does: store path i (in name order) goes to layer i % n,
/// what is outside the store to layer 0, and every layer has the
/// directories above the store.
fn split(src: &Path, dest: &Path, n: usize) -> Vec<std::path::PathBuf> {
    let layers: Vec<_> =
        (0..n).map(|k| dest.join(format!("layer-{k}"))).collect();
    for layer in &layers {
        fs::create_dir_all(layer.join("usr/nix/store")).unwrap();
    }
    let store = src.join("usr/nix/store");
    let mut paths: Vec<_> =
        fs::read_dir(&store).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    for (i, path) in paths.iter().enumerate() {
        ok(Command::new("cp")
            .arg("-a")
            .arg(path)
            .arg(layers[i % n].join("usr/nix/store")));
    }
    for top in fs::read_dir(src).unwrap() {
        let top = top.unwrap().path();
        if top.file_name().unwrap() != "usr" {
            ok(Command::new("cp").arg("-a").arg(&top).arg(&layers[0]));
        }
    }
    layers
}

/// Mounts an image read-only with the kernel; unmounts when dropped.
struct Mount(std::path::PathBuf);

impl Mount {
    fn new(image: &Path, at: &Path) -> Mount {
        fs::create_dir_all(at).unwrap();
        ok(Command::new("mount")
            .args(["-t", "squashfs", "-o", "loop,ro"])
            .arg(image)
            .arg(at));
        Mount(at.to_path_buf())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// `diff -r` between a mounted image and the tree it was made from.
fn assert_kernel_reads_tree(image: &Path, tree: &Path, work: &Path) {
    let mnt = work.join("mnt");
    let _mount = Mount::new(image, &mnt);
    ok(Command::new("diff")
        .args(["-r", "--no-dereference"])
        .arg(tree)
        .arg(&mnt));
}

/// Layers made by mksquashfs and assembled give the image mksquashfs
/// makes of the whole tree: same listing (owners, modes, sizes, symlinks,
/// directory sizes), same bytes in every file; and the kernel reads the
/// tree back from it.
fn assemble_like_mksquashfs(comp: &str, block: u32, counts: &[usize]) {
    let dir = tempdir();
    let src = dir.path().join("src");
    fixture(&src, block as usize);
    let whole = dir.path().join("whole.raw");
    mksquashfs(&src, &whole, comp, block, &["-all-root"]);
    let expected = unsquashfs_listing(&whole);
    for &n in counts {
        let parts = dir.path().join(format!("parts-{n}"));
        let trees = split(&src, &parts, n);
        let layers: Vec<_> = trees
            .iter()
            .map(|tree| {
                let image = tree.with_extension("raw");
                mksquashfs(tree, &image, comp, block, &["-all-root"]);
                image
            })
            .collect();
        let layer_refs: Vec<&Path> =
            layers.iter().map(|p| p.as_path()).collect();
        let out = dir.path().join(format!("assembled-{n}.raw"));
        let stats =
            portable_service::squashfs::assemble(&layer_refs, &out).unwrap();
        assert_eq!(stats.layers, n);
        assert_eq!(stats.entries as usize, expected.len());
        assert_eq!(stats.image_bytes, fs::metadata(&out).unwrap().len());
        let what = format!("{comp} {block} {n} layers");
        assert_same_lines(&unsquashfs_listing(&out), &expected, &what);
        assert_reads_like_unsquashfs(&out, dir.path());
        let whole_image = Image::open(&whole).unwrap();
        let ours = Image::open(&out).unwrap();
        for e in whole_image.entries() {
            let e = e.unwrap();
            if let EntryKind::File { .. } = e.kind() {
                let a = whole_image.read_file(&e.path, u64::MAX).unwrap();
                assert!(
                    a == ours.read_file(&e.path, u64::MAX).unwrap(),
                    "{what}: {}",
                    e.path.display()
                );
            }
        }
        if comp != "lzma" {
            assert_kernel_reads_tree(&out, &src, dir.path());
        }
    }
}

#[test]
fn assemble_gzip_4k() {
    assemble_like_mksquashfs("gzip", 4096, &[1, 2, 5]);
}

#[test]
fn assemble_zstd_1m() {
    assemble_like_mksquashfs("zstd", 1 << 20, &[1, 2, 5]);
}

#[test]
fn assemble_other_compressors() {
    for comp in ["lzma", "lzo", "xz", "lz4"] {
        assemble_like_mksquashfs(comp, 4096, &[2]);
    }
}

/// Layer images of the small tree `store_like_tree` under two store
/// paths, the first with gzip and 4 KiB blocks, the second as asked.
fn two_layers(
    dir: &Path,
    comp2: &str,
    block2: u32,
) -> [std::path::PathBuf; 2] {
    let dir = &dir.join(format!("{comp2}-{block2}"));
    let mut layers = Vec::new();
    for (k, (comp, block)) in
        [("gzip", 4096), (comp2, block2)].into_iter().enumerate()
    {
        let tree = dir.join(format!("tree-{k}"));
        crate::util::store_like_tree(
            &tree.join(format!("usr/nix/store/{k}-path")),
        );
        let image = dir.join(format!("layer-{k}.raw"));
        mksquashfs(&tree, &image, comp, block, &["-all-root"]);
        layers.push(image);
    }
    layers.try_into().unwrap()
}

fn assert_refused(
    layers: &[&Path],
    out: &Path,
    kind: ErrorKind,
    words: &[&str],
) {
    let err = portable_service::squashfs::assemble(layers, out).unwrap_err();
    assert_eq!(err.kind(), kind, "{err}");
    let message = err.to_string();
    for w in words {
        assert!(message.contains(w), "{message:?} lacks {w:?}");
    }
    let dir = out.parent().unwrap();
    let left: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("out.raw"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn assemble_refuses_layers_that_differ() {
    let dir = tempdir();
    let out = dir.path().join("out.raw");
    let [a, b] = two_layers(dir.path(), "zstd", 4096);
    let b_name = b.display().to_string();
    assert_refused(
        &[&a, &b],
        &out,
        ErrorKind::Mismatch,
        &[&b_name, "compressor zstd", "gzip"],
    );
    let [a, b] = two_layers(dir.path(), "gzip", 8192);
    let b_name = b.display().to_string();
    assert_refused(
        &[&a, &b],
        &out,
        ErrorKind::Mismatch,
        &[&b_name, "block size 8192", "4096"],
    );
    let tree = b.parent().unwrap().join("tree-1");
    mksquashfs(
        &tree,
        &b,
        "gzip",
        4096,
        &["-all-root", "-Xcompression-level", "5"],
    );
    assert_refused(
        &[&a, &b],
        &out,
        ErrorKind::Mismatch,
        &[&b_name, "compressor options"],
    );
    mksquashfs(&tree, &b, "gzip", 4096, &["-all-root", "-no-fragments"]);
    assert_refused(&[&a, &b], &out, ErrorKind::Mismatch, &[&b_name, "flags"]);
}

#[test]
fn assemble_refuses_clashes() {
    let dir = tempdir();
    let out = dir.path().join("out.raw");
    let [a, _] = two_layers(dir.path(), "gzip", 4096);
    let a_name = a.display().to_string();
    let err_words =
        ["/usr/nix/store/0-path/bin/doc is in both", "layer-0.raw"];
    assert_refused(&[&a, &a], &out, ErrorKind::Clash, &err_words);
    let other = dir.path().join("other");
    fs::create_dir_all(other.join("usr/nix/store")).unwrap();
    fs::set_permissions(
        other.join("usr/nix"),
        fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    let b = dir.path().join("other.raw");
    mksquashfs(&other, &b, "gzip", 4096, &["-all-root"]);
    assert_refused(
        &[&a, &b],
        &out,
        ErrorKind::Clash,
        &["/usr/nix", &a_name, "other.raw"],
    );
}

#[test]
fn assemble_refuses_damaged_layers() {
    let dir = tempdir();
    let out = dir.path().join("out.raw");
    let [a, b] = two_layers(dir.path(), "gzip", 4096);
    let bytes = fs::read(&b).unwrap();
    let used = Image::open(&b).unwrap().superblock().bytes_used as usize;
    let b_name = b.display().to_string();
    for len in [0, 50, 96, 500, used / 2, used - 1] {
        fs::write(&b, &bytes[..len]).unwrap();
        let result = portable_service::squashfs::assemble(&[&a, &b], &out);
        let err = result.expect_err(&format!("{len} of {used} bytes"));
        assert_eq!(err.file(), Some(b.as_path()), "{err}");
        assert!(err.to_string().contains(&b_name), "{err}");
        assert!(!out.exists());
        assert!(fs::read_dir(dir.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("partial")));
    }
}

/// A layer with nothing but the shared directories, a layer of files
/// owned by others and of devices, pipes and sockets; the result is the
/// same on every run.
#[test]
fn assemble_empty_layers_owners_and_special_files() {
    let dir = tempdir();
    let empty_tree = dir.path().join("empty");
    fs::create_dir_all(empty_tree.join("usr/nix/store")).unwrap();
    let empty = dir.path().join("empty.raw");
    mksquashfs(&empty_tree, &empty, "xz", 4096, &["-all-root"]);
    let special = dir.path().join("special");
    let store_path = special.join("usr/nix/store/0-special");
    crate::util::store_like_tree(&store_path);
    ok(Command::new("chown")
        .arg("1000:100")
        .arg(store_path.join("bin/hello")));
    ok(Command::new("chown")
        .arg("-h")
        .arg("7:8")
        .arg(store_path.join("bin/hi")));
    ok(Command::new("mknod")
        .arg(store_path.join("null"))
        .args(["c", "1", "3"]));
    ok(Command::new("mknod")
        .arg(store_path.join("disk"))
        .args(["b", "8", "1"]));
    ok(Command::new("mkfifo").arg(store_path.join("fifo")));
    std::os::unix::net::UnixListener::bind(store_path.join("socket")).unwrap();
    let special_image = dir.path().join("special.raw");
    mksquashfs(&special, &special_image, "xz", 4096, &[]);
    let out = dir.path().join("out.raw");
    let stats = portable_service::squashfs::assemble(
        &[&empty, &special_image, &empty],
        &out,
    );
    assert_eq!(stats.unwrap().layers, 3);
    assert_same_lines(
        &unsquashfs_listing(&out),
        &unsquashfs_listing(&special_image),
        "special",
    );
    let again = dir.path().join("again.raw");
    portable_service::squashfs::assemble(
        &[&empty, &special_image, &empty],
        &again,
    )
    .unwrap();
    assert!(
        fs::read(&out).unwrap() == fs::read(&again).unwrap(),
        "not reproducible"
    );
    let only_empty = dir.path().join("only-empty.raw");
    portable_service::squashfs::assemble(&[&empty, &empty], &only_empty)
        .unwrap();
    assert_same_lines(
        &unsquashfs_listing(&only_empty),
        &unsquashfs_listing(&empty),
        "empty",
    );
    let mnt = dir.path().join("mnt");
    let _mount = Mount::new(&only_empty, &mnt);
    assert!(mnt.join("usr/nix/store").is_dir());
}
