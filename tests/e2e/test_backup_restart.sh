#!/usr/bin/env bash
# shellcheck disable=SC2119 # e2e_init and start_pair take options, not the script's arguments
# e2e: restarting the backup does not disturb the master. fw2's carpd is stopped and
# started again RESTARTS times while the client pings the WAN host every 10 ms
# through fw1: fw1 never leaves MASTER (its counters.transitions do not move, same
# pid, no conflict) and the client loses at most MAX_LOST pings. After every start
# fw2 must be BACKUP for both vhids without passing through MASTER, and hold
# neither VIP.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
e2e_init
RESTARTS=${RESTARTS:-10}
MAX_LOST=2
lab up >/dev/null
start_pair
wait_ping client 203.0.113.254 3 || fail "no traffic through the VIPs before the restarts"
pid1=$(lab pid fw1)
tr1=$(transitions fw1)
conflicts() { json fw1 '[.vhids[].counters.conflicts] | add'; }
cf1=$(conflicts)

# bounded: at most 6000 pings (60 s); stopped with SIGINT after the loop (a simple
# command, not the nsx function, so that $! is ping itself)
ip netns exec "$PREFIX-client" ping -D -n -i 0.01 -W 1 -c 6000 203.0.113.254 >"$TMP/ping.txt" 2>&1 &
pp=$!
sleep 1
t0=$(now)
for i in $(seq 1 "$RESTARTS"); do
	lab stop fw2 >/dev/null
	sleep 0.3
	lab start fw2 >/dev/null
	wait_states 5 fw2:1:BACKUP fw2:2:BACKUP || fail "restart $i: fw2 not BACKUP for both vhids within 5 s: $(states)"
	sleep 0.5
	# INIT -> BACKUP once per vhid, never MASTER on the way
	[ "$(transitions fw2)" = 2 ] || fail "restart $i: fw2 made $(transitions fw2) transitions since its start (want 2, INIT -> BACKUP): $(tail -n 5 "$RUN/fw2.log")"
	[ -z "$(iface_of fw2 198.51.100.1)$(iface_of fw2 203.0.113.1)" ] || fail "restart $i: fw2 holds a VIP as BACKUP"
	[ "$(state_of fw1 1)/$(state_of fw1 2)" = MASTER/MASTER ] || fail "restart $i: fw1 left MASTER: $(states)"
done
note "$RESTARTS restarts of fw2 in $(elapsed "$t0") s"
sleep 1
kill -INT "$pp" 2>/dev/null || true
wait "$pp" || true
read -r sent rcvd lost gap _ silence < <(ping_gap_ms "$TMP/ping.txt" 10)
echo "ping every 10 ms through fw1: $sent sent, $rcvd received, $lost lost, longest gap $gap ms, longest silence $silence ms"
[ "$sent" -ge 500 ] || fail "ping sent only $sent packets: $(tail -n 3 "$TMP/ping.txt")"

d1=$(($(transitions fw1) - tr1))
[ "$(lab pid fw1)" = "$pid1" ] || fail "carpd on fw1 was restarted"
[ "$d1" = 0 ] || fail "fw1 made $d1 transitions while fw2 restarted: $(grep -E -- '-> ' "$RUN/fw1.log" | tail -n 5)"
[ "$(conflicts)" = "$cf1" ] || fail "fw1 heard a second MASTER $(($(conflicts) - cf1)) times while fw2 restarted"
ok "fw1 stayed MASTER through $RESTARTS restarts of the backup (transitions unchanged)"
[ "$lost" -le "$MAX_LOST" ] || fail "the client lost $lost pings (bound $MAX_LOST)"
ok "the client lost $lost pings (bound $MAX_LOST)"
scenario_basic
