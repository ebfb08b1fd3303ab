# The README's commands. CMake does the building; this file only names the
# steps a user runs.
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all deps configure check check-unit check-asan check-fuzz bench demo demo-walkthrough firmware firmware-test clean

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
	rm -rf $(BUILD) build-asan build-fuzz build-fw
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)
	$(MAKE) firmware
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	python3 firmware/stm32f4/tests/test_recording.py $(CURDIR) $(CURDIR)/$(BUILD)
	$(MAKE) check-asan check-fuzz

check-asan:
	cmake -S . -B build-asan -DSHIM_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --output-on-failure -j $(JOBS)

check-fuzz:
	CC=clang cmake -S . -B build-fuzz -DSHIM_FUZZ=ON -DBUILD_TESTING=OFF
	cmake --build build-fuzz -j $(JOBS)
	sh tests/fuzz/run.sh build-fuzz $${FUZZ_SECONDS:-10}

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
	rm -rf $(BUILD) build-asan build-fuzz build-fw
