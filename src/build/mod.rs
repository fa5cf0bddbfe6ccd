/*!
The build: read `.attrs.json`, validate it, read the base (for an
extension), find the units, plan the tree, write the image, and tell the
build log what it did.
*/

use std::fs;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::build::attrs::Attrs;
use crate::build::base::BaseImage;
use crate::build::config::Config;
use crate::build::cpu_time::CpuTime;
use crate::build::stream::Stats;
use crate::build::tree::Node;

pub mod attrs;
pub mod base;
pub mod closure;
pub mod compression;
pub mod config;
pub mod cpu_time;
pub mod mksquashfs;
pub mod plan;
pub mod stream;
pub mod symlink;
pub mod tar;
pub mod tree;
pub mod units;

pub fn run(attrs_file: &Path) -> Result<()> {
    let started = Instant::now();
    let config = Config::from_attrs(Attrs::read(attrs_file)?)?;
    let base = match &config.base {
        Some(base) => {
            let base = BaseImage::read(&base.image)?;
            base.check_prefix(&config.pname)?;
            Some(base)
        }
        None => None,
    };
    let units = units::resolve(&config.units, &config.pname)?;
    let tree = plan::plan(&config, &units, base.as_ref())?;

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
    let summary = Summary {
        store_paths,
        stats,
        image_bytes,
        seconds: started.elapsed().as_secs_f64(),
        cpu: CpuTime::now(),
    };
    eprintln!("{}", summary.render(&config));
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

struct Summary {
    store_paths: usize,
    stats: Stats,
    image_bytes: u64,
    seconds: f64,
    cpu: CpuTime,
}

impl Summary {
    fn render(&self, config: &Config) -> String {
        let Summary { store_paths, stats, image_bytes, seconds, cpu } = self;
        let ratio = if stats.bytes == 0 {
            0.0
        } else {
            100.0 * *image_bytes as f64 / stats.bytes as f64
        };
        format!(
            "portable-service-builder: {}: {} store paths, {} files, {} \
             bytes in, {image_bytes} bytes of image ({ratio:.1}%), \
             {seconds:.2} s (CPU: builder {:.2} s, mksquashfs {:.2} s)",
            config.file_name,
            store_paths,
            stats.files,
            stats.bytes,
            cpu.own.as_secs_f64(),
            cpu.children.as_secs_f64(),
        )
    }
}
