/* group_proto.h - the payload of FRAME_GROUP (frame.h): a consumer-group
 * request that a broker sends to the group coordinator for its mount
 * (coordinator.h), and the reply.
 *
 * Request, big-endian (frame.h's payload fields), every field always there:
 *   u8  op            enum group_op
 *   str topic         0 to 249 bytes (0 only where op names no topic)
 *   str group         0 to GROUP_NAME_MAX bytes
 *   u64 member        the coordinator's id of a member (READ, SYNC, LEAVE, WAIT)
 *   u64 incarnation   the sending broker's run (JOIN: members of its
 *                     earlier runs are gone)
 *   u32 pid           JOIN: the reading process, shown as owner
 *   u8  follow        JOIN: 1 follow, 0 drain
 *   u32 partition     CURSOR
 *   u64 pos           READ: the member's file position
 *   u32 len           READ: bytes wanted (<= GROUP_PROTO_READ_MAX);
 *                     WAIT: the longest wait in ms (<= GROUP_PROTO_WAIT_MAX_MS)
 *   u64 since         WAIT: answer once the member's wake count passes it
 *   i64 time_ms       CURSOR: the time of an "@..." spec
 *   str spec          CURSOR: "N", "earliest", "latest", "-N", "@..."
 * Reply:
 *   u64 value         JOIN: member id; WAIT: wake count; CREATE, DELETE,
 *                     CURSOR: the offsets log's end after the change
 *   bytes data        READ: the member's stream bytes; INFO: .info text
 * An error is the server's FRAME_F_ERROR reply with the errno.
 *
 * Decoding is strict: a payload that does not parse to its last byte, an
 * unknown op, a follow byte other than 0 or 1, a READ or WAIT above its
 * limit, or a string that does not fit is -EBADMSG. */
#ifndef TOPICFS_GROUP_PROTO_H
#define TOPICFS_GROUP_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "group.h"
#include "proto.h"

#define GROUP_PROTO_READ_MAX (1u << 20)
#define GROUP_PROTO_WAIT_MAX_MS 10000
#define GROUP_PROTO_SPEC_MAX 128

enum group_op {
    GROUP_OP_JOIN = 1,
    GROUP_OP_READ,
    GROUP_OP_SYNC,
    GROUP_OP_LEAVE,
    GROUP_OP_WAIT,
    GROUP_OP_CREATE,
    GROUP_OP_DELETE,
    GROUP_OP_CURSOR,
    GROUP_OP_INFO,
};

struct group_request {
    uint8_t op;
    char topic[PROTO_TOPIC_MAX];
    char group[GROUP_NAME_MAX + 1];
    uint64_t member, incarnation;
    uint32_t pid;
    uint8_t follow;
    uint32_t partition;
    uint64_t pos;
    uint32_t len;
    uint64_t since;
    int64_t time_ms;
    char spec[GROUP_PROTO_SPEC_MAX];
};

/* Bytes an encoded request takes at most. */
#define GROUP_PROTO_REQ_MAX                                                                        \
    (1 + 2 + 249 + 2 + GROUP_NAME_MAX + 8 + 8 + 4 + 1 + 4 + 8 + 4 + 8 + 8 + 2 +                    \
     GROUP_PROTO_SPEC_MAX)
/* Bytes before a reply's data. */
#define GROUP_PROTO_REPLY_HEAD 12

/* The payload's length, or a negative errno (-ENOBUFS: buf too small). */
ssize_t group_req_encode(const struct group_request *q, uint8_t *buf, size_t cap);
/* 0 or -EBADMSG. */
int group_req_decode(const uint8_t *payload, size_t len, struct group_request *out);
/* The reply's fields before its data_len bytes of data. */
void group_reply_head(uint64_t value, uint32_t data_len, uint8_t buf[GROUP_PROTO_REPLY_HEAD]);
/* 0 with *value and *data (into payload), or -EBADMSG. */
int group_reply_decode(const uint8_t *payload, size_t len, uint64_t *value, const uint8_t **data,
                       uint32_t *data_len);

#endif
