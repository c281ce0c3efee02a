/* test_cleaner.c - the cleaner's decisions (which segments retention
 * removes), what compaction keeps (latest per key, keyless records,
 * tombstones until delete.retention.ms), crash points inside a compaction
 * pass, the time index and the lz4 codec path through a partition. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleaner.h"
#include "compaction.h"
#include "partition.h"

static void test_retention_count(void **state)
{
    (void)state;
    struct segment_stat s[4] = {{100, 1000}, {100, 2000}, {100, 3000}, {100, 4000}};
    assert_int_equal(retention_count(s, 1, 99999, 1, -1), 0);
    /* time: older than now - retention.ms, never the active (last) one */
    assert_int_equal(retention_count(s, 4, 2500, 1000, -1), 1);
    assert_int_equal(retention_count(s, 4, 10000, 1000, -1), 3);
    assert_int_equal(retention_count(s, 4, 10000, -1, -1), 0);
    /* size: Kafka removes while the rest stays >= retention.bytes */
    assert_int_equal(retention_count(s, 4, 0, -1, 400), 0);
    assert_int_equal(retention_count(s, 4, 0, -1, 300), 1);
    assert_int_equal(retention_count(s, 4, 0, -1, 250), 1);
    assert_int_equal(retention_count(s, 4, 0, -1, 0), 3);
    /* both: the larger count wins */
    assert_int_equal(retention_count(s, 4, 2500, 1000, 200), 2);
}

static void test_tombstone(void **state)
{
    (void)state;
    struct record_view r = {.value = (const uint8_t *)"k:\n", .value_len = 3, .key_len = 1};
    assert_true(compaction_is_tombstone(&r, 1));
    r.value = (const uint8_t *)"k:";
    r.value_len = 2;
    assert_true(compaction_is_tombstone(&r, 1));
    r.value = (const uint8_t *)"k:v\n";
    r.value_len = 4;
    assert_false(compaction_is_tombstone(&r, 1));
    r.key_len = -1;
    assert_false(compaction_is_tombstone(&r, 1));
    r.value = (const uint8_t *)"key::\n";
    r.value_len = 6;
    r.key_len = 3;
    assert_true(compaction_is_tombstone(&r, 2));
}

/* ---- a partition in a temp dir ---- */

static int rm_entry(const char *p, const struct stat *sb, int f, struct FTW *w)
{
    (void)sb;
    (void)f;
    (void)w;
    return remove(p);
}

