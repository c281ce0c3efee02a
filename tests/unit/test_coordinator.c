/* test_coordinator.c - the group coordinator on one node
 * (replicate/coordinator.c with no cluster: this broker coordinates every
 * group and every request is served in-process by coord_serve, the same
 * function that serves FRAME_GROUP in a cluster).
 *
 * A real store and group registry in a temp dir, as fs/main.c opens them
 * without ZooKeeper. Checked: mkdir/rmdir of a group through the
 * coordinator (EEXIST, EINVAL, ENOENT, EBUSY while a member is joined);
 * two members of a 4-partition group read only their own partitions'
 * records, none to both; fsync commits; a leave hands the partitions to
 * the other member from what was acknowledged (at-least-once, nothing
 * acknowledged twice); a cursor write moves the cursor and restarts the
 * owner there; .info names the owners by pid; a follow member's wake
 * callback runs when its partition grows; a member of a deleted topic gets
 * ENOENT at once; after coord_stop a member read or sync fails with EIO
 * without the long retry, and coord_leave still frees everything (the
 * sanitize build checks for leaks); a commit the core refuses (EFBIG) fails
 * with that errno at once, not after the retry time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "coordinator.h"
#include "group.h"
#include "logger.h"
#include "partition.h"
#include "store.h"
#include "topic.h"

struct env {
    char dir[64];
    struct store *s;
    struct group_registry *r;
    struct coord *c;
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
    struct env *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    strcpy(e->dir, "/tmp/topicfs-coord-XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    assert_int_equal(store_open(e->dir, 1, &e->s), 0);
    assert_int_equal(group_registry_open(e->s, 0, &e->r), 0);
    struct coord_options o = {.store = e->s, .groups = e->r};
    assert_int_equal(coord_open(&o, &e->c), 0);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    coord_free(e->c); /* stops it first, as fs/main.c does */
    group_registry_close(e->r);
    store_close(e->s);
    nftw(e->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(e);
    return 0;
}

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

/* Record j of partition p is "p<p>r<j>\n": REC bytes while j < 10. Appended
 * as fs/ does it: the append, then the groups are told. */
#define REC 5

static void append_records(struct env *e, struct topic *t, uint32_t p, uint32_t from,
                           uint32_t count)
{
    for (uint32_t j = from; j < from + count; j++) {
        char v[32];
        struct batch_builder b;
        int n = snprintf(v, sizeof(v), "p%ur%u\n", p, j);
        batch_builder_init(&b);
        assert_int_equal(batch_builder_add_record(&b, (uint32_t)n, -1), 0);
        assert_int_equal(batch_builder_add_values(&b, v, (size_t)n), 0);
        assert_int_equal(partition_append(topic_partition(t, p), &b, 1000, NULL), 0);
        batch_builder_free(&b);
    }
    group_notify_append(e->r, t, p);
}

static struct group *make_group(struct env *e, struct topic *t, const char *name)
{
    assert_int_equal(coord_group_create(e->c, t, name), 0);
    struct group *g = group_find(e->r, t, name);
    assert_non_null(g);
    return g;
}

static uint64_t cursor(struct group *g, uint32_t p)
{
    uint64_t off = UINT64_MAX;
    assert_int_equal(group_cursor_get(g, p, &off), 0);
    return off;
}

static atomic_int wakes;

static void on_wake(void *arg)
{
    (void)arg;
    atomic_fetch_add(&wakes, 1);
}

/* A member of this mount, its wakes counted in `wakes` (as fs/ passes its
 * member_wake: the coordinator calls it for every local member). */
static struct coord_member *join(struct env *e, struct group *g, pid_t pid, int follow)
{
    struct coord_member *m = NULL;
    assert_int_equal(coord_join(e->c, g, pid, follow, on_wake, NULL, &m), 0);
    assert_non_null(m);
    return m;
}

/* Reads a drain member from *pos to end of file (which acknowledges all
 * it read); returns the bytes read, NUL-terminated in buf. */
