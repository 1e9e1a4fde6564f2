# godwit: one plain GNU Makefile, out-of-tree build.
#
#   make                 build godwit-vm (release, build/release)
#   make SAN=address,undefined   sanitizer build in build/san-address-undefined
#   make SAN=thread      ThreadSanitizer build in build/san-thread
#   make test-quick      unit tests + differential guest tests (fast loop)
#   make test            everything CI runs (unit, fuzz corpora, guest diff, random
#                        programs, Linux guests, format check, then test-san's part)
#   make test-san        ASan + UBSan build: unit tests, fuzz corpora, state and
#                        migration Linux tests (build/san-address-undefined)
#   make guests          bare-metal test programs (riscv64-unknown-elf-gcc)
#   make bench-cpu       bench/cpu: godwit-vm vs qemu-system-riscv64
#   make guest-image     Linux guest (Debian riscv64 kernel + busybox initramfs),
#                        cached in ~/.cache/godwit/guest (docs/guest.md)
#   make guest-image-redis  the same plus Debian's redis-server (guest/build.sh --variant redis)
#   make bench-boot      bench/boot: Linux boot to init, godwit-vm vs QEMU
#   make bench-io        bench/io/run.sh: guest I/O, every part (disk, net), godwit-vm vs QEMU
#   make fuzz-virtq      libFuzzer build of the virtqueue fuzz target (clang, build/fuzz)
#   make fuzz-net        libFuzzer build of the network offload fuzz target (clang)
#   make fuzz-slirpstate libFuzzer build of the -netdev user state (netdev-user section) fuzz target (clang)
#   make fuzz-elf        libFuzzer build of the ELF loader fuzz target (clang)
#   make fuzzers         all the libFuzzer targets (make test builds them too)
#   make bench-save      bench/save: save/restore time and state size, godwit-vm vs QEMU
#   make bench-migrate   bench/migrate: live migration over tcp: and dirty-logging overhead, godwit-vm vs QEMU,
#                        and through the daemons (bench-migrate-daemons)
#   make bench-migrate-heavy  bench/migrate/heavy.sh: write-heavy guests and a 50 MB/s link, pre-copy,
#                        auto-converge, dirty-limit, post-copy, godwit-vm vs QEMU
#   make bench-migrate-daemons  bench/migrate/daemons.sh: godwit migrate via two godwitd vs direct QMP, TLS rate
#   make bench-hold-overhead  bench/migrate/overhead.sh BENCH_OVERHEAD_HELD=1: guest speed while held-converged
#   make bench-cold      bench/cold/run.sh: godwit migrate --cold of a 4 GiB sparse disk vs rsync --sparse
#   make bench-storage   bench/storage/run.sh: live migration with local disks (block migration),
#                        1 GiB / 4 GiB idle and Linux writing, godwit-vm vs QEMU 7.2
#   make bench-hold      bench/hold/run.sh: a live migration held 10 s mid pre-copy vs unheld and vs
#                        cancel-and-restart (the busy page oracle), godwit-vm vs QEMU
#   make bench-netcont   bench/netcont/run.sh: TCP sessions (echo, the redis cart) across 10 live
#                        migrations between two TAP devices, godwit-vm vs QEMU 7.2 (root)
#   make test-state      tests/linux/state_test.py: save/restore (oracle guest, Linux, hostile files)
#   make test-hold       tests/linux/hold_test.py: pausing, recovering and holding pre-copy (issue 13)
#   make test-storage    tests/linux/storage_test.py: live migration with local disks (issue 14)
#   make test-netfwd     tests/linux/netfwd_test.py: frames across the switchover (issue 15; root)
#   make test-throttle   tests/linux/throttle_test.py: auto-converge and dirty-limit (issue 16)
#   make test-postcopy   tests/linux/postcopy_test.py: post-copy live migration (issue 16)
#   make fuzz-qmp        libFuzzer build of the QMP server fuzz target (clang)
#   make fuzz-state      libFuzzer build of the state loader fuzz target (clang)
#   make fuzz-token      libFuzzer build of the join token parser fuzz target (clang)
#   make fuzz-reply      libFuzzer build of the migration reply (ERROR reason) fuzz target (clang)
#   make fuzz-xfer       libFuzzer build of the transfer engine's chunk input fuzz target (clang)
#   make test-disk       tests/linux/disk_test.py: Linux guest on virtio-blk and virtio-rng
#   make test-lock       tests/linux/lock_test.py: disk image locking (second VM, QEMU, migration)
#   make bench-io-net    bench/io/net.sh: guest->host TCP over virtio-net, godwit-vm vs QEMU
#   make test-net        tests/linux/net_test.py: Linux guest on user and TAP networking
#   make test-cart       tests/hosts/cart_test.py: redis migrating live while a client fills a cart
#   make test-slirp-mig  tests/linux/slirp_mig_test.py: -netdev user across a live migration
#   make WERROR=1        warnings are errors (CI sets this)

