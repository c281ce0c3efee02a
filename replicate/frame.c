/* frame.c - the inter-broker frame codec and the payload field codec
 * (layout, errors and invariants in frame.h).
 *
 * One function checks a header (frame_header_decode) and one computes a
 * checksum (sum_begin, then the payload): the one-shot decoder, the
 * incremental decoder and the encoder all go through them, so they cannot
 * disagree on what a valid frame is. The encoder (header_of) takes the
 * payload as pieces of memory or of files; a file piece is read for the
 * checksum in cache-sized chunks and later sent from the file itself.
 *
 * The incremental decoder copies the header into its own 36 bytes and the
 * payload into a buffer that grows with what has arrived (doubling, capped
 * at the announced length); the buffer is kept between frames (a
 * follower's stream of fetch replies reuses one buffer instead of faulting
 * fresh pages in for each) and released when it is above KEEP_BUF_BYTES and
 * much larger than the frame at hand, so one frame larger than any fetch
 * reply does not pin its memory for the life of a connection. */
#include "frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "hash.h"

/* Bytes [0, 24): the header fields the checksum covers. */
#define CHECKED_PREFIX 24
#define HEADER_CHECK_AT 32
/* A decoder buffer above this, and four times the next frame, is released
 * (fetch replies stay below it: replica.fetch.response.max.bytes, 10 MiB). */
#define KEEP_BUF_BYTES (16u << 20)

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)get16(p) << 16 | get16(p + 2);
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static uint32_t header_check_of(const uint8_t *hdr)
{
    return (uint32_t)XXH3_64bits(hdr, HEADER_CHECK_AT);
}

/* The payload checksum starts with the checked header prefix. */
static void sum_begin(XXH3_state_t *st, const uint8_t *prefix)
{
    XXH3_INITSTATE(st);
    XXH3_64bits_reset(st);
    hash_bulk_update(st, prefix, CHECKED_PREFIX);
}

/* A file piece's bytes, read in chunks that stay in the CPU's cache, into
 * the checksum: 0, -EIO when the file ends before the piece does, or the
 * errno of pread. */
#define HASH_CHUNK (64u << 10)

static int hash_file_piece(XXH3_state_t *st, const struct frame_piece *p)
{
    uint8_t chunk[HASH_CHUNK];
    for (size_t at = 0; at < p->len;) {
        size_t want = p->len - at < HASH_CHUNK ? p->len - at : HASH_CHUNK;
        ssize_t n = pread(p->fd, chunk, want, (off_t)(p->pos + at));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EIO;
        hash_bulk_update(st, chunk, (size_t)n);
        at += (size_t)n;
    }
    return 0;
}

/* The header for a payload of n pieces (memory or file), the one encoder
 * behind both frame_header_encode functions: the checksum is XXH3-64 of
 * the checked header prefix followed by the payload, in order. */
static int header_of(uint8_t hdr[FRAME_HEADER_SIZE], uint16_t type, uint32_t flags, uint64_t id,
                     const struct frame_piece *p, int n)
{
    uint64_t total = 0;
    for (int i = 0; i < n; i++)
        total += p[i].len;
    if (total > UINT32_MAX)
        return -EMSGSIZE;
    put32(hdr, FRAME_MAGIC);
    put16(hdr + 4, FRAME_VERSION);
    put16(hdr + 6, type);
    put32(hdr + 8, flags);
    put32(hdr + 12, (uint32_t)total);
    put64(hdr + 16, id);
    XXH3_state_t st;
    sum_begin(&st, hdr);
    for (int i = 0; i < n; i++) {
        if (!p[i].len)
            continue;
        if (p[i].mem) {
            hash_bulk_update(&st, p[i].mem, p[i].len);
        } else {
            int r = hash_file_piece(&st, &p[i]);
            if (r < 0)
                return r;
        }
    }
    put64(hdr + 24, XXH3_64bits_digest(&st));
    put32(hdr + HEADER_CHECK_AT, header_check_of(hdr));
    return 0;
}

