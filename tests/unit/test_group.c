/* test_group.c - consumer groups (core/group.c).
 *
 * - group_assign: balance for every small n and m, minimal movement when a
 *   member joins or leaves (the caller's renumbering as group_leave does it),
 *   and the same invariants over seeded random joins, leaves, partition
 *   growth and arbitrary starting owners.
 * - Member streams on a real store in a temp dir: records in order, acks by
 *   reading past records, end of file on drain, fsync, -ESPIPE below the
 *   acknowledged position, at-least-once redelivery after a leave or a
 *   rebalance, a torn record finished after a rebalance, partitions never
 *   shared by two members, wakeups of follow members.
 * - Cursors: "N", "earliest", "latest", "-N", "@ms", refused specs that change
 *   nothing, auto.offset.reset=latest.
 * - Durability: commits replayed from __consumer_offsets after a reopen,
 *   group_delete (-EBUSY, -ENOENT, tombstones), group_delete_topic.
 * - group_name_valid.
 * - Cluster mode: a mirror registry on the same store replays what the
 *   active one wrote (groups, cursor writes, a member's commits, deletes)
 *   when it catches up, and agrees on the log end; it never writes the log;
 *   group_registry_reload(mirror, 1) makes it the writer with its groups'
 *   ids kept and replayed tombstones applied; a log cut below what it
 *   replayed makes it start over; it attaches to a log made after it
 *   opened. Members of several brokers get disjoint partitions and .info
 *   names owners "broker:pid" (plain "pid" on one node). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "config.h"
#include "group.h"
#include "partition.h"
#include "store.h"
#include "topic.h"

/* ---- group_assign ---- */

#define MAXN 64
#define MAXM 16

/* Every partition owned by one member in [0, m) (-1 when m == 0), and the
 * members' counts differ by at most one. */
static void check_balanced(const int32_t *owner, uint32_t n, uint32_t m)
{
    uint32_t count[MAXM] = {0};
    for (uint32_t i = 0; i < n; i++) {
        if (m == 0) {
            assert_int_equal(owner[i], -1);
            continue;
        }
        assert_true(owner[i] >= 0 && (uint32_t)owner[i] < m);
        count[owner[i]]++;
    }
    if (m == 0)
        return;
    uint32_t lo = UINT32_MAX, hi = 0;
    for (uint32_t o = 0; o < m; o++) {
        lo = count[o] < lo ? count[o] : lo;
        hi = count[o] > hi ? count[o] : hi;
    }
    assert_true(hi - lo <= 1);
}

/* The most partitions any balanced assignment of n over m can leave with
 * their current (valid) owner: each member keeps up to its share, and the
 * n % m larger shares are worth one more to members holding more than n / m. */
static uint32_t max_kept(const int32_t *owner, uint32_t n, uint32_t m)
{
    if (m == 0)
        return 0;
    uint32_t count[MAXM] = {0}, base = n / m, extra = n % m, kept = 0, over = 0;
    for (uint32_t i = 0; i < n; i++)
        if (owner[i] >= 0 && (uint32_t)owner[i] < m)
            count[owner[i]]++;
    for (uint32_t o = 0; o < m; o++) {
        kept += count[o] < base ? count[o] : base;
        over += count[o] > base;
    }
    return kept + (extra < over ? extra : over);
}

static uint32_t kept_count(const int32_t *before, const int32_t *after, uint32_t n, uint32_t m)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++)
        k += before[i] >= 0 && (uint32_t)before[i] < m && after[i] == before[i];
    return k;
}

/* What group_leave does before it rebalances: member j's partitions become
 * unowned and the members after it move down one index. */
static void renumber_leave(int32_t *owner, uint32_t n, int32_t j)
{
    for (uint32_t i = 0; i < n; i++) {
        if (owner[i] == j)
            owner[i] = -1;
        else if (owner[i] > j)
            owner[i]--;
    }
}

static void test_assign_balanced(void **state)
{
    (void)state;
    for (uint32_t n = 0; n <= 12; n++) {
        for (uint32_t m = 0; m <= 8; m++) {
            int32_t owner[MAXN], again[MAXN];
            for (uint32_t i = 0; i < MAXN; i++)
                owner[i] = -1;
            owner[n] = 77; /* past the end: must stay untouched */
            group_assign(owner, n, m);
            check_balanced(owner, n, m);
            assert_int_equal(owner[n], 77);
            /* Already balanced: assigning again moves nothing. */
            memcpy(again, owner, sizeof(owner));
            group_assign(again, n, m);
            assert_memory_equal(again, owner, n * sizeof(*owner));
        }
    }
}

static void test_assign_join_sticky(void **state)
{
    (void)state;
    for (uint32_t n = 0; n <= 12; n++) {
        for (uint32_t m = 1; m <= 8; m++) {
            int32_t before[MAXN], after[MAXN];
            for (uint32_t i = 0; i < MAXN; i++)
                before[i] = -1;
            group_assign(before, n, m);
            memcpy(after, before, sizeof(before));
            group_assign(after, n, m + 1);
            check_balanced(after, n, m + 1);
            /* The new member's share, no more, comes from the others. */
            uint32_t share = n / (m + 1), moved = 0, to_new = 0;
            for (uint32_t i = 0; i < n; i++) {
                if (after[i] != before[i]) {
                    moved++;
                    assert_int_equal(after[i], (int32_t)m);
                }
                to_new += after[i] == (int32_t)m;
            }
            assert_int_equal(moved, to_new);
            assert_int_equal(moved, share);
            assert_int_equal(n - moved, max_kept(before, n, m + 1));
        }
    }
}

static void test_assign_leave_sticky(void **state)
{
    (void)state;
    for (uint32_t n = 0; n <= 12; n++) {
        for (uint32_t m = 1; m <= 8; m++) {
            for (int32_t j = 0; j < (int32_t)m; j++) {
                int32_t start[MAXN], before[MAXN], after[MAXN];
                for (uint32_t i = 0; i < MAXN; i++)
                    start[i] = -1;
                group_assign(start, n, m);
                memcpy(before, start, sizeof(start));
                renumber_leave(before, n, j);
                memcpy(after, before, sizeof(before));
                group_assign(after, n, m - 1);
                check_balanced(after, n, m - 1);
                /* Only the departed member's partitions move. */
                for (uint32_t i = 0; i < n; i++) {
                    if (start[i] == j)
                        assert_int_equal(before[i], -1);
                    else
                        assert_int_equal(after[i], before[i]);
                }
            }
        }
    }
}

static uint64_t rng_state;

static uint32_t rng(uint32_t below)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % below);
}

static void test_assign_random_sequences(void **state)
{
    (void)state;
    rng_state = 0x9e3779b97f4a7c15ull;
    for (int seq = 0; seq < 200; seq++) {
        uint32_t n = rng(13), m = 0;
        int32_t owner[MAXN], before[MAXN];
        for (uint32_t i = 0; i < MAXN; i++)
            owner[i] = -1;
        for (int step = 0; step < 60; step++) {
            uint32_t op = rng(10);
            memcpy(before, owner, sizeof(owner));
            if (op < 5 && m < 8) { /* join */
                group_assign(owner, n, m + 1);
                m++;
                check_balanced(owner, n, m);
                assert_int_equal(kept_count(before, owner, n, m), max_kept(before, n, m));
                for (uint32_t i = 0; i < n; i++)
                    if (owner[i] != before[i])
                        assert_int_equal(owner[i], (int32_t)m - 1);
            } else if (op < 9 && m > 0) { /* leave */
                int32_t j = (int32_t)rng(m);
                renumber_leave(owner, n, j);
                memcpy(before, owner, sizeof(owner));
                group_assign(owner, n, m - 1);
                m--;
                check_balanced(owner, n, m);
                for (uint32_t i = 0; i < n; i++)
                    if (before[i] >= 0)
                        assert_int_equal(owner[i], before[i]);
            } else if (n < 40) { /* the topic grows: new partitions are unowned */
                uint32_t grow = 1 + rng(4);
                for (uint32_t i = n; i < n + grow; i++)
                    owner[i] = before[i] = -1;
                n += grow;
                group_assign(owner, n, m);
                check_balanced(owner, n, m);
                assert_int_equal(kept_count(before, owner, n, m), max_kept(before, n, m));
            }
        }
    }
}

/* Arbitrary starting owners (unbalanced, -1, out of range): the result is
 * balanced and keeps as many partitions in place as any balanced result can. */
static void test_assign_arbitrary_start(void **state)
{
    (void)state;
    rng_state = 12345;
    for (int iter = 0; iter < 5000; iter++) {
        uint32_t n = rng(20), m = rng(MAXM);
        int32_t owner[MAXN], before[MAXN];
        for (uint32_t i = 0; i < MAXN; i++)
            owner[i] = i < n ? (int32_t)rng(MAXM + 3) - 1 : -1; /* -1 .. MAXM + 1 */
        memcpy(before, owner, sizeof(owner));
        group_assign(owner, n, m);
        check_balanced(owner, n, m);
        assert_int_equal(kept_count(before, owner, n, m), max_kept(before, n, m));
    }
}

