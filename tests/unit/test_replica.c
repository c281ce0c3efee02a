/* test_replica.c - the seams replication needs in core, tested as pure core:
 * partitions in temp dirs play leader and follower, "the network" is a raw
 * fetch at one and a follower append at the other.
 *
 * Covers:
 *   - the leader-epoch cache (Kafka's assign, truncate from end and start,
 *     OffsetsForLeaderEpoch answers) and its checkpoint file (round trip,
 *     every truncation and byte flip refused, strictness);
 *   - epochs at a partition: assigned, written, reloaded, stamped on local
 *     appends, taken from a follower's batches, cut by truncation, kept
 *     across retention (the covering entry moves up) and compaction (batch
 *     epochs kept), trimmed at open past the log end, rebuilt from the
 *     batches when the checkpoint is damaged;
 *   - KIP-101: a follower restarting keeps what it replicated (truncating
 *     to the high watermark would lose it); a leader's unflushed tail lost
 *     in a crash and the divergent replica truncated to the new leader's
 *     end of its epoch;
 *   - KIP-279: fast leader changes, and several diverging epochs that take
 *     an intermediate truncation; every case ends byte-identical;
 *   - the high watermark: appends past it are invisible to reads, views,
 *     fetch, lookups and sizes until it moves; it never passes the log end,
 *     comes down with truncation; retention and compaction stay below it;
 *   - raw fetch: verbatim batches (lz4 too), bounded by offset and bytes,
 *     ERANGE outside the log with the log's bounds filled in, EIO at damage;
 *   - a follower's damaged log cut where the damage starts and fetched
 *     again, byte-identical to the leader's;
 *   - follower appends of several batches: verified, all or nothing (a
 *     write that fails half way leaves nothing), gaps of a compacted leader
 *     (offsets and positions) once the follower is marked compacted;
 *   - reset at a leader's log start, byte-identical afterwards, and at
 *     each crash point of it;
 *   - listeners: the events, called outside the partition lock; the
 *     store's listeners see every topic, and partitions added later;
 *   - acknowledgements: no wait on one node; a replica that does not lead
 *     refuses (EAGAIN), a leader with fewer in sync than min.insync.replicas
 *     refuses (EIO), both appending nothing; a wait ends when the high
 *     watermark passes the batch, fails when leadership goes or the log is
 *     truncated (even once the offsets hold other records), or the topic
 *     is deleted;
 *   - the high watermark checkpoint: its codec (round trips, every cut and
 *     flipped bit refused), saved only while held, read back after a
 *     reopen, refused when damaged, removed by a reset.
 * Every file lives in a mkdtemp() directory that teardown removes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "compaction.h"
#include "leader_epoch.h"
#include "logger.h"
#include "partition.h"
#include "remote.h"
#include "store.h"
#include "topic.h"

/* ---- fixture: a temp dir; partitions in subdirectories of it ---- */

struct fx {
    char dir[64];
};

static int rm_entry(const char *p, const struct stat *sb, int f, struct FTW *w)
{
    (void)sb;
    (void)f;
    (void)w;
    return remove(p);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    strcpy(f->dir, "/tmp/topicfs-replica-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    partition_reset_crash_point = 0;
    return 0;
}

static const char *sub(struct fx *f, const char *name)
{
    static char buf[4][256];
    static int k;
    char *b = buf[k++ % 4];
    snprintf(b, 256, "%s/%s", f->dir, name);
    return b;
}

static struct partition_settings settings(uint64_t segment_bytes)
{
    struct partition_settings st = {
        .segment_bytes = segment_bytes,
        .segment_ms = INT64_MAX,
        .max_message_bytes = 1 << 20,
        .codec = BATCH_CODEC_NONE,
    };
    return st;
}

static struct partition *open_part(const char *dir, uint64_t segment_bytes)
{
    struct partition_settings st = settings(segment_bytes);
    struct partition *p = NULL;
    assert_int_equal(partition_open(dir, &st, &p), 0);
    return p;
}

/* Appends the values as one batch (keyless, or "k:v" keyed by what is
 * before ':' when keyed); returns its base offset. */
static int64_t append_ts = 1000; /* the timestamp appends get */

static uint64_t append_batch_of(struct partition *p, const char *const *vals, size_t n, int keyed)
{
    struct batch_builder b;
    uint64_t base;
    batch_builder_init(&b);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(vals[i]);
        const char *colon = keyed ? strchr(vals[i], ':') : NULL;
        assert_int_equal(
            batch_builder_add_record(&b, (uint32_t)len, colon ? (int32_t)(colon - vals[i]) : -1),
            0);
        assert_int_equal(batch_builder_add_values(&b, vals[i], len), 0);
    }
    assert_int_equal(partition_append(p, &b, append_ts, &base), 0);
    batch_builder_free(&b);
    return base;
}

static uint64_t append1(struct partition *p, const char *val)
{
    return append_batch_of(p, &val, 1, 0);
}

/* ---- the "network": a sink that collects raw fetch bytes ---- */

struct collect {
    uint8_t *buf;
    size_t len, cap;
    int delivered;
};

static int collect_piece(const struct stream_piece *pc, void *arg)
{
    struct collect *c = arg;
    if (c->len + pc->len > c->cap) {
        c->cap = (c->len + pc->len) * 2;
        c->buf = realloc(c->buf, c->cap);
    }
    int r = stream_piece_copy(pc, c->buf + c->len);
    if (!r)
        c->len += pc->len;
    return r;
}

static void collect_deliver(void *arg)
{
    ((struct collect *)arg)->delivered++;
}

static ssize_t fetch_raw(struct partition *p, uint64_t offset, uint64_t max_offset,
                         size_t max_bytes, struct collect *c, struct raw_fetch *out)
{
    struct stream_sink sink = {collect_piece, collect_deliver, c};
    c->len = 0;
    c->delivered = 0;
    return partition_fetch_raw(p, offset, max_offset, max_bytes, &sink, out);
}

/* One fetch round: what the leader has past the follower's end (up to
 * max_bytes), appended there. Returns the bytes moved. */
static size_t replicate_once(struct partition *f, struct partition *l, size_t max_bytes)
{
    struct partition_info fi;
    struct raw_fetch rf;
    struct collect c = {0};
    partition_info(f, &fi);
    ssize_t n = fetch_raw(l, fi.end_offset, UINT64_MAX, max_bytes, &c, &rf);
    assert_true(n >= 0);
    if (n > 0) {
        assert_int_equal(c.delivered, 1);
        if (rf.compacted)
            assert_int_equal(partition_set_compacted(f), 0);
        assert_int_equal(partition_append_batch(f, c.buf, c.len), 0);
    }
    free(c.buf);
    return (size_t)n;
}

static void replicate(struct partition *f, struct partition *l)
{
    while (replicate_once(f, l, 100))
        ;
}

/* KIP-101/KIP-279: the follower asks the leader where its latest epoch ends
 * there and truncates, until the answer is final. Returns the rounds. */
static int truncate_to_leader(struct partition *f, struct partition *l)
{
    for (int round = 1; round <= 32; round++) {
        uint32_t fe, le;
        uint64_t lend, to;
        int final;
        assert_int_equal(partition_latest_epoch(f, &fe), 0);
        assert_int_equal(partition_end_offset_for_epoch(l, fe, &le, &lend), 0);
        assert_int_equal(partition_truncation_point(f, le, lend, &to, &final), 0);
        assert_int_equal(partition_truncate(f, to), 0);
        if (final)
            return round;
    }
    fail_msg("truncation never converged");
    return 0;
}

/* A whole file's bytes. */
static uint8_t *slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return NULL;
    struct stat st;
    fstat(fd, &st);
    uint8_t *b = malloc((size_t)st.st_size + 1);
    *len = (size_t)read(fd, b, (size_t)st.st_size);
    close(fd);
    return b;
}

static void assert_files_equal(const char *a, const char *b)
{
    size_t la, lb;
    uint8_t *x = slurp(a, &la), *y = slurp(b, &lb);
    assert_non_null(x);
    assert_non_null(y);
    assert_int_equal(la, lb);
    assert_memory_equal(x, y, la);
    free(x);
    free(y);
}

static void seg_path(char *buf, size_t cap, const char *dir, uint64_t base)
{
    snprintf(buf, cap, "%s/%020" PRIu64 ".log", dir, base);
}

/* Every stored batch of both logs is the same, byte for byte, and so are
 * their bounds. */
static void assert_same_log(struct partition *a, struct partition *b)
{
    struct partition_info ia, ib;
    partition_info(a, &ia);
    partition_info(b, &ib);
    assert_int_equal(ia.start_offset, ib.start_offset);
    assert_int_equal(ia.start_pos, ib.start_pos);
    assert_int_equal(ia.end_offset, ib.end_offset);
    assert_int_equal(ia.end_pos, ib.end_pos);
    struct collect ca = {0}, cb = {0};
    struct raw_fetch ra, rb;
    assert_true(fetch_raw(a, ia.start_offset, UINT64_MAX, SIZE_MAX, &ca, &ra) >= 0);
    assert_true(fetch_raw(b, ib.start_offset, UINT64_MAX, SIZE_MAX, &cb, &rb) >= 0);
    assert_int_equal(ca.len, cb.len);
    assert_memory_equal(ca.buf, cb.buf, ca.len);
    free(ca.buf);
    free(cb.buf);
}

/* Records as fetched: values concatenated, with offsets and epochs. */
struct recs {
    char text[8192];
    size_t len, n;
    uint64_t off[512];
    uint32_t epoch[512];
};

static int note_rec(const struct record_view *r, void *arg)
{
    struct recs *d = arg;
    memcpy(d->text + d->len, r->value, r->value_len);
    d->len += r->value_len;
    d->text[d->len] = 0;
    d->off[d->n] = r->offset;
    d->epoch[d->n++] = r->leader_epoch;
    return 0;
}

static int fetch_all(struct partition *p, uint64_t from, struct recs *d)
{
    struct partition_cursor c;
    uint64_t next;
    memset(d, 0, sizeof(*d));
    partition_cursor_init(&c);
    int r = partition_fetch(p, &c, from, 512, note_rec, d, &next);
    partition_cursor_free(&c);
    return r;
}

static size_t read_stream(struct partition *p, char *buf, size_t cap)
{
    struct partition_cursor c;
    struct partition_info pi;
    partition_info(p, &pi);
    partition_cursor_init(&c);
    ssize_t n = partition_read(p, &c, pi.start_pos, buf, cap - 1);
    partition_cursor_free(&c);
    assert_true(n >= 0);
    buf[n] = 0;
    return (size_t)n;
}

/* ---- 1. the cache ---- */

static void assert_entries(const struct leader_epoch_cache *c, size_t n, const uint64_t *pairs)
{
    assert_int_equal(c->n, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(c->v[i].epoch, pairs[2 * i]);
        assert_int_equal(c->v[i].start_offset, pairs[2 * i + 1]);
    }
}

