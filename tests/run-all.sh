#!/usr/bin/env bash
# tests/run-all.sh — the full test suite of sluice, as CI runs it.
#
# Configurations, each in its own build directory beside the source:
#
#   plain     build-test        -Dwerror=true, then `meson test`
#   asan      build-test-asan   -Db_sanitize=address,undefined -Dwerror=true,
#                               `meson test`
#   tsan      build-test-tsan   -Db_sanitize=thread -Dwerror=true, `meson test`
#                               (under `setarch -R` when the kernel needs it)
#   valgrind  build-test        `meson test --setup=valgrind` (memcheck, the stage
#                               processes of tests/pipeline too)
#   fuzz      tests/fuzz/run.sh, when it exists, bounded in time
#   aarch64   tests/cross/aarch64.sh: the runtime cross-built for AArch64
#             and run under qemu-user (the other context switch)
#
# Usage: tests/run-all.sh [CONFIG...]      (default: all of them)
#
# Each test program's cmocka output is printed under the name of its
# configuration.  The last line is `N passed, N failed`, counting cmocka
# test cases over all configurations from cmocka's per-case lines: a case
# that started ("[ RUN      ]") and did not end OK or SKIPPED failed, even
# if the program died before cmocka's summary.  A program that failed with
# every case OK (a sanitizer or valgrind report at exit, a timeout) adds
# one failure, so do a build or a configuration that cannot run.  The
# fuzz run counts as one case.  The exit status is non-zero if anything
# failed.
#
# Environment: BUILD_TEST (the plain build directory, default build-test;
# the sanitizer builds add -asan and -tsan), JOBS (parallel test programs,
# default nproc), SLUICE_TEST_SCALE
# (passed through to the tests), FUZZ_SECONDS (seconds of fuzzing per
# libFuzzer target, default 120).
set -uo pipefail

cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD

export CMOCKA_MESSAGE_OUTPUT=stdout
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:print_summary=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1:print_summary=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
FUZZ_SECONDS=${FUZZ_SECONDS:-120}
B=${BUILD_TEST:-build-test}

if [ -x /usr/bin/python3 ]; then
	PY=/usr/bin/python3
else
	PY=python3
fi

