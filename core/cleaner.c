/* cleaner.c - retention and compaction in the background (cleaner.h).
 *
 * One thread wakes every interval, takes a reference on every topic, and
 * cleans their partitions one by one with no store lock held, so mkdir,
 * rmdir, producers and consumers go on meanwhile. Each partition's own
 * locks keep readers consistent: a segment is deleted or swapped whole.
 *
 * A failed pass on one partition is logged and changes nothing for the
 * others; what it left is finished by compaction_finish() before the next
 * compaction or retention of that partition. Time limits are compared as
 * saturating ages (satmath.h): retention.ms = INT64_MAX never expires. */
#include "cleaner.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "compaction.h"
#include "logger.h"
#include "satmath.h"

size_t retention_count(const struct segment_stat *segs, size_t n, int64_t now_ms,
                       int64_t retention_ms, int64_t retention_bytes)
{
    size_t by_time = 0, by_size = 0;
    if (n < 2)
        return 0;
    /* Kafka: a segment goes once now - its newest timestamp > retention.ms. */
    if (retention_ms >= 0)
        while (by_time < n - 1 && sat_sub_i64(now_ms, segs[by_time].max_timestamp) > retention_ms)
            by_time++;
    if (retention_bytes >= 0) {
        uint64_t total = 0;
        for (size_t i = 0; i < n; i++)
            total = sat_add_u64(total, segs[i].bytes);
        /* Kafka: delete a segment while the log stays at or above the limit without it. */
        while (by_size < n - 1 && total - segs[by_size].bytes >= (uint64_t)retention_bytes) {
            total -= segs[by_size].bytes;
            by_size++;
        }
    }
    return by_time > by_size ? by_time : by_size;
}

static int apply_retention(struct partition *p, const struct topic_config *cfg, int64_t now)
{
    partition_expire_kept(p);
    pthread_mutex_lock(&p->maintenance);
    if (p->deleted) { /* its topic went: its files go with the last reader */
        pthread_mutex_unlock(&p->maintenance);
        return 0;
    }
    /* A manifest left by a failed compaction pass names closed segments:
     * finish it before any of them can go. */
    int finished = compaction_finish(p);
    if (finished < 0) {
        pthread_mutex_unlock(&p->maintenance);
        return finished;
    }
    pthread_mutex_lock(&p->lock);
    size_t n = p->nsegs;
    struct segment_stat *st = calloc(n, sizeof(*st));
    if (st)
        for (size_t i = 0; i < n; i++) {
            st[i].bytes = p->segs[i]->size;
            st[i].max_timestamp = p->segs[i]->max_timestamp;
        }
    pthread_mutex_unlock(&p->lock);
    int r = -ENOMEM;
    if (st) {
        size_t k = retention_count(st, n, now, cfg->retention_ms, cfg->retention_bytes), gone = 0;
        r = k ? partition_delete_head(p, k, &gone) : 0;
        if (gone)
            logger_log(LOG_LEVEL_INFO, "%s: retention removed %zu segment(s)", p->dir, gone);
        if (r < 0 && gone) {
            /* What went is a change readers must hear of; the rest waits. */
            logger_log(LOG_LEVEL_ERROR, "%s: retention stopped at %zu of %zu segment(s): %s",
                       p->dir, gone, k, strerror(-r));
            r = 1;
        }
        if (!r && (gone || finished))
            r = 1;
    }
    free(st);
    pthread_mutex_unlock(&p->maintenance);
    return r;
}

struct collect {
    struct topic **t;
    size_t n, cap;
};

static int collect_topic(struct topic *t, void *arg)
{
    struct collect *c = arg;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        struct topic **n = realloc(c->t, cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        c->t = n;
        c->cap = cap;
    }
    topic_get(t);
    c->t[c->n++] = t;
    return 0;
}

int cleaner_run_once(struct store *s, int64_t now_ms, cleaner_changed_fn changed, void *arg)
{
    struct collect c = {0};
    int changes = 0;
    store_foreach(s, collect_topic, &c);
    for (size_t i = 0; i < c.n; i++) {
        struct topic *t = c.t[i];
        struct topic_config cfg;
        topic_config_snapshot(t, &cfg);
        uint32_t np = topic_partition_count(t);
        for (uint32_t k = 0; k < np && !atomic_load(&t->deleted); k++) {
            struct partition *p = topic_partition(t, k);
            int did = 0, r;
            if (cfg.cleanup_policy & CLEANUP_COMPACT) {
                struct compaction_rules rules = {
                    .key_sep = cfg.key_separator,
                    .key_sep_len = strlen(cfg.key_separator),
                    .delete_retention_ms = cfg.delete_retention_ms,
                    .min_dirty_ratio = cfg.min_cleanable_dirty_ratio,
                };
                struct compaction_result res;
                r = compaction_run(p, &rules, now_ms, &res);
                if (r == -EINTR)
                    logger_log(LOG_LEVEL_INFO,
                               "topic %s p%u: compaction pass given up for a truncation "
                               "(the next pass starts over)",
                               t->name, k);
                else if (r < 0)
                    logger_log(LOG_LEVEL_ERROR, "topic %s p%u: compaction failed: %s", t->name, k,
                               strerror(-r));
                did |= r > 0;
            }
            if (cfg.cleanup_policy & CLEANUP_DELETE) {
                r = apply_retention(p, &cfg, now_ms);
                if (r < 0)
                    logger_log(LOG_LEVEL_ERROR, "topic %s p%u: retention failed: %s", t->name, k,
                               strerror(-r));
                did |= r > 0;
            }
            if (did) {
                changes++;
                if (changed)
                    changed(arg, t, k);
            }
        }
        topic_put(t);
    }
    free(c.t);
    return changes;
}

struct cleaner {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stop;
    struct store *store;
    int64_t interval_ms;
    cleaner_changed_fn changed;
    void *arg;
};

static void *cleaner_main(void *arg)
{
    struct cleaner *c = arg;
    pthread_mutex_lock(&c->lock);
    while (!c->stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec = (time_t)sat_add_i64(until.tv_sec, c->interval_ms / 1000);
        until.tv_nsec += (c->interval_ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        while (!c->stop && pthread_cond_timedwait(&c->wake, &c->lock, &until) != ETIMEDOUT)
            ;
        if (c->stop)
            break;
        pthread_mutex_unlock(&c->lock);
        cleaner_run_once(c->store, clock_now_ms(), c->changed, c->arg);
        pthread_mutex_lock(&c->lock);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

int cleaner_start(struct store *s, int64_t interval_ms, cleaner_changed_fn changed, void *arg,
                  struct cleaner **out)
{
    struct cleaner *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->wake, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&c->lock, NULL);
    c->store = s;
    c->interval_ms = interval_ms > 0 ? interval_ms : 1;
    c->changed = changed;
    c->arg = arg;
    int r = pthread_create(&c->thread, NULL, cleaner_main, c);
    if (r) {
        pthread_cond_destroy(&c->wake);
        pthread_mutex_destroy(&c->lock);
        free(c);
        return -r;
    }
    *out = c;
    return 0;
}

void cleaner_stop(struct cleaner *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    c->stop = 1;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->thread, NULL);
    pthread_cond_destroy(&c->wake);
    pthread_mutex_destroy(&c->lock);
    free(c);
}
