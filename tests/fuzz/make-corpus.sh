#!/bin/sh
# Regenerates the committed seed corpus, tests/fuzz/corpus/<target>/, with
# make_corpus (built in $FUZZ_BUILD, default build-fuzz/, as run.sh does).
set -eu
cd "$(dirname "$0")/../.."
build=${FUZZ_BUILD:-build-fuzz}
if [ ! -f "$build/build.ninja" ]; then
    CC=clang meson setup "$build" -Dfuzz=true -Dtests=false -Dwerror=true \
        --buildtype=debugoptimized >/dev/null
fi
ninja -C "$build" >/dev/null
rm -rf tests/fuzz/corpus
"$build/tests/fuzz/make_corpus" tests/fuzz/corpus
du -sh tests/fuzz/corpus
