/* nodes.h - the mount's node ids and names.
 *
 * A node id says what a node is, so static nodes need no inode table and
 * `forget` has nothing to free for them:
 *
 *   bits 63..40  topic id (0 for the root)      bits 39..36  node kind
 *   bits 35..0   payload: for a partition, its number; for a hidden view
 *                (p0@1234, p0.jsonl) a slot in the table of such views.
 *
 * The root is FUSE_ROOT_ID (1). Topic ids are never reused within a daemon's
 * life, so an id held by the kernel after `rmdir` resolves to nothing
 * (ENOENT) rather than to a new topic of the same name.
 *
 * A partition keeps one node id (and st_ino) for its life, across
 * retention and compaction: the kernel keeps one inode for it, so inotify
 * watches on it keep seeing appends. Each open file has its own view of the
 * layout (struct handle, fs/ops_impl.h); what stat shows is chosen in fs/ops.c. */
#ifndef TOPICFS_NODES_H
#define TOPICFS_NODES_H

#include <stddef.h>
#include <stdint.h>

enum node_kind {
    NODE_ROOT = 0,
    NODE_TOPIC = 1,
    NODE_PARTITION = 2,
    NODE_PRODUCE = 3,
    NODE_CONFIG = 4,
    NODE_INFO = 5,
    NODE_HIDDEN = 6,
    NODE_GROUPS = 7,      /* <topic>/.groups */
    NODE_GROUP = 8,       /* payload: group id */
    NODE_FOLLOW = 9,      /* payload: group id */
    NODE_DRAIN = 10,      /* payload: group id */
    NODE_CURSOR = 11,     /* payload: group id << 16 | partition */
    NODE_GROUP_INFO = 12, /* payload: group id */
    NODE_CLUSTER = 13,    /* MOUNTPOINT/.cluster (topic id 0) */
    NODE_METRICS = 14     /* MOUNTPOINT/.metrics (topic id 0) */
};

#define NODE_ROOT_ID 1u
#define NODE_PARTITION_MAX 0xffffu
#define NODE_PAYLOAD_MASK ((UINT64_C(1) << 36) - 1)

static inline uint64_t node_id(uint64_t topic, enum node_kind kind, uint64_t payload)
{
    return topic << 40 | (uint64_t)kind << 36 | (payload & NODE_PAYLOAD_MASK);
}
static inline uint64_t node_partition_id(uint64_t topic, uint32_t partition)
{
    return node_id(topic, NODE_PARTITION, partition & NODE_PARTITION_MAX);
}
static inline uint64_t node_topic(uint64_t id)
{
    return id >> 40;
}
static inline enum node_kind node_kind_of(uint64_t id)
{
    return id == NODE_ROOT_ID ? NODE_ROOT : (enum node_kind)((id >> 36) & 0xf);
}
static inline uint64_t node_payload(uint64_t id)
{
    return id & NODE_PAYLOAD_MASK;
}
/* Partition number of a NODE_PARTITION id. */
static inline uint32_t node_index(uint64_t id)
{
    return node_kind_of(id) == NODE_PARTITION ? (uint32_t)node_payload(id) : 0;
}

/* Group nodes: the group id (20 bits) and, for cursors, the partition. */
static inline uint64_t node_group_id(uint64_t topic, enum node_kind kind, uint64_t group,
                                     uint32_t partition)
{
    return node_id(topic, kind, (group & 0xfffff) << 16 | (partition & 0xffff));
}
static inline uint64_t node_group_of(uint64_t id)
{
    return node_payload(id) >> 16;
}
static inline uint32_t node_cursor_partition(uint64_t id)
{
    return (uint32_t)(node_payload(id) & 0xffff);
}

/* Inside a group directory: "follow", "drain", ".info", "p<N>". */
int node_parse_group_child(const char *name, enum node_kind *kind, uint32_t *partition);
/* An ISO 8601 UTC time (see below) or "t<ms>"/"<ms>" to epoch ms: 0 or -ENOENT. */
int node_parse_time(const char *s, size_t len, int64_t *ms);

/* A cursor file line: "N", "earliest", "latest", "-N" or "@TIME" (TIME as
 * node_parse_time), blanks around it and a trailing \r ignored. Copies the
 * spec into spec[cap] for group_cursor_set() and parses a time into
 * *time_ms. 0 or -EINVAL. */
int node_parse_cursor(const char *line, size_t len, char *spec, size_t cap, int64_t *time_ms);

/* What a name inside a topic directory means. */
struct node_name {
    enum node_kind kind;
    uint32_t partition;
    int jsonl; /* p0.jsonl, p0@….jsonl */
    enum { FROM_START, FROM_OFFSET, FROM_LAST, FROM_TIME } from;
    int64_t value; /* offset, count of last records, or epoch ms */
};

/* Parses "p<N>" (no leading zeros), ".produce", ".config", ".info", and the
 * hidden names "p<N>@<from>[.jsonl]" and "p<N>.jsonl" where <from> is an
 * offset, "-<count>", "t<epoch-ms>" or an ISO 8601 UTC time
 * (2026-11-23T10:00:00Z, optional fraction, Z or ±HH:MM). 0 or -ENOENT. */
int node_parse_topic_child(const char *name, struct node_name *out);

#endif
