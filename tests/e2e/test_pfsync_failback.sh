#!/usr/bin/env bash
# shellcheck disable=SC2119 # e2e_init takes options, not the script's arguments
# e2e: a whole failover cycle for an established connection. A TCP stream runs from
# the LAN client to the WAN host through SNAT (tcp_loose=0, INVALID dropped). fw1
# loses power: fw2 carries the stream with the state it learned. fw1 comes back with
# an empty kernel table (a power loss), asks for a bulk update, learns the stream
# back from fw2 — a connection fw1 itself created before it went down — and only
# then preempts: the stream survives the fail-back too. Finally carpd restarts on
# fw2 (its kernel keeps its entries): the stream's entry stays fw1's (learned, not
# re-announced as fw2's own).
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmds socat python3 conntrack
STREAM="$(dirname "$0")/helpers/tcp_stream.py"

lab up >/dev/null
for fw in fw1 fw2; do
	nsx "$fw" sysctl -qw net.netfilter.nf_conntrack_tcp_loose=0
	nsx "$fw" nft add rule inet filter forward ct state invalid drop
done
start_pair --pfsync >/dev/null
for i in $(seq 1 100); do
	[ "$(json fw1 .pfsync.bulk)" = done ] && [ "$(json fw2 .pfsync.bulk)" = done ] && break
	sleep 0.1
done
nsx wan socat TCP-LISTEN:5001,reuseaddr,fork EXEC:cat >/dev/null 2>&1 &
srv=$!
sleep 0.3
nsx client python3 "$STREAM" 203.0.113.254 5001 24 >"$TMP/stream.json" &
cli=$!
sleep 3
# 1. fw1 loses power
lab links fw1 down
lab stop fw1 --kill >/dev/null
wait_states 6 fw2:1:MASTER fw2:2:MASTER || fail "fw2 did not take over: $(states)"
ok "fw1 powered off: fw2 MASTER"
sleep 3
# 2. fw1 comes back empty and takes the stream back
nsx fw1 conntrack -F >/dev/null 2>&1 || true
lab links fw1 up
t0=$(now)
lab start fw1 --pfsync >/dev/null
wait_states 10 fw1:1:MASTER fw1:2:MASTER fw2:1:BACKUP fw2:2:BACKUP || fail "fw1 did not preempt back: $(states)"
ok "fw1 back as MASTER $(elapsed "$t0") s after its restart, after its bulk update: $(grep 'bulk update done' "$RUN/fw1.log" | tail -n 1 | cut -d' ' -f3-)"
nsx fw1 conntrack -L -p tcp --dport 5001 2>/dev/null | grep -q "src=198.51.100.50" ||
	fail "fw1 did not get the stream's entry back from fw2"
sleep 3
# 3. carpd restarts on fw2 (its kernel keeps the entry)
lab stop fw2 >/dev/null
lab start fw2 --pfsync >/dev/null
for i in $(seq 1 50); do
	[ "$(json fw2 .pfsync.bulk)" = done ] && break
	sleep 0.1
done
sleep 1
[ "$(json fw2 .pfsync.states_local)" = 0 ] ||
	fail "after its restart fw2 announces $(json fw2 .pfsync.states_local) connection(s) as its own: $(json fw2 .pfsync)"
[ "$(json fw2 .pfsync.states_learned)" -ge 1 ] || fail "fw2 lost the stream's state: $(json fw2 .pfsync)"
ok "carpd restarted on fw2: the stream's entry is still fw1's (learned), not re-announced as fw2's"
wait "$cli" || true
kill "$srv" 2>/dev/null || true
wait "$srv" 2>/dev/null || true
res=$(cat "$TMP/stream.json")
echo "stream: $res"
[ "$(jq -r .connected <<<"$res")" = true ] || fail "could not connect"
[ "$(jq -r .error <<<"$res")" = null ] || fail "the stream broke: $(jq -r .error <<<"$res")"
le "$(jq -r .max_gap_s <<<"$res")" 10 || fail "the stream stalled $(jq -r .max_gap_s <<<"$res") s"
ok "the TCP stream through SNAT survived failover, fail-back and a carpd restart: longest stall $(jq -r .max_gap_s <<<"$res") s"
