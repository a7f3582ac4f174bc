#!/usr/bin/env bash
# carpctl <-> carpd over the control socket, in a private namespace with a
# dummy parent interface: status (text, JSON), metrics, maintenance (and that it
# survives a restart), demote, state forcing, bad requests, and the errors
# carpctl gives when the daemon is absent.
set -euo pipefail
: "${CARPD:?}" "${CARPCTL:?}"
# CARPD_WRAP: a command line our binaries run under, split on blanks (ctest sets
# it to valgrind when built with CARPD_VALGRIND=ON). Unset: they run directly.
read -ra WRAP <<<"${CARPD_WRAP:-}"
fail() { echo "FAIL: $*" >&2; exit 1; }

# Without a daemon: a one-line reason and exit 1, no root needed.
out=$("${WRAP[@]}" "$CARPCTL" -s /nonexistent/carpd.sock status 2>&1) && fail "status without daemon succeeded"
[[ "$out" == "carpctl: carpd is not running"* ]] || fail "unexpected message: $out"
"${WRAP[@]}" "$CARPCTL" -s /tmp/x.sock demote abc 2>/dev/null && fail "demote abc accepted"
"${WRAP[@]}" "$CARPCTL" -s /tmp/x.sock maintenance maybe 2>/dev/null && fail "maintenance maybe accepted"
"${WRAP[@]}" "$CARPCTL" -s /tmp/x.sock frobnicate 2>/dev/null && fail "unknown command accepted"
echo "ok - carpctl errors without a daemon"

[ "$(id -u)" = 0 ] || { echo "skipped: the rest needs root"; exit 77; }
command -v jq >/dev/null || { echo "skipped: needs jq"; exit 77; }

NS=carpctl-test-$$
DIR=$(mktemp -d)
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  if [ "${failed:-0}" = 1 ]; then echo "--- carpd log"; cat "$DIR/log" || true; fi
  rm -rf "$DIR"
}
trap 'failed=1; cleanup' ERR
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link set lo up
# a veth pair, not a dummy: some kernels are built without the dummy driver
ip -n "$NS" link add lan0 type veth peer name lan0p
ip -n "$NS" link set lan0p up
ip -n "$NS" link set lan0 up
ip -n "$NS" addr add 198.51.100.2/24 dev lan0
SOCK=$DIR/carpd.sock
# the notify hook records its arguments and environment
cat > "$DIR/hook" <<'HOOK'
#!/bin/sh
echo "$1 $2 $3 $4 $5|$CARP_VHID $CARP_INTERFACE $CARP_NEW_STATE $CARP_ADDRESSES|PATH=$PATH" >> "${0%/*}/hook.log"
echo "hook output line"
HOOK
chmod 755 "$DIR/hook"
cat > "$DIR/carpd.conf" <<CONF
state-dir "$DIR/state"
notify "$DIR/hook"
vhid 1 on lan0 {
    address 198.51.100.1/24
    advskew 100
    password "motdepasseCARP"
}
vhid 7 on lan0 {
    address 198.51.100.7/24
    advbase 2
}
CONF
start() {
  ip netns exec "$NS" "${WRAP[@]}" "$CARPD" -d -f "$DIR/carpd.conf" -s "$SOCK" 2>>"$DIR/log" &
  PID=$!
  for _ in $(seq 1 100); do [ -S "$SOCK" ] && "${WRAP[@]}" "$CARPCTL" -s "$SOCK" version >/dev/null 2>&1 && return 0; sleep 0.05; done
  fail "carpd did not start"
}
stop() { kill "$PID"; wait "$PID" || fail "carpd exit status $?"; PID=; }
ctl() { ip netns exec "$NS" "${WRAP[@]}" "$CARPCTL" -s "$SOCK" "$@"; }

start
j=$(ctl status -j)
[ "$(jq -r '.vhids | length' <<<"$j")" = 2 ] || fail "expected 2 vhids: $j"
[ "$(jq -r '.vhids[0].vhid' <<<"$j")" = 1 ] || fail "vhid order"
[ "$(jq -r '.vhids[0].interface' <<<"$j")" = lan0 ] || fail "interface"
[ "$(jq -r '.vhids[0].state' <<<"$j")" = BACKUP ] || fail "state at start: $(jq -c '.vhids[0]' <<<"$j")"
[ "$(jq -r '.vhids[0].advskew' <<<"$j")" = 100 ] || fail "advskew"
[ "$(jq -r '.vhids[1].advbase' <<<"$j")" = 2 ] || fail "advbase"
[ "$(jq -r '.vhids[0].addresses[0]' <<<"$j")" = 198.51.100.1/24 ] || fail "addresses"
[ "$(jq -r '.pfsync' <<<"$j")" = null ] || fail "pfsync should be null"
[ "$(jq -r '.maintenance' <<<"$j")" = false ] || fail "maintenance"
for k in ipackets opackets badauth badttl badvhid badsum badlen badver; do
  [ "$(jq -r ".vhids[0].counters.$k" <<<"$j")" != null ] || fail "counter $k missing"
done
echo "ok - status -j has the contract's keys"

