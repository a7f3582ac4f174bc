#!/usr/bin/env bash
# Opt-in: carpd against a real pfSense. Skipped unless the operator's lab is
# described in the environment: see tests/interop/pfsense/README.md.
set -euo pipefail
: "${CARPD:?}" "${CARPCTL:?}"
need=(PFSENSE_SSH PFSENSE_IF PFSENSE_VHID PFSENSE_VIP PFSENSE_PASSWORD CARPD_IF)
missing=()
for v in "${need[@]}"; do [ -n "${!v:-}" ] || missing+=("$v"); done
if [ "${#missing[@]}" -gt 0 ]; then
	echo "skipped: no pfSense described (set ${missing[*]}; see tests/interop/pfsense/README.md)"
	exit 77
fi
[ "$(id -u)" = 0 ] || { echo "skipped: needs root"; exit 77; }
for c in ssh jq conntrack; do command -v "$c" >/dev/null || { echo "skipped: needs $c"; exit 77; }; done
DIR=$(mktemp -d)
PID=
cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	rm -rf "$DIR"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$DIR/carpd.log" ] && tail -n 30 "$DIR/carpd.log" >&2; exit 1; }
ok() { echo "ok - $*"; }
pfs() { ssh -o BatchMode=yes -o ConnectTimeout=5 "$PFSENSE_SSH" "$@"; }
ctl() { "$CARPCTL" -s "$DIR/carpd.sock" "$@"; }
ours() { ctl status -j | jq -r '.vhids[0].state'; }
theirs() { pfs ifconfig "$PFSENSE_IF" | awk -v v="$PFSENSE_VHID" '$1 == "carp:" && $3 == "vhid" && $4 == v { print $2; exit }'; }
wait_for() { # wait_for SECONDS 'condition'
	local i
	for i in $(seq 1 $(($1 * 10))); do eval "$2" && return 0; sleep 0.1; done
	return 1
}

pfs true || fail "cannot ssh to $PFSENSE_SSH (key authentication needed)"
{
	echo "state-dir \"$DIR/state\""
	[ -n "${PFSENSE_SYNC_ADDR:-}" ] && echo "hostid 0x0000c0de"
	echo "vhid $PFSENSE_VHID on $CARPD_IF {"
	echo "    address $PFSENSE_VIP"
	echo "    advskew ${CARPD_ADVSKEW:-100}"
	echo "    pfsense-password \"$PFSENSE_PASSWORD\""
	echo "}"
	if [ -n "${PFSENSE_SYNC_ADDR:-}" ]; then
		echo "pfsync on ${CARPD_SYNC_IF:?CARPD_SYNC_IF is needed with PFSENSE_SYNC_ADDR} {"
		echo "    syncpeer $PFSENSE_SYNC_ADDR"
		echo "}"
	fi
} >"$DIR/carpd.conf"
"$CARPD" -n -f "$DIR/carpd.conf" || fail "generated configuration is invalid"
"$CARPD" -d -f "$DIR/carpd.conf" -s "$DIR/carpd.sock" 2>"$DIR/carpd.log" &
PID=$!

# 1. join as BACKUP, HMAC agreed
wait_for 10 '[ "$(ours)" = BACKUP ] && [ "$(theirs)" = MASTER ]' ||
	fail "expected pfSense MASTER and carpd BACKUP: pfSense $(theirs), carpd $(ours)"
[ "$(ctl status -j | jq '.vhids[0].counters.badauth')" = 0 ] || fail "pfSense's advertisements fail our HMAC"
ok "carpd is BACKUP behind pfSense; pfSense's advertisements authenticate ($(ctl status -j | jq -c '.vhids[0].peer'))"

# 2. pfSense steps down: carpd takes over
pfs ifconfig "$PFSENSE_IF" vhid "$PFSENSE_VHID" state backup
wait_for 5 '[ "$(ours)" = MASTER ] && [ "$(theirs)" = BACKUP ]' ||
	fail "after pfSense's state backup: pfSense $(theirs), carpd $(ours)"
ok "pfSense forced to BACKUP: carpd is MASTER"

# 3. maintenance mode on carpd hands the VIP back
ctl maintenance on >/dev/null
wait_for 5 '[ "$(ours)" = BACKUP ] && [ "$(theirs)" = MASTER ]' ||
	fail "after carpctl maintenance on: pfSense $(theirs), carpd $(ours)"
ctl maintenance off >/dev/null
ok "carpctl maintenance on: pfSense is MASTER again"

# 4. pfsync both ways
if [ -n "${PFSENSE_SYNC_ADDR:-}" ]; then
	wait_for 70 '[ "$(ctl status -j | jq -r .pfsync.bulk)" = done ]' || fail "our bulk update never completed"
	pfs ifconfig pfsync0 | grep -q "syncok: 1" || fail "pfSense's pfsync0 is not syncok: $(pfs ifconfig pfsync0)"
	ok "bulk updates completed on both sides"
	if [ -n "${PFSENSE_PING_TARGET:-}" ]; then
		pfs ping -c 3 "$PFSENSE_PING_TARGET" >/dev/null || fail "pfSense cannot ping $PFSENSE_PING_TARGET"
		wait_for 3 "conntrack -L -p icmp -d $PFSENSE_PING_TARGET 2>/dev/null | grep -q ." ||
			fail "pfSense's ping state did not reach our conntrack: $(ctl status -j | jq -c .pfsync)"
		ok "a state made on pfSense is in our conntrack"
		# and the other way: a ping from here (conntrack must be running on this
		# node: any nftables rule using ct, or NAT) becomes a state on pfSense
		ping -c 3 "$PFSENSE_PING_TARGET" >/dev/null || fail "cannot ping $PFSENSE_PING_TARGET from here"
		wait_for 3 "pfs pfctl -ss -vv | grep -A3 '$PFSENSE_PING_TARGET' | grep -qi 'creatorid: 0000c0de'" ||
			fail "our ping state is not in pfSense's pfctl -ss -vv with creatorid 0000c0de"
		ok "a state made here is in pfSense's state table under our creator id"
	fi
fi
