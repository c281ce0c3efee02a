/* hidden.h - nodes for the hidden names p0@1234, p0@-10, p0@<time>, p0.jsonl.
 *
 * Each lookup of such a name resolves where it starts at that moment and
 * gets a fresh node, counted like the kernel counts lookups: the node lives
 * until FORGET brings its count to zero. Lookups are never cached (entry
 * timeout 0), so `cat p0@-10` run twice starts at the last 10 records of
 * each moment.
 *
 * What stat shows must not change from one lookup to the next, or `tail -F`
 * (which stats the name every second) takes the file for a new one: st_ino
 * comes from the name, not the slot, and a jsonl node's exact size (the
 * length of its JSON text so far, grown as records arrive) is carried over
 * from a live node of the same partition and start, so it is rendered once,
 * not at every lookup. */
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
    uint64_t ino;               /* st_ino: from the name */
    uint64_t json_next;         /* jsonl: records before this offset are */
    uint64_t json_len;          /*   json_len bytes of JSON text */
};

/* Registers a node with one lookup; fills n->slot, and for jsonl the size
 * known by a live node of the same partition and start offset. */
int hidden_add(struct hidden_node *n);
/* Records that node `slot`'s JSON text up to offset next is len bytes (if
 * that is further than it knew). */
void hidden_set_json_size(uint64_t slot, uint64_t next, uint64_t len);
/* Copies node `slot` into out: 0 or -ENOENT. */
int hidden_get(uint64_t slot, struct hidden_node *out);
/* Drops `count` lookups; frees the node at zero. */
void hidden_forget(uint64_t slot, uint64_t count);
/* Nodes alive (for tests and .metrics). */
uint64_t hidden_count(void);
/* Frees every node (at unmount). */
void hidden_clear(void);

#endif
