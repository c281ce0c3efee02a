/* fuzz_segment.c - opening (and recovering) an arbitrary segment.
 *
 * File set: 'l' the .log, 'o' the .index, 't' the .timeindex, 'p'
 * parameters: u64 validate_from, u64 expected base position, u8 flags (bit 0:
 * fix batch checksums before writing the .log), then u64 lookup keys.
 *
 * After segment_open() the indexes must validate and point inside the log.
 * With validate_from 0 (nothing trusted) the log must be cut to a chain of
 * batches that pass their checksums, whose offsets grow and positions
 * follow on, ending exactly at size, next_offset and end_pos, and the
 * lookups must find the batch a linear walk finds; with a trusted part they
 * must answer a batch, ENOENT or EIO. A batch a lookup answers is always
 * whole, verified, outside every bad range, and no damaged offset or
 * position lies between the key and it (damage is refused, never skipped). */
#include "fuzz_segment.h"

#include <fcntl.h>
#include <sys/stat.h>

struct walked {
    uint64_t pos;
    struct batch_header h;
};

/* Whatever a lookup answers was verified: a whole batch that passes its
 * checksum, outside every bad range. */
static void check_served(const struct segment *s, int fd, int r, uint64_t fp,
                         const struct batch_header *h)
{
    if (r)
        return;
    FUZZ_CHECK(s->verified && !segment_bad_at(s, SEG_BY_FILE, fp));
    FUZZ_CHECK(fp + h->length <= s->size);
    uint8_t *b = malloc(h->length);
    FUZZ_CHECK(pread(fd, b, h->length, (off_t)fp) == (ssize_t)h->length);
    FUZZ_CHECK(batch_verify(b, h->length) == 0);
    free(b);
}

/* A lookup by offset (or stream position) that answers a batch starting
 * after the key skipped nothing damaged: no bad range holds offsets
 * (positions) between the key and that batch. */
static void check_no_skip(const struct segment *s, int r, uint64_t key, int by_offset,
                          const struct batch_header *h)
{
    if (r)
        return;
    uint64_t to = by_offset ? h->base_offset : h->base_pos;
    for (size_t i = 0; i < s->nbad; i++) {
        const struct bad_range *b = &s->bad[i];
        uint64_t lo = by_offset ? b->offset : b->pos, hi = by_offset ? b->offset_end : b->pos_end;
        FUZZ_CHECK(lo >= hi || hi <= key || lo >= to);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = fuzz_dir(1);
    struct fuzz_in in = {data, size}, params = {NULL, 0};
    const uint8_t *log = NULL, *oix = NULL, *tix = NULL, *p;
    size_t log_len = 0, oix_len = 0, tix_len = 0, len;
    uint8_t tag;
    while (fuzz_entry(&in, &tag, &p, &len)) {
        if (tag == 'l')
            log = p, log_len = len;
        else if (tag == 'o')
            oix = p, oix_len = len;
        else if (tag == 't')
            tix = p, tix_len = len;
        else if (tag == 'p')
            params = (struct fuzz_in){p, len};
    }
    uint64_t validate_from = fuzz_u64(&params);
    uint64_t expect_pos = fuzz_u64(&params);
    int fix = fuzz_u8(&params) & 1;
    const uint64_t base = 0;
    fuzz_write_segment(dir, base, log ? log : (const uint8_t *)"", log_len, fix, oix, oix_len, tix,
                       tix_len);

    struct segment *s;
    struct segment_trust trust = {validate_from, UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX, 1};
    int r = segment_open(dir, base, expect_pos, &trust, &s);
    if (r)
        return 0;
    FUZZ_CHECK(offset_index_validate(&s->oix, s->size ? s->size : 1) == 0);
    FUZZ_CHECK(time_index_validate(&s->tix) == 0);
    for (size_t i = 0; i < s->oix.n; i++)
        FUZZ_CHECK(s->oix.e[i].file_pos < s->size);
    /* The .log as the segment left it, read through a descriptor of our own. */
    char path[1100];
    segment_path(path, sizeof(path), dir, base, ".log");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    FUZZ_CHECK(fd >= 0 && fstat(fd, &st) == 0);
    /* With nothing trusted, everything was verified and the log cut at the
     * first bad batch: what stays is a chain of good batches. */
    int strict = validate_from == 0;
    size_t n = 0, cap = 16;
    struct walked *w = malloc(cap * sizeof(*w));
    if (strict) {
        FUZZ_CHECK((uint64_t)st.st_size == s->size);
        uint64_t pos = 0, next = s->base_offset, end = s->base_pos;
        while (pos < s->size) {
            uint8_t hb[BATCH_HEADER_SIZE];
            struct batch_header h;
            FUZZ_CHECK(pread(fd, hb, sizeof(hb), (off_t)pos) == (ssize_t)sizeof(hb));
            FUZZ_CHECK(batch_header_decode(hb, &h) == 0);
            FUZZ_CHECK(h.base_offset >= next && h.base_pos == end);
            FUZZ_CHECK(pos + h.length <= s->size);
            uint8_t *b = malloc(h.length);
            FUZZ_CHECK(pread(fd, b, h.length, (off_t)pos) == (ssize_t)h.length);
            FUZZ_CHECK(batch_verify(b, h.length) == 0);
            free(b);
            if (n == cap)
                w = realloc(w, (cap *= 2) * sizeof(*w));
            w[n++] = (struct walked){pos, h};
            next = batch_next_offset(&h);
            end = batch_end_pos(&h);
            pos += h.length;
        }
        FUZZ_CHECK(pos == s->size && next == s->next_offset && end == s->end_pos);
    }

    for (int k = 0; k < 16 && (params.n || k < 4); k++) {
        uint64_t key = params.n ? fuzz_u64(&params) : (n ? w[(size_t)k * 7 % n].h.base_pos + k : k);
        uint64_t fp;
        struct batch_header h;
        size_t want;
        /* by stream position, by offset: the batch a linear walk finds */
        for (want = 0; want < n && key >= batch_end_pos(&w[want].h); want++)
            ;
        r = segment_find_pos(s, key, &fp, &h);
        check_served(s, fd, r, fp, &h);
        check_no_skip(s, r, key, 0, &h);
        if (strict)
            FUZZ_CHECK(want < n ? r == 0 && fp == w[want].pos : r == -ENOENT);
        else
            FUZZ_CHECK(r == -ENOENT || r == -EIO || (r == 0 && key < batch_end_pos(&h)));
        for (want = 0; want < n && key >= batch_next_offset(&w[want].h); want++)
            ;
        r = segment_find_offset(s, key, &fp, &h);
        check_served(s, fd, r, fp, &h);
        check_no_skip(s, r, key, 1, &h);
        if (strict)
            FUZZ_CHECK(want < n ? r == 0 && fp == w[want].pos : r == -ENOENT);
        else
            FUZZ_CHECK(r == -ENOENT || r == -EIO || (r == 0 && key < batch_next_offset(&h)));
        /* by time: some batch at or after the time */
        r = segment_find_time(s, (int64_t)key, &fp, &h);
        FUZZ_CHECK(r == 0 || r == -ENOENT || (!strict && r == -EIO));
        if (r == 0)
            FUZZ_CHECK(h.timestamp >= (int64_t)key && fp < s->size);
        check_served(s, fd, r, fp, &h);
    }
    close(fd);
    free(w);
    segment_close(s);
    return 0;
}
