# tests/e2e/lib.sh - sourced by every tests/e2e/test_*.sh.
#
# The tests drive tools/carplab (namespaces carplab-fw1, -fw2, -client, -wan behind
# Open vSwitch bridges ovsbr0/1/2) and carpd/carpctl only through the CONTRACT:
# the command lines, the configuration grammar and 'carpctl status -j'.
# They run serially (ctest RUN_SERIAL) with the lab's default names; each one tears
# the lab down before it starts and when it exits, whatever happens.
#
# Exit status: 0 pass, 77 skipped (not root, no Open vSwitch, a tool missing), 1 fail.
# Environment (set by ctest): CARPD CARPCTL CARPDUMP CARPD_SRC CARPD_BUILD.
# CARPD_WRAP (optional, e.g. "valgrind --leak-check=full"): tools/carplab starts
# carpd under this command line; a test whose carpd logs then hold a memcheck error
# fails. Timing bounds (takeover, gaps) may not hold under valgrind.
# shellcheck shell=bash
set -euo pipefail

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CARPD_SRC=${CARPD_SRC:-$(cd "$E2E_DIR/../.." && pwd)}
CARPD_BUILD=${CARPD_BUILD:-$CARPD_SRC/build}
CARPD=${CARPD:-$CARPD_BUILD/carpd}
CARPCTL=${CARPCTL:-$CARPD_BUILD/carpctl}
CARPDUMP=${CARPDUMP:-$CARPD_BUILD/carpdump}
CARPLAB=$CARPD_SRC/tools/carplab
export CARPD CARPCTL CARPDUMP
export CARPD_WRAP=${CARPD_WRAP:-}
export CARPLAB_RUN=${CARPLAB_RUN:-/run/carplab}
RUN=$CARPLAB_RUN
PREFIX=${CARPLAB_PREFIX:-carplab}
TEST_NAME=$(basename "$0" .sh)
TMP=
VMAC1=00:00:5e:00:01:01
VMAC2=00:00:5e:00:01:02
# Lab defaults (tools/carplab conf): advbase 1, advskew 0 on fw1 and 100 on fw2.
# A backup takes over after 3 x advbase + advskew/256 s of silence; 0.5 s of slack.
KILL_BOUND=$(awk 'BEGIN { printf "%.2f", 3 * 1 + 100 / 256 + 0.5 }')

skip() {
	echo "skipped: $*"
	exit 77
}
fail() {
	echo "FAIL: $TEST_NAME: $*" >&2
	exit 1
}
ok() { echo "ok - $*"; }
note() { echo "# $*"; }

require_root() { [ "$(id -u)" = 0 ] || skip "needs root"; }

require_cmds() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip "needs '$c' (bash .ci/deps)"
	done
}

# Open vSwitch: skipped when not installed, started (userspace datapath) when not running.
require_ovs() {
	command -v ovs-vsctl >/dev/null 2>&1 || skip "needs Open vSwitch (apt-get install openvswitch-switch)"
	"$CARPLAB" ovs-start || fail "Open vSwitch is installed but does not start"
}

# (fd 9, the lab lock, is closed for carplab: a carpd that outlived its test must
# not keep the lock, or every later test waits its 20 minutes)
lab() { "$CARPLAB" "$@" 9>&-; }
nsx() { # nsx NODE COMMAND...: run in the node's namespace
	local node=$1
	shift
	ip netns exec "$PREFIX-$node" "$@"
}
ctl() { # ctl NODE CARPCTL-ARGS...
	local node=$1
	shift
	"$CARPCTL" -s "$RUN/$node.sock" "$@"
}
json() { # json NODE 'jq filter': applied to 'carpctl status -j' (raw output)
	ctl "$1" status -j | jq -r "$2"
}
state_of() { # state_of NODE VHID: INIT|BACKUP|MASTER, or NONE when carpd does not answer
	local s
	s=$(ctl "$1" status -j 2>/dev/null | jq -r --argjson v "$2" \
		'[.vhids[] | select(.vhid == $v) | .state][0] // "NONE"' 2>/dev/null) || s=NONE
	echo "${s:-NONE}"
}
vhid_field() { # vhid_field NODE VHID 'jq path below the vhid', e.g. .counters.badauth
	json "$1" "[.vhids[] | select(.vhid == $2)][0] | $3"
}
count_masters() { # count_masters VHID: how many firewalls are MASTER for it
	local n c=0
	for n in fw1 fw2; do
		[ "$(state_of "$n" "$1")" = MASTER ] && c=$((c + 1))
	done
	echo "$c"
}

