/* test_segment.c - the storage engine below a topic: segments, recovery,
 * roll, the follower path, truncation, lookups and the store.
 *
 * Covers:
 *   - crash recovery: a .log cut at every byte of its unsynced last batch, or
 *     with any one byte of an unsynced batch flipped, reopens cut at the start
 *     of the first bad batch, serves exactly the records before it and takes
 *     new appends; lost, torn or garbled .index/.timeindex files are rebuilt;
 *   - durability: one partition_sync() syncs every segment with unsynced
 *     bytes and the directory (an fdatasync/fsync spy in this binary);
 *   - damage below the recovery point (flipped value, header offset or magic,
 *     zeroed, truncated or emptied segments, lost indexes or recovery point)
 *     is refused with EIO by offset and by position, counted, never cut, and
 *     every later segment stays over remounts;
 *   - descriptors: the .log LRU stays under its cap over hundreds of
 *     segments, and a zero-copy reply's file pieces stay open until sent;
 *   - roll by segment.bytes and by segment.ms (timestamps are injected, so
 *     no test sleeps), reads that cross segment boundaries, reopen;
 *   - the follower path: partition_append_batch() takes leader-sealed batches
 *     verbatim and refuses gaps, overlaps, wrong positions and bad checksums;
 *     partition_truncate() inside a segment, at a boundary, across segments,
 *     inside a multi-record batch, at 0 and past the end; a reader's cursor
 *     sees the records that replaced truncated ones;
 *   - offset -> position and time -> offset lookups, first/middle/last and
 *     past the end, with one and with many index entries per segment;
 *   - the store: topic names, create/find/delete, the data dir lock, reopen,
 *     and growing partitions through topic_config_apply();
 *   - views across retention, compaction and truncation: old views read
 *     kept segments (never the compacted ones that replaced them) and stop
 *     at a truncation cut; offsets and positions compaction removed; a change
 *     that cannot get its layout epoch changes nothing; and a randomized run
 *     of all of these with held views (fixed seeds).
 * Every file lives in a mkdtemp() directory that teardown removes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "compaction.h"
#include "logger.h"
#include "partition.h"
#include "store.h"
#include "topic.h"

/* ---- fsync spy: the test binary's fdatasync/fsync take the place of
 * libc's for the core code linked into it, and note the files they sync ---- */

static pthread_mutex_t spy_lock = PTHREAD_MUTEX_INITIALIZER;
static int spy_on;
static char **spy_paths;
static size_t spy_n, spy_cap;

static void spy_note(int fd)
{
    char link[64], path[512];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof(path) - 1);
    if (n < 0)
        return;
    path[n] = 0;
    pthread_mutex_lock(&spy_lock);
    if (spy_on) {
        if (spy_n == spy_cap) {
            spy_cap = spy_cap ? spy_cap * 2 : 64;
            spy_paths = realloc(spy_paths, spy_cap * sizeof(*spy_paths));
        }
        spy_paths[spy_n++] = strdup(path);
    }
    pthread_mutex_unlock(&spy_lock);
}

int fdatasync(int fd)
{
    spy_note(fd);
    return (int)syscall(SYS_fdatasync, fd);
}

int fsync(int fd)
{
    spy_note(fd);
    return (int)syscall(SYS_fsync, fd);
}

static void spy_start(void)
{
    pthread_mutex_lock(&spy_lock);
    for (size_t i = 0; i < spy_n; i++)
        free(spy_paths[i]);
    spy_n = 0;
    spy_on = 1;
    pthread_mutex_unlock(&spy_lock);
}

static void spy_stop(void)
{
    pthread_mutex_lock(&spy_lock);
    spy_on = 0;
    pthread_mutex_unlock(&spy_lock);
}

/* Whether a file whose real path is `path` was synced since spy_start(). */
static int spy_synced(const char *path)
{
    char real[512];
    int hit = 0;
    if (!realpath(path, real))
        return 0;
    pthread_mutex_lock(&spy_lock);
    for (size_t i = 0; i < spy_n && !hit; i++)
        hit = !strcmp(spy_paths[i], real);
    pthread_mutex_unlock(&spy_lock);
    return hit;
}

/* ---- files ---- */

static int rm_entry(const char *p, const struct stat *sb, int f, struct FTW *w)
{
    (void)sb;
    (void)f;
    (void)w;
    return remove(p);
}

static void rmtree(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

/* Reads a whole file into a new buffer; *len gets its size. */
static uint8_t *slurp(const char *path, size_t *len)
{
    int64_t n = file_size(path);
    assert_true(n >= 0);
    uint8_t *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, buf, (size_t)n), n);
    close(fd);
    *len = (size_t)n;
    return buf;
}

static void spit(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

/* Copies the regular files of a flat directory (a partition dir). */
static void copy_dir(const char *from, const char *to)
{
    char src[512], dst[512];
    DIR *d = opendir(from);
    struct dirent *de;
    assert_non_null(d);
    assert_int_equal(mkdir(to, 0755), 0);
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(src, sizeof(src), "%s/%s", from, de->d_name);
        snprintf(dst, sizeof(dst), "%s/%s", to, de->d_name);
        size_t len;
        uint8_t *buf = slurp(src, &len);
        spit(dst, buf, len);
        free(buf);
    }
    closedir(d);
}

static void flip_byte(const char *path, uint64_t at)
{
    int fd = open(path, O_RDWR);
    uint8_t c;
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &c, 1, (off_t)at), 1);
    c ^= 0xff;
    assert_int_equal(pwrite(fd, &c, 1, (off_t)at), 1);
    close(fd);
}

static void fill_file(const char *path, uint8_t byte)
{
    size_t len;
    uint8_t *buf = slurp(path, &len);
    memset(buf, byte, len);
    spit(path, buf, len);
    free(buf);
}

static int count_logs(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    assert_non_null(d);
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len == 24 && !strcmp(de->d_name + 20, ".log"))
            n++;
    }
    closedir(d);
    return n;
}

static void seg_file(char *buf, size_t cap, const char *dir, uint64_t base, const char *suffix)
{
    segment_path(buf, cap, dir, base, suffix);
}

/* File positions where the batches of a .log start; returns their count. */
static size_t batch_starts(const char *log, uint64_t *starts, size_t max)
{
    size_t len, n = 0;
    uint8_t *buf = slurp(log, &len);
    uint64_t at = 0;
    while (at < len) {
        struct batch_header h;
        assert_true(at + BATCH_HEADER_SIZE <= len);
        assert_int_equal(batch_header_decode(buf + at, &h), 0);
        assert_true(n < max);
        starts[n++] = at;
        at += h.length;
    }
    assert_int_equal(at, len);
    free(buf);
    return n;
}

/* ---- fixture: one temp dir per test ---- */

struct fx {
    char root[64];
    char path[256];
    /* Held here, not on the stack, where a failed assertion would leak them. */
    struct partition *p;
    struct partition_cursor c[2];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    strcpy(f->root, "/tmp/topicfs-segment-XXXXXX");
    assert_non_null(mkdtemp(f->root));
    partition_cursor_init(&f->c[0]);
    partition_cursor_init(&f->c[1]);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    partition_cursor_free(&f->c[0]);
    partition_cursor_free(&f->c[1]);
    partition_close(f->p);
    rmtree(f->root);
    free(f);
    return 0;
}

static const char *sub(struct fx *f, const char *name)
{
    snprintf(f->path, sizeof(f->path), "%s/%s", f->root, name);
    return f->path;
}

static struct partition_settings settings(uint64_t segment_bytes, int64_t segment_ms)
{
    struct partition_settings st = {
        .segment_bytes = segment_bytes,
        .segment_ms = segment_ms,
        .max_message_bytes = 1 << 20,
        .codec = BATCH_CODEC_NONE,
    };
    return st;
}

static struct partition *open_part(const char *dir, uint64_t segment_bytes, int64_t segment_ms)
{
    struct partition_settings st = settings(segment_bytes, segment_ms);
    struct partition *p = NULL;
    assert_int_equal(partition_open(dir, &st, &p), 0);
    assert_non_null(p);
    return p;
}

/* ---- records ---- */

/* Adds keyless records with the given values to b. */
static void build(struct batch_builder *b, const char *const *vals, size_t n)
{
    batch_builder_reset(b);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(vals[i]);
        assert_int_equal(batch_builder_add_record(b, (uint32_t)len, -1), 0);
        assert_int_equal(batch_builder_add_values(b, vals[i], len), 0);
    }
}

/* Appends the values as one batch; returns its base offset. */
static uint64_t append_vals(struct partition *p, const char *const *vals, size_t n, int64_t ts)
{
    struct batch_builder b;
    uint64_t base = UINT64_MAX;
    batch_builder_init(&b);
    build(&b, vals, n);
    assert_int_equal(partition_append(p, &b, ts, &base), 0);
    batch_builder_free(&b);
    return base;
}

static uint64_t append1(struct partition *p, const char *val, int64_t ts)
{
    return append_vals(p, &val, 1, ts);
}

/* Seals the values as a leader would, at (offset, pos), into out. */
static size_t seal_flat(const char *const *vals, size_t n, uint64_t offset, uint64_t pos,
                        int64_t ts, uint32_t epoch, uint8_t *out, size_t cap)
{
    struct batch_builder b;
    const struct iovec *iov;
    int iovcnt;
    size_t len, at = 0;
    batch_builder_init(&b);
    build(&b, vals, n);
    assert_int_equal(
        batch_builder_seal(&b, BATCH_CODEC_NONE, offset, pos, ts, epoch, &iov, &iovcnt, &len), 0);
    for (int i = 0; i < iovcnt; i++) {
        assert_true(at + iov[i].iov_len <= cap);
        memcpy(out + at, iov[i].iov_base, iov[i].iov_len);
        at += iov[i].iov_len;
    }
    assert_int_equal(at, len);
    batch_builder_free(&b);
    return len;
}

/* Reads the stream from pos to its end with a fresh cursor. */
static size_t read_from(struct partition *p, uint64_t pos, char *buf, size_t cap)
{
    struct partition_cursor c;
    size_t done = 0;
    partition_cursor_init(&c);
    for (;;) {
        ssize_t n = partition_read(p, &c, pos + done, buf + done, cap - done);
        assert_true(n >= 0);
        if (n == 0)
            break;
        done += (size_t)n;
        assert_true(done < cap);
    }
    partition_cursor_free(&c);
    return done;
}

static void assert_stream(struct partition *p, const char *expect, size_t len)
{
    char *buf = malloc(len + 4096);
    assert_non_null(buf);
    assert_int_equal(read_from(p, 0, buf, len + 4096), len);
    assert_memory_equal(buf, expect, len);
    free(buf);
}

struct recs {
    uint64_t offsets[4096];
    int64_t ts[4096];
    char text[65536];
    size_t n, len;
};

static int collect(const struct record_view *r, void *arg)
{
    struct recs *d = arg;
    assert_true(d->n < 4096 && d->len + r->value_len <= sizeof(d->text));
    d->offsets[d->n] = r->offset;
    d->ts[d->n++] = r->timestamp;
    memcpy(d->text + d->len, r->value, r->value_len);
    d->len += r->value_len;
    return 0;
}

static void fetch_all(struct partition *p, uint64_t from, struct recs *d)
{
    struct partition_cursor c;
    uint64_t next;
    memset(d, 0, sizeof(*d));
    partition_cursor_init(&c);
    assert_int_equal(partition_fetch(p, &c, from, 4096, collect, d, &next), 0);
    partition_cursor_free(&c);
}

/* Offsets from..from+n-1, in order, and nothing else. */
static void assert_dense(const struct recs *d, uint64_t from, size_t n)
{
    assert_int_equal(d->n, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(d->offsets[i], from + i);
}

/* ---- 0. a batch of more iovecs than one pwritev takes ---- */

/* Values from separate buffers (records forwarded by another broker: each
 * value its own iovec): 3000 of them, past IOV_MAX and past what the
 * resumed write handled before (1088 iovecs in all), written whole. */
static void test_append_more_iovecs_than_iov_max(void **state)
{
    struct fx *f = *state;
    const char *dir = sub(f, "iov");
    struct partition *p = open_part(dir, 1 << 24, INT64_MAX);
    enum { N = 3000 };
    char *vals = malloc(N * 16);
    char *expect = malloc(N * 16);
    size_t elen = 0;
    assert_non_null(vals);
    assert_non_null(expect);
    struct batch_builder b;
    batch_builder_init(&b);
    for (size_t i = 0; i < N; i++) {
        char *v = vals + i * 16; /* 16 apart, 7 or 8 bytes long: never adjacent */
        int len = snprintf(v, 16, "v%05zu\n", i);
        memcpy(expect + elen, v, (size_t)len);
        elen += (size_t)len;
        assert_int_equal(batch_builder_add_record(&b, (uint32_t)len, -1), 0);
        assert_int_equal(batch_builder_add_values(&b, v, (size_t)len), 0);
    }
    uint64_t base;
    assert_int_equal(partition_append(p, &b, 1000, &base), 0);
    batch_builder_free(&b);
    assert_int_equal(partition_sync(p), 0);
    assert_stream(p, expect, elen);
    partition_close(p);
    p = open_part(dir, 1 << 24, INT64_MAX); /* verified whole at the next open too */
    assert_stream(p, expect, elen);
    struct partition_info pi;
    partition_info(p, &pi);
    assert_int_equal(pi.end_offset, N);
    partition_close(p);
    free(vals);
    free(expect);
}

/* ---- 1. torn tail ---- */

/* Five records in three batches: {0, 1} {2} {3, 4}. SMALL fits in one
 * index interval; in BIG the first two batches are over INDEX_INTERVAL_BYTES
 * each, so every batch, the last one too, has its own index entry. */
static const char *const SMALL[] = {"alpha\n", "bravo\n", "charlie\n", "delta\n", "echo\n"};
static char big_a[4200], big_c[4200];
static const char *const BIG[] = {big_a, "bravo\n", big_c, "delta\n", "echo\n"};

static void init_big(void)
{
    memset(big_a, 'A', sizeof(big_a) - 2);
    big_a[sizeof(big_a) - 2] = '\n';
    memset(big_c, 'C', sizeof(big_c) - 2);
    big_c[sizeof(big_c) - 2] = '\n';
}

/* The stream of the first n records of vals. */
static size_t text_of(const char *const *vals, size_t n, char *out)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(out + len, vals[i], strlen(vals[i]));
        len += strlen(vals[i]);
    }
    return len;
}

