/* test_produce.c - produce at any mount: the leader's idempotence table
 * (producer_table.h) and FRAME_PRODUCE's payload (produce_proto.h).
 *
 * Table: a new batch is appended once; the same (producer, epoch, sequence,
 * count) again is answered with its original offset and appends nothing,
 * for each of the last 5 batches; a gap is -EILSEQ, an old sequence beyond
 * them -EALREADY; an older epoch -ESTALE; a newer epoch restarts the sequence; a
 * new producer id (or another partition) starts fresh; a failed append
 * leaves no state. Replication: a follower keeps the leader's snapshot for
 * the batches its log holds (so as a new leader it answers their retries
 * as duplicates), forgets what truncation took. Payload: round trip, canonical, every truncation
 * and bad field refused, counts the payload cannot hold refused before any allocation. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "produce_proto.h"
#include "producer_table.h"

/* A fake log: appends count records at its end, or fails with `fail`. */
struct fake_log {
    uint64_t end;
    int appends;
    int fail;
    uint32_t count;
};

static int fake_append(void *arg, uint64_t *base)
{
    struct fake_log *l = arg;
    if (l->fail)
        return l->fail;
    *base = l->end;
    l->end += l->count;
    l->appends++;
    return 0;
}

static int put(struct producer_table *t, struct fake_log *l, uint64_t pid, uint16_t epoch,
               uint32_t seq, uint32_t count, uint64_t *base)
{
    struct producer_batch b = {pid, epoch, seq, count};
    l->count = count;
    return producer_table_append(t, "orders", 0, &b, fake_append, l, base);
}

static void test_duplicate_gets_the_same_offset(void **state)
{
    (void)state;
    struct producer_table *t;
    struct fake_log l = {0};
    uint64_t base;
    assert_int_equal(producer_table_new(&t), 0);
    assert_int_equal(put(t, &l, 7, 0, 0, 2, &base), 0);
    assert_int_equal(base, 0);
    assert_int_equal(put(t, &l, 7, 0, 2, 3, &base), 0);
    assert_int_equal(base, 2);
    /* A retry after a lost reply: the original offset, nothing appended. */
    base = 999;
    assert_int_equal(put(t, &l, 7, 0, 2, 3, &base), 1);
    assert_int_equal(base, 2);
    assert_int_equal(put(t, &l, 7, 0, 0, 2, &base), 1);
    assert_int_equal(base, 0);
    assert_int_equal(l.appends, 2);
    assert_int_equal(l.end, 5);
    /* The next sequence goes on. */
    assert_int_equal(put(t, &l, 7, 0, 5, 1, &base), 0);
    assert_int_equal(base, 5);
    producer_table_free(t);
}

static void test_gap_and_old_sequences_refused(void **state)
{
    (void)state;
    struct producer_table *t;
    struct fake_log l = {0};
    uint64_t base;
    assert_int_equal(producer_table_new(&t), 0);
    assert_int_equal(put(t, &l, 7, 0, 10, 1, &base), 0);       /* unknown producer: any start */
    assert_int_equal(put(t, &l, 7, 0, 12, 1, &base), -EILSEQ); /* gap */
    assert_int_equal(put(t, &l, 7, 0, 11, 2, &base), 0);
    assert_int_equal(put(t, &l, 7, 0, 11, 1, &base), -EALREADY); /* same start, other count */
    /* Only the last 5 batches are kept: the 1st of 7 is too old. */
    for (uint32_t s = 13; s < 18; s++)
        assert_int_equal(put(t, &l, 7, 0, s, 1, &base), 0);
    assert_int_equal(put(t, &l, 7, 0, 10, 1, &base), -EALREADY); /* old, its offset forgotten */
    assert_int_equal(put(t, &l, 7, 0, 13, 1, &base), 1); /* the 5th newest: still kept */
    assert_int_equal(base, 3);
    int appends = l.appends;
    assert_int_equal(put(t, &l, 7, 0, 99, 1, &base), -EILSEQ);
    assert_int_equal(l.appends, appends);
    producer_table_free(t);
}

