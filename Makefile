# The README's commands. CMake does the building; this file only names the
# steps a user runs.
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all deps configure check check-unit check-asan check-fuzz bench demo demo-walkthrough size clean

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
	rm -rf $(BUILD) build-asan build-fuzz
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
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

# core/ cross-built for Cortex-M4 and RV32: flash, static RAM and stack per
# module, the gate path total and the build-time sizes, checked against
# size-budget.txt (make check runs the same check as a test).
size: deps
	sh scripts/cross-core.sh $(BUILD)/cross
	python3 scripts/size-report.py $(BUILD)/cross --check

bench: deps all
	sh bench/run.sh $(BUILD)

demo: deps all
	sh scripts/demo.sh $(BUILD)

# One whole session by itself, printing what each side saw.
demo-walkthrough: deps all
	sh scripts/demo.sh $(BUILD) --walkthrough

clean:
	rm -rf $(BUILD) build-asan build-fuzz
