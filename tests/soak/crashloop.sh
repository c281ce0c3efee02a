#!/bin/sh
# Crash-loop soak: runs tests/fs/test_crashloop.py for many cycles (default
# 2000) against the build in BUILD (default build/), at low priority.
#   tests/soak/crashloop.sh [CYCLES]
# Environment: BUILD, TOPICFS_CRASH_SECONDS (stop after that long),
# TOPICFS_CRASH_SEED (default: the time), and
# TOPICFS_FAULTS_FULL=1 also runs the fault-injection sweep with every errno
# at every step (SOAK_FAULTS=1). The last line printed is the summary:
#   crashloop: N cycles, A records acknowledged, L lost, ...
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
export TOPICFS="$PWD/$BUILD/fs/topicfs"
export FAILSYS_LIB="$PWD/$BUILD/tests/fault/libfailsys.so"
export TOPICFS_CRASH_CYCLES="${1:-2000}"
export PYTHONDONTWRITEBYTECODE=1
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
ninja -C "$BUILD" >/dev/null
if [ "${SOAK_FAULTS:-0}" = 1 ]; then
    TOPICFS_FAULTS_FULL=1 nice -n 19 python3 tests/fs/test_faults.py || echo "fault sweep: failures above"
fi
exec nice -n 19 python3 tests/fs/test_crashloop.py