CC      ?= cc
SAN     ?=
WERROR  ?=
comma   := ,

ifeq ($(SAN),)
BUILD   ?= build/release
OPT     ?= -O2
else
BUILD   ?= build/san-$(subst $(comma),-,$(SAN))
OPT     ?= -O1 -fno-omit-frame-pointer
SANFLAGS := -fsanitize=$(SAN)
ifneq ($(findstring undefined,$(SAN)),)
# undefined behaviour stops the program (and fails the test), as ASan does
SANFLAGS += -fno-sanitize-recover=undefined
endif
endif

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla \
        -Wformat=2 -Wimplicit-fallthrough
ifeq ($(CI),true)
WERROR := 1
endif
ifneq ($(WERROR),)
WARN += -Werror
endif

CPPFLAGS := -D_GNU_SOURCE -Isrc -MMD -MP
CFLAGS   ?= $(OPT) -g
CFLAGS   += -std=c11 $(WARN) $(SANFLAGS) -pthread
LDFLAGS  += $(SANFLAGS) -pthread
# Libraries each layer needs: the programs that link only common, state and
# qmp (the godwit CLI) need neither libfdt nor libslirp.
LIB_LDLIBS := -lm -ljansson -lxxhash -llz4 -lzstd

# libslirp (user-mode networking, src/net/net_slirp.c).  Its .pc file
# requires glib's; without libglib2.0-dev fall back to the known paths.
SLIRP_CFLAGS := $(shell pkg-config --cflags slirp 2>/dev/null || echo -I/usr/include/slirp)
SLIRP_LIBS   := $(shell pkg-config --libs slirp 2>/dev/null || echo -lslirp)
LDLIBS   += -lfdt -lgnutls $(SLIRP_LIBS) $(LIB_LDLIBS)

