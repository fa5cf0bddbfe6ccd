# The stub's lib: nixpkgs' own (nixpkgs-lib/, a pinned copy; see its
# SOURCE), so that flake.nix and nix/ are evaluated with the real
# lib.fileset, importTOML, licenses and platforms. It needs Nix 2.18 or
# later (its lib/minfeatures.nix); older Nix (Debian 12 has 2.8) gets
# lib-before-2.18.nix, our own few functions, which keep the flake test
# running there.
if builtins.compareVersions builtins.nixVersion "2.18" >= 0 then
  import ./nixpkgs-lib/lib
else
  import ./lib-before-2.18.nix
