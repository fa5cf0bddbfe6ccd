# `import nixpkgs { system; overlays; }`, stubbed: a fixed point of a base
# package set and the overlays, with callPackage as nixpkgs has it.
{
  system ? builtins.currentSystem,
  overlays ? [ ],
  config ? { },
}:

let
  lib = import ./lib.nix;
  host = import ./host-paths.nix;

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
        PATH = "/usr/bin:/bin";
      }
      // env
    );

  base = final: {
    inherit lib runCommand;
    # Native builds only: the build platform's packages are these.
    buildPackages = final;
    stdenv.hostPlatform.system = system;

    callPackage =
      fn: args:
      let
        f = if builtins.isFunction fn then fn else import fn;
      in
      f (builtins.intersectAttrs (builtins.functionArgs f) final // args);

    writeText =
      name: text:
      runCommand name {
        inherit text;
        passAsFile = [ "text" ];
      } ''cp "$textPath" "$out"'';

    squashfs-tools = runCommand "squashfs-tools" { } ''
      mkdir -p "$out/bin"
      ln -s /usr/bin/mksquashfs /usr/bin/unsquashfs "$out/bin/"
    '';

    busybox = runCommand "busybox" { } ''
      mkdir -p "$out/bin"
      cp /bin/busybox "$out/bin/busybox"
      ln -s busybox "$out/bin/httpd"
    '';

    # Builds the crate for real, offline, from the vendored crates.
    rustPlatform.buildRustPackage =
      {
        pname,
        version,
        src,
        cargoLock,
        cargoTestFlags ? [ ],
        meta ? { },
      }:
      derivation {
        name = "${pname}-${version}";
        inherit system src;
        inherit (host) vendor;
        lockFile = cargoLock.lockFile;
        builder = "/bin/sh";
        PATH = "${host.toolchain}/bin:/usr/bin:/bin";
        HOME = "/homeless-shelter";
        # Debian's cc is a link through /etc/alternatives, which the
        # sandbox does not have.
        CC = "gcc";
        CXX = "g++";
        CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER = "gcc";
        args = [
          "-eu"
          "-c"
          ''
            cp -r "$src" source
            chmod -R u+w source
            cd source
            cmp "$lockFile" Cargo.lock
            export CARGO_HOME="$PWD/.cargo-home"
            mkdir -p "$CARGO_HOME"
            printf '[source.crates-io]\nreplace-with = "vendored"\n[source.vendored]\ndirectory = "%s"\n' "$vendor" > "$CARGO_HOME/config.toml"
            cargo build --release --offline --locked
            cargo test --release --offline --locked ${toString cargoTestFlags}
            mkdir -p "$out/bin"
            cp "target/release/${pname}" "$out/bin/"
          ''
        ];
      }
      // {
        inherit pname version meta;
      };
  };

  extends =
    overlay: f: final:
    let
      prev = f final;
    in
    prev // overlay final prev;

  fix =
    f:
    let
      x = f x;
    in
    x;
in
fix (builtins.foldl' (acc: overlay: extends overlay acc) base overlays)
