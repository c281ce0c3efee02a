/* store.c - the topics of one data dir (store.h).
 *
 * DATA_DIR/
 *   .lock            flock()ed by the daemon that owns the directory
 *   topics/<name>/   one directory per topic (topic.h)
 *   tmp/             topics being created, renamed into topics/ when whole
 *   trash/           topics being deleted, renamed out of topics/ first
 *
 * Creating a topic is all-or-nothing. Its directory is built in tmp/ (the
 * partition directories, then the config, whose save fsyncs the directory)
 * and renamed into topics/, which is then fsynced: that rename is the
 * commit. If anything before it fails, the tmp dir is removed (with no
 * descriptor needed, so this works at EMFILE too); if opening the topic after
 * it fails, the directory is renamed back into tmp/ and removed. Deleting is
 * a rename into trash/ followed by an fsync of topics/ (the commit), then the
 * removal of the files. Whatever a crash leaves in tmp/ and trash/ is removed
 * at the next open, with a log line.
 *
 * A topic directory that cannot be opened (no config, a damaged config, a
 * partition missing or unreadable, ...) does not stop the store: it is
 * logged, kept in a list of failed topics (shown by .cluster and .metrics),
 * its name stays taken, and its files are left untouched for the admin. */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "logger.h"

/* A deletion in progress keeps its name taken until the topic's files
 * answer to their new place (topic_move): nothing may be created under the
 * old paths while a cleaner pass or a reader may still use them. */
struct deleting_topic {
    const char *name;
    struct deleting_topic *next;
};

struct failed_topic {
    char *name;
    int err;
};

/* Removes every entry of DATA_DIR/<sub> (crash leftovers), with a log line. */
static void clear_leftovers(const char *dir, const char *sub, const char *what)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    fsutil_remove_leftovers(path, NULL, NULL, what);
}

static int topic_cmp(const void *item, const void *key)
{
    return strcmp(((const struct topic *)item)->name, key);
}

static int failed_cmp(const void *item, const void *key)
{
    return strcmp(((const struct failed_topic *)item)->name, key);
}

static struct topic *topic_at(struct store *s, size_t i)
{
    return s->topics.items[i];
}

static struct failed_topic *failed_at(struct store *s, size_t i)
{
    return s->failed.items[i];
}

/* 1 if a topic or a failed topic has this name. Caller holds s->lock. */
static int name_taken(struct store *s, const char *name)
{
    int found;
    ptr_array_search(&s->topics, name, topic_cmp, &found);
    if (!found)
        ptr_array_search(&s->failed, name, failed_cmp, &found);
    for (struct deleting_topic *d = s->deleting; d && !found; d = d->next)
        found = !strcmp(d->name, name);
    return found;
}

static int insert_topic(struct store *s, struct topic *t)
{
    int found;
    size_t at = ptr_array_search(&s->topics, t->name, topic_cmp, &found);
    if (found)
        return -EEXIST;
    int r = ptr_array_insert(&s->topics, at, t);
    if (!r)
        topic_set_listeners(t, &s->listeners);
    return r;
}

int store_add_listener(struct store *s, topic_listener_fn fn, void *arg)
{
    int r = 0;
    pthread_rwlock_wrlock(&s->lock);
    unsigned n = atomic_load(&s->listeners.n);
    if (n >= TOPIC_LISTENERS_MAX) {
        r = -ENOSPC;
    } else {
        s->listeners.fn[n] = fn;
        s->listeners.arg[n] = arg;
        atomic_store_explicit(&s->listeners.n, n + 1, memory_order_release);
    }
    pthread_rwlock_unlock(&s->lock);
    return r;
}

static int insert_failed(struct store *s, const char *name, int err)
{
    int found;
    size_t at = ptr_array_search(&s->failed, name, failed_cmp, &found);
    struct failed_topic *f = calloc(1, sizeof(*f));
    if (!f || !(f->name = strdup(name))) {
        free(f);
        return -ENOMEM;
    }
    f->err = err;
    int r = found ? -EEXIST : ptr_array_insert(&s->failed, at, f);
    if (r) {
        free(f->name);
        free(f);
    }
    return r;
}