struct fixture {
    char dir[64];
    struct partition *p;
    struct partition_settings st;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    strcpy(f->dir, "/tmp/topicfs-cleaner-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->st.segment_bytes = 600;
    f->st.segment_ms = INT64_MAX;
    f->st.max_message_bytes = 1 << 20;
    f->st.codec = BATCH_CODEC_NONE;
    assert_int_equal(partition_open(f->dir, &f->st, &f->p), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    partition_close(f->p);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    compaction_crash_point = 0;
    compaction_fault_at = 0;
    return 0;
}

/* Appends "key:value\n" (or a keyless line when key is NULL) as one batch. */
static void append(struct partition *p, const char *key, const char *value, int64_t ts)
{
    char line[128];
    struct batch_builder b;
    int n = key ? snprintf(line, sizeof(line), "%s:%s\n", key, value)
                : snprintf(line, sizeof(line), "%s\n", value);
    batch_builder_init(&b);
    assert_int_equal(batch_builder_add_record(&b, (uint32_t)n, key ? (int32_t)strlen(key) : -1), 0);
    assert_int_equal(batch_builder_add_values(&b, line, (size_t)n), 0);
    assert_int_equal(partition_append(p, &b, ts, NULL), 0);
    batch_builder_free(&b);
}

struct dump {
    char text[65536];
    size_t len;
    uint64_t offsets[4096];
    size_t n;
};

static int dump_record(const struct record_view *r, void *arg)
{
    struct dump *d = arg;
    memcpy(d->text + d->len, r->value, r->value_len);
    d->len += r->value_len;
    d->offsets[d->n++] = r->offset;
    return 0;
}

static void dump_all(struct partition *p, struct dump *d)
{
    struct partition_cursor c;
    uint64_t next;
    memset(d, 0, sizeof(*d));
    partition_cursor_init(&c);
    assert_int_equal(partition_fetch(p, &c, 0, 4096, dump_record, d, &next), 0);
    partition_cursor_free(&c);
}

static const struct compaction_rules rules = {
    .key_sep = ":", .key_sep_len = 1, .delete_retention_ms = 1000, .min_dirty_ratio = 0.0};

static void fill_n(struct partition *p, int n)
{
    for (int i = 0; i < n; i++) {
        char key[8], val[16];
        snprintf(key, sizeof(key), "k%d", i % 4);
        snprintf(val, sizeof(val), "v%d", i);
        append(p, key, val, 1000 + i);
        if (i % 10 == 3)
            append(p, NULL, "nokey", 1000 + i);
    }
}

static void fill(struct partition *p)
{
    fill_n(p, 60);
}

static void test_compaction_keeps_latest(void **state)
{
    struct fixture *f = *state;
    struct compaction_result res;
    struct dump before, after;
    fill(f->p);
    dump_all(f->p, &before);
    struct partition_info pi;
    partition_info(f->p, &pi);
    assert_true(pi.segments > 3);
    assert_int_equal(compaction_run(f->p, &rules, 2000, &res), 1);
    dump_all(f->p, &after);
    assert_true(after.n < before.n);
    /* Offsets are the original ones, increasing; values match. */
    for (size_t i = 0; i < after.n; i++) {
        if (i)
            assert_true(after.offsets[i] > after.offsets[i - 1]);
    }
    /* The latest k0..k3 and every keyless record survive. */
    assert_non_null(strstr(after.text, "k0:v56\n"));
    assert_non_null(strstr(after.text, "k3:v59\n"));
    size_t nokey = 0;
    for (const char *s = after.text; (s = strstr(s, "nokey")); s++)
        nokey++;
    assert_int_equal(nokey, 6);
    assert_null(strstr(after.text, "k0:v0\n"));
    partition_info(f->p, &pi);
    assert_int_equal(pi.end_offset, 66);
    /* The view shows exactly the survivors; a second pass finds nothing dirty. */
    struct partition_view v;
    partition_current_view(f->p, &v);
    assert_int_equal(partition_view_size(f->p, &v), after.len);
    assert_int_equal(compaction_run(f->p, &rules, 2000, &res), 0);
    /* Reopen: same content. */
    partition_close(f->p);
    assert_int_equal(partition_open(f->dir, &f->st, &f->p), 0);
    struct dump again;
    dump_all(f->p, &again);
    assert_int_equal(again.len, after.len);
    assert_memory_equal(again.text, after.text, after.len);
}

static void test_compaction_tombstones(void **state)
{
    struct fixture *f = *state;
    struct compaction_result res;
    struct dump d;
    for (int i = 0; i < 20; i++)
        append(f->p, "dead", "x", 1000);
    append(f->p, "dead", "", 5000); /* tombstone */
    for (int i = 0; i < 40; i++)
        append(f->p, "live", "y", 6000);
    assert_int_equal(compaction_run(f->p, &rules, 5500, &res), 1);
    dump_all(f->p, &d);
    assert_non_null(strstr(d.text, "dead:\n"));
    /* delete.retention.ms (1000) after its time, the tombstone goes. */
    assert_int_equal(compaction_run(f->p, &rules, 7000, &res), 1);
    dump_all(f->p, &d);
    assert_null(strstr(d.text, "dead:"));
    assert_non_null(strstr(d.text, "live:y\n"));
}

static void crash_at(void **state, int point, int expect_after)
{
    struct fixture *f = *state;
    struct compaction_result res;
    struct dump before, after, got;
    fill(f->p);
    dump_all(f->p, &before);
    compaction_crash_point = point;
    assert_int_equal(compaction_run(f->p, &rules, 2000, &res), -ECANCELED);
    compaction_crash_point = 0;
    partition_close(f->p); /* the crash: nothing else runs */
    assert_int_equal(partition_open(f->dir, &f->st, &f->p), 0);
    dump_all(f->p, &got);
    char cleaning[128];
    snprintf(cleaning, sizeof(cleaning), "%s/cleaning", f->dir);
    assert_int_equal(access(cleaning, F_OK), -1);
    if (!expect_after) {
        assert_int_equal(got.len, before.len);
        assert_memory_equal(got.text, before.text, before.len);
        return;
    }
    /* "After" is what an uninterrupted pass leaves: run one to compare. */
    assert_int_equal(compaction_run(f->p, &rules, 2000, &res), 0);
    dump_all(f->p, &after);
    assert_true(got.n < before.n);
    assert_int_equal(got.len, after.len);
    assert_memory_equal(got.text, after.text, after.len);
    assert_non_null(strstr(got.text, "k3:v59\n"));
    assert_null(strstr(got.text, "k0:v0\n"));
}

/* A pass held at its first read while a truncation asks for the
 * maintenance lock: the pass gives up (-EINTR, nothing changed, no
 * cleaning/ left), the truncation goes through, and the next pass works. */
static atomic_int pass_held, pass_saw_wanted;

static void hold_pass(struct partition *p)
{
    if (atomic_exchange(&pass_held, 1))
        return;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        if (atomic_load(&p->maintenance_wanted)) {
            atomic_store(&pass_saw_wanted, 1);
            return;
        }
        sched_yield();
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while (t.tv_sec - t0.tv_sec < 10);
}

struct pass_call {
    struct partition *p;
    int result;
};

static void *run_pass(void *arg)
{
    struct pass_call *c = arg;
    struct compaction_result res;
    c->result = compaction_run(c->p, &rules, 2000, &res);
    return NULL;
}

static void test_truncation_interrupts_pass(void **state)
{
    struct fixture *f = *state;
    struct dump before, after;
    fill(f->p);
    dump_all(f->p, &before);
    atomic_store(&pass_held, 0);
    atomic_store(&pass_saw_wanted, 0);
    compaction_visit_hook = hold_pass;
    struct pass_call c = {f->p, 1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, run_pass, &c), 0);
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!atomic_load(&pass_held)) {
        sched_yield();
        clock_gettime(CLOCK_MONOTONIC, &now);
        assert_true(now.tv_sec - t0.tv_sec < 10);
    }
    assert_int_equal(partition_truncate(f->p, 40), 0);
    pthread_join(t, NULL);
    compaction_visit_hook = NULL;
    assert_int_equal(atomic_load(&pass_saw_wanted), 1);
    assert_int_equal(c.result, -EINTR);
    char cleaning[128];
    snprintf(cleaning, sizeof(cleaning), "%s/cleaning", f->dir);
    assert_int_equal(access(cleaning, F_OK), -1);
    /* Exactly the records below the cut, as they were. */
    dump_all(f->p, &after);
    size_t keep = 0;
    while (keep < before.n && before.offsets[keep] < 40)
        keep++;
    assert_int_equal(after.n, keep);
    for (size_t i = 0; i < keep; i++)
        assert_true(after.offsets[i] == before.offsets[i]);
    assert_memory_equal(after.text, before.text, after.len);
    struct compaction_result res;
    assert_int_equal(compaction_run(f->p, &rules, 2000, &res), 1);
}