/* ---- a store in a temp dir ---- */

static int rm_entry(const char *p, const struct stat *sb, int f, struct FTW *w)
{
    (void)sb;
    (void)f;
    (void)w;
    return remove(p);
}

struct env {
    char dir[64];
    struct store *s;
    struct group_registry *r;
};

static void env_open(struct env *e)
{
    assert_int_equal(store_open(e->dir, 1, &e->s), 0);
    assert_int_equal(group_registry_open(e->s, 0, &e->r), 0);
}

static void env_close(struct env *e)
{
    group_registry_close(e->r);
    store_close(e->s);
    e->r = NULL;
    e->s = NULL;
}

static void env_reopen(struct env *e)
{
    env_close(e);
    env_open(e);
}

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    strcpy(e->dir, "/tmp/topicfs-group-XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    env_open(e);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    if (e->s)
        env_close(e);
    nftw(e->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(e);
    return 0;
}

/* A topic with `parts` partitions; the caller holds the returned reference. */
static struct topic *make_topic(struct env *e, const char *name, uint32_t parts)
{
    struct topic *t;
    char line[64];
    assert_int_equal(store_create_topic(e->s, name, &t), 0);
    if (parts > 1) {
        int n = snprintf(line, sizeof(line), "partitions=%u", parts);
        assert_int_equal(topic_config_apply(t, line, (size_t)n), 0);
    }
    assert_int_equal(topic_partition_count(t), parts);
    return t;
}

/* Record j of partition p is "p<p>r<j>\n": 5 bytes while j < 10. */
#define REC 5

static void append_records_at(struct topic *t, uint32_t p, uint32_t from, uint32_t count,
                              int64_t ts)
{
    for (uint32_t j = from; j < from + count; j++) {
        char v[32];
        struct batch_builder b;
        int n = snprintf(v, sizeof(v), "p%ur%u\n", p, j);
        batch_builder_init(&b);
        assert_int_equal(batch_builder_add_record(&b, (uint32_t)n, -1), 0);
        assert_int_equal(batch_builder_add_values(&b, v, (size_t)n), 0);
        assert_int_equal(partition_append(topic_partition(t, p), &b, ts, NULL), 0);
        batch_builder_free(&b);
    }
}

static void append_records(struct topic *t, uint32_t p, uint32_t from, uint32_t count)
{
    append_records_at(t, p, from, count, 1000);
}

static struct group *make_group(struct env *e, struct topic *t, const char *name)
{
    assert_int_equal(group_create(e->r, t, name), 0);
    struct group *g = group_find(e->r, t, name);
    assert_non_null(g);
    return g;
}

static struct group_member *join_drain(struct group *g, pid_t pid)
{
    struct group_member *m = NULL;
    assert_int_equal(group_join(g, -1, pid, 0, NULL, NULL, &m), 0);
    assert_non_null(m);
    return m;
}

static uint64_t cursor(struct group *g, uint32_t p)
{
    uint64_t off = UINT64_MAX;
    assert_int_equal(group_cursor_get(g, p, &off), 0);
    return off;
}

/* Reads a drain member from *pos to end of file; returns the bytes read. */
static size_t read_to_end(struct group_member *m, uint64_t *pos, char *buf, size_t cap)
{
    size_t len = 0;
    for (;;) {
        ssize_t n = group_member_read(m, *pos, buf + len, cap - len);
        assert_true(n >= 0);
        if (n == 0)
            break;
        len += (size_t)n;
        *pos += (uint64_t)n;
        assert_true(len < cap);
    }
    buf[len] = 0;
    return len;
}

/* The offset last stored in __consumer_offsets for key "<topic>/<group>/<p>"
 * ("" after a tombstone, NULL when never stored). */
struct offsets_scan {
    const char *key;
    char value[64];
    int seen;
};

static int scan_offset(const struct record_view *r, void *arg)
{
    struct offsets_scan *s = arg;
    size_t kl = strlen(s->key);
    if (r->value_len > kl && !memcmp(r->value, s->key, kl) && r->value[kl] == '=') {
        size_t vl = r->value_len - kl - 1;
        if (vl && r->value[r->value_len - 1] == '\n')
            vl--;
        assert_true(vl < sizeof(s->value));
        memcpy(s->value, r->value + kl + 1, vl);
        s->value[vl] = 0;
        s->seen = 1;
    }
    return 0;
}

static const char *stored_offset(struct env *e, const char *key, struct offsets_scan *s)
{
    struct topic *ot = store_find(e->s, GROUP_OFFSETS_TOPIC);
    struct partition_cursor c;
    uint64_t next;
    assert_non_null(ot);
    memset(s, 0, sizeof(*s));
    s->key = key;
    partition_cursor_init(&c);
    assert_int_equal(partition_fetch(topic_partition(ot, 0), &c, 0, 1 << 20, scan_offset, s, &next),
                     0);
    partition_cursor_free(&c);
    topic_put(ot);
    return s->seen ? s->value : NULL;
}

/* ---- member streams ---- */

static void test_read_in_order_and_ack(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 1);
    append_records(t, 0, 0, 6);
    struct group *g = make_group(e, t, "g");
    struct group_member *m = join_drain(g, 100);
    char buf[256];
    const char *all = "p0r0\np0r1\np0r2\np0r3\np0r4\np0r5\n";

    /* A short read delivers a prefix and acknowledges nothing. */
    assert_int_equal(group_member_read(m, 0, buf, 4), 4);
    assert_memory_equal(buf, all, 4);
    assert_int_equal(cursor(g, 0), 0);
    /* All of it, in order; still nothing read past. */
    assert_int_equal(group_member_read(m, 0, buf, sizeof(buf)), 6 * REC);
    assert_memory_equal(buf, all, 6 * REC);
    assert_int_equal(cursor(g, 0), 0);
    /* bash seeks back to the end of the first line: r0 is acknowledged. */
    assert_int_equal(group_member_read(m, REC, buf, sizeof(buf)), 5 * REC);
    assert_memory_equal(buf, all + REC, 5 * REC);
    assert_int_equal(cursor(g, 0), 1);
    /* Mid-record: only the records that end at or before pos. */
    assert_int_equal(group_member_read(m, 2 * REC + 2, buf, sizeof(buf)), 4 * REC - 2);
    assert_memory_equal(buf, all + 2 * REC + 2, 4 * REC - 2);
    assert_int_equal(cursor(g, 0), 2);
    /* Below what was acknowledged: refused. */
    assert_int_equal(group_member_read(m, REC, buf, sizeof(buf)), -ESPIPE);
    assert_int_equal(cursor(g, 0), 2);
    assert_int_equal(group_member_read(m, 3 * REC, buf, 3), 3);
    assert_memory_equal(buf, "p0r", 3);
    assert_int_equal(cursor(g, 0), 3);
    /* End of file on drain: everything delivered is committed, durably. */
    struct offsets_scan sc;
    assert_int_equal(group_member_read(m, 6 * REC, buf, sizeof(buf)), 0);
    assert_int_equal(cursor(g, 0), 6);
    assert_string_equal(stored_offset(e, "t/g/0", &sc), "6");
    /* New records continue the stream. */
    append_records(t, 0, 6, 2);
    assert_int_equal(group_member_read(m, 6 * REC, buf, sizeof(buf)), 2 * REC);
    assert_memory_equal(buf, "p0r6\np0r7\n", 2 * REC);
    assert_int_equal(cursor(g, 0), 6);
    assert_int_equal(group_member_read(m, 8 * REC, buf, sizeof(buf)), 0);
    assert_int_equal(cursor(g, 0), 8);

    group_leave(m);
    group_put(g);
    topic_put(t);
}

static void test_sync_acks_delivered(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 1);
    append_records(t, 0, 0, 4);
    struct group *g = make_group(e, t, "g");
    struct group_member *m = join_drain(g, 100);
    char buf[256];
    struct offsets_scan sc;

    assert_int_equal(group_member_read(m, 0, buf, sizeof(buf)), 4 * REC);
    assert_int_equal(cursor(g, 0), 0);
    assert_string_equal(stored_offset(e, "t/g/0", &sc), "0");
    assert_int_equal(group_member_sync(m), 0);
    assert_int_equal(cursor(g, 0), 4);
    assert_string_equal(stored_offset(e, "t/g/0", &sc), "4");
    /* Everything delivered is acknowledged: nothing below it can be read. */
    assert_int_equal(group_member_read(m, 0, buf, sizeof(buf)), -ESPIPE);
    assert_int_equal(group_member_read(m, 4 * REC, buf, sizeof(buf)), 0);
    /* A member that leaves after fsync hands nothing back. */
    group_leave(m);
    m = join_drain(g, 101);
    assert_int_equal(group_member_read(m, 0, buf, sizeof(buf)), 0);
    assert_int_equal(cursor(g, 0), 4);
    group_leave(m);
    group_put(g);
    topic_put(t);
}