/* Writes the three batches into dir. `synced` says after how many batches
 * the partition was last synced (the rest sit past the recovery point). */
static void make_three_batches(const char *dir, const char *const *vals, int synced)
{
    struct partition *p = open_part(dir, 1 << 20, INT64_MAX);
    assert_int_equal(append_vals(p, vals, 2, 1000), 0);
    if (synced == 1)
        assert_int_equal(partition_sync(p), 0);
    assert_int_equal(append_vals(p, vals + 2, 1, 2000), 2);
    if (synced == 2)
        assert_int_equal(partition_sync(p), 0);
    assert_int_equal(append_vals(p, vals + 3, 2, 3000), 3);
    if (synced == 3)
        assert_int_equal(partition_sync(p), 0);
    partition_close(p);
}

/* Opens a damaged copy: it must hold exactly the first `keep` records in a
 * log of `log_size` bytes, accept a new record and keep it over a reopen. */
static void check_recovered(const char *dir, const char *const *vals, size_t keep,
                            uint64_t log_size)
{
    static char expect[16384];
    char log[512];
    struct partition_info pi;
    struct recs d;
    size_t len = text_of(vals, keep, expect);
    seg_file(log, sizeof(log), dir, 0, ".log");

    struct partition *p = open_part(dir, 1 << 20, INT64_MAX);
    partition_info(p, &pi);
    assert_int_equal(pi.start_offset, 0);
    assert_int_equal(pi.end_offset, keep);
    assert_int_equal(pi.end_pos, len);
    assert_int_equal(pi.segments, 1);
    assert_int_equal(pi.stored_bytes, log_size);
    assert_int_equal(file_size(log), (int64_t)log_size);
    assert_stream(p, expect, len);
    fetch_all(p, 0, &d);
    assert_dense(&d, 0, keep);
    uint64_t pos, off;
    assert_int_equal(partition_offset_pos(p, keep, &pos), 0);
    assert_int_equal(pos, len);
    assert_int_equal(partition_time_offset(p, 3000, &off), 0);
    assert_int_equal(off, keep < 3 ? keep : 3); /* {3, 4} were stamped 3000 */

    assert_int_equal(append1(p, "foxtrot\n", 4000), keep);
    memcpy(expect + len, "foxtrot\n", 8);
    assert_stream(p, expect, len + 8);
    assert_int_equal(partition_offset_pos(p, keep, &pos), 0);
    assert_int_equal(pos, len);
    assert_int_equal(partition_sync(p), 0);
    partition_close(p);

    p = open_part(dir, 1 << 20, INT64_MAX);
    partition_info(p, &pi);
    assert_int_equal(pi.end_offset, keep + 1);
    assert_stream(p, expect, len + 8);
    fetch_all(p, 0, &d);
    assert_dense(&d, 0, keep + 1);
    assert_int_equal(d.ts[keep], 4000);
    assert_int_equal(partition_time_offset(p, 3001, &off), 0);
    assert_int_equal(off, keep);
    partition_close(p);
}

/* Batch starts of dir's only .log: exactly three. */
static void three_starts(const char *dir, uint64_t *starts, uint64_t *end)
{
    char log[512];
    seg_file(log, sizeof(log), dir, 0, ".log");
    assert_int_equal(batch_starts(log, starts, 8), 3);
    *end = (uint64_t)file_size(log);
    assert_true(starts[2] + BATCH_HEADER_SIZE < *end);
}

/* Cuts the log of a synced copy at every length inside its last batch. */
static void torn_tail(struct fx *f, const char *const *vals)
{
    char orig[256], work[256], log[512];
    uint64_t starts[8], end;
    snprintf(orig, sizeof(orig), "%s", sub(f, "orig"));
    snprintf(work, sizeof(work), "%s", sub(f, "work"));
    make_three_batches(orig, vals, 2); /* a crash tears only what was not synced */
    three_starts(orig, starts, &end);

    seg_file(log, sizeof(log), work, 0, ".log");
    for (uint64_t len = starts[2]; len < end; len++) {
        rmtree(work);
        copy_dir(orig, work);
        assert_int_equal(truncate(log, (off_t)len), 0);
        check_recovered(work, vals, 3, starts[2]);
    }
    /* The undamaged original still has all five. */
    check_recovered(orig, vals, 5, end);
}

/* Flips, one at a time, every byte of a last batch that was never synced. */
static void corrupt_tail(struct fx *f, const char *const *vals)
{
    char orig[256], work[256], log[512];
    uint64_t starts[8], end;
    snprintf(orig, sizeof(orig), "%s", sub(f, "orig"));
    snprintf(work, sizeof(work), "%s", sub(f, "work"));
    make_three_batches(orig, vals, 2);
    three_starts(orig, starts, &end);

    seg_file(log, sizeof(log), work, 0, ".log");
    for (uint64_t at = starts[2]; at < end; at++) {
        rmtree(work);
        copy_dir(orig, work);
        flip_byte(log, at);
        check_recovered(work, vals, 3, starts[2]);
    }
}

static void test_torn_tail_every_length(void **state)
{
    torn_tail(*state, SMALL);
}

static void test_corrupt_unsynced_batch_every_byte(void **state)
{
    corrupt_tail(*state, SMALL);
}

static void test_torn_tail_indexed_last_batch(void **state)
{
    struct fx *f = *state;
    char ix[512];
    init_big();
    torn_tail(f, BIG);
    /* The precondition: one index entry per batch of the original (the
     * small record appended by the last check adds none). */
    seg_file(ix, sizeof(ix), sub(f, "orig"), 0, ".index");
    assert_int_equal(file_size(ix), 3 * (int64_t)sizeof(struct offset_index_entry));
    rmtree(sub(f, "orig"));
    rmtree(sub(f, "work"));
    corrupt_tail(f, BIG);
}

static void test_corrupt_middle_batch_drops_rest(void **state)
{
    struct fx *f = *state;
    char orig[256], work[256], synced[256], log[512], rp[512];
    uint64_t starts[8], end;
    snprintf(orig, sizeof(orig), "%s", sub(f, "orig"));
    snprintf(work, sizeof(work), "%s", sub(f, "work"));
    snprintf(synced, sizeof(synced), "%s", sub(f, "synced"));
    make_three_batches(orig, SMALL, 1);
    three_starts(orig, starts, &end);
    seg_file(log, sizeof(log), work, 0, ".log");
    snprintf(rp, sizeof(rp), "%s/recovery-point", work);

    /* A value byte of {charlie}: it and {delta, echo} after it go. */
    copy_dir(orig, work);
    flip_byte(log, starts[2] - 3);
    check_recovered(work, SMALL, 2, starts[1]);

    /* Without a recovery point everything is verified, even synced data. */
    make_three_batches(synced, SMALL, 3);
    rmtree(work);
    copy_dir(synced, work);
    assert_int_equal(unlink(rp), 0);
    flip_byte(log, BATCH_HEADER_SIZE + 5);
    check_recovered(work, SMALL, 0, 0);

    /* A torn recovery point means the same. */
    rmtree(work);
    copy_dir(synced, work);
    assert_int_equal(truncate(rp, 13), 0);
    flip_byte(log, starts[1] + BATCH_HEADER_SIZE + 2);
    check_recovered(work, SMALL, 2, starts[1]);
}

/* Recovery across segments: a torn first batch of the unsynced active
 * segment leaves it empty (and in place); a bad batch in an older, synced
 * segment is refused (EIO) and nothing after it is dropped, even without a
 * recovery point. */
static void test_recovery_across_segments(void **state)
{
    struct fx *f = *state;
    char orig[256], work[256], log[512], rp[512], expect[512];
    struct partition_info pi;
    snprintf(orig, sizeof(orig), "%s", sub(f, "orig"));
    snprintf(work, sizeof(work), "%s", sub(f, "work"));
    struct partition *p = open_part(orig, 300, INT64_MAX);
    for (int i = 0; i < 10; i++) {
        char v[24];
        snprintf(v, sizeof(v), "seg-%02d\n", i);
        if (i == 8)
            assert_int_equal(partition_sync(p), 0); /* 8-9 stay unsynced */
        append1(p, v, 1000 + i);
        memcpy(expect + 7 * i, v, 7);
    }
    partition_info(p, &pi);
    assert_int_equal(pi.segments, 3); /* 0-3, 4-7, 8-9 */
    partition_close(p);

    for (uint64_t len = 0; len < 73; len += 9) {
        rmtree(work);
        copy_dir(orig, work);
        seg_file(log, sizeof(log), work, 8, ".log");
        assert_int_equal(truncate(log, (off_t)len), 0);
        p = open_part(work, 300, INT64_MAX);
        partition_info(p, &pi);
        assert_int_equal(pi.segments, 3);
        assert_int_equal(pi.end_offset, 8);
        assert_int_equal(pi.end_pos, 56);
        assert_int_equal(p->segs[2]->base_pos, 56);
        assert_int_equal(file_size(log), 0);
        assert_stream(p, expect, 56);
        assert_int_equal(append1(p, "seg-XX\n", 2000), 8);
        memcpy(expect + 56, "seg-XX\n", 7);
        assert_stream(p, expect, 63);
        memcpy(expect + 56, "seg-08\n", 7);
        partition_close(p);
    }

    rmtree(work);
    copy_dir(orig, work);
    snprintf(rp, sizeof(rp), "%s/recovery-point", work);
    assert_int_equal(unlink(rp), 0);
    seg_file(log, sizeof(log), work, 4, ".log");
    flip_byte(log, 73 + 70); /* a value byte of offset 5 */
    p = open_part(work, 300, INT64_MAX);
    partition_info(p, &pi);
    assert_int_equal(pi.segments, 3);
    assert_int_equal(pi.end_offset, 10);
    assert_int_equal(count_logs(work), 3);
    char buf[128];
    struct partition_cursor c;
    partition_cursor_init(&c);
    assert_int_equal(partition_read(p, &c, 0, buf, 35), 35);
    assert_memory_equal(buf, expect, 35);
    assert_int_equal(partition_read(p, &c, 35, buf, 7), -EIO);
    assert_int_equal(partition_read(p, &c, 38, buf, 7), -EIO);
    assert_int_equal(partition_read(p, &c, 42, buf, 28), 28);
    assert_memory_equal(buf, expect + 42, 28);
    partition_cursor_free(&c);
    partition_info(p, &pi);
    assert_int_equal(pi.bad_batches, 1);
    struct recs d;
    fetch_all(p, 6, &d);
    assert_dense(&d, 6, 4);
    assert_int_equal(append1(p, "seg-10\n", 3000), 10);
    partition_close(p);
}

/* One partition_sync() after appends over hundreds of segments makes every
 * one of them stable, and the directory entries of the new files, before the
 * recovery point moves past them. */
static void test_sync_covers_every_segment(void **state)
{
    struct fx *f = *state;
    char dir[256], log[512];
    snprintf(dir, sizeof(dir), "%s", sub(f, "many"));
    f->p = open_part(dir, 2048, INT64_MAX);
    assert_int_equal(partition_sync(f->p), 0);
    spy_start();
    for (int i = 0; i < 12001; i++) {
        char v[32];
        snprintf(v, sizeof(v), "record-%05d\n", i);
        append1(f->p, v, 1000 + i);
    }
    struct partition_info pi;
    partition_info(f->p, &pi);
    assert_true(pi.segments > 300);
    assert_int_equal(partition_sync(f->p), 0);
    spy_stop();
    size_t unsynced = 0;
    for (uint32_t i = 0; i < pi.segments; i++) {
        seg_file(log, sizeof(log), dir, f->p->segs[i]->base_offset, ".log");
        unsynced += !spy_synced(log);
    }
    assert_int_equal(unsynced, 0);
    assert_true(spy_synced(dir));
    assert_int_equal(f->p->recovery_offset, 12001);
    /* Nothing left to sync: the next sync syncs nothing. */
    spy_start();
    assert_int_equal(partition_sync(f->p), 0);
    spy_stop();
    assert_int_equal(spy_n, 0);
}

/* ---- 1a. damage below the recovery point ---- */

/* 20 one-record batches "rec-NNN\n" (74 bytes each, 8 value bytes), four
 * per segment: 0, 4, 8, 12, 16. Synced after 18 records, so the active
 * segment 16 holds two synced batches and two unsynced ones. */
#define DMG_RECS 20

static void make_damage_orig(const char *dir)
{
    struct partition *p = open_part(dir, 300, INT64_MAX);
    for (int i = 0; i < DMG_RECS; i++) {
        char v[16];
        snprintf(v, sizeof(v), "rec-%03d\n", i);
        if (i == 18)
            assert_int_equal(partition_sync(p), 0);
        append1(p, v, 1000 + i);
    }
    partition_close(p);
}

enum damage {
    FLIP_VALUE,       /* a value byte of a record */
    FLIP_OFFSET,      /* the high byte of a header's base offset */
    FLIP_MAGIC,       /* a header's magic */
    FLIP_POS,         /* the high byte of a header's stream position */
    ZERO_LOG,         /* the whole .log */
    TRUNCATE_LOG,     /* to `at` bytes */
    DELETE_INDEX,     /* .index */
    DMG_GARBLE_INDEX, /* .index filled with 0x5a */
    DMG_GARBLE_TIME,  /* .timeindex */
    DELETE_RP,        /* recovery-point */
    GARBLE_RP,
};

struct damage_case {
    enum damage kind;
    uint64_t seg, record;    /* segment, and the record (its batch) or byte count */
    uint64_t bad_lo, bad_hi; /* offsets that must fail with EIO */
    uint64_t end_offset;     /* of the log after the open */
};

