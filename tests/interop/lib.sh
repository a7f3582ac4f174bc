# tests/interop/lib.sh - sourced by the FreeBSD ports (test_freebsd_*.sh): their own
# namespaces (prefix $P, set before sourcing), veths, a result count, and cleanup
# of every namespace and daemon when the script exits.
# shellcheck shell=bash
DIR=$(mktemp -d)
NSS=() PIDS=()
FAILED=0 PASSED=0
cleanup() {
	local p ns
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	for ns in "${NSS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
	NSS=() PIDS=()
}
trap 'cleanup; rm -rf "$DIR"' EXIT
die() { # die MESSAGE: the current case ($CASE) failed; its carpd logs follow
	echo "not ok - $CASE: $*"
	for f in "$DIR"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -20 "$f"; }; done
	FAILED=$((FAILED + 1))
	return 1
}
mkns() { # mkns NAME: namespace $P-NAME, loopback up, no DAD
	ip netns add "$P-$1"
	NSS+=("$P-$1")
	ip -n "$P-$1" link set lo up
	ip netns exec "$P-$1" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
}
link() { # link NS1 IF1 NS2 IF2: a veth between two namespaces
	ip link add "$P-t" type veth peer name "$P-u"
	ip link set "$P-t" netns "$P-$1" name "$2"
	ip link set "$P-u" netns "$P-$3" name "$4"
	ip -n "$P-$1" link set "$2" up
	ip -n "$P-$3" link set "$4" up
}
