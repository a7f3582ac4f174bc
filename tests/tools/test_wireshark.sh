#!/usr/bin/env bash
# tools/wireshark/pfsync.lua, the Wireshark dissector, against carpdump -j on the
# same packets: the spec's pfsync vectors and packets made by proto/pfsync.c's
# writer (gen_pfsync_pcap: every action, the formats 1301/1400/1500, IPv4 and
# IPv6), malformed packets, and a thousand damaged ones. tshark's JSON is turned
# into carpdump's shape (version, len, messages with their states and items) and
# compared field by field; fields carpdump does not print are checked with
# display filters. No Lua error, no internal error, no _ws.malformed and no
# expert warning on valid packets; an expert error on every malformed one.
# Every check runs; the script fails at the end if any of them did.
# PFSYNC_LUA=FILE tests another copy of the script (to see this test catch a bug).
set -uo pipefail
: "${CARPDUMP:?}" "${CARPD_BUILD:?}" "${CARPD_SRC:?}"
GEN=$CARPD_BUILD/tests/tools/gen_pfsync_pcap
LUA=${PFSYNC_LUA:-$CARPD_SRC/tools/wireshark/pfsync.lua}

command -v tshark >/dev/null || { echo "skipped: needs tshark (apt-get install tshark)"; exit 77; }
command -v jq >/dev/null || { echo "skipped: needs jq"; exit 77; }
[ -x "$GEN" ] || { echo "FAIL: $GEN not built (cmake --build ... --target gen_pfsync_pcap)"; exit 1; }
[ -r "$LUA" ] || { echo "FAIL: $LUA missing"; exit 1; }

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
# no personal plugins (an installed copy of pfsync.lua would register twice)
# and no personal preferences
export HOME=$T/home XDG_CONFIG_HOME=$T/config
mkdir -p "$HOME" "$XDG_CONFIG_HOME"
"$GEN" "$T" || { echo "FAIL: gen_pfsync_pcap could not write the packets"; exit 1; }

failures=0
mark=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() {
	[ "$failures" = "$mark" ] && echo "ok - $*"
	mark=$failures
}

# tshark's JSON of one pcap, one line per frame, in carpdump's shape:
# {frame, pfsync: {version, len, messages} | null, experts: [{name, severity}],
#  lua: bool (a Lua error), malformed: bool}
cat >"$T/norm.jq" <<'EOF'
def arr: if . == null then [] elif type == "array" then . else [.] end;
def hex: ascii_downcase | ltrimstr("0x") | explode
	| reduce .[] as $c (0; . * 16 + (if $c >= 97 then $c - 87 else $c - 48 end));