static void apply_damage(const char *dir, const struct damage_case *dc)
{
    char path[512];
    uint64_t batch = (dc->record - dc->seg) * 74;
    switch (dc->kind) {
    case FLIP_VALUE:
        seg_file(path, sizeof(path), dir, dc->seg, ".log");
        flip_byte(path, batch + 74 - 3);
        break;
    case FLIP_OFFSET:
        seg_file(path, sizeof(path), dir, dc->seg, ".log");
        flip_byte(path, batch + 16 + 7);
        break;
    case FLIP_MAGIC:
        seg_file(path, sizeof(path), dir, dc->seg, ".log");
        flip_byte(path, batch);
        break;
    case FLIP_POS:
        seg_file(path, sizeof(path), dir, dc->seg, ".log");
        flip_byte(path, batch + 24 + 7);
        break;
    case ZERO_LOG:
        seg_file(path, sizeof(path), dir, dc->seg, ".log");
        fill_file(path, 0);
        break;
    case TRUNCATE_LOG:
        seg_file(path, sizeof(path), dir, dc->seg, ".log");
        assert_int_equal(truncate(path, (off_t)dc->record), 0);
        break;
    case DELETE_INDEX:
        seg_file(path, sizeof(path), dir, dc->seg, ".index");
        assert_int_equal(unlink(path), 0);
        break;
    case DMG_GARBLE_INDEX:
    case DMG_GARBLE_TIME:
        seg_file(path, sizeof(path), dir, dc->seg,
                 dc->kind == DMG_GARBLE_INDEX ? ".index" : ".timeindex");
        fill_file(path, 0x5a);
        break;
    case DELETE_RP:
    case GARBLE_RP:
        snprintf(path, sizeof(path), "%s/recovery-point", dir);
        if (dc->kind == DELETE_RP)
            assert_int_equal(unlink(path), 0);
        else
            fill_file(path, 0x5a);
        break;
    }
}

/* Every record of the damaged copy: the bad ones fail with EIO by offset
 * and by position, the others read back exactly. */
static void check_damaged(struct partition *p, const struct damage_case *dc)
{
    struct partition_info pi;
    struct partition_cursor c;
    char buf[16], want[16];
    partition_info(p, &pi);
    assert_int_equal(pi.segments, 5);
    assert_int_equal(pi.end_offset, dc->end_offset);
    assert_int_equal(pi.end_pos, dc->end_offset * 8);
    partition_cursor_init(&c);
    for (uint64_t o = 0; o < dc->end_offset; o++) {
        int bad = o >= dc->bad_lo && o < dc->bad_hi;
        struct recs d;
        uint64_t next;
        memset(&d, 0, sizeof(d));
        int r = partition_fetch(p, &c, o, 1, collect, &d, &next);
        snprintf(want, sizeof(want), "rec-%03d\n", (int)o);
        if (bad) {
            assert_int_equal(r, -EIO);
            assert_int_equal(partition_read(p, &c, o * 8, buf, 8), -EIO);
            continue;
        }
        if (r)
            print_message("offset %" PRIu64 ": %d\n", o, r);
        assert_int_equal(r, 0);
        assert_int_equal(d.n, 1);
        assert_int_equal(d.offsets[0], o);
        assert_int_equal(partition_read(p, &c, o * 8, buf, 8), 8);
        assert_memory_equal(buf, want, 8);
    }
    partition_cursor_free(&c);
    partition_info(p, &pi);
    assert_int_equal(pi.bad_batches, dc->bad_hi > dc->bad_lo);
}

static void test_damage_below_recovery_point(void **state)
{
    struct fx *f = *state;
    char orig[256], work[256];
    static const struct damage_case cases[] = {
        {FLIP_VALUE, 4, 5, 5, 6, 20},       {FLIP_OFFSET, 4, 6, 6, 7, 20},
        {FLIP_MAGIC, 0, 0, 0, 1, 20},       {FLIP_MAGIC, 8, 9, 9, 10, 20},
        {FLIP_POS, 8, 8, 8, 9, 20},         {FLIP_POS, 12, 13, 13, 14, 20},
        {ZERO_LOG, 4, 0, 4, 8, 20},         {TRUNCATE_LOG, 4, 0, 4, 8, 20},
        {TRUNCATE_LOG, 4, 100, 5, 8, 20},   {TRUNCATE_LOG, 12, 148, 14, 16, 20},
        {FLIP_VALUE, 16, 17, 17, 18, 20}, /* synced part of the active segment */
        {FLIP_OFFSET, 16, 16, 16, 17, 20},  {FLIP_OFFSET, 16, 17, 17, 18, 20},
        {FLIP_VALUE, 16, 18, 0, 0, 18},     /* unsynced: cut there */
        {TRUNCATE_LOG, 16, 74, 17, 18, 18}, /* lost synced bytes, and the tail */
        {DELETE_INDEX, 4, 0, 0, 0, 20},     {DMG_GARBLE_INDEX, 8, 0, 0, 0, 20},
        {DMG_GARBLE_TIME, 12, 0, 0, 0, 20}, {DELETE_RP, 0, 0, 0, 0, 20},
        {GARBLE_RP, 0, 0, 0, 0, 20},
    };
    snprintf(orig, sizeof(orig), "%s", sub(f, "orig"));
    snprintf(work, sizeof(work), "%s", sub(f, "work"));
    make_damage_orig(orig);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct damage_case *dc = &cases[i];
        print_message("damage case %zu\n", i);
        rmtree(work);
        copy_dir(orig, work);
        apply_damage(work, dc);
        f->p = open_part(work, 300, INT64_MAX);
        check_damaged(f->p, dc);
        partition_close(f->p);
        /* Again after a remount: the later segments are all still there. */
        f->p = open_part(work, 300, INT64_MAX);
        assert_int_equal(count_logs(work), 5);
        check_damaged(f->p, dc);
        partition_close(f->p);
        f->p = NULL;
    }
}

/* ---- 1c. descriptors ---- */

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    int n = -1; /* the DIR's own */
    assert_non_null(d);
    while ((de = readdir(d)))
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

/* A file piece keeps its descriptor until the reply is delivered. */
struct late_reads {
    int fds[16];
    uint64_t pos[16];
    size_t len[16], n, total;
    char *out;
    int failed;
};

static int keep_piece(const struct stream_piece *pc, void *arg)
{
    struct late_reads *l = arg;
    assert_true(l->n < 16);
    l->fds[l->n] = pc->fd;
    l->pos[l->n] = pc->file_pos;
    l->len[l->n] = pc->len;
    if (pc->fd < 0)
        memcpy(l->out + l->total, pc->mem, pc->len);
    l->total += pc->len;
    l->n++;
    return 0;
}

static void read_late(void *arg)
{
    struct late_reads *l = arg;
    size_t at = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (l->fds[i] >= 0 &&
            pread(l->fds[i], l->out + at, l->len[i], (off_t)l->pos[i]) != (ssize_t)l->len[i])
            l->failed++;
        at += l->len[i];
    }
}

/* Closed segments share one LRU of .log descriptors (segment_fd_cap); the
 * active one and pinned ones stay open; everything is served. */
static void test_fd_lru_bounded(void **state)
{
    struct fx *f = *state;
    size_t cap_before = segment_fd_cap;
    segment_fd_cap = 4;
    int base = count_fds();
    char dir[256];
    snprintf(dir, sizeof(dir), "%s", sub(f, "fds"));
    f->p = open_part(dir, 1024, INT64_MAX);
    static char expect[3000 * 10];
    for (int i = 0; i < 3000; i++) {
        char v[16];
        snprintf(v, sizeof(v), "val-%05d\n", i);
        memcpy(expect + 10 * i, v, 10);
        append1(f->p, v, 1000 + i);
    }
    struct partition_info pi;
    partition_info(f->p, &pi);
    assert_true(pi.segments > 200);
    assert_true(count_fds() <= base + 4 + 3);
    assert_int_equal(partition_sync(f->p), 0);
    assert_true(count_fds() <= base + 4 + 3);
    partition_close(f->p);
    f->p = open_part(dir, 1024, INT64_MAX);
    assert_true(count_fds() <= base + 4 + 3);
    assert_stream(f->p, expect, sizeof(expect));
    struct recs d;
    fetch_all(f->p, 0, &d);
    assert_dense(&d, 0, 3000);
    assert_true(segment_fds_open() <= 4);
    assert_true(count_fds() <= base + 4 + 3);
    partition_close(f->p);

    /* Big values, one segment each: a reply of file pieces from several
     * segments, with room for one descriptor, reads them all at delivery. */
    segment_fd_cap = 1;
    f->p = open_part(sub(f, "pinned"), 100000, INT64_MAX);
    static char big[5][70001];
    for (int i = 0; i < 5; i++) {
        memset(big[i], 'a' + i, 70000);
        append1(f->p, big[i], 1 + i);
    }
    partition_close(f->p);
    f->p = open_part(f->path, 100000, INT64_MAX);
    partition_info(f->p, &pi);
    assert_int_equal(pi.segments, 5);
    struct partition_view v;
    partition_current_view(f->p, &v);
    char *out = malloc(5 * 70000);
    assert_non_null(out);
    struct late_reads l = {.out = out};
    struct stream_sink sink = {.piece = keep_piece, .deliver = read_late, .arg = &l};
    assert_int_equal(partition_view_send(f->p, &f->c[0], &v, 0, 5 * 70000, &sink), 5 * 70000);
    assert_int_equal(l.failed, 0);
    size_t file_pieces = 0;
    for (size_t i = 0; i < l.n; i++)
        file_pieces += l.fds[i] >= 0;
    assert_true(file_pieces >= 4);
    for (int i = 0; i < 5; i++)
        assert_memory_equal(out + 70000 * i, big[i], 70000);
    free(out);
    assert_true(segment_fds_open() <= 1);
    segment_fd_cap = cap_before;
}

/* ---- 1b. indexes ---- */

#define IX_RECS 300

static void ix_value(char *buf, size_t cap, int i)
{
    snprintf(buf, cap, "record-%04d payload\n", i); /* 20 bytes */
}

/* Lookups against the IX_RECS single-record batches, 20 bytes each, with
 * timestamps 5000 + 10 * offset. */
static void check_ix_lookups(struct partition *p)
{
    static const uint64_t offs[] = {0, 1, 2, 57, 100, 120, 150, 151, 298, 299};
    uint64_t pos, off;
    for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
        assert_int_equal(partition_offset_pos(p, offs[i], &pos), 0);
        assert_int_equal(pos, offs[i] * 20);
        assert_int_equal(partition_time_offset(p, 5000 + 10 * (int64_t)offs[i], &off), 0);
        assert_int_equal(off, offs[i]);
        assert_int_equal(partition_time_offset(p, 5000 + 10 * (int64_t)offs[i] - 9, &off), 0);
        assert_int_equal(off, offs[i]);
    }
    assert_int_equal(partition_offset_pos(p, IX_RECS, &pos), 0);
    assert_int_equal(pos, IX_RECS * 20);
    assert_int_equal(partition_time_offset(p, 0, &off), 0);
    assert_int_equal(off, 0);
    assert_int_equal(partition_time_offset(p, 5000 + 10 * IX_RECS, &off), 0);
    assert_int_equal(off, IX_RECS);

    char expect[32], buf[64];
    struct partition_cursor c;
    partition_cursor_init(&c);
    for (int i = IX_RECS - 1; i >= 0; i -= 37) {
        ix_value(expect, sizeof(expect), i);
        assert_int_equal(partition_read(p, &c, (uint64_t)i * 20, buf, 20), 20);
        assert_memory_equal(buf, expect, 20);
    }
    partition_cursor_free(&c);
    struct recs d;
    fetch_all(p, 0, &d);
    assert_dense(&d, 0, IX_RECS);
}

enum ix_damage {
    DELETE_OFFSET,
    DELETE_BOTH,
    GARBLE_OFFSET,
    GARBLE_TIME,
    TORN_OFFSET,
    TORN_TIME,
    NDAMAGE
};

/* IX_RECS records, synced, in one segment of dir (segment.ms as given). */
static struct partition *make_ix(const char *dir, int64_t segment_ms)
{
    struct partition *p = open_part(dir, 1 << 20, segment_ms);
    for (int i = 0; i < IX_RECS; i++) {
        char v[32];
        ix_value(v, sizeof(v), i);
        append1(p, v, 5000 + 10 * i);
    }
    assert_int_equal(partition_sync(p), 0);
    return p;
}

static void test_index_rebuild(void **state)
{
    struct fx *f = *state;
    char orig[256], work[256], ix[512], tix[512];
    snprintf(orig, sizeof(orig), "%s", sub(f, "orig"));
    snprintf(work, sizeof(work), "%s", sub(f, "work"));

    struct partition *p = make_ix(orig, INT64_MAX);
    /* Sparse: one entry per INDEX_INTERVAL_BYTES of log, so several here. */
    assert_true(p->segs[0]->oix.n >= 4);
    assert_int_equal(p->segs[0]->tix.n, p->segs[0]->oix.n);
    check_ix_lookups(p);
    partition_close(p);

    size_t ix_len, tix_len;
    seg_file(ix, sizeof(ix), orig, 0, ".index");
    seg_file(tix, sizeof(tix), orig, 0, ".timeindex");
    uint8_t *ix_orig = slurp(ix, &ix_len), *tix_orig = slurp(tix, &tix_len);
    assert_true(ix_len >= 4 * sizeof(struct offset_index_entry));

    seg_file(ix, sizeof(ix), work, 0, ".index");
    seg_file(tix, sizeof(tix), work, 0, ".timeindex");
    for (int dmg = 0; dmg < NDAMAGE; dmg++) {
        rmtree(work);
        copy_dir(orig, work);
        switch (dmg) {
        case DELETE_OFFSET:
            assert_int_equal(unlink(ix), 0);
            break;
        case DELETE_BOTH:
            assert_int_equal(unlink(ix), 0);
            assert_int_equal(unlink(tix), 0);
            break;
        case GARBLE_OFFSET:
            fill_file(ix, 0x5a);
            break;
        case GARBLE_TIME:
            fill_file(tix, 0x5a);
            break;
        case TORN_OFFSET:
            assert_int_equal(truncate(ix, (off_t)ix_len - 5), 0);
            break;
        case TORN_TIME:
            assert_int_equal(truncate(tix, (off_t)tix_len - 5), 0);
            break;
        }
        p = open_part(work, 1 << 20, INT64_MAX);
        check_ix_lookups(p);
        /* The first batch's time is the segment's creation time. */
        assert_int_equal(p->segs[0]->created_ms, 5000);
        assert_int_equal(p->segs[0]->max_timestamp, 5000 + 10 * (IX_RECS - 1));
        partition_close(p);
        /* Rebuilt by the rule appends use: the same files as before. */
        size_t n1, n2;
        uint8_t *a = slurp(ix, &n1), *b = slurp(tix, &n2);
        assert_int_equal(n1, ix_len);
        assert_memory_equal(a, ix_orig, ix_len);
        assert_int_equal(n2, tix_len);
        assert_memory_equal(b, tix_orig, tix_len);
        free(a);
        free(b);
    }
    free(ix_orig);
    free(tix_orig);
}

