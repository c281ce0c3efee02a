/* test_store.c - all-or-nothing topic lifecycle in the store (core/store.c,
 * core/topic.c), issue 8 defects 4 and 5.
 *
 * - A topic that cannot be opened is skipped at store_open: listed as
 *   failed with its errno, its name taken, its files untouched.
 * - store_create_topic and partition growth refused at every step by a low
 *   RLIMIT_NOFILE (EMFILE): no tmp/ leftover, no topic dir, no partition dir,
 *   config and partition count unchanged, and the same call works once
 *   descriptors are back.
 * - A config save that cannot write (config.tmp is a directory) refuses the
 *   change whole, growth included.
 * - Crash leftovers (tmp/, trash/, partition dirs past the count,
 *   config.tmp) are removed at open. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "store.h"
#include "topic.h"

struct fx {
    char root[64];
    char data[128];
    struct store *s;
    struct rlimit saved;
};

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    strcpy(f->root, "/tmp/topicfs-store-XXXXXX");
    assert_non_null(mkdtemp(f->root));
    snprintf(f->data, sizeof(f->data), "%s/data", f->root);
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &f->saved), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    setrlimit(RLIMIT_NOFILE, &f->saved);
    store_close(f->s);
    nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static const char *path_of(struct fx *f, const char *rel)
{
    static char buf[512];
    snprintf(buf, sizeof(buf), "%s/%s", f->data, rel);
    return buf;
}

static int exists(struct fx *f, const char *rel)
{
    return access(path_of(f, rel), F_OK) == 0;
}

/* Entries of a directory of the data dir, "." and ".." left out. */
static int entries(struct fx *f, const char *rel)
{
    DIR *d = opendir(path_of(f, rel));
    struct dirent *de;
    int n = 0;
    assert_non_null(d);
    while ((de = readdir(d)))
        n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    closedir(d);
    return n;
}

