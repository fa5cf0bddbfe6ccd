/*!
What an image holds, read back from the image itself: `Facts`, a plain
value that `inspect` shows as it is and `verify`'s rules check, gathered
from an open image by `survey`.

The facts are its kind, its release data, its unit files with portabled's
verdict on each and the store paths each names, its symlinks, its store
paths and its manifest, and what the paths the layout fixes are in it.
The unit prefix is derived from the file name as portablectl derives it
(cut at the first `_`, else `.raw` stripped). Unit files are looked for
where portabled looks for them inside an image, and judged by its rules: a
valid name of one of the five types it attaches, starting with the prefix
followed by `-`, `.`, `@` (or nothing), and a non-empty regular file.
Images other builders made (a real `/nix/store`, no manifest) can be
surveyed too.

What the survey reads whole is bounded, so that no size an image claims
drives its memory: the manifest (`MANIFEST_LIMIT`), release files
(`RELEASE_LIMIT`) and unit files (`UNIT_LIMIT`). It also notes what no
image of ours holds, for `verify` to report: entries in the store
directory that are not store paths, owners other than root, devices,
pipes and sockets, setuid and setgid bits, and store entries whose modes
are not the store's.
*/

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::ddi::Ddi;
use crate::layout::layout;
use crate::manifest::{Manifest, ManifestBase};
use crate::nix::store_path::{StorePath, NIX_STORE_DIR};
use crate::nix::STORE_MODES;
use crate::squashfs::{self, superblock, Entry, EntryKind, ErrorKind, Image};
use crate::systemd::{image_name, os_release, unit_name};
use crate::text;

/// The most bytes of manifest read: a closure of 100,000 store paths
/// takes about 30 MB.
pub const MANIFEST_LIMIT: u64 = 32 << 20;
/// The most bytes of a release file read (they hold a few lines).
pub const RELEASE_LIMIT: u64 = 64 << 10;
/// The most bytes of a unit file read: real units are a few KiB, and a
/// unit naming 100,000 store paths takes 7 MiB.
pub const UNIT_LIMIT: u64 = 16 << 20;
/// The longest line systemd reads in a unit file (`LONG_LINE_MAX` in its
/// `fileio.h`); it refuses a unit with a longer one.
pub const UNIT_LINE_LIMIT: usize = 1 << 20;
/// The most entries outside the store recorded: the layout puts a few
/// dozen there, plus one per unit, symlink and mount point.
pub const OUTSIDE_STORE_LIMIT: usize = 1 << 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageKind {
    PortableService,
    Extension,
}

/// What the image file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Squashfs,
    /// A disk image, whose root partition holds the squashfs.
    Ddi,
}

/// What an entry of the image is, as far as the rules care.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryType {
    Directory,
    File,
    Symlink,
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnitFile {
    #[serde(serialize_with = "text::serialize_os_str")]
    pub name: OsString,
    #[serde(serialize_with = "text::serialize_path")]
    pub path: PathBuf,
    pub size: u64,
    /// None when portabled would attach it, else why it would not.
    pub ignored_because: Option<String>,
    /// Why a unit portabled would attach could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
    /// The `/nix/store/...` paths its text names (read only for the units
    /// portabled attaches).
    pub names: BTreeSet<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImageSymlink {
    #[serde(serialize_with = "text::serialize_path")]
    pub path: PathBuf,
    #[serde(serialize_with = "text::serialize_path")]
    pub target: PathBuf,
}

/// Something about an entry that no image of ours has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Oddity {
    pub path: PathBuf,
    pub what: String,
}

/// A partition of a disk image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartitionFacts {
    /// Its number to Linux (1, 2, 3).
    pub number: u32,
    pub label: String,
    pub type_uuid: String,
    pub uuid: String,
    pub offset: u64,
    pub size: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StorePathFacts {
    pub path: StorePath,
    /// The NAR size the manifest records, if it does.
    pub nar_size: Option<u64>,
}

