#!/bin/sh
# Operation-fuzz soak: runs tests/fs/test_opfuzz.py RUNS times (default 20)
# with a new random seed each time, against the build in BUILD (default
# build/), at low priority. CI runs the test once with its fixed seed; this
# is where new seeds are tried. A failing run prints its seed
# (TOPICFS_OPFUZZ_SEED=N replays its operation sequences) and is kept in
# $OUT/fail-N.txt (OUT default /tmp/topicfs-opfuzz).
#   tests/soak/opfuzz.sh [RUNS]
# Environment: BUILD, OUT, TOPICFS_OPFUZZ_SECONDS (per run, default 30).
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
OUT=${OUT:-/tmp/topicfs-opfuzz}
export TOPICFS="$PWD/$BUILD/fs/topicfs"
export FAILSYS_LIB="$PWD/$BUILD/tests/fault/libfailsys.so"
export MAKE_SEGMENTS="$PWD/$BUILD/tests/fs/make_segments"
export PYTHONDONTWRITEBYTECODE=1
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
ninja -C "$BUILD" >/dev/null
mkdir -p "$OUT"
runs=${1:-20}
failed=0
i=0
while [ "$i" -lt "$runs" ]; do
    i=$((i + 1))
    seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
    if TOPICFS_OPFUZZ_SEED=$seed nice -n 19 python3 tests/fs/test_opfuzz.py >"$OUT/run.txt" 2>&1; then
        echo "opfuzz: run $i seed $seed ok"
    else
        failed=$((failed + 1))
        cp "$OUT/run.txt" "$OUT/fail-$seed.txt"
        echo "opfuzz: run $i seed $seed FAILED: $OUT/fail-$seed.txt"
    fi
done
echo "opfuzz: $runs runs, $failed failed"
[ "$failed" -eq 0 ]
