/* proto.c - encoders and decoders of the inter-broker request payloads
 * (proto.h). Each decoder reads every field through frame.h's payload
 * reader, whose errors are sticky, and checks payload_end() last: a payload
 * either parses to its last byte or is refused whole. Counts are bounded
 * before anything is allocated (each entry takes at least its fixed-size
 * fields, so a count the payload cannot hold is refused at once). */
#include "proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "topic.h"

#define ERRNO_MAX 4095

static int topic_ok(const char *t)
{
    return topic_name_valid(t) == 0;
}

static int put_topic(struct payload_writer *w, const char *t)
{
    return topic_ok(t) ? payload_put_str(w, t) : -EINVAL;
}

static int get_topic(struct payload_reader *r, char out[PROTO_TOPIC_MAX])
{
    int e = payload_get_str(r, out, PROTO_TOPIC_MAX);
    if (!e && !topic_ok(out))
        e = r->err = -EBADMSG;
    return e;
}

static int get_errno(struct payload_reader *r, uint32_t *e)
{
    int x = payload_get_u32(r, e);
    if (!x && *e > ERRNO_MAX)
        x = r->err = -EBADMSG;
    return x;
}

/* Reads the u16 count of entries of at least min_size bytes each and
 * allocates them: 0, -EBADMSG, -ENOMEM. */
static int get_array(struct payload_reader *r, size_t min_size, size_t elem, void **out, size_t *n)
{
    uint16_t count;
    *out = NULL;
    *n = 0;
    if (payload_get_u16(r, &count))
        return r->err;
    if ((size_t)count * min_size > r->len - r->at)
        return r->err = -EBADMSG;
    if (count && !(*out = calloc(count, elem)))
        return -ENOMEM;
    *n = count;
    return 0;
}

static ssize_t finish(struct payload_writer *w)
{
    return w->err ? w->err : (ssize_t)w->len;
}

/* Minimum sizes of one entry: an empty-named topic's u16 and the fixed fields. */
#define FETCH_PART_MIN (2 + 4 + 8 + 4 + 4)
#define FETCH_RESULT_MIN (2 + 4 + 4 + 8 + 8 + 8 + 8 + 4 + 1 + 4 + 4)
#define EPOCH_QUERY_MIN (2 + 4 + 4 + 4)
#define EPOCH_ANSWER_MIN (2 + 4 + 4 + 4 + 8)

ssize_t proto_fetch_req_encode(const struct proto_fetch_req *r, uint8_t *buf, size_t cap)
{
    struct payload_writer w;
    if (r->n > PROTO_MAX_PARTS)
        return -EINVAL;
    payload_writer_init(&w, buf, cap);
    payload_put_u32(&w, (uint32_t)r->replica_id);
    payload_put_u32(&w, r->max_wait_ms);
    payload_put_u32(&w, r->min_bytes);
    payload_put_u32(&w, r->max_bytes);
    payload_put_u16(&w, (uint16_t)r->n);
    for (size_t i = 0; i < r->n; i++) {
        const struct proto_fetch_part *p = &r->parts[i];
        int e = put_topic(&w, p->topic);
        if (e == -EINVAL)
            return e;
        payload_put_u32(&w, p->partition);
        payload_put_u64(&w, p->fetch_offset);
        payload_put_u32(&w, p->current_leader_epoch);
        payload_put_u32(&w, p->max_bytes);
    }
    return finish(&w);
}

