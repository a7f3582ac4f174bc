#!/usr/bin/env bash
# shellcheck disable=SC2119 # e2e_init and start_pair take options, not the script's arguments
# e2e: the wire. fw2 (BACKUP) captures 3.5 s of its LAN; carpdump decodes fw1's
# advertisements: FreeBSD's format (version 2, type 1, vhid 1, advbase 1, advskew 0),
# a good checksum and HMAC with the lab's password, source MAC 00:00:5e:00:01:01,
# TTL 255, to 224.0.0.18, and a 36-byte CARP payload (IP total length 56).
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmds tcpdump
lab up >/dev/null
start_pair
pcap=$TMP/lan.pcap
capture fw2 lan0 3.5 "$pcap" "ip proto 112"
"$CARPDUMP" -r "$pcap" -j -p motdepasseCARP -a 198.51.100.1 >"$TMP/ads.json" || fail "carpdump -r failed"
jq -s '[.[] | select(.proto == "carp")]' "$TMP/ads.json" >"$TMP/carp.json" || fail "carpdump -j output is not JSON lines"
n=$(jq length "$TMP/carp.json")
echo "captured $n advertisements in 3.5 s on fw2's lan0"
[ "$n" -ge 2 ] || fail "fewer than 2 advertisements captured"
bad=$(jq -c '[.[] | select(.src != "198.51.100.2" or .dst != "224.0.0.18" or .ttl != 255
	or .ethersrc != "00:00:5e:00:01:01" or .version != 2 or .type != 1 or .vhid != 1
	or .advbase != 1 or .advskew != 0 or .cksum != "ok" or .auth != "ok")]' "$TMP/carp.json")
[ "$bad" = "[]" ] || fail "unexpected advertisements: $bad"
ok "advertisements: from 198.51.100.2 at $VMAC1 to 224.0.0.18, ttl 255, vhid 1, advbase 1, advskew 0, cksum ok, auth ok"

lens=$(tcpdump -r "$pcap" -nn -v 2>/dev/null | grep -o '(112), length [0-9]*' | awk '{ print $3 }' | sort -u | tr '\n' ' ')
echo "IP total length of the advertisements: ${lens% }"
[ "${lens% }" = 56 ] || fail "IP total length '${lens% }', want 56 (20 + a 36-byte CARP header)"
ok "CARP payload is 36 bytes (IP total length 56)"

"$CARPDUMP" -r "$pcap" -j -p wrongpassword -a 198.51.100.1 >"$TMP/bad.json" || fail "carpdump -r (wrong password) failed"
[ "$(jq -s '[.[] | select(.proto == "carp" and .auth != "bad")] | length' "$TMP/bad.json")" = 0 ] ||
	fail "with a wrong password carpdump does not say auth bad"
ok "with a wrong password carpdump says auth bad"

# Independent decoders: Debian's tshark (CARP only with decode-as) and tcpdump -T carp
# must read every advertisement carpd sent exactly as carpdump does, checksum good,
# no expert warning.
if command -v tshark >/dev/null; then
	jq -r '.[] | "\(.vhid) \(.advskew) \(.counter)"' "$TMP/carp.json" |
		while read -r v s c; do printf '%s %s %u\n' "$v" "$s" "$c"; done >"$TMP/ours.txt"
	tshark -r "$pcap" -d ip.proto==112,carp -Y carp -T fields -e carp.vhid -e carp.advskew \
		-e carp.counter -e carp.checksum.status -e _ws.expert.severity 2>/dev/null >"$TMP/tshark.txt"
	awk '{ print $1, $2, $3 }' "$TMP/tshark.txt" >"$TMP/theirs.txt"
	cmp -s "$TMP/ours.txt" "$TMP/theirs.txt" ||
		fail "tshark and carpdump disagree: $(diff "$TMP/ours.txt" "$TMP/theirs.txt" | head -5)"
	awk '$4 != 1 || $5 != "" { bad++ } END { exit bad > 0 }' "$TMP/tshark.txt" ||
		fail "tshark reports a bad checksum or an expert warning: $(head -3 "$TMP/tshark.txt")"
	ok "tshark decodes all $(wc -l <"$TMP/theirs.txt") advertisements as carpdump does, checksum good, no expert info"
fi
if tcpdump --version >/dev/null 2>&1; then
	n=$(tcpdump -r "$pcap" -T carp -nv 2>/dev/null | grep -c "CARPv2-advertise 36: vhid=1 advbase=1 advskew=0 authlen=7" || true)
	[ "$n" = "$(jq length "$TMP/carp.json")" ] || fail "tcpdump -T carp decoded $n advertisements, carpdump $(jq length "$TMP/carp.json")"
	ok "tcpdump -T carp decodes the same $n advertisements"
fi
