#!/bin/sh
# Runs every built fuzz target for a short while on its seed corpus.
# Usage: run.sh BUILD_DIR SECONDS
set -eu
build=$1
secs=${2:-10}
here=$(cd "$(dirname "$0")" && pwd)
status=0
for f in "$build"/fuzz/fuzz_*; do
	[ -x "$f" ] || continue
	name=$(basename "$f")
	seeds="$here/corpus/${name#fuzz_}"
	work="$build/fuzz-corpus/$name"
	mkdir -p "$work"
	[ -d "$seeds" ] && cp -n "$seeds"/* "$work"/ 2>/dev/null || true
	echo "fuzz: $name for ${secs}s"
	if ! "$f" -max_total_time="$secs" -max_len=4096 -print_final_stats=0 \
		"$work" >"$build/$name.log" 2>&1; then
		echo "fuzz: $name FAILED"; tail -n 40 "$build/$name.log"; status=1
	fi
done
exit $status