now() { date +%s%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 <= b + 0) }'; }

# wait_state NODE VHID STATE TIMEOUT_S: poll every 50 ms; 0 when reached in time
wait_state() {
	wait_states "$4" "$1:$2:$3"
}
# wait_states TIMEOUT_S NODE:VHID:STATE...: all of them at the same time
wait_states() {
	local deadline c node vhid want all
	deadline=$(($(now) + ${1%.*} * 1000000000))
	shift
	while :; do
		all=1
		for c in "$@"; do
			IFS=: read -r node vhid want <<<"$c"
			if [ "$(state_of "$node" "$vhid")" != "$want" ]; then
				all=0
				break
			fi
		done
		[ $all = 1 ] && return 0
		[ "$(now)" -ge "$deadline" ] && return 1
		sleep 0.05
	done
}
states() { # a one-line summary for messages
	local n v out=
	for n in fw1 fw2; do
		for v in 1 2; do out="$out $n/vhid$v=$(state_of "$n" "$v")"; done
	done
	echo "${out# }"
}

# ping_gap_ms FILE [INTERVAL_MS]: "sent received lost gap_ms dups silence_ms":
# gap_ms = longest run of icmp_seq without a reply, times the interval; silence_ms =
# longest time between two replies from ping -D timestamps (-1 without -D). See
# 'carplab gap': an unanswered ping sends more slowly than -i, so for long outages
# silence_ms is the real duration and gap_ms an underestimate.
ping_gap_ms() { lab gap "$1" "${2:-10}"; }

# wait_ping NODE DEST TIMEOUT_S: 0 as soon as one echo comes back
wait_ping() {
	local fam=-4
	case "$2" in *:*) fam=-6 ;; esac
	nsx "$1" ping "$fam" -n -q -c 1 -i 0.2 -w "$3" "$2" >/dev/null 2>&1
}

vip_nodes() { # vip_nodes ADDRESS: the firewalls that have it (any interface)
	local n out=
	for n in fw1 fw2; do
		if nsx "$n" ip -o addr show | awk -v a="$1" '{ split($4, p, "/"); if (p[1] == a) f = 1 } END { exit !f }'; then
			out="$out $n"
		fi
	done
	echo "${out# }"
}
iface_of() { # iface_of NODE ADDRESS: the interface that carries it
	nsx "$1" ip -o addr show | awk -v a="$2" '{ split($4, p, "/"); if (p[1] == a) { print $2; exit } }'
}
mac_of() { nsx "$1" cat "/sys/class/net/$2/address"; }
neigh_mac() { # neigh_mac NODE ADDRESS: the link-layer address in NODE's neighbour table
	nsx "$1" ip neigh show "$2" | awk '{ for (i = 1; i < NF; i++) if ($i == "lladdr") { print $(i + 1); exit } }'
}

# tcp_check PORT [DEST]: the client connects through the VIPs to a socat listener on
# the WAN host, which answers with the peer address it sees (IPv6 in brackets, in
# full); prints that address.
tcp_check() {
	local port=$1 dest=${2:-203.0.113.254} listen=TCP4-LISTEN lp _ got
	case "$dest" in *:*) listen=TCP6-LISTEN ;; esac
	# shellcheck disable=SC2016 # $SOCAT_PEERADDR is for the shell socat starts
	nsx wan timeout 10 socat -T 5 "$listen:$port,reuseaddr" SYSTEM:'echo "peer $SOCAT_PEERADDR"' &
	lp=$!
	for _ in $(seq 1 100); do
		nsx wan ss -Hltn "sport = :$port" | grep -q . && break
		sleep 0.05
	done
	got=$(nsx client timeout 5 bash -c "exec 3<>/dev/tcp/$dest/$port && cat <&3" 2>&1) || true
	wait "$lp" 2>/dev/null || true
	echo "${got#peer }"
}

