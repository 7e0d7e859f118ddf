# lane -- build, test and demo.
#
#   make demo        install missing build packages (as root), build, and
#                    route every bundled example request
#   make test        build and run every test under prove
#   make check-asan  the whole suite under AddressSanitizer + UBSan (with
#                    float-cast-overflow, which UBSan leaves out by default)
#   make check-tsan  the whole suite under ThreadSanitizer
#   make check-ubsan the whole suite under UndefinedBehaviorSanitizer alone
#   make check-valgrind  unit tests and golden runs under valgrind memcheck
#   make lint-c      clang-tidy and cppcheck (.clang-tidy, tests/lint/)
#   make fuzz        each libFuzzer target for FUZZ_SECONDS (tests/fuzz/)
#   make bench       benchmarks (see tests/bench/)
#
# Outputs go to build/ (or $(BUILD)); nothing is written elsewhere.

CC       ?= cc
BUILD    ?= build
CFLAGS   ?= -O2 -g
SAN      ?=
# -Wformat=2: every printf-style call has a literal format the compiler
# checks; each layer reports errors through one printf-checked helper
# (vm_errf in vm/, diag_report in lang/ and compiler/).
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wformat=2
# -ffp-contract=off: cost arithmetic must be bit-identical on every machine.
BASE     := -MMD -MP -std=c11 -D_POSIX_C_SOURCE=200809L -ffp-contract=off -fPIC \
            -fvisibility=hidden
# Each folder is a link unit and sees only its own headers and those of the
# units below it, so a lower layer cannot include a higher one (the build
# fails; tests/host/layers.sh says which file did it):
#   vm/           liblane         libc only
#   vm/json/      liblane-json    liblane, jansson
#   vm/redis/     liblane-redis   liblane, hiredis, pthreads
#   vm/re/        liblane-re      liblane, libpcre2-8 (matches())
#   lang/         the front end   (in liblanec) vm's text.h
#   compiler/     liblanec        lang, liblane; lanec.h is its API
#   compiler/bundle/ liblane-bundle liblanec, liblane, jansson, libsodium;
#                                 lane_bundle.h is its API (for hosts)
#   compiler/cli/ the lane command liblane-bundle, liblanec, liblane,
#                                 jansson, libcurl
INC_vm       := -Ivm
INC_json     := -Ivm/json $(INC_vm)
INC_redis    := -Ivm/redis $(INC_vm)
INC_re       := -Ivm/re $(INC_vm)
INC_lang     := -Ilang -I$(BUILD)/lang $(INC_vm)
INC_compiler := -Icompiler $(INC_lang)
INC_bundle   := -Icompiler/bundle $(INC_compiler)
INC_cli      := -Icompiler/cli $(INC_bundle)
# Tests, fuzz targets and benchmarks sit above everything.
INC_tests    := -Itests $(INC_cli) -Ivm/json -Ivm/redis -Ivm/re
UNIT_INC      = $(INC_tests)
$(BUILD)/vm/%.o:           UNIT_INC = $(INC_vm)
$(BUILD)/vm/json/%.o:      UNIT_INC = $(INC_json)
$(BUILD)/vm/redis/%.o:     UNIT_INC = $(INC_redis)
$(BUILD)/vm/re/%.o:        UNIT_INC = $(INC_re)
$(BUILD)/lang/%.o:         UNIT_INC = $(INC_lang)
$(BUILD)/compiler/%.o:     UNIT_INC = $(INC_compiler)
$(BUILD)/compiler/bundle/%.o: UNIT_INC = $(INC_bundle)
$(BUILD)/compiler/cli/%.o: UNIT_INC = $(INC_cli)
ALL_CFLAGS = $(BASE) $(UNIT_INC) $(WARN) -DLANE_STDLIB_DIR=\"$(abspath stdlib)\" $(CFLAGS) $(SAN)
# flex and bison output is not ours to tidy: keep -Werror, drop the noisy ones.
GEN_CFLAGS = $(BASE) $(INC_lang) -Wall -Werror -Wno-unused-function -Wno-unused-but-set-variable \
             -Wno-sign-compare $(CFLAGS) $(SAN)
LDLIBS_TOOLS := -ljansson -lcurl -lsodium
PACKAGES := flex bison libjansson-dev libcurl4-openssl-dev make gcc perl python3 libmicrohttpd-dev \
            libsodium-dev libhiredis-dev tzdata libpcre2-dev

