/*!
The image file, written in its output directory: a squashfs that
mksquashfs makes from the image's tree, or a disk image made from it. A
failure leaves nothing behind.
*/

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::builder::format::ImageFormat;
use crate::builder::mksquashfs;
use crate::builder::summary::{CpuTime, Summary};
use crate::builder::tree::{Node, Tree};
use crate::ddi;

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
