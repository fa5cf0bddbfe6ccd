# The few nixpkgs lib functions this repository uses, for Nix before 2.18,
# which cannot evaluate nixpkgs' own lib (see lib.nix).
let
  inherit (builtins)
    any
    filter
    isAttrs
    listToAttrs
    match
    ;

  isUnder = dir: path: path == dir || match "${dir}/.*" path != null;
  isParentOf = path: dir: match "${path}/.*" dir != null;
in
{
  genAttrs =
    names: f:
    listToAttrs (
      map (name: {
        inherit name;
        value = f name;
      }) names
    );

  importTOML = path: builtins.fromTOML (builtins.readFile path);

  licenses.mit = {
    spdxId = "MIT";
  };
  platforms.linux = [
    "x86_64-linux"
    "aarch64-linux"
  ];

  # File sets as lists of rules: a path (everything under it) or a
  # `fileFilter` (files under a directory whose name passes a predicate).
  fileset = {
    unions = rules: rules;
    fileFilter = predicate: dir: { inherit predicate dir; };
    toSource =
      { root, fileset }:
      let
        rules = map (r: if isAttrs r then r // { dir = toString r.dir; } else toString r) fileset;
        keeps =
          path: type:
          any (
            r:
            if isAttrs r then
              isParentOf path r.dir
              || (
                isUnder r.dir path
                && (
                  type == "directory"
                  || r.predicate {
                    name = baseNameOf path;
                    hasExt = ext: match ".*\\.${ext}" (baseNameOf path) != null;
                  }
                )
              )
            else
              isUnder r path || isParentOf path r
          ) rules;
      in
      builtins.path {
        path = root;
        name = "source";
        filter = keeps;
      };
  };
}