static size_t read_to_end(struct coord_member *m, uint64_t *pos, char *buf, size_t cap)
{
    size_t len = 0;
    for (;;) {
        ssize_t n = coord_member_read(m, *pos, buf + len, cap - len - 1);
        assert_true(n >= 0);
        if (n == 0)
            break;
        len += (size_t)n;
        *pos += (uint64_t)n;
        assert_true(len < cap - 1);
    }
    buf[len] = 0;
    return len;
}

/* Partition p's owner as .info has it: its pid, or -1 for none. */
static void info_owners(struct env *e, struct group *g, int *owner, int n)
{
    size_t len = 0;
    char *text = coord_group_info(e->c, g, &len);
    assert_non_null(text);
    char *copy = strndup(text, len);
    free(text);
    int i = 0;
    for (char *line = copy; *line; i++) {
        unsigned p;
        char own[24];
        assert_true(i < n);
        assert_int_equal(
            sscanf(line, "p%u committed=%*u end_offset=%*u lag=%*u owner=%23s", &p, own), 2);
        assert_int_equal(p, (unsigned)i);
        assert_null(strchr(own, ':')); /* one node: no broker */
        owner[i] = strcmp(own, "-") ? atoi(own) : -1;
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        line = nl + 1;
    }
    assert_int_equal(i, n);
    free(copy);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_one_node(void **state)
{
    struct env *e = *state;
    assert_int_equal(coord_coordinator(e->c), -1);
    assert_int_equal(coord_member_count(e->c), 0);
    coord_refresh(e->c); /* nothing to do on one node */
}

static void test_create_delete(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 1);
    append_records(e, t, 0, 0, 2);
    assert_int_equal(coord_group_create(e->c, t, "g"), 0);
    struct group *g = group_find(e->r, t, "g");
    assert_non_null(g);
    assert_int_equal(coord_group_create(e->c, t, "g"), -EEXIST);
    assert_int_equal(coord_group_create(e->c, t, "a b"), -EINVAL);
    assert_int_equal(coord_group_create(e->c, t, ""), -EINVAL);
    assert_null(group_find(e->r, t, "a b"));
    assert_int_equal(coord_group_delete(e->c, t, "nope"), -ENOENT);
    assert_int_equal(coord_group_delete(e->c, t, "a/b"), -ENOENT);

    /* EBUSY while a member is joined (after the second it waits for one
     * closed just before), and the group stays. */
    struct coord_member *m = join(e, g, 100, 0);
    assert_int_equal(coord_member_count(e->c), 1);
    assert_int_equal(coord_group_delete(e->c, t, "g"), -EBUSY);
    struct group *again = group_find(e->r, t, "g");
    assert_ptr_equal(again, g);
    group_put(again);
    coord_leave(m);
    assert_int_equal(coord_member_count(e->c), 0);
    assert_int_equal(coord_group_delete(e->c, t, "g"), 0);
    assert_null(group_find(e->r, t, "g"));
    assert_int_equal(coord_group_delete(e->c, t, "g"), -ENOENT);
    /* Joining a group deleted meanwhile is refused at once. */
    struct coord_member *late = NULL;
    assert_int_equal(coord_join(e->c, g, 101, 0, on_wake, NULL, &late), -ENOENT);
    assert_null(late);
    group_put(g);
    /* Made again: a fresh group. */
    g = make_group(e, t, "g");
    assert_int_equal(cursor(g, 0), 0);
    group_put(g);
    topic_put(t);
}

/* Records of the member's stream, as "p<p>r<j>" lines: marks each in
 * seen[p][j] (which must be 0) and returns how many. */
static int mark_records(const char *buf, int seen[4][8], int who)
{
    int n = 0;
    for (const char *l = buf; *l; n++) {
        unsigned p, j;
        assert_int_equal(sscanf(l, "p%ur%u\n", &p, &j), 2);
        assert_true(p < 4 && j < 8);
        assert_int_equal(seen[p][j], 0);
        seen[p][j] = who;
        l = strchr(l, '\n');
        assert_non_null(l);
        l++;
    }
    return n;
}

