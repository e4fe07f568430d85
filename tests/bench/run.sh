#!/bin/sh
#
# run.sh — builds and runs the libsluice-versus-Go runtime benchmarks and
# prints a markdown table (tests/bench/bench_runtime.c against
# tests/bench/go/bench_runtime.go, same cases and sizes).
#
#	tests/bench/run.sh [CASE...]
#
# Cases: chan pingpong spawn spawnwarm select selectfed million pipe blocking
# blocking4 fault (all by default; fault, the machine's page fault cost,
# has no Go half).
# Environment: BUILD (default build-bench, a release build with link-time
# optimization),
# REPS (runs per case, default 5; each run is a fresh process),
# REPS_MILLION (default 3), PROCS (GOMAXPROCS and SLUICE_PROCS, default
# nproc), OUT (also write the report to this file), GO (go binary), STAT
# (best: each number is the smallest of the runs, the default, as other
# load only ever adds time; median).  The raw values follow the table.
#
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cd "$top"

BUILD=${BUILD:-build-bench}
case $BUILD in /*) ;; *) BUILD=$top/$BUILD ;; esac
REPS=${REPS:-5}
REPS_MILLION=${REPS_MILLION:-3}
PROCS=${PROCS:-$(nproc)}
GO=${GO:-go}
OUT=${OUT:-}
STAT=${STAT:-best}
case $STAT in best | median) ;; *) echo "STAT: best or median" >&2; exit 2 ;; esac

# ---- build -----------------------------------------------------------------

# A release build with link-time optimization (calls between libsluice,
# the pb codec and the stages get inlined: about 10% fewer instructions
# per message through the pipeline).
if [ ! -f "$BUILD/build.ninja" ]; then
	meson setup "$BUILD" --buildtype=release -Db_lto=true \
	    -Dtests=disabled -Dbench=true >&2
else
	meson configure "$BUILD" --buildtype=release -Db_lto=true >&2
fi
ninja -C "$BUILD" tests/bench/bench_runtime >&2
cbin="$BUILD/tests/bench/bench_runtime"

gobin="$BUILD/tests/bench/bench_runtime_go"
GOCACHE="$BUILD/go-cache" GO111MODULE=off GOFLAGS='' \
    "$GO" build -o "$gobin" "$here/go/bench_runtime.go" >&2

# ---- run -------------------------------------------------------------------

export GOMAXPROCS="$PROCS" SLUICE_PROCS="$PROCS"
# Other work on the machine skews these numbers; the report shows the load.
load=$(cut -d' ' -f1-3 /proc/loadavg)
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT

# run IMPL BIN CASE: appends "IMPL CASE METRIC VALUE" lines to $raw.
run() {
	if ! timeout 600 "$2" "$3" >"$raw.one" 2>"$raw.err"; then
		echo "$1 $3 failed 1" >>"$raw"
		sed "s/^/  $1 $3: /" "$raw.err" >&2
	fi
	awk -v impl="$1" '$1 == "RESULT" { print impl, $2, $3, $4 }
	    $1 == "INFO" && $2 == "procs" { print impl, "info", "procs", $3 }' \
	    "$raw.one" >>"$raw"
	rm -f "$raw.one" "$raw.err"
}

cases=${*:-chan pingpong spawn spawnwarm select selectfed million pipe blocking blocking4 fault}
for c in $cases; do
	n=$REPS
	[ "$c" = million ] && n=$REPS_MILLION
	i=0
	while [ "$i" -lt "$n" ]; do
		printf 'run %s %d/%d\n' "$c" $((i + 1)) "$n" >&2
		run sluice "$cbin" "$c"
		[ "$c" = fault ] || run go "$gobin" "$c"
		i=$((i + 1))
	done
done

# ---- report ----------------------------------------------------------------

# pick IMPL CASE METRIC: the median (STAT=median) or the smallest value
# (STAT=best) of the runs, or "-" if none.
pick() {
	awk -v i="$1" -v c="$2" -v m="$3" -v stat="$STAT" \
	    '$1 == i && $2 == c && $3 == m { v[n++] = $4 } END {
		if (n == 0) { print "-"; exit }
		for (a = 0; a < n; a++) for (b = a + 1; b < n; b++)
			if (v[b] < v[a]) { t = v[a]; v[a] = v[b]; v[b] = t }
		if (stat == "best") print v[0]
		else if (n % 2) print v[int(n / 2)]
		else print (v[n / 2 - 1] + v[n / 2]) / 2 }' "$raw"
}

# fmt VALUE: two decimals, or "-" as is.
fmt() {
	case $1 in -) echo - ;; *) printf '%.2f' "$1" ;; esac
}

# ratio A B
ratio() {
	case "$1$2" in *-*) echo - ; return ;; esac
	awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-";
	    else printf "%.2fx", a / b }'
}

verdicts=""
verdict() {
	verdicts="$verdicts$1
"
}

# row LABEL CASE METRIC UNIT: a timed row with the <= 0.5x Go target.
row() {
	s=$(pick sluice "$2" "$3")
	g=$(pick go "$2" "$3")
	r=$(ratio "$s" "$g")
	printf '| %s | %s %s | %s %s | %s | <= 0.50x |\n' "$1" \
	    "$(fmt "$s")" "$4" "$(fmt "$g")" "$4" "$r"
	if [ "$r" = - ]; then
		verdict "NOT MET: $1 (no result)"
	elif awk -v a="$s" -v b="$g" 'BEGIN { exit !(a <= 0.5 * b) }'; then
		verdict "met:     $1: ${r} of Go (target <= 0.50x)"
	else
		verdict "NOT MET: $1: ${r} of Go (target <= 0.50x)"
	fi
}

# inforow LABEL CASE METRIC UNIT: a row without a target.
inforow() {
	s=$(pick sluice "$2" "$3")
	g=$(pick go "$2" "$3")
	printf '| %s | %s %s | %s %s | %s | (info) |\n' "$1" \
	    "$(fmt "$s")" "$4" "$(fmt "$g")" "$4" "$(ratio "$s" "$g")"
}

# rssrow LABEL CASE: RSS per parked goroutine, target <= 8 KiB.
rssrow() {
	s=$(pick sluice "$2" rss_kib_per_goroutine)
	g=$(pick go "$2" rss_kib_per_goroutine)
	printf '| %s | %s KiB | %s KiB | %s | <= 8 KiB |\n' "$1" \
	    "$(fmt "$s")" "$(fmt "$g")" "$(ratio "$s" "$g")"
	if [ "$s" = - ]; then
		verdict "NOT MET: $1 (no result)"
	elif awk -v a="$s" 'BEGIN { exit !(a <= 8) }'; then
		verdict "met:     $1: $(fmt "$s") KiB (target <= 8 KiB)"
	else
		verdict "NOT MET: $1: $(fmt "$s") KiB (target <= 8 KiB)"
	fi
}

# okcount IMPL CASE: "ok total" over the runs of CASE.
okcount() {
	awk -v i="$1" -v c="$2" '$1 == i && $2 == c && $3 == "ok" {
	    n++; ok += $4 } $1 == i && $2 == c && $3 == "failed" { n++ }
	    END { printf "%d %d\n", ok, n }' "$raw"
}

# okrow LABEL CASE: did every run work?
okrow() {
	# shellcheck disable=SC2046
	set -- "$1" "$2" $(okcount sluice "$2") $(okcount go "$2")
	printf '| %s | %d/%d runs ok | %d/%d runs ok | | works |\n' "$1" \
	    "$3" "$4" "$5" "$6"
	if [ "$4" -gt 0 ] && [ "$3" -eq "$4" ]; then
		verdict "met:     $1 work ($3/$4 runs)"
	else
		verdict "NOT MET: $1: $3/$4 runs ok"
	fi
}

has() {
	case " $cases " in *" $1 "*) return 0 ;; esac
	return 1
}

report() {
	cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	echo "## Runtime benchmarks: libsluice vs Go"
	echo
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "- machine: $cpu, $(nproc) CPUs, $(uname -sr)," \
	    "$(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' \
	    /proc/meminfo)"
	echo "- $("$GO" version | sed 's/^go version //'), GOMAXPROCS=$PROCS;" \
	    "libsluice release build ($(cc --version | head -1))," \
	    "SLUICE_PROCS=$PROCS"
	echo "- load average before the runs: $load"
	echo "- each value: $STAT of $REPS runs ($REPS_MILLION for 1M)," \
	    "one fresh process per run; lower is better"
	echo
	echo "| case | sluice | Go | sluice/Go | target |"
	echo "|---|---|---|---|---|"
	has chan && row "(a) buffered chan (cap 1024) int64, 1 sender 1 receiver" \
	    chan ns_per_msg "ns/msg"
	has pingpong && row "(b) unbuffered ping-pong" pingpong \
	    ns_per_roundtrip "ns/round trip"
	if has spawn; then
		row "(c) 100k goroutines park on a chan, close, WaitGroup" \
		    spawn us_per_goroutine "us/goroutine"
		inforow "(c) total time" spawn total_ms "ms"
		inforow "(c) spawn until all started" spawn spawn_park_ms "ms"
		inforow "(c) close until all done" spawn release_ms "ms"
		rssrow "(c) RSS per parked goroutine" spawn
	fi
	if has fault; then
		f=$(pick sluice fault us_per_page)
		printf '| %s | %s us/page | | | (info) |\n' \
		    "(c) first-touch page fault on this machine" "$(fmt "$f")"
		p=$(pick sluice fault parallel_us_per_page)
		if [ -n "$p" ] && [ "$p" != "-" ]; then
			printf '| %s | %s us/page | | | (info) |\n' \
			    "(c) the same, one thread per worker at once (wall)" \
			    "$(fmt "$p")"
			f=$p
		fi
		if has spawn; then
			g=$(pick go spawn us_per_goroutine)
			printf '| %s | %s us/goroutine | %s us/goroutine | %s |' \
			    "(c) floor: one fault per goroutine, on all workers" \
			    "$(fmt "$f")" "$(fmt "$g")" "$(ratio "$f" "$g")"
			echo ' (info) |'
		fi
		f=$(pick sluice fault populate_us_per_page)
		if [ -n "$f" ] && [ "$f" != "-" ]; then
			printf '| %s | %s us/page | | | (info) |\n' \
			    "(c) the same pages filled by the kernel in bulk (MADV_POPULATE_WRITE)" \
			    "$(fmt "$f")"
		fi
		f=$(pick sluice fault touch_after_populate_us_per_page)
		if [ -n "$f" ] && [ "$f" != "-" ]; then
			printf '| %s | %s us/page | | | (info) |\n' \
			    "(c) ... and the first write to each of them afterwards" \
			    "$(fmt "$f")"
		fi
		f=$(pick sluice fault guard_us_per_stack)
		if [ -n "$f" ] && [ "$f" != "-" ]; then
			printf '| %s | %s us/stack | | | (info) |\n' \
			    "(c) guard marker under each fresh stack (256 a call)" \
			    "$(fmt "$f")"
		fi
	fi
	has spawnwarm && inforow \
	    "(c') the same, 2nd round in the process (stacks cached)" \
	    spawnwarm us_per_goroutine "us/goroutine"
	has select && row "(d) select over 4 chans, 1 ready (prefilled)" \
	    select ns_per_select "ns/select"
	has selectfed && inforow "(d') select over 4 chans, 1 fed by a sender" \
	    selectfed ns_per_select "ns/select"
	if has million; then
		okrow "(e) 1,000,000 parked goroutines" million
		inforow "(e) total time" million total_ms "ms"
		inforow "(e) time per goroutine" million us_per_goroutine \
		    "us/goroutine"
		rssrow "(e) RSS per parked goroutine (1M)" million
		inforow "(e) RSS while 1M parked" million rss_parked_mib "MiB"
	fi
	has pipe && inforow "(f) ping-pong of 1 byte over two pipes (poller)" \
	    pipe ns_per_roundtrip "ns/round trip"
	has blocking && inforow "(g) blocking call (64-byte pread), one after another" \
	    blocking ns_per_call "ns/call"
	has blocking4 && inforow "(g') the same calls, 4 goroutines at once (wall)" \
	    blocking4 ns_per_call "ns/call"
	echo
	echo "Targets:"
	echo
	echo '```'
	printf '%s' "$verdicts"
	echo '```'
	echo
	echo "<details><summary>raw values</summary>"
	echo
	echo '```'
	awk '$2 != "info" { k = $1 " " $2 " " $3; if (!(k in v)) o[n++] = k
	    v[k] = v[k] " " $4 } END { for (i = 0; i < n; i++)
	    print o[i] ":" v[o[i]] }' "$raw"
	echo '```'
	echo
	echo "</details>"
}

# The verdicts are collected while the table is printed, so report runs in
# this shell (not a pipeline subshell).
if [ -n "$OUT" ]; then
	report >"$OUT"
	cat "$OUT"
else
	report
fi
