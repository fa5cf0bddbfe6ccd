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
use std::time::Instant;

use anyhow::{Context, Result};

use crate::build::attrs::Attrs;
use crate::build::base::BaseImage;
use crate::build::config::Config;
use crate::build::summary::{CpuTime, Summary};
use crate::build::tree::Node;

pub mod attrs;
pub mod base;
pub mod closure;
pub mod compression;
pub mod config;
pub mod mksquashfs;
pub mod mount_points;
pub mod plan;
pub mod stream;
pub mod summary;
pub mod symlink;
pub mod tar;
pub mod tree;
pub mod units;

/// Builds the image that `.attrs.json` describes, where Nix put it.
pub fn run() -> Result<()> {
    let started = Instant::now();
    let config = Config::from_attrs(Attrs::read(&Attrs::locate()?)?)?;
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
    let tree = plan::plan(&config, &units, base.as_ref())?;
    symlink::check_no_units_through(&tree)?;

    let created_out = !config.out.exists();
    fs::create_dir_all(&config.out)
        .with_context(|| format!("creating {}", config.out.display()))?;
    let settings = mksquashfs::Settings {
        mksquashfs: &config.mksquashfs,
        compression: &config.compression,
        block_size: config.block_size,
        processors: processors(),
    };
    let image = config.image_path();
    let stats = match mksquashfs::write_image(&settings, &tree, &image) {
        Ok(stats) => stats,
        Err(err) => {
            if created_out {
                let _ = fs::remove_dir(&config.out);
            }
            return Err(err);
        }
    };
    let image_bytes = fs::metadata(&image)
        .with_context(|| format!("reading {}", image.display()))?
        .len();
    let store_paths = tree
        .iter()
        .filter(|(_, node)| matches!(node, Node::StorePath(_)))
        .count();
    let cpu = CpuTime::now();
    let summary = Summary {
        image: config.file_name.clone(),
        store_paths,
        files: stats.files,
        bytes_in: stats.bytes,
        image_bytes,
        seconds: started.elapsed().as_secs_f64(),
        cpu_builder: cpu.own.as_secs_f64(),
        cpu_mksquashfs: cpu.children.as_secs_f64(),
    };
    eprint!("{}", summary.render());
    Ok(())
}

/// `$NIX_BUILD_CORES`, where 0 means every core, as in Nix.
fn processors() -> usize {
    let all = || std::thread::available_parallelism().map_or(1, |n| n.get());
    match std::env::var("NIX_BUILD_CORES").ok().and_then(|n| n.parse().ok()) {
        Some(0) | None => all(),
        Some(n) => n,
    }
}