/* Opens every topic in DATA_DIR/topics; a topic that cannot be opened goes to
 * the failed list. Only running out of memory stops it. */
static int open_topics(struct store *s)
{
    char path[4096], tdir[4400];
    snprintf(path, sizeof(path), "%s/topics", s->dir);
    DIR *d = opendir(path);
    struct dirent *de;
    int r = 0;
    if (!d)
        return -errno;
    while (!r && (de = readdir(d))) {
        struct topic *t;
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (topic_name_valid(de->d_name)) {
            logger_log(LOG_LEVEL_WARN, "%s/%s: not a topic name, ignored", path, de->d_name);
            continue;
        }
        snprintf(tdir, sizeof(tdir), "%s/%s", path, de->d_name);
        int e = topic_open(tdir, de->d_name, s->next_id++, &t);
        if (e == -ENOMEM) {
            r = e;
        } else if (e) {
            logger_log(LOG_LEVEL_ERROR,
                       "topic %s failed: cannot open it (%s); not served, its files are left "
                       "as they are",
                       de->d_name, strerror(-e));
            r = insert_failed(s, de->d_name, e);
        } else if ((r = insert_topic(s, t))) {
            topic_put(t);
        }
    }
    closedir(d);
    return r;
}

/* Takes the data dir's lock. `fusermount3 -u` returns before the daemon
 * it stopped has synced and let go of the lock, so a mount right after an
 * unmount waits for it, up to STORE_LOCK_WAIT_MS; past that the dir is
 * served by another daemon: -EBUSY. */
#define STORE_LOCK_WAIT_MS 5000
static int lock_data_dir(int fd)
{
    const struct timespec step = {0, 20 * 1000 * 1000};
    for (int waited = 0;; waited += 20) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            return 0;
        if (errno != EWOULDBLOCK)
            return -errno;
        if (waited >= STORE_LOCK_WAIT_MS)
            return -EBUSY;
        nanosleep(&step, NULL);
    }
}

void store_config_defaults(const struct store *s, struct topic_config *c)
{
    config_defaults(c, s->default_partitions);
    if (s->default_min_insync > 0)
        c->min_insync_replicas = s->default_min_insync;
}

int store_open(const char *dir, uint32_t default_partitions, struct store **out)
{
    char path[4096];
    struct store *s = calloc(1, sizeof(*s));
    int r, made = 0;
    if (!s)
        return -ENOMEM;
    pthread_rwlock_init(&s->lock, NULL);
    s->lock_fd = -1;
    s->default_partitions = default_partitions ? default_partitions : 1;
    s->default_min_insync = 1;
    s->next_id = 1;
    if (!(s->dir = strdup(dir))) {
        r = -ENOMEM;
        goto fail;
    }
    if ((r = fsutil_ensure_dir(dir)) < 0 || (r == 1 && (r = fsutil_sync_parent(dir))))
        goto fail;
    snprintf(path, sizeof(path), "%s/.lock", dir);
    s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->lock_fd < 0) {
        r = -errno;
        goto fail;
    }
    if ((r = lock_data_dir(s->lock_fd)))
        goto fail;
    static const char *subdirs[] = {"topics", "tmp", "trash"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, subdirs[i]);
        if ((r = fsutil_ensure_dir(path)) < 0)
            goto fail;
        made |= r;
    }
    if (made && (r = fsutil_sync_dir(dir)))
        goto fail;
    clear_leftovers(dir, "tmp", "topic creation");
    clear_leftovers(dir, "trash", "topic deletion");
    if ((r = open_topics(s)))
        goto fail;
    *out = s;
    return 0;
fail:
    store_close(s);
    return r;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->topics.n; i++) {
        topic_sync(topic_at(s, i));
        topic_put(topic_at(s, i));
    }
    ptr_array_free(&s->topics);
    for (size_t i = 0; i < s->failed.n; i++) {
        free(failed_at(s, i)->name);
        free(failed_at(s, i));
    }
    ptr_array_free(&s->failed);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    pthread_rwlock_destroy(&s->lock);
    free(s->dir);
    free(s);
}

