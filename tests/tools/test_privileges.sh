#!/usr/bin/env bash
# Privileges (carpd(8) SECURITY): after start carpd keeps exactly CAP_NET_RAW and
# CAP_NET_ADMIN (+ CAP_SETUID/CAP_SETGID permitted only, with notify-user), with
# no_new_privs; what it still has to do later works (a SIGHUP that adds a vhid and
# its macvlan, maintenance written to the state directory, sysctls restored on
# stop); the read-only socket answers status and refuses changes; a non-root
# caller is refused on the control socket; the notify program runs as the notify
# user, without capabilities, with a clean environment and only fds 0-2.
# In a private namespace carpd-priv-PID with a veth pair pv0/pv1 (192.0.2.0/24).
set -euo pipefail
: "${CARPD:?}" "${CARPCTL:?}"
fail() { echo "FAIL: $*" >&2; failed=1; exit 1; }

[ "$(id -u)" = 0 ] || { echo "skipped: needs root"; exit 77; }
for t in ip capsh setpriv jq; do
  command -v "$t" >/dev/null || { echo "skipped: needs $t"; exit 77; }
done
getent passwd nobody >/dev/null && getent group nogroup >/dev/null ||
  { echo "skipped: needs the user nobody and the group nogroup"; exit 77; }
NOBODY_UID=$(id -u nobody)
NOGROUP_GID=$(getent group nogroup | cut -d: -f3)

NS=carpd-priv-$$
DIR=$(mktemp -d)
PID=
cleanup() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  # the notify programs this test's carpd started (they sleep)
  for f in "$DIR"/out/pid.*; do
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
  done
  ip netns del "$NS" 2>/dev/null || true
  if [ "${failed:-0}" = 1 ]; then echo "--- carpd log"; cat "$DIR/log" || true; fi
  rm -rf "$DIR"
}
trap 'failed=1; cleanup' ERR
trap cleanup EXIT

# nobody must reach the read-only socket and the hook: a traversable directory
chmod 755 "$DIR"
mkdir -m 755 "$DIR/run"
mkdir -m 1777 "$DIR/out"
SOCK=$DIR/run/carpd.sock
RO=$DIR/run/carpd.ro.sock

ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" link add pv0 type veth peer name pv1
ip -n "$NS" link set pv0 up
ip -n "$NS" link set pv1 up
ip -n "$NS" addr add 192.0.2.1/24 dev pv0
ip -n "$NS" addr add 192.0.2.2/24 dev pv1

