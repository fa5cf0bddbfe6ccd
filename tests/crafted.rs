//! Crafted images (issue 17): images that `verify` must not pass, made
//! from real images built here, one or more per way the kernel can read
//! an image differently from our reader, or an image can make `verify`
//! do unbounded work or print what a terminal obeys.
//!
//! Images are made three ways:
//! - repacked by mksquashfs with every metadata block stored as it is
//!   (`-noI -noId -noF -noX`), so that the inode, directory and other
//!   tables can be patched in place where our reader locates their
//!   records (`Raw`);
//! - rewritten by our own writer, with the data blocks of a real image
//!   copied as they are and files or directories added that mksquashfs
//!   cannot make cheaply (`rewrite`);
//! - built by nix-build where the trouble is in what Nix builds.
//!
//! Every `verify` and `inspect` runs as a child with 256 MiB of address
//! space, and its CPU time (not wall time) is measured (`run_bounded`):
//! the issue's target is that any image of up to 1 MiB is verified within
//! 2 s of CPU and 256 MiB. The kernel is the oracle (`kernel_disagrees`):
//! an image `verify` passes must read the same through a read-only loop
//! mount, store paths resolved from `/nix/store` as a service in the image
//! resolves them.

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr};
use std::fs::{self, File};
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use portable_service::manifest::Manifest;
use portable_service::nix::nar::hash::parse_sha256;
use portable_service::nix::path_info::PathInfo;
use portable_service::squashfs::inode::{BlockSize, Directory, InodeData};
use portable_service::squashfs::metadata::MetaRef;
use portable_service::squashfs::superblock::{Flags, NO_TABLE};
use portable_service::squashfs::table::Fragment;
use portable_service::squashfs::writer::{
    FileData, Node, NodeKind, Settings, Tree, Writer, ROOT,
};
use portable_service::squashfs::{Entry, EntryKind, Image};

use crate::util::{build, run, stderr, BUILDER};

// ---------------------------------------------------------------------
// Running verify and inspect within bounds

/// The address space a child gets: the issue's 256 MiB.
const MEMORY: u64 = 256 << 20;
/// The CPU time an image of up to 1 MiB may take.
const CPU_BOUND: Duration = Duration::from_secs(2);
/// Where a runaway child is stopped (SIGXCPU, then SIGKILL), so that an
/// unbounded verify fails the test in seconds, not hours.
const CPU_STOP: u64 = 5;
/// Wall time after which a child that is not using CPU (blocked) is
/// killed.
const WALL_STOP: Duration = Duration::from_secs(120);
/// The images the bounds apply to.
const BOUNDED_SIZE: u64 = 1 << 20;

/// What a child did, and what it cost.
struct Run {
    what: String,
    /// The exit code, or None when a signal ended it.
    code: Option<i32>,
    signal: Option<i32>,
    cpu: Duration,
    max_rss_kib: i64,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Run {
    fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// The first line it printed, for reports.
    fn first_line(&self) -> String {
        let out = if self.stdout.is_empty() {
            self.stderr_text()
        } else {
            self.stdout_text()
        };
        let line = out.lines().next().unwrap_or("").to_string();
        shorten(&line.escape_debug().to_string(), 300)
    }

    /// How it ended, for reports.
    fn ending(&self) -> String {
        match (self.code, self.signal) {
            (Some(code), _) => format!("exit {code}"),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            _ => "ended oddly".into(),
        }
    }

    fn summary(&self) -> String {
        format!(
            "{}: {} after {:.2} s CPU, {} MiB max RSS: {}",
            self.what,
            self.ending(),
            self.cpu.as_secs_f64(),
            self.max_rss_kib / 1024,
            self.first_line()
        )
    }

    /// What is wrong with how it ran, whatever the image: a crash, a
    /// panic, an exit code the CLI does not promise, or (for an image of
    /// up to 1 MiB) more CPU than the bound. Running out of the address
    /// space shows as an abort.
    fn faults(&self, image_size: u64) -> Vec<String> {
        let mut faults = Vec::new();
        if self.signal.is_some() || !matches!(self.code, Some(0..=2)) {
            faults.push(format!("did not exit normally: {}", self.summary()));
        }
        if self.stderr_text().contains("panicked") {
            faults.push(format!(
                "panicked: {}",
                shorten(&self.stderr_text(), 600)
            ));
        }
        if image_size <= BOUNDED_SIZE && self.cpu > CPU_BOUND {
            faults.push(format!(
                "took {:.2} s of CPU on an image of {image_size} bytes \
                 (bound {} s): {}",
                self.cpu.as_secs_f64(),
                CPU_BOUND.as_secs(),
                self.summary()
            ));
        }
        faults
    }
}

fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// Runs the builder with `args` under the bounds: 256 MiB of address
/// space, stopped after `CPU_STOP` s of CPU; measures its CPU time (user
/// and system, all threads) with `wait4`.
fn run_bounded(args: &[&OsStr]) -> Run {
    let out = tempfile::tempfile().unwrap();
    let err = tempfile::tempfile().unwrap();
    let mut cmd = Command::new(BUILDER);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap());
    // SAFETY: setrlimit is async-signal-safe and touches no memory of
    // the parent.
    unsafe {
        cmd.pre_exec(|| {
            let limit = |resource, soft, hard| {
                let rlim = libc::rlimit { rlim_cur: soft, rlim_max: hard };
                if libc::setrlimit(resource, &rlim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            };
            limit(libc::RLIMIT_AS, MEMORY, MEMORY)?;
            limit(libc::RLIMIT_CPU, CPU_STOP, CPU_STOP + 1)?;
            limit(libc::RLIMIT_CORE, 0, 0)
        });
    }
    let child = cmd.spawn().unwrap_or_else(|e| panic!("{BUILDER}: {e}"));
    let pid = child.id() as libc::pid_t;
    let started = Instant::now();
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our child, not yet reaped (std never waits for
        // it: the Child is dropped without wait).
        let got = unsafe {
            libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage)
        };
        if got == pid {
            break;
        }
        assert!(got == 0, "wait4: {}", std::io::Error::last_os_error());
        if started.elapsed() > WALL_STOP {
            // SAFETY: the child is not reaped, so pid is still ours.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    drop(child);
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64)
            + Duration::from_micros(t.tv_usec as u64)
    };
    let read_all = |mut f: File| {
        use std::io::Seek;
        f.rewind().unwrap();
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).unwrap();
        bytes
    };
    let exited = libc::WIFEXITED(status);
    Run {
        what: args
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" "),
        code: exited.then(|| libc::WEXITSTATUS(status)),
        signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
        cpu: time(usage.ru_utime) + time(usage.ru_stime),
        max_rss_kib: usage.ru_maxrss,
        stdout: read_all(out),
        stderr: read_all(err),
    }
}

fn verify_bounded(image: &Path) -> Run {
    run_bounded(&["verify".as_ref(), image.as_os_str()])
}

fn inspect_bounded(image: &Path, json: bool) -> Run {
    let mut args = vec!["inspect".as_ref(), image.as_os_str()];
    if json {
        args.push("--json".as_ref());
    }
    run_bounded(&args)
}

// ---------------------------------------------------------------------
// Crafted images and what verify must do with them

/// What `verify` must do with a crafted image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// A finding (exit 1) or a clean error (exit 2); never exit 0.
    Refused,
    /// Exit 0: a good image (a baseline, or a big but correct one).
    Verified,
    /// Either, as long as it stays within the bounds and its output is
    /// clean (class 9: names that are odd but not wrong).
    Either,
}

struct Crafted {
    /// `class/variant`, as the reports name it.
    name: String,
    path: PathBuf,
    expect: Expect,
    /// Whether the kernel, mounting it, must show something other than
    /// what our reader reads (classes 1 to 6: proof that the image is what
    /// its class says).
    fools_kernel: bool,
    /// What verify did with it, once run (several tests ask).
    verified: OnceLock<Run>,
}

impl Crafted {
    fn new(name: &str, path: PathBuf, expect: Expect) -> Crafted {
        Crafted {
            name: name.into(),
            path,
            expect,
            fools_kernel: false,
            verified: OnceLock::new(),
        }
    }

    fn verify(&self) -> &Run {
        self.verified.get_or_init(|| verify_bounded(&self.path))
    }

    fn fooling(mut self) -> Crafted {
        self.fools_kernel = true;
        self
    }

    fn size(&self) -> u64 {
        fs::metadata(&self.path).unwrap().len()
    }
}

/// What is wrong with what `verify` and `inspect` did with `image`; the
/// runs are returned for the reports.
fn judge(image: &Crafted) -> (Vec<String>, &Run) {
    let size = image.size();
    let verify = image.verify();
    let mut faults: Vec<String> = verify.faults(size);
    match (image.expect, verify.code) {
        (Expect::Refused, Some(0)) => faults.push(format!(
            "verify passed it: {}",
            shorten(&verify.stdout_text(), 300)
        )),
        (Expect::Verified, Some(code)) if code != 0 => faults.push(format!(
            "verify did not pass it: {}",
            shorten(&verify.stdout_text(), 600)
        )),
        _ => {}
    }
    let inspect = inspect_bounded(&image.path, false);
    faults.extend(inspect.faults(size));
    let faults = faults
        .into_iter()
        .map(|f| format!("{} ({size} bytes): {f}", image.name))
        .collect();
    (faults, verify)
}

/// Judges every image; fails naming each image that went wrong, after
/// printing what verify did with each.
fn assert_judged(images: &[Crafted]) {
    let mut faults = Vec::new();
    for image in images {
        let (found, verify) = judge(image);
        eprintln!("{}: {}", image.name, verify.summary());
        faults.extend(found);
    }
    assert!(faults.is_empty(), "\n{}\n", faults.join("\n"));
}

// ---------------------------------------------------------------------
// Real images to start from

