# portableService: systemd portable service images (`NAME_VERSION.raw`,
# read-only squashfs) holding services and their whole Nix closure.
#
# A drop-in replacement for nixpkgs' `pkgs.portableService`: the same
# arguments and defaults, checked here at evaluation time, with the image
# built by the compiled `portable-service-builder`. This file uses only
# `builtins` and the packages it is given, so it evaluates with or without
# nixpkgs.
{
  # The builder, `bin/portable-service-builder`.
  portable-service-builder,
  # The default package that provides `bin/mksquashfs`. Current nixpkgs
  # calls it `squashfs-tools`, older nixpkgs `squashfsTools`; callPackage
  # passes whichever exists.
  squashfs-tools ? null,
  squashfsTools ? null,
  # Where the image's services run (a disk image's root partition type is
  # that architecture's); without it, where the image is built.
  stdenv ? null,
}:

let
  inherit (builtins)
    all
    attrNames
    elem
    concatStringsSep
    filter
    hasContext
    head
    isAttrs
    isList
    isPath
    isString
    match
    seq
    storeDir
    stringLength
    substring
    unsafeDiscardStringContext
    ;

  fail = message: throw "portableService: ${message}";

  # Runs every check (each is `true` or throws) before `value` is used.
  checked = checks: value: seq (all (c: c) checks) value;

  isDerivation = x: isAttrs x && x.type or null == "derivation";

  # Nix values that name a store object: derivations, paths, and strings
  # with context such as "${pkgs.hello}/bin/hello".
  isStoreObject = x: isDerivation x || isPath x || (isString x && hasContext x);

  # The store path of `object` (which may name a path inside one), keeping
  # the string context so that Nix knows what it depends on.
  # `exportReferencesGraph` only takes store paths themselves.
  storePathOf =
    what: object:
    let
      s = "${object}";
      m = match "(${storeDir}/[^/]+).*" (unsafeDiscardStringContext s);
    in
    if m == null then
      fail "${what} is '${s}', which is not in the Nix store ${storeDir}"
    else
      substring 0 (stringLength (head m)) s;

  # The name a store object has in the store, without its hash.
  storeName = object: head (match "[^-]*-(.*)" (baseNameOf (unsafeDiscardStringContext "${object}")));

  rules = import ./rules.nix;
  layout = import ./layout.nix;

  # Turns a rule's message (null when the value is good) into a check.
  check = message: message == null || fail message;

  defaultSquashfsTools = if squashfs-tools != null then squashfs-tools else squashfsTools;
in

