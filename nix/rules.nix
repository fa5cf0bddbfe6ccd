# The rules for portableService's arguments, checked at evaluation time:
# each is a function that returns null when the value is good and otherwise
# the message that names the value and the rule. portable-service.nix
# throws them; the builder applies the same rules, with the same words, to
# what only the build can see (src/systemd/unit_name.rs, image_name.rs,
# src/builder/compression.rs, symlink.rs, config.rs), and
# tests/data/argument-rules.json holds the cases both sides must agree on.
#
# Only builtins are used, so that this evaluates without nixpkgs.
let
  inherit (builtins)
    any
    concatStringsSep
    elem
    elemAt
    filter
    foldl'
    genList
    hasContext
    head
    isAttrs
    isInt
    isPath
    isString
    length
    listToAttrs
    match
    split
    storeDir
    stringLength
    substring
    toJSON
    typeOf
    unsafeDiscardStringContext
    ;

  layout = import ./layout.nix;

  startsWith = prefix: s: substring 0 (stringLength prefix) s == prefix;

  # Whether the normalised absolute `path` is `dir` or lies under it.
  isAtOrUnder = dir: path: path == dir || startsWith "${dir}/" path;

  words = s: filter (w: isString w && w != "") (split "[[:space:]]+" s);

  # The first message of `messages` that is not null, or null.
  first = messages: foldl' (found: m: if found != null then found else m) null messages;

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
  unitType = name: head (match ".*\\.([^.]*)" name);

  # mksquashfs also writes lzma, which the kernel does not read
  # (fs/squashfs/decompressor.c has no lzma decompressor).
  compressors = [
    "gzip"
    "lz4"
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
      suffix = elemAt m 1;
      factor =
        if suffix == "K" || suffix == "k" then
          1024
        else if suffix == "M" || suffix == "m" then
          1048576
        else
          1;
    in
    if m == null then null else number * factor;

  formats = [
    "squashfs"
    "ddi"
  ];

  # Null for a normalised absolute path, else why it is not one, in the
  # builder's words (ImagePath::parse).
  notNormalised =
    path:
    let
      components = filter isString (split "/" path);
    in
    if path == "/" || any (c: c == "" || c == "." || c == "..") (builtins.tail components) then
      "'${path}' is not a normalised path: no empty, '.' or '..' components, no trailing '/'"
    else
      null;

  # What the image always has at `path` (layout.scaffold), or null.
  scaffoldKind =
    scaffold: path:
    if elem path scaffold.files then
      "a file"
    else if elem path scaffold.dirs then
      "a directory"
    else if elem path scaffold.symlinks then
      "a symlink to '${layout.storeLink.target}'"
    else
      null;

  # The first entry of `list` at each path (its `key`): its index and what
  # it is (`kindOf`), as the builder describes it.
  firstAt =
    list: key: kindOf:
    listToAttrs (
      genList (i: {
        name = (elemAt list i).${key};
        value = {
          inherit i;
          kind = kindOf (elemAt list i);
        };
      }) (length list)
    );

  # The index of the first entry of `list` below each path, which made it
  # a directory.
  firstBelow =
    list: key:
    listToAttrs (
      builtins.concatMap (
        i:
        map (a: {
          name = a;
          value = i;
        }) (layout.ancestors (elemAt list i).${key})
      ) (genList (i: i) (length list))
    );

  symlinkKind = s: "a symlink to '${s.object}'";

in
rec {
  inherit
    compressors
    isAtOrUnder
    parseBlockSize
    portableTypes
    startsWith
    words
    ;

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

  isUnitName = name: stringLength name <= 255 && match unitNameRe name != null;

  pname =
    value:
    if isString value && match "[A-Za-z0-9][A-Za-z0-9.-]*" value != null then
      null
    else
      "pname '${toString value}' is not a valid image prefix: portablectl needs one or more of [A-Za-z0-9.-], starting with a letter or digit (and no '_', which separates the version)";

  version =
    value:
    if isString value && match "[A-Za-z0-9._+-]+" value != null then
      null
    else
      "version '${toString value}' would break the image file name: it must be one or more of [A-Za-z0-9._+-]";

  fileName =
    name:
    if stringLength name <= 255 then
      null
    else
      "image file name '${name}' is ${toString (stringLength name)} bytes long; the limit is 255";

  unitName =
    prefix: name:
    if !isUnitName name then
      "unit '${name}' is not a valid systemd unit name: PREFIX[@[INSTANCE]].TYPE, at most 255 characters of [A-Za-z0-9:_.\\@-]"
    else if !elem (unitType name) portableTypes then
      "unit '${name}' has type '${unitType name}', which portabled does not attach: the types it attaches are ${concatStringsSep ", " portableTypes}"
    else if !(matchesPrefix prefix name) then
      "unit '${name}' does not match the image prefix '${prefix}': portabled only attaches units named '${prefix}' followed by '.', '-' or '@' (such as ${prefix}.service, ${prefix}-worker.service, ${prefix}@.service)"
    else
      null;

  # Units [ { name; path; } ] whose names are known: no two of one name,
  # compared by position, so that one entry given twice is caught too
  # (builder/units.rs check_unique).
  units =
    entries:
    let
      indexed = genList (i: (elemAt entries i) // { index = i; }) (length entries);
      # listToAttrs keeps the first entry of each name.
      first = listToAttrs (
        map (u: {
          inherit (u) name;
          value = u;
        }) indexed
      );
      twice = filter (u: first.${u.name}.index != u.index) indexed;
      u = head twice;
    in
    if twice == [ ] then null else "two units are named '${u.name}': ${first.${u.name}.path} and ${u.path}";

  # `description` and `homepage` go into os-release, one line each.
  text =
    field: value:
    if value == null then
      null
    else if !isString value then
      "${field} must be a string or null, not a ${typeOf value}"
    else if match "[^[:cntrl:]]*" value == null then
      "${field} ${toJSON value} has a newline or control character, which an os-release value cannot hold"
    else
      null;

  compression =
    spec:
    let
      ws = words (toString spec);
      compressor = if ws == [ ] then "" else head ws;
      foreign = filter (w: startsWith "-" w && !(startsWith "-X" w)) ws;
    in
    if compressor == "lzma" then
      "squash-compression '${toString spec}' names lzma, which the Linux kernel does not read: portabled could not attach the image; use xz"
    else if !elem compressor compressors then
      "squash-compression '${toString spec}' names an unknown compressor '${compressor}': use one of ${concatStringsSep ", " compressors}"
    else if foreign != [ ] then
      "squash-compression '${toString spec}' has the option '${head foreign}': only the compressor's own -X options may follow its name"
    else
      null;

  format =
    value:
    if elem value formats then null else "format '${toString value}' is not one of ${concatStringsSep ", " formats}";

  blockSize =
    spec:
    if (isString spec || isInt spec) && elem (parseBlockSize spec) blockSizes then
      null
    else
      "squash-block-size '${toString spec}' is not a power of two from 4K to 1M (write it in bytes or with a K or M suffix, as in \"128K\")";

  # One symlink's own rules, in the builder's order: an absolute,
  # normalised path outside the reserved ones, to an object in the store
  # whose dependency Nix knows, and in an extension image under /usr or
  # /opt.
  # Where the user may put something in an image (builder/placement.rs):
  # an absolute, normalised path outside what the layout reserves, and in
  # an extension image under the roots systemd overlays on its base. Null,
  # or why not; `what` names the entry.
  placement =
    what: extension: path:
    let
      reserved = filter (r: isAtOrUnder r.path path) layout.reserved;
    in
    if !startsWith "/" path then
      "${what} is relative: it must be an absolute path such as '/${path}'"
    else if notNormalised path != null then
      "${what}: ${notNormalised path}"
    else if reserved != [ ] then
      "${what} lands in ${(head reserved).path}, ${(head reserved).why}"
    else if extension && !any (root: isAtOrUnder root path) layout.extensionRoots then
      "${what} is outside ${concatStringsSep " and " layout.extensionRoots}: systemd overlays only those of an extension image on its base"
    else
      null;

  symlink =
    extension: s:
    let
      link = s.symlink or null;
      object = s.object or null;
      objectString = if isString object || isPath object || isAttrs object then "${object}" else null;
      placed = placement "symlink '${link}'" extension link;
    in
    if !isAttrs s || builtins.attrNames s != [ "object" "symlink" ] then
      "each symlink must be { object; symlink; }, not ${toJSON (if isAttrs s then builtins.attrNames s else typeOf s)}"
    else if !isString link then
      "symlink must be a string, not a ${typeOf link}"
    else if placed != null then
      placed
    else if objectString == null || match "${storeDir}/[0-9a-df-np-sv-z]{32}-[A-Za-z0-9+._?=-]+(/.*)?" (unsafeDiscardStringContext objectString) == null then
      "symlink '${link}' points to '${toString objectString}', which must be a path in the Nix store"
    else if !(hasContext objectString || isPath object || isAttrs object) then
      "symlink '${link}' points to '${objectString}', a store path Nix does not know it depends on: write \"\${pkgs.foo}/bin/foo\", not the path as a plain string"
    else
      null;

  # Where the symlinks meet each other or what the image always has
  # (layout.scaffold), as the builder finds it when it adds them to the
  # image's tree one by one: a symlink may not lie inside a file or an
  # earlier symlink, nor land where something already is (a directory
  # made for an earlier symlink too). Each symlink is looked up by its own
  # path and its ancestors', so this stays near-linear in their number.
  symlinkCollisions =
    scaffold: symlinks:
    let
      indices = genList (i: i) (length symlinks);
      links = firstAt symlinks "symlink" symlinkKind;
      below = firstBelow symlinks "symlink";
      # What `path` is when symlink i is added, or null.
      kindBefore =
        i: path:
        let
          link = links.${path} or null;
        in
        if scaffoldKind scaffold path != null then
          scaffoldKind scaffold path
        else if link != null && link.i < i then
          link.kind
        else if (below.${path} or i) < i then
          "a directory"
        else
          null;
      check =
        i:
        let
          link = (elemAt symlinks i).symlink;
          inside = filter (a: !elem (kindBefore i a) [ null "a directory" ]) (layout.ancestors link);
        in
        if inside != [ ] then
          "symlink '${link}': '${link}' would lie inside '${head inside}', which is ${kindBefore i (head inside)}"
        else if kindBefore i link != null then
          "symlink '${link}': '${link}' is already in the image, as ${kindBefore i link}"
        else
          null;
    in
    first (map check indices);

  # One mountPoints entry, as portable-service.nix normalises it to
  # { path; type; }: an absolute, normalised path outside the reserved
  # ones (in an extension image, under /usr or /opt), of type "directory"
  # or "file".
  mountPoint =
    extension: m:
    let
      entry = "mountPoints entry '${m.path}'";
    in
    if !elem m.type [ "directory" "file" ] then
      "${entry} has type '${m.type}': use \"directory\" or \"file\""
    else
      placement entry extension m.path;

  # Where the mount points meet what the image has by then (layout.scaffold,
  # the symlinks, the mount points before them), as the builder finds it:
  # what is there already does if it is of the same kind.
  mountPointCollisions =
    scaffold: symlinks: mountPoints:
    let
      links = firstAt symlinks "symlink" symlinkKind;
      belowLinks = firstBelow symlinks "symlink";
      points = firstAt mountPoints "path" (m: if m.type == "file" then "a file" else "a directory");
      belowPoints = firstBelow mountPoints "path";
      # What `path` is when mount point j is added, or null.
      kindBefore =
        j: path:
        let
          point = points.${path} or null;
        in
        if scaffoldKind scaffold path != null then
          scaffoldKind scaffold path
        else if links ? ${path} then
          links.${path}.kind
        else if belowLinks ? ${path} then
          "a directory"
        else if point != null && point.i < j then
          point.kind
        else if (belowPoints.${path} or j) < j then
          "a directory"
        else
          null;
      check =
        j:
        let
          m = elemAt mountPoints j;
          wanted = if m.type == "file" then "a file" else "a directory";
          by = "mountPoints entry '${m.path}' needs ${m.path}";
          inside = filter (a: !elem (kindBefore j a) [ null "a directory" ]) (layout.ancestors m.path);
          there = kindBefore j m.path;
        in
        if inside != [ ] then
          "${by}: '${m.path}' would lie inside '${head inside}', which is ${kindBefore j (head inside)}"
        else if there != null && there != wanted then
          "${by}: '${m.path}' is already in the image, as ${there}"
        else
          null;
    in
    first (genList check (length mountPoints));
}