/* Only the .timeindex is lost: it must come back whole, and the segment
 * keeps its age (the time of its first batch), which segment.ms and
 * compaction go by. */
static void test_lost_time_index_rebuilt_whole(void **state)
{
    struct fx *f = *state;
    char dir[256], tix[512];
    snprintf(dir, sizeof(dir), "%s", sub(f, "p"));
    struct partition *p = make_ix(dir, 10000);
    size_t want = p->segs[0]->tix.n;
    assert_true(want >= 4);
    partition_close(p);
    seg_file(tix, sizeof(tix), dir, 0, ".timeindex");
    assert_int_equal(unlink(tix), 0);

    p = f->p = open_part(dir, 1 << 20, 10000);
    check_ix_lookups(p);
    assert_int_equal(p->segs[0]->max_timestamp, 5000 + 10 * (IX_RECS - 1));
    assert_int_equal(p->segs[0]->tix.n, want);
    assert_int_equal(file_size(tix), (int64_t)(want * sizeof(struct time_index_entry)));
    assert_int_equal(p->segs[0]->created_ms, 5000);
    /* segment.ms (10 s) after the first batch the next append rolls. */
    assert_int_equal(append1(p, "late\n", 15000), IX_RECS);
    struct partition_info pi;
    partition_info(p, &pi);
    assert_int_equal(pi.segments, 2);
}

/* An .index garbled so that it still looks ordered: one middle entry points
 * a byte past its batch. index.h lists "every file_pos is the start of a
 * batch" among the invariants broken indexes are rebuilt for. */
static void test_index_garbled_but_ordered(void **state)
{
    struct fx *f = *state;
    char dir[256], ix[512];
    struct offset_index_entry e;
    snprintf(dir, sizeof(dir), "%s", sub(f, "p"));
    struct partition *p = make_ix(dir, INT64_MAX);
    assert_true(p->segs[0]->oix.n >= 4);
    e = p->segs[0]->oix.e[2];
    assert_true(e.rel_offset <= 100 && 120 < p->segs[0]->oix.e[3].rel_offset);
    partition_close(p);

    seg_file(ix, sizeof(ix), dir, 0, ".index");
    e.file_pos += 1;
    int fd = open(ix, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, &e, sizeof(e), 2 * sizeof(e)), (ssize_t)sizeof(e));
    close(fd);

    p = f->p = open_part(dir, 1 << 20, INT64_MAX);
    check_ix_lookups(p);
}

/* ---- 2. roll ---- */

static void test_roll_by_bytes(void **state)
{
    struct fx *f = *state;
    char dir[256], expect[512];
    size_t len = 0;
    struct partition_info pi;
    snprintf(dir, sizeof(dir), "%s", sub(f, "p"));

    /* "msg-NN\n" is 7 bytes, a one-record batch 64 + 2 + 7 = 73: four fit
     * in 300 bytes, the fifth rolls. */
    struct partition *p = open_part(dir, 300, INT64_MAX);
    for (int i = 0; i < 40; i++) {
        char v[24];
        snprintf(v, sizeof(v), "msg-%02d\n", i);
        assert_int_equal(append1(p, v, 1000 + i), (uint64_t)i);
        memcpy(expect + len, v, 7);
        len += 7;
    }
    for (int round = 0; round < 2; round++) {
        partition_info(p, &pi);
        assert_int_equal(pi.segments, 10);
        assert_int_equal(count_logs(dir), 10);
        assert_int_equal(pi.start_offset, 0);
        assert_int_equal(pi.end_offset, 40);
        assert_int_equal(pi.start_pos, 0);
        assert_int_equal(pi.end_pos, len);
        assert_int_equal(pi.view_bytes, len);
        assert_int_equal(pi.stored_bytes, 40 * 73);
        assert_int_equal(pi.last_append_ms, 1039);
        for (size_t i = 0; i < 10; i++) {
            char log[512];
            struct segment *s = p->segs[i];
            assert_int_equal(s->base_offset, 4 * i);
            assert_int_equal(s->next_offset, 4 * i + 4);
            assert_int_equal(s->base_pos, 28 * i);
            assert_int_equal(s->end_pos, 28 * i + 28);
            seg_file(log, sizeof(log), dir, 4 * i, ".log");
            assert_int_equal(file_size(log), 4 * 73);
        }
        /* One read of everything, and short windows over each boundary with
         * one sequential cursor and with fresh ones. */
        assert_stream(p, expect, len);
        struct partition_cursor seq;
        partition_cursor_init(&seq);
        for (uint64_t pos = 0; pos < len; pos++) {
            char buf[16];
            size_t want = len - pos < 11 ? len - pos : 11;
            assert_int_equal(partition_read(p, &seq, pos, buf, 11), (ssize_t)want);
            assert_memory_equal(buf, expect + pos, want);
        }
        partition_cursor_free(&seq);
        for (uint64_t b = 28; b < len; b += 28) {
            char buf[16];
            struct partition_cursor c;
            partition_cursor_init(&c);
            assert_int_equal(partition_read(p, &c, b - 3, buf, 6), 6);
            assert_memory_equal(buf, expect + b - 3, 6);
            partition_cursor_free(&c);
        }
        struct recs d;
        fetch_all(p, 0, &d);
        assert_dense(&d, 0, 40);
        assert_memory_equal(d.text, expect, len);
        fetch_all(p, 13, &d);
        assert_dense(&d, 13, 27);
        if (round == 0) {
            assert_int_equal(partition_sync(p), 0);
            partition_close(p);
            p = open_part(dir, 300, INT64_MAX);
        }
    }
    /* The last segment is full: the next append starts the eleventh. */
    assert_int_equal(append1(p, "msg-40\n", 2000), 40);
    partition_info(p, &pi);
    assert_int_equal(pi.segments, 11);
    assert_int_equal(p->segs[10]->base_offset, 40);
    assert_int_equal(p->segs[10]->base_pos, len);
    memcpy(expect + len, "msg-40\n", 7);
    assert_stream(p, expect, len + 7);
    partition_close(p);
}

static void test_roll_by_time(void **state)
{
    struct fx *f = *state;
    char dir[256];
    struct partition_info pi;
    snprintf(dir, sizeof(dir), "%s", sub(f, "p"));

    /* segment.ms = 1000, measured from the first batch of a segment. */
    struct partition *p = open_part(dir, 1 << 20, 1000);
    static const int64_t ts[] = {10000, 10500, 10999, 11000, 11999, 12000};
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(append1(p, "t\n", ts[i]), i);
    partition_info(p, &pi);
    assert_int_equal(pi.segments, 3);
    assert_int_equal(p->segs[0]->base_offset, 0);
    assert_int_equal(p->segs[1]->base_offset, 3);
    assert_int_equal(p->segs[2]->base_offset, 5);
    assert_int_equal(p->segs[2]->created_ms, 12000);
    assert_int_equal(partition_sync(p), 0);
    partition_close(p);

    /* After reopen the active segment is still dated by its first batch. */
    p = open_part(dir, 1 << 20, 1000);
    assert_int_equal(p->segs[2]->created_ms, 12000);
    assert_int_equal(append1(p, "t\n", 12999), 6);
    partition_info(p, &pi);
    assert_int_equal(pi.segments, 3);
    assert_int_equal(append1(p, "t\n", 13000), 7);
    partition_info(p, &pi);
    assert_int_equal(pi.segments, 4);
    assert_int_equal(p->segs[3]->base_offset, 7);
    assert_int_equal(count_logs(dir), 4);
    assert_stream(p, "t\nt\nt\nt\nt\nt\nt\nt\n", 16);
    struct recs d;
    fetch_all(p, 0, &d);
    assert_dense(&d, 0, 8);
    assert_int_equal(d.ts[3], 11000);
    assert_int_equal(d.ts[7], 13000);
    partition_close(p);
}

/* ---- 3. follower path and truncation ---- */

static void test_follower_append_batch(void **state)
{
    struct fx *f = *state;
    char dir[256], log[512];
    static const char *const A[] = {"a1\n", "a2\n"}, *const B[] = {"b1\n"},
                             *const C[] = {"c1\n", "c2\n", "c3\n"}, *const D[] = {"d1\n"};
    uint8_t wire[1024], one[256];
    size_t n = 0;
    struct partition_info pi;
    snprintf(dir, sizeof(dir), "%s", sub(f, "p"));
    seg_file(log, sizeof(log), dir, 0, ".log");

    struct partition *p = open_part(dir, 1 << 20, INT64_MAX);
    size_t la = seal_flat(A, 2, 0, 0, 100, 7, wire, sizeof(wire));
    size_t lb = seal_flat(B, 1, 2, 6, 200, 7, wire + la, sizeof(wire) - la);
    size_t lc = seal_flat(C, 3, 3, 9, 300, 8, wire + la + lb, sizeof(wire) - la - lb);
    assert_int_equal(partition_append_batch(p, wire, la), 0);
    assert_int_equal(partition_append_batch(p, wire + la, lb), 0);
    assert_int_equal(partition_append_batch(p, wire + la + lb, lc), 0);
    n = la + lb + lc;

    /* Verbatim: the log is the leader's bytes, leader epochs included. */
    size_t got_len;
    uint8_t *got = slurp(log, &got_len);
    assert_int_equal(got_len, n);
    assert_memory_equal(got, wire, n);
    free(got);
    partition_info(p, &pi);
    assert_int_equal(pi.end_offset, 6);
    assert_int_equal(pi.end_pos, 18);
    assert_stream(p, "a1\na2\nb1\nc1\nc2\nc3\n", 18);
    struct recs d;
    fetch_all(p, 0, &d);
    assert_dense(&d, 0, 6);
    assert_int_equal(d.ts[2], 200);

    /* Refused: a gap, a resend, an overlap, a wrong position, a bad
     * checksum, a short buffer. Nothing of them reaches the log. */
    size_t l = seal_flat(D, 1, 7, 18, 400, 8, one, sizeof(one));
    assert_int_equal(partition_append_batch(p, one, l), -EINVAL);
    assert_int_equal(partition_append_batch(p, wire + la + lb, lc), -EINVAL);
    l = seal_flat(D, 1, 5, 18, 400, 8, one, sizeof(one));
    assert_int_equal(partition_append_batch(p, one, l), -EINVAL);
    l = seal_flat(D, 1, 6, 17, 400, 8, one, sizeof(one));
    assert_int_equal(partition_append_batch(p, one, l), -EINVAL);
    l = seal_flat(D, 1, 6, 19, 400, 8, one, sizeof(one));
    assert_int_equal(partition_append_batch(p, one, l), -EINVAL);
    l = seal_flat(D, 1, 6, 18, 400, 8, one, sizeof(one));
    one[l - 1] ^= 1;
    assert_int_equal(partition_append_batch(p, one, l), -EBADMSG);
    one[l - 1] ^= 1;
    assert_int_equal(partition_append_batch(p, one, l - 1), -EBADMSG);
    assert_int_equal(partition_append_batch(p, one, BATCH_HEADER_SIZE - 1), -EBADMSG);
    assert_int_equal(partition_append_batch(p, one, l + 1), -EBADMSG);
    partition_info(p, &pi);
    assert_int_equal(pi.end_offset, 6);
    assert_int_equal(file_size(log), (int64_t)n);

    /* The right next batch goes in; a leader-side append follows it. */
    assert_int_equal(partition_append_batch(p, one, l), 0);
    assert_int_equal(append1(p, "e1\n", 500), 7);
    assert_stream(p, "a1\na2\nb1\nc1\nc2\nc3\nd1\ne1\n", 24);

    /* A small segment.bytes makes the follower roll too. */
    struct partition_settings st = settings(1, INT64_MAX);
    partition_set_settings(p, &st);
    l = seal_flat(D, 1, 8, 24, 600, 9, one, sizeof(one));
    assert_int_equal(partition_append_batch(p, one, l), 0);
    partition_info(p, &pi);
    assert_int_equal(pi.segments, 2);
    assert_int_equal(p->segs[1]->base_offset, 8);
    assert_int_equal(p->segs[1]->base_pos, 24);
    assert_int_equal(partition_sync(p), 0);
    partition_close(p);

    p = open_part(dir, 1 << 20, INT64_MAX);
    partition_info(p, &pi);
    assert_int_equal(pi.end_offset, 9);
    assert_int_equal(pi.segments, 2);
    assert_stream(p, "a1\na2\nb1\nc1\nc2\nc3\nd1\ne1\nd1\n", 27);
    partition_close(p);
}

/* 20 one-record batches "rec-NN\n" (7 bytes, 73 a batch) in segments of
 * four: bases 0, 4, 8, 12, 16. */
static struct partition *make_twenty(const char *dir, char *expect)
{
    struct partition *p = open_part(dir, 300, INT64_MAX);
    for (int i = 0; i < 20; i++) {
        char v[24];
        snprintf(v, sizeof(v), "rec-%02d\n", i);
        append1(p, v, 1000 + 10 * i);
        memcpy(expect + 7 * i, v, 7);
    }
    struct partition_info pi;
    partition_info(p, &pi);
    assert_int_equal(pi.segments, 5);
    assert_int_equal(pi.end_offset, 20);
    return p;
}

/* After truncation to `to` (records 0..to-1 left in `segs` segments), in
 * memory and after a reopen; then appends continue at `to`. */
