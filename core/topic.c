/* topic.c - a topic's config and partitions (topic.h).
 *
 * The config file is the topic's source of truth for the partition count:
 * the partitions it names are the topic, and their directories exist before
 * the config that names them is committed.
 *
 * Growing the partition count is all-or-nothing. The new partitions are
 * opened (their directories made and fsynced) while still unpublished; the
 * config is then committed by replacing its file (rename + directory fsync);
 * only then do readers see them (t->nparts). On any failure the new
 * partitions are closed and, unless the new config may be on disk, their
 * directories removed: the topic is as it was, in memory and on disk.
 *
 * Crash leftovers are removed at open, once the topic opened whole: partition
 * directories at or past the committed count (a growth that never
 * committed) and config.tmp (a save that never renamed). A topic that cannot
 * be opened is left exactly as it is for the admin. */
#include "topic.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "clock.h"
#include "fsutil.h"
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

static void partition_dir(char *buf, size_t cap, const char *dir, uint32_t i)
{
    snprintf(buf, cap, "%s/%u", dir, i);
}

/* Opens partitions [from, to) of dir into parts[from..to); on failure closes
 * those it opened and returns the error. */
static int open_range(const char *dir, const struct topic_config *cfg, struct partition **parts,
                      uint32_t from, uint32_t to)
{
    struct partition_settings st;
    settings_of(cfg, &st);
    for (uint32_t i = from; i < to; i++) {
        char path[4096];
        partition_dir(path, sizeof(path), dir, i);
        int r = partition_open(path, &st, &parts[i]);
        if (r) {
            logger_log(LOG_LEVEL_ERROR, "cannot open partition %s: %s", path, strerror(-r));
            while (i-- > from)
                partition_close(parts[i]);
            return r;
        }
    }
    return 0;
}

/* Removes the directories of partitions [from, to) (never published). */
static void remove_range(const char *dir, uint32_t from, uint32_t to)
{
    for (uint32_t i = from; i < to; i++) {
        char path[4096];
        partition_dir(path, sizeof(path), dir, i);
        int r = fsutil_remove_tree(path);
        if (r)
            logger_log(LOG_LEVEL_WARN, "%s: cannot remove an uncommitted partition: %s", path,
                       strerror(-r));
    }
}

/* 1 if name is a partition number a topic dir could hold ("0", "17"). */
static int partition_number(const char *name, uint32_t *out)
{
    char *end;
    if (name[0] < '0' || name[0] > '9' || (name[0] == '0' && name[1]))
        return 0;
    unsigned long v = strtoul(name, &end, 10);
    if (*end || v > UINT32_MAX)
        return 0;
    *out = (uint32_t)v;
    return 1;
}

/* What a crash left in the topic dir: config.tmp and partition dirs at or
 * past the committed count. */
static int stale_entry(const char *name, void *arg)
{
    const struct topic *t = arg;
    uint32_t i;
    return !strcmp(name, "config.tmp") || (partition_number(name, &i) && i >= t->nparts);
}