static void test_cache_operations(void **state)
{
    (void)state;
    struct leader_epoch_cache c;
    uint32_t e;
    uint64_t o;
    leader_epoch_init(&c);
    assert_int_equal(leader_epoch_end_offset_for(&c, 0, 10, &e, &o), -ENOENT);
    assert_int_equal(leader_epoch_latest(&c, &e), -ENOENT);
    assert_int_equal(leader_epoch_assign(&c, 1, 0), 1);
    assert_int_equal(leader_epoch_assign(&c, 1, 5), 0); /* same epoch, later: nothing */
    assert_int_equal(leader_epoch_assign(&c, 3, 10), 1);
    assert_int_equal(leader_epoch_assign(&c, 5, 20), 1);
    assert_entries(&c, 3, (uint64_t[]){1, 0, 3, 10, 5, 20});
    assert_int_equal(leader_epoch_assign(&c, LEADER_EPOCH_MAX + 1u, 30), -EINVAL);
    assert_int_equal(leader_epoch_assign(&c, 6, (uint64_t)INT64_MAX + 1), -EINVAL);
    assert_entries(&c, 3, (uint64_t[]){1, 0, 3, 10, 5, 20});

    /* OffsetsForLeaderEpoch */
    assert_int_equal(leader_epoch_end_offset_for(&c, 5, 42, &e, &o), 0); /* latest: log end */
    assert_int_equal(e, 5);
    assert_int_equal(o, 42);
    assert_int_equal(leader_epoch_end_offset_for(&c, 3, 42, &e, &o), 0);
    assert_int_equal(e, 3);
    assert_int_equal(o, 20);
    assert_int_equal(leader_epoch_end_offset_for(&c, 4, 42, &e, &o), 0); /* unknown: floor */
    assert_int_equal(e, 3);
    assert_int_equal(o, 20);
    assert_int_equal(leader_epoch_end_offset_for(&c, 0, 42, &e, &o), 0); /* below all */
    assert_int_equal(e, 0);
    assert_int_equal(o, 0);
    assert_int_equal(leader_epoch_end_offset_for(&c, 9, 42, &e, &o), -ENOENT); /* above all */

    /* A lower epoch drops what it would break; the same epoch earlier
     * replaces it. */
    assert_int_equal(leader_epoch_assign(&c, 4, 15), 1);
    assert_entries(&c, 3, (uint64_t[]){1, 0, 3, 10, 4, 15});
    assert_int_equal(leader_epoch_assign(&c, 4, 12), 1);
    assert_entries(&c, 3, (uint64_t[]){1, 0, 3, 10, 4, 12});
    assert_int_equal(leader_epoch_assign(&c, 6, 12), 1); /* same start: the newer epoch */
    assert_entries(&c, 3, (uint64_t[]){1, 0, 3, 10, 6, 12});

    /* Truncation from the end: entries at or after the cut go. */
    assert_int_equal(leader_epoch_truncate_from_end(&c, 13), 0);
    assert_int_equal(leader_epoch_truncate_from_end(&c, 12), 1);
    assert_entries(&c, 2, (uint64_t[]){1, 0, 3, 10});

    /* From the start: the covering entry stays, moved up. */
    assert_int_equal(leader_epoch_assign(&c, 7, 30), 1);
    assert_int_equal(leader_epoch_truncate_from_start(&c, 0), 0);
    assert_int_equal(leader_epoch_truncate_from_start(&c, 12), 1);
    assert_entries(&c, 2, (uint64_t[]){3, 12, 7, 30});
    assert_int_equal(leader_epoch_truncate_from_start(&c, 30), 1); /* one starts there */
    assert_entries(&c, 1, (uint64_t[]){7, 30});
    assert_int_equal(leader_epoch_truncate_from_start(&c, 99), 1);
    assert_entries(&c, 1, (uint64_t[]){7, 99});
    leader_epoch_free(&c);
}

static void test_checkpoint_codec(void **state)
{
    (void)state;
    struct leader_epoch_cache c, d;
    char *text;
    size_t len;
    leader_epoch_init(&c);
    leader_epoch_init(&d);
    assert_int_equal(leader_epoch_assign(&c, 0, 0), 1);
    assert_int_equal(leader_epoch_assign(&c, 7, 1234), 1);
    assert_int_equal(leader_epoch_assign(&c, LEADER_EPOCH_MAX, (uint64_t)INT64_MAX), 1);
    assert_int_equal(leader_epoch_encode(&c, &text, &len), 0);
    const char *head = "1\n3\n0 0\n7 1234\n2147483647 9223372036854775807\n";
    assert_memory_equal(text, head, strlen(head));
    assert_int_equal(len, strlen(head) + 17);
    assert_int_equal(leader_epoch_decode(text, len, &d), 0);
    assert_true(leader_epoch_equal(&c, &d));
    /* Every truncation and every flipped bit is refused, d unchanged. */
    for (size_t k = 0; k < len; k++)
        assert_int_equal(leader_epoch_decode(text, k, &d), -EBADMSG);
    for (size_t k = 0; k < len; k++)
        for (int bit = 0; bit < 8; bit++) {
            text[k] ^= (char)(1 << bit);
            assert_int_equal(leader_epoch_decode(text, len, &d), -EBADMSG);
            text[k] ^= (char)(1 << bit);
        }
    assert_true(leader_epoch_equal(&c, &d));
    free(text);

    /* Well-formed checksums over bad contents: each refused. */
    static const char *const bad[] = {
        "0\n0\n",               /* Kafka's version 0 has no checksum line */
        "1\n2\n1 5\n1 6\n",     /* epochs not increasing */
        "1\n2\n1 5\n2 5\n",     /* offsets not increasing */
        "1\n1\n01 5\n",         /* leading zero */
        "1\n1\n1  5\n",         /* two spaces */
        "1\n1\n-1 5\n",         /* sign */
        "1\n1\n2147483648 5\n", /* epoch past int32 */
        "1\n1\n1 9223372036854775808\n",
        "1\n2\n1 5\n",   /* fewer entries than it says */
        "1\n0\n1 5\n",   /* more */
        "1\n1048577\n",  /* more than the cache holds */
        "1\n1\n1 5\r\n", /* CRLF */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        char buf[256];
        size_t n = strlen(bad[i]);
        memcpy(buf, bad[i], n);
        snprintf(buf + n, sizeof(buf) - n, "%016" PRIx64 "\n", (uint64_t)XXH3_64bits(buf, n));
        assert_int_equal(leader_epoch_decode(buf, n + 17, &d), -EBADMSG);
    }
    /* and the good one of the same shape passes */
    char ok[64] = "1\n1\n1 5\n";
    size_t n = strlen(ok);
    snprintf(ok + n, sizeof(ok) - n, "%016" PRIx64 "\n", (uint64_t)XXH3_64bits(ok, n));
    assert_int_equal(leader_epoch_decode(ok, n + 17, &d), 0);
    assert_entries(&d, 1, (uint64_t[]){1, 5});
    leader_epoch_free(&c);
    leader_epoch_free(&d);
}

/* ---- 2. epochs at a partition ---- */

static char *read_text(const char *dir, const char *name)
{
    char path[512];
    size_t len;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    uint8_t *b = slurp(path, &len);
    if (b)
        b[len] = 0;
    return (char *)b;
}

static int exists(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static void test_epochs_assigned_written_reloaded(void **state)
{
    struct fx *f = *state;
    const char *dir = sub(f, "p");
    struct partition *p = open_part(dir, 1 << 20);
    struct partition_info pi;
    uint32_t e;
    /* Single-node history: no checkpoint, epoch 0 on every batch. */
    append1(p, "a\n");
    assert_false(exists(dir, LEADER_EPOCH_FILE));
    assert_int_equal(partition_latest_epoch(p, &e), -ENOENT);
    /* A leader records its epoch at its log end; later appends carry it. */
    assert_int_equal(partition_assign_epoch(p, 3, 2), -EINVAL); /* past the end */
    assert_int_equal(partition_assign_epoch(p, LEADER_EPOCH_MAX + 1u, 1), -EINVAL);
    assert_false(exists(dir, LEADER_EPOCH_FILE));
    assert_int_equal(partition_assign_epoch(p, 3, 1), 0);
    append1(p, "b\n");
    assert_int_equal(partition_assign_epoch(p, 5, 2), 0);
    append1(p, "c\n");
    partition_info(p, &pi);
    assert_int_equal(pi.leader_epoch, 5);
    struct recs d;
    assert_int_equal(fetch_all(p, 0, &d), 0);
    assert_int_equal(d.n, 3);
    assert_int_equal(d.epoch[0], 0);
    assert_int_equal(d.epoch[1], 3);
    assert_int_equal(d.epoch[2], 5);
    char *t = read_text(dir, LEADER_EPOCH_FILE);
    assert_non_null(t);
    assert_memory_equal(t, "1\n2\n3 1\n5 2\n", 12);
    free(t);
    assert_false(exists(dir, LEADER_EPOCH_FILE ".tmp"));
    partition_close(p);

    p = open_part(dir, 1 << 20);
    uint64_t end;
    assert_int_equal(partition_end_offset_for_epoch(p, 3, &e, &end), 0);
    assert_int_equal(e, 3);
    assert_int_equal(end, 2);
    assert_int_equal(partition_end_offset_for_epoch(p, 5, &e, &end), 0);
    assert_int_equal(end, 3);
    assert_int_equal(partition_end_offset_for_epoch(p, 1, &e, &end), 0);
    assert_int_equal(e, 1);
    assert_int_equal(end, 1);
    append1(p, "d\n");
    assert_int_equal(fetch_all(p, 3, &d), 0);
    assert_int_equal(d.epoch[0], 5); /* the stamp survives the reopen */
    /* PARTITION_LOG_END: the end as the lock finds it (4 here). */
    assert_int_equal(partition_assign_epoch(p, 6, PARTITION_LOG_END), 0);
    assert_int_equal(partition_end_offset_for_epoch(p, 5, &e, &end), 0);
    assert_int_equal(end, 4);

    /* Truncation: the checkpoint loses the epochs from the cut on. */
    assert_int_equal(partition_truncate(p, 2), 0);
    assert_int_equal(partition_latest_epoch(p, &e), 0);
    assert_int_equal(e, 3);
    t = read_text(dir, LEADER_EPOCH_FILE);
    assert_memory_equal(t, "1\n1\n3 1\n", 8);
    free(t);
    append1(p, "e\n");
    assert_int_equal(fetch_all(p, 2, &d), 0);
    assert_int_equal(d.epoch[0], 3);
    partition_close(p);
}

static void test_epochs_trimmed_or_rebuilt_at_open(void **state)
{
    struct fx *f = *state;
    const char *dir = sub(f, "p");
    struct partition *p = open_part(dir, 1 << 20);
    assert_int_equal(partition_assign_epoch(p, 2, 0), 0);
    append1(p, "a\n");
    assert_int_equal(partition_assign_epoch(p, 4, 1), 0);
    append1(p, "b\n");
    assert_int_equal(partition_sync(p), 0);
    partition_close(p);

    /* A crash after the checkpoint named epochs the log then lost. */
    struct leader_epoch_cache c;
    leader_epoch_init(&c);
    assert_int_equal(leader_epoch_assign(&c, 2, 0), 1);
    assert_int_equal(leader_epoch_assign(&c, 4, 1), 1);
    assert_int_equal(leader_epoch_assign(&c, 6, 2), 1); /* at the end: kept */
    assert_int_equal(leader_epoch_assign(&c, 7, 9), 1); /* past it: trimmed */
    assert_int_equal(leader_epoch_store(dir, &c), 0);
    p = open_part(dir, 1 << 20);
    uint32_t e;
    assert_int_equal(partition_latest_epoch(p, &e), 0);
    assert_int_equal(e, 6);
    char *t = read_text(dir, LEADER_EPOCH_FILE);
    assert_memory_equal(t, "1\n3\n2 0\n4 1\n6 2\n", 16); /* rewritten */
    free(t);
    partition_close(p);

    /* A damaged checkpoint: rebuilt from the batch headers. */
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, LEADER_EPOCH_FILE);
    int fd = open(path, O_WRONLY);
    assert_int_equal(pwrite(fd, "9", 1, 4), 1);
    close(fd);
    p = open_part(dir, 1 << 20);
    uint64_t end;
    assert_int_equal(partition_end_offset_for_epoch(p, 2, &e, &end), 0);
    assert_int_equal(end, 1);
    assert_int_equal(partition_latest_epoch(p, &e), 0);
    assert_int_equal(e, 4);
    t = read_text(dir, LEADER_EPOCH_FILE);
    assert_memory_equal(t, "1\n2\n2 0\n4 1\n", 12);
    free(t);
    partition_close(p);
    leader_epoch_free(&c);
}

