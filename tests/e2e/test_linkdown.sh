#!/usr/bin/env bash
# shellcheck disable=SC2119 # e2e_init and start_pair take options, not the script's arguments
# e2e: link tracking and demotion. fw1 loses its WAN link only: vhid 2 goes away
# with the link and fw1 demotes itself, so vhid 1 (LAN) moves to fw2 as well and the
# LAN keeps a gateway that can reach the WAN. fw2 hears the demotion on the LAN
# and, with follow-demotion (the default), takes vhid 2 too at once instead of
# waiting 3 s for its master-down timer on the silent WAN. When the link is back,
# both return. Then the same with 'follow-demotion no': vhid 2 waits for the timer.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
e2e_init
lab up >/dev/null
start_pair

t0=$(now)
nsx fw1 ip link set wan0 down
wait_state fw2 1 MASTER 5 || fail "vhid 1 (LAN) did not move to fw2 within 5 s of fw1's WAN link loss: $(states)"
d1=$(elapsed "$t0")
wait_state fw2 2 MASTER 6 || fail "vhid 2 (WAN) did not move to fw2 within 6 s: $(states)"
d2=$(elapsed "$t0")
echo "fw1 WAN link down: vhid 1 on fw2 after $d1 s, vhid 2 after $d2 s (fw1 demotion now $(json fw1 .demotion))"
# polling carpctl costs tens of ms; the master-down timer alone would take 3 s
le "$d2" 1 || fail "vhid 2 (WAN) took $d2 s to move: fw2 did not follow the demotion it heard on the LAN"
why=$(vhid_field fw2 2 .last_reason)
case "$why" in "master demoted (heard on 1@lan0)") ;; *) fail "fw2 vhid 2 became MASTER for '$why', want the demotion heard on 1@lan0" ;; esac
[ "$(state_of fw1 1)" = BACKUP ] || fail "fw1 vhid 1 is $(state_of fw1 1), want BACKUP (demoted)"
[ "$(state_of fw1 2)" != MASTER ] || fail "fw1 still MASTER for vhid 2 with its link down"
[ "$(count_masters 1)" = 1 ] || fail "vhid 1: $(count_masters 1) MASTERs"
wait_ping client 203.0.113.254 5 || fail "client cannot reach the WAN host through fw2"
ok "WAN link down on fw1: both vhids on fw2, traffic flows"

t0=$(now)
nsx fw1 ip link set wan0 up
wait_states 6 fw1:1:MASTER fw1:2:MASTER fw2:1:BACKUP fw2:2:BACKUP ||
	fail "both vhids did not come back to fw1 within 6 s of link up: $(states)"
echo "fw1 WAN link up: both vhids back on fw1 after $(elapsed "$t0") s (fw1 demotion $(json fw1 .demotion))"
wait_ping client 203.0.113.254 5 || fail "client cannot reach the WAN host after the link came back"
ok "WAN link up on fw1: both vhids back on fw1, traffic flows"

# follow-demotion no: what FreeBSD does. vhid 2 moves only when fw2's master-down
# timer expires (3 x advbase + 100/256 s after fw1's last WAN advertisement).
lab stop fw1 >/dev/null
lab stop fw2 >/dev/null
start_pair --follow-demotion no
[ "$(json fw2 .follow_demotion)" = false ] || fail "status -j: follow_demotion is not false"
t0=$(now)
nsx fw1 ip link set wan0 down
wait_state fw2 1 MASTER 5 || fail "follow-demotion no: vhid 1 did not move to fw2 within 5 s: $(states)"
wait_state fw2 2 MASTER 6 || fail "follow-demotion no: vhid 2 did not move to fw2 within 6 s: $(states)"
d2=$(elapsed "$t0")
le 2.5 "$d2" || fail "follow-demotion no: vhid 2 moved after $d2 s, before its master-down timer"
why=$(vhid_field fw2 2 .last_reason)
[ "$why" = "master timed out" ] || fail "follow-demotion no: fw2 vhid 2 became MASTER for '$why'"
nsx fw1 ip link set wan0 up
wait_states 6 fw1:1:MASTER fw1:2:MASTER fw2:1:BACKUP fw2:2:BACKUP ||
	fail "follow-demotion no: both vhids did not come back to fw1 within 6 s: $(states)"
ok "follow-demotion no: vhid 2 waited for its timer ($d2 s)"
