# A package set for machines without nixpkgs, such as the Debian machines
# this project is developed and tested on: tools installed from Debian's
# packages, wrapped as Nix derivations, and the builder that
# `cargo build --release` left in target/release.
#
#   (import ./nix/host.nix { }).portableService { pname = ...; ... }
#
# Its derivations run the host's /bin/sh and /usr/bin tools, so a sandboxed
# build needs them let in, as scripts/nix-build does with the settings of
# scripts/nix.conf.
# The versions of those tools are the host's, not pinned by Nix.
{
  system ? builtins.currentSystem,
  # The builder binary to use.
  builderBinary ? ../target/release/portable-service-builder,
  # Where the host keeps the static busybox (Debian: busybox-static).
  busyboxBinary ? "/bin/busybox",
}:

let
  hostPath = "/usr/bin:/bin";

  # A derivation built by a shell script with the host's tools.
  runCommand =
    name: env: script:
    derivation (
      {
        inherit name system;
        builder = "/bin/sh";
        args = [
          "-eu"
          "-c"
          script
        ];
        PATH = hostPath;
      }
      // env
    );

  writeTextFile =
    {
      name,
      text,
      executable ? false,
    }:
    runCommand name
      {
        inherit text;
        passAsFile = [ "text" ];
      }
      ''
        cp "$textPath" "$out"
        ${if executable then ''chmod 555 "$out"'' else ""}
      '';

  writeText = name: text: writeTextFile { inherit name text; };

  writeScript =
    name: text:
    writeTextFile {
      inherit name text;
      executable = true;
    };

  portable-service-builder =
    if builtins.pathExists builderBinary then
      runCommand "portable-service-builder" { src = builderBinary; } ''
        mkdir -p "$out/bin"
        cp "$src" "$out/bin/portable-service-builder"
      ''
    else
      throw "nix/host.nix: ${toString builderBinary} does not exist: run `cargo build --release` first";

  # mksquashfs and unsquashfs from Debian's squashfs-tools.
  squashfsTools = runCommand "squashfs-tools-host" { } ''
    mkdir -p "$out/bin"
    ln -s /usr/bin/mksquashfs /usr/bin/unsquashfs "$out/bin/"
  '';

  # The static busybox, copied into the store so that images carry it.
  busybox =
    runCommand "busybox-static" { }
      ''
        mkdir -p "$out/bin"
        cp ${busyboxBinary} "$out/bin/busybox"
        for applet in sh cat echo env httpd ls sleep nc; do
          ln -s busybox "$out/bin/$applet"
        done
      '';

  portableService = import ./portable-service.nix {
    inherit portable-service-builder squashfsTools;
  };

  self = {
    inherit
      system
      runCommand
      writeTextFile
      writeText
      writeScript
      portable-service-builder
      squashfsTools
      busybox
      portableService
      ;
    demo = import ./demo.nix { inherit (self) portableService busybox writeText runCommand; };
  };
in
self
