/* topic.h - a topic: its config and its partitions, in one directory.
 *
 * Layout under the data dir:  <name>/config  and  <name>/<N>/ per partition.
 * A topic is reference counted: the store holds one reference while the
 * topic exists, and every user (an open file, a running request) holds one.
 * Deleting a topic removes it from the store and its files at once; the
 * memory goes with the last reference. Partitions are only ever added, all
 * or nothing (topic.c): a refused change leaves the config, the partition
 * directories and the partitions readers see as they were. */
#ifndef TOPICFS_TOPIC_H
#define TOPICFS_TOPIC_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "config.h"
#include "partition.h"

struct topic {
    char *name;
    char *dir;
    uint64_t id;
    atomic_int refs;
    atomic_int deleted;
    int moved;             /* deleted, and dir is its place in trash/ (topic_move) */
    char *old_dir;         /* dir before topic_move, freed with the topic */
    pthread_rwlock_t lock; /* guards cfg and parts */
    struct topic_config cfg;
    struct partition **parts;
    uint32_t nparts;
    atomic_uint round_robin;      /* keyless records in .produce */
    atomic_llong mtime_ms;        /* last change of the directory */
    atomic_llong groups_mtime_ms; /* last change of .groups (a group made or deleted) */
};

/* Opens the topic in dir: its config (config_load) and every partition it
 * names, which must all be there. On success removes crash leftovers
 * (config.tmp, partition dirs past the count); on failure changes nothing
 * on disk and logs what could not be opened. */
int topic_open(const char *dir, const char *name, uint64_t id, struct topic **out);
void topic_get(struct topic *t);
/* The deleted topic's directory now is dir: every partition reads its files
 * there (partition_move), and the last topic_put removes it. */
int topic_move(struct topic *t, const char *dir);
void topic_put(struct topic *t);

/* Borrowed pointer to partition i, or NULL. Valid while the topic is held. */
struct partition *topic_partition(struct topic *t, uint32_t i);
uint32_t topic_partition_count(struct topic *t);
void topic_config_snapshot(struct topic *t, struct topic_config *out);
/* Applies one "key=value" line, persists it, grows partitions if asked; all
 * or nothing (-EINVAL for a bad line, else the errno that stopped it). */
int topic_config_apply(struct topic *t, const char *line, size_t len);
/* Flushes every partition. */
int topic_sync(struct topic *t);

/* 0 if Kafka accepts the name: [A-Za-z0-9._-], 1..249 bytes, not . or .. */
int topic_name_valid(const char *name);

#endif
