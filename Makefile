# nnlo-c — plain Makefile (STYLE.md 11).
#   make            build build/nnlo-c
#   make deps       install the Debian packages the build, tests and demo need
#   make check      deps + build + every test (unit suites, MPI and Slurm end to end)
#   make demo       deps + build + Fashion-MNIST data + a real scan under mpirun
#   make bench      speed / memory / accuracy benchmarks (bench/run.sh)
#   make unit M=nn  one module's suite, linked against only what it needs
# Debug/sanitizer builds: make SAN=1 (ASan+UBSan), make DEBUG=1.

CC      ?= cc
PKG_CONFIG ?= pkg-config
PKGS    := hdf5 yaml-0.1 openblas check ompi-c zlib
# The package flags are asked of pkg-config the first time a recipe needs
# them, not when the Makefile is read: on a fresh machine `make demo` reads
# this file before `deps` has installed the -dev packages. (Evaluated once,
# then cached.) An empty answer stops the build with the fix in the message.
PKG_CFLAGS = $(eval PKG_CFLAGS := $(call pkg_flags,--cflags))$(PKG_CFLAGS)
PKG_LIBS   = $(eval PKG_LIBS := $(call pkg_flags,--libs))$(PKG_LIBS)
pkg_flags  = $(or $(shell $(PKG_CONFIG) $(1) $(PKGS) 2>/dev/null),$(error pkg-config finds no flags for $(PKGS): run `make deps` (installs the Debian -dev packages) and retry))

OPT     := -O2 -march=x86-64-v2
ifdef DEBUG
OPT     := -O0 -g
endif
ifdef SAN
OPT     := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer
LDSAN   := -fsanitize=address,undefined
endif
CFLAGS  ?=
CFLAGS  += -std=c11 -D_DEFAULT_SOURCE -D_XOPEN_SOURCE=700 -Wall -Wextra -Werror $(OPT) -g -Iinclude
CFLAGS  += $(PKG_CFLAGS)
LDLIBS   = $(PKG_LIBS) -lm
LDFLAGS += $(LDSAN)

BUILD   := build
MODULES := util config data nn compress fpga io comm worker master cli
# What each module's unit suite links (dependencies point down only).
DEPS_util     := util
DEPS_fixed    := util
DEPS_json     := util
DEPS_config   := util config
DEPS_data     := util config data
DEPS_nn       := util nn
DEPS_layers   := util nn
DEPS_compress := util config nn compress
DEPS_quant    := util config nn compress
DEPS_prune_data := util config nn compress
DEPS_prune_sparse := util config nn compress
DEPS_fpga     := util config fpga
DEPS_io       := util config data nn compress fpga io
DEPS_comm     := util comm
DEPS_worker   := util config data nn compress fpga io comm worker
DEPS_master   := util config data nn compress fpga io comm worker master
DEPS_keras    := util config data nn compress fpga io
DEPS_shrink   := util config data nn compress fpga io
DEPS_checkpoint := util config data nn compress fpga io comm worker

src_of  = $(wildcard src/$(1)/*.c)
obj_of  = $(patsubst src/%.c,$(BUILD)/%.o,$(call src_of,$(1)))
LIB_OBJS := $(foreach m,$(MODULES),$(call obj_of,$(m)))
TEST_SRCS := $(wildcard tests/check_*.c)
TEST_SUITES := $(filter-out main,$(patsubst tests/check_%.c,%,$(TEST_SRCS)))

.PHONY: all deps check unit demo bench clean
all: $(BUILD)/nnlo-c

$(BUILD)/%.o: src/%.c $(wildcard include/nnlo/*.h) $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Isrc -c $< -o $@

$(BUILD)/libnnlo.a: $(LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/nnlo-c: src/main.c $(BUILD)/libnnlo.a
	$(CC) $(CFLAGS) -Isrc $< $(BUILD)/libnnlo.a $(LDFLAGS) $(LDLIBS) -o $@

# The test runner runs every tests/check_<suite>.c (each exports
# make_<suite>_suite); the list is generated from the file names.
$(BUILD)/suites.inc: $(TEST_SRCS)
	@mkdir -p $(BUILD)
	@printf '%s\n' $(foreach s,$(TEST_SUITES),'SUITE($(s))') > $@

$(BUILD)/check_all: tests/check_main.c $(filter-out tests/check_main.c,$(TEST_SRCS)) $(BUILD)/suites.inc $(BUILD)/libnnlo.a tests/testutil.h tests/compress_fixtures.h
	$(CC) $(CFLAGS) -Isrc -Itests -I$(BUILD) tests/check_main.c $(filter-out tests/check_main.c,$(TEST_SRCS)) $(BUILD)/libnnlo.a $(LDFLAGS) $(LDLIBS) -o $@

# make unit M=<suite>: only that suite, only the modules it needs.
unit:
	@test -n "$(M)" || { echo "usage: make unit M=<suite>"; exit 2; }
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) -Isrc -Itests -DSUITE_ONLY=make_$(M)_suite tests/check_main.c tests/check_$(M).c \
	  $(foreach d,$(DEPS_$(M)),$(call src_of,$(d))) $(LDFLAGS) $(LDLIBS) -o $(BUILD)/unit_$(M)
	$(BUILD)/unit_$(M)

# DEPS_SCRIPT is a variable so that tests/e2e_fresh.sh can watch when it ran.
DEPS_SCRIPT ?= scripts/deps.sh
deps:
	@sh $(DEPS_SCRIPT)

check: deps
	$(MAKE) all $(BUILD)/check_all
	CK_DEFAULT_TIMEOUT=120 $(BUILD)/check_all
	bash tests/blas_matrix.sh $(BUILD)/check_all
	bash tests/e2e_mpirun.sh
	bash tests/e2e_errors.sh
	bash tests/e2e_estimate.sh
	bash tests/e2e_slurm.sh
	bash tests/e2e_fresh.sh

demo: deps
	$(MAKE) all
	NNLO=$(BUILD)/nnlo-c bash scripts/demo.sh

bench: all
	bash bench/run.sh

clean:
	rm -rf $(BUILD)
