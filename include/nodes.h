/* nodes.h - the mount's node ids and names.
 *
 * A node id says what a node is, so the daemon keeps no inode table and
 * `forget` has nothing to free:
 *
 *   bits 63..32  topic id (0 for the root)     bits 31..28  node kind
 *   bits 27..0   partition number (partitions), else 0
 *
 * The root is FUSE_ROOT_ID (1). Topic ids are never reused within a daemon's
 * life, so an id held by the kernel after `rmdir` resolves to nothing
 * (ENOENT) rather than to a new topic of the same name. st_ino is the node id. */
#ifndef TOPICFS_NODES_H
#define TOPICFS_NODES_H

#include <stdint.h>

enum node_kind {
    NODE_ROOT = 0,
    NODE_TOPIC = 1,
    NODE_PARTITION = 2,
    NODE_PRODUCE = 3,
    NODE_CONFIG = 4,
    NODE_INFO = 5,
};

#define NODE_ROOT_ID 1u
#define NODE_INDEX_MAX ((1u << 28) - 1)

static inline uint64_t node_id(uint64_t topic, enum node_kind kind, uint32_t index)
{
    return topic << 32 | (uint64_t)kind << 28 | (index & NODE_INDEX_MAX);
}
static inline uint64_t node_topic(uint64_t id)
{
    return id >> 32;
}
static inline enum node_kind node_kind_of(uint64_t id)
{
    return id == NODE_ROOT_ID ? NODE_ROOT : (enum node_kind)((id >> 28) & 0xf);
}
static inline uint32_t node_index(uint64_t id)
{
    return (uint32_t)(id & NODE_INDEX_MAX);
}

/* Parses a name inside a topic directory: "p<N>" (no leading zeros),
 * ".produce", ".config", ".info". 0 or -ENOENT. */
int node_parse_topic_child(const char *name, enum node_kind *kind, uint32_t *index);

#endif
