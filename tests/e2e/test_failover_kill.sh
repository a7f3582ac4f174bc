#!/usr/bin/env bash
# shellcheck disable=SC2119 # e2e_init and start_pair take options, not the script's arguments
# e2e: the runbook's failover test (§9) as a power loss: kill -9 of carpd on the
# master fw1 and its links down. fw2 must be MASTER for both vhids within
# 3 x advbase + advskew/256 + 0.5 s = 3.89 s of the kill and the client's traffic
# must flow again; then fw1 comes back and preempts.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
e2e_init
lab up >/dev/null
start_pair
wait_ping client 203.0.113.254 3 || fail "no traffic through the VIPs before the failure"
failover_kill_fw1 203.0.113.254
# (the killed fw1 may still hold its addresses: its links are down)
for a in 198.51.100.1 203.0.113.1; do
	vip_nodes "$a" | grep -qw fw2 || fail "$a is not on fw2 after the takeover"
done
restore_fw1 203.0.113.254
