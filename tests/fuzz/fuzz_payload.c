/* fuzz_payload.c - the payload field reader and writer (replicate/frame.c).
 *
 * Input: u8 count of operations, that many operation bytes, then the
 * payload (in a heap buffer of exactly its size). Each operation reads one
 * field: u8, u16, u32, u64, i64, raw bytes (size from the op byte), bytes,
 * a string (buffer size from the op byte) or the end check.
 *
 * Checked: the reader never moves past the payload, and moves only on
 * success; after the first error every call returns that error (-EBADMSG)
 * and leaves its output alone; bytes point inside the payload; strings are
 * NUL-terminated with no NUL inside; and writing back every field read, with
 * the writer into a buffer of the bytes consumed, reproduces those bytes
 * exactly (the writer refuses with -ENOBUFS, and nothing past its buffer, one
 * byte short). */
#include "frame.h"
#include "fuzz_util.h"

#define MAX_OPS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    size_t nops = fuzz_u8(&in) % (MAX_OPS + 1);
    uint8_t ops[MAX_OPS];
    for (size_t i = 0; i < nops; i++)
        ops[i] = fuzz_u8(&in);
    size_t len = in.n;
    uint8_t *payload = malloc(len ? len : 1);
    memcpy(payload, in.p, len);

    /* Read, writing back into out as we go. */
    uint8_t *out = malloc(len + 1);
    struct payload_reader r;
    struct payload_writer w;
    payload_reader_init(&r, payload, len);
    payload_writer_init(&w, out, len);
    int err = 0;
    for (size_t i = 0; i < nops; i++) {
        uint8_t op = ops[i], k = op >> 4;
        size_t before = r.at;
        int e;
        union {
            uint8_t u8;
            uint16_t u16;
            uint32_t u32;
            uint64_t u64;
            int64_t i64;
            uint8_t raw[16];
            char str[17];
        } v, keep;
        memset(&v, 0x5c, sizeof(v));
        keep = v;
        const uint8_t *bp = NULL;
        uint32_t bn = 0;
        switch (op % 9) {
        case 0:
            if (!(e = payload_get_u8(&r, &v.u8)))
                FUZZ_CHECK(payload_put_u8(&w, v.u8) == 0);
            break;
        case 1:
            if (!(e = payload_get_u16(&r, &v.u16)))
                FUZZ_CHECK(payload_put_u16(&w, v.u16) == 0);
            break;
        case 2:
            if (!(e = payload_get_u32(&r, &v.u32)))
                FUZZ_CHECK(payload_put_u32(&w, v.u32) == 0);
            break;
        case 3:
            if (!(e = payload_get_u64(&r, &v.u64)))
                FUZZ_CHECK(payload_put_u64(&w, v.u64) == 0);
            break;
        case 4:
            if (!(e = payload_get_i64(&r, &v.i64)))
                FUZZ_CHECK(payload_put_i64(&w, v.i64) == 0);
            break;
        case 5:
            if (!(e = payload_get_raw(&r, v.raw, k)))
                FUZZ_CHECK(payload_put_raw(&w, v.raw, k) == 0);
            break;
        case 6:
            e = payload_get_bytes(&r, &bp, &bn);
            if (!e) {
                FUZZ_CHECK(bp >= payload + 4 && bp + bn <= payload + len);
                FUZZ_CHECK(payload_put_bytes(&w, bp, bn) == 0);
            } else {
                FUZZ_CHECK(bp == NULL && bn == 0);
            }
            break;
        case 7:
            e = payload_get_str(&r, v.str, (size_t)k + 1);
            if (!e) {
                FUZZ_CHECK(strlen(v.str) <= k);
                FUZZ_CHECK(payload_put_str(&w, v.str) == 0);
            }
            break;
        default:
            e = payload_end(&r);
            FUZZ_CHECK(e == 0 ? r.at == len : e == -EBADMSG);
            break;
        }
        FUZZ_CHECK(r.at <= len);
        if (e) {
            FUZZ_CHECK(e == -EBADMSG && r.err == e);
            FUZZ_CHECK(r.at == before);
            if (op % 9 != 8)
                FUZZ_CHECK(!memcmp(&v, &keep, sizeof(v)));
            if (!err)
                err = e;
        } else {
            FUZZ_CHECK(!err);
        }
        FUZZ_CHECK(w.err == 0 && w.len == r.at);
    }
    FUZZ_CHECK(!memcmp(out, payload, r.at));

    /* The same fields one byte short: the writer refuses, writes nothing
     * past its buffer. */
    if (r.at) {
        out[r.at - 1] = 0xee;
        struct payload_writer ws;
        payload_writer_init(&ws, out, r.at - 1);
        int ew = payload_put_raw(&ws, payload, r.at);
        FUZZ_CHECK(ew == -ENOBUFS && ws.len == 0 && out[r.at - 1] == 0xee);
        FUZZ_CHECK(payload_put_u8(&ws, 1) == -ENOBUFS);
    }
    free(out);
    free(payload);
    return 0;
}
