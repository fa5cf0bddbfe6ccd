# What nixpkgs' `meta` says of the packages an image holds: the walk, at
# evaluation time, from the derivations given as units, contents and
# layers' roots through their inputs, as bombon's buildtime-dependencies
# walks them (github:nikstur/bombon, nix/buildtime-dependencies.nix).
# Like portable-service.nix, it uses only builtins.
#
# The result, `packageMeta` in `.attrs.json`: one entry per derivation
# reached that has something to say (a meta, a pname or a version), for
# all its outputs, with every string's context discarded (the meta must
# not make anything a build input), and null where it says nothing:
#
#   [ { paths = [ "/nix/store/...-hello-2.12.1" ]; pname = "hello";
#       version = "2.12.1"; description = "..."; homepage = "https://...";
#       license = { spdxId = "GPL-3.0-or-later"; fullName = "...";
#                   shortName = "gpl3Plus"; free = true; }; } ]
#
# The builder keeps what it says of the store paths in the image's closure
# (src/manifest/meta.rs has the licence forms).
#
# How it is bounded:
# - each derivation is visited once, for all its outputs
#   (builtins.genericClosure, keyed by derivation path), and only
#   derivations are followed: the values of a derivation's `drvAttrs`
#   that are derivations or lists of them, which the evaluator has
#   computed already to write the derivation (every one is an input of
#   the image's build);
# - the inputs of fixed-output derivations (fetchurl and the like) are not
#   followed: Nix refuses references in their outputs, so nothing they
#   were built with can be in the image through them, and this leaves out
#   the fetchers' own closures;
# - of each derivation only `pname`, `version` and `meta.description`,
#   `meta.homepage` and `meta.license` are read, and each entry is forced
#   inside builtins.tryEval, so a `meta` that throws (a removed licence,
#   a broken package's assertion) loses that entry, not the evaluation;
#   licence expressions are read to a depth of 8.
#
# What it cannot see: store paths named only inside strings (a unit file's
# text, "${pkgs.bash}/bin/bash" as a symlink's object: strings keep the
# store path, not the derivation and its meta), and paths that are not
# derivations (`./file` in a unit list).
let
  inherit (builtins)
    attrValues
    concatLists
    concatMap
    deepSeq
    elem
    filter
    genericClosure
    head
    isAttrs
    isBool
    isList
    isString
    tryEval
    unsafeDiscardStringContext
    ;

  isDerivation = x: isAttrs x && x.type or null == "derivation";

  # Every output of a derivation (it may be given as one of them).
  outputsOf =
    drv: if isList (drv.outputs or null) then filter isDerivation (map (o: drv.${o} or null) drv.outputs) else [ drv ];

  # The derivations a derivation was built from, unless it is fixed-output.
  inputsOf =
    drv:
    let
      attrs = drv.drvAttrs or { };
      values = attrValues attrs;
    in
    # isAttrs and isList are primops: the lambda isDerivation runs only on
    # attribute sets, which are few.
    if attrs ? outputHash then
      [ ]
    else
      filter isDerivation (filter isAttrs (values ++ concatLists (filter isList values)));

  # A derivation, once for all its outputs.
  node = drv: {
    key = unsafeDiscardStringContext drv.drvPath;
    inherit drv;
  };

  text = x: if isString x then unsafeDiscardStringContext x else null;

  # One of lib.licenses, or an expression of its operators. Absent fields
  # are null, which the builder reads as absent.
  license =
    depth: l:
    let
      next = license (depth + 1);
      type = l.licenseType or "simple";
    in
    if depth > 8 then
      { }
    else if isString l then
      unsafeDiscardStringContext l
    else if isList l then
      map next l
    else if !isAttrs l then
      { }
    else if type == "compound" && elem (l.operator or null) [ "AND" "OR" ] && isList (l.licenses or null) then
      {
        inherit (l) operator;
        licenses = map next l.licenses;
      }
    else if type == "exception" then
      {
        operator = "WITH";
        license = next (l.license or { });
        exception = next (l.exception or { });
      }
    else if type == "plus" then
      {
        operator = "+";
        license = next (l.license or { });
      }
    else
      {
        spdxId = text (l.spdxId or null);
        fullName = text (l.fullName or null);
        shortName = text (l.shortName or null);
        free = if isBool (l.free or null) then l.free else null;
      };

  # What a derivation says of its outputs, when it says anything.
  entry =
    { drv, ... }:
    let
      meta = if isAttrs (drv.meta or null) then drv.meta else { };
      homepage = meta.homepage or null;
      found = {
        paths = map (o: unsafeDiscardStringContext o.outPath) (outputsOf drv);
        pname = text (drv.pname or null);
        version = text (drv.version or null);
        description = text (meta.description or null);
        homepage = if isList homepage && homepage != [ ] then text (head homepage) else text homepage;
        license = if meta ? license then license 0 meta.license else null;
      };
      tried = tryEval (deepSeq found found);
    in
    if (meta != { } || drv ? pname || drv ? version) && tried.success then [ tried.value ] else [ ];
in

# The values given as units, contents and layers' roots; those that are not
# derivations are passed over.
roots:
concatMap entry (genericClosure {
  startSet = map node (filter isDerivation roots);
  operator = item: map node (inputsOf item.drv);
})