def num: if type == "string" then (if startswith("0x") then hex else (try tonumber catch .) end) else . end;
def named($names): num as $v | ($names[$v | tostring] // $v);
def af: named({"2": "inet", "28": "inet6"});
def actions: ["CLR", "INS_1301", "INS_ACK", "UPD_1301", "UPD_C", "UPD_REQ", "DEL", "DEL_C",
	"INS_F", "DEL_F", "BUS", "TDB", "EOF", "INS_1400", "UPD_1400", "INS_1500", "UPD_1500"];
# an address: whichever of the three per-family fields is there
def addr($o; $f):
	if $o[$f] != null then $o[$f]
	elif $o[$f + "_v6"] != null then $o[$f + "_v6"]
	elif $o[$f + "_raw"] != null then $o[$f + "_raw"] | gsub(":"; "")
	else null end;
def key($p): .[$p] as $k
	| {addr: [addr($k; $p + ".addr0"), addr($k; $p + ".addr1")],
	   port: [($k[$p + ".port0"] | num), ($k[$p + ".port1"] | num)]};
def peer($p): .[$p] as $q | ($q | with_entries({key, value: (.value | num)})) as $n
	| {state: $n[$p + ".state"], wscale: $n[$p + ".wscale"], seqlo: $n[$p + ".seqlo"],
	   seqhi: $n[$p + ".seqhi"], seqdiff: $n[$p + ".seqdiff"], max_win: $n[$p + ".max_win"],
	   mss: $n[$p + ".mss"]}
	+ ({flag: $n[$p + ".scrub.flag"], flags: $n[$p + ".scrub.flags"],
	    ttl: $n[$p + ".scrub.ttl"], ts_mod: $n[$p + ".scrub.ts_mod"]}
	   | if [.[]] | any(. != 0) then {scrub: .} else {} end);
def state: . as $s | ("pfsync.state.") as $p
	| def f($n): $s[$p + $n];
	{id: f("id"), creatorid: f("creatorid"), af: (f("af") | af), proto: (f("proto") | num),
	 direction: (f("direction") | named({"1": "in", "2": "out"})), ifname: f("ifname"),
	 timeout: (f("timeout") | num), expire: (f("expire") | num),
	 wire: key($p + "wire"),
	 stack: (key($p + "stack")
		+ if f("stack_af") != null and
		     (f("stack_af") != f("af") or f("stack_proto") != f("proto"))
		  then {af: (f("stack_af") | af), proto: (f("stack_proto") | num)} else {} end),
	 src: peer($p + "src"), dst: peer($p + "dst"),
	 version: (f("version") | num), state_flags: (f("state_flags") | num),
	 log: (f("log") | num), creation: (f("creation") | num),
	 packets: [(f("packets0") | num), (f("packets1") | num)],
	 bytes: [(f("bytes0") | num), (f("bytes1") | num)],
	 rule: (f("rule") | num), anchor: (f("anchor") | num), nat_rule: (f("nat_rule") | num),
	 rtableid: (f("rtableid") | num), rt: (f("rt") | num)}
	+ if (f("rt") | num) != 0
	  then {rt_addr: addr($s; $p + "rt_addr"), rt_ifname: f("rt_ifname")} else {} end
	+ if (f("tagname") // "") != "" then {tagname: f("tagname")} else {} end
	+ if (f("orig_ifname") // "") != "" then {orig_ifname: f("orig_ifname")} else {} end;
def upd_c: . as $u
	| {id: .["pfsync.upd_c.id"], creatorid: .["pfsync.upd_c.creatorid"],
	   timeout: (.["pfsync.upd_c.timeout"] | num), expire: (.["pfsync.upd_c.expire"] | num),
	   src: peer("pfsync.upd_c.src"), dst: peer("pfsync.upd_c.dst")};
def ref($p): {id: .[$p + ".id"], creatorid: .[$p + ".creatorid"]};
def bus: {creatorid: .["pfsync.bus.creatorid"],
	  status: (.["pfsync.bus.status"] | named({"1": "start", "2": "end"})),
	  endtime: (.["pfsync.bus.endtime"] | num)};
def clr: {ifname: .["pfsync.clr.ifname"], creatorid: .["pfsync.clr.creatorid"]};
def message: (.["pfsync.action"] | num) as $a
	| {action: (actions[$a] // "UNKNOWN"), count: (.["pfsync.count"] | num)}
	+ if $a == 1 or $a == 3 or ($a >= 13 and $a <= 16)
	  then {states: (.["pfsync.state"] | arr | map(state))}
	  elif $a == 4 then {items: (.["pfsync.upd_c"] | arr | map(upd_c))}
	  elif $a == 2 then {items: (.["pfsync.ins_ack"] | arr | map(ref("pfsync.ins_ack")))}
	  elif $a == 5 then {items: (.["pfsync.upd_req"] | arr | map(ref("pfsync.upd_req")))}
	  elif $a == 7 then {items: (.["pfsync.del_c"] | arr | map(ref("pfsync.del_c")))}
	  elif $a == 10 then {items: (.["pfsync.bus"] | arr | map(bus))}
	  elif $a == 0 then {items: (.["pfsync.clr"] | arr | map(clr))}
	  else {} end;
.[] | ._source.layers as $l
| {frame: ($l.frame["frame.number"] | tonumber),
   pfsync: ($l.pfsync | if . == null or .["pfsync.version"] == null then null else
	{version: (.["pfsync.version"] | num), len: (.["pfsync.len"] | num),
	 messages: (.["pfsync.subheader"] | arr | map(message))} end),
   experts: [$l | .. | objects | select(has("_ws.expert")) | .["_ws.expert"] | arr[]
	| {name: (keys_unsorted | map(select(startswith("_ws.expert.") | not)) | first),
	   severity: (.["_ws.expert.severity"] | tonumber),
	   message: .["_ws.expert.message"]}],
   lua: ([$l | .. | objects | select(has("_ws.lua.error"))] | length > 0),
   malformed: ([$l | .. | objects | select(has("_ws.malformed"))] | length > 0)}
EOF
PI_WARN=6291456 PI_ERROR=8388608

# shark NAME: tshark on $T/NAME.pcap -> $T/NAME.shark (normalised lines), and
# carpdump -> $T/NAME.dump; both must run cleanly.
shark() {
	local name=$1 rc
	# a dissector that loops forever must fail here, not hang until ctest's timeout
	timeout -s KILL 120 tshark -n -X lua_script:"$LUA" -r "$T/$name.pcap" -T json \
		--no-duplicate-keys >"$T/$name.json" 2>"$T/$name.err"
	rc=$?
	[ "$rc" = 0 ] || fail "$name: tshark exited $rc (137: killed after 120 s): $(cat "$T/$name.err")"
	if grep -v '^Running as user' "$T/$name.err" | grep -q .; then
		fail "$name: tshark wrote to stderr (a Lua error loading the script?):"
		sed 's/^/    /' "$T/$name.err" | head -n 10
	fi
	jq -c -f "$T/norm.jq" "$T/$name.json" >"$T/$name.shark" ||
		fail "$name: tshark's JSON could not be read"
	"$CARPDUMP" -j -r "$T/$name.pcap" >"$T/$name.dump" 2>"$T/$name.dump.err" ||
		fail "$name: carpdump failed: $(cat "$T/$name.dump.err")"
}

# report NAME JQ: a jq program over {s: tshark lines, d: carpdump lines} that
# prints one line per problem; any line is a failure.
report() {
	local name=$1 prog=$2 out
	out=$(jq -n -r --slurpfile s "$T/$name.shark" --slurpfile d "$T/$name.dump" "$prog") ||
		{ fail "$name: jq failed"; return; }
	if [ -n "$out" ]; then
		fail "$name: $(echo "$out" | wc -l) problem(s):"
		echo "$out" | head -n 40 | sed 's/^/    /'
	fi
}

# jq helpers for report: frames paired by number, and a field-by-field diff
PAIRS='($d | map({key: (.frame | tostring), value: .}) | from_entries) as $dm
	| def pairs: $s[] | {frame, s: ., d: $dm[.frame | tostring]};
	def diff($path; $g; $w):
		if $g == $w then empty
		elif ($g | type) == "object" and ($w | type) == "object" then
			([$g, $w] | map(keys) | add | unique)[] as $k | diff($path + "." + $k; $g[$k]; $w[$k])
		elif ($g | type) == "array" and ($w | type) == "array" and ($g | length) == ($w | length) then
			range($g | length) as $i | diff($path + "[\($i)]"; $g[$i]; $w[$i])
		else "\($path): tshark \($g | tojson), carpdump \($w | tojson)" end;
	def errors: [.experts[] | select(.severity >= '$PI_ERROR')];
	def carp_error: has("error");
	def carp_part: {version, len, messages};'

# ---- valid packets -------------------------------------------------------------------

shark valid
n=$(wc -l <"$T/valid.shark")
[ "$n" -ge 19 ] && [ "$n" = "$(wc -l <"$T/valid.dump")" ] ||
	fail "valid: $n frames from tshark, $(wc -l <"$T/valid.dump") from carpdump"
report valid "$PAIRS"'
	pairs | select(.s.pfsync == null) | "frame \(.frame): no pfsync layer (script not loaded?)"'
ok "valid: tshark loads the dissector and decodes every frame as pfsync"

report valid "$PAIRS"'
	pairs | select(.s.pfsync != null) | .frame as $f
	| if .d == null then "frame \($f): not in carpdump output"
	  else diff("frame \($f)"; .s.pfsync; .d | carp_part) end'
ok "valid: every field equals carpdump -j (header, actions, counts, states, small messages)"

report valid "$PAIRS"'
	pairs | .frame as $f
	| (select(.s.lua) | "frame \($f): Lua error"),
	  (select(.s.malformed) | "frame \($f): _ws.malformed"),
	  (.s.experts[] | select(.severity >= '$PI_WARN') | "frame \($f): expert \(.name): \(.message)"),
	  (select(.d | carp_error) | "frame \($f): carpdump reports \(.d.error)")'
ok "valid: no Lua error, no _ws.malformed, no expert warning or error"

report valid '[$s[].pfsync.messages[]?.action] | unique as $have
	| ["CLR", "INS_1301", "INS_ACK", "UPD_1301", "UPD_C", "UPD_REQ", "DEL_C", "BUS", "TDB", "EOF",
	   "INS_1400", "UPD_1400", "INS_1500", "UPD_1500"] - $have | .[] | "no \(.) message decoded"'
report valid '[$s[].pfsync.messages[]?.states[]?.version] | unique
	| if . == [1301, 1400, 1500] then empty else "state formats decoded: \(.)" end'
report valid '$s | map(select(.pfsync != null)) | length as $n
	| [$d[] | select(.src | test(":"))] | length as $v6
	| if $v6 > 0 and $v6 < $n then empty else "IPv4 and IPv6 frames: \($v6) of \($n) IPv6" end'
ok "valid: every action FreeBSD accepts, the three state formats, IPv4 and IPv6"

# frames FILTER: the frame numbers tshark shows for a display filter
frames() {
	tshark -n -X lua_script:"$LUA" -r "$T/valid.pcap" -Y "$1" -T fields -e frame.number 2>/dev/null |
		tr '\n' ' ' | sed 's/ $//'
}
# expect_frames FILTER WANT
expect_frames() {
	local got
	got=$(frames "$1")
	[ "$got" = "$2" ] || fail "filter '$1': frames '$got', want '$2'"
}
# expect_frames_jq FILTER JQ: WANT from carpdump's JSON (JQ selects records)
expect_frames_jq() {
	expect_frames "$1" "$(jq -r "select($2) | .frame" "$T/valid.dump" | tr '\n' ' ' | sed 's/ $//')"
}
expect_frames_jq 'pfsync.format == 1301' '[.messages[]?.states[]?.version] | index(1301)'
expect_frames_jq 'pfsync.format == 1400' '[.messages[]?.states[]?.version] | index(1400)'
expect_frames_jq 'pfsync.format == 1500' '[.messages[]?.states[]?.version] | index(1500)'
expect_frames_jq 'pfsync.state.wire.addr1 == 203.0.113.5' \
	'[.messages[]?.states[]?.wire.addr[1]] | index("203.0.113.5")'
expect_frames_jq 'pfsync.state.stack.addr0_v6 == 2001:db8::1:1' \
	'[.messages[]?.states[]?.stack.addr[0]] | index("2001:db8::1:1")'
expect_frames_jq 'pfsync.state.id == 0x1234' '[.messages[]?.states[]?.id] | index("0x0000000000001234")'
expect_frames_jq 'pfsync.del_c.creatorid == 0x0a0b0c0d' \
	'[.messages[]? | select(.action == "DEL_C") | .items[].creatorid] | index("0x0a0b0c0d")'
expect_frames_jq 'pfsync.bus.status == 2' '[.messages[]?.items[]?.status] | index("end")'
expect_frames_jq 'pfsync.action == 11' '[.messages[]?.action] | index("TDB")'
expect_frames_jq 'ipv6 && pfsync.count == 119' '(.src | test(":")) and ([.messages[]?.count] | index(119))'
expect_frames_jq 'pfsync.upd_req.bulk == 1' \
	'[.messages[]? | select(.action == "UPD_REQ") | .items[] | select(.id == "0x0000000000000000" and .creatorid == "0x00000000")] | length > 0'
# what carpdump does not print: the 1400/1500 tails and the rest, from gen_pfsync_pcap.c's busy_state()
busy='pfsync.state.qid == 11 && pfsync.state.pqid == 12 && pfsync.state.dnpipe == 13
	&& pfsync.state.dnrpipe == 14 && pfsync.state.min_ttl == 15 && pfsync.state.set_tos == 0x10
	&& pfsync.state.max_mss == 1380 && pfsync.state.set_prio0 == 3 && pfsync.state.set_prio1 == 5
	&& pfsync.state.rtableid == 2 && pfsync.state.rt_ifname == "igb1"'
expect_frames_jq "$busy" '[.messages[]?.states[]? | select(.version >= 1400 and .rtableid == 2)] | length > 0'
expect_frames_jq 'pfsync.state.sync_flags == 4 && pfsync.state.updates == 0' \
	'[.messages[]?.states[]? | select(.version <= 1400 and .creatorid == "0xdeadbeef")] | length > 0'
expect_frames_jq 'pfsync.state.stack_af == 2 && pfsync.state.rt_af == 2 && pfsync.state.stack_proto == 1' \
	'[.messages[]?.states[]? | select(.stack.af == "inet")] | length > 0'
expect_frames_jq 'pfsync.upd_c.src.scrub.ts_mod == 0x01020304 && pfsync.upd_c.dst.wscale == 0x85' \
	'[.messages[]? | select(.action == "UPD_C") | .items[]] | length > 1'
expect_frames_jq 'pfsync.clr.ifname == "igb1" && pfsync.clr.ifname == ""' \
	'[.messages[]?.items[]?.ifname] | index("igb1")'
expect_frames_jq 'pfsync.cksum == d4:1d:8c:d9:8f:00:b2:04:e9:80:09:98:ec:f8:42:7e' \
	'[.messages[]?.items[]?.ifname] | index("igb1")'
expect_frames 'pfsync.tdb.spi == 0x1001 && pfsync.tdb.rpl == 42 && pfsync.tdb.cur_bytes == 128 &&
	pfsync.tdb.sproto == 50 && pfsync.tdb.updates == 1' "$(frames 'pfsync.action == 11')"
info=$(tshark -n -X lua_script:"$LUA" -r "$T/valid.pcap" -Y 'frame.number == 1' -T fields \
	-e _ws.col.Protocol -e _ws.col.Info 2>/dev/null)
[ "$info" = "$(printf 'pfsync\tpfsync INS_1400 x1, DEL_C x1, EOF [format 1400]')" ] ||
	fail "frame 1's columns: '$info'"
ok "valid: display filters on fields carpdump does not print, format detection, columns"

# ---- malformed packets ---------------------------------------------------------------

shark bad
# the expert each frame of bad.pcap must carry (gen_pfsync_pcap.c, bad_packets());
# frame 13, truncated on the wire, is IPv6 and Wireshark's IPv6 dissector hands
# on only the bytes that are there, so the pfsync header's len no longer fits
cat >"$T/bad.want" <<'EOF'
["pfsync.short", "pfsync.badver", "pfsync.badlen", "pfsync.badlen", "pfsync.overrun",
 "pfsync.badact", "pfsync.badact", "pfsync.badact", "pfsync.badact", "pfsync.badeof",
 "pfsync.overrun", "pfsync.truncated", "pfsync.badlen", "pfsync.overrun", "pfsync.overrun"]
EOF
report bad "$PAIRS"'
	($s | length) as $n | if $n != 15 then "\($n) frames, want 15" else empty end,
	(pairs | .frame as $f
	| (select(.s.lua) | "frame \($f): Lua error"),
	  (select(.s.pfsync == null and (.s.experts | length) == 0) | "frame \($f): no pfsync layer"),
	  (select(.s | errors | length == 0) | "frame \($f): no expert error"),
	  (select(.s | errors | any(.name == "pfsync.internal")) | "frame \($f): dissector bug: \(.s.experts)"),
	  (select(.d | carp_error | not) | "frame \($f): carpdump reports no error"))'
out=$(jq -n -r --slurpfile s "$T/bad.shark" --slurpfile want "$T/bad.want" '
	$s[] | .frame as $f | select(.experts | map(.name) | index($want[0][$f - 1]) | not)
	| "frame \($f): no \($want[0][$f - 1]) expert, got \(.experts | map(.name))"')
[ -z "$out" ] || fail "bad: $out"
report bad "$PAIRS"'
	pairs | select(.d.messages != null) | .frame as $f
	| (.d.messages | length) as $n
	| diff("frame \($f)"; .s.pfsync | .messages |= .[:$n]; .d | carp_part)'
ok "bad: every malformed packet has an expert error of the right kind, and so has carpdump; what comes before the error is decoded alike"

# ---- well-formed packets FreeBSD would not take whole ----------------------------------

shark warn
# the pfsync experts each frame of warn.pcap must carry, and nothing else at
# warning level or above (gen_pfsync_pcap.c, warn_packets())
cat >"$T/warn.want" <<'EOF'
[["pfsync.badval"], ["pfsync.badval"], ["pfsync.badval"], ["pfsync.ttl"], ["pfsync.ttl"],
 ["pfsync.noeof", "pfsync.trailing"]]
EOF
out=$(jq -n -r --slurpfile s "$T/warn.shark" --slurpfile want "$T/warn.want" '
	($s | length) as $n | if $n != ($want[0] | length) then "\($n) frames" else empty end,
	($s[] | .frame as $f | $want[0][$f - 1] as $w
	 | [.experts[] | select(.name | startswith("pfsync."))] as $p
	 | ($w - ($p | map(.name)) | .[] | "frame \($f): no \(.) expert, got \($p | map(.name))"),
	   ($p[] | select(.severity >= '$PI_WARN' and (.name as $x | $w | index($x) | not))
	    | "frame \($f): unexpected \(.name): \(.message)"),
	   (.experts[] | select(.severity >= '$PI_ERROR') | "frame \($f): error \(.name): \(.message)"),
	   (select(.lua or .malformed) | "frame \($f): Lua error or _ws.malformed"))')
[ -z "$out" ] || fail "warn: $out"
report warn "$PAIRS"'
	pairs | .frame as $f
	| (select(.d | carp_error) | "frame \($f): carpdump reports \(.d.error)"),
	  diff("frame \($f)"; .s.pfsync; .d | carp_part)'
ok "warn: values FreeBSD rejects, TTL not 255, no EOF: warnings and notes, no error; the same fields as carpdump"

# ---- damaged packets -----------------------------------------------------------------

shark fuzz
report fuzz "$PAIRS"'
	($s | length) as $n | if $n != ($d | length) then "\($n) frames from tshark, \($d | length) from carpdump" else empty end,
	(pairs | .frame as $f
	| (select(.s.lua) | "frame \($f): Lua error"),
	  (select(.s | errors | any(.name == "pfsync.internal")) | "frame \($f): dissector bug: \(.s.experts)"),
	  (select(.d == null) | "frame \($f): not in carpdump output"),
	  (select(.d != null and ((.s | errors | length > 0) != (.d | carp_error)))
	   | "frame \($f): tshark errors \(.s | errors | map(.name)), carpdump error \(.d.error)"),
	  (select(.d != null and (.d | carp_error | not) and .s.malformed) | "frame \($f): _ws.malformed"),
	  (select(.d.messages != null) | (.d.messages | length) as $n
	   | if .d | carp_error then diff("frame \($f)"; .s.pfsync | .messages |= .[:$n]; .d | carp_part)
	     else diff("frame \($f)"; .s.pfsync; .d | carp_part) end))'
ok "fuzz: $(wc -l <"$T/fuzz.shark") damaged packets: no Lua error, errors exactly where carpdump sees them, the same fields"

if [ "$failures" != 0 ]; then
	echo "$failures check(s) failed"
	exit 1
fi
echo "all checks passed"
