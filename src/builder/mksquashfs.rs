/*!
Runs the configured `mksquashfs` on the archive of a planned tree.

The archive goes to `mksquashfs - IMAGE -tar` through a pipe, so the build
needs no disk beyond the image. The flags make the image depend only on
the tree and the settings: every file owned by root, a root directory of
mode 755, no xattrs, and `SOURCE_DATE_EPOCH=0` for the superblock's time
(the archive's times are 0 already). The thread count does not change the
bytes. The image is written under a temporary name and renamed when
mksquashfs succeeds; on failure nothing is left.
*/

use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::atomic_write::write_atomically;
use crate::builder::attrs::SquashfsAttrs;
use crate::builder::compression::{self, Compression};
use crate::builder::stream::{self, Stats};
use crate::builder::tree::Tree;
use crate::pipe;

/// How a job writes its squashfs: the `squash-compression` and
/// `squash-block-size` arguments, the configured mksquashfs, and the
/// cores Nix gives the job.
#[derive(Clone, Debug)]
pub struct Settings {
    pub mksquashfs: PathBuf,
    pub compression: Compression,
    pub block_size: u32,
    pub processors: usize,
}

impl Settings {
    pub fn from_attrs(attrs: &SquashfsAttrs) -> Result<Settings> {
        Ok(Settings {
            mksquashfs: attrs.mksquashfs.clone(),
            compression: Compression::parse(&attrs.squash_compression)?,
            block_size: compression::parse_block_size(
                &attrs.squash_block_size,
            )?,
            processors: processors(),
        })
    }

    fn args(&self, image: &Path) -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> =
            vec!["-".into(), image.into(), "-tar".into()];
        for flag in [
            "-noappend",
            "-exit-on-error",
            "-quiet",
            "-no-progress",
            "-no-exports",
            "-no-xattrs",
            "-all-root",
        ] {
            args.push(flag.into());
        }
        args.extend(["-root-mode".into(), "755".into()]);
        args.extend([
            "-processors".into(),
            self.processors.to_string().into(),
        ]);
        args.extend(["-b".into(), self.block_size.to_string().into()]);
        args.extend(
            self.compression.mksquashfs_args().into_iter().map(Into::into),
        );
        args
    }
}

/// Writes `tree` as a squashfs image at `image`.
pub fn write_image(
    settings: &Settings,
    tree: &Tree,
    image: &Path,
) -> Result<Stats> {
    write_atomically(
        image,
        // mksquashfs opens the file it is given, which exists already,
        // with O_TRUNC (-noappend): it writes into our file.
        |partial, _| run(settings, tree, partial),
        |what, err| anyhow::Error::new(err).context(what),
    )
}

fn run(settings: &Settings, tree: &Tree, partial: &Path) -> Result<Stats> {
    let mksquashfs = &settings.mksquashfs;
    let mut child = Command::new(mksquashfs)
        .args(settings.args(partial))
        .env_clear()
        .env("SOURCE_DATE_EPOCH", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", mksquashfs.display()))?;
    let stdin = child.stdin.take().expect("stdin is piped");
    widen_pipe(&stdin);
    // 1 MiB of buffer keeps the pipe busy with few writes.
    let written =
        stream::write(tree, BufWriter::with_capacity(1 << 20, stdin));
    let mksquashfs_closed_pipe = written.as_ref().is_err_and(pipe::closed);
    if written.is_err() && !mksquashfs_closed_pipe {
        // mksquashfs must not finish an image from a truncated archive.
        let _ = child.kill();
    }
    let status = child
        .wait()
        .with_context(|| format!("waiting for {}", mksquashfs.display()))?;
    if (mksquashfs_closed_pipe || written.is_ok()) && !status.success() {
        bail!("{} failed ({status})", mksquashfs.display());
    }
    written.context("writing the archive for mksquashfs")
}

/// Grows the pipe to mksquashfs from 64 KiB to 1 MiB (Linux's default
/// limit for unprivileged processes), so that each of the archive's 1 MiB
/// writes goes in at once instead of waking both sides sixteen times. Only
/// an optimisation: a failure leaves the pipe as it was.
fn widen_pipe(pipe: &std::process::ChildStdin) {
    use std::os::fd::AsRawFd;
    // SAFETY: F_SETPIPE_SZ on a pipe this process owns changes only its
    // capacity.
    unsafe {
        libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20);
    }
}

/// `$NIX_BUILD_CORES`, where 0 means every core, as in Nix.
fn processors() -> usize {
    let all = || std::thread::available_parallelism().map_or(1, |n| n.get());
    match std::env::var("NIX_BUILD_CORES").ok().and_then(|n| n.parse().ok()) {
        Some(0) | None => all(),
        Some(n) => n,
    }
}