# The VM core (liblane): libc only.
VM_SRC   := $(wildcard vm/*.c)
VM_OBJ   := $(VM_SRC:%.c=$(BUILD)/%.o)
# The front end and the compiler (liblanec): libc and liblane.
GEN_SRC  := $(BUILD)/lang/parser.c $(BUILD)/lang/lexer.c
TOOL_SRC := $(wildcard lang/*.c compiler/*.c)
TOOL_OBJ := $(TOOL_SRC:%.c=$(BUILD)/%.o) $(GEN_SRC:%.c=%.o)
# The lane command's file handling (catalogs, snapshots, lane test), the
# only code that needs jansson and libcurl; tests link it as lane-cli.a.
CLI_SRC  := $(filter-out compiler/cli/main.c,$(wildcard compiler/cli/*.c))
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
# Bundles (compiler/bundle/README.md): jansson and libsodium. The tree links
# the unit's objects as lane-bundle.a beside liblanec.a; hosts get
# liblane-bundle.a, the same objects and liblanec's merged into one object
# whose only global symbols are lane_bundle.h's functions.
BUNDLE_SRC := $(wildcard compiler/bundle/*.c)
BUNDLE_OBJ := $(BUNDLE_SRC:%.c=$(BUILD)/%.o)

LIB_A    := $(BUILD)/liblane.a
LIB_SO   := $(BUILD)/liblane.so
TOOLS_A  := $(BUILD)/liblanec.a
CLI_A    := $(BUILD)/lane-cli.a
BUNDLE_A := $(BUILD)/lane-bundle.a
LIB_BUNDLE := $(BUILD)/liblane-bundle.a
LANE     := $(BUILD)/lane
OBJCOPY  ?= objcopy

UNIT_SRC := $(wildcard tests/unit/t_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

# Fuzz targets (tests/fuzz/); json only once vm/json/json.c exists. Each is also
# built as a plain replay program that `make test` runs over its corpus.
JSON_SRC     := vm/json/json.c
FUZZ_TARGETS := compile load decide diff explain import state bundle $(if $(JSON_SRC),json)
REPLAY_BIN   := $(FUZZ_TARGETS:%=$(BUILD)/tests/replay_%)

# The provider catalogs in stdlib/ are generated from the shared LiteLLM
# price file; `make stdlib` regenerates them (CATALOG= another file).
CATALOG   ?= ../shared/data/catalog/litellm_model_prices.json
PROVIDERS := anthropic openai gemini vertex_ai bedrock mistral deepseek groq \
             together_ai fireworks_ai xai cohere openrouter

.PHONY: all deps demo demo-swap test check-asan check-tsan check-ubsan check-valgrind valgrind-bins lint-c \
        fuzz fuzz-deps fuzz-build fuzz-bins fuzz-merge bench clean stdlib
all: $(LANE) $(LIB_A) $(LIB_SO) $(LIB_BUNDLE) $(BUILD)/liblane-redis.a $(BUILD)/liblane-re.a \
     $(BUILD)/liblane-re.so

# Installs what the build needs when run as root and something is missing.
deps:
	@missing=""; \
	command -v flex  >/dev/null || missing="$$missing flex"; \
	command -v bison >/dev/null || missing="$$missing bison"; \
	command -v prove >/dev/null || missing="$$missing perl"; \
	echo '#include <jansson.h>' | $(CC) -E - >/dev/null 2>&1 || missing="$$missing libjansson-dev"; \
	echo '#include <curl/curl.h>' | $(CC) -E - >/dev/null 2>&1 || missing="$$missing libcurl4-openssl-dev"; \
	echo '#include <microhttpd.h>' | $(CC) -E - >/dev/null 2>&1 || missing="$$missing libmicrohttpd-dev"; \
	echo '#include <sodium.h>' | $(CC) -E - >/dev/null 2>&1 || missing="$$missing libsodium-dev"; \
	echo '#include <hiredis/hiredis.h>' | $(CC) -E - >/dev/null 2>&1 || missing="$$missing libhiredis-dev"; \
	printf '#define PCRE2_CODE_UNIT_WIDTH 8\n#include <pcre2.h>\n' | $(CC) -E - >/dev/null 2>&1 || missing="$$missing libpcre2-dev"; \
	command -v python3 >/dev/null || missing="$$missing python3"; \
	[ -e /usr/share/zoneinfo/America/New_York ] || missing="$$missing tzdata"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing build packages:$$missing (run 'make deps' as root, or apt-get install them)"; exit 2; \
	  fi; \
	fi

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -DLANE_BUILDING -c $< -o $@

$(BUILD)/lang/parser.c $(BUILD)/lang/parser.h: lang/parser.y
	@mkdir -p $(BUILD)/lang
	bison -Wall -Werror -o $(BUILD)/lang/parser.c --header=$(BUILD)/lang/parser.h $<

$(BUILD)/lang/lexer.c $(BUILD)/lang/lexer.h: lang/lexer.l $(BUILD)/lang/parser.h
	@mkdir -p $(BUILD)/lang
	flex -o $(BUILD)/lang/lexer.c --header-file=$(BUILD)/lang/lexer.h $<

$(BUILD)/lang/%.o: $(BUILD)/lang/%.c $(BUILD)/lang/parser.h $(BUILD)/lang/lexer.h
	$(CC) $(GEN_CFLAGS) -c $< -o $@

$(TOOL_SRC:%.c=$(BUILD)/%.o) $(BUNDLE_OBJ) $(CLI_OBJ) $(BUILD)/compiler/cli/main.o: $(BUILD)/lang/parser.h $(BUILD)/lang/lexer.h

# An archive is written anew, so an object whose source moved or went away
# cannot linger in it.
$(LIB_A): $(VM_OBJ)
	rm -f $@ && ar rcs $@ $^
$(LIB_SO): $(VM_OBJ)
	$(CC) -shared $(SAN) -o $@ $^
$(TOOLS_A): $(TOOL_OBJ)
	rm -f $@ && ar rcs $@ $^
$(CLI_A): $(CLI_OBJ)
	rm -f $@ && ar rcs $@ $^
$(BUNDLE_A): $(BUNDLE_OBJ)
	rm -f $@ && ar rcs $@ $^
# One relocatable object (ld -r) whose hidden symbols -- the compiler's,
# built with -fvisibility=hidden -- are made local: a host sees only
# LANE_API functions, and none of its names can clash with liblanec's.
# What it uses of liblane (which it does not contain) comes from liblane.a.
$(LIB_BUNDLE): $(BUNDLE_OBJ) $(TOOL_OBJ)
	rm -f $@ $(BUILD)/liblane-bundle.o
	$(LD) -r -o $(BUILD)/liblane-bundle.o $^
	$(OBJCOPY) --localize-hidden $(BUILD)/liblane-bundle.o
	ar rcs $@ $(BUILD)/liblane-bundle.o

$(LANE): $(BUILD)/compiler/cli/main.o $(CLI_A) $(BUNDLE_A) $(TOOLS_A) $(BUILD)/liblane-json.a \
         $(BUILD)/liblane-re.a $(LIB_A)
	$(CC) $(SAN) -o $@ $^ $(LDLIBS_TOOLS) -lpcre2-8 -lm

# The regular-expression engine for matches() (vm/re/re.c, PCRE2) is a
# library of its own, liblane-re: a host installs it with
# lane_regex_install(lane_regex_pcre2()); one that needs no matches()
# links neither it nor PCRE2.
RE_A     := $(BUILD)/liblane-re.a
RE_SO    := $(BUILD)/liblane-re.so
$(RE_A): $(BUILD)/vm/re/re.o
	rm -f $@ && ar rcs $@ $^
$(RE_SO): $(BUILD)/vm/re/re.o $(LIB_SO)
	$(CC) -shared $(SAN) -o $@ $(BUILD)/vm/re/re.o -L$(BUILD) -llane -Wl,-rpath,'$$ORIGIN' -lpcre2-8

# The request adapters (vm/json/json.c, jansson) are a library of their own,
# liblane-json, so liblane keeps depending on libc only. build/liblane.so and
# build/liblane-json.so are for the tree (tests, bindings/python: the json one
# finds liblane.so beside itself); `make install` installs versioned copies
# with sonames liblane.so.$(SOMAJOR) and liblane-json.so.$(SOMAJOR).
VERSION  := $(shell sed -n 's/.*LANE_VERSION_STRING *"\([^"]*\)".*/\1/p' vm/lane.h)
SOMAJOR  := $(firstword $(subst ., ,$(VERSION)))
JSON_A   := $(BUILD)/liblane-json.a
JSON_SO  := $(BUILD)/liblane-json.so
LIB_SOV  := $(BUILD)/liblane.so.$(VERSION)
JSON_SOV := $(BUILD)/liblane-json.so.$(VERSION)
JSON_LIBS := $(JSON_A) $(JSON_SO) $(LIB_SOV) $(JSON_SOV)

$(JSON_A): $(BUILD)/vm/json/json.o
	rm -f $@ && ar rcs $@ $^
$(JSON_SO): $(BUILD)/vm/json/json.o $(LIB_SO)
	$(CC) -shared $(SAN) -o $@ $(BUILD)/vm/json/json.o -L$(BUILD) -llane -Wl,-rpath,'$$ORIGIN' -ljansson
$(LIB_SOV): $(VM_OBJ)
	$(CC) -shared $(SAN) -Wl,-soname,liblane.so.$(SOMAJOR) -o $@ $^
$(JSON_SOV): $(BUILD)/vm/json/json.o $(LIB_SOV)
	$(CC) -shared $(SAN) -Wl,-soname,liblane-json.so.$(SOMAJOR) -o $@ $^ -ljansson

# The fleet store adapter (vm/redis/, hiredis and a thread) is a library of
# its own too, liblane-redis: a host that shares no state links neither.
REDIS_A  := $(BUILD)/liblane-redis.a
$(REDIS_A): $(BUILD)/vm/redis/redis.o
	rm -f $@ && ar rcs $@ $^

# A unit test links the compiler and the VM, and nothing else unless it
# says so: only the tests of the lane command's file handling, of snapshots
# and bundles, and of the JSON adapter link lane-cli.a, lane-bundle.a,
# liblane-json, jansson, libsodium.
$(BUILD)/tests/%: tests/unit/%.c tests/tap.h $(CLI_A) $(BUNDLE_A) $(TOOLS_A) $(JSON_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(TEST_OBJS) $(TEST_PRE) $(TOOLS_A) $(LIB_A) $(TEST_POST) -lm -lpthread $(TEST_LDFLAGS)
$(BUILD)/tests/t_runtime: TEST_PRE = $(CLI_A) $(BUNDLE_A) $(JSON_A)
$(BUILD)/tests/t_bundle: TEST_PRE = $(BUNDLE_A)
$(BUILD)/tests/t_bundle: TEST_POST = -ljansson -lsodium
$(BUILD)/tests/t_oom: TEST_PRE = $(CLI_A) $(RE_A)
$(BUILD)/tests/t_runtime $(BUILD)/tests/t_stress: TEST_POST = -ljansson
$(BUILD)/tests/t_oom: TEST_POST = -ljansson -lpcre2-8
$(BUILD)/tests/t_json: TEST_PRE = $(JSON_A)
$(BUILD)/tests/t_cel $(BUILD)/tests/t_verify $(BUILD)/tests/t_explain $(BUILD)/tests/t_oom: $(RE_A)
$(BUILD)/tests/t_cel $(BUILD)/tests/t_verify: TEST_PRE = $(RE_A)
$(BUILD)/tests/t_cel $(BUILD)/tests/t_verify: TEST_POST = -lpcre2-8
$(BUILD)/tests/t_redis: $(REDIS_A)
$(BUILD)/tests/t_redis: TEST_PRE = $(REDIS_A)
$(BUILD)/tests/t_redis: TEST_POST = -lhiredis
$(BUILD)/tests/t_json $(BUILD)/tests/t_log: TEST_POST = -ljansson
$(BUILD)/tests/t_explain: TEST_PRE = $(RE_A)
$(BUILD)/tests/t_explain: TEST_POST = -ljansson -lpcre2-8

# t_oom fails allocations in turn: the library's malloc, calloc, realloc and
# free calls go through its wrappers (works under ASan and TSan too), and
# its arena comes in 256-byte blocks so that failures land inside the parser.
$(BUILD)/tests/t_oom: TEST_LDFLAGS = -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free
$(BUILD)/tests/t_oom: TEST_OBJS = $(BUILD)/tests/ast_small.o
$(BUILD)/tests/t_oom: $(BUILD)/tests/ast_small.o
$(BUILD)/tests/ast_small.o: lang/ast.c lang/ast.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -DARENA_BLOCK=256 -c $< -o $@

# make install [PREFIX=/usr/local] [DESTDIR=staging]: the lane command, both
# libraries (static, and shared with soname links), lane.h, liblane-bundle.a
# and lane_bundle.h, pkg-config files (written here, for PREFIX), the stdlib
# (which an installed lane finds at <bindir>/../share/lane/stdlib) and the
# man page. lane-bundle.pc links liblane's static archive: liblane-bundle
# uses liblane's internals, which liblane.so does not export.
PREFIX  ?= /usr/local
DESTDIR ?=
# The Python binding goes where this python3 looks for modules under PREFIX
# (e.g. PREFIX/lib/python3.11/site-packages, or dist-packages on Debian's
# own python3), relative to PREFIX so that DESTDIR staging works.
PYTHON_SITE ?= $(or $(patsubst $(PREFIX)%,%,$(shell python3 -c 'import sysconfig; print(sysconfig.get_path("purelib", vars={"base": "$(PREFIX)", "platbase": "$(PREFIX)"}))' 2>/dev/null)),/lib/python3/dist-packages)
INST     = $(DESTDIR)$(PREFIX)
define LANE_PC
prefix=$(PREFIX)\nexec_prefix=$${prefix}\nlibdir=$${exec_prefix}/lib\nincludedir=$${prefix}/include\n\n
endef
.PHONY: install install-files
install: all $(JSON_LIBS) $(LIB_BUNDLE)
	@$(MAKE) --no-print-directory install-files
# Copies what the build made and builds nothing (tests/install/install.sh
# uses it so that a test never rebuilds the tree it is testing).
install-files:
	install -d $(INST)/bin $(INST)/lib/pkgconfig $(INST)/include $(INST)/share/man/man1 \
	  $(INST)/share/lane/stdlib
	install -m 755 $(LANE) $(INST)/bin/lane
	install -m 644 $(LIB_A) $(JSON_A) $(RE_A) $(LIB_BUNDLE) $(INST)/lib/
	install -m 755 $(LIB_SOV) $(JSON_SOV) $(INST)/lib/
	for l in liblane liblane-json; do \
	  ln -sf $$l.so.$(VERSION) $(INST)/lib/$$l.so.$(SOMAJOR) && \
	  ln -sf $$l.so.$(SOMAJOR) $(INST)/lib/$$l.so || exit 1; done
	install -m 644 vm/lane.h $(INST)/include/lane.h
	install -m 644 compiler/bundle/lane_bundle.h $(INST)/include/lane_bundle.h
	cd stdlib && find . -name '*.lane' | while read -r f; do \
	  install -D -m 644 "$$f" "$(INST)/share/lane/stdlib/$$f" || exit 1; done
	install -m 644 doc/lane.1 $(INST)/share/man/man1/lane.1
	install -d $(INST)$(PYTHON_SITE)
	install -m 644 bindings/python/lane.py $(INST)$(PYTHON_SITE)/lane.py
	printf '$(LANE_PC)Name: lane\nDescription: lane routing VM for LLM requests\nVersion: %s\nLibs: -L$${libdir} -llane\nCflags: -I$${includedir}\n' \
	  $(VERSION) > $(INST)/lib/pkgconfig/lane.pc
	printf '$(LANE_PC)Name: lane-json\nDescription: lane request adapters for OpenAI and Anthropic bodies\nVersion: %s\nRequires: lane\nRequires.private: jansson\nLibs: -L$${libdir} -llane-json\nCflags: -I$${includedir}\n' \
	  $(VERSION) > $(INST)/lib/pkgconfig/lane-json.pc
	printf '$(LANE_PC)Name: lane-re\nDescription: lane regular expressions for matches() (PCRE2)\nVersion: %s\nRequires: lane\nRequires.private: libpcre2-8\nLibs: -L$${libdir} -llane-re -lpcre2-8\nCflags: -I$${includedir}\n' \
	  $(VERSION) > $(INST)/lib/pkgconfig/lane-re.pc
	printf '$(LANE_PC)Name: lane-bundle\nDescription: lane policy bundles: open, verify and test them before use\nVersion: %s\nRequires: jansson libsodium\nLibs: -L$${libdir} -llane-bundle $${libdir}/liblane.a -lm\nCflags: -I$${includedir}\n' \
	  $(VERSION) > $(INST)/lib/pkgconfig/lane-bundle.pc

# A fuzz target linked with tests/fuzz/replay.c instead of libFuzzer.
$(BUILD)/tests/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c tests/fuzz/fuzz.h $(CLI_A) $(BUNDLE_A) \
                         $(TOOLS_A) $(LIB_A) $(JSON_SRC:%.c=$(BUILD)/%.o)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/fuzz -o $@ $< tests/fuzz/replay.c \
	  $(filter %.o,$^) $(CLI_A) $(BUNDLE_A) $(TOOLS_A) $(LIB_A) $(LDLIBS_TOOLS) -lm

# The HTTP gateway (gateway/README.md), a host of its own: libmicrohttpd
# in, libcurl out, liblane, liblane-json and liblane-bundle through lane.h
# and lane_bundle.h only. Built on demand (`make gateway`); its test builds it.
GATEWAY_SRC := $(wildcard gateway/*.c)
.PHONY: gateway
gateway: $(BUILD)/lane-gateway
$(BUILD)/lane-gateway: $(GATEWAY_SRC) gateway/gateway.h $(LIB_A) $(BUILD)/liblane-json.a $(LIB_BUNDLE) $(REDIS_A) $(RE_A)
	$(CC) -std=c11 -D_POSIX_C_SOURCE=200809L -ffp-contract=off $(WARN) -Ivm -Ivm/redis -Icompiler/bundle $(CFLAGS) \
	  $(SAN) -o $@ $(GATEWAY_SRC) $(LIB_BUNDLE) $(BUILD)/liblane-json.a $(REDIS_A) $(RE_A) $(LIB_A) -ljansson -lsodium \
	  -lcurl -lmicrohttpd -lhiredis -lpcre2-8 -lm -lpthread

# The gateway's benchmark (gateway/bench/README.md): a fake provider and a
# load generator in C, direct against through lane-gateway, on loopback.
# With node and npm, Portkey's gateway is a peer row (GWBENCH_FLAGS=--no-portkey:
# not); then the fault suite (gateway/bench/faults.py).
GWBENCH_SRC := gateway/bench/upstream.c gateway/bench/loadgen.c gateway/bench/relay.c
$(BUILD)/bench/lane-bench-upstream: gateway/bench/upstream.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 $(WARN) -o $@ $< -lpthread
$(BUILD)/bench/lane-bench-loadgen: gateway/bench/loadgen.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 $(WARN) -o $@ $< -lpthread
$(BUILD)/bench/lane-bench-relay: gateway/bench/relay.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 $(WARN) -o $@ $<
.PHONY: bench-gateway
bench-gateway: deps
	@command -v gnuplot >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq gnuplot-nox >/dev/null; } || true
	@$(MAKE) --no-print-directory $(LANE) $(BUILD)/lane-gateway $(BUILD)/bench/lane-bench-upstream \
	  $(BUILD)/bench/lane-bench-loadgen $(BUILD)/bench/lane-bench-relay
	python3 gateway/bench/run.py --build $(BUILD) $(GWBENCH_FLAGS)
	@echo
	python3 gateway/bench/faults.py --build $(BUILD)

demo: deps
	@$(MAKE) --no-print-directory all
	@sh examples/demo.sh $(LANE)
	@echo
	@echo "== the swap: is the in-house model ready to take all chat? (examples/swap/)"
	@sh examples/swap/demo.sh $(LANE)

# The swap story alone: a canary, an hour of real traffic logged, replay, diff.
demo-swap: deps
	@$(MAKE) --no-print-directory all
	@sh examples/swap/demo.sh $(LANE)

test: deps
	@$(MAKE) --no-print-directory all $(UNIT_BIN) $(REPLAY_BIN) $(JSON_LIBS)
	BUILD=$(BUILD) LANE=$(abspath $(LANE)) CC="$(CC)" SAN="$(SAN)" FUZZ_TARGETS="$(FUZZ_TARGETS)" \
	  prove -f --exec 'sh tests/timeout.sh' $(UNIT_BIN) tests/fuzz/replay.sh tests/golden/run.sh tests/cli/cli.sh tests/cli/replay.sh tests/cli/bundle.sh tests/cli/docs.sh tests/host/readme_example.sh tests/host/symbols.sh tests/catalog/fetch.sh tests/cost/crosscheck.sh \
	  tests/host/layers.sh bindings/python/test_lane.py tests/install/install.sh gateway/test.sh \
	  gateway/t_faults.sh

check-asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan CFLAGS="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all" test

# The per-entry skip lines go to $(BUILD)/stdlib-import.log; a failed import
# fails the target (a pipe through grep would hide its exit status).
stdlib: $(LANE)
	$(LANE) catalog import $(CATALOG) -o stdlib/providers $(PROVIDERS:%=--provider %) \
	  > $(BUILD)/stdlib-import.log
	@grep -v '^skip ' $(BUILD)/stdlib-import.log; \
	  echo "(every skipped entry with its reason: $(BUILD)/stdlib-import.log)"

# ThreadSanitizer: the suite's programs, built with -fsanitize=thread.
check-tsan: deps
	@$(MAKE) --no-print-directory BUILD=build-tsan CFLAGS="-O1 -g" SAN="-fsanitize=thread" test

# Benchmarks (tests/bench/README.md): lane against hand-written C, Lua 5.4
# and LuaJIT on a reference policy, then scaling with rules and models.
# As root, missing Lua headers and gnuplot are installed with apt-get;
# without them the bench still runs lane and C and says what it skipped.
BENCH_DIR      := $(BUILD)/bench
BENCH_CFLAGS   := -std=c11 -D_GNU_SOURCE -O2 -g -ffp-contract=off -Wall -Wextra -Werror \
                  $(INC_compiler) -Ivm/redis -Itests/bench
BENCH_SRC      := tests/bench/main.c tests/bench/scaling.c tests/bench/ref_c.c tests/bench/common.c \
                  tests/bench/swap.c tests/bench/fleet.c tests/bench/expert_c.c
BENCH_HDR      := tests/bench/bench.h vm/lane.h
LUA54_INC      := /usr/include/lua5.4
LUAJIT_INC     := /usr/include/luajit-2.1
HAVE_LUA54      = echo '\#include <lua.h>' | $(CC) -I$(LUA54_INC) -E - >/dev/null 2>&1
HAVE_LUAJIT     = echo '\#include <luajit.h>' | $(CC) -I$(LUAJIT_INC) -E - >/dev/null 2>&1

$(BENCH_DIR)/bench: $(BENCH_SRC) $(BENCH_HDR) $(TOOLS_A) $(LIB_A) $(REDIS_A)
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_CFLAGS) -o $@ $(BENCH_SRC) $(TOOLS_A) $(REDIS_A) $(LIB_A) -lhiredis -lm -lpthread -ldl

$(BENCH_DIR)/lua54.so: tests/bench/lua_impl.c tests/bench/common.c $(BENCH_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_CFLAGS) -fPIC -shared -fvisibility=hidden -I$(LUA54_INC) -o $@ \
	  tests/bench/lua_impl.c tests/bench/common.c -llua5.4

$(BENCH_DIR)/luajit.so: tests/bench/lua_impl.c tests/bench/common.c $(BENCH_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_CFLAGS) -fPIC -shared -fvisibility=hidden -DBENCH_LUAJIT -I$(LUAJIT_INC) -o $@ \
	  tests/bench/lua_impl.c tests/bench/common.c -lluajit-5.1

bench: deps
	@missing=""; \
	$(HAVE_LUA54) || missing="$$missing liblua5.4-dev"; \
	$(HAVE_LUAJIT) || missing="$$missing libluajit-5.1-dev"; \
	command -v gnuplot >/dev/null || missing="$$missing gnuplot-nox"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; } \
	      || echo "bench: could not install$$missing; going on without"; \
	  else \
	    echo "bench: missing$$missing (run 'make bench' as root to install them); going on without"; \
	  fi; \
	fi
	@$(MAKE) --no-print-directory $(LANE) $(BENCH_DIR)/bench
	@opts=""; \
	if $(HAVE_LUA54) && $(MAKE) --no-print-directory $(BENCH_DIR)/lua54.so; then \
	  opts="$$opts --lua54 $(BENCH_DIR)/lua54.so"; else echo "bench: Lua 5.4 skipped (no liblua5.4-dev)"; fi; \
	if $(HAVE_LUAJIT) && $(MAKE) --no-print-directory $(BENCH_DIR)/luajit.so; then \
	  opts="$$opts --luajit $(BENCH_DIR)/luajit.so"; else echo "bench: LuaJIT skipped (no libluajit-5.1-dev)"; fi; \
	echo "$(BENCH_DIR)/bench --src tests/bench --out $(BENCH_DIR) --lane $(LANE)$$opts"; \
	$(BENCH_DIR)/bench --src tests/bench --out $(BENCH_DIR) --lane $(LANE) $$opts
	@echo
	@sh tests/bench/callgrind.sh $(BENCH_DIR)/bench tests/bench $(BENCH_DIR)
	@echo
	@sh tests/bench/replay.sh $(LANE) $(BENCH_DIR)/replay

# UndefinedBehaviorSanitizer alone (no ASan: catches what ASan's allocator
# would hide, and runs t_alloc's and t_oom's allocation interposers).
check-ubsan: deps
	@$(MAKE) --no-print-directory BUILD=build-ubsan CFLAGS="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=undefined,float-cast-overflow -fno-sanitize-recover=all" test

# valgrind memcheck over the unit tests and the lane binary's golden runs:
# any error or leak fails. Not in CI: it takes several minutes.
check-valgrind: deps
	@command -v valgrind >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get install -y -qq valgrind >/dev/null; \
	  else echo "check-valgrind needs valgrind"; exit 2; fi; }
	@$(MAKE) --no-print-directory BUILD=build-valgrind CFLAGS="-O1 -g" valgrind-bins
	BUILD=build-valgrind prove -f tests/valgrind.sh

valgrind-bins: all $(UNIT_BIN)

# clang-tidy and cppcheck with the checked-in configuration (.clang-tidy,
# tests/lint/cppcheck.supp) over every C file the project ships: the
# libraries, the lane command and the gateway; both must report nothing.
LINT_SRC := $(VM_SRC) $(JSON_SRC) vm/redis/redis.c vm/re/re.c $(TOOL_SRC) $(BUNDLE_SRC) $(CLI_SRC) compiler/cli/main.c
LINT_DEFS := -DLANE_BUILDING -DLANE_STDLIB_DIR=\"stdlib\"
lint-c: deps
	@$(MAKE) --no-print-directory $(BUILD)/lang/parser.h $(BUILD)/lang/lexer.h
	clang-tidy --quiet $(LINT_SRC) -- $(filter-out -MMD -MP,$(BASE)) $(INC_tests) $(LINT_DEFS)
	clang-tidy --quiet $(GATEWAY_SRC) -- -std=c11 -D_POSIX_C_SOURCE=200809L -Ivm -Ivm/redis -Icompiler/bundle
	clang-tidy --quiet $(GWBENCH_SRC) -- -std=c11
	cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,portability,performance \
	  --inline-suppr --suppressions-list=tests/lint/cppcheck.supp -D__GNUC__ -ULANE_VM_GOTO \
	  $(LINT_DEFS) $(INC_tests) $(LINT_SRC)
	cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,portability,performance \
	  --inline-suppr --suppressions-list=tests/lint/cppcheck.supp -D__GNUC__ -Ivm -Ivm/redis -Icompiler/bundle $(GATEWAY_SRC)
	cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,portability,performance \
	  --inline-suppr --suppressions-list=tests/lint/cppcheck.supp -D__GNUC__ $(GWBENCH_SRC)

# ---- fuzzing: clang + libFuzzer, ASan + UBSan (tests/fuzz/README.md) ----
FUZZ_SECONDS ?= 60
FUZZ_BUILD   ?= build-fuzz
FUZZ_SAN     := -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all

# Installs clang and libFuzzer's runtime when missing and run as root.
fuzz-deps:
	@if ! echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }' \
	     | clang -fsanitize=fuzzer -x c - -o /dev/null >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing: clang libclang-rt-14-dev"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang libclang-rt-14-dev >/dev/null; \
	  else \
	    echo "fuzzing needs clang and libclang-rt-14-dev (run 'make fuzz' as root, or apt-get install them)"; exit 2; \
	  fi; \
	fi

fuzz-build: deps fuzz-deps
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=clang CFLAGS="-O1 -g -fno-omit-frame-pointer" \
	  SAN="$(FUZZ_SAN) -fsanitize=fuzzer-no-link" fuzz-bins

fuzz-bins: $(FUZZ_TARGETS:%=$(BUILD)/fuzz/fuzz_%)
.SECONDARY: $(JSON_SRC:%.c=$(BUILD)/%.o)

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(CLI_A) $(BUNDLE_A) $(TOOLS_A) $(LIB_A) \
                      $(JSON_SRC:%.c=$(BUILD)/%.o)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer -Itests/fuzz -o $@ $< $(filter %.o,$^) \
	  $(CLI_A) $(BUNDLE_A) $(TOOLS_A) $(LIB_A) $(LDLIBS_TOOLS) -lm

fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do FUZZ_BUILD=$(FUZZ_BUILD) sh tests/fuzz/run.sh $$t $(FUZZ_SECONDS) || exit 1; done

# Adds what fuzzing found (inputs up to 4 KiB that add coverage) to the
# checked-in corpora.
fuzz-merge: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  $(FUZZ_BUILD)/fuzz/fuzz_$$t -merge=1 -max_len=4096 tests/fuzz/corpus/$$t $(FUZZ_BUILD)/fuzz/corpus/$$t \
	    2>&1 | grep -E 'MERGE-OUTER: [0-9]+ new files' | sed "s/^/$$t: /"; \
	done

clean:
	rm -rf build build-asan build-tsan build-ubsan build-valgrind build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
