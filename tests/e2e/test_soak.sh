#!/usr/bin/env bash
# shellcheck disable=SC2119 # e2e_init and start_pair take options, not the script's arguments
# e2e: soak. With pfsync, the LAN client opens and closes connections all the time
# (rounds of UDP flows through the SNAT, and short TCP connections with socat)
# while the roles change every FAILOVER_EVERY seconds, in turn: carpctl demote 200
# on fw1 (fw2 takes over), demote -200 (fw1 preempts back), SIGTERM of the master
# fw1 and its restart (fw2 takes over, fw1 takes back after its bulk update).
# CI runs SOAK_SECONDS=120; SOAK_SECONDS=1800 for the long run. At the end:
#  - each carpd's VmRSS and open fds stay flat: fds within +FD_SLACK of the value
#    after its first round once it has run WARMUP s (twice the UDP timeout; a
#    restarted daemon: WARMUP s after its restart), VmRSS at the end within
#    +RSS_SLACK_KIB of the highest value of the first half of the time since then
#    (tables swing with the node's role), with the same traffic running throughout;
#  - after the traffic stops and a few seconds pass, the state tables agree:
#    what each node owns (states_local) is what the other learned (states_learned).
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmds python3 conntrack socat
FLOWS="$(dirname "$0")/helpers/udp_flows.py"
SOAK_SECONDS=${SOAK_SECONDS:-120}
FAILOVER_EVERY=${FAILOVER_EVERY:-20}
RSS_SLACK_KIB=2048
FD_SLACK=5
UDP_PER_ROUND=300
TCP_PER_ROUND=10

lab up >/dev/null
for fw in fw1 fw2; do
	# unreplied UDP and closed TCP go away quickly, so that the tables turn over
	nsx "$fw" sysctl -qw net.netfilter.nf_conntrack_udp_timeout=10 \
		net.netfilter.nf_conntrack_tcp_timeout_time_wait=2 net.netfilter.nf_conntrack_tcp_timeout_close=2 \
		net.netfilter.nf_conntrack_tcp_timeout_fin_wait=2 net.netfilter.nf_conntrack_tcp_timeout_last_ack=2
done
start_pair --pfsync >/dev/null
for _ in $(seq 1 100); do
	[ "$(json fw1 .pfsync.bulk)" = "done" ] && [ "$(json fw2 .pfsync.bulk)" = "done" ] && break
	sleep 0.1
done
# shellcheck disable=SC2016 # for the shell socat starts
nsx wan socat TCP-LISTEN:5001,reuseaddr,fork SYSTEM:'echo ok' >/dev/null 2>&1 &
for _ in $(seq 1 100); do
	nsx wan ss -Hltn "sport = :5001" | grep -q . && break
	sleep 0.05
done