# The layers as static libraries (DESIGN.md §7), each built from every .c
# file of its folders; a program links the ones it uses, top layer first.
#   common  util, keyval, sockets
#   state   the stream format
#   qmp     QMP server, client and JSON framing
#   emu     the emulator: memory, hart, devices, virtio, net, board, migration
lib_objs = $(patsubst %.c,$(BUILD)/%.o,$(foreach d,$(1),$(wildcard src/$(d)/*.c)))
COMMON_OBJS := $(call lib_objs,common)
STATE_OBJS  := $(call lib_objs,state)
QMP_OBJS    := $(call lib_objs,qmp)
EMU_OBJS    := $(call lib_objs,mem hart devices virtio net machine migration)
COMMON_LIB  := $(BUILD)/libgodwit-common.a
STATE_LIB   := $(BUILD)/libgodwit-state.a
QMP_LIB     := $(BUILD)/libgodwit-qmp.a
EMU_LIB     := $(BUILD)/libgodwit-emu.a
CORE_OBJS   := $(COMMON_OBJS) $(STATE_OBJS) $(QMP_OBJS) $(EMU_OBJS)
CORE_SRCS   := $(CORE_OBJS:$(BUILD)/%.o=%.c)
# Everything, for godwit-vm, the unit tests, the tools and the fuzz replays.
CORE_LIBS   := $(EMU_LIB) $(QMP_LIB) $(STATE_LIB) $(COMMON_LIB)
# The godwit CLI: no emulator (tests/run.sh checks its symbols).
CLI_LIBS    := $(QMP_LIB) $(STATE_LIB) $(COMMON_LIB)

# The host agent (src/godwitd): its modules as a library (unit tests link
# them), its main as the program; it links the agent, qmp, state and common
# layers, never the emulator.
AGENT_OBJS  := $(patsubst %.c,$(BUILD)/%.o,$(filter-out src/godwitd/main.c,$(wildcard src/godwitd/*.c)))
AGENT_LIB   := $(BUILD)/libgodwit-agent.a
AGENT_LDLIBS := -lsqlite3 -lmicrohttpd -lgnutls -lcurl
GODWITD_BIN := $(BUILD)/godwitd
# Route tables may leave api_route's last member (flags: who may call it
# besides the local socket) out for 0, local only.
$(AGENT_OBJS): CFLAGS += -Wno-missing-field-initializers
GODWITD_OBJS := $(BUILD)/src/godwitd/main.o

VM_SRCS := $(wildcard src/vm/*.c)
VM_OBJS := $(VM_SRCS:%.c=$(BUILD)/%.o)
VM_BIN  := $(BUILD)/godwit-vm

CLI_SRCS := $(wildcard src/cli/*.c)
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/%.o)
CLI_BIN  := $(BUILD)/godwit

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%)

# Host-side tools used by tests and benchmarks (e.g. the random program generator).
TOOL_SRCS := $(wildcard tests/tools/*.c)
TOOL_BINS := $(TOOL_SRCS:tests/tools/%.c=$(BUILD)/tests/tools/%)

.PHONY: all clean test test-quick test-san test-build demo demo-boot demo-baremetal guests format format-check bench-cpu bench-boot bench-io bench-io-net test-net test-disk test-lock tools bench-save test-state test-hold test-storage test-netfwd test-postcopy test-throttle bench-migrate bench-migrate-heavy bench-migrate-overhead bench-migrate-daemons bench-cold bench-hold bench-storage bench-netcont
all: $(VM_BIN) $(CLI_BIN) $(GODWITD_BIN)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/src/net/%.o: CPPFLAGS += $(SLIRP_CFLAGS)

$(COMMON_LIB): $(COMMON_OBJS)
$(STATE_LIB): $(STATE_OBJS)
$(QMP_LIB): $(QMP_OBJS)
$(EMU_LIB): $(EMU_OBJS)
$(AGENT_LIB): $(AGENT_OBJS)
$(BUILD)/libgodwit-%.a:
	@mkdir -p $(dir $@)
	rm -f $@
	$(AR) rcs $@ $^

$(VM_BIN): $(VM_OBJS) $(CORE_LIBS)
	$(CC) $(LDFLAGS) -o $@ $(VM_OBJS) $(CORE_LIBS) $(LDLIBS)

# The CLI talks to godwitd with libcurl (src/cli/client.c), nothing else.
$(CLI_BIN): $(CLI_OBJS) $(CLI_LIBS)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJS) $(CLI_LIBS) $(LIB_LDLIBS) -lcurl

# Unit tests link every layer, the agent's modules included once there are any.
TEST_LIBS   := $(if $(AGENT_OBJS),$(AGENT_LIB)) $(CORE_LIBS)
TEST_LDLIBS := $(if $(AGENT_OBJS),$(AGENT_LDLIBS)) $(LDLIBS)

$(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(TEST_LIBS)
	$(CC) $(LDFLAGS) -o $@ $< $(TEST_LIBS) $(TEST_LDLIBS)

$(GODWITD_BIN): $(GODWITD_OBJS) $(AGENT_LIB) $(CLI_LIBS)
	$(CC) $(LDFLAGS) -o $@ $(GODWITD_OBJS) $(AGENT_LIB) $(CLI_LIBS) $(AGENT_LDLIBS) $(LIB_LDLIBS)

$(BUILD)/tests/tools/%: $(BUILD)/tests/tools/%.o $(CORE_LIBS)
	$(CC) $(LDFLAGS) -o $@ $< $(CORE_LIBS) $(LDLIBS)

tools: $(TOOL_BINS)

# Fuzz targets (tests/fuzz/fuzz_NAME.c, a libFuzzer entry point): with gcc a
# replay binary per target (run by tests/run.sh on its corpus
# tests/fuzz/corpus/NAME); with clang the fuzzer itself (make fuzz-NAME,
# build/fuzz/fuzz_NAME), linked against the libraries above built in
# build/fuzz with the same warning flags and -fsanitize=fuzzer-no-link.
# Targets on the host agent's modules (AGENT_FUZZ_NAMES) link its library
# and libraries too.
AGENT_FUZZ_NAMES := token api xfer
FUZZ_NAMES  := virtq net slirpstate state qmp elf reply $(AGENT_FUZZ_NAMES)
FUZZ_REPLAY := $(FUZZ_NAMES:%=$(BUILD)/tests/fuzz/replay_%)
FUZZ_CC     ?= clang
FUZZ_SAN    := fuzzer-no-link,address,undefined
FUZZ_LIBS    = $(CORE_LIBS)
FUZZ_LDLIBS  = $(LDLIBS)
AGENT_FUZZ_BINS := $(AGENT_FUZZ_NAMES:%=$(BUILD)/tests/fuzz/replay_%) \
                   $(AGENT_FUZZ_NAMES:%=$(BUILD)/fuzz_%)
$(AGENT_FUZZ_BINS): FUZZ_LIBS = $(AGENT_LIB) $(CORE_LIBS)
$(AGENT_FUZZ_BINS): FUZZ_LDLIBS = $(AGENT_LDLIBS) $(LDLIBS)
$(AGENT_FUZZ_BINS): $(AGENT_LIB)

$(BUILD)/tests/fuzz/replay_%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/tests/fuzz/replay.o $(CORE_LIBS)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(FUZZ_LIBS) $(FUZZ_LDLIBS)

# Seeds for fuzz_xfer: real chunks need XXH3 and zstd (tests/fuzz/gen_xfer_corpus.c).
FUZZ_GEN := $(BUILD)/tests/fuzz/gen_xfer_corpus
$(FUZZ_GEN): $(BUILD)/tests/fuzz/gen_xfer_corpus.o $(AGENT_LIB) $(CORE_LIBS)
	$(CC) $(LDFLAGS) -o $@ $< $(AGENT_LIB) $(CORE_LIBS) $(AGENT_LDLIBS) $(LDLIBS)

$(FUZZ_NAMES:%=$(BUILD)/fuzz_%): $(BUILD)/fuzz_%: $(BUILD)/tests/fuzz/fuzz_%.o $(CORE_LIBS)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIBS) $(FUZZ_LDLIBS)

FUZZ_TARGETS := $(FUZZ_NAMES:%=fuzz-%)
.PHONY: $(FUZZ_TARGETS) fuzzers
$(FUZZ_TARGETS): fuzz-%:
	$(MAKE) CC=$(FUZZ_CC) SAN=$(FUZZ_SAN) BUILD=build/fuzz build/fuzz/fuzz_$*
# All of them in one make (make test builds them, so they keep compiling).
fuzzers:
	$(MAKE) CC=$(FUZZ_CC) SAN=$(FUZZ_SAN) BUILD=build/fuzz $(FUZZ_NAMES:%=build/fuzz/fuzz_%)

# ---- bare-metal guest programs -------------------------------------------
RV_CC      ?= riscv64-unknown-elf-gcc
RV_CFLAGS  := -march=rv64gc -mabi=lp64d -mcmodel=medany -O2 -g -nostdlib -nostartfiles \
              -ffreestanding -fno-builtin -Wall -Itests/guest/lib
RV_LDFLAGS := -T tests/guest/lib/link.ld -Wl,--no-warn-rwx-segments
ifneq ($(WERROR),)
RV_CFLAGS  += -Werror
endif
GUEST_LIB  := $(wildcard tests/guest/lib/*.c tests/guest/lib/*.S)
GUEST_HDRS := $(wildcard tests/guest/lib/*.h tests/guest/*.h)
GUEST_SRCS := $(wildcard tests/guest/*.S tests/guest/*.c)
GUEST_ELFS := $(patsubst tests/guest/%,build/guest/%.elf,$(basename $(GUEST_SRCS)))
BENCH_SRCS := $(wildcard bench/cpu/*.c)
BENCH_ELFS := $(patsubst bench/cpu/%.c,build/guest/bench-%.elf,$(BENCH_SRCS)) \
              $(patsubst bench/cpu/%.c,build/guest/bench-%-quick.elf,$(BENCH_SRCS))
# bench/cpu brings its own runtime (crt0, link script, S-mode/Sv39/timer
# helpers, kernels) in bench/cpu/lib; -quick builds cut iterations ~32x.
BENCH_LIB  := $(wildcard bench/cpu/lib/*.c bench/cpu/lib/*.S)
BENCH_DEPS := $(BENCH_LIB) $(wildcard bench/cpu/lib/*.h) bench/cpu/lib/link.ld
BENCH_LDFLAGS := -Ibench/cpu/lib -T bench/cpu/lib/link.ld -Wl,--no-warn-rwx-segments

guests: $(GUEST_ELFS) $(BENCH_ELFS)

build/guest/%.elf: tests/guest/%.S $(GUEST_LIB) $(GUEST_HDRS) tests/guest/lib/link.ld
	@mkdir -p $(dir $@)
	$(RV_CC) $(RV_CFLAGS) $(RV_LDFLAGS) -o $@ $< $(GUEST_LIB)

build/guest/%.elf: tests/guest/%.c $(GUEST_LIB) $(GUEST_HDRS) tests/guest/lib/link.ld
	@mkdir -p $(dir $@)
	$(RV_CC) $(RV_CFLAGS) $(RV_LDFLAGS) -o $@ $< $(GUEST_LIB)

build/guest/bench-%-quick.elf: bench/cpu/%.c $(BENCH_DEPS)
	@mkdir -p $(dir $@)
	$(RV_CC) $(RV_CFLAGS) -DBENCH_QUICK $(BENCH_LDFLAGS) -o $@ $< $(BENCH_LIB)

build/guest/bench-%.elf: bench/cpu/%.c $(BENCH_DEPS)
	@mkdir -p $(dir $@)
	$(RV_CC) $(RV_CFLAGS) $(BENCH_LDFLAGS) -o $@ $< $(BENCH_LIB)

# ---- tests -----------------------------------------------------------------
NPROC := $(shell nproc 2>/dev/null || echo 2)
test-build: $(VM_BIN) $(CLI_BIN) $(GODWITD_BIN) $(UNIT_BINS) $(TOOL_BINS) $(FUZZ_REPLAY) $(FUZZ_GEN) guests

test-quick:
	$(MAKE) -j$(NPROC) test-build
	BUILD=$(BUILD) tests/run.sh quick

# The ASan + UBSan build and what runs on it (tests/run.sh san): unit tests,
# fuzz corpus replays, the state and migration Linux tests (shorter chains).
SAN_TEST     := address,undefined
SAN_TEST_DIR := build/san-$(subst $(comma),-,$(SAN_TEST))
test-san:
	$(MAKE) -j$(NPROC) SAN=$(SAN_TEST) test-build
	SAN_BUILD=$(SAN_TEST_DIR) tests/run.sh san

# What CI runs: the full test, then the sanitizer part, one summary line.
test:
	$(MAKE) -j$(NPROC) test-build
	$(MAKE) -j$(NPROC) SAN=$(SAN_TEST) test-build
	$(MAKE) -j$(NPROC) fuzzers
	BUILD=$(BUILD) SAN_BUILD=$(SAN_TEST_DIR) tests/run.sh full san

# The main demo (scripts/demo.sh, root): two godwitd hosts in network
# namespaces (scripts/hosts.sh), a Debian riscv64 VM with a web service
# migrating live between them (godwit migrate --live) while a client keeps
# asking it.  It builds what it needs (make, make guest-image) and checks
# first that it runs as root and can make network namespaces.
demo:
	@scripts/demo.sh

# Debian's riscv64 kernel booting to a busybox shell on two harts (the
# first run builds the guest image). Ctrl-A x quits, as in QEMU.
demo-boot: guest-image
	$(MAKE) -j$(NPROC) $(VM_BIN)
	@eval "$$(guest/build.sh --print-paths)" && \
	echo "godwit demo: booting Debian riscv64 Linux on godwit-vm (-smp 2); type 'poweroff' or Ctrl-A x to leave" && \
	$(VM_BIN) -M virt -m 512M -smp 2 -nographic -kernel "$$GODWIT_GUEST_IMAGE" \
	    -initrd "$$GODWIT_GUEST_INITRD" -append "$$GODWIT_GUEST_APPEND"

# A bare-metal demo: no firmware, the hart runs a small RV64GC program.
demo-baremetal:
	$(MAKE) -j$(NPROC) $(VM_BIN) build/guest/demo.elf
	$(VM_BIN) -M virt -m 128M -bios none -nographic -kernel build/guest/demo.elf

build/guest/demo.elf: guest/baremetal/demo.c $(GUEST_LIB) tests/guest/lib/link.ld
	@mkdir -p $(dir $@)
	$(RV_CC) $(RV_CFLAGS) $(RV_LDFLAGS) -o $@ $< $(GUEST_LIB)

bench-cpu: $(VM_BIN) guests
	BUILD=$(BUILD) bench/cpu/run.sh

bench-boot: $(VM_BIN)
	BUILD=$(BUILD) bench/boot/run.sh

bench-io: $(VM_BIN)
	BUILD=$(BUILD) bench/io/run.sh

# Linux guest on virtio-blk and virtio-rng (tests/linux/disk_test.py).
test-disk: $(VM_BIN)
	BUILD=$(BUILD) tests/linux/disk_test.py

# Disk image locking: a second VM, QEMU 7.2, migrations (tests/linux/lock_test.py).
test-lock: $(VM_BIN) guest-image
	BUILD=$(BUILD) tests/linux/lock_test.py

bench-io-net: $(VM_BIN)
	BUILD=$(BUILD) bench/io/net.sh

test-net: $(VM_BIN)
	BUILD=$(BUILD) tests/linux/net_test.py

# The shopping cart (issue 15): redis in the guest migrating live between two
# godwitd hosts, CART_HOPS times, while a client fills a cart
# (tests/hosts/cart_test.py; tests/run.sh runs it with the other hosts tests).
.PHONY: test-cart
test-cart: $(VM_BIN) $(CLI_BIN) $(GODWITD_BIN) guest-image-redis
	BUILD=$(BUILD) python3 tests/hosts/cart_test.py

# -netdev user across a same-host live migration (tests/linux/slirp_mig_test.py).
.PHONY: test-slirp-mig
test-slirp-mig: $(VM_BIN) build/guest/mig_ticker.elf
	BUILD=$(BUILD) tests/linux/slirp_mig_test.py

# Linux guest image: guest/build.sh keeps its own cache and stamp.
.PHONY: guest-image guest-image-redis
guest-image:
	guest/build.sh

# The redis variant: the default image plus Debian's redis-server
# (~/.cache/godwit/guest-redis/initrd.img, same kernel; docs/guest.md).
guest-image-redis:
	guest/build.sh --variant redis

FORMAT_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	clang-format -i $(FORMAT_FILES)
format-check:
	clang-format --dry-run --Werror $(FORMAT_FILES)

clean:
	rm -rf build

-include $(CORE_OBJS:.o=.d) $(VM_OBJS:.o=.d) $(CLI_OBJS:.o=.d) $(AGENT_OBJS:.o=.d) $(GODWITD_OBJS:.o=.d) $(UNIT_BINS:=.d) $(TOOL_BINS:=.d) \
         $(FUZZ_NAMES:%=$(BUILD)/tests/fuzz/fuzz_%.d) $(BUILD)/tests/fuzz/replay.d $(FUZZ_GEN).d

# Save/restore time and state size, godwit-vm vs QEMU (bench/save/run.sh)
bench-save: $(VM_BIN) guest-image
	bench/save/run.sh
test-state: $(VM_BIN) $(CLI_BIN) build/guest/mig_pagepass.elf guest-image
	python3 tests/linux/state_test.py

# Pausing, recovering and holding pre-copy: migrate-pause, migrate-recover,
# migrate resume:true, x-godwit-hold-switchover (tests/linux/hold_test.py).
test-hold: $(VM_BIN) build/guest/mig_pagepass.elf build/guest/mig_dirty_fill.elf
	BUILD=$(BUILD) python3 tests/linux/hold_test.py

# Live migration with local disks: capability block / migrate blk: true
# (tests/linux/storage_test.py; e2fsprogs on the host for its Linux cases).
test-storage: $(VM_BIN) build/guest/mig_pagepass.elf build/guest/mig_ticker.elf guest-image
	BUILD=$(BUILD) python3 tests/linux/storage_test.py

# Throttling a guest pre-copy cannot keep up with: auto-converge and
# dirty-limit (tests/linux/throttle_test.py).
test-throttle: $(VM_BIN) build/guest/mig_throttle.elf build/guest/mig_throttle_spin.elf
	BUILD=$(BUILD) python3 tests/linux/throttle_test.py
# Post-copy live migration: capability postcopy-ram, migrate-start-postcopy
# (tests/linux/postcopy_test.py).
test-postcopy: $(VM_BIN) $(TOOL_BINS) build/guest/mig_pagepass.elf guest-image
	BUILD=$(BUILD) python3 tests/linux/postcopy_test.py

# Frames across a live migration's switchover: kept at the pause, forwarded
# after COMMIT (tests/linux/netfwd_test.py; root, iproute2, ping).
test-netfwd: $(VM_BIN) guest-image
	BUILD=$(BUILD) python3 tests/linux/netfwd_test.py

# Live migration, godwit-vm vs QEMU (bench/migrate/run.sh), then the
# dirty-logging overhead (bench/migrate/overhead.sh), then through the
# daemons against direct QMP (bench/migrate/daemons.sh).
MIG_BENCH_ELFS := build/guest/mig_ticker.elf build/guest/mig_dirty.elf \
                  build/guest/mig_dirty_max.elf build/guest/mig_dirty_mix.elf \
                  build/guest/mig_fill.elf
# mig_dirty_max.c, mig_dirty_max100.c and mig_dirty_fill.c include mig_dirty.c
build/guest/mig_dirty_max.elf build/guest/mig_dirty_max100.elf build/guest/mig_dirty_fill.elf: \
    tests/guest/mig_dirty.c
build/guest/mig_throttle_spin.elf: tests/guest/mig_throttle.c

bench-migrate: $(VM_BIN) $(CLI_BIN) $(GODWITD_BIN) $(MIG_BENCH_ELFS) guest-image
	BUILD=$(BUILD) bench/migrate/run.sh
	BUILD=$(BUILD) bench/migrate/overhead.sh
	BUILD=$(BUILD) bench/migrate/daemons.sh

# Write-heavy guests and a slow link: pre-copy, auto-converge, dirty-limit,
# post-copy, godwit-vm vs QEMU (bench/migrate/heavy.sh).
bench-migrate-heavy: $(VM_BIN) build/guest/mig_dirty_max100.elf build/guest/mig_busy.elf
	BUILD=$(BUILD) bench/migrate/heavy.sh

bench-migrate-overhead: $(VM_BIN) build/guest/mig_dirty_mix.elf
	BUILD=$(BUILD) bench/migrate/overhead.sh

# A held-converged live migration's cost to the guest (issue 13: <= 5 %)
.PHONY: bench-hold-overhead
bench-hold-overhead: $(VM_BIN) build/guest/mig_dirty_mix_small.elf
	BUILD=$(BUILD) BENCH_OVERHEAD_HELD=1 bench/migrate/overhead.sh

# godwit migrate through two godwitd vs direct QMP, and the TLS channel's rate
bench-migrate-daemons: $(VM_BIN) $(CLI_BIN) $(GODWITD_BIN) build/guest/mig_ticker.elf \
                       build/guest/mig_dirty.elf build/guest/mig_fill.elf guest-image
	BUILD=$(BUILD) bench/migrate/daemons.sh

# Cold migration of a 4 GiB sparse disk through two godwitd vs rsync --sparse
# to an rsync daemon, and a resume after a cut (bench/cold/run.sh)
bench-cold: $(CLI_BIN) $(GODWITD_BIN)
	BUILD=$(BUILD) bench/cold/run.sh

# A live migration of the busy page oracle held 10 s at 50 % of its first
# pass, against the same unheld and against cancel-and-restart, godwit-vm vs
# QEMU (bench/hold/run.sh)
bench-hold: $(VM_BIN) build/guest/mig_busy.elf
	BUILD=$(BUILD) bench/hold/run.sh

# Live migration with local disks (issue 14): a 1 GiB and a 4 GiB disk with
# an idle guest, the Linux guest writing to its disk, godwit-vm's block
# migration vs QEMU 7.2's (bench/storage/run.sh; root for the byte counts)
bench-storage: $(VM_BIN) build/guest/mig_ticker.elf guest-image
	BUILD=$(BUILD) bench/storage/run.sh

# Network continuity across live migration (issue 15): an echo session and
# the redis cart, 10 hops between two TAP devices on a bridge, godwit-vm vs
# QEMU 7.2 (bench/netcont/run.sh; root). Not part of make test.
bench-netcont: $(VM_BIN) guest-image guest-image-redis
	BUILD=$(BUILD) bench/netcont/run.sh
