/* remote.h - reads at a broker that holds no replica of a partition
 * (cluster mode): the partition is fetched from its leader.
 *
 * Every broker has every partition of every cluster topic in its data dir
 * (cluster.h makes them). A broker that is no replica of one keeps its
 * local log as a cache of the leader's committed records: before fs/
 * serves a read there, remote_sync() fetches from the leader what is
 * missing, with the FETCH of the followers (proto.h) as a reader asks for
 * it (replica_id -1: only batches below the leader's high watermark) and
 * appends the batches as stored, with the leader's offsets, stream
 * positions and leader epochs (partition_append_batch, the follower
 * path). So every read path of core serves it as it serves a replica
 * (p0, p0@N, p0.jsonl, .info, st_size), byte for byte what the replicas
 * show, and only committed records are ever there (its high watermark
 * follows its log end). A cache that lies wholly below the leader's log
 * start (retention there) starts afresh at it (partition_reset). Memory is
 * one fetch reply at a time (REMOTE_FETCH_MAX_BYTES); the cache's disk is
 * what reads asked for, trimmed by the topic's retention as any log.
 *
 * Freshness: a sync is skipped while the last one that reached the
 * leader's high watermark started less than REMOTE_FRESH_MS ago, or while
 * a watch's long poll is at the leader (it answers as soon as there are
 * new records), unless a write at this mount was forwarded since
 * (remote_written). remote_watch() (an open file) keeps such a long poll
 * going (replica.fetch.wait.max.ms at a time) so that appends elsewhere
 * show up here at once, and fs/'s listener tells the kernel.
 *
 * Leader changes: the leader and its epoch come from the cluster's cache
 * at each try; a refused fetch (EREMOTE, ESTALE, EAGAIN, ENOENT) or a
 * broken connection is tried again every REMOTE_RETRY_MS, the leader
 * looked up again each time, within REMOTE_SYNC_MS. When that fails the
 * cache stands (a read then ends where the cache ends, as a file's read
 * ends at its size), and the next REMOTE_SYNC_MS of syncs of that
 * partition answer from it at once (an `ls -l` or .info of a topic whose
 * leader is down costs no wait per partition). */
#ifndef TOPICFS_REMOTE_H
#define TOPICFS_REMOTE_H

#include <stdint.h>

#include "partition.h"
#include "proto.h"
#include "store.h"

struct auth_secret;
struct cluster;

#define REMOTE_FRESH_MS 100
#define REMOTE_RETRY_MS 100
#define REMOTE_SYNC_MS 1000
#define REMOTE_FETCH_MAX_BYTES (1u << 20) /* Kafka's max.partition.fetch.bytes */

struct remote_options {
    int broker_id;
    const struct auth_secret *secret; /* copied; NULL: insecure loopback mode */
    int fetch_wait_max_ms;            /* a watch's long poll (replica.fetch.wait.max.ms) */
};

struct remote_reader;

int remote_open(const struct remote_options *o, struct cluster *c, struct remote_reader **out);
/* Stops the watches (their long polls end within fetch_wait_max_ms) and
 * frees it: before cluster_close and store_close. NULL is fine. */
void remote_close(struct remote_reader *rr);

/* Whether this broker holds no replica of partition part of t (a cluster
 * topic assigned elsewhere): its reads go through remote_sync. */
int remote_is_remote(struct remote_reader *rr, const struct topic *t, uint32_t part);

/* Brings t's partition part up to the leader's high watermark if this
 * broker holds no replica of it (else, and when fresh, 0 at once), with
 * one short try (above): 0, also when that failed (the cache stands), or
 * -ENOMEM. rr NULL: 0. */
int remote_sync(struct remote_reader *rr, struct topic *t, uint32_t part);
/* An open file of the partition: if it is remote, a long poll keeps the
 * cache current until the matching remote_unwatch, and 1 is returned
 * (else 0: no remote_unwatch). */
int remote_watch(struct remote_reader *rr, struct topic *t, uint32_t part);
/* A write at this mount was stored by the partition's leader: the next
 * read here fetches (read your writes). */
void remote_written(struct remote_reader *rr, const struct topic *t, uint32_t part);
void remote_unwatch(struct remote_reader *rr, struct topic *t, uint32_t part);
/* Every partition of t this broker holds no replica of, brought up to date
 * and watched (a group member reads them all): *parts (malloc'ed, NULL
 * when none) and *n say which, for remote_unwatch_topic. 0 or -ENOMEM. */
int remote_watch_topic(struct remote_reader *rr, struct topic *t, uint32_t **parts, uint32_t *n);
void remote_unwatch_topic(struct remote_reader *rr, struct topic *t, uint32_t *parts, uint32_t n);

/* One FETCH answer (the leader's, for readers: batches below its high
 * watermark) applied to the cache p, fetched from its log end
 * fetch_offset: the batches appended as stored; or, when they cannot
 * follow on (ERANGE: below the leader's log start or past its log end;
 * EINVAL from partition_append_batch: the cache diverged), the cache
 * started afresh at the leader's log start (partition_reset). *more: fetch
 * again at once (the leader's high watermark lies past the new log end, or
 * the cache was just started afresh). 0, the answer's error (negated), or
 * the local log's errno. name: the partition's, for the log line. */
int remote_apply(struct partition *p, const char *name, uint64_t fetch_offset,
                 const struct proto_fetch_result *res, int *more);

#endif
