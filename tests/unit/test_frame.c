/* test_frame.c - the inter-broker frame codec and the payload field codec
 * (replicate/frame.c): round trips over many sizes, types and ids, through
 * the one-shot decoder and the incremental one (whole, one byte at a time,
 * random chunks, frames back to back); every truncation ("need more", never
 * a frame); every single-bit flip refused; versions, magic and oversize
 * lengths refused from the header alone, before any allocation; the payload
 * writer and reader at every truncation and with out-of-bounds lengths.
 * Decoders always read from heap buffers of the exact size, so ASan sees any
 * read past the end. Headers with chosen fields are built here by hand from
 * the layout in frame.h, so the test checks the documented format too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "frame.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed + i * 31 + (i >> 8));
}

/* A heap copy of exactly n bytes. */
static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
    uint8_t *b = malloc(n ? n : 1);
    assert_non_null(b);
    if (n)
        memcpy(b, p, n);
    return b;
}

/* Encodes a frame into a new heap buffer; *len is its size. */
static uint8_t *make_frame(uint16_t type, uint32_t flags, uint64_t id, const uint8_t *payload,
                           size_t plen, size_t *len)
{
    size_t cap = FRAME_HEADER_SIZE + plen;
    uint8_t *b = malloc(cap);
    assert_non_null(b);
    ssize_t n = frame_encode(b, cap, type, flags, id, payload, plen);
    assert_int_equal(n, (ssize_t)cap);
    *len = cap;
    return b;
}

static void be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Rewrites a header field by hand and recomputes the header check (and the
 * checksum over the given payload), as a peer with other ideas would. */
static void reseal(uint8_t *hdr, const uint8_t *payload, size_t plen)
{
    XXH3_state_t st;
    XXH3_INITSTATE(&st);
    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, hdr, 24);
    if (plen)
        XXH3_64bits_update(&st, payload, plen);
    uint64_t c = XXH3_64bits_digest(&st);
    be32(hdr + 24, (uint32_t)(c >> 32));
    be32(hdr + 28, (uint32_t)c);
    be32(hdr + 32, (uint32_t)XXH3_64bits(hdr, 32));
}

static void check_frame(const struct frame *f, uint16_t type, uint32_t flags, uint64_t id,
                        const uint8_t *payload, size_t plen)
{
    assert_int_equal(f->h.version, FRAME_VERSION);
    assert_int_equal(f->h.type, type);
    assert_int_equal(f->h.flags, flags);
    assert_int_equal(f->h.length, plen);
    assert_true(f->h.id == id);
    assert_non_null(f->payload);
    if (plen)
        assert_memory_equal(f->payload, payload, plen);
}

/* ------------------------------------------------------------------ frames */

static void test_layout(void **state)
{
    (void)state;
    uint8_t payload[3] = {1, 2, 3}, b[FRAME_HEADER_SIZE + 3];
    assert_int_equal(
        frame_encode(b, sizeof(b), 0x0102, 0x03040506, 0x0708090a0b0c0d0eull, payload, 3),
        sizeof(b));
    static const uint8_t want[] = {'T', 'F', 'W', '1', 0, 1, 1, 2,  3,  4,  5,  6,
                                   0,   0,   0,   3,   7, 8, 9, 10, 11, 12, 13, 14};
    assert_memory_equal(b, want, sizeof(want));
    uint8_t copy[sizeof(b)];
    memcpy(copy, b, sizeof(b));
    reseal(copy, payload, 3);
    assert_memory_equal(copy, b, sizeof(b));
    assert_memory_equal(b + FRAME_HEADER_SIZE, payload, 3);
}