static void test_epochs_kept_across_retention_and_compaction(void **state)
{
    struct fx *f = *state;
    const char *dir = sub(f, "p");
    struct partition *p = open_part(dir, 100);
    char v[32];
    assert_int_equal(partition_assign_epoch(p, 1, 0), 0);
    for (int i = 0; i < 10; i++) {
        snprintf(v, sizeof(v), "a%d:one-%d\n", i % 3, i);
        const char *vals[] = {v};
        append_batch_of(p, vals, 1, 1);
    }
    assert_int_equal(partition_assign_epoch(p, 2, 10), 0);
    for (int i = 0; i < 10; i++) {
        snprintf(v, sizeof(v), "b%d:two-%d\n", i % 3, i);
        const char *vals[] = {v};
        append_batch_of(p, vals, 1, 1);
    }
    struct partition_info pi;
    partition_info(p, &pi);
    assert_true(pi.segments > 4);

    /* Compaction keeps each kept record's epoch. */
    static const struct compaction_rules rules = {
        .key_sep = ":", .key_sep_len = 1, .delete_retention_ms = 1000, .min_dirty_ratio = 0.0};
    struct compaction_result res;
    assert_int_equal(compaction_run(p, &rules, 2000, &res), 1);
    struct recs d;
    assert_int_equal(fetch_all(p, 0, &d), 0);
    assert_true(d.n < 20);
    assert_int_equal(d.off[0], 7); /* a0..a2 of epoch 1 survive */
    for (size_t i = 0; i < d.n; i++)
        assert_int_equal(d.epoch[i], d.off[i] < 10 ? 1 : 2);
    /* The rebuild from batches (a damaged checkpoint) sees them too. */
    partition_close(p);
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, LEADER_EPOCH_FILE);
    truncate(path, 3);
    p = open_part(dir, 100);
    uint32_t e;
    uint64_t end;
    assert_int_equal(partition_end_offset_for_epoch(p, 1, &e, &end), 0);
    assert_int_equal(e, 1);
    assert_true(end >= 10 && end <= 17); /* where the first kept record of epoch 2 is */

    /* Retention: the entry covering the new log start moves up to it. */
    partition_info(p, &pi);
    assert_int_equal(partition_delete_head(p, 2, NULL), 0);
    partition_info(p, &pi);
    assert_true(pi.start_offset > 0 && pi.start_offset < 10);
    assert_int_equal(partition_end_offset_for_epoch(p, 1, &e, &end), 0);
    assert_int_equal(e, 1);
    assert_int_equal(partition_end_offset_for_epoch(p, 0, &e, &end), 0);
    assert_int_equal(e, 0);
    assert_int_equal(end, pi.start_offset); /* older epochs end at the log start */
    assert_int_equal(partition_delete_head(p, 100, NULL), 0); /* all closed segments */
    partition_info(p, &pi);
    assert_true(pi.start_offset > 10);
    assert_int_equal(partition_end_offset_for_epoch(p, 1, &e, &end), 0);
    assert_int_equal(e, 1);
    assert_int_equal(end, pi.start_offset);
    assert_int_equal(partition_latest_epoch(p, &e), 0);
    assert_int_equal(e, 2);
    partition_close(p);
    p = open_part(dir, 100); /* the file still has the old entries: trimmed the same way */
    assert_int_equal(partition_end_offset_for_epoch(p, 1, &e, &end), 0);
    assert_int_equal(end, pi.start_offset);
    partition_close(p);
}

/* ---- 3. KIP-101 and KIP-279 ---- */

static struct partition *open_replica(const char *dir)
{
    struct partition *p = open_part(dir, 1 << 20);
    assert_int_equal(partition_hold_high_watermark(p, 0), 0);
    return p;
}

static void test_kip101_restart_keeps_replicated_tail(void **state)
{
    struct fx *f = *state;
    struct partition *a = open_replica(sub(f, "a")), *b = open_replica(sub(f, "b"));
    assert_int_equal(partition_assign_epoch(a, 1, 0), 0);
    append1(a, "m1\n");
    append1(a, "m2\n");
    replicate(b, a);
    /* The leader's high watermark is 2; the follower learned only 1 before
     * it restarted. */
    assert_int_equal(partition_set_high_watermark(a, 2), 0);
    assert_int_equal(partition_set_high_watermark(b, 1), 0);
    partition_close(b);
    b = open_replica(sub(f, "b"));
    assert_int_equal(partition_hold_high_watermark(b, 1), 0);
    /* KIP-101: not truncated to the high watermark, but to where the
     * leader's epoch ends. */
    assert_int_equal(truncate_to_leader(b, a), 1);
    struct partition_info pi;
    partition_info(b, &pi);
    assert_int_equal(pi.end_offset, 2);
    /* The leader dies; the follower leads epoch 2: m2 is not lost. */
    partition_close(a);
    assert_int_equal(partition_assign_epoch(b, 2, 2), 0);
    append1(b, "m3\n");
    assert_int_equal(partition_set_high_watermark(b, 3), 0);
    struct recs d;
    assert_int_equal(fetch_all(b, 0, &d), 0);
    assert_string_equal(d.text, "m1\nm2\nm3\n");
    partition_close(b);
}

/* The leader loses its unflushed tail in a crash; the follower that leads
 * meanwhile writes at those offsets; the old leader, back as follower,
 * truncates its divergent record away. */
static void test_kip101_divergent_tail_truncated(void **state)
{
    struct fx *f = *state;
    char log[512];
    struct partition *a = open_replica(sub(f, "a")), *b = open_replica(sub(f, "b"));
    assert_int_equal(partition_assign_epoch(a, 1, 0), 0);
    append1(a, "m1\n");
    replicate(b, a);
    append1(a, "m2\n"); /* b never fetches it */
    assert_int_equal(partition_sync(b), 0);
    partition_close(b);
    /* b is the leader of epoch 2 (a is down), at its end 1. */
    b = open_replica(sub(f, "b"));
    assert_int_equal(partition_assign_epoch(b, 2, 1), 0);
    append1(b, "m3\n");
    append1(b, "m4\n");
    /* b crashes with a record it never flushed: lost, its batch torn. */
    assert_int_equal(partition_sync(b), 0);
    append1(b, "m5-lost\n");
    partition_close(b);
    seg_path(log, sizeof(log), sub(f, "b"), 0);
    struct stat st;
    assert_int_equal(stat(log, &st), 0);
    assert_int_equal(truncate(log, st.st_size - 40), 0); /* the tail, torn */
    b = open_replica(sub(f, "b"));
    struct partition_info pi;
    partition_info(b, &pi);
    assert_int_equal(pi.end_offset, 3);
    /* a comes back as a follower of b (epoch 2): it asks for epoch 1. */
    assert_int_equal(truncate_to_leader(a, b), 1);
    partition_info(a, &pi);
    assert_int_equal(pi.end_offset, 1); /* m2 went */
    replicate(a, b);
    assert_same_log(a, b);
    struct recs d;
    assert_int_equal(partition_set_high_watermark(a, 3), 0);
    assert_int_equal(fetch_all(a, 0, &d), 0);
    assert_string_equal(d.text, "m1\nm3\nm4\n");
    char la[512], lb[512];
    seg_path(la, sizeof(la), sub(f, "a"), 0);
    seg_path(lb, sizeof(lb), sub(f, "b"), 0);
    assert_files_equal(la, lb);
    uint32_t e;
    assert_int_equal(partition_latest_epoch(a, &e), 0);
    assert_int_equal(e, 2);
    partition_close(a);
    partition_close(b);
}

/* KIP-279's case: leaders change faster than followers catch up. */
static void test_kip279_fast_leader_changes(void **state)
{
    struct fx *f = *state;
    struct partition *a = open_replica(sub(f, "a")), *b = open_replica(sub(f, "b"));
    assert_int_equal(partition_assign_epoch(a, 1, 0), 0);
    append1(a, "m1\n");
    replicate(b, a);
    append1(a, "m2\n");
    /* a dies; b leads epoch 2 and writes m3 at 1; b dies before a fetches. */
    assert_int_equal(partition_assign_epoch(b, 2, 1), 0);
    append1(b, "m3\n");
    /* a comes back and leads epoch 3, writing m4 at 2. */
    assert_int_equal(partition_assign_epoch(a, 3, 2), 0);
    append1(a, "m4\n");
    /* b follows: a knows no epoch 2 and answers epoch 1 ending at 2; b's
     * own epoch 1 ends at 1, so m3 goes (KIP-101 alone kept it). */
    assert_int_equal(truncate_to_leader(b, a), 1);
    replicate(b, a);
    struct recs d;
    assert_int_equal(partition_set_high_watermark(b, 3), 0);
    assert_int_equal(fetch_all(b, 0, &d), 0);
    assert_string_equal(d.text, "m1\nm2\nm4\n");
    assert_same_log(a, b);
    char la[512], lb[512];
    seg_path(la, sizeof(la), sub(f, "a"), 0);
    seg_path(lb, sizeof(lb), sub(f, "b"), 0);
    assert_files_equal(la, lb);
    partition_close(a);
    partition_close(b);
}

