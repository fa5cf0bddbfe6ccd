# passthru.release: the image as a feed of one version, a directory with the
# image file under its own name (byte for byte), its companions (the SBOM)
# and the SHA256SUMS that systemd-sysupdate reads, made by
# `portable-service-builder publish`, as a feed is: `publish FEED RELEASE`
# adds it to a feed with others. Like portable-service.nix, it uses only
# builtins.
{ portable-service-builder }:
{
  pname,
  version,
  system,
  # The image file, "${image}/${fileName}".
  image,
  # Files that go with the image, named as publish's companions are
  # (src/publish/feed.rs: "${pname}_${version}.cdx.json", the SBOM), so
  # that `publish --keep` keeps and prunes them with it.
  companions,
}:
derivation {
  name = "${pname}-release-${version}";
  inherit system;
  builder = "${portable-service-builder}/bin/portable-service-builder";
  args = [
    "publish"
    (builtins.placeholder "out")
    image
  ]
  ++ companions;
}
