/* fuzz_frame.c - the inter-broker frame decoders (replicate/frame.c).
 *
 * Input: u8 settings, u8 chunking seed, then the body. Settings bit 0
 * chooses how the body becomes a byte stream: raw (the body is the stream),
 * or built (the body is a list of steps, each u8 op, u16 length and that
 * many bytes: a valid frame with those bytes as payload, the bytes as they
 * are, or a valid frame with one bit flipped), so the fuzzer gets past the
 * checksums. Bits 1-3 choose the receive limit (small ones down to 1, or
 * the default).
 *
 * Checked: the one-shot decoder (frame_decode, walking the stream) and the
 * incremental decoder fed in pseudo-random chunks agree on every frame
 * (fields and payload) and on the error that ends the stream; every decoded
 * frame re-encodes to exactly the bytes it came from and respects the limit;
 * a stream that ends inside a frame is "need more", never an error; valid
 * frames that were not tampered with all come out. ASan checks every read. */
#include "frame.h"
#include "fuzz_util.h"

#define MAX_FRAMES 4096

struct seen {
    size_t off, len; /* where in the stream */
    struct frame_header h;
};

static size_t pick_limit(uint8_t set)
{
    static const size_t limits[8] = {1, 7, 36, 64, 300, 4096, 65536, FRAME_MAX_PAYLOAD_DEFAULT};
    return limits[(set >> 1) & 7];
}

/* The body as a stream of frames; *intact is 1 when every step made a
 * valid frame. */
static uint8_t *build_stream(struct fuzz_in *in, size_t *len, int *intact)
{
    size_t cap = in->n * 2 + 64, at = 0;
    uint8_t *s = malloc(cap);
    *intact = 1;
    while (in->n >= 3) {
        uint8_t op = fuzz_u8(in);
        size_t n = fuzz_u8(in);
        n |= (size_t)fuzz_u8(in) << 8;
        if (n > in->n)
            n = in->n;
        const uint8_t *p = in->p;
        in->p += n;
        in->n -= n;
        size_t need = at + FRAME_HEADER_SIZE + n;
        if (need > cap) {
            cap = need * 2;
            s = realloc(s, cap);
        }
        if (op % 3 == 1) {
            memcpy(s + at, p, n);
            at += n;
            if (n)
                *intact = 0;
            continue;
        }
        ssize_t w =
            frame_encode(s + at, cap - at, (uint16_t)(op * 257), op, (uint64_t)op << 33, p, n);
        FUZZ_CHECK(w == (ssize_t)(FRAME_HEADER_SIZE + n));
        if (op % 3 == 2) {
            size_t bit = ((size_t)op * 131 + n) % ((size_t)w * 8);
            s[at + bit / 8] ^= (uint8_t)(1u << (bit % 8));
            *intact = 0;
        }
        at += (size_t)w;
    }
    *len = at;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    uint8_t set = fuzz_u8(&in);
    uint32_t rng = fuzz_u8(&in) * 2654435761u + 1;
    size_t limit = pick_limit(set);
    size_t len;
    int intact = 0;
    uint8_t *stream;
    if (set & 1) {
        stream = build_stream(&in, &len, &intact);
    } else {
        len = in.n;
        stream = malloc(len ? len : 1);
        memcpy(stream, in.p, len);
    }
    if (limit < FRAME_MAX_PAYLOAD_DEFAULT)
        intact = 0;

    /* One shot, walking the stream. */
    static struct seen seen[MAX_FRAMES];
    size_t nseen = 0, at = 0;
    int end_err = 0;
    while (nseen < MAX_FRAMES) {
        struct frame f;
        size_t flen;
        int r = frame_decode(stream + at, len - at, limit, &f, &flen);
        if (r < 0) {
            end_err = r;
            break;
        }
        FUZZ_CHECK(flen == FRAME_HEADER_SIZE + f.h.length && flen <= len - at);
        FUZZ_CHECK(f.h.length <= limit && f.h.version == FRAME_VERSION);
        FUZZ_CHECK(f.payload == stream + at + FRAME_HEADER_SIZE);
        uint8_t *re = malloc(flen);
        FUZZ_CHECK(frame_encode(re, flen, f.h.type, f.h.flags, f.h.id, f.payload, f.h.length) ==
                   (ssize_t)flen);
        FUZZ_CHECK(!memcmp(re, stream + at, flen));
        free(re);
        seen[nseen++] = (struct seen){at, flen, f.h};
        at += flen;
    }
    if (intact)
        FUZZ_CHECK(at == len && (end_err == -ENODATA || end_err == 0));
    if (end_err == -ENODATA)
        end_err = 0; /* for the incremental decoder: "need more" */

    /* Incremental, in chunks. */
    struct frame_decoder d;
    frame_decoder_init(&d, limit);
    size_t pos = 0, got = 0;
    int err = 0;
    while (pos < len && !err && got < nseen) {
        rng = rng * 1103515245u + 12345u;
        size_t n = 1 + (rng >> 8) % 97;
        if (n > len - pos)
            n = len - pos;
        uint8_t *chunk = malloc(n);
        memcpy(chunk, stream + pos, n);
        size_t p = 0;
        while (p < n) {
            struct frame f;
            size_t used;
            int r = frame_decoder_feed(&d, chunk + p, n - p, &used, &f);
            FUZZ_CHECK(used <= n - p);
            p += used;
            if (r < 0) {
                err = r;
                /* Sticky, and takes nothing more. */
                FUZZ_CHECK(frame_decoder_feed(&d, chunk, n, &used, &f) == r && used == 0);
                break;
            }
            if (r == 1) {
                FUZZ_CHECK(got < nseen);
                const struct seen *s = &seen[got++];
                FUZZ_CHECK(pos + p == s->off + s->len);
                FUZZ_CHECK(f.h.type == s->h.type && f.h.flags == s->h.flags && f.h.id == s->h.id &&
                           f.h.length == s->h.length && f.h.checksum == s->h.checksum);
                FUZZ_CHECK(!memcmp(f.payload, stream + s->off + FRAME_HEADER_SIZE, f.h.length));
                if (got == nseen)
                    break;
            } else {
                FUZZ_CHECK(r == 0 && p == n);
            }
        }
        free(chunk);
        pos += p;
    }
    FUZZ_CHECK(got == nseen);
    if (nseen < MAX_FRAMES && !err && pos < len) {
        /* Everything after the last frame, in one piece. */
        struct frame f;
        size_t used;
        int r = frame_decoder_feed(&d, stream + pos, len - pos, &used, &f);
        FUZZ_CHECK(r <= 0);
        err = r;
    }
    if (nseen < MAX_FRAMES) {
        FUZZ_CHECK(err == end_err);
        if (!err)
            FUZZ_CHECK(frame_decoder_mid_frame(&d) == (at < len));
    }
    frame_decoder_free(&d);
    free(stream);
    return 0;
}
