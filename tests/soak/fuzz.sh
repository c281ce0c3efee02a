#!/bin/sh
# Long fuzzing runs, on demand: every libFuzzer target for SECONDS each
# (default 3600), keeping the grown corpora in build-fuzz/fuzz-corpus/ so a
# next run goes on from them (tests/fuzz/run.sh does the work):
#   tests/soak/fuzz.sh [SECONDS] [TARGET...]
# New seeds worth keeping can be copied into tests/fuzz/corpus/<target>/
# (keep it small: a few interesting inputs, not the whole grown corpus).
set -eu
cd "$(dirname "$0")/../.."
secs=${1:-3600}
[ $# -gt 0 ] && shift
build=${FUZZ_BUILD:-build-fuzz}
out=${FUZZ_CORPUS_OUT:-$build/fuzz-corpus}
mkdir -p "$out"
# Start from the corpus a previous long run grew, plus the committed seeds.
seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT INT TERM
cp -r tests/fuzz/corpus/. "$seeds"/
cp -r "$out"/. "$seeds"/ 2>/dev/null || true
FUZZ_SEEDS=$seeds FUZZ_CORPUS_OUT=$out exec tests/fuzz/run.sh "$secs" "$@"
