#!/usr/bin/env bash
# shellcheck disable=SC2119 # e2e_init and start_pair take options, not the script's arguments
# e2e: unicast advertisements (peer/peer6, FreeBSD's 'peer'): each firewall sends to
# the other's LAN (vhid 1) and WAN (vhid 2) address instead of 224.0.0.18.
# One MASTER per vhid, advertisements really unicast, failover works.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmds tcpdump
lab up >/dev/null
start_pair --unicast
for v in 1 2; do
	[ "$(count_masters "$v")" = 1 ] || fail "vhid $v: $(count_masters "$v") MASTERs"
done
ok "unicast: one MASTER per vhid (fw1)"

capture fw2 lan0 3.5 "$TMP/lan.pcap"
"$CARPDUMP" -r "$TMP/lan.pcap" -j -p motdepasseCARP -a 198.51.100.1 >"$TMP/ads.json" ||
	fail "carpdump failed on the capture"
n=$(jq -s '[.[] | select(.proto == "carp")] | length' "$TMP/ads.json")
to_peer=$(jq -s '[.[] | select(.proto == "carp" and .dst == "198.51.100.3" and .auth == "ok")] | length' "$TMP/ads.json")
mcast=$(jq -s '[.[] | select(.proto == "carp" and .dst == "224.0.0.18")] | length' "$TMP/ads.json")
echo "fw2's lan0 in 3.5 s: $n advertisements, $to_peer to 198.51.100.3 with a good HMAC, $mcast to 224.0.0.18"
[ "$n" -ge 2 ] || fail "fewer than 2 advertisements seen on fw2's lan0"
[ "$to_peer" = "$n" ] || fail "not every advertisement goes to the peer: $(head -n 3 "$TMP/ads.json")"
ok "vhid 1 advertisements are unicast to the peer 198.51.100.3"

failover_kill_fw1 203.0.113.254
