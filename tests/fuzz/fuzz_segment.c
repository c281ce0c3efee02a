/* fuzz_segment.c - opening (and recovering) an arbitrary segment.
 *
 * File set: 'l' the .log, 'o' the .index, 't' the .timeindex, 'p'
 * parameters: u64 validate_from, u64 expected base position, u8 flags (bit 0:
 * fix batch checksums before writing the .log), then u64 lookup keys.
 *
 * After segment_open() the validated prefix must be a chain of batches
 * whose offsets grow and positions follow on, ending exactly at size,
 * next_offset and end_pos; with validate_from 0 every one of them must pass
 * its checksum; the indexes must validate; and the lookups must find the
 * batch a linear walk finds. */
#include "fuzz_segment.h"

#include <sys/stat.h>

struct walked {
    uint64_t pos;
    struct batch_header h;
};

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
    int r = segment_open(dir, base, expect_pos, validate_from, &s);
    if (r)
        return 0;
    struct stat st;
    FUZZ_CHECK(fstat(s->fd, &st) == 0 && (uint64_t)st.st_size == s->size);
    FUZZ_CHECK(offset_index_validate(&s->oix, s->size ? s->size : 1) == 0);
    FUZZ_CHECK(time_index_validate(&s->tix) == 0);

    /* Walk the validated prefix. */
    size_t n = 0, cap = 16;
    struct walked *w = malloc(cap * sizeof(*w));
    uint64_t pos = 0, next = s->base_offset, end = s->base_pos;
    while (pos < s->size) {
        struct batch_header h;
        FUZZ_CHECK(segment_read_header(s, pos, &h) == 0);
        FUZZ_CHECK(h.base_offset >= next && h.base_pos == end);
        FUZZ_CHECK(pos + h.length <= s->size);
        if (validate_from == 0) {
            uint8_t *b = malloc(h.length);
            FUZZ_CHECK(pread(s->fd, b, h.length, (off_t)pos) == (ssize_t)h.length);
            FUZZ_CHECK(batch_verify(b, h.length) == 0);
            free(b);
        }
        if (n == cap)
            w = realloc(w, (cap *= 2) * sizeof(*w));
        w[n++] = (struct walked){pos, h};
        next = batch_next_offset(&h);
        end = batch_end_pos(&h);
        pos += h.length;
    }
    FUZZ_CHECK(pos == s->size && next == s->next_offset && end == s->end_pos);
    for (size_t i = 0; i < s->oix.n; i++)
        FUZZ_CHECK(s->oix.e[i].file_pos < s->size);

    for (int k = 0; k < 16 && (params.n || k < 4); k++) {
        uint64_t key = params.n ? fuzz_u64(&params) : (n ? w[(size_t)k * 7 % n].h.base_pos + k : k);
        uint64_t fp;
        struct batch_header h;
        size_t want;
        /* by stream position */
        for (want = 0; want < n && key >= batch_end_pos(&w[want].h); want++)
            ;
        r = segment_find_pos(s, key, &fp, &h);
        if (want < n)
            FUZZ_CHECK(r == 0 && fp == w[want].pos);
        else
            FUZZ_CHECK(r == -ENOENT);
        /* by offset */
        for (want = 0; want < n && key >= batch_next_offset(&w[want].h); want++)
            ;
        r = segment_find_offset(s, key, &fp, &h);
        if (want < n)
            FUZZ_CHECK(r == 0 && fp == w[want].pos);
        else
            FUZZ_CHECK(r == -ENOENT);
        /* by time: some batch at or after the time */
        r = segment_find_time(s, (int64_t)key, &fp, &h);
        FUZZ_CHECK(r == 0 || r == -ENOENT);
        if (r == 0)
            FUZZ_CHECK(h.timestamp >= (int64_t)key && fp < s->size);
    }
    free(w);
    segment_close(s);
    return 0;
}
