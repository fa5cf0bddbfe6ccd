#!/bin/bash
# The acceptance checks, run inside a booted Debian container by the oneshot
# unit that tests/systemd/run installs. The images are in /var/lib/portables;
# results go to $PS_RESULTS, which the host bind-mounts and reads after the
# container has powered off:
#
#   results      one line per step: PASS|FAIL|SKIP <scenario>: <step>
#   check.log    every command run and its output
#   failures.log for each failed step: its output, portablectl's view, and
#                the journal and status of the units involved
#   journal.txt  the whole boot's journal
#   status       written last; its absence means this script did not finish
#
# A scenario is a sequence of steps on one image. Later steps need the earlier
# ones (no HTTP check without an attach), so after a failed step the rest of
# the scenario is skipped, and its image is detached so the next scenario
# starts clean.
set -euo pipefail

: "${PS_RESULTS:?}" "${PS_EXPECT_SYSTEMD:?}"
IMAGES=/var/lib/portables

RESULTS_FILE=$PS_RESULTS/results
FAILURES_FILE=$PS_RESULTS/failures.log
LOG_FILE=$PS_RESULTS/check.log

scenario_name=
scenario_units=()
scenario_failed=0

# ---------------------------------------------------------------- helpers
# These run inside a step's subshell: `fail` and any failing command end the
# step, not the script.

fail() {
  echo "FAILED: $*" >&2
  exit 1
}

# Runs a command, showing it and its output in the step's log.
run() {
  echo "\$ $*"
  local rc=0
  "$@" || rc=$?
  ((rc == 0)) || fail "'$*' exited with status $rc"
}

