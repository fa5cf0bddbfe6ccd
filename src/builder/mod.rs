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
6. `output` writes the image file in its `format`: `mksquashfs` runs
   mksquashfs on the `stream` of that tree, a tar archive that `tar`
   writes and that reads the store as it goes, and for a disk image
   `crate::ddi` puts the squashfs in a partition beside its hash tree;
7. `summary` tells the build log what was done.

A layered image (`layers`) is built by three kinds of job: each layer and
the final layer go through the same steps, and the assembly joins their
squashfs files into the image.
*/

use std::time::Instant;

use anyhow::Result;

use crate::builder::attrs::{Attrs, Job};
use crate::builder::base::BaseImage;
use crate::builder::config::Config;

pub mod attrs;
pub mod base;
pub mod closure;
pub mod compression;
pub mod config;
pub mod format;
pub mod layers;
pub mod mksquashfs;
pub mod mount_points;
pub mod output;
pub mod placement;
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
        Job::Sysupdate(attrs) => {
            crate::host::write(&attrs.host, attrs.outputs.out()?)
        }
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
    output::write(
        &config.squashfs,
        &tree,
        &config.output_path(),
        config.format,
        started,
    )
}
