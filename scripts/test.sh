#!/bin/sh
# Installs what is missing, builds, and runs every test suite: first the
# normal build (unit, fs, cluster), then the same suites again built with
# AddressSanitizer and UndefinedBehaviorSanitizer, then every libFuzzer
# target for TOPICFS_FUZZ_SECONDS (default 20) each with the fixed seed
# FUZZ_SEED (default 1), so that a run is repeatable (clang; tests/fuzz/run.sh).
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
# meson's "Ok: N" / "Fail: N" / "Timeout: N" of the given builds' last runs, as one line.
summary() {
    what=$1
    shift
    for b in "$@"; do cat "$b/meson-logs/testlog.txt"; done |
        awk -v what="$what" '/^Ok:/ {ok+=$2} /^Fail:/ {fail+=$2} /^Timeout:/ {fail+=$2}
            END {printf "%s: %d passed, %d failed\n", what, ok, fail}'
}
meson test -C build --print-errorlogs
if [ ! -f build-sanitize/build.ninja ]; then
    meson setup build-sanitize -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false \
        --buildtype=debug >/dev/null
fi
ninja -C build-sanitize >/dev/null
ASAN_OPTIONS=detect_leaks=1:detect_stack_use_after_return=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
TOPICFS_TEST_BIG_MB=128 meson test -C build-sanitize --print-errorlogs --suite unit --suite fs --suite cluster
summary all build build-sanitize
fuzz=0
if command -v clang >/dev/null; then
    FUZZ_SEED=${FUZZ_SEED:-1} tests/fuzz/run.sh "${TOPICFS_FUZZ_SECONDS:-20}" || fuzz=1
else
    echo "fuzz: skipped (no clang)"
fi
exit $fuzz
