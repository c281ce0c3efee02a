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
 *                             through session expiry, the live brokers and the
 *                             controller cached with watches, the election
 *   cluster_view()            what .cluster shows, from the cache (no ZooKeeper
 *                             round trip), from any thread
 *   cluster_close()           ends the session: the broker's registration (and
 *                             /controller if it held it) vanish at once
 *
 * The znodes (under the chroot of zk=, Kafka's layout before KRaft; their
 * JSON in cluster_codec.h): /cluster/id, /brokers/ids/<id> (ephemeral),
 * /controller (ephemeral) and /controller_epoch (controller.h); the join
 * also creates the empty persistent parents later work fills:
 * /brokers/topics, /config/topics, /admin/delete_topics.
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
#include "controller.h"
#include "zk.h"

struct cluster_options {
    const char *zk;   /* connection string: host:port[,host:port...][/chroot] */
    int broker_id;    /* broker= */
    const char *host; /* listen=: the address other brokers reach this one at */
    int port;
    int session_timeout_ms;    /* zookeeper.session.timeout.ms */
    int connection_timeout_ms; /* zookeeper.connection.timeout.ms */
    const char *data_dir;
};

#define CLUSTER_CHECK_ONLY 1 /* cluster_join: check that the id is free, do not register */

struct cluster;

/* 0, or a negative errno and one line in why saying what is wrong. */
int cluster_join(const struct cluster_options *o, int flags, struct cluster **out, char *why,
                 size_t whylen);
int cluster_claim_data_dir(struct cluster *c, char *why, size_t whylen);
/* cb: the controller's work (controller.h); may be NULL. */
int cluster_start(struct cluster *c, const struct controller_callbacks *cb);
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
void cluster_view_free(struct cluster_view *v);
const char *cluster_zk_state_name(enum zk_state s);

#endif
