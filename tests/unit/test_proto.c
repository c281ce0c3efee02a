/* test_proto.c - the inter-broker request payloads (proto.h): round trips,
 * a fetch reply assembled from pieces as the server sends it, every
 * truncation refused, counts the payload cannot hold refused before any
 * allocation, bad topic names and errnos refused, and decoding that is
 * canonical (what decodes re-encodes to the same bytes). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto.h"

static struct proto_fetch_req sample_fetch(struct proto_fetch_part parts[3])
{
    memset(parts, 0, 3 * sizeof(*parts));
    strcpy(parts[0].topic, "orders");
    parts[0].partition = 0;
    parts[0].fetch_offset = 12345678901ull;
    parts[0].current_leader_epoch = 7;
    parts[0].max_bytes = 1 << 20;
    strcpy(parts[1].topic, "__consumer_offsets");
    parts[1].partition = 49;
    parts[2] = parts[0];
    parts[2].partition = 65535;
    parts[2].fetch_offset = UINT64_MAX;
    return (struct proto_fetch_req){.replica_id = 3,
                                    .max_wait_ms = 500,
                                    .min_bytes = 1,
                                    .max_bytes = 52428800,
                                    .n = 3,
                                    .parts = parts};
}

static void test_fetch_request_round_trip(void **state)
{
    (void)state;
    struct proto_fetch_part parts[3];
    struct proto_fetch_req r = sample_fetch(parts), d;
    uint8_t buf[1024], again[1024];
    ssize_t n = proto_fetch_req_encode(&r, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal(proto_fetch_req_decode(buf, (size_t)n, &d), 0);
    assert_int_equal(d.replica_id, 3);
    assert_int_equal(d.max_wait_ms, 500);
    assert_int_equal(d.max_bytes, 52428800);
    assert_int_equal(d.n, 3);
    assert_memory_equal(d.parts, parts, sizeof(parts));
    assert_int_equal(proto_fetch_req_encode(&d, again, sizeof(again)), n);
    assert_memory_equal(again, buf, (size_t)n);
    proto_fetch_req_free(&d);
    /* -1: a mount reading for a consumer. */
    r.replica_id = -1;
    n = proto_fetch_req_encode(&r, buf, sizeof(buf));
    assert_int_equal(proto_fetch_req_decode(buf, (size_t)n, &d), 0);
    assert_int_equal(d.replica_id, -1);
    proto_fetch_req_free(&d);
    /* Every truncation is refused whole. */
    for (ssize_t cut = 0; cut < n; cut++) {
        assert_int_equal(proto_fetch_req_decode(buf, (size_t)cut, &d), -EBADMSG);
        assert_null(d.parts);
    }
    /* So is a byte more. */
    buf[n] = 0;
    assert_int_equal(proto_fetch_req_decode(buf, (size_t)n + 1, &d), -EBADMSG);
    /* A buffer too small to encode into. */
    assert_int_equal(proto_fetch_req_encode(&r, buf, 40), -ENOBUFS);
}

/* The server's way: the count, then for each part its fields, its
 * records and its producers as separate pieces (kept: the producers of
 * part 0, nkept of them). */
static const struct producer_kept *assemble_kept;
static size_t assemble_nkept;

static size_t assemble(const struct proto_fetch_result *res, size_t n, uint8_t *out)
{
    size_t at = 2;
    proto_fetch_reply_count((uint16_t)n, out);
    for (size_t i = 0; i < n; i++) {
        uint8_t head[PROTO_FETCH_PART_HEAD];
        ssize_t h = proto_fetch_reply_part(&res[i], head, sizeof(head));
        assert_true(h > 0);
        memcpy(out + at, head, (size_t)h);
        at += (size_t)h;
        if (res[i].records_len) /* records may be NULL then */
            memcpy(out + at, res[i].records, res[i].records_len);
        at += res[i].records_len;
        ssize_t t = proto_fetch_reply_producers(assemble_kept, i ? 0 : assemble_nkept, out + at,
                                                PROTO_FETCH_PART_TAIL);
        assert_true(t >= 4);
        at += (size_t)t;
    }
    return at;
}

