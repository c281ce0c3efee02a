#!/bin/sh
# Installs what is missing, builds, and runs every test suite: first the
# normal build (unit + fs), then the unit and fs suites again built with
# AddressSanitizer and UndefinedBehaviorSanitizer.
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
meson test -C build --print-errorlogs
if [ ! -f build-sanitize/build.ninja ]; then
    meson setup build-sanitize -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false \
        --buildtype=debug >/dev/null
fi
ninja -C build-sanitize >/dev/null
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
TOPICFS_TEST_BIG_MB=128 meson test -C build-sanitize --print-errorlogs --suite unit --suite fs
echo "all tests passed"
