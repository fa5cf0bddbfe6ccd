# portable-service-builder, the compiled half of portableService, built from
# this repository's sources and its committed Cargo.lock.
{
  lib,
  rustPlatform,
}:

let
  cargoToml = lib.importTOML ../Cargo.toml;
in
rustPlatform.buildRustPackage {
  pname = cargoToml.package.name;
  inherit (cargoToml.package) version;

  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../Cargo.toml
      ../Cargo.lock
      ../rustfmt.toml
      ../src
      # The image layout, which the builder reads at compile time.
      ../nix/layout.json
      # Cargo.toml names the integration tests' entry point, and cargo
      # refuses the manifest without it; only the unit tests run here
      # (cargoTestFlags), so no other test file is needed, and editing one
      # does not rebuild the builder.
      ../tests/tests.rs
      # The NARs the unit tests check the writer against.
      ../tests/data/nar
    ];
  };

  cargoLock.lockFile = ../Cargo.lock;

  # The integration tests run nix-build and mksquashfs, which a build
  # sandbox does not offer; the unit tests run here.
  cargoTestFlags = [ "--lib" ];

  meta = {
    description = "Builds systemd portable service images from Nix closures";
    license = lib.licenses.mit;
    mainProgram = "portable-service-builder";
    platforms = lib.platforms.linux;
  };
}
