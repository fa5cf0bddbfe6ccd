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
      # Cargo.toml names the integration test's entry point; cargo refuses
      # the manifest without it.
      (lib.fileset.fileFilter (file: file.hasExt "rs") ../tests)
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
