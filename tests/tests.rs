// Helpers: nix-build in the sandbox, images read with unsquashfs.
mod util;

// The image's layout and every argument of the specification.
mod build;

// Same inputs, same bytes.
mod reproducible;

// Bad input: messages at evaluation time and from the builder.
mod errors;

// The builder run by hand: its failure modes.
mod builder;

// flake.nix and the overlay, offline against a nixpkgs-shaped stub.
mod flake;
