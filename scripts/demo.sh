#!/bin/sh
# The shim with an emulated infusion pump, for someone trying it out.
#
#   sh scripts/demo.sh BUILD_DIR                 interactive: connect a terminal
#   sh scripts/demo.sh BUILD_DIR --walkthrough   one whole session by itself,
#                                                printing what each side saw
#
# Interactive mode runs "shimd --demo": storage in a temporary directory,
# the pump emulator on the device side, the technician side at a pty path,
# and the demo technician alice@example.org (secret JBSWY3DPEHPK3PXP).
set -eu
build=$(cd "${1:-build}" && pwd)
mode=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
secret=JBSWY3DPEHPK3PXP

for b in shimd shimctl pump-emulator; do
	if [ ! -x "$build/$b" ]; then
		echo "demo: $build/$b is missing: run make first" >&2
		exit 1
	fi
done

if [ "$mode" = "--walkthrough" ]; then
	exec python3 "$here/walkthrough.py" "$build"
fi

cat <<TXT
Pattern C MFA shim: demo
========================
The demo technician is alice@example.org. Scan this QR code with an
authenticator app (or use the codes printed by shimctl below):

TXT
"$build/shimctl" --config /nonexistent/demo.yaml enrol alice@example.org \
	--dry-run --secret "$secret" 2>/dev/null | sed -n '/^$/,$p' || true
echo
echo "Current code: $("$build/shimctl" totp now --secret "$secret")" \
	"(next ones: $build/shimctl totp now --secret $secret)"
echo "Pump service PIN (hard-coded, as on the real devices): 4711"
echo "For a session without a second terminal: sh scripts/demo.sh $1 --walkthrough"
exec "$build/shimd" --demo
