{
  description = "portableService: systemd portable service images from Nix closures, with a compiled builder";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems =
        f:
        nixpkgs.lib.genAttrs systems (
          system:
          f (
            import nixpkgs {
              inherit system;
              overlays = [ self.overlays.default ];
            }
          )
        );
    in
    {
      overlays.default = import ./nix/default.nix;

      packages = forAllSystems (pkgs: {
        default = pkgs.portable-service-builder;
        inherit (pkgs) portable-service-builder;
        demo = pkgs.callPackage ./nix/demo.nix { };
      });

      checks = forAllSystems (
        pkgs:
        let
          packages = self.packages.${pkgs.stdenv.hostPlatform.system};
        in
        {
          inherit (packages) portable-service-builder demo;
          demo-verify = packages.demo.tests.verify;
        }
      );
    };
}
