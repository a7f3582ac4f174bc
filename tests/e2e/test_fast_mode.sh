#!/usr/bin/env bash
# shellcheck disable=SC2119 # e2e_init takes options, not the script's arguments
# e2e: fast mode (advbase 0, OpenBSD's semantics), for clusters of carpd nodes.
# fw1 advertises every 10/256 s (advskew 10), fw2 (advskew 30) takes over after
# 30/256 s = 117 ms of silence. fw1 loses power under a 10 ms ping from the LAN
# client to the WAN host: the client's traffic must stop for less than 200 ms
# (issue 7's target: keepalived's VRRPv3 at 100 ms adverts costs 330 ms). carpd
# warns that FreeBSD peers cannot be configured this way.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
e2e_init
lab up >/dev/null
lab start fw1 --advbase 0 --advskew 10 >/dev/null
lab start fw2 --advbase 0 --advskew 30 >/dev/null
wait_states 5 fw1:1:MASTER fw1:2:MASTER fw2:1:BACKUP fw2:2:BACKUP || fail "roles: $(states)"
grep -q "advbase 0 is fast mode" "$RUN/fw1.log" || fail "no fast-mode warning in fw1's log"
ok "fast mode: fw1 MASTER, fw2 BACKUP; carpd warns that FreeBSD peers cannot do this"
# a steady state: no spurious transition in 2 s at 25 advertisements a second
t1=$(vhid_field fw2 1 .counters.transitions)
sleep 2
[ "$(vhid_field fw2 1 .counters.transitions)" = "$t1" ] || fail "fw2 changed state during the steady state: $(states)"
[ "$(state_of fw2 1)" = BACKUP ] || fail "fw2 is not BACKUP: $(states)"
ok "steady for 2 s: no spurious transition"
# power_loss: fw1 loses power under the ping; sets $silence (ms) and $dt
power_loss() {
	wait_ping client 203.0.113.254 3 || fail "no traffic before the failure"
	nsx client ping -n -D -i 0.01 -w 4 203.0.113.254 >"$TMP/ping.txt" 2>&1 &
	local pp=$! t0 sent recv lost gap dups
	sleep 1
	t0=$(now)
	# links first: a machine that loses power stops forwarding at once (a kill -9
	# alone leaves the kernel forwarding through the addresses it holds)
	lab links fw1 down
	lab stop fw1 --kill >/dev/null
	wait_states 3 fw2:1:MASTER fw2:2:MASTER || fail "fw2 not MASTER 3 s after the power loss: $(states)"
	dt=$(elapsed "$t0")
	wait "$pp" || true
	read -r sent recv lost gap dups silence < <(ping_gap_ms "$TMP/ping.txt" 10)
	echo "fast mode power loss: fw2 MASTER after $dt s; pings sent $sent received $recv lost $lost, longest silence $silence ms"
}
power_loss
if ! le "$silence" 200; then
	# The userspace OVS datapath now and then relearns the virtual MAC late on a
	# loaded 2-core VM (seen once in CI: 608 ms with fw2 MASTER after 0.23 s). One
	# more try from the start; a real regression fails both.
	note "over 200 ms: once more"
	lab links fw1 up
	lab start fw1 --advbase 0 --advskew 10 >/dev/null
	wait_states 5 fw1:1:MASTER fw1:2:MASTER fw2:1:BACKUP fw2:2:BACKUP || fail "fw1 did not come back: $(states)"
	sleep 6 # a switch may hold a MAC that just moved for a few seconds
	power_loss
fi
le "$silence" 200 || fail "the client's traffic stopped for $silence ms (target < 200 ms)"
ok "power loss in fast mode: the client's traffic stopped for $silence ms"
