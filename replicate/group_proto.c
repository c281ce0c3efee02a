/* group_proto.c - FRAME_GROUP requests and replies (group_proto.h). */
#include "group_proto.h"

#include <errno.h>

#include "frame.h"

ssize_t group_req_encode(const struct group_request *q, uint8_t *buf, size_t cap)
{
    struct payload_writer w;
    payload_writer_init(&w, buf, cap);
    payload_put_u8(&w, q->op);
    payload_put_str(&w, q->topic);
    payload_put_str(&w, q->group);
    payload_put_u64(&w, q->member);
    payload_put_u64(&w, q->incarnation);
    payload_put_u32(&w, q->pid);
    payload_put_u8(&w, q->follow);
    payload_put_u32(&w, q->partition);
    payload_put_u64(&w, q->pos);
    payload_put_u32(&w, q->len);
    payload_put_u64(&w, q->since);
    payload_put_i64(&w, q->time_ms);
    payload_put_str(&w, q->spec);
    return w.err ? w.err : (ssize_t)w.len;
}

int group_req_decode(const uint8_t *payload, size_t len, struct group_request *q)
{
    struct payload_reader r;
    payload_reader_init(&r, payload, len);
    payload_get_u8(&r, &q->op);
    payload_get_str(&r, q->topic, sizeof(q->topic));
    payload_get_str(&r, q->group, sizeof(q->group));
    payload_get_u64(&r, &q->member);
    payload_get_u64(&r, &q->incarnation);
    payload_get_u32(&r, &q->pid);
    payload_get_u8(&r, &q->follow);
    payload_get_u32(&r, &q->partition);
    payload_get_u64(&r, &q->pos);
    payload_get_u32(&r, &q->len);
    payload_get_u64(&r, &q->since);
    payload_get_i64(&r, &q->time_ms);
    payload_get_str(&r, q->spec, sizeof(q->spec));
    int e = payload_end(&r);
    if (e)
        return -EBADMSG;
    if (q->op < GROUP_OP_JOIN || q->op > GROUP_OP_INFO || q->follow > 1 ||
        (q->op == GROUP_OP_READ && q->len > GROUP_PROTO_READ_MAX) ||
        (q->op == GROUP_OP_WAIT && q->len > GROUP_PROTO_WAIT_MAX_MS))
        return -EBADMSG;
    return 0;
}

void group_reply_head(uint64_t value, uint32_t data_len, uint8_t buf[GROUP_PROTO_REPLY_HEAD])
{
    struct payload_writer w;
    payload_writer_init(&w, buf, GROUP_PROTO_REPLY_HEAD);
    payload_put_u64(&w, value);
    payload_put_u32(&w, data_len);
}

int group_reply_decode(const uint8_t *payload, size_t len, uint64_t *value, const uint8_t **data,
                       uint32_t *data_len)
{
    struct payload_reader r;
    payload_reader_init(&r, payload, len);
    payload_get_u64(&r, value);
    payload_get_bytes(&r, data, data_len);
    return payload_end(&r) ? -EBADMSG : 0;
}
