#!/usr/bin/env bash
# deploy/example-pipeline.sh — the example pipeline: three stage processes
# joined by links over ipc://, until `sluice run` and pipeline config
# files exist.
#
#	sluice-source --(link)--> sluice-map --(link)--> sluice-sink
#
# The source emits N sluice.example.Record messages (ids 1..N), the map
# rewrites each one 1:1 (keeping its lineage), and the sink checks that
# every id arrived exactly once and prints its counts, rate and latency.
# Exits 0 when the sink saw exactly 1..N.
#
# Usage: deploy/example-pipeline.sh [N] [BUILD_DIR]   (default 1000000, build)
set -euo pipefail

N=${1:-1000000}
# BUILD_DIR is taken from where the script is called; the default, build,
# from the top of the repository.
BUILD=build
if [ -n "${2:-}" ]; then
	if ! BUILD=$(cd "$2" 2>/dev/null && pwd); then
		echo "example-pipeline: build directory '$2' not found" >&2
		exit 2
	fi
fi
cd "$(dirname "$0")/.."
STAGES=$BUILD/stages
for s in sluice-source sluice-map sluice-sink; do
	if [ ! -x "$STAGES/$s" ]; then
		echo "example-pipeline: $STAGES/$s not found (build first:" \
		    "meson setup build && ninja -C build)" >&2
		exit 2
	fi
done

DIR=$(mktemp -d /tmp/sluice-example.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	rm -rf "$DIR"
}
trap cleanup EXIT

echo "example-pipeline: $N records: source -> map -> sink over ipc:// (in $DIR)"
declare -A NAME
"$STAGES/sluice-sink" --in "ipc://$DIR/sink.ipc" --stage sink \
    --expect "$N" --timing > "$DIR/sink.out" &
SINK=$!
NAME[$!]=sink
PIDS+=("$!")
"$STAGES/sluice-map" --in "ipc://$DIR/map.ipc" --out "ipc://$DIR/sink.ipc" \
    --stage map > "$DIR/map.out" &
NAME[$!]=map
PIDS+=("$!")
START=$(date +%s.%N)
"$STAGES/sluice-source" --out "ipc://$DIR/map.ipc" --n "$N" --stage source \
    --source-id 1 > "$DIR/source.out" &
NAME[$!]=source
PIDS+=("$!")

# Until the sink is done; a stage that fails first ends the run (the
# others would wait for it forever: a map redials a sink that is gone).
left=("${PIDS[@]}")
rc=0
while :; do
	done_pid=
	src=0
	wait -n -p done_pid "${left[@]}" || src=$?
	if [ "$done_pid" = "$SINK" ]; then
		rc=$src
		break
	fi
	if [ "$src" -ne 0 ]; then
		cat "$DIR/source.out" "$DIR/map.out" "$DIR/sink.out"
		echo "example-pipeline: the ${NAME[$done_pid]} stage failed" \
		    "(exit $src)" >&2
		exit 1
	fi
	rest=()
	for p in "${left[@]}"; do
		[ "$p" = "$done_pid" ] || rest+=("$p")
	done
	left=("${rest[@]}")
done
END=$(date +%s.%N)
cat "$DIR/source.out" "$DIR/map.out" "$DIR/sink.out"
case $rc in
0) ;;
1)	echo "example-pipeline: the sink did not see exactly ids 1..$N" >&2
	exit 1 ;;
*)	echo "example-pipeline: the sink stage failed (exit $rc)" >&2
	exit 1 ;;
esac
awk -v n="$N" -v a="$START" -v b="$END" 'BEGIN {
	printf "example-pipeline: %.0f records in %.2f s (%.0f records/s end to end)\n",
	    n, b - a, n / (b - a) }'
echo "example-pipeline: ok"