t0=$(now)
declare -A base_rss base_fd base_t born
WARMUP=20
tcp_ok=0 tcp_tried=0 udp_sent=0 round=0
traffic_round() {
	local i got
	round=$((round + 1))
	udp_sent=$((udp_sent + $(nsx client python3 "$FLOWS" 203.0.113.254 $((20000 + (round % 20) * UDP_PER_ROUND)) \
		"$UDP_PER_ROUND" 4000 $((40000 + round % 50)))))
	for i in $(seq 1 "$TCP_PER_ROUND"); do
		tcp_tried=$((tcp_tried + 1))
		got=$(nsx client timeout 3 socat -T 2 - TCP:203.0.113.254:5001,connect-timeout=1 </dev/null 2>/dev/null) || true
		[ "$got" = ok ] && tcp_ok=$((tcp_ok + 1))
	done
	# the baseline of each carpd process: its first round once it has run WARMUP
	# seconds (the UDP timeout twice: the tables have reached their steady size)
	local n pid age
	for n in fw1 fw2; do
		pid=$(lab pid "$n" 2>/dev/null) || continue
		[ -n "${born[$pid]:-}" ] || born[$pid]=$(now)
		age=$((($(now) - born[$pid]) / 1000000000))
		echo "$(elapsed "$t0") $n $pid $(rss_kib "$pid") $(fd_count "$pid") $(json "$n" .pfsync.states)" >>"$TMP/samples"
		if [ -z "${base_rss[$pid]:-}" ] && [ "$age" -ge "$WARMUP" ]; then
			base_rss[$pid]=$(rss_kib "$pid")
			base_fd[$pid]=$(fd_count "$pid")
			base_t[$pid]=$(now)
			note "$n (pid $pid) ${age} s after its start: VmRSS ${base_rss[$pid]} KiB, ${base_fd[$pid]} fds, $(json "$n" .pfsync.states) states (baseline)"
		fi
	done
}
one_master() {
	local v
	for v in 1 2; do
		[ "$(count_masters "$v")" = 1 ] || fail "$1: vhid $v has $(count_masters "$v") MASTERs: $(states)"
	done
}
failover() { # failover K
	local tf
	tf=$(now)
	case $(($1 % 3)) in
	1)
		ctl fw1 demote 200 >/dev/null
		wait_states 5 fw2:1:MASTER fw2:2:MASTER fw1:1:BACKUP fw1:2:BACKUP ||
			fail "failover $1 (demote fw1): $(states)"
		note "failover $1: fw1 demoted, fw2 MASTER after $(elapsed "$tf") s"
		;;
	2)
		ctl fw1 demote -200 >/dev/null
		wait_states 5 fw1:1:MASTER fw1:2:MASTER fw2:1:BACKUP fw2:2:BACKUP ||
			fail "failover $1 (demotion lifted): $(states)"
		note "failover $1: fw1 demotion lifted, fw1 MASTER after $(elapsed "$tf") s"
		;;
	0)
		lab stop fw1 >/dev/null
		wait_states 5 fw2:1:MASTER fw2:2:MASTER || fail "failover $1 (SIGTERM fw1): $(states)"
		note "failover $1: fw1 stopped (SIGTERM), fw2 MASTER after $(elapsed "$tf") s"
		traffic_round
		lab start fw1 >/dev/null
		tf=$(now)
		wait_states 15 fw1:1:MASTER fw1:2:MASTER fw2:1:BACKUP fw2:2:BACKUP ||
			fail "failover $1: fw1 restarted but not MASTER again within 15 s: $(states)"
		note "failover $1: fw1 restarted, MASTER again (after its bulk update) $(elapsed "$tf") s later"
		;;
	esac
	one_master "failover $1"
}

end=$((t0 + SOAK_SECONDS * 1000000000))
next=$((t0 + FAILOVER_EVERY * 1000000000))
k=0
maxrounds=$((SOAK_SECONDS * 4)) # a round takes more than 0.25 s: a bound on the count
while [ "$(now)" -lt "$end" ] && [ "$round" -lt "$maxrounds" ]; do
	traffic_round
	if [ "$(now)" -ge "$next" ]; then
		k=$((k + 1))
		failover "$k"
		next=$(($(now) + FAILOVER_EVERY * 1000000000))
	fi
	sleep 0.5
done
# end in the starting roles
case $((k % 3)) in 1) ctl fw1 demote -200 >/dev/null ;; esac
wait_states 15 fw1:1:MASTER fw1:2:MASTER fw2:1:BACKUP fw2:2:BACKUP || fail "at the end: $(states)"
echo "soak: $(elapsed "$t0") s, $round rounds, $k failovers, $udp_sent UDP flows, TCP $tcp_ok of $tcp_tried connections answered"
# a failover comes FAILOVER_EVERY s after the previous one is complete (a restart
# and its bulk update take a few seconds): over 30 minutes that is about 10% fewer
[ "$k" -ge $((SOAK_SECONDS * 8 / 10 / FAILOVER_EVERY - 1)) ] || fail "only $k failovers in $SOAK_SECONDS s"
[ "$tcp_ok" -ge $((tcp_tried * 8 / 10)) ] || fail "only $tcp_ok of $tcp_tried TCP connections answered: traffic did not flow"
ok "traffic and failovers for $SOAK_SECONDS s: one MASTER per vhid after each"

# memory and fds flat
awk '{ k = $2 " (pid " $3 ")"; if (!(k in first)) { first[k] = $4; order[++n] = k } if ($4 > max[k]) max[k] = $4; last[k] = $4; lt[k] = $1 }
	END { for (i = 1; i <= n; i++) { k = order[i]; printf "# VmRSS of %s: first %d KiB, max %d, last %d (at %s s)\n", k, first[k], max[k], last[k], lt[k] } }' "$TMP/samples"
