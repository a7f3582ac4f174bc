#!/usr/bin/env bash
# shellcheck disable=SC2119 # e2e_init takes options, not the script's arguments
# e2e: state lifetimes. Deletes propagate (conntrack -D on the master, like pfctl
# -k), entries that expire on the master are removed from the backup, TCP
# connections that close are removed on both, copies expire on their own when the
# master dies, and after every cycle the state tables of both carpd return to
# where they started: no growth after flows end.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmds python3 conntrack socat
FLOWS="$(dirname "$0")/helpers/udp_flows.py"
N=1000

lab up >/dev/null
# fw1 forgets unreplied UDP after 5 s and closed TCP after 1 s, so that expiry
# is quick to observe; fw2 keeps the kernel's defaults
nsx fw1 sysctl -qw net.netfilter.nf_conntrack_udp_timeout=5 \
	net.netfilter.nf_conntrack_tcp_timeout_time_wait=1 net.netfilter.nf_conntrack_tcp_timeout_close=1 \
	net.netfilter.nf_conntrack_tcp_timeout_fin_wait=1 net.netfilter.nf_conntrack_tcp_timeout_last_ack=1
start_pair --pfsync >/dev/null
for i in $(seq 1 100); do
	[ "$(json fw2 .pfsync.bulk)" = done ] && [ "$(json fw1 .pfsync.bulk)" = done ] && break
	sleep 0.1
done

ctcount() { # ctcount NODE DPORT_FIRST: UDP entries from the client to [FIRST, FIRST+N)
	nsx "$1" conntrack -L -p udp -s 198.51.100.50 2>/dev/null |
		awk -v a="$2" -v n="$N" '{ for (i = 1; i <= NF; i++) if ($i ~ /^dport=/) { p = substr($i, 7) + 0; if (p >= a && p < a + n) c++; break } } END { print c + 0 }'
}
learned() { json fw2 .pfsync.states_learned; }
local1() { json fw1 .pfsync.states_local; }
wait_for() { # wait_for SECONDS 'shell condition': polls every 0.2 s
	local i
	for i in $(seq 1 $(($1 * 5))); do
		eval "$2" && return 0
		sleep 0.2
	done
	return 1
}
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$(cat "$RUN/$1.pid")/status"; }
base_l=$(local1)
base_r=$(learned)
note "baseline: fw1 $base_l local, fw2 $base_r learned"

make_flows() { # make_flows FIRST_PORT SOURCE_PORT
	nsx client python3 "$FLOWS" 203.0.113.254 "$1" "$N" 4000 "$2" >/dev/null
	wait_for 10 "[ \"\$(learned)\" -ge $((base_r + N)) ]" ||
		fail "fw2 learned $(learned) states, expected $((base_r + N)): $(json fw2 .pfsync)"
}

# 1. deletes propagate
make_flows 20000 41000
[ "$(ctcount fw2 20000)" -ge "$N" ] || fail "fw2's kernel has $(ctcount fw2 20000) of $N flows"
t0=$(now)
nsx fw1 conntrack -D -p udp -s 198.51.100.50 --sport 41000 >/dev/null 2>&1 || true
wait_for 10 "[ \"\$(ctcount fw2 20000)\" = 0 ] && [ \"\$(learned)\" = $base_r ]" ||
	fail "after conntrack -D on fw1, fw2 still has $(ctcount fw2 20000) entries, $(learned) learned"
ok "conntrack -D of $N flows on fw1 removed them from fw2 in $(elapsed "$t0") s (DEL_C)"
# every DEL_C named a state fw2 knew (a NATed connection's two DEL_C included)
[ "$(json fw2 .pfsync.counters.badstate)" = 0 ] || fail "fw2 counted DEL_C for unknown states: $(json fw2 .pfsync.counters)"
rss1_fw1=$(rss_kb fw1)
rss1_fw2=$(rss_kb fw2)

# 2. expiry on the master propagates
for cycle in 1 2 3; do
	make_flows 30000 $((42000 + cycle))
	t0=$(now)
	wait_for 20 "[ \"\$(ctcount fw1 30000)\" = 0 ] && [ \"\$(ctcount fw2 30000)\" = 0 ] && [ \"\$(learned)\" = $base_r ] && [ \"\$(local1)\" = $base_l ]" ||
		fail "cycle $cycle: after expiry fw1 has $(ctcount fw1 30000) entries ($(local1) local), fw2 $(ctcount fw2 30000) ($(learned) learned)"
	ok "cycle $cycle: $N flows expired on fw1 (5 s timeout) and left fw2 too, $(elapsed "$t0") s after they were made"
done
rss3_fw1=$(rss_kb fw1)
rss3_fw2=$(rss_kb fw2)
note "resident memory after 1 and after 4 cycles of $N flows: fw1 $rss1_fw1 -> $rss3_fw1 KiB, fw2 $rss1_fw2 -> $rss3_fw2 KiB"
# (not `ldd | grep -q`, which with pipefail fails when ldd dies of SIGPIPE)
if [ -n "${CARPD_WRAP:-}" ] || [[ "$(ldd "$CARPD" 2>/dev/null)" == *libasan* ]]; then
	# ASan's quarantine and valgrind keep freed memory: their RSS says nothing
	ok "no growth: both tables back to their baseline (resident memory not judged under ASan/valgrind)"
else
	[ "$rss3_fw1" -le $((rss1_fw1 + 1024)) ] || fail "fw1 grew from $rss1_fw1 to $rss3_fw1 KiB"
	[ "$rss3_fw2" -le $((rss1_fw2 + 1024)) ] || fail "fw2 grew from $rss1_fw2 to $rss3_fw2 KiB"
	ok "no growth: both tables back to their baseline, resident memory flat"
fi

# 3. TCP connections that close are removed on both sides
nsx wan socat TCP-LISTEN:5001,reuseaddr,fork EXEC:cat >/dev/null 2>&1 &
srv=$!
sleep 0.3
for i in $(seq 1 50); do
	nsx client timeout 3 socat -T 1 - TCP:203.0.113.254:5001 <<<"hello $i" >/dev/null 2>&1 || true
done
kill "$srv" 2>/dev/null || true
wait "$srv" 2>/dev/null || true
tcpcount() { nsx "$1" conntrack -L -p tcp --dport 5001 2>/dev/null | grep -c "src=198.51.100.50" || true; }
wait_for 15 "[ \"\$(tcpcount fw1)\" = 0 ] && [ \"\$(tcpcount fw2)\" = 0 ] && [ \"\$(learned)\" = $base_r ]" ||
	fail "closed TCP connections left: fw1 $(tcpcount fw1), fw2 $(tcpcount fw2), learned $(learned): $(nsx fw1 conntrack -L -p tcp --dport 5001 2>&1) / $(nsx fw2 conntrack -L -p tcp --dport 5001 2>&1) / $(json fw1 .pfsync) / $(json fw2 .pfsync)"
ok "50 closed TCP connections are gone from both firewalls"

# 4. the master dies: the copies on fw2 expire by themselves, and carpd forgets them
make_flows 50000 44000
lab stop fw1 --kill >/dev/null
lab links fw1 down >/dev/null
t0=$(now)
wait_for 30 "[ \"\$(ctcount fw2 50000)\" = 0 ] && [ \"\$(learned)\" = $base_r ]" ||
	fail "with fw1 gone, fw2 still has $(ctcount fw2 50000) entries and $(learned) learned"
ok "with fw1 powered off, fw2's copies expired (their 5 s timeout came with them) and carpd forgot them: $(elapsed "$t0") s"
