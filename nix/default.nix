# A nixpkgs overlay: `portableService`, a drop-in replacement for nixpkgs'
# own, and `portable-service-builder`, the program it runs.
#
#   import <nixpkgs> { overlays = [ (import ./nix/default.nix) ]; }
final: prev: {
  portable-service-builder = final.callPackage ./builder.nix { };
  portableService = final.callPackage ./portable-service.nix { };
}
