# Build, install and test mod_ctflopt.  Usage: make -f apxs.mk [all|install|deps|unit|test|demo|fuzz|clean]
# All compiler and linker flags come from `apxs -q` and pkg-config.

APXS      ?= apxs
CC        ?= cc
PKGS      := apr-1 apr-util-1 libcurl jansson libxml-2.0
BUILD     ?= build
SANITIZE  ?=
SHELL     := /bin/bash

AP_INCLUDEDIR := $(shell $(APXS) -q INCLUDEDIR 2>/dev/null)
AP_CFLAGS     := $(shell $(APXS) -q CFLAGS 2>/dev/null) $(shell $(APXS) -q EXTRA_CPPFLAGS 2>/dev/null)
PKG_CFLAGS    := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS      := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
VERSION       := $(shell sed -n 's/^#define CTFLOPT_VERSION "\(.*\)"/\1/p' mod_ctflopt/ctflopt_version.h)

WARN     := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wstrict-prototypes
ifneq ($(SANITIZE),)
  SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif
# -fno-semantic-interposition: nothing interposes the module's own functions, so
# GCC may call (and inline) them directly instead of through the PLT
CFLAGS_ALL := $(WARN) -fPIC -fno-semantic-interposition -O2 -g $(SANFLAGS) -I$(AP_INCLUDEDIR) $(AP_CFLAGS) $(PKG_CFLAGS) -Imod_ctflopt -Ifilters

