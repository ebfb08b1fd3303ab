#!/bin/sh
# Runs every benchmark and prints its figures. Usage: run.sh BUILD_DIR
# Each bench/bench_*.c program and each bench/bench_*.sh script prints its
# own table, with the reference figure beside ours.
set -eu
build=$(cd "${1:-build}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
export SHIM_BUILD="$build" SHIM_SRC="$(dirname "$here")"
for b in "$build"/bench/bench_*; do
	[ -x "$b" ] || continue
	echo "== $(basename "$b")"
	"$b"
	echo
done
for s in "$here"/bench_*.sh "$here"/bench_*.py; do
	[ -f "$s" ] || continue
	echo "== $(basename "$s")"
	case "$s" in
	*.py) python3 "$s" ;;
	*) sh "$s" ;;
	esac
	echo
done