# capture NODE IFACE SECONDS FILE [FILTER]: tcpdump into a pcap file
capture() {
	local node=$1 ifc=$2 secs=$3 file=$4 filter=${5:-ip proto 112 or ip6 proto 112}
	nsx "$node" timeout "$secs" tcpdump -i "$ifc" -U -s 0 -w "$file" "$filter" 2>/dev/null || true
	[ -s "$file" ] || fail "no capture file $file"
}

# ---------------------------------------------------------------------------

dump_diagnostics() {
	local n
	echo "--- diagnostics ($TEST_NAME)"
	for n in fw1 fw2; do
		if [ -r "$RUN/$n.conf" ]; then
			echo "--- $RUN/$n.conf"
			cat "$RUN/$n.conf"
		fi
		if [ -r "$RUN/$n.log" ]; then
			echo "--- $RUN/$n.log (last 80 lines)"
			tail -n 80 "$RUN/$n.log"
		fi
		if [ -S "$RUN/$n.sock" ]; then
			echo "--- $n: carpctl status -j"
			ctl "$n" status -j 2>&1 || true
		fi
		if [ -e "/run/netns/$PREFIX-$n" ]; then
			echo "--- $n: ip -br addr / link"
			nsx "$n" ip -br addr 2>&1 || true
			nsx "$n" ip -br link 2>&1 || true
		fi
	done
	if [ -e "/run/netns/$PREFIX-client" ]; then
		echo "--- client: ip neigh"
		nsx client ip neigh 2>&1 || true
	fi
}

# wrapper_errors: what valgrind (CARPD_WRAP) reported in the carpd logs of this test
# (carplab up starts them afresh); nothing when carpd ran unwrapped.
wrapper_errors() {
	local log
	for log in "$RUN"/fw1.log "$RUN"/fw2.log; do
		[ -r "$log" ] || continue
		# a carpd built with CARPD_SANITIZE reports here too
		if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$log"; then
			echo "--- $log: sanitizer"
			grep -E -A30 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$log" | head -n 60
		fi
		[ -n "$CARPD_WRAP" ] || continue
		# memcheck's error kinds; its warnings ("Warning: ...") do not count
		if grep -qE '^==[0-9]+== +(Invalid (read|write|free)|Mismatched free|Conditional jump|Use of uninitialised|Syscall param|Source and destination overlap|[0-9,]+ bytes in [0-9,]+ blocks are definitely lost)' "$log"; then
			echo "--- $log: valgrind"
			grep -E '^==[0-9]+== ' "$log" | head -n 60
		fi
	done
}

e2e_cleanup() {
	local rc=$?
	trap - EXIT
	if [ "$rc" != 0 ] && [ "$rc" != 77 ]; then dump_diagnostics >&2 || true; fi
	"$CARPLAB" down >/dev/null 2>&1 || true
	# after the stop: a leak is reported when carpd exits
	local werr
	werr=$(wrapper_errors)
	if [ -n "$werr" ]; then
		echo "$werr" >&2
		if [ "$rc" = 0 ]; then
			echo "FAIL: $TEST_NAME: valgrind or a sanitizer found errors in carpd" >&2
			rc=1
		fi
	fi
	[ -n "$TMP" ] && rm -rf "$TMP"
	exit "$rc"
}

# e2e_init [linux]: the checks every test does first; 'linux' = no Open vSwitch needed
e2e_init() {
	require_root
	require_cmds ip nft jq ping awk timeout sysctl
	[ "${1:-}" = linux ] || {
		require_cmds ethtool
		require_ovs
	}
	[ -x "$CARPD" ] || fail "carpd not built: $CARPD"
	[ -x "$CARPCTL" ] || fail "carpctl not built: $CARPCTL"
	[ -x "$CARPLAB" ] || fail "$CARPLAB missing"
	# One lab per set of names: tests from other checkouts (or a benchmark) using
	# the same lab wait here for the one that holds it, at most 20 minutes. A
	# second lab can run beside it with other names (CARPLAB_PREFIX, CARPLAB_RUN,
	# CARPLAB_*_BR: see tools/carplab).
	exec 9>"$RUN.lock"
	flock -w 1200 9 || fail "the lab is busy ($RUN.lock held for 20 minutes)"
	TMP=$(mktemp -d /tmp/carpd-e2e.XXXXXX)
	trap e2e_cleanup EXIT
	trap 'exit 1' INT TERM
	lab down >/dev/null 2>&1 || true
}

