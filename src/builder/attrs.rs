/*!
The builder's input: `.attrs.json`, written by Nix for a derivation with
`__structuredAttrs = true`.

This is a plain mirror of what `nix/portable-service.nix` puts in the
derivation, plus what Nix adds: `outputs` and the closures that
`exportReferencesGraph` asks for. Keys the builder does not use are
ignored, so Nix may add more (it added `valid` to closure entries once).
`attrsVersion` names the version of this contract; both sides change it
together.

A derivation is one of four jobs, by its `kind`:

- `image` (the default): an image, or the final layer of a layered image
  (`layered` then names the store paths the other layers hold, which it
  leaves out, and `outputFile` the file it writes), with `roots`, the
  store paths its arguments name, and `packageMeta`, what `nix/meta.nix`
  found of their packages (see `crate::manifest::meta`), for the
  manifest;
- `layer`: one layer of a layered image, the store paths of its roots'
  closure that earlier layers (and an extension's base) do not hold;
- `assemble`: the image made of the layers' files;
- `sysupdate`: no image, but what a host needs to follow a feed of one
  (`crate::host`).
*/

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::manifest::meta::PackageMeta;
use crate::nix::path_info::PathInfo;
use crate::nix::store_path::StorePath;

/// 3: `roots` and `packageMeta` (2 had neither).
pub const ATTRS_VERSION: u32 = 3;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attrs {
    pub attrs_version: u32,
    pub pname: String,
    pub version: String,
    pub units: Vec<UnitAttr>,
    pub symlinks: Vec<SymlinkAttr>,
    pub mount_points: Vec<MountPointAttr>,
    pub description: Option<String>,
    pub homepage: Option<String>,
    #[serde(flatten)]
    pub squashfs: SquashfsAttrs,
    pub closure: Vec<PathInfo>,
    /// The store paths the arguments name: the roots of `closure`.
    pub roots: Vec<StorePath>,
    /// What nixpkgs' `meta` says of the derivations the Nix function
    /// reached, with their output paths (outside the closure among them).
    pub package_meta: Vec<PackageMetaAttr>,
    #[serde(flatten)]
    pub outputs: Outputs,
    /// For an extension image: the image it extends.
    pub base: Option<BaseArg>,
    /// For the final layer: what the other layers hold.
    #[serde(default)]
    pub layered: Vec<PathInfo>,
    /// For the final layer: the file it writes (else `<pname>_<version>.raw`).
    pub output_file: Option<String>,
    #[serde(flatten)]
    pub format: FormatAttrs,
}

/// One entry of `packageMeta`: a derivation's output paths and its meta.
#[derive(Debug, Deserialize)]
pub struct PackageMetaAttr {
    pub paths: Vec<StorePath>,
    #[serde(flatten)]
    pub meta: PackageMeta,
}

/// A layer of a layered image.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerAttrs {
    #[serde(flatten)]
    pub squashfs: SquashfsAttrs,
    /// The closure of the layer's roots.
    pub closure: Vec<PathInfo>,
    /// The closure of the earlier layers' roots.
    #[serde(default)]
    pub earlier: Vec<PathInfo>,
    /// For a layer of an extension image: the image it extends.
    pub base: Option<BaseArg>,
    pub output_file: String,
    #[serde(flatten)]
    pub outputs: Outputs,
}

/// The assembly of a layered image from its layers.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssembleAttrs {
    /// The layers' files, in order, the final layer last.
    pub layers: Vec<PathBuf>,
    pub file_name: String,
    #[serde(flatten)]
    pub format: FormatAttrs,
    #[serde(flatten)]
    pub outputs: Outputs,
}

/// How a job that writes a squashfs writes it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SquashfsAttrs {
    pub squash_compression: String,
    pub squash_block_size: String,
    /// The `mksquashfs` executable of the configured squashfs-tools.
    pub mksquashfs: PathBuf,
}

/// What Nix adds to every job: where its outputs go.
#[derive(Debug, Deserialize)]
pub struct Outputs {
    pub outputs: BTreeMap<String, PathBuf>,
}

