/* produce_proto.c - FRAME_PRODUCE's payload (produce_proto.h), in proto.c's
 * style: every field through frame.h's sticky payload reader, payload_end()
 * last, the record count bounded by the bytes left before any allocation
 * (each record takes at least 8 bytes: its key length and value length). */
#include "produce_proto.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "topic.h"

#define NO_KEY 0xffffffffu
#define RECORD_MIN (4 + 4)
#define FIXED (2 + 4 + 8 + 2 + 4 + 4)

static int record_ok(const struct record_ref *r)
{
    return r->key_len >= -1 && (r->key_len < 0 || (uint32_t)r->key_len <= r->len);
}

size_t proto_produce_req_size(const struct proto_produce_req *r)
{
    size_t n = FIXED + strnlen(r->topic, PROTO_TOPIC_MAX);
    for (uint32_t i = 0; i < r->count; i++) {
        if (SIZE_MAX - n < RECORD_MIN + (size_t)r->records[i].len)
            return SIZE_MAX;
        n += RECORD_MIN + r->records[i].len;
    }
    return n;
}

ssize_t proto_produce_req_encode(const struct proto_produce_req *r, uint8_t *buf, size_t cap)
{
    if (topic_name_valid(r->topic) || !r->count)
        return -EINVAL;
    for (uint32_t i = 0; i < r->count; i++)
        if (!record_ok(&r->records[i]))
            return -EINVAL;
    struct payload_writer w;
    payload_writer_init(&w, buf, cap);
    payload_put_str(&w, r->topic);
    payload_put_u32(&w, r->partition);
    payload_put_u64(&w, r->producer_id);
    payload_put_u16(&w, r->producer_epoch);
    payload_put_u32(&w, r->base_sequence);
    payload_put_u32(&w, r->count);
    for (uint32_t i = 0; i < r->count; i++) {
        const struct record_ref *x = &r->records[i];
        payload_put_u32(&w, x->key_len < 0 ? NO_KEY : (uint32_t)x->key_len);
        payload_put_bytes(&w, x->data, x->len);
    }
    return w.err ? w.err : (ssize_t)w.len;
}

int proto_produce_req_decode(const uint8_t *payload, size_t len, struct proto_produce_req *out)
{
    struct payload_reader r;
    memset(out, 0, sizeof(*out));
    payload_reader_init(&r, payload, len);
    if (!payload_get_str(&r, out->topic, PROTO_TOPIC_MAX) && topic_name_valid(out->topic))
        return -EBADMSG;
    payload_get_u32(&r, &out->partition);
    payload_get_u64(&r, &out->producer_id);
    payload_get_u16(&r, &out->producer_epoch);
    payload_get_u32(&r, &out->base_sequence);
    payload_get_u32(&r, &out->count);
    if (r.err)
        return r.err;
    if (!out->count || out->count > (r.len - r.at) / RECORD_MIN)
        return -EBADMSG;
    if (!(out->records = calloc(out->count, sizeof(*out->records))))
        return -ENOMEM;
    for (uint32_t i = 0; i < out->count && !r.err; i++) {
        struct record_ref *x = &out->records[i];
        uint32_t key, n = 0;
        const uint8_t *p = NULL;
        payload_get_u32(&r, &key);
        if (!payload_get_bytes(&r, &p, &n) && key != NO_KEY && (key > n || key > INT32_MAX))
            r.err = -EBADMSG;
        x->data = (const char *)p;
        x->len = n;
        x->key_len = key == NO_KEY ? -1 : (int32_t)key;
    }
    int e = payload_end(&r);
    if (e) {
        proto_produce_req_free(out);
        return e;
    }
    return 0;
}

void proto_produce_req_free(struct proto_produce_req *r)
{
    free(r->records);
    r->records = NULL;
}

void proto_produce_reply_encode(uint64_t base_offset, uint8_t buf[PROTO_PRODUCE_REPLY_SIZE])
{
    struct payload_writer w;
    payload_writer_init(&w, buf, PROTO_PRODUCE_REPLY_SIZE);
    payload_put_u64(&w, base_offset);
}

int proto_produce_reply_decode(const uint8_t *payload, size_t len, uint64_t *base_offset)
{
    struct payload_reader r;
    payload_reader_init(&r, payload, len);
    payload_get_u64(&r, base_offset);
    return payload_end(&r);
}