/// A store path with a big `bin` (more than 8 KiB of names before and
/// after `hello`, so its directory inode has an index), a `hello` in it,
/// and another `hello` in `share/decoy`. `{TOOL}` stands for `TOOL`.
const HELLO: &str = r#"runCommand "hello" { } ''
    mkdir -p $out/bin $out/share/decoy
    printf '#!/bin/sh\necho the real hello\n' > $out/bin/hello
    chmod 555 $out/bin/hello
    printf 'a decoy\n' > $out/share/decoy/hello
    i=100
    while [ $i -lt 250 ]; do
      : > $out/bin/a-{TOOL}$i
      : > $out/bin/z-{TOOL}$i
      i=$((i+1))
    done
  ''"#;

/// The names that fill `bin` (after `a-` and `z-`, before a number).
const TOOL: &str = "tool-named-at-length-to-fill-a-metadata-block-quickly-";

/// The image every crafted image but a few starts from: `demo_1.0.raw`,
/// whose unit runs `hello`.
fn plain() -> &'static Path {
    static IMAGE: OnceLock<PathBuf> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let hello = HELLO.replace("{TOOL}", TOOL);
        let out = build(&format!(
            r#"let hello = {hello}; in portableService {{
                 pname = "demo";
                 version = "1.0";
                 units = [ (writeText "demo.service"
                   "[Service]\nExecStart=${{hello}}/bin/hello\n") ];
               }}"#
        ));
        out.join("demo_1.0.raw")
    })
}

/// An extension image (`app_2.0.raw`) on a base that holds the store
/// path its unit reads.
fn extension() -> &'static Path {
    static IMAGE: OnceLock<PathBuf> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let out = build(
            r#"let
                 greeting = runCommand "greeting" { } ''
                   mkdir -p $out
                   echo hello > $out/greeting.txt
                 '';
                 runtime = portableService {
                   pname = "runtime";
                   version = "1.0";
                   contents = [ greeting ];
                   units = [ (writeText "runtime.service"
                     "[Service]\nExecStart=${greeting}/greeting.txt\n") ];
                 };
                 hello = writeScript "hello" ''
                   #!/bin/sh
                   cat ${greeting}/greeting.txt
                 '';
               in portableService {
                 pname = "app";
                 version = "2.0";
                 base = runtime;
                 units = [ (writeText "app.service"
                   "[Service]\nExecStart=${hello}\n") ];
                 symlinks = [
                   { object = "${hello}"; symlink = "/usr/bin/hello"; }
                 ];
               }"#,
        );
        out.join("app_2.0.raw")
    })
}

/// `tools_1.0.raw`: a store path with 30,000 files in one directory, and
/// a unit that names 30,000 paths in it: those files when `present`,
/// else names that are not there.
fn many_names(present: bool) -> PathBuf {
    let out = build(&format!(
        r#"let
             tools = runCommand "tools" {{ }} ''
               mkdir -p $out/bin
               cd $out/bin
               i=10000
               while [ $i -lt 40000 ]; do : > t$i; i=$((i+1)); done
             '';
             unit = runCommand "tools.service" {{ }} ''
               {{
                 echo '[Service]'
                 echo 'ExecStart=${{tools}}/bin/t10000'
                 i=10000
                 while [ $i -lt 40000 ]; do
                   echo "ExecStartPre=${{tools}}/bin/{}$i"
                   i=$((i+1))
                 done
               }} > $out
             '';
           in portableService {{
             pname = "tools";
             version = "1.0";
             units = [ unit ];
           }}"#,
        if present { "t" } else { "missing-" }
    ));
    out.join("tools_1.0.raw")
}

// ---------------------------------------------------------------------
// Repacking with mksquashfs

/// How to repack: by default as the builder does (`-all-root`, root mode
/// 755, no xattrs, no export table, `SOURCE_DATE_EPOCH=0`, the image's
/// compressor and block size), with every metadata block stored as it is
/// and data blocks too unless `compress_data`.
#[derive(Clone, Copy, Default)]
struct Repack {
    compress_data: bool,
    no_fragments: bool,
    exports: bool,
    /// Another compressor than the image's.
    comp: Option<&'static str>,
}

/// The tree of `image`, extracted into `dir/tree`.
fn extract(image: &Path, dir: &Path) -> PathBuf {
    let tree = dir.join("tree");
    let output = run(Command::new("unsquashfs")
        .args(["-no-xattrs", "-quiet", "-no-progress", "-d"])
        .arg(&tree)
        .arg(image));
    assert!(output.status.success(), "unsquashfs: {}", stderr(&output));
    tree
}

/// `image` repacked as `how` says, after `edit` changed its tree; under
/// the same file name (the unit prefix comes from it) in `dir`.
fn repack(
    image: &Path,
    dir: &Path,
    how: Repack,
    edit: impl FnOnce(&Path),
) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let tree = extract(image, dir);
    edit(&tree);
    let original = Image::open(image).unwrap();
    let out = dir.join(image.file_name().unwrap());
    let mut cmd = Command::new("mksquashfs");
    cmd.arg(&tree)
        .arg(&out)
        .args(["-noappend", "-exit-on-error", "-quiet", "-no-progress"])
        .args(["-no-xattrs", "-all-root", "-root-mode", "755"])
        .args(["-noI", "-noId", "-noF", "-noX"])
        .args(["-b", &original.block_size().to_string()])
        .args(["-comp", how.comp.unwrap_or(original.compressor().name())])
        .arg(if how.exports { "-exports" } else { "-no-exports" })
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("SOURCE_DATE_EPOCH", "0");
    if !how.compress_data {
        cmd.arg("-noD");
    }
    if how.no_fragments {
        cmd.arg("-no-fragments");
    }
    let output = run(&mut cmd);
    assert!(output.status.success(), "mksquashfs: {}", stderr(&output));
    fs::remove_dir_all(&tree).unwrap();
    out
}

/// The one store path in the extracted `tree` whose name ends with
/// `name`.
fn store_path_in(tree: &Path, name: &str) -> PathBuf {
    fs::read_dir(tree.join("usr/nix/store"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(name))
        .unwrap_or_else(|| panic!("no store path named {name}"))
}

/// The image path of the store path of `image` whose name ends with
/// `name`.
fn store_path_of(image: &Image, name: &str) -> PathBuf {
    let store = image.entry(Path::new("/usr/nix/store")).unwrap();
    let found = image
        .children(&store)
        .unwrap()
        .map(|e| e.unwrap().path)
        .find(|p| p.to_string_lossy().ends_with(name));
    found.unwrap_or_else(|| panic!("no store path named {name}"))
}

// ---------------------------------------------------------------------
// Patching a repack in place

/// A superblock field's offset.
mod sb {
    pub const FRAGMENT_COUNT: usize = 16;
    pub const FLAGS: usize = 24;
    pub const BYTES_USED: usize = 40;
    pub const ID_TABLE: usize = 48;
    pub const XATTR_TABLE: usize = 56;
    pub const FRAGMENT_TABLE: usize = 80;
    pub const LOOKUP_TABLE: usize = 88;
}

/// The size of a stored metadata block: its header and 8 KiB.
const STORED_BLOCK: usize = 8194;

/// The bytes of an image whose metadata blocks are all stored as they
/// are, and the image as our reader opened it before any patch, to
/// locate records.
#[derive(Clone)]
struct Raw {
    bytes: Vec<u8>,
    image: Image,
}

impl Raw {
    fn open(path: &Path) -> Raw {
        Raw {
            bytes: fs::read(path).unwrap(),
            image: Image::open(path).unwrap(),
        }
    }

    fn u16_at(&self, at: usize) -> u16 {
        u16::from_le_bytes(self.bytes[at..at + 2].try_into().unwrap())
    }

    fn u64_at(&self, at: usize) -> u64 {
        u64::from_le_bytes(self.bytes[at..at + 8].try_into().unwrap())
    }

    fn set(&mut self, at: usize, bytes: &[u8]) {
        self.bytes[at..at + bytes.len()].copy_from_slice(bytes);
    }

    /// Where decoded byte `p` of the metadata table at `table` is in the
    /// file: every block is stored, 8 KiB but the last.
    fn meta_offset(&self, table: u64, p: usize) -> usize {
        let header = table as usize + p / 8192 * STORED_BLOCK;
        let word = self.u16_at(header);
        assert!(
            word & 0x8000 != 0,
            "the metadata block at {header} is compressed: not a raw repack"
        );
        header + 2 + p % 8192
    }

    /// The decoded offset, from its table's start, of what `r` names.
    fn decoded(r: MetaRef) -> usize {
        assert_eq!(r.block as usize % STORED_BLOCK, 0, "{r:?}");
        r.block as usize / STORED_BLOCK * 8192 + usize::from(r.offset)
    }

    fn get_meta(&self, table: u64, p: usize, len: usize) -> Vec<u8> {
        (p..p + len).map(|q| self.bytes[self.meta_offset(table, q)]).collect()
    }

    fn put_meta(&mut self, table: u64, p: usize, bytes: &[u8]) {
        for (i, b) in bytes.iter().enumerate() {
            let at = self.meta_offset(table, p + i);
            self.bytes[at] = *b;
        }
    }

    fn inode_table(&self) -> u64 {
        self.image.superblock().inode_table_start
    }

    fn directory_table(&self) -> u64 {
        self.image.superblock().directory_table_start
    }

    /// Overwrites bytes at `rel` in the inode of `entry`.
    fn patch_inode(&mut self, entry: &Entry, rel: usize, bytes: &[u8]) {
        let p = Raw::decoded(entry.inode_ref) + rel;
        self.put_meta(self.inode_table(), p, bytes);
    }

    fn entry(&self, path: &str) -> Entry {
        self.image.entry(Path::new(path)).unwrap()
    }

    /// The listing of the directory at `path`, record by record.
    fn listing(&self, path: &str) -> Vec<Listed> {
        let InodeData::Directory(dir) = self.entry(path).inode.data else {
            panic!("{path} is not a directory")
        };
        listing(self, &dir)
    }

    fn write(&self, to: &Path) {
        fs::write(to, &self.bytes).unwrap();
    }

    /// Inserts `n` zero bytes at `at`, a boundary between tables (or
    /// between a table's blocks and its index), and moves every position
    /// the superblock and the indexes hold that is at or after it.
    fn splice(&mut self, at: usize, n: usize) {
        let sb = self.image.superblock().clone();
        let moved = |v: u64| if v >= at as u64 { v + n as u64 } else { v };
        let index_len = |count: u64, record: u64| {
            (count * record).div_ceil(8192) as usize * 8
        };
        let mut indexes =
            vec![(sb.id_table_start, index_len(sb.id_count.into(), 4))];
        if sb.fragment_count > 0 {
            let len = index_len(sb.fragment_count.into(), 16);
            indexes.push((sb.fragment_table_start, len));
        }
        if sb.lookup_table_start != NO_TABLE {
            let len = index_len(sb.inode_count.into(), 8);
            indexes.push((sb.lookup_table_start, len));
        }
        self.bytes.splice(at..at, std::iter::repeat_n(0, n));
        for (start, len) in indexes {
            let start = moved(start) as usize;
            for i in (0..len).step_by(8) {
                let v = self.u64_at(start + i);
                self.set(start + i, &moved(v).to_le_bytes());
            }
        }
        for field in [
            sb::BYTES_USED,
            sb::ID_TABLE,
            sb::XATTR_TABLE,
            sb::FRAGMENT_TABLE,
            sb::LOOKUP_TABLE,
        ] {
            let v = self.u64_at(field);
            if v != NO_TABLE {
                self.set(field, &moved(v).to_le_bytes());
            }
        }
        self.pad();
    }

    /// Pads (or cuts) the file to `bytes_used` rounded up to 4 KiB, as
    /// mksquashfs does.
    fn pad(&mut self) {
        let used = self.u64_at(sb::BYTES_USED) as usize;
        self.bytes.resize(used.div_ceil(4096) * 4096, 0);
    }
}

/// A directory entry as it is stored.
#[derive(Clone, Debug)]
struct Listed {
    name: Vec<u8>,
    /// The entry's decoded offset in the directory table.
    at: usize,
    len: usize,
    /// The run it is in (its header's decoded offset) and the run's base
    /// inode number.
    run: usize,
    base: u32,
}

/// Parses the listing of `dir` from the raw bytes, keeping where each
/// entry is (our reader's parser does not say).
fn listing(raw: &Raw, dir: &Directory) -> Vec<Listed> {
    let table = raw.directory_table();
    let start =
        Raw::decoded(MetaRef { block: dir.start_block, offset: dir.offset });
    let bytes = raw.get_meta(table, start, dir.size as usize - 3);
    let u32_at =
        |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap());
    let u16_at =
        |i: usize| u16::from_le_bytes(bytes[i..i + 2].try_into().unwrap());
    let mut entries = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let (count, base) = (u32_at(i) + 1, u32_at(i + 8));
        let run = start + i;
        i += 12;
        for _ in 0..count {
            let name_len = usize::from(u16_at(i + 6)) + 1;
            entries.push(Listed {
                name: bytes[i + 8..i + 8 + name_len].to_vec(),
                at: start + i,
                len: 8 + name_len,
                run,
                base,
            });
            i += 8 + name_len;
        }
    }
    entries
}

