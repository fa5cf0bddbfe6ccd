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

pub mod archive;
pub mod attrs;
pub mod base;
pub mod build;
pub mod cli;
pub mod closure;
pub mod compression;
pub mod config;
pub mod cpu_time;
pub mod image;
pub mod inspect;
pub mod layout;
pub mod manifest;
pub mod mksquashfs;
pub mod nix;
pub mod plan;
pub mod survey;
pub mod symlink;
pub mod systemd;
pub mod tar;
pub mod tree;
pub mod units;
pub mod verify;
