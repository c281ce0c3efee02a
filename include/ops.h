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

struct fs_context {
    struct store *store;
    struct fuse_session *se;
    struct group_registry *groups;
    double entry_timeout; /* names are stable: cache lookups */
    uid_t uid;            /* owner of every node (-o uid=, default: the mounting user) */
    gid_t gid;            /* group of every node (-o gid=) */
    mode_t umask;         /* taken from 0666/0444 files and 0777 directories (-o umask=) */
    int64_t started_ms;
};

extern const struct fuse_lowlevel_ops topicfs_ops;

/* Tells the kernel that the size or mtime of partition `partition` of t
 * changed other than by a WRITE to its file (retention, compaction, appends
 * through .produce or at close): it drops the attributes it cached. Every
 * such change must be reported (ops.c, caching policy). */
void fs_partition_changed(void *fs_context, struct topic *t, uint32_t partition);

#endif