// ---------------------------------------------------------------------
// Rewriting with our writer

/// What `rewrite` does with an entry of the image.
enum Edit {
    Keep,
    Replace(NodeKind),
}

/// `image` written again by our writer, under its file name in `dir`:
/// its data and fragment blocks copied as they are, every entry kept
/// unless `edit` replaces it, then `add` given the tree (and
/// each kept path's node) to add to. The writer recurses per directory
/// level, so it runs on a thread with a deep stack.
fn rewrite(
    image: &Path,
    dir: &Path,
    edit: impl FnMut(&Path) -> Edit + Send,
    add: impl FnOnce(&mut Tree, &BTreeMap<PathBuf, usize>) + Send,
) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let out = dir.join(image.file_name().unwrap());
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn_scoped(s, || write_again(image, &out, edit, add))
            .unwrap()
            .join()
            .unwrap()
    });
    out
}

fn write_again(
    image: &Path,
    out: &Path,
    mut edit: impl FnMut(&Path) -> Edit,
    add: impl FnOnce(&mut Tree, &BTreeMap<PathBuf, usize>),
) {
    let original = Image::open(image).unwrap();
    let settings = Settings {
        codec: original.codec().clone(),
        block_size: original.block_size(),
        data_flags: original.superblock().flags.0,
        mkfs_time: 0,
    };
    let mut writer =
        Writer::create(File::create(out).unwrap(), settings).unwrap();
    let (start, end) = original.data_region();
    let (file, offset) = original.file();
    let placed = writer.copy_from(file, offset + start, end - start).unwrap();
    let moved = |pos: u64| pos - start + placed;
    for f in original.fragments().unwrap() {
        writer.add_fragment(Fragment { start: moved(f.start), size: f.size });
    }
    let root = original.root().unwrap();
    let mut tree = Tree::new(root.mode(), root.uid, root.gid, root.mtime());
    let mut nodes = BTreeMap::from([(PathBuf::from("/"), ROOT)]);
    let mut linked: BTreeMap<MetaRef, usize> = BTreeMap::new();
    for entry in original.entries().skip(1) {
        let entry = entry.unwrap();
        let parent = nodes[entry.path.parent().unwrap()];
        let name = entry.path.file_name().unwrap().as_bytes();
        if let Some(&id) = linked.get(&entry.inode_ref) {
            tree.link(parent, name, id).unwrap();
            continue;
        }
        let kind = match edit(&entry.path) {
            Edit::Replace(kind) => kind,
            Edit::Keep => match &entry.inode.data {
                InodeData::Directory(_) => {
                    NodeKind::Directory(BTreeMap::new())
                }
                InodeData::File(f) => NodeKind::File(FileData {
                    size: f.size,
                    blocks_start: if f.blocks.iter().all(|b| b.is_sparse()) {
                        placed
                    } else {
                        moved(f.blocks_start)
                    },
                    blocks: f.blocks.clone(),
                    fragment: f.fragment,
                    sparse: f.sparse,
                }),
                InodeData::Symlink { target, .. } => {
                    NodeKind::Symlink(target.clone())
                }
                InodeData::BlockDevice { rdev, .. } => {
                    NodeKind::BlockDevice(*rdev)
                }
                InodeData::CharDevice { rdev, .. } => {
                    NodeKind::CharDevice(*rdev)
                }
                InodeData::Fifo { .. } => NodeKind::Fifo,
                InodeData::Socket { .. } => NodeKind::Socket,
            },
        };
        let is_dir = matches!(kind, NodeKind::Directory(_));
        let node = Node {
            mode: entry.mode(),
            uid: entry.uid,
            gid: entry.gid,
            mtime: entry.mtime(),
            kind,
        };
        let id = tree.add(parent, name, node).unwrap();
        if is_dir {
            nodes.insert(entry.path.clone(), id);
        } else if entry.inode.data.nlink() > 1 {
            linked.insert(entry.inode_ref, id);
        }
    }
    add(&mut tree, &nodes);
    writer.finish(&tree).unwrap();
}

/// A file of `size` bytes of zeros, every block sparse: nothing of it is
/// stored but its size words.
fn sparse_file(size: u64, block_size: u32) -> NodeKind {
    let blocks = size.div_ceil(block_size.into()) as usize;
    NodeKind::File(FileData {
        size,
        // Where data could start; no block is read from there.
        blocks_start: 96,
        blocks: vec![BlockSize(0); blocks],
        fragment: None,
        sparse: size,
    })
}

fn plain_node(kind: NodeKind) -> Node {
    Node { mode: 0o755, uid: 0, gid: 0, mtime: 0, kind }
}

// ---------------------------------------------------------------------
// The crafted images, by class

fn write_raw(raw: &Raw, dir: &Path, variant: &str) -> PathBuf {
    let dir = dir.join(variant);
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join(plain().file_name().unwrap());
    raw.write(&path);
    path
}

/// A raw repack of the plain image, made once per directory.
fn raw_plain(dir: &Path, how: Repack, name: &str) -> Raw {
    Raw::open(&repack(plain(), &dir.join(name), how, |_| {}))
}

fn hello_path(raw: &Raw) -> String {
    store_path_of(&raw.image, "-hello").display().to_string()
}

fn dir_of(entry: &Entry) -> &Directory {
    match &entry.inode.data {
        InodeData::Directory(d) => d,
        _ => panic!("{} is not a directory", entry.path.display()),
    }
}

