/*!
Layered images: an image built as several layers, each compressed by
mksquashfs in a derivation of its own, so that Nix caches each, builds
them in parallel (or on other machines), and a change to the service
rebuilds only the final layer and the assembly.

A layer holds the store paths of its roots' closure that no earlier layer
holds (nor, for an extension image, its base), under the image's store
directory. The final layer is the image job (`crate::builder::image`) with
what the layers hold left out: units, scaffold, manifest, symlinks and
every other store path. The assembly puts the layers' compressed blocks,
as they are, into one ordinary squashfs image with the tree of the
unlayered image (`crate::squashfs::assemble`); it never decompresses
them.
*/

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::builder::attrs::{AssembleAttrs, LayerAttrs};
use crate::builder::base::BaseImage;
use crate::builder::closure::Closure;
use crate::builder::format::ImageFormat;
use crate::builder::mksquashfs::Settings;
use crate::builder::output;
use crate::builder::summary::AssemblySummary;
use crate::builder::tree::{ImagePath, Node, Tree};
use crate::layout::layout;
use crate::nix::store_path::StorePath;
use crate::squashfs;

/// Builds one layer.
pub fn layer(attrs: LayerAttrs, started: Instant) -> Result<()> {
    let settings = Settings::from_attrs(&attrs.squashfs)?;
    let closure = Closure::new(attrs.closure)?;
    let mut held: BTreeSet<StorePath> =
        attrs.earlier.into_iter().map(|i| i.path).collect();
    if let Some(base) = &attrs.base {
        held.extend(BaseImage::read(&base.image)?.paths);
    }
    let tree = layer_tree(closure.paths().filter(|p| !held.contains(p)))?;
    let file = attrs.outputs.out()?.join(&attrs.output_file);
    output::write(&settings, &tree, &file, ImageFormat::Squashfs, started)
}

/// The tree of a layer holding `paths`: the image's store directory, with
/// them in it. A layer whose roots earlier layers hold already is empty
/// but for the directory.
pub fn layer_tree<'a>(
    paths: impl Iterator<Item = &'a StorePath>,
) -> Result<Tree> {
    let store_dir = ImagePath::parse(&layout().store_dir)
        .expect("the layout is normalised");
    let mut tree = Tree::new();
    tree.insert(store_dir.clone(), Node::Dir { mode: 0o755 })?;
    for path in paths {
        let node = Node::StorePath(path.clone());
        tree.insert(store_dir.join(path.base_name()), node)?;
    }
    Ok(tree)
}

/// Assembles the image from its layers' files.
pub fn assemble(attrs: AssembleAttrs, started: Instant) -> Result<()> {
    let format = ImageFormat::from_attrs(&attrs.format)?;
    let image = attrs.outputs.out()?.join(&attrs.file_name);
    let layers: Vec<&Path> =
        attrs.layers.iter().map(|p| p.as_path()).collect();
    let (stats, disk_image) = output::in_output(&image, format, |squashfs| {
        squashfs::assemble(&layers, squashfs)
            .context("assembling the image from its layers")
    })?;
    let image_bytes = fs::metadata(&image)
        .with_context(|| format!("reading {}", image.display()))?
        .len();
    let summary = AssemblySummary {
        image: attrs.file_name,
        layers: stats.layers,
        entries: stats.entries,
        data_bytes: stats.data_bytes,
        image_bytes,
        seconds: started.elapsed().as_secs_f64(),
        disk_image_seconds: disk_image.map(|d| d.as_secs_f64()),
    };
    eprint!("{}", summary.render());
    Ok(())
}