/* Several epochs on both sides that the other does not know: the follower
 * does not know the epoch the leader answers with, cuts back to the end of
 * the largest one below it it knows, and asks again. */
static void test_kip279_multiple_epochs_diverge(void **state)
{
    struct fx *f = *state;
    struct partition *fl = open_replica(sub(f, "f")), *l = open_replica(sub(f, "l"));
    char v[16];
    /* f leads epoch 1: offsets 0..4; l gets 0..2 only. */
    assert_int_equal(partition_assign_epoch(fl, 1, 0), 0);
    for (int i = 0; i < 5; i++) {
        snprintf(v, sizeof(v), "e1-%d\n", i);
        append1(fl, v);
        if (i == 2)
            replicate(l, fl);
    }
    /* l leads epoch 2 (f away): 3..5. */
    assert_int_equal(partition_assign_epoch(l, 2, 3), 0);
    for (int i = 3; i < 6; i++) {
        snprintf(v, sizeof(v), "e2-%d\n", i);
        append1(l, v);
    }
    /* f leads epoch 3 at its end 5 (l away): 5..6. */
    assert_int_equal(partition_assign_epoch(fl, 3, 5), 0);
    append1(fl, "e3-5\n");
    append1(fl, "e3-6\n");
    /* l leads epoch 4 at 6: 6..7. */
    assert_int_equal(partition_assign_epoch(l, 4, 6), 0);
    append1(l, "e4-6\n");
    append1(l, "e4-7\n");
    /* f follows l: epoch 3 is unknown at l, which answers (2, 6); f knows no
     * epoch 2: to the end of its epoch 1 there (5), then asks for 1: (1, 3). */
    assert_int_equal(truncate_to_leader(fl, l), 2);
    struct partition_info pi;
    partition_info(fl, &pi);
    assert_int_equal(pi.end_offset, 3);
    replicate(fl, l);
    assert_same_log(fl, l);
    struct recs d;
    assert_int_equal(partition_set_high_watermark(fl, 8), 0);
    assert_int_equal(fetch_all(fl, 0, &d), 0);
    assert_string_equal(d.text, "e1-0\ne1-1\ne1-2\ne2-3\ne2-4\ne2-5\ne4-6\ne4-7\n");
    assert_int_equal(d.epoch[7], 4);
    uint32_t e;
    uint64_t end;
    assert_int_equal(partition_end_offset_for_epoch(fl, 2, &e, &end), 0);
    assert_int_equal(end, 6);
    char a[512], b[512];
    seg_path(a, sizeof(a), sub(f, "f"), 0);
    seg_path(b, sizeof(b), sub(f, "l"), 0);
    assert_files_equal(a, b);
    partition_close(fl);
    partition_close(l);
}

/* ---- 4. the high watermark ---- */

static void test_hw_hides_what_is_past_it(void **state)
{
    struct fx *f = *state;
    struct partition *p = open_part(sub(f, "p"), 1 << 20);
    struct partition_info pi;
    struct partition_view v0, v;
    char buf[256];
    uint64_t pos, off;
    append1(p, "aa\n");
    /* Single-node mode: the high watermark is the log end. */
    partition_info(p, &pi);
    assert_int_equal(pi.high_watermark, 1);
    assert_int_equal(pi.hw_pos, 3);
    assert_int_equal(partition_set_high_watermark(p, 0), 0); /* a no-op while it follows */
    partition_info(p, &pi);
    assert_int_equal(pi.high_watermark, 1);

    assert_int_equal(partition_hold_high_watermark(p, 1), 0);
    partition_current_view(p, &v0);
    partition_view_hold(p, &v0);
    const char *three[] = {"bb\n", "cc\n", "dd\n"};
    append_batch_of(p, three, 3, 0); /* offsets 1..3 */
    append_ts = 2000;
    append1(p, "ee\n"); /* 4 */
    append_ts = 1000;
    partition_info(p, &pi);
    assert_int_equal(pi.end_offset, 5);
    assert_int_equal(pi.high_watermark, 1);
    assert_int_equal(pi.view_bytes, 3);
    /* Every read path stops at it. */
    assert_int_equal(read_stream(p, buf, sizeof(buf)), 3);
    assert_string_equal(buf, "aa\n");
    assert_int_equal(partition_view_size(p, &v0), 3);
    struct partition_cursor c;
    partition_cursor_init(&c);
    assert_int_equal(partition_view_read(p, &c, &v0, 0, buf, sizeof(buf)), 3);
    assert_int_equal(partition_view_read(p, &c, &v0, 3, buf, sizeof(buf)), 0);
    struct recs d;
    assert_int_equal(fetch_all(p, 0, &d), 0);
    assert_int_equal(d.n, 1);
    assert_int_equal(fetch_all(p, 1, &d), 0);
    assert_int_equal(d.n, 0);
    assert_int_equal(partition_offset_pos(p, 3, &pos), 0);
    assert_int_equal(pos, 3);
    assert_int_equal(partition_time_offset(p, 1000, &off), 0);
    assert_int_equal(off, 0);
    assert_int_equal(partition_time_offset(p, 1500, &off), 0);
    assert_int_equal(off, 1); /* offset 4 is past it: the high watermark */
    assert_int_equal(partition_view_at_offset(p, 4, &v), 0);
    assert_int_equal(v.shift, 3);
    assert_int_equal(partition_view_size(p, &v), 0);

    /* Moved inside the 3-record batch: exactly the records below it. */
    assert_int_equal(partition_set_high_watermark(p, 3), 0);
    partition_info(p, &pi);
    assert_int_equal(pi.high_watermark, 3);
    assert_int_equal(pi.hw_pos, 9);
    assert_int_equal(read_stream(p, buf, sizeof(buf)), 9);
    assert_string_equal(buf, "aa\nbb\ncc\n");
    assert_int_equal(partition_view_size(p, &v0), 9);
    assert_int_equal(partition_view_read(p, &c, &v0, 3, buf, sizeof(buf)), 6);
    assert_memory_equal(buf, "bb\ncc\n", 6);
    assert_int_equal(fetch_all(p, 0, &d), 0);
    assert_int_equal(d.n, 3);
    assert_int_equal(partition_view_at_offset(p, 4, &v), 0);
    assert_int_equal(v.shift, 9);
    assert_int_equal(partition_offset_pos(p, 2, &pos), 0);
    assert_int_equal(pos, 6);

    /* Never down (but by hold), never past the end. */
    assert_int_equal(partition_set_high_watermark(p, 2), 0);
    partition_info(p, &pi);
    assert_int_equal(pi.high_watermark, 3);
    assert_int_equal(partition_set_high_watermark(p, 99), 0);
    partition_info(p, &pi);
    assert_int_equal(pi.high_watermark, 5);
    assert_int_equal(pi.hw_pos, 15);
    assert_int_equal(partition_view_size(p, &v0), 15);
    assert_int_equal(partition_hold_high_watermark(p, 2), 0);
    partition_info(p, &pi);
    assert_int_equal(pi.high_watermark, 2);
    assert_int_equal(pi.view_bytes, 6);

    /* Truncation brings it down with the end; retention stays below it. */
    assert_int_equal(partition_truncate(p, 1), 0);
    partition_info(p, &pi);
    assert_int_equal(pi.high_watermark, 1);
    assert_int_equal(pi.hw_pos, 3);
    /* Back to following the end. */
    append1(p, "ff\n");
    partition_info(p, &pi);
    assert_int_equal(pi.high_watermark, 1);
    partition_follow_end(p);
    partition_info(p, &pi);
    assert_int_equal(pi.high_watermark, 2);
    assert_int_equal(read_stream(p, buf, sizeof(buf)), 6);
    assert_string_equal(buf, "aa\nff\n");
    partition_cursor_free(&c);
    partition_view_release(p, &v0);
    partition_close(p);
}

static void test_hw_bounds_retention_and_compaction(void **state)
{
    struct fx *f = *state;
    struct partition *p = open_part(sub(f, "p"), 60);
    struct partition_info pi;
    assert_int_equal(partition_hold_high_watermark(p, 0), 0);
    for (int i = 0; i < 12; i++) {
        const char *vals[] = {i % 2 ? "k:1\n" : "k:2\n"};
        append_batch_of(p, vals, 1, 1);
    }
    partition_info(p, &pi);
    assert_true(pi.segments >= 6);
    /* Nothing past the high watermark: retention removes nothing. */
    size_t removed = 9;
    assert_int_equal(partition_delete_head(p, 100, &removed), 0);
    assert_int_equal(removed, 0);
    static const struct compaction_rules rules = {
        .key_sep = ":", .key_sep_len = 1, .delete_retention_ms = 1000, .min_dirty_ratio = 0.0};
    struct compaction_result res;
    assert_int_equal(compaction_run(p, &rules, 2000, &res), 0);
    /* Up to offset 4: only the segments wholly below it. */
    assert_int_equal(partition_set_high_watermark(p, 4), 0);
    assert_int_equal(partition_delete_head(p, 100, &removed), 0);
    partition_info(p, &pi);
    assert_true(removed >= 1);
    assert_true(pi.start_offset <= 4);
    assert_int_equal(partition_set_high_watermark(p, 12), 0);
    assert_int_equal(compaction_run(p, &rules, 2000, &res), 1);
    partition_close(p);
}

/* ---- 5. raw fetch ---- */