# start_pair [CONF OPTIONS]: carpd on fw1 and fw2 (same options), then waits for the
# expected roles: fw1 MASTER and fw2 BACKUP for vhid 1 and 2.
start_pair() {
	local t0
	t0=$(now)
	lab start fw1 "$@" >/dev/null
	lab start fw2 "$@" >/dev/null
	wait_states 10 fw1:1:MASTER fw1:2:MASTER fw2:1:BACKUP fw2:2:BACKUP ||
		fail "after 10 s, expected fw1 MASTER and fw2 BACKUP: $(states)"
	note "fw1 MASTER and fw2 BACKUP for vhid 1 and 2, $(elapsed "$t0") s after the start"
}

# ---------------------------------------------------------------------------
# Scenarios shared by several tests.

# The steady state: one MASTER per vhid, VIPs on fw1 only with the virtual MACs,
# the client reaches the WAN host through the VIPs (ICMP, and TCP through the SNAT).
scenario_basic() {
	local v ifc mac peer
	for v in 1 2; do
		[ "$(count_masters "$v")" = 1 ] || fail "vhid $v: $(count_masters "$v") MASTERs ($(states))"
	done
	[ "$(state_of fw1 1)/$(state_of fw1 2)/$(state_of fw2 1)/$(state_of fw2 2)" = MASTER/MASTER/BACKUP/BACKUP ] ||
		fail "roles: $(states)"
	ok "exactly one MASTER per vhid: fw1 (advskew 0) MASTER, fw2 (advskew 100) BACKUP"

	[ "$(vip_nodes 198.51.100.1)" = fw1 ] || fail "198.51.100.1 is on '$(vip_nodes 198.51.100.1)', want fw1 only"
	[ "$(vip_nodes 203.0.113.1)" = fw1 ] || fail "203.0.113.1 is on '$(vip_nodes 203.0.113.1)', want fw1 only"
	ifc=$(iface_of fw1 198.51.100.1)
	mac=$(mac_of fw1 "$ifc")
	[ "$mac" = "$VMAC1" ] || fail "198.51.100.1 is on $ifc with MAC $mac, want $VMAC1"
	ifc=$(iface_of fw1 203.0.113.1)
	mac=$(mac_of fw1 "$ifc")
	[ "$mac" = "$VMAC2" ] || fail "203.0.113.1 is on $ifc with MAC $mac, want $VMAC2"
	ok "the VIPs are on fw1 only, on interfaces with the virtual MACs"

	nsx client ping -n -q -c 5 -i 0.1 -W 1 203.0.113.254 >"$TMP/basic-ping.txt" ||
		fail "client -> 203.0.113.254 through the VIP: $(tail -n 2 "$TMP/basic-ping.txt")"
	mac=$(neigh_mac client 198.51.100.1)
	[ "$mac" = "$VMAC1" ] || fail "client's neighbour 198.51.100.1 is '$mac', want $VMAC1"
	mac=$(neigh_mac wan 203.0.113.1)
	[ "$mac" = "$VMAC2" ] || fail "WAN host's neighbour 203.0.113.1 is '$mac', want $VMAC2"
	ok "client pings the WAN host through the VIP; neighbours: 198.51.100.1 at $VMAC1, 203.0.113.1 at $VMAC2"

	if command -v socat >/dev/null 2>&1; then
		peer=$(tcp_check 8080)
		[ "$peer" = 203.0.113.1 ] || fail "TCP through the SNAT: the WAN host saw '$peer', want 203.0.113.1"
		ok "TCP client -> WAN host, SNATed to the WAN VIP ($peer)"
	else
		note "socat missing: TCP check left out"
	fi
}

