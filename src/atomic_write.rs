/*!
Writing a file so that it is either complete or absent: the content goes
to `.NAME.partial` beside it, which is renamed to `NAME` when it is
complete and removed when writing it fails. A build that fails therefore
leaves no partial image, whichever step failed.

The partial file is created exclusively (`O_CREAT | O_EXCL`), which never
follows a symlink: a link planted at `.NAME.partial` makes the write fail
instead of sending it to whatever the link points at. A partial file left
by a run that was killed (a signal runs no cleanup) is removed first, so
that it does not block every later run; `unlink` removes the name only, a
link and not its target. Two runs writing the same output at once would
take the name from each other: each checks, before renaming, that the
name is still its own file, so the one that lost fails instead of putting
the other's unfinished file in place.
*/

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Runs `write` on the partial file, given as its path and as the file
/// opened for reading and writing, then renames it to `output`; on any
/// failure removes it. A step of its own that fails (creating, checking or
/// renaming the partial file) is reported through `failed`, given what it
/// was doing, in the caller's error type.
pub fn write_atomically<T, E>(
    output: &Path,
    write: impl FnOnce(&Path, File) -> Result<T, E>,
    failed: impl FnOnce(String, io::Error) -> E,
) -> Result<T, E> {
    let partial = partial_path(output);
    // Whatever is there is a killed run's; if it cannot be removed,
    // creating the file says why.
    let _ = fs::remove_file(&partial);
    let created = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&partial)
        .and_then(|file| Ok((identity(&file.metadata()?), file)));
    let (ours, file) = match created {
        Ok(created) => created,
        Err(err) => {
            return Err(failed(format!("creating {}", partial.display()), err))
        }
    };
    let still_ours =
        || fs::symlink_metadata(&partial).is_ok_and(|m| identity(&m) == ours);
    let result = write(&partial, file).and_then(|value| {
        let renamed = if still_ours() {
            fs::rename(&partial, output)
        } else {
            Err(io::Error::other(
                "another process replaced it while it was being written",
            ))
        };
        renamed.map(|()| value).map_err(|err| {
            let (from, to) = (partial.display(), output.display());
            failed(format!("renaming {from} to {to}"), err)
        })
    });
    if result.is_err() && still_ours() {
        let _ = fs::remove_file(&partial);
    }
    result
}

/// A file's device and inode.
fn identity(metadata: &fs::Metadata) -> (u64, u64) {
    (metadata.dev(), metadata.ino())
}

/// `.NAME.partial` beside `output`.
fn partial_path(output: &Path) -> PathBuf {
    let name = output.file_name().unwrap_or_default().to_string_lossy();
    output.with_file_name(format!(".{name}.partial"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(output: &Path, text: &str) -> Result<(), String> {
        write_atomically(
            output,
            |_, mut file| {
                file.write_all(text.as_bytes()).map_err(|e| e.to_string())
            },
            |what, e| format!("{what}: {e}"),
        )
    }

    #[test]
    fn a_planted_link_is_removed_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("out");
        let victim = dir.path().join("victim");
        fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join(".out.partial"))
            .unwrap();
        write(&output, "new").unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(fs::read_to_string(&output).unwrap(), "new");
        assert!(!dir.path().join(".out.partial").exists());
    }

    #[test]
    fn a_stale_partial_file_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("out");
        fs::write(dir.path().join(".out.partial"), "killed run").unwrap();
        write(&output, "new").unwrap();
        assert_eq!(fs::read_to_string(&output).unwrap(), "new");
        // What cannot be removed is an error naming it.
        fs::create_dir(dir.path().join(".out.partial")).unwrap();
        let err = write(&output, "newer").unwrap_err();
        assert!(
            err.starts_with(&format!(
                "creating {}: ",
                dir.path().join(".out.partial").display()
            )),
            "{err}"
        );
        assert_eq!(fs::read_to_string(&output).unwrap(), "new");
    }

    #[test]
    fn failing_leaves_nothing_and_losing_a_race_keeps_the_winner() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("out");
        let partial = dir.path().join(".out.partial");
        let failed: Result<(), String> = write_atomically(
            &output,
            |_, _| Err("no".into()),
            |what, e| format!("{what}: {e}"),
        );
        assert_eq!(failed, Err("no".into()));
        assert!(!partial.exists() && !output.exists());

        // Another run took the name while this one wrote.
        let err = write_atomically(
            &output,
            |path, _| {
                fs::remove_file(path).unwrap();
                fs::write(path, "the other run's").unwrap();
                Ok(())
            },
            |what, e| format!("{what}: {e}"),
        )
        .unwrap_err();
        assert!(
            err.ends_with(
                "another process replaced it while it was being written"
            ),
            "{err}"
        );
        assert!(!output.exists());
        assert_eq!(fs::read_to_string(&partial).unwrap(), "the other run's");
    }
}
