#!/usr/bin/env bash
# tests/cross/aarch64.sh — the runtime on AArch64, under qemu-user.
#
# The context switch has a hand-written AArch64 version
# (framework/src/sched/switch_aarch64.S).  This cross-compiles the
# runtime with Debian's aarch64 toolchain and runs, under qemu-aarch64,
# the demo (goroutines, channels, select, WaitGroup, context deadlines)
# and a stress program that checks exact results: ping-pong, a buffered
# stream, timers, 20,000 goroutines parked then released, and select on
# a closed and a nil channel.  Exit 0 when both pass.
#
# Needs gcc-aarch64-linux-gnu, libc6-dev-arm64-cross and qemu-user
# (deploy/install-deps.sh installs them).
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${OUT:-$ROOT/build-aarch64}
CC=${CC_AARCH64:-aarch64-linux-gnu-gcc}
QEMU="qemu-aarch64 -L /usr/aarch64-linux-gnu"

command -v "$CC" >/dev/null || { echo "aarch64: $CC not found"; exit 1; }
command -v qemu-aarch64 >/dev/null || { echo "aarch64: qemu-aarch64 not found"; exit 1; }

mkdir -p "$OUT"
echo '#define SLUICE_HAVE_VALGRIND_H 0' > "$OUT/sluice_config.h"
S=framework/src
# libsluice's C sources as framework/meson.build lists them (one
# 'src/....c', per line), so a new file cannot be forgotten here.
SRC="$(sed -n "s|^ *'src/\([a-z0-9_/]*\.c\)',.*|$S/\1|p" \
    framework/meson.build) $S/sched/switch_aarch64.S"
case $SRC in *sched/sched.c*) ;; *)
	echo "aarch64: no sources found in framework/meson.build"; exit 1 ;;
esac
CFLAGS="-O2 -g -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror
    -Wno-unused-parameter -fstack-clash-protection
    --param=stack-clash-protection-guard-size=12 -I$OUT -Iframework/include -I$S"

# shellcheck disable=SC2086
$CC $CFLAGS $SRC framework/examples/demo.c -lpthread -lm -o "$OUT/demo"
# shellcheck disable=SC2086
$CC $CFLAGS $SRC tests/cross/stress.c -lpthread -lm -o "$OUT/stress"

echo "aarch64: demo"
$QEMU "$OUT/demo"
echo "aarch64: stress"
$QEMU "$OUT/stress"
echo "aarch64: ok"
