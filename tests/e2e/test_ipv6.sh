#!/usr/bin/env bash
# shellcheck disable=SC2119 # e2e_init and start_pair take options, not the script's arguments
# e2e: IPv6 VIPs. vhid 1 is dual-stack (198.51.100.1/24 + 2001:db8:1::1/64), vhid 2
# IPv6 only (2001:db8:2::1/64). The client pings the WAN host's IPv6 address through
# the v6 VIPs (routed, no NAT); after a power loss of fw1 it goes through fw2.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
e2e_init
lab up >/dev/null
start_pair --v6 --wan6-only

for a in 198.51.100.1 2001:db8:1::1 2001:db8:2::1; do
	[ "$(vip_nodes "$a")" = fw1 ] || fail "$a is on '$(vip_nodes "$a")', want fw1 only"
done
[ -z "$(vip_nodes 203.0.113.1)" ] || fail "203.0.113.1 is configured nowhere but is on '$(vip_nodes 203.0.113.1)'"
ifc=$(iface_of fw1 2001:db8:2::1)
[ "$(mac_of fw1 "$ifc")" = "$VMAC2" ] || fail "2001:db8:2::1 on $ifc with MAC $(mac_of fw1 "$ifc")"
ok "dual-stack vhid 1 and IPv6-only vhid 2 on fw1"

nsx client ping -6 -n -q -c 3 -i 0.2 -W 1 2001:db8:2::254 >/dev/null || fail "client -> 2001:db8:2::254 through the v6 VIPs"
nsx client ping -6 -n -q -c 2 -i 0.2 -W 1 2001:db8:1::1 >/dev/null || fail "client -> 2001:db8:1::1"
nsx client ping -4 -n -q -c 2 -i 0.2 -W 1 198.51.100.1 >/dev/null || fail "client -> 198.51.100.1"
mac=$(neigh_mac client 2001:db8:1::1)
[ "$mac" = "$VMAC1" ] || fail "client's neighbour 2001:db8:1::1 is '$mac', want $VMAC1"
mac=$(neigh_mac wan 2001:db8:2::1)
[ "$mac" = "$VMAC2" ] || fail "WAN host's neighbour 2001:db8:2::1 is '$mac', want $VMAC2"
ok "client pings 2001:db8:2::254 via the v6 VIPs; neighbours at the virtual MACs"
if command -v socat >/dev/null 2>&1; then
	peer=$(tcp_check 8086 2001:db8:2::254)
	[[ "$peer" == *2001:0db8:0001:0000:0000:0000:0000:0050* ]] || fail "TCP over IPv6: the WAN host saw '$peer'"
	ok "TCP over IPv6 through the VIPs (routed: the WAN host sees the client's address)"
fi

failover_kill_fw1 2001:db8:2::254
mac=$(neigh_mac client 2001:db8:1::1)
[ "$mac" = "$VMAC1" ] || fail "after failover, client's neighbour 2001:db8:1::1 is '$mac'"