static void test_two_members(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 4);
    for (uint32_t p = 0; p < 4; p++)
        append_records(e, t, p, 0, 3);
    struct group *g = make_group(e, t, "g");
    struct coord_member *a = join(e, g, 101, 0);
    struct coord_member *b = join(e, g, 102, 0);
    assert_int_equal(coord_member_count(e->c), 2);
    int owner[4], per_a = 0;
    info_owners(e, g, owner, 4);
    for (int p = 0; p < 4; p++) {
        assert_true(owner[p] == 101 || owner[p] == 102);
        per_a += owner[p] == 101;
    }
    assert_int_equal(per_a, 2);

    /* Each reads its own partitions, all of them, none of the other's. */
    char ba[256], bb[256];
    ssize_t na = coord_member_read(a, 0, ba, sizeof(ba) - 1);
    ssize_t nb = coord_member_read(b, 0, bb, sizeof(bb) - 1);
    assert_int_equal(na, 6 * REC);
    assert_int_equal(nb, 6 * REC);
    ba[na] = bb[nb] = 0;
    int seen[4][8] = {{0}};
    assert_int_equal(mark_records(ba, seen, 101), 6);
    assert_int_equal(mark_records(bb, seen, 102), 6);
    for (int p = 0; p < 4; p++)
        for (int j = 0; j < 3; j++)
            assert_int_equal(seen[p][j], owner[p]);
    /* Delivered, not acknowledged: nothing committed yet. */
    for (uint32_t p = 0; p < 4; p++)
        assert_int_equal(cursor(g, p), 0);

    /* fsync commits everything a received. */
    assert_int_equal(coord_member_sync(a), 0);
    for (uint32_t p = 0; p < 4; p++)
        assert_int_equal(cursor(g, p), owner[p] == 101 ? 3 : 0);
    /* b acknowledges its first two records by reading past them. */
    char tmp[256];
    assert_int_equal(coord_member_read(b, 2 * REC, tmp, sizeof(tmp)), 4 * REC);
    assert_int_equal(coord_member_read(b, 2 * REC, tmp, sizeof(tmp)), 4 * REC);
    assert_int_equal(coord_member_read(b, 0, tmp, sizeof(tmp)), -ESPIPE);
    unsigned p0, j0, p1, j1;
    assert_int_equal(sscanf(bb, "p%ur%u\np%ur%u\n", &p0, &j0, &p1, &j1), 4);
    uint64_t acked_b = 0;
    for (uint32_t p = 0; p < 4; p++)
        if (owner[p] == 102)
            acked_b += cursor(g, p);
    assert_int_equal(acked_b, 2);

    /* b leaves: a gets all four partitions, b's from what b acknowledged. */
    coord_leave(b);
    assert_int_equal(coord_member_count(e->c), 1);
    info_owners(e, g, owner, 4);
    for (int p = 0; p < 4; p++)
        assert_int_equal(owner[p], 101);
    uint64_t pos = (uint64_t)na;
    char more[256];
    assert_int_equal(read_to_end(a, &pos, more, sizeof(more)), 4 * REC);
    int again[4][8] = {{0}};
    assert_int_equal(mark_records(more, again, 101), 4);
    for (int p = 0; p < 4; p++)
        for (int j = 0; j < 3; j++) {
            /* Redelivered exactly what b received and did not acknowledge. */
            int acked = (p == (int)p0 && j == (int)j0) || (p == (int)p1 && j == (int)j1);
            int want = seen[p][j] == 102 && !acked;
            assert_int_equal(again[p][j] != 0, want);
        }
    for (uint32_t p = 0; p < 4; p++)
        assert_int_equal(cursor(g, p), 3);
    coord_leave(a);
    assert_int_equal(coord_member_count(e->c), 0);
    info_owners(e, g, owner, 4);
    for (int p = 0; p < 4; p++)
        assert_int_equal(owner[p], -1);
    group_put(g);
    topic_put(t);
}

