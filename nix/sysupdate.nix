# passthru.sysupdate: what a host lays over its / to follow the feed of this
# image with systemd-sysupdate (`cp -rT result/ /`): the transfer of
# component `pname` in etc/sysupdate.${pname}.d (as .transfer, which
# systemd 257 and later read, and as .conf, which earlier ones read), the
# template units portable-update@.service and .timer with the timer of
# this image enabled, and usr/local/sbin/portable-update, which they run
# (src/host/mod.rs has the files; doc/portable-service.md the set-up).
# Like portable-service.nix, it uses only builtins.
{
  portable-service-builder,
  fail,
}:
{
  pname,
  system,
  # The .attrs.json contract's version, as portable-service.nix gives it.
  attrsVersion,
}:
{
  # The feed, where `portable-service-builder publish` writes:
  # http:// or https:// (file://, which systemd-sysupdate also reads, is
  # for tests).
  url,
  # Whether hosts check SHA256SUMS.gpg, against
  # /etc/systemd/import-pubring.gpg. false is for tests: a host that does
  # not check runs whatever anyone who can answer for the URL gives it.
  verify ? true,
  # InstancesMax=: the versions a host keeps. 2: the one running and the
  # one before it, to roll back to.
  instancesMax ? 2,
}:
let
  sysupdateFail = message: fail "passthru.sysupdate: ${message}";
  urlOk =
    builtins.isString url
    && builtins.match "(https?|file)://.+" url != null
    && builtins.match ".*[[:space:][:cntrl:]].*" url == null;
  checks = [
    (
      urlOk
      || sysupdateFail "url ${builtins.toJSON url} is not a feed systemd-sysupdate can read: it takes http:// and https:// URLs (and file:// ones, for tests), without spaces or control characters"
    )
    (builtins.isBool verify || sysupdateFail "verify must be true or false, not ${builtins.toJSON verify}")
    (
      builtins.isInt instancesMax && instancesMax >= 2
      || sysupdateFail "instancesMax = ${builtins.toJSON instancesMax} would keep no version to roll back to: give 2 or more"
    )
  ];
in
builtins.seq (builtins.all (c: c) checks) (derivation {
  name = "${pname}-sysupdate";
  inherit system;
  builder = "${portable-service-builder}/bin/portable-service-builder";
  __structuredAttrs = true;
  kind = "sysupdate";
  inherit
    attrsVersion
    pname
    url
    verify
    instancesMax
    ;
})
