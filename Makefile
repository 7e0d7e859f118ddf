# lane -- build, test and demo.
#
#   make demo        install missing build packages (as root), build, and
#                    route every bundled example request
#   make test        build and run every test under prove
#   make check-asan  the whole suite under AddressSanitizer + UBSan
#   make check-tsan  the whole suite under ThreadSanitizer
#   make bench       benchmarks (see tests/bench/)
#
# Outputs go to build/ (or $(BUILD)); nothing is written elsewhere.

CC       ?= cc
BUILD    ?= build
CFLAGS   ?= -O2 -g
SAN      ?=
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
# -ffp-contract=off: cost arithmetic must be bit-identical on every machine.
BASE     := -MMD -MP -std=c11 -D_POSIX_C_SOURCE=200809L -ffp-contract=off -fPIC \
            -fvisibility=hidden -Ivm -Ilang -Icompiler -I$(BUILD)/lang
ALL_CFLAGS = $(BASE) $(WARN) -DLANE_STDLIB_DIR=\"$(abspath stdlib)\" $(CFLAGS) $(SAN)
# flex and bison output is not ours to tidy: keep -Werror, drop the noisy ones.
GEN_CFLAGS = $(BASE) -Wall -Werror -Wno-unused-function -Wno-unused-but-set-variable \
             -Wno-sign-compare $(CFLAGS) $(SAN)
LDLIBS_TOOLS := -ljansson -lcurl
PACKAGES := flex bison libjansson-dev libcurl4-openssl-dev make gcc perl python3

# The VM core: libc only.
VM_SRC   := vm/bc.c vm/load.c vm/vm.c vm/runtime.c
VM_OBJ   := $(VM_SRC:%.c=$(BUILD)/%.o)
# Front end, compiler and tools (linked into the lane command and tests).
GEN_SRC  := $(BUILD)/lang/parser.c $(BUILD)/lang/lexer.c
TOOL_SRC := lang/ast.c lang/fmt.c vm/disasm.c $(filter-out compiler/main.c,$(wildcard compiler/*.c))
TOOL_OBJ := $(TOOL_SRC:%.c=$(BUILD)/%.o) $(GEN_SRC:%.c=%.o)

LIB_A    := $(BUILD)/liblane.a
LIB_SO   := $(BUILD)/liblane.so
TOOLS_A  := $(BUILD)/liblanec.a
LANE     := $(BUILD)/lane

UNIT_SRC := $(wildcard tests/unit/t_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

# The provider catalogs in stdlib/ are generated from the shared LiteLLM
# price file; `make stdlib` regenerates them (CATALOG= another file).
CATALOG   ?= ../shared/data/catalog/litellm_model_prices.json
PROVIDERS := anthropic openai gemini vertex_ai bedrock mistral deepseek groq \
             together_ai fireworks_ai xai cohere openrouter

.PHONY: all deps demo test check-asan check-tsan bench clean stdlib
all: $(LANE) $(LIB_A) $(LIB_SO)

# Installs what the build needs when run as root and something is missing.
deps:
	@missing=""; \
	command -v flex  >/dev/null || missing="$$missing flex"; \
	command -v bison >/dev/null || missing="$$missing bison"; \
	command -v prove >/dev/null || missing="$$missing perl"; \
	echo '#include <jansson.h>' | $(CC) -E - >/dev/null 2>&1 || missing="$$missing libjansson-dev"; \
	echo '#include <curl/curl.h>' | $(CC) -E - >/dev/null 2>&1 || missing="$$missing libcurl4-openssl-dev"; \
	command -v python3 >/dev/null || missing="$$missing python3"; \
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

$(TOOL_SRC:%.c=$(BUILD)/%.o): $(BUILD)/lang/parser.h $(BUILD)/lang/lexer.h

$(LIB_A): $(VM_OBJ)
	ar rcs $@ $^
$(LIB_SO): $(VM_OBJ)
	$(CC) -shared $(SAN) -o $@ $^
$(TOOLS_A): $(TOOL_OBJ)
	ar rcs $@ $^

$(LANE): $(BUILD)/compiler/main.o $(TOOLS_A) $(LIB_A)
	$(CC) $(SAN) -o $@ $^ $(LDLIBS_TOOLS) -lm

$(BUILD)/tests/%: tests/unit/%.c tests/tap.h $(TOOLS_A) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests -o $@ $< $(TOOLS_A) $(LIB_A) $(LDLIBS_TOOLS) -lm -lpthread

demo: deps
	@$(MAKE) --no-print-directory all
	@sh examples/demo.sh $(LANE)

test: deps
	@$(MAKE) --no-print-directory all $(UNIT_BIN)
	BUILD=$(BUILD) LANE=$(abspath $(LANE)) CC="$(CC)" SAN="$(SAN)" prove -f $(UNIT_BIN) tests/golden/run.sh tests/host/readme_example.sh tests/host/symbols.sh tests/catalog/fetch.sh tests/cost/crosscheck.sh

check-asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan CFLAGS="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=all" test

stdlib: $(LANE)
	$(LANE) catalog import $(CATALOG) -o stdlib/providers $(PROVIDERS:%=--provider %) \
	  | grep -v '^skip ' 

# ThreadSanitizer: the suite's programs, built with -fsanitize=thread.
check-tsan: deps
	@$(MAKE) --no-print-directory BUILD=build-tsan CFLAGS="-O1 -g" SAN="-fsanitize=thread" test

clean:
	rm -rf build build-asan build-tsan

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
