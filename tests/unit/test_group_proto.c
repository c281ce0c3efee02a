/* test_group_proto.c - FRAME_GROUP's payload (replicate/group_proto.c):
 * every request field survives a round trip and lands where group_proto.h
 * says (big-endian, in its order), the longest request fits
 * GROUP_PROTO_REQ_MAX, decoding is canonical (what decodes re-encodes to
 * the same bytes) and strict (unknown ops, a follow byte other than 0 or 1,
 * READ and WAIT above their limits, a trailing byte, every truncation,
 * strings that do not fit or hold a NUL: -EBADMSG), an encode into a buffer
 * too small fails for every size below the payload's, and replies round
 * trip with their data while a data length past the end is refused. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frame.h"
#include "group_proto.h"

/* A request with every field set, each to a value no other field has. */
static struct group_request sample(void)
{
    struct group_request q;
    memset(&q, 0, sizeof(q));
    q.op = GROUP_OP_CURSOR;
    strcpy(q.topic, "orders");
    strcpy(q.group, "billing");
    q.member = 0x0102030405060708ull;
    q.incarnation = 0x1112131415161718ull;
    q.pid = 0x21222324u;
    q.follow = 1;
    q.partition = 0x31323334u;
    q.pos = 0x4142434445464748ull;
    q.len = 4096;
    q.since = 0x5152535455565758ull;
    q.time_ms = -1763892000000ll;
    strcpy(q.spec, "@2025-11-23T10:00:00Z");
    return q;
}

/* Decodes buf[0..n) and checks it re-encodes to the same bytes. */
static void decode_canonical(const uint8_t *buf, size_t n, struct group_request *out)
{
    uint8_t again[GROUP_PROTO_REQ_MAX];
    assert_int_equal(group_req_decode(buf, n, out), 0);
    assert_int_equal(group_req_encode(out, again, sizeof(again)), (ssize_t)n);
    assert_memory_equal(again, buf, n);
}

static uint64_t be(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v = v << 8 | p[i];
    return v;
}

static void test_request_round_trip(void **state)
{
    (void)state;
    struct group_request q = sample(), d;
    uint8_t buf[GROUP_PROTO_REQ_MAX];
    ssize_t n = group_req_encode(&q, buf, sizeof(buf));
    size_t tl = strlen(q.topic), gl = strlen(q.group), sl = strlen(q.spec);
    assert_int_equal(n, 1 + 2 + tl + 2 + gl + 8 + 8 + 4 + 1 + 4 + 8 + 4 + 8 + 8 + 2 + sl);
    memset(&d, 0xa5, sizeof(d));
    decode_canonical(buf, (size_t)n, &d);
    assert_int_equal(d.op, q.op);
    assert_string_equal(d.topic, q.topic);
    assert_string_equal(d.group, q.group);
    assert_int_equal(d.member, q.member);
    assert_int_equal(d.incarnation, q.incarnation);
    assert_int_equal(d.pid, q.pid);
    assert_int_equal(d.follow, q.follow);
    assert_int_equal(d.partition, q.partition);
    assert_int_equal(d.pos, q.pos);
    assert_int_equal(d.len, q.len);
    assert_int_equal(d.since, q.since);
    assert_true(d.time_ms == q.time_ms);
    assert_string_equal(d.spec, q.spec);

    /* The wire layout of group_proto.h: fields in order, big-endian. */
    const uint8_t *p = buf;
    assert_int_equal(*p++, GROUP_OP_CURSOR);
    assert_int_equal(be(p, 2), tl);
    assert_memory_equal(p + 2, "orders", tl);
    p += 2 + tl;
    assert_int_equal(be(p, 2), gl);
    assert_memory_equal(p + 2, "billing", gl);
    p += 2 + gl;
    assert_int_equal(be(p, 8), q.member);
    p += 8;
    assert_int_equal(be(p, 8), q.incarnation);
    p += 8;
    assert_int_equal(be(p, 4), q.pid);
    p += 4;
    assert_int_equal(*p++, 1);
    assert_int_equal(be(p, 4), q.partition);
    p += 4;
    assert_int_equal(be(p, 8), q.pos);
    p += 8;
    assert_int_equal(be(p, 4), q.len);
    p += 4;
    assert_int_equal(be(p, 8), q.since);
    p += 8;
    assert_int_equal(be(p, 8), (uint64_t)q.time_ms);
    p += 8;
    assert_int_equal(be(p, 2), sl);
    assert_memory_equal(p + 2, q.spec, sl);
    assert_ptr_equal(p + 2 + sl, buf + n);

    /* Every op, and the empty strings of a request that names nothing. */
    for (uint8_t op = GROUP_OP_JOIN; op <= GROUP_OP_INFO; op++) {
        struct group_request e = {0};
        e.op = op;
        n = group_req_encode(&e, buf, sizeof(buf));
        assert_true(n > 0);
        decode_canonical(buf, (size_t)n, &d);
        assert_int_equal(d.op, op);
        assert_string_equal(d.topic, "");
        assert_string_equal(d.group, "");
        assert_string_equal(d.spec, "");
        assert_int_equal(d.member, 0);
    }
}