static void test_epochs_and_new_producers(void **state)
{
    (void)state;
    struct producer_table *t;
    struct fake_log l = {0};
    uint64_t base;
    assert_int_equal(producer_table_new(&t), 0);
    assert_int_equal(put(t, &l, 7, 1, 0, 1, &base), 0);
    assert_int_equal(put(t, &l, 7, 1, 1, 1, &base), 0);
    assert_int_equal(put(t, &l, 7, 0, 2, 1, &base), -ESTALE); /* fenced */
    /* A new epoch restarts: sequence 0 is new, not the old epoch's batch. */
    assert_int_equal(put(t, &l, 7, 2, 0, 1, &base), 0);
    assert_int_equal(base, 2);
    assert_int_equal(put(t, &l, 7, 1, 1, 1, &base), -ESTALE);
    /* A new producer id, or another partition: fresh. */
    assert_int_equal(put(t, &l, 8, 0, 0, 1, &base), 0);
    assert_int_equal(base, 3);
    struct producer_batch b = {7, 2, 0, 1};
    l.count = 1;
    assert_int_equal(producer_table_append(t, "orders", 1, &b, fake_append, &l, &base), 0);
    assert_int_equal(producer_table_append(t, "other", 0, &b, fake_append, &l, &base), 0);
    assert_int_equal(l.appends, 6);
    /* Forgetting a topic: its producers start over. */
    producer_table_forget_topic(t, "orders");
    assert_int_equal(put(t, &l, 7, 2, 0, 1, &base), 0);
    assert_int_equal(producer_table_append(t, "other", 0, &b, fake_append, &l, &base), 1);
    producer_table_free(t);
}

static void test_failed_append_leaves_nothing(void **state)
{
    (void)state;
    struct producer_table *t;
    struct fake_log l = {0};
    uint64_t base;
    assert_int_equal(producer_table_new(&t), 0);
    l.fail = -ENOSPC;
    assert_int_equal(put(t, &l, 7, 0, 5, 1, &base), -ENOSPC);
    l.fail = 0;
    /* The producer was forgotten: another start is accepted. */
    assert_int_equal(put(t, &l, 7, 0, 0, 1, &base), 0);
    l.fail = -EIO;
    assert_int_equal(put(t, &l, 7, 0, 1, 1, &base), -EIO);
    l.fail = 0;
    /* Not stored: the same sequence is new, not a duplicate. */
    assert_int_equal(put(t, &l, 7, 0, 1, 1, &base), 0);
    assert_int_equal(base, 1);
    assert_int_equal(put(t, &l, 7, 0, 2, 0, &base), -EINVAL);
    producer_table_free(t);
}

static struct record_ref sample_records[3] = {
    {"k1:hello\n", 9, 2},
    {"no key\n", 7, -1},
    {"", 0, 0},
};

static struct proto_produce_req sample(void)
{
    struct proto_produce_req r = {.partition = 65536,
                                  .producer_id = 0x0000000300abcdefull,
                                  .producer_epoch = 2,
                                  .base_sequence = UINT32_MAX,
                                  .count = 3,
                                  .records = sample_records};
    strcpy(r.topic, "orders");
    return r;
}