/* fsync acknowledges what the reader has whole: a record it read only the
 * start of (a chunk ending inside it) goes again, whole, to the next
 * member, so no byte of it is lost. */
static void test_sync_leaves_a_torn_record(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 1);
    append_records(t, 0, 0, 4);
    struct group *g = make_group(e, t, "g");
    struct group_member *m = join_drain(g, 100);
    char buf[256];
    /* Two records and two bytes of the third. */
    assert_int_equal(group_member_read(m, 0, buf, 2 * REC + 2), 2 * REC + 2);
    assert_int_equal(group_member_sync(m), 0);
    assert_int_equal(cursor(g, 0), 2);
    group_leave(m);
    m = join_drain(g, 101);
    assert_int_equal(group_member_read(m, 0, buf, sizeof(buf)), 2 * REC);
    assert_memory_equal(buf, "p0r2\np0r3\n", 2 * REC);
    group_leave(m);
    group_put(g);
    topic_put(t);
}

static void test_leave_without_ack_redelivers(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 1);
    append_records(t, 0, 0, 5);
    struct group *g = make_group(e, t, "g");
    struct group_member *a = join_drain(g, 100);
    char buf[256];
    uint64_t pos = 0;

    assert_int_equal(group_member_read(a, 0, buf, sizeof(buf)), 5 * REC);
    assert_int_equal(group_member_read(a, 2 * REC, buf, sizeof(buf)), 3 * REC);
    assert_int_equal(cursor(g, 0), 2);
    group_leave(a); /* r2..r4 were delivered, never acknowledged */
    assert_int_equal(cursor(g, 0), 2);

    struct group_member *b = join_drain(g, 101);
    assert_int_equal(read_to_end(b, &pos, buf, sizeof(buf)), 3 * REC);
    assert_string_equal(buf, "p0r2\np0r3\np0r4\n");
    assert_int_equal(cursor(g, 0), 5);

    /* The same with a second member present: the partition moves to it. */
    append_records(t, 0, 5, 3);
    struct group_member *c = join_drain(g, 102);
    char bufc[256];
    uint64_t posc = 0;
    /* b joined first and keeps the only partition; c gets nothing. */
    assert_int_equal(group_member_read(c, 0, bufc, sizeof(bufc)), 0);
    assert_int_equal(group_member_read(b, pos, buf, sizeof(buf)), 3 * REC);
    assert_memory_equal(buf, "p0r5\np0r6\np0r7\n", 3 * REC);
    assert_int_equal(group_member_read(b, pos + REC, buf, sizeof(buf)), 2 * REC);
    assert_int_equal(cursor(g, 0), 6);
    group_leave(b);
    assert_int_equal(cursor(g, 0), 6);
    assert_int_equal(read_to_end(c, &posc, bufc, sizeof(bufc)), 2 * REC);
    assert_string_equal(bufc, "p0r6\np0r7\n");
    assert_int_equal(cursor(g, 0), 8);
    group_leave(c);
    group_put(g);
    topic_put(t);
}

/* A record delivered from a partition that then moves to another member is
 * not committed by reading past it: the new owner gets it again. */
static void test_moved_partition_not_committed(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 2);
    append_records(t, 0, 0, 3);
    append_records(t, 1, 0, 3);
    struct group *g = make_group(e, t, "g");
    struct group_member *a = join_drain(g, 100);
    char buf[256];

    assert_int_equal(group_member_read(a, 0, buf, sizeof(buf)), 6 * REC);
    struct group_member *b = join_drain(g, 101); /* a keeps p0, b takes p1 */
    /* a reads past all six: only its own partition's records commit. */
    assert_int_equal(group_member_read(a, 6 * REC, buf, sizeof(buf)), 0);
    assert_int_equal(cursor(g, 0), 3);
    assert_int_equal(cursor(g, 1), 0);
    uint64_t pos = 0;
    assert_int_equal(read_to_end(b, &pos, buf, sizeof(buf)), 3 * REC);
    assert_string_equal(buf, "p1r0\np1r1\np1r2\n");
    assert_int_equal(cursor(g, 1), 3);
    group_leave(b);
    group_leave(a);
    group_put(g);
    topic_put(t);
}

/* A member acknowledges records of a partition that moved away and came
 * back: the commit another member made meanwhile never moves back, and the
 * records that member consumed are not delivered again. */
static void test_commit_never_moves_back(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 2);
    append_records(t, 0, 0, 3);
    append_records(t, 1, 0, 5);
    struct group *g = make_group(e, t, "g");
    struct group_member *a = join_drain(g, 100);
    char buf[256];

    assert_int_equal(group_member_read(a, 0, buf, sizeof(buf)), 8 * REC);
    struct group_member *b = join_drain(g, 101); /* b takes p1 */
    append_records(t, 1, 5, 5);
    uint64_t pos = 0;
    assert_int_equal(read_to_end(b, &pos, buf, sizeof(buf)), 10 * REC);
    assert_int_equal(cursor(g, 1), 10);
    group_leave(b); /* p1 goes back to a */
    assert_int_equal(group_member_read(a, 8 * REC, buf, sizeof(buf)), 0);
    assert_int_equal(cursor(g, 0), 3);
    assert_int_equal(cursor(g, 1), 10);
    group_leave(a);
    group_put(g);
    topic_put(t);
}

/* A rebalance while the reader is inside a record: the record is finished
 * before the stream goes on, so no line is torn, and nothing repeats. */
static void test_torn_record_finished(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 2);
    append_records(t, 0, 0, 3);
    append_records(t, 1, 0, 3);
    struct group *g = make_group(e, t, "g");
    struct group_member *a = join_drain(g, 100);
    char buf[256];

    assert_int_equal(group_member_read(a, 0, buf, 3), 3);
    assert_memory_equal(buf, "p0r", 3);
    struct group_member *b = join_drain(g, 101);
    uint64_t pos = 3;
    size_t n = read_to_end(a, &pos, buf, sizeof(buf));
    assert_int_equal(n, 3 * REC - 3);
    assert_string_equal(buf, "0\np0r1\np0r2\n");
    assert_int_equal(cursor(g, 0), 3);
    pos = 0;
    assert_int_equal(read_to_end(b, &pos, buf, sizeof(buf)), 3 * REC);
    assert_string_equal(buf, "p1r0\np1r1\np1r2\n");
    group_leave(b);
    group_leave(a);
    group_put(g);
    topic_put(t);
}

struct owners {
    int n;
    int owner[8];
    uint64_t committed[8];
};

static void parse_info(struct group *g, struct owners *o)
{
    char text[1024];
    size_t len = group_info_text(g, text, sizeof(text) - 1);
    text[len] = 0;
    memset(o, 0, sizeof(*o));
    for (char *line = text; *line;) {
        unsigned p;
        uint64_t c, end, lag;
        char own[24];
        assert_int_equal(sscanf(line,
                                "p%u committed=%" SCNu64 " end_offset=%" SCNu64 " lag=%" SCNu64
                                " owner=%23s",
                                &p, &c, &end, &lag, own),
                         5);
        assert_int_equal(p, (unsigned)o->n);
        assert_int_equal(lag, end > c ? end - c : 0);
        o->owner[o->n] = strcmp(own, "-") ? atoi(own) : -1;
        o->committed[o->n] = c;
        o->n++;
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        line = nl + 1;
    }
}

static void test_two_members_disjoint(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 4);
    for (uint32_t p = 0; p < 4; p++)
        append_records(t, p, 0, 3);
    struct group *g = make_group(e, t, "g");
    struct owners o;
    parse_info(g, &o);
    assert_int_equal(o.n, 4);
    for (int p = 0; p < 4; p++)
        assert_int_equal(o.owner[p], -1);

    struct group_member *a = join_drain(g, 101), *b = join_drain(g, 102);
    parse_info(g, &o);
    int per[2] = {0, 0};
    for (int p = 0; p < 4; p++) {
        assert_true(o.owner[p] == 101 || o.owner[p] == 102);
        per[o.owner[p] - 101]++;
    }
    assert_int_equal(per[0], 2);
    assert_int_equal(per[1], 2);

    char ba[256], bb[256];
    uint64_t pa = 0, pb = 0;
    assert_int_equal(read_to_end(a, &pa, ba, sizeof(ba)), 6 * REC);
    assert_int_equal(read_to_end(b, &pb, bb, sizeof(bb)), 6 * REC);
    /* Each record reaches exactly the owner of its partition. */
    for (uint32_t p = 0; p < 4; p++) {
        for (uint32_t j = 0; j < 3; j++) {
            char rec[16];
            snprintf(rec, sizeof(rec), "p%ur%u\n", p, j);
            int in_a = strstr(ba, rec) != NULL, in_b = strstr(bb, rec) != NULL;
            assert_int_equal(in_a + in_b, 1);
            assert_int_equal(in_a, o.owner[p] == 101);
        }
        assert_int_equal(cursor(g, p), 3);
    }

    /* a leaves: b takes everything, and gets new records of a's partitions. */
    group_leave(a);
    parse_info(g, &o);
    for (int p = 0; p < 4; p++)
        assert_int_equal(o.owner[p], 102);
    for (uint32_t p = 0; p < 4; p++)
        append_records(t, p, 3, 1);
    assert_int_equal(read_to_end(b, &pb, bb, sizeof(bb)), 4 * REC);
    for (uint32_t p = 0; p < 4; p++) {
        char rec[16];
        snprintf(rec, sizeof(rec), "p%ur3\n", p);
        assert_non_null(strstr(bb, rec));
        assert_int_equal(cursor(g, p), 4);
    }
    group_leave(b);
    parse_info(g, &o);
    for (int p = 0; p < 4; p++) {
        assert_int_equal(o.owner[p], -1);
        assert_int_equal(o.committed[p], 4);
    }
    group_put(g);
    topic_put(t);
}

