# The benchmark's closures and images (bench/run builds them).
#
# Closures are real store paths made from the host's files, with a reference
# graph between them: each chunk of a group copies a contiguous slice of a
# sorted `find` over part of /usr, and lists the store paths of the chunks
# it depends on in nix-support/bench-references, which Nix finds when it
# scans the output. Chunk i of a group depends on chunks 2i+1, 2i+2 and i+3
# of the group (a DAG whose root is chunk 0); a root file lists every
# group's chunk 0, and the service's unit refers to the root, so the unit's
# closure is the whole group. The derivations depend only on this file,
# so the store paths are built once and reused by every run.
#
#   small  the demo (nix/demo.nix)
#   large  /usr/lib/x86_64-linux-gnu without dri/ (shared libraries, 100
#          chunks) and /usr/share/man (small files, 60 chunks)
#   many   every regular file under /usr smaller than 32 KiB (100 chunks)
#
# images.<closure>-<compressor>-<ours|baseline>: the image of a closure
# built by our portableService or by the nixpkgs algorithm (baseline.nix),
# with the same arguments. With a `nonce`, every image is a new derivation,
# so nix-build really builds it.
{
  builderBinary ? ../target/release/portable-service-builder,
  # A string that makes every image a new derivation (bench/run passes one
  # per run) without changing the image: it only adds the attribute
  # benchRun, which neither builder reads.
  nonce ? "",
}:

