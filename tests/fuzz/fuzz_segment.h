/* fuzz_segment.h - writing fuzzed segment files, shared by fuzz_segment.c
 * and fuzz_recovery.c. */
#ifndef TOPICFS_FUZZ_SEGMENT_H
#define TOPICFS_FUZZ_SEGMENT_H

#include <xxhash.h>

#include "batch.h"
#include "fuzz_util.h"
#include "segment.h"

/* Gives every batch that decodes a correct checksum (and length field where
 * the rest of the file is shorter), so the fuzzer gets past XXH3 and tries
 * the structural checks: offsets and positions that must follow on. */
static inline void fuzz_fix_checksums(uint8_t *log, size_t len)
{
    size_t pos = 0;
    struct batch_header h;
    while (len - pos >= BATCH_HEADER_SIZE && !batch_header_decode(log + pos, &h)) {
        if (h.length > len - pos)
            break;
        uint64_t sum = XXH3_64bits(log + pos + 16, h.length - 16);
        memcpy(log + pos + 8, &sum, 8);
        pos += h.length;
    }
}

/* Writes a segment's .log (checksums fixed if asked), .index, .timeindex;
 * a NULL part is not written. */
static inline void fuzz_write_segment(const char *dir, uint64_t base, const uint8_t *log,
                                      size_t log_len, int fix, const uint8_t *oix, size_t oix_len,
                                      const uint8_t *tix, size_t tix_len)
{
    char name[64];
    if (log) {
        uint8_t *copy = malloc(log_len ? log_len : 1);
        memcpy(copy, log, log_len);
        if (fix)
            fuzz_fix_checksums(copy, log_len);
        snprintf(name, sizeof(name), "%020llu.log", (unsigned long long)base);
        fuzz_write_file(dir, name, copy, log_len);
        free(copy);
    }
    if (oix) {
        snprintf(name, sizeof(name), "%020llu.index", (unsigned long long)base);
        fuzz_write_file(dir, name, oix, oix_len);
    }
    if (tix) {
        snprintf(name, sizeof(name), "%020llu.timeindex", (unsigned long long)base);
        fuzz_write_file(dir, name, tix, tix_len);
    }
}

#endif
