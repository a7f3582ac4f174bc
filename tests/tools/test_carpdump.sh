#!/usr/bin/env bash
# carpdump against the spec's test vectors (written by gen_pcap with proto/'s
# builders and checked byte for byte against shared/specs/carp.md section 6) and
# against the shared ucarp capture: JSON fields, HMAC checks with passwords and
# address lists, the readable explanations, skipped and malformed packets, broken
# capture files, option order, -c, link types, and tshark's opinion when it is
# installed. Every check runs; the script fails at the end if any of them did.
set -uo pipefail
: "${CARPDUMP:?}" "${CARPD_BUILD:?}"
CARPD_SHARED=${CARPD_SHARED:-${CARPD_SRC:-.}/../shared}
GEN=$CARPD_BUILD/tests/tools/gen_pcap
# CARPD_WRAP: a command line our binaries run under, split on blanks (ctest sets
# it to valgrind when built with CARPD_VALGRIND=ON). Unset: they run directly.
read -ra WRAP <<<"${CARPD_WRAP:-}"
export TZ=UTC # readable lines carry the local time of day

command -v jq >/dev/null || { echo "skipped: needs jq"; exit 77; }
command -v python3 >/dev/null || { echo "skipped: needs python3"; exit 77; }
[ -x "$GEN" ] || { echo "FAIL: $GEN not built (cmake --build ... --target gen_pcap)"; exit 1; }

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"${WRAP[@]}" "$GEN" "$T" || { echo "FAIL: gen_pcap could not write the vectors"; exit 1; }
V=$T/vectors.pcap

failures=0
mark=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
# ok MESSAGE: only if nothing failed since the previous ok
ok() {
	[ "$failures" = "$mark" ] && echo "ok - $*"
	mark=$failures
}

# frame numbers in vectors.pcap (gen_pcap.c, enum F_*)
F_TV1=1 F_TV2=2 F_UDP=3 F_TV4=4 F_BADSUM=5 F_TRUNC=6 F_VRRP3=7 F_TTL64=8 F_PFSYNC=9
F_PFSYNC_SHORT=10 F_VLAN=11 F_IPOPT=12 F_HBH=13 F_TV7=14 F_SNAP=15 F_TV3=16 F_VRRP2=17

# dump NAME ARGS...: run carpdump, keep stdout/stderr in $T/NAME.{out,err}, and
# check the exit status (0) and, with -j, that every line is JSON.
dump() {
	local name=$1 rc
	shift
	"${WRAP[@]}" "$CARPDUMP" "$@" >"$T/$name.out" 2>"$T/$name.err"
	rc=$?
	if [ "$rc" != 0 ]; then
		fail "$name: carpdump $* exited $rc: $(cat "$T/$name.err")"
		return 1
	fi
	case " $* " in
	*" -j "*)
		if ! jq -e . "$T/$name.out" >/dev/null 2>&1; then
			fail "$name: output is not JSON lines:"
			head -n 5 "$T/$name.out"
			return 1
		fi
		;;
	esac
	return 0
}

# expect NAME FRAME JQ-FILTER WANT: the filter applied to frame FRAME of NAME's
# JSON output must give WANT (compared as JSON values); on a mismatch every
# differing key is listed.
expect() {
	local name=$1 frame=$2 filter=$3 want=$4 got
	got=$(jq -c --argjson f "$frame" "select(.frame == \$f) | $filter" "$T/$name.out")
	if [ -z "$got" ]; then
		fail "$name: frame $frame missing from the output"
		return
	fi
	if jq -e -n --argjson g "$got" --argjson w "$want" '$g == $w' >/dev/null; then
		return
	fi
	fail "$name: frame $frame differs from what is expected"
	jq -r -n --argjson g "$got" --argjson w "$want" '
		if ($g | type) == "object" and ($w | type) == "object" then
			([$g, $w] | map(keys) | add | unique)[] as $k
			| select($g[$k] != $w[$k])
			| "    \($k): got \($g[$k] | tojson), want \($w[$k] | tojson)"
		else "    got \($g | tojson), want \($w | tojson)" end'
}

# ---- decoding, field by field ---------------------------------------------------

FIELDS='{proto, src, dst, ttl, ethersrc, version, type, vhid, advbase, advskew, authlen,
	 reserved, counter, cksum, auth}'

