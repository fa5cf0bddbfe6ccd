// End-to-end tests: real nix-build, real mksquashfs, checked with unsquashfs.
