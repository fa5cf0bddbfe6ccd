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
}:

let
  inherit (builtins)
    all
    attrNames
    concatStringsSep
    elem
    filter
    foldl'
    genList
    hasContext
    head
    isAttrs
    isList
    isPath
    isString
    length
    match
    seq
    split
    storeDir
    stringLength
    substring
    tail
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
  storeName = object: substring 33 (-1) (baseNameOf (unsafeDiscardStringContext "${object}"));

  words = s: filter (w: isString w && w != "") (split "[[:space:]]+" s);

  startsWith = prefix: s: substring 0 (stringLength prefix) s == prefix;

  # The rules below are the builder's too (src/unit_name.rs,
  # src/image_name.rs, src/compression.rs, src/symlink.rs, src/config.rs).

  portableTypes = [
    "service"
    "socket"
    "target"
    "timer"
    "path"
  ];
  allTypes = portableTypes ++ [
    "device"
    "mount"
    "automount"
    "swap"
    "slice"
    "scope"
  ];
  unitNameRe = "[A-Za-z0-9:_.\\-][A-Za-z0-9:_.\\@-]*\\.(${concatStringsSep "|" allTypes})";
  isUnitName = n: stringLength n <= 255 && match unitNameRe n != null;
  unitType = n: head (match ".*\\.([^.]*)" n);

  # portabled's prefix_match(): the prefix, then '-', '.', '@' or the end.
  matchesPrefix =
    prefix: name:
    startsWith prefix name
    && elem (substring (stringLength prefix) 1 name) [
      ""
      "-"
      "."
      "@"
    ];

  checkUnitName =
    prefix: name:
    if !isUnitName name then
      fail ''
        unit '${name}' is not a valid systemd unit name: PREFIX[@[INSTANCE]].TYPE, at most 255 characters of [A-Za-z0-9:_.\@-].''
    else if !elem (unitType name) portableTypes then
      fail ''
        unit '${name}' has type '${unitType name}', which portabled does not attach: the types it attaches are ${concatStringsSep ", " portableTypes}.''
    else if !(matchesPrefix prefix name) then
      fail ''
        unit '${name}' does not match the image prefix '${prefix}': portabled only attaches units named '${prefix}' followed by '.', '-' or '@'.
          Rename the unit (such as ${prefix}.service, ${prefix}-worker.service, ${prefix}@.service) or change pname.''
    else
      true;

  compressors = [
    "gzip"
    "lz4"
    "lzma"
    "lzo"
    "xz"
    "zstd"
  ];

  blockSizes = genList (i: foldl' (acc: _: acc * 2) 4096 (genList (x: x) i)) 9;

  # "1M", "128K" or "131072" (or an integer) in bytes, or null.
  parseBlockSize =
    spec:
    let
      m = match "([0-9]{1,8})([KkMm]?)" (toString spec);
      digits = head m;
      number = foldl' (acc: i: acc * 10 + builtins.fromJSON (substring i 1 digits)) 0 (
        genList (i: i) (stringLength digits)
      );
      suffix = builtins.elemAt m 1;
      factor =
        if suffix == "K" || suffix == "k" then
          1024
        else if suffix == "M" || suffix == "m" then
          1048576
        else
          1;
    in
    if m == null then null else number * factor;

  isInside = parent: path: startsWith "${parent}/" path;

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
  # The package that provides mksquashfs; either spelling works.
  squashfsTools ? null,
  squashfs-tools ? null,
  # `mksquashfs -comp`: a compressor and its -X options.
  squash-compression ? "xz -Xdict-size 100%",
  # `mksquashfs -b`: a power of two from 4K to 1M.
  squash-block-size ? "1M",
  # Makes this an extension image of that image (another portableService
  # result): it holds only the store paths the base lacks, and is attached
  # with `portablectl attach --extension THIS.raw BASE.raw PNAME`.
  base ? null,
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

  checkText =
    field: value:
    if value == null then
      true
    else if !isString value then
      fail "${field} must be a string or null"
    else if match "[^[:cntrl:]]*" value == null then
      fail "${field} ${builtins.toJSON value} has a newline or control character, which an os-release value cannot hold"
    else
      true;

  # Each entry of `units` as the builder gets it. `checkName` is false for
  # directory derivations, whose unit names only the builder can see.
  unitEntries = map (
    u:
    if isDerivation u || isPath u || (isString u && hasContext u) then
      let
        name = if isDerivation u then u.name else storeName u;
      in
      {
        inherit name;
        path = storePathOf "unit '${name}'" u;
        explicitName = false;
        # A name that looks like a unit file is one; NixOS's unit
        # derivations are directories named unit-<name>.
        checkName = isUnitName name && !(startsWith "unit-" name);
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
        checkName = true;
      }
    else
      fail "units must be derivations, paths or { name; file; } sets; got a ${builtins.typeOf u}"
  ) (if isList units then units else fail "units must be a list");

  namedUnits = filter (u: u.checkName) unitEntries;

  unitChecks =
    [ (unitEntries != [ ] || fail "units is empty: an image needs at least one unit") ]
    ++ map (u: checkUnitName pname u.name) namedUnits
    ++ map (
      u:
      length (filter (v: v.name == u.name) namedUnits) == 1
      || fail "two units are named '${u.name}'; portabled needs unit names to be unique"
    ) namedUnits;

  symlinkList = if isList symlinks then symlinks else fail "symlinks must be a list";

  isExtension = base != null;

  # Paths the image always has (src/plan.rs); a symlink may not replace
  # them, nor lie inside the files among them.
  unitDir = if isExtension then "/usr/lib/systemd/system" else "/etc/systemd/system";
  scaffoldDirs =
    [
      "/usr"
      "/usr/lib"
      "/usr/lib/portable-service"
    ]
    ++ (
      if isExtension then
        [
          "/usr/lib/systemd"
          "/usr/lib/systemd/system"
          "/usr/lib/extension-release.d"
        ]
      else
        [
          "/etc"
          "/etc/systemd"
          "/etc/systemd/system"
          "/proc"
          "/sys"
          "/dev"
          "/run"
          "/tmp"
          "/var"
          "/var/tmp"
          "/var/lib"
          "/var/cache"
          "/var/log"
        ]
    );
  scaffoldFiles =
    [ "/usr/lib/portable-service/closure.json" ]
    ++ (
      if isExtension then
        [ "/usr/lib/extension-release.d/extension-release.${pname}_${version}" ]
      else
        [
          "/etc/os-release"
          "/etc/resolv.conf"
          "/etc/machine-id"
        ]
    );

  symlinkChecks = map (
    s:
    let
      link = s.symlink or null;
      components = tail (filter isString (split "/" link));
    in
    if !isAttrs s || attrNames s != [
      "object"
      "symlink"
    ] then
      fail "each symlink must be { object; symlink; }"
    else if !isString link then
      fail "symlink must be a string"
    else if !startsWith "/" link then
      fail "symlink '${link}' is relative: it must be an absolute path such as '/${link}'"
    else if link == "/" || elem "" components || elem "." components || elem ".." components then
      fail "symlink '${link}' is not a normalised path: no empty, '.' or '..' components, no trailing '/'"
    else if link == "/nix" || isInside "/nix" link || link == "/usr/nix" || isInside "/usr/nix" link then
      fail "symlink '${link}' lands in /nix or /usr/nix, which hold the image's Nix store"
    else if isExtension && !(isInside "/usr" link || isInside "/opt" link) then
      fail "symlink '${link}' is outside /usr and /opt: systemd overlays only those of an extension image on its base"
    else if isInside unitDir link then
      fail "symlink '${link}' lands in ${unitDir}, where portabled looks for units: pass units in `units`"
    else if elem link (scaffoldDirs ++ scaffoldFiles) then
      fail "symlink '${link}' lands on ${link}, which the image already has"
    else if builtins.any (f: isInside f link) scaffoldFiles then
      fail "symlink '${link}' would lie inside a file the image already has"
    else if length (filter (o: o.symlink or null == link) symlinkList) > 1 then
      fail "symlink '${link}' is given twice"
    else if builtins.any (o: isString (o.symlink or null) && isInside o.symlink link) symlinkList then
      fail "symlink '${link}' would lie inside another symlink"
    else if !(isStoreObject s.object) then
      fail "symlink '${link}' points to '${toString s.object}', which must be a path in the Nix store with its dependency known (write \"\${pkgs.foo}/bin/foo\")"
    else
      seq (storePathOf "symlink '${link}' object" s.object) true
  ) symlinkList;

  blockSize = parseBlockSize squash-block-size;
  compression = words (toString squash-compression);

  argumentChecks = [
    (
      isString pname && match "[A-Za-z0-9][A-Za-z0-9.-]*" pname != null
      || fail "pname '${toString pname}' is not a valid image prefix: portablectl needs one or more of [A-Za-z0-9.-], starting with a letter or digit (and no '_', which separates the version)"
    )
    (
      isString version && match "[A-Za-z0-9._+-]+" version != null
      || fail "version '${toString version}' would break the image file name: it must be one or more of [A-Za-z0-9._+-]"
    )
    (
      stringLength fileName <= 255
      || fail "image file name '${fileName}' is ${toString (stringLength fileName)} bytes long; the limit is 255"
    )
    (checkText "description" description)
    (checkText "homepage" homepage)
    (
      isList contents && all isStoreObject contents
      || fail "contents must be a list of derivations or paths"
    )
    (
      compression != [ ] && elem (head compression) compressors
      || fail "squash-compression '${toString squash-compression}' names an unknown compressor: use one of ${concatStringsSep ", " compressors}"
    )
    (
      all (w: !(startsWith "-" w) || startsWith "-X" w) compression
      || fail "squash-compression '${toString squash-compression}' has an option that is not the compressor's own: only -X options may follow its name"
    )
    (
      elem blockSize blockSizes
      || fail "squash-block-size '${toString squash-block-size}' is not a power of two from 4K to 1M (write it in bytes or with a K or M suffix, as in \"128K\")"
    )
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
        !(matchesPrefix pname name)
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

  image = derivation (discardReferences // {
    name = "${pname}-img-${version}";
    system = portable-service-builder.system or builtins.currentSystem;
    builder = "${portable-service-builder}/bin/portable-service-builder";
    __structuredAttrs = true;
    attrsVersion = 1;
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
    exportReferencesGraph.closure =
      map (u: u.path) unitEntries
      ++ map (c: storePathOf "contents" c) contents
      ++ map (s: storePathOf "symlink '${s.symlink}' object" s.object) symlinkList;
  });

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

  allPassthru = {
    imageFileName = fileName;
    imagePath = "${image}/${fileName}";
    tests = {
      inherit verify;
    };
    inherit isExtension;
    # The unit names known at evaluation time (those inside directories
    # are only known to the build), for extensions' checks.
    unitNames = map (u: u.name) namedUnits;
  } // passthru;
in
checked (argumentChecks ++ unitChecks ++ symlinkChecks ++ baseChecks) (
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
