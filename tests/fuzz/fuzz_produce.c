/* fuzz_produce.c - FRAME_PRODUCE's payload (replicate/produce_proto.c).
 *
 * Input: the payload (in a heap buffer of exactly its size, so a read past
 * it is caught).
 *
 * Checked: a payload that decodes re-encodes to exactly its bytes (the
 * encoding is canonical), its size is proto_produce_req_size(), the topic
 * name is valid, there is at least one record, every value lies inside the
 * payload and every key inside its value; a payload that does not decode
 * leaves nothing allocated. The reply decoder takes exactly 8 bytes. */
#include "fuzz_util.h"
#include "produce_proto.h"
#include "topic.h"

static uint8_t out[1 << 20];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > sizeof(out))
        return 0;
    uint8_t *p = malloc(size ? size : 1);
    memcpy(p, data, size);
    struct proto_produce_req r;
    if (!proto_produce_req_decode(p, size, &r)) {
        FUZZ_CHECK(topic_name_valid(r.topic) == 0 && r.count >= 1);
        for (uint32_t i = 0; i < r.count; i++) {
            const struct record_ref *x = &r.records[i];
            FUZZ_CHECK((const uint8_t *)x->data >= p &&
                       (const uint8_t *)x->data + x->len <= p + size);
            FUZZ_CHECK(x->key_len >= -1 && (x->key_len < 0 || (uint32_t)x->key_len <= x->len));
        }
        FUZZ_CHECK(proto_produce_req_size(&r) == size);
        ssize_t n = proto_produce_req_encode(&r, out, sizeof(out));
        FUZZ_CHECK(n == (ssize_t)size && !memcmp(out, p, size));
        proto_produce_req_free(&r);
    }
    uint64_t off;
    int e = proto_produce_reply_decode(p, size, &off);
    FUZZ_CHECK((e == 0) == (size == PROTO_PRODUCE_REPLY_SIZE));
    free(p);
    return 0;
}
