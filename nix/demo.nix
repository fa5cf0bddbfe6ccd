# The specification's example made real: `demo` 1.0, a socket unit and a
# service unit. Each connection to port 8080 starts an instance of
# demo@.service (socket activation with Accept=yes), in which busybox's
# httpd answers one HTTP request from the image's store.
#
# `demo@.service` is a template, and Nix refuses `@` in store path names,
# so it is given as { name; file; }.
{
  portableService,
  busybox,
  writeText,
  runCommand,
}:

let
  www = runCommand "demo-www" { } ''
    mkdir -p "$out"
    echo "Hello from the demo portable service 1.0" > "$out/index.html"
  '';

  demo-socket = writeText "demo.socket" ''
    [Unit]
    Description=Demo portable service socket

    [Socket]
    ListenStream=8080
    Accept=yes

    [Install]
    WantedBy=sockets.target
  '';

  demo-service = {
    name = "demo@.service";
    file = writeText "demo-at.service" ''
      [Unit]
      Description=Demo portable service, connection %i

      [Service]
      ExecStart=${busybox}/bin/httpd -i -h ${www}
      StandardInput=socket
      StandardError=journal
    '';
  };
in
portableService {
  pname = "demo";
  version = "1.0";
  description = "Demo portable service: busybox httpd, socket-activated";
  homepage = "https://systemd.io/PORTABLE_SERVICES/";
  units = [
    demo-service
    demo-socket
  ];
}