static void check_truncated(struct partition **pp, const char *dir, char *expect, uint64_t to,
                            uint32_t segs)
{
    struct partition_info pi;
    struct recs d;
    for (int round = 0; round < 2; round++) {
        struct partition *p = *pp;
        partition_info(p, &pi);
        assert_int_equal(pi.end_offset, to);
        assert_int_equal(pi.end_pos, 7 * to);
        assert_int_equal(pi.view_bytes, 7 * to);
        assert_int_equal(pi.stored_bytes, 73 * to);
        assert_int_equal(pi.segments, segs);
        assert_int_equal(count_logs(dir), (int)segs);
        assert_stream(p, expect, 7 * to);
        fetch_all(p, 0, &d);
        assert_dense(&d, 0, to);
        uint64_t pos, off;
        assert_int_equal(partition_offset_pos(p, to + 5, &pos), 0);
        assert_int_equal(pos, 7 * to);
        assert_int_equal(partition_time_offset(p, 1000 + 10 * (int64_t)to, &off), 0);
        assert_int_equal(off, to);
        if (round == 0) {
            partition_close(p); /* no sync: truncate made its own recovery point */
            *pp = open_part(dir, 300, INT64_MAX);
        }
    }
    assert_int_equal(append1(*pp, "new-rec\n", 5000), to);
    memcpy(expect + 7 * to, "new-rec\n", 8);
    assert_stream(*pp, expect, 7 * to + 8);
    fetch_all(*pp, to, &d);
    assert_dense(&d, to, 1);
    assert_int_equal(d.ts[0], 5000);
}

static void test_truncate_mid_segment(void **state)
{
    struct fx *f = *state;
    char dir[256], expect[512];
    snprintf(dir, sizeof(dir), "%s", sub(f, "p"));
    struct partition *p = make_twenty(dir, expect);
    assert_int_equal(partition_truncate(p, 18), 0);
    check_truncated(&p, dir, expect, 18, 5);

    /* A follower re-fetches from the cut: the leader's batch fits at once. */
    uint8_t one[256];
    static const char *const X[] = {"leader\n"};
    assert_int_equal(partition_truncate(p, 18), 0);
    size_t l = seal_flat(X, 1, 18, 126, 6000, 3, one, sizeof(one));
    assert_int_equal(partition_append_batch(p, one, l), 0);
    memcpy(expect + 126, "leader\n", 7);
    assert_stream(p, expect, 133);
    partition_close(p);
}

static void test_truncate_at_segment_boundary(void **state)
{
    struct fx *f = *state;
    char dir[256], expect[512], log[512];
    snprintf(dir, sizeof(dir), "%s", sub(f, "p"));
    struct partition *p = make_twenty(dir, expect);
    assert_int_equal(partition_truncate(p, 12), 0);
    seg_file(log, sizeof(log), dir, 12, ".log");
    assert_int_equal(access(log, F_OK), -1);
    seg_file(log, sizeof(log), dir, 16, ".index");
    assert_int_equal(access(log, F_OK), -1);
    check_truncated(&p, dir, expect, 12, 3);
    /* The segment at 8 is full, so the append at 12 started a new one. */
    struct partition_info pi;
    partition_info(p, &pi);
    assert_int_equal(pi.segments, 4);
    assert_int_equal(p->segs[3]->base_offset, 12);
    assert_int_equal(p->segs[3]->base_pos, 84);
    partition_close(p);
}

static void test_truncate_across_segments(void **state)
{
    struct fx *f = *state;
    char dir[256], expect[512];
    snprintf(dir, sizeof(dir), "%s", sub(f, "p"));
    struct partition *p = make_twenty(dir, expect);
    assert_int_equal(partition_truncate(p, 5), 0);
    check_truncated(&p, dir, expect, 5, 2);
    assert_int_equal(p->segs[1]->base_offset, 4);
    assert_int_equal(p->segs[1]->next_offset, 6);
    partition_close(p);
}

static void test_truncate_to_zero(void **state)
{
    struct fx *f = *state;
    char dir[256], expect[512];
    snprintf(dir, sizeof(dir), "%s", sub(f, "p"));
    struct partition *p = make_twenty(dir, expect);
    assert_int_equal(partition_truncate(p, 0), 0);
    check_truncated(&p, dir, expect, 0, 1);
    partition_close(p);
}

static void test_truncate_past_end_is_noop(void **state)
{
    struct fx *f = *state;
    char dir[256], expect[512];
    snprintf(dir, sizeof(dir), "%s", sub(f, "p"));
    struct partition *p = make_twenty(dir, expect);
    assert_int_equal(partition_truncate(p, 20), 0);
    assert_int_equal(partition_truncate(p, 21), 0);
    assert_int_equal(partition_truncate(p, UINT64_MAX), 0);
    check_truncated(&p, dir, expect, 20, 5);
    partition_close(p);
}

/* Records are never split: cutting inside a batch removes that whole batch,
 * so nothing at or past the offset survives. */
static void test_truncate_inside_batch(void **state)
{
    struct fx *f = *state;
    char dir[256];
    static const char *const V[] = {"v0\n", "v1\n", "v2\n", "v3\n", "v4\n", "v5\n"};
    struct partition_info pi;
    snprintf(dir, sizeof(dir), "%s", sub(f, "p"));
    struct partition *p = open_part(dir, 1 << 20, INT64_MAX);
    assert_int_equal(append_vals(p, V, 2, 100), 0);
    assert_int_equal(append_vals(p, V + 2, 3, 200), 2);
    assert_int_equal(append_vals(p, V + 5, 1, 300), 5);
    assert_int_equal(partition_truncate(p, 3), 0);
    partition_info(p, &pi);
    assert_int_equal(pi.end_offset, 2);
    assert_int_equal(pi.end_pos, 6);
    assert_stream(p, "v0\nv1\n", 6);
    assert_int_equal(append1(p, "w2\n", 400), 2);
    assert_stream(p, "v0\nv1\nw2\n", 9);
    partition_close(p);
}

/* A reader's cursor caches file bytes; after a truncation the same
 * positions hold different records and the reader must see those. */
static void test_truncate_then_reread_same_cursor(void **state)
{
    struct fx *f = *state;
    char dir[256], expect[512], buf[512];
    snprintf(dir, sizeof(dir), "%s", sub(f, "p"));
    struct partition *p = f->p = make_twenty(dir, expect);
    struct partition_cursor *c1 = &f->c[0], *c2 = &f->c[1];
    struct recs d;
    uint64_t next;
    assert_int_equal(partition_read(p, c1, 0, buf, sizeof(buf)), 140);
    assert_memory_equal(buf, expect, 140);
    memset(&d, 0, sizeof(d));
    assert_int_equal(partition_fetch(p, c2, 0, 100, collect, &d, &next), 0);
    assert_int_equal(d.n, 20);

    /* A new leader replaces records 18 and 19 with others of the same size. */
    assert_int_equal(partition_truncate(p, 18), 0);
    assert_int_equal(append1(p, "NEW-18\n", 6000), 18);
    assert_int_equal(append1(p, "NEW-19\n", 6001), 19);
    memcpy(expect + 126, "NEW-18\nNEW-19\n", 14);
    assert_stream(p, expect, 140); /* a fresh cursor sees them */

    assert_int_equal(partition_read(p, c1, 126, buf, 14), 14);
    assert_memory_equal(buf, "NEW-18\nNEW-19\n", 14);
    memset(&d, 0, sizeof(d));
    assert_int_equal(partition_fetch(p, c2, 18, 10, collect, &d, &next), 0);
    assert_int_equal(d.n, 2);
    assert_int_equal(d.ts[0], 6000);
    assert_memory_equal(d.text, "NEW-18\nNEW-19\n", 14);
}

/* ---- 4. lookups ---- */

struct model {
    uint64_t pos[2048];   /* stream position of each offset, pos[n] = end */
    int64_t bts[1024];    /* timestamp of each batch */
    uint64_t bbase[1024]; /* first offset of each batch */
    size_t n, nb;
};

/* Batches of 1-3 records of varying length (some empty); timestamps rise in
 * steps of 100 and repeat for pairs of batches. */
static void fill_model(struct partition *p, struct model *m, size_t batches)
{
    memset(m, 0, sizeof(*m));
    for (size_t k = 0; k < batches; k++) {
        const char *vals[3];
        char bufs[3][32];
        size_t cnt = k % 3 + 1;
        for (size_t j = 0; j < cnt; j++) {
            size_t o = m->n + j, len = (o % 11 == 5 && j > 0) ? 0 : o % 13 + 2;
            memset(bufs[j], 'a' + (int)(o % 26), len);
            if (len)
                bufs[j][len - 1] = '\n';
            bufs[j][len] = 0;
            vals[j] = bufs[j];
        }
        int64_t ts = 1000 + 100 * (int64_t)(k / 2);
        m->bts[k] = ts;
        m->bbase[k] = m->n;
        assert_int_equal(append_vals(p, vals, cnt, ts), m->n);
        for (size_t j = 0; j < cnt; j++) {
            m->pos[m->n + 1] = m->pos[m->n] + strlen(vals[j]);
            m->n++;
        }
    }
    m->nb = batches;
}

static void check_lookups(struct partition *p, const struct model *m)
{
    uint64_t pos, off;
    for (uint64_t o = 0; o < m->n + 3; o++) {
        assert_int_equal(partition_offset_pos(p, o, &pos), 0);
        assert_int_equal(pos, m->pos[o < m->n ? o : m->n]);
    }
    assert_int_equal(partition_offset_pos(p, UINT64_MAX, &pos), 0);
    assert_int_equal(pos, m->pos[m->n]);
    assert_int_equal(partition_time_offset(p, INT64_MIN, &off), 0);
    assert_int_equal(off, 0);
    for (size_t k = 0; k < m->nb; k++) {
        /* The first batch with ts >= T; pairs share a timestamp. */
        size_t first = k > 0 && m->bts[k - 1] == m->bts[k] ? k - 1 : k;
        assert_int_equal(partition_time_offset(p, m->bts[k], &off), 0);
        assert_int_equal(off, m->bbase[first]);
        assert_int_equal(partition_time_offset(p, m->bts[k] - 1, &off), 0);
        assert_int_equal(off, m->bbase[first]);
    }
    assert_int_equal(partition_time_offset(p, m->bts[m->nb - 1] + 1, &off), 0);
    assert_int_equal(off, m->n);
    assert_int_equal(partition_time_offset(p, INT64_MAX, &off), 0);
    assert_int_equal(off, m->n);
    /* The bytes at each record's position start that record. */
    struct recs d;
    fetch_all(p, 0, &d);
    assert_dense(&d, 0, m->n);
    assert_int_equal(d.len, m->pos[m->n]);
    char *buf = malloc(m->pos[m->n] + 1);
    assert_non_null(buf);
    struct partition_cursor c;
    partition_cursor_init(&c);
    for (uint64_t o = m->n; o-- > 0;) {
        uint64_t len = m->pos[o + 1] - m->pos[o];
        assert_int_equal(partition_offset_pos(p, o, &pos), 0);
        assert_int_equal(partition_read(p, &c, pos, buf, len), (ssize_t)len);
        assert_memory_equal(buf, d.text + m->pos[o], len);
    }
    partition_cursor_free(&c);
    free(buf);
}

static void lookups_with(struct fx *f, uint64_t segment_bytes, size_t batches)
{
    char dir[256];
    struct model *m = calloc(1, sizeof(*m));
    assert_non_null(m);
    snprintf(dir, sizeof(dir), "%s", sub(f, "p"));
    struct partition *p = open_part(dir, segment_bytes, INT64_MAX);
    uint64_t pos, off;
    /* Empty partition: everything maps to 0. */
    assert_int_equal(partition_offset_pos(p, 0, &pos), 0);
    assert_int_equal(pos, 0);
    assert_int_equal(partition_offset_pos(p, 7, &pos), 0);
    assert_int_equal(pos, 0);
    assert_int_equal(partition_time_offset(p, 0, &off), 0);
    assert_int_equal(off, 0);

    fill_model(p, m, batches);
    check_lookups(p, m);
    assert_int_equal(partition_sync(p), 0);
    partition_close(p);
    p = open_part(dir, segment_bytes, INT64_MAX);
    check_lookups(p, m);
    partition_close(p);
    free(m);
}

static void test_lookups_one_segment_many_index_entries(void **state)
{
    struct fx *f = *state;
    lookups_with(f, 1 << 20, 400);
}

static void test_lookups_across_segments(void **state)
{
    struct fx *f = *state;
    lookups_with(f, 512, 200);
}

/* ---- 5. store ---- */

static int has_name(struct topic *t, void *arg)
{
    return !strcmp(t->name, arg);
}

