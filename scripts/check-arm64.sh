#!/bin/sh
# Runs the unit tests of the arm64 cross build under qemu-aarch64
# (make check-arm64). Usage: check-arm64.sh [BUILD_DIR] (default build-arm64).
#
# ctest starts every test through qemu-aarch64 (CMAKE_CROSSCOMPILING_EMULATOR
# in cmake/aarch64-linux-gnu.cmake), so the tests need no kernel support.
# One of them, test_monitor, also runs the aarch64 shimctl as a child; that
# child needs the kernel's binfmt_misc to hand aarch64 ELF files to qemu. This
# script registers Debian's entry (/usr/lib/binfmt.d/qemu-aarch64.conf, from
# qemu-user-binfmt) when it is root and binfmt_misc can be mounted. When it
# cannot, test_monitor runs with SHIM_BUILD pointing at a directory whose
# shimctl is a script that starts the real one under qemu-aarch64.
# ARM64_NO_BINFMT=1 takes that path even when binfmt works.
#
# Never QEMU_LD_PREFIX or -L: the program interpreter would then be the cross
# libc's ld.so, which does not match the multiarch libc.so.6, and every
# pthread_create hangs. Plain qemu-aarch64 loads /lib/ld-linux-aarch64.so.1,
# which libc6:arm64 installs.
set -eu

build=${1:-build-arm64}
jobs=${JOBS:-2}
# A test that hangs under qemu fails after this many seconds.
timeout=${ARM64_TEST_TIMEOUT:-180}
binfmt=/proc/sys/fs/binfmt_misc
unset QEMU_LD_PREFIX

[ -x "$build/shimctl" ] || { echo "check-arm64: no $build/shimctl; run make cross-arm64" >&2; exit 2; }
command -v qemu-aarch64 >/dev/null || { echo "check-arm64: qemu-aarch64 missing (make deps)" >&2; exit 2; }
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$build" && pwd)

# True when the kernel runs aarch64 programs through qemu by itself.
binfmt_works()
{
	[ -r "$binfmt/qemu-aarch64" ] &&
		grep -qx enabled "$binfmt/status" &&
		head -n 1 "$binfmt/qemu-aarch64" | grep -qx enabled &&
		"$build/tests/test_base32" >/dev/null 2>&1
}

# Mounts binfmt_misc and registers qemu-aarch64 if needed and allowed.
binfmt_register()
{
	conf=/usr/lib/binfmt.d/qemu-aarch64.conf

	[ "$(id -u)" -eq 0 ] && [ -r "$conf" ] || return 1
	if [ ! -e "$binfmt/register" ]; then
		mount -t binfmt_misc binfmt_misc "$binfmt" 2>/dev/null || return 1
	fi
	if [ -e "$binfmt/qemu-aarch64" ]; then
		(echo 1 >"$binfmt/qemu-aarch64") 2>/dev/null || return 1
	else
		(cat "$conf" >"$binfmt/register") 2>/dev/null || return 1
	fi
}

mode=binfmt
if [ "${ARM64_NO_BINFMT:-0}" = 1 ]; then
	mode=direct
elif ! binfmt_works; then
	if binfmt_register && binfmt_works; then
		echo "check-arm64: registered qemu-aarch64 with binfmt_misc"
	else
		mode=direct
	fi
fi
echo "check-arm64: $(qemu-aarch64 --version | head -n 1); children via $mode"

cd "$build"
if [ "$mode" = binfmt ]; then
	exec ctest -L unit -j "$jobs" --timeout "$timeout" --output-on-failure
fi

# No binfmt: every test but test_monitor as usual, then test_monitor with a
# shimctl that names its emulator.
status=0
ctest -L unit -E '^unit/test_monitor$' -j "$jobs" --timeout "$timeout" \
	--output-on-failure || status=1
wrap="$build/qemu-wrap"
mkdir -p "$wrap"
printf '#!/bin/sh\nexec qemu-aarch64 %s/shimctl "$@"\n' "$build" >"$wrap/shimctl"
chmod +x "$wrap/shimctl"
echo "check-arm64: unit/test_monitor with SHIM_BUILD=$wrap"
start=$(date +%s)
if SHIM_SRC="$src" SHIM_BUILD="$wrap" timeout "$timeout" \
	qemu-aarch64 "$build/tests/test_monitor" >"$wrap/test_monitor.log" 2>&1; then
	echo "check-arm64: unit/test_monitor passed in $(($(date +%s) - start)) s"
else
	cat "$wrap/test_monitor.log"
	echo "check-arm64: unit/test_monitor FAILED"
	status=1
fi
exit $status
