#!/bin/sh
# Installs the Debian packages shimd needs to build, test, benchmark and
# demo. Idempotent: does nothing when everything is already there.
set -eu

# The STM32F405 firmware: the Cortex-M cross compiler and libc, QEMU to
# run it, and dpkg-source to unpack Debian's mbedtls source package
# (scripts/build-mbedtls-mcu.sh).
FW_PKGS="gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm dpkg-dev"

PKGS="build-essential cmake pkg-config clang libclang-rt-14-dev
libmbedtls-dev libyaml-dev libcmocka-dev libqrencode-dev libgpiod-dev libssl-dev
oathtool faketime socat python3 rsyslog rsyslog-gnutls gnutls-bin openssl
asciinema picocom tio procps zbar-tools strace"

missing=""
for p in $PKGS $FW_PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

echo "install-deps: installing:$missing"
if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
else
	SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