static void test_fetch_raw_verbatim(void **state)
{
    struct fx *f = *state;
    const char *dir = sub(f, "p");
    struct partition_settings st = settings(300);
    struct partition *p;
    assert_int_equal(partition_open(dir, &st, &p), 0);
    const char *two[] = {"a1\n", "a2\n"};
    append_batch_of(p, two, 2, 0); /* 0..1 */
    st.codec = BATCH_CODEC_LZ4;
    partition_set_settings(p, &st);
    for (int i = 0; i < 10; i++)
        append1(p, "lz4 lz4 lz4 lz4 lz4 lz4 lz4 lz4\n"); /* 2..11 */
    partition_info(p, &(struct partition_info){0});
    struct partition_info pi;
    partition_info(p, &pi);
    assert_true(pi.segments >= 3);
    char log[512];
    size_t flen;
    seg_path(log, sizeof(log), dir, 0);
    uint8_t *file = slurp(log, &flen);

    struct collect c = {0};
    struct raw_fetch rf;
    /* From offset 1 (inside the first batch): the batch that holds it. */
    ssize_t n = fetch_raw(p, 1, UINT64_MAX, 1 << 20, &c, &rf);
    assert_true(n > 0);
    assert_int_equal(c.delivered, 1);
    assert_true((size_t)n > flen); /* more than one segment */
    assert_memory_equal(c.buf, file, flen);
    assert_int_equal(rf.next_offset, 12);
    assert_int_equal(rf.batches, 11);
    assert_int_equal(rf.log_start_offset, 0);
    assert_int_equal(rf.log_end_offset, 12);
    assert_int_equal(rf.log_end_pos, pi.end_pos);
    /* lz4 stays compressed: the batches are what the files hold. */
    struct batch_header h;
    assert_int_equal(batch_header_decode(c.buf + flen, &h), 0);
    assert_int_equal(h.codec, BATCH_CODEC_LZ4);
    assert_int_equal(batch_verify(c.buf + flen, h.length), 0);
    /* A follower takes them all in one append and ends up the same. */
    struct partition *fl = open_part(sub(f, "f"), 300);
    assert_int_equal(partition_append_batch(fl, c.buf, c.len), 0);
    assert_same_log(p, fl);
    partition_close(fl);

    /* max_offset: only whole batches below it; max_bytes: whole batches,
     * but always the first. */
    n = fetch_raw(p, 0, 3, 1 << 20, &c, &rf);
    assert_int_equal(rf.batches, 2);
    assert_int_equal(rf.next_offset, 3);
    n = fetch_raw(p, 0, 1, 1 << 20, &c, &rf);
    assert_int_equal(n, 0); /* the first batch ends past 1 */
    assert_int_equal(c.delivered, 0);
    n = fetch_raw(p, 0, UINT64_MAX, 1, &c, &rf);
    assert_int_equal(rf.batches, 1);
    assert_int_equal(rf.next_offset, 2);
    n = fetch_raw(p, 12, UINT64_MAX, 1 << 20, &c, &rf); /* at the end: nothing yet */
    assert_int_equal(n, 0);
    /* Out of range: ERANGE, with the log's bounds for the follower. */
    assert_int_equal(fetch_raw(p, 13, UINT64_MAX, 1 << 20, &c, &rf), -ERANGE);
    assert_int_equal(rf.log_end_offset, 12);
    assert_int_equal(partition_delete_head(p, 1, NULL), 0);
    partition_info(p, &pi);
    assert_int_equal(fetch_raw(p, 0, UINT64_MAX, 1 << 20, &c, &rf), -ERANGE);
    assert_int_equal(rf.log_start_offset, pi.start_offset);
    assert_int_equal(rf.log_start_pos, pi.start_pos);
    assert_int_equal(c.len, 0);
    free(file);
    partition_close(p);

    /* Damage below the recovery point: EIO there, the batches before it
     * still served. */
    p = open_part(sub(f, "d"), 1 << 20);
    for (int i = 0; i < 4; i++)
        append1(p, "xyz\n");
    assert_int_equal(partition_sync(p), 0);
    partition_close(p);
    seg_path(log, sizeof(log), sub(f, "d"), 0);
    int fd = open(log, O_WRONLY);
    assert_int_equal(pwrite(fd, "Q", 1, 2 * 70 + 68), 1); /* a value byte of batch 2 */
    close(fd);
    p = open_part(sub(f, "d"), 1 << 20);
    n = fetch_raw(p, 0, UINT64_MAX, 1 << 20, &c, &rf);
    assert_int_equal(n, 140);
    assert_int_equal(rf.next_offset, 2);
    assert_int_equal(fetch_raw(p, 2, UINT64_MAX, 1 << 20, &c, &rf), -EIO);
    n = fetch_raw(p, 3, UINT64_MAX, 1 << 20, &c, &rf);
    assert_int_equal(n, 70);
    free(c.buf);
    partition_close(p);
}

/* A follower whose log is damaged cuts it where the damage starts
 * (partition_first_bad, partition_truncate: the bad range goes with it) and
 * fetches the rest again: byte-identical to the leader, also after a
 * reopen. The damage sits in an older segment, below the recovery point. */
static void test_truncate_at_damage(void **state)
{
    struct fx *f = *state;
    struct partition *l = open_part(sub(f, "l"), 150), *d = open_part(sub(f, "d"), 150);
    for (int i = 0; i < 6; i++)
        append1(l, "xyz\n"); /* 70-byte batches, two a segment */
    while (replicate_once(d, l, 1 << 20))
        ;
    uint64_t bad;
    assert_int_equal(partition_first_bad(d, &bad), -ENOENT);
    assert_int_equal(partition_sync(d), 0);
    partition_close(d);
    char log[512];
    seg_path(log, sizeof(log), sub(f, "d"), 2);
    int fd = open(log, O_WRONLY);
    assert_int_equal(pwrite(fd, "Q", 1, 70 + 68), 1); /* a value byte of batch 3 */
    close(fd);
    d = open_part(sub(f, "d"), 150);
    struct collect c = {0};
    struct raw_fetch rf;
    assert_int_equal(fetch_raw(d, 3, UINT64_MAX, 1 << 20, &c, &rf), -EIO); /* found */
    struct partition_info pi;
    partition_info(d, &pi);
    assert_int_equal(pi.bad_batches, 1);
    assert_int_equal(partition_first_bad(d, &bad), 0);
    assert_int_equal(bad, 3);
    assert_int_equal(partition_truncate(d, bad), 0);
    partition_info(d, &pi);
    assert_int_equal(pi.bad_batches, 0);
    assert_int_equal(pi.end_offset, 3);
    assert_int_equal(partition_first_bad(d, &bad), -ENOENT);
    while (replicate_once(d, l, 1 << 20))
        ;
    assert_same_log(l, d);
    partition_close(d);
    d = open_part(sub(f, "d"), 150);
    partition_info(d, &pi);
    assert_same_log(l, d);
    partition_info(d, &pi);
    assert_int_equal(pi.bad_batches, 0);
    free(c.buf);
    partition_close(d);
    partition_close(l);
}

/* ---- 6. follower appends ---- */

static void test_append_batches_all_or_nothing(void **state)
{
    struct fx *f = *state;
    struct partition *l = open_part(sub(f, "l"), 200);
    assert_int_equal(partition_assign_epoch(l, 4, 0), 0);
    for (int i = 0; i < 4; i++)
        append1(l, "0123456789012345678901234567890123456789\n");
    assert_int_equal(partition_assign_epoch(l, 6, 4), 0);
    for (int i = 0; i < 4; i++)
        append1(l, "0123456789012345678901234567890123456789\n");
    struct collect c = {0};
    struct raw_fetch rf;
    ssize_t n = fetch_raw(l, 0, UINT64_MAX, 1 << 20, &c, &rf);
    assert_int_equal(rf.batches, 8);
    size_t one = (size_t)n / 8;

    const char *fdir = sub(f, "f");
    struct partition *fl = open_part(fdir, 200);
    struct partition_info before, after;
    partition_info(fl, &before);
    /* Damage in the 7th batch, a torn last one, a batch that does not follow
     * on (the 2nd twice), an empty input: nothing of them goes in. */
    c.buf[6 * one + 70] ^= 1;
    assert_int_equal(partition_append_batch(fl, c.buf, c.len), -EBADMSG);
    c.buf[6 * one + 70] ^= 1;
    assert_int_equal(partition_append_batch(fl, c.buf, c.len - 1), -EBADMSG);
    assert_int_equal(partition_append_batch(fl, c.buf, 0), -EBADMSG);
    uint8_t *twice = malloc(3 * one);
    memcpy(twice, c.buf, 2 * one);
    memcpy(twice + 2 * one, c.buf + one, one);
    assert_int_equal(partition_append_batch(fl, twice, 3 * one), -EINVAL);
    assert_int_equal(partition_append_batch(fl, c.buf + one, one), -EINVAL); /* not at the end */
    {
        /* an epoch no leader gives (Kafka's epochs are int32) */
        struct batch_builder bb;
        const struct iovec *iov;
        int iovcnt;
        size_t blen;
        uint8_t raw[256];
        batch_builder_init(&bb);
        assert_int_equal(batch_builder_add_record(&bb, 2, -1), 0);
        assert_int_equal(batch_builder_add_values(&bb, "x\n", 2), 0);
        assert_int_equal(batch_builder_seal(&bb, BATCH_CODEC_NONE, 0, 0, 1, LEADER_EPOCH_MAX + 1u,
                                            &iov, &iovcnt, &blen),
                         0);
        size_t at = 0;
        for (int i = 0; i < iovcnt; i++) {
            memcpy(raw + at, iov[i].iov_base, iov[i].iov_len);
            at += iov[i].iov_len;
        }
        assert_int_equal(partition_append_batch(fl, raw, blen), -EINVAL);
        batch_builder_free(&bb);
    }
    free(twice);
    partition_info(fl, &after);
    assert_int_equal(after.end_offset, 0);
    assert_false(exists(fdir, LEADER_EPOCH_FILE));

    /* A write that fails half way (the 6th batch's segment cannot be
     * made, after five batches and four rolls): all of them are taken back. */
    char blocker[512];
    seg_path(blocker, sizeof(blocker), fdir, 5);
    assert_int_equal(mkdir(blocker, 0755), 0);
    assert_int_equal(partition_append_batch(fl, c.buf, c.len), -EISDIR);
    assert_int_equal(rmdir(blocker), 0);
    partition_info(fl, &after);
    assert_int_equal(after.end_offset, 0);
    assert_int_equal(after.segments, 1);
    assert_int_equal(after.stored_bytes, 0);
    for (uint64_t base = 1; base < 5; base++) {
        char name[64];
        snprintf(name, sizeof(name), "%020" PRIu64 ".log", base);
        assert_false(exists(fdir, name));
    }
    uint32_t e;
    assert_int_equal(partition_latest_epoch(fl, &e), -ENOENT);
    struct recs d;
    assert_int_equal(fetch_all(fl, 0, &d), 0);
    assert_int_equal(d.n, 0);
    /* Then the whole sequence goes in, epochs with it. */
    assert_int_equal(partition_append_batch(fl, c.buf, c.len), 0);
    assert_same_log(l, fl);
    char *t = read_text(fdir, LEADER_EPOCH_FILE);
    assert_memory_equal(t, "1\n2\n4 0\n6 4\n", 12);
    free(t);
    assert_int_equal(partition_latest_epoch(fl, &e), 0);
    assert_int_equal(e, 6);
    partition_close(fl);
    fl = open_part(fdir, 200);
    partition_info(fl, &after);
    assert_int_equal(after.bad_batches, 0);
    assert_same_log(l, fl);
    free(c.buf);
    partition_close(fl);
    partition_close(l);
}

/* A compacted leader's log has gaps in offsets and, between segments, in
 * positions: a follower marked compacted takes them and ends the same. */