static void test_crash_before_commit(void **state)
{
    crash_at(state, 1, 0);
}

static void test_crash_after_commit(void **state)
{
    crash_at(state, 2, 1);
}

static void test_crash_while_moving(void **state)
{
    crash_at(state, 3, 1);
}

static int cleaning_exists(const char *dir)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/cleaning", dir);
    return access(path, F_OK) == 0;
}

/* What a clean pass over fill_n(n) leaves, from a partition of its own. */
static void reference_after(const struct partition_settings *st, int n, struct dump *d)
{
    char dir[64] = "/tmp/topicfs-cleaner-ref-XXXXXX";
    struct partition *p;
    struct compaction_result res;
    assert_non_null(mkdtemp(dir));
    assert_int_equal(partition_open(dir, st, &p), 0);
    fill_n(p, n);
    assert_int_equal(compaction_run(p, &rules, 2000, &res), 1);
    dump_all(p, d);
    partition_close(p);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void assert_same(const struct dump *a, const struct dump *b)
{
    assert_int_equal(a->n, b->n);
    assert_int_equal(a->len, b->len);
    assert_memory_equal(a->text, b->text, a->len);
    assert_memory_equal(a->offsets, b->offsets, a->n * sizeof(a->offsets[0]));
}

/* Out of descriptors in the middle of a pass (as in issue 8): the pass fails
 * with EMFILE and leaves no cleaning/ behind, a pass still short of
 * descriptors fails with EMFILE too (not EEXIST), and once descriptors are
 * back the next pass cleans the log as if nothing had happened. */
static void test_failed_pass_out_of_fds(void **state)
{
    struct fixture *f = *state;
    struct compaction_result res;
    static struct dump before, got, after;
    reference_after(&f->st, 60, &after);
    fill(f->p);
    dump_all(f->p, &before);
    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    int lowest = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(lowest >= 0);
    close(lowest);
    low.rlim_cur = (rlim_t)lowest;
    low.rlim_max = old.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    int r1 = compaction_run(f->p, &rules, 2000, &res);
    int left = cleaning_exists(f->dir);
    int r2 = compaction_run(f->p, &rules, 2000, &res);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(r1, -EMFILE);
    assert_false(left);
    assert_int_equal(r2, -EMFILE);
    dump_all(f->p, &got);
    assert_same(&got, &before);
    assert_int_equal(compaction_run(f->p, &rules, 2000, &res), 1);
    assert_false(cleaning_exists(f->dir));
    dump_all(f->p, &got);
    assert_same(&got, &after);
    partition_close(f->p);
    assert_int_equal(partition_open(f->dir, &f->st, &f->p), 0);
    dump_all(f->p, &got);
    assert_same(&got, &after);
}

static int open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* Every file step of a pass fails once in turn (EIO or ENOSPC): the pass
 * fails (or, past the point where the new layout is served, reports it),
 * holds no descriptor more, the partition serves the log as before or as
 * after, and a second pass runs normally and leaves exactly what an
 * uninterrupted pass leaves, on disk as in memory, with no cleaning/ left. */
static void test_fail_each_step(void **state)
{
    struct fixture *f = *state;
    struct compaction_result res;
    static struct dump before, got, after;
    /* A shorter log: each segment adds a handful of steps. */
    const int records = 30;
    reference_after(&f->st, records, &after);
    int steps = 0, fds_after = 0;
    for (int at = 1;; at++) {
        fill_n(f->p, records);
        dump_all(f->p, &before);
        int fds = open_fds();
        int err = at % 2 ? EIO : ENOSPC;
        compaction_fault_count = 0;
        compaction_fault_errno = err;
        compaction_fault_at = at;
        int r = compaction_run(f->p, &rules, 2000, &res);
        compaction_fault_at = 0;
        if (compaction_fault_count < at) {
            assert_int_equal(r, 1); /* every step is covered */
            break;
        }
        steps++;
        assert_true(r == -err || r == 1);
        assert_true(open_fds() <= fds);
        dump_all(f->p, &got);
        if (got.n != after.n)
            assert_same(&got, &before);
        else
            assert_same(&got, &after);
        if (r < 0 && got.n == before.n) {
            /* Failed and still served as before: cleaning/ is gone unless the
             * pass had committed (then the next pass finishes it). */
            char commit[128];
            snprintf(commit, sizeof(commit), "%s/cleaning/COMMIT", f->dir);
            if (cleaning_exists(f->dir))
                assert_int_equal(access(commit, F_OK), 0);
        }
        assert_true(compaction_run(f->p, &rules, 2000, &res) >= 0);
        assert_false(cleaning_exists(f->dir));
        dump_all(f->p, &got);
        assert_same(&got, &after);
        if (!fds_after)
            fds_after = open_fds();
        assert_int_equal(open_fds(), fds_after);
        partition_close(f->p);
        assert_int_equal(partition_open(f->dir, &f->st, &f->p), 0);
        dump_all(f->p, &got);
        assert_same(&got, &after);
        /* A fresh partition for the next step. */
        partition_close(f->p);
        nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        assert_int_equal(mkdir(f->dir, 0700), 0);
        assert_int_equal(partition_open(f->dir, &f->st, &f->p), 0);
    }
    assert_true(steps > 30);
}

/* ---- configs at the ends of Kafka's int64 range (issue 8, defect 7) ---- */

static void test_retention_forever(void **state)
{
    (void)state;
    struct segment_stat s[4] = {{100, INT64_MIN}, {100, -1}, {100, 0}, {100, INT64_MAX}};
    /* retention.ms = Long.MAX_VALUE: nothing is ever old enough */
    assert_int_equal(retention_count(s, 4, 10000, INT64_MAX, -1), 0);
    assert_int_equal(retention_count(s, 4, INT64_MAX, INT64_MAX, -1), 0);
    assert_int_equal(retention_count(s, 4, INT64_MIN, INT64_MAX, -1), 0);
    /* retention.bytes = Long.MAX_VALUE: nothing is ever big enough */
    assert_int_equal(retention_count(s, 4, 10000, -1, INT64_MAX), 0);
    /* ages that do not fit saturate: a clock far behind deletes nothing */
    assert_int_equal(retention_count(s, 4, INT64_MIN, 0, -1), 0);
    assert_int_equal(retention_count(s, 4, INT64_MAX, 0, -1), 3);
}

static void test_tombstone_kept_forever(void **state)
{
    struct fixture *f = *state;
    struct compaction_result res;
    struct dump d;
    struct compaction_rules forever = rules;
    forever.delete_retention_ms = INT64_MAX;
    for (int i = 0; i < 20; i++)
        append(f->p, "dead", "x", 1000);
    append(f->p, "dead", "", 5000); /* tombstone */
    for (int i = 0; i < 40; i++)
        append(f->p, "live", "y", 6000);
    assert_int_equal(compaction_run(f->p, &forever, 7000, &res), 1);
    dump_all(f->p, &d);
    assert_non_null(strstr(d.text, "dead:\n"));
    assert_null(strstr(d.text, "dead:x\n"));
    /* however late it is, and after more passes */
    for (int i = 0; i < 20; i++)
        append(f->p, "live", "z", 8000);
    assert_true(compaction_run(f->p, &forever, INT64_MAX - 1, &res) >= 0);
    assert_true(compaction_run(f->p, &forever, INT64_MAX, &res) >= 0);
    dump_all(f->p, &d);
    assert_non_null(strstr(d.text, "dead:\n"));
    /* a tombstone with a timestamp far in the past, too */
    append(f->p, "old", "", INT64_MIN + 1);
    for (int i = 0; i < 40; i++)
        append(f->p, "live", "w", 9000);
    assert_true(compaction_run(f->p, &forever, INT64_MAX, &res) >= 0);
    dump_all(f->p, &d);
    assert_non_null(strstr(d.text, "dead:\n"));
    partition_close(f->p);
    assert_int_equal(partition_open(f->dir, &f->st, &f->p), 0);
    dump_all(f->p, &d);
    assert_non_null(strstr(d.text, "dead:\n"));
}

/* segment.ms = INT64_MAX, file.delete.delay.ms = INT64_MAX and timestamps at
 * both ends: segments roll by size only, and a view held across a pass keeps
 * reading the layout it was made in. */
static void test_segment_and_delay_forever(void **state)
{
    struct fixture *f = *state;
    struct compaction_result res;
    struct dump d;
    static char before[65536], got[65536];
    f->st.segment_ms = INT64_MAX;
    f->st.file_delete_delay_ms = INT64_MAX;
    partition_set_settings(f->p, &f->st);
    append(f->p, "k0", "first", INT64_MIN + 1);
    append(f->p, "k0", "second", INT64_MAX);
    fill(f->p);
    dump_all(f->p, &d);
    assert_int_equal(d.n, 68);
    struct partition_info pi;
    partition_info(f->p, &pi);
    assert_true(pi.segments > 3);
    struct partition_view v;
    partition_current_view(f->p, &v);
    partition_view_hold(f->p, &v);
    struct partition_cursor c;
    partition_cursor_init(&c);
    ssize_t len = partition_view_read(f->p, &c, &v, 0, before, sizeof(before));
    assert_true(len > 0);
    assert_int_equal(compaction_run(f->p, &rules, 2000, &res), 1);
    partition_expire_kept(f->p);
    assert_int_equal(partition_view_read(f->p, &c, &v, 0, got, sizeof(got)), len);
    assert_memory_equal(got, before, (size_t)len);
    partition_cursor_free(&c);
    partition_view_release(f->p, &v);
}

static void test_manifest_parse(void **state)
{
    (void)state;
    struct compaction_manifest m;
    static const char good[] = "replace 0\ndelete 12\nreplace 18446744073709551615\n"
                               "checkpoint 40 -9223372036854775808\n";
    assert_int_equal(compaction_manifest_parse(good, strlen(good), &m), 0);
    assert_int_equal(m.n, 3);
    assert_true(m.bases[2] == UINT64_MAX && m.deleted[1] && !m.deleted[0]);
    assert_true(m.checkpoint_offset == 40 && m.checkpoint_tombstone_ms == INT64_MIN);
    compaction_manifest_free(&m);
    assert_int_equal(compaction_manifest_parse("checkpoint 0 9223372036854775807\n", 33, &m), 0);
    assert_int_equal(m.n, 0);
    compaction_manifest_free(&m);
    static const char *const bad[] = {
        "",
        "replace 1\n",                                    /* no checkpoint */
        "checkpoint 1 2",                                 /* no newline */
        "checkpoint 1 2\nreplace 3\n",                    /* checkpoint not last */
        "replace 3\nreplace 3\ncheckpoint 1 2\n",         /* bases not increasing */
        "replace 18446744073709551616\ncheckpoint 1 2\n", /* too big */
        "checkpoint 1 9223372036854775808\n",
        "replace -1\ncheckpoint 1 2\n",
        "replace  1\ncheckpoint 1 2\n",
        "replace 1 \ncheckpoint 1 2\n",
        "move 1\ncheckpoint 1 2\n",
        "checkpoint 1\n",
        "checkpoint 1 2 3\n",
        "checkpoint 1 -\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(compaction_manifest_parse(bad[i], strlen(bad[i]), &m), -EBADMSG);
}

/* A damaged COMMIT after half of the files moved: the mount goes on with
 * what is in place (a prefix of the segments cleaned), a whole log. */
static void test_damaged_manifest(void **state)
{
    struct fixture *f = *state;
    struct compaction_result res;
    static struct dump before, got;
    fill(f->p);
    dump_all(f->p, &before);
    compaction_crash_point = 3;
    assert_int_equal(compaction_run(f->p, &rules, 2000, &res), -ECANCELED);
    compaction_crash_point = 0;
    partition_close(f->p);
    char commit[128];
    snprintf(commit, sizeof(commit), "%s/cleaning/COMMIT", f->dir);
    assert_int_equal(truncate(commit, 9), 0);
    assert_int_equal(partition_open(f->dir, &f->st, &f->p), 0);
    assert_false(cleaning_exists(f->dir));
    dump_all(f->p, &got);
    /* Offsets increase, each record is the one written there, and the
     * latest of every key is there. */
    size_t j = 0;
    for (size_t i = 0; i < got.n; i++) {
        while (j < before.n && before.offsets[j] < got.offsets[i])
            j++;
        assert_true(j < before.n && before.offsets[j] == got.offsets[i]);
    }
    for (const char *const *k =
             (const char *const[]){"k0:v56\n", "k1:v57\n", "k2:v58\n", "k3:v59\n", NULL};
         *k; k++)
        assert_non_null(strstr(got.text, *k));
    assert_true(compaction_run(f->p, &rules, 2000, &res) >= 0);
    assert_false(cleaning_exists(f->dir));
}

static void test_time_index(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < 50; i++)
        append(f->p, NULL, "rec", 10000 + i * 100);
    uint64_t off;
    assert_int_equal(partition_time_offset(f->p, 0, &off), 0);
    assert_int_equal(off, 0);
    assert_int_equal(partition_time_offset(f->p, 10000 + 2550, &off), 0);
    assert_int_equal(off, 26);
    assert_int_equal(partition_time_offset(f->p, 10000 + 4900, &off), 0);
    assert_int_equal(off, 49);
    assert_int_equal(partition_time_offset(f->p, 99999, &off), 0);
    assert_int_equal(off, 50);
}

static void test_lz4_path(void **state)
{
    struct fixture *f = *state;
    f->st.codec = BATCH_CODEC_LZ4;
    f->st.segment_bytes = 1 << 20;
    partition_set_settings(f->p, &f->st);
    char expect[8192];
    size_t len = 0;
    for (int i = 0; i < 100; i++) {
        char v[32];
        snprintf(v, sizeof(v), "value number %d", i);
        append(f->p, NULL, v, 1);
        len += (size_t)snprintf(expect + len, sizeof(expect) - len, "%s\n", v);
    }
    struct partition_info pi;
    partition_info(f->p, &pi);
    assert_int_equal(pi.view_bytes, len);
    struct partition_cursor c;
    partition_cursor_init(&c);
    char buf[8192];
    struct partition_view v;
    partition_current_view(f->p, &v);
    assert_int_equal(partition_view_read(f->p, &c, &v, 0, buf, sizeof(buf)), (ssize_t)len);
    assert_memory_equal(buf, expect, len);
    assert_int_equal(partition_view_read(f->p, &c, &v, 500, buf, 40), 40);
    assert_memory_equal(buf, expect + 500, 40);
    partition_cursor_free(&c);
    uint64_t pos;
    assert_int_equal(partition_offset_pos(f->p, 10, &pos), 0);
    assert_int_equal(pos, strstr(expect, "value number 10\n") - expect);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retention_count),
        cmocka_unit_test(test_tombstone),
        cmocka_unit_test_setup_teardown(test_compaction_keeps_latest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compaction_tombstones, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncation_interrupts_pass, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_before_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_after_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_while_moving, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_pass_out_of_fds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fail_each_step, setup, teardown),
        cmocka_unit_test(test_retention_forever),
        cmocka_unit_test_setup_teardown(test_tombstone_kept_forever, setup, teardown),
        cmocka_unit_test_setup_teardown(test_segment_and_delay_forever, setup, teardown),
        cmocka_unit_test(test_manifest_parse),
        cmocka_unit_test_setup_teardown(test_damaged_manifest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lz4_path, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
