#!/bin/bash
# run.sh - topicfs benchmarks, each beside its baselines measured in the same
# run: a plain file on the local filesystem (ext4) and libfuse's `null`
# example (a no-op FUSE filesystem, built here from libfuse3-dev's examples).
#
#   tests/bench/run.sh              # full size: 1 GiB corpora, 10M-record group topic
#   BENCH_MB=128 BENCH_GROUP_RECORDS=1000000 tests/bench/run.sh   # quick
#
# Prints one table (markdown) on stdout; progress goes to stderr. Needs root
# (or fuse permissions) and the build in build/ (scripts/build.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
TOPICFS=${TOPICFS:-$ROOT/build/fs/topicfs}
MB=${BENCH_MB:-1024}
GROUP_RECORDS=${BENCH_GROUP_RECORDS:-10000000}
ECHOES=${BENCH_ECHOES:-20000}
W=$(mktemp -d /var/tmp/topicfs-bench.XXXXXX)
NULL_PID="" TFS_PID=""

cleanup() {
    set +e
    mountpoint -q "$W/mnt" 2>/dev/null && fusermount3 -u "$W/mnt"
    [ -n "$TFS_PID" ] && kill "$TFS_PID" 2>/dev/null && wait "$TFS_PID" 2>/dev/null
    grep -q " $W/nullfile " /proc/mounts && fusermount3 -u "$W/nullfile"
    [ -n "$NULL_PID" ] && kill "$NULL_PID" 2>/dev/null && wait "$NULL_PID" 2>/dev/null
    rm -rf "$W"
}
trap cleanup EXIT INT TERM

log() { echo "bench: $*" >&2; }
now() { date +%s.%N; }
# rate COUNT START END -> COUNT per second
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.0f", n / (b - a) }'; }
mbps() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.0f", n / 1048576 / (b - a) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
row() { printf '| %s | %s | %s | %s | %s |\n' "$@"; }
# Dirty pages of the previous workload must not be written back during the next.
settle() { sync; }
median3() { printf '%s\n' "$@" | sort -n | sed -n 2p; }

[ -x "$TOPICFS" ] || { echo "build topicfs first (scripts/build.sh)" >&2; exit 1; }
mkdir -p "$W/ext4" "$W/mnt"

# ---- the no-op FUSE baseline ----
NULL_SRC=/usr/share/doc/libfuse3-dev/examples/null.c
[ -f "$NULL_SRC" ] || NULL_SRC=$NULL_SRC.gz
if [[ $NULL_SRC == *.gz ]]; then zcat "$NULL_SRC" > "$W/null.c"; else cp "$NULL_SRC" "$W/null.c"; fi
cc -O2 -o "$W/null" "$W/null.c" $(pkg-config --cflags --libs fuse3)
: > "$W/nullfile"
"$W/null" -f "$W/nullfile" & NULL_PID=$!
for _ in $(seq 100); do grep -q " $W/nullfile " /proc/mounts && break; sleep 0.05; done

mount_topicfs() {
    "$TOPICFS" "$W/data" "$W/mnt" -f -o "partitions=1${1:+,$1}" 2>>"$W/topicfs.log" & TFS_PID=$!
    for _ in $(seq 200); do mountpoint -q "$W/mnt" && return 0; sleep 0.05; done
    echo "topicfs did not mount" >&2; cat "$W/topicfs.log" >&2; exit 1
}
unmount_topicfs() {
    fusermount3 -u "$W/mnt"
    wait "$TFS_PID" 2>/dev/null || true
    TFS_PID=""
}

# ---- corpora (on the local filesystem) ----
log "generating ${MB} MiB of 100-byte lines and an access log"
python3 - "$W/lines.txt" "$MB" <<'EOF'
import sys
n = int(sys.argv[2]) * 1048576 // 100
with open(sys.argv[1], "w") as f:
    chunk = []
    for i in range(n):
        chunk.append("%-99s\n" % ("record %d of the benchmark corpus, padded to one hundred bytes" % i))
        if len(chunk) == 100000:
            f.write("".join(chunk)); chunk = []
    f.write("".join(chunk))