dump plain -r "$V" -j
got=$(jq -r .frame "$T/plain.out" | tr '\n' ' ')
want="1 2 4 5 6 7 8 9 10 11 12 13 14 15 16 17 "
[ "$got" = "$want" ] || fail "frames shown: got '$got', want '$want' (frame 3, UDP, must be skipped)"
[ "$(jq --argjson f $F_UDP 'select(.frame == $f)' "$T/plain.out")" = "" ] ||
	fail "the UDP frame (frame $F_UDP) was not skipped"
ok "one record per CARP/VRRP/pfsync frame, UDP skipped"

expect plain $F_TV1 "$FIELDS" '{"proto": "carp", "src": "192.0.2.202", "dst": "224.0.0.18",
	"ttl": 255, "ethersrc": "00:00:5e:00:01:01", "version": 2, "type": 1, "vhid": 1,
	"advbase": 1, "advskew": 0, "authlen": 7, "reserved": 0, "counter": "0x0000000000000001",
	"cksum": "ok", "auth": "unchecked"}'
expect plain $F_TV2 "$FIELDS" '{"proto": "carp", "src": "192.0.2.2", "dst": "224.0.0.18",
	"ttl": 255, "ethersrc": "00:00:5e:00:01:01", "version": 2, "type": 1, "vhid": 1,
	"advbase": 1, "advskew": 100, "authlen": 7, "reserved": 0, "counter": "0x1122334455667788",
	"cksum": "ok", "auth": "unchecked"}'
expect plain $F_TV4 "$FIELDS" '{"proto": "carp", "src": "fe80::2", "dst": "ff02::12",
	"ttl": 255, "ethersrc": "00:00:5e:00:01:0a", "version": 2, "type": 1, "vhid": 10,
	"advbase": 2, "advskew": 50, "authlen": 7, "reserved": 0, "counter": "0x0000000100000002",
	"cksum": "ok", "auth": "unchecked"}'
expect plain $F_BADSUM '{cksum, vhid, advskew}' '{"cksum": "bad", "vhid": 1, "advskew": 100}'
expect plain $F_TTL64 '{ttl, cksum}' '{"ttl": 64, "cksum": "ok"}'
expect plain $F_VLAN '{vlan, vhid, cksum, counter}' \
	'{"vlan": 100, "vhid": 1, "cksum": "ok", "counter": "0x0000000000000001"}'
expect plain $F_IPOPT '{src, vhid, cksum, counter}' \
	'{"src": "192.0.2.202", "vhid": 1, "cksum": "ok", "counter": "0x0000000000000001"}'
expect plain $F_HBH '{src, dst, vhid, advskew, cksum}' \
	'{"src": "fe80::2", "dst": "ff02::12", "vhid": 10, "advskew": 50, "cksum": "ok"}'
expect plain $F_TV7 '{advskew, counter, cksum}' \
	'{"advskew": 240, "counter": "0x1122334455667789", "cksum": "ok"}'
expect plain $F_TV3 '{src, vhid, counter, cksum}' \
	'{"src": "10.0.0.2", "vhid": 5, "counter": "0xfedcba9876543210", "cksum": "ok"}'
expect plain $F_TV1 '.time' '1700049601.001'
ok "CARP fields (IPv4, IPv6, VLAN, IPv4 options, IPv6 hop-by-hop, bad checksum, TTL 64)"

expect plain $F_VRRP3 '{proto, version, vrid, priority, count, interval_cs, cksum, addresses}' \
	'{"proto": "vrrp", "version": 3, "vrid": 1, "priority": 100, "count": 1,
	  "interval_cs": 100, "cksum": "ok", "addresses": ["192.0.2.1"]}'
expect plain $F_VRRP3 '[.notes[] | select(test("VRRPv3, not CARP"))] | length' 1
expect plain $F_VRRP2 '{proto, version, vrid, priority, addresses, cksum}' \
	'{"proto": "vrrp", "version": 2, "vrid": 7, "priority": 100, "addresses": ["192.0.2.7"],
	  "cksum": "ok"}'
ok "VRRPv3 (TV8) and VRRPv2 on protocol 112 are reported as VRRP, not as errors"

expect plain $F_PFSYNC '{proto, src, dst, ttl, version, len, messages}' \
	'{"proto": "pfsync", "src": "192.0.2.2", "dst": "224.0.0.240", "ttl": 255, "version": 5,
	  "len": 24, "messages": [{"action": "EOF", "count": 1}]}'