/// Class 1: the index of `bin` in the hello store path sends the
/// kernel's lookup of `hello` elsewhere: into the listing of
/// `share/decoy`, which holds another `hello`, or past `hello` in its own
/// listing. Our reader and unsquashfs ignore the index.
fn class1(dir: &Path) -> Vec<Crafted> {
    let base = raw_plain(dir, Repack::default(), "base");
    let hello = hello_path(&base);
    let bin = base.entry(&format!("{hello}/bin"));
    let decoy = base.entry(&format!("{hello}/share/decoy"));
    let (b, d) = (dir_of(&bin), dir_of(&decoy));
    assert!(!b.index.is_empty(), "{hello}/bin has no index");
    let k = b
        .index
        .iter()
        .rposition(|i| i.name.as_slice() <= b"hello".as_slice())
        .expect("an index entry before hello");
    assert!(k + 1 < b.index.len(), "no index entry after hello");
    // The index entries follow the 40 bytes of the extended inode.
    let at =
        40 + b.index[..k].iter().map(|i| 12 + i.name.len()).sum::<usize>();
    let mut images = Vec::new();

    // The kernel takes the block from the index and the offset as (index
    // + the directory's offset) % 8 KiB.
    let index = (i64::from(d.offset) - i64::from(b.offset)).rem_euclid(8192);
    assert!(index as u32 + 3 < b.size, "bin's listing is too short");
    let mut raw = base.clone();
    raw.patch_inode(&bin, at, &(index as u32).to_le_bytes());
    raw.patch_inode(&bin, at + 4, &d.start_block.to_le_bytes());
    let path = write_raw(&raw, dir, "index-into-decoy");
    images.push(
        Crafted::new("1/index-into-decoy", path, Expect::Refused).fooling(),
    );

    let mut raw = base.clone();
    let next = &b.index[k + 1];
    raw.patch_inode(&bin, at, &next.index.to_le_bytes());
    raw.patch_inode(&bin, at + 4, &next.start_block.to_le_bytes());
    let path = write_raw(&raw, dir, "index-past-hello");
    images.push(
        Crafted::new("1/index-past-hello", path, Expect::Refused).fooling(),
    );
    images
}

/// Gives the entry at `path` the inode number `number`, in its inode and
/// in its directory entry, so that the two agree.
fn renumber(raw: &mut Raw, path: &str, number: u32) {
    let entry = raw.entry(path);
    raw.patch_inode(&entry, 12, &number.to_le_bytes());
    let (parent, name) = path.rsplit_once('/').unwrap();
    let parent = if parent.is_empty() { "/" } else { parent };
    let listed = raw
        .listing(parent)
        .into_iter()
        .find(|e| e.name == name.as_bytes())
        .unwrap();
    let delta = i16::try_from(i64::from(number) - i64::from(listed.base))
        .expect("the number is within an i16 of the run's base");
    let table = raw.directory_table();
    raw.put_meta(table, listed.at + 2, &delta.to_le_bytes());
}

/// Class 2: another inode carries the inode number of the store file
/// `bin/hello`; the kernel caches inodes by number, so whichever is read
/// first is what both names show.
fn class2(dir: &Path) -> Vec<Crafted> {
    let base = raw_plain(dir, Repack::default(), "base");
    let hello = hello_path(&base);
    let number = base.entry(&format!("{hello}/bin/hello")).inode.number;
    let others = [
        ("os-release", "/etc/os-release".to_string()),
        ("store-neighbour", format!("{hello}/bin/a-{TOOL}100")),
    ];
    others
        .into_iter()
        .map(|(variant, other)| {
            let mut raw = base.clone();
            renumber(&mut raw, &other, number);
            let path = write_raw(&raw, dir, variant);
            let image = Image::open(&path).unwrap();
            let renumbered = image.entry(Path::new(&other)).unwrap();
            assert_eq!(renumbered.inode.number, number, "{variant}");
            Crafted::new(&format!("2/{variant}"), path, Expect::Refused)
                .fooling()
        })
        .collect()
}

/// Copies every store path of the extracted `tree` into `store` (a
/// directory of the tree), with `bin/hello` of the hello path tampered.
fn tampered_store_copy(tree: &Path, store: &Path) {
    fs::create_dir_all(store).unwrap();
    for path in fs::read_dir(tree.join("usr/nix/store")).unwrap() {
        let path = path.unwrap().path();
        let output = run(Command::new("cp").arg("-a").arg(&path).arg(store));
        assert!(output.status.success(), "cp: {}", stderr(&output));
    }
    let hello = fs::read_dir(store)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("-hello"))
        .unwrap();
    fs::write(hello.join("bin/hello"), "#!/bin/sh\necho tampered\n").unwrap();
}

/// Class 3: `/nix` is not the link the layout says, so `/nix/store/...`
/// in the units is not what verify hashed in `/usr/nix/store`.
fn class3(dir: &Path) -> Vec<Crafted> {
    type TreeEdit = fn(&Path);
    let variants: [(&str, TreeEdit); 3] = [
        ("real-nix-store-dir", |tree| {
            fs::remove_file(tree.join("nix")).unwrap();
            tampered_store_copy(tree, &tree.join("nix/store"));
        }),
        ("nix-links-elsewhere", |tree| {
            fs::remove_file(tree.join("nix")).unwrap();
            symlink("usr/elsewhere", tree.join("nix")).unwrap();
            tampered_store_copy(tree, &tree.join("usr/elsewhere/store"));
        }),
        ("no-nix", |tree| fs::remove_file(tree.join("nix")).unwrap()),
    ];
    variants
        .into_iter()
        .map(|(variant, edit)| {
            let path =
                repack(plain(), &dir.join(variant), Repack::default(), edit);
            Crafted::new(&format!("3/{variant}"), path, Expect::Refused)
                .fooling()
        })
        .collect()
}

/// Swaps the first two neighbours of one run of the listing of `path`
/// whose names start with different bytes (the kernel's lookup stops at
/// the first entry whose first byte is past the name's).
fn swap_neighbours(raw: &mut Raw, path: &str) {
    let entries = raw.listing(path);
    let i = entries
        .windows(2)
        .position(|w| w[0].run == w[1].run && w[0].name[0] != w[1].name[0])
        .unwrap_or_else(|| panic!("{path}: no neighbours to swap"));
    let (a, b) = (&entries[i], &entries[i + 1]);
    assert_eq!(a.at + a.len, b.at);
    let table = raw.directory_table();
    let mut swapped = raw.get_meta(table, b.at, b.len);
    swapped.extend(raw.get_meta(table, a.at, a.len));
    raw.put_meta(table, a.at, &swapped);
}

/// Class 4: two entries of a listing swapped; our reader sorts them
/// again, the kernel's lookup of the first misses it.
fn class4(dir: &Path) -> Vec<Crafted> {
    let base = raw_plain(dir, Repack::default(), "base");
    let hello = hello_path(&base);
    [
        ("store-dir", "/usr/nix/store".to_string()),
        ("bin", format!("{hello}/bin")),
    ]
    .into_iter()
    .map(|(variant, listing)| {
        let mut raw = base.clone();
        swap_neighbours(&mut raw, &listing);
        let path = write_raw(&raw, dir, variant);
        Crafted::new(&format!("4/{variant}"), path, Expect::Refused).fooling()
    })
    .collect()
}

const UNIT: &str = "/etc/systemd/system/demo.service";

/// Where the fields of a file inode are: (blocks start, its width,
/// fragment, first size word), basic or extended.
fn file_fields(raw: &Raw, entry: &Entry) -> (usize, usize, usize, usize) {
    let p = Raw::decoded(entry.inode_ref);
    let kind = raw.get_meta(raw.inode_table(), p, 2);
    match u16::from_le_bytes([kind[0], kind[1]]) {
        2 => (16, 4, 20, 32),
        9 => (16, 8, 44, 56),
        other => panic!("{}: inode type {other}", entry.path.display()),
    }
}

/// Class 5: the unit file cannot be read (the kernel gives EIO), and
/// verify skips it.
fn class5(dir: &Path) -> Vec<Crafted> {
    let mut images = Vec::new();
    let whole = Repack { no_fragments: true, ..Repack::default() };
    let base = raw_plain(dir, whole, "base-no-fragments");
    let unit = base.entry(UNIT);
    let (start, width, _, word) = file_fields(&base, &unit);
    let InodeData::File(file) = &unit.inode.data else { panic!() };
    assert!(!file.blocks.is_empty() && file.fragment.is_none());

    let mut raw = base.clone();
    let stored = file.blocks[0].0;
    assert!(stored & BlockSize::STORED != 0, "the unit's block is compressed");
    raw.patch_inode(&unit, word, &(stored & !BlockSize::STORED).to_le_bytes());
    let path = write_raw(&raw, dir, "block-marked-compressed");
    images.push(Crafted::new(
        "5/block-marked-compressed",
        path,
        Expect::Refused,
    ));

    let mut raw = base.clone();
    let beyond = raw.image.superblock().bytes_used;
    raw.patch_inode(&unit, start, &beyond.to_le_bytes()[..width]);
    let path = write_raw(&raw, dir, "block-beyond-the-image");
    images.push(Crafted::new(
        "5/block-beyond-the-image",
        path,
        Expect::Refused,
    ));

    let base = raw_plain(dir, Repack::default(), "base");
    let unit = base.entry(UNIT);
    let (_, _, fragment, _) = file_fields(&base, &unit);
    let mut raw = base.clone();
    let count = raw.image.superblock().fragment_count;
    raw.patch_inode(&unit, fragment, &count.to_le_bytes());
    let path = write_raw(&raw, dir, "fragment-out-of-range");
    images.push(Crafted::new(
        "5/fragment-out-of-range",
        path,
        Expect::Refused,
    ));

    for image in &mut images {
        let opened = Image::open(&image.path).unwrap();
        let unreadable = opened.read_file(Path::new(UNIT), u64::MAX);
        assert!(unreadable.is_err(), "{}: the unit reads", image.name);
        image.fools_kernel = true;
    }
    images
}

