/* fuzz_proto.c - the inter-broker request payloads (replicate/proto.c).
 *
 * Input: one byte choosing the decoder (fetch request, fetch reply, epoch
 * request, epoch reply), then the payload (in a heap buffer of exactly its
 * size, so a read past it is caught).
 *
 * Checked: a payload that decodes re-encodes to exactly its bytes (the
 * encoding is canonical: nothing is ignored, nothing is read twice), fetch
 * records point inside the payload, topic names are valid and errnos are
 * at most 4095; a payload that does not decode leaves nothing allocated. */
#include "fuzz_util.h"
#include "proto.h"
#include "topic.h"

static uint8_t out[1 << 20];

static void check_fetch_reply(const uint8_t *p, size_t len)
{
    struct proto_fetch_result *r;
    size_t n;
    if (proto_fetch_reply_decode(p, len, &r, &n))
        return;
    size_t at = 2;
    proto_fetch_reply_count((uint16_t)n, out);
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(topic_name_valid(r[i].topic) == 0 && r[i].error <= 4095 && r[i].compacted <= 1);
        FUZZ_CHECK(r[i].records >= p && r[i].records + r[i].records_len <= p + len);
        ssize_t h = proto_fetch_reply_part(&r[i], out + at, sizeof(out) - at);
        FUZZ_CHECK(h > 0);
        at += (size_t)h;
        FUZZ_CHECK(at + r[i].records_len <= sizeof(out));
        memcpy(out + at, r[i].records, r[i].records_len);
        at += r[i].records_len;
        static struct producer_kept kept[PROTO_PRODUCERS_MAX];
        FUZZ_CHECK(r[i].nproducers <= PROTO_PRODUCERS_MAX);
        for (size_t k = 0; k < r[i].nproducers; k++)
            proto_fetch_producer(&r[i], k, &kept[k]);
        FUZZ_CHECK(at + PROTO_FETCH_PART_TAIL <= sizeof(out));
        h = proto_fetch_reply_producers(kept, r[i].nproducers, out + at, PROTO_FETCH_PART_TAIL);
        FUZZ_CHECK(h >= 4);
        at += (size_t)h;
    }
    FUZZ_CHECK(at == len && !memcmp(out, p, len));
    free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > sizeof(out))
        return 0;
    uint8_t which = data[0] % 4;
    size_t len = size - 1;
    uint8_t *p = malloc(len ? len : 1);
    memcpy(p, data + 1, len);
    ssize_t n = -1;
    if (which == 0) {
        struct proto_fetch_req r;
        if (!proto_fetch_req_decode(p, len, &r)) {
            n = proto_fetch_req_encode(&r, out, sizeof(out));
            proto_fetch_req_free(&r);
            FUZZ_CHECK(n == (ssize_t)len && !memcmp(out, p, len));
        }
    } else if (which == 1) {
        check_fetch_reply(p, len);
    } else if (which == 2) {
        struct proto_epoch_query *q;
        size_t k;
        if (!proto_epoch_req_decode(p, len, &q, &k)) {
            n = proto_epoch_req_encode(q, k, out, sizeof(out));
            free(q);
            FUZZ_CHECK(n == (ssize_t)len && !memcmp(out, p, len));
        }
    } else {
        struct proto_epoch_answer *a;
        size_t k;
        if (!proto_epoch_reply_decode(p, len, &a, &k)) {
            n = proto_epoch_reply_encode(a, k, out, sizeof(out));
            free(a);
            FUZZ_CHECK(n == (ssize_t)len && !memcmp(out, p, len));
        }
    }
    free(p);
    return 0;
}
