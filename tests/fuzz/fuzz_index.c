/* fuzz_index.c - loading, validating and searching offset and time indexes.
 *
 * File set: tag 'o' is the .index file, 't' the .timeindex, 'k' lookup keys
 * (u64 each), 'a' entries to append, 'n' the .log size validation assumes.
 * Torn tails must be dropped at load; when an index validates, its binary
 * searches must agree with a linear scan; appends through
 * time_index_append must keep the time index valid. */
#include "fuzz_util.h"
#include "index.h"

static ssize_t scan_offset(const struct offset_index *ix, uint32_t rel)
{
    ssize_t best = -1;
    for (size_t i = 0; i < ix->n; i++)
        if (ix->e[i].rel_offset <= rel)
            best = (ssize_t)i;
    return best;
}

static ssize_t scan_pos(const struct offset_index *ix, uint64_t pos)
{
    ssize_t best = -1;
    for (size_t i = 0; i < ix->n; i++)
        if (ix->e[i].stream_pos <= pos)
            best = (ssize_t)i;
    return best;
}

static ssize_t scan_time(const struct time_index *ix, int64_t ts)
{
    ssize_t best = -1;
    for (size_t i = 0; i < ix->n; i++)
        if (ix->e[i].timestamp < ts)
            best = (ssize_t)i;
    return best;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = fuzz_dir(1);
    struct fuzz_in in = {data, size}, keys = {NULL, 0}, adds = {NULL, 0};
    uint64_t log_size = UINT64_MAX;
    uint8_t tag;
    const uint8_t *p;
    size_t len;
    size_t oix_bytes = 0, tix_bytes = 0;
    fuzz_write_file(dir, "x.index", "", 0);
    fuzz_write_file(dir, "x.timeindex", "", 0);
    while (fuzz_entry(&in, &tag, &p, &len)) {
        if (tag == 'o') {
            fuzz_write_file(dir, "x.index", p, len);
            oix_bytes = len;
        } else if (tag == 't') {
            fuzz_write_file(dir, "x.timeindex", p, len);
            tix_bytes = len;
        } else if (tag == 'k') {
            keys = (struct fuzz_in){p, len};
        } else if (tag == 'a') {
            adds = (struct fuzz_in){p, len};
        } else if (tag == 'n') {
            struct fuzz_in v = {p, len};
            log_size = fuzz_u64(&v);
        }
    }
    char path[1024];
    struct offset_index oix;
    struct time_index tix;
    snprintf(path, sizeof(path), "%s/x.index", dir);
    FUZZ_CHECK(offset_index_open(&oix, path) == 0);
    FUZZ_CHECK(oix.n == oix_bytes / sizeof(struct offset_index_entry));
    snprintf(path, sizeof(path), "%s/x.timeindex", dir);
    FUZZ_CHECK(time_index_open(&tix, path) == 0);
    FUZZ_CHECK(tix.n == tix_bytes / sizeof(struct time_index_entry));

    int ovalid = offset_index_validate(&oix, log_size) == 0;
    int tvalid = time_index_validate(&tix) == 0;
    while (keys.n) {
        uint64_t k = fuzz_u64(&keys);
        if (ovalid) {
            FUZZ_CHECK(offset_index_find_offset(&oix, (uint32_t)k) ==
                       scan_offset(&oix, (uint32_t)k));
            FUZZ_CHECK(offset_index_find_pos(&oix, k) == scan_pos(&oix, k));
        } else {
            (void)offset_index_find_offset(&oix, (uint32_t)k);
            (void)offset_index_find_pos(&oix, k);
        }
        if (tvalid)
            FUZZ_CHECK(time_index_find(&tix, (int64_t)k) == scan_time(&tix, (int64_t)k));
        else
            (void)time_index_find(&tix, (int64_t)k);
    }
    while (adds.n >= 16) {
        struct time_index_entry e = {.timestamp = (int64_t)fuzz_u64(&adds)};
        e.rel_offset = fuzz_u32(&adds);
        e.reserved = fuzz_u32(&adds);
        FUZZ_CHECK(time_index_append(&tix, &e) == 0);
        if (tvalid)
            FUZZ_CHECK(time_index_validate(&tix) == 0);
    }
    size_t half = oix.n / 2;
    FUZZ_CHECK(offset_index_truncate(&oix, half) == 0 && oix.n == half);
    if (ovalid)
        FUZZ_CHECK(offset_index_validate(&oix, log_size) == 0);
    offset_index_close(&oix);
    time_index_close(&tix);
    return 0;
}
