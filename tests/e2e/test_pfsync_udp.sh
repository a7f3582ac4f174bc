#!/usr/bin/env bash
# shellcheck disable=SC2119 # e2e_init takes options, not the script's arguments
# e2e: pfsync keeps UDP and ICMP flows, IPv4 through SNAT and IPv6 routed, through a
# failover; the sync link itself runs over IPv6 multicast (ff12::f0) with version
# 1500 states, the TCP test covering IPv4 unicast and 1400.
#
# The firewalls' policy is the usual one: from the WAN only established traffic
# passes (iifname { wan0, vh2.wan0 } ct state new drop). The WAN host streams UDP to the LAN
# client, which asked once and then only listens (a media stream, a download over
# UDP): after the failover, fw2 passes that stream only if it holds the
# connection's conntrack entry — over IPv4 that entry also reverses the SNAT, since
# the stream is addressed to the WAN VIP. The same run without replication must
# lose both streams (the control). ICMP echo is different: every request
# re-creates its state, so a ping survives a failover with or without replication;
# for ICMP the test checks that the entry, NAT included, was replicated and that
# the pings resume within the takeover time.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmds python3 conntrack
UDP="$(dirname "$0")/helpers/udp_stream.py"
SYNC=(--pfsync-peer mcast6 --pfsync-version 1500)

run() { # run yes|no: results in $TMP/{udp4,udp6}.json and $TMP/{ping4,ping6}.txt
	lab down >/dev/null 2>&1 || true
	lab up >/dev/null
	local fw
	for fw in fw1 fw2; do
		nsx "$fw" nft add rule inet filter forward ct state invalid drop
		# traffic to the virtual MAC enters on the vhid's macvlan (carpd(8))
		nsx "$fw" nft add rule inet filter forward iifname '{ "wan0", "vh2.wan0" }' ct state new drop
	done
	if [ "$1" = yes ]; then
		start_pair --v6 "${SYNC[@]}" >/dev/null
		local i
		for i in $(seq 1 100); do
			[ "$(json fw2 .pfsync.bulk)" = done ] && break
			sleep 0.1
		done
		[ "$(json fw2 .pfsync.bulk)" = done ] || fail "fw2's bulk update did not complete: $(json fw2 .pfsync)"
	else
		start_pair --v6 >/dev/null
	fi
	nsx wan python3 "$UDP" server 6001 16 &
	local s4=$!
	nsx wan python3 "$UDP" server 6002 16 &
	local s6=$!
	sleep 0.3
	nsx client python3 "$UDP" client 203.0.113.254 6001 12 >"$TMP/udp4.json" &
	local c4=$!
	nsx client python3 "$UDP" client 2001:db8:2::254 6002 12 >"$TMP/udp6.json" &
	local c6=$!
	nsx client ping -4 -n -D -i 0.05 -w 12 203.0.113.254 >"$TMP/ping4.txt" 2>&1 &
	local p4=$!
	nsx client ping -6 -n -D -i 0.05 -w 12 2001:db8:2::254 >"$TMP/ping6.txt" 2>&1 &
	local p6=$!
	sleep 3
	if [ "$1" = yes ]; then
		local e
		e=$(nsx fw2 conntrack -L -p udp --dport 6001 2>/dev/null | grep "src=198.51.100.50" || true)
		[ -n "$e" ] || fail "fw2 has no entry for the IPv4 UDP stream before the failover: $(json fw2 .pfsync)"
		grep -q "dst=203.0.113.1 " <<<"$e" || fail "fw2's IPv4 UDP entry does not reverse the SNAT: $e"
		ok "fw2 learned the IPv4 UDP stream with its SNAT: $e"
		# pfsync runs over IPv6 here: fw1 sends from its link-local address
		local ll
		ll=$(nsx fw1 ip -6 -o addr show dev sync0 scope link | awk '{sub(/\/.*/, "", $4); print $4}')
		[ -n "$ll" ] && [ "$(json fw2 .pfsync.peer.address)" = "$ll" ] ||
			fail "fw2's status does not name fw1's sync address ($ll) as its pfsync peer: $(json fw2 .pfsync.peer)"
		ok "fw2 names fw1 ($ll) as its pfsync peer"
		e=$(nsx fw2 conntrack -f ipv6 -L -p udp --dport 6002 2>/dev/null | grep "src=2001:db8:1::50" || true)
		[ -n "$e" ] || fail "fw2 has no entry for the IPv6 UDP stream"
		ok "fw2 learned the IPv6 UDP stream: $e"
		e=$(nsx fw2 conntrack -L -p icmp 2>/dev/null | grep "src=198.51.100.50 dst=203.0.113.254" || true)
		[ -n "$e" ] || fail "fw2 has no entry for the IPv4 ping"
		grep -q "dst=203.0.113.1 " <<<"$e" || fail "fw2's ICMP entry does not reverse the SNAT: $e"
		ok "fw2 learned the IPv4 ping with its SNAT: $e"
		e=$(nsx fw2 conntrack -f ipv6 -L -p icmpv6 2>/dev/null | grep "src=2001:db8:1::50" || true)
		[ -n "$e" ] || fail "fw2 has no entry for the IPv6 ping"
		ok "fw2 learned the IPv6 ping: $e"
	fi
	lab stop fw1 --kill >/dev/null
	lab links fw1 down >/dev/null
	wait "$c4" "$c6" || true
	wait "$p4" "$p6" 2>/dev/null || true
	kill "$s4" "$s6" 2>/dev/null || true
	wait "$s4" "$s6" 2>/dev/null || true
}

resumed() { # resumed FILE: the stream came back after the failover
	jq -e '.error == null and .received > 0 and .tail_gap_s < 1.5 and .max_gap_s <= 6' "$1" >/dev/null
}

run yes
for f in udp4 udp6; do
	echo "with pfsync, $f: $(cat "$TMP/$f.json")"
	resumed "$TMP/$f.json" || fail "$f did not survive the failover with replication: $(cat "$TMP/$f.json")"
	ok "$f: the WAN host's stream reaches the client through fw2, longest silence $(jq .max_gap_s "$TMP/$f.json") s"
done
for f in ping4 ping6; do
	read -r sent recv lost gap dups silence < <(ping_gap_ms "$TMP/$f.txt" 50)
	echo "with pfsync, $f: sent $sent received $recv lost $lost gap ${gap} ms silence ${silence} ms dups $dups"
	[ "$recv" -gt 0 ] || fail "$f: no reply at all"
	le "$silence" 6000 || fail "$f: replies stopped for $silence ms"
	last=$(grep -o 'icmp_seq=[0-9]*' "$TMP/$f.txt" | cut -d= -f2 | sort -n | tail -n 1)
	[ "${last:-0}" -ge $((sent - 20)) ] || fail "$f: the last reply was for ping $last of $sent"
	ok "$f: pings resume through fw2 after $silence ms"
done
[ "$(json fw2 .pfsync.version)" = 1500 ] || fail "fw2 does not run version 1500"

run no
for f in udp4 udp6; do
	echo "without pfsync, $f: $(cat "$TMP/$f.json")"
	if resumed "$TMP/$f.json"; then
		fail "without replication $f survived too: the test proves nothing"
	fi
	jq -e '.received > 0' "$TMP/$f.json" >/dev/null || fail "without replication $f never started"
	ok "$f: without replication the stream is lost after the failover (control)"
done
