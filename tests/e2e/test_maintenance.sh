#!/usr/bin/env bash
# shellcheck disable=SC2119 # e2e_init and start_pair take options, not the script's arguments
# e2e: pfSense's persistent CARP maintenance mode and the demotion counter.
# 'maintenance on' on the master hands both vhids to fw2 within 1 s; 'off' brings
# them back. 'demote N' adds to the demotion counter: 50 keeps fw1 (0+50 < 100),
# 150 hands over, and the negative values undo it.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
e2e_init
lab up >/dev/null
start_pair

t0=$(now)
ctl fw1 maintenance on >/dev/null || fail "carpctl maintenance on failed"
wait_states 3 fw2:1:MASTER fw2:2:MASTER || fail "fw2 not MASTER 3 s after maintenance on: $(states)"
dt=$(elapsed "$t0")
echo "maintenance on (fw1): fw2 MASTER for both vhids after $dt s (bound 1 s)"
le "$dt" 1 || fail "maintenance handover took $dt s"
[ "$(json fw1 .maintenance)" = true ] || fail "status -j .maintenance is not true"
wait_states 2 fw1:1:BACKUP fw1:2:BACKUP || fail "fw1 not BACKUP in maintenance: $(states)"
wait_ping client 203.0.113.254 5 || fail "no traffic through fw2"
ok "maintenance on: fw1 BACKUP, fw2 MASTER"

t0=$(now)
ctl fw1 maintenance off >/dev/null || fail "carpctl maintenance off failed"
wait_states 5 fw1:1:MASTER fw1:2:MASTER fw2:1:BACKUP fw2:2:BACKUP || fail "fw1 not back 5 s after maintenance off: $(states)"
echo "maintenance off: fw1 MASTER again after $(elapsed "$t0") s"
[ "$(json fw1 .maintenance)" = false ] || fail "status -j .maintenance is not false"
ok "maintenance off: fw1 back"

ctl fw1 demote 50 >/dev/null || fail "demote 50 failed"
[ "$(json fw1 .demotion)" = 50 ] || fail "demotion after 'demote 50' is $(json fw1 .demotion)"
sleep 1.5
[ "$(state_of fw1 1)/$(state_of fw1 2)" = MASTER/MASTER ] || fail "fw1 lost a vhid with demotion 50 (< fw2's 100): $(states)"
ctl fw1 demote -50 >/dev/null || fail "demote -50 failed"
[ "$(json fw1 .demotion)" = 0 ] || fail "demotion after 'demote -50' is $(json fw1 .demotion)"
ok "demote 50 / -50: counter 50 then 0, fw1 stays MASTER"

t0=$(now)
ctl fw1 demote 150 >/dev/null || fail "demote 150 failed"
wait_states 3 fw2:1:MASTER fw2:2:MASTER || fail "fw2 not MASTER with fw1 demoted by 150: $(states)"
echo "demote 150 (fw1 0+150 > fw2 100): fw2 MASTER after $(elapsed "$t0") s"
t0=$(now)
ctl fw1 demote -150 >/dev/null || fail "demote -150 failed"
[ "$(json fw1 .demotion)" = 0 ] || fail "demotion after 'demote -150' is $(json fw1 .demotion)"
wait_states 5 fw1:1:MASTER fw1:2:MASTER fw2:1:BACKUP fw2:2:BACKUP || fail "fw1 not back after demote -150: $(states)"
echo "demote -150: fw1 MASTER again after $(elapsed "$t0") s"
ok "demote 150 / -150 round trip"