/* The longest strings each field takes fit GROUP_PROTO_REQ_MAX, and the
 * extremes of the numbers come back. */
static void test_request_longest(void **state)
{
    (void)state;
    struct group_request q = sample(), d;
    memset(q.topic, 't', sizeof(q.topic) - 1);
    q.topic[sizeof(q.topic) - 1] = 0;
    memset(q.group, 'g', GROUP_NAME_MAX);
    q.group[GROUP_NAME_MAX] = 0;
    memset(q.spec, '9', sizeof(q.spec) - 1);
    q.spec[sizeof(q.spec) - 1] = 0;
    q.member = q.incarnation = q.pos = q.since = UINT64_MAX;
    q.pid = q.partition = UINT32_MAX;
    q.time_ms = INT64_MIN;
    q.op = GROUP_OP_JOIN; /* len has no limit outside READ and WAIT */
    q.len = UINT32_MAX;
    uint8_t buf[GROUP_PROTO_REQ_MAX];
    ssize_t n = group_req_encode(&q, buf, sizeof(buf));
    assert_true(n > 0 && (size_t)n <= GROUP_PROTO_REQ_MAX);
    decode_canonical(buf, (size_t)n, &d);
    assert_int_equal(strlen(d.topic), 249);
    assert_int_equal(strlen(d.group), GROUP_NAME_MAX);
    assert_int_equal(strlen(d.spec), GROUP_PROTO_SPEC_MAX - 1);
    assert_int_equal(d.member, UINT64_MAX);
    assert_int_equal(d.len, UINT32_MAX);
    assert_true(d.time_ms == INT64_MIN);

    /* The limits themselves are fine. */
    q = sample();
    q.op = GROUP_OP_READ;
    q.len = GROUP_PROTO_READ_MAX;
    n = group_req_encode(&q, buf, sizeof(buf));
    decode_canonical(buf, (size_t)n, &d);
    q.op = GROUP_OP_WAIT;
    q.len = GROUP_PROTO_WAIT_MAX_MS;
    n = group_req_encode(&q, buf, sizeof(buf));
    decode_canonical(buf, (size_t)n, &d);
    /* A READ may ask more than a WAIT may wait. */
    q.op = GROUP_OP_READ;
    q.len = GROUP_PROTO_WAIT_MAX_MS + 1;
    n = group_req_encode(&q, buf, sizeof(buf));
    decode_canonical(buf, (size_t)n, &d);
    q.follow = 0;
    n = group_req_encode(&q, buf, sizeof(buf));
    decode_canonical(buf, (size_t)n, &d);
    assert_int_equal(d.follow, 0);
}

/* A request written field by field, so that any field may be what the
 * encoder would never write. */
struct raw {
    uint8_t op;
    const char *topic, *group, *spec;
    uint8_t follow;
    uint32_t len;
};

static size_t craft(const struct raw *r, uint8_t *buf, size_t cap)
{
    struct payload_writer w;
    payload_writer_init(&w, buf, cap);
    payload_put_u8(&w, r->op);
    payload_put_str(&w, r->topic);
    payload_put_str(&w, r->group);
    payload_put_u64(&w, 7);
    payload_put_u64(&w, 9);
    payload_put_u32(&w, 1234);
    payload_put_u8(&w, r->follow);
    payload_put_u32(&w, 2);
    payload_put_u64(&w, 100);
    payload_put_u32(&w, r->len);
    payload_put_u64(&w, 3);
    payload_put_i64(&w, -1);
    payload_put_str(&w, r->spec);
    assert_int_equal(w.err, 0);
    return w.len;
}