static void test_store_topics(void **state)
{
    struct fx *f = *state;
    char data[256], path[1024], long_ok[251], long_bad[252];
    struct store *s = NULL, *s2 = NULL;
    struct topic *t = NULL;
    snprintf(data, sizeof(data), "%s", sub(f, "data"));
    memset(long_ok, 'n', 249);
    long_ok[249] = 0;
    memset(long_bad, 'n', 250);
    long_bad[250] = 0;

    assert_int_equal(store_open(data, 1, &s), 0);
    assert_int_equal(store_count(s), 0);
    /* One daemon per data dir. */
    assert_int_equal(store_open(data, 1, &s2), -EBUSY);

    static const char *const bad[] = {"", ".", "..", "a/b", "bad name", "x\n", "caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(store_create_topic(s, bad[i], NULL), -EINVAL);
    assert_int_equal(store_create_topic(s, long_bad, NULL), -EINVAL);

    assert_int_equal(store_create_topic(s, "orders", &t), 0);
    assert_non_null(t);
    assert_string_equal(t->name, "orders");
    assert_int_equal(topic_partition_count(t), 1);
    topic_put(t);
    static const char *const good[] = {"a", "A-b_c.d", "..x", "0"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_int_equal(store_create_topic(s, good[i], NULL), 0);
    assert_int_equal(store_create_topic(s, long_ok, NULL), 0);
    assert_int_equal(store_create_topic(s, "orders", NULL), -EEXIST);
    assert_int_equal(store_create_topic(s, "doomed", NULL), 0);
    assert_int_equal(store_count(s), 7);
    snprintf(path, sizeof(path), "%s/topics/%s/config", data, long_ok);
    assert_int_equal(access(path, F_OK), 0);

    /* Records into orders/0. */
    t = store_find(s, "orders");
    assert_non_null(t);
    assert_null(store_find(s, "order"));
    assert_null(store_find(s, "nope"));
    struct partition *p = topic_partition(t, 0);
    assert_non_null(p);
    assert_null(topic_partition(t, 1));
    assert_int_equal(append1(p, "o1\n", 1), 0);
    assert_int_equal(append1(p, "o2\n", 2), 1);

    /* Partitions only grow, and the new ones are usable at once. */
    assert_int_equal(topic_config_apply(t, "partitions=5", 12), 0);
    assert_int_equal(topic_partition_count(t), 5);
    assert_non_null(topic_partition(t, 4));
    assert_int_equal(append1(topic_partition(t, 4), "p4\n", 3), 0);
    assert_int_equal(topic_config_apply(t, "partitions=3", 12), -EINVAL);
    assert_int_equal(topic_config_apply(t, "partitions=0", 12), -EINVAL);
    assert_int_equal(topic_partition_count(t), 5);
    struct topic_config cfg;
    topic_config_snapshot(t, &cfg);
    assert_int_equal(cfg.partitions, 5);
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof(path), "%s/topics/orders/%d", data, i);
        assert_int_equal(access(path, F_OK), 0);
    }
    topic_put(t);

    /* Delete: gone from the store and from disk; a second time -ENOENT. */
    t = store_find(s, "doomed");
    assert_non_null(t);
    assert_int_equal(store_delete_topic(s, "doomed"), 0);
    assert_true(atomic_load(&t->deleted));
    assert_int_equal(topic_config_apply(t, "partitions=2", 12), -ENOENT);
    topic_put(t); /* the last reference */
    assert_null(store_find(s, "doomed"));
    assert_int_equal(store_delete_topic(s, "doomed"), -ENOENT);
    snprintf(path, sizeof(path), "%s/topics/doomed", data);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(store_count(s), 6);
    assert_int_equal(store_foreach(s, has_name, (void *)"A-b_c.d"), 1);
    assert_int_equal(store_foreach(s, has_name, (void *)"doomed"), 0);
    /* The same name can come back, empty. */
    assert_int_equal(store_create_topic(s, "doomed", &t), 0);
    struct partition_info pi;
    partition_info(topic_partition(t, 0), &pi);
    assert_int_equal(pi.end_offset, 0);
    topic_put(t);
    assert_int_equal(store_delete_topic(s, "doomed"), 0);

    /* A leftover in tmp/ (a create cut short) is cleared at the next open. */
    snprintf(path, sizeof(path), "%s/tmp/half.99", data);
    assert_int_equal(mkdir(path, 0755), 0);
    store_close(s);
    s = NULL;

    assert_int_equal(store_open(data, 1, &s), 0);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(store_count(s), 6);
    assert_null(store_find(s, "doomed"));
    t = store_find(s, long_ok);
    assert_non_null(t);
    topic_put(t);
    t = store_find(s, "orders");
    assert_non_null(t);
    assert_int_equal(topic_partition_count(t), 5);
    topic_config_snapshot(t, &cfg);
    assert_int_equal(cfg.partitions, 5);
    assert_int_equal(topic_config_apply(t, "partitions=4", 12), -EINVAL);
    p = topic_partition(t, 0);
    partition_info(p, &pi);
    assert_int_equal(pi.end_offset, 2);
    assert_stream(p, "o1\no2\n", 6);
    assert_stream(topic_partition(t, 4), "p4\n", 3);
    partition_info(topic_partition(t, 2), &pi);
    assert_int_equal(pi.end_offset, 0);
    topic_put(t);
    store_close(s);
}

/* ---- views across layout changes ---- */

static ssize_t view_read(struct partition *p, const struct partition_view *v, uint64_t pos,
                         char *buf, size_t len)
{
    struct partition_cursor c;
    partition_cursor_init(&c);
    ssize_t n = partition_view_read(p, &c, v, pos, buf, len);
    partition_cursor_free(&c);
    return n;
}

/* Makes the .log of segment `base` impossible to unlink (a directory takes
 * its name; the open segment keeps reading the file), or puts it back. */
/* The .log files whose removal fails (segment_retire_fault). */
static char trapped[2][4096];

static int trapped_log(const char *log_path)
{
    for (int i = 0; i < 2; i++)
        if (!strcmp(trapped[i], log_path))
            return -EIO;
    return 0;
}

static void trap_log(const char *dir, uint64_t base, int trap)
{
    char log[4096];
    seg_file(log, sizeof(log), dir, base, ".log");
    segment_retire_fault = trapped_log;
    for (int i = 0; i < 2; i++) {
        if (trap && !trapped[i][0]) {
            snprintf(trapped[i], sizeof(trapped[i]), "%s", log);
            return;
        }
        if (!trap && !strcmp(trapped[i], log)) {
            trapped[i][0] = 0;
            return;
        }
    }
    fail();
}

/* Retention and truncation stop at a segment whose .log cannot be removed:
 * it and what follows stay, in memory as on disk, so the next open finds
 * the same whole log (no segment below the log start, no gap). */
/* A batch header whose checksum was recomputed after a field was changed
 * (the first batch of a segment claims the next offset) is not believed: the
 * first batch must start at the segment's base offset unless compaction ran,
 * and no fetch, offset lookup or read skips the bad range that results,
 * whatever offsets it claims. */
#define FORGED_N 40
static void forged_open(struct fx *f, int compacted, uint64_t *base)
{
    char name[32];
    snprintf(name, sizeof(name), "forged%d", compacted);
    f->p = open_part(sub(f, name), 300, INT64_MAX);
    for (int i = 0; i < FORGED_N; i++) {
        char v[16];
        snprintf(v, sizeof(v), "rec-%03d\n", i);
        const char *vals[] = {v};
        append_vals(f->p, vals, 1, 1000 + i);
    }
    assert_int_equal(partition_sync(f->p), 0);
    assert_true(f->p->nsegs > 6);
    *base = f->p->segs[4]->base_offset;
    partition_close(f->p);
    f->p = NULL;
    char dir[256], path[512];
    snprintf(dir, sizeof(dir), "%s", sub(f, name));
    segment_path(path, sizeof(path), dir, *base, ".log");
    size_t len;
    uint8_t *buf = slurp(path, &len);
    struct batch_header h;
    assert_int_equal(batch_header_decode(buf, &h), 0);
    h.base_offset++;
    batch_header_encode(&h, buf);
    h.checksum = batch_checksum(buf, h.length);
    batch_header_encode(&h, buf);
    assert_int_equal(batch_verify(buf, h.length), 0);
    spit(path, buf, len);
    free(buf);
    if (compacted) {
        snprintf(path, sizeof(path), "%s/compacted", dir);
        spit(path, "", 0);
    }
    struct partition_settings st = settings(300, INT64_MAX);
    assert_int_equal(partition_open(dir, &st, &f->p), 0);
}

static int forged_fetch(struct fx *f, uint64_t from, struct recs *d)
{
    uint64_t next;
    memset(d, 0, sizeof(*d));
    partition_cursor_free(&f->c[0]);
    partition_cursor_init(&f->c[0]);
    return partition_fetch(f->p, &f->c[0], from, 100, collect, d, &next);
}

static void test_forged_first_offset_not_believed(void **state)
{
    struct fx *f = *state;
    static struct recs d;
    uint64_t b, pos;
    char want[64];
    forged_open(f, 0, &b);
    /* The forged batch (record b) is damaged; b + 1 on is served. */
    assert_int_equal(forged_fetch(f, b - 1, &d), 0);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.offsets[0], b - 1);
    assert_int_equal(forged_fetch(f, b, &d), -EIO);
    assert_int_equal(forged_fetch(f, b + 1, &d), 0);
    assert_int_equal(d.n, FORGED_N - b - 1);
    assert_int_equal(d.offsets[0], b + 1);
    snprintf(want, sizeof(want), "rec-%03d\n", (int)(b + 1));
    assert_memory_equal(d.text, want, 8);
    assert_int_equal(partition_offset_pos(f->p, b, &pos), -EIO);
    assert_int_equal(partition_offset_pos(f->p, b + 1, &pos), 0);
    assert_int_equal(pos, (b + 1) * 8);
    /* A read of the stream stops at the damage with EIO. */
    char buf[8];
    assert_int_equal(partition_read(f->p, &f->c[1], b * 8, buf, sizeof(buf)), -EIO);
    assert_int_equal(partition_read(f->p, &f->c[1], (b + 1) * 8, buf, sizeof(buf)), 8);
    assert_memory_equal(buf, want, 8);
}

static void test_forged_offset_in_compacted_never_skipped(void **state)
{
    struct fx *f = *state;
    static struct recs d;
    uint64_t b, pos;
    forged_open(f, 1, &b);
    /* Compaction may leave a gap before a segment's first batch: the forged
     * one is believed (offset b + 1), and the genuine b + 1 after it is a bad
     * range that claims no offset. No fetch skips it. */
    assert_int_equal(forged_fetch(f, b - 1, &d), 0);
    assert_int_equal(d.offsets[d.n - 1], b + 1);
    assert_int_equal(d.n, 2);
    assert_int_equal(forged_fetch(f, b + 2, &d), -EIO);
    assert_int_equal(partition_offset_pos(f->p, b + 2, &pos), -EIO);
    assert_int_equal(forged_fetch(f, b + 3, &d), 0);
    assert_int_equal(d.offsets[0], b + 3);
    assert_int_equal(partition_offset_pos(f->p, b + 3, &pos), 0);
    assert_int_equal(pos, (b + 3) * 8);
}

static void test_removal_stops_at_a_log_that_stays(void **state)
{
    struct fx *f = *state;
    const char *dir = sub(f, "stays");
    struct partition *p = open_part(dir, 40, INT64_MAX);
    char want[512] = "";
    for (int i = 0; i < 12; i++) {
        char rec[32];
        snprintf(rec, sizeof(rec), "record-%02d\n", i);
        append1(p, rec, 1000 + i);
        strcat(want, rec);
    }
    assert_true(p->nsegs >= 6);
    size_t nsegs = p->nsegs;
    uint64_t head = p->segs[1]->base_offset, head_pos = p->segs[1]->base_pos;
    trap_log(dir, head, 1);
    size_t gone = 99;
    assert_int_equal(partition_delete_head(p, 3, &gone), -EIO);
    assert_int_equal(gone, 1);
    assert_int_equal(p->nsegs, nsegs - 1);
    assert_int_equal(p->segs[0]->base_offset, head);

    /* Truncation into the newest closed segment, whose .log stays. */
    uint64_t tail = p->segs[p->nsegs - 2]->base_offset;
    uint64_t tail_end = p->segs[p->nsegs - 2]->next_offset;
    trap_log(dir, tail, 1);
    assert_int_equal(partition_truncate(p, tail), -EIO);
    struct partition_info pi;
    partition_info(p, &pi);
    assert_int_equal(pi.start_offset, head);
    assert_int_equal(pi.end_offset, tail_end);
    append1(p, "after\n", 2000);
    trap_log(dir, head, 0);
    trap_log(dir, tail, 0);

    size_t keep = (size_t)(tail_end * 10); /* records are 10 bytes */
    char expect[512];
    snprintf(expect, sizeof(expect), "%.*safter\n", (int)(keep - head_pos), want + head_pos);
    for (int round = 0; round < 2; round++) {
        partition_info(p, &pi);
        assert_int_equal(pi.start_offset, head);
        assert_int_equal(pi.end_offset, tail_end + 1);
        assert_int_equal(pi.bad_batches, 0);
        char got[512];
        size_t n = read_from(p, pi.start_pos, got, sizeof(got));
        assert_int_equal(n, strlen(expect));
        assert_memory_equal(got, expect, n);
        partition_close(p);
        p = open_part(dir, 40, INT64_MAX);
    }
    /* The next pass removes what the failed one left. */
    assert_int_equal(partition_delete_head(p, 1, &gone), 0);
    assert_int_equal(gone, 1);
    partition_close(p);
}

/* An older view reads removed head segments for file.delete.delay.ms, at its
 * own positions, then gets -ENODATA; a truncation cuts older views off from
 * the cut point on; the current view always reads the current log. */
static void test_old_views_across_changes(void **state)
{
    struct fx *f = *state;
    struct partition_settings st = settings(40, INT64_MAX);
    st.file_delete_delay_ms = 60000;
    struct partition *p = NULL;
    assert_int_equal(partition_open(sub(f, "views"), &st, &p), 0);
    char want[512] = "", got[512];
    for (int i = 0; i < 12; i++) {
        char rec[32];
        snprintf(rec, sizeof(rec), "record-%02d\n", i);
        append1(p, rec, 1000 + i);
        strcat(want, rec);
    }
    /* Nobody holds an older view: nothing is kept. */
    struct partition_view unheld;
    partition_current_view(p, &unheld);
    assert_int_equal(partition_delete_head(p, 1, NULL), 0);
    assert_int_equal(view_read(p, &unheld, 0, got, 10), -ENODATA);
    memmove(want, want + 10, strlen(want + 10) + 1); /* record-00 is gone */
    size_t total = strlen(want);
    struct partition_view old;
    partition_current_view(p, &old);
    partition_view_hold(p, &old);
    assert_int_equal(partition_delete_head(p, 2, NULL), 0);

    /* kept: the old view reads every byte where it was */
    assert_int_equal(view_read(p, &old, 0, got, sizeof(got)), (ssize_t)total);
    assert_memory_equal(got, want, total);
    assert_int_equal(partition_view_size(p, &old), total);
    struct partition_view now;
    partition_current_view(p, &now);
    ssize_t n = view_read(p, &now, 0, got, sizeof(got));
    assert_true(n > 0 && (size_t)n < total);
    assert_memory_equal(got, want + (total - (size_t)n), (size_t)n);

    /* not kept: the removed positions fail, the rest still reads */
    st.file_delete_delay_ms = 0;
    partition_set_settings(p, &st);
    struct partition_view mid;
    partition_current_view(p, &mid);
    uint64_t cut = total - (size_t)n; /* where `now` starts, in old coordinates */
    assert_int_equal(partition_delete_head(p, 1, NULL), 0);
    assert_int_equal(view_read(p, &mid, 0, got, 10), -ENODATA);
    assert_int_equal(view_read(p, &old, cut, got, 10), -ENODATA);
    assert_int_equal(view_read(p, &old, total - 10, got, 10), 10);
    assert_memory_equal(got, want + total - 10, 10);
    partition_expire_kept(p);
    assert_int_equal(view_read(p, &old, 0, got, 10), 10); /* kept for 60 s: still there */

    /* truncation: older views fail from the cut on, never read new bytes */
    struct partition_info pi;
    partition_info(p, &pi);
    assert_int_equal(partition_truncate(p, pi.end_offset - 2), 0);
    append1(p, "NEW-A\n", 2000);
    assert_int_equal(view_read(p, &old, total - 20, got, 20), -ENODATA);
    assert_int_equal(view_read(p, &old, total - 30, got, 10), 10);
    assert_memory_equal(got, want + total - 30, 10);
    struct partition_view last;
    partition_current_view(p, &last);
    uint64_t size = partition_view_size(p, &last);
    assert_int_equal(view_read(p, &last, size - 6, got, 6), 6);
    assert_memory_equal(got, "NEW-A\n", 6);
    partition_view_release(p, &old);
    partition_close(p);
}

