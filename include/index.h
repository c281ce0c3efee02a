/* index.h - a segment's sparse offset index and time index.
 *
 * Both are append-only arrays of fixed-size entries, mirrored in memory and
 * in a file beside the segment's .log. An entry is added for the first batch
 * of a segment and then whenever INDEX_INTERVAL_BYTES of log were written
 * since the last one, so a lookup lands at most that far before the batch it
 * wants and scans forward from there.
 *
 * Invariants (checked by index_validate, rebuilt from the log when broken):
 *   offset index: rel_offset and file_pos strictly increase, stream_pos
 *                 never decreases; the first entry is at file_pos 0; every
 *                 file_pos is the start of a batch inside the log, or of a
 *                 bad range (segment.h) that starts the log.
 *   time index:   timestamp and rel_offset strictly increase.
 * Index files are never trusted beyond the last validated log byte. */
#ifndef TOPICFS_INDEX_H
#define TOPICFS_INDEX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define INDEX_INTERVAL_BYTES 4096

struct offset_index_entry {
    uint32_t rel_offset; /* offset - segment base offset */
    uint32_t file_pos;   /* where the batch starts in the .log */
    uint64_t stream_pos; /* base_pos of that batch */
};

struct time_index_entry {
    int64_t timestamp;
    uint32_t rel_offset;
    uint32_t reserved;
};

struct offset_index {
    int fd;
    struct offset_index_entry *e;
    size_t n, cap;
    size_t file_n; /* entries in the file (more than n after a rewind) */
};

struct time_index {
    int fd;
    struct time_index_entry *e;
    size_t n, cap;
    size_t file_n;
};

int offset_index_open(struct offset_index *ix, const char *path);
void offset_index_close(struct offset_index *ix);
int offset_index_append(struct offset_index *ix, const struct offset_index_entry *e);
/* Drops entries from n on, in memory and in the file. */
int offset_index_truncate(struct offset_index *ix, size_t n);
/* Drops entries from n on in memory only: appends that re-add what the file
 * holds there write nothing; offset_index_settle() then cuts the file to
 * the entries in memory (an open that rescans the end of a segment). */
void offset_index_rewind(struct offset_index *ix, size_t n);
int offset_index_settle(struct offset_index *ix);
/* Index of the last entry with rel_offset <= rel, or -1. */
ssize_t offset_index_find_offset(const struct offset_index *ix, uint32_t rel);
/* Index of the last entry with stream_pos <= pos, or -1. */
ssize_t offset_index_find_pos(const struct offset_index *ix, uint64_t pos);
/* 0 if the entries obey the invariants and stay below log_size, else -EBADMSG. */
int offset_index_validate(const struct offset_index *ix, uint64_t log_size);

int time_index_open(struct time_index *ix, const char *path);
void time_index_close(struct time_index *ix);
/* Appends only if e->timestamp is above the last entry's; else a no-op. */
int time_index_append(struct time_index *ix, const struct time_index_entry *e);
int time_index_truncate(struct time_index *ix, size_t n);
void time_index_rewind(struct time_index *ix, size_t n);
int time_index_settle(struct time_index *ix);
/* Index of the last entry with timestamp < ts, or -1: the scan for the first
 * record at or after ts starts at that entry's offset. */
ssize_t time_index_find(const struct time_index *ix, int64_t ts);
int time_index_validate(const struct time_index *ix);

#endif
