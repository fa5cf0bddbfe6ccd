/*!
portable-service-builder: the compiled half of `pkgs.portableService`.

The build is a pipeline: `attrs` reads what Nix wrote, `config` validates
it (with `image_name`, `unit_name`, `compression` and `symlink` holding the
rules), `units` finds the unit files in the store, `plan` lays out the
image as a `tree`, and `mksquashfs` feeds the tree to mksquashfs as a tar
stream written by `archive`.

`inspect` and `verify` read an image back through `survey`, which stands
on `image` (a squashfs reader) and `nar` (Nix's archive format and hash).
*/

pub mod build;
pub mod cli;
pub mod image;
pub mod layout;
pub mod manifest;
pub mod nix;
pub mod squashfs;
pub mod systemd;