static void put_file(struct fx *f, const char *rel, const char *text)
{
    FILE *fp = fopen(path_of(f, rel), "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void make_dir(struct fx *f, const char *rel)
{
    assert_int_equal(mkdir(path_of(f, rel), 0755), 0);
}

/* Lets the process open about `extra` more descriptors: the limit is on fd
 * numbers, so it is set to the lowest free one plus extra. */
static void limit_fds(struct fx *f, int extra)
{
    int lowest = dup(0);
    assert_true(lowest >= 0);
    close(lowest);
    struct rlimit rl = {(rlim_t)(lowest + extra), f->saved.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

static void unlimit_fds(struct fx *f)
{
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &f->saved), 0);
}

static uint32_t stored_partitions(struct fx *f, const char *topic)
{
    char rel[300];
    struct topic_config c;
    snprintf(rel, sizeof(rel), "topics/%s/config", topic);
    config_defaults(&c, 1);
    assert_int_equal(config_load(&c, path_of(f, rel)), 0);
    return c.partitions;
}

static int has_failed(const char *name, int err, void *arg)
{
    const char *want = arg;
    return !strcmp(name, want) ? -err : 0;
}

static void test_failed_topic_skipped(void **state)
{
    struct fx *f = *state;
    struct topic *t;
    assert_int_equal(store_open(f->data, 2, &f->s), 0);
    assert_int_equal(store_create_topic(f->s, "good", NULL), 0);
    store_close(f->s);
    f->s = NULL;

    make_dir(f, "topics/zzz"); /* mkdir -p DATA/topics/zzz/0 */
    make_dir(f, "topics/zzz/0");
    make_dir(f, "topics/bad");
    put_file(f, "topics/bad/config", "partitions=1\nretention.ms=soon\n");
    make_dir(f, "topics/bad/0");
    make_dir(f, "topics/short"); /* names a partition it lacks */
    put_file(f, "topics/short/config", "partitions=2\n");
    make_dir(f, "topics/short/0");

    assert_int_equal(store_open(f->data, 2, &f->s), 0);
    assert_int_equal(store_count(f->s), 1);
    assert_non_null(t = store_find(f->s, "good"));
    topic_put(t);
    assert_null(store_find(f->s, "zzz"));
    assert_int_equal(store_failed_error(f->s, "zzz"), -ENOENT);
    assert_int_equal(store_failed_error(f->s, "bad"), -EINVAL);
    assert_int_equal(store_failed_error(f->s, "short"), -ENOENT);
    assert_int_equal(store_failed_error(f->s, "good"), 0);
    assert_int_equal(store_foreach_failed(f->s, has_failed, (void *)"bad"), EINVAL);
    /* The name stays taken; there is nothing to delete. */
    assert_int_equal(store_create_topic(f->s, "zzz", NULL), -EEXIST);
    assert_int_equal(store_delete_topic(f->s, "zzz"), -ENOENT);
    /* Untouched: no config made, no partition added or removed. */
    assert_false(exists(f, "topics/zzz/config"));
    assert_int_equal(entries(f, "topics/zzz"), 1);
    assert_int_equal(entries(f, "topics/bad"), 2);
    assert_int_equal(entries(f, "topics/short"), 2);
    assert_int_equal(entries(f, "tmp"), 0);
}

static void test_create_refused_leaves_nothing(void **state)
{
    struct fx *f = *state;
    char name[32];
    struct topic *t;
    int failed = 0, made = 0;
    assert_int_equal(store_open(f->data, 3, &f->s), 0);
    /* With k descriptors free the create fails at a later step each time. */
    for (int k = 0; k < 16; k++) {
        snprintf(name, sizeof(name), "t%d", k);
        limit_fds(f, k);
        int r = store_create_topic(f->s, name, NULL);
        unlimit_fds(f);
        if (r) {
            assert_int_equal(r, -EMFILE);
            failed++;
            assert_null(store_find(f->s, name));
            snprintf(name, sizeof(name), "topics/t%d", k);
            assert_false(exists(f, name));
        } else {
            made++;
        }
        assert_int_equal(entries(f, "tmp"), 0);
        assert_int_equal(entries(f, "topics"), made);
        assert_int_equal(store_count(f->s), (size_t)made);
    }
    assert_true(failed >= 3);
    assert_true(made >= 1);
    /* The refused names are free. */
    assert_int_equal(store_create_topic(f->s, "t0", &t), 0);
    assert_int_equal(topic_partition_count(t), 3);
    topic_put(t);
}

static void test_growth_refused_leaves_nothing(void **state)
{
    struct fx *f = *state;
    struct topic *t;
    struct topic_config cfg;
    assert_int_equal(store_open(f->data, 1, &f->s), 0);
    assert_int_equal(store_create_topic(f->s, "orders", &t), 0);
    static const int extra[] = {0, 1, 2, 4, 8, 16};
    for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
        limit_fds(f, extra[i]);
        int r = topic_config_apply(t, "partitions=40", 13);
        unlimit_fds(f);
        assert_int_equal(r, -EMFILE);
        assert_int_equal(topic_partition_count(t), 1);
        assert_null(topic_partition(t, 1));
        topic_config_snapshot(t, &cfg);
        assert_int_equal(cfg.partitions, 1);
        assert_int_equal(stored_partitions(f, "orders"), 1);
        assert_int_equal(entries(f, "topics/orders"), 2); /* config and 0 */
    }
    /* A save that cannot write refuses the whole line, growth included. */
    make_dir(f, "topics/orders/config.tmp");
    assert_int_equal(topic_config_apply(t, "partitions=3", 12), -EISDIR);
    assert_int_equal(topic_config_apply(t, "retention.ms=5", 14), -EISDIR);
    topic_config_snapshot(t, &cfg);
    assert_int_equal(cfg.partitions, 1);
    assert_int_equal(cfg.retention_ms, 604800000);
    assert_int_equal(topic_partition_count(t), 1);
    assert_false(exists(f, "topics/orders/1"));
    assert_int_equal(rmdir(path_of(f, "topics/orders/config.tmp")), 0);
    /* And it works once the cause is gone. */
    assert_int_equal(topic_config_apply(t, "partitions=3", 12), 0);
    assert_int_equal(topic_partition_count(t), 3);
    assert_int_equal(stored_partitions(f, "orders"), 3);
    assert_true(exists(f, "topics/orders/2"));
    topic_put(t);
}

static void test_leftovers_removed_at_open(void **state)
{
    struct fx *f = *state;
    struct topic *t;
    assert_int_equal(store_open(f->data, 2, &f->s), 0);
    assert_int_equal(store_create_topic(f->s, "orders", NULL), 0);
    store_close(f->s);
    f->s = NULL;
    make_dir(f, "tmp/half.9");
    put_file(f, "tmp/half.9/config", "partitions=1\n");
    make_dir(f, "trash/gone.4");
    make_dir(f, "trash/gone.4/0");
    make_dir(f, "topics/orders/2");
    make_dir(f, "topics/orders/7");
    put_file(f, "topics/orders/7/00000000000000000000.log", "");
    put_file(f, "topics/orders/config.tmp", "partitions=8\n");
    make_dir(f, "topics/orders/notes"); /* not ours: stays */

    assert_int_equal(store_open(f->data, 2, &f->s), 0);
    assert_int_equal(entries(f, "tmp"), 0);
    assert_int_equal(entries(f, "trash"), 0);
    assert_false(exists(f, "topics/orders/2"));
    assert_false(exists(f, "topics/orders/7"));
    assert_false(exists(f, "topics/orders/config.tmp"));
    assert_true(exists(f, "topics/orders/notes"));
    assert_non_null(t = store_find(f->s, "orders"));
    assert_int_equal(topic_partition_count(t), 2);
    topic_put(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_failed_topic_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_refused_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_growth_refused_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leftovers_removed_at_open, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
