// End-to-end tests: real nix-build, real mksquashfs, checked with unsquashfs.

// Helpers: running the real tools, fixture trees.
mod util;

// The NAR writer and hash, and Nix base-32, against nix-store --dump,
// nix-hash and the store.
mod nar;

// The image reader: tree, files and NAR digests out of squashfs images.
mod image;
