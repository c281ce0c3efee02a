/* store.c - the topics of one data dir (store.h).
 *
 * DATA_DIR/
 *   .lock            flock()ed by the daemon that owns the directory
 *   topics/<name>/   one directory per topic (topic.h)
 *   tmp/             topics being created, renamed into topics/ when whole
 *   trash/           topics being deleted, renamed out of topics/ first
 * Leftovers in tmp/ and trash/ after a crash are removed at open. */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "logger.h"

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

static int remove_tree(const char *path)
{
    if (nftw(path, rm_entry, 32, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT)
        return -errno;
    return 0;
}

static void empty_dir(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *de;
    char sub[4096];
    if (!d)
        return;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
        remove_tree(sub);
    }
    closedir(d);
}

static int ensure_dir(const char *path)
{
    if (mkdir(path, 0755) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

static int topic_cmp(const void *item, const void *key)
{
    return strcmp(((const struct topic *)item)->name, key);
}

static struct topic *topic_at(struct store *s, size_t i)
{
    return s->topics.items[i];
}

static int insert_topic(struct store *s, struct topic *t)
{
    int found;
    size_t at = ptr_array_search(&s->topics, t->name, topic_cmp, &found);
    if (found)
        return -EEXIST;
    return ptr_array_insert(&s->topics, at, t);
}

int store_open(const char *dir, uint32_t default_partitions, struct store **out)
{
    char path[4096];
    struct store *s = calloc(1, sizeof(*s));
    int r;
    if (!s)
        return -ENOMEM;
    pthread_rwlock_init(&s->lock, NULL);
    s->lock_fd = -1;
    s->default_partitions = default_partitions ? default_partitions : 1;
    s->next_id = 1;
    if (!(s->dir = strdup(dir))) {
        r = -ENOMEM;
        goto fail;
    }
    if ((r = ensure_dir(dir)))
        goto fail;
    snprintf(path, sizeof(path), "%s/.lock", dir);
    s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->lock_fd < 0) {
        r = -errno;
        goto fail;
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        r = errno == EWOULDBLOCK ? -EBUSY : -errno;
        goto fail;
    }
    static const char *subdirs[] = {"topics", "tmp", "trash"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, subdirs[i]);
        if ((r = ensure_dir(path)))
            goto fail;
    }
    snprintf(path, sizeof(path), "%s/tmp", dir);
    empty_dir(path);
    snprintf(path, sizeof(path), "%s/trash", dir);
    empty_dir(path);

    snprintf(path, sizeof(path), "%s/topics", dir);
    DIR *d = opendir(path);
    struct dirent *de;
    if (!d) {
        r = -errno;
        goto fail;
    }
    while ((de = readdir(d))) {
        char tdir[4096];
        struct topic *t;
        if (topic_name_valid(de->d_name))
            continue;
        snprintf(tdir, sizeof(tdir), "%s/topics/%s", dir, de->d_name);
        r = topic_open(tdir, de->d_name, s->next_id++, &t);
        if (r) {
            logger_log(LOG_LEVEL_ERROR, "cannot open topic %s: %s", de->d_name, strerror(-r));
            closedir(d);
            goto fail;
        }
        if ((r = insert_topic(s, t))) {
            topic_put(t);
            closedir(d);
            goto fail;
        }
    }
    closedir(d);
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
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    pthread_rwlock_destroy(&s->lock);
    free(s->dir);
    free(s);
}

int store_create_topic(struct store *s, const char *name, struct topic **out)
{
    char tmp[4096], final[4096], path[4200];
    struct topic_config cfg;
    struct topic *t;
    int found, r;

    if ((r = topic_name_valid(name)))
        return r;
    pthread_rwlock_wrlock(&s->lock);
    ptr_array_search(&s->topics, name, topic_cmp, &found);
    if (found) {
        r = -EEXIST;
        goto out;
    }
    uint64_t id = s->next_id++;
    snprintf(tmp, sizeof(tmp), "%s/tmp/%s.%llu", s->dir, name, (unsigned long long)id);
    snprintf(final, sizeof(final), "%s/topics/%s", s->dir, name);
    config_defaults(&cfg, s->default_partitions);
    if ((r = ensure_dir(tmp)))
        goto out;
    snprintf(path, sizeof(path), "%s/config", tmp);
    if ((r = config_save(&cfg, path)))
        goto cleanup;
    if (rename(tmp, final) < 0) {
        r = -errno;
        goto cleanup;
    }
    if ((r = topic_open(final, name, id, &t))) {
        remove_tree(final);
        goto out;
    }
    if ((r = insert_topic(s, t))) {
        topic_put(t);
        goto out;
    }
    if (out) {
        topic_get(t);
        *out = t;
    }
    goto out;
cleanup:
    remove_tree(tmp);
out:
    pthread_rwlock_unlock(&s->lock);
    return r;
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
    char from[4096], to[4096];
    int found, r = 0;
    pthread_rwlock_wrlock(&s->lock);
    size_t i = ptr_array_search(&s->topics, name, topic_cmp, &found);
    if (!found) {
        pthread_rwlock_unlock(&s->lock);
        return -ENOENT;
    }
    struct topic *t = topic_at(s, i);
    snprintf(from, sizeof(from), "%s/topics/%s", s->dir, name);
    snprintf(to, sizeof(to), "%s/trash/%s.%llu", s->dir, name, (unsigned long long)t->id);
    if (rename(from, to) < 0) {
        r = -errno;
        pthread_rwlock_unlock(&s->lock);
        return r;
    }
    ptr_array_remove(&s->topics, i);
    atomic_store(&t->deleted, 1);
    pthread_rwlock_unlock(&s->lock);
    remove_tree(to);
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

size_t store_count(struct store *s)
{
    pthread_rwlock_rdlock(&s->lock);
    size_t n = s->topics.n;
    pthread_rwlock_unlock(&s->lock);
    return n;
}