/* Removes those leftovers. */
static void remove_leftovers(struct topic *t)
{
    fsutil_remove_leftovers(t->dir, stale_entry, t, "topic change");
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

int topic_open(const char *dir, const char *name, uint64_t id, struct topic **out)
{
    char path[4096];
    struct topic *t = topic_alloc(dir, name, id);
    struct stat st;
    int r;
    if (!t)
        return -ENOMEM;
    snprintf(path, sizeof(path), "%s/config", dir);
    if ((r = config_load(&t->cfg, path))) {
        logger_log(LOG_LEVEL_ERROR, "topic %s: cannot load %s: %s", name, path, strerror(-r));
        goto fail;
    }
    /* Every partition the config names was made before it: one that is
     * missing was removed behind our back, and an empty one must not take
     * its place silently. */
    for (uint32_t i = 0; i < t->cfg.partitions; i++) {
        char pdir[4096];
        partition_dir(pdir, sizeof(pdir), dir, i);
        r = stat(pdir, &st) < 0 ? -errno : S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
        if (r) {
            logger_log(LOG_LEVEL_ERROR, "topic %s: partition %s: %s", name, pdir, strerror(-r));
            goto fail;
        }
    }
    if (!(t->parts = calloc(t->cfg.partitions, sizeof(*t->parts)))) {
        r = -ENOMEM;
        goto fail;
    }
    if ((r = open_range(dir, &t->cfg, t->parts, 0, t->cfg.partitions)))
        goto fail;
    t->nparts = t->cfg.partitions;
    remove_leftovers(t);
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
    if (t->moved) {
        int e = fsutil_remove_tree(t->dir);
        if (e)
            logger_log(LOG_LEVEL_WARN, "cannot remove %s (removed at the next mount): %s", t->dir,
                       strerror(-e));
    }
    free(t->parts);
    pthread_rwlock_destroy(&t->lock);
    free(t->name);
    free(t->dir);
    free(t->old_dir);
    free(t);
}

int topic_move(struct topic *t, const char *dir)
{
    char pdir[4096];
    int r = 0;
    char *d = strdup(dir);
    /* Partitions are added only to a topic not deleted: the list stays. */
    pthread_rwlock_wrlock(&t->lock);
    if (d) {
        t->old_dir = t->dir;
        t->dir = d;
    }
    uint32_t n = t->nparts;
    struct partition **parts = t->parts;
    pthread_rwlock_unlock(&t->lock);
    for (uint32_t i = 0; i < n; i++) {
        partition_dir(pdir, sizeof(pdir), dir, i);
        int e = partition_move(parts[i], pdir);
        r = r ? r : e;
    }
    if (!d)
        return -ENOMEM;
    t->moved = 1;
    return r;
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

/* Replaces the config file by n. Returns 0, or an error with the old file in
 * place (restored if the new one had replaced it); *maybe_new is set when
 * even the restore failed, so the new file may be what a restart finds. */
static int commit_config(struct topic *t, const struct topic_config *n, int *maybe_new)
{
    char path[4096];
    int replaced;
    snprintf(path, sizeof(path), "%s/config", t->dir);
    *maybe_new = 0;
    int r = config_save(n, path, &replaced);
    if (r && replaced) {
        int e = config_save(&t->cfg, path, NULL);
        if (e) {
            *maybe_new = 1;
            logger_log(LOG_LEVEL_ERROR, "topic %s: cannot restore %s after a failed save: %s",
                       t->name, path, strerror(-e));
        }
    }
    return r;
}

int topic_config_apply(struct topic *t, const char *line, size_t len)
{
    struct partition **grown = NULL;
    pthread_rwlock_wrlock(&t->lock);
    struct topic_config n = t->cfg;
    uint32_t was = t->nparts;
    int maybe_new = 0;
    int r = config_set_line(&n, line, len);
    if (r)
        goto out;
    if (atomic_load(&t->deleted)) {
        r = -ENOENT;
        goto out;
    }
    if (n.partitions > was) {
        /* The new partitions exist on disk before the config names them, and
         * in memory before it commits (so publishing cannot fail), but
         * readers only see them once the config is committed. */
        if (!(grown = realloc(t->parts, n.partitions * sizeof(*grown)))) {
            r = -ENOMEM;
            goto out;
        }
        t->parts = grown;
        for (uint32_t i = was; i < n.partitions; i++) {
            char pdir[4096];
            partition_dir(pdir, sizeof(pdir), t->dir, i);
            fsutil_remove_tree(pdir); /* a leftover of a growth that failed */
        }
        if ((r = open_range(t->dir, &n, t->parts, was, n.partitions)))
            goto rollback;
        if ((r = fsutil_sync_dir(t->dir)))
            goto close;
    }
    if ((r = commit_config(t, &n, &maybe_new)))
        goto close;
    t->cfg = n;
    t->nparts = n.partitions;
    struct partition_settings st;
    settings_of(&n, &st);
    for (uint32_t i = 0; i < t->nparts; i++)
        partition_set_settings(t->parts[i], &st);
    atomic_store(&t->mtime_ms, clock_now_ms());
    goto out;
close:
    for (uint32_t i = was; i < n.partitions; i++)
        partition_close(t->parts[i]);
rollback:
    /* While a restart may find the new config, its partitions must stay. */
    if (n.partitions > was && !maybe_new)
        remove_range(t->dir, was, n.partitions);
    logger_log(LOG_LEVEL_ERROR, "topic %s: config change refused: %s", t->name, strerror(-r));
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
