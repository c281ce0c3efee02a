/* batch.c - encoding, checksumming and decoding record batches (batch.h).
 *
 * The checksum is XXH3-64 over everything after the checksum field, so a
 * single flipped or missing byte anywhere in the header tail or body fails
 * verification. Values are referenced from the caller's buffers through an
 * iovec, so an uncompressed append copies nothing before pwritev(). */
#include "batch.h"

#include <errno.h>
#include <lz4.h>
#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY
#include "hash.h"

#include "varint.h"

static void put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}
static void put64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}
static uint32_t get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static uint64_t get64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static int grow(void **buf, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 16;
    while (ncap < need)
        ncap *= 2;
    void *n = realloc(*buf, ncap * elem);
    if (!n)
        return -ENOMEM;
    *buf = n;
    *cap = ncap;
    return 0;
}

void batch_builder_init(struct batch_builder *b)
{
    memset(b, 0, sizeof(*b));
    batch_builder_reset(b);
}

void batch_builder_free(struct batch_builder *b)
{
    free(b->table);
    free(b->iov);
    free(b->scratch);
    memset(b, 0, sizeof(*b));
}

void batch_builder_reset(struct batch_builder *b)
{
    b->table_len = 0;
    b->record_count = 0;
    b->values_len = 0;
    b->iovcnt = 2; /* header, table */
}

int batch_builder_add_record(struct batch_builder *b, uint32_t value_len, int32_t key_len)
{
    size_t cap = b->table_cap;
    if (grow((void **)&b->table, &cap, b->table_len + 2 * VARINT32_MAX_BYTES, 1))
        return -ENOMEM;
    b->table_cap = cap;
    b->table_len += varint_encode(b->table + b->table_len, value_len);
    b->table_len += varint_encode(b->table + b->table_len, (uint32_t)(key_len + 1));
    b->record_count++;
    return 0;
}

int batch_builder_add_values(struct batch_builder *b, const void *data, size_t len)
{
    if (!len)
        return 0;
    if (b->iovcnt > 2) {
        struct iovec *last = &b->iov[b->iovcnt - 1];
        if ((const char *)last->iov_base + last->iov_len == (const char *)data) {
            last->iov_len += len;
            b->values_len += len;
            return 0;
        }
    }
    size_t cap = (size_t)b->iov_cap;
    if (grow((void **)&b->iov, &cap, (size_t)b->iovcnt + 1, sizeof(struct iovec)))
        return -ENOMEM;
    b->iov_cap = (int)cap;
    b->iov[b->iovcnt].iov_base = (void *)data;
    b->iov[b->iovcnt].iov_len = len;
    b->iovcnt++;
    b->values_len += len;
    return 0;
}

void batch_header_encode(const struct batch_header *h, uint8_t *p)
{
    memset(p, 0, BATCH_HEADER_SIZE);
    put32(p + 0, BATCH_MAGIC);
    put32(p + 4, h->length);
    put64(p + 8, h->checksum);
    put64(p + 16, h->base_offset);
    put64(p + 24, h->base_pos);
    put64(p + 32, (uint64_t)h->timestamp);
    put32(p + 40, h->record_count);
    put32(p + 44, h->table_len);
    put32(p + 48, h->values_len);
    put32(p + 52, h->leader_epoch);
    p[56] = h->codec;
}

int batch_header_decode(const uint8_t *p, struct batch_header *h)
{
    if (get32(p) != BATCH_MAGIC)
        return -EBADMSG;
    h->length = get32(p + 4);
    h->checksum = get64(p + 8);
    h->base_offset = get64(p + 16);
    h->base_pos = get64(p + 24);
    h->timestamp = (int64_t)get64(p + 32);
    h->record_count = get32(p + 40);
    h->table_len = get32(p + 44);
    h->values_len = get32(p + 48);
    h->leader_epoch = get32(p + 52);
    h->codec = p[56];
    if (h->length < BATCH_HEADER_SIZE || h->length > BATCH_MAX_LENGTH || h->record_count == 0 ||
        h->codec > BATCH_CODEC_LZ4 || h->table_len < 2 * (uint64_t)h->record_count)
        return -EBADMSG;
    if (h->codec == BATCH_CODEC_NONE &&
        (uint64_t)h->length != BATCH_HEADER_SIZE + (uint64_t)h->table_len + h->values_len)
        return -EBADMSG;
    /* What lz4 inflates to obeys the builder's limit too. */
    if (BATCH_HEADER_SIZE + (uint64_t)h->table_len + h->values_len > BATCH_MAX_LENGTH)
        return -EBADMSG;
    if (h->base_offset > BATCH_END_MAX - h->record_count ||
        h->base_pos > BATCH_END_MAX - h->values_len)
        return -EBADMSG;
    return 0;
}