int proto_fetch_req_decode(const uint8_t *payload, size_t len, struct proto_fetch_req *out)
{
    struct payload_reader r;
    uint32_t replica;
    void *parts = NULL;
    memset(out, 0, sizeof(*out));
    payload_reader_init(&r, payload, len);
    payload_get_u32(&r, &replica);
    payload_get_u32(&r, &out->max_wait_ms);
    payload_get_u32(&r, &out->min_bytes);
    payload_get_u32(&r, &out->max_bytes);
    int e = r.err ? r.err : get_array(&r, FETCH_PART_MIN, sizeof(*out->parts), &parts, &out->n);
    out->parts = parts;
    for (size_t i = 0; !e && i < out->n; i++) {
        struct proto_fetch_part *p = &out->parts[i];
        get_topic(&r, p->topic);
        payload_get_u32(&r, &p->partition);
        payload_get_u64(&r, &p->fetch_offset);
        payload_get_u32(&r, &p->current_leader_epoch);
        e = payload_get_u32(&r, &p->max_bytes);
    }
    if (!e)
        e = payload_end(&r);
    if (e) {
        proto_fetch_req_free(out);
        return e;
    }
    out->replica_id = (int32_t)replica;
    return 0;
}

void proto_fetch_req_free(struct proto_fetch_req *r)
{
    free(r->parts);
    r->parts = NULL;
    r->n = 0;
}

void proto_fetch_reply_count(uint16_t n, uint8_t buf[2])
{
    buf[0] = (uint8_t)(n >> 8);
    buf[1] = (uint8_t)n;
}

ssize_t proto_fetch_reply_part(const struct proto_fetch_result *p, uint8_t *buf, size_t cap)
{
    struct payload_writer w;
    payload_writer_init(&w, buf, cap);
    if (put_topic(&w, p->topic) == -EINVAL || p->error > ERRNO_MAX || p->compacted > 1)
        return -EINVAL;
    payload_put_u32(&w, p->partition);
    payload_put_u32(&w, p->error);
    payload_put_u64(&w, p->high_watermark);
    payload_put_u64(&w, p->log_start_offset);
    payload_put_u64(&w, p->log_start_pos);
    payload_put_u64(&w, p->log_end_offset);
    payload_put_u32(&w, p->leader_epoch);
    payload_put_u8(&w, p->compacted);
    payload_put_u32(&w, p->records_len); /* the records follow in their own iovec */
    return finish(&w);
}

ssize_t proto_fetch_reply_producers(const struct producer_kept *v, size_t n, uint8_t *buf,
                                    size_t cap)
{
    struct payload_writer w;
    if (n > PROTO_PRODUCERS_MAX)
        return -EINVAL;
    payload_writer_init(&w, buf, cap);
    payload_put_u32(&w, (uint32_t)(n * PROTO_PRODUCER_SIZE));
    for (size_t i = 0; i < n; i++) {
        payload_put_u64(&w, v[i].producer_id);
        payload_put_u16(&w, v[i].epoch);
        payload_put_u32(&w, v[i].base_sequence);
        payload_put_u32(&w, v[i].count);
        payload_put_u64(&w, v[i].base_offset);
    }
    return finish(&w);
}

void proto_fetch_producer(const struct proto_fetch_result *p, size_t i, struct producer_kept *out)
{
    struct payload_reader r;
    payload_reader_init(&r, p->producers + i * PROTO_PRODUCER_SIZE, PROTO_PRODUCER_SIZE);
    payload_get_u64(&r, &out->producer_id);
    payload_get_u16(&r, &out->epoch);
    payload_get_u32(&r, &out->base_sequence);
    payload_get_u32(&r, &out->count);
    payload_get_u64(&r, &out->base_offset);
}

int proto_fetch_reply_decode(const uint8_t *payload, size_t len, struct proto_fetch_result **out,
                             size_t *n)
{
    struct payload_reader r;
    void *arr;
    payload_reader_init(&r, payload, len);
    int e = get_array(&r, FETCH_RESULT_MIN, sizeof(**out), &arr, n);
    struct proto_fetch_result *a = arr;
    for (size_t i = 0; !e && i < *n; i++) {
        get_topic(&r, a[i].topic);
        payload_get_u32(&r, &a[i].partition);
        get_errno(&r, &a[i].error);
        payload_get_u64(&r, &a[i].high_watermark);
        payload_get_u64(&r, &a[i].log_start_offset);
        payload_get_u64(&r, &a[i].log_start_pos);
        payload_get_u64(&r, &a[i].log_end_offset);
        payload_get_u32(&r, &a[i].leader_epoch);
        if (!payload_get_u8(&r, &a[i].compacted) && a[i].compacted > 1)
            r.err = -EBADMSG;
        payload_get_bytes(&r, &a[i].records, &a[i].records_len);
        uint32_t plen = 0;
        e = payload_get_bytes(&r, &a[i].producers, &plen);
        if (!e && (plen % PROTO_PRODUCER_SIZE || plen / PROTO_PRODUCER_SIZE > PROTO_PRODUCERS_MAX))
            e = -EBADMSG;
        a[i].nproducers = plen / PROTO_PRODUCER_SIZE;
    }
    if (!e)
        e = payload_end(&r);
    if (e) {
        free(a);
        *n = 0;
        return e;
    }
    *out = a;
    return 0;
}

