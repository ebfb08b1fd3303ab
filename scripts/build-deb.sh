#!/bin/sh
# make deb: builds shimd_<version>_<arch>.deb with dpkg-buildpackage from
# debian/, in a copy of the source tree (dpkg-buildpackage writes its
# results next to the tree it builds, which must not be the checkout's
# parent), then runs lintian and leaves the package in BUILD/.
#   sh scripts/build-deb.sh BUILD [ARCH]
set -eu
out=${1:-build}
arch=${2:-}
src=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$src/$out"
work=$(cd "$src/$out" && pwd)/deb

version=$(cd "$src" && dpkg-parsechangelog -S Version)
cmake_version=$(sed -n 's/^project(shim VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
if [ "$version" != "$cmake_version" ]; then
	echo "build-deb: debian/changelog says $version, CMakeLists.txt $cmake_version" >&2
	exit 1
fi

rm -rf "$work"
mkdir -p "$work/shimd-$version"
tar -C "$src" --exclude=./.git --exclude='./build*' --exclude='./obj-*' \
	--exclude=./debian/shimd --exclude=./debian/.debhelper \
	--exclude=./debian/tmp --exclude='./firmware/stm32f4/build*' -cf - . |
	tar -C "$work/shimd-$version" -xf -

cd "$work/shimd-$version"
if [ -n "$arch" ]; then
	# cross: the :arch libraries of scripts/install-deps.sh; scdoc runs
	# on the build machine (the check of cross build-dependencies is
	# skipped: scdoc is not marked Multi-Arch: foreign)
	dpkg-buildpackage -us -uc -b -a"$arch" -Pcross,nocheck -d
else
	arch=$(dpkg --print-architecture)
	dpkg-buildpackage -us -uc -b
fi
deb="shimd_${version}_${arch}.deb"
cd "$work"
echo "build-deb: lintian $deb"
lintian --fail-on error "$deb"
cp "$deb" "$work/.."
echo "build-deb: $out/$deb"
