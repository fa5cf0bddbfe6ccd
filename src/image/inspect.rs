/*!
`portable-service-builder inspect IMAGE [--json]`: what an image holds,
read from the image file without root and without mounting it: its
release data, the units portabled would attach (and those it would
ignore, with why), its symlinks, its store paths with their sizes, and the
image's compressor, block size and size.
*/

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use crate::image::survey::{Kind, Survey, Symlink, UnitFile};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inspection {
    pub image: String,
    pub kind: Kind,
    pub prefix: String,
    pub compressor: &'static str,
    pub block_size: u32,
    pub image_size: u64,
    pub release_file: PathBuf,
    pub release: Option<BTreeMap<String, String>>,
    pub units: Vec<UnitFile>,
    pub symlinks: Vec<Symlink>,
    pub store_dir: PathBuf,
    pub store_paths: Vec<StorePathSize>,
    pub base: Option<Base>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StorePathSize {
    pub path: String,
    /// The NAR size the closure description records, if it does.
    pub nar_size: Option<u64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Base {
    pub image: String,
    pub sysext_level: String,
    /// Store paths of the closure that the extension leaves to its base.
    pub store_paths: Vec<String>,
}

impl Inspection {
    pub fn new(survey: &Survey) -> Inspection {
        let sizes: BTreeMap<_, _> = match &survey.manifest {
            Ok(d) => {
                d.paths.iter().map(|i| (i.path.clone(), i.nar_size)).collect()
            }
            Err(_) => BTreeMap::new(),
        };
        let superblock = survey.image.superblock();
        Inspection {
            image: survey.file_name.clone(),
            kind: survey.kind,
            prefix: survey.prefix.clone(),
            compressor: superblock.compressor,
            block_size: superblock.block_size,
            image_size: superblock.file_size,
            release_file: survey.release_path.clone(),
            release: survey.release.clone(),
            units: survey.units.clone(),
            symlinks: survey.symlinks.clone(),
            store_dir: survey.store_dir.clone(),
            store_paths: survey
                .store_paths
                .iter()
                .map(|p| StorePathSize {
                    path: p.to_string(),
                    nar_size: sizes.get(p).copied(),
                })
                .collect(),
            base: survey
                .manifest
                .as_ref()
                .ok()
                .and_then(|d| d.base.as_ref())
                .map(|b| Base {
                    image: b.image_file_name.clone(),
                    sysext_level: b.sysext_level.clone(),
                    store_paths: b
                        .paths
                        .iter()
                        .map(ToString::to_string)
                        .collect(),
                }),
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let kind = match self.kind {
            Kind::PortableService => "portable service",
            Kind::Extension => "extension image",
        };
        let _ = writeln!(
            out,
            "{}: {kind}, {} bytes, {} with {}-byte blocks",
            self.image, self.image_size, self.compressor, self.block_size
        );
        let _ = writeln!(out, "\n{}:", self.release_file.display());
        match &self.release {
            Some(fields) => {
                for (key, value) in fields {
                    let _ = writeln!(out, "  {key}={value}");
                }
            }
            None => out.push_str("  (missing)\n"),
        }
        let _ = writeln!(
            out,
            "\nunits portabled attaches with the prefix '{}':",
            self.prefix
        );
        for unit in self.units.iter().filter(|u| u.ignored_because.is_none()) {
            let _ =
                writeln!(out, "  {}  ({})", unit.name, unit.path.display());
        }
        let ignored: Vec<_> = self
            .units
            .iter()
            .filter(|u| u.ignored_because.is_some())
            .collect();
        if !ignored.is_empty() {
            out.push_str("\nunit files it ignores:\n");
            for unit in ignored {
                let why = unit.ignored_because.as_deref().unwrap_or_default();
                let _ = writeln!(out, "  {}: {why}", unit.path.display());
            }
        }
        if !self.symlinks.is_empty() {
            out.push_str("\nsymlinks:\n");
            for link in &self.symlinks {
                let _ = writeln!(
                    out,
                    "  {} -> {}",
                    link.path.display(),
                    link.target.display()
                );
            }
        }
        let total: u64 =
            self.store_paths.iter().filter_map(|p| p.nar_size).sum();
        let _ = writeln!(
            out,
            "\nstore paths in {} ({}, {total} bytes of NAR):",
            self.store_dir.display(),
            self.store_paths.len()
        );
        for path in &self.store_paths {
            let size =
                path.nar_size.map_or("?".to_string(), |s| s.to_string());
            let _ = writeln!(out, "  {size:>12}  {}", path.path);
        }
        if let Some(base) = &self.base {
            let _ = writeln!(
                out,
                "\nbase: {} (SYSEXT_LEVEL={}), which holds {} more store paths of the closure:",
                base.image,
                base.sysext_level,
                base.store_paths.len()
            );
            for path in &base.store_paths {
                let _ = writeln!(out, "  {path}");
            }
        }
        out
    }
}

pub fn run(image: &Path, json: bool) -> Result<()> {
    let inspection = Inspection::new(&Survey::new(image)?);
    let mut stdout = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut stdout, &inspection)
            .map_err(std::io::Error::from)?;
        writeln!(stdout)?;
    } else {
        stdout.write_all(inspection.render().as_bytes())?;
    }
    stdout.flush()?;
    Ok(())
}