{
  # The service's name: the image prefix, `PORTABLE_PREFIXES` and the start
  # of every unit's name. [A-Za-z0-9.-], starting with a letter or digit.
  pname,
  # Part of the file name `${pname}_${version}.raw`. [A-Za-z0-9._+-].
  version,
  # Unit files: derivations of one file named after the unit
  # (writeText "demo.service" ...), derivations whose output is a directory
  # of unit files (NixOS's systemd.units.<name>.unit, template units), or
  # { name = "demo@.service"; file = <one file>; }.
  units,
  # PORTABLE_PRETTY_NAME in os-release; left out when null or empty.
  description ? null,
  # HOME_URL in os-release; left out when null or empty.
  homepage ? null,
  # [ { object = "${pkgs.bash}/bin/bash"; symlink = "/bin/sh"; } ]: links in
  # the image's root to objects in the store.
  symlinks ? [ ],
  # More derivations whose closures go into the image's store.
  contents ? [ ],
  # Mount points the image has besides those its units' settings need
  # (which the builder finds): "/srv/data", or { path; type = "file"; }
  # where a file is bound. A read-only image cannot have systemd create
  # them when a unit starts.
  mountPoints ? [ ],
  # The package that provides mksquashfs; either spelling works.
  squashfsTools ? null,
  squashfs-tools ? null,
  # `mksquashfs -comp`: a compressor and its -X options. nixpkgs' default,
  # kept so that images come out the same size: xz with a dictionary as
  # large as a block gives the smallest images; "zstd -Xcompression-level
  # 19" builds and reads several times faster for about 10% more bytes.
  squash-compression ? "xz -Xdict-size 100%",
  # `mksquashfs -b`: a power of two from 4K to 1M. nixpkgs' default: the
  # largest blocks compress best, and an image is mostly read once, at
  # start; small blocks (128K) start a large program sooner.
  squash-block-size ? "1M",
  # "squashfs": the image is the squashfs, as nixpkgs makes it. "ddi": a
  # Discoverable Disk Image, the squashfs in a GPT partition with its
  # dm-verity hash tree in another, which `portable-service-builder sign`
  # can sign.
  format ? "squashfs",
  # Builds the image in layers, each compressed in a derivation of its
  # own: [ [ pkgs.jdk ] [ pkgs.python3 pkgs.glibcLocales ] ]. A layer holds
  # the closure of its roots less what earlier layers hold; everything else
  # (units, programs, scaffold) is the final layer. The roots go into the
  # image's store, as contents do.
  layers ? [ ],
  # Makes this an extension image of that image (another portableService
  # result): it holds only the store paths the base lacks, and is attached
  # with `portablectl attach --extension THIS.raw BASE.raw PNAME`.
  base ? null,
  # Whether to walk the derivations given as units, contents and layers'
  # roots, and their inputs, for nixpkgs' meta (licences, description,
  # homepage), which the image's manifest keeps for
  # `portable-service-builder sbom` (nix/meta.nix says what it reads).
  collectMeta ? true,
  # Merged into the result's meta and passthru.
  meta ? { },
  passthru ? { },
}:

