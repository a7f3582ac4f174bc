#!/usr/bin/env bash
# Interoperability with a CARP implementation we did not write: Debian's ucarp
# (userspace CARP, same SHA1-HMAC as FreeBSD for one IPv4 address).
# Two hosts on a Linux bridge: carpd on one, ucarp on the other, one vhid, one
# password. Checked: one MASTER at a time; each takes over from the other when
# it is killed and when its link goes down; carpd preempts ucarp; a wrong
# password on ucarp shows up as badauth on carpd.
set -euo pipefail
: "${CARPD:?}" "${CARPCTL:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }
[ "$(id -u)" = 0 ] || { echo "skipped: needs root"; exit 77; }
command -v ucarp >/dev/null || { echo "skipped: ucarp is not installed (apt-get install ucarp)"; exit 77; }
command -v jq >/dev/null || { echo "skipped: needs jq"; exit 77; }

P=ucx$$
SW=$P-sw A=$P-a B=$P-b
DIR=$(mktemp -d)
CPID= UPID=
cleanup() {
	[ -n "$CPID" ] && kill "$CPID" 2>/dev/null || true
	[ -n "$UPID" ] && kill -9 "$UPID" 2>/dev/null || true
	wait 2>/dev/null || true
	for ns in "$A" "$B" "$SW"; do ip netns del "$ns" 2>/dev/null || true; done
	if [ "${failed:-0}" = 1 ]; then
		echo "--- carpd log"; cat "$DIR/carpd.log" 2>/dev/null || true
		echo "--- ucarp log"; cat "$DIR/ucarp.log" 2>/dev/null || true
	fi
	rm -rf "$DIR"
}
trap 'failed=1; cleanup' ERR
trap cleanup EXIT

for ns in "$SW" "$A" "$B"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip -n "$SW" link add br0 type bridge
ip -n "$SW" link set br0 up
for n in a b; do
	ns=$P-$n
	ip -n "$SW" link add "p$n" type veth peer name eth0 netns "$ns"
	ip -n "$SW" link set "p$n" master br0 up
	ip -n "$ns" link set eth0 up
done
ip -n "$A" addr add 198.51.100.2/24 dev eth0
ip -n "$B" addr add 198.51.100.3/24 dev eth0
VIP=198.51.100.1

cat > "$DIR/up.sh" <<'UP'
#!/bin/sh
ip addr add 198.51.100.1/24 dev "$1" 2>/dev/null
echo MASTER > "${0%/*}/ucarp.state"
UP
cat > "$DIR/down.sh" <<'DOWN'
#!/bin/sh
ip addr del 198.51.100.1/24 dev "$1" 2>/dev/null
echo BACKUP > "${0%/*}/ucarp.state"
DOWN
chmod 755 "$DIR/up.sh" "$DIR/down.sh"

conf() { # advskew
	cat > "$DIR/carpd.conf" <<CONF
state-dir "$DIR/state"
vhid 42 on eth0 {
    address $VIP/24
    advskew $1
    password "interop-pass"
}
CONF
}
start_carpd() {
	ip netns exec "$A" "$CARPD" -d -f "$DIR/carpd.conf" -s "$DIR/carpd.sock" 2>>"$DIR/carpd.log" &
	CPID=$!
	for _ in $(seq 1 100); do "$CARPCTL" -s "$DIR/carpd.sock" version >/dev/null 2>&1 && return; sleep 0.05; done
	fail "carpd did not start"
}
start_ucarp() { # advskew password
	rm -f "$DIR/ucarp.state"
	ip netns exec "$B" ucarp -i eth0 -s 198.51.100.3 -v 42 -p "$2" -a $VIP -b 1 -k "$1" -P -n \
		-u "$DIR/up.sh" -d "$DIR/down.sh" >>"$DIR/ucarp.log" 2>&1 &
	UPID=$!
}
carpd_state() { "$CARPCTL" -s "$DIR/carpd.sock" status -j | jq -r '.vhids[0].state'; }
ucarp_state() { cat "$DIR/ucarp.state" 2>/dev/null || echo NONE; }
wait_for() { # description timeout_s command...
	local what=$1 tmo=$2 t0
	shift 2
	t0=$(date +%s%N)
	while ! "$@"; do
		(( ($(date +%s%N) - t0) / 1000000 < tmo * 1000 )) || fail "timeout: $what"
		sleep 0.05
	done
	echo "$what after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
}
is() { [ "$("$1")" = "$2" ]; }
both() { is carpd_state "$1" && is ucarp_state "$2"; }