EOF
python3 - "$W/access.log" "$((MB / 4))" <<'EOF'
import random, sys
random.seed(7)
target = int(sys.argv[2]) * 1048576
paths = ["/", "/index.html", "/api/v1/orders", "/api/v1/orders/%d", "/static/app.%s.js",
         "/img/logo.png", "/login", "/cart", "/search?q=%s", "/api/v1/users/%d/profile"]
agents = ["Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
          "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
          "curl/7.88.1", "Googlebot/2.1 (+http://www.google.com/bot.html)"]
words = ["shoes", "red", "kafka", "fuse", "log", "sale", "phone", "book"]
size, t, out = 0, 1763892000, []
with open(sys.argv[1], "w") as f:
    while size < target:
        p = random.choice(paths)
        if "%d" in p: p = p % random.randint(1, 99999)
        elif "%s" in p: p = p % (random.choice(words) if "q=" in p else "%08x" % random.getrandbits(32))
        t += random.randint(0, 2)
        line = '%d.%d.%d.%d - - [%s] "%s %s HTTP/1.1" %d %d "-" "%s"\n' % (
            random.randint(1, 223), random.randint(0, 255), random.randint(0, 255), random.randint(1, 254),
            __import__("time").strftime("%d/%b/%Y:%H:%M:%S +0000", __import__("time").gmtime(t)),
            random.choice(["GET"] * 8 + ["POST"]), p, random.choice([200] * 9 + [304, 404, 500]),
            random.randint(200, 60000), random.choice(agents))
        out.append(line); size += len(line)
        if len(out) == 10000:
            f.write("".join(out)); out = []
    f.write("".join(out))
EOF
LINES_BYTES=$(stat -c %s "$W/lines.txt")
LINES_N=$(wc -l < "$W/lines.txt")
ACCESS_BYTES=$(stat -c %s "$W/access.log")
ACCESS_N=$(wc -l < "$W/access.log")

echo "| workload | plain ext4 file | no-op FUSE (null) | topicfs | topicfs vs baseline |"
echo "|---|---|---|---|---|"

# ---- (a) cat of 100-byte lines >> p0 ----
log "(a) cat ${MB} MiB >> file"
mount_topicfs
mkdir "$W/mnt/a"
settle; t0=$(now); cat "$W/lines.txt" >> "$W/ext4/a"; t1=$(now)
ext_a=$(rate "$LINES_N" "$t0" "$t1")
settle; t0=$(now); cat "$W/lines.txt" >> "$W/nullfile"; t1=$(now)
null_a=$(rate "$LINES_N" "$t0" "$t1")
settle; t0=$(now); cat "$W/lines.txt" >> "$W/mnt/a/p0"; t1=$(now)
tfs_a=$(rate "$LINES_N" "$t0" "$t1"); tfs_a_mb=$(mbps "$LINES_BYTES" "$t0" "$t1")
got=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^end_offset=/) { sub("end_offset=", "", $i); print $i } }' "$W/mnt/a/.info")
[ "$got" = "$LINES_N" ] || { echo "(a): expected $LINES_N records, .info says $got" >&2; exit 1; }
row "(a) \`cat\` ${MB} MiB of 100-byte lines \`>> p0\`, records/s" "$ext_a" "$null_a" \
    "$tfs_a ($tfs_a_mb MB/s)" "$(ratio "$tfs_a" "$null_a")× null"

# ---- (b) 20,000 echo >> p0 in one bash loop ----
log "(b) $ECHOES echo >> file"
loop() { bash -c 'for ((i = 0; i < '"$ECHOES"'; i++)); do echo "event $i" >> "$1"; done' _ "$1"; }
settle; t0=$(now); loop "$W/ext4/b"; t1=$(now); ext_b=$(rate "$ECHOES" "$t0" "$t1")
settle; t0=$(now); loop "$W/nullfile"; t1=$(now); null_b=$(rate "$ECHOES" "$t0" "$t1")
mkdir "$W/mnt/b"
settle; t0=$(now); loop "$W/mnt/b/p0"; t1=$(now); tfs_b=$(rate "$ECHOES" "$t0" "$t1")
row "(b) $ECHOES \`echo … >> p0\` in a bash loop, appends/s" "$ext_b" "$null_b" "$tfs_b" \
    "$(ratio "$tfs_b" "$null_b")× null"