static void test_follower_of_compacted_leader(void **state)
{
    struct fx *f = *state;
    struct partition *l = open_part(sub(f, "l"), 400);
    char v[32];
    for (int i = 0; i < 30; i++) {
        if (i % 3)
            snprintf(v, sizeof(v), "k%d:%d\n", i % 4, i);
        else
            snprintf(v, sizeof(v), "none %d\n", i); /* keyless: kept */
        const char *vals[] = {v};
        append_batch_of(l, vals, 1, 1);
    }
    static const struct compaction_rules rules = {
        .key_sep = ":", .key_sep_len = 1, .delete_retention_ms = 1000, .min_dirty_ratio = 0.0};
    struct compaction_result res;
    assert_int_equal(compaction_run(l, &rules, 2000, &res), 1);
    struct partition_info li;
    partition_info(l, &li);
    assert_true(li.compacted);

    assert_int_equal(li.start_offset, 0);
    /* gaps: offsets compaction removed, and stream positions between its
     * segments (the view counts only the values that are there) */
    assert_true(li.end_pos - li.start_pos > li.view_bytes);
    struct partition *fl = open_part(sub(f, "f"), 400);
    struct collect c = {0};
    struct raw_fetch rf;
    assert_true(fetch_raw(l, 0, UINT64_MAX, 1 << 20, &c, &rf) > 0);
    assert_true(rf.compacted);
    assert_int_equal(partition_append_batch(fl, c.buf, c.len), -EINVAL); /* gaps: refused */
    free(c.buf);
    replicate(fl, l); /* marks it compacted, then takes them */
    assert_same_log(l, fl);
    struct recs a, b;
    assert_int_equal(fetch_all(l, 0, &a), 0);
    assert_int_equal(fetch_all(fl, 0, &b), 0);
    assert_int_equal(a.n, b.n);
    assert_true(a.n < li.end_offset);
    assert_memory_equal(a.off, b.off, a.n * sizeof(*a.off));
    assert_string_equal(a.text, b.text);
    char sa[8192], sb[8192];
    read_stream(l, sa, sizeof(sa));
    read_stream(fl, sb, sizeof(sb));
    assert_string_equal(sa, sb);
    partition_close(fl);
    fl = open_part(sub(f, "f"), 400);
    struct partition_info fi;
    partition_info(fl, &fi);
    assert_int_equal(fi.bad_batches, 0);
    assert_same_log(l, fl);
    partition_close(fl);
    partition_close(l);
}

/* ---- 7. reset ---- */

/* A leader whose log start passed the follower's end (retention). */
static struct partition *leader_past(struct fx *f, const char *name)
{
    struct partition *l = open_part(sub(f, name), 150);
    char v[32];
    assert_int_equal(partition_assign_epoch(l, 1, 0), 0);
    for (int i = 0; i < 20; i++) {
        snprintf(v, sizeof(v), "record %02d\n", i);
        append1(l, v);
        if (i == 9)
            assert_int_equal(partition_assign_epoch(l, 2, 10), 0);
    }
    assert_int_equal(partition_delete_head(l, 4, NULL), 0);
    struct partition_info pi;
    partition_info(l, &pi);
    assert_true(pi.start_offset > 3);
    return l;
}

static void test_reset_to_leader_log_start(void **state)
{
    struct fx *f = *state;
    struct partition *l = leader_past(f, "l");
    const char *fdir = sub(f, "f");
    struct partition *fl = open_part(fdir, 150);
    assert_int_equal(partition_assign_epoch(fl, 1, 0), 0);
    append1(fl, "old 0\n");
    append1(fl, "old 1\n");
    struct partition_view v;
    partition_current_view(fl, &v);
    partition_view_hold(fl, &v);
    struct partition_info fi, li;
    partition_info(fl, &fi);
    struct collect c = {0};
    struct raw_fetch rf;
    assert_int_equal(fetch_raw(l, fi.end_offset, UINT64_MAX, 1 << 20, &c, &rf), -ERANGE);
    assert_int_equal(partition_reset(fl, (uint64_t)INT64_MAX + 1, 0), -EINVAL);
    assert_int_equal(partition_reset(fl, rf.log_start_offset, rf.log_start_pos), 0);
    partition_info(fl, &fi);
    assert_int_equal(fi.start_offset, rf.log_start_offset);
    assert_int_equal(fi.end_offset, rf.log_start_offset);
    assert_int_equal(fi.start_pos, rf.log_start_pos);
    assert_int_equal(fi.end_pos, rf.log_start_pos);
    assert_int_equal(fi.high_watermark, rf.log_start_offset);
    assert_int_equal(fi.segments, 1);
    uint32_t e;
    assert_int_equal(partition_latest_epoch(fl, &e), -ENOENT);
    assert_false(exists(fdir, LEADER_EPOCH_FILE));
    assert_false(exists(fdir, "log-reset"));
    /* An older view reads nothing of the old log. */
    struct partition_cursor cur;
    char buf[64];
    partition_cursor_init(&cur);
    assert_int_equal(partition_view_read(fl, &cur, &v, 0, buf, sizeof(buf)), 0);
    /* Then it follows, and ends byte-identical. */
    replicate(fl, l);
    assert_int_equal(partition_view_read(fl, &cur, &v, 0, buf, sizeof(buf)), -ENODATA);
    partition_cursor_free(&cur);
    partition_view_release(fl, &v);
    assert_same_log(l, fl);
    partition_info(l, &li);
    partition_info(fl, &fi);
    assert_int_equal(fi.end_pos, li.end_pos);
    assert_int_equal(partition_latest_epoch(fl, &e), 0);
    assert_int_equal(e, 2);
    partition_close(fl);
    fl = open_part(fdir, 150);
    partition_info(fl, &fi);
    assert_int_equal(fi.bad_batches, 0);
    assert_same_log(l, fl);
    free(c.buf);
    partition_close(fl);
    partition_close(l);
}

static void test_reset_crash_points(void **state)
{
    struct fx *f = *state;
    struct partition *l = leader_past(f, "l");
    struct partition_info li;
    partition_info(l, &li);
    for (int point = 1; point <= 3; point++) {
        char name[16];
        snprintf(name, sizeof(name), "f%d", point);
        const char *fdir = sub(f, name);
        struct partition *fl = open_part(fdir, 150);
        assert_int_equal(partition_assign_epoch(fl, 1, 0), 0);
        for (int i = 0; i < 5; i++)
            append1(fl, "old\n");
        assert_int_equal(partition_sync(fl), 0);
        partition_reset_crash_point = point;
        assert_int_equal(partition_reset(fl, li.start_offset, li.start_pos), -ECANCELED);
        partition_reset_crash_point = 0;
        /* Until it finishes: no appends, no sync. */
        struct batch_builder b;
        batch_builder_init(&b);
        batch_builder_add_record(&b, 2, -1);
        batch_builder_add_values(&b, "x\n", 2);
        assert_int_equal(partition_append(fl, &b, 1, NULL), -EIO);
        batch_builder_free(&b);
        assert_int_equal(partition_sync(fl), -EIO);
        if (point == 2) {
            /* A retry finishes it. */
            assert_int_equal(partition_reset(fl, li.start_offset, li.start_pos), 0);
        } else {
            partition_close(fl); /* the crash */
            fl = open_part(fdir, 150);
        }
        struct partition_info fi;
        partition_info(fl, &fi);
        assert_int_equal(fi.start_offset, li.start_offset);
        assert_int_equal(fi.end_offset, li.start_offset);
        assert_int_equal(fi.start_pos, li.start_pos);
        assert_int_equal(fi.segments, 1);
        assert_false(exists(fdir, "log-reset"));
        assert_false(exists(fdir, LEADER_EPOCH_FILE));
        replicate(fl, l);
        assert_same_log(l, fl);
        partition_close(fl);
    }
    /* A commit that never renamed is no reset; a damaged one is dropped. */
    const char *fdir = sub(f, "g");
    struct partition *fl = open_part(fdir, 150);
    append1(fl, "kept\n");
    assert_int_equal(partition_sync(fl), 0);
    partition_close(fl);
    char path[512];
    snprintf(path, sizeof(path), "%s/log-reset.tmp", fdir);
    int fd = open(path, O_CREAT | O_WRONLY, 0644);
    assert_int_equal(write(fd, "garbage", 7), 7);
    close(fd);
    snprintf(path, sizeof(path), "%s/log-reset", fdir);
    fd = open(path, O_CREAT | O_WRONLY, 0644);
    assert_int_equal(write(fd, "0123456789012345678901234", 24), 24);
    close(fd);
    fl = open_part(fdir, 150);
    struct partition_info fi;
    partition_info(fl, &fi);
    assert_int_equal(fi.end_offset, 1);
    assert_false(exists(fdir, "log-reset"));
    assert_false(exists(fdir, "log-reset.tmp"));
    partition_close(fl);
    partition_close(l);
}

/* ---- 8. listeners ---- */

struct heard {
    struct partition *p;
    unsigned events[16];
    int n;
    int locked; /* a call came while the partition lock was held */
    struct partition_info seen;
};

static void listen(void *arg, struct partition *p, unsigned events)
{
    struct heard *h = arg;
    assert_ptr_equal(p, h->p);
    if (pthread_mutex_trylock(&p->lock))
        h->locked = 1;
    else
        pthread_mutex_unlock(&p->lock);
    partition_info(p, &h->seen); /* the partition may be called */
    if (h->n < 16)
        h->events[h->n] = events;
    h->n++;
}

static void test_listener_events(void **state)
{
    struct fx *f = *state;
    struct partition *p = open_part(sub(f, "p"), 1 << 20);
    struct heard h = {.p = p};
    partition_set_listener(p, listen, &h);
    append1(p, "a\n");
    assert_int_equal(h.n, 1);
    assert_int_equal(h.events[0], PARTITION_EVENT_APPEND | PARTITION_EVENT_HW);
    assert_int_equal(h.seen.high_watermark, 1);
    /* Held: appends are heard, the readers' end does not move. */
    assert_int_equal(partition_hold_high_watermark(p, 1), 0);
    assert_int_equal(h.n, 1);
    append1(p, "b\n");
    assert_int_equal(h.events[1], PARTITION_EVENT_APPEND);
    assert_int_equal(partition_set_high_watermark(p, 2), 0);
    assert_int_equal(h.events[2], PARTITION_EVENT_HW);
    assert_int_equal(h.seen.high_watermark, 2);
    assert_int_equal(partition_set_high_watermark(p, 2), 0); /* no move: not told */
    assert_int_equal(h.n, 3);
    /* A follower append, a truncation, a reset. */
    struct partition *l = open_part(sub(f, "l"), 1 << 20);
    append1(l, "a\n");
    append1(l, "b\n");
    append1(l, "c\n");
    struct collect c = {0};
    struct raw_fetch rf;
    assert_true(fetch_raw(l, 2, UINT64_MAX, 1 << 20, &c, &rf) > 0);
    assert_int_equal(partition_append_batch(p, c.buf, c.len), 0);
    assert_int_equal(h.events[3], PARTITION_EVENT_APPEND);
    assert_int_equal(partition_truncate(p, 1), 0);
    assert_int_equal(h.events[4], PARTITION_EVENT_TRUNCATE | PARTITION_EVENT_HW);
    assert_int_equal(h.seen.high_watermark, 1);
    assert_int_equal(partition_reset(p, 7, 70), 0);
    assert_int_equal(h.events[5], PARTITION_EVENT_TRUNCATE | PARTITION_EVENT_HW);
    assert_int_equal(h.seen.high_watermark, 7);
    partition_follow_end(p);
    assert_int_equal(h.n, 6); /* already at the end */
    assert_false(h.locked);
    partition_set_listener(p, NULL, NULL);
    append1(p, "c\n");
    assert_int_equal(h.n, 6);
    free(c.buf);
    partition_close(l);
    partition_close(p);
}

