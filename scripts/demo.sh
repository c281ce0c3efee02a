#!/bin/bash
# The main job: installs what is missing, builds, mounts a single-node
# topicfs at ./demo/mnt (data in ./demo/data), and shows a `tail -f`
# consumer receiving what a shell producer appends, then a consumer group
# draining the topic. Unmounts at the end;
# KEEP=1 leaves the mount up for you to play with.
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
MNT=$PWD/demo/mnt DATA=$PWD/demo/data
mkdir -p "$MNT"
mountpoint -q "$MNT" && fusermount3 -u "$MNT"
./build/fs/topicfs "$DATA" "$MNT" -o partitions=3
for _ in $(seq 100); do mountpoint -q "$MNT" && break; sleep 0.05; done
cleanup() {
    [ -n "${TAIL:-}" ] && kill "$TAIL" 2>/dev/null
    [ "${KEEP:-0}" = 1 ] || fusermount3 -u "$MNT"
}
trap cleanup EXIT
set -x
[ -d "$MNT/orders" ] || mkdir "$MNT/orders"
ls -a "$MNT/orders"
{ set +x; } 2>/dev/null
echo "--- consumer: tail -f $MNT/orders/p0"
GOT=$PWD/demo/consumer.out
: > "$GOT"
tail -n 0 -s 0.1 -f "$MNT/orders/p0" > >(tee -a "$GOT" | sed -u 's/^/    consumer got: /') &
TAIL=$!
# Produce once tail has the partition open (tail -n 0 starts at its end).
for _ in $(seq 100); do
    ls -l "/proc/$TAIL/fd" 2>/dev/null | grep -q "orders/p0" && break
    sleep 0.05
done
echo "--- producer: echo ... >> $MNT/orders/p0"
for i in 1 2 3; do
    echo "order $i placed at $(date +%T.%N)" >> "$MNT/orders/p0"
    sleep 0.4
done
set -x
echo key.separator=: >> "$MNT/orders/.config"
echo 'user42:keyed record' >> "$MNT/orders/.produce"
cat "$MNT/orders/.info"
wc -l "$MNT"/orders/p*
[ -d "$MNT/orders/.groups/billing" ] || mkdir "$MNT/orders/.groups/billing"
cat "$MNT/orders/.groups/billing/drain"
cat "$MNT/orders/.groups/billing/.info"
{ set +x; } 2>/dev/null
# The consumer has printed the three orders (deadline 5 s) before it stops.
for _ in $(seq 100); do
    [ "$(grep -c '^order ' "$GOT")" -ge 3 ] && break
    sleep 0.05
done
kill "$TAIL" 2>/dev/null || true
[ "${KEEP:-0}" = 1 ] && echo "--- left mounted at $MNT (fusermount3 -u $MNT to stop)"
exit 0