expect plain $F_PFSYNC_SHORT '{proto, src, dst, has_error: has("error")}' \
	'{"proto": "pfsync", "src": "192.0.2.2", "dst": "224.0.0.240", "has_error": true}'
ok "pfsync header and messages"

expect plain $F_TRUNC '{proto, src, dst, vhid, truncated: (.error | test("truncated"))}' \
	'{"proto": "carp", "src": "192.0.2.202", "dst": "224.0.0.18", "vhid": null,
	  "truncated": true}'
expect plain $F_SNAP '.error | test("snapshot length")' true
ok "truncated frames are reported as errors and decoding goes on"

# ---- HMAC -----------------------------------------------------------------------

dump empty -r "$V" -j -p "" -a 192.0.2.1
expect empty $F_TV1 .auth '"ok"'
expect empty $F_TTL64 .auth '"ok"'
expect empty $F_VLAN .auth '"ok"'
expect empty $F_IPOPT .auth '"ok"'
expect empty $F_TV2 .auth '"bad"'
expect empty $F_TV2 '.notes | index("auth BAD: password or address list differs") != null' true
ok "TV1: empty password (-p \"\") verifies"

dump foobar -r "$V" -j -p foobar -a 192.0.2.254
expect foobar $F_TV2 .auth '"ok"'
expect foobar $F_BADSUM '{cksum, auth}' '{"cksum": "bad", "auth": "ok"}'
expect foobar $F_TV7 .auth '"ok"'
expect foobar $F_TV1 .auth '"bad"'
dump foobar-wrong -r "$V" -j -p foobaz -a 192.0.2.254
expect foobar-wrong $F_TV2 .auth '"bad"'
dump foobar-addr -r "$V" -j -p foobar -a 192.0.2.253
expect foobar-addr $F_TV2 .auth '"bad"'
ok "TV2/TV7: foobar verifies; a wrong password or address does not"

# IPv4 and IPv6 mixed, in any order, with the suffixes an operator may paste
TV4_OK=0
for addrs in "198.51.100.10 2001:db8::10 fe80::1" "fe80::1 198.51.100.10 2001:db8::10" \
	"2001:db8::10 fe80::1 198.51.100.10" "fe80::1%lan0 2001:db8::10/64 198.51.100.10/24"; do
	args=()
	for a in $addrs; do args+=(-a "$a"); done
	dump tv4 -r "$V" -j -p pfsense "${args[@]}" || continue
	expect tv4 $F_TV4 .auth '"ok"'
	expect tv4 $F_HBH .auth '"ok"'
	TV4_OK=$((TV4_OK + 1))
done
[ "$TV4_OK" = 4 ] || fail "TV4: only $TV4_OK of 4 runs succeeded"
ok "TV4 (IPv6): verifies with its three addresses in any order"
dump tv4-missing -r "$V" -j -p pfsense -a 198.51.100.10 -a 2001:db8::10
expect tv4-missing $F_TV4 .auth '"bad"'
dump tv4-missing6 -r "$V" -j -p pfsense -a 2001:db8::10 -a fe80::1
expect tv4-missing6 $F_TV4 .auth '"bad"'
dump tv4-wrong -r "$V" -j -p pfsensE -a 198.51.100.10 -a 2001:db8::10 -a fe80::1
expect tv4-wrong $F_TV4 .auth '"bad"'
ok "TV4: a missing IPv4 or IPv6 address, or a wrong password, gives auth bad"

dump tv3 -r "$V" -j -a 10.0.0.20 -a 192.168.1.1 -p secret -a 10.0.0.3
expect tv3 $F_TV3 .auth '"ok"'
ok "TV3: three IPv4 addresses in configuration order"

# a pfSense GUI password: the key is the password without its spaces
dump gui -r "$V" -j -p "foo bar" -a 192.0.2.254
expect gui $F_TV2 .auth '"bad"'
expect gui $F_TV2 '[.notes[] | select(test("pfsense-password"))] | length' 1
ok "a pfSense GUI password is recognised and explained"

