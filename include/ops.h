/* ops.h - the FUSE low-level operations of the topicfs daemon. */
#ifndef TOPICFS_OPS_H
#define TOPICFS_OPS_H

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>

#include "store.h"

struct fs_context {
    struct store *store;
    double entry_timeout; /* names are stable: cache lookups */
    int64_t started_ms;
};

extern const struct fuse_lowlevel_ops topicfs_ops;

#endif
