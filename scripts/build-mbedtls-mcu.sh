#!/bin/sh
# Builds libmbedcrypto.a for the Cortex-M4 firmware from Debian's mbedtls
# source package (the same 2.28 the Linux port links), with the firmware's
# own MBEDTLS_CONFIG_FILE. Idempotent: does nothing when the library was
# built from the same source, configuration and flags.
#
#   scripts/build-mbedtls-mcu.sh OUTDIR CONFIG_H
#
# Leaves OUTDIR/lib/libmbedcrypto.a and OUTDIR/include (the headers of the
# source that was built). The source package is fetched once into
# $SHIM_SRC_CACHE (default: ~/.cache/shim/src), never into the repository.
# When apt knows no deb-src entry yet, one is added beside the existing deb
# entry (/etc/apt/sources.list.d/shim-deb-src.sources, same URIs, suites,
# components and key) and apt-get update is run once.
set -eu

OUT=${1:?usage: build-mbedtls-mcu.sh OUTDIR CONFIG_H}
CONFIG=${2:?usage: build-mbedtls-mcu.sh OUTDIR CONFIG_H}
CACHE=${SHIM_SRC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shim/src}
CC=${MCU_CC:-arm-none-eabi-gcc}
AR=${MCU_AR:-arm-none-eabi-ar}
CFLAGS_MCU="-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 -Os
-ffunction-sections -fdata-sections -std=c99 -Wall -Wextra -Wno-unused-parameter"
SRCLIST=/etc/apt/sources.list.d/shim-deb-src.sources

CONFIG=$(cd "$(dirname "$CONFIG")" && pwd)/$(basename "$CONFIG")
mkdir -p "$OUT" "$CACHE"
OUT=$(cd "$OUT" && pwd)

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	else
		sudo "$@"
	fi
}

# The deb-src twin of every "Types: deb" stanza of the deb822 files and of
# every "deb" line of sources.list, for the Debian archive entries.
write_deb_src() {
	tmp=$(mktemp)
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		[ "$f" = "$SRCLIST" ] && continue
		awk '
		function flush() {
			if (types ~ /(^| )deb( |$)/ && uris ~ /debian/) {
				print "Types: deb-src"
				print "URIs:" uris
				print "Suites:" suites
				print "Components:" comps
				if (signed != "") print "Signed-By:" signed
				print ""
			}
			types = uris = suites = comps = signed = ""
		}
		/^[ \t]*$/ { flush(); next }
		/^#/ { next }
		/^Types:/ { sub(/^Types:[ \t]*/, ""); types = $0; next }
		/^URIs:/ { sub(/^URIs:/, ""); uris = $0; next }
		/^Suites:/ { sub(/^Suites:/, ""); suites = $0; next }
		/^Components:/ { sub(/^Components:/, ""); comps = $0; next }
		/^Signed-By:/ { sub(/^Signed-By:/, ""); signed = $0; next }
		END { flush() }' "$f" >>"$tmp"
	done
	if [ -f /etc/apt/sources.list ]; then
		awk '$1 == "deb" && $0 ~ /debian/ {
			opts = ""
			i = 2
			if ($2 ~ /^\[/) {
				while ($i !~ /\]$/) i++
				i++
			}
			uri = $i; suite = $(i + 1); comps = ""
			for (j = i + 2; j <= NF; j++) comps = comps " " $j
			print "Types: deb-src"
			print "URIs: " uri
			print "Suites: " suite
			print "Components:" comps
			print ""
		}' /etc/apt/sources.list >>"$tmp"
	fi
	if [ ! -s "$tmp" ]; then
		rm -f "$tmp"
		echo "build-mbedtls-mcu: no Debian deb entry to mirror as deb-src" >&2
		exit 1
	fi
	as_root install -m 0644 "$tmp" "$SRCLIST"
	rm -f "$tmp"
	echo "build-mbedtls-mcu: added $SRCLIST"
}

fetch_source() {
	if ls "$CACHE"/mbedtls_2.28*.dsc >/dev/null 2>&1; then
		return 0
	fi
	if ! apt-cache showsrc mbedtls >/dev/null 2>&1; then
		[ -f "$SRCLIST" ] || write_deb_src
		as_root apt-get update -qq
	fi
	(cd "$CACHE" && apt-get source --download-only -qq mbedtls)
	if ! ls "$CACHE"/mbedtls_2.28*.dsc >/dev/null 2>&1; then
		echo "build-mbedtls-mcu: apt-get source gave no mbedtls 2.28" >&2
		exit 1
	fi
}

for tool in "$CC" "$AR" dpkg-source; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "build-mbedtls-mcu: $tool missing (run scripts/install-deps.sh)" >&2
		exit 1
	fi
done

fetch_source
DSC=$(ls "$CACHE"/mbedtls_2.28*.dsc | sort | tail -n 1)
VER=$(sed -n 's/^Version: //p' "$DSC")
SRC="$OUT/mbedtls-$VER"

STAMP="$OUT/stamp"
WANT=$(printf '%s\n%s\n%s\n' "$VER" "$CC $CFLAGS_MCU" "$(cat "$CONFIG")" |
	sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] &&
	[ -f "$OUT/lib/libmbedcrypto.a" ]; then
	exit 0
fi

# dpkg-source -x applies the Debian patches.
rm -rf "$SRC" "$OUT/lib" "$OUT/obj" "$OUT/include"
dpkg-source --no-check -q -x "$DSC" "$SRC" >/dev/null

# The crypto objects only, as the library's own Makefile lists them
# (without the 3rdparty Everest X25519, which our configuration leaves out).
OBJS=$(printf 'print-crypto:\n\t@echo $(OBJS_CRYPTO)\n' |
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
		make -s --no-print-directory -C "$SRC/library" -f Makefile -f - \
		print-crypto |
	tr ' ' '\n' | grep '^[a-z0-9_]*\.o$' | tr '\n' ' ')
mkdir -p "$OUT/obj" "$OUT/lib"
echo "build-mbedtls-mcu: mbedtls $VER for Cortex-M4 ($(echo $OBJS | wc -w) objects)"
for o in $OBJS; do
	echo "${o%.o}"
done | xargs -P "$(nproc 2>/dev/null || echo 2)" -I{} \
	$CC $CFLAGS_MCU -I"$SRC/include" \
	"-DMBEDTLS_CONFIG_FILE=\"$CONFIG\"" \
	-c "$SRC/library/{}.c" -o "$OUT/obj/{}.o"
(cd "$OUT/obj" && $AR rcs "$OUT/lib/libmbedcrypto.a" $OBJS)
cp -r "$SRC/include" "$OUT/include"
echo "$WANT" >"$STAMP"