# The hook records the environment it was given (/proc/$$/environ is what execve
# passed, not what the shell adds), then becomes 'sleep' so that the test can read
# its credentials and descriptors in /proc.
cat > "$DIR/hook" <<'HOOK'
#!/bin/sh
d=${0%/*}/out
tr '\0' '\n' < /proc/$$/environ > "$d/env.$CARP_NEW_STATE.tmp"
mv "$d/env.$CARP_NEW_STATE.tmp" "$d/env.$CARP_NEW_STATE"
echo $$ > "$d/pid.$CARP_NEW_STATE.tmp"
mv "$d/pid.$CARP_NEW_STATE.tmp" "$d/pid.$CARP_NEW_STATE"
exec sleep 20
HOOK
chmod 755 "$DIR/hook"

write_conf() { # $1: extra global lines
  cat > "$DIR/carpd.conf" <<CONF
control "$SOCK"
state-dir "$DIR/state"
notify "$DIR/hook"
$1
vhid 1 on pv0 {
    address 192.0.2.10/24
}
CONF
}

start() { # $@: a command carpd runs under (setpriv ...), or nothing
  : > "$DIR/log"
  # fd 7 is open without close-on-exec, and a variable the hook must not see is
  # exported: both would reach the notify program if carpd passed them on
  CARPD_TEST_CANARY=leaked ip netns exec "$NS" "$@" "$CARPD" -d -f "$DIR/carpd.conf" \
    2>>"$DIR/log" 7<"$DIR/carpd.conf" &
  PID=$!
  for _ in $(seq 1 100); do
    [ -S "$SOCK" ] && "$CARPCTL" -s "$SOCK" version >/dev/null 2>&1 && return 0
    kill -0 "$PID" 2>/dev/null || fail "carpd exited at start"
    sleep 0.05
  done
  fail "carpd did not start"
}
stop() { kill "$PID"; wait "$PID" || fail "carpd exit status $?"; PID=; }
ctl() { ip netns exec "$NS" "$CARPCTL" "$@"; }
as_nobody() { ip netns exec "$NS" setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
capfield() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
decode() { capsh --decode="$1" | sed 's/^0x[0-9a-f]*=//'; }
expect_caps() { # $1 pid, $2 field, $3 expected capsh --decode names ("" = none)
  local hex; hex=$(capfield "$1" "$2")
  [ -n "$hex" ] || fail "no $2 in /proc/$1/status"
  [ "$(decode "$hex")" = "$3" ] || fail "$2 is $hex ($(decode "$hex")), expected '$3'"
}
wait_for() { # $1 seconds, rest: a command
  local t=$(($1 * 10)); shift
  for _ in $(seq 1 "$t"); do "$@" && return 0; sleep 0.1; done
  return 1
}
is_master() { [ "$(ctl -s "$SOCK" status -j | jq -r ".vhids[] | select(.vhid == $1) | .state")" = MASTER ]; }

ARP0=$(ip netns exec "$NS" cat /proc/sys/net/ipv4/conf/pv0/arp_ignore)

# ---- 1: with notify-user and a read-only socket (mode 0666) -----------------------
write_conf "control-ro \"$RO\"
notify-user \"nobody\""
start
expect_caps "$PID" CapEff "cap_net_admin,cap_net_raw"
expect_caps "$PID" CapPrm "cap_setgid,cap_setuid,cap_net_admin,cap_net_raw"
expect_caps "$PID" CapBnd "cap_setgid,cap_setuid,cap_net_admin,cap_net_raw"
expect_caps "$PID" CapInh ""
expect_caps "$PID" CapAmb ""
[ "$(capfield "$PID" NoNewPrivs)" = 1 ] || fail "NoNewPrivs is not 1"
grep -q "privileges: kept cap_net_admin,cap_net_raw=ep cap_setgid,cap_setuid+p" "$DIR/log" ||
  fail "the kept capabilities are not logged"
echo "ok - carpd keeps net_admin, net_raw (setuid/setgid permitted only), no_new_privs"

[ "$(stat -c '%a %U %G' "$SOCK")" = "660 root root" ] || fail "control socket: $(stat -c '%a %U %G' "$SOCK")"
[ "$(stat -c '%a %U' "$RO")" = "666 root" ] || fail "read-only socket: $(stat -c '%a %U' "$RO")"
echo "ok - socket modes"

ctl -s "$RO" status | grep -q "^pv0 .* 1  " || fail "status on the read-only socket"
ctl -s "$RO" status -j | grep -q '"maintenance": false' || fail "status -j on the read-only socket"
ctl -s "$RO" metrics | grep -q '^# EOF$' || fail "metrics on the read-only socket"
as_nobody "$CARPCTL" -s "$RO" version | grep -q "^carpd " || fail "nobody: version on the read-only socket"
as_nobody "$CARPCTL" -s "$RO" status >/dev/null || fail "nobody: status on the read-only socket"
for req in "maintenance on" "demote 50" "state 1 master" "sync bulk"; do
  # shellcheck disable=SC2086
  if out=$(ctl -s "$RO" $req 2>&1); then fail "'$req' accepted on the read-only socket: $out"; fi
  [ "$out" = "carpctl: permission denied: read-only socket" ] || fail "'$req': $out"
done
j=$(ctl -s "$SOCK" status -j)
grep -q '"maintenance": false' <<<"$j" && grep -q '"demotion": 0' <<<"$j" ||
  fail "a refused request changed something: $j"
echo "ok - read-only socket: status, metrics, version; changes refused"

# nobody on the control socket: the file mode refuses it first ...
if out=$(as_nobody "$CARPCTL" -s "$SOCK" status 2>&1); then fail "nobody got status: $out"; fi
[[ "$out" == "carpctl: permission denied"* ]] || fail "nobody, mode 0660: $out"
# ... and with the mode opened up by hand, the daemon's SO_PEERCRED check
chmod 666 "$SOCK"
for req in "status" "maintenance on"; do
  # shellcheck disable=SC2086
  if out=$(as_nobody "$CARPCTL" -s "$SOCK" $req 2>&1); then fail "nobody: '$req' accepted: $out"; fi
  [ "$out" = "carpctl: permission denied" ] || fail "nobody, '$req' past the mode: $out"
done
chmod 660 "$SOCK"
grep -q "control: uid $NOBODY_UID refused" "$DIR/log" || fail "refusal not logged"
ctl -s "$SOCK" status -j | grep -q '"maintenance": false' || fail "nobody changed the maintenance mode"
echo "ok - non-root callers refused on the control socket (mode and SO_PEERCRED)"

# What carpd still does without its other capabilities: the state directory ...
ctl -s "$SOCK" maintenance on >/dev/null
[ -f "$DIR/state/maintenance" ] || fail "maintenance not persisted after the privilege drop"
ctl -s "$SOCK" maintenance off >/dev/null
[ ! -e "$DIR/state/maintenance" ] || fail "maintenance file not removed"
# ... and the notify program
wait_for 10 test -f "$DIR/out/pid.MASTER" || fail "no notify program for BACKUP -> MASTER"
HOOK=$(cat "$DIR/out/pid.MASTER")
wait_for 5 grep -qx sleep "/proc/$HOOK/comm" || fail "the hook did not get to exec sleep"
read -r _ r e s f < <(grep '^Uid:' "/proc/$HOOK/status")
[ "$r $e $s $f" = "$NOBODY_UID $NOBODY_UID $NOBODY_UID $NOBODY_UID" ] || fail "hook uid: $r $e $s $f"
read -r _ r e s f < <(grep '^Gid:' "/proc/$HOOK/status")
[ "$r $e $s $f" = "$NOGROUP_GID $NOGROUP_GID $NOGROUP_GID $NOGROUP_GID" ] || fail "hook gid: $r $e $s $f"
[ -z "$(grep '^Groups:' "/proc/$HOOK/status" | cut -f2 | tr -d ' ')" ] || fail "hook has supplementary groups"
expect_caps "$HOOK" CapEff ""
expect_caps "$HOOK" CapPrm ""
expect_caps "$HOOK" CapAmb ""
[ "$(capfield "$HOOK" NoNewPrivs)" = 1 ] || fail "hook without no_new_privs"
fds=$(ls "/proc/$HOOK/fd" | sort -n | tr '\n' ' ')
[ "$fds" = "0 1 2 " ] || fail "hook has descriptors $fds: $(ls -l "/proc/$HOOK/fd")"
[ "$(readlink "/proc/$HOOK/fd/0")" = /dev/null ] || fail "hook stdin is $(readlink "/proc/$HOOK/fd/0")"
[ "$(readlink "/proc/$HOOK/cwd")" = / ] || fail "hook cwd is $(readlink "/proc/$HOOK/cwd")"
env_got=$(sort "$DIR/out/env.MASTER" | tr '\n' '|')
env_want="CARP_ADDRESSES=192.0.2.10/24|CARP_INTERFACE=pv0|CARP_NEW_STATE=MASTER|CARP_OLD_STATE=BACKUP|CARP_REASON=master timed out|CARP_VHID=1|PATH=/usr/sbin:/usr/bin:/sbin:/bin|"
[ "$env_got" = "$env_want" ] || fail "hook environment: $env_got"
echo "ok - notify program: user nobody, no capabilities, fds 0-2, clean environment"

# A SIGHUP that adds a vhid: a new macvlan, its sysctls, a raw socket on a new parent
cat >> "$DIR/carpd.conf" <<CONF
vhid 2 on pv1 {
    address 192.0.2.20/24
}
CONF
kill -HUP "$PID"
wait_for 10 is_master 2 || fail "vhid 2 added by SIGHUP did not become MASTER"
ip -n "$NS" -br addr show dev vh2.pv1 | grep -q 192.0.2.20/24 || fail "vh2.pv1 has no 192.0.2.20/24"
[ "$(ip netns exec "$NS" cat /proc/sys/net/ipv4/conf/pv1/arp_ignore)" = 1 ] || fail "arp_ignore on pv1 not set"
grep -Eiq "cannot|failed|refused: " "$DIR/log" && fail "errors in the log: $(grep -Ei "cannot|failed|refused: " "$DIR/log")"
echo "ok - after the drop: SIGHUP adds a vhid (macvlan, address, sysctls, sockets)"

stop
ip -n "$NS" link show vh1.pv0 >/dev/null 2>&1 && fail "vh1.pv0 left behind"
ip -n "$NS" link show vh2.pv1 >/dev/null 2>&1 && fail "vh2.pv1 left behind"
[ "$(ip netns exec "$NS" cat /proc/sys/net/ipv4/conf/pv0/arp_ignore)" = "$ARP0" ] || fail "arp_ignore on pv0 not restored"
echo "ok - clean stop: macvlans removed, sysctls restored"

# ---- 2: no notify-user: setuid/setgid go too; read-only socket with a group -------
# Started with only what carpd.service's CapabilityBoundingSet gives: enough to
# create the group's socket and to shrink the bounding set.
for f in "$DIR"/out/pid.*; do kill "$(cat "$f")" 2>/dev/null || true; done
rm -f "$DIR"/out/*
write_conf "control-ro \"$RO\" group \"nogroup\""
unit_caps=$(sed -n 's/^CapabilityBoundingSet=//p' "${CARPD_SRC:?}/daemon/carpd.service" |
  tr 'A-Z' 'a-z' | sed 's/cap_/+/g; s/ /,/g')
[ -n "$unit_caps" ] || fail "no CapabilityBoundingSet in carpd.service"
start setpriv --bounding-set=-all,"$unit_caps"
expect_caps "$PID" CapEff "cap_net_admin,cap_net_raw"
expect_caps "$PID" CapPrm "cap_net_admin,cap_net_raw"
expect_caps "$PID" CapBnd "cap_net_admin,cap_net_raw"
expect_caps "$PID" CapInh ""
expect_caps "$PID" CapAmb ""
[ "$(capfield "$PID" NoNewPrivs)" = 1 ] || fail "NoNewPrivs is not 1"
echo "ok - without notify-user: net_admin, net_raw only"
[ "$(stat -c '%a %U %G' "$RO")" = "660 root nogroup" ] || fail "read-only socket with a group: $(stat -c '%a %U %G' "$RO")"
as_nobody "$CARPCTL" -s "$RO" status >/dev/null || fail "nogroup member: status on the read-only socket"
# a gid that is not nogroup's
if out=$(ip netns exec "$NS" setpriv --reuid=nobody --regid=$((NOGROUP_GID - 1)) --clear-groups \
  "$CARPCTL" -s "$RO" status 2>&1); then fail "a non-member got status: $out"; fi
[[ "$out" == "carpctl: permission denied"* ]] || fail "non-member: $out"
echo "ok - read-only socket with a group: mode 0660, members only"
stop
