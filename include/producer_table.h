/* producer_table.h - the leader's idempotence state (Kafka's idempotent
 * producer): per partition and producer id, the producer's epoch, the last
 * sequence appended and the last PRODUCER_TABLE_BATCHES batches (first
 * sequence, record count, base offset).
 *
 * A batch carries (producer id, epoch, base sequence, count); sequences are
 * u32 and wrap. producer_table_append() decides, under the table's lock,
 * and appends through the caller's function only when the batch is new:
 *   - unknown producer id (first batch, or this leader's table was lost):
 *     any sequence is accepted and starts the producer's state;
 *   - epoch above the one known: the producer reset its sequences (after a
 *     failed delivery); its state starts again from this batch;
 *   - epoch below: -ESTALE (a fenced, older incarnation);
 *   - base sequence = last + 1: new, appended;
 *   - base sequence and count equal to one of the batches kept: a
 *     duplicate (a retry after a lost reply): *base_offset gets the offset
 *     it was stored at, nothing is appended, and 1 is returned;
 *   - a base sequence past last + 1: -EILSEQ (Kafka's
 *     OUT_OF_ORDER_SEQUENCE: batches before it are missing here, as after
 *     an unclean election; the producer may start a new epoch);
 *   - a base sequence at or below the last, not kept: -EALREADY (stored
 *     once, its offset forgotten).
 * An append that fails leaves the state as it was (a producer seen for the
 * first time is forgotten again).
 *
 * Replication of the state: a leader sends, with each fetch reply, the
 * kept batches of the partition (producer_table_snapshot, taken after the
 * reply's batches were read, so it covers them); a follower keeps those
 * its log holds (producer_table_follow). So a follower that becomes
 * leader answers a retry of a batch it already has as a duplicate
 * (Kafka rebuilds this state from the producer ids stored in its batches;
 * topicfs's batch format has no room for them, so they travel beside the
 * batches instead). The state lives in memory only: a broker restarted
 * starts empty and learns it again from its leader's next fetch reply
 * (a restarted broker that becomes leader before any fetch accepts the
 * next sequence it sees). The lock is held across the append, so
 * forwarded appends to one leader are serialized (local writes at the
 * leader's mount do not take it). */
#ifndef TOPICFS_PRODUCER_TABLE_H
#define TOPICFS_PRODUCER_TABLE_H

#include <stddef.h>
#include <stdint.h>

#define PRODUCER_TABLE_BATCHES 5 /* Kafka keeps the last 5 */

struct producer_table;

struct producer_batch {
    uint64_t producer_id;
    uint16_t epoch;
    uint32_t base_sequence;
    uint32_t count; /* >= 1 */
};

/* Appends the batch; 0 with *base_offset, or a negative errno. */
typedef int (*producer_append_fn)(void *arg, uint64_t *base_offset);

int producer_table_new(struct producer_table **out);
void producer_table_free(struct producer_table *t);

/* 0: appended by fn (*base_offset its first offset); 1: a duplicate
 * (*base_offset where it was stored); -ESTALE, -EILSEQ, -ENOMEM, or fn's
 * error. */
int producer_table_append(struct producer_table *t, const char *topic, uint32_t partition,
                          const struct producer_batch *b, producer_append_fn fn, void *arg,
                          uint64_t *base_offset);

/* One kept batch, as a leader's snapshot gives it. */
struct producer_kept {
    uint64_t producer_id;
    uint16_t epoch;
    uint32_t base_sequence, count;
    uint64_t base_offset;
};

/* The kept batches of a partition, each producer's oldest first: up to cap
 * into out; returns how many. */
size_t producer_table_snapshot(struct producer_table *t, const char *topic, uint32_t partition,
                               struct producer_kept *out, size_t cap);
/* A follower's table from its leader's snapshot v: first it forgets the
 * batches at or past `from` (its log end before this fetch's batches: what
 * lay there was truncated), then keeps those of v that lie wholly below
 * `to` (its log end now) and are newer than what it keeps of their
 * producer. With n = 0, only the first step (a new leader forgets what its
 * log does not hold). 0 or -ENOMEM. */
int producer_table_follow(struct producer_table *t, const char *topic, uint32_t partition,
                          uint64_t from, uint64_t to, const struct producer_kept *v, size_t n);

/* Forgets every producer of a topic (deleted). */
void producer_table_forget_topic(struct producer_table *t, const char *topic);

#endif
