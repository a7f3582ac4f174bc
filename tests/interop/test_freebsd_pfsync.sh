#!/usr/bin/env bash
# FreeBSD's tests/sys/netpfil/pf/pfsync.sh, ported: each case whose pf feature has a
# conntrack meaning keeps FreeBSD's name and checks what the FreeBSD case checks,
# with carpd in place of pf + pfsync(4) and network namespaces in place of VNET
# jails. Topology per case: nodes one and two on a LAN bridge with a target t
# (198.51.100.0/24, 2001:db8:1::/64) and a sync link between them (192.0.2.0/24,
# 2001:db8:ff::/64); a ping from one to t makes a state on one (FreeBSD: "pass out
# keep state" and a ping). Own namespaces and Linux bridges: no Open vSwitch.
#
# Cases that do not apply to Linux conntrack, and why:
#   pbr, pfsync_pbr       route-to/reply-to: conntrack holds no routing decision
#   ipsec                 the transport's IPsec is the kernel's (xfrm), not pfsync's
#   rtable                pf rtable ids: conntrack has no per-entry routing table
#   route_to_1301, route_to_1301_bad_ruleset, route_to_1301_bad_rpool,
#   route_to_1400_bad_ruleset, route_to_1400_bad_ifname   route-to again
#   af_to_in_floating, af_to_in_if_bound, af_to_out_if_bound   NAT64: a conntrack
#                         entry has one address family (such states are counted
#                         as not_mappable and skipped)
#   tag, altq_queues, rt_af   pf tags, ALTQ queues, route-to address family
set -euo pipefail
: "${CARPD:?}" "${CARPCTL:?}" "${CARPDUMP:?}"
[ "$(id -u)" = 0 ] || { echo "skipped: needs root"; exit 77; }
for c in jq conntrack tcpdump; do command -v "$c" >/dev/null || { echo "skipped: needs $c"; exit 77; }; done

P=fbp$$
# shellcheck source=tests/interop/lib.sh
. "$(dirname "$0")/lib.sh"
nsx() { local n=$1; shift; ip netns exec "$P-$n" "$@"; }
ctl() { local n=$1; shift; "$CARPCTL" -s "$DIR/$n.sock" "$@"; }
pf() { ctl "$1" status -j | jq -r ".pfsync$2"; }

