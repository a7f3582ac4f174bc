#!/usr/bin/env bash
# carpd -n: exit 0 silently on a valid file; FILE:LINE: messages and exit 1 otherwise.
set -euo pipefail
: "${CARPD:?}"
# CARPD_WRAP: a command line our binaries run under, split on blanks (ctest sets
# it to valgrind when built with CARPD_VALGRIND=ON). Unset: they run directly.
read -ra WRAP <<<"${CARPD_WRAP:-}"
fail() { echo "FAIL: $*" >&2; exit 1; }
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT

# 'lo' exists everywhere, so the valid file does not depend on the machine.
cat > "$DIR/ok.conf" <<'CONF'
# the CONTRACT's example, on lo
control "/run/carpd-test.sock"
preempt yes
hostid 0x1a2b3c4d

vhid 1 on lo {
    address 198.51.100.1/24
    address 2001:db8:1::1/64
    advbase 1
    advskew 0
    password "motdepasseCARP"
    peer 192.0.2.3
    peer6 2001:db8::3
}

pfsync on lo {
    syncpeer 192.0.2.3
    version 1400
    defer no
}
CONF
out=$("${WRAP[@]}" "$CARPD" -n -f "$DIR/ok.conf" 2>&1) || fail "valid file refused: $out"
[ -z "$out" ] || fail "valid file must be silent, got: $out"
echo "ok - valid file: exit 0, silent"

cat > "$DIR/bad.conf" <<'CONF'
vhid 1 on lo {
    address 198.51.100.1/24
    advbase 300
    advskwe 10
}
vhid 1 on lo {
    address 198.51.100.9/24
}
CONF
set +e
out=$("${WRAP[@]}" "$CARPD" -n -f "$DIR/bad.conf" 2>&1)
rc=$?
set -e
[ "$rc" = 1 ] || fail "invalid file: exit $rc, want 1"
grep -q "^$DIR/bad.conf:3: " <<<"$out" || fail "no error on line 3 (advbase 300): $out"
grep -q "^$DIR/bad.conf:4: " <<<"$out" || fail "no error on line 4 (unknown statement): $out"
grep -q "^$DIR/bad.conf:6: " <<<"$out" || fail "no error on line 6 (vhid declared twice): $out"
if grep -qv "^$DIR/bad.conf:[0-9]*: " <<<"$out"; then fail "every line must be FILE:LINE: message: $out"; fi
echo "ok - invalid file: FILE:LINE: messages, exit 1"

cat > "$DIR/noif.conf" <<'CONF'
vhid 1 on nosuchif0 {
    address 198.51.100.1/24
}
CONF
set +e
out=$("${WRAP[@]}" "$CARPD" -n -f "$DIR/noif.conf" 2>&1)
rc=$?
set -e
[ "$rc" = 1 ] || fail "missing interface: exit $rc"
grep -q "^$DIR/noif.conf:1: .*nosuchif0.*does not exist" <<<"$out" || fail "missing interface message: $out"
echo "ok - missing interface"

set +e
out=$("${WRAP[@]}" "$CARPD" -n -f "$DIR/absent.conf" 2>&1)
rc=$?
set -e
[ "$rc" = 1 ] || fail "absent file: exit $rc"
grep -q "absent.conf" <<<"$out" || fail "absent file message: $out"
echo "ok - absent file"

# Garbage must be an error, never a crash.
head -c 4096 /dev/urandom > "$DIR/random.conf"
set +e
"${WRAP[@]}" "$CARPD" -n -f "$DIR/random.conf" >/dev/null 2>&1
rc=$?
set -e
[ "$rc" = 1 ] || fail "random bytes: exit $rc (a crash is >1)"
echo "ok - random bytes rejected cleanly"
