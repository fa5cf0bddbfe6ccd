# A small nixpkgs-shaped flake, to evaluate and build this repository's
# flake offline (`--override-input nixpkgs path:<a copy of this folder>`).
# It offers what flake.nix and nix/ use, built from the host's tools; the
# test that copies it adds host-paths.nix (the Rust toolchain, the vendored
# crates) and lets the toolchain into the sandbox.
{
  description = "nixpkgs-shaped stub for offline tests";

  outputs =
    { self }:
    {
      lib = import ./lib.nix;
      legacyPackages.x86_64-linux = import ./. { system = "x86_64-linux"; };
    };
}