/// Everything `inspect` shows and `verify`'s rules need, without the open
/// image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Facts {
    /// The image's file name.
    pub image: String,
    pub format: Format,
    /// A disk image's partitions and dm-verity root hash (hex).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<PartitionFacts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roothash: Option<String>,
    pub kind: ImageKind,
    pub prefix: String,
    /// As `mksquashfs -comp` names it.
    pub compressor: String,
    pub block_size: u32,
    /// The image file's size (a disk image's, partitions and all).
    pub image_size: u64,
    /// `/etc/os-release`, or an extension's release file.
    #[serde(serialize_with = "text::serialize_path")]
    pub release_file: PathBuf,
    /// The release data, or why there is none.
    #[serde(serialize_with = "ok_or_null")]
    pub release: Result<BTreeMap<String, String>, String>,
    pub units: Vec<UnitFile>,
    pub symlinks: Vec<ImageSymlink>,
    /// Where the image keeps its store, and the store paths found there,
    /// in name order.
    #[serde(serialize_with = "text::serialize_path")]
    pub store_dir: PathBuf,
    /// Whether `store_dir` is a directory in the image at all.
    #[serde(skip)]
    pub has_store_dir: bool,
    pub store_paths: Vec<StorePathFacts>,
    /// Entries of the store directory that are not store paths.
    #[serde(skip)]
    pub store_strays: Vec<PathBuf>,
    /// What no image of ours has (see the module doc).
    #[serde(skip)]
    pub oddities: Vec<Oddity>,
    /// For an extension: its base, and the store paths left to it.
    pub base: Option<ManifestBase>,
    /// The manifest, or why it could not be read.
    #[serde(skip)]
    pub manifest: Result<Manifest, String>,
    /// The manifest's version (`sbom` reads licences and roots from 2 on).
    pub manifest_version: Option<u32>,
    /// Every entry outside the store: what the layout fixes, mount points,
    /// symlinks and units.
    #[serde(skip)]
    pub outside_store: BTreeMap<String, EntryType>,
}

fn ok_or_null<S: serde::Serializer>(
    value: &Result<BTreeMap<String, String>, String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    value.as_ref().ok().serialize(s)
}

impl Facts {
    /// The units portabled would attach with the image's prefix.
    pub fn attached_units(&self) -> impl Iterator<Item = &UnitFile> {
        self.units.iter().filter(|u| u.ignored_because.is_none())
    }

    /// Where the store path `path` is in the image.
    pub fn image_path_of(&self, path: &StorePath) -> PathBuf {
        self.store_dir.join(path.base_name())
    }

    pub fn holds(&self, path: &StorePath) -> bool {
        self.store_paths.binary_search_by(|p| p.path.cmp(path)).is_ok()
    }
}

/// An image file, opened: its squashfs (for a disk image, the one in its
/// root partition), the disk image, and the facts.
pub struct Opened {
    pub image: Image,
    pub ddi: Option<Ddi>,
    pub facts: Facts,
}

/// Opens the image at `path`, a squashfs or a disk image, and surveys it.
pub fn open(path: &Path) -> Result<Opened> {
    let file_name =
        path.file_name().unwrap_or_default().to_string_lossy().into_owned();
    let (image, ddi) = if is_squashfs(path)? {
        (Image::open(path)?, None)
    } else {
        let ddi = Ddi::read(path).with_context(|| {
            format!(
                "{} is neither a squashfs image nor a disk image",
                path.display()
            )
        })?;
        let root = &ddi.root;
        (Image::open_range(path, root.offset(), root.size())?, Some(ddi))
    };
    let mut facts = survey(&image, &file_name)?;
    if let Some(ddi) = &ddi {
        facts.format = Format::Ddi;
        facts.roothash = Some(ddi.root_hash_hex());
        facts.partitions =
            [Some(&ddi.root), Some(&ddi.verity), ddi.verity_sig.as_ref()]
                .into_iter()
                .flatten()
                .map(|p| PartitionFacts {
                    number: p.index + 1,
                    label: p.name.clone(),
                    type_uuid: p.type_guid.to_string(),
                    uuid: p.guid.to_string(),
                    offset: p.offset(),
                    size: p.size(),
                })
                .collect();
        // The table covers the whole file (Gpt::read checks it).
        facts.image_size = ddi.gpt.sectors * crate::ddi::gpt::SECTOR;
    }
    Ok(Opened { image, ddi, facts })
}

/// Whether the file at `path` starts as a squashfs image does.
pub fn is_squashfs(path: &Path) -> Result<bool> {
    let mut magic = [0u8; 4];
    let mut file = std::fs::File::open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let read = std::io::Read::read(&mut file, &mut magic)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(read == 4 && u32::from_le_bytes(magic) == superblock::MAGIC)
}