# 1. carpd advskew 0, ucarp advskew 100: carpd is MASTER, ucarp stays BACKUP.
conf 0
start_carpd
start_ucarp 100 interop-pass
wait_for "carpd MASTER" 6 is carpd_state MASTER
sleep 2
[ "$(ucarp_state)" != MASTER ] || fail "ucarp became MASTER next to a better carpd"
[ "$("$CARPCTL" -s "$DIR/carpd.sock" status -j | jq -r '.vhids[0].counters.badauth')" = 0 ] || fail "badauth with the same password"
ok "carpd (skew 0) MASTER, ucarp (skew 100) BACKUP, HMACs agree"

# 2. kill carpd: ucarp takes over.
kill -9 "$CPID"; wait "$CPID" 2>/dev/null || true; CPID=
ip -n "$A" link del vh42.eth0 2>/dev/null || true # the killed daemon's virtual MAC (power loss)
wait_for "ucarp MASTER after carpd was killed" 6 is ucarp_state MASTER
ok "ucarp takes over from a killed carpd"

# 3. carpd comes back and preempts ucarp.
start_carpd
wait_for "carpd preempts ucarp" 6 both MASTER BACKUP
ok "carpd preempts ucarp; ucarp yields to the better advertisement"

# 4. carpd's link goes down: ucarp takes over; back up: carpd preempts again.
ip -n "$A" link set eth0 down
wait_for "ucarp MASTER after carpd's link went down" 6 is ucarp_state MASTER
[ "$(carpd_state)" = INIT ] || fail "carpd should be INIT with its link down, is $(carpd_state)"
ip -n "$A" link set eth0 up
wait_for "carpd MASTER again after link up" 8 both MASTER BACKUP
ok "link down on carpd: ucarp takes over; link up: carpd back"

# 5. roles reversed: ucarp skew 0 MASTER, carpd skew 100 BACKUP; kill ucarp.
kill "$CPID"; wait "$CPID" || fail "carpd exit status $?"; CPID=
kill -9 "$UPID"; wait "$UPID" 2>/dev/null || true; UPID=
ip -n "$B" addr del $VIP/24 dev eth0 2>/dev/null || true
conf 100
start_ucarp 0 interop-pass
wait_for "ucarp MASTER alone" 6 is ucarp_state MASTER
start_carpd
sleep 4
[ "$(carpd_state)" = BACKUP ] || fail "carpd (skew 100) should be BACKUP next to ucarp (skew 0), is $(carpd_state)"
ok "ucarp (skew 0) MASTER, carpd (skew 100) BACKUP"
kill -9 "$UPID"; wait "$UPID" 2>/dev/null || true; UPID=
wait_for "carpd MASTER after ucarp was killed" 6 is carpd_state MASTER
ok "carpd takes over from a killed ucarp"

# 6. a wrong password on ucarp: carpd counts badauth.
ip -n "$B" addr del $VIP/24 dev eth0 2>/dev/null || true
start_ucarp 0 wrong-pass
wait_for "badauth counted" 6 bash -c "[ \"\$('$CARPCTL' -s '$DIR/carpd.sock' status -j | jq -r '.vhids[0].counters.badauth')\" -gt 0 ]"
ok "wrong password on ucarp: badauth on carpd"