# Alone on the segment, vhid 1 becomes MASTER after 3 x 1 + 100/256 s.
for _ in $(seq 1 100); do [ "$(ctl status -j | jq -r '.vhids[0].state')" = MASTER ] && break; sleep 0.1; done
j=$(ctl status -j)
[ "$(jq -r '.vhids[0].state' <<<"$j")" = MASTER ] || fail "vhid 1 not MASTER after 10 s"
[ "$(jq -r '.vhids[0].last_reason' <<<"$j")" = "master timed out" ] || fail "reason: $(jq -r '.vhids[0].last_reason' <<<"$j")"
ip -n "$NS" -br addr show dev vh1.lan0 | grep -q 198.51.100.1/24 || fail "VIP not on vh1.lan0"
ip -n "$NS" -br link show dev vh1.lan0 | grep -qi 00:00:5e:00:01:01 || fail "vh1.lan0 MAC"
echo "ok - MASTER alone; VIP on the virtual MAC interface"

for _ in $(seq 1 50); do grep -q "^1 lan0 BACKUP MASTER" "$DIR/hook.log" 2>/dev/null && break; sleep 0.1; done
grep -q "^1 lan0 INIT BACKUP link up|1 lan0 BACKUP 198.51.100.1/24|PATH=" "$DIR/hook.log" || fail "hook INIT->BACKUP: $(cat "$DIR/hook.log")"
grep -q "^1 lan0 BACKUP MASTER master timed out|1 lan0 MASTER 198.51.100.1/24|" "$DIR/hook.log" || fail "hook BACKUP->MASTER: $(cat "$DIR/hook.log")"
grep -q "notify\[1@lan0\]: hook output line" "$DIR/log" || fail "hook output not logged"
echo "ok - notify hook runs with arguments, environment, output logged"

text=$(ctl status)
grep -q "^lan0 .* 1  MASTER  198.51.100.1/24" <<<"$text" || fail "status table: $text"
grep -q "BADAUTH" <<<"$text" || fail "counters table missing"
echo "ok - status table"

m=$(ctl metrics)
grep -q '^carpd_vhid_state{interface="lan0",vhid="1",state="MASTER"} 1$' <<<"$m" || fail "metrics state"
grep -q '^carpd_vhid_opackets_total{interface="lan0",vhid="1"} [1-9]' <<<"$m" || fail "metrics opackets"
[ "$(tail -n1 <<<"$m")" = "# EOF" ] || fail "metrics must end with # EOF"
echo "ok - metrics"

ctl demote 50 >/dev/null
[ "$(ctl status -j | jq -r '.demotion')" = 50 ] || fail "demote 50"
[ "$(ctl status -j | jq -r '.vhids[0].effective_advskew')" = 150 ] || fail "effective skew 150"
ctl demote -500 >/dev/null
[ "$(ctl status -j | jq -r '.vhids[0].effective_advskew')" = 0 ] || fail "negative demotion must clamp at 0"
ctl demote 450 >/dev/null
[ "$(ctl status -j | jq -r '.demotion')" = 0 ] || fail "demotion back to 0"
echo "ok - demote is additive and clamped"

ctl state 1 backup >/dev/null
[ "$(ctl status -j | jq -r '.vhids[0].state')" = BACKUP ] || fail "state backup"
! ip -n "$NS" -br addr show dev vh1.lan0 | grep -q 198.51.100.1 || fail "VIP still there in BACKUP"
ctl state 1@lan0 master >/dev/null
[ "$(ctl status -j | jq -r '.vhids[0].state')" = MASTER ] || fail "state master"
out=$(ctl state 9 master 2>&1) && fail "state on unknown vhid accepted"
grep -q "no vhid 9" <<<"$out" || fail "message: $out"
echo "ok - state forcing"

ctl maintenance on >/dev/null
j=$(ctl status -j)
[ "$(jq -r '.maintenance' <<<"$j")" = true ] || fail "maintenance on"
[ "$(jq -r '.vhids[0].effective_advskew' <<<"$j")" = 240 ] || fail "maintenance skew 240"
stop
start
[ "$(ctl status -j | jq -r '.maintenance')" = true ] || fail "maintenance did not survive a restart"
ctl maintenance off >/dev/null
[ "$(ctl status -j | jq -r '.maintenance')" = false ] || fail "maintenance off"
echo "ok - maintenance mode persists across restarts"

# Bad requests straight on the socket: an error line, never a crash.
for req in "" "status xml" "demote" "demote 1 2" "state x master" "$(head -c 3000 /dev/zero | tr '\0' a)"; do
  resp=$(printf '%s\n' "$req" | ip netns exec "$NS" socat -t 2 - UNIX-CONNECT:"$SOCK" || true)
  [[ "$resp" == error:* ]] || fail "request '${req:0:20}' got '$resp'"
done
kill -0 "$PID" || fail "carpd died on bad requests"
echo "ok - bad requests get errors"

stop
ip -n "$NS" link show vh1.lan0 >/dev/null 2>&1 && fail "macvlan left behind after SIGTERM"
[ -S "$SOCK" ] && fail "socket left behind"
echo "ok - clean stop"