/// The facts of `image`, whose file is called `file_name`.
pub fn survey(image: &Image, file_name: &str) -> Result<Facts> {
    let layout = layout();
    let prefix = image_name::prefix_of(file_name)?;

    let manifest =
        read(image, &layout.manifest, MANIFEST_LIMIT).and_then(|bytes| {
            Manifest::from_json(&bytes).map_err(|e| format!("{e:#}"))
        });
    let is_extension = match &manifest {
        Ok(m) => m.base.is_some(),
        Err(_) => image.entry(Path::new(&layout.os_release)).is_err(),
    };
    let (kind, release_file) = if is_extension {
        (ImageKind::Extension, layout.extension_release(file_name))
    } else {
        (ImageKind::PortableService, layout.os_release.clone())
    };
    let release = read(image, &release_file, RELEASE_LIMIT)
        .map(|bytes| os_release::parse(&String::from_utf8_lossy(&bytes)));

    let found = layout.store_dirs().map(PathBuf::from).find(|d| {
        matches!(image.entry(d), Ok(e) if e.kind() == EntryKind::Directory)
    });
    let has_store_dir = found.is_some();
    let store_dir = found.unwrap_or_else(|| PathBuf::from(&layout.store_dir));
    let sizes: BTreeMap<&StorePath, u64> = match &manifest {
        Ok(m) => m.paths.iter().map(|i| (&i.path, i.nar_size)).collect(),
        Err(_) => BTreeMap::new(),
    };

    let mut units = Vec::new();
    let mut symlinks = Vec::new();
    let mut store_paths = Vec::new();
    let mut store_strays = Vec::new();
    let mut oddities = Vec::new();
    let mut outside_store = BTreeMap::new();
    for entry in image.entries() {
        let entry = entry?;
        let kind = entry.kind();
        let parent = entry.path.parent().unwrap_or(Path::new("/"));
        let in_store = entry.path.starts_with(&store_dir);
        oddities.extend(oddity(&entry, in_store && entry.path != store_dir));
        if parent == store_dir {
            let name = entry.path.file_name().unwrap_or_default();
            match name.to_str().map(StorePath::from_base_name) {
                Some(Ok(path)) => {
                    let nar_size = sizes.get(&path).copied();
                    store_paths.push(StorePathFacts { path, nar_size });
                }
                _ => store_strays.push(entry.path.clone()),
            }
            continue;
        }
        if in_store {
            continue;
        }
        if outside_store.len() == OUTSIDE_STORE_LIMIT {
            oddities.push(Oddity {
                path: entry.path.clone(),
                what: format!(
                    "is past the {OUTSIDE_STORE_LIMIT} entries outside the \
                     store that are looked at; an image of ours has a few \
                     dozen"
                ),
            });
            break;
        }
        outside_store.insert(
            entry.path.to_string_lossy().into_owned(),
            entry_type(&kind),
        );
        if let EntryKind::Symlink { target } = kind {
            symlinks.push(ImageSymlink {
                path: entry.path.clone(),
                target: target.into(),
            });
        }
        if layout.portabled_unit_dirs.iter().any(|d| parent == Path::new(d)) {
            units.push(unit(image, &entry, &prefix));
        }
    }

    store_paths.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Facts {
        image: file_name.to_string(),
        format: Format::Squashfs,
        partitions: Vec::new(),
        roothash: None,
        kind,
        prefix,
        compressor: image.compressor().name().to_string(),
        block_size: image.block_size(),
        image_size: image.size(),
        release_file: PathBuf::from(release_file),
        release,
        units,
        symlinks,
        store_dir,
        has_store_dir,
        store_paths,
        store_strays,
        oddities,
        base: manifest.as_ref().ok().and_then(|m| m.base.clone()),
        manifest_version: manifest.as_ref().ok().map(|m| m.closure_version),
        manifest,
        outside_store,
    })
}

