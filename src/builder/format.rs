/*!
The `format` argument: what the image file is. `squashfs`, the default,
is the squashfs itself, as nixpkgs' portableService writes it; `ddi` is
a Discoverable Disk Image (`crate::ddi`) holding that squashfs with its
dm-verity hash tree, for the architecture the image's services run on.
*/

use anyhow::{bail, Result};

use crate::builder::attrs::FormatAttrs;
use crate::ddi::Architecture;

pub const FORMATS: [&str; 2] = ["squashfs", "ddi"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    Squashfs,
    Ddi(Architecture),
}

impl ImageFormat {
    pub fn from_attrs(attrs: &FormatAttrs) -> Result<ImageFormat> {
        ImageFormat::parse(&attrs.format, &attrs.host_system)
    }

    /// `format` for services that run on `system`, a Nix system double
    /// such as `x86_64-linux`.
    pub fn parse(format: &str, system: &str) -> Result<ImageFormat> {
        match format {
            "squashfs" => Ok(ImageFormat::Squashfs),
            "ddi" => match Architecture::from_nix_system(system) {
                Some(architecture) => Ok(ImageFormat::Ddi(architecture)),
                None => bail!(
                    "format 'ddi' needs a root partition type for '{system}', \
                     and the Discoverable Partitions Specification has none"
                ),
            },
            _ => {
                bail!("format '{format}' is not one of {}", FORMATS.join(", "))
            }
        }
    }
}
