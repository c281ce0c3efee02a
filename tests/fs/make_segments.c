/* make_segments.c - writes a partition directory of N one-batch segments
 * quickly, for the descriptor tests (test_descriptors.py):
 *
 *   make_segments DIR N
 *
 * Segment i holds the one record "seg-<i, 7 digits>\n" at offset i. Each
 * .log gets its .index and .timeindex (one entry each), and the recovery
 * point names the end of the last segment, as partition_sync() would leave
 * them (the format of partition.c: five little-endian u64, the fifth the
 * XXH3 of the first four). Nothing is fsync'd: the test runs on a scratch
 * dir. Any files already in DIR are left alone; DIR must be empty. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "batch.h"
#include "index.h"
#include "segment.h"

#define VALUE_LEN 12

static int write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    ssize_t n = len ? write(fd, data, len) : 0;
    close(fd);
    return n == (ssize_t)len ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s DIR N\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    uint64_t n = strtoull(argv[2], NULL, 10);
    struct batch_builder b;
    uint8_t batch[256];
    char path[4096], value[32];
    size_t len = 0;
    batch_builder_init(&b);
    for (uint64_t i = 0; i < n; i++) {
        const struct iovec *iov;
        int iovcnt;
        snprintf(value, sizeof(value), "seg-%07" PRIu64 "\n", i);
        batch_builder_reset(&b);
        if (batch_builder_add_record(&b, VALUE_LEN, -1) ||
            batch_builder_add_values(&b, value, VALUE_LEN) ||
            batch_builder_seal(&b, BATCH_CODEC_NONE, i, i * VALUE_LEN, 1700000000000 + (int64_t)i,
                               0, &iov, &iovcnt, &len))
            return 1;
        size_t at = 0;
        for (int k = 0; k < iovcnt; k++) {
            memcpy(batch + at, iov[k].iov_base, iov[k].iov_len);
            at += iov[k].iov_len;
        }
        struct offset_index_entry oe = {
            .rel_offset = 0, .file_pos = 0, .stream_pos = i * VALUE_LEN};
        struct time_index_entry te = {.timestamp = 1700000000000 + (int64_t)i, .rel_offset = 0};
        segment_path(path, sizeof(path), dir, i, ".log");
        if (write_file(path, batch, len))
            goto fail;
        segment_path(path, sizeof(path), dir, i, ".index");
        if (write_file(path, &oe, sizeof(oe)))
            goto fail;
        segment_path(path, sizeof(path), dir, i, ".timeindex");
        if (write_file(path, &te, sizeof(te)))
            goto fail;
    }
    uint64_t rp[5] = {n ? n - 1 : 0, n ? len : 0, n, n * VALUE_LEN, 0};
    rp[4] = XXH3_64bits(rp, 4 * sizeof(uint64_t));
    snprintf(path, sizeof(path), "%s/recovery-point", dir);
    if (write_file(path, rp, sizeof(rp)))
        goto fail;
    batch_builder_free(&b);
    return 0;
fail:
    fprintf(stderr, "%s: %s\n", path, strerror(errno));
    return 1;
}