/// A unit file, with portabled's verdict on it and, if it would attach
/// it, the store paths its text names.
fn unit(image: &Image, entry: &Entry, prefix: &str) -> UnitFile {
    let kind = entry.kind();
    let name = entry.path.file_name().unwrap_or_default().to_os_string();
    let size = match kind {
        EntryKind::File { size } => size,
        _ => 0,
    };
    let verdict = unit_verdict(&name.to_string_lossy(), prefix, &kind, size);
    let text = match verdict {
        Ok(()) => Some(image.read_entry(entry, UNIT_LIMIT)),
        Err(_) => None,
    };
    let (names, unreadable) = match text {
        Some(Ok(text))
            if text
                .split(|b| *b == b'\n')
                .any(|l| l.len() > UNIT_LINE_LIMIT) =>
        {
            let why = format!(
                "a line is longer than the {UNIT_LINE_LIMIT} bytes systemd \
                 reads of one"
            );
            (BTreeSet::new(), Some(why))
        }
        Some(Ok(text)) => {
            (store_paths_named(&String::from_utf8_lossy(&text)), None)
        }
        Some(Err(err)) => (BTreeSet::new(), Some(err.to_string())),
        None => (BTreeSet::new(), None),
    };
    UnitFile {
        name,
        path: entry.path.clone(),
        size,
        ignored_because: verdict.err(),
        unreadable,
        names,
    }
}

/// What about `entry` no image of ours has: owners other than root,
/// devices, pipes and sockets, setuid and setgid bits; inside a store
/// path (`in_store_path`), modes other than the store's.
fn oddity(entry: &Entry, in_store_path: bool) -> Option<Oddity> {
    let mode = u32::from(entry.mode());
    let kind = entry.kind();
    let what = if entry.uid != 0 || entry.gid != 0 {
        format!("is owned by {}:{}, not root", entry.uid, entry.gid)
    } else if entry_type(&kind) == EntryType::Other {
        "is a device, a pipe or a socket".to_string()
    } else if mode & 0o6000 != 0 {
        format!("has mode {mode:04o}, with the setuid or setgid bit")
    } else if in_store_path && !store_mode(&kind, mode) {
        format!(
            "has mode {mode:04o}, which the Nix store does not give {}",
            match kind {
                EntryKind::Directory => "a directory (0555)",
                EntryKind::Symlink { .. } => "a symlink (0777)",
                _ => "a file (0444, or 0555 when executable)",
            }
        )
    } else {
        return None;
    };
    Some(Oddity { path: entry.path.clone(), what })
}

/// Whether `mode` is what the Nix store gives an entry of `kind`.
fn store_mode(kind: &EntryKind, mode: u32) -> bool {
    match kind {
        EntryKind::Directory => mode == STORE_MODES.directory,
        EntryKind::Symlink { .. } => mode == STORE_MODES.symlink,
        _ => mode == STORE_MODES.file || mode == STORE_MODES.executable,
    }
}

/// The file at `path`, or why it cannot be had: missing, not a file, or
/// unreadable (which includes longer than `limit`).
fn read(image: &Image, path: &str, limit: u64) -> Result<Vec<u8>, String> {
    let unreadable =
        |e: squashfs::Error| format!("{path} cannot be read: {e}");
    match image.entry(Path::new(path)) {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            Err(format!("{path} is missing"))
        }
        Err(e) => Err(unreadable(e)),
        Ok(entry) if matches!(entry.kind(), EntryKind::File { .. }) => {
            image.read_entry(&entry, limit).map_err(unreadable)
        }
        Ok(_) => Err(format!("{path} is not a file")),
    }
}

fn entry_type(kind: &EntryKind) -> EntryType {
    match kind {
        EntryKind::Directory => EntryType::Directory,
        EntryKind::File { .. } => EntryType::File,
        EntryKind::Symlink { .. } => EntryType::Symlink,
        _ => EntryType::Other,
    }
}

fn unit_verdict(
    name: &str,
    prefix: &str,
    kind: &EntryKind,
    size: u64,
) -> Result<(), String> {
    unit_name::check_portable(name, prefix).map_err(|e| e.to_string())?;
    match kind {
        EntryKind::File { .. } if size == 0 => {
            Err("the file is empty, and portabled skips empty unit files"
                .into())
        }
        EntryKind::File { .. } => Ok(()),
        EntryKind::Directory => {
            Err("a directory, which portabled ignores".into())
        }
        EntryKind::Symlink { .. } => {
            Err("a symlink, which portabled would resolve against the host; \
             unit files in images should be regular files"
                .into())
        }
        _ => Err("not a regular file".into()),
    }
}

