# The image layout, as nix/layout.json gives it (the builder reads the same
# file; src/layout.rs says what each path is for), and the paths every
# image has besides its store paths, units and the user's symlinks: what a
# user's symlink may not replace. The builder's planner makes the same
# tree; a test compares the two.
let
  inherit (builtins)
    attrNames
    concatLists
    concatStringsSep
    elemAt
    filter
    genList
    head
    isString
    length
    listToAttrs
    match
    split
    ;

  layout = builtins.fromJSON (builtins.readFile ./layout.json);

  components = path: filter (c: isString c && c != "") (split "/" path);

  # "/a/b/c" -> [ "/a" "/a/b" ]
  ancestors =
    path:
    let
      cs = components path;
    in
    genList (i: "/" + concatStringsSep "/" (genList (elemAt cs) (i + 1))) (length cs - 1);

  # Sorted, each once.
  unique =
    paths:
    attrNames (
      listToAttrs (
        map (name: {
          inherit name;
          value = null;
        }) paths
      )
    );

  extensionRelease =
    imageFileName: "${layout.extensionReleaseDir}/extension-release.${head (match "(.*)\\.raw" imageFileName)}";
in
layout
// {
  inherit ancestors components extensionRelease;

  # { dirs; files; symlinks; } that an image named imageFileName has.
  scaffold =
    { extension, imageFileName }:
    let
      files =
        [ layout.manifest ]
        ++ (
          if extension then [ (extensionRelease imageFileName) ] else [ layout.osRelease ] ++ layout.emptyFiles
        );
      dirs =
        [ layout.storeDir ]
        ++ (
          if extension then
            [ layout.extensionUnitDir ]
          else
            [ layout.unitDir ] ++ attrNames layout.mountPoints
        );
    in
    {
      inherit files;
      dirs = unique (dirs ++ concatLists (map ancestors (dirs ++ files)));
      symlinks = if extension then [ ] else [ layout.storeLink.path ];
    };
}
