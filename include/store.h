/* store.h - every topic in a data dir.
 *
 * The store owns the data dir (an flock on DATA_DIR/.lock keeps a second
 * daemon out), loads every topic at open, and creates and deletes topics
 * atomically: a topic is built in a temporary directory and renamed into
 * place, and deleted by renaming it away before removing its files, so a
 * crash leaves either the whole topic or none of it. */
#ifndef TOPICFS_STORE_H
#define TOPICFS_STORE_H

#include <pthread.h>
#include <stdint.h>

#include "ptr_array.h"
#include "topic.h"

struct store {
    char *dir;
    int lock_fd;
    uint32_t default_partitions;
    pthread_rwlock_t lock;
    struct ptr_array topics; /* struct topic *, sorted by name */
    uint64_t next_id;
};

int store_open(const char *dir, uint32_t default_partitions, struct store **out);
/* When a topic was last created or deleted (the mtime of DATA_DIR/topics,
 * which both rename into or out of), in epoch ms; 0 if it cannot be read. */
int64_t store_mtime_ms(struct store *s);
/* Syncs and closes every topic. */
void store_close(struct store *s);

/* -EINVAL bad name, -EEXIST exists. *out (optional) gets a reference. */
int store_create_topic(struct store *s, const char *name, struct topic **out);
/* Removes the topic and its data: -ENOENT if missing. */
int store_delete_topic(struct store *s, const char *name);
/* New reference, or NULL. */
struct topic *store_find(struct store *s, const char *name);
struct topic *store_find_id(struct store *s, uint64_t id);
/* Calls fn for each topic in name order, under the store's read lock. Stops
 * when fn returns non-zero and returns that value. */
int store_foreach(struct store *s, int (*fn)(struct topic *t, void *arg), void *arg);
size_t store_count(struct store *s);

#endif
