/* cluster.h - a broker's membership of a topicfs cluster under ZooKeeper.
 *
 * Lifecycle (fs/main.c):
 *   cluster_join()            before anything is mounted or written: connects
 *                             (bounded wait), reads or creates the cluster id,
 *                             checks the data dir's meta.properties, registers
 *                             the broker (or only checks that its id is free)
 *   cluster_claim_data_dir()  once the data dir is locked (store_open): checks
 *                             meta.properties again and writes it if missing
 *   cluster_start()           starts the cluster thread: registration kept
 *                             through session expiry, the live brokers, the
 *                             controller and the topics cached with watches,
 *                             the election, the controller's work, the data
 *                             dir kept in step with the cluster's topics
 *   cluster_view()            what .cluster shows, from the cache (no ZooKeeper
 *                             round trip), from any thread
 *   cluster_close()           ends the session: the broker's registration (and
 *                             /controller if it held it) vanish at once
 *
 * The znodes (under the chroot of zk=, Kafka's layout before KRaft; their
 * JSON in cluster_codec.h): /cluster/id, /brokers/ids/<id> (ephemeral),
 * /controller (ephemeral) and /controller_epoch (controller.h); the join
 * also creates the empty persistent parents of the topics' znodes:
 * /brokers/topics, /config/topics, /admin/delete_topics (topic_codec.h,
 * cluster_topics.h, controller_work.h).
 *
 * For fs/ (which never speaks ZooKeeper): cluster_topic_create, _delete and
 * _config are mkdir, rmdir and a .config line in cluster mode (errors in
 * cluster_topics.h); cluster_partition_view is a partition's assignment and
 * state for .cluster, and cluster_partition_leader says which broker leads
 * a partition and where it listens: the seam that forwarding and
 * replication use. Replication (replica.h) also writes the ISR of the
 * partitions this broker leads (cluster_alter_isr) and hears of state
 * changes (cluster_set_state_listener).
 *
 * The daemon forks to the background after mounting (fuse_daemonize), and
 * the ZooKeeper client's threads would not survive that: in the background
 * the parent joins with CLUSTER_CHECK_ONLY (every refusal still comes with
 * an exit status), closes that session, and the daemon joins for real after
 * the fork. */
#ifndef TOPICFS_CLUSTER_H
#define TOPICFS_CLUSTER_H

#include <stddef.h>

#include "cluster_codec.h"
#include "cluster_topics.h"
#include "controller.h"
#include "zk.h"

struct cluster_options {
    const char *zk;   /* connection string: host:port[,host:port...][/chroot] */
    int broker_id;    /* broker= */
    const char *host; /* listen=: the address other brokers reach this one at */
    int port;
    int session_timeout_ms;         /* zookeeper.session.timeout.ms */
    int connection_timeout_ms;      /* zookeeper.connection.timeout.ms */
    int default_replication_factor; /* default.replication.factor: replicas of a new topic */
    int unclean_leader_election;    /* unclean.leader.election.enable of a new topic */
    int auto_leader_rebalance;      /* auto.leader.rebalance.enable */
    int leader_imbalance_check_interval_ms; /* leader.imbalance.check.interval.seconds */
    const char *data_dir;
};

#define CLUSTER_LEADER_IMBALANCE_CHECK_INTERVAL_MS_DEFAULT 300000 /* Kafka's 300 s */

#define CLUSTER_CHECK_ONLY 1 /* cluster_join: check that the id is free, do not register */

struct cluster;

/* 0, or a negative errno and one line in why saying what is wrong. */
int cluster_join(const struct cluster_options *o, int flags, struct cluster **out, char *why,
                 size_t whylen);
int cluster_claim_data_dir(struct cluster *c, char *why, size_t whylen);
/* local: how fs/ changes the data dir and tells the kernel (NULL: the
 * cluster's topics are not served, as in a broker that only checks). */
int cluster_start(struct cluster *c, const struct cluster_local *local);
void cluster_close(struct cluster *c);

struct cluster_broker {
    int id;
    int port;
    char host[CLUSTER_HOST_MAX];
};

struct cluster_view {
    char cluster_id[CLUSTER_ID_MAX];
    int self;                /* this broker's id */
    enum zk_state zookeeper; /* the session's state */
    int controller;          /* -1: none known */
    int controller_epoch;    /* -1: none known */
    size_t nbrokers;         /* the live brokers, by id */
    struct cluster_broker *brokers;
};

int cluster_view(struct cluster *c, struct cluster_view *v);

int cluster_topic_create(struct cluster *c, const char *name);
/* An internal topic (__consumer_offsets) with config cfg, replicated
 * replication_factor times (0: min(3, live brokers), Kafka's default of
 * offsets.topic.replication.factor but never more than there are):
 * cluster_topic_create's errors (-EINVAL: fewer live brokers). */
int cluster_internal_topic_create(struct cluster *c, const char *name,
                                  const struct topic_config *cfg, int replication_factor);
int cluster_topic_delete(struct cluster *c, const char *name);
int cluster_topic_config(struct cluster *c, const char *name, const char *line, size_t len);
/* -ENOENT: not a topic of the cluster (or no such partition). */
int cluster_partition_view(struct cluster *c, const char *topic, uint32_t p,
                           struct cluster_partition_view *v);
/* The broker that leads the partition and its address: 0, -ENOENT (no such
 * partition in the cluster) or -EAGAIN (no leader now, or it is not live). */
int cluster_partition_leader(struct cluster *c, const char *topic, uint32_t p,
                             struct cluster_broker *leader);
void cluster_view_free(struct cluster_view *v);

/* ---- for replication (replica.h) ---- */

/* A live broker's address: 0, or -ENOENT (not registered now). */
int cluster_broker(struct cluster *c, int id, struct cluster_broker *out);
/* The leader's ISR change (Kafka's leader path before KRaft): writes the
 * partition's state znode with the version the cache holds, the same
 * leader, leader_epoch and controller_epoch, and isr. A state changed
 * meanwhile is read again and the write tried again, unless this broker no
 * longer leads it at leader_epoch: -ESTALE (a newer leader_epoch is never
 * overwritten). 0 (also when the ISR already is isr), -ENOENT (no such
 * partition), -EAGAIN (before cluster_start, or still changing), or the
 * errno of ZooKeeper (down: try again later). */
int cluster_alter_isr(struct cluster *c, const char *topic, uint32_t p, int32_t leader_epoch,
                      const int32_t *isr, uint32_t nisr);
/* fn(arg) is called on the cluster thread after each read of the topics'
 * znodes or the live brokers (partition states may have changed): it must
 * only take note and return. Set before cluster_start. */
void cluster_set_state_listener(struct cluster *c, void (*fn)(void *arg), void *arg);
const char *cluster_zk_state_name(enum zk_state s);

#endif
