/*!
`portable-service-builder inspect IMAGE [--json]`: what an image holds,
read from the image file without root and without mounting it: its
release data, the units portabled would attach (and those it would
ignore, with why), its symlinks, its store paths with their sizes, the
image's compressor, block size and size; for a disk image, its
partitions and dm-verity root hash; and whether `sbom` can write its
SBOM, from which version of the manifest.
*/

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use crate::image::survey::{self, Facts, Format, ImageKind};
use crate::text;

/// The facts as text for people, every name from the image escaped (see
/// `crate::text`).
pub fn render(facts: &Facts) -> String {
    let mut out = String::new();
    let kind = match facts.kind {
        ImageKind::PortableService => "portable service",
        ImageKind::Extension => "extension image",
    };
    let format = match facts.format {
        Format::Ddi => "disk image of a squashfs",
        Format::Squashfs => "squashfs",
    };
    let _ = writeln!(
        out,
        "{}: {kind}, {} bytes, {format}, {} with {}-byte blocks",
        text::line(&facts.image),
        facts.image_size,
        facts.compressor,
        facts.block_size
    );
    if let Some(roothash) = &facts.roothash {
        let _ = writeln!(out, "\nroot hash: {roothash}\npartitions:");
        for p in &facts.partitions {
            let _ = writeln!(
                out,
                "  {}  {:<28} {} bytes at {}, type {}, uuid {}",
                p.number,
                text::line(&p.label),
                p.size,
                p.offset,
                p.type_uuid,
                p.uuid
            );
        }
    }
    let _ = writeln!(out, "\n{}:", text::path(&facts.release_file));
    match &facts.release {
        Ok(fields) => {
            for (key, value) in fields {
                let _ = writeln!(
                    out,
                    "  {}={}",
                    text::line(key),
                    text::line(value)
                );
            }
        }
        Err(why) => {
            let _ = writeln!(out, "  ({})", text::line(why));
        }
    }
    let _ = writeln!(
        out,
        "\nunits portabled attaches with the prefix '{}':",
        facts.prefix
    );
    for unit in facts.attached_units() {
        let _ = writeln!(
            out,
            "  {}  ({})",
            text::path(Path::new(&unit.name)),
            text::path(&unit.path)
        );
    }
    let ignored: Vec<_> =
        facts.units.iter().filter(|u| u.ignored_because.is_some()).collect();
    if !ignored.is_empty() {
        out.push_str("\nunit files it ignores:\n");
        for unit in ignored {
            let why = unit.ignored_because.as_deref().unwrap_or_default();
            let _ = writeln!(
                out,
                "  {}: {}",
                text::path(&unit.path),
                text::line(why)
            );
        }
    }
    if !facts.symlinks.is_empty() {
        out.push_str("\nsymlinks:\n");
        for link in &facts.symlinks {
            let _ = writeln!(
                out,
                "  {} -> {}",
                text::path(&link.path),
                text::path(&link.target)
            );
        }
    }
    let total: u64 = facts.store_paths.iter().filter_map(|p| p.nar_size).sum();
    let _ = writeln!(
        out,
        "\nstore paths in {} ({}, {total} bytes of NAR):",
        text::path(&facts.store_dir),
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
            text::line(&base.image_file_name),
            text::line(&base.sysext_level),
            base.paths.len()
        );
        for path in &base.paths {
            let _ = writeln!(out, "  {path}");
        }
    }
    let _ = match &facts.manifest {
        Ok(m) if m.roots.is_some() => writeln!(
            out,
            "\nSBOM: `portable-service-builder sbom` writes it from manifest \
             version {}, with what nixpkgs' meta says (licences, \
             descriptions, homepages) of {} of its store paths, and the \
             image's own dependencies",
            m.closure_version,
            m.meta.len()
        ),
        Ok(m) => writeln!(
            out,
            "\nSBOM: `portable-service-builder sbom` writes it from manifest \
             version {}, which records no licences, descriptions or \
             homepages, nor what the image itself depends on",
            m.closure_version
        ),
        Err(why) => {
            writeln!(out, "\nSBOM: none can be written: {}", text::line(why))
        }
    };
    out
}

/// Prints what `image` holds; with `json`, as one JSON document, which
/// is complete or not printed at all.
pub fn run(image: &Path, json: bool) -> Result<()> {
    let facts = survey::open(image)?.facts;
    let output = if json {
        let mut text = serde_json::to_string_pretty(&facts)
            .context("writing the facts as JSON")?;
        text.push('\n');
        text
    } else {
        render(&facts)
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(output.as_bytes())?;
    stdout.flush()?;
    Ok(())
}
