/* cluster_topics.h - a broker's side of the cluster's topics: mkdir, rmdir
 * and .config through ZooKeeper, and this data dir kept in step with what
 * ZooKeeper says (topic_cache.h).
 *
 * Topics are made, deleted and configured in ZooKeeper; every broker (this
 * one included) then makes its data dir match (cluster_topics_reconcile,
 * after each sync of the cache), through the fs callbacks of struct
 * cluster_local, which also tell the kernel. mkdir, rmdir and .config
 * change this data dir at once as well, so the mount they ran on shows
 * their effect when they return.
 *
 *   mkdir   one ZooKeeper transaction creates /brokers/topics/<t> (the
 *           assignment: default.replication.factor replicas per partition
 *           over the live brokers, assignment.h) and /config/topics/<t>
 *           (the topic's whole config): both or neither.
 *   rmdir   Kafka's way: /admin/delete_topics/<t> marks it (if the topic is
 *           still in /brokers/topics); every broker deletes its copy when it
 *           sees the mark, and the controller removes the topic's znodes.
 *   .config a line changes /config/topics/<t> with a version check (read
 *           again and retried when another broker changed it first);
 *           partitions=N adds partitions to the assignment (Kafka's
 *           addPartitions); replication.factor=N starts a reassignment
 *           (Kafka's): each partition's replicas become its target ones
 *           followed by those leaving (removing_replicas); the new ones
 *           fetch from the leader, and the controller drops the leaving
 *           ones once every target replica is in the ISR.
 *
 * Errors: -EAGAIN when ZooKeeper is out of reach (nothing is changed,
 * here or there; a transaction whose answer was lost may still have been
 * applied, as with any ZooKeeper client), -EINVAL for fewer live brokers
 * than the replication factor (nothing is created or changed), -EEXIST,
 * -ENOENT, and -EBUSY for a change of replication.factor while a
 * reassignment of the topic is under way.
 *
 * The data dir remembers which of its topics the cluster made, and with
 * which topic id (DATA_DIR/cluster-topics, topic_codec.h). Only those are
 * ever deleted by the cluster: when ZooKeeper no longer lists them (deleted
 * while this broker was away) or lists another topic of the same name (made
 * again meanwhile: the old copy goes, the new one is made). A topic the
 * data dir had before it joined, or whose entry is lost, is never touched
 * and stays local (logged). The cluster id check of meta.properties
 * (cluster.h) keeps a data dir from ever being compared with the wrong
 * ZooKeeper; cluster-topics names its cluster too, and entries of another
 * cluster count for nothing. */
#ifndef TOPICFS_CLUSTER_TOPICS_H
#define TOPICFS_CLUSTER_TOPICS_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "topic_cache.h"
#include "zk.h"

/* What fs/ does to this data dir and the kernel. remote: not on behalf of a
 * request of this mount, so the kernel must be told (it saw nothing). Each
 * returns 0 or a negative errno. cfg NULL: the mount's defaults. */
struct cluster_local {
    struct store *store;
    int (*create)(void *arg, const char *name, const struct topic_config *cfg, int remote);
    int (*remove)(void *arg, const char *name, int remote);
    int (*configure)(void *arg, const char *name, const struct topic_config *cfg, int remote);
    void *arg;
};

struct cluster_topics;

/* default_rf, default_unclean: replication.factor and
 * unclean.leader.election.enable of the topics mkdir makes. */
int cluster_topics_open(const struct cluster_local *local, const char *data_dir,
                        const char *cluster_id, int default_rf, int default_unclean,
                        struct topic_cache *tc, struct cluster_topics **out);
void cluster_topics_close(struct cluster_topics *ct);

/* Makes this data dir match the cache: 0, or a negative errno when
 * something must be tried again. A topic this broker holds for the cluster
 * that the cache's list lacks is dropped only once z says its assignment
 * is gone (the list may predate a topic just made here). */
int cluster_topics_reconcile(struct cluster_topics *ct, struct zk *z);

/* live: the live brokers' ids, sorted. internal (NULL: a user's mkdir,
 * which may not name __consumer_offsets): the config of an internal topic,
 * replicated replication_factor times, not default.replication.factor. */
int cluster_topics_create(struct cluster_topics *ct, struct zk *z, const int32_t *live,
                          size_t nlive, const char *name, const struct topic_config *internal);
int cluster_topics_delete(struct cluster_topics *ct, struct zk *z, const char *name);
int cluster_topics_config(struct cluster_topics *ct, struct zk *z, const int32_t *live,
                          size_t nlive, const char *name, const char *line, size_t len);

struct cluster_partition_view {
    int32_t leader;       /* -1: none */
    int32_t leader_epoch; /* -1: no state yet */
    uint32_t nreplicas, nisr;
    int32_t replicas[CLUSTER_REPLICAS_MAX], isr[CLUSTER_REPLICAS_MAX];
};

/* Partition p of the cluster's topic name, from the cache: 0, or -ENOENT
 * (not a topic of the cluster, or no such partition). */
int cluster_topics_partition(struct cluster_topics *ct, const char *name, uint32_t p,
                             struct cluster_partition_view *v);

#endif
