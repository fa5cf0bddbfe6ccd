/*!
Where the user may put something in an image: the one rule for the
`symlinks` and `mountPoints` arguments (and `nix/rules.nix`'s
`placement`, its twin at evaluation time, checked against it by the
shared rule table).

A path must be absolute and normalised; it may not land in what the
layout reserves (the store, where portabled reads units, the os-release
it reads); and in an extension image it must lie under the roots systemd
overlays on the base (`/usr`, `/opt`), as nothing else of an extension
reaches the service.
*/

use anyhow::{bail, Result};

use crate::builder::tree::ImagePath;
use crate::layout::layout;

/// Checks where `what` (an argument's entry, named for messages:
/// "symlink '/bin/sh'") puts `path`, in a full image or, when
/// `extension`, an extension image.
pub fn check(what: &str, path: &str, extension: bool) -> Result<ImagePath> {
    let layout = layout();
    if !path.starts_with('/') {
        bail!(
            "{what} is relative: it must be an absolute path such as \
             '/{path}'"
        );
    }
    let at =
        ImagePath::parse(path).map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
    if let Some(reserved) = layout.reserved_at(path) {
        bail!("{what} lands in {}, {}", reserved.path, reserved.why);
    }
    if extension && !layout.in_extension_roots(path) {
        bail!(
            "{what} is outside {}: systemd overlays only those of an \
             extension image on its base",
            layout.extension_roots.join(" and ")
        );
    }
    Ok(at)
}
