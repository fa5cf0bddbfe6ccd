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

use crate::build::config::UnitSource;
use crate::systemd::unit_name;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unit {
    pub name: String,
    /// The file whose content the image's unit file gets.
    pub source: PathBuf,
}

pub fn resolve(sources: &[UnitSource], prefix: &str) -> Result<Vec<Unit>> {
    let mut units: BTreeMap<String, Unit> = BTreeMap::new();
    for source in sources {
        for unit in resolve_one(source)? {
            check_unit_file(&unit.source)?;
            unit_name::check_portable(&unit.name, prefix).with_context(
                || format!("unit file {}", unit.source.display()),
            )?;
            if let Some(first) = units.get(&unit.name) {
                bail!(
                    "two units are named '{}': {} and {}",
                    unit.name,
                    first.source.display(),
                    unit.source.display()
                );
            }
            units.insert(unit.name.clone(), unit);
        }
    }
    Ok(units.into_values().collect())
}

fn resolve_one(source: &UnitSource) -> Result<Vec<Unit>> {
    let path = PathBuf::from(source.path.to_absolute_path());
    let meta = fs::metadata(&path)
        .with_context(|| format!("reading unit {}", path.display()))?;
    if !meta.is_dir() {
        return Ok(vec![Unit { name: source.name.clone(), source: path }]);
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
        units.push(Unit { name: name.to_string(), source: entry.clone() });
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