let
  squashfsPackage =
    if squashfsTools != null && squashfs-tools != null then
      fail "both squashfsTools and squashfs-tools are given; pass only one (they are the same argument)"
    else if squashfsTools != null then
      squashfsTools
    else if squashfs-tools != null then
      squashfs-tools
    else if defaultSquashfsTools != null then
      defaultSquashfsTools
    else
      fail "no squashfs-tools package: pass squashfsTools = <package providing bin/mksquashfs>";

  fileName = "${pname}_${version}.raw";

  # Each entry of `units` as the builder gets it. `nameKnown` is false for
  # directory derivations, whose unit names only the builder can see.
  unitEntries = map (
    u:
    if isStoreObject u then
      let
        name = if isDerivation u then u.name else storeName u;
      in
      {
        inherit name;
        path = storePathOf "unit '${name}'" u;
        explicitName = false;
        # A name that looks like a unit file is one; NixOS's unit
        # derivations are directories named unit-<name>.
        nameKnown = rules.isUnitName name && !(rules.startsWith "unit-" name);
      }
    else if isAttrs u && attrNames u == [
      "file"
      "name"
    ] then
      {
        inherit (u) name;
        path =
          if isStoreObject u.file then
            storePathOf "unit '${u.name}'" u.file
          else
            fail "unit '${u.name}': file must be a derivation or path of one unit file";
        explicitName = true;
        nameKnown = true;
      }
    else
      fail "units must be derivations, paths or { name; file; } sets; got a ${builtins.typeOf u}"
  ) (if isList units then units else fail "units must be a list");

  namedUnits = filter (u: u.nameKnown) unitEntries;

  unitChecks =
    [ (unitEntries != [ ] || fail "units is empty: an image needs at least one unit") ]
    ++ map (u: check (rules.unitName pname u.name)) namedUnits
    ++ [ (check (rules.units namedUnits)) ];

  symlinkList = if isList symlinks then symlinks else fail "symlinks must be a list";

  isExtension = base != null;

  # Each entry of `mountPoints` as { path; type; }.
  mountPointList = map (
    m:
    if isString m then
      {
        path = m;
        type = "directory";
      }
    else if isAttrs m && m ? path && isString m.path && all (n: elem n [ "path" "type" ]) (attrNames m) then
      {
        inherit (m) path;
        type = m.type or "directory";
      }
    else
      fail "each of mountPoints must be a path or { path; type; }, not ${builtins.toJSON m}"
  ) (if isList mountPoints then mountPoints else fail "mountPoints must be a list");

  # What the image always has, which symlinks and mount points meet.
  scaffold = layout.scaffold {
    extension = isExtension;
    imageFileName = fileName;
  };

  mountPointChecks =
    map (m: check (rules.mountPoint isExtension m)) mountPointList
    ++ [ (check (rules.mountPointCollisions scaffold symlinkList mountPointList)) ];

  symlinkChecks =
    map (s: check (rules.symlink isExtension s)) symlinkList
    ++ [ (check (rules.symlinkCollisions scaffold symlinkList)) ];

  blockSize = rules.parseBlockSize squash-block-size;
  compression = rules.words (toString squash-compression);

  argumentChecks = [
    (check (rules.pname pname))
    (check (rules.version version))
    (check (rules.fileName fileName))
    (check (rules.text "description" description))
    (check (rules.text "homepage" homepage))
    (
      isList contents && all isStoreObject contents
      || fail "contents must be a list of derivations or paths, not ${builtins.toJSON (map builtins.typeOf (if isList contents then contents else [ contents ]))}"
    )
    (check (rules.compression squash-compression))
    (check (rules.blockSize squash-block-size))
    (check (rules.format format))
    (builtins.isBool collectMeta || fail "collectMeta must be true or false, not ${builtins.toJSON collectMeta}")
    (isStoreObject squashfsPackage || fail "squashfsTools must be a package providing bin/mksquashfs")
  ];

  baseChecks =
    if !isExtension then
      [ ]
    else if !(isDerivation base && base ? imageFileName && base ? isExtension) then
      [ (fail "base must be an image built by portableService (a derivation with passthru.imageFileName)") ]
    else if base.isExtension then
      [ (fail "base ${base.imageFileName} is itself an extension image: an extension's base must be a full image") ]
    else if base.pname == pname then
      [ (fail "this extension's pname '${pname}' is its base's too: an extension needs a prefix of its own") ]
    else
      map (
        name:
        !(rules.matchesPrefix pname name)
        || fail "the base image ${base.imageFileName} has the unit '${name}', which matches this extension's prefix '${pname}': portablectl would attach the base's unit too; choose a pname that no unit of the base starts with"
      ) base.unitNames;

  # The image holds its whole closure, so it needs none of it outside: but
  # Nix scans the output for store path names, which lz4 (and at times the
  # other compressors) leaves readable, and would keep the closure alive
  # beside the image and copy it along. unsafeDiscardReferences drops
  # them. It is stable from Nix 2.18; 2.14 to 2.17 refuse the build
  # without the experimental feature `discard-references`, and older Nix
  # ignores it, so it is set only where it works.
  discardReferences =
    if builtins.compareVersions builtins.nixVersion "2.18" >= 0 then
      { unsafeDiscardReferences.out = true; }
    else
      { };

  system = portable-service-builder.system or builtins.currentSystem;

  # The version of the .attrs.json contract with the builder
  # (src/builder/attrs.rs ATTRS_VERSION), for every job this file makes.
  attrsVersion = 3;

  # What every job of this image's build shares.
  jobAttrs = discardReferences // {
    inherit system;
    hostSystem = if stdenv != null then stdenv.hostPlatform.system else system;
    builder = "${portable-service-builder}/bin/portable-service-builder";
    __structuredAttrs = true;
    inherit attrsVersion;
    squashCompression = concatStringsSep " " compression;
    squashBlockSize = toString blockSize;
    mksquashfs = "${squashfsPackage}/bin/mksquashfs";
    base =
      if isExtension then
        {
          image = "${base}/${base.imageFileName}";
          inherit (base) pname;
        }
      else
        null;
  };

  # The store paths the arguments name: the closure's roots.
  roots =
    map (u: u.path) unitEntries
    ++ map (c: storePathOf "contents" c) contents
    ++ map (s: storePathOf "symlink '${s.symlink}' object" s.object) symlinkList
    ++ layered.roots;

  # The image, or its final layer: everything but what the layers hold.
  imageJob = derivation (
    jobAttrs
    // {
      name = if layered.none then "${pname}-img-${version}" else "${pname}-final-layer-${version}";
      inherit
        pname
        version
        description
        homepage
        ;
      units = map (u: { inherit (u) name path explicitName; }) unitEntries;
      symlinks = map (s: {
        inherit (s) symlink;
        object = "${s.object}";
      }) symlinkList;
      mountPoints = mountPointList;
      # A final layer is squashfs; the assembly makes the image's format.
      format = if layered.none then format else "squashfs";
      inherit roots;
      packageMeta =
        if collectMeta then
          import ./meta.nix (
            map (u: if isDerivation u then u else u.file or null) units ++ contents ++ builtins.concatLists layered.list
          )
        else
          [ ];
      exportReferencesGraph = {
        closure = roots;
      }
      // (if layered.none then { } else { layered = layered.roots; });
    }
    // (if layered.none then { } else { outputFile = layered.file; })
  );

  layered = import ./layers.nix { inherit fail storePathOf isStoreObject; } {
    inherit
      layers
      pname
      version
      jobAttrs
      fileName
      format
      ;
  };

  image = layered.image imageJob;

  # `portable-service-builder verify` on the image, in a derivation of its
  # own: it builds (its output is the report) only when the image holds its
  # whole closure, byte for byte, and follows portabled's rules.
  verify = derivation {
    name = "${pname}-img-${version}-verify";
    inherit (image) system;
    builder = "${portable-service-builder}/bin/portable-service-builder";
    args =
      [
        "verify"
        "${image}/${fileName}"
        "--report"
        (builtins.placeholder "out")
      ]
      ++ (
        if isExtension then
          [
            "--base"
            "${base}/${base.imageFileName}"
          ]
        else
          [ ]
      );
  };

  # `portable-service-builder sbom` on the image: its CycloneDX document,
  # the bytes `sbom` prints for the built image, by construction. No
  # SOURCE_DATE_EPOCH here, so no timestamp.
  sbom = derivation {
    # Named as a feed keeps it beside its image (publish takes a store
    # object's name).
    name = "${pname}_${version}.cdx.json";
    inherit (image) system;
    builder = "${portable-service-builder}/bin/portable-service-builder";
    args = [
      "sbom"
      "${image}/${fileName}"
      "--output"
      (builtins.placeholder "out")
    ];
  };

  allPassthru = {
    imageFileName = fileName;
    imagePath = "${image}/${fileName}";
    tests = {
      inherit verify;
    };
    inherit sbom;
    inherit isExtension;
    # The unit names known at evaluation time (those inside directories
    # are only known to the build), for extensions' checks.
    unitNames = map (u: u.name) namedUnits;
    # The image as a feed of one version: the file and its SHA256SUMS,
    # which `portable-service-builder publish` adds to a feed.
    release = import ./release.nix { inherit portable-service-builder; } {
      inherit pname version system;
      image = "${image}/${fileName}";
      # Named "${pname}_${version}.cdx.json", a companion publish keeps and
      # prunes with the image (not "${fileName}.…", which systemd-sysupdate
      # 257 would take for the image).
      companions = [ "${sbom}" ];
    };
    # { url; verify ? true; instancesMax ? 2; }: what a host lays over its
    # / to follow that feed with systemd-sysupdate.
    sysupdate = import ./sysupdate.nix { inherit portable-service-builder fail; } {
      inherit pname system attrsVersion;
    };
  } // passthru;
in
checked (argumentChecks ++ unitChecks ++ symlinkChecks ++ mountPointChecks ++ layered.checks ++ baseChecks) (
  image
  // allPassthru
  // {
    passthru = allPassthru;
    meta = {
      description = if description != null then description else "Portable service image ${fileName}";
      platforms = [
        "x86_64-linux"
        "aarch64-linux"
      ];
    } // (if homepage != null then { inherit homepage; } else { }) // meta;
  }
)
