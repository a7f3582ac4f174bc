#!/usr/bin/env bash
# shellcheck disable=SC2119 # e2e_init and start_pair take options, not the script's arguments
# e2e: hostile input. The LAN client floods the LAN (FLOOD packets, FLOOD_RATE a
# second, only to 224.0.0.18, ff02::12 and the firewall's LAN address) with CARP
# advertisements for vhid 1 with a wrong HMAC, advertisements for a vhid nobody
# has, VRRPv3 packets, advertisements with TTL 64, short and random protocol-112
# payloads, and protocol-240 packets; meanwhile pfsync packets with TTL < 255 and
# malformed ones (TTL 255) arrive on the sync link (224.0.0.240, from fw2's side);
# then a trickle of the same CARP packets for 11 s.
# Nothing changes state (no transition on either node), every kind is counted by
# its carpstats/pfsync counter, pfsync from the LAN is not even received, carpd's
# CPU time stays under half of the wall time, and the log lines about the bad
# packets are rate-limited (one per vhid or interface every 10 s, plus a summary).
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmds python3
FLOOD_PY="$(dirname "$0")/helpers/flood.py"
FLOOD=${FLOOD:-20000}
FLOOD_RATE=${FLOOD_RATE:-10000}
PF_FLOOD=4000
lab up >/dev/null
start_pair --v6 --pfsync-peer mcast >/dev/null
for _ in $(seq 1 100); do
	[ "$(json fw1 .pfsync.bulk)" = "done" ] && [ "$(json fw2 .pfsync.bulk)" = "done" ] && break
	sleep 0.1
done
sleep 1
pid1=$(lab pid fw1)
pid2=$(lab pid fw2)
snap() { # snap NODE: the counters we look at, one JSON object
	ctl "$1" status -j | jq -c '{tr: ([.vhids[].counters.transitions] | add),
		v1: (.vhids[] | select(.vhid == 1) | .counters), v2: (.vhids[] | select(.vhid == 2) | .counters),
		pf: .pfsync.counters}'
}
s1=$(snap fw1)
s2=$(snap fw2)
c1=$(cpu_ticks "$pid1")
c2=$(cpu_ticks "$pid2")
l1=$(wc -l <"$RUN/fw1.log")
l2=$(wc -l <"$RUN/fw2.log")
t0=$(now)
nsx fw2 python3 "$FLOOD_PY" pfsync sync0 "$PF_FLOOD" 2000 >"$TMP/pf.json" &
pfp=$!
nsx client python3 "$FLOOD_PY" carp eth0 "$FLOOD" "$FLOOD_RATE" >"$TMP/carp.json"
wait "$pfp"
wall=$(elapsed "$t0")
c1f=$(cpu_ticks "$pid1")
c2f=$(cpu_ticks "$pid2")
# then a trickle of the same for 11 s: the log's 10 s window passes once
nsx client python3 "$FLOOD_PY" carp eth0 2200 200 >"$TMP/trickle.json"
sleep 0.5 # the last packets read
wall2=$(elapsed "$t0")
e1=$(snap fw1)
e2=$(snap fw2)
hz=$(getconf CLK_TCK)
cpu1=$(awk -v a="$c1" -v b="$c1f" -v hz="$hz" 'BEGIN { printf "%.2f", (b - a) / hz }')
cpu2=$(awk -v a="$c2" -v b="$c2f" -v hz="$hz" 'BEGIN { printf "%.2f", (b - a) / hz }')
echo "sent from the LAN client in $wall s: $(cat "$TMP/carp.json")"
echo "sent on the sync link: $(cat "$TMP/pf.json")"
echo "then, over $(jq .seconds "$TMP/trickle.json") s: $(cat "$TMP/trickle.json")"
echo "carpd CPU time during the flood ($wall s): fw1 $cpu1 s, fw2 $cpu2 s"

# 1. no state change
carpd_alive "$pid1" || fail "fw1's carpd died during the flood"
carpd_alive "$pid2" || fail "fw2's carpd died during the flood"
[ "$(jq .tr <<<"$e1")" = "$(jq .tr <<<"$s1")" ] || fail "fw1 made transitions during the flood: $(grep -E -- '-> ' "$RUN/fw1.log" | tail -n 4)"
[ "$(jq .tr <<<"$e2")" = "$(jq .tr <<<"$s2")" ] || fail "fw2 made transitions during the flood: $(grep -E -- '-> ' "$RUN/fw2.log" | tail -n 4)"
[ "$(state_of fw1 1)/$(state_of fw1 2)/$(state_of fw2 1)/$(state_of fw2 2)" = MASTER/MASTER/BACKUP/BACKUP ] ||
	fail "roles after the flood: $(states)"
ok "no transition on either node; fw1 MASTER, fw2 BACKUP"

