/* isr.h - the in-sync replica set and the high watermark at a partition's
 * leader, as Kafka's leaders keep them (Partition.scala before KRaft). Pure
 * functions: no locks, no clock (times are passed in, monotonic ms), no I/O.
 *
 * The leader knows, for each follower, its log end offset (LEO: the offset
 * of its last fetch) and when it was last caught up (Kafka's
 * lastCaughtUpTimeMs): a fetch at or past the leader's log end at that
 * moment means caught up now; a fetch at or past the leader's log end as it
 * was at the follower's previous fetch means caught up as of that previous
 * fetch. So a follower that keeps fetching while the leader keeps
 * appending stays caught up; one that stopped, or falls further behind,
 * ages.
 *
 *   ISR shrink: a member other than the leader whose last caught-up time is
 *               more than replica.lag.time.max.ms old leaves.
 *   ISR growth: a follower outside it joins once its LEO is at or past the
 *               high watermark and past the start of the leader's epoch
 *               (it holds every committed record, and this leader's),
 *               and it was caught up within replica.lag.time.max.ms (a
 *               follower that stopped fetching does not come back on its
 *               own: it ages out and stays out).
 *   HW:         the smallest LEO in the ISR (the leader's own log end
 *               included); a member whose LEO is not known yet holds it
 *               where it is. It never goes down.
 * The leader is always in the ISR it computes. */
#ifndef TOPICFS_ISR_H
#define TOPICFS_ISR_H

#include <stddef.h>
#include <stdint.h>

#define ISR_LEO_UNKNOWN (-1)

struct isr_follower {
    int32_t id;
    int64_t leo;                    /* ISR_LEO_UNKNOWN until its first fetch */
    int64_t last_caught_up_ms;      /* when it last held the leader's whole log */
    int64_t last_fetch_ms;          /* its previous fetch */
    uint64_t last_fetch_leader_leo; /* the leader's log end at that fetch */
};

/* A follower as a new leader starts it: LEO unknown, caught up now (so an
 * in-sync follower gets replica.lag.time.max.ms to show up). */
void isr_follower_init(struct isr_follower *f, int32_t id, int64_t now_ms);

/* A fetch from fetch_offset when the leader's log end is leader_leo. */
void isr_follower_fetched(struct isr_follower *f, uint64_t fetch_offset, uint64_t leader_leo,
                          int64_t now_ms);

/* The high watermark from the ISR (ids, nisr), the leader's log end and the
 * followers' LEOs: never below hw (the current one) nor above leader_leo.
 * An ISR member that is neither the leader nor among the followers holds
 * it, like one whose LEO is unknown. */
uint64_t isr_high_watermark(uint64_t hw, int32_t leader, uint64_t leader_leo,
                            const struct isr_follower *f, size_t nf, const int32_t *isr,
                            size_t nisr);

/* The ISR the leader wants now, into out (room for nisr + nf + 1 ids):
 * the current members in their order, less the followers out of sync,
 * then the followers that caught up, in the followers' order; the leader
 * first if it was missing. Returns its size. */
size_t isr_next(int32_t leader, uint64_t hw, uint64_t epoch_start, const struct isr_follower *f,
                size_t nf, const int32_t *isr, size_t nisr, int64_t now_ms, int64_t lag_max_ms,
                int32_t *out);

/* 1 if a and b hold the same ids (in any order). */
int isr_same(const int32_t *a, size_t na, const int32_t *b, size_t nb);

#endif
