# The images the systemd acceptance tests attach (tests/systemd/run).
# `all` is one directory holding every image, so that the harness needs a
# single nix-build and a single out-link.
#
# Every service here runs busybox from the image's own store; the images
# carry no /usr/bin, which is how check.sh tells the image's root from the
# container's. Ports: demo 8080, long-run 8081, greet instances 8082/8083,
# hello (an extension of runtime) 8084, stack 8085, the disk images
# verified 8086 and sealed 8087, webapp 8090; for the release feed
# (`sysupdate`, not among the images the containers start with): counter
# 8095, vault 8096, tool (an extension of kit) 8097, the feed itself 8098.
let
  host = import ../../nix/host.nix { };
  inherit (host)
    portableService
    busybox
    writeText
    writeScript
    runCommand
    ;

  # A CGI program that reports what the process sees as its root: the
  # image's os-release and whether /usr/bin exists. The checks compare this
  # with the container's own view.
  rootReport = writeScript "root-report" ''
    #!${busybox}/bin/sh
    echo "Content-Type: text/plain"
    echo
    echo "== /etc/os-release"
    ${busybox}/bin/cat /etc/os-release
    echo "== ls /usr/bin"
    ${busybox}/bin/ls /usr/bin 2>&1
    echo "ls-exit=$?"
  '';

  # $GREET_INSTANCE comes from the unit's Environment=, i.e. from %i.
  greetReport = writeScript "greet-report" ''
    #!${busybox}/bin/sh
    echo "Content-Type: text/plain"
    echo
    echo "Hello from greet instance $GREET_INSTANCE"
  '';

  longRunWww = runCommand "long-run-www" { } ''
    mkdir -p "$out/cgi-bin"
    echo "long-run index" > "$out/index.html"
    cp ${rootReport} "$out/cgi-bin/root"
  '';

  greetWww = runCommand "greet-www" { } ''
    mkdir -p "$out/cgi-bin"
    cp ${greetReport} "$out/cgi-bin/hello"
  '';

  # A plain long-running service: busybox httpd in the foreground.
  long-run = portableService {
    pname = "long-run";
    version = "1.0";
    description = "Acceptance test: a long-running service";
    units = [
      (writeText "long-run.service" ''
        [Unit]
        Description=Acceptance test long-running httpd

        [Service]
        ExecStart=${busybox}/bin/httpd -f -p 8081 -h ${longRunWww}
      '')
    ];
  };

  # A timer that fires once, shortly after it starts. AccuracySec= is set
  # because the default (1 min) would let systemd postpone the firing.
  tickerFire = writeScript "ticker-fire" ''
    #!${busybox}/bin/sh
    . /etc/os-release
    echo "ticker fired in image $PORTABLE_ID"
  '';

  ticker = portableService {
    pname = "ticker";
    version = "0.1";
    description = "Acceptance test: a timer";
    units = [
      (writeText "ticker.timer" ''
        [Unit]
        Description=Acceptance test timer

        [Timer]
        OnActiveSec=1s
        AccuracySec=1ms
      '')
      (writeText "ticker.service" ''
        [Unit]
        Description=Acceptance test timer's service

        [Service]
        Type=oneshot
        ExecStart=${tickerFire}
      '')
    ];
  };

  # A template given as a directory of unit files (the other form, a
  # { name; file; } set, is the demo's). Each instance listens on the port
  # its instance name gives, and says its instance name in its answer.
  greetUnits = runCommand "greet-units" { } ''
    mkdir -p "$out"
    cat > "$out/greet@.service" <<'EOF'
    [Unit]
    Description=Acceptance test template, instance %i

    [Service]
    Environment=GREET_INSTANCE=%i
    ExecStart=${busybox}/bin/httpd -f -p %i -h ${greetWww}
    EOF
  '';

  greet = portableService {
    pname = "greet";
    version = "2.3.1";
    description = "Acceptance test: a template unit";
    units = [ greetUnits ];
  };

  # Attached with --runtime. A long-running process that says once where it
  # runs, so the journal shows it ran from the image.
  ephemeralRun = writeScript "ephemeral-run" ''
    #!${busybox}/bin/sh
    . /etc/os-release
    echo "ephemeral running in image $PORTABLE_ID"
    exec ${busybox}/bin/sleep 2147483647
  '';

  ephemeral = portableService {
    pname = "ephemeral";
    version = "1.0";
    description = "Acceptance test: attached with --runtime";
    units = [
      (writeText "ephemeral.service" ''
        [Unit]
        Description=Acceptance test runtime-attached service

        [Service]
        ExecStart=${ephemeralRun}
      '')
    ];
  };

  # An extension image on a base image. The base holds busybox and the
  # greeting; the extension holds only its service and the programs it
  # runs, which use busybox and the greeting from the base.
  greeting = runCommand "greeting" { } ''
    mkdir -p "$out"
    echo "Greetings from the base image" > "$out/greeting.txt"
  '';

  runtime = portableService {
    pname = "runtime";
    version = "1.0";
    description = "Acceptance test: a base image";
    units = [
      (writeText "runtime.service" ''
        [Service]
        ExecStart=${busybox}/bin/sleep infinity
      '')
    ];
    contents = [
      busybox
      greeting
    ];
  };

  helloCgi = writeScript "hello-cgi" ''
    #!${busybox}/bin/sh
    echo "Content-Type: text/plain"
    echo
    echo "Hello from the extension"
    ${busybox}/bin/cat ${greeting}/greeting.txt
  '';

  helloWww = runCommand "hello-www" { } ''
    mkdir -p "$out/cgi-bin"
    cp ${helloCgi} "$out/cgi-bin/hello"
  '';

  helloServer = writeScript "hello-server" ''
    #!${busybox}/bin/sh
    exec ${busybox}/bin/httpd -f -p 8084 -h ${helloWww}
  '';

  hello = portableService {
    pname = "hello";
    version = "1.0";
    description = "Acceptance test: an extension image";
    base = runtime;
    units = [
      (writeText "hello.service" ''
        [Unit]
        Description=Acceptance test service from an extension image

        [Service]
        ExecStart=${helloServer}
      '')
    ];
  };

  # The start of a socket-activated handler's script (StandardInput= and
  # StandardOutput= the connection): reads the request's header, then
  # counts the visit in the state directory, which outlives versions, and
  # leaves the number in $count. webapp and counter share it.
  countVisit = ''
    bb=${busybox}/bin/busybox
    cr=$(printf '\r')
    while read -r line; do
      case "$line" in "" | "$cr") break ;; esac
    done
    count=$(( $($bb cat "$STATE_DIRECTORY/count" 2>/dev/null || echo 0) + 1 ))
    echo "$count" > "$STATE_DIRECTORY/count"
  '';

  # A service set shaped like real ones, with no workaround in its units
  # (no TemporaryFileSystem= over /var/lib): the image gives them the mount
  # points their settings need. webapp.socket activates webapp@.service
  # per connection (port 8090), which keeps a visit counter in its state
  # directory and writes to its cache, logs, runtime directory and a host
  # directory bound in, reads its configuration directory, an environment
  # file and CA certificates from the host, and answers with what it saw. A
  # timer runs an update job as the same dynamic user on the same state;
  # webapp-static.service keeps state as a static user, which a host
  # drop-in (DynamicUser=no) makes it under portabled's default profile.
  # Version 2 answers with its version, for `portablectl reattach`.
  webapp =
    version:
    let
      # The service's PATH has nothing in the image: busybox's applets are
      # called through it.
      handler = writeScript "webapp-handler" ''
        #!${busybox}/bin/sh
        ${countVisit}
        echo "visit $count" >> "$CACHE_DIRECTORY/visits"
        echo "visit $count" >> "$LOGS_DIRECTORY/access.log"
        echo "$count" > "$RUNTIME_DIRECTORY/last"
        echo "visit $count" >> /srv/webapp-data/visits
        printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n'
        echo "version=${version}"
        echo "count=$count"
        echo "uid=$($bb id -u)"
        echo "config=$($bb cat "$CONFIGURATION_DIRECTORY/greeting")"
        echo "env=$WEBAPP_GREETING"
        echo "cert=$($bb cat /etc/ssl/certs/webapp-test.pem)"
        echo "runtime=$($bb cat "$RUNTIME_DIRECTORY/last")"
      '';
      update = writeScript "webapp-update" ''
        #!${busybox}/bin/sh
        echo "updated by $(${busybox}/bin/busybox id -u)" >> "$STATE_DIRECTORY/updates"
      '';
      static = writeScript "webapp-static" ''
        #!${busybox}/bin/sh
        ${busybox}/bin/busybox id -u > "$STATE_DIRECTORY/uid"
        echo ran >> "$STATE_DIRECTORY/runs"
      '';
    in
    portableService {
      pname = "webapp";
      inherit version;
      description = "Acceptance test: real services with state";
      units = [
        (writeText "webapp.socket" ''
          [Socket]
          ListenStream=8090
          Accept=yes

          [Install]
          WantedBy=sockets.target
        '')
        {
          name = "webapp@.service";
          file = writeText "webapp-at.service" ''
            [Unit]
            Description=Acceptance test web application, connection %i

            [Service]
            User=webapp
            DynamicUser=yes
            StateDirectory=webapp
            CacheDirectory=webapp
            LogsDirectory=webapp
            RuntimeDirectory=webapp/%i
            ConfigurationDirectory=webapp
            EnvironmentFile=/etc/webapp.env
            BindReadOnlyPaths=/etc/ssl/certs
            BindPaths=/srv/webapp-data
            ExecStart=${handler}
            StandardInput=socket
            StandardOutput=socket
            StandardError=journal
          '';
        }
        (writeText "webapp-update.timer" ''
          [Timer]
          OnActiveSec=1s
          AccuracySec=1ms
        '')
        (writeText "webapp-update.service" ''
          [Service]
          Type=oneshot
          User=webapp
          DynamicUser=yes
          StateDirectory=webapp
          ExecStart=${update}
        '')
        (writeText "webapp-static.service" ''
          [Service]
          Type=oneshot
          RemainAfterExit=yes
          StateDirectory=webapp-static
          ExecStart=${static}
        '')
      ];
    };

  # A layered image: busybox and the web root in layers of their own,
  # assembled with the service into one image, which the kernel mounts.
  stackWww = runCommand "stack-www" { } ''
    mkdir -p "$out"
    echo "Hello from a layered image" > "$out/index.html"
  '';

  stack = portableService {
    pname = "stack";
    version = "1.0";
    description = "Acceptance test: a layered image";
    layers = [
      [ busybox ]
      [ stackWww ]
    ];
    units = [
      (writeText "stack.service" ''
        [Service]
        ExecStart=${busybox}/bin/httpd -f -p 8085 -h ${stackWww}
      '')
    ];
  };

  # Disk images (format = "ddi"): `verified` as built, unsigned; `sealed`
  # signed by tests/systemd/run outside Nix, as a release would be.
  diskImage =
    pname: port:
    portableService {
      inherit pname;
      version = "1.0";
      description = "Acceptance test: a disk image";
      format = "ddi";
      units = [
        (writeText "${pname}.service" ''
          [Service]
          ExecStart=${busybox}/bin/httpd -f -p ${toString port} -h ${longRunWww}
        '')
      ];
    };

  # A stateful service whose versions a host gets from a feed: each visit
  # (socket-activated, port 8095) counts on in the state directory, which
  # outlives versions, and says the version that answered.
  # counter-report.service is never started: a move to a new version must
  # not start it.
  counter =
    version:
    let
      handler = writeScript "counter-handler" ''
        #!${busybox}/bin/sh
        ${countVisit}
        printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n'
        echo "version=${version}"
        echo "count=$count"
      '';
    in
    portableService {
      pname = "counter";
      inherit version;
      description = "Acceptance test: a service a host updates from a feed";
      units = [
        (writeText "counter.socket" ''
          [Socket]
          ListenStream=8095
          Accept=yes

          [Install]
          WantedBy=sockets.target
        '')
        {
          name = "counter@.service";
          file = writeText "counter-at.service" ''
            [Service]
            DynamicUser=yes
            StateDirectory=counter
            ExecStart=${handler}
            StandardInput=socket
            StandardOutput=socket
            StandardError=journal
          '';
        }
        (writeText "counter-report.service" ''
          [Service]
          Type=oneshot
          ExecStart=${busybox}/bin/echo counter-report ran
        '')
      ];
    };

  # A disk image a host gets from a feed, signed by tests/systemd/run as a
  # release would be: its service needs device-mapper to start, which this
  # machine's kernel lacks.
  vault =
    version:
    portableService {
      pname = "vault";
      inherit version;
      description = "Acceptance test: a disk image a host updates from a feed";
      format = "ddi";
      units = [
        (writeText "vault.service" ''
          [Service]
          ExecStart=${busybox}/bin/httpd -f -p 8096 -h ${longRunWww}
        '')
      ];
    };

  # A base and an extension of it that a host updates from one feed, each
  # its own component: tool V runs only on kit V (the extension's
  # SYSEXT_LEVEL is its base's) and says both versions (port 8097).
  kitGreeting =
    version:
    runCommand "kit-greeting-${version}" { } ''
      mkdir -p "$out"
      echo "kit ${version}" > "$out/greeting"
    '';
  kit =
    version:
    portableService {
      pname = "kit";
      inherit version;
      description = "Acceptance test: a base a host updates from a feed";
      units = [
        (writeText "kit.service" ''
          [Service]
          ExecStart=${busybox}/bin/sleep infinity
        '')
      ];
      contents = [
        busybox
        (kitGreeting version)
      ];
    };
  tool =
    version:
    let
      cgi = writeScript "tool-cgi" ''
        #!${busybox}/bin/sh
        echo "Content-Type: text/plain"
        echo
        echo "tool ${version}"
        ${busybox}/bin/cat ${kitGreeting version}/greeting
      '';
      www = runCommand "tool-www-${version}" { } ''
        mkdir -p "$out/cgi-bin"
        cp ${cgi} "$out/cgi-bin/version"
      '';
    in
    portableService {
      pname = "tool";
      inherit version;
      description = "Acceptance test: an extension a host updates from a feed";
      base = kit version;
      units = [
        (writeText "tool.service" ''
          [Service]
          ExecStart=${busybox}/bin/httpd -f -p 8097 -h ${www}
        '')
      ];
    };

  # What the sysupdate scenario publishes and lays over the host: releases
  # of counter 1 to 3, kit and tool 1 and 2, the vault images (signed by
  # the harness, then published as files), and the host trees, counter's
  # with and without checking signatures.
  feedUrl = "http://127.0.0.1:8098/";
  counters = map counter [
    "1"
    "2"
    "3"
  ];
  vaults = map vault [
    "1"
    "2"
  ];
  kits = map kit [
    "1"
    "2"
  ];
  tools = map tool [
    "1"
    "2"
  ];
  sysupdate = runCommand "portable-service-test-sysupdate" { } (
    ''
      mkdir -p "$out/releases" "$out/host"
      ln -s ${(builtins.head counters).sysupdate { url = feedUrl; }} "$out/host/counter"
      ln -s ${
        (builtins.head counters).sysupdate {
          url = feedUrl;
          verify = false;
        }
      } "$out/host/counter-unverified"
      ln -s ${(builtins.head vaults).sysupdate { url = feedUrl; }} "$out/host/vault"
      ln -s ${(builtins.head kits).sysupdate { url = feedUrl; }} "$out/host/kit"
      ln -s ${(builtins.head tools).sysupdate { url = feedUrl; }} "$out/host/tool"
    ''
    + builtins.concatStringsSep "" (
      map (i: ''
        ln -s ${i.release} "$out/releases/${i.pname}-${i.version}"
      '') (counters ++ kits ++ tools)
      ++ map (v: ''
        ln -s ${v.imagePath} "$out/${v.imageFileName}"
      '') vaults
    )
  );

  images = {
    inherit (host) demo;
    verified = diskImage "verified" 8086;
    sealed = diskImage "sealed" 8087;
    inherit stack;
    webapp1 = webapp "1";
    webapp2 = webapp "2";
    inherit
      long-run
      ticker
      greet
      ephemeral
      runtime
      hello
      ;
  };
in
images
// {
  inherit sysupdate;
  all = runCommand "portable-service-test-images" { } (
    ''
      mkdir -p "$out"
    ''
    + builtins.concatStringsSep "" (
      map (image: ''
        ln -s ${image.imagePath} "$out/${image.imageFileName}"
      '') (builtins.attrValues images)
    )
  );
}
