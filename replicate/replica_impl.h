/* replica_impl.h - what replica.c (roles), leader.c (the leader's
 * handlers, ISR and high watermark) and fetcher.c (followers) share.
 *
 * Locks, in the only order they are taken:
 *   r->op_lock   one replica's role change, a follower's truncation, reset
 *                and append: a role never changes under a fetcher's append
 *                (so a leader's epoch is never recorded below a batch of
 *                the old leader's)
 *   m->lock      the replica list, every replica's role fields, follower
 *                states and need_truncate, the fetchers, gen, stop
 * m->lock is never held across a call that changes a partition: those
 * call the store listener (replica.c's on_change), which takes m->lock.
 * partition_lead/partition_unlead (which call no listener) are called
 * under it, so a partition's leading flag changes with r->role.
 * partition_info() and other reads are fine under it.
 *
 * A struct replica is reference counted under m->lock: the list holds one
 * reference, and a handler or fetcher that works on it outside the lock
 * holds another; the last one lets go of the topic. */
#ifndef TOPICFS_REPLICA_IMPL_H
#define TOPICFS_REPLICA_IMPL_H

#include <pthread.h>
#include <stdint.h>

#include "isr.h"
#include "proto.h"
#include "replica.h"
#include "topic_codec.h"

enum replica_role { ROLE_NONE, ROLE_LEADER, ROLE_FOLLOWER, ROLE_OFFLINE };

/* Why a scan did not see a replica (what its drop does to the log). */
enum replica_leave {
    LEAVE_GONE,       /* its topic or partition went: nothing */
    LEAVE_UNASSIGNED, /* no replica here any more: the log is emptied */
};

#define HW_NOT_SENT UINT64_MAX

struct replica {
    int refs;
    char topic[PROTO_TOPIC_MAX];
    uint64_t topic_id; /* the store's: a topic made again is another replica */
    uint32_t part;
    struct topic *t; /* held */
    struct partition *p;
    pthread_mutex_t op_lock;
    /* under m->lock */
    enum replica_role role;
    int32_t leader, epoch;
    uint64_t epoch_start; /* leader: its log end when it started leading */
    uint32_t nreplicas, nisr;
    int32_t replicas[CLUSTER_REPLICAS_MAX], isr[CLUSTER_REPLICAS_MAX];
    size_t nfollowers; /* leader: every other replica */
    struct isr_follower followers[CLUSTER_REPLICAS_MAX];
    uint64_t hw_sent[CLUSTER_REPLICAS_MAX]; /* the high watermark each was last told */
    int need_truncate;                      /* follower: KIP-279 before fetching */
    int64_t retry_at_ms;                    /* follower: after an error, not before */
    int held;                               /* its high watermark is held (any role since open) */
    int isr_err;                            /* leader: the last cluster_alter_isr error logged */
    int seen;                               /* role thread: found in this scan */
    enum replica_leave leave;               /* role thread: why it was not */
    int fetch_err; /* follower, under op_lock: the last fetch error, logged once (fetcher.c) */
    int64_t hw_saved_ms; /* role thread: last high watermark checkpoint */
};

struct fetcher {
    struct replica_manager *m;
    int32_t leader;
    pthread_t thread;
    struct peer_conn *pc; /* set and cleared under m->lock (replica_stop aborts it) */
};

struct replica_manager {
    struct replica_options o;
    struct auth_secret secret;
    int have_secret;
    struct cluster *c;
    struct store *s;
    pthread_mutex_t lock;
    pthread_cond_t data_cond; /* long polls: gen moved */
    pthread_cond_t work_cond; /* the role thread and the fetchers: something to do */
    uint64_t gen;             /* a partition this broker leads changed, or a role */
    unsigned kick;            /* the role thread: scan now */
    struct replica **v;
    size_t n, cap;
    struct fetcher **fetchers;
    size_t nfetchers, fetchers_cap;
    pthread_t thread;
    int started, stop;
};

/* Monotonic milliseconds. */
int64_t replica_now_ms(void);
/* Waits on cond (m->lock held) until woken, stop, or ms pass. */
void replica_wait(struct replica_manager *m, pthread_cond_t *cond, int64_t ms);
/* Under m->lock: the replica of (topic, part), no reference taken. */
struct replica *replica_find(struct replica_manager *m, const char *topic, uint32_t part);
void replica_ref(struct replica *r);                              /* under m->lock */
void replica_unref(struct replica_manager *m, struct replica *r); /* takes m->lock */
/* A leader's high watermark from its ISR (m->lock not held). */
void replica_leader_advance(struct replica_manager *m, struct replica *r);

/* leader.c */
void leader_register(struct replica_manager *m, struct server *srv);

/* fetcher.c: under m->lock, a fetcher for broker `leader` (made if
 * missing): 0 or a negative errno. */
int fetcher_ensure(struct replica_manager *m, int32_t leader);
/* After m->stop is set: aborts their calls and joins them. */
void fetchers_stop(struct replica_manager *m);

#endif