struct store_heard {
    struct topic *t[16];
    uint32_t part[16];
    unsigned events[16];
    int n;
};

static void store_listen(void *arg, struct topic *t, uint32_t partition, unsigned events)
{
    struct store_heard *h = arg;
    if (h->n < 16) {
        h->t[h->n] = t;
        h->part[h->n] = partition;
        h->events[h->n] = events;
    }
    h->n++;
}

static void test_store_listeners(void **state)
{
    struct fx *f = *state;
    struct store *s;
    struct topic *a, *b;
    struct store_heard h1 = {0}, h2 = {0};
    assert_int_equal(store_open(sub(f, "data"), 2, &s), 0);
    assert_int_equal(store_create_topic(s, "before", &a), 0);
    assert_int_equal(store_add_listener(s, store_listen, &h1), 0);
    assert_int_equal(store_add_listener(s, store_listen, &h2), 0);
    append1(topic_partition(a, 1), "x\n");
    assert_int_equal(h1.n, 1);
    assert_int_equal(h2.n, 1);
    assert_ptr_equal(h1.t[0], a);
    assert_int_equal(h1.part[0], 1);
    assert_int_equal(h1.events[0], PARTITION_EVENT_APPEND | PARTITION_EVENT_HW);
    /* A topic made later, and partitions a topic grows by. */
    assert_int_equal(store_create_topic(s, "after", &b), 0);
    append1(topic_partition(b, 0), "y\n");
    assert_ptr_equal(h1.t[1], b);
    assert_int_equal(h1.part[1], 0);
    const char line[] = "partitions=4";
    assert_int_equal(topic_config_apply(a, line, sizeof(line) - 1), 0);
    append1(topic_partition(a, 3), "z\n");
    assert_ptr_equal(h1.t[2], a);
    assert_int_equal(h1.part[2], 3);
    assert_int_equal(h2.n, 3);
    for (int i = 2; i < TOPIC_LISTENERS_MAX; i++)
        assert_int_equal(store_add_listener(s, store_listen, &h2), 0);
    assert_int_equal(store_add_listener(s, store_listen, &h2), -ENOSPC);
    topic_put(a);
    topic_put(b);
    store_close(s);
    /* Reopened topics are heard too. */
    struct store_heard h3 = {0};
    assert_int_equal(store_open(sub(f, "data"), 2, &s), 0);
    assert_int_equal(store_add_listener(s, store_listen, &h3), 0);
    a = store_find(s, "before");
    append1(topic_partition(a, 2), "w\n");
    assert_int_equal(h3.n, 1);
    assert_int_equal(h3.part[0], 2);
    topic_put(a);
    store_close(s);
}

/* ---- remote.h: a cache of a leader's committed records at a broker
 * without a replica, filled from FETCH answers by remote_apply ---- */

/* One FETCH answer of leader l for readers (up to its high watermark)
 * from the cache's log end, applied: remote_apply's return, *more. */
static int remote_round(struct partition *cache, struct partition *l, size_t max_bytes, int *more)
{
    struct partition_info ci, li;
    struct raw_fetch rf;
    struct collect c = {0};
    partition_info(cache, &ci);
    partition_info(l, &li);
    ssize_t n = fetch_raw(l, ci.end_offset, li.high_watermark, max_bytes, &c, &rf);
    struct proto_fetch_result res = {
        .error = n < 0 ? (uint32_t)-n : 0,
        .high_watermark = rf.high_watermark,
        .log_start_offset = rf.log_start_offset,
        .log_start_pos = rf.log_start_pos,
        .log_end_offset = rf.log_end_offset,
        .compacted = rf.compacted ? 1 : 0,
        .records = n > 0 ? c.buf : NULL,
        .records_len = n > 0 ? (uint32_t)c.len : 0,
    };
    int e = remote_apply(cache, "t-0", ci.end_offset, &res, more);
    free(c.buf);
    return e;
}

static void remote_fill(struct partition *cache, struct partition *l)
{
    int more = 1;
    for (int i = 0; more; i++) {
        assert_true(i < 1000);
        assert_int_equal(remote_round(cache, l, 100, &more), 0);
    }
}

static void assert_same_view(struct partition *a, struct partition *b)
{
    struct partition_view va, vb;
    partition_current_view(a, &va);
    partition_current_view(b, &vb);
    uint64_t size = partition_view_size(a, &va);
    assert_int_equal(partition_view_size(b, &vb), size);
    char ba[4096], bb[4096];
    struct partition_cursor ca, cb;
    partition_cursor_init(&ca);
    partition_cursor_init(&cb);
    for (uint64_t pos = 0; pos <= size; pos += 7) { /* mid-stream, as dd skip= */
        ssize_t na = partition_view_read(a, &ca, &va, pos, ba, sizeof(ba));
        ssize_t nb = partition_view_read(b, &cb, &vb, pos, bb, sizeof(bb));
        assert_true(na >= 0);
        assert_int_equal(na, nb);
        assert_memory_equal(ba, bb, (size_t)na);
    }
    partition_cursor_free(&ca);
    partition_cursor_free(&cb);
}

static void test_remote_cache_starts_at_leader_log_start(void **state)
{
    struct fx *f = *state;
    struct partition *l = leader_past(f, "l");
    struct partition *cache = open_part(sub(f, "c"), 150);
    /* Empty, below the leader's log start: started afresh there, then
     * filled to the high watermark in small rounds. */
    remote_fill(cache, l);
    assert_same_log(l, cache);
    assert_same_view(l, cache);
    /* Up to date: nothing more, and nothing changes. */
    int more = 1;
    assert_int_equal(remote_round(cache, l, 100, &more), 0);
    assert_int_equal(more, 0);
    /* Only what the leader committed: records past its high watermark
     * wait for it to move. */
    struct partition_info li, ci;
    partition_info(l, &li);
    assert_int_equal(partition_hold_high_watermark(l, li.end_offset), 0);
    append1(l, "uncommitted 1\n");
    append1(l, "uncommitted 2\n");
    remote_fill(cache, l);
    partition_info(cache, &ci);
    assert_int_equal(ci.end_offset, li.end_offset);
    assert_int_equal(ci.high_watermark, ci.end_offset); /* readers see it all */
    assert_int_equal(partition_set_high_watermark(l, li.end_offset + 1), 0);
    remote_fill(cache, l);
    partition_info(cache, &ci);
    assert_int_equal(ci.end_offset, li.end_offset + 1);
    assert_int_equal(partition_set_high_watermark(l, li.end_offset + 2), 0);
    remote_fill(cache, l);
    assert_same_log(l, cache);
    assert_same_view(l, cache);
    /* Retention at the leader past the cache's end: afresh again. */
    for (int i = 0; i < 12; i++)
        append1(l, "more more more\n");
    partition_info(l, &li);
    assert_int_equal(partition_set_high_watermark(l, li.end_offset), 0);
    assert_int_equal(partition_delete_head(l, li.segments - 1, NULL), 0);
    remote_fill(cache, l);
    assert_same_log(l, cache);
    assert_same_view(l, cache);
    partition_close(cache);
    partition_close(l);
}

static void test_remote_cache_diverged_or_refused(void **state)
{
    struct fx *f = *state;
    struct partition *l = leader_past(f, "l");
    struct partition *cache = open_part(sub(f, "c"), 150);
    struct partition_info li, ci;
    partition_info(l, &li);
    /* A cache whose records are not the leader's (another stream
     * position at the same offset): started afresh, then identical. */
    do {
        append1(cache, "zz\n");
        partition_info(cache, &ci);
    } while (ci.end_offset < li.start_offset + 2);
    remote_fill(cache, l);
    assert_same_log(l, cache);
    assert_same_view(l, cache);
    /* A cache past the leader's log end (an unclean leader): afresh. */
    struct partition *l2 = open_part(sub(f, "l2"), 150);
    append1(l2, "short\n");
    remote_fill(cache, l2);
    assert_same_log(l2, cache);
    /* An error answer changes nothing and is returned. */
    struct proto_fetch_result res = {.error = EREMOTE};
    int more = 1;
    partition_info(cache, &ci);
    assert_int_equal(remote_apply(cache, "t-0", ci.end_offset, &res, &more), -EREMOTE);
    assert_int_equal(more, 0);
    /* Damaged records are refused (-EBADMSG), the cache unchanged. */
    uint8_t junk[64];
    memset(junk, 0xab, sizeof(junk));
    res = (struct proto_fetch_result){
        .records = junk, .records_len = sizeof(junk), .high_watermark = ci.end_offset + 1};
    assert_int_equal(remote_apply(cache, "t-0", ci.end_offset, &res, &more), -EBADMSG);
    assert_same_log(l2, cache);
    partition_close(l2);
    partition_close(cache);
    partition_close(l);
}

/* ---- acknowledgements (partition_acks.c) ---- */

struct ack_waiter {
    struct partition *p;
    struct partition_ack ack;
    int done, result;
    pthread_mutex_t lock;
};

static void *ack_wait_main(void *arg)
{
    struct ack_waiter *w = arg;
    int r = partition_wait_acked(w->p, &w->ack);
    pthread_mutex_lock(&w->lock);
    w->result = r;
    w->done = 1;
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

static int ack_waiter_done(struct ack_waiter *w)
{
    pthread_mutex_lock(&w->lock);
    int d = w->done;
    pthread_mutex_unlock(&w->lock);
    return d;
}

/* Waits (10 s at most) until one thread waits in partition_wait_acked
 * having woken more than `checks` times. */
static void ack_waiter_blocked(struct partition *p, uint64_t checks)
{
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        uint32_t waiting;
        uint64_t c;
        partition_ack_waiters(p, &waiting, &c);
        if (waiting == 1 && c >= checks)
            return;
        sched_yield();
        clock_gettime(CLOCK_MONOTONIC, &now);
        assert_true(now.tv_sec - t0.tv_sec < 10);
    }
}

/* Starts a thread waiting for ack and checks that it blocks (a waiter that
 * should block must not have returned). */
static void ack_wait_start(struct ack_waiter *w, pthread_t *t, struct partition *p,
                           const struct partition_ack *ack)
{
    memset(w, 0, sizeof(*w));
    w->p = p;
    w->ack = *ack;
    pthread_mutex_init(&w->lock, NULL);
    assert_int_equal(pthread_create(t, NULL, ack_wait_main, w), 0);
    ack_waiter_blocked(p, 0);
    assert_false(ack_waiter_done(w));
}

