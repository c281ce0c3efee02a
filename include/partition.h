/* partition.h - a partition log: an ordered list of segments.
 *
 * The partition stream is the concatenation of all record values in offset
 * order; positions in it are absolute and never reused. Offsets are dense
 * from log_start_offset to next_offset - 1.
 *
 * Concurrency: every public function takes the partition's mutex, so
 * appends, reads, truncation and roll are serialized per partition. Data
 * below end_pos is immutable, so readers never see a torn batch.
 *
 * Durability: an append is written to the segment file (page cache) before it
 * returns; partition_sync() makes every byte appended before it stable (all
 * segments, and the directory entries of new ones) and then advances the
 * recovery point, a small checksummed file from which the next open validates
 * the log. Damage below the recovery point is never cut: reads of it fail
 * with EIO (see partition.c). */
#ifndef TOPICFS_PARTITION_H
#define TOPICFS_PARTITION_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "batch.h"
#include "segment.h"

struct partition_settings {
    uint64_t segment_bytes;
    int64_t segment_ms;
    uint32_t max_message_bytes;
    enum batch_codec codec;
    int64_t file_delete_delay_ms;
};

struct partition_info {
    uint64_t start_offset, end_offset;
    uint64_t start_pos, end_pos;
    uint64_t stored_bytes;
    uint64_t view_bytes; /* length of the stream as `cat` shows it now */
    uint32_t segments;
    uint32_t leader_epoch;
    int64_t last_append_ms;
    /* since the partition was opened (for .metrics) */
    uint64_t records_in, bytes_in; /* appended: records and their value bytes */
    uint64_t bytes_out;            /* partition-stream bytes read */
    uint64_t bad_batches;          /* damaged runs of batches found so far (reads fail EIO) */
};

/* Where a reader is: a hint that makes sequential reads O(1). */
struct partition_cursor {
    uint64_t seg_base; /* segment of the cached batch, UINT64_MAX if none */
    uint64_t file_pos; /* start of the cached batch */
    struct batch_header h;
    uint8_t *buf; /* read-ahead of the segment file */
    size_t buf_cap;
    uint64_t buf_file_pos, buf_len, buf_seg_base;
    uint8_t *scratch; /* decompressed lz4 body */
    size_t scratch_cap;
    uint64_t scratch_batch; /* base offset of the batch in scratch, or UINT64_MAX */
    uint32_t layout_epoch;  /* the hints above are only valid in this epoch */
};

/* How a reader sees the stream: byte 0 of its file is position `shift` of
 * the stream as laid out in layout epoch `epoch`.
 *
 * The layout changes (the epoch grows) when retention deletes head segments,
 * compaction rewrites closed ones, or a follower truncates: positions of the
 * current view always run from 0 at the log start over the surviving values.
 * A view made in an older epoch keeps its own coordinates. Past the part a
 * change touched (its frontier) they are the current ones shifted by the
 * bytes the change removed. Below the frontier, the segments as they were
 * before the change stay open and readable (files already unlinked or
 * replaced) for the topic's file.delete.delay.ms, as Kafka keeps deleted
 * segments for that long; after that, and past a truncation point, reads
 * fail (-ENODATA) rather than return bytes that do not belong there. */
struct partition_view {
    uint32_t epoch;
    uint64_t shift;
};

struct layout_epoch {
    uint32_t views;        /* open views of this epoch (partition_view_hold) */
    uint64_t removed;      /* view bytes removed before this epoch began (since open) */
    uint64_t frontier_pos; /* the change touched only positions below this one and
                            * cut everything from cut_pos on (previous epoch's coordinates) */
    uint64_t cut_pos;
    struct segment **before; /* the previous epoch's segments below frontier_pos */
    uint64_t *before_start;  /* and their view_start then; NULL/0 when not kept */
    size_t nbefore;
    int64_t keep_until_ms;
};

struct partition {
    pthread_mutex_t lock;
    char *dir;
    struct segment **segs;
    size_t nsegs, cap;
    struct partition_settings settings;
    uint64_t recovery_offset; /* everything below is on stable storage */
    int dir_dirty;            /* segment files created since the last directory fsync */
    int deleted;              /* its topic was deleted (partition_move) */
    char *old_dir;            /* dir before partition_move, freed at close */
    int compacted;            /* compaction changed the log: gaps are no damage */
    uint32_t truncations;     /* partition_truncate() calls, so a sync notices one */
    uint32_t leader_epoch;
    pthread_mutex_t maintenance; /* one cleaner or truncation at a time */
    struct layout_epoch *epochs; /* epochs[0 .. epoch] */
    uint32_t epoch;
    uint32_t kept_from; /* no epoch before it keeps an old layout */
    uint64_t views;     /* open views, all epochs */
    /* partition_info(); atomic, so member reads count without the lock */
    atomic_uint_fast64_t records_in, bytes_in, bytes_out;
    size_t epochs_cap;
};

int partition_open(const char *dir, const struct partition_settings *st, struct partition **out);
void partition_close(struct partition *p);
/* Closes the segments of old layouts kept past file.delete.delay.ms. */
void partition_expire_kept(struct partition *p);
void partition_set_settings(struct partition *p, const struct partition_settings *st);

/* Appends a built batch; assigns offsets from next_offset. *base_offset gets
 * the first one. -EMSGSIZE if the batch is larger than max.message.bytes
 * allows (checked per record by the caller; here per batch limit). */
int partition_append(struct partition *p, struct batch_builder *b, int64_t timestamp,
                     uint64_t *base_offset);
/* Follower path: appends a batch encoded by a leader. Its base offset must be
 * next_offset and its base_pos the current end; checksum is verified. */
