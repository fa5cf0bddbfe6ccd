# A nixpkgs overlay: `portableService`, a drop-in replacement for nixpkgs'
# own, and `portable-service-builder`, the program it runs.
#
#   import <nixpkgs> { overlays = [ (import ./nix/default.nix) ]; }
final: prev: {
  portable-service-builder = final.callPackage ./builder.nix { };
  portableService = final.callPackage ./portable-service.nix {
    # The builder and mksquashfs run where the image is built, which is
    # not where its services run when cross-compiling.
    inherit (final.buildPackages) portable-service-builder;
    squashfs-tools = final.buildPackages.squashfs-tools or null;
    squashfsTools = final.buildPackages.squashfsTools or null;
  };
}