static void test_payload_round_trip(void **state)
{
    (void)state;
    struct proto_produce_req r = sample(), d;
    uint8_t buf[256], again[256];
    ssize_t n = proto_produce_req_encode(&r, buf, sizeof(buf));
    assert_int_equal(n, (ssize_t)proto_produce_req_size(&r));
    assert_int_equal(proto_produce_req_decode(buf, (size_t)n, &d), 0);
    assert_string_equal(d.topic, "orders");
    assert_int_equal(d.partition, 65536);
    assert_int_equal(d.producer_id, 0x0000000300abcdefull);
    assert_int_equal(d.producer_epoch, 2);
    assert_int_equal(d.base_sequence, UINT32_MAX);
    assert_int_equal(d.count, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(d.records[i].len, sample_records[i].len);
        assert_int_equal(d.records[i].key_len, sample_records[i].key_len);
        assert_memory_equal(d.records[i].data, sample_records[i].data, d.records[i].len);
    }
    assert_int_equal(proto_produce_req_encode(&d, again, sizeof(again)), n);
    assert_memory_equal(again, buf, (size_t)n);
    proto_produce_req_free(&d);
    /* Every truncation and one byte too many are refused. */
    for (ssize_t k = 0; k < n; k++)
        assert_int_equal(proto_produce_req_decode(buf, (size_t)k, &d), -EBADMSG);
    buf[n] = 0;
    assert_int_equal(proto_produce_req_decode(buf, (size_t)n + 1, &d), -EBADMSG);
    /* Too small a buffer. */
    assert_int_equal(proto_produce_req_encode(&r, buf, (size_t)n - 1), -ENOBUFS);
    uint8_t reply[PROTO_PRODUCE_REPLY_SIZE];
    uint64_t off = 0;
    proto_produce_reply_encode(1234567890123ull, reply);
    assert_int_equal(proto_produce_reply_decode(reply, sizeof(reply), &off), 0);
    assert_int_equal(off, 1234567890123ull);
    assert_int_equal(proto_produce_reply_decode(reply, 7, &off), -EBADMSG);
}

static void test_payload_bad_fields(void **state)
{
    (void)state;
    struct proto_produce_req r = sample(), d;
    uint8_t buf[256];
    /* Encoder: bad topic, no records, a key longer than its value. */
    strcpy(r.topic, "a/b");
    assert_int_equal(proto_produce_req_encode(&r, buf, sizeof(buf)), -EINVAL);
    r = sample();
    r.count = 0;
    assert_int_equal(proto_produce_req_encode(&r, buf, sizeof(buf)), -EINVAL);
    struct record_ref bad = {"ab", 2, 3};
    r = sample();
    r.count = 1;
    r.records = &bad;
    assert_int_equal(proto_produce_req_encode(&r, buf, sizeof(buf)), -EINVAL);
    /* Decoder: the same, forged on the wire. */
    r = sample();
    ssize_t n = proto_produce_req_encode(&r, buf, sizeof(buf));
    size_t count_at = 2 + 6 + 4 + 8 + 2 + 4;
    uint8_t copy[256];
    memcpy(copy, buf, (size_t)n);
    memset(copy + count_at, 0, 4); /* count 0 */
    assert_int_equal(proto_produce_req_decode(copy, (size_t)n, &d), -EBADMSG);
    memcpy(copy, buf, (size_t)n);
    memset(copy + count_at, 0xff, 4); /* more than the payload holds */
    assert_int_equal(proto_produce_req_decode(copy, (size_t)n, &d), -EBADMSG);
    memcpy(copy, buf, (size_t)n);
    copy[count_at + 4 + 3] = 10; /* key length 10 > value length 9 */
    assert_int_equal(proto_produce_req_decode(copy, (size_t)n, &d), -EBADMSG);
    memcpy(copy, buf, (size_t)n);
    copy[2] = '/'; /* topic name */
    assert_int_equal(proto_produce_req_decode(copy, (size_t)n, &d), -EBADMSG);
    memcpy(copy, buf, (size_t)n);
    copy[1] = 0; /* empty topic name */
    assert_int_equal(proto_produce_req_decode(copy, (size_t)n, &d), -EBADMSG);
}

/* Replication of the table: a follower keeps what its leader's snapshot
 * says of the batches its log holds, and as a new leader answers their
 * retries as duplicates; truncation forgets what it took. */