dump unchecked -r "$V" -j
n=$(jq -s '[.[] | select(.proto == "carp" and (has("error") | not)) | select(.auth != "unchecked")] |
	length' "$T/unchecked.out")
[ "$n" = 0 ] || fail "$n advertisements are not 'unchecked' without -p"
ok "without -p every advertisement says auth unchecked"

# ---- readable lines ---------------------------------------------------------------

dump text -r "$V" -p "" -a 192.0.2.1
line() { sed -n "$1p" "$T/text.out"; }
want="12:00:01.001000 192.0.2.202 > 224.0.0.18: CARP vhid 1 advbase 1 advskew 0 counter 0x0000000000000001 ttl 255 src-mac 00:00:5e:00:01:01 cksum ok auth ok"
[ "$(line 1)" = "$want" ] || fail "readable TV1 line:
    got  '$(line 1)'
    want '$want'"
[ "$(wc -l <"$T/text.out")" = "$(wc -l <"$T/plain.out")" ] ||
	fail "readable output has $(wc -l <"$T/text.out") lines, JSON $(wc -l <"$T/plain.out")"
# line numbers: frame 3 is skipped, so frame N > 3 is line N - 1
contains() { # LINE TEXT
	case "$(line "$1")" in
	*"$2"*) ;;
	*) fail "readable line $1 lacks '$2': $(line "$1")" ;;
	esac
}
contains 2 "auth bad; auth BAD: password or address list differs"
contains $((F_BADSUM - 1)) "cksum bad"
contains $((F_BADSUM - 1)) "checksum BAD: corrupt packet"
contains $((F_TTL64 - 1)) "ttl 64: FreeBSD drops multicast advertisements whose TTL is not 255"
contains $((F_TTL64 - 1)) "auth ok"
contains $((F_VRRP3 - 1)) "VRRPv3, not CARP"
contains $((F_TRUNC - 1)) "192.0.2.202 > 224.0.0.18: CARP"
contains $((F_TRUNC - 1)) "error: truncated"
contains $((F_PFSYNC - 1)) "pfsync version 5 len 24"
contains $((F_HBH - 1)) "fe80::2 > ff02::12: CARP vhid 10"
contains $((F_VLAN - 1)) "vlan 100"
ok "readable lines and their explanations"

# ---- options ----------------------------------------------------------------------

dump order1 -j -p pfsense -a fe80::1 -r "$V" -a 198.51.100.10 -a 2001:db8::10
dump order2 -a 2001:db8::10 -r "$V" -a fe80::1 -a 198.51.100.10 -p pfsense -j
dump order3 -r "$V" -p pfsense -j -a 198.51.100.10 -a 2001:db8::10 -a fe80::1
if ! cmp -s "$T/order1.out" "$T/order2.out" || ! cmp -s "$T/order1.out" "$T/order3.out"; then
	fail "option order changes the output"
	diff "$T/order1.out" "$T/order2.out" | head
	diff "$T/order1.out" "$T/order3.out" | head
fi
ok "options in any order give the same output"

dump count3 -r "$V" -c 3
[ "$(wc -l <"$T/count3.out")" = 3 ] || fail "-c 3 printed $(wc -l <"$T/count3.out") lines"
dump count1 -c 1 -j -r "$V"
[ "$(jq -r .frame "$T/count1.out" | tr '\n' ' ')" = "1 " ] || fail "-c 1: $(cat "$T/count1.out")"
ok "-c stops after COUNT packets"

usage_error() { # DESCRIPTION ARGS...
	local what=$1 rc
	shift
	"${WRAP[@]}" "$CARPDUMP" "$@" >"$T/usage.out" 2>"$T/usage.err"
	rc=$?
	if [ "$rc" != 1 ] || [ ! -s "$T/usage.err" ]; then
		fail "$what: exit $rc (want 1) with stderr '$(cat "$T/usage.err")'"
	fi
}
usage_error "no arguments"
usage_error "both -r and -i" -r "$V" -i lo
usage_error "-c 0" -r "$V" -c 0
usage_error "-c abc" -r "$V" -c abc
usage_error "a bad -a" -r "$V" -p x -a 192.0.2.300
usage_error "an unknown option" -r "$V" -z
usage_error "a stray argument" -r "$V" extra
usage_error "-p without its argument" -r "$V" -p
"${WRAP[@]}" "$CARPDUMP" -h >/dev/null || fail "-h exits non-zero"
ok "usage errors exit 1 with a message"

# ---- link types and file formats --------------------------------------------------

