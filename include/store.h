/* store.h - every topic in a data dir.
 *
 * The store owns the data dir (an flock on DATA_DIR/.lock keeps a second
 * daemon out), loads every topic at open, and creates and deletes topics
 * atomically: a topic is built in a temporary directory and renamed into
 * place, and deleted by renaming it away before removing its files; each
 * rename is followed by an fsync of topics/. A refused create or delete
 * leaves nothing behind, on disk or in memory, and a crash leaves either the
 * whole topic or none of it; the next open removes the leftovers.
 *
 * A topic that cannot be opened does not stop the store: it is "failed",
 * not served, listed by store_foreach_failed(), and its name stays taken
 * (create: -EEXIST; delete: -ENOENT, as it is not there to delete). Its
 * files are left as they are, for the admin to repair or remove before the
 * next mount. */
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
    int64_t default_min_insync; /* min.insync.replicas of new topics (mount option; 1) */
    pthread_rwlock_t lock;
    struct ptr_array topics;         /* struct topic *, sorted by name */
    struct ptr_array failed;         /* topics that could not be opened, sorted by name */
    struct deleting_topic *deleting; /* names still taken by a deletion in progress */
    uint64_t next_id;
    struct topic_listeners listeners; /* store_add_listener */
};

int store_open(const char *dir, uint32_t default_partitions, struct store **out);
/* The config of a topic made at this mount: Kafka's defaults, the mount's
 * partitions= and min.insync.replicas=. */
void store_config_defaults(const struct store *s, struct topic_config *c);
/* When a topic was last created or deleted (the mtime of DATA_DIR/topics,
 * which both rename into or out of), in epoch ms; 0 if it cannot be read. */
int64_t store_mtime_ms(struct store *s);
/* fn is told of every change of every partition of every topic, now and
 * created later (PARTITION_EVENT_*, partition.h): fs/ wakes readers with
 * it, replicate/ long-polling fetches. Listeners are never removed; arg
 * must live as long as the store. 0, or -ENOSPC past TOPIC_LISTENERS_MAX. */
int store_add_listener(struct store *s, topic_listener_fn fn, void *arg);
/* Syncs and closes every topic. */
void store_close(struct store *s);

/* -EINVAL bad name, -EEXIST exists (or failed). *out (optional) gets a
 * reference. With the mount's default config. */
int store_create_topic(struct store *s, const char *name, struct topic **out);
/* The same with a whole config (NULL: the defaults). */
int store_create_topic_config(struct store *s, const char *name, const struct topic_config *cfg,
                              struct topic **out);
/* Removes the topic and its data: -ENOENT if missing. */
int store_delete_topic(struct store *s, const char *name);
/* New reference, or NULL. */
struct topic *store_find(struct store *s, const char *name);
struct topic *store_find_id(struct store *s, uint64_t id);
/* Calls fn for each topic in name order, under the store's read lock. Stops
 * when fn returns non-zero and returns that value. */
int store_foreach(struct store *s, int (*fn)(struct topic *t, void *arg), void *arg);
size_t store_count(struct store *s);
/* Calls fn for each failed topic in name order, with the errno that made it
 * fail, under the store's read lock; stops at a non-zero return. */
int store_foreach_failed(struct store *s, int (*fn)(const char *name, int err, void *arg),
                         void *arg);
/* The errno that made topic `name` fail, or 0 if it did not. */
int store_failed_error(struct store *s, const char *name);

#endif