/* ---- old views, compaction gaps and truncation ---- */

static const struct compaction_rules kv_rules = {
    .key_sep = ":", .key_sep_len = 1, .delete_retention_ms = 1000, .min_dirty_ratio = 0.0};

/* Appends "key:value\n" as one record, keyed unless key is NULL. */
static void append_kv(struct partition *p, const char *key, const char *value, int64_t ts)
{
    char rec[128];
    struct batch_builder b;
    int n = key ? snprintf(rec, sizeof(rec), "%s:%s\n", key, value)
                : snprintf(rec, sizeof(rec), "%s\n", value);
    batch_builder_init(&b);
    assert_int_equal(batch_builder_add_record(&b, (uint32_t)n, key ? (int32_t)strlen(key) : -1), 0);
    assert_int_equal(batch_builder_add_values(&b, rec, (size_t)n), 0);
    assert_int_equal(partition_append(p, &b, ts, NULL), 0);
    batch_builder_free(&b);
}

static struct partition *open_kv(struct fx *f, const char *name, enum batch_codec codec,
                                 int64_t delay_ms)
{
    struct partition_settings st = settings(220, INT64_MAX);
    st.codec = codec;
    st.file_delete_delay_ms = delay_ms;
    partition_close(f->p);
    f->p = NULL;
    assert_int_equal(partition_open(sub(f, name), &st, &f->p), 0);
    return f->p;
}

/* One read of an old view across several kept segments: its cursor must not
 * follow base offsets into the compacted segments that replaced them. */
static void old_view_across_kept(struct fx *f, const char *name, enum batch_codec codec)
{
    static const char *const keys[] = {"a", "x", "b", "x", "c", "d", "x", "e", "f", "g"};
    static const char *const vals[] = {"1", "1", "1", "2", "1", "1", "3", "1", "1", "1"};
    struct partition *p = open_kv(f, name, codec, 60000);
    char want[256] = "", got[256];
    for (int i = 0; i < 10; i++) {
        append_kv(p, keys[i], vals[i], 1000 + i);
        snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s:%s\n", keys[i], vals[i]);
    }
    size_t len = strlen(want);
    assert_true(p->nsegs >= 3);
    struct partition_view old;
    partition_current_view(p, &old);
    partition_view_hold(p, &old);
    struct compaction_result res;
    assert_int_equal(compaction_run(p, &kv_rules, 2000, &res), 1);
    assert_true(res.records_after < res.records_before);
    memset(got, 0, sizeof(got));
    assert_int_equal(view_read(p, &old, 0, got, sizeof(got)), (ssize_t)len);
    assert_memory_equal(got, want, len);
    /* and through one cursor, in small steps */
    struct partition_cursor c;
    partition_cursor_init(&c);
    size_t done = 0;
    while (done < len) {
        ssize_t n = partition_view_read(p, &c, &old, done, got + done, 5);
        assert_true(n > 0);
        done += (size_t)n;
    }
    partition_cursor_free(&c);
    assert_memory_equal(got, want, len);
    partition_view_release(p, &old);
}

static void test_old_view_reads_across_kept_segments(void **state)
{
    struct fx *f = *state;
    old_view_across_kept(f, "none", BATCH_CODEC_NONE);
    old_view_across_kept(f, "lz4", BATCH_CODEC_LZ4);
}

/* The same with room for one descriptor: the old layout's segments must
 * not be reopened by path once compaction put cleaned files there. */
static void test_old_view_across_kept_segments_one_fd(void **state)
{
    struct fx *f = *state;
    size_t cap_before = segment_fd_cap;
    segment_fd_cap = 1;
    old_view_across_kept(f, "none-1fd", BATCH_CODEC_NONE);
    old_view_across_kept(f, "lz4-1fd", BATCH_CODEC_LZ4);
    segment_fd_cap = cap_before;
}

/* A read that starts below a truncation cut ends there: the bytes appended
 * after the truncation are not the old view's. */
static void test_old_view_read_stops_at_cut(void **state)
{
    struct fx *f = *state;
    struct partition *p = open_kv(f, "p", BATCH_CODEC_NONE, 60000);
    char got[128];
    append_kv(p, NULL, "old-0", 1000);
    append_kv(p, NULL, "old-1", 1001);
    append_kv(p, NULL, "old-2", 1002);
    struct partition_view old;
    partition_current_view(p, &old);
    partition_view_hold(p, &old);
    assert_int_equal(partition_truncate(p, 2), 0); /* cut at position 12 */
    append_kv(p, NULL, "NEW-2", 2000);
    assert_int_equal(view_read(p, &old, 12, got, 6), -ENODATA);
    assert_int_equal(view_read(p, &old, 0, got, sizeof(got)), 12);
    assert_memory_equal(got, "old-0\nold-1\n", 12);
    assert_int_equal(view_read(p, &old, 7, got, sizeof(got)), 5);
    assert_memory_equal(got, "ld-1\n", 5);
    partition_view_release(p, &old);
}

/* Segments {a:1 b:1 x:1} {x:2 c:1 d:1} {e:1}: compaction drops x:1, the last
 * record of the first segment, which leaves offset 2 and positions [8, 12)
 * with nothing in them. */
static struct partition *gap_part(struct fx *f)
{
    static const char *const keys[] = {"a", "b", "x", "x", "c", "d", "e"};
    struct partition *p = open_kv(f, "gap", BATCH_CODEC_NONE, 0);
    for (int i = 0; i < 7; i++)
        append_kv(p, keys[i], i == 3 ? "2" : "1", 1000 + i);
    assert_int_equal(p->nsegs, 3);
    struct compaction_result res;
    assert_int_equal(compaction_run(p, &kv_rules, 2000, &res), 1);
    assert_int_equal(p->nsegs, 3);
    assert_int_equal(p->segs[0]->next_offset, 2);
    assert_int_equal(p->segs[0]->end_pos, 8);
    assert_int_equal(p->segs[1]->base_offset, 3);
    assert_int_equal(p->segs[1]->base_pos, 12);
    return p;
}

/* An offset compaction removed stands for the next record (as `cat p0@2`). */
static void test_offset_in_compacted_gap(void **state)
{
    struct fx *f = *state;
    struct partition *p = gap_part(f);
    uint64_t pos;
    char got[64];
    assert_int_equal(partition_offset_pos(p, 2, &pos), 0);
    assert_int_equal(pos, 12);
    assert_int_equal(partition_offset_pos(p, 1, &pos), 0);
    assert_int_equal(pos, 4);
    struct partition_view v;
    assert_int_equal(partition_view_at_offset(p, 2, &v), 0);
    assert_int_equal(v.shift, 8);
    assert_int_equal(partition_view_size(p, &v), 16);
    assert_int_equal(view_read(p, &v, 0, got, sizeof(got)), 16);
    assert_memory_equal(got, "x:2\nc:1\nd:1\ne:1\n", 16);
    assert_int_equal(partition_view_at_offset(p, 1, &v), 0);
    assert_int_equal(view_read(p, &v, 0, got, sizeof(got)), 20);
    assert_memory_equal(got, "b:1\nx:2\nc:1\nd:1\ne:1\n", 20);
    assert_int_equal(partition_view_at_offset(p, 7, &v), 0);
    assert_int_equal(partition_view_size(p, &v), 0);
}

/* Stream positions compaction removed hold no bytes: a read there fails, one
 * before them stops short. */
static void test_read_in_compacted_gap(void **state)
{
    struct fx *f = *state;
    struct partition *p = gap_part(f);
    struct partition_cursor *c = &f->c[0];
    char got[64];
    for (uint64_t pos = 8; pos < 12; pos++)
        assert_int_equal(partition_read(p, &f->c[1], pos, got, 4), -ENODATA);
    assert_int_equal(partition_read(p, c, 0, got, sizeof(got)), 8);
    assert_memory_equal(got, "a:1\nb:1\n", 8);
    assert_int_equal(partition_read(p, c, 8, got, sizeof(got)), -ENODATA);
    assert_int_equal(partition_read(p, c, 10, got, sizeof(got)), -ENODATA);
    assert_int_equal(partition_read(p, c, 12, got, sizeof(got)), 16);
    assert_memory_equal(got, "x:2\nc:1\nd:1\ne:1\n", 16);
    assert_int_equal(partition_read(p, c, 6, got, sizeof(got)), 2);
    assert_int_equal(partition_read(p, c, 9, got, sizeof(got)), -ENODATA);
}

/* A change that cannot get its new layout epoch changes nothing. */
static void test_epoch_grow_failure_changes_nothing(void **state)
{
    struct fx *f = *state;
    struct partition *p = open_kv(f, "p", BATCH_CODEC_NONE, 0);
    int64_t ts = 1000;
    while (p->epoch + 1 < p->epochs_cap) {
        while (p->nsegs < 2)
            append_kv(p, NULL, "pad", ts++);
        assert_int_equal(partition_delete_head(p, p->nsegs - 1, NULL), 0);
    }
    static const char *const keys[] = {"a", "x", "b", "x", "c", "d", "e", "f", "g", "h"};
    for (int i = 0; i < 10; i++)
        append_kv(p, keys[i], i == 3 ? "2" : "1", ts++);
    struct partition_view cur;
    partition_current_view(p, &cur);
    char before[512], got[512];
    ssize_t len = view_read(p, &cur, 0, before, sizeof(before));
    assert_true(len > 40);
    uint32_t epoch = p->epoch;
    size_t nsegs = p->nsegs;
    struct partition_info pi;
    partition_info(p, &pi);

    partition_fail_epoch_grow = 1;
    struct compaction_result res;
    int r = compaction_run(p, &kv_rules, ts + 10, &res);
    int d = partition_delete_head(p, 1, NULL);
    int t = partition_truncate(p, pi.end_offset - 1);
    partition_fail_epoch_grow = 0;
    assert_int_equal(r, -ENOMEM);
    assert_int_equal(d, -ENOMEM);
    assert_int_equal(t, -ENOMEM);
    assert_int_equal(p->epoch, epoch);
    assert_int_equal(p->nsegs, nsegs);
    struct partition_info now;
    partition_info(p, &now);
    assert_int_equal(now.end_offset, pi.end_offset);
    assert_int_equal(now.view_bytes, pi.view_bytes);
    assert_int_equal(partition_view_size(p, &cur), (uint64_t)len);
    assert_int_equal(view_read(p, &cur, 0, got, sizeof(got)), len);
    assert_memory_equal(got, before, (size_t)len);

    /* and works once memory is back (the files on disk were compacted:
     * the cleaner waits for new records) */
    while (p->nsegs == nsegs)
        append_kv(p, "y", "1", ts++);
    assert_int_equal(compaction_run(p, &kv_rules, ts + 10, &res), 1);
    assert_int_equal(p->epoch, epoch + 1);
    partition_current_view(p, &cur);
    len = view_read(p, &cur, 0, got, sizeof(got));
    assert_int_equal(len, (ssize_t)partition_view_size(p, &cur));
    assert_null(memmem(got, (size_t)len, "x:1\n", 4));
    assert_non_null(memmem(got, (size_t)len, "x:2\nc:1\n", 8));
}

/* Truncating at the first record a compacted segment still holds leaves it
 * empty, its first offsets gone: reads from them find nothing until the next
 * append. */
static void test_truncate_into_compacted_segment(void **state)
{
    struct fx *f = *state;
    static const char *const keys[] = {"a", "b", "c", "x", "d", "e", "x", "f", "g", "h"};
    struct partition *p = open_kv(f, "p", BATCH_CODEC_NONE, 0);
    for (int i = 0; i < 10; i++)
        append_kv(p, keys[i], i == 6 ? "2" : "1", 1000 + i);
    assert_int_equal(p->nsegs, 4);
    struct compaction_result res;
    assert_int_equal(compaction_run(p, &kv_rules, 2000, &res), 1);
    assert_int_equal(p->segs[1]->base_offset, 3); /* x:1 went: it starts at 4 */
    assert_int_equal(partition_truncate(p, 4), 0);
    assert_int_equal(p->nsegs, 2);
    struct partition_info pi;
    partition_info(p, &pi);
    assert_int_equal(pi.end_offset, 4);
    struct recs d;
    fetch_all(p, 3, &d);
    assert_int_equal(d.n, 0);
    uint64_t pos;
    assert_int_equal(partition_offset_pos(p, 3, &pos), 0);
    assert_int_equal(pos, pi.end_pos);
    struct partition_view v;
    assert_int_equal(partition_view_at_offset(p, 3, &v), 0);
    assert_int_equal(v.shift, pi.view_bytes);
    assert_int_equal(append1(p, "new\n", 3000), 4);
    fetch_all(p, 3, &d);
    assert_dense(&d, 4, 1);
    assert_memory_equal(d.text, "new\n", 4);
    char got[16];
    assert_int_equal(view_read(p, &v, 0, got, sizeof(got)), 4);
    assert_memory_equal(got, "new\n", 4);
}

