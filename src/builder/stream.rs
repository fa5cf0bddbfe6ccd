/*!
Writes a planned tree as a tar stream, reading store paths and unit files
from the host's store as it goes: nothing is copied to disk.

Store paths are written as Nix sees them in a NAR, whatever the host's store
holds besides: directories 0555, files 0444 or 0555 by their executable bit,
every entry owned by root with time 0, hard links written as separate files.
Each directory's entries are sorted bytewise, so the stream depends only on
the store paths' contents.
*/

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::builder::tar::TarWriter;
use crate::builder::tree::{Content, Node, Tree};
use crate::nix::STORE_MODES;

/// What went into the stream, for the build summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub files: u64,
    pub bytes: u64,
}

pub fn write(tree: &Tree, out: impl Write) -> Result<Stats> {
    let mut writer =
        Writer { tar: TarWriter::new(out), stats: Stats::default() };
    for (path, node) in tree.iter() {
        let name = path.relative().into_bytes();
        match node {
            Node::Dir { mode } => writer.tar.dir(&name, *mode)?,
            Node::Symlink { target } => {
                writer.tar.symlink(&name, target.as_bytes())?
            }
            Node::File { mode, content: Content::Bytes(bytes) } => writer
                .file(&name, *mode, bytes.len() as u64, &mut &bytes[..])?,
            Node::File { mode, content: Content::HostFile(source) } => {
                writer.host_file(&name, *mode, source)?
            }
            Node::StorePath(store_path) => {
                let source = store_path.to_absolute_path();
                writer.store_entry(&name, Path::new(&source))?
            }
        }
    }
    writer.tar.finish().context("finishing the archive")?;
    Ok(writer.stats)
}

struct Writer<W: Write> {
    tar: TarWriter<W>,
    stats: Stats,
}

impl<W: Write> Writer<W> {
    fn file(
        &mut self,
        name: &[u8],
        mode: u32,
        size: u64,
        data: &mut impl io::Read,
    ) -> Result<()> {
        self.tar.file(name, mode, size, data)?;
        self.stats.files += 1;
        self.stats.bytes += size;
        Ok(())
    }

    fn host_file(
        &mut self,
        name: &[u8],
        mode: u32,
        source: &Path,
    ) -> Result<()> {
        let mut file = File::open(source)
            .with_context(|| format!("opening {}", source.display()))?;
        let size = file
            .metadata()
            .with_context(|| format!("reading {}", source.display()))?
            .len();
        self.file(name, mode, size, &mut file)
            .with_context(|| format!("reading {}", source.display()))
    }

    /// Writes `source`, a store path or an entry inside one, and everything
    /// below it.
    fn store_entry(&mut self, name: &[u8], source: &Path) -> Result<()> {
        let kind = fs::symlink_metadata(source)
            .with_context(|| format!("reading {}", source.display()))?
            .file_type();
        self.store_entry_of_kind(name, source, kind)
    }

    /// `store_entry` for an entry whose type is known, from its directory's
    /// listing: what is below a store path costs no lstat, and a file one
    /// open and one fstat, so the kernel resolves each path once.
    fn store_entry_of_kind(
        &mut self,
        name: &[u8],
        source: &Path,
        kind: fs::FileType,
    ) -> Result<()> {
        if kind.is_symlink() {
            let target = fs::read_link(source)
                .with_context(|| format!("reading {}", source.display()))?;
            self.tar.symlink(name, target.as_os_str().as_bytes())?;
        } else if kind.is_file() {
            let mut file = File::open(source)
                .with_context(|| format!("opening {}", source.display()))?;
            let meta = file
                .metadata()
                .with_context(|| format!("reading {}", source.display()))?;
            if !meta.is_file() {
                bail!("{} changed while it was read", source.display());
            }
            let executable = meta.permissions().mode() & 0o100 != 0;
            let mode = STORE_MODES.of_file(executable);
            self.file(name, mode, meta.len(), &mut file)
                .with_context(|| format!("reading {}", source.display()))?;
        } else if kind.is_dir() {
            self.tar.dir(name, STORE_MODES.directory)?;
            let mut entries = fs::read_dir(source)
                .and_then(|dir| {
                    dir.map(|e| {
                        e.and_then(|e| Ok((e.file_name(), e.file_type()?)))
                    })
                    .collect::<io::Result<Vec<_>>>()
                })
                .with_context(|| format!("listing {}", source.display()))?;
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            for (entry, kind) in entries {
                let mut child = name.to_vec();
                child.push(b'/');
                child.extend_from_slice(entry.as_bytes());
                self.store_entry_of_kind(&child, &source.join(&entry), kind)?;
            }
        } else {
            bail!(
                "{} is neither a file, a directory nor a symlink, which a \
                 store path cannot hold",
                source.display()
            );
        }
        Ok(())
    }
}