/// Class 6: tables the kernel refuses at mount (`squashfs_fill_super` and
/// the table readers it calls), which our reader takes.
fn class6(dir: &Path) -> Vec<Crafted> {
    let mut images = Vec::new();
    let mut add = |raw: &Raw, variant: &str| {
        let path = write_raw(raw, dir, variant);
        images.push(
            Crafted::new(&format!("6/{variant}"), path, Expect::Refused)
                .fooling(),
        );
    };
    let base = raw_plain(dir, Repack::default(), "base");
    let sb = base.image.superblock().clone();

    // The id table must end where the next table (here: bytes_used)
    // starts.
    let mut raw = base.clone();
    raw.set(sb::BYTES_USED, &(sb.bytes_used + 8).to_le_bytes());
    raw.pad();
    add(&raw, "bytes-used-8-more");

    // The id index must be within one metadata block of its last block.
    let mut raw = base.clone();
    raw.splice(sb.id_table_start as usize, 8200);
    add(&raw, "id-index-far-from-its-block");

    // More fragments than their index holds before the next table.
    let mut raw = base.clone();
    assert!(sb.fragment_count <= 512);
    raw.set(sb::FRAGMENT_COUNT, &513u32.to_le_bytes());
    add(&raw, "fragment-count-past-its-index");

    // An xattr id table with no ids, and one whose index is longer than
    // its count says.
    for (variant, tail) in [
        ("xattr-ids-none", vec![]),
        ("xattr-index-too-long", vec![sb.bytes_used, 0]),
    ] {
        let mut raw = base.clone();
        let at = sb.bytes_used as usize;
        let count = if tail.is_empty() { 0u32 } else { 1 };
        let mut table = sb.bytes_used.to_le_bytes().to_vec();
        table.extend(count.to_le_bytes());
        table.extend(0u32.to_le_bytes());
        for v in &tail {
            table.extend(v.to_le_bytes());
        }
        raw.bytes.truncate(at);
        raw.bytes.extend(&table);
        raw.set(sb::XATTR_TABLE, &sb.bytes_used.to_le_bytes());
        let used = sb.bytes_used + table.len() as u64;
        raw.set(sb::BYTES_USED, &used.to_le_bytes());
        let flags = sb.flags.0 & !Flags::NO_XATTRS;
        raw.set(sb::FLAGS, &flags.to_le_bytes());
        raw.pad();
        add(&raw, variant);
    }

    // The export table must end where the id table's first block starts.
    let exports = Repack { exports: true, ..Repack::default() };
    let with_exports = raw_plain(dir, exports, "base-exports");
    let sb = with_exports.image.superblock().clone();
    let index_end = sb.lookup_table_start as usize
        + (u64::from(sb.inode_count) * 8).div_ceil(8192) as usize * 8;
    assert_eq!(
        with_exports.u64_at(sb.id_table_start as usize),
        index_end as u64,
        "the id table's block does not follow the export index"
    );
    let mut raw = with_exports.clone();
    raw.splice(index_end, 8);
    add(&raw, "export-index-short-of-the-id-table");

    // lz4 images always have an options block.
    let lz4 = Repack { comp: Some("lz4"), ..Repack::default() };
    let base = raw_plain(dir, lz4, "base-lz4");
    let flags = base.image.superblock().flags.0;
    assert!(flags & Flags::COMPRESSOR_OPTIONS != 0);
    let mut raw = base.clone();
    raw.set(sb::FLAGS, &(flags & !Flags::COMPRESSOR_OPTIONS).to_le_bytes());
    add(&raw, "lz4-without-options");
    images
}

const MANIFEST: &str = "/usr/lib/portable-service/closure.json";
const GIB: u64 = 1 << 30;

/// Class 8: work driven by the image. Each image is also wrong, so
/// verify must refuse it (but for the big image that is right).
fn class8(dir: &Path) -> Vec<Crafted> {
    let mut images = Vec::new();
    let block = Image::open(plain()).unwrap().block_size();
    let hello = store_path_of(&Image::open(plain()).unwrap(), "-hello");

    // A 64 GiB file of sparse blocks where verify reads a whole file.
    for (variant, target) in [
        ("manifest-64-gib", MANIFEST),
        ("os-release-64-gib", "/etc/os-release"),
        ("unit-64-gib", UNIT),
    ] {
        let path = rewrite(
            plain(),
            &dir.join(variant),
            |p| {
                if p == Path::new(target) {
                    Edit::Replace(sparse_file(64 * GIB, block))
                } else {
                    Edit::Keep
                }
            },
            |_, _| {},
        );
        images.push(Crafted::new(
            &format!("8/{variant}"),
            path,
            Expect::Refused,
        ));
    }

    // A store file of 1 TiB, where the manifest records a NAR of 73 KB:
    // hashing must stop at the recorded size.
    let store_file = hello.join("bin/hello");
    let path = rewrite(
        plain(),
        &dir.join("store-file-1-tib"),
        |p| {
            if p == store_file {
                Edit::Replace(sparse_file(1024 * GIB, block))
            } else {
                Edit::Keep
            }
        },
        |_, _| {},
    );
    images.push(Crafted::new("8/store-file-1-tib", path, Expect::Refused));

    // 2000 nested directories of 255-byte names in a store path (whose
    // NAR no longer matches): every path is half a MB long.
    let path = rewrite(
        plain(),
        &dir.join("deep-long-names"),
        |_| Edit::Keep,
        |tree, nodes| {
            let mut at = nodes[&hello];
            let name = [b'n'; 255];
            for _ in 0..2000 {
                let node = plain_node(NodeKind::Directory(BTreeMap::new()));
                at = tree.add(at, &name, node).unwrap();
            }
        },
    );
    images.push(Crafted::new("8/deep-long-names", path, Expect::Refused));

    // A manifest that lists one store path 100,000 times.
    let path = repack(
        plain(),
        &dir.join("manifest-100000-times"),
        Repack { compress_data: true, ..Repack::default() },
        |tree| {
            let file = tree.join(MANIFEST.trim_start_matches('/'));
            let mut json: serde_json::Value =
                serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
            let paths = json["paths"].as_array_mut().unwrap();
            let first = paths[0].clone();
            paths.extend(std::iter::repeat_n(first, 100_000));
            fs::write(&file, serde_json::to_vec(&json).unwrap()).unwrap();
        },
    );
    images.push(Crafted::new(
        "8/manifest-100000-times",
        path,
        Expect::Refused,
    ));

    // A unit naming 30,000 paths in a store path's directory of 30,000
    // files: paths that are not there, and paths that are.
    images.push(Crafted::new(
        "8/unit-names-30000-missing",
        many_names(false),
        Expect::Refused,
    ));
    images.push(Crafted::new(
        "8/unit-names-30000-present",
        many_names(true),
        Expect::Verified,
    ));
    images
}

/// Names with bytes a terminal obeys: ESC sequences (clear the screen,
/// set the title), BEL, DEL, a C1 control (CSI, U+009B, in UTF-8).
const ESC_NAME: &[u8] = b"\x1b[2J\x1b]0;pwned\x07";
const C1_NAME: &[u8] = "x\u{9b}31m\x7f".as_bytes();
/// Not UTF-8: 0xff, and CSI as one raw byte (0x9b).
const RAW_NAME: &[u8] = b"\xff\x9b31m";

fn os(bytes: &[u8]) -> &OsStr {
    OsStr::from_bytes(bytes)
}

/// Class 9: control bytes and bytes that are not UTF-8 in what inspect
/// and verify print: os-release values, names, symlink targets, and an
/// error that names a file.
fn class9(dir: &Path) -> Vec<Crafted> {
    let mut images = Vec::new();
    let how = Repack::default();
    let path = repack(plain(), &dir.join("os-release"), how, |tree| {
        let file = tree.join("etc/os-release");
        let mut text = fs::read(&file).unwrap();
        text.extend(b"PORTABLE_PREFIXES=\x1b[31mdemo\n");
        text.extend(b"PRETTY_NAME=\x1b]0;pwned\x07\n");
        text.extend("VARIANT=\u{9b}31m\x7f\n".as_bytes());
        text.extend(b"VARIANT_ID=\x9b31m\xff\n");
        fs::write(&file, text).unwrap();
    });
    // PORTABLE_PREFIXES no longer holds the prefix 'demo'.
    images.push(Crafted::new("9/os-release-values", path, Expect::Refused));

    let path = repack(plain(), &dir.join("control-names"), how, |tree| {
        fs::create_dir_all(tree.join("bin")).unwrap();
        symlink(os(ESC_NAME), tree.join("bin").join(os(ESC_NAME))).unwrap();
        symlink(os(C1_NAME), tree.join("bin").join(os(C1_NAME))).unwrap();
        let units = tree.join("etc/systemd/system");
        let mut name = ESC_NAME.to_vec();
        name.extend(b"demo.service");
        fs::write(units.join(os(&name)), "[Service]\n").unwrap();
    });
    images.push(Crafted::new("9/control-names", path, Expect::Either));

    let path = repack(plain(), &dir.join("not-utf-8"), how, |tree| {
        fs::create_dir_all(tree.join("bin")).unwrap();
        let mut target = b"/x".to_vec();
        target.extend(RAW_NAME);
        symlink(os(&target), tree.join("bin").join(os(RAW_NAME))).unwrap();
        let units = tree.join("etc/systemd/system");
        let mut name = b"demo-".to_vec();
        name.extend(RAW_NAME);
        name.extend(b".service");
        fs::write(units.join(os(&name)), "[Service]\n").unwrap();
    });
    images.push(Crafted::new("9/not-utf-8", path, Expect::Either));

    // A file in a store path that cannot be read, named with ESC: the
    // finding names it.
    let mut hello = PathBuf::new();
    let base = repack(plain(), &dir.join("unreadable-base"), how, |tree| {
        hello = store_path_in(tree, "-hello");
        fs::write(hello.join("bin").join(os(ESC_NAME)), "x").unwrap();
    });
    let mut raw = Raw::open(&base);
    let mut file = Path::new("/usr/nix/store")
        .join(hello.file_name().unwrap())
        .join("bin")
        .into_os_string();
    file.push("/");
    file.push(os(ESC_NAME));
    let entry = raw.image.entry(Path::new(&file)).unwrap();
    let (_, _, fragment, _) = file_fields(&raw, &entry);
    let count = raw.image.superblock().fragment_count;
    raw.patch_inode(&entry, fragment, &count.to_le_bytes());
    let path = write_raw(&raw, dir, "unreadable-control-name");
    images.push(Crafted::new(
        "9/unreadable-control-name",
        path,
        Expect::Refused,
    ));
    images
}

