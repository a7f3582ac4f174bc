#!/usr/bin/env bash
# cmake --install puts every file where CONTRACT §1 says; the man pages render;
# the systemd unit verifies and its hardening is scored.
set -euo pipefail
: "${CARPD_BUILD:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
P=$(mktemp -d)
trap 'rm -rf "$P"' EXIT
cmake --install "$CARPD_BUILD" --prefix "$P" >/dev/null
for f in sbin/carpd sbin/carpctl bin/carpdump share/man/man8/carpd.8 share/man/man8/carpctl.8 \
	share/man/man5/carpd.conf.5 share/man/man1/carpdump.1 lib/systemd/system/carpd.service \
	share/carpd/wireshark/pfsync.lua; do
	[ -s "$P/$f" ] || fail "$f missing or empty after install"
done
[ -x "$P/sbin/carpd" ] && [ -x "$P/sbin/carpctl" ] && [ -x "$P/bin/carpdump" ] || fail "binaries not executable"
echo "ok - install layout"
if command -v tshark >/dev/null; then
	# the installed dissector loads and registers its protocol (HOME: no personal plugins)
	out=$(HOME=$P XDG_CONFIG_HOME=$P tshark -G protocols -X lua_script:"$P/share/carpd/wireshark/pfsync.lua" \
		2>&1) || fail "tshark cannot load the installed pfsync.lua: $out"
	echo "$out" | awk -F'\t' '$3 == "pfsync" { found = 1 } END { exit !found }' ||
		fail "the installed pfsync.lua does not register pfsync: $(echo "$out" | grep -i -e lua -e pfsync)"
	echo "ok - the installed Wireshark dissector loads"
fi
if command -v mandoc >/dev/null; then
	for m in "$P"/share/man/man*/*; do mandoc -T lint -W warning "$m" || fail "mandoc lint: $m"; done
	echo "ok - man pages lint clean (mandoc)"
elif command -v groff >/dev/null; then
	for m in "$P"/share/man/man*/*; do
		out=$(groff -mandoc -Tutf8 -ww -z "$m" 2>&1) || fail "groff: $m"
		[ -z "$out" ] || fail "groff warnings in $m: $out"
	done
	echo "ok - man pages render without warnings (groff)"
fi
if command -v systemd-analyze >/dev/null; then
	unit=$P/carpd.service
	sed "s#/usr/sbin/carpd#$P/sbin/carpd#g" "$P/lib/systemd/system/carpd.service" >"$unit"
	out=$(systemd-analyze verify --man=no "$unit" 2>&1) || fail "systemd-analyze verify: $out"
	[ -z "$out" ] || fail "systemd-analyze verify: $out"
	echo "ok - unit verifies"
	score=$(systemd-analyze security --offline=true "$unit" 2>/dev/null | grep -o 'Overall exposure level for [^:]*: [0-9.]*' | awk '{print $NF}')
	echo "systemd-analyze security exposure: $score (0 = best, 10 = worst)"
	awk -v s="$score" 'BEGIN { exit !(s != "" && s + 0 <= 4.0) }' || fail "exposure $score is above 4.0"
fi