int frame_header_encode_pieces(uint8_t hdr[FRAME_HEADER_SIZE], uint16_t type, uint32_t flags,
                               uint64_t id, const struct frame_piece *p, int n)
{
    return header_of(hdr, type, flags, id, p, n);
}

int frame_header_encode(uint8_t hdr[FRAME_HEADER_SIZE], uint16_t type, uint32_t flags, uint64_t id,
                        const struct iovec *iov, int iovcnt)
{
    struct frame_piece small[8] = {{NULL, -1, 0, 0}}, *p = small;
    if (iovcnt > 8 && !(p = malloc(sizeof(*p) * (size_t)iovcnt)))
        return -ENOMEM;
    for (int i = 0; i < iovcnt; i++)
        p[i] = frame_piece_mem(iov[i].iov_base, iov[i].iov_len);
    int r = header_of(hdr, type, flags, id, p, iovcnt);
    if (p != small)
        free(p);
    return r;
}

ssize_t frame_encode(uint8_t *buf, size_t cap, uint16_t type, uint32_t flags, uint64_t id,
                     const void *payload, size_t len)
{
    if (len > UINT32_MAX)
        return -EMSGSIZE;
    if (cap < FRAME_HEADER_SIZE || cap - FRAME_HEADER_SIZE < len)
        return -ENOBUFS;
    struct iovec iov = {(void *)payload, len};
    int r = frame_header_encode(buf, type, flags, id, &iov, 1);
    if (r < 0)
        return r;
    if (len)
        memcpy(buf + FRAME_HEADER_SIZE, payload, len);
    return (ssize_t)(FRAME_HEADER_SIZE + len);
}

int frame_header_decode(const uint8_t hdr[FRAME_HEADER_SIZE], size_t max_payload,
                        struct frame_header *h)
{
    if (get32(hdr) != FRAME_MAGIC)
        return -EBADMSG;
    if (get16(hdr + 4) != FRAME_VERSION)
        return -EPROTO;
    if (get32(hdr + HEADER_CHECK_AT) != header_check_of(hdr))
        return -EBADMSG;
    h->version = get16(hdr + 4);
    h->type = get16(hdr + 6);
    h->flags = get32(hdr + 8);
    h->length = get32(hdr + 12);
    h->id = get64(hdr + 16);
    h->checksum = get64(hdr + 24);
    if (h->length > max_payload)
        return -EMSGSIZE;
    return 0;
}

static int payload_ok(const uint8_t *hdr, const struct frame_header *h, const uint8_t *payload)
{
    XXH3_state_t st;
    sum_begin(&st, hdr);
    if (h->length)
        hash_bulk_update(&st, payload, h->length);
    return XXH3_64bits_digest(&st) == h->checksum ? 0 : -EBADMSG;
}

int frame_decode(const uint8_t *buf, size_t len, size_t max_payload, struct frame *f,
                 size_t *frame_len)
{
    if (len < FRAME_HEADER_SIZE)
        return -ENODATA;
    int r = frame_header_decode(buf, max_payload, &f->h);
    if (r < 0)
        return r;
    if (len - FRAME_HEADER_SIZE < f->h.length)
        return -ENODATA;
    f->payload = buf + FRAME_HEADER_SIZE;
    r = payload_ok(buf, &f->h, f->payload);
    if (r < 0)
        return r;
    *frame_len = FRAME_HEADER_SIZE + f->h.length;
    return 0;
}

void frame_decoder_init(struct frame_decoder *d, size_t max_payload)
{
    memset(d, 0, sizeof(*d));
    d->max_payload = max_payload ? max_payload : FRAME_MAX_PAYLOAD_DEFAULT;
}

void frame_decoder_free(struct frame_decoder *d)
{
    free(d->buf);
    d->buf = NULL;
    d->cap = 0;
}

int frame_decoder_mid_frame(const struct frame_decoder *d)
{
    return d->hdr_have > 0;
}