# ---- (c) cat p0 > /dev/null after a remount, then again ----
log "(c) read"
unmount_topicfs
settle
mount_topicfs
t0=$(now); cat "$W/mnt/a/p0" > /dev/null; t1=$(now); tfs_c1=$(mbps "$LINES_BYTES" "$t0" "$t1")
# Warm re-reads: the median of three, as one run on this VM can stall.
c2=()
for _ in 1 2 3; do
    t0=$(now); cat "$W/mnt/a/p0" > /dev/null; t1=$(now); c2+=("$(mbps "$LINES_BYTES" "$t0" "$t1")")
done
tfs_c2=$(median3 "${c2[@]}")
t0=$(now); cat "$W/ext4/a" > /dev/null; t1=$(now); ext_c=$(mbps "$LINES_BYTES" "$t0" "$t1")
t0=$(now); head -c "$LINES_BYTES" "$W/nullfile" > /dev/null; t1=$(now)
null_c=$(mbps "$LINES_BYTES" "$t0" "$t1")
row "(c) \`cat p0 > /dev/null\` after remount, MB/s" "$ext_c" "$null_c" "$tfs_c1" \
    "$(ratio "$tfs_c1" "$ext_c")× ext4"
row "(c) \`cat p0 > /dev/null\` again (median of 3), MB/s" "$ext_c" "$null_c" "$tfs_c2" \
    "$(ratio "$tfs_c2" "$ext_c")× ext4"

# ---- (d) append to tail -f latency; append to a blocked group follow reader ----
log "(d) latency"
read -r ext_d _ _ < <(python3 tests/bench/latency.py tail "$W/ext4/b" 20)
read -r tfs_d _ _ < <(python3 tests/bench/latency.py tail "$W/mnt/b/p0" 10)
row "(d) append → \`tail -f\` prints it, median ms" "$ext_d (inotify)" "n/a" "$tfs_d (tail polls 1/s)" "-"
mkdir "$W/mnt/b/.groups/lat"
echo latest > "$W/mnt/b/.groups/lat/p0"
read -r f_med f_p90 f_max < <(python3 tests/bench/latency.py follow "$W/mnt/b/.groups/lat/follow" "$W/mnt/b/p0" 500)
row "append → blocked group \`follow\` reader, median / p90 / max ms" "-" "-" "$f_med / $f_p90 / $f_max" "-"

# ---- lz4: ingest and read an access log, compression ratio ----
log "lz4"
for codec in none lz4; do
    mkdir "$W/mnt/log_$codec"
    echo "compression.type=$codec" >> "$W/mnt/log_$codec/.config"
    settle; t0=$(now); cat "$W/access.log" >> "$W/mnt/log_$codec/p0"; t1=$(now)
    eval "ing_$codec=\$(rate $ACCESS_N $t0 $t1) ing_mb_$codec=\$(mbps $ACCESS_BYTES $t0 $t1)"
    t0=$(now); cat "$W/mnt/log_$codec/p0" > /dev/null; t1=$(now)
    eval "rd_$codec=\$(mbps $ACCESS_BYTES $t0 $t1)"
    cmp -s "$W/access.log" "$W/mnt/log_$codec/p0" || { echo "lz4: read back differs" >&2; exit 1; }
done
stored=$(grep -o 'stored_bytes=[0-9]*' "$W/mnt/log_lz4/.info" | cut -d= -f2)
row "access log ($((ACCESS_BYTES / 1048576)) MiB) ingest, \`compression.type=lz4\` vs none, records/s" \
    "-" "-" "$ing_lz4 ($ing_mb_lz4 MB/s) vs $ing_none ($ing_mb_none MB/s)" "$(ratio "$ing_lz4" "$ing_none")× none"
row "access log read, lz4 vs none, MB/s" "-" "-" "$rd_lz4 vs $rd_none" "$(ratio "$rd_lz4" "$rd_none")× none"
row "lz4 stored / raw bytes" "-" "-" "$stored / $ACCESS_BYTES" "ratio $(ratio "$ACCESS_BYTES" "$stored"):1"

