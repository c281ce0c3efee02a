/* controller_work.h - what the controller does with the cluster's topics
 * (Kafka's partition state machine and topic deletion, before KRaft):
 *
 *  - a partition with an assignment but no state gets one
 *    (/brokers/topics/<t>/partitions/<p>/state, election_initial);
 *  - when brokers come or go, every state is checked (election_update): a
 *    dead leader is replaced by the next live replica of the ISR, dead
 *    followers leave the ISR, leader_epoch + 1;
 *  - with no live ISR member a partition stays offline (leader -1) unless
 *    the topic's unclean.leader.election.enable is true (logged at warn);
 *  - rebalance (every leader.imbalance.check.interval.seconds while
 *    auto.leader.rebalance.enable, the caller's timer): a partition whose
 *    preferred replica (the first of its assignment) lives and is in the
 *    ISR but does not lead gets it back as leader (election_preferred);
 *  - a topic marked in /admin/delete_topics loses its znodes: its states,
 *    then its assignment, config and mark in one transaction.
 *
 * Every write of a state is a transaction with a check of
 * /controller_epoch's version (the one this controller set when it won):
 * a controller that lost its role without knowing it yet writes nothing
 * (-ESTALE: it must read /controller again). A state changed by someone
 * else since it was read (version check) is read again and decided anew.
 * Runs on the cluster thread, from the cache (topic_cache.h), which it
 * updates with what it wrote.
 *
 * The controller never adds a replica to an ISR. That is the leader's work
 * once a follower has caught up (replica.c), and its seam
 * is the state znode itself: as Kafka's leaders do, the leader will write
 * the state with the version the cache holds (tc_partition.version), the
 * same leader and leader_epoch and the grown ISR; the controller then sees
 * it through its watch like any other change. */
#ifndef TOPICFS_CONTROLLER_WORK_H
#define TOPICFS_CONTROLLER_WORK_H

#include <stddef.h>
#include <stdint.h>

#include "topic_cache.h"
#include "zk.h"

/* live: the live brokers' ids, sorted; rebalance: preferred leaders too.
 * 0, -ESTALE (no longer controller), or another negative errno (try
 * again). */
int controller_work_run(struct zk *z, struct topic_cache *tc, const int32_t *live, size_t nlive,
                        int32_t epoch, int32_t epoch_version, int rebalance);

#endif