if [ $# -gt 0 ]; then
	CONFIGS=("$@")
else
	CONFIGS=(plain asan tsan valgrind fuzz aarch64)
fi

TOTAL_PASSED=0
TOTAL_FAILED=0
SUMMARY=()

# ---- helpers -----------------------------------------------------------

banner() {
	echo
	echo "=================================================================="
	echo "== $*"
	echo "=================================================================="
}

# configure DIR OPTION...: meson setup, or reconfigure an existing DIR.
configure() {
	local dir=$1
	shift
	if [ -f "$dir/meson-private/coredata.dat" ]; then
		meson setup --reconfigure "$dir" "$@"
	else
		rm -rf "$dir"
		meson setup "$dir" "$@"
	fi
}

# Reads meson's JSON test log ($1), prints every test program's output
# under a header, and ends with one line "COUNTS <passed> <failed>".
PARSE_LOG='
import json, re, sys

config = sys.argv[2]
passed = failed = 0
run_re = re.compile(r"\[ RUN      \] ")
ok_re = re.compile(r"\[       OK \] ")
skip_re = re.compile(r"\[  SKIPPED \] (?!\d+ test\(s\))(.*)$", re.M)
ok_results = ("OK", "EXPECTEDFAIL", "SKIP")
try:
    lines = open(sys.argv[1], encoding="utf-8", errors="replace").readlines()
except OSError as e:
    print("run-all: no test log: %s" % e)
    lines = []
for line in lines:
    try:
        t = json.loads(line)
    except ValueError:
        continue
    out = (t.get("stdout") or "") + (t.get("stderr") or "")
    res = t.get("result", "?")
    # Count cases by their own lines: every "[ RUN      ]" ends in OK,
    # SKIPPED or FAILED, or never ends (the program died in it).  cmocka
    # prints its summaries on stderr, which may interleave out of order.
    runs = len(run_re.findall(out))
    p = len(ok_re.findall(out))
    skipped = len(set(skip_re.findall(out)))
    f = max(0, runs - p - skipped)
    if res not in ok_results and f == 0:
        f = 1  # failed outside cmocka: a report at exit, a timeout, ...
    elif res == "OK" and p == 0 and f == 0:
        p = 1  # a test program without cmocka output: one case
    passed += p
    failed += f
    print("---- [%s] %s: %s (%.1f s, exit %s): %d passed, %d failed" % (
        config, t.get("name", "?"), res, t.get("duration") or 0,
        t.get("returncode"), p, f))
    sys.stdout.write(out)
    if out and not out.endswith("\n"):
        sys.stdout.write("\n")
print("COUNTS %d %d" % (passed, failed))
'

# run_tests CONFIG DIR LOG [WRAPPER...] -- [MESON-TEST-ARGS...]
# Runs meson test in DIR (through WRAPPER, if any), prints the outputs
# and adds the case counts to the totals.
run_tests() {
	local config=$1 dir=$2 log=$3
	shift 3
	local wrapper=()
	while [ $# -gt 0 ] && [ "$1" != "--" ]; do
		wrapper+=("$1")
		shift
	done
	[ $# -gt 0 ] && shift
	rm -f "$dir/meson-logs/$log"
	local rc=0
	# The console output of meson test is the one-line-per-program
	# progress; the cmocka output follows from the JSON log.
	"${wrapper[@]}" meson test -C "$dir" --no-rebuild \
	    --num-processes "$JOBS" "$@" || rc=$?
	local out counts p f
	out=$("$PY" -c "$PARSE_LOG" "$dir/meson-logs/$log" "$config")
	counts=$(printf '%s\n' "$out" | tail -n 1)
	printf '%s\n' "$out" | sed '$d'
	p=$(echo "$counts" | awk '$1 == "COUNTS" { print $2 }')
	f=$(echo "$counts" | awk '$1 == "COUNTS" { print $3 }')
	p=${p:-0}
	f=${f:-0}
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "run-all: [$config] meson test exited $rc with no failed case; counting one failure"
		f=1
	fi
	if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
		echo "run-all: [$config] no test ran; counting one failure"
		f=1
	fi
	record "$config" "$p" "$f"
}

CONFIG_START=0
record() {
	local config=$1 p=$2 f=$3
	local secs=$(($(date +%s) - CONFIG_START))
	TOTAL_PASSED=$((TOTAL_PASSED + p))
	TOTAL_FAILED=$((TOTAL_FAILED + f))
	SUMMARY+=("$(printf '  %-9s cases passed=%-5d failed=%-4d %4ds' \
	    "$config" "$p" "$f" "$secs")")
	echo "== [$config] done: cases passed=$p failed=$f in ${secs}s"
}

# build CONFIG DIR OPTION...: configure and compile; a failure counts as
# one failed case of CONFIG.
build() {
	local config=$1 dir=$2
	shift 2
	if ! configure "$dir" "$@"; then
		echo "run-all: [$config] meson setup failed"
		record "$config" 0 1
		return 1
	fi
	if ! ninja -C "$dir"; then
		echo "run-all: [$config] build failed"
		record "$config" 0 1
		return 1
	fi
}

# TSan's runtime needs a memory layout that some kernels' ASLR (high
# vm.mmap_rnd_bits) breaks: "FATAL: ThreadSanitizer: unexpected memory
# mapping".  Prints the wrapper that makes a TSan program run here.
tsan_wrapper() {
	local tmp
	tmp=$(mktemp -d)
	echo 'int main(void) { return 0; }' > "$tmp/t.c"
	if ! cc -fsanitize=thread -o "$tmp/t" "$tmp/t.c" 2>/dev/null; then
		rm -rf "$tmp"
		return 0
	fi
	if ! "$tmp/t" >/dev/null 2>&1; then
		if setarch "$(uname -m)" -R "$tmp/t" >/dev/null 2>&1; then
			echo "setarch $(uname -m) -R"
		fi
	fi
	rm -rf "$tmp"
}

# ---- configurations ----------------------------------------------------

config_plain() {
	banner "configuration: plain ($B, -Dwerror=true)"
	build plain "$B" -Dwerror=true || return 0
	run_tests plain "$B" testlog.json --
}

config_asan() {
	banner "configuration: asan ($B-asan, -Db_sanitize=address,undefined)"
	build asan "$B-asan" -Db_sanitize=address,undefined \
	    -Db_lundef=false -Dbench=false -Dwerror=true || return 0
	run_tests asan "$B-asan" testlog.json --
}

config_tsan() {
	banner "configuration: tsan ($B-tsan, -Db_sanitize=thread)"
	build tsan "$B-tsan" -Db_sanitize=thread -Db_lundef=false \
	    -Dbench=false -Dwerror=true || return 0
	local w
	w=$(tsan_wrapper)
	if [ -n "$w" ]; then
		echo "run-all: [tsan] this kernel's ASLR breaks TSan; running under: $w"
	fi
	# shellcheck disable=SC2086 # $w is a command and its arguments
	run_tests tsan "$B-tsan" testlog.json $w --
}

config_valgrind() {
	banner "configuration: valgrind ($B, meson test --setup=valgrind)"
	if ! command -v valgrind >/dev/null; then
		echo "run-all: [valgrind] valgrind is not installed"
		record valgrind 0 1
		return 0
	fi
	build valgrind "$B" -Dwerror=true || return 0
	# The stage processes of tests/pipeline run under memcheck too (a
	# leak or error makes a stage exit 99, which its test reports).
	SLUICE_STAGE_WRAPPER="valgrind --quiet --leak-check=full \
--show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
--error-exitcode=99" \
	    run_tests valgrind "$B" testlog-valgrind.json -- --setup=valgrind
}

config_fuzz() {
	if [ ! -f tests/fuzz/run.sh ]; then
		return 0
	fi
	banner "configuration: fuzz (tests/fuzz/run.sh, ${FUZZ_SECONDS}s per target)"
	local rc=0
	# run.sh [SECONDS]: builds build-fuzz (clang) and fuzzes each target
	# for SECONDS; the timeout only guards against a hang.
	timeout --kill-after=30 $((FUZZ_SECONDS * 4 + 900)) \
	    bash tests/fuzz/run.sh "$FUZZ_SECONDS" || rc=$?
	# The fuzz run counts as one case.
	if [ "$rc" -eq 0 ]; then
		record fuzz 1 0
	else
		echo "run-all: [fuzz] tests/fuzz/run.sh exited $rc"
		record fuzz 0 1
	fi
}

config_aarch64() {
	if [ ! -f tests/cross/aarch64.sh ]; then
		return 0
	fi
	banner "configuration: aarch64 (tests/cross/aarch64.sh, qemu-user)"
	local rc=0
	timeout --kill-after=30 900 bash tests/cross/aarch64.sh || rc=$?
	# The cross run counts as one case.
	if [ "$rc" -eq 0 ]; then
		record aarch64 1 0
	else
		echo "run-all: [aarch64] tests/cross/aarch64.sh exited $rc"
		record aarch64 0 1
	fi
}

START=$(date +%s)
for c in "${CONFIGS[@]}"; do
	CONFIG_START=$(date +%s)
	case $c in
	plain | asan | tsan | valgrind | fuzz | aarch64) "config_$c" ;;
	*)
		echo "run-all: unknown configuration '$c'" \
		    "(plain, asan, tsan, valgrind, fuzz, aarch64)" >&2
		exit 2
		;;
	esac
done

banner "summary ($(($(date +%s) - START))s)"
for line in "${SUMMARY[@]}"; do
	echo "$line"
done
echo
echo "$TOTAL_PASSED passed, $TOTAL_FAILED failed"
if [ "$TOTAL_FAILED" -ne 0 ]; then
	exit 1
fi
exit 0
