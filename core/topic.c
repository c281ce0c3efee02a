/* topic.c - a topic's config and partitions (topic.h).
 *
 * The config file is the topic's source of truth for partition count: a
 * partition directory is created before the config that names it is saved,
 * so after a crash every partition the config lists exists. */
#include "topic.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "clock.h"
#include "logger.h"

int topic_name_valid(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > 249 || !strcmp(name, ".") || !strcmp(name, ".."))
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return -EINVAL;
    }
    return 0;
}

static void settings_of(const struct topic_config *c, struct partition_settings *st)
{
    st->segment_bytes = (uint64_t)c->segment_bytes;
    st->segment_ms = c->segment_ms;
    st->max_message_bytes = (uint32_t)c->max_message_bytes;
    st->codec = c->compression;
    st->file_delete_delay_ms = c->file_delete_delay_ms;
}

/* Opens partitions [t->nparts, count). */
static int open_partitions(struct topic *t, uint32_t count)
{
    struct partition_settings st;
    settings_of(&t->cfg, &st);
    struct partition **n = realloc(t->parts, count * sizeof(*n));
    if (!n)
        return -ENOMEM;
    t->parts = n;
    while (t->nparts < count) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%u", t->dir, t->nparts);
        int r = partition_open(path, &st, &t->parts[t->nparts]);
        if (r) {
            logger_log(LOG_LEVEL_ERROR, "cannot open partition %s: %s", path, strerror(-r));
            return r;
        }
        t->nparts++;
    }
    return 0;
}

static struct topic *topic_alloc(const char *dir, const char *name, uint64_t id)
{
    struct topic *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->name = strdup(name);
    t->dir = strdup(dir);
    t->id = id;
    atomic_init(&t->refs, 1);
    atomic_init(&t->mtime_ms, clock_now_ms());
    atomic_init(&t->groups_mtime_ms, clock_now_ms());
    pthread_rwlock_init(&t->lock, NULL);
    if (!t->name || !t->dir) {
        free(t->name);
        free(t->dir);
        free(t);
        return NULL;
    }
    return t;
}

int topic_create(const char *dir, const char *name, uint64_t id, const struct topic_config *cfg,
                 struct topic **out)
{
    char path[4096];
    struct topic *t = topic_alloc(dir, name, id);
    int r;
    if (!t)
        return -ENOMEM;
    t->cfg = *cfg;
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        r = -errno;
        goto fail;
    }
    if ((r = open_partitions(t, cfg->partitions)))
        goto fail;
    snprintf(path, sizeof(path), "%s/config", dir);
    if ((r = config_save(&t->cfg, path)))
        goto fail;
    *out = t;
    return 0;
fail:
    topic_put(t);
    return r;
}

int topic_open(const char *dir, const char *name, uint64_t id, struct topic **out)
{
    char path[4096];
    struct topic *t = topic_alloc(dir, name, id);
    int r;
    if (!t)
        return -ENOMEM;
    config_defaults(&t->cfg, 1);
    snprintf(path, sizeof(path), "%s/config", dir);
    if ((r = config_load(&t->cfg, path)))
        goto fail;
    if ((r = open_partitions(t, t->cfg.partitions)))
        goto fail;
    struct stat st;
    if (stat(path, &st) == 0) {
        long long ms = (long long)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
        atomic_store(&t->mtime_ms, ms);
        atomic_store(&t->groups_mtime_ms, ms);
    }
    *out = t;
    return 0;
fail:
    topic_put(t);
    return r;
}

void topic_get(struct topic *t)
{
    atomic_fetch_add(&t->refs, 1);
}

void topic_put(struct topic *t)
{
    if (!t || atomic_fetch_sub(&t->refs, 1) != 1)
        return;
    for (uint32_t i = 0; i < t->nparts; i++)
        partition_close(t->parts[i]);
    free(t->parts);
    pthread_rwlock_destroy(&t->lock);
    free(t->name);
    free(t->dir);
    free(t);
}

struct partition *topic_partition(struct topic *t, uint32_t i)
{
    struct partition *p = NULL;
    pthread_rwlock_rdlock(&t->lock);
    if (i < t->nparts)
        p = t->parts[i];
    pthread_rwlock_unlock(&t->lock);
    return p;
}

uint32_t topic_partition_count(struct topic *t)
{
    pthread_rwlock_rdlock(&t->lock);
    uint32_t n = t->nparts;
    pthread_rwlock_unlock(&t->lock);
    return n;
}

void topic_config_snapshot(struct topic *t, struct topic_config *out)
{
    pthread_rwlock_rdlock(&t->lock);
    *out = t->cfg;
    pthread_rwlock_unlock(&t->lock);
}

int topic_config_apply(struct topic *t, const char *line, size_t len)
{
    char path[4096];
    pthread_rwlock_wrlock(&t->lock);
    struct topic_config n = t->cfg;
    int r = config_set_line(&n, line, len);
    if (r)
        goto out;
    if (atomic_load(&t->deleted)) {
        r = -ENOENT;
        goto out;
    }
    if (n.partitions > t->nparts && (r = open_partitions(t, n.partitions)))
        goto out;
    snprintf(path, sizeof(path), "%s/config", t->dir);
    if ((r = config_save(&n, path)))
        goto out;
    t->cfg = n;
    struct partition_settings st;
    settings_of(&n, &st);
    for (uint32_t i = 0; i < t->nparts; i++)
        partition_set_settings(t->parts[i], &st);
    atomic_store(&t->mtime_ms, clock_now_ms());
out:
    pthread_rwlock_unlock(&t->lock);
    return r;
}

int topic_sync(struct topic *t)
{
    int r = 0;
    uint32_t n = topic_partition_count(t);
    for (uint32_t i = 0; i < n; i++) {
        int e = partition_sync(topic_partition(t, i));
        if (e && !r)
            r = e;
    }
    return r;
}
