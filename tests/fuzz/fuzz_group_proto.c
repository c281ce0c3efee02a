/* fuzz_group_proto.c - FRAME_GROUP's payload (replicate/group_proto.c).
 *
 * Input: a payload (in a heap buffer of exactly its size, so a read past
 * it is caught), given to both decoders.
 *
 * Checked: a request that decodes has a known op, a follow byte of 0 or 1,
 * a READ or WAIT within its limit, strings that fit their fields, and
 * re-encodes to exactly its bytes (the encoding is canonical) within
 * GROUP_PROTO_REQ_MAX; encoding it into any smaller buffer fails. A reply
 * that decodes has its data inside the payload, right after the head, to
 * the payload's last byte, and its head re-encodes to the same bytes. */
#include "fuzz_util.h"
#include "group_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *p = malloc(size ? size : 1);
    memcpy(p, data, size);
    struct group_request q;
    if (!group_req_decode(p, size, &q)) {
        FUZZ_CHECK(q.op >= GROUP_OP_JOIN && q.op <= GROUP_OP_INFO && q.follow <= 1);
        FUZZ_CHECK(q.op != GROUP_OP_READ || q.len <= GROUP_PROTO_READ_MAX);
        FUZZ_CHECK(q.op != GROUP_OP_WAIT || q.len <= GROUP_PROTO_WAIT_MAX_MS);
        FUZZ_CHECK(strlen(q.topic) < sizeof(q.topic) && strlen(q.group) <= GROUP_NAME_MAX &&
                   strlen(q.spec) < sizeof(q.spec));
        FUZZ_CHECK(size <= GROUP_PROTO_REQ_MAX);
        uint8_t out[GROUP_PROTO_REQ_MAX];
        ssize_t n = group_req_encode(&q, out, sizeof(out));
        FUZZ_CHECK(n == (ssize_t)size && !memcmp(out, p, size));
        if (size)
            FUZZ_CHECK(group_req_encode(&q, out, size - 1) == -ENOBUFS);
    }
    uint64_t value;
    const uint8_t *d;
    uint32_t dl;
    if (!group_reply_decode(p, size, &value, &d, &dl)) {
        FUZZ_CHECK(size >= GROUP_PROTO_REPLY_HEAD && d == p + GROUP_PROTO_REPLY_HEAD &&
                   (size_t)dl == size - GROUP_PROTO_REPLY_HEAD);
        uint8_t head[GROUP_PROTO_REPLY_HEAD];
        group_reply_head(value, dl, head);
        FUZZ_CHECK(!memcmp(head, p, sizeof(head)));
    } else {
        /* Only a head whose length does not match the rest is refused. */
        FUZZ_CHECK(size < GROUP_PROTO_REPLY_HEAD ||
                   ((uint32_t)p[8] << 24 | (uint32_t)p[9] << 16 | (uint32_t)p[10] << 8 | p[11]) !=
                       size - GROUP_PROTO_REPLY_HEAD);
    }
    free(p);
    return 0;
}
