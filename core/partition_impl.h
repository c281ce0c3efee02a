/* partition_impl.h - what the files of the partition log share (not a
 * public header: core/partition*.c only).
 *
 * The partition is split by job:
 *   partition.c         appends (leader and follower), truncation, reset,
 *                       sync, the high watermark, leader epochs, listeners;
 *   partition_open.c    open and close: recovery, the recovery point, a
 *                       reset or a leader-epoch checkpoint to finish;
 *   partition_layout.c  the segment list and its layout epochs (views, old
 *                       layouts kept for them), retention and compaction's
 *                       changes to the list, moving a deleted topic;
 *   partition_read.c    cursors and every read path: stream reads, views,
 *                       record fetch, raw batch fetch, offset and time
 *                       lookups.
 * Every function here expects the caller to hold p->lock unless it says
 * otherwise. */
#ifndef TOPICFS_PARTITION_IMPL_H
#define TOPICFS_PARTITION_IMPL_H

#include <sys/types.h>

#include "partition.h"

#define READ_AHEAD (256u << 10)
#define DIRECT_COPY_MIN (64u << 10)
/* Finding the next batch reads this much: enough for many small batches,
 * little of a big one's values, which a large read takes from the file. */
#define HEADER_READ_AHEAD (8u << 10)

static inline struct segment *active(struct partition *p)
{
    return p->segs[p->nsegs - 1];
}

static inline uint64_t live_bytes(const struct segment *s)
{
    return s->end_pos - s->base_pos;
}

static inline uint64_t view_end(struct partition *p)
{
    struct segment *a = active(p);
    return a->view_start + live_bytes(a);
}

/* A segment is owned by the partition's list and by every kept layout that
 * names it (refs counts the latter); the last owner closes it. */
static inline void segment_release(struct segment *s)
{
    if (s->refs-- == 0)
        segment_close(s);
}

/* ---- partition_layout.c ---- */

/* Recomputes every segment's position in the current view. */
void relayout(struct partition *p);
int push_segment(struct partition *p, struct segment *s);
/* Index of the last segment whose base offset is <= offset, or -1. */
ssize_t segment_for_offset(struct partition *p, uint64_t offset);
/* Index of the first segment with a record at or after `offset` (offsets
 * that compaction removed from a segment's end lead to the next one), or -1. */
ssize_t segment_from_offset(struct partition *p, uint64_t offset);
/* Index of the segment holding stream position pos (the last one whose
 * base_pos <= pos), or -1. */
ssize_t segment_for_pos(struct partition *p, uint64_t pos);
struct segment *segment_by_base(struct partition *p, uint64_t base);

/* The old layout of segs[0 .. n-1], to keep for older views. */
struct old_layout {
    struct segment **segs;
    uint64_t *start;
    size_t n;
};
void old_layout_take(struct partition *p, size_t n, struct old_layout *o);
/* Lets go of the old layouts kept longer than file.delete.delay.ms or that
 * no open view is old enough to read (all of them, with force). */
void kept_expire(struct partition *p, int force);
/* Makes room for one more epoch, so that bump_epoch() cannot fail: callers
 * reserve before they change anything. */
int reserve_epoch(struct partition *p);
/* Starts a new layout epoch: `removed` view bytes went, every change lies
 * below view position frontier_pos and everything from cut_pos on was cut
 * (both in the old epoch's coordinates); `old` is what lay below
 * frontier_pos before. The epoch must be reserved. */
void bump_epoch(struct partition *p, uint64_t removed, uint64_t frontier_pos, uint64_t cut_pos,
                struct old_layout *old);
/* Bytes removed from the view between epoch e and now. */
uint64_t removed_since(struct partition *p, uint32_t e);
/* The head of the log went (retention, compaction): only the leader epoch
 * that covers the new log start stays of those below it (in memory; the
 * checkpoint keeps the older ones until its next write, and the open trims
 * them the same way), and the high watermark stays at or above it. */
void head_removed(struct partition *p);

/* ---- partition_open.c ---- */

struct recovery_point {
    uint64_t seg_base, file_pos, next_offset, end_pos;
};
/* Writes dir's recovery point and makes it stable (a file created here
 * gets its directory entry synced too). */
int recovery_point_write(const char *dir, const struct recovery_point *rp);
/* The same for p, whose recovery_offset then moves. */
int write_recovery_point(struct partition *p, const struct recovery_point *rp);
/* Reset (partition.c): writes dir's "log-reset" file, the commit point. */
int reset_commit(const char *dir, uint64_t start_offset, uint64_t start_pos);
/* Carries a committed reset out in dir (idempotent): the old log's files
 * go, a new empty segment at (start_offset, start_pos) and its recovery
 * point are made, then the commit file goes. *out (if not NULL) gets the
 * new segment, active. partition_reset_crash_point stops it (-ECANCELED). */
int reset_finish(const char *dir, uint64_t start_offset, uint64_t start_pos, struct segment **out);
/* Marks the partition as one whose log may have gaps (partition_open.c):
 * with `compacted`, writes the marker if it is not there. */
int note_compacted(struct partition *p, int compacted);

/* ---- partition_read.c ---- */

/* Drops the cursor's hints and cached bytes (they name segments by base
 * offset, which an old layout's segments share with the current ones). */
void cursor_forget(struct partition_cursor *c);
/* Stream position of the first value byte of `offset`, or of the next
 * record if it is gone, and the index of the segment that holds it (the
 * last one at the end). With `bounded` (readers), offsets at or past the
 * high watermark map to its position. */
int offset_pos_locked(struct partition *p, uint64_t offset, int bounded, size_t *seg,
                      uint64_t *pos);

/* ---- partition.c ---- */

/* Where the high watermark's stream position lies in the current view: the
 * end of what readers see. */
uint64_t visible_view_end(struct partition *p);
/* Puts the high watermark back where it belongs after the log changed:
 * the log end while it follows it, else within [log start, log end].
 * Returns PARTITION_EVENT_HW if it moved, else 0. */
unsigned hw_fix(struct partition *p);
/* Under the lock: a new acknowledgement term (waiters fail with -EIO). */
void acks_fence(struct partition *p);
/* Under the lock: may a produce with ack append now (partition.h)? 0,
 * -EAGAIN or -EIO; fills ack->in_sync. */
int acks_check(struct partition *p, struct partition_ack *ack);

#endif
