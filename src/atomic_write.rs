/*!
Writing a file so that it is either complete or absent: the content goes
to `.NAME.partial` beside it, which is renamed to `NAME` when it is
complete and removed when writing it fails. A build that fails therefore
leaves no partial image, whichever step failed.
*/

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Runs `write` on the partial file's path (which it creates), then
/// renames that file to `output`; on any failure removes it. A failed
/// rename is reported through `renaming`, in the caller's error type.
pub fn write_atomically<T, E>(
    output: &Path,
    write: impl FnOnce(&Path) -> Result<T, E>,
    renaming: impl FnOnce(&Path, io::Error) -> E,
) -> Result<T, E> {
    let partial = partial_path(output);
    let result =
        write(&partial).and_then(|value| match fs::rename(&partial, output) {
            Ok(()) => Ok(value),
            Err(err) => Err(renaming(&partial, err)),
        });
    if result.is_err() {
        let _ = fs::remove_file(&partial);
    }
    result
}

/// `.NAME.partial` beside `output`.
fn partial_path(output: &Path) -> PathBuf {
    let name = output.file_name().unwrap_or_default().to_string_lossy();
    output.with_file_name(format!(".{name}.partial"))
}
