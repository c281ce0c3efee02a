/* fuzz_batch.c - batch header decode, checksum verify, body and record table.
 *
 * The input is taken as the bytes of a batch twice: as is (a damaged batch
 * must fail batch_verify and nothing more is read), and with its checksum
 * recomputed, so that the fuzzer reaches the body decoder and the record
 * table walk the way a checksum-valid but hostile file would. Then the input
 * is cut into lines, built into a batch (no codec and lz4) and decoded
 * again: what comes out must be what went in. */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "batch.h"
#include "fuzz_util.h"

static void walk(const uint8_t *batch, size_t len)
{
    struct batch_header h;
    if (len < BATCH_HEADER_SIZE || batch_header_decode(batch, &h))
        return;
    if (batch_verify(batch, len))
        return;
    FUZZ_CHECK(h.length == len && h.record_count >= 1);
    uint8_t *scratch = NULL;
    size_t cap = 0;
    const uint8_t *table, *values;
    if (!batch_body(&h, batch, &scratch, &cap, &table, &values)) {
        const uint8_t *t = table, *end = table + h.table_len;
        uint32_t vlen;
        int32_t klen;
        uint64_t sum = 0;
        int r;
        if (h.codec == BATCH_CODEC_NONE)
            FUZZ_CHECK((size_t)BATCH_HEADER_SIZE + h.table_len + h.values_len <= len);
        while ((r = batch_next_record(&t, end, &vlen, &klen)) == 1) {
            FUZZ_CHECK(klen < 0 || (uint32_t)klen <= vlen);
            FUZZ_CHECK(t <= end);
            sum += vlen;
        }
        /* Touch the values the table claims, as a reader would. */
        volatile uint8_t x = 0;
        if (r == 0 && sum == h.values_len)
            for (uint64_t i = 0; i < sum; i += 61)
                x ^= values[i];
        (void)x;
    }
    free(scratch);
}

static void roundtrip(const uint8_t *data, size_t size, enum batch_codec codec)
{
    struct batch_builder b;
    batch_builder_init(&b);
    const uint8_t *p = data, *end = data + size;
    uint32_t n = 0;
    while (p < end && n < 1000) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        const uint8_t *sep = memchr(p, '=', len);
        FUZZ_CHECK(!batch_builder_add_record(&b, (uint32_t)len, sep ? (int32_t)(sep - p) : -1));
        FUZZ_CHECK(!batch_builder_add_values(&b, p, len));
        p += len;
        n++;
    }
    const struct iovec *iov;
    int iovcnt;
    size_t length;
    int r = batch_builder_seal(&b, codec, 7, 100, 1763892000000, 3, &iov, &iovcnt, &length);
    if (n == 0) {
        FUZZ_CHECK(r == -EINVAL);
        batch_builder_free(&b);
        return;
    }
    FUZZ_CHECK(r == 0);
    uint8_t *buf = malloc(length);
    size_t at = 0;
    for (int i = 0; i < iovcnt; i++) {
        memcpy(buf + at, iov[i].iov_base, iov[i].iov_len);
        at += iov[i].iov_len;
    }
    FUZZ_CHECK(at == length);
    FUZZ_CHECK(batch_verify(buf, length) == 0);
    struct batch_header h;
    FUZZ_CHECK(batch_header_decode(buf, &h) == 0);
    FUZZ_CHECK(h.record_count == n && h.base_offset == 7 && h.base_pos == 100);
    FUZZ_CHECK(h.values_len == (uint32_t)(p - data));
    uint8_t *scratch = NULL;
    size_t cap = 0;
    const uint8_t *table, *values;
    FUZZ_CHECK(batch_body(&h, buf, &scratch, &cap, &table, &values) == 0);
    FUZZ_CHECK(memcmp(values, data, h.values_len) == 0);
    const uint8_t *t = table, *v = values;
    uint32_t vlen;
    int32_t klen;
    uint32_t seen = 0;
    while (batch_next_record(&t, table + h.table_len, &vlen, &klen) == 1) {
        const uint8_t *sep = memchr(v, '=', vlen);
        FUZZ_CHECK(klen == (sep ? (int32_t)(sep - v) : -1));
        v += vlen;
        seen++;
    }
    FUZZ_CHECK(seen == n && v == values + h.values_len);
    free(scratch);
    free(buf);
    batch_builder_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    walk(data, size);
    if (size >= BATCH_HEADER_SIZE && size <= BATCH_MAX_LENGTH) {
        uint8_t *copy = malloc(size);
        memcpy(copy, data, size);
        /* Make the length field and the checksum agree with the input. */
        uint32_t len = (uint32_t)size;
        memcpy(copy + 4, &len, 4);
        uint64_t sum = XXH3_64bits(copy + 16, size - 16);
        memcpy(copy + 8, &sum, 8);
        walk(copy, size);
        free(copy);
    }
    if (size <= 1 << 16) {
        roundtrip(data, size, BATCH_CODEC_NONE);
        roundtrip(data, size, BATCH_CODEC_LZ4);
    }
    return 0;
}