int partition_append_batch(struct partition *p, const uint8_t *batch, size_t len);
/* Removes every record with offset >= offset (leader change). Takes the
 * maintenance lock: waits for a cleaner pass to end. If a segment's .log
 * cannot be removed, the log ends with that segment, whole, and its errno
 * is returned (the caller may try again). */
int partition_truncate(struct partition *p, uint64_t offset);
int partition_sync(struct partition *p);

/* Copies up to len stream bytes from absolute position pos. Returns the count
 * (0 at the end of the stream; short before a gap compaction left) or a
 * negative errno: -ENODATA in such a gap. */
ssize_t partition_read(struct partition *p, struct partition_cursor *c, uint64_t pos, void *buf,
                       size_t len);
/* Counts bytes handed to a reader by way of partition_fetch (group members)
 * in bytes_out; partition_read and partition_view_read count their own. */
void partition_count_read(struct partition *p, uint64_t bytes);
/* Stream position of the first value byte of `offset` (offsets past the end
 * map to end_pos, below the start to start_pos, removed by compaction to the
 * next record). */
int partition_offset_pos(struct partition *p, uint64_t offset, uint64_t *pos);
/* First offset whose timestamp is >= ts (next_offset if none). */
int partition_time_offset(struct partition *p, int64_t ts, uint64_t *offset);

/* One record, as partition_fetch() hands it out. The key, if any, is the
 * first key_len bytes of the value. Pointers are valid during the call. */
struct record_view {
    uint64_t offset;
    int64_t timestamp;
    const uint8_t *value;
    uint32_t value_len;
    int32_t key_len;
};

/* Calls fn for each record from `offset` on (the log start if below it), at
 * most max_records, until fn returns non-zero. *next gets the offset after
 * the last record visited. Runs under the partition lock: fn must be quick.
 * Stops at a bad range (segment.h): the records before it are handed out,
 * and a fetch whose next record lies in or after it fails with -EIO. */
int partition_fetch(struct partition *p, struct partition_cursor *c, uint64_t offset,
                    size_t max_records, int (*fn)(const struct record_view *r, void *arg),
                    void *arg, uint64_t *next);

/* Views (see struct partition_view). */
void partition_current_view(struct partition *p, struct partition_view *v);
/* Registers an open view (and lets go of it): old layouts are only kept
 * while views older than them are open. */
void partition_view_hold(struct partition *p, const struct partition_view *v);
void partition_view_release(struct partition *p, const struct partition_view *v);
uint64_t partition_view_size(struct partition *p, const struct partition_view *v);
ssize_t partition_view_read(struct partition *p, struct partition_cursor *c,
                            const struct partition_view *v, uint64_t pos, void *buf, size_t len);
/* Zero-copy reads. A piece of the partition stream is `len` bytes either at
 * `file_pos` in the segment file `fd` (uncompressed values), or, with fd <
 * 0, in memory at `mem` (decompressed, or already read ahead); a memory
 * piece is valid only during the call that hands it out. */
struct stream_piece {
    int fd;
    uint64_t file_pos;
    const void *mem;
    size_t len;
};
struct stream_sink {
    int (*piece)(const struct stream_piece *pc, void *arg); /* 0 or a negative errno */
    void (*deliver)(void *arg); /* partition_view_send: sends what the pieces made */
    void *arg;
};
/* Copies a piece's bytes to dst (pread for a file piece): 0 or a negative errno. */
int stream_piece_copy(const struct stream_piece *pc, void *dst);
/* partition_view_read, handing the bytes to sink->piece in order; then, if
 * there were any, calls sink->deliver with the partition still locked, so
 * that the files of the pieces stay open and unchanged while it sends them.
 * Returns the bytes handed out (and delivered), 0 at the end, or a negative
 * errno (from the first piece, or as partition_view_read's). */
ssize_t partition_view_send(struct partition *p, struct partition_cursor *c,
                            const struct partition_view *v, uint64_t pos, size_t len,
                            const struct stream_sink *sink);
/* A view of the current layout starting at `offset` (the log start if below
 * it, the end if past it, the next record if compaction removed it). */
int partition_view_at_offset(struct partition *p, uint64_t offset, struct partition_view *v);

/* The closed segment with this base offset, if the list has one, reads its
 * bytes under a private name from now on (segment_retire): its .log may then
 * be replaced or removed under it. */
int partition_retire_segment(struct partition *p, uint64_t base);
/* The partition's directory moved to dir (its topic was deleted): its files
 * are read there from now on, and it takes no more appends or truncations
 * (ENOENT). Waits for a cleaner pass in progress. ENOMEM leaves what could
 * not be named there unreadable (ENOENT), never another file. */
int partition_move(struct partition *p, const char *dir);
/* Replaces closed segments by the files now in their place (after a
 * compaction pass moved them there), or drops them where deleted[i]. */
int partition_reload_segments(struct partition *p, const uint64_t *bases, const int *deleted,
                              size_t n);

/* Retention: removes the n oldest segments (never the active one), oldest
 * first. A segment whose .log cannot be removed stops it: that one and the
 * later ones stay (0 or the errno; *removed, if not NULL, gets how many went). */
int partition_delete_head(struct partition *p, size_t n, size_t *removed);

void partition_info(struct partition *p, struct partition_info *info);
uint64_t partition_end_pos(struct partition *p);

void partition_cursor_init(struct partition_cursor *c);
void partition_cursor_free(struct partition_cursor *c);

/* Test hook: while non-zero, growing the layout epochs fails (-ENOMEM). */
extern int partition_fail_epoch_grow;

#endif