# Power loss of fw1: kill -9 of its carpd and its links down (a killed daemon
# leaves its addresses in the kernel). fw2 must be MASTER for both vhids within
# 3 x advbase + advskew/256 + 0.5 s of the kill, and DEST reachable again.
failover_kill_fw1() {
	local dest=${1:-203.0.113.254} t0 dt
	t0=$(now)
	lab stop fw1 --kill >/dev/null
	lab links fw1 down
	wait_states 10 fw2:1:MASTER fw2:2:MASTER || fail "fw2 not MASTER for both vhids 10 s after the kill: $(states)"
	dt=$(elapsed "$t0")
	echo "takeover after $dt s (bound $KILL_BOUND s)"
	le "$dt" "$KILL_BOUND" || fail "takeover after $dt s, bound $KILL_BOUND s"
	wait_ping client "$dest" 5 || fail "client cannot reach $dest through fw2 within 5 s"
	ok "fw1 killed and cut off: fw2 MASTER for vhid 1 and 2, client -> $dest flows again"
}

# fw1 comes back (links up, carpd restarted with the same configuration file):
# it preempts, fw2 goes back to BACKUP, traffic flows.
restore_fw1() {
	local dest=${1:-203.0.113.254} t0 dt _
	lab links fw1 up
	t0=$(now)
	lab start fw1 >/dev/null
	wait_states 6 fw1:1:MASTER fw1:2:MASTER fw2:1:BACKUP fw2:2:BACKUP ||
		fail "fw1 did not take both vhids back within 6 s of its restart: $(states)"
	dt=$(elapsed "$t0")
	echo "fw1 back as MASTER (fw2 BACKUP) $dt s after its restart"
	for _ in $(seq 1 20); do
		[ "$(vip_nodes 198.51.100.1)" = fw1 ] && break
		sleep 0.05
	done
	[ "$(vip_nodes 198.51.100.1)" = fw1 ] || fail "after preemption 198.51.100.1 is on '$(vip_nodes 198.51.100.1)'"
	wait_ping client "$dest" 5 || fail "client cannot reach $dest after fw1 came back"
	ok "fw1 preempted back; traffic flows"
}

# ---------------------------------------------------------------------------
# Helpers for the fault tests (flap, random kill, backup restart, flood, soak).

transitions() { # transitions NODE: counters.transitions summed over the node's vhids
	json "$1" '[.vhids[].counters.transitions] | add'
}
carpd_alive() { # carpd_alive PID: the process exists and is not a zombie
	local st
	st=$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
cpu_ticks() { # cpu_ticks PID: utime + stime in clock ticks
	awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
# vmac_ifaces NODE: "name state addresses" of every interface with a virtual MAC
vmac_ifaces() {
	nsx "$1" ip -o link show | awk '/link\/ether 00:00:5e:00:01:/ { n = $2; sub(/:$/, "", n); sub(/@.*/, "", n); print n }' |
		while read -r i; do
			echo "$i $(nsx "$1" cat "/sys/class/net/$i/operstate") $(nsx "$1" ip -o addr show dev "$i" | awk '{ printf "%s ", $4 }')"
		done
}
# check_node_clean NODE: what a running carpd leaves in the kernel matches its state:
# per vhid exactly one virtual MAC interface vhV.PARENT; the VIP on it (and up) when
# MASTER, no VIP anywhere on the node otherwise; no other virtual MAC interface.
check_node_clean() {
	local node=$1 v st ifc n list vip
	list=$(vmac_ifaces "$node")
	n=$(grep -c . <<<"$list" || true)
	[ "$n" = 2 ] || fail "$node has $n virtual MAC interfaces, want 2: $(tr '\n' ';' <<<"$list")"
	for v in 1 2; do
		st=$(state_of "$node" "$v")
		if [ "$v" = 1 ]; then ifc=vh1.lan0 vip=198.51.100.1; else ifc=vh2.wan0 vip=203.0.113.1; fi
		grep -q "^$ifc " <<<"$list" || fail "$node has no $ifc: $(tr '\n' ';' <<<"$list")"
		if [ "$st" = MASTER ]; then
			[ "$(iface_of "$node" "$vip")" = "$ifc" ] || fail "$node is MASTER for vhid $v but $vip is on '$(iface_of "$node" "$vip")'"
		else
			[ -z "$(iface_of "$node" "$vip")" ] || fail "$node is $st for vhid $v but holds $vip on $(iface_of "$node" "$vip")"
		fi
	done
}
