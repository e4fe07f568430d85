#!/bin/sh
# run.sh — builds the libFuzzer targets with clang, ASan and UBSan, and
# fuzzes each for a bounded time.  Exits nonzero on a crash, leak, sanitizer
# report or timeout; the input that caused it is saved under
# $BUILD/fuzz-artifacts/.
#
# Usage: tests/fuzz/run.sh [SECONDS]   (default $FUZZ_TIME or 60)
# Env:   BUILD (default build-fuzz, relative to the repo root),
#        FUZZ_JOBS (parallel fuzzing processes per target, default 1).
#
# New inputs found go to $BUILD/fuzz-corpus/<target>/, not to the committed
# seed corpus (tests/fuzz/corpus/<target>/), which is read only.
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
time=${1:-${FUZZ_TIME:-60}}
build=${BUILD:-build-fuzz}
jobs=${FUZZ_JOBS:-1}
targets="frame pb"

cd "$root"
if [ ! -f "$build/build.ninja" ]; then
	CC=clang meson setup "$build" -Dfuzz=true -Dbench=false \
	    -Db_sanitize=address,undefined -Db_lundef=false
fi
for t in $targets; do
	ninja -C "$build" "tests/fuzz/fuzz_$t"
done

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

for t in $targets; do
	work="$build/fuzz-corpus/$t"
	art="$build/fuzz-artifacts/$t/"
	mkdir -p "$work" "$art"
	echo "fuzz_$t: ${time}s, corpus $work + tests/fuzz/corpus/$t"
	par=""
	if [ "$jobs" -gt 1 ]; then
		# libFuzzer then writes each job's log to ./fuzz-<n>.log.
		par="-jobs=$jobs -workers=$jobs"
	fi
	# shellcheck disable=SC2086
	"$build/tests/fuzz/fuzz_$t" $par \
	    -max_total_time="$time" -timeout=10 -rss_limit_mb=2048 \
	    -max_len=65536 -print_final_stats=1 \
	    -artifact_prefix="$art" \
	    "$work" "tests/fuzz/corpus/$t"
done
