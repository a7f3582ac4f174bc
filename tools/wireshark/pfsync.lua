--[[
tools/wireshark/pfsync.lua - a Wireshark dissector for pfsync, the pf state
table synchronisation protocol of FreeBSD and pfSense (IP protocol 240,
pfsync version 5, state formats 1301, 1400 and 1500), as carpd speaks it.

Load it for one run:
    tshark -X lua_script:/usr/local/share/carpd/wireshark/pfsync.lua -r sync.pcap
    wireshark -X lua_script:.../pfsync.lua
or for good: copy it into ~/.local/lib/wireshark/plugins/ (Wireshark's
"Personal Lua Plugins" folder: Help > About > Folders, or tshark -G folders).

Display filters: pfsync, pfsync.action == 13, pfsync.state.id == 0x1234,
pfsync.state.creatorid == 0x0a0b0c0d, pfsync.state.wire.addr1 == 203.0.113.5,
pfsync.del_c.id, pfsync.bus.status == 2, pfsync.format == 1500 ...
(tshark -X lua_script:pfsync.lua -G fields | grep pfsync lists them all.)

Field values are what `carpdump -j` prints for the same packet: the C codec
in proto/pfsync.c is the reference, and tests/tools/test_wireshark.sh compares
the two field by field. Wire layout: shared/specs/pfsync.md sections 2 and 3.

Malformed packets (too short, wrong version, a header length or a message
count that does not fit, an action FreeBSD rejects, bytes after EOF) get an
expert error naming the FreeBSD counter they would bump; the dissector never
reads past what was captured and never raises a Lua error.
]]

local pfsync = Proto("pfsync", "pfsync (pf state table synchronisation)")

-- ---- constants (spec section 2.4) ------------------------------------------

local ACT = {
	CLR = 0, INS_1301 = 1, INS_ACK = 2, UPD_1301 = 3, UPD_C = 4, UPD_REQ = 5,
	DEL = 6, DEL_C = 7, INS_F = 8, DEL_F = 9, BUS = 10, TDB = 11, EOF = 12,
	INS_1400 = 13, UPD_1400 = 14, INS_1500 = 15, UPD_1500 = 16,
}
local ACTION_NAMES = {}
for name, code in pairs(ACT) do ACTION_NAMES[code] = name end

-- message size per action; -1: FreeBSD defines none, nothing after it can be found
local MSGLEN = {
	[0] = 20, [1] = 242, [2] = 12, [3] = 242, [4] = 84, [5] = 12, [6] = -1, [7] = 12,
	[8] = -1, [9] = -1, [10] = 12, [11] = 48, [12] = 0, [13] = 277, [14] = 277,
	[15] = 360, [16] = 360,
}
-- state format carried by the INS / UPD actions
local FORMAT = { [1] = 1301, [3] = 1301, [13] = 1400, [14] = 1400, [15] = 1500, [16] = 1500 }
local FORMAT_NAMES = {
	[1301] = "1301: FreeBSD <= 13 (and 14/15 'version 1301')",
	[1400] = "1400: FreeBSD 14 and later (the 14.x default)",
	[1500] = "1500: FreeBSD 15 and later",
}

local HDR_LEN, SUBHDR_LEN = 20, 4

local AF_NAMES = { [2] = "inet", [28] = "inet6" }
local DIR_NAMES = { [1] = "in", [2] = "out" }
local RT_NAMES = { [0] = "none", [1] = "fastroute", [2] = "route-to", [3] = "dup-to",
	[4] = "reply-to" }
local BUS_NAMES = { [1] = "start", [2] = "end" }
local PROTO_NAMES = { [1] = "ICMP", [6] = "TCP", [17] = "UDP", [58] = "ICMPv6",
	[132] = "SCTP" }
local PFTM_NAMES = {
	[0] = "TCP_FIRST_PACKET", [1] = "TCP_OPENING", [2] = "TCP_ESTABLISHED",
	[3] = "TCP_CLOSING", [4] = "TCP_FIN_WAIT", [5] = "TCP_CLOSED",
	[6] = "UDP_FIRST_PACKET", [7] = "UDP_SINGLE", [8] = "UDP_MULTIPLE",
	[9] = "ICMP_FIRST_PACKET", [10] = "ICMP_ERROR_REPLY", [11] = "OTHER_FIRST_PACKET",
	[12] = "OTHER_SINGLE", [13] = "OTHER_MULTIPLE", [14] = "FRAG", [15] = "INTERVAL",
	[16] = "ADAPTIVE_START", [17] = "ADAPTIVE_END", [18] = "SRC_NODE", [19] = "TS_DIFF",
	[20] = "SCTP_FIRST_PACKET", [21] = "SCTP_OPENING", [22] = "SCTP_ESTABLISHED",
	[23] = "SCTP_CLOSING", [24] = "SCTP_CLOSED",
}
local TCPS_NAMES = {
	[0] = "CLOSED", [1] = "LISTEN", [2] = "SYN_SENT", [3] = "SYN_RECEIVED",
	[4] = "ESTABLISHED", [5] = "CLOSE_WAIT", [6] = "FIN_WAIT_1", [7] = "CLOSING",
	[8] = "LAST_ACK", [9] = "FIN_WAIT_2", [10] = "TIME_WAIT", [11] = "PROXY_SRC",
	[12] = "PROXY_DST",
}
-- PFUDPS_* and PFOTHERS_*: the peer states of UDP, ICMP and other protocols
local OTHERS_NAMES = { [0] = "NO_TRAFFIC", [1] = "SINGLE", [2] = "MULTIPLE" }
local PFSTATE_FLAGS = {
	{ 0x0001, "ALLOWOPTS" }, { 0x0002, "SLOPPY" }, { 0x0004, "PFLOW" }, { 0x0008, "NOSYNC" },
	{ 0x0010, "ACK" }, { 0x0020, "NODF" }, { 0x0040, "SETTOS" }, { 0x0080, "RANDOMID" },
	{ 0x0100, "SCRUB_TCP" }, { 0x0200, "SETPRIO" }, { 0x4000, "DN_IS_PIPE" },
	{ 0x8000, "DN_IS_QUEUE" },
}
local PFTM_MAX, TCPS_MAX = 25, 12

