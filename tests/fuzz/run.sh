#!/bin/sh
# Builds the libFuzzer targets (clang, -Dfuzz=true, into $FUZZ_BUILD, default
# build-fuzz/) and runs each for SECONDS with its seed corpus:
#   tests/fuzz/run.sh SECONDS [TARGET...]
# Each target works on a copy of tests/fuzz/corpus/<target>/ in a temp dir,
# so runs never write into the repo. Prints executions and coverage (cov =
# edges, ft = features) per target; fails if any target crashed, leaked,
# tripped a sanitizer or a check. Crash inputs are kept in
# $FUZZ_BUILD/fuzz-artifacts/ (replay: $FUZZ_BUILD/tests/fuzz/<target> FILE).
# FUZZ_SEEDS=DIR takes the seeds from DIR/<target>/ instead; FUZZ_CORPUS_OUT=DIR
# keeps each grown corpus in DIR/<target>/ (tests/soak/fuzz.sh uses both).
# FUZZ_SEED=N fixes libFuzzer's random seed: the run then tries the same
# inputs every time, and a longer run tries those of a shorter one first
# (scripts/test.sh uses it so that CI is repeatable; new ground is for
# tests/soak/fuzz.sh, which leaves the seed random).
set -eu
cd "$(dirname "$0")/../.."
secs=${1:?usage: tests/fuzz/run.sh SECONDS [TARGET...]}
shift
build=${FUZZ_BUILD:-build-fuzz}
if [ ! -f "$build/build.ninja" ]; then
    CC=clang meson setup "$build" -Dfuzz=true -Dtests=false -Dwerror=true \
        --buildtype=debugoptimized >/dev/null
fi
ninja -C "$build" >/dev/null
targets=${*:-$(sed -n "s/^  '\(fuzz_[a-z_]*\)',$/\1/p" tests/fuzz/meson.build)}
artifacts=$(cd "$build" && pwd)/fuzz-artifacts
mkdir -p "$artifacts"
# Scratch files of the targets: tmpfs when there is one (fsync is free there).
base=/tmp
[ -d /dev/shm ] && [ -w /dev/shm ] && base=/dev/shm
work=$(mktemp -d "$base/topicfs-fuzz-run.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
failed=0
printf '%-16s %12s %10s %8s %8s  %s\n' target executions exec/s cov ft result
for t in $targets; do
    corpus=$work/corpus-$t
    mkdir -p "$corpus" "$work/tmp-$t"
    cp -r "${FUZZ_SEEDS:-tests/fuzz/corpus}/$t"/. "$corpus"/ 2>/dev/null || true
    log=$work/$t.log
    status=ok
    FUZZ_TMPDIR=$work/tmp-$t ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
        UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
        "$build/tests/fuzz/$t" ${FUZZ_SEED:+-seed="$FUZZ_SEED"} -max_total_time="$secs" -timeout=30 -rss_limit_mb=2560 \
        -max_len=65536 -print_final_stats=1 -artifact_prefix="$artifacts/$t-" "$corpus" \
        >"$log" 2>&1 || status=FAILED
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    last=$(grep -a ' cov: ' "$log" | tail -1)
    cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    printf '%-16s %12s %10s %8s %8s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" \
        "${ft:-?}" "$status"
    if [ "$status" != ok ]; then
        failed=1
        echo "---- $t: last lines of its log" >&2
        grep -av '^#[0-9]' "$log" | tail -60 >&2
        echo "---- crash inputs: $artifacts/$t-*" >&2
    fi
    if [ -n "${FUZZ_CORPUS_OUT:-}" ]; then
        mkdir -p "$FUZZ_CORPUS_OUT/$t"
        cp -r "$corpus"/. "$FUZZ_CORPUS_OUT/$t"/
    fi
    rm -rf "$corpus" "$work/tmp-$t"
done
exit $failed