static void on_wake(void *arg)
{
    (*(int *)arg)++;
}

static void test_follow_wakeups(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 1);
    struct group *g = make_group(e, t, "g");
    struct group_member *m = NULL;
    int woken = 0;
    char buf[256];

    assert_int_equal(group_join(g, -1, 100, 1, on_wake, &woken, &m), 0);
    assert_int_equal(group_member_read(m, 0, buf, sizeof(buf)), 0);
    append_records(t, 0, 0, 2);
    group_notify_append(e->r, t, 0);
    assert_int_equal(woken, 1);
    assert_int_equal(group_member_read(m, 0, buf, sizeof(buf)), 2 * REC);
    assert_memory_equal(buf, "p0r0\np0r1\n", 2 * REC);
    /* Not waiting (the last read found data): no wakeup. */
    append_records(t, 0, 2, 1);
    group_notify_append(e->r, t, 0);
    assert_int_equal(woken, 1);
    assert_int_equal(group_member_read(m, 2 * REC, buf, sizeof(buf)), REC);
    assert_int_equal(cursor(g, 0), 2);
    assert_int_equal(group_member_read(m, 3 * REC, buf, sizeof(buf)), 0);
    assert_int_equal(cursor(g, 0), 3);

    /* The topic grows: the waiting member is given the new partition. */
    assert_int_equal(topic_config_apply(t, "partitions=2", 12), 0);
    append_records(t, 1, 0, 2);
    group_notify_append(e->r, t, 1);
    assert_int_equal(woken, 2);
    assert_int_equal(group_member_read(m, 3 * REC, buf, sizeof(buf)), 2 * REC);
    assert_memory_equal(buf, "p1r0\np1r1\n", 2 * REC);
    group_leave(m);
    group_put(g);
    topic_put(t);
}

/* ---- cursors ---- */

static void test_cursor_set_specs(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 2);
    append_records(t, 0, 0, 10);
    struct group *g = make_group(e, t, "g");
    struct offsets_scan sc;

    assert_int_equal(cursor(g, 0), 0);
    assert_int_equal(group_cursor_set(g, 0, "5", 0), 0);
    assert_int_equal(cursor(g, 0), 5);
    assert_string_equal(stored_offset(e, "t/g/0", &sc), "5");
    assert_int_equal(group_cursor_set(g, 0, "latest", 0), 0);
    assert_int_equal(cursor(g, 0), 10);
    assert_int_equal(group_cursor_set(g, 0, "earliest", 0), 0);
    assert_int_equal(cursor(g, 0), 0);
    assert_int_equal(group_cursor_set(g, 0, "-2", 0), 0);
    assert_int_equal(cursor(g, 0), 8);
    assert_int_equal(group_cursor_set(g, 0, "-50", 0), 0);
    assert_int_equal(cursor(g, 0), 0);
    /* "@<ms>": the first record at or after the time (parsed by the caller). */
    append_records_at(t, 1, 0, 3, 1000);
    append_records_at(t, 1, 3, 3, 2000);
    assert_int_equal(group_cursor_set(g, 1, "@", 1500), 0);
    assert_int_equal(cursor(g, 1), 3);
    assert_int_equal(group_cursor_set(g, 1, "@", 0), 0);
    assert_int_equal(cursor(g, 1), 0);
    assert_int_equal(group_cursor_set(g, 1, "@", 9999), 0);
    assert_int_equal(cursor(g, 1), 6);
    assert_int_equal(group_cursor_set(g, 1, "earliest", 0), 0);
    assert_int_equal(group_cursor_set(g, 0, "7", 0), 0);

    static const char *bad[] = {
        "x", "", "99999999999999999999999", "--1", "5x", "-", "-x", " 5", "latest2", "+3"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(group_cursor_set(g, 0, bad[i], 0), -EINVAL);
        assert_int_equal(cursor(g, 0), 7);
        assert_int_equal(cursor(g, 1), 0);
    }
    assert_string_equal(stored_offset(e, "t/g/0", &sc), "7");
    /* Partition out of range. */
    assert_int_equal(group_cursor_set(g, 2, "1", 0), -ENOENT);
    uint64_t off;
    assert_int_equal(group_cursor_get(g, 2, &off), -ENOENT);

    /* The durable value is the one set. */
    group_put(g);
    topic_put(t);
    env_reopen(e);
    t = store_find(e->s, "t");
    assert_non_null(t);
    g = group_find(e->r, t, "g");
    assert_non_null(g);
    assert_int_equal(cursor(g, 0), 7);
    assert_int_equal(cursor(g, 1), 0);
    group_put(g);
    topic_put(t);
}

/* A cursor write moves the owner: it restarts from the new position. */
static void test_cursor_set_restarts_owner(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 1);
    append_records(t, 0, 0, 8);
    struct group *g = make_group(e, t, "g");
    struct group_member *m = join_drain(g, 100);
    char buf[256];

    assert_int_equal(group_member_read(m, 0, buf, sizeof(buf)), 8 * REC);
    assert_int_equal(group_cursor_set(g, 0, "5", 0), 0);
    /* Reading past the old window acknowledges nothing of it. */
    uint64_t pos = 8 * REC;
    assert_int_equal(read_to_end(m, &pos, buf, sizeof(buf)), 3 * REC);
    assert_string_equal(buf, "p0r5\np0r6\np0r7\n");
    assert_int_equal(cursor(g, 0), 8);
    group_leave(m);
    group_put(g);
    topic_put(t);
}

static void test_auto_offset_reset_latest(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 1);
    append_records(t, 0, 0, 3);
    const char *line = "auto.offset.reset=latest";
    assert_int_equal(topic_config_apply(t, line, strlen(line)), 0);
    struct group *g = make_group(e, t, "late");
    assert_int_equal(cursor(g, 0), 3);
    struct group_member *m = join_drain(g, 100);
    char buf[256];
    uint64_t pos = 0;
    assert_int_equal(read_to_end(m, &pos, buf, sizeof(buf)), 0);
    append_records(t, 0, 3, 2);
    assert_int_equal(read_to_end(m, &pos, buf, sizeof(buf)), 2 * REC);
    assert_string_equal(buf, "p0r3\np0r4\n");
    assert_int_equal(cursor(g, 0), 5);
    group_leave(m);
    group_put(g);

    /* earliest (the default) starts at the log start. */
    line = "auto.offset.reset=earliest";
    assert_int_equal(topic_config_apply(t, line, strlen(line)), 0);
    g = make_group(e, t, "early");
    assert_int_equal(cursor(g, 0), 0);
    group_put(g);
    topic_put(t);
}

/* ---- registry and durability ---- */

static void test_create_find(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 1), *u = make_topic(e, "u", 1);
    assert_int_equal(group_create(e->r, t, "b"), 0);
    assert_int_equal(group_create(e->r, t, "a"), 0);
    assert_int_equal(group_create(e->r, u, "a"), 0);
    assert_int_equal(group_create(e->r, t, "c"), 0);
    assert_int_equal(group_create(e->r, t, "a"), -EEXIST);
    assert_int_equal(group_create(e->r, t, "a b"), -EINVAL);
    assert_int_equal(group_create(e->r, t, ""), -EINVAL);
    assert_null(group_find(e->r, t, "zz"));

    struct group *g = group_find(e->r, t, "b");
    assert_non_null(g);
    assert_string_equal(group_name(g), "b");
    assert_ptr_equal(group_topic(g), t);
    struct group *same = group_find_id(e->r, group_id(g));
    assert_ptr_equal(same, g);
    group_put(same);
    struct group *ua = group_find(e->r, u, "a"), *ta = group_find(e->r, t, "a");
    assert_non_null(ua);
    assert_non_null(ta);
    assert_ptr_not_equal(ua, ta);
    assert_true(group_id(ua) != group_id(ta));
    group_put(ua);
    group_put(ta);
    group_put(g);
    assert_null(group_find_id(e->r, 999999));
    topic_put(t);
    topic_put(u);
}

