/* status.h - the mount-wide status files MOUNTPOINT/.cluster and .metrics.
 *
 * .cluster: who serves what, one line each, as `key=value` fields:
 *   broker id=0 self=1
 *   controller id=0
 *   partition topic=orders partition=0 leader=0 replicas=0 isr=0 leader_epoch=0
 *   topic name=zzz state=failed error=ENOENT
 * A single node is broker 0, its own controller, and leads every partition
 * with itself as the only replica. A topic that could not be opened at
 * mount (store.h) gets a `topic ... state=failed` line with the errno's name.
 * In cluster mode (status_set_cluster) the first lines are the cluster's:
 *   cluster id=4fXa8EwFQ3mKd2GxvVcTqg zookeeper=connected
 *   broker id=1 host=127.0.0.1 port=9093 self=1     (every live broker, by id)
 *   broker id=2 host=127.0.0.1 port=9094 self=0
 *   controller id=2 epoch=3                         (-1: none known)
 * zookeeper= is connected, connecting (the lines are the last known) or
 * expired. The partition lines then say what the cluster says of each
 * partition of this data dir, and its high watermark:
 *   partition topic=orders partition=0 leader=2 replicas=2,3,1 isr=2,3,1 leader_epoch=0
 *     high_watermark=42                                   (one line)
 * leader=-1: none; leader_epoch=-1 and an empty isr=: no state yet (no
 * replica was live); empty replicas=: a topic of this data dir only.
 *
 * .metrics: Prometheus' text exposition format (version 0.0.4): per
 * partition its offsets and sizes and the records and bytes in and out since
 * the mount, per group and partition the committed offset and the lag, per
 * topic topicfs_topic_failed (1 for a topic that could not be opened). Each
 * metric family is written whole, after its # HELP and # TYPE lines.
 *
 * The internal topic __consumer_offsets is left out of both, as it is out of
 * `ls`, unless it failed (then no group works, and both files say so).
 * Texts are made anew at each open (and each read at offset 0). */
#ifndef TOPICFS_STATUS_H
#define TOPICFS_STATUS_H

#include <stddef.h>

#include "group.h"
#include "store.h"

struct cluster;
/* Cluster mode: .cluster shows c's view (cluster.h); NULL: single node. Set
 * before the mount, cleared after it. */
void status_set_cluster(struct cluster *c);

/* malloc'ed text and its length in *len, or NULL (out of memory). */
char *status_cluster_text(struct store *s, size_t *len);
char *status_metrics_text(struct store *s, struct group_registry *groups, size_t *len);

#endif
