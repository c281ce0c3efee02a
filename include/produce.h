/* produce.h - produce at any mount (cluster mode): a write at a broker that
 * does not lead the partition is forwarded to the leader (FRAME_PRODUCE,
 * produce_proto.h), idempotently, after Kafka's idempotent producer.
 *
 * Leader side (produce_leader): the FRAME_PRODUCE handler. It checks that
 * this broker leads the partition (else -EAGAIN: the sender looks the
 * leader up again), then appends the records through core's produce path
 * (partition_append_records, the one a local write takes) under the
 * producer table (producer_table.h): a duplicate is answered with the
 * offset it was stored at, an out-of-order sequence with -EILSEQ, an old
 * producer epoch with -ESTALE.
 *
 * Forwarding side (forwarder): this broker's producer id is
 * (broker id << 32) | 32 random bits drawn at start: unique per broker and
 * per run without a ZooKeeper round trip (a restarted broker is a new
 * producer; the leader's table is in memory and would not know the old one
 * anyway). Per partition it keeps a producer epoch and the next sequence,
 * and sends one batch at a time per partition (Kafka's
 * max.in.flight.requests=1), over one connection per leader broker (a
 * pool: a mutex per connection, reconnect on any error). A request that
 * fails for a reason that may pass (no connection, no leader now, the
 * topic not yet known there, a lost reply) is sent again with the SAME
 * producer id, epoch and sequence after retry.backoff.ms (100), the leader
 * looked up again each time, until delivery.timeout.ms has passed since the
 * write began: then -EIO. After such a failure (or -EILSEQ/-ESTALE from the
 * leader, reported as -EIO too) the outcome is unknown, so the partition's
 * epoch goes up and its sequence restarts at 0: the next write is never
 * taken for a duplicate of the failed one. -EMSGSIZE, -EINVAL, -ENOSPC and
 * -EDQUOT from the leader are returned as they are (nothing was stored;
 * the sequence is reused).
 *
 * When the leader looked up during the retries is this broker (leadership
 * moved here), the batch is stored here through this broker's own producer
 * table with its producer id and sequence (the old leader may have stored
 * it and replicated it here: then it is a duplicate, answered with its
 * offset); the partition's epoch then goes up as after a failure. A write
 * for which no other broker was tried is appended by local(). A local append refused with -EAGAIN
 * (the controller named this broker, but its replica has not started leading) is retried like a
 * forward.
 *
 * acks: the leader appends through partition_produce() with the topic's
 * acks and min.insync.replicas, and answers once the append is
 * acknowledged (acks=all: every in-sync replica has it), so
 * forward_produce() returns when the write is as acknowledged as a local
 * one. A duplicate is answered once its records are acknowledged too. */
#ifndef TOPICFS_PRODUCE_H
#define TOPICFS_PRODUCE_H

#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "batch.h"
#include "server.h"
#include "store.h"

struct cluster;

#define DELIVERY_TIMEOUT_MS_DEFAULT 120000 /* Kafka's delivery.timeout.ms */
#define PRODUCE_RETRY_BACKOFF_MS 100       /* Kafka's retry.backoff.ms */

struct produce_leader;

/* Registers the FRAME_PRODUCE handler on s (before server_start). */
int produce_leader_open(struct server *s, struct store *store, struct cluster *c, int broker_id,
                        struct produce_leader **out);
/* After server_stop (no handler runs). */
void produce_leader_close(struct produce_leader *l);
/* Its idempotence table (replica.h's producers: replicated to followers). */
struct producer_table *produce_leader_table(struct produce_leader *l);

struct forwarder_options {
    struct cluster *cluster;
    struct produce_leader *leader;    /* this broker's (batches that come home), or NULL */
    const struct auth_secret *secret; /* copied; NULL: insecure loopback */
    int broker_id;
    int delivery_timeout_ms;
};

struct forwarder;

int forwarder_open(const struct forwarder_options *o, struct forwarder **out);
void forwarder_close(struct forwarder *f);
uint64_t forwarder_producer_id(const struct forwarder *f);

/* Appends the records at this broker (the caller's produce path, with its
 * acks): 0 with *base_offset, -EAGAIN when this replica does not lead yet
 * (tried again like a forward), or another negative errno (returned). */
typedef int (*produce_local_fn)(void *arg, uint64_t *base_offset);

/* Produce at any mount: when this broker leads the partition (or the
 * cluster does not know it), local(arg) appends; else the records go to
 * the leader, with retries (above) that call local() if leadership moves
 * here. 0: stored (and acknowledged as the topic's acks ask) with
 * *base_offset (optional); else a negative errno (above). */
int forward_produce(struct forwarder *f, const char *topic, uint32_t partition,
                    const struct record_ref *r, size_t n, produce_local_fn local, void *arg,
                    uint64_t *base_offset);

#endif