static void test_cursor_set(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 1);
    append_records(e, t, 0, 0, 5);
    struct group *g = make_group(e, t, "g");
    struct coord_member *m = join(e, g, 100, 0);
    char buf[256];
    assert_int_equal(coord_member_read(m, 0, buf, sizeof(buf)), 5 * REC);

    assert_int_equal(coord_cursor_set(e->c, g, 0, "1", 0), 0);
    assert_int_equal(cursor(g, 0), 1);
    /* The owner restarts there: r1..r4 again, and reaching the end commits. */
    uint64_t pos = 5 * REC;
    assert_int_equal(read_to_end(m, &pos, buf, sizeof(buf)), 4 * REC);
    assert_string_equal(buf, "p0r1\np0r2\np0r3\np0r4\n");
    assert_int_equal(cursor(g, 0), 5);

    /* Refused writes change nothing. */
    char spec[200];
    memset(spec, '1', sizeof(spec) - 1);
    spec[sizeof(spec) - 1] = 0;
    assert_int_equal(coord_cursor_set(e->c, g, 0, "x", 0), -EINVAL);
    assert_int_equal(coord_cursor_set(e->c, g, 0, "6", 0), -EINVAL); /* past the end */
    assert_int_equal(coord_cursor_set(e->c, g, 0, spec, 0), -EINVAL);
    assert_int_equal(coord_cursor_set(e->c, g, 1, "0", 0), -ENOENT);
    assert_int_equal(cursor(g, 0), 5);
    assert_int_equal(coord_cursor_set(e->c, g, 0, "earliest", 0), 0);
    assert_int_equal(cursor(g, 0), 0);
    coord_leave(m);
    group_put(g);
    topic_put(t);
}

static void test_follow_wake(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 2);
    struct group *g = make_group(e, t, "g");
    atomic_store(&wakes, 0);
    struct coord_member *m = join(e, g, 100, 1);
    char buf[256];
    assert_int_equal(coord_member_read(m, 0, buf, sizeof(buf)), 0); /* waits */
    int before = atomic_load(&wakes);
    append_records(e, t, 1, 0, 2);
    assert_true(atomic_load(&wakes) > before);
    assert_int_equal(coord_member_read(m, 0, buf, sizeof(buf)), 2 * REC);
    assert_memory_equal(buf, "p1r0\np1r1\n", 2 * REC);
    /* Not waiting (its last read found records): no wake. */
    before = atomic_load(&wakes);
    append_records(e, t, 0, 0, 1);
    assert_int_equal(atomic_load(&wakes), before);
    assert_int_equal(coord_member_read(m, 2 * REC, buf, sizeof(buf)), REC);
    assert_int_equal(coord_member_read(m, 3 * REC, buf, sizeof(buf)), 0);
    before = atomic_load(&wakes);
    append_records(e, t, 0, 1, 1);
    assert_true(atomic_load(&wakes) > before);

    /* A second member takes a partition: the first is woken by the
     * rebalance (through the coordinator's wake of its local member). */
    assert_int_equal(coord_member_read(m, 3 * REC, buf, sizeof(buf)), REC);
    assert_int_equal(coord_member_read(m, 4 * REC, buf, sizeof(buf)), 0);
    before = atomic_load(&wakes);
    struct coord_member *n = join(e, g, 101, 1);
    assert_true(atomic_load(&wakes) > before);
    coord_leave(n);
    coord_leave(m);
    group_put(g);
    topic_put(t);
}

/* A member whose topic was deleted reads ENOENT at once: not retried. */
static void test_deleted_topic_member(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 1);
    append_records(e, t, 0, 0, 2);
    struct group *g = make_group(e, t, "g");
    struct coord_member *m = join(e, g, 100, 0);
    assert_int_equal(store_delete_topic(e->s, "t"), 0);
    group_delete_topic(e->r, t);
    char buf[64];
    int64_t start = mono_ms();
    assert_int_equal(coord_member_read(m, 0, buf, sizeof(buf)), -ENOENT);
    assert_int_equal(coord_member_sync(m), -ENOENT);
    /* Bound far below the 41 s of retries an answer that may change gets. */
    assert_true(mono_ms() - start < 10000);
    coord_leave(m);
    assert_int_equal(coord_member_count(e->c), 0);
    group_put(g);
    topic_put(t);
}

