#!/usr/bin/env bash
# shellcheck disable=SC2119 # e2e_init takes options, not the script's arguments
# e2e: loss on the sync link heals. Both firewalls drop 30% of the pfsync packets
# they receive (nftables numgen random) while 2 000 UDP flows are created and
# kept busy through fw1; fw2 misses part of them. Once the loss stops, fw1's
# periodic refresh (UPD_C for active connections) reaches fw2, which asks for each
# connection it does not know (UPD_REQ) and gets the full state: fw2 converges to
# exactly fw1's table, in carpd and in its kernel, with no bulk update. fw1 learns
# which connections are active from its activity marks (conntrack events that its
# nftables table causes), not by reading its table again: its dump count must not
# move. Last, fw1's nftables table is removed and must come back.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmds python3 conntrack
FLOWS="$(dirname "$0")/helpers/udp_flows.py"
N=2000

lab up >/dev/null
for fw in fw1 fw2; do
	nsx "$fw" sysctl -qw net.netfilter.nf_conntrack_udp_timeout=300
done
start_pair --pfsync >/dev/null
for i in $(seq 1 100); do
	[ "$(json fw2 .pfsync.bulk)" = done ] && [ "$(json fw1 .pfsync.bulk)" = done ] &&
		[ "$(json fw1 .pfsync.counters.dumps)" -ge 1 ] && break
	sleep 0.1
done
dumps0=$(json fw1 .pfsync.counters.dumps)
[ "$(json fw1 .pfsync.activity_mark.bit)" = 0x80000000 ] || fail "fw1 has no activity marks: $(json fw1 .pfsync.activity_mark)"
loss() { # loss on|off: 30% of incoming protocol 240 dropped on both firewalls
	local fw
	for fw in fw1 fw2; do
		if [ "$1" = on ]; then
			nsx "$fw" nft -f - <<'NFT'
table ip carpd_loss {
	chain input {
		type filter hook input priority -300; policy accept;
		ip protocol 240 numgen random mod 100 < 30 counter drop
	}
}
NFT
		else
			nsx "$fw" nft delete table ip carpd_loss
		fi
	done
}
dropped() { nsx "$1" nft list table ip carpd_loss | awk '/counter/ { for (i = 1; i < NF; i++) if ($i == "packets") print $(i + 1) }'; }
inkernel() { nsx "$1" conntrack -L -p udp -s 198.51.100.50 2>/dev/null | grep -c "sport=40000 dport=" || true; }

# traffic: every flow gets a datagram every 2 s, for at most 70 s
traffic() {
	local i
	for i in $(seq 1 35); do
		nsx client python3 "$FLOWS" 203.0.113.254 20000 "$N" 4000 40000 >/dev/null
		sleep 1.5
	done
}
loss on
traffic &
TRAFFIC=$!
# stop the traffic first; e2e_cleanup reads the exit status from $?
trap 'rc=$?; set +e; kill $TRAFFIC 2>/dev/null; wait $TRAFFIC 2>/dev/null; (exit $rc); e2e_cleanup' EXIT
sleep 6
have1=$(json fw1 .pfsync.states_local)
have2=$(json fw2 .pfsync.states_learned)
note "with 30% loss: fw1 $have1 local, fw2 $have2 learned; dropped fw1 $(dropped fw1), fw2 $(dropped fw2) pfsync packets"
[ "$have1" -ge "$N" ] || fail "fw1 tracks only $have1 of the $N flows"
[ "$have2" -lt "$N" ] || fail "fw2 learned every flow in spite of the loss: the loss rule does not work"
[ "$(dropped fw2)" -gt 0 ] || fail "the loss rule dropped nothing"
loss off
t0=$(now)
ureq0=$(json fw2 .pfsync.counters.ureq_out)
conv=
for i in $(seq 1 200); do
	if [ "$(json fw2 .pfsync.states_learned)" -ge "$N" ] && [ "$(inkernel fw2)" -ge "$N" ]; then
		conv=$(elapsed "$t0")
		break
	fi
	sleep 0.2
done
[ -n "$conv" ] || fail "40 s after the loss stopped fw2 has $(json fw2 .pfsync.states_learned) learned, $(inkernel fw2) in its kernel, of $N: $(json fw2 .pfsync)"
ureq=$(($(json fw2 .pfsync.counters.ureq_out) - ureq0))
[ "$ureq" -gt 0 ] || fail "fw2 converged without asking for anything (UPD_REQ): the test did not exercise the repair"
[ "$(json fw2 .pfsync.bulk)" = done ] || fail "bulk state changed"
ok "fw2 converged to all $N flows $conv s after the loss stopped, asking for $ureq missed states (UPD_REQ); fw2's kernel holds $(inkernel fw2)"
[ "$(json fw2 .pfsync.states_learned)" = "$(json fw1 .pfsync.states_local)" ] ||
	fail "tables differ: fw1 $(json fw1 .pfsync.states_local) local, fw2 $(json fw2 .pfsync.states_learned) learned"
ok "fw2's table equals fw1's"
dumps=$(json fw1 .pfsync.counters.dumps)
[ "$dumps" = "$dumps0" ] || fail "fw1 read its table $((dumps - dumps0)) more times: the refreshes should come from activity marks"
ok "fw1 refreshed its active connections from activity marks ($(json fw1 .pfsync.activity_mark.turns) bucket turns), with no table read after the first"

# someone flushes the firewall's ruleset: carpd puts its table back at its next turn
nsx fw1 nft delete table inet carpd_activity
for _ in $(seq 1 50); do
	nsx fw1 nft list table inet carpd_activity >/dev/null 2>&1 && break
	sleep 0.1
done
nsx fw1 nft list table inet carpd_activity >/dev/null 2>&1 || fail "fw1 did not put its activity table back in 5 s"
[ "$(json fw1 .pfsync.activity_mark.errors)" -ge 1 ] || fail "the lost table was not counted: $(json fw1 .pfsync.activity_mark)"
ok "fw1 put its activity table back after it was deleted"