struct names {
    char list[128];
};

static int collect_name(struct group *g, void *arg)
{
    struct names *n = arg;
    strcat(n->list, group_name(g));
    strcat(n->list, ",");
    return 0;
}

static void test_foreach_order(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 1), *u = make_topic(e, "u", 1);
    const char *names[] = {"m", "b", "z", "a-1", "a"};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(group_create(e->r, t, names[i]), 0);
    assert_int_equal(group_create(e->r, u, "c"), 0);
    struct names n = {{0}};
    assert_int_equal(group_foreach(e->r, t, collect_name, &n), 0);
    assert_string_equal(n.list, "a,a-1,b,m,z,");
    memset(&n, 0, sizeof(n));
    assert_int_equal(group_foreach(e->r, u, collect_name, &n), 0);
    assert_string_equal(n.list, "c,");
    topic_put(t);
    topic_put(u);
}

static void test_commits_survive_reopen(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 3);
    for (uint32_t p = 0; p < 3; p++)
        append_records(t, p, 0, 4);
    struct group *g = make_group(e, t, "g");
    struct group *h = make_group(e, t, "h");
    struct group_member *m = join_drain(g, 100);
    char buf[256];
    /* Read everything, then ack by reading past some of it. */
    assert_int_equal(group_member_read(m, 0, buf, sizeof(buf)), 12 * REC);
    assert_int_equal(group_member_read(m, 6 * REC, buf, sizeof(buf)), 6 * REC);
    uint64_t want[3];
    uint64_t sum = 0;
    for (uint32_t p = 0; p < 3; p++) {
        want[p] = cursor(g, p);
        sum += want[p];
    }
    assert_int_equal(sum, 6);
    assert_int_equal(group_cursor_set(h, 2, "3", 0), 0);
    group_leave(m);
    group_put(g);
    group_put(h);
    topic_put(t);

    env_reopen(e);
    t = store_find(e->s, "t");
    assert_non_null(t);
    g = group_find(e->r, t, "g");
    h = group_find(e->r, t, "h");
    assert_non_null(g);
    assert_non_null(h);
    for (uint32_t p = 0; p < 3; p++)
        assert_int_equal(cursor(g, p), want[p]);
    assert_int_equal(cursor(h, 0), 0);
    assert_int_equal(cursor(h, 1), 0);
    assert_int_equal(cursor(h, 2), 3);
    /* And the stream goes on from there. */
    m = join_drain(g, 100);
    uint64_t pos = 0;
    assert_int_equal(read_to_end(m, &pos, buf, sizeof(buf)), 6 * REC);
    for (uint32_t p = 0; p < 3; p++)
        assert_int_equal(cursor(g, p), 4);
    group_leave(m);
    group_put(g);
    group_put(h);
    topic_put(t);

    /* A second reopen sees the last commits. */
    env_reopen(e);
    t = store_find(e->s, "t");
    g = group_find(e->r, t, "g");
    assert_non_null(g);
    for (uint32_t p = 0; p < 3; p++)
        assert_int_equal(cursor(g, p), 4);
    group_put(g);
    topic_put(t);
}

static void test_group_delete(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 1);
    append_records(t, 0, 0, 3);
    struct group *g = make_group(e, t, "g");
    assert_int_equal(group_create(e->r, t, "keep"), 0);
    struct group_member *m = join_drain(g, 100);
    assert_int_equal(group_delete(e->r, t, "g"), -EBUSY);
    struct group *again = group_find(e->r, t, "g");
    assert_ptr_equal(again, g);
    group_put(again);
    char buf[64];
    assert_int_equal(group_member_read(m, 0, buf, sizeof(buf)), 3 * REC);
    assert_int_equal(group_member_read(m, 3 * REC, buf, sizeof(buf)), 0);
    assert_int_equal(cursor(g, 0), 3);
    group_leave(m);
    assert_int_equal(group_delete(e->r, t, "g"), 0);
    assert_null(group_find(e->r, t, "g"));
    assert_int_equal(group_delete(e->r, t, "g"), -ENOENT);
    assert_int_equal(group_delete(e->r, t, "never"), -ENOENT);
    /* The old reference stays usable; joining a deleted group is refused. */
    assert_string_equal(group_name(g), "g");
    struct group_member *late = NULL;
    assert_int_equal(group_join(g, -1, 101, 0, NULL, NULL, &late), -ENOENT);
    group_put(g);
    topic_put(t);

    env_reopen(e);
    t = store_find(e->s, "t");
    assert_null(group_find(e->r, t, "g"));
    g = group_find(e->r, t, "keep");
    assert_non_null(g);
    group_put(g);
    /* Re-created under the same name: a fresh group, durable again. */
    g = make_group(e, t, "g");
    assert_int_equal(cursor(g, 0), 0);
    group_put(g);
    topic_put(t);
    env_reopen(e);
    t = store_find(e->s, "t");
    g = group_find(e->r, t, "g");
    assert_non_null(g);
    assert_int_equal(cursor(g, 0), 0);
    group_put(g);
    topic_put(t);
}

static void test_delete_topic_groups(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 2), *u = make_topic(e, "u", 1);
    append_records(t, 0, 0, 2);
    assert_int_equal(group_create(e->r, t, "a"), 0);
    assert_int_equal(group_create(e->r, t, "b"), 0);
    assert_int_equal(group_create(e->r, u, "a"), 0);
    struct group *g = group_find(e->r, u, "a");
    assert_non_null(g);
    assert_int_equal(group_cursor_set(g, 0, "0", 0), 0);
    group_put(g);

    /* A member still open on a group of the deleted topic reads ENOENT. */
    struct group *ta = group_find(e->r, t, "a");
    struct group_member *m = join_drain(ta, 100);
    assert_int_equal(store_delete_topic(e->s, "t"), 0);
    group_delete_topic(e->r, t);
    assert_null(group_find(e->r, t, "a"));
    assert_null(group_find(e->r, t, "b"));
    char buf[64];
    assert_int_equal(group_member_read(m, 0, buf, sizeof(buf)), -ENOENT);
    group_leave(m);
    group_put(ta);
    struct names n = {{0}};
    assert_int_equal(group_foreach(e->r, t, collect_name, &n), 0);
    assert_string_equal(n.list, "");
    g = group_find(e->r, u, "a");
    assert_non_null(g);
    group_put(g);
    topic_put(t);
    topic_put(u);

    env_reopen(e);
    assert_null(store_find(e->s, "t"));
    t = make_topic(e, "t", 2); /* a new topic of the same name has none of them */
    u = store_find(e->s, "u");
    assert_null(group_find(e->r, t, "a"));
    assert_null(group_find(e->r, t, "b"));
    g = group_find(e->r, u, "a");
    assert_non_null(g);
    group_put(g);
    topic_put(t);
    topic_put(u);
}

static void test_offsets_topic(void **state)
{
    struct env *e = *state;
    struct topic *ot = store_find(e->s, GROUP_OFFSETS_TOPIC);
    assert_non_null(ot);
    struct topic_config cfg;
    topic_config_snapshot(ot, &cfg);
    assert_true(cfg.cleanup_policy & CLEANUP_COMPACT);
    assert_string_equal(cfg.key_separator, "=");
    topic_put(ot);

    /* Creation stores the starting offsets: "<topic>/<group>/<p>=<offset>". */
    struct topic *t = make_topic(e, "t", 2);
    append_records(t, 1, 0, 2);
    const char *line = "auto.offset.reset=latest";
    assert_int_equal(topic_config_apply(t, line, strlen(line)), 0);
    assert_int_equal(group_create(e->r, t, "g"), 0);
    struct offsets_scan sc;
    assert_string_equal(stored_offset(e, "t/g/0", &sc), "0");
    assert_string_equal(stored_offset(e, "t/g/1", &sc), "2");
    assert_int_equal(group_delete(e->r, t, "g"), 0);
    assert_string_equal(stored_offset(e, "t/g/0", &sc), "");
    assert_string_equal(stored_offset(e, "t/g/1", &sc), "");
    topic_put(t);

    /* Still there (and still the one) after a reopen. */
    env_reopen(e);
    ot = store_find(e->s, GROUP_OFFSETS_TOPIC);
    assert_non_null(ot);
    topic_put(ot);
}

/* ---- names ---- */

