#!/usr/bin/env bash
# shellcheck disable=SC2119 # e2e_init and start_pair take options, not the script's arguments
# e2e: SIGHUP reload. fw2's vhid 2 advskew changes 100 -> 150: vhid 2 takes the new
# skew, vhid 1 is not disturbed (same state, same last_transition, counters go on)
# and the daemon keeps its pid. An invalid file is refused: the old configuration
# stays in force and carpd keeps running.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
e2e_init
lab up >/dev/null
start_pair
sleep 1.2 # a few advertisements on the counters
conf=$RUN/fw2.conf
pid=$(lab pid fw2)
lt1=$(vhid_field fw2 1 .last_transition)
st1=$(vhid_field fw2 1 .state)
ip1=$(vhid_field fw2 1 .counters.ipackets)
[ "$lt1" != null ] || fail "status -j has no last_transition for vhid 1"
[ "$(vhid_field fw2 2 .advskew)" = 100 ] || fail "fw2 vhid 2 advskew is $(vhid_field fw2 2 .advskew), want 100"

cp "$conf" "$TMP/fw2.conf.orig"
sed -i '/^vhid 2 on wan0/,/^}/ s/^\([[:space:]]*advskew\) 100$/\1 150/' "$conf"
grep -A6 '^vhid 2 on wan0' "$conf" | grep -q 'advskew 150' || fail "could not edit $conf"
grep -A6 '^vhid 1 on lan0' "$conf" | grep -q 'advskew 100' || fail "edited the wrong block of $conf"
t0=$(now)
lab reload fw2
deadline=$(($(now) + 3000000000))
until [ "$(vhid_field fw2 2 .advskew 2>/dev/null)" = 150 ]; do
	[ "$(now)" -lt "$deadline" ] || fail "vhid 2 advskew still $(vhid_field fw2 2 .advskew) 3 s after SIGHUP"
	sleep 0.05
done
echo "SIGHUP: vhid 2 advskew 100 -> 150 after $(elapsed "$t0") s"
sleep 1.5
[ "$(lab pid fw2)" = "$pid" ] || fail "carpd was restarted (pid $pid -> $(lab pid fw2 || echo none))"
lt2=$(vhid_field fw2 1 .last_transition)
st2=$(vhid_field fw2 1 .state)
ip2=$(vhid_field fw2 1 .counters.ipackets)
echo "vhid 1 on fw2: state $st1 -> $st2, last_transition '$lt1' -> '$lt2', ipackets $ip1 -> $ip2"
[ "$st2" = "$st1" ] || fail "vhid 1 state changed on reload"
[ "$lt2" = "$lt1" ] || fail "vhid 1 last_transition changed on reload"
[ "$ip2" -gt "$ip1" ] || fail "vhid 1 counters did not go on (ipackets $ip1 -> $ip2)"
[ "$(state_of fw2 2)" = BACKUP ] || fail "fw2 vhid 2 is $(state_of fw2 2) after the reload, want BACKUP (150 > 0)"
[ "$(state_of fw1 1)/$(state_of fw1 2)" = MASTER/MASTER ] || fail "fw1 disturbed by fw2's reload: $(states)"
ok "reload: vhid 2 takes the new advskew, vhid 1 untouched"

cp "$conf" "$TMP/fw2.conf.good"
lines0=$(wc -l <"$RUN/fw2.log")
{
	cat "$TMP/fw2.conf.good"
	echo "vhid 3 on lan0 {"
	echo "    advskew 999"
	echo "    bogus-statement yes"
} >"$conf"
lab reload fw2
sleep 1
pid2=$(lab pid fw2) || fail "carpd on fw2 died on an invalid file at SIGHUP"
[ "$pid2" = "$pid" ] || fail "carpd on fw2 was restarted"
j=$(ctl fw2 status -j) || fail "carpctl status failed after an invalid reload"
[ "$(jq '.vhids | length' <<<"$j")" = 2 ] || fail "vhids after an invalid reload: $(jq -c '[.vhids[].vhid]' <<<"$j")"
[ "$(jq -r '.vhids[] | select(.vhid == 2) | .advskew' <<<"$j")" = 150 ] || fail "vhid 2 advskew changed by an invalid file"
[ "$(jq -r '.vhids[] | select(.vhid == 1) | .last_transition' <<<"$j")" = "$lt1" ] || fail "vhid 1 disturbed by an invalid file"
[ "$(state_of fw2 1)/$(state_of fw2 2)" = BACKUP/BACKUP ] || fail "fw2 states after an invalid reload: $(states)"
echo "invalid file at SIGHUP: refused; carpd said:"
tail -n +"$((lines0 + 1))" "$RUN/fw2.log" | head -n 5 | sed 's/^/    /'
ok "an invalid file is refused, the old configuration stays"
cp "$TMP/fw2.conf.orig" "$conf"
