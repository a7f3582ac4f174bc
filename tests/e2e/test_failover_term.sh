#!/usr/bin/env bash
# shellcheck disable=SC2119 # e2e_init and start_pair take options, not the script's arguments
# e2e: a planned stop. The master fw1 gets SIGTERM while the client pings the WAN
# host every 10 ms: carpd pushes its pending pfsync updates, bows out (the backup
# takes over at once), keeps forwarding until the new MASTER advertises (+50 ms for
# what is in flight), then removes its addresses: the longest gap stays within
# 50 ms (issue 7's target; usually nothing is lost at all).
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
e2e_init
lab up >/dev/null
start_pair
wait_ping client 203.0.113.254 3 || fail "no traffic through the VIPs before the stop"

nsx client ping -D -n -i 0.01 -W 1 -c 400 203.0.113.254 >"$TMP/ping.txt" 2>&1 &
pp=$!
sleep 1.5
t0=$(now)
lab stop fw1 >/dev/null
wait_states 5 fw2:1:MASTER fw2:2:MASTER || fail "fw2 not MASTER for both vhids 5 s after SIGTERM: $(states)"
dt=$(elapsed "$t0")
wait "$pp" || true
read -r sent rcvd lost gap dups silence < <(ping_gap_ms "$TMP/ping.txt" 10)
echo "SIGTERM of the master: fw2 MASTER after $dt s; ping every 10 ms: $sent sent, $rcvd received, $lost lost, $dups duplicates"
echo "longest gap $gap ms by sequence numbers (bound 50 ms); longest time without a reply $silence ms"
[ "$sent" -ge 300 ] || fail "ping sent only $sent packets: $(tail -n 3 "$TMP/ping.txt")"
[ "$gap" -le 50 ] || fail "longest gap $gap ms > 50 ms"
grep -q "handover done" "$RUN/fw1.log" || fail "fw1 did not wait for the new MASTER: $(grep -m3 'signal\|handover' "$RUN/fw1.log")"
ok "planned stop: longest gap $gap ms"

[ -z "$(vip_nodes 198.51.100.1 | grep -w fw1 || true)" ] || fail "fw1 kept 198.51.100.1 after SIGTERM"
[ -z "$(vip_nodes 203.0.113.1 | grep -w fw1 || true)" ] || fail "fw1 kept 203.0.113.1 after SIGTERM"
[ "$(vip_nodes 198.51.100.1)" = fw2 ] || fail "198.51.100.1 is on '$(vip_nodes 198.51.100.1)', want fw2"
ok "fw1 removed its addresses on SIGTERM; the VIPs are on fw2"