static void test_group_name_valid(void **state)
{
    (void)state;
    char name[GROUP_NAME_MAX + 2];
    assert_int_equal(group_name_valid("g"), 0);
    assert_int_equal(group_name_valid("my-group_1.v2"), 0);
    assert_int_equal(group_name_valid("..."), 0);
    assert_int_equal(group_name_valid("-"), 0);
    memset(name, 'a', GROUP_NAME_MAX);
    name[GROUP_NAME_MAX] = 0;
    assert_int_equal(group_name_valid(name), 0);
    name[GROUP_NAME_MAX] = 'a';
    name[GROUP_NAME_MAX + 1] = 0;
    assert_int_equal(group_name_valid(name), -EINVAL);

    static const char *bad[] = {"",   ".",   "..",  "a/b", "/",           "a b",  " a",
                                "a ", "a\n", "a=b", "a:b", "caf\xc3\xa9", "a\tb", "a*"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(group_name_valid(bad[i]), -EINVAL);
}

/* ---- regressions found in review ---- */

static int wakes;
static void count_wake(void *arg)
{
    (void)arg;
    wakes++;
}

/* Partitions added to the topic reach the open member even when .info or a
 * cursor file was read (which sizes the group) before the first append. */
static void test_grown_partition_assigned_after_info(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 1);
    struct group *g = make_group(e, t, "g");
    struct group_member *m;
    wakes = 0;
    assert_int_equal(group_join(g, -1, 1, 1, count_wake, NULL, &m), 0);
    char buf[256], info[512];
    assert_int_equal(group_member_read(m, 0, buf, sizeof buf), 0); /* waiting */
    assert_int_equal(topic_config_apply(t, "partitions=2", 12), 0);
    group_info_text(g, info, sizeof info);
    append_records(t, 1, 0, 1);
    group_notify_append(e->r, t, 1);
    assert_true(wakes > 0);
    assert_int_equal(group_member_read(m, 0, buf, sizeof buf), REC);
    assert_memory_equal(buf, "p1r0\n", REC);
    group_leave(m);
    group_put(g);
    topic_put(t);
}

/* A cursor write on p0 does not throw away what the owner read of p1. */
static void test_cursor_write_keeps_other_partitions(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 2);
    append_records(t, 0, 0, 2);
    append_records(t, 1, 0, 2);
    struct group *g = make_group(e, t, "g");
    struct group_member *m = join_drain(g, 1);
    char buf[256];
    assert_int_equal(group_member_read(m, 0, buf, sizeof buf), 4 * REC);
    assert_int_equal(group_cursor_set(g, 0, "latest", 0), 0);
    assert_int_equal(group_member_read(m, 4 * REC, buf, sizeof buf), 0);
    assert_int_equal(cursor(g, 0), 2);
    assert_int_equal(cursor(g, 1), 2);
    group_leave(m);
    group_put(g);
    topic_put(t);
}

/* A cursor write while the reader is inside a record: the record is
 * finished, then the stream goes on from the new cursor. */
static void test_cursor_write_does_not_tear(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 1);
    append_records(t, 0, 0, 1);
    struct group *g = make_group(e, t, "g");
    struct group_member *m = join_drain(g, 1);
    char buf[64];
    assert_int_equal(group_member_read(m, 0, buf, 3), 3);
    assert_int_equal(group_cursor_set(g, 0, "latest", 0), 0);
    append_records(t, 0, 1, 1);
    uint64_t pos = 3;
    assert_int_equal(read_to_end(m, &pos, buf + 3, sizeof buf - 3), 2 * REC - 3);
    assert_memory_equal(buf, "p0r0\np0r1\n", 2 * REC);
    group_leave(m);
    group_put(g);
    topic_put(t);
}

/* A cursor rewind holds when the partition comes back to a member that
 * still has old records of it. */
static void test_rewind_kept_when_partition_returns(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 2);
    append_records(t, 0, 0, 2);
    append_records(t, 1, 0, 2);
    struct group *g = make_group(e, t, "g");
    struct group_member *a, *b;
    assert_int_equal(group_join(g, -1, 1, 1, NULL, NULL, &a), 0);
    char buf[256];
    assert_int_equal(group_member_read(a, 0, buf, sizeof buf), 4 * REC);
    assert_int_equal(group_join(g, -1, 2, 1, NULL, NULL, &b), 0); /* p1 -> b */
    assert_int_equal(group_cursor_set(g, 1, "earliest", 0), 0);
    group_leave(b); /* p1 -> a */
    assert_int_equal(group_member_read(a, 4 * REC, buf, sizeof buf), 2 * REC);
    assert_memory_equal(buf, "p1r0\np1r1\n", 2 * REC);
    assert_int_equal(cursor(g, 1), 0);
    group_leave(a);
    group_put(g);
    topic_put(t);
}

/* Writes through files of a deleted group fail and never bring it back. */
static void test_deleted_group_stays_deleted(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 1);
    append_records(t, 0, 0, 3);
    struct group *g = make_group(e, t, "g");
    struct group_member *m = join_drain(g, 1);
    char buf[64];
    assert_int_equal(group_member_read(m, 0, buf, sizeof buf), 3 * REC);
    assert_int_equal(store_delete_topic(e->s, "t"), 0);
    group_delete_topic(e->r, t);
    assert_int_equal(group_member_sync(m), -ENOENT);
    assert_int_equal(group_cursor_set(g, 0, "2", 0), -ENOENT);
    group_leave(m);
    group_put(g);
    topic_put(t);
    t = make_topic(e, "t", 1);
    assert_int_equal(group_create(e->r, t, "h"), 0);
    g = group_find(e->r, t, "h");
    assert_int_equal(group_delete(e->r, t, "h"), 0);
    assert_int_equal(group_cursor_set(g, 0, "0", 0), -ENOENT);
    group_put(g);
    topic_put(t);
    env_reopen(e);
    t = store_find(e->s, "t");
    assert_null(group_find(e->r, t, "g"));
    assert_null(group_find(e->r, t, "h"));
    topic_put(t);
}

/* Deleting the topic wakes members waiting in follow; they read ENOENT. */
static void test_topic_delete_wakes_followers(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 1);
    struct group *g = make_group(e, t, "g");
    struct group_member *m;
    wakes = 0;
    assert_int_equal(group_join(g, -1, 1, 1, count_wake, NULL, &m), 0);
    char buf[64];
    assert_int_equal(group_member_read(m, 0, buf, sizeof buf), 0);
    assert_int_equal(store_delete_topic(e->s, "t"), 0);
    group_delete_topic(e->r, t);
    assert_true(wakes > 0);
    assert_int_equal(group_member_read(m, 0, buf, sizeof buf), -ENOENT);
    group_leave(m);
    group_put(g);
    topic_put(t);
}

/* A topic marked deleted takes no new group (mkdir racing rmdir). */
static void test_no_group_on_deleted_topic(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 1);
    assert_int_equal(store_delete_topic(e->s, "t"), 0);
    assert_int_equal(group_create(e->r, t, "g"), -ENOENT);
    topic_put(t);
    t = make_topic(e, "t", 1);
    assert_int_equal(group_create(e->r, t, "g"), 0);
    topic_put(t);
}

/* With auto.offset.reset=latest, a partition added to a live group starts
 * at its beginning: its first records are not skipped. */
static void test_new_partition_of_latest_group_from_start(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 1);
    assert_int_equal(topic_config_apply(t, "auto.offset.reset=latest", 24), 0);
    struct group *g = make_group(e, t, "g");
    struct group_member *m;
    assert_int_equal(group_join(g, -1, 1, 1, count_wake, NULL, &m), 0);
    char buf[64];
    assert_int_equal(group_member_read(m, 0, buf, sizeof buf), 0);
    assert_int_equal(topic_config_apply(t, "partitions=2", 12), 0);
    append_records(t, 1, 0, 1);
    group_notify_append(e->r, t, 1);
    assert_int_equal(group_member_read(m, 0, buf, sizeof buf), REC);
    group_leave(m);
    group_put(g);
    topic_put(t);
}

/* A follow member that read everything and waits has its commit stored at
 * once (not only at its next read). */
static void test_idle_follow_commit_is_stored(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 1);
    append_records(t, 0, 0, 1);
    struct group *g = make_group(e, t, "g");
    struct group_member *m;
    assert_int_equal(group_join(g, -1, 1, 1, count_wake, NULL, &m), 0);
    char buf[64];
    assert_int_equal(group_member_read(m, 0, buf, sizeof buf), REC);
    assert_int_equal(group_member_read(m, REC, buf, sizeof buf), 0); /* waits */
    struct offsets_scan sc;
    assert_string_equal(stored_offset(e, "t/g/0", &sc), "1");
    group_leave(m);
    group_put(g);
    topic_put(t);
}

/* A cursor past the end is refused. */
static void test_cursor_past_end_refused(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 1);
    append_records(t, 0, 0, 2);
    struct group *g = make_group(e, t, "g");
    assert_int_equal(group_cursor_set(g, 0, "2", 0), 0);
    assert_int_equal(group_cursor_set(g, 0, "3", 0), -EINVAL);
    assert_int_equal(cursor(g, 0), 2);
    group_put(g);
    topic_put(t);
}