/* Room for `want` payload bytes (want <= the frame's length). */
static int reserve(struct frame_decoder *d, size_t want)
{
    if (want <= d->cap)
        return 0;
    size_t ncap = d->cap ? d->cap : 4096;
    while (ncap < want)
        ncap *= 2;
    if (ncap > d->h.length)
        ncap = d->h.length;
    uint8_t *n = realloc(d->buf, ncap);
    if (!n)
        return -ENOMEM;
    d->buf = n;
    d->cap = ncap;
    return 0;
}

/* The header is whole: check it, start the payload. */
static int header_done(struct frame_decoder *d)
{
    int r = frame_header_decode(d->hdr, d->max_payload, &d->h);
    if (r < 0)
        return d->err = r;
    d->have = 0;
    if (d->cap > KEEP_BUF_BYTES && d->cap / 4 > d->h.length)
        frame_decoder_free(d);
    return 0;
}

int frame_decoder_room(struct frame_decoder *d, uint8_t **at, size_t *room)
{
    *room = 0;
    if (d->err)
        return d->err;
    if (d->hdr_have < FRAME_HEADER_SIZE || d->have == d->h.length)
        return 0;
    if (d->have == d->cap) {
        int r = reserve(d, d->have + 1);
        if (r < 0)
            return d->err = r;
    }
    /* A buffer kept from a larger frame: the room still ends with this one. */
    size_t end = d->cap < d->h.length ? d->cap : d->h.length;
    *at = d->buf + d->have;
    *room = end - d->have;
    return 0;
}

int frame_decoder_filled(struct frame_decoder *d, size_t n, struct frame *f)
{
    d->have += n;
    if (d->have < d->h.length)
        return 0;
    int r = payload_ok(d->hdr, &d->h, d->buf);
    if (r < 0)
        return d->err = r;
    static const uint8_t empty[1];
    f->h = d->h;
    f->payload = d->buf ? d->buf : empty; /* never NULL, even for no payload */
    d->hdr_have = 0;
    return 1;
}

int frame_decoder_feed(struct frame_decoder *d, const uint8_t *data, size_t len, size_t *used,
                       struct frame *f)
{
    size_t at = 0;
    *used = 0;
    if (d->err)
        return d->err;
    if (d->hdr_have < FRAME_HEADER_SIZE) {
        size_t n = FRAME_HEADER_SIZE - d->hdr_have;
        if (n > len)
            n = len;
        memcpy(d->hdr + d->hdr_have, data, n);
        d->hdr_have += n;
        at = *used = n;
        if (d->hdr_have < FRAME_HEADER_SIZE)
            return 0;
        int r = header_done(d);
        if (r < 0)
            return r;
    }
    for (;;) {
        size_t n = 0;
        if (d->have < d->h.length) {
            if (at == len)
                return 0; /* all of data taken, more needed */
            uint8_t *to;
            size_t room;
            int r = frame_decoder_room(d, &to, &room);
            if (r < 0)
                return r;
            n = room < len - at ? room : len - at;
            memcpy(to, data + at, n);
            *used = at += n;
        }
        int r = frame_decoder_filled(d, n, f);
        if (r)
            return r;
    }
}

/* ---------------------------------------------------------------- payload */

void payload_writer_init(struct payload_writer *w, void *buf, size_t cap)
{
    w->buf = buf;
    w->cap = cap;
    w->len = 0;
    w->err = 0;
}

/* Room for n more bytes, or the sticky error. */
static int room(struct payload_writer *w, size_t n)
{
    if (w->err)
        return w->err;
    if (w->cap - w->len < n)
        return w->err = -ENOBUFS;
    return 0;
}

int payload_put_u8(struct payload_writer *w, uint8_t v)
{
    return payload_put_raw(w, &v, 1);
}

int payload_put_u16(struct payload_writer *w, uint16_t v)
{
    uint8_t b[2];
    put16(b, v);
    return payload_put_raw(w, b, 2);
}

int payload_put_u32(struct payload_writer *w, uint32_t v)
{
    uint8_t b[4];
    put32(b, v);
    return payload_put_raw(w, b, 4);
}

