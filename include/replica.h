/* replica.h - replication of partitions between brokers (Kafka's replica
 * manager before KRaft): each broker leads or follows the partitions of
 * which it is a replica, as the controller's partition states say.
 *
 *   leader    records its leader epoch at its log end
 *             (partition_assign_epoch), holds the high watermark and moves
 *             it to the smallest log end offset of the ISR; serves
 *             FRAME_FETCH (long poll) and FRAME_OFFSET_FOR_EPOCH; tracks
 *             each follower's log end and last caught-up time, and writes
 *             ISR changes to the state znode (cluster_alter_isr): shrink
 *             after replica.lag.time.max.ms behind, growth once caught up.
 *   follower  truncates what diverged from the leader (KIP-101/279:
 *             OffsetForLeaderEpoch, partition_truncation_point), then
 *             fetches from it: one fetcher thread per leader broker,
 *             every partition it follows there in one FETCH, long-polling;
 *             appends the leader's batches as stored
 *             (partition_append_batch) and moves its high watermark to
 *             min(leader's, own log end). A follower whose log lies wholly
 *             below the leader's log start starts afresh there
 *             (partition_reset).
 *             A partition with one replica leads as well (for the readers
 *             at brokers without a replica, remote.h); its high watermark
 *             keeps following its log end.
 *   none      a partition of which this broker is no replica, a topic the
 *             cluster does not know: untouched here (remote.h may fill it
 *             as a cache of the leader's committed records).
 * Appends made at a follower's own mount are not refused here (forwarding
 * them to the leader is fs/'s and the forwarding path's): they would
 * diverge from the leader, and the next fetch truncates them away.
 *
 * Errnos of the inter-broker answers (per partition):
 *   ENOENT   no such partition here (or, for OffsetForLeaderEpoch, an epoch
 *            the leader cannot place: Kafka's UNDEFINED_EPOCH_OFFSET)
 *   EREMOTE  this broker does not lead it (Kafka's NOT_LEADER_OR_FOLLOWER)
 *   ESTALE   the requester's current_leader_epoch is older than the
 *            leader's (FENCED_LEADER_EPOCH)
 *   EAGAIN   it is newer (UNKNOWN_LEADER_EPOCH: this broker has not seen
 *            the state yet)
 *   EPERM    a fetch by a broker that is no replica of it
 *   ERANGE   a fetch offset below the log start or past the log end
 *            (OFFSET_OUT_OF_RANGE)
 *   EIO      the next batch lies in damage
 * A whole request is refused with EACCES when replica_id is not the
 * authenticated peer, EINVAL for a replica_id below -1, EMSGSIZE for more
 * parts than a reply can carry. */
#ifndef TOPICFS_REPLICA_H
#define TOPICFS_REPLICA_H

#include "auth.h"
#include "cluster.h"
#include "server.h"
#include "producer_table.h"
#include "store.h"

#define REPLICA_LAG_TIME_MAX_MS_DEFAULT 30000 /* replica.lag.time.max.ms */
#define REPLICA_FETCH_WAIT_MAX_MS_DEFAULT 500 /* replica.fetch.wait.max.ms */

struct replica_options {
    int broker_id;
    const struct auth_secret *secret; /* copied; NULL: insecure loopback mode */
    int lag_time_max_ms;
    int fetch_wait_max_ms;
    /* The broker's idempotence table (produce.h), sent to followers with
     * the batches and kept from the leader's replies; NULL: none. */
    struct producer_table *producers;
};

struct replica_manager;

/* Registers the FETCH and OFFSET_FOR_EPOCH handlers on srv (call before
 * server_start), listens to the store's partitions and starts the role
 * thread (after cluster_start): 0 or a negative errno (nothing started). */
int replica_start(const struct replica_options *o, struct cluster *c, struct store *s,
                  struct server *srv, struct replica_manager **out);
/* Stops the role and fetcher threads and wakes long polls (before
 * server_stop and cluster_close). High watermarks stay held. */
void replica_stop(struct replica_manager *m);
/* Frees it: after server_stop (no handler runs) and store_close (the
 * store's listener may call it until then). NULL is fine. */
void replica_free(struct replica_manager *m);

#endif
