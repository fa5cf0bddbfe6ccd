#!/bin/sh
# Follows a feed written by `portable-service-builder publish` on a host
# without systemd-sysupdate (Debian 12's systemd 252): installs the newest
# version of the image NAME into /var/lib/portables and moves the service
# attached from NAME to it. Run as root, by hand or from a timer:
#
#   feed-without-sysupdate NAME URL [PORTABLECTL-OPTION...]
#   feed-without-sysupdate counter https://example.com/feed/ --profile=strict
#
# The options are those the service was attached with (--profile=,
# --copy=, --runtime), which `portablectl reattach` does not keep by itself;
# it restarts every unit of the image (--now). When the feed is signed and
# /etc/systemd/import-pubring.gpg holds its key, the signature is checked
# with gpgv (which every Debian has, for apt). Versions are ordered by
# `sort -V`, which orders versions of digits and dots as systemd does.
# Older versions stay in /var/lib/portables (remove them by hand); going
# back to one is `portablectl reattach --now OPTIONS... NAME_OLDER.raw`.
set -eu
name=$1
url=${2%/}
shift 2
cd /var/lib/portables
trap 'rm -f .feed.SHA256SUMS .feed.SHA256SUMS.gpg .feed.download' EXIT

curl --fail --silent --show-error --output .feed.SHA256SUMS "$url/SHA256SUMS"
if [ -s /etc/systemd/import-pubring.gpg ]; then
  curl --fail --silent --show-error --output .feed.SHA256SUMS.gpg "$url/SHA256SUMS.gpg"
  gpgv --keyring /etc/systemd/import-pubring.gpg .feed.SHA256SUMS.gpg .feed.SHA256SUMS
fi

file=$(sed -n "s/^[0-9a-f]\{64\}  \(${name}_[A-Za-z0-9._+-]*\.raw\)\$/\1/p" .feed.SHA256SUMS |
  sort -V | tail -n 1)
[ -n "$file" ] || { echo "the feed has no ${name}_VERSION.raw" >&2; exit 1; }
if [ -e "$file" ]; then
  echo "$file is installed already"
  exit 0
fi

curl --fail --silent --show-error --output .feed.download "$url/$file"
file_re=$(printf '%s' "$file" | sed 's/[.]/\\./g')
sed -n "s/^\([0-9a-f]\{64\}\)  $file_re\$/\1  .feed.download/p" .feed.SHA256SUMS |
  sha256sum --check --strict
mv .feed.download "$file"
if grep -qs "^# Drop-in created for image '/var/lib/portables/${name}_" \
  /etc/systemd/system.attached/*.d/20-portable.conf /run/systemd/system.attached/*.d/20-portable.conf; then
  portablectl reattach --now "$@" "/var/lib/portables/$file"
else
  echo "$file is installed; attach it: portablectl attach --now $* /var/lib/portables/$file"
fi
