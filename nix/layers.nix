# Layered images (the `layers` argument of portableService): each layer a
# derivation that compresses the closure of its roots less what earlier
# layers hold, and the image assembled from the layers' files and the final
# layer, which holds everything else (`portable-service-builder`'s `layer`
# and `assemble` jobs). Like portable-service.nix, it uses only builtins.
{
  fail,
  storePathOf,
  isStoreObject,
}:
{
  # [ [ root ... ] ... ], as given to portableService.
  layers,
  pname,
  version,
  # What every job of the image's build shares.
  jobAttrs,
  fileName,
  format,
}:

let
  inherit (builtins) isList unsafeDiscardStringContext;
in
rec {
  # Each entry of `layers`, checked: a non-empty list of store objects.
  list =
    let
      checkLayer =
        i: layer:
        let
          number = toString (i + 1);
        in
        if !isList layer then
          fail "layer ${number} is a ${builtins.typeOf layer}: each of layers is a list of store objects"
        else if layer == [ ] then
          fail "layer ${number} is empty: a layer needs at least one root"
        else
          map (
            root:
            if isStoreObject root then
              root
            else
              fail "layer ${number} has a ${builtins.typeOf root}, which is not a store object (a derivation or a path)"
          ) layer;
    in
    if !isList layers then
      fail "layers must be a list of lists of store objects"
    else
      builtins.genList (i: checkLayer i (builtins.elemAt layers i)) (builtins.length layers);

  # Each layer's roots, as store paths.
  paths = builtins.genList (
    i: map (storePathOf "a root of layer ${toString (i + 1)}") (builtins.elemAt list i)
  ) (builtins.length list);

  # The roots of the first `n` layers.
  rootsOf = n: builtins.concatLists (builtins.genList (builtins.elemAt paths) n);

  roots = rootsOf (builtins.length list);

  # No root may be given twice: each names the layer that gives it first.
  checks =
    let
      given = builtins.concatLists (
        builtins.genList (
          i:
          map (path: {
            path = unsafeDiscardStringContext path;
            layer = i + 1;
          }) (builtins.elemAt paths i)
        ) (builtins.length paths)
      );
      indexed = builtins.genList (k: (builtins.elemAt given k) // { inherit k; }) (builtins.length given);
      first = builtins.listToAttrs (
        map (r: {
          name = r.path;
          value = r;
        }) indexed
      );
    in
    map (
      r:
      first.${r.path}.k == r.k
      || fail "layers give ${r.path} twice (in layer ${toString first.${r.path}.layer} and layer ${toString r.layer}): a root belongs to one layer"
    ) indexed;

  file = "layer.squashfs";

  # Layer i: the closure of its roots less the earlier layers'.
  drvs = builtins.genList (
    i:
    derivation (
      jobAttrs
      // {
        name = "${pname}-layer${toString (i + 1)}-${version}";
        kind = "layer";
        outputFile = file;
        exportReferencesGraph = {
          closure = rootsOf (i + 1);
          earlier = rootsOf i;
        };
      }
    )
  ) (builtins.length list);

  # Whether the image has no layers (one mksquashfs run, as before).
  none = list == [ ];

  # The image from its final layer: that layer itself, or the assembly of
  # all the layers.
  image =
    finalLayer:
    if none then
      finalLayer
    else
      derivation (
        jobAttrs
        // {
          name = "${pname}-img-${version}";
          kind = "assemble";
          inherit fileName format;
          layers = map (l: "${l}/${file}") (drvs ++ [ finalLayer ]);
        }
      );
}
