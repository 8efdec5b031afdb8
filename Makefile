# serval-gateway: plain GNU make. `make` builds build/serval-gateway and build/serval-echo (-O2);
# `make test` builds everything again with ASan+UBSan under build/asan and runs every test.
# Sources are discovered: any .c under src/ belongs to the library except src/main.c and src/echo/.

SHELL := /bin/bash
CC ?= cc
ifeq ($(origin CC),default)
CC := cc
endif

LLHTTP_DIR   ?= /usr/share/llhttp
LLHTTP_INC   ?= /usr/share/include/llhttp

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
        -Wundef -Wvla -fno-common
BASE_CFLAGS := -std=gnu11 -D_GNU_SOURCE -g -pthread -Iinclude -Isrc -I$(LLHTTP_INC) -MMD -MP
LIBS := -luring -lwolfssl -lcjson -lyaml -lpcre2-8 -lnghttp2 -lpthread -lm

ASAN_FLAGS := -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

# variant: release (default) or asan
VARIANT ?= release
ifeq ($(VARIANT),asan)
  OUT := build/asan
  OPT := $(ASAN_FLAGS) -DSV_DEBUG=1
  LDOPT := -fsanitize=address,undefined
else
  OUT := build
  OPT := -O2
  LDOPT :=
endif

# wolfSSL: WOLFSSL=aesni (default: built from Debian's source package with AES-NI, Intel asm and
# SP math by third_party/wolfssl.sh, static, built once per machine into a cache outside the
# checkout, like ccache, so that a fresh clone does not spend ~1.5 min rebuilding it; the script
# keys it on the Debian version and the configure flags (the folder is named after the key: checkouts
# with other flags keep their own) and locks it against parallel builds;
# WOLFSSL_CACHE=build keeps it inside the checkout) or
# WOLFSSL=system (fallback: Debian's libwolfssl, no AES-NI). Both build into the same OUT; a
# flavour file in the object folder rebuilds every object when the choice changes. Numbers and
# the reason in README.md (TLS section).
WOLFSSL ?= aesni
ifeq ($(WOLFSSL),aesni)
  WOLFSSL_CACHE ?= $(if $(HOME),$(HOME)/.cache/serval-gateway,build)
  WOLFSSL_KEY := $(shell third_party/wolfssl.sh --key 2>/dev/null)
  WOLFSSL_DIR := $(WOLFSSL_CACHE)/wolfssl$(if $(WOLFSSL_KEY),-$(WOLFSSL_KEY))
  WOLFSSL_LIB := $(WOLFSSL_DIR)/lib/libwolfssl.a
  BASE_CFLAGS := -I$(WOLFSSL_DIR)/include $(BASE_CFLAGS)
  LIBS := $(subst -lwolfssl,$(WOLFSSL_LIB),$(LIBS))
else ifneq ($(WOLFSSL),system)
  $(error WOLFSSL must be aesni or system)
endif
OBJ := $(OUT)/obj
WOLFSSL_FLAVOUR := $(OBJ)/.wolfssl-flavour

LIB_SRC  := $(sort $(shell find src -name '*.c' ! -path 'src/main.c' ! -path 'src/echo/*'))
ECHO_SRC := $(sort $(wildcard src/echo/*.c))
UNIT_SRC := $(sort $(shell find tests/unit -name '*.c' 2>/dev/null))
LLHTTP_SRC := $(LLHTTP_DIR)/llhttp.c $(LLHTTP_DIR)/api.c $(LLHTTP_DIR)/http.c

LIB_OBJ  := $(LIB_SRC:%.c=$(OBJ)/%.o)
ECHO_OBJ := $(ECHO_SRC:%.c=$(OBJ)/%.o)
UNIT_OBJ := $(UNIT_SRC:%.c=$(OBJ)/%.o)
LLHTTP_OBJ := $(OBJ)/third_party/llhttp/llhttp.o $(OBJ)/third_party/llhttp/api.o $(OBJ)/third_party/llhttp/http.o

DEPS_STAMP := build/.deps-ok

.PHONY: FORCE all test unit integration asan run bench conformance clean check-layers deps format-check lint
all: $(OUT)/serval-gateway $(OUT)/serval-echo

$(DEPS_STAMP): third_party/deps.sh $(WOLFSSL_LIB)
	@WOLFSSL=$(WOLFSSL) third_party/deps.sh --check
	@mkdir -p build && touch $@

ifeq ($(WOLFSSL),aesni)
$(WOLFSSL_LIB): third_party/wolfssl.sh
	@WOLFSSL=$(WOLFSSL) third_party/deps.sh --check
	@third_party/wolfssl.sh $(WOLFSSL_DIR)
endif

# Rewritten only when the wolfSSL choice differs from the one the objects were built with (make
# re-reads its time after the recipe, so an unchanged file rebuilds nothing).
$(WOLFSSL_FLAVOUR): FORCE
	@mkdir -p $(dir $@)
	@[ "$$(cat $@ 2>/dev/null)" = "$(WOLFSSL) $(WOLFSSL_LIB)" ] || echo "$(WOLFSSL) $(WOLFSSL_LIB)" > $@
FORCE:

deps:
	WOLFSSL=$(WOLFSSL) third_party/deps.sh --all

$(OBJ)/%.o: %.c $(WOLFSSL_FLAVOUR) $(WOLFSSL_LIB) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(OPT) $(WARN) -c $< -o $@

# llhttp is third-party code compiled from Debian's sources with relaxed warnings.
$(OBJ)/third_party/llhttp/%.o: $(LLHTTP_DIR)/%.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -g -I$(LLHTTP_INC) $(OPT) -w -c $< -o $@

$(OUT)/libserval.a: $(LIB_OBJ) $(LLHTTP_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(OUT)/serval-gateway: $(OBJ)/src/main.o $(OUT)/libserval.a
	$(CC) $(LDOPT) -pthread -o $@ $^ $(LIBS)

$(OUT)/serval-echo: $(ECHO_OBJ) $(OUT)/libserval.a
	$(CC) $(LDOPT) -pthread -o $@ $^ $(LIBS)

$(OUT)/unit-tests: $(UNIT_OBJ) $(OUT)/libserval.a
	$(CC) $(LDOPT) -pthread -o $@ $(UNIT_OBJ) $(OUT)/libserval.a $(LIBS)

# ---- tests: everything under ASan+UBSan ------------------------------------------------------
asan:
	@$(MAKE) --no-print-directory VARIANT=asan build/asan/serval-gateway build/asan/serval-echo build/asan/unit-tests

test:
	@WOLFSSL=$(WOLFSSL) third_party/deps.sh --all
	@$(MAKE) --no-print-directory -j2 asan
	@$(MAKE) --no-print-directory -j2 all
	@tests/run.sh

unit: asan
	@ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 build/asan/unit-tests

integration: asan all
	@tests/run.sh --integration-only

# ---- running ----------------------------------------------------------------------------------
run: all
	@deploy/run-example.sh

bench: all
	@WOLFSSL=$(WOLFSSL) third_party/deps.sh --all
	@perf/bench.sh

conformance: all
	@tests/conformance/run.sh $(if $(CASE),--case $(CASE))

check-layers:
	@tests/check-layers.sh

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(ECHO_OBJ:.o=.d) $(UNIT_OBJ:.o=.d) $(OBJ)/src/main.d
