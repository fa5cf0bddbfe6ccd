/*!
`portable-service-builder inspect IMAGE [--json]`: what an image holds,
read from the image file without root and without mounting it: its
release data, the units portabled would attach (and those it would
ignore, with why), its symlinks, its store paths with their sizes, and the
image's compressor, block size and size; for a disk image, its
partitions and dm-verity root hash.
*/

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use anyhow::Result;

use crate::image::survey::{self, Facts, ImageKind};

/// The facts as text for people; `--json` prints them as they are.
pub fn render(facts: &Facts) -> String {
    let mut out = String::new();
    let kind = match facts.kind {
        ImageKind::PortableService => "portable service",
        ImageKind::Extension => "extension image",
    };
    let format = match facts.format {
        "ddi" => "disk image of a squashfs",
        _ => "squashfs",
    };
    let _ = writeln!(
        out,
        "{}: {kind}, {} bytes, {format}, {} with {}-byte blocks",
        facts.image, facts.image_size, facts.compressor, facts.block_size
    );
    if let Some(roothash) = &facts.roothash {
        let _ = writeln!(out, "\nroot hash: {roothash}\npartitions:");
        for p in &facts.partitions {
            let _ = writeln!(
                out,
                "  {}  {:<28} {} bytes at {}, type {}, uuid {}",
                p.number, p.label, p.size, p.offset, p.type_uuid, p.uuid
            );
        }
    }
    let _ = writeln!(out, "\n{}:", facts.release_file.display());
    match &facts.release {
        Ok(fields) => {
            for (key, value) in fields {
                let _ = writeln!(out, "  {key}={value}");
            }
        }
        Err(why) => {
            let _ = writeln!(out, "  ({why})");
        }
    }
    let _ = writeln!(
        out,
        "\nunits portabled attaches with the prefix '{}':",
        facts.prefix
    );
    for unit in facts.attached_units() {
        let _ = writeln!(out, "  {}  ({})", unit.name, unit.path.display());
    }
    let ignored: Vec<_> =
        facts.units.iter().filter(|u| u.ignored_because.is_some()).collect();
    if !ignored.is_empty() {
        out.push_str("\nunit files it ignores:\n");
        for unit in ignored {
            let why = unit.ignored_because.as_deref().unwrap_or_default();
            let _ = writeln!(out, "  {}: {why}", unit.path.display());
        }
    }
    if !facts.symlinks.is_empty() {
        out.push_str("\nsymlinks:\n");
        for link in &facts.symlinks {
            let _ = writeln!(
                out,
                "  {} -> {}",
                link.path.display(),
                link.target.display()
            );
        }
    }
    let total: u64 = facts.store_paths.iter().filter_map(|p| p.nar_size).sum();
    let _ = writeln!(
        out,
        "\nstore paths in {} ({}, {total} bytes of NAR):",
        facts.store_dir.display(),
        facts.store_paths.len()
    );
    for path in &facts.store_paths {
        let size = path.nar_size.map_or("?".to_string(), |s| s.to_string());
        let _ = writeln!(out, "  {size:>12}  {}", path.path);
    }
    if let Some(base) = &facts.base {
        let _ = writeln!(
            out,
            "\nbase: {} (SYSEXT_LEVEL={}), which holds {} more store paths of the closure:",
            base.image_file_name,
            base.sysext_level,
            base.paths.len()
        );
        for path in &base.paths {
            let _ = writeln!(out, "  {path}");
        }
    }
    out
}

pub fn run(image: &Path, json: bool) -> Result<()> {
    let facts = survey::open(image)?.facts;
    let mut stdout = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut stdout, &facts)
            .map_err(std::io::Error::from)?;
        writeln!(stdout)?;
    } else {
        stdout.write_all(render(&facts).as_bytes())?;
    }
    stdout.flush()?;
    Ok(())
}