# ASan's quarantine and valgrind's freed-block queue keep freed memory resident:
# VmRSS then says nothing, and their own leak checks at carpd's exit replace it
memtool=
# (not `ldd | grep -q`: grep leaves at the first match, ldd may then die of
# SIGPIPE, and with pipefail the test took an ASan build for a plain one)
case "$(ldd "$CARPD" 2>/dev/null)" in *libasan*) memtool="ASan" ;; esac
[ -n "${CARPD_WRAP:-}" ] && memtool="$CARPD_WRAP"
for n in fw1 fw2; do
	pid=$(lab pid "$n")
	[ -n "${base_rss[$pid]:-}" ] || fail "$n (pid $pid) has no baseline: it ran less than $WARMUP s"
	rss=$(rss_kib "$pid")
	fds=$(fd_count "$pid")
	win=$(elapsed "${base_t[$pid]}")
	# The reference is the highest VmRSS of the first half of the time since the
	# baseline, not the baseline alone: a node's tables swing with its role (the
	# master owns the connections, the backup learns them), and a long run reaches
	# its largest steady size later than WARMUP. A leak keeps growing through the
	# second half; a steady process does not exceed what it reached in the first.
	ref=$(awk -v p="$pid" -v b="$(awk -v a="$t0" -v c="${base_t[$pid]}" 'BEGIN { printf "%.2f", (c - a) / 1e9 }')" '
		$3 == p && $1 + 0 >= b + 0 { t[n] = $1; r[n] = $4; n++ }
		END { m = 0; for (i = 0; i < n; i++) if (t[i] <= (t[0] + t[n - 1]) / 2 && r[i] > m) m = r[i]; print m }' "$TMP/samples")
	[ "${ref:-0}" -ge "${base_rss[$pid]}" ] || ref=${base_rss[$pid]}
	echo "$n (pid $pid): VmRSS ${base_rss[$pid]} at the baseline, at most $ref in the first half, $rss at the end; fds ${base_fd[$pid]} -> $fds over the last $win s"
	if [ -n "$memtool" ]; then
		note "$n: carpd runs under ${memtool%% *}, which keeps freed memory resident: VmRSS is not checked; the leak check at carpd's exit replaces it"
	else
		[ "$rss" -le $((ref + RSS_SLACK_KIB)) ] || fail "$n: VmRSS grew from $ref (first half) to $rss KiB"
	fi
	[ "$fds" -le $((base_fd[$pid] + FD_SLACK)) ] || fail "$n: open fds grew from ${base_fd[$pid]} to $fds: $(find "/proc/$pid/fd" -mindepth 1 -printf '%l\n' | sort | uniq -c | sort -rn | head -n 5 | tr '\n' ';')"
done
ok "${memtool:+(under ${memtool%% *}: fds only) }VmRSS within +$RSS_SLACK_KIB KiB of the first half's and fds within +$FD_SLACK of the baseline on both nodes"

# state tables agree once the traffic has stopped. Connections that expire leave
# carpd when the kernel's conntrack garbage collector reaps them (their DESTROY
# event), which can be seconds after they expired, at different times on the two
# nodes; until carpd 0.1's activity marks a table scan every 5 s noticed them
# sooner. Under valgrind the 10 s window proved too short (2 of 3 runs); 30 s.
sleep 3
agree=
for _ in $(seq 1 60); do
	j1=$(ctl fw1 status -j | jq -c '.pfsync | {local: .states_local, learned: .states_learned}')
	j2=$(ctl fw2 status -j | jq -c '.pfsync | {local: .states_local, learned: .states_learned}')
	if [ "$(jq .local <<<"$j1")" = "$(jq .learned <<<"$j2")" ] && [ "$(jq .local <<<"$j2")" = "$(jq .learned <<<"$j1")" ]; then
		agree=1
		break
	fi
	sleep 0.5
done
echo "state tables: fw1 $j1, fw2 $j2"
if [ -z "$agree" ]; then
	for n in fw1 fw2; do
		echo "$n: kernel holds $(nsx "$n" conntrack -L -s 198.51.100.50 2>/dev/null | grep -c . || true) client connections; pfsync $(json "$n" '.pfsync.counters | {del_in, del_out, updc_out, upd_in, badstate, stale, collisions, own_creator}' | jq -c .)"
	done
	nsx fw1 conntrack -L -s 198.51.100.50 2>/dev/null | head -n 3
	# FAILED once in a 300 s run (fw1 kept 297 learned states that fw2, their
	# creator, no longer had; 120 s runs passed): see the fault tests' report.
	fail "BUG? the state tables disagree 33 s after the traffic stopped: fw1 $j1, fw2 $j2"
fi
ok "state tables agree: each node's own states are the other's learned ones"
errs=$(for n in fw1 fw2; do json "$n" '.pfsync.counters | [.badlen, .badval, .inject_errors] | add'; done | awk '{ s += $1 } END { print s + 0 }')
[ "$errs" = 0 ] || fail "pfsync errors during the soak: fw1 $(json fw1 .pfsync.counters), fw2 $(json fw2 .pfsync.counters)"