int batch_builder_seal(struct batch_builder *b, enum batch_codec codec, uint64_t base_offset,
                       uint64_t base_pos, int64_t timestamp, uint32_t leader_epoch,
                       const struct iovec **iov, int *iovcnt, size_t *length)
{
    struct batch_header h = {0};
    size_t raw = b->table_len + b->values_len;

    if (b->record_count == 0)
        return -EINVAL;
    if (BATCH_HEADER_SIZE + raw > BATCH_MAX_LENGTH)
        return -EMSGSIZE;
    if (base_offset > BATCH_END_MAX - b->record_count || base_pos > BATCH_END_MAX - b->values_len)
        return -EOVERFLOW;
    size_t iov_cap = (size_t)b->iov_cap; /* no values were added: only empty records */
    if (grow((void **)&b->iov, &iov_cap, 2, sizeof(struct iovec)))
        return -ENOMEM;
    b->iov_cap = (int)iov_cap;
    b->iov[0].iov_base = b->header;
    b->iov[0].iov_len = BATCH_HEADER_SIZE;
    b->iov[1].iov_base = b->table;
    b->iov[1].iov_len = b->table_len;

    h.base_offset = base_offset;
    h.base_pos = base_pos;
    h.timestamp = timestamp;
    h.record_count = b->record_count;
    h.table_len = (uint32_t)b->table_len;
    h.values_len = (uint32_t)b->values_len;
    h.leader_epoch = leader_epoch;
    h.codec = (uint8_t)codec;

    if (codec == BATCH_CODEC_LZ4) {
        size_t bound = (size_t)LZ4_compressBound((int)raw);
        size_t cap = b->scratch_cap;
        if (grow((void **)&b->scratch, &cap, raw + bound, 1))
            return -ENOMEM;
        b->scratch_cap = cap;
        uint8_t *in = b->scratch, *out = b->scratch + raw, *q = in;
        for (int i = 1; i < b->iovcnt; i++) {
            memcpy(q, b->iov[i].iov_base, b->iov[i].iov_len);
            q += b->iov[i].iov_len;
        }
        int n = LZ4_compress_default((const char *)in, (char *)out, (int)raw, (int)bound);
        if (n <= 0)
            return -EIO;
        b->iov[1].iov_base = out;
        b->iov[1].iov_len = (size_t)n;
        b->iovcnt = 2;
        h.length = (uint32_t)(BATCH_HEADER_SIZE + (size_t)n);
    } else {
        h.length = (uint32_t)(BATCH_HEADER_SIZE + raw);
    }

    batch_header_encode(&h, b->header);
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    hash_bulk_update(&st, b->header + 16, BATCH_HEADER_SIZE - 16);
    for (int i = 1; i < b->iovcnt; i++)
        hash_bulk_update(&st, b->iov[i].iov_base, b->iov[i].iov_len);
    h.checksum = XXH3_64bits_digest(&st);
    put64(b->header + 8, h.checksum);

    *iov = b->iov;
    *iovcnt = b->iovcnt;
    *length = h.length;
    return 0;
}

/* The table must hold record_count records whose values fill values_len
 * exactly, or a reader walking it would run off the values. */
static int check_table(const struct batch_header *h, const uint8_t *table)
{
    const uint8_t *t = table, *end = table + h->table_len;
    uint64_t sum = 0;
    uint32_t n = 0, vlen;
    int32_t klen;
    int r;
    while ((r = batch_next_record(&t, end, &vlen, &klen)) == 1) {
        sum += vlen;
        n++;
    }
    return r == 0 && n == h->record_count && sum == h->values_len ? 0 : -EBADMSG;
}

uint64_t batch_checksum(const uint8_t *batch, size_t len)
{
    return hash_bulk(batch + 16, len - 16);
}

int batch_verify(const uint8_t *batch, size_t len)
{
    struct batch_header h;
    if (len < BATCH_HEADER_SIZE || batch_header_decode(batch, &h) || h.length != len)
        return -EBADMSG;
    if (batch_checksum(batch, len) != h.checksum)
        return -EBADMSG;
    /* An lz4 table is checked where it is inflated (batch_body). */
    return h.codec == BATCH_CODEC_NONE ? check_table(&h, batch + BATCH_HEADER_SIZE) : 0;
}

int batch_body(const struct batch_header *h, const uint8_t *batch, uint8_t **scratch,
               size_t *scratch_cap, const uint8_t **table, const uint8_t **values)
{
    const uint8_t *body = batch + BATCH_HEADER_SIZE;
    if (h->codec == BATCH_CODEC_NONE) {
        *table = body;
        *values = body + h->table_len;
        return 0;
    }
    size_t raw = (size_t)h->table_len + h->values_len;
    if (grow((void **)scratch, scratch_cap, raw ? raw : 1, 1))
        return -ENOMEM;
    int n = LZ4_decompress_safe((const char *)body, (char *)*scratch,
                                (int)(h->length - BATCH_HEADER_SIZE), (int)raw);
    if (n < 0 || (size_t)n != raw)
        return -EBADMSG;
    *table = *scratch;
    *values = *scratch + h->table_len;
    return check_table(h, *table);
}

int batch_next_record(const uint8_t **table, const uint8_t *table_end, uint32_t *value_len,
                      int32_t *key_len)
{
    uint32_t v, k;
    size_t n;
    if (*table >= table_end)
        return 0;
    n = varint_decode(*table, table_end, &v);
    if (!n)
        return -EBADMSG;
    *table += n;
    n = varint_decode(*table, table_end, &k);
    if (!n || k > v + 1)
        return -EBADMSG;
    *table += n;
    *value_len = v;
    *key_len = (int32_t)k - 1;
    return 1;
}
