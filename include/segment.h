/* segment.h - one segment of a partition log: a .log file of batches plus
 * its .index and .timeindex, all named by the 20-digit base offset.
 *
 * Only the last segment of a partition (the active one) is appended to; the
 * others are immutable. The in-memory fields below always describe the
 * validated prefix of the .log: bytes past `size` are never read. */
#ifndef TOPICFS_SEGMENT_H
#define TOPICFS_SEGMENT_H

#include <stdint.h>
#include <sys/uio.h>

#include "batch.h"
#include "index.h"

struct segment {
    char *dir;
    int fd;
    uint64_t base_offset; /* first offset this segment may hold */
    uint64_t base_pos;    /* stream position of its first value byte */
    uint64_t next_offset; /* one past the last record */
    uint64_t end_pos;     /* one past the last value byte */
    uint64_t size;        /* bytes of valid batches in the .log */
    uint64_t synced_size; /* the first synced_size bytes are on stable storage */
    int64_t created_ms;   /* time of the first batch (or creation) */
    int64_t max_timestamp;
    uint64_t bytes_since_index;
    uint64_t view_start; /* stream position of base_pos in the partition's current view */
    int was_cut;         /* recovery cut bad bytes off its end */
    int refs;            /* the partition's list and kept old layouts (partition.c) */
    struct offset_index oix;
    struct time_index tix;
};

/* Creates an empty segment file set. */
int segment_create(const char *dir, uint64_t base_offset, uint64_t base_pos, int64_t now_ms,
                   struct segment **out);
/* Opens an existing segment. Batches from file position `validate_from` on
 * are checked one by one; the log is cut at the first bad one and the
 * indexes are rebuilt from there. Before that point the log is trusted and
 * the indexes are rebuilt only if they fail validation. `expect_base_pos`
 * is the stream position the segment must start at (for empty segments). */
int segment_open(const char *dir, uint64_t base_offset, uint64_t expect_base_pos,
                 uint64_t validate_from, struct segment **out);
void segment_close(struct segment *s);
/* Closes and removes the segment's files. */
int segment_delete(struct segment *s);
/* Removes the segment's files; the open segment still reads what they held. */
int segment_unlink(struct segment *s);

/* Writes one sealed batch at the end, then indexes it. */
int segment_append(struct segment *s, const struct iovec *iov, int iovcnt,
                   const struct batch_header *h);
/* File position of the batch holding stream position pos (base_pos <= pos <
 * end), or of the first batch starting after pos. *h receives its header. */
int segment_find_pos(struct segment *s, uint64_t pos, uint64_t *file_pos, struct batch_header *h);
/* Same for the batch holding `offset`. */
int segment_find_offset(struct segment *s, uint64_t offset, uint64_t *file_pos,
                        struct batch_header *h);
/* File position of the first batch with timestamp >= ts, or -ENOENT. */
int segment_find_time(struct segment *s, int64_t ts, uint64_t *file_pos, struct batch_header *h);
/* Reads and decodes the header at file_pos (must be < size). */
int segment_read_header(struct segment *s, uint64_t file_pos, struct batch_header *h);
/* Removes every batch that holds an offset >= offset, so a batch that
 * straddles the offset goes whole and next_offset becomes its base offset
 * (as Kafka's truncateTo). Callers truncate at batch boundaries. */
int segment_truncate(struct segment *s, uint64_t offset);
int segment_sync(struct segment *s);
/* Path of a segment file: "<dir>/<20-digit base><suffix>". */
void segment_path(char *buf, size_t cap, const char *dir, uint64_t base, const char *suffix);

#endif