static int decode_raw(const struct raw *r)
{
    uint8_t buf[2048];
    struct group_request d;
    return group_req_decode(buf, craft(r, buf, sizeof(buf)), &d);
}

static void test_request_strict(void **state)
{
    (void)state;
    const struct raw good = {GROUP_OP_READ, "orders", "billing", "", 0, 100};
    struct raw r = good;
    assert_int_equal(decode_raw(&r), 0);

    /* Unknown ops. */
    r.op = 0;
    assert_int_equal(decode_raw(&r), -EBADMSG);
    r.op = GROUP_OP_INFO + 1;
    assert_int_equal(decode_raw(&r), -EBADMSG);
    r.op = 255;
    assert_int_equal(decode_raw(&r), -EBADMSG);
    r.op = GROUP_OP_INFO;
    assert_int_equal(decode_raw(&r), 0);

    /* follow: 0 or 1 only. */
    r = good;
    r.follow = 1;
    assert_int_equal(decode_raw(&r), 0);
    r.follow = 2;
    assert_int_equal(decode_raw(&r), -EBADMSG);
    r.follow = 255;
    assert_int_equal(decode_raw(&r), -EBADMSG);

    /* READ and WAIT above their limits. */
    r = good;
    r.len = GROUP_PROTO_READ_MAX + 1;
    assert_int_equal(decode_raw(&r), -EBADMSG);
    r.len = UINT32_MAX;
    assert_int_equal(decode_raw(&r), -EBADMSG);
    r.op = GROUP_OP_WAIT;
    r.len = GROUP_PROTO_WAIT_MAX_MS + 1;
    assert_int_equal(decode_raw(&r), -EBADMSG);
    r.len = GROUP_PROTO_WAIT_MAX_MS;
    assert_int_equal(decode_raw(&r), 0);

    /* Strings that do not fit, or hold a NUL. */
    char topic[251], group[GROUP_NAME_MAX + 2], spec[GROUP_PROTO_SPEC_MAX + 1];
    memset(topic, 't', 250);
    topic[250] = 0;
    r = good;
    r.topic = topic; /* 250 bytes: one past the longest name */
    assert_int_equal(decode_raw(&r), -EBADMSG);
    topic[249] = 0;
    assert_int_equal(decode_raw(&r), 0);
    memset(group, 'g', GROUP_NAME_MAX + 1);
    group[GROUP_NAME_MAX + 1] = 0;
    r = good;
    r.group = group;
    assert_int_equal(decode_raw(&r), -EBADMSG);
    group[GROUP_NAME_MAX] = 0;
    assert_int_equal(decode_raw(&r), 0);
    memset(spec, '1', GROUP_PROTO_SPEC_MAX);
    spec[GROUP_PROTO_SPEC_MAX] = 0;
    r = good;
    r.spec = spec;
    assert_int_equal(decode_raw(&r), -EBADMSG);
    spec[GROUP_PROTO_SPEC_MAX - 1] = 0;
    assert_int_equal(decode_raw(&r), 0);

    uint8_t buf[2048];
    struct group_request d;
    size_t n = craft(&good, buf, sizeof(buf));
    buf[3 + 2] = 0; /* "or\0ers" */
    assert_int_equal(group_req_decode(buf, n, &d), -EBADMSG);
}

/* Every prefix of a valid request, and one byte more, are refused. */
static void test_request_truncated_and_trailing(void **state)
{
    (void)state;
    struct group_request q = sample(), d;
    uint8_t buf[GROUP_PROTO_REQ_MAX + 1];
    ssize_t n = group_req_encode(&q, buf, sizeof(buf) - 1);
    assert_true(n > 0);
    for (size_t cut = 0; cut < (size_t)n; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1); /* exactly cut bytes: ASan sees a read past */
        memcpy(copy, buf, cut);
        assert_int_equal(group_req_decode(copy, cut, &d), -EBADMSG);
        free(copy);
    }
    buf[n] = 0;
    assert_int_equal(group_req_decode(buf, (size_t)n + 1, &d), -EBADMSG);
    assert_int_equal(group_req_decode(buf, (size_t)n, &d), 0);
}

