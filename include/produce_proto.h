/* produce_proto.h - the payload of FRAME_PRODUCE (frame.h): a write made at
 * a broker that does not lead the partition, sent to the leader, which
 * appends it through the same core path as a local write
 * (partition_append_records) and answers with the offset of its first
 * record.
 *
 * FRAME_PRODUCE request, big-endian (frame.h's payload fields):
 *   str topic              1 to 249 bytes, a valid topic name
 *   u32 partition
 *   u64 producer_id        the forwarding broker's (produce.h)
 *   u16 producer_epoch
 *   u32 base_sequence      of the first record; the batch holds
 *   u32 count              count >= 1 records, sequences base.. base+count-1
 *   count times:           u32 key_len (0xffffffff: no key; else <= the
 *                          value's length), bytes value (key included)
 * FRAME_PRODUCE reply
 *   u64 base_offset
 * An error is the server's FRAME_F_ERROR reply (server.h) with the errno.
 *
 * The records are the framed records (what the forwarding mount's framing
 * made of the write), not a sealed batch: the leader seals its own batch with
 * its own offsets, positions and epoch, exactly as a local write does.
 * Decoding never copies a value (records point into the payload); a payload
 * that does not parse to its last byte, has a count of 0 or more records
 * than it can hold, a key longer than its value or a bad topic name is
 * -EBADMSG. */
#ifndef TOPICFS_PRODUCE_PROTO_H
#define TOPICFS_PRODUCE_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "batch.h"
#include "proto.h"

struct proto_produce_req {
    char topic[PROTO_TOPIC_MAX];
    uint32_t partition;
    uint64_t producer_id;
    uint16_t producer_epoch;
    uint32_t base_sequence;
    uint32_t count;
    struct record_ref *records; /* decode: an array the caller frees (proto_produce_req_free) */
};

/* Bytes the encoded request takes (SIZE_MAX if it cannot be encoded). */
size_t proto_produce_req_size(const struct proto_produce_req *r);
/* The payload's length, -EINVAL (bad topic name, count 0, a bad key
 * length), or the writer's errors (-ENOBUFS: buf too small). */
ssize_t proto_produce_req_encode(const struct proto_produce_req *r, uint8_t *buf, size_t cap);
/* 0, -EBADMSG or -ENOMEM. */
int proto_produce_req_decode(const uint8_t *payload, size_t len, struct proto_produce_req *out);
void proto_produce_req_free(struct proto_produce_req *r);

#define PROTO_PRODUCE_REPLY_SIZE 8
void proto_produce_reply_encode(uint64_t base_offset, uint8_t buf[PROTO_PRODUCE_REPLY_SIZE]);
int proto_produce_reply_decode(const uint8_t *payload, size_t len, uint64_t *base_offset);

#endif