# 2. counted
delta() { # delta START END 'jq path'
	jq -n --argjson a "$1" --argjson b "$2" "(\$b | $3) - (\$a | $3)"
}
sent() { # sent KIND-REGEX carp|pf: how many of those kinds were sent (flood and trickle)
	local f=$TMP/pf.json
	[ "$2" = carp ] && f="$TMP/carp.json $TMP/trickle.json"
	# shellcheck disable=SC2086
	jq -s "[.[] | to_entries[] | select(.key | test(\"^($1)\$\")) | .value] | add // 0" $f
}
check_counted() { # check_counted NODE START END 'jq path' SENT-KIND-REGEX FILE WHAT
	local d n
	d=$(delta "$2" "$3" "$4")
	n=$(sent "$5" "$6")
	echo "  $1 $4: +$d for $n sent ($7)"
	[ "$n" -gt 0 ] || fail "nothing of kind $5 was sent"
	# software switch and socket buffers may drop some under a flood; most must arrive
	[ "$d" -ge $((n / 4)) ] || fail "$1: $4 grew by $d for $n $7 sent"
}
for n in fw1 fw2; do
	if [ $n = fw1 ]; then a=$s1 b=$e1; else a=$s2 b=$e2; fi
	check_counted $n "$a" "$b" .v1.badauth 'badauth4|badauth6' carp "wrong HMAC"
	check_counted $n "$a" "$b" .v1.badvhid 'badvhid4|badvhid6' carp "vhid 7"
	check_counted $n "$a" "$b" .v1.badttl badttl4 carp "TTL 64"
	check_counted $n "$a" "$b" .v1.badlen short4 carp "2..35 bytes"
	# VRRPv3 for VRID 1 and random bytes with another version nibble: badver;
	# random bytes with version 2: badsum
	check_counted $n "$a" "$b" '(.v1.badver + .v1.badsum)' 'vrrp3|garbage4|garbage6' carp "VRRPv3 and random"
done
# the only valid advertisements are the other node's (fw1 sends, fw2 is silent)
in1=$(delta "$s1" "$e1" .v1.ipackets)
in2=$(delta "$s2" "$e2" .v1.ipackets)
out1=$(delta "$s1" "$e1" .v1.opackets)
out2=$(delta "$s2" "$e2" .v1.opackets)
echo "  vhid 1 valid advertisements: fw1 sent $out1, fw2 received $in2; fw2 sent $out2, fw1 received $in1"
[ "$in2" -le $((out1 + 2)) ] || fail "fw2 accepted $in2 advertisements for vhid 1, fw1 sent $out1: flood packets accepted"
[ "$in1" -le $((out2 + 2)) ] || fail "fw1 accepted $in1 advertisements for vhid 1, fw2 sent $out2: flood packets accepted"
check_counted fw1 "$s1" "$e1" .pf.badttl badttl pf "pfsync TTL < 255"
check_counted fw1 "$s1" "$e1" '(.pf.badlen + .pf.badver)' 'short|badver' pf "malformed pfsync"
for n in fw1 fw2; do
	if [ $n = fw1 ]; then a=$s1 b=$e1; else a=$s2 b=$e2; fi
	bad=$(delta "$a" "$b" '(.pf.badact + .pf.badval + .pf.badstate + .pf.ins_in + .pf.del_in + .pf.clr_in)')
	[ "$bad" = 0 ] || fail "$n: flood packets reached the pfsync message parser: $(jq -c .pf <<<"$b")"
done
# pfsync sent to fw1's LAN address never reaches carpd (its socket is bound to sync0):
# fw1's pfsync ipackets grew only by what came on the sync link
pfin=$(delta "$s1" "$e1" .pf.ipackets)
pfsent=$(jq '[.badttl, .short, .badver] | map(. // 0) | add' "$TMP/pf.json")
[ "$pfin" -le $((pfsent + 200)) ] || fail "fw1 received $pfin pfsync packets for $pfsent sent on the sync link: the LAN's get in"
ok "every kind of bad packet counted, none accepted; pfsync from the LAN not received"

# 3. CPU
le "$cpu1" "$(awk -v w="$wall" 'BEGIN { print w / 2 }')" || fail "fw1's carpd used $cpu1 s of CPU in $wall s of flood"
le "$cpu2" "$(awk -v w="$wall" 'BEGIN { print w / 2 }')" || fail "fw2's carpd used $cpu2 s of CPU in $wall s of flood"
ok "carpd CPU time under half of the wall time (fw1 $cpu1 s, fw2 $cpu2 s in $wall s)"

# 4. rate-limited logs: per vhid and per interface, the first bad packet and then
# at most one line every 10 s (the summary with the count of the suppressed ones)
windows=$(awk -v w="$wall2" 'BEGIN { printf "%d", int(w / 10) + 2 }')
for n in fw1 fw2; do
	if [ $n = fw1 ]; then from=$l1; else from=$l2; fi
	tail -n +"$((from + 1))" "$RUN/$n.log" >"$TMP/$n.newlog"
	lines=$(grep -c . "$TMP/$n.newlog" || true)
	echo "  $n: $lines log lines during the flood:"
	sed 's/^/    /' "$TMP/$n.newlog" | head -n 12
	# two keys receive bad packets: vhid 1 and the interface lan0 (sync0: none logged)
	[ "$lines" -le $((2 * windows + 2)) ] || fail "$n wrote $lines log lines in $wall2 s of flood: not rate-limited"
	grep -q 'more problems of any kind in the last' "$TMP/$n.newlog" || fail "$n: no summary line (N more problems) after 10 s of bad packets"
done
ok "log lines about bad packets rate-limited: the first, then one summary per 10 s"
scenario_basic