static void test_fetch_reply_from_pieces(void **state)
{
    (void)state;
    static const uint8_t batches[] = "stored batches, as they are on disk";
    struct proto_fetch_result res[2] = {0};
    strcpy(res[0].topic, "orders");
    res[0].partition = 2;
    res[0].high_watermark = 100;
    res[0].log_start_offset = 10;
    res[0].log_start_pos = 777;
    res[0].log_end_offset = 120;
    res[0].leader_epoch = 4;
    res[0].compacted = 1;
    res[0].records = batches;
    res[0].records_len = sizeof(batches);
    strcpy(res[1].topic, "a.b-c_d");
    res[1].partition = 1;
    res[1].error = ENOENT;
    /* The leader's producer state for a follower. */
    static const struct producer_kept kept[2] = {
        {0x100000002ull, 3, 7, 2, 40}, {0xfedcba9876543210ull, 65535, 0xffffffffu, 1, 99}};
    assemble_kept = kept;
    assemble_nkept = 2;
    uint8_t buf[2048];
    size_t len = assemble(res, 2, buf);
    struct proto_fetch_result *d;
    size_t n;
    assert_int_equal(proto_fetch_reply_decode(buf, len, &d, &n), 0);
    assert_int_equal(d[0].nproducers, 2);
    assert_int_equal(d[1].nproducers, 0);
    for (size_t i = 0; i < 2; i++) {
        struct producer_kept k;
        proto_fetch_producer(&d[0], i, &k);
        assert_memory_equal(&k, &kept[i], sizeof(k));
    }
    assert_int_equal(n, 2);
    assert_string_equal(d[0].topic, "orders");
    assert_int_equal(d[0].high_watermark, 100);
    assert_int_equal(d[0].log_start_offset, 10);
    assert_int_equal(d[0].log_end_offset, 120);
    assert_int_equal(d[0].leader_epoch, 4);
    assert_int_equal(d[0].log_start_pos, 777);
    assert_int_equal(d[0].compacted, 1);
    assert_int_equal(d[1].compacted, 0);
    assert_int_equal(d[0].records_len, sizeof(batches));
    assert_memory_equal(d[0].records, batches, sizeof(batches));
    assert_true(d[0].records >= buf && d[0].records < buf + len); /* not copied */
    assert_int_equal(d[1].error, ENOENT);
    assert_int_equal(d[1].records_len, 0);
    free(d);
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(proto_fetch_reply_decode(buf, cut, &d, &n), -EBADMSG);
    /* A compacted byte other than 0 or 1 is not canonical: refused. */
    size_t at = 2 + 2 + strlen("orders") + 4 + 4 + 8 + 8 + 8 + 8 + 4;
    assert_int_equal(buf[at], 1);
    buf[at] = 2;
    assert_int_equal(proto_fetch_reply_decode(buf, len, &d, &n), -EBADMSG);
    buf[at] = 1;
    /* An errno that is not one; a compacted flag that is not one. */
    res[1].error = 4096;
    uint8_t head[PROTO_FETCH_PART_HEAD];
    assert_int_equal(proto_fetch_reply_part(&res[1], head, sizeof(head)), -EINVAL);
    res[1].error = 0;
    res[1].compacted = 2;
    assert_int_equal(proto_fetch_reply_part(&res[1], head, sizeof(head)), -EINVAL);
    /* Producers: a length that is no whole number of entries, or too many. */
    uint8_t tail[PROTO_FETCH_PART_TAIL + PROTO_PRODUCER_SIZE + 4];
    assert_int_equal(proto_fetch_reply_producers(kept, PROTO_PRODUCERS_MAX + 1, tail, sizeof(tail)),
                     -EINVAL);
    size_t plen_at = len - 4; /* part 1's empty producers field */
    assert_int_equal(buf[plen_at + 3], 0);
    buf[plen_at + 3] = 1;
    assert_int_equal(proto_fetch_reply_decode(buf, len, &d, &n), -EBADMSG);
    buf[plen_at + 3] = 0;
    assert_int_equal(proto_fetch_reply_decode(buf, len, &d, &n), 0);
    free(d);
    assemble_nkept = 0;
}

static void test_epoch_round_trips(void **state)
{
    (void)state;
    struct proto_epoch_query q[2] = {{"orders", 0, 5, 3}, {"logs", 7, 9, 9}}, *dq;
    struct proto_epoch_answer a[2] = {{"orders", 0, 0, 3, 4242}, {"logs", 7, EOPNOTSUPP, 0, 0}},
                              *da;
    uint8_t buf[512], again[512];
    size_t n;
    ssize_t len = proto_epoch_req_encode(q, 2, buf, sizeof(buf));
    assert_true(len > 0);
    assert_int_equal(proto_epoch_req_decode(buf, (size_t)len, &dq, &n), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(dq, q, sizeof(q));
    assert_int_equal(proto_epoch_req_encode(dq, n, again, sizeof(again)), len);
    assert_memory_equal(again, buf, (size_t)len);
    free(dq);
    for (ssize_t cut = 0; cut < len; cut++)
        assert_int_equal(proto_epoch_req_decode(buf, (size_t)cut, &dq, &n), -EBADMSG);
    len = proto_epoch_reply_encode(a, 2, buf, sizeof(buf));
    assert_true(len > 0);
    assert_int_equal(proto_epoch_reply_decode(buf, (size_t)len, &da, &n), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(da, a, sizeof(a));
    free(da);
    for (ssize_t cut = 0; cut < len; cut++)
        assert_int_equal(proto_epoch_reply_decode(buf, (size_t)cut, &da, &n), -EBADMSG);
}

static void test_bad_names_and_counts(void **state)
{
    (void)state;
    uint8_t buf[512];
    size_t n;
    struct proto_epoch_query q = {"bad name", 0, 0, 0}, *dq;
    assert_int_equal(proto_epoch_req_encode(&q, 1, buf, sizeof(buf)), -EINVAL);
    strcpy(q.topic, "..");
    assert_int_equal(proto_epoch_req_encode(&q, 1, buf, sizeof(buf)), -EINVAL);
    /* A name written by hand that no topic can have. */
    static const uint8_t slash[] = {0, 1, 0, 1, '/', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(proto_epoch_req_decode(slash, sizeof(slash), &dq, &n), -EBADMSG);
    /* 65535 entries announced in a few bytes: refused before any allocation
     * (the count cannot fit what is left). */
    static const uint8_t many[] = {0xff, 0xff, 0, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(proto_epoch_req_decode(many, sizeof(many), &dq, &n), -EBADMSG);
    struct proto_fetch_req r;
    static const uint8_t fetch_many[] = {0, 0, 0, 1, 0, 0, 0, 0,    0,
                                         0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    assert_int_equal(proto_fetch_req_decode(fetch_many, sizeof(fetch_many), &r), -EBADMSG);
    /* No entries at all is a valid (empty) request. */
    static const uint8_t none[] = {0, 0};
    assert_int_equal(proto_epoch_req_decode(none, sizeof(none), &dq, &n), 0);
    assert_int_equal(n, 0);
    free(dq);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fetch_request_round_trip),
        cmocka_unit_test(test_fetch_reply_from_pieces),
        cmocka_unit_test(test_epoch_round_trips),
        cmocka_unit_test(test_bad_names_and_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