-- ---- fields -----------------------------------------------------------------

local fields = {}
local function add_field(f)
	fields[#fields + 1] = f
	return f
end
local function u8(abbr, name, vs, b) return add_field(ProtoField.uint8(abbr, name, b or base.DEC, vs)) end
local function u16(abbr, name, vs, b) return add_field(ProtoField.uint16(abbr, name, b or base.DEC, vs)) end
local function u32(abbr, name, b) return add_field(ProtoField.uint32(abbr, name, b or base.DEC)) end
local function i32(abbr, name) return add_field(ProtoField.int32(abbr, name, base.DEC)) end
local function u64(abbr, name, b) return add_field(ProtoField.uint64(abbr, name, b or base.DEC)) end
local function str(abbr, name) return add_field(ProtoField.string(abbr, name)) end
local function bytes(abbr, name) return add_field(ProtoField.bytes(abbr, name)) end
local function none(abbr, name) return add_field(ProtoField.none(abbr, name)) end
local function ipv4(abbr, name) return add_field(ProtoField.ipv4(abbr, name)) end
local function ipv6(abbr, name) return add_field(ProtoField.ipv6(abbr, name)) end

local F = {
	version = u8("pfsync.version", "Version"),
	pad = u8("pfsync.pad", "Padding"),
	len = u16("pfsync.len", "Length"),
	cksum = bytes("pfsync.cksum", "Ruleset checksum (pfcksum)"),
	format = u16("pfsync.format", "State format (from the action codes)", FORMAT_NAMES),
	subheader = none("pfsync.subheader", "Subheader"),
	action = u8("pfsync.action", "Action", ACTION_NAMES),
	subpad = u8("pfsync.subheader.pad", "Padding"),
	count = u16("pfsync.count", "Count"),
	-- full states
	state = none("pfsync.state", "State"),
	s_version = u16("pfsync.state.version", "Format", FORMAT_NAMES),
	s_id = u64("pfsync.state.id", "ID", base.HEX),
	s_creatorid = u32("pfsync.state.creatorid", "Creator ID", base.HEX),
	s_ifname = str("pfsync.state.ifname", "Interface"),
	s_af = u8("pfsync.state.af", "Address family", AF_NAMES),
	s_proto = u8("pfsync.state.proto", "Protocol", PROTO_NAMES),
	s_stack_af = u8("pfsync.state.stack_af", "Stack key address family", AF_NAMES),
	s_stack_proto = u8("pfsync.state.stack_proto", "Stack key protocol", PROTO_NAMES),
	s_direction = u8("pfsync.state.direction", "Direction", DIR_NAMES),
	s_rt_addr = ipv4("pfsync.state.rt_addr", "Route-to address"),
	s_rt_addr_v6 = ipv6("pfsync.state.rt_addr_v6", "Route-to address"),
	s_rt_addr_raw = bytes("pfsync.state.rt_addr_raw", "Route-to address (unknown family)"),
	s_rule = i32("pfsync.state.rule", "Rule"),
	s_anchor = i32("pfsync.state.anchor", "Anchor"),
	s_nat_rule = i32("pfsync.state.nat_rule", "NAT rule"),
	s_creation = u32("pfsync.state.creation", "Age (s)"),
	s_expire = u32("pfsync.state.expire", "Expires in (s)"),
	s_packets0 = u64("pfsync.state.packets0", "Packets initiator to responder"),
	s_packets1 = u64("pfsync.state.packets1", "Packets responder to initiator"),
	s_bytes0 = u64("pfsync.state.bytes0", "Bytes initiator to responder"),
	s_bytes1 = u64("pfsync.state.bytes1", "Bytes responder to initiator"),
	s_spare = bytes("pfsync.state.spare", "Spare"),
	s_log = u8("pfsync.state.log", "Log", nil, base.HEX),
	s_state_flags = u16("pfsync.state.state_flags", "State flags", nil, base.HEX),
	s_timeout = u8("pfsync.state.timeout", "Timeout", PFTM_NAMES),
	s_sync_flags = u8("pfsync.state.sync_flags", "Sync flags", nil, base.HEX),
	s_updates = u8("pfsync.state.updates", "Updates"),
	s_qid = u16("pfsync.state.qid", "Queue ID"),
	s_pqid = u16("pfsync.state.pqid", "Priority queue ID"),
	s_dnpipe = u16("pfsync.state.dnpipe", "Dummynet pipe"),
	s_dnrpipe = u16("pfsync.state.dnrpipe", "Dummynet reverse pipe"),
	s_rtableid = i32("pfsync.state.rtableid", "Routing table"),
	s_min_ttl = u8("pfsync.state.min_ttl", "Minimum TTL"),
	s_set_tos = u8("pfsync.state.set_tos", "Set TOS", nil, base.HEX),
	s_max_mss = u16("pfsync.state.max_mss", "Maximum MSS"),
	s_set_prio0 = u8("pfsync.state.set_prio0", "Set priority"),
	s_set_prio1 = u8("pfsync.state.set_prio1", "Set priority (replies)"),
	s_rt = u8("pfsync.state.rt", "Route", RT_NAMES),
	s_rt_ifname = str("pfsync.state.rt_ifname", "Route-to interface"),
	s_rt_af = u8("pfsync.state.rt_af", "Route-to address family", AF_NAMES),
	s_tagname = str("pfsync.state.tagname", "Tag"),
	s_orig_ifname = str("pfsync.state.orig_ifname", "Original interface"),
	-- small messages
	upd_c = none("pfsync.upd_c", "Compressed update"),
	upd_c_id = u64("pfsync.upd_c.id", "ID", base.HEX),
	upd_c_creatorid = u32("pfsync.upd_c.creatorid", "Creator ID", base.HEX),
	upd_c_expire = u32("pfsync.upd_c.expire", "Expire (FreeBSD sends 0)"),
	upd_c_timeout = u8("pfsync.upd_c.timeout", "Timeout", PFTM_NAMES),
	upd_c_pad = bytes("pfsync.upd_c.pad", "Padding"),
	bus = none("pfsync.bus", "Bulk update status"),
	bus_creatorid = u32("pfsync.bus.creatorid", "Creator ID", base.HEX),
	bus_endtime = u32("pfsync.bus.endtime", "End time (s since the request)"),
	bus_status = u8("pfsync.bus.status", "Status", BUS_NAMES),
	bus_pad = bytes("pfsync.bus.pad", "Padding"),
	clr = none("pfsync.clr", "Clear states"),
	clr_ifname = str("pfsync.clr.ifname", "Interface"),
	clr_creatorid = u32("pfsync.clr.creatorid", "Creator ID", base.HEX),
	tdb = none("pfsync.tdb", "IPsec TDB"),
	tdb_spi = u32("pfsync.tdb.spi", "SPI", base.HEX),
	tdb_dst = bytes("pfsync.tdb.dst", "Destination (sockaddr_union)"),
	tdb_rpl = u32("pfsync.tdb.rpl", "Replay counter"),
	tdb_cur_bytes = u64("pfsync.tdb.cur_bytes", "Current bytes"),
	tdb_sproto = u8("pfsync.tdb.sproto", "Security protocol"),
	tdb_updates = u8("pfsync.tdb.updates", "Updates"),
	tdb_pad = bytes("pfsync.tdb.pad", "Padding"),
}

-- INS_ACK, UPD_REQ, DEL_C: (id, creatorid)
local REF = {}
for code, key in pairs({ [ACT.INS_ACK] = "ins_ack", [ACT.UPD_REQ] = "upd_req",
	[ACT.DEL_C] = "del_c" }) do
	local title = ({ ins_ack = "Insert acknowledgement", upd_req = "Update request",
		del_c = "Compressed delete" })[key]
	REF[code] = {
		tree = none("pfsync." .. key, title),
		id = u64("pfsync." .. key .. ".id", "ID", base.HEX),
		creatorid = u32("pfsync." .. key .. ".creatorid", "Creator ID", base.HEX),
	}
end
F.upd_req_bulk = add_field(ProtoField.bool("pfsync.upd_req.bulk",
	"Bulk update request (id 0, creator 0)"))

-- state keys: pfsync.state.wire.addr0 ... (per family: addrN, addrN_v6, addrN_raw)
local function key_fields(which, title)
	local p = "pfsync.state." .. which
	local k = { tree = none(p, title) }
	for i = 0, 1 do
		k["addr" .. i] = ipv4(p .. ".addr" .. i, "Address " .. i)
		k["addr" .. i .. "_v6"] = ipv6(p .. ".addr" .. i .. "_v6", "Address " .. i)
		k["addr" .. i .. "_raw"] = bytes(p .. ".addr" .. i .. "_raw",
			"Address " .. i .. " (unknown family)")
		k["port" .. i] = u16(p .. ".port" .. i, "Port " .. i)
	end
	return k
end
local KEY_WIRE = key_fields("wire", "Wire key")
local KEY_STACK = key_fields("stack", "Stack key")

-- peers: pfsync.state.src.seqlo, pfsync.upd_c.dst.state ...
local function peer_fields(p, title)
	return {
		tree = none(p, title),
		scrub_flags = u16(p .. ".scrub.flags", "Scrub flags", nil, base.HEX),
		scrub_ttl = u8(p .. ".scrub.ttl", "Scrub TTL"),
		scrub_flag = u8(p .. ".scrub.flag", "Scrub data present", nil, base.HEX),
		scrub_ts_mod = u32(p .. ".scrub.ts_mod", "Timestamp modulation"),
		seqlo = u32(p .. ".seqlo", "Sequence low"),
		seqhi = u32(p .. ".seqhi", "Sequence high"),
		seqdiff = u32(p .. ".seqdiff", "Sequence modulation"),
		max_win = u16(p .. ".max_win", "Max window"),
		mss = u16(p .. ".mss", "MSS"),
		state = u8(p .. ".state", "State"),
		wscale = u8(p .. ".wscale", "Window scale", nil, base.HEX),
		pad = bytes(p .. ".pad", "Padding"),
	}
end
local PEER = {
	state_src = peer_fields("pfsync.state.src", "Source (initiator)"),
	state_dst = peer_fields("pfsync.state.dst", "Destination (responder)"),
	upd_c_src = peer_fields("pfsync.upd_c.src", "Source (initiator)"),
	upd_c_dst = peer_fields("pfsync.upd_c.dst", "Destination (responder)"),
}

pfsync.fields = fields

-- ---- expert infos ------------------------------------------------------------

local E = {
	short = ProtoExpert.new("pfsync.short", "Shorter than the 20-byte pfsync header (hdrops)",
		expert.group.MALFORMED, expert.severity.ERROR),
	truncated = ProtoExpert.new("pfsync.truncated",
		"Truncated: the IP header announces more bytes than were captured",
		expert.group.MALFORMED, expert.severity.ERROR),
	badver = ProtoExpert.new("pfsync.badver",
		"Not pfsync version 5 (OpenBSD sends 6 and is not compatible): FreeBSD counts badver",
		expert.group.PROTOCOL, expert.severity.ERROR),
	badlen = ProtoExpert.new("pfsync.badlen",
		"Header length larger than the packet or smaller than the header: FreeBSD counts badlen",
		expert.group.MALFORMED, expert.severity.ERROR),
	badact = ProtoExpert.new("pfsync.badact",
		"Action FreeBSD rejects or does not know (badact): the rest of the packet is discarded",
		expert.group.PROTOCOL, expert.severity.ERROR),
	overrun = ProtoExpert.new("pfsync.overrun",
		"The count of messages runs past the end of the packet (badlen): the rest is discarded",
		expert.group.MALFORMED, expert.severity.ERROR),
	badeof = ProtoExpert.new("pfsync.badeof",
		"Bytes follow the EOF subheader: FreeBSD counts badlen",
		expert.group.MALFORMED, expert.severity.ERROR),
	badval = ProtoExpert.new("pfsync.badval",
		"A value FreeBSD rejects (timeout, peer state, direction or af): it skips the message (badval)",
		expert.group.PROTOCOL, expert.severity.WARN),
	ttl = ProtoExpert.new("pfsync.ttl",
		"TTL / hop limit is not 255: FreeBSD drops the packet (badttl)",
		expert.group.PROTOCOL, expert.severity.WARN),
	noeof = ProtoExpert.new("pfsync.noeof", "No EOF subheader (FreeBSD always sends one)",
		expert.group.SEQUENCE, expert.severity.NOTE),
	trailing = ProtoExpert.new("pfsync.trailing", "Bytes after the header length, ignored",
		expert.group.SEQUENCE, expert.severity.NOTE),
	tdb = ProtoExpert.new("pfsync.tdb.skipped", "TDB messages are skipped by FreeBSD",
		expert.group.PROTOCOL, expert.severity.NOTE),
	internal = ProtoExpert.new("pfsync.internal", "pfsync dissector bug",
		expert.group.MALFORMED, expert.severity.ERROR),
}
pfsync.experts = { E.short, E.truncated, E.badver, E.badlen, E.badact, E.overrun, E.badeof,
	E.badval, E.ttl, E.noeof, E.trailing, E.tdb, E.internal }

-- field extractors for the TTL check
local ip_ttl = Field.new("ip.ttl")
local ipv6_hlim = Field.new("ipv6.hlim")

-- ---- helpers -----------------------------------------------------------------

-- A fixed-size, NUL-padded wire string: up to the first NUL, each byte read as
-- Latin-1 (what carpdump's JSON does), so any bytes give valid UTF-8.
local function wire_string(range)
	local s = range:raw()
	local nul = s:find("\0", 1, true)
	if nul then s = s:sub(1, nul - 1) end
	if not s:find("[\128-\255]") then return s end
	return (s:gsub("[\128-\255]", function(c)
		local b = c:byte()
		return string.char(0xc0 + math.floor(b / 64), 0x80 + b % 64)
	end))
end

local function hex64(range)
	return "0x" .. range:uint64():tohex(16)
end

local function hex32(n)
	return string.format("0x%08x", n)
end

local function name_or(tbl, v)
	return tbl[v] or tostring(v)
end

local function add_string(tree, field, range)
	local s = wire_string(range)
	tree:add(field, range, s)
	return s
end

local function add_addr(tree, k, i, tvb, off, af)
	if af == 2 then
		return tree:add(k["addr" .. i], tvb(off, 4))
	elseif af == 28 then
		return tree:add(k["addr" .. i .. "_v6"], tvb(off, 16))
	end
	return tree:add(k["addr" .. i .. "_raw"], tvb(off, 16))
end

local function addr_text(tvb, off, af)
	if af == 2 then return tostring(tvb(off, 4):ipv4()) end
	if af == 28 then return tostring(tvb(off, 16):ipv6()) end
	return tvb(off, 16):bytes():tohex(true)
end

-- struct pfsync_state_key: 36 bytes
local function dissect_key(tree, k, tvb, off, af, proto)
	local a0, a1 = addr_text(tvb, off, af), addr_text(tvb, off + 16, af)
	local p0, p1 = tvb(off + 32, 2):uint(), tvb(off + 34, 2):uint()
	local t = tree:add(k.tree, tvb(off, 36))
	t:append_text(string.format(": %s:%u, %s:%u", a0, p0, a1, p1))
	add_addr(t, k, 0, tvb, off, af)
	add_addr(t, k, 1, tvb, off + 16, af)
	t:add(k.port0, tvb(off + 32, 2))
	t:add(k.port1, tvb(off + 34, 2))
end

-- struct pfsync_state_peer: 32 bytes; returns its state
local function dissect_peer(tree, pf, tvb, off, proto)
	local state = tvb(off + 24, 1):uint()
	local ws = tvb(off + 25, 1):uint()
	local t = tree:add(pf.tree, tvb(off, 32))
	local names = proto == 6 and TCPS_NAMES or (proto ~= nil and proto ~= 132) and OTHERS_NAMES
	local sname = names and names[state] or "state " .. tostring(state)
	t:append_text(string.format(": %s, seq %u-%u, win %u", sname, tvb(off + 8, 4):uint(),
		tvb(off + 12, 4):uint(), tvb(off + 20, 2):uint()))
	t:add(pf.scrub_flags, tvb(off, 2))
	t:add(pf.scrub_ttl, tvb(off + 2, 1))
	t:add(pf.scrub_flag, tvb(off + 3, 1))
	t:add(pf.scrub_ts_mod, tvb(off + 4, 4))
	t:add(pf.seqlo, tvb(off + 8, 4))
	t:add(pf.seqhi, tvb(off + 12, 4))
	t:add(pf.seqdiff, tvb(off + 16, 4))
	t:add(pf.max_win, tvb(off + 20, 2))
	t:add(pf.mss, tvb(off + 22, 2))
	local st = t:add(pf.state, tvb(off + 24, 1))
	if names and names[state] then
		st:append_text(" (" .. names[state] .. ")")
	elseif proto == nil and TCPS_NAMES[state] then
		-- UPD_C does not say which protocol the state is for
		st:append_text(" (" .. TCPS_NAMES[state] .. " if TCP)")
	end
	local w = t:add(pf.wscale, tvb(off + 25, 1))
	w:append_text(string.format(" (%sshift %u)", ws >= 0x80 and "sent, " or "", ws % 16))
	t:add(pf.pad, tvb(off + 26, 6))
	return state
end

local function flags_text(v)
	local names = {}
	for _, f in ipairs(PFSTATE_FLAGS) do
		if math.floor(v / f[1]) % 2 == 1 then names[#names + 1] = f[2] end
	end
	return #names > 0 and " (" .. table.concat(names, "|") .. ")" or ""
end

-- One full state of format 1301, 1400 or 1500 at off (all its bytes are there).
local function dissect_state(tree, tvb, pinfo, off, size, version, insert)
	local t = tree:add(F.state, tvb(off, size))
	local tail = off + 232
	local af, proto, stack_af, stack_proto, direction, timeout, rt, rt_af

	if version == 1500 then
		af, stack_af = tvb(tail + 112, 1):uint(), tvb(tail + 113, 1):uint()
		rt_af = tvb(tail + 114, 1):uint()
		proto, stack_proto = tvb(tail + 115, 1):uint(), tvb(tail + 116, 1):uint()
		timeout = tvb(tail + 118, 1):uint()
		direction = tvb(tail + 119, 1):uint()
		rt = tvb(tail + 120, 1):uint()
	else
		af, proto = tvb(tail, 1):uint(), tvb(tail + 1, 1):uint()
		stack_af, stack_proto = af, proto
		direction = tvb(tail + 2, 1):uint()
		timeout = tvb(tail + 7, 1):uint()
		rt = version == 1400 and tvb(tail + 28, 1):uint() or 0
		rt_af = 0
	end

	t:append_text(string.format(" %s/%s, %s, %s %s", hex64(tvb(off, 8)),
		hex32(tvb(off + 228, 4):uint()), name_or(PROTO_NAMES, proto),
		name_or(AF_NAMES, af), name_or(DIR_NAMES, direction)))
	t:add(F.s_version, version):set_generated()
	t:add(F.s_id, tvb(off, 8))
	t:add(F.s_creatorid, tvb(off + 228, 4))
	add_string(t, F.s_ifname, tvb(off + 8, 16))
	dissect_key(t, KEY_WIRE, tvb, off + 24, af, proto)
	dissect_key(t, KEY_STACK, tvb, off + 60, stack_af, stack_proto)
	local src_state = dissect_peer(t, PEER.state_src, tvb, off + 96, proto)
	local dst_state = dissect_peer(t, PEER.state_dst, tvb, off + 128, proto)
	local rt_fam = (rt_af ~= 0) and rt_af or af
	if rt_fam == 2 then
		t:add(F.s_rt_addr, tvb(off + 160, 4))
	elseif rt_fam == 28 then
		t:add(F.s_rt_addr_v6, tvb(off + 160, 16))
	else
		t:add(F.s_rt_addr_raw, tvb(off + 160, 16))
	end
	t:add(F.s_rule, tvb(off + 176, 4))
	t:add(F.s_anchor, tvb(off + 180, 4))
	t:add(F.s_nat_rule, tvb(off + 184, 4))
	t:add(F.s_creation, tvb(off + 188, 4))
	t:add(F.s_expire, tvb(off + 192, 4))
	t:add(F.s_packets0, tvb(off + 196, 8))
	t:add(F.s_packets1, tvb(off + 204, 8))
	t:add(F.s_bytes0, tvb(off + 212, 8))
	t:add(F.s_bytes1, tvb(off + 220, 8))

	local function flags(r)
		t:add(F.s_state_flags, r):append_text(flags_text(r:uint()))
	end
	if version == 1500 then
		add_string(t, F.s_tagname, tvb(tail, 64))
		add_string(t, F.s_rt_ifname, tvb(tail + 64, 16))
		add_string(t, F.s_orig_ifname, tvb(tail + 80, 16))
		t:add(F.s_rtableid, tvb(tail + 96, 4))
		flags(tvb(tail + 100, 2))
		t:add(F.s_qid, tvb(tail + 102, 2))
		t:add(F.s_pqid, tvb(tail + 104, 2))
		t:add(F.s_dnpipe, tvb(tail + 106, 2))
		t:add(F.s_dnrpipe, tvb(tail + 108, 2))
		t:add(F.s_max_mss, tvb(tail + 110, 2))
		t:add(F.s_af, tvb(tail + 112, 1))
		t:add(F.s_stack_af, tvb(tail + 113, 1))
		t:add(F.s_rt_af, tvb(tail + 114, 1))
		t:add(F.s_proto, tvb(tail + 115, 1))
		t:add(F.s_stack_proto, tvb(tail + 116, 1))
		t:add(F.s_log, tvb(tail + 117, 1))
		t:add(F.s_timeout, tvb(tail + 118, 1))
		t:add(F.s_direction, tvb(tail + 119, 1))
		t:add(F.s_rt, tvb(tail + 120, 1))
		t:add(F.s_min_ttl, tvb(tail + 121, 1))
		t:add(F.s_set_tos, tvb(tail + 122, 1))
		t:add(F.s_set_prio0, tvb(tail + 123, 1))
		t:add(F.s_set_prio1, tvb(tail + 124, 1))
		t:add(F.s_spare, tvb(tail + 125, 3))
	else
		t:add(F.s_af, tvb(tail, 1))
		t:add(F.s_proto, tvb(tail + 1, 1))
		t:add(F.s_direction, tvb(tail + 2, 1))
		if version == 1301 then
			t:add(F.s_spare, tvb(tail + 3, 2))
			t:add(F.s_log, tvb(tail + 5, 1))
			flags(tvb(tail + 6, 1)) -- only the low byte exists in 1301
		else
			flags(tvb(tail + 3, 2)) -- unaligned on the wire
			t:add(F.s_log, tvb(tail + 5, 1))
			t:add(F.s_spare, tvb(tail + 6, 1))
		end
		t:add(F.s_timeout, tvb(tail + 7, 1))
		t:add(F.s_sync_flags, tvb(tail + 8, 1))
		t:add(F.s_updates, tvb(tail + 9, 1))
		if version == 1301 then
			-- 1301 has no routing table: -1 is pf's "none" (what carpdump shows)
			t:add(F.s_rtableid, -1):set_generated()
			t:add(F.s_rt, 0):set_generated()
		else
			t:add(F.s_qid, tvb(tail + 10, 2))
			t:add(F.s_pqid, tvb(tail + 12, 2))
			t:add(F.s_dnpipe, tvb(tail + 14, 2))
			t:add(F.s_dnrpipe, tvb(tail + 16, 2))
			t:add(F.s_rtableid, tvb(tail + 18, 4))
			t:add(F.s_min_ttl, tvb(tail + 22, 1))
			t:add(F.s_set_tos, tvb(tail + 23, 1))
			t:add(F.s_max_mss, tvb(tail + 24, 2))
			t:add(F.s_set_prio0, tvb(tail + 26, 1))
			t:add(F.s_set_prio1, tvb(tail + 27, 1))
			t:add(F.s_rt, tvb(tail + 28, 1))
			add_string(t, F.s_rt_ifname, tvb(tail + 29, 16))
		end
	end

	-- FreeBSD's receive checks (pfsync_in_ins / pfsync_in_upd)
	if timeout >= PFTM_MAX or src_state > TCPS_MAX or dst_state > TCPS_MAX or
		(insert and (direction > 2 or (af ~= 2 and af ~= 28))) then
		t:add_proto_expert_info(E.badval)
	end
end

local function dissect_upd_c(tree, tvb, off)
	local t = tree:add(F.upd_c, tvb(off, 84))
	t:append_text(string.format(" %s/%s", hex64(tvb(off, 8)), hex32(tvb(off + 72, 4):uint())))
	t:add(F.upd_c_id, tvb(off, 8))
	local s = dissect_peer(t, PEER.upd_c_src, tvb, off + 8, nil)
	local d = dissect_peer(t, PEER.upd_c_dst, tvb, off + 40, nil)
	t:add(F.upd_c_creatorid, tvb(off + 72, 4))
	t:add(F.upd_c_expire, tvb(off + 76, 4))
	local timeout = tvb(off + 80, 1):uint()
	t:add(F.upd_c_timeout, tvb(off + 80, 1))
	t:add(F.upd_c_pad, tvb(off + 81, 3))
	if timeout >= PFTM_MAX or s > TCPS_MAX or d > TCPS_MAX then
		t:add_proto_expert_info(E.badval)
	end
end

local function dissect_ref(tree, tvb, off, action)
	local r = REF[action]
	local t = tree:add(r.tree, tvb(off, 12))
	local id, creator = tvb(off, 8), tvb(off + 8, 4):uint()
	t:append_text(string.format(" %s/%s", hex64(id), hex32(creator)))
	t:add(r.id, id)
	t:add(r.creatorid, tvb(off + 8, 4))
	if action == ACT.UPD_REQ then
		local bulk = creator == 0 and id:uint64() == UInt64(0)
		t:add(F.upd_req_bulk, bulk):set_generated()
		if bulk then t:append_text(" (bulk update request)") end
	end
end

local function dissect_bus(tree, tvb, off)
	local t = tree:add(F.bus, tvb(off, 12))
	t:append_text(string.format(" %s, creator %s, end time %u",
		name_or(BUS_NAMES, tvb(off + 8, 1):uint()), hex32(tvb(off, 4):uint()),
		tvb(off + 4, 4):uint()))
	t:add(F.bus_creatorid, tvb(off, 4))
	t:add(F.bus_endtime, tvb(off + 4, 4))
	t:add(F.bus_status, tvb(off + 8, 1))
	t:add(F.bus_pad, tvb(off + 9, 3))
end

local function dissect_clr(tree, tvb, off)
	local t = tree:add(F.clr, tvb(off, 20))
	local ifname = add_string(t, F.clr_ifname, tvb(off, 16))
	t:add(F.clr_creatorid, tvb(off + 16, 4))
	t:append_text(string.format(" creator %s, %s", hex32(tvb(off + 16, 4):uint()),
		ifname == "" and "all interfaces" or "interface " .. ifname))
end

local function dissect_tdb(tree, tvb, off)
	local t = tree:add(F.tdb, tvb(off, 48))
	t:add(F.tdb_spi, tvb(off, 4))
	t:add(F.tdb_dst, tvb(off + 4, 28))
	t:add(F.tdb_rpl, tvb(off + 32, 4))
	t:add(F.tdb_cur_bytes, tvb(off + 36, 8))
	t:add(F.tdb_sproto, tvb(off + 44, 1))
	t:add(F.tdb_updates, tvb(off + 45, 1))
	t:add(F.tdb_pad, tvb(off + 46, 2))
	t:add_proto_expert_info(E.tdb)
end

local function dissect_messages(tree, tvb, pinfo, action, count, off, mlen)
	local version = FORMAT[action]
	for i = 0, count - 1 do
		local m = off + i * mlen
		if version then
			dissect_state(tree, tvb, pinfo, m, mlen, version,
				action == ACT.INS_1301 or action == ACT.INS_1400 or action == ACT.INS_1500)
		elseif action == ACT.UPD_C then
			dissect_upd_c(tree, tvb, m)
		elseif REF[action] then
			dissect_ref(tree, tvb, m, action)
		elseif action == ACT.BUS then
			dissect_bus(tree, tvb, m)
		elseif action == ACT.CLR then
			dissect_clr(tree, tvb, m)
		elseif action == ACT.TDB then
			dissect_tdb(tree, tvb, m)
		end
	end
end

-- ---- the packet --------------------------------------------------------------

-- Mirrors pfsync_iter_next() in proto/pfsync.c: the same checks in the same order.
local function dissect(tvb, pinfo, tree)
	local captured = tvb:len()
	local plen = math.min(captured, tvb:reported_length_remaining())
	local root = tree:add(pfsync, tvb())
	local info = {}

	pinfo.cols.protocol = "pfsync"
	pinfo.cols.info = "pfsync"

	-- the innermost IP header: the TTL / hop limit field with the largest offset
	local ttl
	for _, fi in ipairs({ ip_ttl() }) do
		if not ttl or fi.offset > ttl.offset then ttl = fi end
	end
	for _, fi in ipairs({ ipv6_hlim() }) do
		if not ttl or fi.offset > ttl.offset then ttl = fi end
	end
	if ttl and ttl.value ~= 255 then
		root:add_proto_expert_info(E.ttl, "TTL / hop limit " .. tostring(ttl.value) ..
			" is not 255: FreeBSD drops the packet (badttl)")
	end
	if captured < tvb:reported_length_remaining() then
		root:add_proto_expert_info(E.truncated, string.format(
			"Truncated: the IP header announces %u payload bytes, only %u captured",
			tvb:reported_length_remaining(), captured))
	end
	if plen < HDR_LEN then
		root:add_proto_expert_info(E.short, string.format(
			"%u bytes: shorter than the 20-byte pfsync header (hdrops)", plen))
		pinfo.cols.info = "pfsync, too short"
		return
	end

	local version = tvb(0, 1):uint()
	local hlen = tvb(2, 2):uint()
	local vi = root:add(F.version, tvb(0, 1))
	root:add(F.pad, tvb(1, 1))
	local li = root:add(F.len, tvb(2, 2))
	root:add(F.cksum, tvb(4, 16))
	root:append_text(string.format(", version %u, len %u", version, hlen))
	if version ~= 5 then
		vi:add_proto_expert_info(E.badver)
		pinfo.cols.info = string.format("pfsync version %u (not 5)", version)
		return
	end
	if hlen > plen or hlen < HDR_LEN then
		li:add_proto_expert_info(E.badlen, string.format(
			"Header length %u does not fit the %u bytes received: FreeBSD counts badlen",
			hlen, plen))
		pinfo.cols.info = string.format("pfsync, bad length %u", hlen)
		return
	end

	local off, eof = HDR_LEN, false
	local formats, seen = {}, {}
	while true do
		if eof then
			if plen > off then
				root:add_proto_expert_info(E.badeof, string.format(
					"%u bytes follow the EOF subheader: FreeBSD counts badlen", plen - off))
			end
			break
		end
		if hlen - off < SUBHDR_LEN then
			root:add_proto_expert_info(E.noeof)
			if plen > off then
				root:add_proto_expert_info(E.trailing, string.format(
					"%u bytes after the last message, ignored", plen - off))
			end
			break
		end
		local action = tvb(off, 1):uint()
		local count = tvb(off + 2, 2):uint()
		local mlen = MSGLEN[action] or -1
		local name = ACTION_NAMES[action] or "UNKNOWN"
		local total = mlen > 0 and count * mlen or 0
		local fits = mlen >= 0 and total <= hlen - off - SUBHDR_LEN
		local span = fits and SUBHDR_LEN + total or math.min(SUBHDR_LEN, hlen - off)
		local st = root:add(F.subheader, tvb(off, span))
		st:append_text(string.format(": %s, count %u", name, count))
		st:add(F.action, tvb(off, 1))
		st:add(F.subpad, tvb(off + 1, 1))
		st:add(F.count, tvb(off + 2, 2))
		info[#info + 1] = action == ACT.EOF and name or string.format("%s x%u", name, count)
		if mlen < 0 then
			st:add_proto_expert_info(E.badact, string.format(
				"Action %u (%s): FreeBSD %s (badact); the rest of the packet is discarded",
				action, name, MSGLEN[action] and "never accepts it" or "does not know it"))
			break
		end
		if not fits then
			st:add_proto_expert_info(E.overrun, string.format(
				"%u x %u bytes of %s run past the end of the packet (%u bytes left): the rest is discarded (badlen)",
				count, mlen, name, hlen - off - SUBHDR_LEN))
			break
		end
		local fmt = FORMAT[action]
		if fmt and not seen[fmt] then
			seen[fmt] = true
			formats[#formats + 1] = fmt
		end
		dissect_messages(st, tvb, pinfo, action, count, off + SUBHDR_LEN, mlen)
		off = off + SUBHDR_LEN + total
		if action == ACT.EOF then eof = true end
	end

	for _, fmt in ipairs(formats) do
		root:add(F.format, fmt):set_generated()
	end
	pinfo.cols.info = "pfsync " .. table.concat(info, ", ")
	if #formats > 0 then
		local f = {}
		for i, v in ipairs(formats) do f[i] = tostring(v) end
		pinfo.cols.info:append(" [format " .. table.concat(f, ", ") .. "]")
	end
end

function pfsync.dissector(tvb, pinfo, tree)
	local ok, err = pcall(dissect, tvb, pinfo, tree)
	if not ok then
		-- Never let a bug surface as a Lua error; the test suite looks for this.
		tree:add_proto_expert_info(E.internal, "pfsync dissector bug: " .. tostring(err))
	end
	return tvb:len()
end

DissectorTable.get("ip.proto"):add(240, pfsync)
