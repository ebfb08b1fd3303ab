#!/bin/sh
# core/ must build for microcontrollers: it may include only freestanding
# C headers and its own, and must not call the allocator or stdio.
set -eu
cd "${SHIM_SRC:?}"
bad=$(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*<' core/*.c core/*.h |
	grep -vE '<(stddef|stdint|stdbool|stdarg|string|limits)\.h>' || true)
if [ -n "$bad" ]; then
	echo "core/ includes host headers:"; echo "$bad"; exit 1
fi
calls=$(grep -nE '\b(malloc|calloc|realloc|free|printf|fprintf|fopen|time|exit|abort)[[:space:]]*\(' core/*.c |
	grep -vE '^\S+:[0-9]+:[[:space:]]*(/\*|\*)' || true)
if [ -n "$calls" ]; then
	echo "core/ calls the allocator, stdio or the OS:"; echo "$calls"; exit 1
fi
# Compile every core file freestanding, as an MCU toolchain would.
cc=${CC:-cc}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for f in core/*.c; do
	$cc -std=c11 -ffreestanding -fno-builtin -Wall -Wextra -Werror \
		-Wno-unused-parameter -Icore -c "$f" -o "$out/$(basename "$f").o"
done
echo "1 passed, 0 failed"
