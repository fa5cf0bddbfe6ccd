/*!
Finds the unit files the image will carry.

An entry of `units` is either one unit file, named after its derivation
(`writeText "demo.service" ...`) or explicitly (`{ name; file; }`), or a
directory whose files are units, as the NixOS module system's
`systemd.units.<name>.unit` builds them and as template units (`demo@.service`)
must be, since Nix refuses `@` in store path names. Only here, reading the
store, is it known which one an entry is; the names found get portabled's
rule, and every unit must be a non-empty regular file (portabled skips empty
ones, and ignores drop-in directories).
*/

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::nix::store_path::StorePath;
use crate::systemd::unit_file::{self, UnitFile};
use crate::systemd::unit_name;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unit {
    pub name: String,
    /// The file whose content the image's unit file gets.
    pub source: PathBuf,
    /// What its settings need in the image.
    pub mount_points: Vec<unit_file::MountPoint>,
    /// What works differently on systemd before 257.
    pub warnings: Vec<unit_file::Warning>,
}

/// One entry of `units`: a unit file or a directory of unit files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitSource {
    pub name: String,
    pub path: StorePath,
    pub explicit_name: bool,
}

pub fn resolve(sources: &[UnitSource], prefix: &str) -> Result<Vec<Unit>> {
    let mut files = Vec::new();
    for source in sources {
        files.extend(resolve_one(source)?);
    }
    check_unique(files.iter().map(|(name, path)| (name.as_str(), path)))?;
    let mut units = Vec::with_capacity(files.len());
    for (name, path) in files {
        check_unit_file(&path)?;
        unit_name::check_portable(&name, prefix)
            .with_context(|| format!("unit file {}", path.display()))?;
        let text = fs::read(&path)
            .with_context(|| format!("reading unit {}", path.display()))?;
        let unit = UnitFile::parse(&name, &text)
            .and_then(|unit| unit_file::requirements(&unit))
            .with_context(|| format!("unit file {}", path.display()))?;
        units.push(Unit {
            name,
            source: path,
            mount_points: unit.mount_points,
            warnings: unit.warnings,
        });
    }
    units.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(units)
}

/// Refuses two units of one name, naming the files (`rules.units` in
/// `nix/rules.nix` at evaluation time, for the names known then).
pub fn check_unique<'a>(
    units: impl IntoIterator<Item = (&'a str, &'a PathBuf)>,
) -> Result<()> {
    let mut first: BTreeMap<&str, &PathBuf> = BTreeMap::new();
    for (name, path) in units {
        if let Some(earlier) = first.insert(name, path) {
            bail!(
                "two units are named '{name}': {} and {}",
                earlier.display(),
                path.display()
            );
        }
    }
    Ok(())
}

/// The unit files of an entry of `units`: names and files.
fn resolve_one(source: &UnitSource) -> Result<Vec<(String, PathBuf)>> {
    let path = PathBuf::from(source.path.to_absolute_path());
    let meta = fs::metadata(&path)
        .with_context(|| format!("reading unit {}", path.display()))?;
    if !meta.is_dir() {
        return Ok(vec![(source.name.clone(), path)]);
    }
    if source.explicit_name {
        bail!(
            "unit '{}' is given as {{ name; file; }}, but {} is a directory: \
             pass a directory of units without a name",
            source.name,
            path.display()
        );
    }
    let mut entries = fs::read_dir(&path)
        .with_context(|| format!("listing unit directory {}", path.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()
        .with_context(|| {
            format!("listing unit directory {}", path.display())
        })?;
    entries.sort();
    let mut units = Vec::new();
    for entry in entries {
        let Some(name) = entry.file_name().and_then(|n| n.to_str()) else {
            bail!("{} is not a unit file name", entry.display());
        };
        units.push((name.to_string(), entry.clone()));
    }
    if units.is_empty() {
        bail!("unit directory {} holds no unit files", path.display());
    }
    Ok(units)
}

fn check_unit_file(path: &Path) -> Result<()> {
    let meta = fs::metadata(path)
        .with_context(|| format!("reading unit file {}", path.display()))?;
    if meta.is_dir() {
        bail!(
            "{} is a directory: a unit directory holds only unit files \
             (portabled ignores drop-in directories)",
            path.display()
        );
    }
    if !meta.is_file() {
        bail!("unit {} is not a regular file", path.display());
    }
    if meta.len() == 0 {
        bail!(
            "unit file {} is empty: portabled skips empty unit files",
            path.display()
        );
    }
    Ok(())
}