/* ---- randomized: appends, compaction, retention, truncation, views ---- */

#define FUZZ_VIEWS 8

struct held {
    struct partition_view v;
    char *snap;
    size_t len;
    int cut; /* a truncation happened while held: reads may end early */
    struct partition_cursor c;
    int live;
};

struct fuzz {
    struct partition *p;
    unsigned rnd;
    int lenient; /* old layouts are not kept: old views may get -ENODATA */
    struct held h[FUZZ_VIEWS];
    char buf[1 << 16];
};

static unsigned fuzz_rnd(struct fuzz *z)
{
    z->rnd = z->rnd * 1103515245u + 12345u;
    return (z->rnd >> 16) & 0x7fff;
}

/* Reads a view from 0 in chunks of `chunk`; returns the bytes read, or -1
 * on an error. */
static ssize_t fuzz_read_all(struct fuzz *z, struct partition_cursor *c,
                             const struct partition_view *v, size_t cap, size_t chunk)
{
    size_t done = 0;
    while (done < cap) {
        size_t want = chunk < cap - done ? chunk : cap - done;
        ssize_t n = partition_view_read(z->p, c, v, done, z->buf + done, want);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        done += (size_t)n;
    }
    return (ssize_t)done;
}

static void fuzz_check_view(struct fuzz *z, struct held *h, const char *where)
{
    static const size_t chunks[] = {1 << 16, 7, 100};
    if (!z->lenient && !h->cut) {
        for (int k = 0; k < 3; k++) {
            struct partition_cursor fresh;
            partition_cursor_init(&fresh);
            ssize_t n = fuzz_read_all(z, k == 2 ? &h->c : &fresh, &h->v, h->len, chunks[k]);
            partition_cursor_free(&fresh);
            if (n != (ssize_t)h->len || memcmp(z->buf, h->snap, h->len)) {
                print_error("%s: view of epoch %u, chunk %zu: read %zd of %zu\n", where, h->v.epoch,
                            chunks[k], n, h->len);
                fail();
            }
        }
        return;
    }
    /* Random windows: right bytes, or -ENODATA where they are gone. */
    for (int t = 0; t < 4 && h->len; t++) {
        size_t pos = fuzz_rnd(z) % h->len, len = 1 + fuzz_rnd(z) % 400;
        struct partition_cursor fresh;
        partition_cursor_init(&fresh);
        ssize_t n = partition_view_read(z->p, t & 1 ? &h->c : &fresh, &h->v, pos, z->buf, len);
        partition_cursor_free(&fresh);
        size_t cmp = n > 0 ? (size_t)n : 0;
        if (pos + cmp > h->len)
            cmp = h->len - pos;
        if ((n < 0 && n != -ENODATA) || (n == 0 && !h->cut) || memcmp(z->buf, h->snap + pos, cmp)) {
            print_error("%s: view of epoch %u: window %zu+%zu read %zd\n", where, h->v.epoch, pos,
                        len, n);
            fail();
        }
    }
}

static int fetch_first(const struct record_view *r, void *arg)
{
    struct recs *d = arg;
    d->offsets[0] = r->offset;
    d->len = r->value_len;
    memcpy(d->text, r->value, r->value_len);
    d->n = 1;
    return 1;
}

/* An offset leads to the record partition_fetch() starts at, by position
 * and by view. */
static void fuzz_check_offset(struct fuzz *z, uint64_t offset, const char *where)
{
    static struct recs d;
    struct partition_cursor c;
    uint64_t next, pos;
    struct partition_view v;
    d.n = 0;
    d.len = 0;
    partition_cursor_init(&c);
    assert_int_equal(partition_fetch(z->p, &c, offset, 1, fetch_first, &d, &next), 0);
    int r = partition_offset_pos(z->p, offset, &pos);
    ssize_t n = r ? r : d.n ? partition_read(z->p, &c, pos, z->buf, d.len) : 0;
    int ok = n == (ssize_t)d.len && !memcmp(z->buf, d.text, d.len);
    if (ok && (r = partition_view_at_offset(z->p, offset, &v)) == 0) {
        n = view_read(z->p, &v, 0, z->buf, d.n ? d.len : 1);
        ok = n == (ssize_t)(d.n ? d.len : 0) && !memcmp(z->buf, d.text, d.len);
    }
    partition_cursor_free(&c);
    if (!ok || r) {
        print_error("%s: offset %" PRIu64 " (record %" PRIu64 "): %d %zd\n", where, offset,
                    d.n ? d.offsets[0] : UINT64_MAX, r, n);
        fail();
    }
}

static void fuzz_take_view(struct fuzz *z, struct held *h)
{
    partition_current_view(z->p, &h->v);
    partition_view_hold(z->p, &h->v);
    h->len = (size_t)partition_view_size(z->p, &h->v);
    assert_true(h->len <= sizeof(z->buf));
    ssize_t n = view_read(z->p, &h->v, 0, z->buf, h->len);
    assert_int_equal(n, (ssize_t)h->len);
    h->snap = malloc(h->len + 1);
    assert_non_null(h->snap);
    memcpy(h->snap, z->buf, h->len);
    h->cut = 0;
    partition_cursor_init(&h->c);
    h->live = 1;
}

static void fuzz_drop_view(struct fuzz *z, struct held *h)
{
    partition_view_release(z->p, &h->v);
    free(h->snap);
    partition_cursor_free(&h->c);
    h->live = 0;
}

static void fuzz_run(struct fx *f, struct fuzz *z, unsigned seed, enum batch_codec codec,
                     int64_t delay_ms, int steps)
{
    char name[32], where[96];
    snprintf(name, sizeof(name), "fuzz-%u", seed);
    memset(z, 0, sizeof(*z));
    z->rnd = seed;
    z->lenient = delay_ms < 1000;
    z->p = open_kv(f, name, codec, delay_ms);
    int64_t ts = 1000;
    for (int step = 0; step < steps; step++) {
        unsigned op = fuzz_rnd(z) % 20;
        if (op < 11) {
            char key[8], val[32];
            snprintf(key, sizeof(key), "k%u", fuzz_rnd(z) % 6);
            snprintf(val, sizeof(val), "%d-%.*s", step, (int)(fuzz_rnd(z) % 12), "abcdefghijkl");
            append_kv(z->p, fuzz_rnd(z) % 8 ? key : NULL, val, ts++);
        } else if (op < 14) {
            struct compaction_result res;
            assert_true(compaction_run(z->p, &kv_rules, ts, &res) >= 0);
        } else if (op < 16) {
            assert_int_equal(partition_delete_head(z->p, 1 + fuzz_rnd(z) % 2, NULL), 0);
        } else if (op == 16) {
            struct partition_info pi;
            partition_info(z->p, &pi);
            uint64_t span = pi.end_offset - pi.start_offset;
            if (span > 2) {
                uint64_t back = 1 + fuzz_rnd(z) % (span < 20 ? span - 1 : 19);
                assert_int_equal(partition_truncate(z->p, pi.end_offset - back), 0);
                for (int i = 0; i < FUZZ_VIEWS; i++)
                    z->h[i].cut = 1;
            }
        } else {
            struct held *h = &z->h[fuzz_rnd(z) % FUZZ_VIEWS];
            if (h->live)
                fuzz_drop_view(z, h);
            else
                fuzz_take_view(z, h);
        }
        snprintf(where, sizeof(where), "seed %u codec %d step %d op %u", seed, codec, step, op);
        for (int i = 0; i < FUZZ_VIEWS; i++)
            if (z->h[i].live)
                fuzz_check_view(z, &z->h[i], where);
        struct partition_info pi;
        partition_info(z->p, &pi);
        for (int k = 0; k < 3; k++) {
            uint64_t span = pi.end_offset - pi.start_offset + 3;
            uint64_t o = pi.start_offset + fuzz_rnd(z) % span;
            fuzz_check_offset(z, o ? o - 1 : 0, where);
        }
    }
    for (int i = 0; i < FUZZ_VIEWS; i++)
        if (z->h[i].live)
            fuzz_drop_view(z, &z->h[i]);
}

/* Held views keep reading what they read when taken (or fail, never read
 * other bytes, where old layouts are not kept or a truncation cut them);
 * offsets, also those compaction removed, lead to the next record. */
static void test_views_randomized(void **state)
{
    struct fx *f = *state;
    struct fuzz *z = malloc(sizeof(*z));
    assert_non_null(z);
    for (unsigned seed = 1; seed <= 6; seed++)
        fuzz_run(f, z, seed, seed & 1 ? BATCH_CODEC_LZ4 : BATCH_CODEC_NONE, seed % 3 ? 600000 : 0,
                 200);
    free(z);
}

/* ---- pieces (zero-copy reads) ---- */

struct piece_log {
    char *out; /* the bytes the pieces stand for, in order */
    size_t len;
    int fd_pieces, mem_pieces, delivered;
    int fail_after; /* piece() fails once this many were taken (-1: never) */
};

static int take_piece(const struct stream_piece *pc, void *arg)
{
    struct piece_log *l = arg;
    if (l->fail_after >= 0 && l->fd_pieces + l->mem_pieces >= l->fail_after)
        return -EIO;
    if (pc->fd >= 0) {
        assert_int_equal(pread(pc->fd, l->out + l->len, pc->len, (off_t)pc->file_pos),
                         (ssize_t)pc->len);
        l->fd_pieces++;
    } else {
        memcpy(l->out + l->len, pc->mem, pc->len);
        l->mem_pieces++;
    }
    l->len += pc->len;
    return 0;
}

static void deliver_pieces(void *arg)
{
    ((struct piece_log *)arg)->delivered++;
}

/* partition_view_send hands out, as file and memory pieces, exactly the
 * bytes partition_view_read copies, at every position: big uncompressed
 * batches as file spans, small ones and lz4 ones from memory. */
static void test_view_pieces_match_reads(void **state)
{
    struct fx *f = *state;
    f->p = open_part(sub(f, "pieces"), 1 << 20, 1LL << 40);
    static char big[200000];
    for (size_t i = 0; i < sizeof(big) - 1; i++)
        big[i] = (char)('a' + i % 26);
    const char *small[] = {"one\n", "two\n", "three\n"};
    append1(f->p, big, 1);
    append_vals(f->p, small, 3, 2);
    struct partition_settings st = settings(1 << 20, 1LL << 40);
    st.codec = BATCH_CODEC_LZ4;
    partition_set_settings(f->p, &st);
    append1(f->p, big, 3);
    struct partition_view v;
    partition_current_view(f->p, &v);
    size_t total = 2 * (sizeof(big) - 1) + 14;
    char *want = malloc(total), *got = malloc(total);
    assert_non_null(want);
    assert_non_null(got);
    assert_int_equal(partition_view_read(f->p, &f->c[0], &v, 0, want, total), (ssize_t)total);
    int fd_seen = 0;
    const uint64_t starts[] = {0, 1, 70000, 199990, 199999, 200003, 200013, 300000, total - 1};
    const size_t lens[] = {1, 4096, 131072, 400014};
    for (size_t i = 0; i < sizeof(starts) / sizeof(starts[0]); i++)
        for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
            struct piece_log l = {.out = got, .fail_after = -1};
            struct stream_sink sink = {.piece = take_piece, .deliver = deliver_pieces, .arg = &l};
            size_t len = lens[k] < total - starts[i] ? lens[k] : total - starts[i];
            /* A fresh cursor: one that read ahead has the bytes in memory. */
            partition_cursor_free(&f->c[1]);
            partition_cursor_init(&f->c[1]);
            ssize_t n = partition_view_send(f->p, &f->c[1], &v, starts[i], lens[k], &sink);
            assert_int_equal(n, (ssize_t)len);
            assert_int_equal(l.len, len);
            assert_memory_equal(got, want + starts[i], len);
            assert_int_equal(l.delivered, 1);
            fd_seen += l.fd_pieces;
        }
    assert_true(fd_seen > 0); /* the big uncompressed batch went as a file span */
    /* At the end: nothing handed out, nothing delivered. */
    struct piece_log end = {.out = got, .fail_after = -1};
    struct stream_sink sink = {.piece = take_piece, .deliver = deliver_pieces, .arg = &end};
    assert_int_equal(partition_view_send(f->p, &f->c[1], &v, total, 100, &sink), 0);
    assert_int_equal(end.delivered, 0);
    /* A piece that fails: what came before it is delivered; nothing, an error. */
    struct piece_log fail = {.out = got, .fail_after = 1};
    sink.arg = &fail;
    ssize_t n = partition_view_send(f->p, &f->c[1], &v, 199990, 100, &sink);
    assert_int_equal(n, (ssize_t)fail.len);
    assert_true(n > 0 && n < 100);
    assert_int_equal(fail.delivered, 1);
    struct piece_log fail0 = {.out = got, .fail_after = 0};
    sink.arg = &fail0;
    assert_int_equal(partition_view_send(f->p, &f->c[1], &v, 0, 100, &sink), -EIO);
    assert_int_equal(fail0.delivered, 0);
    free(want);
    free(got);
}

int main(void)
{
    logger_init("test_segment", 0, LOG_LEVEL_ERROR); /* recovery warnings are expected */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_more_iovecs_than_iov_max, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_every_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_view_pieces_match_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_unsynced_batch_every_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_indexed_last_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_middle_batch_drops_rest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recovery_across_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_covers_every_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damage_below_recovery_point, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fd_lru_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_rebuild, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_time_index_rebuilt_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_garbled_but_ordered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roll_by_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roll_by_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follower_append_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncate_mid_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncate_at_segment_boundary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncate_across_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncate_to_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncate_past_end_is_noop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncate_inside_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncate_then_reread_same_cursor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lookups_one_segment_many_index_entries, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lookups_across_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_topics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_views_across_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_view_reads_across_kept_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_view_across_kept_segments_one_fd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_view_read_stops_at_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offset_in_compacted_gap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_in_compacted_gap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_epoch_grow_failure_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncate_into_compacted_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_views_randomized, setup, teardown),
        cmocka_unit_test_setup_teardown(test_removal_stops_at_a_log_that_stays, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged_first_offset_not_believed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged_offset_in_compacted_never_skipped, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