static void test_roundtrip(void **state)
{
    (void)state;
    static const size_t sizes[] = {
        0,    1,    2,     35,    36,    37,     100,      4095,
        4096, 4097, 65535, 65536, 65537, 300000, 1u << 20, (1u << 20) + 3};
    uint8_t *payload = malloc((1u << 20) + 3);
    assert_non_null(payload);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t plen = sizes[i];
        uint16_t type = (uint16_t)(i * 4099 + 1);
        uint32_t flags = (uint32_t)(i * 0x01010101u);
        uint64_t id = i % 2 ? UINT64_MAX - i : i << 40;
        fill(payload, plen, (uint8_t)i);
        size_t len;
        uint8_t *b = make_frame(type, flags, id, payload, plen, &len);

        /* The header of a payload given in pieces is the same. */
        struct iovec iov[3] = {
            {payload, plen / 3}, {payload + plen / 3, 0}, {payload + plen / 3, plen - plen / 3}};
        uint8_t hdr[FRAME_HEADER_SIZE];
        assert_int_equal(frame_header_encode(hdr, type, flags, id, iov, 3), 0);
        assert_memory_equal(hdr, b, FRAME_HEADER_SIZE);

        struct frame f;
        size_t flen = 0;
        assert_int_equal(frame_decode(b, len, FRAME_MAX_PAYLOAD_DEFAULT, &f, &flen), 0);
        assert_int_equal(flen, len);
        check_frame(&f, type, flags, id, payload, plen);

        struct frame_decoder d;
        frame_decoder_init(&d, 0);
        assert_int_equal(d.max_payload, FRAME_MAX_PAYLOAD_DEFAULT);
        size_t used;
        assert_int_equal(frame_decoder_feed(&d, b, len, &used, &f), 1);
        assert_int_equal(used, len);
        check_frame(&f, type, flags, id, payload, plen);
        assert_false(frame_decoder_mid_frame(&d));
        frame_decoder_free(&d);
        free(b);
    }
    free(payload);
}

static void test_encode_limits(void **state)
{
    (void)state;
    uint8_t b[FRAME_HEADER_SIZE + 4], payload[5] = {1, 2, 3, 4, 5};
    memset(b, 0xAA, sizeof(b));
    assert_int_equal(frame_encode(b, sizeof(b), 1, 0, 0, payload, 5), -ENOBUFS);
    assert_int_equal(frame_encode(b, 10, 1, 0, 0, payload, 0), -ENOBUFS);
    for (size_t i = 0; i < sizeof(b); i++)
        assert_int_equal(b[i], 0xAA);
    assert_int_equal(frame_encode(b, sizeof(b), 1, 0, 0, NULL, (size_t)UINT32_MAX + 1), -EMSGSIZE);
    struct iovec iov[2] = {{NULL, UINT32_MAX}, {NULL, 1}};
    assert_int_equal(frame_header_encode(b, 1, 0, 0, iov, 2), -EMSGSIZE);
}

/* Every proper prefix: frame_decode says truncated, the decoder wants more. */
static void truncations_of(const uint8_t *b, size_t len)
{
    for (size_t n = 0; n < len; n++) {
        uint8_t *p = dup_exact(b, n);
        struct frame f;
        size_t flen;
        assert_int_equal(frame_decode(p, n, FRAME_MAX_PAYLOAD_DEFAULT, &f, &flen), -ENODATA);
        struct frame_decoder d;
        frame_decoder_init(&d, 0);
        size_t used;
        assert_int_equal(frame_decoder_feed(&d, p, n, &used, &f), 0);
        assert_int_equal(used, n);
        assert_int_equal(frame_decoder_mid_frame(&d), n > 0);
        frame_decoder_free(&d);
        free(p);
    }
}

static void test_every_truncation(void **state)
{
    (void)state;
    uint8_t payload[100];
    fill(payload, sizeof(payload), 7);
    size_t len;
    uint8_t *b = make_frame(9, 1, 42, payload, sizeof(payload), &len);
    truncations_of(b, len);
    free(b);
    b = make_frame(9, 1, 42, NULL, 0, &len);
    truncations_of(b, len);
    free(b);
}