let
  inherit (builtins)
    concatStringsSep
    elemAt
    filter
    genList
    listToAttrs
    map
    stringLength
    substring
    ;

  host = import ../nix/host.nix { inherit builderBinary; };
  inherit (host) runCommand writeText;

  baselinePortableService = import ./baseline.nix {
    inherit (host) runCommand squashfsTools system;
  };

  pad = i: let s = toString i; in substring 0 (3 - stringLength s) "000" + s;

  # A meta shaped as nixpkgs' (lib.licenses.mit), for bench/meta's walk.
  # Added with `//`, it leaves the derivations as they were.
  chunkMeta = name: {
    description = "Benchmark chunk ${name}";
    homepage = "https://example.org/${name}";
    license = {
      shortName = "mit";
      spdxId = "MIT";
      fullName = "MIT License";
      url = "https://spdx.org/licenses/MIT.html";
      free = true;
      deprecated = false;
      redistributable = true;
      licenseType = "simple";
    };
  };

  # `count` store paths holding the files that `find` lists, in slices.
  group =
    {
      name,
      find,
      count,
    }:
    let
      deps =
        i:
        filter (j: j < count) (
          [
            (2 * i + 1)
            (2 * i + 2)
          ]
          ++ (if i + 3 != 2 * i + 1 && i + 3 != 2 * i + 2 then [ (i + 3) ] else [ ])
        );
      chunks = genList (
        i:
        { meta = chunkMeta "bench-${name}-${pad i}"; }
        // runCommand "bench-${name}-${pad i}"
          {
            references = map (j: elemAt chunks j) (deps i);
          }
          ''
            mkdir -p "$out/nix-support"
            find ${find} | LC_ALL=C sort > list
            total=$(wc -l < list)
            first=$(( ${toString i} * total / ${toString count} + 1 ))
            last=$(( (${toString i} + 1) * total / ${toString count} ))
            sed -n "$first,''${last}p" list | xargs -r -d '\n' cp -d --parents -t "$out"
            for r in $references; do echo "$r"; done > "$out/nix-support/bench-references"
          ''
      ) count;
    in
    elemAt chunks 0;

  # The store path that lists each group's chunk 0: the top of a closure.
  root = name: groups: writeText "bench-${name}-root" (concatStringsSep "\n" (map group groups) + "\n");

  closure = name: groups: {
    pname = "bench-${name}";
    version = "1";
    description = "Benchmark closure ${name}";
    units = [
      (writeText "bench-${name}.service" ''
        [Service]
        ExecStart=/bin/sh -c 'cat ${root name groups}'
      '')
    ];
  };

  largeGroups = [
    {
      name = "large-lib";
      find = "/usr/lib/x86_64-linux-gnu -path /usr/lib/x86_64-linux-gnu/dri -prune -o \\( -type f -o -type l \\) -print";
      count = 100;
    }
    {
      name = "large-man";
      find = "/usr/share/man \\( -type f -o -type l \\) -print";
      count = 60;
    }
  ];

  closures = {
    large = closure "large" largeGroups;
    many = closure "many" [
      {
        name = "many";
        find = "/usr -xdev -type f -size -32k -print";
        count = 100;
      }
    ];
  };

  compressors = {
    xz = "xz -Xdict-size 100%";
    zstd = "zstd";
    lz4 = "lz4";
  };

  builders = {
    ours = host.portableService;
    baseline = baselinePortableService;
  };

  withNonce =
    drv: if nonce == "" then drv else derivation (drv.drvAttrs // { benchRun = nonce; });

  image =
    closureName: compressor: builder:
    withNonce (imageOf closureName compressor builder);

  imageOf =
    closureName: compressor: builder:
    let
      portableService = args: builders.${builder} (args // { squash-compression = compressors.${compressor}; });
    in
    if closureName == "small" then
      import ../nix/demo.nix {
        inherit portableService;
        inherit (host) busybox writeText runCommand;
      }
    else
      portableService closures.${closureName};

  images = listToAttrs (
    concatLists (
      map (
        c:
        concatLists (
          map (
            z:
            map (b: {
              name = "${c}-${z}-${b}";
              value = image c z b;
            }) (builtins.attrNames builders)
          ) (builtins.attrNames compressors)
        )
      ) [ "small" "large" "many" ]
    )
  );

  concatLists = builtins.concatLists;
  # bench/extension and bench/layered: a small service on the large
  # closure. The nonce changes only the service's program, as an update of
  # the service would.
  largeRoot = root "large" largeGroups;
  program = host.writeScript "bench-app" ''
    #!/bin/sh
    # run ${nonce}
    exec cat ${largeRoot}
  '';
  app = {
    pname = "bench-app";
    version = "1";
    units = [
      (writeText "bench-app.service" ''
        [Service]
        ExecStart=${program}
      '')
    ];
  };

  # bench/extension: the service as an extension image of a large base
  # (the large closure), and as a single image holding everything, as one
  # would build it without extensions.
  extension =
    let
      base = host.portableService {
        pname = "bench-base";
        version = "1";
        units = [
          (writeText "bench-base.service" ''
            [Service]
            ExecStart=/bin/sh -c 'cat ${largeRoot}'
          '')
        ];
      };
    in
    {
      inherit base;
      extension = host.portableService (app // { inherit base; });
      single = host.portableService (app // { contents = [ largeRoot ]; });
    };

  # bench/layered: the service on the large closure as one image (xz, the
  # default), built once as a whole and once in layers (the libraries, the
  # man pages, then the service).
  layered = {
    whole = host.portableService app;
    layered = host.portableService (app // { layers = map (g: [ (group g) ]) largeGroups; });
  };

  # bench/meta: the large closure's image with each group's first chunk as
  # contents, so that the meta walk reaches all 160 chunks through their
  # `references`, evaluated with the walk and without it.
  meta = builtins.listToAttrs (
    map (collectMeta: {
      name = if collectMeta then "on" else "off";
      value = host.portableService (
        closures.large
        // {
          contents = map group largeGroups;
          inherit collectMeta;
        }
      );
    }) [ true false ]
  );

  # bench/ddi: the large closure's image (xz, the default) in both formats.
  ddi = {
    squashfs = withNonce (host.portableService closures.large);
    ddi = withNonce (host.portableService (closures.large // { format = "ddi"; }));
  };
in
{
  inherit images extension layered ddi meta;
}
