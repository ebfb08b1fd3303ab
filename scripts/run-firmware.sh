#!/bin/sh
# Runs the STM32F405 firmware in QEMU (netduinoplus2) like shimd with pty:
# endpoints: the technician USART (USART1) and the device USART (USART2)
# on host pseudo-terminals with links to them at the given paths.
#
#   scripts/run-firmware.sh --config CONFIG --tech LINK --dev LINK \
#       --state DIR [--events FILE]
#
# CONFIG is shimd's YAML; it becomes the provisioning blob (shimctl
# firmware-config) in DIR, which also holds the firmware's persistent
# state (semihosting files: gate state, clock floor, boot count, identity
# key) and its recordings (DIR/sessions). The events leaving USART3 (RFC
# 5424, one per line) are appended to FILE (default DIR/events.log).
# SIGTERM or SIGINT stops QEMU and removes the links; the exit status is 0
# then, QEMU's (non-zero) when the firmware stopped by itself.
#
# Environment: SHIM_FIRMWARE (the ELF; default build-fw/firmware.elf),
# SHIM_BUILD (where shimctl is; default build), QEMU (qemu-system-arm).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
FIRMWARE=${SHIM_FIRMWARE:-$ROOT/build-fw/firmware.elf}
BUILD=${SHIM_BUILD:-$ROOT/build}
QEMU=${QEMU:-qemu-system-arm}
CONFIG= TECH= DEV= STATE= EVENTS=

usage() {
	echo "usage: run-firmware.sh --config CONFIG --tech LINK --dev LINK" \
		"--state DIR [--events FILE]" >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case $1 in
	--config) CONFIG=${2:?}; shift 2 ;;
	--tech) TECH=${2:?}; shift 2 ;;
	--dev) DEV=${2:?}; shift 2 ;;
	--state) STATE=${2:?}; shift 2 ;;
	--events) EVENTS=${2:?}; shift 2 ;;
	-h|--help) usage ;;
	*) echo "run-firmware.sh: unknown argument: $1" >&2; usage ;;
	esac
done
[ -n "$CONFIG" ] && [ -n "$TECH" ] && [ -n "$DEV" ] && [ -n "$STATE" ] ||
	usage

abspath() {
	case $1 in
	/*) printf '%s\n' "$1" ;;
	*) printf '%s/%s\n' "$(pwd)" "$1" ;;
	esac
}
CONFIG=$(abspath "$CONFIG")
TECH=$(abspath "$TECH")
DEV=$(abspath "$DEV")
STATE=$(abspath "$STATE")
EVENTS=$(abspath "${EVENTS:-$STATE/events.log}")
FIRMWARE=$(abspath "$FIRMWARE")

SHIMCTL=$BUILD/shimctl
[ -x "$SHIMCTL" ] || SHIMCTL=$(command -v shimctl || true)
if [ -z "$SHIMCTL" ]; then
	echo "run-firmware.sh: no shimctl (build it with make)" >&2
	exit 1
fi
if [ ! -f "$FIRMWARE" ]; then
	echo "run-firmware.sh: no firmware at $FIRMWARE (make firmware)" >&2
	exit 1
fi
command -v "$QEMU" >/dev/null 2>&1 || {
	echo "run-firmware.sh: $QEMU missing (scripts/install-deps.sh)" >&2
	exit 1
}

umask 077
mkdir -p "$STATE/sessions"
chmod 700 "$STATE"

# The blob, from the same YAML shimd reads (secrets stay out of the image).
BLOB=$STATE/provision.bin
rm -f "$BLOB.new"
"$SHIMCTL" firmware-config "$CONFIG" -o "$BLOB.new"
mv -f "$BLOB.new" "$BLOB"

QLOG=$STATE/qemu.log
: >"$QLOG"
QEMU_PID=
TAIL_PID=

cleanup() {
	rm -f "$TECH" "$DEV"
	if [ -n "$TAIL_PID" ]; then
		kill "$TAIL_PID" 2>/dev/null || true
		wait "$TAIL_PID" 2>/dev/null || true
	fi
}

stop() {
	if [ -n "$QEMU_PID" ] && kill -0 "$QEMU_PID" 2>/dev/null; then
		kill -TERM "$QEMU_PID" 2>/dev/null || true
		wait "$QEMU_PID" 2>/dev/null || true
	fi
	cleanup
	exit 0
}
trap stop TERM INT HUP

# QEMU runs in the state directory: the firmware's semihosting files are
# relative to it (the blob is named by the semihosting command line).
(
	cd "$STATE"
	exec "$QEMU" -M netduinoplus2 -nographic -monitor none \
		-kernel "$FIRMWARE" \
		-semihosting-config enable=on,target=native,arg=shim-fw,arg=provision.bin \
		-chardev pty,id=tech -serial chardev:tech \
		-chardev pty,id=dev -serial chardev:dev \
		-chardev file,id=events,path="$EVENTS",append=on \
		-serial chardev:events
) >"$QLOG" 2>&1 </dev/null &
QEMU_PID=$!

# "char device redirected to /dev/pts/N (label tech)"
pty_of() {
	sed -n "s|^char device redirected to \\(/dev/pts/[0-9]*\\) (label $1)\$|\\1|p" \
		"$QLOG" | head -n 1
}

link() {
	ln -sf "$1" "$2.tmp.$$"
	mv -f "$2.tmp.$$" "$2"
}

tries=0
while :; do
	t=$(pty_of tech)
	d=$(pty_of dev)
	[ -n "$t" ] && [ -n "$d" ] && break
	if ! kill -0 "$QEMU_PID" 2>/dev/null; then
		cat "$QLOG" >&2
		echo "run-firmware.sh: QEMU did not start" >&2
		cleanup
		exit 1
	fi
	tries=$((tries + 1))
	if [ $tries -gt 200 ]; then
		cat "$QLOG" >&2
		echo "run-firmware.sh: QEMU gave no pseudo-terminals" >&2
		kill -TERM "$QEMU_PID" 2>/dev/null || true
		cleanup
		exit 1
	fi
	sleep 0.05
done
link "$t" "$TECH"
link "$d" "$DEV"
echo "run-firmware.sh: technician $TECH -> $t, device $DEV -> $d," \
	"events $EVENTS, state $STATE" >&2

# QEMU's own messages and the firmware's console (semihosting) to stderr.
tail -n +1 -f "$QLOG" >&2 &
TAIL_PID=$!

set +e
wait "$QEMU_PID"
rc=$?
set -e
QEMU_PID=
cleanup
echo "run-firmware.sh: the firmware stopped (status $rc)" >&2
[ $rc -eq 0 ] && rc=1
exit $rc
