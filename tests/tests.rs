// Helpers: nix-build in the sandbox, images read with unsquashfs, running
// the real tools, fixture trees.
mod util;

// The image's layout and every argument of the specification.
mod build;

// Same inputs, same bytes.
mod reproducible;

// Bad input: messages at evaluation time and from the builder.
mod errors;

// The argument rules and the layout, the same on the Nix and the Rust side.
mod rules;

// The builder run by hand: its failure modes.
mod builder;

// flake.nix and the overlay, offline against a nixpkgs-shaped stub.
mod flake;

// The NAR writer and hash, and Nix base-32, against nix-store --dump,
// nix-hash and the store.
mod nar;

// The image reader: tree, files and NAR digests out of squashfs images.
mod image;

// Our squashfs reader, writer and layer assembly against the real tools.
mod squashfs;

// Extension images on a base image.
mod extension;

// Layered images: layers compressed apart, assembled into one image.
mod layers;

// Real services: the mount points their settings need; long symlinks.
mod services;

// inspect and verify on real images, good and broken.
mod verify;

// sbom: CycloneDX documents of real images, validated by
// cyclonedx-python-lib and checked against the Nix store.
mod sbom;

// Discoverable Disk Images: the GPT, dm-verity and signatures against
// veritysetup, sfdisk, systemd-dissect, systemd-repart, openssl, certtool.
mod ddi;

// Releases, publish and the host tree, built by nix-build and run.
mod release;

// format = "ddi": images built by nix-build, read by systemd-dissect and
// veritysetup, signed by `sign` and checked by openssl.
mod disk_image;

// Crafted images (issue 17): what verify must do with images the kernel
// reads differently from our reader, that drive its work or hold control
// bytes in names, run within bounds; the kernel, mounting them, as the
// oracle; seeded mutants of real images.
mod crafted;

// The crate's layers: no module uses one that src/lib.rs lists after it.
mod modules;
