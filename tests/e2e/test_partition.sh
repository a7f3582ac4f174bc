#!/usr/bin/env bash
# shellcheck disable=SC2119 # e2e_init and start_pair take options, not the script's arguments
# e2e: a partition of the LAN between the firewalls (fw2 stops hearing fw1's
# advertisements) makes both MASTER, as the protocol dictates; when it heals,
# exactly one MASTER remains within one advertisement interval, the winner
# announces the addresses again (gratuitous ARP) and counts the conflict, and
# the client's traffic goes through the winner.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
e2e_init
lab up >/dev/null
start_pair

# Partition: fw2 drops CARP arriving on its LAN.
nsx fw2 nft add table inet carplab_part
nsx fw2 nft add chain inet carplab_part in '{ type filter hook input priority -300; }'
nsx fw2 nft add rule inet carplab_part in iifname lan0 ip protocol 112 drop
wait_state fw2 1 MASTER 6 || fail "fw2 did not become MASTER for vhid 1 during the partition: $(states)"
[ "$(state_of fw1 1)" = MASTER ] || fail "fw1 should stay MASTER (it hears a slower master): $(states)"
ok "partition: both firewalls MASTER for vhid 1"
c0=$(vhid_field fw1 1 .counters.conflicts)
[ "$c0" -gt 0 ] || fail "fw1 heard fw2 as a second MASTER but counted no conflict"

# Capture the client's side while the partition heals.
cap=$TMP/heal.pcap
nsx client timeout 3 tcpdump -U -w "$cap" -i eth0 arp >/dev/null 2>&1 &
tcpd=$!
sleep 0.5
t0=$(now)
nsx fw2 nft delete table inet carplab_part
wait_state fw2 1 BACKUP 2 || fail "fw2 did not yield within 2 s of the heal: $(states)"
d=$(elapsed "$t0")
echo "partition healed: fw2 BACKUP after $d s (one advertisement interval is 1 s)"
le "$d" 1.2 || fail "fw2 took $d s to yield, more than one advertisement interval"
[ "$(count_masters 1)" = 1 ] || fail "vhid 1: $(count_masters 1) MASTERs after the heal"
wait "$tcpd" 2>/dev/null || true
garps=$(tcpdump -r "$cap" -nn -e 2>/dev/null | grep -c "00:00:5e:00:01:01 > ff:ff:ff:ff:ff:ff.*Request who-has 198.51.100.1 tell 198.51.100.1" || true)
echo "gratuitous ARPs for 198.51.100.1 from the virtual MAC while healing: $garps"
[ "$garps" -ge 1 ] || fail "the winner did not announce 198.51.100.1 again"
ok "heal: one MASTER within one interval, gratuitous ARP re-sent, conflicts counted ($c0)"
wait_ping client 203.0.113.254 5 || fail "client cannot reach the WAN host after the heal"
[ "$(vip_nodes 198.51.100.1)" = fw1 ] || fail "198.51.100.1 is on: $(vip_nodes 198.51.100.1)"
ok "traffic flows through fw1, the only holder of the address"