static void test_follower_keeps_the_leaders_state(void **state)
{
    (void)state;
    struct producer_table *lt, *ft;
    struct fake_log l = {0}, fl = {0};
    struct producer_kept snap[16];
    uint64_t base;
    assert_int_equal(producer_table_new(&lt), 0);
    assert_int_equal(producer_table_new(&ft), 0);
    assert_int_equal(put(lt, &l, 7, 0, 0, 2, &base), 0);  /* offsets 0-1 */
    assert_int_equal(put(lt, &l, 9, 4, 10, 1, &base), 0); /* 2 */
    assert_int_equal(put(lt, &l, 7, 0, 2, 3, &base), 0);  /* 3-5 */
    size_t n = producer_table_snapshot(lt, "orders", 0, snap, 16);
    assert_int_equal(n, 3);
    assert_int_equal(producer_table_snapshot(lt, "orders", 1, snap + 8, 8), 0);
    assert_int_equal(producer_table_snapshot(lt, "orders", 0, snap + 8, 1), 1); /* capped */
    /* Producer 7's batches oldest first. */
    int seen7 = 0;
    for (size_t i = 0; i < n; i++)
        if (snap[i].producer_id == 7)
            assert_int_equal(snap[i].base_offset, seen7++ ? 3 : 0);
    /* The follower holds offsets 0-2 so far: batch 3-5 is not kept yet. */
    assert_int_equal(producer_table_follow(ft, "orders", 0, 0, 3, snap, n), 0);
    fl.end = 3;
    assert_int_equal(put(ft, &fl, 7, 0, 0, 2, &base), 1); /* a duplicate at 0 */
    assert_int_equal(base, 0);
    assert_int_equal(put(ft, &fl, 9, 4, 10, 1, &base), 1);
    assert_int_equal(base, 2);
    assert_int_equal(fl.appends, 0);
    /* The next fetch brings 3-5: now a retry of it is a duplicate too. */
    assert_int_equal(producer_table_follow(ft, "orders", 0, 3, 6, snap, n), 0);
    fl.end = 6;
    assert_int_equal(put(ft, &fl, 7, 0, 2, 3, &base), 1);
    assert_int_equal(base, 3);
    assert_int_equal(put(ft, &fl, 7, 0, 5, 1, &base), 0); /* and the next is new */
    assert_int_equal(base, 6);
    /* A truncation to 3 (the follower's log ends there before its next
     * fetch): batches at 3 and after are forgotten, 7's last sequence is 1
     * again; with nothing left of a producer, it is unknown. */
    assert_int_equal(producer_table_follow(ft, "orders", 0, 3, 3, NULL, 0), 0);
    fl.end = 3;
    assert_int_equal(put(ft, &fl, 7, 0, 2, 3, &base), 0); /* new again, not a duplicate */
    assert_int_equal(base, 3);
    assert_int_equal(producer_table_follow(ft, "orders", 0, 0, 0, NULL, 0), 0);
    assert_int_equal(put(ft, &fl, 9, 4, 77, 1, &base), 0); /* forgotten: any sequence */
    /* A snapshot of another epoch starts the producer's state again. */
    struct producer_kept later = {7, 1, 0, 1, 10};
    fl.end = 11;
    assert_int_equal(producer_table_follow(ft, "orders", 0, 11, 11, &later, 1), 0);
    assert_int_equal(put(ft, &fl, 7, 1, 0, 1, &base), 1);
    assert_int_equal(base, 10);
    assert_int_equal(put(ft, &fl, 7, 0, 5, 1, &base), -ESTALE);
    producer_table_free(lt);
    producer_table_free(ft);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duplicate_gets_the_same_offset),
        cmocka_unit_test(test_gap_and_old_sequences_refused),
        cmocka_unit_test(test_epochs_and_new_producers),
        cmocka_unit_test(test_failed_append_leaves_nothing),
        cmocka_unit_test(test_follower_keeps_the_leaders_state),
        cmocka_unit_test(test_payload_round_trip),
        cmocka_unit_test(test_payload_bad_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