/* ---- cluster: mirrors of the offsets log, members of several brokers ---- */

static struct partition *offsets_partition(struct env *e)
{
    struct topic *ot = store_find(e->s, GROUP_OFFSETS_TOPIC);
    assert_non_null(ot);
    struct partition *p = topic_partition(ot, 0);
    topic_put(ot); /* the store keeps it open */
    return p;
}

static uint64_t offsets_end(struct env *e)
{
    struct partition_info pi;
    partition_info(offsets_partition(e), &pi);
    return pi.end_offset;
}

static struct group_registry *open_mirror(struct env *e)
{
    struct group_registry *m = NULL;
    assert_int_equal(group_registry_open(e->s, 1, &m), 0);
    assert_non_null(m);
    assert_int_equal(group_registry_active(m), 0);
    return m;
}

/* The mirror's committed offset of group `name`, partition p. */
static uint64_t mirror_cursor(struct group_registry *m, struct topic *t, const char *name,
                              uint32_t p)
{
    struct group *g = group_find(m, t, name);
    assert_non_null(g);
    uint64_t off = cursor(g, p);
    group_put(g);
    return off;
}

/* Groups made and commits stored by the active registry appear in a
 * mirror of the same log once it catches up, and so do deletions. */
static void test_mirror_catch_up(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 2);
    append_records(t, 0, 0, 4);
    append_records(t, 1, 0, 4);
    struct group_registry *mr = open_mirror(e);
    assert_int_equal(group_registry_active(e->r), 1);

    struct group *g = make_group(e, t, "g");
    assert_int_equal(group_cursor_set(g, 1, "3", 0), 0);
    assert_int_equal(group_create(e->r, t, "gone"), 0);
    /* Not caught up yet: the mirror has what it replayed at open. */
    assert_null(group_find(mr, t, "g"));
    assert_true(group_registry_log_end(mr) < group_registry_log_end(e->r));

    assert_int_equal(group_registry_catch_up(mr), 0);
    assert_int_equal(group_registry_log_end(mr), group_registry_log_end(e->r));
    assert_int_equal(group_registry_log_end(mr), offsets_end(e));
    assert_int_equal(mirror_cursor(mr, t, "g", 0), 0);
    assert_int_equal(mirror_cursor(mr, t, "g", 1), 3);
    struct group *mg = group_find(mr, t, "gone");
    assert_non_null(mg);
    group_put(mg);

    /* A member's reads and fsync, and a delete: caught up again. */
    struct group_member *m = join_drain(g, 100);
    char buf[256];
    assert_int_equal(group_member_read(m, 0, buf, sizeof(buf)), 5 * REC);
    assert_int_equal(group_member_sync(m), 0);
    assert_int_equal(cursor(g, 0), 4);
    assert_int_equal(cursor(g, 1), 4);
    assert_int_equal(group_delete(e->r, t, "gone"), 0);
    assert_int_equal(mirror_cursor(mr, t, "g", 0), 0); /* still the old view */
    assert_int_equal(group_registry_catch_up(mr), 0);
    assert_int_equal(group_registry_log_end(mr), group_registry_log_end(e->r));
    assert_int_equal(mirror_cursor(mr, t, "g", 0), 4);
    assert_int_equal(mirror_cursor(mr, t, "g", 1), 4);
    assert_null(group_find(mr, t, "gone"));
    /* Nothing new: catching up changes nothing. */
    uint64_t end = group_registry_log_end(mr);
    assert_int_equal(group_registry_catch_up(mr), 0);
    assert_int_equal(group_registry_log_end(mr), end);
    /* An active registry has nothing to catch up with. */
    assert_int_equal(group_registry_catch_up(e->r), 0);

    group_leave(m);
    group_put(g);
    group_registry_close(mr);
    topic_put(t);
}

/* A mirror never writes the log: creates, deletes, cursor writes and its
 * close append nothing and change nothing. */
static void test_mirror_refuses_writes(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 1);
    append_records(t, 0, 0, 4);
    assert_int_equal(group_create(e->r, t, "g"), 0);
    struct group_registry *mr = open_mirror(e); /* replays "g" at open */
    struct group *mg = group_find(mr, t, "g");
    assert_non_null(mg);
    uint64_t end = offsets_end(e);

    assert_int_equal(group_create(mr, t, "x"), -EAGAIN);
    assert_null(group_find(mr, t, "x"));
    assert_int_equal(offsets_end(e), end);
    assert_int_equal(group_cursor_set(mg, 0, "2", 0), -EAGAIN);
    assert_int_equal(cursor(mg, 0), 0);
    assert_int_equal(offsets_end(e), end);
    assert_int_equal(group_delete(mr, t, "g"), -EAGAIN);
    struct group *again = group_find(mr, t, "g");
    assert_ptr_equal(again, mg);
    group_put(again);
    assert_int_equal(offsets_end(e), end);
    assert_int_equal(group_registry_log_end(mr), end);
    group_put(mg);
    group_registry_close(mr);
    assert_int_equal(offsets_end(e), end);

    /* The active registry, deactivated, refuses the same way. */
    group_registry_deactivate(e->r);
    assert_int_equal(group_registry_active(e->r), 0);
    assert_int_equal(group_create(e->r, t, "x"), -EAGAIN);
    assert_null(group_find(e->r, t, "x"));
    assert_int_equal(offsets_end(e), end);
    topic_put(t);
}

/* group_registry_reload(mirror, 1): the mirror becomes the writer; groups
 * keep their ids, and one whose tombstone it replays is gone. The former
 * writer, deactivated, now catches up with it. */
static void test_mirror_reload_active(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 2);
    append_records(t, 0, 0, 4);
    append_records(t, 1, 0, 4);
    assert_int_equal(group_create(e->r, t, "g"), 0);
    assert_int_equal(group_create(e->r, t, "h"), 0);
    struct group_registry *mr = open_mirror(e);
    struct group *mg = group_find(mr, t, "g"), *mh = group_find(mr, t, "h");
    assert_non_null(mg);
    assert_non_null(mh);
    uint64_t gid = group_id(mg);

    /* More commits and a delete the mirror has not replayed yet. */
    struct group *g = group_find(e->r, t, "g");
    assert_int_equal(group_cursor_set(g, 0, "2", 0), 0);
    assert_int_equal(group_cursor_set(g, 1, "latest", 0), 0);
    assert_int_equal(group_delete(e->r, t, "h"), 0);
    group_put(g);
    group_registry_deactivate(e->r);

    assert_int_equal(group_registry_reload(mr, 1), 0);
    assert_int_equal(group_registry_active(mr), 1);
    assert_int_equal(group_registry_log_end(mr), offsets_end(e));
    struct group *after = group_find(mr, t, "g");
    assert_ptr_equal(after, mg);
    assert_int_equal(group_id(after), gid);
    assert_ptr_equal(group_find_id(mr, gid), mg);
    group_put(mg);
    group_put(after);
    assert_int_equal(cursor(mg, 0), 2);
    assert_int_equal(cursor(mg, 1), 4);
    assert_null(group_find(mr, t, "h"));
    /* The old reference to h sees a deleted group. */
    struct group_member *late = NULL;
    assert_int_equal(group_join(mh, -1, 1, 0, NULL, NULL, &late), -ENOENT);
    group_put(mh);

    /* It writes now. */
    uint64_t end = offsets_end(e);
    assert_int_equal(group_create(mr, t, "k"), 0);
    assert_true(offsets_end(e) > end);
    assert_int_equal(group_registry_log_end(mr), offsets_end(e));
    assert_int_equal(group_cursor_set(mg, 0, "3", 0), 0);
    struct group_member *m = join_drain(mg, 100);
    char buf[256];
    assert_int_equal(group_member_read(m, 0, buf, sizeof(buf)), REC);
    assert_memory_equal(buf, "p0r3\n", REC);
    assert_int_equal(group_member_sync(m), 0);
    assert_int_equal(cursor(mg, 0), 4);
    group_leave(m);

    /* The former writer follows. */
    assert_int_equal(group_registry_catch_up(e->r), 0);
    assert_int_equal(group_registry_log_end(e->r), group_registry_log_end(mr));
    struct group *k = group_find(e->r, t, "k");
    assert_non_null(k);
    group_put(k);
    g = group_find(e->r, t, "g");
    assert_int_equal(cursor(g, 0), 4);
    group_put(g);

    group_put(mg);
    group_registry_close(mr);
    topic_put(t);
}

/* The log cut below what a mirror replayed (a new leader's log is
 * shorter): the next catch-up starts over, and the mirror says what the
 * shorter log says. */
