/*!
The write side: what Nix runs to build an image, a pipeline of one module
per step.

1. `attrs` reads `.attrs.json` as Nix wrote it, a plain mirror of it;
2. `config` validates it into the build's settings, with the argument
   rules of `compression`, `symlink` and `crate::systemd`; `closure` is
   the closure Nix exported, typed and checked;
3. `base` reads an extension's base image, through `crate::image`;
4. `units` finds the unit files in the store;
5. `plan` lays the image out as a `tree`, a plain value;
6. `mksquashfs` runs mksquashfs on the `stream` of that tree, a tar
   archive that `tar` writes and that reads the store as it goes;
7. `summary` tells the build log what was done.
*/

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::build::attrs::{Attrs, Job};
use crate::build::base::BaseImage;
use crate::build::config::Config;
use crate::build::format::ImageFormat;
use crate::build::summary::{CpuTime, Summary};
use crate::build::tree::{Node, Tree};
use crate::ddi;

pub mod attrs;
pub mod base;
pub mod closure;
pub mod compression;
pub mod config;
pub mod format;
pub mod layers;
pub mod mksquashfs;
pub mod mount_points;
pub mod plan;
pub mod stream;
pub mod summary;
pub mod symlink;
pub mod tar;
pub mod tree;
pub mod units;

/// Does the job that `.attrs.json` describes, where Nix put it.
pub fn run() -> Result<()> {
    let started = Instant::now();
    match Job::read(&attrs::locate()?)? {
        Job::Image(attrs) => image(*attrs, started),
        Job::Layer(attrs) => layers::layer(attrs, started),
        Job::Assemble(attrs) => layers::assemble(attrs, started),
    }
}

/// An image, or the final layer of a layered one.
fn image(attrs: Attrs, started: Instant) -> Result<()> {
    let config = Config::from_attrs(attrs)?;
    let base = match &config.base {
        Some(base) => {
            let base = BaseImage::read(&base.image)?;
            base.check_prefix(&config.pname)?;
            Some(base)
        }
        None => None,
    };
    let units = units::resolve(&config.units, &config.pname)?;
    for warning in units.iter().flat_map(|u| &u.warnings) {
        eprintln!("portable-service-builder: warning: {warning}");
    }
    let mut tree = plan::plan(&config, &units, base.as_ref())?;
    symlink::check_no_units_through(&tree)?;
    tree.remove_store_paths(&config.layered);
    let settings = mksquashfs::Settings {
        mksquashfs: &config.mksquashfs,
        compression: &config.compression,
        block_size: config.block_size,
        processors: processors(),
    };
    write(&settings, &tree, &config.output_path(), config.format, started)
}

/// Writes `tree` as `file` in `format`, in its output directory, which a
/// failure leaves as it was; then tells the build log what it did.
pub fn write(
    settings: &mksquashfs::Settings,
    tree: &Tree,
    file: &Path,
    format: ImageFormat,
    started: Instant,
) -> Result<()> {
    let (stats, disk_image) = in_output(file, format, |squashfs| {
        mksquashfs::write_image(settings, tree, squashfs)
    })?;
    let image_bytes = fs::metadata(file)
        .with_context(|| format!("reading {}", file.display()))?
        .len();
    let store_paths = tree
        .iter()
        .filter(|(_, node)| matches!(node, Node::StorePath(_)))
        .count();
    let cpu = CpuTime::now();
    let summary = Summary {
        image: file.file_name().unwrap_or_default().to_string_lossy().into(),
        store_paths,
        files: stats.files,
        bytes_in: stats.bytes,
        image_bytes,
        seconds: started.elapsed().as_secs_f64(),
        cpu_builder: cpu.own.as_secs_f64(),
        cpu_mksquashfs: cpu.children.as_secs_f64(),
        disk_image_seconds: disk_image.map(|d| d.as_secs_f64()),
    };
    eprint!("{}", summary.render());
    Ok(())
}

/// Makes `file` in `format` from the squashfs that `make` writes at the
/// path it is given: `file` itself, or for a disk image a file beside it
/// that becomes its root partition, in which case it also returns how long
/// making the disk image took. On failure nothing is left, not even the
/// output directory when this made it.
pub fn in_output<T>(
    file: &Path,
    format: ImageFormat,
    make: impl FnOnce(&Path) -> Result<T>,
) -> Result<(T, Option<Duration>)> {
    let out = file.parent().expect("an output file is in its output");
    let created_out = !out.exists();
    fs::create_dir_all(out)
        .with_context(|| format!("creating {}", out.display()))?;
    let made = match format {
        ImageFormat::Squashfs => make(file).map(|made| (made, None)),
        ImageFormat::Ddi(architecture) => {
            let name = file.file_name().unwrap_or_default().to_string_lossy();
            let squashfs = file.with_file_name(format!(".{name}.squashfs"));
            let made = make(&squashfs).and_then(|made| {
                let started = Instant::now();
                ddi::build(&squashfs, architecture, file)
                    .context("making the disk image")?;
                Ok((made, Some(started.elapsed())))
            });
            let _ = fs::remove_file(&squashfs);
            made
        }
    };
    if made.is_err() && created_out {
        let _ = fs::remove_dir(out);
    }
    made
}

/// `$NIX_BUILD_CORES`, where 0 means every core, as in Nix.
fn processors() -> usize {
    let all = || std::thread::available_parallelism().map_or(1, |n| n.get());
    match std::env::var("NIX_BUILD_CORES").ok().and_then(|n| n.parse().ok()) {
        Some(0) | None => all(),
        Some(n) => n,
    }
}