for f in sll sll2; do
	dump "$f" -r "$T/$f.pcap" -j -p foobar -a 192.0.2.254
	expect "$f" 1 '{src, ethersrc, vhid, advskew, cksum, auth}' '{"src": "192.0.2.2",
		"ethersrc": "00:00:5e:00:01:01", "vhid": 1, "advskew": 100, "cksum": "ok",
		"auth": "ok"}'
done
dump raw -r "$T/raw.pcap" -j -p pfsense -a 198.51.100.10 -a 2001:db8::10 -a fe80::1
expect raw 1 '{src, ethersrc, vhid, cksum}' '{"src": "192.0.2.202", "ethersrc": null,
	"vhid": 1, "cksum": "ok"}'
expect raw 2 '{src, vhid, cksum, auth}' '{"src": "fe80::2", "vhid": 10, "cksum": "ok",
	"auth": "ok"}'
ok "Linux cooked SLL and SLL2, raw IP"

if command -v editcap >/dev/null; then
	editcap -F pcapng "$V" "$T/vectors.pcapng" >/dev/null 2>&1 || fail "editcap -F pcapng failed"
	dump pcapng -r "$T/vectors.pcapng" -j
	if ! cmp -s "$T/plain.out" "$T/pcapng.out"; then
		fail "pcapng output differs from pcap's"
		diff "$T/plain.out" "$T/pcapng.out" | head
	fi
	ok "pcapng gives the same output as pcap"
else
	echo "note: editcap not installed, pcapng not tested"
fi

# ---- broken capture files ---------------------------------------------------------

# broken FILE DESCRIPTION: exit 1 (not a crash: no signal), a message on stderr
broken() {
	local file=$1 what=$2 rc
	"${WRAP[@]}" "$CARPDUMP" -r "$file" -j >"$T/broken.out" 2>"$T/broken.err"
	rc=$?
	if [ "$rc" != 1 ]; then
		fail "$what: exit $rc, want 1 ($(cat "$T/broken.err"))"
	elif ! grep -q '^carpdump: ' "$T/broken.err"; then
		fail "$what: no message on stderr"
	fi
}
size=$(stat -c %s "$V")
head -c $((size - 30)) "$V" >"$T/cut.pcap"
broken "$T/cut.pcap" "a capture cut in its last packet"
# what precedes the damage is still decoded
[ "$(wc -l <"$T/broken.out")" = 15 ] ||
	fail "cut capture: $(wc -l <"$T/broken.out") records before the error, want 15"
grep -q truncated "$T/broken.err" || fail "cut capture: message does not say truncated: $(cat "$T/broken.err")"
head -c 30 "$V" >"$T/cut-header.pcap"
broken "$T/cut-header.pcap" "a capture cut in a record header"
head -c 10 "$V" >"$T/cut-file-header.pcap"
broken "$T/cut-file-header.pcap" "a capture cut in its file header"
: >"$T/empty.pcap"
broken "$T/empty.pcap" "an empty file"
head -c 4096 /dev/urandom >"$T/random.pcap"
broken "$T/random.pcap" "random bytes"
broken "$T/does-not-exist.pcap" "a missing file"
python3 - "$V" "$T/badlen.pcap" <<'EOF'
import struct, sys
d = bytearray(open(sys.argv[1], "rb").read())
struct.pack_into("<I", d, 24 + 8, 0xfffffff0)  # first record: absurd caplen
open(sys.argv[2], "wb").write(d)
EOF
broken "$T/badlen.pcap" "a record with an absurd length"
ok "broken capture files: exit 1 with a message, no crash"

# Damaged packets inside a valid file: any byte of any frame may be anything.
python3 - "$V" "$T/fuzz" <<'EOF'
import os, random, struct, sys
src, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
d = open(src, "rb").read()
hdr, recs, off = d[:24], [], 24
while off < len(d):
    ts, us, cap, wire = struct.unpack_from("<IIII", d, off)
    recs.append((ts, us, wire, bytearray(d[off + 16:off + 16 + cap])))
    off += 16 + cap
rnd = random.Random(112)
for i in range(150):
    b = bytearray(hdr)
    for ts, us, wire, data in recs:
        data = bytearray(data)
        for _ in range(rnd.randint(1, 4)):
            data[rnd.randrange(len(data))] = rnd.randrange(256)
        if rnd.random() < 0.3:
            data = data[:rnd.randrange(len(data) + 1)]
        b += struct.pack("<IIII", ts, us, len(data), wire) + data
    open(f"{out}/{i}.pcap", "wb").write(b)
