/*!
The NAR of a path on the host, as `nix-store --dump` writes it on Linux.

A file is executable when its owner may execute it (Nix looks at no other
bit); directories are listed and their names sorted bytewise; anything
that is not a file, a directory or a symlink is refused, as Nix refuses it.
Names are taken as they are: Nix uses its case-hack suffix
(`~nix~case~hack~N`) only on case-insensitive file systems, never on Linux.
*/

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::hash::{NarDigest, NarHasher};
use super::writer::{self, Node};

/// Writes the NAR of `path` to `out`.
pub fn dump(path: &Path, out: impl Write) -> Result<()> {
    // NAR strings come in many small writes.
    let mut out = BufWriter::with_capacity(1 << 16, out);
    let writing = || format!("writing the NAR of {}", path.display());
    write(path, writer::open(&mut out).with_context(writing)?)?;
    out.flush().with_context(writing)
}

/// The size and SHA-256 of the NAR of `path`, without keeping the NAR.
pub fn digest(path: &Path) -> Result<NarDigest> {
    let mut hasher = NarHasher::new();
    write(path, writer::open(&mut hasher).expect("hashing cannot fail"))?;
    Ok(hasher.finish())
}

/// Writes `path` and everything below it as `node`.
pub fn write(path: &Path, node: Node<impl Write>) -> Result<()> {
    let adding = || format!("adding {} to the NAR", path.display());
    let meta = fs::symlink_metadata(path)
        .with_context(|| format!("reading {}", path.display()))?;
    let kind = meta.file_type();
    if kind.is_symlink() {
        let target = fs::read_link(path)
            .with_context(|| format!("reading {}", path.display()))?;
        node.symlink(target.as_os_str().as_bytes()).with_context(adding)?;
    } else if kind.is_file() {
        let executable = meta.permissions().mode() & 0o100 != 0;
        let file = File::open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        node.file(executable, meta.len(), file).with_context(adding)?;
    } else if kind.is_dir() {
        let mut names = fs::read_dir(path)
            .and_then(|dir| {
                dir.map(|entry| entry.map(|e| e.file_name()))
                    .collect::<std::io::Result<Vec<_>>>()
            })
            .with_context(|| format!("listing {}", path.display()))?;
        // OsString orders by bytes on Unix, which is the NAR's order.
        names.sort();
        let mut dir = node.directory().with_context(adding)?;
        for name in names {
            let entry = dir.entry(name.as_bytes()).with_context(adding)?;
            write(&path.join(&name), entry)?;
        }
        dir.close().with_context(adding)?;
    } else {
        bail!(
            "{} is neither a file, a directory nor a symlink, which a NAR \
             cannot hold",
            path.display()
        );
    }
    Ok(())
}
