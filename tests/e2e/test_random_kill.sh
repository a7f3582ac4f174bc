#!/usr/bin/env bash
# shellcheck disable=SC2119 # e2e_init and start_pair take options, not the script's arguments
# e2e: kill -9 of carpd at random moments, then a restart. After every restart the
# killed node holds no stale virtual MAC interface (vh*) or VIP beyond what its
# current state needs, there is one MASTER per vhid, and (pfsync) the surviving
# node has lost no conntrack entry. The moments (random delays, printed so that a
# failure can be replayed with RANDOM_SEED):
#  1. takeover: fw1 (MASTER) is killed with its links up (its VIPs stay behind);
#     fw2 is killed just after it became MASTER; both restart.
#  2. bulk update (pfsync, N UDP flows): fw2 restarts and asks for a bulk update,
#     fw1 is killed while sending it; then fw1 restarts and is killed during its
#     own bulk update. fw2 keeps every entry.
#  3. SIGHUP reload that adds a vhid, or removes one that is MASTER: killed right
#     after the signal, restarted with the original file.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmds python3 conntrack
FLOWS="$(dirname "$0")/helpers/udp_flows.py"
N=3000
RANDOM=${RANDOM_SEED:-$$}
note "RANDOM_SEED=$RANDOM"
rand_ms() { echo $(($1 + RANDOM % ($2 - $1 + 1))); } # rand_ms MIN MAX
sleep_ms() { sleep "$(awk -v m="$1" 'BEGIN { printf "%.3f", m / 1000 }')"; }
kill9() { # kill9 NODE: SIGKILL, the pid file stays behind like after a crash
	local pid
	pid=$(lab pid "$1")
	kill -KILL "$pid"
	for _ in $(seq 1 100); do carpd_alive "$pid" || return 0; sleep 0.05; done
	fail "carpd on $1 (pid $pid) survived SIGKILL"
}
one_master() {
	local v
	for v in 1 2; do
		[ "$(count_masters "$v")" = 1 ] || fail "$1: vhid $v has $(count_masters "$v") MASTERs: $(states)"
	done
}
settle() { # settle WHAT: after restarts, fw1 MASTER again and both nodes clean
	wait_states 10 fw1:1:MASTER fw1:2:MASTER fw2:1:BACKUP fw2:2:BACKUP ||
		fail "$1: not back to fw1 MASTER / fw2 BACKUP within 10 s: $(states)"
	one_master "$1"
	check_node_clean fw1
	check_node_clean fw2
	[ "$(vip_nodes 198.51.100.1)" = fw1 ] || fail "$1: 198.51.100.1 is on '$(vip_nodes 198.51.100.1)'"
	[ "$(vip_nodes 203.0.113.1)" = fw1 ] || fail "$1: 203.0.113.1 is on '$(vip_nodes 203.0.113.1)'"
	ok "$1: one MASTER per vhid, no stale vh* interface or VIP on either node"
}

lab up >/dev/null
for fw in fw1 fw2; do nsx "$fw" sysctl -qw net.netfilter.nf_conntrack_udp_timeout=300; done

# --- 1. during a takeover
start_pair >/dev/null
for round in 1 2; do
	kill9 fw1 # links up: its VIPs and vh* interfaces stay, as after a crash
	vip_nodes 198.51.100.1 | grep -qw fw1 || note "(fw1's VIP vanished with its carpd)"
	wait_state fw2 1 MASTER 6 || wait_state fw2 2 MASTER 1 || fail "fw2 did not take over after fw1's kill: $(states)"
	d=$(rand_ms 0 400)
	sleep_ms "$d"
	st="$(state_of fw2 1)/$(state_of fw2 2)"
	kill9 fw2
	note "round $round: fw1 killed; fw2 killed $d ms after its first MASTER vhid (fw2 was $st)"
	lab start fw2 >/dev/null
	sleep_ms "$(rand_ms 0 1500)"
	lab start fw1 >/dev/null
	settle "takeover round $round"
done

# --- 2. during a bulk update
lab stop fw1 >/dev/null
lab stop fw2 >/dev/null
start_pair --pfsync >/dev/null
for _ in $(seq 1 100); do
	[ "$(json fw2 .pfsync.bulk)" = "done" ] && break
	sleep 0.1
