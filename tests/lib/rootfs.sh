# Cached Debian root file systems for the tests that run in containers
# (tests/systemd/run, tests/nix-2.26/run). Sourced; the caller defines
# log() and die(), and an EXIT trap that calls rootfs_cleanup.
#
#   ensure_rootfs NAME SUITE PACKAGE...   sets ROOTFS
#
# Each entry is a `debootstrap --variant=minbase` of SUITE with PACKAGEs,
# in $CACHE_DIR/NAME-SUITE-KEY (NAME "" for the systemd tests' entries),
# where KEY is a hash of the suite, the packages and the function that
# makes the tree, so that changing any of them builds a new entry (and
# removes the older ones of NAME and SUITE). An entry is built in a
# temporary directory and renamed into place, so an interrupted run leaves
# no half-built entry; a lock keeps concurrent runs from building the same
# entry twice.

CACHE_DIR=${PORTABLE_SERVICE_TEST_CACHE:-/var/cache/portable-service-tests}
MIRROR=${PORTABLE_SERVICE_TEST_MIRROR:-http://deb.debian.org/debian}

CHILD_PID=
CACHE_TMP=
ROOTFS=

# A debootstrap that was killed leaves /proc and /sys mounted in its target:
# they are unmounted first, and rm stays on one file system in case that
# failed, so that only the tree's own files go.
remove_tree() {
  local tree=$1 mount
  [[ -n $tree && -e $tree ]] || return 0
  findmnt --raw --noheadings --output TARGET |
    awk -v prefix="$tree/" 'index($0, prefix) == 1' | sort -r |
    while read -r mount; do
      umount --lazy "$mount" || true
    done
  rm -rf --one-file-system -- "$tree" || log "warning: could not remove all of $tree"
}

# Runs an external command in the background and waits for it: bash runs a
# trap only once the foreground command has ended, so debootstrap or a
# container would otherwise outlive an interrupt by minutes.
run_child() {
  local rc=0
  "$@" &
  CHILD_PID=$!
  wait "$CHILD_PID" || rc=$?
  CHILD_PID=
  return "$rc"
}

# systemd-nspawn powers the container off on SIGTERM (and timeout passes it
# on); debootstrap unmounts what it mounted in its target.
stop_child() {
  [[ -n $CHILD_PID ]] || return 0
  kill -TERM "$CHILD_PID" 2>/dev/null || true
  wait "$CHILD_PID" 2>/dev/null || true
  CHILD_PID=
}

# What the caller's EXIT trap runs first.
rootfs_cleanup() {
  stop_child
  remove_tree "$CACHE_TMP"
}

# Builds the root file system of SUITE with PACKAGEs into DEST: a minbase
# debootstrap, then the packages with apt-get, whose resolver handles
# what debootstrap's --include does not (nix-bin's Perl dependencies fail
# to configure that way).
#
# apt-get does not hold the Release file to its Valid-Until date, as
# debootstrap does not: unstable's Release file expires a week after it is
# signed, stable ones carry no such date, and a snapshot or a mirror that
# lags (as this project's development machine's does) serves an expired
# one. The signature is still checked.
make_rootfs() {
  local suite=$1 dest=$2 rc=0
  shift 2
  run_child debootstrap --variant=minbase "$suite" "$dest" "$MIRROR" || return 1
  mount -t proc proc "$dest/proc"
  mount --bind /dev "$dest/dev"
  run_child chroot "$dest" /bin/sh -c 'apt-get -o Acquire::Check-Valid-Until=false update -q &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"' \
    sh "$@" || rc=$?
  umount "$dest/dev" "$dest/proc"
  ((rc == 0)) || return 1
  # The downloaded packages are not needed and double the copy each run makes.
  chroot "$dest" apt-get clean
}

rootfs_key() {
  local suite=$1
  shift
  {
    echo "suite=$suite"
    printf 'package=%s\n' "$@" | sort
    declare -f make_rootfs
  } | sha256sum | cut -c1-16
}

ensure_rootfs() {
  local name=$1 suite=$2 key prefix entry start lock stale old
  shift 2
  key=$(rootfs_key "$suite" "$@")
  prefix=$CACHE_DIR/${name:+$name-}$suite
  entry=$prefix-$key
  mkdir -p "$CACHE_DIR"
  exec {lock}>"$CACHE_DIR/.lock"
  flock "$lock"
  if [[ -d $entry ]]; then
    log "$suite: cached root file system $entry"
  else
    start=$SECONDS
    for stale in "$CACHE_DIR"/.tmp-"${name:+$name-}$suite"-*; do
      remove_tree "$stale"
    done
    CACHE_TMP=$(mktemp -d "$CACHE_DIR/.tmp-${name:+$name-}$suite-XXXXXX")
    log "$suite: building the root file system with debootstrap (log: $CACHE_TMP/debootstrap.log)"
    if ! make_rootfs "$suite" "$CACHE_TMP/root" "$@" >"$CACHE_TMP/debootstrap.log" 2>&1; then
      tail -n 40 "$CACHE_TMP/debootstrap.log" >&2
      die "$suite: debootstrap failed"
    fi
    mv -T "$CACHE_TMP/root" "$entry"
    remove_tree "$CACHE_TMP"
    CACHE_TMP=
    for old in "$prefix"-*; do
      [[ $old == "$entry" ]] || remove_tree "$old"
    done
    log "$suite: root file system built in $((SECONDS - start)) s: $entry"
  fi
  flock -u "$lock"
  exec {lock}>&-
  ROOTFS=$entry
}
