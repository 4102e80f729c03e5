# jobrelay: build, test and check. A thin layer over CMake; the targets:
#
#   make / make build  check dependencies, configure and build into ./build
#   make test          install what is missing (scripts/deps.sh), build, run ctest
#   make demo          build, then run scripts/demo.sh
#   make install       build, then cmake --install into $(DESTDIR)$(PREFIX) (docs/install.md)
#   make package       build, then the Debian package ./build/jobrelay_<version>_<arch>.deb
#   make sanitize      unit tests under ASan (build-asan) and UBSan (build-ubsan)
#   make fuzz          build the libFuzzer targets with clang (build-fuzz) and run
#                      each for FUZZ_SECONDS on a copy of its seed corpus
#   make deps          install missing build and test dependencies
#   make clean         remove the build directories above
#
# Variables: JOBS (parallel jobs), CMAKE_ARGS (extra configure arguments),
# CTEST_ARGS, FUZZ_SECONDS (default 20), FUZZ_CC (default clang), FUZZ_ARGS
# (libFuzzer flags), JR_WERROR (ON when CI=true: warnings are errors in ./build),
# PREFIX (install prefix; empty: the configured one, /usr/local by default), DESTDIR
# (staging root for install).

SHELL := /bin/bash
.DEFAULT_GOAL := build

JOBS         ?= $(shell nproc 2>/dev/null || echo 2)
BUILD_DIR    ?= build
ASAN_DIR     ?= build-asan
UBSAN_DIR    ?= build-ubsan
FUZZ_DIR     ?= build-fuzz
FUZZ_SECONDS ?= 20
FUZZ_CC      ?= clang
FUZZ_ARGS    ?= -timeout=10 -print_funcs=0
CMAKE        ?= cmake
CTEST        ?= ctest
CPACK        ?= cpack
CMAKE_ARGS   ?=
CTEST_ARGS   ?=
PREFIX       ?=
DESTDIR      ?=
ifeq ($(CI),true)
JR_WERROR    ?= ON
else
JR_WERROR    ?= OFF
endif

FUZZ_TARGETS := $(sort $(basename $(notdir $(wildcard tests/fuzz/fuzz_*.c))))

export UBSAN_OPTIONS ?= print_stacktrace=1

# configure_and_build(<dir>, <cmake arguments>)
define configure_and_build
	$(CMAKE) -S . -B $(1) $(2) $(CMAKE_ARGS)
	$(CMAKE) --build $(1) -j$(JOBS)
endef

.PHONY: all build test demo install package sanitize asan ubsan fuzz fuzz-build deps deps-check clean help

all: build

help:
	@sed -n '1,/^$$/s/^# \{0,1\}//p' $(firstword $(MAKEFILE_LIST))

deps:
	@bash scripts/deps.sh

deps-check:
	@bash scripts/deps.sh --check

build: deps-check
	$(call configure_and_build,$(BUILD_DIR),-DJR_WERROR=$(JR_WERROR))

test: deps
	$(call configure_and_build,$(BUILD_DIR),-DJR_WERROR=$(JR_WERROR))
	$(CTEST) --test-dir $(BUILD_DIR) --output-on-failure $(CTEST_ARGS)

demo: deps
	$(call configure_and_build,$(BUILD_DIR),-DJR_WERROR=$(JR_WERROR))
	JR_BUILD_DIR=$(CURDIR)/$(BUILD_DIR) JOBRELAY=$(CURDIR)/$(BUILD_DIR)/src/jobrelay \
	  bash scripts/demo.sh

install: build
	DESTDIR="$(DESTDIR)" $(CMAKE) --install $(BUILD_DIR) $(if $(PREFIX),--prefix "$(PREFIX)")

package: build
	cd $(BUILD_DIR) && $(CPACK) -G DEB

sanitize: asan ubsan

asan: deps-check
	$(call configure_and_build,$(ASAN_DIR),-DSANITIZER=address)
	$(CTEST) --test-dir $(ASAN_DIR) -L unit --output-on-failure $(CTEST_ARGS)

ubsan: deps-check
	$(call configure_and_build,$(UBSAN_DIR),-DSANITIZER=undefined)
	$(CTEST) --test-dir $(UBSAN_DIR) -L unit --output-on-failure $(CTEST_ARGS)

fuzz-build: deps-check
	$(CMAKE) -S . -B $(FUZZ_DIR) -DCMAKE_C_COMPILER=$(FUZZ_CC) -DFUZZ=ON $(CMAKE_ARGS)
	$(CMAKE) --build $(FUZZ_DIR) --target fuzzers -j$(JOBS)

# Each target fuzzes <FUZZ_DIR>/tests/fuzz/corpus/<target>, a copy of its seeds
# that keeps what earlier runs found; crashes go to <FUZZ_DIR>/tests/fuzz/artifacts.
# tests/fuzz/<target>.dict, when present, is passed as a dictionary.
fuzz: fuzz-build
	@set -u; out=$(FUZZ_DIR)/tests/fuzz; failed=""; \
	if [ -z "$(FUZZ_TARGETS)" ]; then echo "fuzz: no tests/fuzz/fuzz_*.c targets"; exit 0; fi; \
	mkdir -p $$out/artifacts; \
	for t in $(FUZZ_TARGETS); do \
	  mkdir -p $$out/corpus/$$t; \
	  cp -R $$out/seeds/$$t/. $$out/corpus/$$t/; \
	  dict=(); if [ -f tests/fuzz/$$t.dict ]; then dict=(-dict=tests/fuzz/$$t.dict); fi; \
	  echo "=== fuzz: $$t for $(FUZZ_SECONDS) s (seeds: $$(ls $$out/seeds/$$t | wc -l))"; \
	  if ! $$out/$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $(FUZZ_ARGS) \
	      -artifact_prefix=$$out/artifacts/$$t- "$${dict[@]}" $$out/corpus/$$t; then \
	    failed="$$failed $$t"; \
	  fi; \
	done; \
	if [ -n "$$failed" ]; then \
	  echo "fuzz: FAILED:$$failed (inputs in $$out/artifacts)"; exit 1; \
	fi; \
	echo "fuzz: $(words $(FUZZ_TARGETS)) target(s) ran $(FUZZ_SECONDS) s each without a crash"

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) $(UBSAN_DIR) $(FUZZ_DIR)
