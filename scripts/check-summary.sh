#!/bin/sh
# The last line of `make check`: what ran, counted from the build trees it
# left (ctest's test lists, the fuzz targets built). Usage: check-summary.sh
# RELEASE_BUILD_DIR
set -u
count() { # ctest -N in dir $1 [label $2] -> number of tests
	[ -d "$1" ] || { echo 0; return; }
	(cd "$1" && ctest -N ${2:+-L "$2"} 2>/dev/null) |
		sed -n 's/^Total Tests: *//p' | head -n 1
}
rel=$(count "${1:-build}")
unit=$(count "${1:-build}" unit)
integ=$(count "${1:-build}" integration)
asan=$(count build-asan)
fuzz=0
for f in build-fuzz/fuzz/fuzz_*; do
	[ -x "$f" ] && fuzz=$((fuzz + 1))
done
arm=$(count build-arm64 unit)
echo "make check: passed: release suite ${rel:-0} tests (${unit:-0} unit," \
	"${integ:-0} integration), ASan suite ${asan:-0} tests, arm64 unit suite" \
	"${arm:-0} tests under qemu, firmware recording check, $fuzz fuzz targets"