# ---- cost of retention and compaction passes while a producer runs ----
log "cleaner passes"
unmount_topicfs
mount_topicfs "retention.check.interval.ms=100"
# The access log with 1000 keys in front (k17:<line>).
awk '{ print "k" (NR % 1000) ":" $0 }' "$W/access.log" > "$W/keyed.log"
# Three rounds, each kind once per round; the median of three per kind.
declare -A runs
for r in 1 2 3; do
    for t in plain retained compacted; do
        mkdir "$W/mnt/$t$r"
        printf 'segment.bytes=1048576\nkey.separator=:\n' >> "$W/mnt/$t$r/.config"
        case $t in
        retained) printf 'retention.bytes=4194304\n' >> "$W/mnt/$t$r/.config" ;;
        compacted) printf 'cleanup.policy=compact\nmin.cleanable.dirty.ratio=0.1\n' >> "$W/mnt/$t$r/.config" ;;
        esac
        settle; t0=$(now); cat "$W/keyed.log" >> "$W/mnt/$t$r/p0"; t1=$(now)
        runs[$t]+=" $(rate "$ACCESS_N" "$t0" "$t1")"
    done
done
cl_plain=$(median3 ${runs[plain]}) cl_retained=$(median3 ${runs[retained]})
cl_compacted=$(median3 ${runs[compacted]})
segs_r=$(grep -o 'segments=[0-9]*' "$W/mnt/retained3/.info" | cut -d= -f2)
row "producer during retention passes (1 MiB segments, retention.bytes=4 MiB), records/s" "-" "-" \
    "$cl_retained vs $cl_plain without ($segs_r segments left)" "$(ratio "$cl_retained" "$cl_plain")× without"
row "producer during compaction passes (1000 keys), records/s" "-" "-" \
    "$cl_compacted vs $cl_plain without" "$(ratio "$cl_compacted" "$cl_plain")× without"

# ---- consumer groups: drain with 1 and 3 members vs cat ----
log "groups: $GROUP_RECORDS records"
mkdir "$W/mnt/g"
echo "partitions=3" >> "$W/mnt/g/.config"
per=$(((GROUP_RECORDS + 2) / 3))
for p in 0 1 2; do head -n "$per" "$W/lines.txt" > "$W/part$p"; done
if [ "$per" -gt "$LINES_N" ]; then
    for p in 0 1 2; do
        python3 -c 'import sys
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])): f.write("%-99s\n" % ("record %d" % i))' "$W/part$p" "$per"
    done
fi
for p in 0 1 2; do cat "$W/part$p" >> "$W/mnt/g/p$p"; done
settle
total=$((per * 3))
# The same pipeline for all three: cat reads 128 KiB at a time, wc counts.
t0=$(now); n0=$(cat "$W/mnt/g/p0" "$W/mnt/g/p1" "$W/mnt/g/p2" | wc -l); t1=$(now)
[ "$n0" -eq "$total" ] || { echo "groups: cat read $n0 of $total" >&2; exit 1; }
g_cat=$(rate "$total" "$t0" "$t1")
mkdir "$W/mnt/g/.groups/one" "$W/mnt/g/.groups/three"
t0=$(now); n1=$(cat "$W/mnt/g/.groups/one/drain" | wc -l); t1=$(now)
g_one=$(rate "$n1" "$t0" "$t1")
[ "$n1" -eq "$total" ] || { echo "groups: one member read $n1 of $total" >&2; exit 1; }
t0=$(now)
pids=()
for k in 1 2 3; do cat "$W/mnt/g/.groups/three/drain" | wc -l > "$W/three.$k" & pids+=($!); done
wait "${pids[@]}"
t1=$(now)
n3=$(cat "$W/three.1" "$W/three.2" "$W/three.3" | awk '{ s += $1 } END { print s }')
g_three=$(rate "$total" "$t0" "$t1")
[ "$n3" -ge "$total" ] || { echo "groups: three members read $n3 of $total" >&2; exit 1; }
row "group \`cat drain\` piped to \`wc -l\`, $total records over 3 partitions, records/s: 1 member / 3 members" "-" "-" \
    "$g_one / $g_three (cat of the partitions: $g_cat)" "$(ratio "$g_one" "$g_cat")× / $(ratio "$g_three" "$g_cat")× cat"
log "done"
