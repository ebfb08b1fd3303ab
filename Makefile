# The README's commands. CMake does the building; this file only names the
# steps a user runs.
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all deps configure check check-unit check-asan check-fuzz cross-arm64 check-arm64 bench demo demo-walkthrough size firmware firmware-test clean

all: configure
	cmake --build $(BUILD) -j $(JOBS)

configure:
	@[ -f $(BUILD)/CMakeCache.txt ] || cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

deps:
	@sh scripts/install-deps.sh

# Everything, from scratch: packages, a clean build, every test, every test
# again with the binaries built under ASan+UBSan, and a short run of each
# fuzz target.
check: deps
	rm -rf $(BUILD) build-asan build-fuzz build-arm64 build-fw
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)
	$(MAKE) firmware
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	python3 firmware/stm32f4/tests/test_recording.py $(CURDIR) $(CURDIR)/$(BUILD)
	$(MAKE) check-asan check-arm64 check-fuzz
	sh scripts/check-summary.sh $(BUILD)

check-asan:
	cmake -S . -B build-asan -DSHIM_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --output-on-failure -j $(JOBS)

# The Linux build for arm64 (Raspberry Pi 4 / Zero 2 W), cross-compiled
# with Debian's aarch64-linux-gnu gcc and :arm64 libraries (docs/arm64.md).
cross-arm64:
	cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
	cmake --build build-arm64 -j $(JOBS)

# Its unit tests, run under qemu-aarch64.
check-arm64: cross-arm64
	JOBS=$(JOBS) sh scripts/check-arm64.sh build-arm64

check-fuzz:
	CC=clang cmake -S . -B build-fuzz -DSHIM_FUZZ=ON -DBUILD_TESTING=OFF
	cmake --build build-fuzz -j $(JOBS)
	sh tests/fuzz/run.sh build-fuzz $${FUZZ_SECONDS:-10}

# core/ cross-built for Cortex-M4 and RV32: flash, static RAM and stack per
# module, the gate path total and the build-time sizes, checked against
# size-budget.txt (make check runs the same check as a test).
size: deps
	sh scripts/cross-core.sh $(BUILD)/cross
	python3 scripts/size-report.py $(BUILD)/cross --check

# The STM32F405 firmware for QEMU's netduinoplus2 (build-fw/firmware.elf),
# with mbedTLS built from Debian's source package; prints its sizes.
# scripts/run-firmware.sh runs it.
firmware: deps
	$(MAKE) -C firmware/stm32f4 B=$(CURDIR)/build-fw

# Recordings made by the firmware, verified and decrypted by shimctl.
firmware-test: firmware all
	python3 firmware/stm32f4/tests/test_recording.py $(CURDIR) $(CURDIR)/$(BUILD)

bench: deps all
	sh bench/run.sh $(BUILD)

demo: deps all
	sh scripts/demo.sh $(BUILD)

# One whole session by itself, printing what each side saw.
demo-walkthrough: deps all
	sh scripts/demo.sh $(BUILD) --walkthrough

clean:
	rm -rf $(BUILD) build-asan build-fuzz build-arm64 build-fw

# The man pages (docs/man/*.scd, rendered by scdoc into build/man/).
.PHONY: man deb deb-arm64
man: configure
	cmake --build $(BUILD) --target man

# The Debian package, built by dpkg-buildpackage from debian/ in a copy of
# the tree under $(BUILD)/deb/; leaves $(BUILD)/shimd_<version>_<arch>.deb.
deb: deps
	sh scripts/build-deb.sh $(BUILD)

# The same, cross-built for arm64 (Raspberry Pi 4 / Zero 2 W).
deb-arm64: deps
	sh scripts/build-deb.sh $(BUILD) arm64