/* After coord_stop every member operation fails with EIO without the long
 * retry, .info falls back to this mount's view, and coord_leave frees the
 * members (checked for leaks by the sanitize build). */
static void test_stop(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 2);
    append_records(e, t, 0, 0, 3);
    append_records(e, t, 1, 0, 3);
    struct group *g = make_group(e, t, "g");
    struct coord_member *a = join(e, g, 100, 0);
    struct coord_member *b = join(e, g, 101, 1);
    char buf[256];
    assert_int_equal(coord_member_read(a, 0, buf, sizeof(buf)), 3 * REC);
    assert_int_equal(coord_member_read(b, 0, buf, sizeof(buf)), 3 * REC);
    assert_int_equal(coord_member_read(a, REC, buf, sizeof(buf)), 2 * REC); /* acks r0 */
    assert_int_equal(coord_member_count(e->c), 2);

    coord_stop(e->c);
    assert_int_equal(coord_member_count(e->c), 0);
    int64_t start = mono_ms();
    assert_int_equal(coord_member_read(a, REC, buf, sizeof(buf)), -EIO);
    assert_int_equal(coord_member_read(b, 3 * REC, buf, sizeof(buf)), -EIO);
    assert_int_equal(coord_member_sync(a), -EIO);
    assert_int_equal(coord_group_create(e->c, t, "h"), -EIO);
    assert_int_equal(coord_cursor_set(e->c, g, 0, "0", 0), -EIO);
    struct coord_member *late = NULL;
    assert_int_equal(coord_join(e->c, g, 102, 0, on_wake, NULL, &late), -EIO);
    assert_null(late);
    /* Bound far below the 41 s of retries a running coordinator allows. */
    assert_true(mono_ms() - start < 10000);
    size_t len = 0;
    char *info = coord_group_info(e->c, g, &len);
    assert_non_null(info);
    assert_true(len > 0);
    assert_non_null(memmem(info, len, "p1 ", 3));
    free(info);
    /* What was acknowledged before the stop is kept. */
    assert_true(cursor(g, 0) >= 1 || cursor(g, 1) >= 1);
    coord_leave(a);
    coord_leave(b);
    group_put(g);
    topic_put(t);
}

/* An answer of the core that no other coordinator could change (here EFBIG,
 * from a file size limit while __consumer_offsets is appended to) is the
 * answer at once: an fsync of a member or a group mkdir fails with the
 * core's errno, as group_member_sync and group_create do, instead of being
 * tried again for the retry time and reported as EIO. */
static void test_refused_commit_not_retried(void **state)
{
    struct env *e = *state;
    struct topic *t = make_topic(e, "t", 1);
    append_records(e, t, 0, 0, 3);
    struct group *g = make_group(e, t, "g");
    struct coord_member *m = join(e, g, 100, 0);
    char buf[64];
    assert_int_equal(coord_member_read(m, 0, buf, sizeof(buf)), 3 * REC);
    struct rlimit was, low;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &was), 0);
    signal(SIGXFSZ, SIG_IGN);
    low = was;
    low.rlim_cur = 1; /* no file may grow */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &low), 0);
    int64_t start = mono_ms();
    int sync = coord_member_sync(m);
    int create = coord_group_create(e->c, t, "h");
    int64_t took = mono_ms() - start;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &was), 0);
    signal(SIGXFSZ, SIG_DFL);
    assert_int_equal(sync, -EFBIG);
    assert_int_equal(create, -EFBIG);
    assert_null(group_find(e->r, t, "h"));
    /* Bound far below the 41 s of retries. */
    assert_true(took < 10000);
    coord_leave(m);
    group_put(g);
    topic_put(t);
}

int main(void)
{
    logger_init("test_coordinator", 0, LOG_LEVEL_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_node, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_members, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cursor_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follow_wake, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deleted_topic_member, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_commit_not_retried, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
