/*!
portable-service-builder: the compiled half of `pkgs.portableService`.
Not a stable library API: every module is public for the tests.

The crate, by layer (each imports only from the layers above it):

- `atomic_write`: files that are complete or absent, for every writer;
  `digest`: SHA-256 of files, and hex; `text`: names from an image
  shown safely (escaped for a terminal, lossless in JSON); `pipe`: a
  pipe closed by its reader;
- Formats, each with its specification in its module doc:
  - `nix`: Nix's own (store paths, base-32, NAR, what Nix records of a
    store path);
  - `squashfs`: squashfs 4.0, read and written;
  - `ddi`: Discoverable Disk Images (GPT, dm-verity, the root hash's
    signature), built, read, verified and signed;
- `systemd`: what systemd and portabled accept (unit names and the prefix
  rule, image names, os-release);
- `layout`: every path the image layout fixes, from `nix/layout.json`,
  which the Nix function reads too; `manifest`: what every image records
  of what it holds;
- `image`, the read side: `survey` (an image's facts) → `inspect` shows
  them, `verify` checks them and the NAR digests `nar` computes; `sign`
  signs a disk image that `verify` passes (with `ddi`); `sbom` describes
  what it holds;
- `publish`, releases and feeds: the directory a web server serves to
  hosts that follow it with systemd-sysupdate, changed by a plan of steps
  that keep it valid; `host`, what such a host gets (the transfer, a
  timer and the script that moves attached services to a new version);
- `builder`, the write side, a pipeline: `attrs` (what Nix wrote) →
  `config` (validated) → `base` (an extension's base, read through
  `image`) → `units` → `plan` (a `tree`, a plain value) → `output`
  (`mksquashfs` fed a tar `stream`, then a disk image for
  `format = "ddi"`) → `summary`; `layers` builds layered images from the
  same steps and assembles them; the job `sysupdate` writes `host`'s tree;
- `cli`: the command line, and `main.rs` its exit-code policy.

Nothing in `nix`, `squashfs`, `ddi`, `systemd`, `layout` or `manifest`
knows of images being built or read; `image` never imports `builder`.
*/

pub mod atomic_write;
pub mod builder;
pub mod cli;
pub mod ddi;
pub mod digest;
pub mod host;
pub mod image;
pub mod layout;
pub mod manifest;
pub mod nix;
pub mod pipe;
pub mod publish;
pub mod squashfs;
pub mod systemd;
pub mod text;