static void test_mirror_log_cut(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 1);
    append_records(t, 0, 0, 6);
    struct group *g = make_group(e, t, "g");
    assert_int_equal(group_cursor_set(g, 0, "2", 0), 0);
    uint64_t cut = offsets_end(e);
    assert_int_equal(group_cursor_set(g, 0, "5", 0), 0);
    assert_int_equal(group_create(e->r, t, "later"), 0);
    struct group_registry *mr = open_mirror(e);
    assert_int_equal(mirror_cursor(mr, t, "g", 0), 5);
    struct group *ml = group_find(mr, t, "later");
    assert_non_null(ml);
    group_put(ml);

    assert_int_equal(partition_truncate(offsets_partition(e), cut), 0);
    assert_int_equal(offsets_end(e), cut);
    assert_int_equal(group_registry_catch_up(mr), 0);
    assert_int_equal(group_registry_log_end(mr), cut);
    assert_int_equal(mirror_cursor(mr, t, "g", 0), 2);
    assert_null(group_find(mr, t, "later"));
    group_put(g);
    group_registry_close(mr);
    topic_put(t);
}

/* A mirror opened before the log exists (no coordinator made it yet)
 * refuses writes, does not make it, and attaches once it is there. */
static void test_mirror_before_log(void **state)
{
    struct env *e = *state;
    env_close(e);
    char dir[80];
    snprintf(dir, sizeof(dir), "%s/fresh", e->dir);
    struct store *s;
    assert_int_equal(store_open(dir, 1, &s), 0);
    struct group_registry *mr = NULL;
    assert_int_equal(group_registry_open(s, 1, &mr), 0);
    struct topic *t;
    assert_int_equal(store_create_topic(s, "t", &t), 0);
    assert_int_equal(group_create(mr, t, "g"), -EAGAIN);
    assert_null(store_find(s, GROUP_OFFSETS_TOPIC));
    assert_int_equal(group_registry_catch_up(mr), 0);
    assert_int_equal(group_registry_log_end(mr), 0);

    struct group_registry *r = NULL;
    assert_int_equal(group_registry_open(s, 0, &r), 0); /* makes the log */
    assert_int_equal(group_create(r, t, "g"), 0);
    assert_int_equal(group_registry_catch_up(mr), 0);
    struct group *g = group_find(mr, t, "g");
    assert_non_null(g);
    group_put(g);
    assert_int_equal(group_registry_log_end(mr), group_registry_log_end(r));
    group_registry_close(mr);
    group_registry_close(r);
    topic_put(t);
    store_close(s);
}

/* Owners of a partition as .info shows them: "B:PID" for broker B >= 0,
 * "PID" on one node (-1), "-" for none. */
static void info_owners(struct group *g, char owners[][24], int n)
{
    char text[1024];
    size_t len = group_info_text(g, text, sizeof(text) - 1);
    text[len] = 0;
    int i = 0;
    for (char *line = text; *line; i++) {
        unsigned p;
        assert_true(i < n);
        assert_int_equal(
            sscanf(line, "p%u committed=%*u end_offset=%*u lag=%*u owner=%23s", &p, owners[i]), 2);
        assert_int_equal(p, (unsigned)i);
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        line = nl + 1;
    }
    assert_int_equal(i, n);
}

/* Members of several brokers (the same pid on two of them) share the
 * partitions: disjoint, balanced, each record to exactly one; .info and
 * the partition states name each owner by broker and pid. */
static void test_assignment_across_brokers(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 6);
    for (uint32_t p = 0; p < 6; p++)
        append_records(t, p, 0, 3);
    struct group *g = make_group(e, t, "g");
    static const int brokers[3] = {1, 2, 0};
    static const pid_t pids[3] = {100, 100, 200};
    struct group_member *m[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(group_join(g, brokers[i], pids[i], 0, NULL, NULL, &m[i]), 0);

    uint32_t n = 0;
    struct group_partition_state *st = group_partition_states(g, &n);
    assert_non_null(st);
    assert_int_equal(n, 6);
    char owners[6][24];
    info_owners(g, owners, 6);
    int per[3] = {0, 0, 0}, owner_of[6];
    for (uint32_t p = 0; p < 6; p++) {
        owner_of[p] = -1;
        for (int i = 0; i < 3; i++)
            if (st[p].owner_broker == brokers[i] && st[p].owner == pids[i])
                owner_of[p] = i;
        assert_true(owner_of[p] >= 0);
        per[owner_of[p]]++;
        char want[24];
        snprintf(want, sizeof(want), "%d:%d", brokers[owner_of[p]], (int)pids[owner_of[p]]);
        assert_string_equal(owners[p], want);
    }
    free(st);
    for (int i = 0; i < 3; i++)
        assert_int_equal(per[i], 2);

    char buf[3][256];
    for (int i = 0; i < 3; i++) {
        uint64_t pos = 0;
        assert_int_equal(read_to_end(m[i], &pos, buf[i], sizeof(buf[i])), 6 * REC);
    }
    for (uint32_t p = 0; p < 6; p++) {
        for (uint32_t j = 0; j < 3; j++) {
            char rec[16];
            snprintf(rec, sizeof(rec), "p%ur%u\n", p, j);
            for (int i = 0; i < 3; i++)
                assert_int_equal(strstr(buf[i], rec) != NULL, i == owner_of[p]);
        }
        assert_int_equal(cursor(g, p), 3);
    }

    /* The member of broker 2 leaves: its partitions go to the others. */
    group_leave(m[1]);
    info_owners(g, owners, 6);
    for (uint32_t p = 0; p < 6; p++) {
        assert_true(!strcmp(owners[p], "1:100") || !strcmp(owners[p], "0:200"));
        if (owner_of[p] != 1)
            assert_string_equal(owners[p], owner_of[p] == 0 ? "1:100" : "0:200");
    }
    group_leave(m[0]);
    group_leave(m[2]);
    info_owners(g, owners, 6);
    for (uint32_t p = 0; p < 6; p++)
        assert_string_equal(owners[p], "-");

    /* One node: the plain pid. */
    struct group_member *one;
    assert_int_equal(group_join(g, -1, 4242, 0, NULL, NULL, &one), 0);
    info_owners(g, owners, 6);
    st = group_partition_states(g, &n);
    for (uint32_t p = 0; p < 6; p++) {
        assert_string_equal(owners[p], "4242");
        assert_int_equal(st[p].owner, 4242);
        assert_int_equal(st[p].owner_broker, -1);
    }
    free(st);
    group_leave(one);
    group_put(g);
    topic_put(t);
}

/* The log cut below what a mirror replayed and grown again past that point
 * before the mirror's next catch-up (an unclean election of
 * __consumer_offsets p0: the new leader's record at the cut differs): the
 * mirror notices the cut (partition_info.truncations) and starts over, as
 * test_mirror_log_cut, instead of keeping the commit that was cut. */
static void test_mirror_log_cut_and_regrown(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 1);
    append_records(t, 0, 0, 6);
    struct group *g = make_group(e, t, "g");
    assert_int_equal(group_cursor_set(g, 0, "2", 0), 0);
    uint64_t cut = offsets_end(e);
    assert_int_equal(group_cursor_set(g, 0, "5", 0), 0);
    struct group_registry *mr = open_mirror(e);
    assert_int_equal(mirror_cursor(mr, t, "g", 0), 5);
    assert_int_equal(partition_truncate(offsets_partition(e), cut), 0);
    assert_int_equal(group_cursor_set(g, 0, "3", 0), 0); /* the new leader's record at `cut` */
    assert_int_equal(offsets_end(e), cut + 1);
    assert_int_equal(group_registry_catch_up(mr), 0);
    assert_int_equal(mirror_cursor(mr, t, "g", 0), 3);
    group_put(g);
    group_registry_close(mr);
    topic_put(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_assign_balanced),
        cmocka_unit_test(test_assign_join_sticky),
        cmocka_unit_test(test_assign_leave_sticky),
        cmocka_unit_test(test_assign_random_sequences),
        cmocka_unit_test(test_assign_arbitrary_start),
        cmocka_unit_test_setup_teardown(test_read_in_order_and_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_acks_delivered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_leaves_a_torn_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leave_without_ack_redelivers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_moved_partition_not_committed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grown_partition_assigned_after_info, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cursor_write_keeps_other_partitions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cursor_write_does_not_tear, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rewind_kept_when_partition_returns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deleted_group_stays_deleted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_topic_delete_wakes_followers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_group_on_deleted_topic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_partition_of_latest_group_from_start, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_idle_follow_commit_is_stored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cursor_past_end_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_never_moves_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_record_finished, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_members_disjoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follow_wakeups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cursor_set_specs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cursor_set_restarts_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auto_offset_reset_latest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_find, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreach_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commits_survive_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_topic_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offsets_topic, setup, teardown),
        cmocka_unit_test(test_group_name_valid),
        cmocka_unit_test_setup_teardown(test_mirror_catch_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mirror_refuses_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mirror_reload_active, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mirror_log_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mirror_before_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_assignment_across_brokers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mirror_log_cut_and_regrown, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
