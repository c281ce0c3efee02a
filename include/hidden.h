/* hidden.h - nodes for the hidden names p0@1234, p0@-10, p0@<time>, p0.jsonl.
 *
 * Each lookup of such a name resolves where it starts at that moment and
 * gets a fresh node, counted like the kernel counts lookups: the node lives
 * until FORGET brings its count to zero. Lookups are never cached (entry
 * timeout 0), so `cat p0@-10` run twice starts at the last 10 records of
 * each moment. */
#ifndef TOPICFS_HIDDEN_H
#define TOPICFS_HIDDEN_H

#include <stdint.h>

#include "partition.h"

struct hidden_node {
    uint64_t slot;
    uint64_t topic_id;
    uint32_t partition;
    int jsonl;
    struct partition_view view; /* where byte 0 is (not jsonl) */
    uint64_t start_offset;      /* first record (jsonl) */
};

/* Registers a node with one lookup; fills n->slot. */
int hidden_add(struct hidden_node *n);
/* Copies node `slot` into out: 0 or -ENOENT. */
int hidden_get(uint64_t slot, struct hidden_node *out);
/* Drops `count` lookups; frees the node at zero. */
void hidden_forget(uint64_t slot, uint64_t count);
/* Nodes alive (for tests and .metrics). */
uint64_t hidden_count(void);
/* Frees every node (at unmount). */
void hidden_clear(void);

#endif