# wait_for SECONDS COMMAND...: polls the command until it succeeds; fails
# if it has not within that many seconds.
wait_for() {
  local seconds=$1
  shift
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

unit_property() {
  systemctl show --property="$2" --value "$1"
}

expect_property() {
  local unit=$1 property=$2 expected=$3 actual
  actual=$(unit_property "$unit" "$property")
  echo "$unit $property=$actual"
  [[ $actual == "$expected" ]] ||
    fail "$unit: expected $property=$expected, got $property=$actual"
}

expect_active() {
  expect_property "$1" ActiveState active
}

unit_failed() {
  [[ $(unit_property "$1" ActiveState) == failed ]]
}

# After a detach, the unit must be gone, not merely stopped.
expect_gone() {
  local unit=$1 file=$2
  [[ ! -e $file ]] || fail "$file still exists after detach"
  expect_property "$unit" LoadState not-found
  expect_property "$unit" ActiveState inactive
}

# attach --now IMAGE, after which its SERVICE runs.
attach_now() {
  run portablectl attach --now "$1"
  expect_active "$2"
}

# detach --now IMAGE, which stops and removes its SERVICE.
detach_now() {
  run portablectl detach --now "$1"
  expect_gone "$2" "/etc/systemd/system.attached/$2"
}

# The image name (file name without .raw) of the one image with this pname.
image_of() {
  local files=("$IMAGES/$1"_*.raw)
  [[ ${#files[@]} == 1 && -f ${files[0]} ]] || return 1
  basename "${files[0]}" .raw
}

# The unit names under "Unit files:" in `portablectl inspect ARGS...`, whose
# whole output goes to the step's log.
inspected_units() {
  local output
  output=$(portablectl inspect "$@" 2>&1) || {
    printf '%s\n' "$output" >&2
    return 1
  }
  printf '%s\n' "$output" >&2
  awk '/^Unit files:/ { in_units = 1; next }
       in_units && /^\t/ { sub(/^\t/, ""); print; next }
       { in_units = 0 }' <<<"$output" | sort
}

expect_inspect() {
  local image=$1
  shift
  local expected actual
  expected=$(printf '%s\n' "$@" | sort)
  echo "\$ portablectl inspect $image"
  actual=$(inspected_units "$image") ||
    fail "portablectl inspect $image failed"
  [[ $actual == "$expected" ]] ||
    fail "portablectl inspect $image lists [${actual//$'\n'/ }], expected [${expected//$'\n'/ }]"
}

# The STATE column of `portablectl list` for the image.
list_state() {
  portablectl list --no-legend | awk -v i="$1" '$1 == i { print $NF }'
}

expect_list_state() {
  local image=$1 expected=$2 actual
  actual=$(list_state "$image")
  echo "portablectl list: $image is ${actual:-absent}"
  [[ $actual == "$expected" ]] ||
    fail "portablectl list shows $image as '${actual:-absent}', expected '$expected'"
}

http_get() {
  curl --silent --show-error --max-time 5 "$1"
}

# Prints the body of the first answer from the URL, asking again for up to
# 15 seconds while the service may still be binding its port.
http_wait() {
  local deadline=$((SECONDS + 15)) body
  echo "\$ curl $1" >&2
  until body=$(http_get "$1" 2>&1); do
    ((SECONDS < deadline)) || fail "no HTTP answer from $1: $body"
    sleep 0.2
  done
  printf '%s\n' "$body"
}

expect_http_body() {
  local url=$1 expected=$2 body
  body=$(http_wait "$url")
  printf '%s\n' "$body"
  [[ $body == "$expected" ]] || fail "$url answered '$body', expected '$expected'"
}

# curl's exit status 7 is "failed to connect": nothing listens on the port.
port_refuses() {
  local rc=0
  curl --silent --max-time 5 --output /dev/null "http://127.0.0.1:$1/" || rc=$?
  ((rc == 7))
}

expect_port_closed() {
  wait_for 10 port_refuses "$1" ||
    fail "port $1 still accepts connections (curl did not exit with 7)"
  echo "port $1: connection refused"
}

journal_of() {
  journalctl --no-pager --output=cat --unit="$1" 2>/dev/null
}

journal_has_line() {
  journal_of "$1" | grep -qxF -- "$2"
}

# What a service's process logs before it execs (setting up its mount
# namespace) can reach journald after the process has exited, when
# journald can no longer tell its unit, so `journalctl -u` misses it (seen
# on a busy machine). Such lines name their unit themselves; they are looked
# for in the whole journal after a cursor taken before the start.
journal_cursor() {
  journalctl --no-pager --lines=1 --output=export | sed -n 's/^__CURSOR=//p'
}

journal_after() {
  journalctl --no-pager --output=cat --after-cursor="$1"
}

journal_after_greps() {
  journal_after "$1" | grep -qF -- "$2"
}

expect_journal_line() {
  local unit=$1 line=$2
  wait_for 15 journal_has_line "$unit" "$line" ||
    fail "the journal of $unit has no line '$line'"
  echo "journal of $unit has: $line"
}

# ---------------------------------------------------------------- runner

# Everything that helps to see why a step failed.
diagnose() {
  local unit
  echo "--- portablectl list"
  portablectl list --no-pager 2>&1 || true
  echo "--- attached unit files"
  ls -lR /etc/systemd/system.attached /run/systemd/system.attached 2>&1 || true
  for unit in "${scenario_units[@]}"; do
    echo "--- systemctl status $unit"
    systemctl status --no-pager --full "$unit" 2>&1 || true
    echo "--- journalctl -u $unit"
    journalctl --no-pager --boot --unit="$unit" 2>&1 || true
  done
  echo "--- journalctl -u systemd-portabled.service"
  journalctl --no-pager --boot --unit=systemd-portabled.service 2>&1 || true
}

record() {
  echo "$1 $scenario_name: $2" >>"$RESULTS_FILE"
  echo "=== $1 $scenario_name: $2"
}

# Sets $image to the image of this pname; without one, the scenario fails
# here and its steps are skipped.
scenario_image() {
  image=$(image_of "$1") && return 0
  scenario_failed=1
  record FAIL "there is exactly one $IMAGES/$1_*.raw"
  echo "======== FAIL $scenario_name: no single image $IMAGES/$1_*.raw" >>"$FAILURES_FILE"
  ls -l "$IMAGES" >>"$FAILURES_FILE" 2>&1 || true
}

# scenario NAME UNIT...: starts a scenario; the units (globs allowed) are
# the ones whose status and journal a failure report shows.
scenario() {
  scenario_name=$1
  shift
  scenario_units=("$@")
  scenario_failed=0
  echo
  echo "######## $scenario_name"
}

# step DESCRIPTION FUNCTION ARGS...
step() {
  local description=$1
  shift
  if ((scenario_failed)); then
    record SKIP "$description"
    return 0
  fi
  local output rc=0
  # Shows which step was running if the unit's timeout kills this script.
  echo "=== RUN $scenario_name: $description"
  output=$(mktemp)
  set +e
  (
    set -e
    "$@"
  ) >"$output" 2>&1
  rc=$?
  set -e
  cat "$output"
  if ((rc == 0)); then
    record PASS "$description"
  else
    scenario_failed=1
    record FAIL "$description"
    {
      echo "======== FAIL $scenario_name: $description"
      cat "$output"
      diagnose
      echo
    } >>"$FAILURES_FILE"
  fi
  rm -f "$output"
}

# Leaves nothing attached, whatever state the scenario stopped in.
# (`portablectl is-attached` exits 0 for a detached image too, so the state
# comes from the list.)
cleanup() {
  local image=$1 state
  shift
  state=$(list_state "$image")
  [[ $state != detached ]] || return 0
  echo "--- cleanup: $image is ${state:-absent}"
  systemctl stop "$@" 2>&1 || true
  case $state in
    *-runtime) portablectl detach --runtime "$image" 2>&1 || true ;;
    *) portablectl detach "$image" 2>&1 || true ;;
  esac
}

# ---------------------------------------------------------------- scenarios

check_systemd_version() {
  local version
  version=$(systemctl --version | awk 'NR == 1 { print $2 }')
  echo "systemd $version (expected $PS_EXPECT_SYSTEMD)"
  [[ $version == "$PS_EXPECT_SYSTEMD" ]] ||
    fail "this container runs systemd $version, not $PS_EXPECT_SYSTEMD"
}

# The demo and long-run answers come from /nix/store paths; they can only
# come from an image if the container itself has no /nix.
check_no_nix_store() {
  [[ ! -e /nix ]] || fail "the container has /nix, so store paths would not prove anything"
}

check_utf8_locale() {
  local charmap
  charmap=$(locale charmap)
  echo "LC_ALL=${LC_ALL:-} charmap=$charmap"
  [[ $charmap == UTF-8 ]] || fail "the locale's charmap is $charmap, not UTF-8"
}

check_images_listed() {
  local name image
  run portablectl list --no-pager
  for name in demo long-run ticker greet ephemeral runtime hello stack; do
    image=$(image_of "$name") || fail "there is no single $IMAGES/${name}_*.raw"
    expect_list_state "$image" detached
  done
}

environment() {
  scenario environment
  step "systemd is version $PS_EXPECT_SYSTEMD" check_systemd_version
  step "the container has no /nix" check_no_nix_store
  step "the locale is UTF-8" check_utf8_locale
  step "portablectl lists every test image, detached" check_images_listed
}

# systemd-dissect marks uses with ✓ and ✗ under a UTF-8 locale and with +
# and - otherwise. The unit sets LC_ALL=C.UTF-8 and the environment scenario
# checks it took effect, so only ✓ is accepted. Text, not --json: systemd
# 252's JSON usePortableService is always false.
#
# An extension image is no portable service of its own: systemd 252 calls
# it an "extension for portable service", 257 and 262 a "sysext for
# portable service".
check_dissect() {
  local file=$1 use=$2 output
  echo "\$ systemd-dissect $file"
  output=$(systemd-dissect "$file") || fail "systemd-dissect $file failed"
  printf '%s\n' "$output"
  grep -qE "^[[:space:]]*(Use As:)?[[:space:]]*✓ ($use)\$" <<<"$output" ||
    fail "systemd-dissect does not report '✓ $use' for $file"
}

# One scenario per image: each image's verdict is independent of the others.
dissect() {
  local file
  for file in "$IMAGES"/*.raw; do
    scenario "dissect $(basename "$file")"
    case $(basename "$file") in
      hello_*)
        step "systemd-dissect reports ✓ extension/sysext for portable service" \
          check_dissect "$file" "extension for portable service|sysext for portable service"
        ;;
      *)
        step "systemd-dissect reports ✓ portable service" check_dissect "$file" "portable service"
        ;;
    esac
  done
}

demo_attach() {
  run portablectl attach --now "$1"
  expect_active demo.socket
  expect_property demo.socket FragmentPath /etc/systemd/system.attached/demo.socket
}

demo_http() {
  expect_http_body http://127.0.0.1:8080/ "Hello from the demo portable service 1.0"
  local accepted
  accepted=$(unit_property demo.socket NAccepted)
  echo "demo.socket NAccepted=$accepted"
  ((accepted >= 1)) || fail "demo.socket accepted no connection, so demo@.service did not answer"
}

demo_detach() {
  run portablectl detach --now "$1"
  expect_gone demo.socket /etc/systemd/system.attached/demo.socket
  [[ ! -e /etc/systemd/system.attached/demo@.service ]] ||
    fail "demo@.service is still attached"
}

demo() {
  local image
  scenario demo demo.socket 'demo@*'
  scenario_image demo
  step "inspect lists exactly demo.socket and demo@.service" \
    expect_inspect "$image" demo.socket demo@.service
  step "attach --now starts demo.socket" demo_attach "$image"
  step "port 8080 answers from demo@.service in the image" demo_http
  step "detach --now removes the units" demo_detach "$image"
  step "port 8080 is closed after detach" expect_port_closed 8080
  cleanup "$image" demo.socket
}

long_run_attach() {
  run portablectl attach --now "$1"
  expect_active long-run.service
  expect_list_state "$1" running
}

# The service's own view of its root, by the CGI program in the image.
long_run_root_from_inside() {
  local body
  body=$(http_wait http://127.0.0.1:8081/cgi-bin/root)
  printf '%s\n' "$body"
  grep -qxE 'PORTABLE_PREFIXES="?long-run"?' <<<"$body" ||
    fail "the service's /etc/os-release is not the image's (no PORTABLE_PREFIXES=long-run)"
  grep -qx 'ID=nixos' <<<"$body" || fail "the service's /etc/os-release does not say ID=nixos"
  if grep -qx 'ls-exit=0' <<<"$body"; then fail "the service can list /usr/bin"; fi
  grep -q 'ls: /usr/bin: No such file or directory' <<<"$body" ||
    fail "listing /usr/bin in the service did not fail with 'No such file or directory'"
  echo "container: $(grep -x 'ID=.*' /etc/os-release), $(find /usr/bin -mindepth 1 -maxdepth 1 | wc -l) entries in /usr/bin"
  grep -qx 'ID=debian' /etc/os-release || fail "the container's os-release is not Debian's"
  [[ -x /usr/bin/portablectl ]] || fail "the container has no /usr/bin/portablectl"
}

# The same seen from the container, through /proc/PID/root.
long_run_root_from_outside() {
  local pid root
  pid=$(unit_property long-run.service MainPID)
  root=/proc/$pid/root
  echo "long-run.service MainPID=$pid"
  ((pid > 0)) || fail "long-run.service has no main process"
  grep -xE 'PORTABLE_PREFIXES="?long-run"?' "$root/etc/os-release" ||
    fail "$root/etc/os-release is not the image's"
  [[ ! -e $root/usr/bin ]] || fail "$root/usr/bin exists: the service sees a /usr/bin"
  echo "$root/usr/bin does not exist"
}

long_run() {
  local image
  scenario long-run long-run.service
  scenario_image long-run
  step "inspect lists exactly long-run.service" expect_inspect "$image" long-run.service
  step "attach --now leaves long-run.service active" long_run_attach "$image"
  step "the service's root is the image (its own answer over HTTP)" long_run_root_from_inside
  step "the service's root is the image (/proc/PID/root)" long_run_root_from_outside
  step "detach --now stops and removes long-run.service" detach_now "$image" long-run.service
  step "port 8081 is closed after detach" expect_port_closed 8081
  cleanup "$image" long-run.service
}

# Attached without --now: --now would also start ticker.service itself, and
# then its journal line would not show that the timer fired.
ticker_attach() {
  run portablectl attach "$1"
  expect_property ticker.timer LoadState loaded
  expect_property ticker.service ActiveState inactive
  if journal_has_line ticker.service "ticker fired in image ticker"; then
    fail "ticker.service ran before its timer was started"
  fi
}

ticker_fires() {
  run systemctl start ticker.timer
  expect_journal_line ticker.service "ticker fired in image ticker"
  expect_property ticker.service Result success
  expect_property ticker.service ExecMainStatus 0
  # "elapsed": a timer with only OnActiveSec= has fired and will not again.
  expect_property ticker.timer SubState elapsed
}

ticker_detach() {
  run portablectl detach --now "$1"
  expect_gone ticker.timer /etc/systemd/system.attached/ticker.timer
  expect_gone ticker.service /etc/systemd/system.attached/ticker.service
}

ticker() {
  local image
  scenario ticker ticker.timer ticker.service
  scenario_image ticker
  step "inspect lists exactly ticker.service and ticker.timer" \
    expect_inspect "$image" ticker.service ticker.timer
  step "attach makes the timer loadable and runs nothing" ticker_attach "$image"
  step "the timer fires its service, which runs in the image" ticker_fires
  step "detach --now removes the timer and service" ticker_detach "$image"
  cleanup "$image" ticker.timer ticker.service
}

# systemd shows no properties of a template itself, so an instance that is
# not started stands in for it.
greet_attach() {
  run portablectl attach "$1"
  expect_property greet@8082.service LoadState loaded
  expect_property greet@8082.service FragmentPath /etc/systemd/system.attached/greet@.service
  expect_property greet@8082.service ActiveState inactive
}

greet_instances() {
  run systemctl start greet@8082.service greet@8083.service
  expect_active greet@8082.service
  expect_active greet@8083.service
  expect_http_body http://127.0.0.1:8082/cgi-bin/hello "Hello from greet instance 8082"
  expect_http_body http://127.0.0.1:8083/cgi-bin/hello "Hello from greet instance 8083"
}

# portabled refuses to detach a template while instances run, so they are
# stopped first.
greet_detach() {
  run systemctl stop greet@8082.service greet@8083.service
  run portablectl detach "$1"
  expect_gone greet@8082.service /etc/systemd/system.attached/greet@.service
}

greet_ports_closed() {
  expect_port_closed 8082
  expect_port_closed 8083
}

greet() {
  local image
  scenario greet 'greet@*'
  scenario_image greet
  step "inspect lists exactly greet@.service" expect_inspect "$image" greet@.service
  step "attach makes the template loadable" greet_attach "$image"
  step "instances greet@8082 and greet@8083 answer with their %i" greet_instances
  step "detach removes the template" greet_detach "$image"
  step "ports 8082 and 8083 are closed after detach" greet_ports_closed
  cleanup "$image" 'greet@*'
}

ephemeral_attach() {
  run portablectl attach --runtime --now "$1"
  expect_active ephemeral.service
  expect_property ephemeral.service FragmentPath /run/systemd/system.attached/ephemeral.service
  [[ ! -e /etc/systemd/system.attached/ephemeral.service ]] ||
    fail "--runtime attached ephemeral.service under /etc as well"
  expect_list_state "$1" running-runtime
  expect_journal_line ephemeral.service "ephemeral running in image ephemeral"
}

ephemeral_detach() {
  run portablectl detach --runtime --now "$1"
  expect_gone ephemeral.service /run/systemd/system.attached/ephemeral.service
  expect_list_state "$1" detached
}

ephemeral() {
  local image
  scenario ephemeral ephemeral.service
  scenario_image ephemeral
  step "inspect lists exactly ephemeral.service" expect_inspect "$image" ephemeral.service
  step "attach --runtime --now runs it from /run/systemd/system.attached" \
    ephemeral_attach "$image"
  step "detach --runtime --now removes it" ephemeral_detach "$image"
  cleanup "$image" ephemeral.service
}

# The extension's units come from the extension image, attached on top of
# its base; the service runs a program only the extension holds, which
# uses busybox and a file only the base holds.
hello_inspect() {
  local actual
  echo "\$ portablectl inspect --extension $1 $2 hello"
  actual=$(inspected_units --extension "$1" "$2" hello) || fail "portablectl inspect failed"
  [[ $actual == hello.service ]] || fail "inspect lists [${actual//$'\n'/ }], expected [hello.service]"
}

# The release file's SYSEXT_LEVEL is its base's: on any other base, whose
# store lacks what the extension leaves out, systemd refuses it.
hello_other_base_refused() {
  local output
  echo "\$ portablectl attach --extension $1 $2 hello"
  if output=$(portablectl attach --extension "$1" "$2" hello 2>&1); then
    printf '%s\n' "$output"
    portablectl detach --extension "$1" "$2" hello || true
    fail "the extension was attached on $2"
  fi
  printf '%s\n' "$output"
  grep -q "does not match" <<<"$output" || fail "the refusal does not say the release data does not match"
}

hello_attach() {
  run portablectl attach --now --extension "$1" "$2" hello
  expect_active hello.service
  grep -q "ExtensionImages=.*$(basename "$1")" /etc/systemd/system.attached/hello.service.d/20-portable.conf ||
    fail "hello.service's drop-in does not name the extension image"
}

hello_http() {
  local body
  body=$(http_wait http://127.0.0.1:8084/cgi-bin/hello)
  printf '%s\n' "$body"
  grep -qx "Hello from the extension" <<<"$body" || fail "no answer from the extension's program"
  grep -qx "Greetings from the base image" <<<"$body" || fail "the base's file was not readable"
}

hello_detach() {
  run portablectl detach --now --extension "$1" "$2" hello
  expect_gone hello.service /etc/systemd/system.attached/hello.service
}

hello() {
  local image base
  scenario extension hello.service
  scenario_image runtime
  base=$IMAGES/$image.raw
  scenario_image hello
  image=$IMAGES/$image.raw
  step "inspect lists exactly hello.service from base and extension" hello_inspect "$image" "$base"
  step "attaching it on another base is refused" \
    hello_other_base_refused "$image" "$IMAGES/$(image_of long-run).raw"
  step "attach --now --extension starts hello.service" hello_attach "$image" "$base"
  step "the service runs the extension's program with the base's busybox and data" hello_http
  step "detach --now --extension removes it" hello_detach "$image" "$base"
  step "port 8084 is closed after detach" expect_port_closed 8084
  if [[ $(list_state "$(basename "$base" .raw)") != detached ]]; then
    systemctl stop hello.service 2>&1 || true
    portablectl detach --extension "$image" "$base" hello 2>&1 || true
  fi
}

# A layered image: assembled from layers compressed apart, it is one
# ordinary squashfs to portabled and the kernel.
stack() {
  local image
  scenario layered stack.service
  scenario_image stack
  step "inspect lists exactly stack.service" expect_inspect "$image" stack.service
  step "attach --now starts stack.service" attach_now "$image" stack.service
  step "port 8085 answers from the layers' web root" \
    expect_http_body http://127.0.0.1:8085/ "Hello from a layered image"
  step "detach --now removes it" detach_now "$image" stack.service
  step "port 8085 is closed after detach" expect_port_closed 8085
  cleanup "$image" stack.service
}

# Disk images (format = "ddi"): the squashfs in a GPT root partition, with
# its dm-verity hash tree in a root-verity partition.
#
# Unsigned, with no root hash given (no .roothash file beside it), systemd
# 252 and 257 mount the root partition without verity: the image works as
# a squashfs image does. From 258 on, systemd takes for the root hash what
# the partition UUIDs spell (the root's and the root-verity's joined, as
# the Discoverable Partitions Specification recommends and our images have
# them; $SYSTEMD_DISSECT_VERITY_GUESS=0 turns that off). The unsigned image
# is then verity-protected too, and starting its service takes
# device-mapper, which this kernel lacks; a host that takes the image
# without verity says so with RootImagePolicy=root=unprotected, under which
# it runs as on 257.

# The VERITY column of the root partition in systemd-dissect's table.
dissect_verity() {
  local file=$1 expected=$2 actual
  echo "\$ systemd-dissect $file"
  systemd-dissect "$file" || fail "systemd-dissect $file failed"
  actual=$(systemd-dissect "$file" | awk '$2 == "root" { print $7 }')
  echo "root partition: verity $actual"
  [[ $actual == "$expected" ]] || fail "systemd-dissect shows the root's verity as '$actual', expected '$expected'"
}

# 258 and later: the root hash comes from the UUIDs, and from nowhere else.
dissect_verity_from_uuids() {
  dissect_verity "$1" yes
  echo "with SYSTEMD_DISSECT_VERITY_GUESS=0:"
  SYSTEMD_DISSECT_VERITY_GUESS=0 dissect_verity "$1" no
}

# attach IMAGE without --now, after which its UNIT is loaded from the
# attached unit file.
attach_loaded() {
  run portablectl attach "$1"
  expect_property "$2" LoadState loaded
  expect_property "$2" FragmentPath "/etc/systemd/system.attached/$2"
}

# The failure comes after the fork, so `systemctl start` may succeed.
# libcryptsetup says why in the unit's journal: it found no device-mapper.
needs_device_mapper() {
  local unit=$1 cursor
  cursor=$(journal_cursor)
  echo "\$ systemctl start $unit"
  systemctl start "$unit" 2>&1 || true
  wait_for 15 unit_failed "$unit" ||
    fail "$unit did not fail: if this kernel has device-mapper now, check here that it runs"
  expect_property "$unit" ExecMainStatus 226
  wait_for 15 journal_after_greps "$cursor" "$unit: Failed to set up mount namespacing" ||
    fail "the journal does not say that mount namespacing failed for $unit"
  journal_after_greps "$cursor" "Cannot initialize device-mapper" ||
    fail "the journal does not say that device-mapper is missing"
  journal_after "$cursor" | tail -n 12
  run systemctl reset-failed "$unit"
}

verified_unprotected_start() {
  mkdir -p /etc/systemd/system/verified.service.d
  printf '[Service]\nRootImagePolicy=root=unprotected\n' \
    >/etc/systemd/system/verified.service.d/unprotected.conf
  run systemctl daemon-reload
  run systemctl start verified.service
  expect_active verified.service
}

verified_unprotected_detach() {
  rm -r /etc/systemd/system/verified.service.d
  run systemctl daemon-reload
  detach_now "$1" verified.service
}

# A host that runs only signed images says so in a drop-in for the
# service (RootImagePolicy=, systemd 254 and later; portablectl has no
# policy option): the unsigned image attaches, but its service does not
# start.
verified_policy_refused() {
  local refused=0 cursor
  run portablectl attach "$1"
  mkdir -p /etc/systemd/system/verified.service.d
  printf '[Service]\nRootImagePolicy=root=signed\n' >/etc/systemd/system/verified.service.d/policy.conf
  run systemctl daemon-reload
  cursor=$(journal_cursor)
  echo "\$ systemctl start verified.service"
  systemctl start verified.service 2>&1 || true
  # systemd reports a policy's refusal as ERFKILL.
  wait_for 15 unit_failed verified.service &&
    [[ $(unit_property verified.service ExecMainStatus) == 226 ]] &&
    wait_for 5 journal_after_greps "$cursor" \
      "verified.service: Failed to set up mount namespacing: Operation not possible due to RF-kill" &&
    refused=1
  journal_after "$cursor" | tail -n 12
  rm -r /etc/systemd/system/verified.service.d
  systemctl daemon-reload
  systemctl reset-failed verified.service 2>&1 || true
  ((refused)) || fail "verified.service was not refused (226/NAMESPACE, RF-kill) under RootImagePolicy=root=signed"
  run portablectl detach "$1"
}

verified() {
  local image
  scenario "disk image" verified.service
  scenario_image verified
  if ((PS_EXPECT_SYSTEMD >= 258)); then
    step "systemd-dissect: a root and a root-verity partition, the root hash from their UUIDs" \
      dissect_verity_from_uuids "$IMAGES/$image.raw"
    step "inspect lists exactly verified.service" expect_inspect "$image" verified.service
    step "attach attaches verified.service" attach_loaded "$image" verified.service
    step "starting it needs dm-verity, which this kernel lacks (226/NAMESPACE)" \
      needs_device_mapper verified.service
    step "under RootImagePolicy=root=unprotected it starts without verity" verified_unprotected_start
    step "port 8086 answers from the root partition's squashfs" \
      expect_http_body http://127.0.0.1:8086/ "long-run index"
    step "detach --now removes it" verified_unprotected_detach "$image"
  else
    step "systemd-dissect: a root and a root-verity partition, no root hash known" \
      dissect_verity "$IMAGES/$image.raw" no
    step "inspect lists exactly verified.service" expect_inspect "$image" verified.service
    step "attach --now starts verified.service" attach_now "$image" verified.service
    step "port 8086 answers from the root partition's squashfs" \
      expect_http_body http://127.0.0.1:8086/ "long-run index"
    step "detach --now removes it" detach_now "$image" verified.service
  fi
  step "port 8086 is closed after detach" expect_port_closed 8086
  if ((PS_EXPECT_SYSTEMD >= 254)); then
    step "RootImagePolicy=root=signed keeps its service from starting" verified_policy_refused "$image"
  else
    record SKIP "RootImagePolicy=root=signed keeps its service from starting (image policies came with systemd 254)"
  fi
  if [[ -d /etc/systemd/system/verified.service.d ]]; then
    rm -r /etc/systemd/system/verified.service.d
    systemctl daemon-reload
  fi
  cleanup "$image" verified.service
}

# Signed (by tests/systemd/run, whose certificate is in /etc/verity.d):
# systemd reads the root hash from the signature partition and so must set
# the partition up with dm-verity, which takes device-mapper. This kernel
# has none: attaching works (it reads the image without verity), starting
# the service does not. With device-mapper, the service would start, and
# the kernel would check every block it reads against the signed root
# hash; that is not testable here.
sealed_detach() {
  run portablectl detach "$1"
  expect_gone sealed.service /etc/systemd/system.attached/sealed.service
}

sealed() {
  local image
  scenario "signed disk image" sealed.service
  scenario_image sealed
  step "systemd-dissect: the root partition is signed" dissect_verity "$IMAGES/$image.raw" signed
  step "inspect lists exactly sealed.service" expect_inspect "$image" sealed.service
  step "attach attaches sealed.service" attach_loaded "$image" sealed.service
  step "starting it needs dm-verity, which this kernel lacks (226/NAMESPACE)" needs_device_mapper sealed.service
  step "detach removes it" sealed_detach "$image"
  cleanup "$image" sealed.service
}

# The real-service set of webapp_1.raw and webapp_2.raw: state, cache,
# logs, runtime and configuration directories, an environment file, CA
# certificates and a data directory from the host, a timer job and a
# static user; their data on the host, kept across detach and attach, an
# upgrade with reattach, and every profile. The counter goes up by one per
# visit over the whole scenario.

webapp_prepare() {
  install -d -m 0755 /etc/webapp /etc/ssl/certs
  echo "configured on the host" >/etc/webapp/greeting
  echo "WEBAPP_GREETING=from the host's environment file" >/etc/webapp.env
  echo "test certificate" >/etc/ssl/certs/webapp-test.pem
  install -d -m 1777 /srv/webapp-data
  # portabled's default profile makes every user dynamic; this host
  # drop-in gives webapp-static.service a static one (root).
  install -d /etc/systemd/system/webapp-static.service.d
  printf '[Service]\nDynamicUser=no\n' \
    >/etc/systemd/system/webapp-static.service.d/50-static-user.conf
  run systemctl daemon-reload
}

# Under the trusted profile, 257 and later write the host's os-release
# into the host's /run/host, which systemd-nspawn leaves read-only, with a
# plain file where systemd puts a symlink: every unit would fail with
# "Failed to set up mount namespacing" (262: ".../.os-release-stage/:
# Read-only file system", and "File exists" once /run/host is writable).
# This container, not the image, is what differs from a host
# (doc/services.md).
webapp_trusted_in_nspawn() {
  ((PS_EXPECT_SYSTEMD >= 257)) || return 0
  if [[ -e /run/host/os-release ]]; then
    mount -o remount,rw /run/host 2>/dev/null || mount -o remount,rw,bind /run/host
    umount /run/host/os-release 2>/dev/null || true
    rm -f /run/host/os-release
  fi
}

webapp_attach() {
  local image=$1 profile=$2
  [[ $profile != trusted ]] || webapp_trusted_in_nspawn
  run portablectl attach --now --profile="$profile" "$image"
  expect_active webapp.socket
  expect_active webapp-static.service
  expect_active webapp-update.timer
}

# The visit that makes the counter COUNT: the answer shows what the
# service read and wrote.
webapp_visit() {
  local version=$1 count=$2 body
  body=$(http_wait http://127.0.0.1:8090/)
  printf '%s\n' "$body"
  for line in "version=$version" "count=$count" \
    "config=configured on the host" "env=from the host's environment file" \
    "cert=test certificate" "runtime=$count"; do
    grep -qxF "$line" <<<"$body" || fail "the answer has no line '$line'"
  done
  grep -qx "uid=0" <<<"$body" && fail "the web application ran as root, not as its dynamic user"
  return 0
}

lines_of() {
  wc -l <"$1"
}

# What the visits left on the host: a dynamic user's directories are
# under private/, with a symlink beside them.
webapp_host_state() {
  local n=$1
  ls -la /var/lib/private /var/cache/private /var/log/private /srv/webapp-data
  [[ $(readlink /var/lib/webapp) == private/webapp ]] || fail "/var/lib/webapp is not a link to private/webapp"
  [[ $(cat /var/lib/private/webapp/count) == "$n" ]] || fail "the counter on the host is not $n"
  [[ $(lines_of /var/cache/private/webapp/visits) == "$n" ]] || fail "the cache on the host has no $n visits"
  [[ $(lines_of /var/log/private/webapp/access.log) == "$n" ]] || fail "the log on the host has no $n visits"
  [[ $(lines_of /srv/webapp-data/visits) == "$n" ]] || fail "the bound host directory has no $n visits"
}

webapp_timer_ran() {
  wait_for 15 test -s /var/lib/private/webapp/updates ||
    fail "the update job wrote nothing into the shared state directory"
  cat /var/lib/private/webapp/updates
  grep -qv "updated by 0" /var/lib/private/webapp/updates ||
    fail "the update job ran as root, not as the dynamic user"
}

webapp_static_state() {
  [[ -d /var/lib/webapp-static && ! -L /var/lib/webapp-static ]] ||
    fail "/var/lib/webapp-static is not a plain directory (a static user's)"
  [[ $(cat /var/lib/webapp-static/uid) == 0 ]] || fail "webapp-static.service did not run as root"
  cat /var/lib/webapp-static/runs
}

webapp_detach() {
  run portablectl detach --now "$1"
  expect_gone webapp.socket /etc/systemd/system.attached/webapp.socket
  expect_port_closed 8090
}

webapp_reattach() {
  run portablectl reattach --now "$1"
  expect_active webapp.socket
  expect_list_state "$1" running
}

webapp() {
  local v1 v2 profile
  scenario webapp 'webapp*'
  v1=webapp_1
  v2=webapp_2
  step "the host has the configuration, certificates, data directory and a static-user drop-in" webapp_prepare
  step "attach --now (default profile) starts the socket, timer and static service" webapp_attach "$v1" default
  step "a visit reads the host's configuration, environment and certificates" webapp_visit 1 1
  step "a second visit counts on" webapp_visit 1 2
  step "state, cache, logs and the bound directory are on the host, private to the dynamic user" webapp_host_state 2
  step "the timer's job wrote to the same state as the same dynamic user" webapp_timer_ran
  step "the static-user service keeps its state in /var/lib/webapp-static" webapp_static_state
  step "detach --now stops and removes it all" webapp_detach "$v1"
  step "attach again: the state is still there" webapp_attach "$v1" default
  step "the counter goes on after detach and attach" webapp_visit 1 3
  step "reattach --now upgrades to webapp_2" webapp_reattach "$v2"
  step "version 2 answers, with the state of version 1" webapp_visit 2 4
  step "the host's state follows" webapp_host_state 4
  local count=4
  for profile in strict nonetwork trusted; do
    count=$((count + 1))
    step "detach before the $profile profile" webapp_detach "$v2"
    step "attach --profile=$profile" webapp_attach "$v2" "$profile"
    step "under $profile, a visit counts on from the same state" webapp_visit 2 "$count"
    step "under $profile, the state is on the host" webapp_host_state "$count"
  done
  step "detach --now at the end" webapp_detach "$v2"
  cleanup "$v2" 'webapp*'
  cleanup "$v1" 'webapp*'
}

# ---------------------------------------------------------------- release feeds

# A host that updates itself: a feed written by the real `publish`
# (/usr/local/bin/portable-service-builder, put there by tests/systemd/run)
# and served by busybox httpd on loopback; the host gets passthru.sysupdate's
# trees (in $SYSUPDATE_INPUTS/host) laid over /, and portable-update@NAME.service
# installs versions and moves the attachment. systemd-sysupdate came with
# 257 (Debian 12's 252 has none).
SYSUPDATE_INPUTS=/srv/ps-sysupdate
FEED=/srv/feed
FEED_URL=http://127.0.0.1:8098/
GPG_HOME=/root/ps-gnupg

publish() {
  run portable-service-builder publish "$FEED" "$@"
}

feed_serve() {
  mkdir -p "$FEED"
  publish "$SYSUPDATE_INPUTS/releases/counter-1"
  run systemd-run --unit=ps-feed /usr/local/bin/busybox httpd -f -p 127.0.0.1:8098 -h "$FEED"
  wait_for 10 curl --silent --fail --output /dev/null "${FEED_URL}SHA256SUMS" ||
    fail "the feed is not served at $FEED_URL"
  curl --silent --show-error "${FEED_URL}SHA256SUMS"
}

# Lays a tree of passthru.sysupdate over /, as a host's set-up does.
host_tree() {
  run cp -rT "$SYSUPDATE_INPUTS/host/$1/" /
  run systemctl daemon-reload
}

counter_host() {
  host_tree counter-unverified
  find /etc/sysupdate.counter.d /usr/local/sbin/portable-update /etc/systemd/system/portable-update@.* \
    /etc/systemd/system/timers.target.wants/portable-update@counter.timer
  grep -x 'Verify=no' /etc/sysupdate.counter.d/counter.transfer || fail "the transfer does not say Verify=no"
  expect_property portable-update@counter.timer UnitFileState enabled
}

# Runs the update of NAME, which must succeed; systemd 257 and 262 must read
# the .transfer file and leave the .conf one, which earlier versions read.
update_runs() {
  local name=$1 cursor rc=0
  cursor=$(journal_cursor)
  echo "\$ systemctl start portable-update@$name.service"
  systemctl start "portable-update@$name.service" || rc=$?
  journal_after "$cursor" | grep -vE '^(Got [0-9]+%|Downloading|Acquired [0-9])' | tail -n 40
  ((rc == 0)) || fail "portable-update@$name.service failed (systemctl exited with $rc)"
  if journal_after "$cursor" | grep -q "should have the '.transfer' extension"; then
    fail "systemd-sysupdate read the .conf definition"
  fi
}

# Runs the update of NAME, which must fail with a line matching WHY (an
# extended regular expression).
update_refused() {
  local name=$1 why=$2 cursor
  cursor=$(journal_cursor)
  echo "\$ systemctl start portable-update@$name.service"
  if systemctl start "portable-update@$name.service"; then
    journal_after "$cursor" | tail -n 40
    fail "portable-update@$name.service succeeded"
  fi
  journal_after "$cursor" | grep -vE '^(Got [0-9]+%|Downloading|Acquired [0-9])' | tail -n 40
  expect_property "portable-update@$name.service" Result exit-code
  journal_after "$cursor" | grep -qE -- "$why" || fail "the journal has no line matching '$why'"
  run systemctl reset-failed "portable-update@$name.service"
}

# The files of NAME in /var/lib/portables, hidden ones (partial downloads)
# included, are exactly FILES.
installed_exactly() {
  local name=$1 actual expected
  shift
  actual=$(cd "$IMAGES" && ls -A | grep -F "$name" | sort | tr '\n' ' ')
  expected=$(printf '%s ' "$@")
  echo "$IMAGES holds: $actual"
  [[ $actual == "$expected" ]] || fail "$IMAGES holds '$actual' of $name, expected '$expected'"
}

# The installed file is the feed's, byte for byte.
installed_as_published() {
  cmp "$IMAGES/$1" "$FEED/$1" || fail "$IMAGES/$1 differs from the feed's"
  echo "$IMAGES/$1 is the feed's $1"
}

# UNIT's attachment names the image FILE.
attached_to() {
  local unit=$1 file=$2 line
  line=$(head -n 1 "/etc/systemd/system.attached/$unit.d/20-portable.conf")
  echo "$line"
  [[ $line == "# Drop-in created for image '$IMAGES/$file', do not edit." ]] ||
    fail "$unit is not attached from $file"
}

counter_visit() {
  local version=$1 count=$2 body
  body=$(http_wait http://127.0.0.1:8095/)
  printf '%s\n' "$body"
  grep -qx "version=$version" <<<"$body" || fail "the answer is not from version $version"
  grep -qx "count=$count" <<<"$body" || fail "the count is not $count: the state did not carry over"
}

report_runs() {
  journal_of counter-report.service | grep -c "counter-report ran" || true
}

counter_attach() {
  run portablectl attach --now --enable --profile=strict --copy=copy counter_1
  expect_active counter.socket
  attached_to counter.socket counter_1.raw
  [[ $(report_runs) == 1 ]] || fail "attach --now did not run counter-report.service once"
}

# What the attachment had stays across a move: the strict profile as a copy
# (--copy=copy), the socket enabled (its link in system.attached), and
# counter-report.service, which ran once at the attach, not run again.
counter_kept() {
  local dropin=/etc/systemd/system.attached/counter@.service.d/10-profile.conf
  ls -l "$dropin" /etc/systemd/system.attached/sockets.target.wants/
  [[ -f $dropin && ! -L $dropin ]] || fail "$dropin is not a copy"
  cmp /usr/lib/systemd/portable/profile/strict/service.conf "$dropin" ||
    fail "$dropin is not the strict profile"
  [[ -L /etc/systemd/system.attached/sockets.target.wants/counter.socket ]] ||
    fail "counter.socket is no longer enabled"
  expect_active counter.socket
  expect_property counter-report.service ActiveState inactive
  [[ $(report_runs) == 1 ]] || fail "counter-report.service ran again: the move started a unit that was not running"
}

counter_moved() {
  attached_to counter.socket "counter_$1.raw"
  attached_to counter@.service "counter_$1.raw"
  counter_kept
}

# A byte of the published version 3 flipped on the server, SHA256SUMS
# unchanged.
counter_tamper() {
  local file=$FEED/counter_3.raw byte
  publish "$SYSUPDATE_INPUTS/releases/counter-3"
  byte=$(od -An -tu1 -j 8192 -N 1 "$file" | tr -d ' ')
  printf "\\$(printf '%03o' $((255 - byte)))" | dd of="$file" bs=1 seek=8192 conv=notrunc status=none
  if cmp -s "$file" "$SYSUPDATE_INPUTS/releases/counter-3/counter_3.raw"; then
    fail "the byte did not change"
  fi
  grep counter_3.raw "$FEED/SHA256SUMS"
}

# publish refuses to touch the feed; the fix it names is done by hand.
counter_untamper() {
  local output
  if output=$(portable-service-builder publish "$FEED" 2>&1); then
    fail "publish took a feed whose counter_3.raw does not match SHA256SUMS"
  fi
  printf '%s\n' "$output"
  grep -q "does not match SHA256SUMS" <<<"$output" || fail "publish does not say which file is wrong"
  rm "$FEED/counter_3.raw" "$FEED/counter_3.cdx.json"
  sed -i -e '/  counter_3\.raw$/d' -e '/  counter_3\.cdx\.json$/d' "$FEED/SHA256SUMS"
  publish
}

# Throw-away keys: the feed's, whose public key the host trusts, and another.
gpg_keys() {
  install -d -m 0700 "$GPG_HOME"
  local who
  for who in feed wrong; do
    run gpg --batch --homedir "$GPG_HOME" --passphrase '' \
      --quick-generate-key "$who <$who@example.invalid>" ed25519 sign never
  done
  # 257 reads /etc/systemd/import-pubring.gpg; 262 reads it too when there
  # is no import-pubring.pgp beside it.
  gpg --batch --homedir "$GPG_HOME" --export feed@example.invalid >/etc/systemd/import-pubring.gpg
  [[ -s /etc/systemd/import-pubring.gpg ]] || fail "no public key exported"
  host_tree counter
  grep -x 'Verify=yes' /etc/sysupdate.counter.d/counter.transfer || fail "the transfer does not say Verify=yes"
}

counter_signed_by() {
  local who=$1
  shift
  run portable-service-builder publish "$FEED" "$@" --gpg-key "$who@example.invalid" --gpg-homedir "$GPG_HOME"
  gpg --batch --homedir "$GPG_HOME" --verify "$FEED/SHA256SUMS.gpg" "$FEED/SHA256SUMS"
}

counter_rollback() {
  run portable-update rollback counter
  counter_moved 1
}

counter_cleanup() {
  local file
  systemctl stop counter.socket 2>&1 || true
  for file in "$IMAGES"/counter_*.raw; do
    portablectl detach --now "$file" 2>&1 || true
  done
}

vault_host() {
  counter_signed_by feed "$SYSUPDATE_INPUTS/vault_1.raw"
  cmp "$FEED/vault_1.raw" "$SYSUPDATE_INPUTS/vault_1.raw" || fail "the published vault_1.raw is not the signed one"
  host_tree vault
}

# vault VERSION is installed as published, signed, beside FILES.
vault_installed() {
  local version=$1
  shift
  installed_exactly vault "$@"
  installed_as_published "vault_$version.raw"
  dissect_verity "$IMAGES/vault_$version.raw" signed
}

# tool, an extension of kit: both from the signed feed, each a component.
kit_tool_host() {
  counter_signed_by feed "$SYSUPDATE_INPUTS/releases/kit-1" "$SYSUPDATE_INPUTS/releases/tool-1"
  host_tree kit
  host_tree tool
}

kit_tool_installed() {
  update_runs kit
  update_runs tool
  installed_exactly kit_ kit_1.raw
  installed_exactly tool_ tool_1.raw
}

kit_tool_attach() {
  run portablectl attach --now --extension "$IMAGES/tool_1.raw" "$IMAGES/kit_1.raw" tool
  expect_active tool.service
}

tool_visit() {
  local body
  body=$(http_wait http://127.0.0.1:8097/cgi-bin/version)
  printf '%s\n' "$body"
  grep -qx "tool $1" <<<"$body" || fail "the answer is not from tool $1"
  grep -qx "kit $1" <<<"$body" || fail "the answer is not from kit $1"
}

kit_tool_attached() {
  attached_to tool.service "kit_$1.raw:$IMAGES/tool_$1.raw"
}

kit_tool_cleanup() {
  systemctl stop tool.service 2>&1 || true
  local v
  for v in 1 2; do
    portablectl detach --extension "$IMAGES/tool_$v.raw" "$IMAGES/kit_$v.raw" tool 2>&1 || true
  done
}

sysupdate() {
  scenario "release feed" 'portable-update@*' 'counter*' vault.service tool.service ps-feed.service
  if ((PS_EXPECT_SYSTEMD < 257)); then
    record SKIP "systemd $PS_EXPECT_SYSTEMD has no systemd-sysupdate (Debian 12 does not ship it); the release flow needs 257 or later"
    return 0
  fi
  step "publish makes a feed of counter 1, served on loopback" feed_serve
  step "the host gets passthru.sysupdate's tree (Verify=no), its timer enabled" counter_host
  step "the update service installs counter 1 from the feed" update_runs counter
  step "counter 1 is installed, byte for byte" installed_as_published counter_1.raw
  step "attach --now --enable --profile=strict --copy=copy counter_1" counter_attach
  step "counter 1 answers" counter_visit 1 1
  step "publish adds counter 2" publish "$SYSUPDATE_INPUTS/releases/counter-2"
  step "the update service installs counter 2 and moves the attachment to it" update_runs counter
  step "the attachment keeps its profile, copy mode, enabled and stopped units" counter_moved 2
  step "counter 2 answers, with the state counter 1 wrote" counter_visit 2 2
  step "counter 1 stays installed for a rollback (InstancesMax=2)" installed_exactly counter counter_1.raw counter_2.raw
  step "a byte of the published counter 3 is flipped on the server" counter_tamper
  step "the update service refuses counter 3" update_refused counter 'did not check out|does not match expected checksum'
  step "nothing changed on the host: counter 1 and 2 are still there" installed_exactly counter counter_1.raw counter_2.raw
  step "counter 2 keeps answering" counter_visit 2 3
  step "publish refuses the tampered feed; without counter 3 it is valid again" counter_untamper
  step "throw-away keys; the host trusts one and checks signatures (Verify=yes)" gpg_keys
  # 257 asks for SHA256SUMS.gpg, 262 then for SHA256SUMS.asc too.
  step "an unsigned manifest is refused" update_refused counter 'SHA256SUMS\.(gpg|asc) failed with code 404'
  step "nothing changed on the host" installed_exactly counter counter_1.raw counter_2.raw
  step "a manifest signed by another key is refused" counter_signed_by wrong
  step "the update service refuses it" update_refused counter "Signature verification failed"
  step "the manifest signed by the trusted key" counter_signed_by feed
  step "the update service accepts it (nothing newer to install)" update_runs counter
  step "counter 2 still answers" counter_visit 2 4
  step "portable-update rollback counter returns to counter 1" counter_rollback
  step "counter 1 answers, with the state counter 2 wrote" counter_visit 1 5
  step "an update leaves the rollback in place" update_runs counter
  step "counter 1 still answers" counter_visit 1 6
  step "publish adds counter 3, signed" counter_signed_by feed "$SYSUPDATE_INPUTS/releases/counter-3"
  step "the update service moves counter 1 to counter 3" update_runs counter
  step "counter 3 answers, with the state" counter_visit 3 7
  step "counter 3 and the one before it stay installed; counter 1 goes" installed_exactly counter counter_2.raw counter_3.raw
  step "the attachment is counter 3's, as it was" counter_moved 3
  step "publish adds the signed disk image vault 1; the host gets its tree" vault_host
  step "the update service installs vault 1" update_runs vault
  step "vault 1 is installed as published, its signature kept" vault_installed 1 vault_1.raw
  step "attach attaches vault.service" attach_loaded vault_1 vault.service
  step "publish adds vault 2, signed" counter_signed_by feed "$SYSUPDATE_INPUTS/vault_2.raw"
  step "the update service installs vault 2 and moves the attachment" update_runs vault
  step "vault 2 is attached" attached_to vault.service vault_2.raw
  step "vault 2 is installed as published, its signature kept" vault_installed 2 vault_1.raw vault_2.raw
  step "its service needs dm-verity, which this kernel lacks (226/NAMESPACE)" needs_device_mapper vault.service
  # By path: 257's portabled takes a bare name that is no file in the
  # current directory for one that matches every attachment, and refuses
  # to detach while counter.socket is active.
  step "detach removes it" run portablectl detach "$IMAGES/vault_2.raw"
  step "publish adds kit 1 and tool 1, an extension of it; the host gets both trees" kit_tool_host
  step "the update services install kit 1 and tool 1" kit_tool_installed
  step "attach --now --extension tool_1.raw kit_1.raw tool" kit_tool_attach
  step "tool 1 answers from kit 1" tool_visit 1
  step "publish adds kit 2 alone" counter_signed_by feed "$SYSUPDATE_INPUTS/releases/kit-2"
  step "kit's update installs kit 2 but does not move: tool 1 runs on kit 1 only" \
    update_refused kit "do not run together"
  step "tool 1 still answers from kit 1" tool_visit 1
  step "the attachment is still kit 1 and tool 1" kit_tool_attached 1
  step "publish adds tool 2, built on kit 2" counter_signed_by feed "$SYSUPDATE_INPUTS/releases/tool-2"
  step "tool's update moves base and extension together" update_runs tool
  step "the attachment is kit 2 and tool 2" kit_tool_attached 2
  step "tool 2 answers from kit 2" tool_visit 2
  step "kit's next update finds nothing left to move" update_runs kit
  step "portable-update rollback kit tool returns to both 1" run portable-update rollback kit tool
  step "tool 1 answers from kit 1 again" tool_visit 1
  kit_tool_cleanup
  counter_cleanup
  portablectl detach "$IMAGES/vault_2.raw" 2>&1 || true
  systemctl stop ps-feed.service 2>&1 || true
}

# What doc/feed-without-sysupdate.sh (here /usr/local/sbin/feed-without-sysupdate)
# does where there is no systemd-sysupdate: Debian 12's systemd 252.
without_sysupdate_tampered() {
  counter_tamper
  if feed-without-sysupdate counter "$FEED_URL" --profile=strict; then
    fail "the script installed a file that does not match SHA256SUMS"
  fi
}

without_sysupdate() {
  scenario "release feed without systemd-sysupdate" 'counter*' ps-feed.service
  if ((PS_EXPECT_SYSTEMD >= 257)); then
    record SKIP "systemd $PS_EXPECT_SYSTEMD has systemd-sysupdate: the scenario release feed covers it"
    return 0
  fi
  step "publish makes a feed of counter 1, served on loopback" feed_serve
  step "the script installs counter 1" run feed-without-sysupdate counter "$FEED_URL"
  step "counter 1 is installed, byte for byte" installed_as_published counter_1.raw
  step "attach --now --profile=strict counter_1" run portablectl attach --now --profile=strict counter_1
  step "counter 1 answers" counter_visit 1 1
  step "publish adds counter 2" publish "$SYSUPDATE_INPUTS/releases/counter-2"
  step "the script installs counter 2 and reattaches to it" \
    run feed-without-sysupdate counter "$FEED_URL" --profile=strict
  step "the attachment is counter 2's" attached_to counter.socket counter_2.raw
  step "counter 2 answers, with the state counter 1 wrote" counter_visit 2 2
  step "a tampered counter 3 is refused" without_sysupdate_tampered
  step "nothing changed on the host" installed_exactly counter counter_1.raw counter_2.raw
  step "counter 2 keeps answering" counter_visit 2 3
  step "reattach --now counter_1 returns to counter 1" run portablectl reattach --now --profile=strict counter_1
  step "counter 1 answers, with the state counter 2 wrote" counter_visit 1 4
  counter_cleanup
  systemctl stop ps-feed.service 2>&1 || true
}

# ---------------------------------------------------------------- main

# portabled, systemd-dissect and PID 1 get loop devices from
# /dev/loop-control (bound in by the host), but the container has no udev to
# make the /dev/loopN node for the number the kernel hands out. The numbers
# are the host's, shared with everything else that uses loop devices there,
# so nodes are made for the first 256.
make_loop_nodes() {
  local n
  for ((n = 0; n < 256; n++)); do
    [[ -e /dev/loop$n ]] || mknod -m 0660 "/dev/loop$n" b 7 "$n"
  done
}

# A disk image's partitions are /dev/loopNpM, whose device numbers the
# kernel picks when it scans the partition table; without them systemd
# fails with "Failed to inspect image metadata". The kernel makes the nodes
# in devtmpfs, so one is mounted aside and /dev gets links to where its
# nodes will be, for the partitions disk images have (1 to 3).
make_partition_links() {
  local n p
  mkdir -p /run/ps-devtmpfs
  mountpoint -q /run/ps-devtmpfs || mount -t devtmpfs devtmpfs /run/ps-devtmpfs
  for ((n = 0; n < 256; n++)); do
    for p in 1 2 3; do
      [[ -e /dev/loop${n}p$p || -L /dev/loop${n}p$p ]] ||
        ln -s "/run/ps-devtmpfs/loop${n}p$p" "/dev/loop${n}p$p"
    done
  done
}

main() {
  make_loop_nodes
  make_partition_links
  : >"$RESULTS_FILE"
  : >"$FAILURES_FILE"
  environment
  dissect
  demo
  long_run
  ticker
  greet
  ephemeral
  hello
  stack
  verified
  sealed
  webapp
  sysupdate
  without_sysupdate
  journalctl --no-pager --boot --output=short-monotonic >"$PS_RESULTS/journal.txt" 2>&1 || true
  echo "finished" >"$PS_RESULTS/status"
}

main >>"$LOG_FILE" 2>&1