# Pure code (no httpd headers): ctfl_*.c.  Apache glue: mod_ctflopt.c, ctflopt_*.c.
CORE_SRCS := $(sort $(wildcard mod_ctflopt/ctfl_*.c filters/ctfl_*.c))
GLUE_SRCS := $(sort $(wildcard mod_ctflopt/mod_ctflopt.c mod_ctflopt/ctflopt_*.c filters/ctflopt_*.c))
CORE_OBJS := $(CORE_SRCS:%.c=$(BUILD)/obj/%.o)
GLUE_OBJS := $(GLUE_SRCS:%.c=$(BUILD)/obj/%.o)
HEADERS   := $(wildcard mod_ctflopt/*.h filters/*.h)

UNIT_SRCS := $(sort $(wildcard test/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:test/unit/%.c=$(BUILD)/unit/%)

.PHONY: all install deps unit unit-asan unit-valgrind test integration integration-asan demo fuzz bench bench-rewrite bench-region clean
all: $(BUILD)/mod_ctflopt.so

$(BUILD)/obj/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/mod_ctflopt.so: $(CORE_OBJS) $(GLUE_OBJS)
	$(CC) -shared $(SANFLAGS) -o $@.tmp $^ $(PKG_LIBS)
	@# httpd provides ap_* at load time; our own symbols must all be defined here.
	@if nm -u $@.tmp | grep -E ' (ctfl|ctflopt)_'; then echo "undefined module symbols" >&2; rm -f $@.tmp; exit 1; fi
	@mv $@.tmp $@

$(BUILD)/libctfl.a: $(CORE_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/unit/%: test/unit/%.c $(BUILD)/libctfl.a $(wildcard test/unit/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Wno-missing-field-initializers -Itest/unit $< -o $@ $(BUILD)/libctfl.a $(PKG_LIBS) -lcmocka

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; CTFL_SHARED=$(CURDIR)/../shared $$t; done

install: $(BUILD)/mod_ctflopt.so
	$(APXS) -i -n ctflopt $(BUILD)/mod_ctflopt.so
	install -m 644 conf/ctflopt.load $(shell $(APXS) -q SYSCONFDIR)/mods-available/ctflopt.load
	install -m 644 conf/ctflopt.conf $(shell $(APXS) -q SYSCONFDIR)/mods-available/ctflopt.conf

# Debian packages needed to build, test and run the demo (idempotent).
DEB_PKGS := apache2 apache2-dev libapr1-dev libaprutil1-dev libcurl4-openssl-dev libjansson-dev \
            libxml2-dev libcmocka-dev pkg-config gcc make clang python3 python3-pytest curl wrk \
            valgrind chromium nodejs apache2-utils
deps:
	@if dpkg-query -W -f='$${Status}\n' $(DEB_PKGS) 2>/dev/null | grep -qv 'install ok installed' \
	   || [ $$(dpkg-query -W -f='$${Status}\n' $(DEB_PKGS) 2>/dev/null | wc -l) -ne $(words $(DEB_PKGS)) ]; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(DEB_PKGS); \
	else echo "deps: all Debian packages present"; fi
	@# Debian's npm conflicts with nodejs builds that bundle their own npm.
	@command -v npm >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends npm

# Unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer, and under valgrind.
# (use_sigaltstack=0: GCC 12's ASan misreports its own alternate stack when a
# thread exits; test_objcache starts threads.)
unit-asan:
	ASAN_OPTIONS=use_sigaltstack=0 $(MAKE) -f apxs.mk BUILD=$(BUILD)-asan SANITIZE=address,undefined unit

unit-valgrind: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== valgrind $$t"; \
	  CTFL_SHARED=$(CURDIR)/../shared CTFL_UNDER_VALGRIND=1 valgrind -q --error-exitcode=1 \
	    --leak-check=full --errors-for-leak-kinds=definite $$t; done

# libFuzzer targets (clang), each run for FUZZ_SECONDS on a scratch copy of its seed corpus.
FUZZ_SECONDS ?= 30
FUZZ_SRCS := $(sort $(wildcard test/fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_SRCS:test/fuzz/%.c=$(BUILD)/fuzz/%)
$(BUILD)/fuzz/%: test/fuzz/%.c $(CORE_SRCS) $(HEADERS)
	@mkdir -p $(dir $@)
	clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -I$(AP_INCLUDEDIR) \
	  $(PKG_CFLAGS) -Imod_ctflopt -Ifilters $< $(CORE_SRCS) -o $@ $(PKG_LIBS)
fuzz: $(FUZZ_BINS)
	@set -e; for t in $(FUZZ_BINS); do n=$$(basename $$t); c=$(BUILD)/fuzz/corpus-$$n; \
	  rm -rf $$c; mkdir -p $$c; cp test/fuzz/corpus/$${n#fuzz_}/* $$c/ 2>/dev/null || true; \
	  echo "== $$n for $(FUZZ_SECONDS)s"; \
	  $$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $$c > $$c.log 2>&1 \
	    || { tail -50 $$c.log; exit 1; }; \
	  grep -E 'stat::number_of_executed_units|Done' $$c.log; done

integration: all
	@# one run per directory: each has its own conftest.py
	@set -e; for d in test/emulator test/demo test/integration; do \
	  echo "== pytest $$d"; /usr/bin/python3 -m pytest -q -p no:cacheprovider $$d; done

# A representative part of the integration suite against an ASan/UBSan build of the module
# (runtime preloaded into apache2 only); any sanitizer report fails the run.
ASAN_LOGS := $(CURDIR)/$(BUILD)-asanmod/reports
integration-asan:
	$(MAKE) -f apxs.mk BUILD=$(BUILD)-asanmod SANITIZE=address,undefined $(BUILD)-asanmod/mod_ctflopt.so
	rm -rf $(ASAN_LOGS) && mkdir -p $(ASAN_LOGS) && chmod 777 $(ASAN_LOGS)
	CTFLOPT_MODULE=$(CURDIR)/$(BUILD)-asanmod/mod_ctflopt.so \
	CTFLOPT_APACHE_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)" \
	ASAN_OPTIONS=detect_leaks=0:log_path=$(ASAN_LOGS)/asan UBSAN_OPTIONS=print_stacktrace=1:log_path=$(ASAN_LOGS)/ubsan \
	  /usr/bin/python3 -m pytest -q -p no:cacheprovider test/integration/test_consent.py \
	    test/integration/test_faults.py test/integration/test_personalize.py test/integration/test_cda.py \
	    test/integration/test_charsets.py test/integration/test_caps.py test/integration/test_proxy.py
	@if ls $(ASAN_LOGS)/* >/dev/null 2>&1; then cat $(ASAN_LOGS)/*; echo "sanitizer reports" >&2; exit 1; fi

# The whole suite (README, .ci/run).
test: deps
	$(MAKE) -f apxs.mk all unit
	$(MAKE) -f apxs.mk unit-asan
	$(MAKE) -f apxs.mk unit-valgrind
	$(MAKE) -f apxs.mk fuzz
	$(MAKE) -f apxs.mk integration
	$(MAKE) -f apxs.mk integration-asan

demo: deps all
	test/demo/run-demo.sh

# In-process rewriter throughput on ../shared/bench/corpus (ratio to memcpy, same run).
$(BUILD)/rewrite_bench: bench/rewrite_bench.c $(BUILD)/libctfl.a
	$(CC) $(CFLAGS_ALL) $< -o $@ $(BUILD)/libctfl.a $(PKG_LIBS)
bench-rewrite: $(BUILD)/rewrite_bench
	$(BUILD)/rewrite_bench $(CURDIR)/../shared/bench/corpus

# The full in-process rewrite (marked elements resolved from a warm entry index).
$(BUILD)/region_bench: bench/region_bench.c $(BUILD)/libctfl.a
	$(CC) $(CFLAGS_ALL) $< -o $@ $(BUILD)/libctfl.a $(PKG_LIBS)
bench-region: $(BUILD)/region_bench
	$(BUILD)/region_bench $(CURDIR)/../shared/bench/corpus

# Apache req/s and latency, module on vs plain static serving, same run.
bench: all
	bench/run.sh

clean:
	rm -rf $(BUILD)