/// The repacks and rewrites the crafted images start from, unpatched:
/// verify must pass them, or the crafted images would be refused for
/// what they share with them.
fn baselines(dir: &Path) -> Vec<Crafted> {
    let repacks = [
        ("raw", Repack::default()),
        (
            "raw-no-fragments",
            Repack { no_fragments: true, ..Repack::default() },
        ),
        ("raw-exports", Repack { exports: true, ..Repack::default() }),
        ("raw-lz4", Repack { comp: Some("lz4"), ..Repack::default() }),
        (
            "compressed-data",
            Repack { compress_data: true, ..Repack::default() },
        ),
    ];
    let mut images: Vec<Crafted> = repacks
        .into_iter()
        .map(|(name, how)| {
            let path = repack(plain(), &dir.join(name), how, |_| {});
            Crafted::new(&format!("baseline/{name}"), path, Expect::Verified)
        })
        .collect();
    let path =
        rewrite(plain(), &dir.join("rewritten"), |_| Edit::Keep, |_, _| {});
    images.push(Crafted::new("baseline/rewritten", path, Expect::Verified));
    let path =
        repack(extension(), &dir.join("extension"), Repack::default(), |_| {});
    images.push(Crafted::new("baseline/extension", path, Expect::Verified));
    images.push(Crafted::new(
        "baseline/as-built",
        plain().to_path_buf(),
        Expect::Verified,
    ));
    images
}

// ---------------------------------------------------------------------
// The kernel as the oracle

/// An image mounted read-only by the kernel; unmounted when dropped,
/// also when the test fails.
struct Mount(PathBuf);

