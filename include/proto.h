/* proto.h - the payloads of the inter-broker requests (frame.h types),
 * after Kafka's Fetch and OffsetForLeaderEpoch.
 *
 * FRAME_FETCH request
 *   i32 replica_id         the fetching broker (followers), or -1 (a mount
 *                          reading for a consumer: high watermark bound)
 *   u32 max_wait_ms        long poll: the leader answers once min_bytes are
 *   u32 min_bytes          there or max_wait_ms passed
 *   u32 max_bytes
 *   u16 n, then n times:   str topic, u32 partition, u64 fetch_offset,
 *                          u32 current_leader_epoch, u32 partition_max_bytes
 * FRAME_FETCH reply
 *   u16 n, then n times:   str topic, u32 partition, u32 error (an errno, 0),
 *                          u64 high_watermark, u64 log_start_offset,
 *                          u64 log_start_pos (the stream position of the
 *                          log start: what a follower's partition_reset
 *                          needs), u64 log_end_offset, u32 leader_epoch,
 *                          u8 compacted (0 or 1: the leader's log may have
 *                          gaps), bytes records (stored batches, as on disk),
 *                          bytes producers (to a follower: the leader's
 *                          idempotence state of the partition,
 *                          producer_table.h; n times u64 producer_id,
 *                          u16 epoch, u32 base_sequence, u32 count,
 *                          u64 base_offset; empty to a reader)
 *
 * FRAME_OFFSET_FOR_EPOCH request
 *   u16 n, then n times:   str topic, u32 partition, u32 current_leader_epoch,
 *                          u32 leader_epoch
 * FRAME_OFFSET_FOR_EPOCH reply
 *   u16 n, then n times:   str topic, u32 partition, u32 error,
 *                          u32 leader_epoch, u64 end_offset
 *
 * Integers are big-endian, str is u16 length + bytes (no NUL), bytes is
 * u32 length + bytes (frame.h's payload fields). Decoding never copies
 * records: they point into the frame. A payload that does not parse to
 * its last byte, holds more than PROTO_MAX_PARTS entries, a topic name
 * that is not one (1 to 249 bytes), an error above 4095, a compacted
 * byte other than 0 and 1, or producers whose length is not a multiple
 * of PROTO_PRODUCER_SIZE or holds more than PROTO_PRODUCERS_MAX is
 * -EBADMSG.
 *
 * A fetch reply is sent without copying its records: proto_fetch_reply_
 * part() writes the fields before a partition's records into a small
 * buffer, and the caller sends [fields, records, fields, records...] as
 * one iovec. */
#ifndef TOPICFS_PROTO_H
#define TOPICFS_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "producer_table.h"

#define PROTO_MAX_PARTS 65535
#define PROTO_TOPIC_MAX 250 /* 249 bytes and a NUL */
#define PROTO_PRODUCER_SIZE 26
#define PROTO_PRODUCERS_MAX 320 /* kept batches of one partition in a reply */
/* Bytes of a fetch reply part's producers field, at most. */
#define PROTO_FETCH_PART_TAIL (4 + PROTO_PRODUCERS_MAX * PROTO_PRODUCER_SIZE)
/* Bytes before a fetch reply part's records: the largest topic name. */
#define PROTO_FETCH_PART_HEAD (2 + 249 + 4 + 4 + 8 + 8 + 8 + 8 + 4 + 1 + 4)

struct proto_fetch_part {
    char topic[PROTO_TOPIC_MAX];
    uint32_t partition;
    uint64_t fetch_offset;
    uint32_t current_leader_epoch;
    uint32_t max_bytes;
};

struct proto_fetch_req {
    int32_t replica_id;
    uint32_t max_wait_ms, min_bytes, max_bytes;
    size_t n;
    struct proto_fetch_part *parts;
};

struct proto_fetch_result {
    char topic[PROTO_TOPIC_MAX];
    uint32_t partition;
    uint32_t error;
    uint64_t high_watermark, log_start_offset, log_end_offset;
    uint32_t leader_epoch;
    const uint8_t *records; /* into the reply frame */
    uint32_t records_len;
    uint64_t log_start_pos;
    uint8_t compacted;
    const uint8_t *producers; /* into the reply frame: proto_fetch_producer() */
    uint32_t nproducers;
};

struct proto_epoch_query {
    char topic[PROTO_TOPIC_MAX];
    uint32_t partition;
    uint32_t current_leader_epoch;
    uint32_t leader_epoch;
};

struct proto_epoch_answer {
    char topic[PROTO_TOPIC_MAX];
    uint32_t partition;
    uint32_t error;
    uint32_t leader_epoch;
    uint64_t end_offset;
};

/* Encoders: the payload's length, or a negative errno of frame.h's writer
 * (-ENOBUFS: buf too small), -EINVAL for a topic name that is not one. */
ssize_t proto_fetch_req_encode(const struct proto_fetch_req *r, uint8_t *buf, size_t cap);
/* The u16 count that starts a fetch reply: 2 bytes into buf. */
void proto_fetch_reply_count(uint16_t n, uint8_t buf[2]);
/* The fields of one reply part before its records (records_len of them
 * follow): their length (<= PROTO_FETCH_PART_HEAD) or a negative errno. */
ssize_t proto_fetch_reply_part(const struct proto_fetch_result *p, uint8_t *buf, size_t cap);
/* The producers field that follows a part's records: its length (<=
 * PROTO_FETCH_PART_TAIL) or a negative errno (-EINVAL: n too large). */
ssize_t proto_fetch_reply_producers(const struct producer_kept *v, size_t n, uint8_t *buf,
                                    size_t cap);
/* Entry i (< nproducers) of a decoded part's producers. */
void proto_fetch_producer(const struct proto_fetch_result *p, size_t i, struct producer_kept *out);
ssize_t proto_epoch_req_encode(const struct proto_epoch_query *q, size_t n, uint8_t *buf,
                               size_t cap);
ssize_t proto_epoch_reply_encode(const struct proto_epoch_answer *a, size_t n, uint8_t *buf,
                                 size_t cap);

/* Decoders: 0 with *out (an array the caller frees; records point into
 * payload) and its count, -EBADMSG, or -ENOMEM. */
int proto_fetch_req_decode(const uint8_t *payload, size_t len, struct proto_fetch_req *out);
void proto_fetch_req_free(struct proto_fetch_req *r);
int proto_fetch_reply_decode(const uint8_t *payload, size_t len, struct proto_fetch_result **out,
                             size_t *n);
int proto_epoch_req_decode(const uint8_t *payload, size_t len, struct proto_epoch_query **out,
                           size_t *n);
int proto_epoch_reply_decode(const uint8_t *payload, size_t len, struct proto_epoch_answer **out,
                             size_t *n);

#endif
