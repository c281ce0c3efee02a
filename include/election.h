/* election.h - a partition's leader and ISR as the controller sets them
 * (Kafka's partition state machine before KRaft), pure functions over the
 * replicas (assignment order), the state in ZooKeeper and the live brokers.
 *
 * New partition: the leader is the first live replica, the ISR every live
 * replica (assignment order), leader epoch 0. With no live replica there is
 * no state to write (-ENOENT): the partition waits for one (Kafka leaves it
 * "new").
 *
 * Brokers came or went (election_update):
 *  - the leader lives: followers that died leave the ISR;
 *  - the leader died (or there is none, or it is no replica any more: a
 *    reassignment took it away): the new leader is the first replica, in
 *    assignment order, that lives and is in the ISR, and the ISR keeps its
 *    live members that are replicas. With no live ISR member and unclean
 *    election off (unclean.leader.election.enable=false, the default) the
 *    leader is -1 and the ISR keeps one member (the old leader if it was in
 *    it, else its first), as Kafka never empties an ISR, so that replica
 *    can lead again when it comes back. With it on, the first live replica
 *    in assignment order leads, alone in the ISR: what it lacks of the
 *    committed records is lost (the caller logs it).
 *  - ISR members that are no replica any more leave it.
 * Preferred leader (election_preferred, Kafka's auto.leader.rebalance):
 * when the first replica of the assignment lives and is in the ISR but
 * another broker leads, it takes the lead back; the ISR stays.
 * Every change moves the leader epoch up by one and carries the
 * controller's epoch. A broker that comes back does not rejoin the ISR
 * here: its leader adds it once it has caught up (replication's work). */
#ifndef TOPICFS_ELECTION_H
#define TOPICFS_ELECTION_H

#include <stddef.h>
#include <stdint.h>

#include "topic_codec.h"

struct election_live {
    const int32_t *ids; /* the live brokers, sorted */
    size_t n;
};

int election_is_live(const struct election_live *live, int32_t id);

/* 0 and *out, or -ENOENT when no replica lives. */
int election_initial(const int32_t *replicas, uint32_t nreplicas, const struct election_live *live,
                     int32_t controller_epoch, struct cluster_partition_state *out);

/* 1 and *out when cur must change, 0 when it stays (out untouched).
 * unclean: unclean.leader.election.enable. */
int election_update(const struct cluster_partition_state *cur, const int32_t *replicas,
                    uint32_t nreplicas, const struct election_live *live, int unclean,
                    int32_t controller_epoch, struct cluster_partition_state *out);
/* 1 and *out when the preferred replica should lead again, else 0. */
int election_preferred(const struct cluster_partition_state *cur, const int32_t *replicas,
                       uint32_t nreplicas, const struct election_live *live,
                       int32_t controller_epoch, struct cluster_partition_state *out);

#endif