/* Removes a topic dir built in tmp/ that never got anywhere: its config,
 * config.tmp and empty partition dirs first, which needs no descriptor. */
static void remove_built(const char *dir, uint32_t nparts)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/config", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/config.tmp", dir);
    unlink(path);
    for (uint32_t i = 0; i < nparts; i++) {
        snprintf(path, sizeof(path), "%s/%u", dir, i);
        if (rmdir(path) < 0 && errno != ENOENT)
            fsutil_remove_tree(path);
    }
    int r = fsutil_remove_tree(dir);
    if (r)
        logger_log(LOG_LEVEL_WARN, "cannot remove %s (removed at the next mount): %s", dir,
                   strerror(-r));
}

/* Builds DATA_DIR/tmp/... for a new topic: its partition dirs and its config,
 * all durable once config_save() fsynced the directory. */
static int build_topic_dir(const char *tmp, const struct topic_config *cfg)
{
    char path[4200];
    if (mkdir(tmp, 0755) < 0)
        return -errno;
    for (uint32_t i = 0; i < cfg->partitions; i++) {
        snprintf(path, sizeof(path), "%s/%u", tmp, i);
        if (mkdir(path, 0755) < 0)
            return -errno;
    }
    snprintf(path, sizeof(path), "%s/config", tmp);
    return config_save(cfg, path, NULL);
}

int store_create_topic_config(struct store *s, const char *name, const struct topic_config *cfg,
                              struct topic **out)
{
    char tmp[4096], final[4096], topics[4096];
    struct topic_config c;
    struct topic *t;
    int r;

    if ((r = topic_name_valid(name)))
        return r;
    if (cfg)
        c = *cfg;
    else
        store_config_defaults(s, &c);
    pthread_rwlock_wrlock(&s->lock);
    if (name_taken(s, name)) {
        r = -EEXIST;
        goto out;
    }
    uint64_t id = s->next_id++;
    snprintf(tmp, sizeof(tmp), "%s/tmp/%s.%llu", s->dir, name, (unsigned long long)id);
    snprintf(topics, sizeof(topics), "%s/topics", s->dir);
    snprintf(final, sizeof(final), "%s/topics/%s", s->dir, name);
    if ((r = build_topic_dir(tmp, &c)))
        goto remove_tmp;
    if (rename(tmp, final) < 0) {
        r = -errno;
        goto remove_tmp;
    }
    /* The commit. The entry left tmp/ in the same step: a crash keeps the
     * topic in one place or the other, and tmp/ is emptied at open. */
    if ((r = fsutil_sync_dir(topics)))
        goto move_back;
    if ((r = topic_open(final, name, id, &t)))
        goto move_back;
    if ((r = insert_topic(s, t))) {
        topic_put(t);
        goto move_back;
    }
    if (out) {
        topic_get(t);
        *out = t;
    }
    goto out;
move_back:
    /* Out of topics/ again: after this rename the name is free, whatever
     * the removal below manages. */
    if (rename(final, tmp) < 0) {
        logger_log(LOG_LEVEL_ERROR, "topic %s: cannot undo a failed create (%s): %s", name,
                   strerror(-r), strerror(errno));
        fsutil_remove_tree(final);
    }
    fsutil_sync_dir(topics);
remove_tmp:
    remove_built(tmp, c.partitions);
    logger_log(LOG_LEVEL_ERROR, "cannot create topic %s: %s", name, strerror(-r));
out:
    pthread_rwlock_unlock(&s->lock);
    return r;
}

int store_create_topic(struct store *s, const char *name, struct topic **out)
{
    return store_create_topic_config(s, name, NULL, out);
}

int64_t store_mtime_ms(struct store *s)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof(path), "%s/topics", s->dir);
    if (stat(path, &st) < 0)
        return 0;
    return (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
}