/* A buffer one byte short, or any shorter, is refused with a negative
 * errno, never overrun. */
static void test_request_encode_small_buffer(void **state)
{
    (void)state;
    struct group_request q = sample();
    uint8_t buf[GROUP_PROTO_REQ_MAX];
    ssize_t n = group_req_encode(&q, buf, sizeof(buf));
    assert_true(n > 0);
    for (size_t cap = 0; cap < (size_t)n; cap++) {
        uint8_t *small = malloc(cap ? cap : 1);
        ssize_t r = group_req_encode(&q, small, cap);
        assert_true(r < 0);
        assert_int_equal(r, -ENOBUFS);
        free(small);
    }
    assert_int_equal(group_req_encode(&q, buf, (size_t)n), n);
}

static void test_reply_round_trip(void **state)
{
    (void)state;
    const char *text = "p0 committed=4 end_offset=9 lag=5 owner=2:4242\n";
    size_t tl = strlen(text);
    uint8_t buf[GROUP_PROTO_REPLY_HEAD + 128];
    group_reply_head(0x0102030405060708ull, (uint32_t)tl, buf);
    assert_int_equal(be(buf, 8), 0x0102030405060708ull);
    assert_int_equal(be(buf + 8, 4), tl);
    memcpy(buf + GROUP_PROTO_REPLY_HEAD, text, tl);
    uint64_t value = 0;
    const uint8_t *data = NULL;
    uint32_t dl = 0;
    assert_int_equal(group_reply_decode(buf, GROUP_PROTO_REPLY_HEAD + tl, &value, &data, &dl), 0);
    assert_int_equal(value, 0x0102030405060708ull);
    assert_int_equal(dl, tl);
    assert_ptr_equal(data, buf + GROUP_PROTO_REPLY_HEAD); /* into the payload */
    assert_memory_equal(data, text, tl);

    /* No data (JOIN, WAIT, CREATE...). */
    group_reply_head(UINT64_MAX, 0, buf);
    assert_int_equal(group_reply_decode(buf, GROUP_PROTO_REPLY_HEAD, &value, &data, &dl), 0);
    assert_int_equal(value, UINT64_MAX);
    assert_int_equal(dl, 0);
}

static void test_reply_strict(void **state)
{
    (void)state;
    uint8_t buf[GROUP_PROTO_REPLY_HEAD + 16];
    uint64_t value;
    const uint8_t *data;
    uint32_t dl;
    memset(buf, 'x', sizeof(buf));
    /* Data length past the end: by one, and by far. */
    group_reply_head(1, 11, buf);
    assert_int_equal(group_reply_decode(buf, GROUP_PROTO_REPLY_HEAD + 10, &value, &data, &dl),
                     -EBADMSG);
    group_reply_head(1, UINT32_MAX, buf);
    assert_int_equal(group_reply_decode(buf, sizeof(buf), &value, &data, &dl), -EBADMSG);
    /* A byte after the data. */
    group_reply_head(1, 10, buf);
    assert_int_equal(group_reply_decode(buf, GROUP_PROTO_REPLY_HEAD + 11, &value, &data, &dl),
                     -EBADMSG);
    assert_int_equal(group_reply_decode(buf, GROUP_PROTO_REPLY_HEAD + 10, &value, &data, &dl), 0);
    /* Every truncation, the head's included. */
    for (size_t cut = 0; cut < GROUP_PROTO_REPLY_HEAD + 10; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, buf, cut);
        assert_int_equal(group_reply_decode(copy, cut, &value, &data, &dl), -EBADMSG);
        free(copy);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_round_trip),
        cmocka_unit_test(test_request_longest),
        cmocka_unit_test(test_request_strict),
        cmocka_unit_test(test_request_truncated_and_trailing),
        cmocka_unit_test(test_request_encode_small_buffer),
        cmocka_unit_test(test_reply_round_trip),
        cmocka_unit_test(test_reply_strict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
