#!/usr/bin/env bash
# e2e: the benchmark harness still runs. One planned-stop run with carpd only
# (bench/run handover --runs 1 --impl carpd, about 20 s), then the JSON it writes
# must be well-formed and hold that run's figures. No timing is asserted here: the
# figures and their targets are bench/README.md's business.
# bench/run takes the lab lock itself, so this test does not call e2e_init (a
# second open of /run/carplab.lock from a child would wait for its own parent).
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
require_root
require_cmds ip nft jq ping awk python3 conntrack ethtool flock tcpdump
require_ovs
[ -x "$CARPD" ] || fail "carpd not built: $CARPD"
TMP=$(mktemp -d /tmp/carpd-bench-smoke.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
t0=$(now)
timeout 240 "$CARPD_SRC/bench/run" handover --runs 1 --impl carpd --json "$TMP/bench.json" >"$TMP/out.txt" 2>"$TMP/err.txt" ||
	fail "bench/run failed: $(tail -n 20 "$TMP/err.txt")"
note "bench/run handover --runs 1 took $(elapsed "$t0") s"
cat "$TMP/out.txt"
jq -e . "$TMP/bench.json" >/dev/null || fail "bench.json is not JSON"
jq -e '.machine.nproc >= 1 and (.machine.line | length) > 0' "$TMP/bench.json" >/dev/null ||
	fail "no machine description: $(jq -c .machine "$TMP/bench.json")"
m=$(jq -c '.figures.handover.impls.carpd.metrics' "$TMP/bench.json")
jq -e '.takeover_ms.runs == 1 and (.takeover_ms.median | type) == "number" and .lost.runs == 1' <<<"$m" >/dev/null ||
	fail "handover figures missing: $m"
grep -q '^== handover' "$TMP/out.txt" || fail "no table on stdout"
ok "bench/run handover: table and JSON ($(jq -r '.takeover_ms.median' <<<"$m") ms takeover)"
