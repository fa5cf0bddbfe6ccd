/*!
A pipe closed by the reader at its other end, found anywhere in an
error's chain. The command line treats it as success (`inspect | head`
stops reading early); the build as mksquashfs having stopped reading,
whose own exit status then says why.
*/

use std::io::ErrorKind;

/// Whether `err`, or any error it was caused by, is a write to a pipe
/// whose reader has gone.
pub fn closed(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == ErrorKind::BrokenPipe)
    })
}