int store_delete_topic(struct store *s, const char *name)
{
    char from[4096], to[4096], topics[4096];
    int found, r = 0;
    pthread_rwlock_wrlock(&s->lock);
    size_t i = ptr_array_search(&s->topics, name, topic_cmp, &found);
    if (!found) {
        pthread_rwlock_unlock(&s->lock);
        return -ENOENT;
    }
    struct topic *t = topic_at(s, i);
    snprintf(topics, sizeof(topics), "%s/topics", s->dir);
    snprintf(from, sizeof(from), "%s/topics/%s", s->dir, name);
    snprintf(to, sizeof(to), "%s/trash/%s.%llu", s->dir, name, (unsigned long long)t->id);
    if (rename(from, to) < 0) {
        r = -errno;
        pthread_rwlock_unlock(&s->lock);
        return r;
    }
    /* The commit: once topics/ is synced, the topic stays deleted. */
    if ((r = fsutil_sync_dir(topics))) {
        if (rename(to, from) == 0) {
            fsutil_sync_dir(topics);
            pthread_rwlock_unlock(&s->lock);
            logger_log(LOG_LEVEL_ERROR, "cannot delete topic %s: %s", name, strerror(-r));
            return r;
        }
        logger_log(LOG_LEVEL_WARN, "topic %s: deleted, but %s may not be durable yet: %s", name,
                   topics, strerror(-r));
        r = 0;
    }
    ptr_array_remove(&s->topics, i);
    atomic_store(&t->deleted, 1);
    struct deleting_topic me = {.name = t->name, .next = s->deleting};
    s->deleting = &me;
    pthread_rwlock_unlock(&s->lock);
    /* Open files of the topic keep reading it in trash/; its last reference
     * removes the files (what stays, at a crash, goes at the next open). */
    int e = topic_move(t, to);
    if (e)
        logger_log(LOG_LEVEL_WARN, "topic %s: its open files may not read on: %s", name,
                   strerror(-e));
    pthread_rwlock_wrlock(&s->lock);
    struct deleting_topic **d = &s->deleting;
    while (*d != &me)
        d = &(*d)->next;
    *d = me.next;
    pthread_rwlock_unlock(&s->lock);
    topic_put(t);
    return 0;
}

struct topic *store_find(struct store *s, const char *name)
{
    int found;
    struct topic *t = NULL;
    pthread_rwlock_rdlock(&s->lock);
    size_t i = ptr_array_search(&s->topics, name, topic_cmp, &found);
    if (found) {
        t = topic_at(s, i);
        topic_get(t);
    }
    pthread_rwlock_unlock(&s->lock);
    return t;
}

struct topic *store_find_id(struct store *s, uint64_t id)
{
    struct topic *t = NULL;
    pthread_rwlock_rdlock(&s->lock);
    for (size_t i = 0; i < s->topics.n; i++)
        if (topic_at(s, i)->id == id) {
            t = topic_at(s, i);
            topic_get(t);
            break;
        }
    pthread_rwlock_unlock(&s->lock);
    return t;
}

int store_foreach(struct store *s, int (*fn)(struct topic *t, void *arg), void *arg)
{
    int r = 0;
    pthread_rwlock_rdlock(&s->lock);
    for (size_t i = 0; i < s->topics.n && !r; i++)
        r = fn(topic_at(s, i), arg);
    pthread_rwlock_unlock(&s->lock);
    return r;
}

int store_foreach_failed(struct store *s, int (*fn)(const char *name, int err, void *arg),
                         void *arg)
{
    int r = 0;
    pthread_rwlock_rdlock(&s->lock);
    for (size_t i = 0; i < s->failed.n && !r; i++)
        r = fn(failed_at(s, i)->name, failed_at(s, i)->err, arg);
    pthread_rwlock_unlock(&s->lock);
    return r;
}

int store_failed_error(struct store *s, const char *name)
{
    int found, err = 0;
    pthread_rwlock_rdlock(&s->lock);
    size_t i = ptr_array_search(&s->failed, name, failed_cmp, &found);
    if (found)
        err = failed_at(s, i)->err;
    pthread_rwlock_unlock(&s->lock);
    return err;
}

size_t store_count(struct store *s)
{
    pthread_rwlock_rdlock(&s->lock);
    size_t n = s->topics.n;
    pthread_rwlock_unlock(&s->lock);
    return n;
}
