/* topic_cache.h - what this broker knows of the cluster's topics, kept by
 * ZooKeeper watches: every topic's assignment, config and partition states,
 * and which topics are marked for deletion.
 *
 * Reads (topic_cache_sync and the topic_cache_read_* calls) set a watch on
 * every znode they read; the event of a watch (topic_cache_note, from the
 * ZooKeeper thread) names the znode to read again at the next sync. A full
 * sync (the first one of a session, or after a failed sync) lists
 * /brokers/topics and /admin/delete_topics and reads every topic whole.
 *
 * The cache is under tc->lock; the broker side (cluster_topics.c) and the
 * controller (controller_work.c) read it there and never hold the lock
 * across a ZooKeeper call. Reads overwrite what they find (the latest
 * answer; a watch set by the read brings any newer one). put_* record what
 * this broker just wrote, unless the cache already holds a newer version of
 * the same topic (same topic id). */
#ifndef TOPICFS_TOPIC_CACHE_H
#define TOPICFS_TOPIC_CACHE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "topic_codec.h"
#include "zk.h"

#define TOPICS_PATH "/brokers/topics"
#define CONFIGS_PATH "/config/topics"
#define DELETE_PATH "/admin/delete_topics"

enum tc_known { TC_UNREAD = 0, TC_ABSENT, TC_PRESENT };

struct tc_partition {
    enum tc_known known; /* of the state znode */
    int stale;           /* read before a full re-read (a new session: no watch left) */
    int32_t version;
    struct cluster_partition_state st;
};

struct tc_topic {
    char *name;
    int listed; /* a child of /brokers/topics */
    int marked; /* a child of /admin/delete_topics */
    enum tc_known assignment_known, config_known;
    int32_t assignment_version, config_version;
    struct cluster_assignment a;    /* when assignment_known == TC_PRESENT */
    struct topic_config cfg;        /* when config_known == TC_PRESENT; partitions and
                                       replication.factor from a */
    struct tc_partition *parts;     /* a.nparts of them */
    int bad_assignment, bad_config; /* unreadable (logged once) */
    /* Read with a watch, which the read of its event sets again: a topic
     * this broker made itself was only put, and is read at the next sync. */
    int assignment_watched, config_watched;
};

struct tc_event;

struct topic_cache {
    pthread_mutex_t lock;
    struct tc_topic **topics; /* sorted by name */
    size_t n, cap;
    int listed; /* both lists were read in this session */
    /* under event_lock: znodes to read again, from watches */
    pthread_mutex_t event_lock;
    struct tc_event *events;
    int need_full;
};

int topic_cache_new(struct topic_cache **out);
void topic_cache_free(struct topic_cache *tc);

/* From the ZooKeeper thread: 1 if path is one of the cache's znodes (it is
 * read again at the next sync), else 0. */
int topic_cache_note(struct topic_cache *tc, const char *path);
/* The next sync reads everything (a new session). */
void topic_cache_need_full(struct topic_cache *tc);
/* Reads what changed (or everything): 0, or a negative errno (the next
 * sync is then a full one). */
int topic_cache_sync(struct topic_cache *tc, struct zk *z);

/* Read one znode now (with a watch) into the cache. 0 (also when it is not
 * there: ABSENT) or a negative errno. */
int topic_cache_read_assignment(struct topic_cache *tc, struct zk *z, const char *name);
int topic_cache_read_config(struct topic_cache *tc, struct zk *z, const char *name);
int topic_cache_read_state(struct topic_cache *tc, struct zk *z, const char *name, uint32_t p);

/* After this broker's own writes: version is the znode's new version. */
void topic_cache_put_assignment(struct topic_cache *tc, const char *name,
                                const struct cluster_assignment *a, int32_t version);
void topic_cache_put_config(struct topic_cache *tc, const char *name, const char *topic_id,
                            const struct topic_config *cfg, int32_t version);
void topic_cache_put_state(struct topic_cache *tc, const char *name, const char *topic_id,
                           uint32_t p, const struct cluster_partition_state *st, int32_t version);
void topic_cache_put_marked(struct topic_cache *tc, const char *name);

/* Under tc->lock: the topic, or NULL. */
struct tc_topic *topic_cache_find(struct topic_cache *tc, const char *name);
/* Under tc->lock: 1 if t's assignment and config are known (it can be served). */
int topic_cache_complete(const struct tc_topic *t);

/* The config a topic has on every broker: cfg with partitions and
 * replication.factor from the assignment (partition 0's replica count). */
void topic_cache_full_config(const struct tc_topic *t, struct topic_config *out);

/* Znode paths of a topic (buffers of TC_PATH_MAX). */
#define TC_PATH_MAX 512
void tc_assignment_path(char *buf, const char *name);
void tc_config_path(char *buf, const char *name);
void tc_marker_path(char *buf, const char *name);
void tc_partitions_path(char *buf, const char *name);
void tc_partition_path(char *buf, const char *name, uint32_t p);
void tc_state_path(char *buf, const char *name, uint32_t p);

#endif
