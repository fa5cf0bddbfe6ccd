# The baseline: nixpkgs' portableService algorithm
# (pkgs/build-support/portable-service/default.nix), written from its
# description for the host package set, so that it builds the same way as
# ours: through nix-build, in the sandbox, with the host's tools.
#
# What nixpkgs does, and so this does:
#   1. a root-fs scaffold derivation: etc/systemd/system/<units>, the mount
#      points, empty etc/resolv.conf and etc/machine-id, etc/os-release
#      (PORTABLE_ID, PORTABLE_PRETTY_NAME, HOME_URL, ID, PRETTY_NAME,
#      BUILD_ID), the symlinks;
#   2. the image: `cp -a` every path of the closure of the scaffold and
#      `contents` into nix/store in the build directory, then one
#        SOURCE_DATE_EPOCH=0 mksquashfs nix $scaffold/* $out/NAME_VERSION.raw \
#          -quiet -noappend -exit-on-error -keep-as-directory -all-root \
#          -root-mode 755 -b BLOCK -comp COMPRESSION
#
# Differences, none of which touches the copy or mksquashfs:
#   - the closure comes from `exportReferencesGraph` under
#     `__structuredAttrs` (as ours gets it) instead of a closureInfo
#     derivation; the paths are the same and are copied in sorted order, as
#     closureInfo's store-paths lists them;
#   - units may also be { name; file; } (nixpkgs only takes single-file
#     derivations), so that the demo builds unchanged; the file is copied
#     under that name;
#   - the scaffold is a runCommand with the host's shell instead of a
#     stdenv.mkDerivation.
{
  runCommand,
  squashfsTools,
  system ? builtins.currentSystem,
}:

{
  pname,
  version,
  units,
  description ? null,
  homepage ? null,
  symlinks ? [ ],
  contents ? [ ],
  squash-compression ? "xz -Xdict-size 100%",
  squash-block-size ? "1M",
}:

let
  inherit (builtins) concatStringsSep filter map;

  # A unit derivation, or { name; file; }.
  unitName = u: u.name;
  unitFile = u: if u ? file then u.file else u;

  osRelease = concatStringsSep "" (
    map (kv: "${kv.name}=${kv.value}\n") (
      filter (kv: kv.value != null) [
        {
          name = "BUILD_ID";
          value = "rolling";
        }
        {
          name = "HOME_URL";
          value = homepage;
        }
        {
          name = "ID";
          value = "nixos";
        }
        {
          name = "PORTABLE_ID";
          value = pname;
        }
        {
          name = "PORTABLE_PRETTY_NAME";
          value = description;
        }
        {
          name = "PRETTY_NAME";
          value = "NixOS";
        }
      ]
    )
  );

  rootFsScaffold =
    runCommand "root-fs-scaffold-${version}"
      {
        inherit osRelease;
        passAsFile = [ "osRelease" ];
      }
      ''
        mkdir -p "$out/etc/systemd/system" "$out/proc" "$out/sys" "$out/dev" \
          "$out/run" "$out/tmp" "$out/var/tmp" "$out/var/lib" "$out/var/cache" \
          "$out/var/log"
        : > "$out/etc/resolv.conf"
        : > "$out/etc/machine-id"
        cp "$osReleasePath" "$out/etc/os-release"
        ${concatStringsSep "\n" (
          map (u: ''cp "${unitFile u}" "$out/etc/systemd/system/${unitName u}"'') units
        )}
        ${concatStringsSep "\n" (
          map (s: ''
            mkdir -p "$(dirname "$out${s.symlink}")"
            ln -s "${s.object}" "$out${s.symlink}"
          '') symlinks
        )}
      '';
in
derivation {
  name = "${pname}-img-${version}";
  inherit system;
  builder = "/bin/bash";
  args = [
    "-eu"
    "-c"
    ''
      export PATH=/usr/bin:/bin
      source .attrs.sh
      out=''${outputs[out]}
      mkdir -p nix/store
      for i in $(jq -r '.closure[].path' .attrs.json | LC_ALL=C sort); do
        cp -a "$i" "''${i:1}"
      done
      mkdir -p "$out"
      SOURCE_DATE_EPOCH=0 "$mksquashfs" nix "$rootFsScaffold"/* "$out/$fileName" \
        -quiet -noappend -exit-on-error -keep-as-directory -all-root \
        -root-mode 755 -b "$blockSize" -comp $compression
    ''
  ];
  __structuredAttrs = true;
  inherit rootFsScaffold;
  fileName = "${pname}_${version}.raw";
  mksquashfs = "${squashfsTools}/bin/mksquashfs";
  compression = squash-compression;
  blockSize = squash-block-size;
  exportReferencesGraph.closure = [ rootFsScaffold ] ++ contents;
}