impl Outputs {
    /// The output `out`.
    pub fn out(&self) -> Result<&Path> {
        self.outputs
            .get("out")
            .map(PathBuf::as_path)
            .context(".attrs.json has no output 'out'")
    }
}

/// What the image file is, for the jobs that write one.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FormatAttrs {
    /// `squashfs` or `ddi`.
    pub format: String,
    /// The Nix system the image's services run on.
    pub host_system: String,
}

/// What a derivation asks the builder to do.
#[derive(Debug)]
pub enum Job {
    Image(Box<Attrs>),
    Layer(LayerAttrs),
    Assemble(AssembleAttrs),
    Sysupdate(SysupdateAttrs),
}

/// What `passthru.sysupdate` asks for: the host's settings, and where
/// their tree goes.
#[derive(Debug, Deserialize)]
pub struct SysupdateAttrs {
    #[serde(flatten)]
    pub host: crate::host::HostAttrs,
    #[serde(flatten)]
    pub outputs: Outputs,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct BaseArg {
    /// The base's image file.
    pub image: PathBuf,
    pub pname: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnitAttr {
    /// The unit's file name when it is a single file.
    pub name: String,
    /// The store path: a unit file, or a directory of unit files.
    pub path: PathBuf,
    /// True when the user named the unit explicitly (`{ name; file; }`),
    /// so that `path` must be a single file.
    pub explicit_name: bool,
}

#[derive(Debug, Deserialize)]
pub struct MountPointAttr {
    pub path: String,
    /// "directory" or "file".
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Deserialize)]
pub struct SymlinkAttr {
    pub object: String,
    pub symlink: String,
}

/// Where Nix put `.attrs.json`: `$NIX_ATTRS_JSON_FILE` when that file
/// exists (Nix 2.8 sets the variable to a path outside its sandbox), else
/// `$NIX_BUILD_TOP/.attrs.json`.
pub fn locate() -> Result<PathBuf> {
    if let Some(file) = std::env::var_os("NIX_ATTRS_JSON_FILE") {
        let file = PathBuf::from(file);
        if file.exists() {
            return Ok(file);
        }
    }
    let top = std::env::var_os("NIX_BUILD_TOP").map(PathBuf::from);
    match top.map(|top| top.join(".attrs.json")) {
        Some(file) if file.exists() => Ok(file),
        _ => bail!(
            "found no .attrs.json: neither $NIX_ATTRS_JSON_FILE nor \
             $NIX_BUILD_TOP/.attrs.json exists (the builder runs in a \
             derivation with __structuredAttrs = true)"
        ),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    attrs_version: u32,
    #[serde(default)]
    kind: Option<String>,
}

impl Job {
    /// Reads the job `.attrs.json` at `path` describes.
    pub fn read(path: &Path) -> Result<Job> {
        let parsing = || format!("parsing {}", path.display());
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading {}", path.display()))?;
        let header: Header =
            serde_json::from_str(&text).with_context(parsing)?;
        if header.attrs_version != ATTRS_VERSION {
            bail!(
                "{} has attrsVersion {}, but this builder reads version \
                 {ATTRS_VERSION}: the Nix function and the builder come \
                 from different releases",
                path.display(),
                header.attrs_version
            );
        }
        let job = match header.kind.as_deref() {
            None | Some("image") => {
                Job::Image(serde_json::from_str(&text).with_context(parsing)?)
            }
            Some("layer") => {
                Job::Layer(serde_json::from_str(&text).with_context(parsing)?)
            }
            Some("assemble") => Job::Assemble(
                serde_json::from_str(&text).with_context(parsing)?,
            ),
            Some("sysupdate") => Job::Sysupdate(
                serde_json::from_str(&text).with_context(parsing)?,
            ),
            Some(other) => bail!(
                "{} asks for a job of kind '{other}', which this builder \
                 does not know (image, layer, assemble, sysupdate)",
                path.display()
            ),
        };
        Ok(job)
    }
}
