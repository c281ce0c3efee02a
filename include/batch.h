/* batch.h - the on-disk record batch: the unit of append, checksum and codec.
 *
 * Layout (little-endian), BATCH_HEADER_SIZE bytes of header then the body:
 *
 *   0  u32 magic          BATCH_MAGIC
 *   4  u32 length         header + body bytes
 *   8  u64 checksum       XXH3-64 of bytes [16, length)
 *  16  u64 base_offset    offset of the first record
 *  24  u64 base_pos       partition-stream position of the first value byte
 *  32  i64 timestamp      append time, ms since the epoch, for every record
 *  40  u32 record_count
 *  44  u32 table_len      bytes of the record table (uncompressed)
 *  48  u32 values_len     bytes of all values (uncompressed)
 *  52  u32 leader_epoch
 *  56  u8  codec          enum batch_codec
 *  57  u8[7] reserved     zero
 *
 * Body, uncompressed: the record table, then every value back to back. The
 * table holds, per record, varint(value_len) and varint(key_len + 1) where 0
 * means "no key". A key is always a prefix of its value (the bytes before
 * key.separator), so it is not stored twice. Keeping values contiguous lets a
 * reader copy a range of the partition stream straight out of the file.
 * With BATCH_CODEC_LZ4 the body is the lz4 block of table + values.
 *
 * Invariants: record_count >= 1; values_len is the sum of the value lengths;
 * next offset and end position (base + count, base + values_len) stay at or
 * below BATCH_END_MAX, as Kafka's offsets and file offsets are signed 64-bit;
 * a batch whose checksum fails is never decoded or served. */
#ifndef TOPICFS_BATCH_H
#define TOPICFS_BATCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define BATCH_MAGIC 0x31424654u /* "TFB1" */
#define BATCH_HEADER_SIZE 64
#define BATCH_MAX_LENGTH (64u << 20)
#define BATCH_END_MAX ((uint64_t)INT64_MAX)

enum batch_codec { BATCH_CODEC_NONE = 0, BATCH_CODEC_LZ4 = 1 };

struct batch_header {
    uint32_t length;
    uint64_t checksum;
    uint64_t base_offset;
    uint64_t base_pos;
    int64_t timestamp;
    uint32_t record_count;
    uint32_t table_len;
    uint32_t values_len;
    uint32_t leader_epoch;
    uint8_t codec;
};

/* Collects records for one batch. Value bytes are referenced, not copied,
 * until batch_builder_seal() (lz4 copies them to compress). */
struct batch_builder {
    uint8_t *table;
    size_t table_len, table_cap;
    uint32_t record_count;
    uint64_t values_len;
    struct iovec *iov; /* iov[0] is the header, iov[1] the table */
    int iovcnt, iov_cap;
    uint8_t header[BATCH_HEADER_SIZE];
    uint8_t *scratch; /* lz4 input and output */
    size_t scratch_cap;
};

/* One record to store: data holds the key (its first key_len bytes) and
 * the value, which includes the key (the framing's and the wire's record). */
struct record_ref {
    const char *data;
    uint32_t len;
    int32_t key_len; /* -1: no key */
};

void batch_builder_init(struct batch_builder *b);
void batch_builder_free(struct batch_builder *b);
void batch_builder_reset(struct batch_builder *b);
/* key_len < 0 means no key. */
int batch_builder_add_record(struct batch_builder *b, uint32_t value_len, int32_t key_len);
/* Appends value bytes; they must stay valid until the batch is written. */
int batch_builder_add_values(struct batch_builder *b, const void *data, size_t len);
/* Fills the header, encodes the body and computes the checksum. On success
 * iov and iovcnt describe the whole batch and length its size; -EOVERFLOW if
 * its offsets or positions would pass BATCH_END_MAX. */
int batch_builder_seal(struct batch_builder *b, enum batch_codec codec, uint64_t base_offset,
                       uint64_t base_pos, int64_t timestamp, uint32_t leader_epoch,
                       const struct iovec **iov, int *iovcnt, size_t *length);

/* Parses and sanity-checks a header (not the checksum): 0 or -EBADMSG. */
int batch_header_decode(const uint8_t *buf, struct batch_header *h);
void batch_header_encode(const struct batch_header *h, uint8_t *buf);
/* The checksum a whole batch of len >= 16 bytes in memory must carry. */
uint64_t batch_checksum(const uint8_t *batch, size_t len);
/* Verifies the checksum of a whole batch in memory, and that its record
 * table describes record_count records whose values fill values_len
 * exactly (so walking it never runs off the values): 0 or -EBADMSG. */
int batch_verify(const uint8_t *batch, size_t len);
/* Returns table + values of a verified batch. For lz4 they are decompressed
 * into *scratch (grown as needed) and the table is checked as batch_verify
 * checks an uncompressed one (-EBADMSG); else they point into the batch. */
int batch_body(const struct batch_header *h, const uint8_t *batch, uint8_t **scratch,
               size_t *scratch_cap, const uint8_t **table, const uint8_t **values);
/* Walks the record table: returns 1 and fills lengths, 0 at the end, -EBADMSG. */
int batch_next_record(const uint8_t **table, const uint8_t *table_end, uint32_t *value_len,
                      int32_t *key_len);
/* Stream position one past the batch's last value byte. */
static inline uint64_t batch_end_pos(const struct batch_header *h)
{
    return h->base_pos + h->values_len;
}
static inline uint64_t batch_next_offset(const struct batch_header *h)
{
    return h->base_offset + h->record_count;
}

#endif