/// Every `/nix/store/...` path in `text`, up to the first character that a
/// path in a unit file would not hold.
pub fn store_paths_named(text: &str) -> BTreeSet<String> {
    let prefix = format!("{NIX_STORE_DIR}/");
    let mut paths = BTreeSet::new();
    for (start, _) in text.match_indices(&prefix) {
        let end = text[start..]
            .find(|c: char| {
                !(c.is_ascii_alphanumeric() || "+-._?=/@%~".contains(c))
            })
            .map_or(text.len(), |len| start + len);
        paths
            .insert(text[start..end].trim_end_matches(['.', '/']).to_string());
    }
    paths
}

/// Facts made by hand, for the unit tests of what reads them.
#[cfg(test)]
pub mod fixture {
    use super::*;

    /// A full image `demo_1.0.raw` as this builder makes it: os-release
    /// `release`, the manifest `manifest` (JSON), the store paths it
    /// records, one unit, and every path the layout fixes.
    pub fn facts(release: &str, manifest: &[u8]) -> Facts {
        let layout = layout();
        let manifest =
            Manifest::from_json(manifest).map_err(|e| e.to_string());
        let store_paths = match &manifest {
            Ok(m) => m
                .paths
                .iter()
                .map(|i| StorePathFacts {
                    path: i.path.clone(),
                    nar_size: Some(i.nar_size),
                })
                .collect(),
            Err(_) => vec![],
        };
        let mut outside_store: BTreeMap<String, EntryType> = layout
            .mount_points()
            .map(|(p, _)| (p.to_string(), EntryType::Directory))
            .collect();
        for file in &layout.empty_files {
            outside_store.insert(file.clone(), EntryType::File);
        }
        outside_store
            .insert(layout.store_link.path.clone(), EntryType::Symlink);
        for dir in ["/usr", "/usr/nix"] {
            outside_store.insert(dir.into(), EntryType::Directory);
        }
        Facts {
            image: "demo_1.0.raw".into(),
            format: Format::Squashfs,
            partitions: vec![],
            roothash: None,
            kind: ImageKind::PortableService,
            prefix: "demo".into(),
            compressor: "xz".into(),
            block_size: 1 << 20,
            image_size: 4096,
            release_file: PathBuf::from(&layout.os_release),
            release: Ok(os_release::parse(release)),
            units: vec![UnitFile {
                name: "demo.service".into(),
                path: PathBuf::from(&layout.unit_dir).join("demo.service"),
                size: 10,
                ignored_because: None,
                unreadable: None,
                names: BTreeSet::new(),
            }],
            symlinks: vec![ImageSymlink {
                path: PathBuf::from(&layout.store_link.path),
                target: PathBuf::from(&layout.store_link.target),
            }],
            store_dir: PathBuf::from(&layout.store_dir),
            has_store_dir: true,
            store_paths,
            store_strays: vec![],
            oddities: vec![],
            base: manifest.as_ref().ok().and_then(|m| m.base.clone()),
            manifest_version: manifest
                .as_ref()
                .ok()
                .map(|m| m.closure_version),
            manifest,
            outside_store,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_store_paths_in_unit_text() {
        let text = "ExecStart=/nix/store/4nfb4995bpj54nsc3abjm3z60f0nfwgf-busybox/bin/httpd \
                    -h /nix/store/5nfb4995bpj54nsc3abjm3z60f0nfwgf-www\n\
                    Environment=\"CONF=/nix/store/6nfb4995bpj54nsc3abjm3z60f0nfwgf-c/%i.conf\"\n\
                    ExecStop=/nix/store/7nfb4995bpj54nsc3abjm3z60f0nfwgf-x/bin/stop;\n";
        let paths: Vec<String> = store_paths_named(text).into_iter().collect();
        assert_eq!(
            paths,
            [
                "/nix/store/4nfb4995bpj54nsc3abjm3z60f0nfwgf-busybox/bin/httpd",
                "/nix/store/5nfb4995bpj54nsc3abjm3z60f0nfwgf-www",
                "/nix/store/6nfb4995bpj54nsc3abjm3z60f0nfwgf-c/%i.conf",
                "/nix/store/7nfb4995bpj54nsc3abjm3z60f0nfwgf-x/bin/stop",
            ]
        );
    }
}