int payload_put_u64(struct payload_writer *w, uint64_t v)
{
    uint8_t b[8];
    put64(b, v);
    return payload_put_raw(w, b, 8);
}

int payload_put_i64(struct payload_writer *w, int64_t v)
{
    return payload_put_u64(w, (uint64_t)v);
}

int payload_put_raw(struct payload_writer *w, const void *p, size_t n)
{
    int r = room(w, n);
    if (r < 0)
        return r;
    if (n)
        memcpy(w->buf + w->len, p, n);
    w->len += n;
    return 0;
}

int payload_put_bytes(struct payload_writer *w, const void *p, size_t n)
{
    if (w->err)
        return w->err;
    if (n > UINT32_MAX)
        return w->err = -EMSGSIZE;
    int r = room(w, 4 + n);
    if (r < 0)
        return r;
    payload_put_u32(w, (uint32_t)n);
    return payload_put_raw(w, p, n);
}

int payload_put_str(struct payload_writer *w, const char *s)
{
    if (w->err)
        return w->err;
    size_t n = strlen(s);
    if (n > UINT16_MAX)
        return w->err = -EMSGSIZE;
    int r = room(w, 2 + n);
    if (r < 0)
        return r;
    payload_put_u16(w, (uint16_t)n);
    return payload_put_raw(w, s, n);
}

void payload_reader_init(struct payload_reader *r, const void *p, size_t len)
{
    r->p = p;
    r->len = len;
    r->at = 0;
    r->err = 0;
}

/* The next n bytes (and moves past them), or NULL with the sticky error. */
static const uint8_t *take(struct payload_reader *r, size_t n)
{
    if (r->err)
        return NULL;
    if (r->len - r->at < n) {
        r->err = -EBADMSG;
        return NULL;
    }
    const uint8_t *p = r->p + r->at;
    r->at += n;
    return p;
}

int payload_get_u8(struct payload_reader *r, uint8_t *v)
{
    const uint8_t *p = take(r, 1);
    if (!p)
        return r->err;
    *v = p[0];
    return 0;
}

int payload_get_u16(struct payload_reader *r, uint16_t *v)
{
    const uint8_t *p = take(r, 2);
    if (!p)
        return r->err;
    *v = get16(p);
    return 0;
}

int payload_get_u32(struct payload_reader *r, uint32_t *v)
{
    const uint8_t *p = take(r, 4);
    if (!p)
        return r->err;
    *v = get32(p);
    return 0;
}

int payload_get_u64(struct payload_reader *r, uint64_t *v)
{
    const uint8_t *p = take(r, 8);
    if (!p)
        return r->err;
    *v = get64(p);
    return 0;
}

int payload_get_i64(struct payload_reader *r, int64_t *v)
{
    uint64_t u;
    int e = payload_get_u64(r, &u);
    if (e < 0)
        return e;
    *v = (int64_t)u;
    return 0;
}

int payload_get_raw(struct payload_reader *r, void *out, size_t n)
{
    const uint8_t *p = take(r, n);
    if (!p)
        return r->err;
    if (n)
        memcpy(out, p, n);
    return 0;
}

int payload_get_bytes(struct payload_reader *r, const uint8_t **p, uint32_t *n)
{
    size_t start = r->at;
    uint32_t len;
    if (payload_get_u32(r, &len) < 0)
        return r->err;
    const uint8_t *b = take(r, len);
    if (!b) {
        r->at = start;
        return r->err;
    }
    *p = b;
    *n = len;
    return 0;
}

int payload_get_str(struct payload_reader *r, char *out, size_t cap)
{
    size_t start = r->at;
    uint16_t len;
    if (payload_get_u16(r, &len) < 0)
        return r->err;
    const uint8_t *b = take(r, len);
    if (!b || len >= cap || memchr(b, 0, len)) {
        r->at = start;
        return r->err = -EBADMSG;
    }
    memcpy(out, b, len);
    out[len] = 0;
    return 0;
}

int payload_end(struct payload_reader *r)
{
    if (!r->err && r->at != r->len)
        r->err = -EBADMSG;
    return r->err;
}
