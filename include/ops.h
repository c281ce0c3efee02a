/* ops.h - the FUSE low-level operations of the topicfs daemon.
 *
 * Every node shows the owner and group in fs_context and a mode made from
 * its kind and the umask (ops.c, node_mode); the kernel checks them
 * (main.c always mounts with default_permissions). */
#ifndef TOPICFS_OPS_H
#define TOPICFS_OPS_H

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>

#include "group.h"
#include "store.h"

struct cluster;
struct forwarder;
struct remote_reader;

struct fs_context {
    struct store *store;
    struct fuse_session *se;
    struct group_registry *groups;
    /* Consumer groups: what changes one, and members, go through the group
     * coordinator (coordinator.h), this broker on one node. */
    struct coord *coord;
    double entry_timeout; /* names are stable: cache lookups */
    uid_t uid;            /* owner of every node (-o uid=, default: the mounting user) */
    gid_t gid;            /* group of every node (-o gid=) */
    mode_t umask;         /* taken from 0666/0444 files and 0777 directories (-o umask=) */
    int64_t started_ms;
    /* Cluster mode: topics are made, deleted and configured through the
     * cluster (cluster.h), which also changes them here from other
     * brokers. NULL: a single node. */
    struct cluster *cluster;
    /* Cluster mode: writes to a partition this broker does not lead go to
     * its leader (produce.h). NULL: a single node. */
    struct forwarder *forward;
    /* Cluster mode: reads of a partition this broker holds no replica of
     * fetch from its leader first (remote.h). NULL: a single node. */
    struct remote_reader *remote;
    /* How long the kernel may keep the root's and a topic's name and
     * attributes: entry_timeout on a single node, where only this mount
     * changes them; short in cluster mode, where other brokers do. */
    double topic_timeout;
};

extern const struct fuse_lowlevel_ops topicfs_ops;

/* Tells the kernel that the size or mtime of partition `partition` of t
 * changed other than by a WRITE to its file (retention, compaction, appends
 * through .produce or at close): it drops the attributes it cached. Every
 * such change must be reported (ops.c, caching policy). */
void fs_partition_changed(void *fs_context, struct topic *t, uint32_t partition);

/* This data dir's topics changed: made (cfg NULL: the mount's defaults),
 * deleted (with its groups), or given a whole new config. remote: not by a
 * request of this mount (the cluster's doing), so the kernel is told. 0 or
 * a negative errno. These are the callbacks of struct cluster_local. */
int fs_topic_create(void *fs_context, const char *name, const struct topic_config *cfg, int remote);
int fs_topic_remove(void *fs_context, const char *name, int remote);
int fs_topic_configure(void *fs_context, const char *name, const struct topic_config *cfg,
                       int remote);

#endif
