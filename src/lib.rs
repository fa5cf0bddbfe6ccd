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
pub mod ddi;
pub mod description;
pub mod image;
pub mod image_name;
pub mod inspect;
pub mod mksquashfs;
pub mod nar;
pub mod nixbase32;
pub mod os_release;
pub mod plan;
pub mod store_path;
pub mod survey;
pub mod symlink;
pub mod tar;
pub mod tree;
pub mod unit_name;
pub mod units;
pub mod verify;
