#!/bin/sh
# Installs the Debian packages shimd needs to build, test, benchmark and
# demo, and to cross-build core/ for microcontrollers (Cortex-M4, RV32)
# and run the firmware under QEMU. Idempotent: does nothing when
# everything is already there.
set -eu

# The STM32F405 firmware: the Cortex-M cross compiler and libc, QEMU to
# run it, and dpkg-source to unpack Debian's mbedtls source package
# (scripts/build-mbedtls-mcu.sh).
FW_PKGS="gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm dpkg-dev"

PKGS="build-essential cmake pkg-config clang libclang-rt-14-dev
libmbedtls-dev libyaml-dev libcmocka-dev libqrencode-dev libgpiod-dev libssl-dev
oathtool faketime socat python3 rsyslog rsyslog-gnutls gnutls-bin openssl
asciinema picocom tio procps zbar-tools strace
libcurl4-openssl-dev nginx-light
gcc-arm-none-eabi libnewlib-arm-none-eabi gcc-riscv64-unknown-elf
picolibc-riscv64-unknown-elf qemu-system-arm"

# arm64 (Raspberry Pi 4 / Zero 2 W): the cross compiler, its libc (a
# Recommends, so named here), Debian's arm64 multiarch -dev packages, and
# qemu-aarch64 to run the tests (make cross-arm64, make check-arm64;
# docs/arm64.md). libssl-dev:arm64 moves the host's OpenSSL to the same
# version, which is what multiarch requires.
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
	echo "install-deps: adding the arm64 architecture"
	if [ "$(id -u)" -ne 0 ]; then sudo dpkg --add-architecture arm64; else dpkg --add-architecture arm64; fi
fi
PKGS="$PKGS gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user qemu-user-binfmt
libmbedtls-dev:arm64 libyaml-dev:arm64 libcmocka-dev:arm64 libqrencode-dev:arm64
libgpiod-dev:arm64 libssl-dev:arm64 libcurl4-openssl-dev:arm64"

# shimd's seccomp allow-list (libseccomp, also for arm64), the man pages
# (scdoc, man-db renders them in tests), and the Debian package: debhelper,
# lintian, systemd-analyze for the unit (make deb, tests/package).
PKGS="$PKGS libseccomp-dev libseccomp-dev:arm64 scdoc man-db debhelper lintian
systemd"

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
