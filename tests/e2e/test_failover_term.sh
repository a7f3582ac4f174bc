#!/usr/bin/env bash
# shellcheck disable=SC2119 # e2e_init and start_pair take options, not the script's arguments
# e2e: a planned stop. The master fw1 gets SIGTERM while the client pings the WAN
# host every 10 ms: carpd pushes its pending pfsync updates, bows out (the backup
# takes over at once), keeps forwarding until the new MASTER advertises (+50 ms for
# what is in flight), then removes its addresses: the longest gap stays within
# 50 ms (issue 7's target; usually nothing is lost at all).
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
e2e_init
lab up >/dev/null
start_pair
wait_ping client 203.0.113.254 3 || fail "no traffic through the VIPs before the stop"

nsx client ping -D -n -i 0.01 -W 1 -c 400 203.0.113.254 >"$TMP/ping.txt" 2>&1 &
pp=$!
# The stop is aimed 60 ms before fw1's last round of gratuitous ARP (2 s after it
# took over), so that the round falls inside the handover: a master that sent it
# there taught the switch its port for the virtual MAC again after the new MASTER
# had announced itself, and once it removed its macvlan the clients' frames went
# nowhere until the new MASTER sent from that MAC again (a gap of 300 to 940 ms,
# seen when a stop happened to land there). The wait is timed with the shell's
# own clock (no process per step) and the signal sent from here ('carplab stop'
# takes 0.2 s to start on a slow VM).
pid1=$(lab pid fw1)
# what fw1 announces from here on: gratuitous ARP (sender address = target address)
# that it sends itself (-Q out); there must be none once it has handed over
for ifc in lan0 wan0; do
	nsx fw1 timeout 20 tcpdump -p -Q out -n -U -i "$ifc" -w "$TMP/garp-$ifc.pcap" \
		'arp and arp[14:4] = arp[24:4]' 2>"$TMP/garp-$ifc.err" &
done
for _ in $(seq 1 100); do
	grep -q listening "$TMP/garp-lan0.err" && grep -q listening "$TMP/garp-wan0.err" && break
	sleep 0.05
done
took=$(awk '/1@lan0: BACKUP -> MASTER/ { print $1; exit }' "$RUN/fw1.log")
aim_us=$(($(date -d "$took" +%s%6N) + 1940000))
late_ms=$(((${EPOCHREALTIME/./} - aim_us) / 1000))
if [ "$late_ms" -le -300 ]; then
	for _ in $(seq 1 400); do
		[ $((aim_us - ${EPOCHREALTIME/./})) -le 15000 ] && break
		sleep 0.01
	done
	while [ "${EPOCHREALTIME/./}" -lt "$aim_us" ]; do :; done
	note "SIGTERM 1.94 s after fw1 took over vhid 1 (at $took), 60 ms before its last gratuitous ARP"
else
	# too late to aim (a slow start): the stop is still checked, not that race
	note "too late to aim the stop at fw1's last gratuitous ARP (by $late_ms ms); SIGTERM in 1.5 s"
	sleep 1.5
fi
kill -TERM "$pid1"
for _ in $(seq 1 100); do kill -0 "$pid1" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid1" 2>/dev/null && fail "carpd on fw1 still runs 10 s after SIGTERM"
wait_states 5 fw2:1:MASTER fw2:2:MASTER || fail "fw2 not MASTER for both vhids 5 s after SIGTERM: $(states)"
wait "$pp" || true
pkill -INT -f "tcpdump -p -Q out -n -U -i [lw]an0 -w $TMP/garp-" || true
wait
# times from the daemons' own logs (polling carpctl would measure the poll)
sig=$(awk '/signal 15: stopping/ { print $1; exit }' "$RUN/fw1.log")
up=$(awk '/BACKUP -> MASTER/ { t = $1 } END { print t }' "$RUN/fw2.log")
{ [ -n "$sig" ] && [ -n "$up" ]; } || fail "no 'signal 15: stopping' in fw1's log or no takeover in fw2's"
sig_s=$(date -d "$sig" +%s.%N)
dt_ms=$(awk -v a="$sig_s" -v b="$(date -d "$up" +%s.%N)" 'BEGIN { printf "%d", (b - a) * 1000 }')
read -r sent rcvd lost gap dups silence < <(ping_gap_ms "$TMP/ping.txt" 10)
echo "SIGTERM of the master: fw2 MASTER for both vhids $dt_ms ms later; ping every 10 ms: $sent sent, $rcvd received, $lost lost, $dups duplicates"
echo "longest gap $gap ms by sequence numbers (bound 50 ms); longest time without a reply $silence ms"
garps=$(for ifc in lan0 wan0; do tcpdump -n -tt -r "$TMP/garp-$ifc.pcap" 2>/dev/null; done |
	awk -v s="$sig_s" '$1 > s')
[ -z "$garps" ] || fail "fw1 sent gratuitous ARP after its SIGTERM at $sig: $garps"
ok "fw1 announced nothing after its SIGTERM"
[ "$sent" -ge 300 ] || fail "ping sent only $sent packets: $(tail -n 3 "$TMP/ping.txt")"
[ "$gap" -le 50 ] || fail "longest gap $gap ms > 50 ms"
grep -q "handover done" "$RUN/fw1.log" || fail "fw1 did not wait for the new MASTER: $(grep -m3 'signal\|handover' "$RUN/fw1.log")"
ok "planned stop: longest gap $gap ms"

[ -z "$(vip_nodes 198.51.100.1 | grep -w fw1 || true)" ] || fail "fw1 kept 198.51.100.1 after SIGTERM"
[ -z "$(vip_nodes 203.0.113.1 | grep -w fw1 || true)" ] || fail "fw1 kept 203.0.113.1 after SIGTERM"
[ "$(vip_nodes 198.51.100.1)" = fw2 ] || fail "198.51.100.1 is on '$(vip_nodes 198.51.100.1)', want fw2"
ok "fw1 removed its addresses on SIGTERM; the VIPs are on fw2"

# A MASTER with no backup to hand over to keeps its addresses for 0.5 s after the
# signal, and answers no ARP meanwhile (arp_ignore 8 on its macvlans): a reply
# there would teach the switch its port for the virtual MAC again when a new
# MASTER had just announced itself. The client forgets the VIP's MAC and pings it
# inside that half second: the echo needs an ARP answer first.
pid2=$(lab pid fw2)
kill -TERM "$pid2"
sleep 0.1
nsx client ip neigh del 198.51.100.1 dev eth0 2>/dev/null || true
if nsx client ping -n -c 1 -W 0.3 198.51.100.1 >/dev/null 2>&1; then
	fail "fw2 answered ARP for 198.51.100.1 while it was stopping"
fi
grep -q "heard no new MASTER within 0.5 s" "$RUN/fw2.log" ||
	for _ in $(seq 1 50); do grep -q "heard no new MASTER" "$RUN/fw2.log" && break; sleep 0.1; done
grep -q "heard no new MASTER within 0.5 s" "$RUN/fw2.log" || fail "fw2 did not wait for a backup: $(tail -n 3 "$RUN/fw2.log")"
ok "a stopping MASTER answered no ARP for its addresses"
