#!/usr/bin/env bash
# tests/fuzz/run.sh - build the libFuzzer targets and run each for a while.
#
#   run.sh OUTDIR SECONDS [TARGET...]
#
# TARGET is fuzz_carp, fuzz_carp.c or carp; without one, every tests/fuzz/fuzz_*.c.
# Each target names what it links in comments among its first 10 lines:
#   /* fuzz-sources: proto/carp.c proto/frames.c */   (relative to the repository)
#   /* fuzz-libs: -lpcap */                            (optional)
#   /* fuzz-cflags: -DFOO */                           (optional)
# Binaries, logs, the working corpus (seeded from tests/fuzz/corpus/<name without
# fuzz_>/, kept between runs) and crash artifacts all go under OUTDIR, so the
# repository stays clean. Environment: CC (default clang), CARPD_SRC (default:
# the repository this script is in), FUZZ_ARGS (extra libFuzzer options).
# Exit status: 0 if every target built and ran without a finding, 1 otherwise,
# 2 on usage errors.
set -u

usage() {
	echo "usage: $0 OUTDIR SECONDS [TARGET...]" >&2
	exit 2
}
[ $# -ge 2 ] || usage
outdir=$1
secs=$2
shift 2
case $secs in '' | *[!0-9]*) usage ;; esac

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=${CARPD_SRC:-$(cd "$here/../.." && pwd)}
cc=${CC:-clang}
fuzzdir=$src/tests/fuzz

mkdir -p "$outdir" || exit 1
outdir=$(cd "$outdir" && pwd)

# Value of a "fuzz-KEY: ..." comment in the first lines of a target, or nothing.
directive() {
	sed -n "1,10{s|.*fuzz-$2:\\(.*\\)\\*/.*|\\1|p}" "$1" | head -n 1
}

targets=()
if [ $# -eq 0 ]; then
	for f in "$fuzzdir"/fuzz_*.c; do
		[ -e "$f" ] && targets+=("$f")
	done
else
	for t in "$@"; do
		t=${t%.c}
		t=fuzz_${t#fuzz_}
		if [ ! -f "$fuzzdir/$t.c" ]; then
			echo "$t: no such target ($fuzzdir/$t.c)" >&2
			exit 2
		fi
		targets+=("$fuzzdir/$t.c")
	done
fi
if [ ${#targets[@]} -eq 0 ]; then
	echo "no fuzz targets in $fuzzdir" >&2
	exit 1
fi

failed=0
for file in "${targets[@]}"; do
	name=$(basename "$file" .c)
	short=${name#fuzz_}
	bin=$outdir/$name
	log=$outdir/$name.log
	corpus=$outdir/corpus/$name
	artifacts=$outdir/artifacts/$name/

	sources=()
	for s in $(directive "$file" sources); do
		sources+=("$src/$s")
	done
	# shellcheck disable=SC2207 # word splitting of the flag lists is intended
	libs=($(directive "$file" libs))
	# shellcheck disable=SC2207
	cflags=($(directive "$file" cflags))

	if ! "$cc" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-D_GNU_SOURCE -I"$src" ${cflags[@]+"${cflags[@]}"} -o "$bin" "$file" "${sources[@]}" \
		${libs[@]+"${libs[@]}"} >"$outdir/$name.build.log" 2>&1; then
		echo "$name: BUILD FAILED (see $outdir/$name.build.log)"
		sed 's/^/    /' "$outdir/$name.build.log" | head -n 20
		failed=1
		continue
	fi

	# a working copy of the seeds; what earlier runs found is kept
	mkdir -p "$corpus" "$artifacts"
	if [ -d "$fuzzdir/corpus/$short" ]; then
		cp -n "$fuzzdir/corpus/$short"/* "$corpus"/ 2>/dev/null
	fi

	# shellcheck disable=SC2086 # FUZZ_ARGS is a list of options
	"$bin" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$artifacts" \
		${FUZZ_ARGS:-} "$corpus" >"$log" 2>&1
	rc=$?

	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	[ -n "$runs" ] || runs=$(grep -o '^#[0-9]*' "$log" | tail -n 1 | tr -d '#') # -fork
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
	files=$(find "$corpus" -type f | wc -l)
	if [ $rc -eq 0 ]; then
		echo "$name: OK, ${runs:-?} runs in ${secs}s, ${cov:-cov: ?}, corpus $files files"
	else
		crash=$(find "$artifacts" -type f -newer "$bin" | head -n 1)
		echo "$name: FAILED (exit $rc) after ${runs:-?} runs; log $log${crash:+; input $crash}"
		grep -m 3 -E 'ERROR: |SUMMARY: |runtime error' "$log" | sed 's/^/    /'
		failed=1
	fi
done
exit $failed
