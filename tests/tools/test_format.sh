#!/usr/bin/env bash
# One formatting style: every C file git tracks is as clang-format (.clang-format) writes it.
set -euo pipefail
: "${CARPD_SRC:?}"
command -v clang-format >/dev/null || { echo "skipped: clang-format is not installed"; exit 77; }
cd "$CARPD_SRC"
git rev-parse --git-dir >/dev/null 2>&1 || { echo "skipped: not a git checkout"; exit 77; }
mapfile -t files < <(git ls-files '*.c' '*.h')
bad=()
for f in "${files[@]}"; do
	clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if ((${#bad[@]})); then
	echo "not formatted (run: clang-format -i ${bad[*]}):"
	printf '  %s\n' "${bad[@]}"
	exit 1
fi
echo "ok - ${#files[@]} files formatted"