# topology: one, two and t on a LAN bridge; a sync veth between one and two;
# conntrack on in one and two
topology() {
	mkns sw
	ip -n "$P-sw" link add br0 type bridge
	ip -n "$P-sw" link set br0 up
	local h
	for h in one two t; do
		mkns "$h"
		link "$h" eth0 sw "p$h"
		ip -n "$P-sw" link set "p$h" master br0
	done
	ip -n "$P-one" addr add 198.51.100.2/24 dev eth0
	ip -n "$P-one" addr add 2001:db8:1::2/64 dev eth0
	ip -n "$P-two" addr add 198.51.100.3/24 dev eth0
	ip -n "$P-two" addr add 2001:db8:1::3/64 dev eth0
	ip -n "$P-t" addr add 198.51.100.254/24 dev eth0
	ip -n "$P-t" addr add 2001:db8:1::254/64 dev eth0
	# FreeBSD's "pass out keep state": conntrack runs in a namespace once a rule
	# uses it
	for h in one two; do
		nsx "$h" nft -f - <<'NFT'
table inet keepstate {
	chain output {
		type filter hook output priority 0; policy accept;
		ct state new accept
	}
	chain forward {
		type filter hook forward priority 0; policy accept;
		ct state new accept
	}
}
NFT
	done
	link one s0 two s0
	ip -n "$P-one" addr add 192.0.2.1/24 dev s0
	ip -n "$P-one" addr add 2001:db8:ff::1/64 dev s0
	ip -n "$P-two" addr add 192.0.2.2/24 dev s0
	ip -n "$P-two" addr add 2001:db8:ff::2/64 dev s0
}
# carpd NODE HOSTID 'pfsync block body' [no-pfsync]
carpd() {
	{
		printf 'state-dir "%s/%s.state"\nhostid %s\n' "$DIR" "$1" "$2"
		printf 'vhid 1 on eth0 {\n    address 198.51.100.1/24\n    advskew %s\n}\n' "$([ "$1" = one ] && echo 0 || echo 100)"
		[ "${4:-}" = no-pfsync ] || printf 'pfsync on s0 {\n%s\n}\n' "$3"
	} >"$DIR/$1.conf"
	ip netns exec "$P-$1" "$CARPD" -d -f "$DIR/$1.conf" -s "$DIR/$1.sock" 2>>"$DIR/$1.log" &
	PIDS+=($!)
	local i
	for i in $(seq 1 100); do ctl "$1" version >/dev/null 2>&1 && return 0; sleep 0.05; done
	die "carpd on $1 did not start"
}
# pair 'pfsync body for one' 'for two': both nodes, and both bulk updates done
pair() {
	carpd one 0x0000b001 "$1" || return 1
	carpd two 0x0000b002 "$2" || return 1
	ctl one sync bulk >/dev/null # two was not up for one's first request
	local i
	for i in $(seq 1 60); do
		[ "$(pf one .bulk)" = done ] && [ "$(pf two .bulk)" = done ] && return 0
		sleep 0.05
	done
	die "bulk updates not done: one $(pf one .bulk), two $(pf two .bulk)"
}
# has_state NODE inet|inet6: the ping's conntrack entry is there within 2 s (FreeBSD's wait)
has_state() {
	local fam=ipv4 proto=icmp src=198.51.100.2 i
	[ "$2" = inet6 ] && fam=ipv6 proto=icmpv6 src=2001:db8:1::2
	for i in $(seq 1 40); do
		nsx "$1" conntrack -f "$fam" -L -p "$proto" 2>/dev/null | grep -q "src=$src " && return 0
		sleep 0.05
	done
	return 1
}
ping_t() { # ping_t inet|inet6 [COUNT]: from one to t
	if [ "$1" = inet6 ]; then
		nsx one ping -6 -n -q -c "${2:-1}" -i 0.2 -W 1 2001:db8:1::254 >/dev/null
	else
		nsx one ping -n -q -c "${2:-1}" -i 0.2 -W 1 198.51.100.254 >/dev/null
	fi
}
capture() { # capture NODE SECONDS FILE: pfsync on the sync link, in the background
	nsx "$1" timeout "$2" tcpdump -i s0 -U -s 0 -w "$3" 'ip proto 240 or ip6 proto 240' >/dev/null 2>&1 &
	sleep 0.5
}
run() {
	CASE=$1
	SKIPPED=
	cleanup
	if "$@"; then
		if [ -n "$SKIPPED" ]; then
			echo "ok - $* # SKIP $SKIPPED"
		else
			echo "ok - $*"
			PASSED=$((PASSED + 1))
		fi
	else
		cleanup
	fi
	rm -f "$DIR"/*.log
}

# basic: a state made on one appears on two, with one's creatorid verbatim
basic() {
	topology
	pair '' '' || return 1
	capture two 3 "$DIR/basic.pcap"
	ping_t inet || { die "ping failed"; return 1; }
	has_state two inet || { die "two has no state for one's ping: $(pf two '')"; return 1; }
	sleep 2.6
	"$CARPDUMP" -r "$DIR/basic.pcap" -j >"$DIR/basic.json"
	jq -e 'select(.proto == "pfsync") | .messages[] | select(.action == "INS_1400") | .states[] |
		select(.creatorid == "0x0000b001" and .proto == 1)' "$DIR/basic.json" >/dev/null ||
		{ die "no INS_1400 with one's creatorid 0x0000b001: $(head -c 400 "$DIR/basic.json")"; return 1; }
	[ "$(pf two .states_learned)" -ge 1 ] || { die "two counts no learned state"; return 1; }
}

# basic_defer: the same with defer on both (the peers acknowledge)
basic_defer() {
	topology
	pair 'defer yes' 'defer yes' || return 1
	ping_t inet || { die "ping failed"; return 1; }
	has_state two inet || { die "two has no state in defer mode"; return 1; }
}

# defer: the INS precedes the packet that made the state. Needs NFQUEUE.
defer() {
	topology
	pair 'defer yes' 'defer yes' || return 1
	if [ "$(pf one .defer.active)" != true ]; then
		grep -q "cannot bind NFQUEUE" "$DIR/one.log" || { die "defer inactive without a reason"; return 1; }
		SKIPPED="this kernel has no NFQUEUE (carpd: $(grep -m1 -o 'cannot bind NFQUEUE[^—]*' "$DIR/one.log"))"
		return 0
	fi
	nsx one timeout 3 tcpdump -i any -n -tt -U -w "$DIR/defer.pcap" 'ip proto 240 or icmp' >/dev/null 2>&1 &
	sleep 0.5
	ping_t inet
	sleep 2.6
	tcpdump -r "$DIR/defer.pcap" -n -tt 2>/dev/null >"$DIR/defer.txt"
	local t_ins t_pkt
	t_ins=$(awk '/Out/ && /ip-proto-240/ { print $1; exit }' "$DIR/defer.txt")
	t_pkt=$(awk '/Out/ && /ICMP echo request/ { print $1; exit }' "$DIR/defer.txt")
	[ -n "$t_ins" ] && [ -n "$t_pkt" ] && awk -v a="$t_ins" -v b="$t_pkt" 'BEGIN { exit !(a < b) }' ||
		{ die "the ping left before the INS: $(cat "$DIR/defer.txt")"; return 1; }
}

# bulk: a state made before two runs pfsync is pulled by two's bulk request
bulk() {
	topology
	carpd one 0x0000b001 '' || return 1
	carpd two 0x0000b002 '' no-pfsync || return 1
	ping_t inet 5 || { die "ping failed"; return 1; } # 1 s of pings: the state lives on
	kill "${PIDS[1]}"
	wait "${PIDS[1]}" 2>/dev/null || true
	nsx two conntrack -F >/dev/null 2>&1 || true
	carpd two 0x0000b002 '' || return 1
	has_state two inet || { die "two's bulk request did not pull one's state: $(pf two '')"; return 1; }
	[ "$(pf two .bulk)" = done ] || { die "two's bulk is $(pf two .bulk)"; return 1; }
}

# timeout: FreeBSD checks that pfsync's 1 s flush runs without a sync device. Here:
# the sync link is down while states are made; carpd keeps running, and once the
# link is back the states reach two.
timeout() {
	topology
	pair '' '' || return 1
	ip -n "$P-one" link set s0 down
	ping_t inet 3 || { die "ping failed"; return 1; }
	sleep 1.5
	kill -0 "${PIDS[0]}" 2>/dev/null || { die "carpd on one died with its sync link down"; return 1; }
	ip -n "$P-one" link set s0 up
	ctl two sync bulk >/dev/null
	has_state two inet || sleep 1
	has_state two inet || { die "two never got the state once the link was back: $(pf one '')"; return 1; }
}

# basic_ipv6_unicast: sync over IPv6 unicast, IPv4 blocked on the sync link; ICMPv6 states
basic_ipv6_unicast() {
	topology
	local n
	for n in one two; do
		nsx "$n" nft add table inet blk
		nsx "$n" nft 'add chain inet blk in { type filter hook input priority 0; }'
		nsx "$n" nft 'add chain inet blk out { type filter hook output priority 0; }'
		nsx "$n" nft add rule inet blk in iifname s0 meta nfproto ipv4 drop
		nsx "$n" nft add rule inet blk out oifname s0 meta nfproto ipv4 drop
	done
	pair 'syncpeer 2001:db8:ff::2' 'syncpeer 2001:db8:ff::1' || return 1
	ping_t inet6 || { die "ping6 failed"; return 1; }
	has_state two inet6 || { die "two has no state for the ICMPv6 ping: $(pf two '')"; return 1; }
}

# basic_ipv6: sync over IPv6 multicast ff12::f0
basic_ipv6() {
	topology
	pair 'syncpeer ff12::f0' 'syncpeer ff12::f0' || return 1
	ping_t inet6 || { die "ping6 failed"; return 1; }
	has_state two inet6 || { die "two has no state for the ICMPv6 ping: $(pf two '')"; return 1; }
}

# version_NNNN: FreeBSD tests each format (the route_to_1301/1400 and af_to/1500
# cases); here a round trip: one sends INS_NNNN, two imports it, and two's bulk
# answer in the same version brings one's state back to a restarted one.
version() {
	local v=$1
	CASE=version_$v
	topology
	pair "version $v" "version $v" || return 1
	capture two 3 "$DIR/v.pcap"
	ping_t inet || { die "ping failed"; return 1; }
	has_state two inet || { die "two has no state"; return 1; }
	sleep 2.6
	"$CARPDUMP" -r "$DIR/v.pcap" -j | jq -e --arg a "INS_$v" 'select(.proto == "pfsync") | .messages[] | select(.action == $a)' >/dev/null ||
		{ die "no INS_$v on the wire"; return 1; }
	# the other way: one restarts empty and gets its own state back from two
	kill "${PIDS[0]}"
	wait "${PIDS[0]}" 2>/dev/null || true
	nsx one conntrack -F >/dev/null 2>&1 || true
	carpd one 0x0000b001 "version $v" || return 1
	has_state one inet || { die "one did not get its state back from two's UPD_$v bulk answer"; return 1; }
}

for c in basic basic_defer defer bulk timeout basic_ipv6_unicast basic_ipv6; do
	run "$c" || true
done
for v in 1301 1400 1500; do
	run version "$v" || true
done
echo "# not applicable to conntrack (see the head of this file): pbr pfsync_pbr ipsec rtable route_to_1301 route_to_1301_bad_ruleset route_to_1301_bad_rpool route_to_1400_bad_ruleset route_to_1400_bad_ifname af_to_in_floating af_to_in_if_bound af_to_out_if_bound tag altq_queues rt_af"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