done
count() { nsx "$1" conntrack -L -p udp -s 198.51.100.50 2>/dev/null | grep -c "sport=40000 dport=" || true; }
for try in 1 2 3; do
	nsx client python3 "$FLOWS" 203.0.113.254 20000 "$N" 4000 40000 >/dev/null
	[ "$(count fw1)" -ge "$N" ] && break
	note "try $try: fw1 holds $(count fw1) of the $N flows; sending again"
done
[ "$(count fw1)" -ge "$N" ] || fail "fw1 holds only $(count fw1) of the $N flows"
for _ in $(seq 1 100); do
	[ "$(count fw2)" -ge "$N" ] && break
	sleep 0.1
done
c1=$(count fw1)
c2=$(count fw2)
[ "$c2" -ge "$N" ] || fail "fw2 learned only $c2 of the $N flows before the kills"
note "before the kills: fw1 $c1, fw2 $c2 conntrack entries for the $N flows"

lab stop fw2 >/dev/null
lab start fw2 >/dev/null # asks fw1 for a bulk update
d=$(rand_ms 0 300)
sleep_ms "$d"
b=$(json fw2 .pfsync.bulk)
kill9 fw1
note "fw1 killed $d ms after fw2's start, fw2's bulk update $b"
sleep 1
[ "$(count fw2)" -ge "$c2" ] || fail "fw2 (surviving) lost entries when fw1 died during its bulk: $(count fw2) of $c2"
lab start fw1 >/dev/null # asks fw2 for a bulk update
d=$(rand_ms 0 300)
sleep_ms "$d"
b=$(json fw1 .pfsync.bulk)
kill9 fw1
note "fw1 restarted, killed again $d ms later during its own bulk update ($b)"
sleep 1
[ "$(count fw2)" -ge "$c2" ] || fail "fw2 (surviving) lost entries when fw1 died during its own bulk: $(count fw2) of $c2"
lab start fw1 >/dev/null
settle "bulk update"
for _ in $(seq 1 50); do
	[ "$(json fw1 .pfsync.bulk)" = "done" ] && break
	sleep 0.1
done
[ "$(count fw2)" -ge "$c2" ] || fail "fw2 lost entries after fw1 came back: $(count fw2) of $c2"
[ "$(count fw1)" -ge "$c1" ] || fail "fw1 lost entries across its kills and restarts: $(count fw1) of $c1"
ok "no conntrack entry lost: fw1 $(count fw1) (was $c1), fw2 $(count fw2) (was $c2)"

# --- 3. during a SIGHUP reload
conf=$RUN/fw1.conf
cp "$conf" "$TMP/fw1.conf.orig"
vhid3() { printf 'vhid 3 on lan0 {\n    address 198.51.100.100/24\n    advskew 0\n    password "motdepasseCARP"\n}\n'; }
for round in add remove; do
	if [ $round = remove ]; then
		# vhid 3 runs, and becomes MASTER (fw2 does not have it), then goes away
		{ cat "$TMP/fw1.conf.orig"; vhid3; } >"$conf"
		lab stop fw1 >/dev/null
		lab start fw1 >/dev/null
		wait_state fw1 3 MASTER 6 || fail "vhid 3 did not become MASTER on fw1"
		[ "$(iface_of fw1 198.51.100.100)" = vh3.lan0 ] || fail "198.51.100.100 is not on vh3.lan0"
		cp "$TMP/fw1.conf.orig" "$conf"
	else
		{ cat "$TMP/fw1.conf.orig"; vhid3; } >"$conf"
	fi
	d=$(rand_ms 0 60)
	lab reload fw1
	sleep_ms "$d"
	kill9 fw1
	note "reload ($round vhid 3): fw1 killed $d ms after SIGHUP"
	cp "$TMP/fw1.conf.orig" "$conf"
	lab start fw1 >/dev/null
	settle "reload ($round vhid 3)"
	[ -z "$(iface_of fw1 198.51.100.100)" ] || fail "reload ($round): 198.51.100.100 left on fw1"
done
