/* assignment.h - where a topic's replicas go: Kafka's replica assignment
 * without racks (AdminUtils.assignReplicasToBrokersRackUnaware), a pure
 * function.
 *
 * Over the brokers sorted by id, partition p's first replica (its preferred
 * leader) is broker[(p + start) % n]: leaders go round the brokers. The
 * other replicas follow it at a shift that grows by one each time the
 * partitions have gone round all brokers once, so followers spread too:
 * replica j (j >= 1) of p is broker[(first + 1 + (shift + j - 1) % (n - 1)) % n].
 * Every partition gets rf distinct brokers; over any run of n partitions
 * each broker leads exactly once.
 *
 * start and the first shift come from the seed (Kafka draws them at
 * random), unless fixed_start >= 0 gives both, as Kafka does when it adds
 * partitions to a topic (start at partition 0's leader). */
#ifndef TOPICFS_ASSIGNMENT_H
#define TOPICFS_ASSIGNMENT_H

#include <stddef.h>
#include <stdint.h>

/* Partitions first .. first + count - 1 of rf replicas each over the
 * brokers (any order, each id once: they are sorted here) into
 * out[(p - first) * rf + j]. -EINVAL if rf is 0, rf > nbrokers, count is 0
 * or a broker id is given twice; out is untouched then. */
int assignment_assign(const int32_t *brokers, size_t nbrokers, uint32_t first, uint32_t count,
                      uint32_t rf, int fixed_start, uint64_t seed, int32_t *out);

/* A change of replication factor (Kafka's reassignment): partition p's
 * target replicas at rf, from its replicas cur (ncur, assignment order),
 * its leader (-1: none) and ISR, over the live brokers (sorted, nlive).
 * load[i] counts the replicas live[i] holds of the topic; it is updated for
 * the brokers added.
 *   growing    cur in its order, then rf - ncur live brokers not in cur,
 *              each the least loaded (ties: the first from position
 *              p % nlive on, so partitions spread);
 *   shrinking  the rf replicas of cur that matter most, in cur's order:
 *              the leader, then ISR members, then live ones, then the
 *              first in cur;
 *   same       cur.
 * Returns rf and the target in out (room for rf), or -EINVAL (rf 0 or
 * above CLUSTER_REPLICAS_MAX, or too few live brokers outside cur to
 * grow). */
int assignment_reassign(const int32_t *cur, uint32_t ncur, int32_t leader, const int32_t *isr,
                        uint32_t nisr, const int32_t *live, size_t nlive, uint32_t *load,
                        uint32_t p, uint32_t rf, int32_t *out);

#endif