static void flips_of(const uint8_t *b, size_t len)
{
    uint8_t *p = dup_exact(b, len);
    for (size_t bit = 0; bit < len * 8; bit++) {
        p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        struct frame f;
        size_t flen;
        int r = frame_decode(p, len, FRAME_MAX_PAYLOAD_DEFAULT, &f, &flen);
        if (r != -EBADMSG && r != -EPROTO)
            fail_msg("bit %zu flipped: frame_decode returned %d", bit, r);
        struct frame_decoder d;
        frame_decoder_init(&d, 0);
        size_t used;
        assert_int_equal(frame_decoder_feed(&d, p, len, &used, &f), r);
        /* Sticky: the stream stays refused. */
        assert_int_equal(frame_decoder_feed(&d, b, len, &used, &f), r);
        assert_int_equal(used, 0);
        frame_decoder_free(&d);
        p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    free(p);
}

static void test_every_bit_flip(void **state)
{
    (void)state;
    uint8_t payload[64];
    fill(payload, sizeof(payload), 3);
    size_t len;
    uint8_t *b = make_frame(2, 0, 7, payload, sizeof(payload), &len);
    flips_of(b, len);
    free(b);
    b = make_frame(2, 0, 7, NULL, 0, &len);
    flips_of(b, len);
    free(b);
}

static void test_magic_and_version(void **state)
{
    (void)state;
    uint8_t payload[8] = "payload";
    size_t len;
    uint8_t *b = make_frame(1, 0, 1, payload, sizeof(payload), &len);
    struct frame f;
    size_t flen, used;
    struct frame_decoder d;

    b[5] = 2; /* version 2, correctly sealed */
    reseal(b, payload, sizeof(payload));
    assert_int_equal(frame_decode(b, len, FRAME_MAX_PAYLOAD_DEFAULT, &f, &flen), -EPROTO);
    frame_decoder_init(&d, 0);
    /* Refused from the header alone. */
    assert_int_equal(frame_decoder_feed(&d, b, FRAME_HEADER_SIZE, &used, &f), -EPROTO);
    frame_decoder_free(&d);

    b[5] = 1;
    b[0] = 'X';
    reseal(b, payload, sizeof(payload));
    assert_int_equal(frame_decode(b, len, FRAME_MAX_PAYLOAD_DEFAULT, &f, &flen), -EBADMSG);
    frame_decoder_init(&d, 0);
    assert_int_equal(frame_decoder_feed(&d, b, FRAME_HEADER_SIZE, &used, &f), -EBADMSG);
    frame_decoder_free(&d);
    free(b);
}

static void test_oversize_before_allocation(void **state)
{
    (void)state;
    uint8_t payload[101];
    fill(payload, sizeof(payload), 1);
    size_t len, used, flen;
    struct frame f;
    struct frame_decoder d;

    /* One byte over a small limit; exactly the limit passes. */
    uint8_t *b = make_frame(1, 0, 1, payload, 101, &len);
    frame_decoder_init(&d, 100);
    assert_int_equal(frame_decoder_feed(&d, b, FRAME_HEADER_SIZE, &used, &f), -EMSGSIZE);
    assert_null(d.buf);
    assert_int_equal(d.cap, 0);
    assert_int_equal(frame_decode(b, len, 100, &f, &flen), -EMSGSIZE);
    assert_int_equal(frame_decode(b, FRAME_HEADER_SIZE, 100, &f, &flen), -EMSGSIZE);
    frame_decoder_free(&d);
    free(b);
    b = make_frame(1, 0, 1, payload, 100, &len);
    frame_decoder_init(&d, 100);
    assert_int_equal(frame_decoder_feed(&d, b, len, &used, &f), 1);
    frame_decoder_free(&d);
    free(b);

    /* A sealed header announcing 4 GiB - 1 and the default limit. */
    uint8_t hdr[FRAME_HEADER_SIZE];
    assert_int_equal(frame_encode(hdr, sizeof(hdr), 1, 0, 1, NULL, 0), FRAME_HEADER_SIZE);
    be32(hdr + 12, UINT32_MAX);
    reseal(hdr, NULL, 0);
    frame_decoder_init(&d, 0);
    assert_int_equal(frame_decoder_feed(&d, hdr, sizeof(hdr), &used, &f), -EMSGSIZE);
    assert_null(d.buf);
    frame_decoder_free(&d);
    assert_int_equal(frame_decode(hdr, sizeof(hdr), FRAME_MAX_PAYLOAD_DEFAULT, &f, &flen),
                     -EMSGSIZE);

    /* The default limit itself is accepted from the header (then awaited). */
    be32(hdr + 12, (uint32_t)FRAME_MAX_PAYLOAD_DEFAULT);
    reseal(hdr, NULL, 0);
    frame_decoder_init(&d, 0);
    assert_int_equal(frame_decoder_feed(&d, hdr, sizeof(hdr), &used, &f), 0);
    assert_null(d.buf); /* nothing held before payload bytes arrive */
    frame_decoder_free(&d);
}

/* A stream of n frames with varied sizes; lens/offs describe them. */
struct stream {
    uint8_t *bytes;
    size_t len;
    size_t n;
    size_t off[64], plen[64];
};

static void make_stream(struct stream *s, size_t n)
{
    assert_true(n <= 64);
    s->n = n;
    s->len = 0;
    size_t cap = 0;
    for (size_t i = 0; i < n; i++)
        cap += FRAME_HEADER_SIZE + (i * 977) % 9000;
    s->bytes = malloc(cap);
    uint8_t *payload = malloc(9000);
    assert_non_null(s->bytes);
    for (size_t i = 0; i < n; i++) {
        s->plen[i] = (i * 977) % 9000;
        s->off[i] = s->len;
        fill(payload, s->plen[i], (uint8_t)i);
        ssize_t w = frame_encode(s->bytes + s->len, cap - s->len, (uint16_t)i, (uint32_t)i, i,
                                 payload, s->plen[i]);
        assert_true(w > 0);
        s->len += (size_t)w;
    }
    free(payload);
}

/* Feeds the stream in chunks (chunk 0: random sizes) and checks that each
 * frame comes out once, in order, intact. */
static void feed_stream(const struct stream *s, size_t chunk)
{
    struct frame_decoder d;
    frame_decoder_init(&d, 0);
    uint8_t *expect = malloc(9000);
    size_t at = 0, got = 0;
    while (at < s->len) {
        size_t n = chunk ? chunk : 1 + next_rand() % 20000;
        if (n > s->len - at)
            n = s->len - at;
        uint8_t *piece = dup_exact(s->bytes + at, n);
        size_t p = 0;
        while (p < n) {
            size_t used;
            struct frame f;
            int r = frame_decoder_feed(&d, piece + p, n - p, &used, &f);
            assert_true(r == 0 || r == 1);
            assert_true(used <= n - p);
            p += used;
            if (r == 1) {
                assert_true(got < s->n);
                fill(expect, s->plen[got], (uint8_t)got);
                check_frame(&f, (uint16_t)got, (uint32_t)got, got, expect, s->plen[got]);
                got++;
            } else {
                assert_int_equal(p, n);
            }
        }
        free(piece);
        at += n;
    }
    assert_int_equal(got, s->n);
    assert_false(frame_decoder_mid_frame(&d));
    free(expect);
    frame_decoder_free(&d);
}

static void test_one_byte_at_a_time(void **state)
{
    (void)state;
    struct stream s;
    make_stream(&s, 12);
    feed_stream(&s, 1);
    free(s.bytes);
}

static void test_back_to_back(void **state)
{
    (void)state;
    struct stream s;
    make_stream(&s, 2);
    /* Both in one buffer: the first feed stops at the end of frame 1. */
    struct frame_decoder d;
    frame_decoder_init(&d, 0);
    struct frame f;
    size_t used;
    uint8_t *b = dup_exact(s.bytes, s.len);
    assert_int_equal(frame_decoder_feed(&d, b, s.len, &used, &f), 1);
    assert_int_equal(used, s.off[1]);
    check_frame(&f, 0, 0, 0, NULL, 0);
    assert_int_equal(frame_decoder_feed(&d, b + used, s.len - used, &used, &f), 1);
    assert_int_equal(used, s.len - s.off[1]);
    assert_int_equal(f.h.id, 1);
    frame_decoder_free(&d);
    free(b);
    /* One-shot decoding walks the same buffer. */
    struct frame g;
    size_t flen;
    assert_int_equal(frame_decode(s.bytes, s.len, FRAME_MAX_PAYLOAD_DEFAULT, &g, &flen), 0);
    assert_int_equal(flen, s.off[1]);
    free(s.bytes);

    make_stream(&s, 64);
    feed_stream(&s, s.len);
    for (int i = 0; i < 20; i++)
        feed_stream(&s, 0);
    feed_stream(&s, FRAME_HEADER_SIZE);
    feed_stream(&s, FRAME_HEADER_SIZE + 1);
    free(s.bytes);
}

/* A buffer of a fetch reply's size is kept for the next frame (no fresh
 * pages per reply); one past the keep limit goes once a small frame comes. */
static void test_buffer_kept_or_released(void **state)
{
    (void)state;
    size_t kept = 4u << 20, huge = 20u << 20, len, used;
    uint8_t *payload = calloc(1, huge);
    struct frame_decoder d;
    struct frame f;
    frame_decoder_init(&d, 0);
    uint8_t *b = make_frame(1, 0, 1, payload, kept, &len);
    assert_int_equal(frame_decoder_feed(&d, b, len, &used, &f), 1);
    free(b);
    uint8_t *buf = d.buf;
    b = make_frame(1, 0, 2, payload, 10, &len);
    assert_int_equal(frame_decoder_feed(&d, b, len, &used, &f), 1);
    free(b);
    assert_ptr_equal(d.buf, buf);
    assert_true(d.cap >= kept);
    b = make_frame(1, 0, 3, payload, huge, &len);
    assert_int_equal(frame_decoder_feed(&d, b, len, &used, &f), 1);
    free(b);
    assert_true(d.cap >= huge);
    b = make_frame(1, 0, 4, payload, 10, &len);
    assert_int_equal(frame_decoder_feed(&d, b, len, &used, &f), 1);
    assert_true(d.cap < huge);
    frame_decoder_free(&d);
    free(b);
    free(payload);
}

/* A payload given as pieces of a file gets the header the same bytes in
 * memory get; a piece past the file's end is refused (-EIO). */
static void test_header_of_file_pieces(void **state)
{
    (void)state;
    char path[] = "/tmp/topicfs-test-frame-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    size_t flen = 200000;
    uint8_t *data = malloc(flen);
    fill(data, flen, 9);
    assert_int_equal(write(fd, data, flen), (ssize_t)flen);
    struct frame_piece p[3] = {{"ab", -1, 0, 2}, {NULL, fd, 17, flen - 17}, {"z", -1, 0, 1}};
    struct iovec iov[3] = {{"ab", 2}, {data + 17, flen - 17}, {"z", 1}};
    uint8_t h1[FRAME_HEADER_SIZE], h2[FRAME_HEADER_SIZE];
    assert_int_equal(frame_header_encode_pieces(h1, 17, 1, 5, p, 3), 0);
    assert_int_equal(frame_header_encode(h2, 17, 1, 5, iov, 3), 0);
    assert_memory_equal(h1, h2, FRAME_HEADER_SIZE);
    struct frame_piece past = {NULL, fd, flen - 1, 2};
    assert_int_equal(frame_header_encode_pieces(h1, 17, 1, 5, &past, 1), -EIO);
    free(data);
    close(fd);
}

/* The header fed, the payload written straight into the decoder's room in
 * pieces of every size: the same frame as feed gives; a damaged payload is
 * refused at its last byte, and stays refused. */
static void test_room_and_filled(void **state)
{
    (void)state;
    size_t plen = 300000, len, used;
    uint8_t *payload = malloc(plen);
    fill(payload, plen, 3);
    uint8_t *b = make_frame(9, 2, 77, payload, plen, &len);
    for (int damaged = 0; damaged < 2; damaged++) {
        if (damaged)
            b[FRAME_HEADER_SIZE + plen / 2] ^= 1;
        struct frame_decoder d;
        struct frame f;
        frame_decoder_init(&d, 0);
        /* A larger frame first: its buffer is kept, and must not widen
         * the room past this frame's end. */
        size_t blen;
        uint8_t *pb = calloc(1, 2 * plen);
        uint8_t *bigger = make_frame(1, 0, 1, pb, 2 * plen, &blen);
        assert_int_equal(frame_decoder_feed(&d, bigger, blen, &used, &f), 1);
        free(bigger);
        free(pb);
        uint8_t *to;
        size_t room, at = FRAME_HEADER_SIZE, step = 1;
        assert_int_equal(frame_decoder_room(&d, &to, &room), 0);
        assert_int_equal(room, 0); /* no header yet: feed it */
        assert_int_equal(frame_decoder_feed(&d, b, FRAME_HEADER_SIZE, &used, &f), 0);
        assert_int_equal(used, FRAME_HEADER_SIZE);
        int r = 0;
        while (r == 0) {
            assert_int_equal(frame_decoder_room(&d, &to, &room), 0);
            assert_true(room > 0 && room <= len - at);
            size_t n = step < room ? step : room;
            memcpy(to, b + at, n);
            at += n;
            step = step * 3 + 1;
            r = frame_decoder_filled(&d, n, &f);
        }
        assert_int_equal(at, len);
        if (damaged) {
            assert_int_equal(r, -EBADMSG);
            assert_int_equal(frame_decoder_room(&d, &to, &room), -EBADMSG);
        } else {
            assert_int_equal(r, 1);
            check_frame(&f, 9, 2, 77, payload, plen);
            /* Between frames there is no room: the next header is fed. */
            assert_int_equal(frame_decoder_room(&d, &to, &room), 0);
            assert_int_equal(room, 0);
        }
        frame_decoder_free(&d);
    }
    /* A frame without payload is whole with its header. */
    uint8_t *e = make_frame(4, 0, 5, NULL, 0, &len);
    struct frame_decoder d;
    struct frame f;
    frame_decoder_init(&d, 0);
    assert_int_equal(frame_decoder_feed(&d, e, len, &used, &f), 1);
    assert_int_equal(f.h.length, 0);
    frame_decoder_free(&d);
    free(e);
    free(b);
    free(payload);
}

/* ----------------------------------------------------------------- payload */

/* Writes one of every field; returns the bytes needed (NULL buf: counts). */
static int write_all(struct payload_writer *w)
{
    static const uint8_t raw[5] = {9, 8, 7, 6, 5};
    payload_put_u8(w, 0xfe);
    payload_put_u16(w, 0xbeef);
    payload_put_u32(w, 0xdeadbeef);
    payload_put_u64(w, 0x0123456789abcdefull);
    payload_put_i64(w, -2);
    payload_put_raw(w, raw, sizeof(raw));
    payload_put_bytes(w, "bytes\0in", 8);
    payload_put_bytes(w, "", 0);
    payload_put_str(w, "orders");
    return payload_put_str(w, "");
}

/* Reads them back: 0 when all were there and right, else the error. */
static int read_all(struct payload_reader *r)
{
    uint8_t u8 = 0, raw[5];
    uint16_t u16 = 0;
    uint32_t u32 = 0, n = 0, n2 = 1;
    uint64_t u64 = 0;
    int64_t i64 = 0;
    const uint8_t *p = NULL, *p2 = NULL;
    char s[16] = "x", e[4] = "x";
    payload_get_u8(r, &u8);
    payload_get_u16(r, &u16);
    payload_get_u32(r, &u32);
    payload_get_u64(r, &u64);
    payload_get_i64(r, &i64);
    payload_get_raw(r, raw, sizeof(raw));
    payload_get_bytes(r, &p, &n);
    payload_get_bytes(r, &p2, &n2);
    payload_get_str(r, s, sizeof(s));
    payload_get_str(r, e, sizeof(e));
    int err = payload_end(r);
    if (err)
        return err;
    assert_int_equal(u8, 0xfe);
    assert_int_equal(u16, 0xbeef);
    assert_int_equal(u32, 0xdeadbeef);
    assert_true(u64 == 0x0123456789abcdefull);
    assert_true(i64 == -2);
    assert_int_equal(raw[0], 9);
    assert_int_equal(raw[4], 5);
    assert_int_equal(n, 8);
    assert_memory_equal(p, "bytes\0in", 8);
    assert_int_equal(n2, 0);
    assert_string_equal(s, "orders");
    assert_string_equal(e, "");
    return 0;
}

static void test_payload_roundtrip(void **state)
{
    (void)state;
    uint8_t buf[128];
    struct payload_writer w;
    payload_writer_init(&w, buf, sizeof(buf));
    assert_int_equal(write_all(&w), 0);
    assert_int_equal(w.len, 1 + 2 + 4 + 8 + 8 + 5 + 12 + 4 + 8 + 2);
    /* Big-endian on the wire. */
    static const uint8_t head[] = {0xfe, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef};
    assert_memory_equal(buf, head, sizeof(head));
    uint8_t *p = dup_exact(buf, w.len);
    struct payload_reader r;
    payload_reader_init(&r, p, w.len);
    assert_int_equal(read_all(&r), 0);
    free(p);
}

static void test_payload_writer_full(void **state)
{
    (void)state;
    uint8_t full[128];
    struct payload_writer w;
    payload_writer_init(&w, full, sizeof(full));
    write_all(&w);
    size_t need = w.len;
    for (size_t cap = 0; cap < need; cap++) {
        uint8_t *b = malloc(cap + 1);
        memset(b, 0xAA, cap + 1);
        payload_writer_init(&w, b, cap);
        assert_int_equal(write_all(&w), -ENOBUFS);
        assert_int_equal(w.err, -ENOBUFS);
        assert_true(w.len <= cap);
        assert_int_equal(b[cap], 0xAA);
        /* Sticky: nothing more is written. */
        size_t len = w.len;
        assert_int_equal(payload_put_u8(&w, 1), -ENOBUFS);
        assert_int_equal(w.len, len);
        /* What was written is a prefix of the full encoding. */
        assert_memory_equal(b, full, w.len);
        free(b);
    }
    char big[70000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    uint8_t b[8];
    payload_writer_init(&w, b, sizeof(b));
    assert_int_equal(payload_put_str(&w, big), -EMSGSIZE);
    assert_int_equal(w.len, 0);
}

static void test_payload_every_truncation(void **state)
{
    (void)state;
    uint8_t buf[128];
    struct payload_writer w;
    payload_writer_init(&w, buf, sizeof(buf));
    write_all(&w);
    for (size_t n = 0; n < w.len; n++) {
        uint8_t *p = dup_exact(buf, n);
        struct payload_reader r;
        payload_reader_init(&r, p, n);
        assert_int_equal(read_all(&r), -EBADMSG);
        assert_true(r.at <= n);
        free(p);
    }
    /* One byte too many. */
    uint8_t *p = dup_exact(buf, w.len + 1);
    struct payload_reader r;
    payload_reader_init(&r, p, w.len + 1);
    assert_int_equal(read_all(&r), -EBADMSG);
    free(p);
}

static void test_payload_bad_lengths(void **state)
{
    (void)state;
    struct payload_reader r;
    const uint8_t *p;
    uint32_t n = 77;
    char s[8] = "keep";

    static const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 1, 2, 3};
    uint8_t *b = dup_exact(huge, sizeof(huge));
    payload_reader_init(&r, b, sizeof(huge));
    assert_int_equal(payload_get_bytes(&r, &p, &n), -EBADMSG);
    assert_int_equal(n, 77);
    assert_int_equal(r.at, 0);
    /* Sticky: even a field that would fit is refused now. */
    uint8_t u8 = 5;
    assert_int_equal(payload_get_u8(&r, &u8), -EBADMSG);
    assert_int_equal(u8, 5);
    free(b);

    static const uint8_t one_over[] = {0, 0, 0, 4, 1, 2, 3};
    b = dup_exact(one_over, sizeof(one_over));
    payload_reader_init(&r, b, sizeof(one_over));
    assert_int_equal(payload_get_bytes(&r, &p, &n), -EBADMSG);
    free(b);

    static const uint8_t str_over[] = {0, 4, 'a', 'b', 'c'};
    b = dup_exact(str_over, sizeof(str_over));
    payload_reader_init(&r, b, sizeof(str_over));
    assert_int_equal(payload_get_str(&r, s, sizeof(s)), -EBADMSG);
    assert_string_equal(s, "keep");
    free(b);

    static const uint8_t str_nul[] = {0, 3, 'a', 0, 'c'};
    b = dup_exact(str_nul, sizeof(str_nul));
    payload_reader_init(&r, b, sizeof(str_nul));
    assert_int_equal(payload_get_str(&r, s, sizeof(s)), -EBADMSG);
    assert_string_equal(s, "keep");
    free(b);

    /* A string that does not fit the caller's buffer (with its NUL). */
    static const uint8_t str_long[] = {0, 8, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'};
    b = dup_exact(str_long, sizeof(str_long));
    payload_reader_init(&r, b, sizeof(str_long));
    assert_int_equal(payload_get_str(&r, s, sizeof(s)), -EBADMSG);
    payload_reader_init(&r, b, sizeof(str_long));
    char s9[9];
    assert_int_equal(payload_get_str(&r, s9, sizeof(s9)), 0);
    assert_string_equal(s9, "abcdefgh");
    assert_int_equal(payload_end(&r), 0);
    free(b);

    /* An empty payload. */
    payload_reader_init(&r, "", 0);
    assert_int_equal(payload_end(&r), 0);
    assert_int_equal(payload_get_u8(&r, &u8), -EBADMSG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_encode_limits),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_every_bit_flip),
        cmocka_unit_test(test_magic_and_version),
        cmocka_unit_test(test_oversize_before_allocation),
        cmocka_unit_test(test_one_byte_at_a_time),
        cmocka_unit_test(test_back_to_back),
        cmocka_unit_test(test_buffer_kept_or_released),
        cmocka_unit_test(test_room_and_filled),
        cmocka_unit_test(test_header_of_file_pieces),
        cmocka_unit_test(test_payload_roundtrip),
        cmocka_unit_test(test_payload_writer_full),
        cmocka_unit_test(test_payload_every_truncation),
        cmocka_unit_test(test_payload_bad_lengths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
