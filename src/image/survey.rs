/*!
What an image holds, read back from the image itself: its kind, its
release data, its unit files with portabled's verdict on each, its
symlinks, its store paths and its closure description. `inspect` shows a
survey; `verify` checks one.

The unit prefix is derived from the file name as portablectl derives it
(cut at the first `_`, else `.raw` stripped). Unit files are looked for
where portabled looks for them inside an image, and judged by its rules: a
valid name of one of the five types it attaches, starting with the prefix
followed by `-`, `.`, `@` (or nothing), and a non-empty regular file.
Images other builders made (a real `/nix/store`, no description) can be
surveyed too.
*/

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use crate::image::reader::{EntryKind, Image};
use crate::layout::layout;
use crate::manifest::Manifest;
use crate::nix::store_path::StorePath;
use crate::systemd::unit_name;
use crate::systemd::{image_name, os_release};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    PortableService,
    Extension,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnitFile {
    pub name: String,
    pub path: PathBuf,
    pub size: u64,
    /// None when portabled would attach it, else why it would not.
    pub ignored_because: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Symlink {
    pub path: PathBuf,
    pub target: PathBuf,
}

pub struct Survey {
    pub image: Image,
    pub file_name: String,
    pub prefix: String,
    pub kind: Kind,
    /// `/etc/os-release`, or an extension's release file.
    pub release_path: PathBuf,
    /// None when the release file is missing.
    pub release: Option<BTreeMap<String, String>>,
    pub units: Vec<UnitFile>,
    pub symlinks: Vec<Symlink>,
    /// Where the image keeps its store, and the store paths found there.
    pub store_dir: PathBuf,
    pub store_paths: Vec<StorePath>,
    /// The closure description, or why it could not be read.
    pub manifest: Result<Manifest, String>,
}

impl Survey {
    pub fn new(path: &Path) -> Result<Survey> {
        let image = Image::open(path)?;
        let file_name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let prefix = image_name::prefix_of(&file_name)?;

        let layout = layout();
        let manifest_path = Path::new(&layout.manifest);
        let manifest = match image.read_file(manifest_path) {
            Ok(bytes) => {
                Manifest::from_json(&bytes).map_err(|e| format!("{e:#}"))
            }
            Err(_) => Err(format!("{} is missing", manifest_path.display())),
        };

        let extension_release =
            PathBuf::from(layout.extension_release(&file_name));
        let is_extension = match &manifest {
            Ok(d) => d.base.is_some(),
            Err(_) => image.entry(Path::new(&layout.os_release)).is_err(),
        };
        let (kind, release_path) = if is_extension {
            (Kind::Extension, extension_release)
        } else {
            (Kind::PortableService, PathBuf::from(&layout.os_release))
        };
        let release = image
            .read_file(&release_path)
            .ok()
            .map(|bytes| os_release::parse(&String::from_utf8_lossy(&bytes)));

        let store_dir = layout
            .store_dirs()
            .map(PathBuf::from)
            .find(|d| matches!(image.entry(d), Ok(e) if e.kind == EntryKind::Directory))
            .unwrap_or_else(|| PathBuf::from(&layout.store_dir));

        let mut units = Vec::new();
        let mut symlinks = Vec::new();
        let mut store_paths = Vec::new();
        for entry in image.entries() {
            let parent = entry.path.parent().unwrap_or(Path::new("/"));
            let name =
                entry.path.file_name().unwrap_or_default().to_string_lossy();
            if parent == store_dir {
                if let Ok(p) = StorePath::from_base_name(&name) {
                    store_paths.push(p);
                }
                continue;
            }
            if entry.path.starts_with(&store_dir) {
                continue;
            }
            if let EntryKind::Symlink { target } = entry.kind {
                symlinks.push(Symlink {
                    path: entry.path.into(),
                    target: target.into(),
                });
            }
            if layout
                .portabled_unit_dirs
                .iter()
                .any(|d| parent == Path::new(d))
            {
                let size = match entry.kind {
                    EntryKind::File { size } => size,
                    _ => 0,
                };
                let verdict = unit_verdict(&name, &prefix, &entry.kind, size);
                units.push(UnitFile {
                    name: name.into_owned(),
                    path: entry.path.into(),
                    size,
                    ignored_because: verdict.err(),
                });
            }
        }
        Ok(Survey {
            image,
            file_name,
            prefix,
            kind,
            release_path,
            release,
            units,
            symlinks,
            store_dir,
            store_paths,
            manifest,
        })
    }

    /// The units portabled would attach with the image's prefix.
    pub fn attached_units(&self) -> impl Iterator<Item = &UnitFile> {
        self.units.iter().filter(|u| u.ignored_because.is_none())
    }

    /// Where the store path `path` is in the image.
    pub fn image_path_of(&self, path: &StorePath) -> PathBuf {
        self.store_dir.join(path.base_name())
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