/* After a change that must not end the wait: the waiter woke for it,
 * looked, and waits again. */
static void ack_still_waiting(struct ack_waiter *w, uint64_t checks_before)
{
    ack_waiter_blocked(w->p, checks_before + 1);
    assert_false(ack_waiter_done(w));
}

static uint64_t ack_checks(struct partition *p)
{
    uint32_t waiting;
    uint64_t c;
    partition_ack_waiters(p, &waiting, &c);
    return c;
}

static int ack_wait_end(struct ack_waiter *w, pthread_t t)
{
    pthread_join(t, NULL);
    pthread_mutex_destroy(&w->lock);
    return w->result;
}

static int produce_one(struct partition *p, const char *val, struct partition_ack *ack)
{
    struct batch_builder b;
    struct record_ref r = {val, (uint32_t)strlen(val), -1};
    batch_builder_init(&b);
    int e = partition_append_records(p, &b, &r, 1, append_ts, NULL, ack);
    batch_builder_free(&b);
    return e;
}

static void test_acks_wait_for_high_watermark(void **state)
{
    struct fx *f = *state;
    struct partition *p = open_part(sub(f, "p"), 1 << 20);
    struct partition_info pi;
    struct partition_ack ack = {.min_insync = 2};
    struct ack_waiter w;
    pthread_t t;

    /* Single-node mode: no check, no wait (the high watermark is the end). */
    assert_int_equal(produce_one(p, "a\n", &ack), 0);
    assert_int_equal(ack.end_offset, 1);
    assert_int_equal(ack.in_sync, 0);
    assert_int_equal(partition_wait_acked(p, &ack), 0);
    struct produce_acks all = {1, 2};
    struct batch_builder b;
    struct record_ref rr = {"b\n", 2, -1};
    batch_builder_init(&b);
    assert_int_equal(partition_produce(p, &b, &rr, 1, append_ts, &all, NULL), 0);

    /* A replica (held high watermark) that does not lead: refused, nothing appended. */
    assert_int_equal(partition_hold_high_watermark(p, 2), 0);
    assert_int_equal(produce_one(p, "c\n", &ack), -EAGAIN);
    partition_info(p, &pi);
    assert_int_equal(pi.end_offset, 2);

    /* Leading with fewer in sync than min.insync.replicas: EIO, nothing appended. */
    partition_lead(p, 1);
    assert_int_equal(produce_one(p, "c\n", &ack), -EIO);
    assert_int_equal(ack.in_sync, 1);
    assert_int_equal(partition_produce(p, &b, &rr, 1, append_ts, &all, NULL), -EIO);
    partition_info(p, &pi);
    assert_int_equal(pi.end_offset, 2);
    /* acks=1 does not check it. */
    struct produce_acks one = {0, 2};
    assert_int_equal(partition_produce(p, &b, &rr, 1, append_ts, &one, NULL), 0); /* offset 2 */

    /* Enough in sync: appended; the wait ends when the high watermark passes the end. */
    partition_lead(p, 2);
    assert_int_equal(produce_one(p, "d\n", &ack), 0); /* offset 3 */
    assert_int_equal(ack.end_offset, 4);
    assert_int_equal(ack.in_sync, 2);
    ack_wait_start(&w, &t, p, &ack);
    uint64_t checks = ack_checks(p);
    assert_int_equal(partition_set_high_watermark(p, 3), 0); /* not past it yet */
    ack_still_waiting(&w, checks);
    /* An ISR change (the lead call again) is no new term: the wait goes on
     * and ends with 0 below, where a new term would give -EIO. */
    partition_lead(p, 3);
    assert_false(ack_waiter_done(&w));
    assert_int_equal(partition_set_high_watermark(p, 4), 0);
    assert_int_equal(ack_wait_end(&w, t), 0);
    assert_int_equal(partition_wait_acked(p, &ack), 0); /* at once now */
    /* The ISR shrinks below min.insync.replicas after the append: committed
     * by too few, so not acknowledged (Kafka's NOT_ENOUGH_REPLICAS_AFTER_APPEND). */
    partition_lead(p, 2);
    assert_int_equal(produce_one(p, "d2\n", &ack), 0); /* offset 4 */
    ack_wait_start(&w, &t, p, &ack);
    partition_lead(p, 1);
    assert_int_equal(partition_set_high_watermark(p, 5), 0);
    assert_int_equal(ack_wait_end(&w, t), -EIO);
    partition_lead(p, 2);

    /* Leadership lost while waiting: EIO, also after a new term began. */
    partition_lead(p, 2);
    assert_int_equal(produce_one(p, "e\n", &ack), 0);
    ack_wait_start(&w, &t, p, &ack);
    partition_unlead(p);
    assert_int_equal(ack_wait_end(&w, t), -EIO);
    partition_lead(p, 2);
    assert_int_equal(partition_set_high_watermark(p, 5), 0);
    assert_int_equal(partition_wait_acked(p, &ack), -EIO); /* another term's end */

    /* Truncation while waiting: EIO, even once other records fill the offsets. */
    assert_int_equal(produce_one(p, "f\n", &ack), 0); /* offset 5 */
    ack_wait_start(&w, &t, p, &ack);
    assert_int_equal(partition_truncate(p, 5), 0);
    assert_int_equal(ack_wait_end(&w, t), -EIO);
    struct partition_ack again = {0};
    assert_int_equal(produce_one(p, "g\n", &again), 0);
    assert_int_equal(partition_set_high_watermark(p, 6), 0);
    assert_int_equal(partition_wait_acked(p, &ack), -EIO);
    assert_int_equal(partition_wait_acked(p, &again), 0);

    /* fsync's point: the log end in the current term. */
    partition_ack_point(p, &ack);
    assert_int_equal(ack.end_offset, 6);
    assert_int_equal(partition_wait_acked(p, &ack), 0);
    assert_int_equal(produce_one(p, "h\n", NULL), 0); /* no ack: no check, as group.c's */
    partition_ack_point(p, &ack);
    ack_wait_start(&w, &t, p, &ack);
    assert_int_equal(partition_set_high_watermark(p, 7), 0);
    assert_int_equal(ack_wait_end(&w, t), 0);

    /* A deleted topic's partition: ENOENT. */
    assert_int_equal(produce_one(p, "i\n", &ack), 0);
    ack_wait_start(&w, &t, p, &ack);
    assert_int_equal(partition_move(p, sub(f, "moved")), 0);
    assert_int_equal(ack_wait_end(&w, t), -ENOENT);

    batch_builder_free(&b);
    partition_close(p);
}

/* ---- the high watermark checkpoint ---- */

static void test_hw_checkpoint(void **state)
{
    struct fx *f = *state;
    char text[HW_CHECKPOINT_MAX_LEN], path[512];
    uint64_t hw;
    /* The codec: round trips, one spelling, every cut and flipped bit refused. */
    const uint64_t values[] = {0, 1, 42, (uint64_t)INT64_MAX};
    for (size_t i = 0; i < 4; i++) {
        size_t len = hw_checkpoint_encode(values[i], text);
        assert_int_equal(hw_checkpoint_decode(text, len, &hw), 0);
        assert_int_equal(hw, values[i]);
        for (size_t cut = 0; cut < len; cut++)
            assert_int_equal(hw_checkpoint_decode(text, cut, &hw), -EBADMSG);
        for (size_t at = 0; at < len; at++)
            for (int bit = 0; bit < 8; bit++) {
                text[at] ^= (char)(1 << bit);
                assert_int_equal(hw_checkpoint_decode(text, len, &hw), -EBADMSG);
                text[at] ^= (char)(1 << bit);
            }
    }
    static const char *const bad[] = {"0\n-1\n", "0\n01\n", "1\n5\n", "0\n9223372036854775808\n",
                                      "0\n 5\n", "0\n5"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        /* well-formed checksum over a bad body: still refused */
        char t[128];
        int n = snprintf(t, sizeof(t), "%s", bad[i]);
        n += snprintf(t + n, sizeof(t) - (size_t)n, "%016llx\n",
                      (unsigned long long)XXH3_64bits(t, (size_t)n));
        assert_int_equal(hw_checkpoint_decode(t, (size_t)n, &hw), -EBADMSG);
    }

    /* A partition: nothing saved while the high watermark follows the end. */
    struct partition *p = open_part(sub(f, "p"), 1 << 20);
    append1(p, "a\n");
    append1(p, "b\n");
    append1(p, "c\n");
    assert_int_equal(partition_save_high_watermark(p), 0);
    assert_int_equal(partition_saved_high_watermark(p, &hw), -ENOENT);
    /* Held: saved, and read back; a restart holds it there (within the log). */
    assert_int_equal(partition_hold_high_watermark(p, 2), 0);
    assert_int_equal(partition_save_high_watermark(p), 0);
    assert_int_equal(partition_saved_high_watermark(p, &hw), 0);
    assert_int_equal(hw, 2);
    partition_close(p);
    p = open_part(sub(f, "p"), 1 << 20);
    assert_int_equal(partition_saved_high_watermark(p, &hw), 0);
    assert_int_equal(hw, 2);
    /* Damaged: refused (the replica then starts at its log start). */
    snprintf(path, sizeof(path), "%s/" HW_CHECKPOINT_FILE, sub(f, "p"));
    FILE *fp = fopen(path, "r+");
    assert_non_null(fp);
    fputc('7', fp);
    fclose(fp);
    assert_int_equal(partition_saved_high_watermark(p, &hw), -EBADMSG);
    /* A reset removes it with the old log. */
    assert_int_equal(partition_hold_high_watermark(p, 3), 0);
    assert_int_equal(partition_save_high_watermark(p), 0);
    assert_int_equal(partition_reset(p, 10, 100), 0);
    assert_int_equal(partition_saved_high_watermark(p, &hw), -ENOENT);
    partition_close(p);
}

int main(void)
{
    logger_init("test_replica", 0, LOG_LEVEL_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cache_operations),
        cmocka_unit_test(test_checkpoint_codec),
        cmocka_unit_test_setup_teardown(test_epochs_assigned_written_reloaded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_epochs_trimmed_or_rebuilt_at_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_epochs_kept_across_retention_and_compaction, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_kip101_restart_keeps_replicated_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kip101_divergent_tail_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kip279_fast_leader_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kip279_multiple_epochs_diverge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hw_hides_what_is_past_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hw_bounds_retention_and_compaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_raw_verbatim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_batches_all_or_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncate_at_damage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follower_of_compacted_leader, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_to_leader_log_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_crash_points, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listener_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_listeners, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remote_cache_starts_at_leader_log_start, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_remote_cache_diverged_or_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acks_wait_for_high_watermark, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hw_checkpoint, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
