#!/usr/bin/env bash
# shellcheck disable=SC2119 # e2e_init and start_pair take options, not the script's arguments
# e2e: mismatched passwords. fw2's password differs: each side drops the other's
# advertisements (counters.badauth), so both become MASTER; the log reports the
# failure, rate-limited (fewer lines than bad packets).
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
e2e_init
lab up >/dev/null
t0=$(now)
lab start fw1 >/dev/null
lab start fw2 --password autremotdepasse >/dev/null
wait_states 8 fw1:1:MASTER fw2:1:MASTER || fail "not both MASTER for vhid 1 after 8 s: $(states)"
echo "different passwords: both MASTER for vhid 1 after $(elapsed "$t0") s"
wait_states 3 fw1:2:MASTER fw2:2:MASTER || fail "not both MASTER for vhid 2: $(states)"

badauth_all() { # sum over both nodes and vhids
	local n s=0 b
	for n in fw1 fw2; do
		b=$(json "$n" '[.vhids[].counters.badauth] | add')
		s=$((s + b))
	done
	echo "$s"
}
authlines() { cat "$RUN/fw1.log" "$RUN/fw2.log" | grep -ciE 'auth|hmac' || true; }

deadline=$(($(now) + 3000000000))
while :; do
	okc=1
	for n in fw1 fw2; do
		for v in 1 2; do
			[ "$(vhid_field "$n" "$v" .counters.badauth)" -gt 0 ] || okc=0
		done
	done
	[ $okc = 1 ] && break
	[ "$(now)" -lt "$deadline" ] || fail "badauth not > 0 on every vhid of both nodes: $(for n in fw1 fw2; do json "$n" '[.vhids[] | {vhid, badauth: .counters.badauth}]'; done)"
	sleep 0.1
done
ok "counters.badauth > 0 for vhid 1 and 2 on fw1 and fw2"

l0=$(authlines)
b0=$(badauth_all)
sleep 5
l1=$(authlines)
b1=$(badauth_all)
dl=$((l1 - l0))
db=$((b1 - b0))
echo "in 5 s: $db advertisements with a bad HMAC received, $dl log lines about them ($l1 in all)"
[ "$l1" -ge 1 ] || fail "the logs never mention the authentication failure"
[ "$db" -ge 8 ] || fail "only $db bad advertisements in 5 s (want about 20)"
[ "$dl" -lt "$db" ] || fail "$dl log lines for $db bad packets: not rate-limited"
ok "authentication failures logged, rate-limited"