ssize_t proto_epoch_req_encode(const struct proto_epoch_query *q, size_t n, uint8_t *buf,
                               size_t cap)
{
    struct payload_writer w;
    if (n > PROTO_MAX_PARTS)
        return -EINVAL;
    payload_writer_init(&w, buf, cap);
    payload_put_u16(&w, (uint16_t)n);
    for (size_t i = 0; i < n; i++) {
        if (put_topic(&w, q[i].topic) == -EINVAL)
            return -EINVAL;
        payload_put_u32(&w, q[i].partition);
        payload_put_u32(&w, q[i].current_leader_epoch);
        payload_put_u32(&w, q[i].leader_epoch);
    }
    return finish(&w);
}

int proto_epoch_req_decode(const uint8_t *payload, size_t len, struct proto_epoch_query **out,
                           size_t *n)
{
    struct payload_reader r;
    void *arr;
    payload_reader_init(&r, payload, len);
    int e = get_array(&r, EPOCH_QUERY_MIN, sizeof(**out), &arr, n);
    struct proto_epoch_query *q = arr;
    for (size_t i = 0; !e && i < *n; i++) {
        get_topic(&r, q[i].topic);
        payload_get_u32(&r, &q[i].partition);
        payload_get_u32(&r, &q[i].current_leader_epoch);
        e = payload_get_u32(&r, &q[i].leader_epoch);
    }
    if (!e)
        e = payload_end(&r);
    if (e) {
        free(q);
        *n = 0;
        return e;
    }
    *out = q;
    return 0;
}

ssize_t proto_epoch_reply_encode(const struct proto_epoch_answer *a, size_t n, uint8_t *buf,
                                 size_t cap)
{
    struct payload_writer w;
    if (n > PROTO_MAX_PARTS)
        return -EINVAL;
    payload_writer_init(&w, buf, cap);
    payload_put_u16(&w, (uint16_t)n);
    for (size_t i = 0; i < n; i++) {
        if (put_topic(&w, a[i].topic) == -EINVAL || a[i].error > ERRNO_MAX)
            return -EINVAL;
        payload_put_u32(&w, a[i].partition);
        payload_put_u32(&w, a[i].error);
        payload_put_u32(&w, a[i].leader_epoch);
        payload_put_u64(&w, a[i].end_offset);
    }
    return finish(&w);
}

int proto_epoch_reply_decode(const uint8_t *payload, size_t len, struct proto_epoch_answer **out,
                             size_t *n)
{
    struct payload_reader r;
    void *arr;
    payload_reader_init(&r, payload, len);
    int e = get_array(&r, EPOCH_ANSWER_MIN, sizeof(**out), &arr, n);
    struct proto_epoch_answer *a = arr;
    for (size_t i = 0; !e && i < *n; i++) {
        get_topic(&r, a[i].topic);
        payload_get_u32(&r, &a[i].partition);
        get_errno(&r, &a[i].error);
        payload_get_u32(&r, &a[i].leader_epoch);
        e = payload_get_u64(&r, &a[i].end_offset);
    }
    if (!e)
        e = payload_end(&r);
    if (e) {
        free(a);
        *n = 0;
        return e;
    }
    *out = a;
    return 0;
}