EOF
# Under CARPD_WRAP (valgrind: about half a second a run) every 15th capture only;
# all of them run in the plain and the sanitizer builds.
crashes=0 step=1 runs=0
[ -n "${CARPD_WRAP:-}" ] && step=15
for i in $(seq 0 "$step" 149); do
	f=$T/fuzz/$i.pcap
	runs=$((runs + 1))
	"${WRAP[@]}" "$CARPDUMP" -r "$f" -j -p x -a 192.0.2.1 -a 2001:db8::1 >"$T/fuzz.out" 2>/dev/null
	rc=$?
	if [ "$rc" != 0 ] || ! jq -e . "$T/fuzz.out" >/dev/null 2>&1; then
		fail "damaged packets in $f: exit $rc or bad JSON"
		crashes=$((crashes + 1))
		[ "$crashes" -ge 3 ] && break
	fi
done
ok "$runs captures of damaged packets decode without a crash, as JSON"

# ---- the ucarp capture ------------------------------------------------------------

U=$CARPD_SHARED/captures/ucarp-1.5.2-debian_vhid42_preempt-failover.pcap
README=$CARPD_SHARED/captures/README.md
if [ -r "$U" ] && [ -r "$README" ]; then
	dump ucarp -r "$U" -j -p interop-pass -a 10.88.0.100
	# the README's "Frame, source, advskew, counter (decimal)" table, as JSON
	python3 - "$README" >"$T/ucarp-want.json" <<'EOF'
import json, re, sys
rows = re.findall(r"\b(\d+)\s+\.(\d+)\s+(\d+)\s+(\d{6,})\b", open(sys.argv[1]).read())
print(json.dumps(sorted(({"frame": int(f), "src": "10.88.0." + s, "advskew": int(k),
                          "counter": "0x%016x" % int(c)} for f, s, k, c in rows),
                        key=lambda r: r["frame"])))
EOF
	jq -s -c '[.[] | select(.proto == "carp") | {frame, src, advskew, counter}]' \
		"$T/ucarp.out" >"$T/ucarp-got.json"
	if [ "$(jq length "$T/ucarp-want.json")" != 10 ]; then
		fail "could not read 10 rows from $README"
	elif ! jq -e -n --slurpfile g "$T/ucarp-got.json" --slurpfile w "$T/ucarp-want.json" \
		'$g[0] == $w[0]' >/dev/null; then
		fail "ucarp capture: frames/sources/advskews/counters differ from the README"
		echo "    got:  $(cat "$T/ucarp-got.json")"
		echo "    want: $(cat "$T/ucarp-want.json")"
	fi
	n=$(jq -s '[.[] | select(.proto == "carp")] | length' "$T/ucarp.out")
	good=$(jq -s '[.[] | select(.proto == "carp" and .auth == "ok" and .cksum == "ok" and
		.vhid == 42 and .advbase == 1 and .ttl == 255)] | length' "$T/ucarp.out")
	other=$(jq -s '[.[] | select(.proto != "carp")] | length' "$T/ucarp.out")
	[ "$n" = 10 ] || fail "ucarp capture: $n CARP packets, want 10"
	[ "$good" = 10 ] || fail "ucarp capture: $good of 10 with vhid 42, cksum ok, auth ok"
	[ "$other" = 0 ] || fail "ucarp capture: $other records that are not CARP (the ARPs must be skipped)"
	for args in "-p interop-pas -a 10.88.0.100" "-p interop-pass -a 10.88.0.101" \
		"-p interop-pass" "-p interop-pass -a 10.88.0.100 -a 10.88.0.12"; do
		# shellcheck disable=SC2086 # word splitting is the point
		dump ucarp-bad -r "$U" -j $args
		n=$(jq -s '[.[] | select(.proto == "carp" and .auth == "bad")] | length' "$T/ucarp-bad.out")
		[ "$n" = 10 ] || fail "ucarp capture with $args: $n of 10 say auth bad"
	done
	ok "ucarp capture: 10 advertisements, the README's counters, auth ok only with interop-pass + 10.88.0.100"
else
	echo "note: $U not found, ucarp capture not tested"
fi

# ---- tshark's opinion -------------------------------------------------------------