impl Mount {
    /// Mounts `image` at `at`, or says why the kernel refused.
    fn new(image: &Path, at: &Path) -> Result<Mount, String> {
        fs::create_dir_all(at).unwrap();
        let output = run(Command::new("mount")
            .args(["-t", "squashfs", "-o", "loop,ro"])
            .arg(image)
            .arg(at));
        if !output.status.success() {
            return Err(stderr(&output).trim().to_string());
        }
        Ok(Mount(at.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        // A child another test thread forks holds this process's
        // descriptors until it execs, so the mount can be busy a moment.
        for _ in 0..20 {
            let unmounted = Command::new("umount")
                .arg(&self.0)
                .stderr(Stdio::null())
                .status();
            if unmounted.is_ok_and(|s| s.success()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Still busy: detach it now; it goes when the last user does.
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Opens `path` under `root` as a process whose root is `root` would:
/// absolute symlinks and `..` stay inside it (`RESOLVE_IN_ROOT`).
fn open_in_root(
    root: &OwnedFd,
    path: &Path,
    flags: i32,
) -> std::io::Result<OwnedFd> {
    let path = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: open_how is plain integers, for which zero is valid.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: the path and `how` outlive the call; the result is a new
    // descriptor that only this OwnedFd closes.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a descriptor the call just opened.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// How much of a file the oracle compares: files past it are compared by
/// size and their first bytes.
const COMPARED: u64 = 64 << 20;

/// Whether the kernel's bytes (`theirs`) are our reader's (`ours`), up
/// to `COMPARED`; an error says which side could not read.
fn same_bytes(
    mut ours: impl Read,
    mut theirs: impl Read,
) -> Result<bool, String> {
    let mut left = COMPARED;
    let (mut x, mut y) = (vec![0; 1 << 16], vec![0; 1 << 16]);
    while left > 0 {
        let want = x.len().min(left as usize);
        let m = read_full(&mut theirs, &mut y[..want])
            .map_err(|e| format!("the kernel cannot read it: {e}"))?;
        let n = read_full(&mut ours, &mut x[..want])
            .map_err(|e| format!("our reader cannot read it: {e}"))?;
        if x[..n] != y[..m] {
            return Ok(false);
        }
        if n < want {
            return Ok(true);
        }
        left -= n as u64;
    }
    Ok(true)
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match r.read(&mut buf[done..])? {
            0 => break,
            n => done += n,
        }
    }
    Ok(done)
}

/// The sum of the sizes of the files under `path` (a host path), stopping
/// once past `limit`; an error names the path that could not be read.
fn tree_size(path: &Path, limit: u64) -> Result<u64, String> {
    let fail = |e: std::io::Error| format!("{}: {e}", path.display());
    let meta = fs::symlink_metadata(path).map_err(fail)?;
    if !meta.is_dir() {
        return Ok(meta.len());
    }
    let mut total = 0;
    for child in fs::read_dir(path).map_err(fail)? {
        let child = child.map_err(fail)?.path();
        total += tree_size(&child, limit - total.min(limit))?;
        if total > limit {
            break;
        }
    }
    Ok(total)
}

/// How the kernel's view of `image`, mounted, differs from what `verify`
/// vouched for: every file outside the store must read as our reader
/// reads it (read first, so that an inode number two inodes share is
/// cached from there), and every store path of the manifest, resolved
/// from `/nix/store` as a service in the image resolves it (for an
/// extension, whose `/nix` is its base's, from the store directory), must
/// have the recorded NAR hash and size.
fn kernel_disagrees(image: &Path, work: &Path) -> Vec<String> {
    let mnt = work.join("mnt");
    let _mount = match Mount::new(image, &mnt) {
        Ok(mount) => mount,
        Err(why) => {
            let why = why.lines().next().unwrap_or_default().to_string();
            return vec![format!("the kernel refuses to mount it: {why}")];
        }
    };
    let reader = match Image::open(image) {
        Ok(reader) => reader,
        Err(e) => return vec![format!("our reader cannot open it: {e}")],
    };
    let root = open_in_root(
        &OwnedFd::from(File::open(&mnt).unwrap()),
        Path::new("/"),
        libc::O_PATH | libc::O_DIRECTORY,
    )
    .unwrap();
    let mut differences = Vec::new();
    let mut walked = 0;
    for entry in reader.entries() {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                differences.push(format!("our reader cannot walk it: {e}"));
                break;
            }
        };
        walked += 1;
        let skip = entry.path == Path::new("/")
            || entry.path.starts_with("/usr/nix/store")
            || walked > 100_000;
        if skip {
            continue;
        }
        if let Some(why) = entry_disagrees(&reader, &root, &entry) {
            differences.push(format!("{}: {why}", entry.path.display()));
        }
    }
    differences.extend(store_disagrees(&reader, &root));
    differences
}

/// How the kernel's view of `e`, outside the store, differs from our
/// reader's: its type, a file's size and bytes, a symlink's target.
fn entry_disagrees(
    reader: &Image,
    root: &OwnedFd,
    e: &Entry,
) -> Option<String> {
    let rel = e.path.strip_prefix("/").unwrap();
    let fd = match open_in_root(root, rel, libc::O_PATH | libc::O_NOFOLLOW) {
        Ok(fd) => fd,
        Err(err) => return Some(format!("the kernel cannot open it: {err}")),
    };
    let meta = match File::from(fd.try_clone().unwrap()).metadata() {
        Ok(meta) => meta,
        Err(err) => return Some(format!("the kernel cannot stat it: {err}")),
    };
    match e.kind() {
        EntryKind::File { size } => {
            if !meta.is_file() {
                return Some("the kernel shows no file there".into());
            }
            if meta.len() != size {
                return Some(format!(
                    "the kernel says {} bytes, our reader {size}",
                    meta.len()
                ));
            }
            let flags = libc::O_RDONLY | libc::O_NOFOLLOW;
            let theirs = match open_in_root(root, rel, flags) {
                Ok(fd) => File::from(fd),
                Err(err) => {
                    return Some(format!("the kernel cannot open it: {err}"))
                }
            };
            let ours = match reader.open_entry(e) {
                Ok(r) => r,
                Err(err) => {
                    return Some(format!("our reader cannot read it: {err}"))
                }
            };
            match same_bytes(ours, theirs) {
                Ok(true) => None,
                Ok(false) => Some("the kernel reads other bytes".into()),
                Err(err) => Some(err),
            }
        }
        EntryKind::Symlink { target } => match read_link_at(&fd) {
            Ok(t) if t == target => None,
            Ok(t) => Some(format!(
                "the kernel's target is {t:?}, our reader's {target:?}"
            )),
            Err(err) => {
                Some(format!("the kernel cannot read the link: {err}"))
            }
        },
        EntryKind::Directory if !meta.is_dir() => {
            Some("the kernel shows no directory there".into())
        }
        _ => None,
    }
}

/// The target of the symlink `fd` (opened with `O_PATH | O_NOFOLLOW`).
fn read_link_at(fd: &OwnedFd) -> std::io::Result<PathBuf> {
    let mut buf = vec![0u8; 8192];
    // SAFETY: buf is writable for its length; an empty path reads the
    // link `fd` itself.
    let n = unsafe {
        libc::readlinkat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(PathBuf::from(OsStr::from_bytes(&buf)))
}

/// The store paths of the manifest, as the kernel shows them.
fn store_disagrees(reader: &Image, root: &OwnedFd) -> Vec<String> {
    let manifest = match reader.read_file(Path::new(MANIFEST), u64::MAX) {
        Ok(bytes) => Manifest::from_json(&bytes),
        Err(e) => return vec![format!("{MANIFEST}: our reader: {e}")],
    };
    let manifest = match manifest {
        Ok(m) => m,
        Err(e) => return vec![format!("{MANIFEST}: {e:#}")],
    };
    // An extension has no /nix of its own: it is merged under the base's.
    let store =
        if manifest.base.is_some() { "usr/nix/store" } else { "nix/store" };
    let flags = libc::O_PATH | libc::O_DIRECTORY;
    let dir = match open_in_root(root, Path::new(store), flags) {
        Ok(fd) => fd,
        Err(e) => {
            return vec![format!(
                "/{store}: the kernel cannot resolve it: {e}"
            )]
        }
    };
    let dir = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    manifest
        .paths
        .iter()
        .filter_map(|info| {
            let why = store_path_disagrees(&dir, info)?;
            Some(format!("/nix/store/{}: {why}", info.path.base_name()))
        })
        .collect()
}

/// How the store path `info` in the kernel's store directory `dir`
/// differs from its manifest entry.
fn store_path_disagrees(dir: &Path, info: &PathInfo) -> Option<String> {
    let path = dir.join(info.path.base_name());
    let recorded = match parse_sha256(&info.nar_hash) {
        Ok(recorded) => recorded,
        Err(e) => return Some(format!("the manifest's hash: {e}")),
    };
    // A NAR holds more than its files' bytes: a tree whose files alone
    // are bigger than the recorded NAR is not the recorded one, and
    // hashing it could take hours.
    match tree_size(&path, info.nar_size) {
        Err(e) => {
            let e = e.replace(&format!("{}/", dir.display()), "");
            return Some(format!("the kernel cannot read {e}"));
        }
        Ok(size) if size > info.nar_size => {
            return Some(format!(
                "the kernel shows {size} bytes of files, more than the \
                 recorded NAR's {}",
                info.nar_size
            ))
        }
        Ok(_) => {}
    }
    match portable_service::nix::nar::host::digest(&path) {
        Err(e) => Some(format!("the kernel cannot read it: {e:#}")),
        Ok(d) if d.sha256 == recorded && d.size == info.nar_size => None,
        Ok(d) => Some(format!(
            "the kernel shows {d}, the manifest records {} ({} bytes)",
            info.nar_hash, info.nar_size
        )),
    }
}

// ---------------------------------------------------------------------
// The crafted images of a test run, made once and shared by the tests

/// Where the crafted images go: under cargo's scratch directory, emptied
/// the first time each set is made in a run.
fn work_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("crafted")
}

/// The crafted images of a class (0: the baselines).
fn crafted(class: usize) -> &'static [Crafted] {
    static SETS: [OnceLock<Vec<Crafted>>; 10] =
        [const { OnceLock::new() }; 10];
    let make: fn(&Path) -> Vec<Crafted> = match class {
        0 => baselines,
        1 => class1,
        2 => class2,
        3 => class3,
        4 => class4,
        5 => class5,
        6 => class6,
        8 => class8,
        9 => class9,
        _ => panic!("no class {class}"),
    };
    SETS[class].get_or_init(|| {
        let dir = work_dir().join(format!("class-{class}"));
        let _ = fs::remove_dir_all(&dir);
        make(&dir)
    })
}

const CLASSES: [usize; 9] = [0, 1, 2, 3, 4, 5, 6, 8, 9];

/// One kernel mount at a time: two mounts of one image file would share
/// a superblock and its inode cache.
static MOUNTING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn oracle(image: &Path, name: &str) -> Vec<String> {
    let _one = MOUNTING.lock().unwrap_or_else(|p| p.into_inner());
    let work = tempfile::tempdir().unwrap();
    kernel_disagrees(image, work.path())
        .into_iter()
        .map(|d| format!("{name}: {d}"))
        .collect()
}

// ---------------------------------------------------------------------
// Tests: what verify must do with each class

#[test]
fn baselines_verify() {
    assert_judged(crafted(0));
}

#[test]
fn class1_directory_index_redirect_is_refused() {
    assert_judged(crafted(1));
}

#[test]
fn class2_duplicate_inode_number_is_refused() {
    assert_judged(crafted(2));
}

#[test]
fn class3_nix_other_than_the_layouts_link_is_refused() {
    assert_judged(crafted(3));
}

#[test]
fn class4_unsorted_listing_is_refused() {
    assert_judged(crafted(4));
}

#[test]
fn class5_unreadable_unit_is_refused() {
    assert_judged(crafted(5));
}

#[test]
fn class6_tables_the_kernel_refuses_are_refused() {
    assert_judged(crafted(6));
}

#[test]
fn class8_work_driven_by_the_image_is_bounded() {
    assert_judged(crafted(8));
}

/// The first byte of `bytes` that a terminal would obey: C0 controls
/// (ESC, BEL, ...) but newline and tab, DEL, C1 controls (U+0080 to
/// U+009F in UTF-8, or as single bytes that are not UTF-8).
fn raw_control(bytes: &[u8]) -> Option<String> {
    let mut at = 0;
    for chunk in bytes.utf8_chunks() {
        for (i, c) in chunk.valid().char_indices() {
            let control = (c < ' ' && c != '\n' && c != '\t')
                || ('\u{7f}'..='\u{9f}').contains(&c);
            if control {
                return Some(format!("U+{:04X} at byte {}", c as u32, at + i));
            }
        }
        at += chunk.valid().len();
        if let Some(&b) = chunk.invalid().first() {
            if (0x80..=0x9f).contains(&b) {
                return Some(format!("the raw byte {b:#04x} at byte {at}"));
            }
        }
        at += chunk.invalid().len();
    }
    None
}

/// What is wrong with the output of `inspect`, `inspect --json` and
/// `verify` on `image`: raw control bytes in what people read, or JSON
/// that is cut off.
fn output_faults(image: &Crafted) -> Vec<String> {
    let mut faults = Vec::new();
    let runs = [image.verify(), &inspect_bounded(&image.path, false)];
    for r in runs {
        for (stream, bytes) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
            if let Some(what) = raw_control(bytes) {
                faults.push(format!(
                    "{}: {} prints {what} on {stream}: {}",
                    image.name,
                    r.what,
                    shorten(
                        &String::from_utf8_lossy(bytes)
                            .escape_debug()
                            .to_string(),
                        400
                    )
                ));
            }
        }
    }
    let json = inspect_bounded(&image.path, true);
    faults.extend(json.faults(image.size()));
    if json.code == Some(0) {
        if let Err(e) =
            serde_json::from_slice::<serde_json::Value>(&json.stdout)
        {
            faults.push(format!(
                "{}: inspect --json printed no JSON document: {e}",
                image.name
            ));
        }
    } else if !json.stdout.is_empty() {
        faults.push(format!(
            "{}: inspect --json failed ({}) after printing {} bytes: {}",
            image.name,
            json.ending(),
            json.stdout.len(),
            shorten(&json.stderr_text().escape_debug().to_string(), 300)
        ));
    }
    faults
}

#[test]
fn class9_output_is_clean() {
    let images = crafted(9);
    let mut faults = Vec::new();
    for image in images {
        faults.extend(judge(image).0);
        faults.extend(output_faults(image));
    }
    assert!(faults.is_empty(), "\n{}\n", faults.join("\n"));
}

// ---------------------------------------------------------------------
// Tests: the kernel as the oracle

/// Class 1 is what it says: through the kernel, `bin/hello` of the
/// crafted image is the decoy's bytes, where unsquashfs reads the real
/// file; our reader refuses the lookup the index misdirects.
#[test]
#[ignore = "mounts images on loop devices (root); scripts/test runs it"]
fn kernel_reads_the_decoy_through_the_index() {
    let image = crafted(1).iter().find(|c| c.name == "1/index-into-decoy");
    let image = image.unwrap();
    let reader = Image::open(&image.path).unwrap();
    let hello = store_path_of(&reader, "-hello").join("bin/hello");
    // Our reader refuses the lookup the index would misdirect.
    let refused = reader.read_file(&hello, u64::MAX).unwrap_err();
    assert!(refused.to_string().contains("the directory index"), "{refused}");
    let unsquashfs =
        crate::util::Unsquashfs::new(&image.path).cat(hello.to_str().unwrap());
    let _one = MOUNTING.lock().unwrap_or_else(|p| p.into_inner());
    let work = tempfile::tempdir().unwrap();
    let mnt = work.path().join("mnt");
    let _mount = Mount::new(&image.path, &mnt).unwrap();
    let rel = hello.strip_prefix("/usr").unwrap();
    let through_nix =
        fs::read(mnt.join("nix").join(rel.strip_prefix("nix").unwrap()));
    let kernel = fs::read(mnt.join(hello.strip_prefix("/").unwrap())).unwrap();
    eprintln!(
        "our reader: {refused}\nunsquashfs -cat: {:?}\ncat on the mount: \
         {:?}\nthrough /nix: {:?}",
        String::from_utf8_lossy(&unsquashfs),
        String::from_utf8_lossy(&kernel),
        through_nix.as_deref().map(String::from_utf8_lossy),
    );
    assert_eq!(unsquashfs, b"#!/bin/sh\necho the real hello\n");
    assert_eq!(kernel, b"a decoy\n");
    assert_eq!(through_nix.unwrap(), kernel);
}

/// Classes 1 to 6 are what they say: the kernel shows each crafted image
/// differently from our reader (or refuses to mount it).
#[test]
#[ignore = "mounts images on loop devices (root); scripts/test runs it"]
fn crafted_images_fool_the_kernel() {
    let mut faults = Vec::new();
    for class in 1..=6 {
        for image in crafted(class).iter().filter(|c| c.fools_kernel) {
            let found = oracle(&image.path, &image.name);
            match found.first() {
                Some(first) => eprintln!("{first}"),
                None => faults.push(format!(
                    "{}: the kernel reads it as our reader does",
                    image.name
                )),
            }
        }
    }
    assert!(faults.is_empty(), "\n{}\n", faults.join("\n"));
}

/// The acceptance check: whatever verify passes, the kernel reads as
/// verify vouched.
#[test]
#[ignore = "mounts images on loop devices (root); scripts/test runs it"]
fn kernel_agrees_whenever_verify_passes() {
    let mut faults = Vec::new();
    for class in CLASSES {
        for image in crafted(class) {
            if image.verify().code == Some(0) {
                faults.extend(oracle(&image.path, &image.name));
            }
        }
    }
    assert!(faults.is_empty(), "\n{}\n", faults.join("\n"));
}

// ---------------------------------------------------------------------
// Fuzzing: seeded mutations of raw repacks of real images

/// The seed of the fuzz tests; `CRAFTED_FUZZ_SEED` replaces it (to
/// explore), `CRAFTED_FUZZ_MUTANTS` the number of mutants per image.
const SEED: u64 = 0x1717_2024;
/// Mutants per base image: about 200 a second are verified on two cores;
/// a mount for each that passes makes the kernel's test slower.
const MUTANTS_PER_IMAGE: usize = 1000;
const MOUNTED_MUTANTS_PER_IMAGE: usize = 500;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// SplitMix64: small, seedable, the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// The parts of an image a mutation aims at, with how often.
struct Regions(Vec<(&'static str, std::ops::Range<usize>, u32)>);

impl Regions {
    fn of(image: &Image) -> Regions {
        let sb = image.superblock();
        let (data_start, _) = image.data_region();
        let inodes = sb.inode_table_start as usize;
        let dirs = sb.directory_table_start as usize;
        let used = sb.bytes_used as usize;
        let bytes = fs::read(image.path()).unwrap();
        let u64_at = |at: u64| {
            let at = at as usize;
            u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
        };
        // The directory table ends where the next table starts: the first
        // block of a table with an index (or, if none, its index).
        let mut starts = vec![sb.bytes_used];
        let mut indexes = vec![sb.id_table_start, sb.lookup_table_start];
        if sb.fragment_count > 0 {
            indexes.push(sb.fragment_table_start);
        }
        for index in indexes.into_iter().filter(|i| *i != NO_TABLE) {
            starts.extend([index, u64_at(index)]);
        }
        let dirs_end =
            starts.into_iter().filter(|s| *s > dirs as u64).min().unwrap();
        let dirs_end = dirs_end as usize;
        Regions(vec![
            ("superblock", 0..96, 15),
            ("data", data_start as usize..inodes, 10),
            ("inode table", inodes..dirs, 35),
            ("directory table", dirs..dirs_end, 25),
            ("other tables", dirs_end..used, 15),
        ])
    }

    fn pick(&self, rng: &mut Rng) -> (&'static str, std::ops::Range<usize>) {
        let total: u32 = self.0.iter().map(|r| r.2).sum();
        let mut x = rng.below(total as usize) as u32;
        for (name, range, weight) in &self.0 {
            if x < *weight && !range.is_empty() {
                return (name, range.clone());
            }
            x = x.saturating_sub(*weight);
        }
        ("inode table", self.0[2].1.clone())
    }
}

/// Values that sizes, counts and offsets go wrong with.
const INTERESTING: [u32; 14] = [
    0,
    1,
    2,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
];

/// Applies one to three mutations to `bytes`; says what they were.
fn mutate(bytes: &mut [u8], regions: &Regions, rng: &mut Rng) -> String {
    let mut done = Vec::new();
    for _ in 0..1 + rng.below(3) {
        let (region, range) = regions.pick(rng);
        let at = range.start + rng.below(range.len());
        let width = match rng.below(4) {
            0 | 1 => 1,
            2 => 2,
            _ => 4,
        }
        .min(bytes.len() - at);
        let old = &bytes[at..at + width];
        let old_value =
            old.iter().rev().fold(0u64, |v, b| v << 8 | u64::from(*b));
        let mask = u64::MAX >> (64 - 8 * width);
        let mut value: u64 = match (width, rng.below(4)) {
            (1, 0) => old_value ^ 1 << rng.below(8),
            (1, _) => rng.next() & 0xff,
            (_, 0) => old_value.wrapping_add(1),
            (_, 1) => old_value.wrapping_sub(1),
            _ => u64::from(INTERESTING[rng.below(INTERESTING.len())]),
        } & mask;
        if value == old_value {
            value ^= 1;
        }
        bytes[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
        done.push(format!(
            "{region} byte {at} ({width} bytes): {old_value:#x} -> {value:#x}"
        ));
    }
    done.join("; ")
}

/// The images the fuzz tests mutate: raw repacks of the plain image (with
/// fragments, and with an export table) and of an extension image.
fn fuzz_bases() -> &'static [(String, PathBuf)] {
    static BASES: OnceLock<Vec<(String, PathBuf)>> = OnceLock::new();
    BASES.get_or_init(|| {
        let dir = work_dir().join("fuzz-bases");
        let _ = fs::remove_dir_all(&dir);
        let exports = Repack { exports: true, ..Repack::default() };
        [
            ("plain", plain(), Repack::default()),
            ("plain-exports", plain(), exports),
            ("extension", extension(), Repack::default()),
        ]
        .into_iter()
        .map(|(name, image, how)| {
            let path = repack(image, &dir.join(name), how, |_| {});
            (name.to_string(), path)
        })
        .collect()
    })
}

/// One mutant that went wrong.
struct FuzzFault {
    index: usize,
    base: String,
    mutation: String,
    fault: String,
    kept: PathBuf,
}

/// Runs verify on `per_image` mutants of each base image, on two threads;
/// `check` says what is wrong with a mutant, given verify's run. Mutant
/// `i` depends only on the seed and `i`, so a failure can be made again.
fn fuzz(
    seed: u64,
    name: &str,
    per_image: usize,
    check: impl Fn(&Path, &Run) -> Vec<String> + Sync,
) -> (usize, BTreeMap<String, usize>, Vec<FuzzFault>) {
    let count = env_or("CRAFTED_FUZZ_MUTANTS", per_image);
    let work = work_dir().join(format!("fuzz-{name}"));
    let _ = fs::remove_dir_all(&work);
    let bases: Vec<(String, Vec<u8>, Regions)> = fuzz_bases()
        .iter()
        .map(|(name, path)| {
            let image = Image::open(path).unwrap();
            (name.clone(), fs::read(path).unwrap(), Regions::of(&image))
        })
        .collect();
    let total = count * bases.len();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new((BTreeMap::new(), Vec::new()));
    std::thread::scope(|s| {
        for worker in 0..2 {
            let (bases, next, results, check, work) =
                (&bases, &next, &results, &check, &work);
            s.spawn(move || loop {
                let i =
                    next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let (base, bytes, regions) = &bases[i % bases.len()];
                let mut rng =
                    Rng(seed ^ (i as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
                let mut mutant = bytes.clone();
                let mutation = mutate(&mut mutant, regions, &mut rng);
                let base_path = &fuzz_bases()[i % bases.len()].1;
                let dir = work.join(format!("worker-{worker}"));
                fs::create_dir_all(&dir).unwrap();
                let path = dir.join(base_path.file_name().unwrap());
                fs::write(&path, &mutant).unwrap();
                let verify = verify_bounded(&path);
                let mut faults = verify.faults(mutant.len() as u64);
                if faults.is_empty() {
                    faults = check(&path, &verify);
                }
                let mut results = results.lock().unwrap();
                *results.0.entry(verify.ending()).or_insert(0) += 1;
                if !faults.is_empty() {
                    let kept = work
                        .join(format!("failed-{i}"))
                        .join(base_path.file_name().unwrap());
                    fs::create_dir_all(kept.parent().unwrap()).unwrap();
                    fs::write(&kept, &mutant).unwrap();
                    results.1.push(FuzzFault {
                        index: i,
                        base: base.clone(),
                        mutation,
                        fault: faults.join("; "),
                        kept,
                    });
                }
            });
        }
    });
    let (endings, faults) = results.into_inner().unwrap();
    (total, endings, faults)
}

fn fuzz_report(
    seed: u64,
    started: Instant,
    (total, endings, mut faults): (
        usize,
        BTreeMap<String, usize>,
        Vec<FuzzFault>,
    ),
) {
    eprintln!(
        "seed {seed:#x}: {total} mutants in {:.1} s; verify: {endings:?}",
        started.elapsed().as_secs_f64()
    );
    faults.sort_by_key(|f| f.index);
    let lines: Vec<String> = faults
        .iter()
        .take(30)
        .map(|f| {
            format!(
                "seed {seed:#x} mutant {} of {} ({}; kept at {}): {}",
                f.index,
                f.base,
                f.mutation,
                f.kept.display(),
                f.fault
            )
        })
        .collect();
    assert!(
        faults.is_empty(),
        "{} of {total} mutants went wrong (seed {seed:#x}; \
         CRAFTED_FUZZ_SEED and CRAFTED_FUZZ_MUTANTS make them again):\n{}\n",
        faults.len(),
        lines.join("\n")
    );
}

/// Verify never crashes or panics on a mutant, and stays within the
/// bounds: 2 s of CPU, 256 MiB.
#[test]
fn fuzz_verify_stays_bounded() {
    let seed = env_or("CRAFTED_FUZZ_SEED", SEED);
    let started = Instant::now();
    eprintln!("seed {seed:#x}");
    let result = fuzz(seed, "bounded", MUTANTS_PER_IMAGE, |_, _| Vec::new());
    fuzz_report(seed, started, result);
}

/// And whenever verify passes a mutant, the kernel reads it as verify
/// vouched (another seed: other mutants).
#[test]
#[ignore = "mounts images on loop devices (root); scripts/test runs it"]
fn fuzz_kernel_agrees_whenever_verify_passes() {
    let seed = env_or("CRAFTED_FUZZ_SEED", SEED).wrapping_add(1);
    let started = Instant::now();
    eprintln!("seed {seed:#x}");
    let result =
        fuzz(seed, "oracle", MOUNTED_MUTANTS_PER_IMAGE, |path, verify| {
            if verify.code == Some(0) {
                oracle(path, "mutant")
            } else {
                Vec::new()
            }
        });
    fuzz_report(seed, started, result);
}