# tshark_agrees NAME PCAP: vhid, advskew and counter of every CARP frame carpdump
# decoded must be what tshark's CARP dissector says
tshark_agrees() {
	local name=$1 pcap=$2
	tshark -r "$pcap" -d ip.proto==112,carp -T fields -e frame.number -e carp.vhid \
		-e carp.advskew -e carp.counter >"$T/$name.tshark" 2>/dev/null ||
		{ fail "tshark could not read $pcap"; return; }
	python3 - "$T/$name.out" "$T/$name.tshark" <<'EOF' || fail "tshark and carpdump disagree on $pcap"
import json, sys
ours = {}
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["proto"] == "carp" and "error" not in r:
        ours[r["frame"]] = (r["vhid"], r["advskew"], int(r["counter"], 16))
theirs = {}
for l in open(sys.argv[2]):
    f = l.rstrip("\n").split("\t")
    if len(f) == 4 and f[1]:
        theirs[int(f[0])] = (int(f[1]), int(f[2]), int(f[3]))
bad = 0
for frame, v in sorted(ours.items()):
    if theirs.get(frame) != v:
        print(f"    frame {frame}: carpdump (vhid, advskew, counter) {v}, tshark {theirs.get(frame)}")
        bad += 1
if not ours:
    print("    carpdump decoded no CARP frame")
    bad += 1
print(f"    {len(ours)} frames compared")
sys.exit(1 if bad else 0)
EOF
}
if command -v tshark >/dev/null; then
	tshark_agrees plain "$V"
	[ -r "$U" ] && tshark_agrees ucarp "$U"
	ok "tshark agrees on vhid, advskew and counter"
else
	echo "note: tshark not installed, no cross-check"
fi

# ---- live capture (root, in a private network namespace) --------------------------

if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && unshare -n true 2>/dev/null; then
	cat >"$T/send.py" <<'EOF'
import socket, sys, time
# TV2's header over a raw socket: the kernel adds the IP header
carp = bytes.fromhex("2101640700018503112233445566778893e813d5534a2be8ec9ca4d4e0717b6b33839cdb")
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 255)
for i in range(int(sys.argv[1])):
    s.sendto(carp, ("127.0.0.1", 0))
    time.sleep(0.05)
EOF
	# carpdump's start (and, under CARPD_WRAP, its decoding) takes longer under valgrind
	settle=1 linger=0.5
	[ -n "${CARPD_WRAP:-}" ] && settle=5 linger=2
	# shellcheck disable=SC2016 # expanded by the inner shell
	timeout 60 unshare -n bash -c '
		ip link set lo up
		read -ra W <<<"$2"
		"${W[@]}" "$0" -i lo -c 2 -j -p foobar -a 192.0.2.254 >"$1/live.out" 2>"$1/live.err" &
		pid=$!
		sleep "$3"
		python3 "$1/send.py" 4
		wait $pid' "$CARPDUMP" "$T" "${CARPD_WRAP:-}" "$settle"
	rc=$?
	n=$(jq -s '[.[] | select(.proto == "carp" and .auth == "ok" and .ttl == 255)] | length' \
		"$T/live.out" 2>/dev/null)
	if [ "$rc" != 0 ] || [ "$n" != 2 ]; then
		fail "live capture: exit $rc, $n good records: $(cat "$T/live.out" "$T/live.err")"
	fi
	ok "live capture on lo: -c 2 stops after two advertisements, auth ok"
	# shellcheck disable=SC2016
	timeout 60 unshare -n bash -c '
		ip link set lo up
		read -ra W <<<"$2"
		"${W[@]}" "$0" -i lo >"$1/live2.out" 2>"$1/live2.err" &
		pid=$!
		sleep "$3"
		python3 "$1/send.py" 1
		sleep "$4"
		kill -INT $pid
		wait $pid' "$CARPDUMP" "$T" "${CARPD_WRAP:-}" "$settle" "$linger"
	rc=$?
	if [ "$rc" != 0 ] || ! grep -q "CARP vhid 1 advbase 1 advskew 100" "$T/live2.out"; then
		fail "live capture with SIGINT: exit $rc: $(cat "$T/live2.out" "$T/live2.err")"
	fi
	ok "live capture: a line per packet, SIGINT ends it with exit 0"
else
	echo "note: not root (or no unshare): live capture not tested"
fi

if [ "$failures" != 0 ]; then
	echo "$failures check(s) failed"
	exit 1
fi
echo "all carpdump checks passed"
