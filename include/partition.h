/* partition.h - a partition log: an ordered list of segments.
 *
 * The partition stream is the concatenation of all record values in offset
 * order; positions in it are absolute and never reused. Offsets are dense
 * from log_start_offset to next_offset - 1.
 *
 * Concurrency: every public function takes the partition's mutex, so
 * appends, reads, truncation and roll are serialized per partition. Data
 * below end_pos is immutable, so readers never see a torn batch. Changes of
 * the layout that must not race a cleaner pass (truncation, reset, move)
 * take the maintenance mutex first. The listener is called after the mutex
 * is released (partition_set_listener).
 *
 * Durability: an append is written to the segment file (page cache) before it
 * returns; partition_sync() makes every byte appended before it stable (all
 * segments, and the directory entries of new ones) and then advances the
 * recovery point, a small checksummed file from which the next open validates
 * the log. Damage below the recovery point is never cut: reads of it fail
 * with EIO (see partition_open.c).
 *
 * Replication (the seams replicate/ uses; core knows no sockets):
 *   - leader epochs: a cache of (epoch, start offset) kept in the partition
 *     directory as "leader-epoch-checkpoint" (leader_epoch.h), answered for
 *     OffsetsForLeaderEpoch and cut by truncation, kept across retention and
 *     compaction (which keep every batch's leader epoch);
 *   - the high watermark: every read path (stream reads, views, fetch,
 *     offset and time lookups, partition_info's view_bytes) serves only
 *     records below it. By default it follows the log end (single-node mode:
 *     nothing changes for readers); a replica holds it and moves it;
 *   - raw fetch: stored batches, verbatim, bounded by an offset;
 *   - follower appends of a leader's batches, several at once, all or
 *     nothing, and a reset that starts the log afresh at the leader's log
 *     start;
 *   - a listener told of appends and high watermark moves. */
#ifndef TOPICFS_PARTITION_H
#define TOPICFS_PARTITION_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "batch.h"
#include "leader_epoch.h"
#include "segment.h"

struct partition_settings {
    uint64_t segment_bytes;
    int64_t segment_ms;
    uint32_t max_message_bytes;
    enum batch_codec codec;
    int64_t file_delete_delay_ms;
};

/* What a partition listener is told (partition_set_listener), or'ed. */
#define PARTITION_EVENT_APPEND 1u   /* the log end moved up */
#define PARTITION_EVENT_HW 2u       /* the high watermark moved: readers see a new end */
#define PARTITION_EVENT_TRUNCATE 4u /* the log end moved down (truncation, reset) */
struct partition;
typedef void (*partition_listener_fn)(void *arg, struct partition *p, unsigned events);

struct partition_info {
    uint64_t start_offset, end_offset;
    uint64_t start_pos, end_pos;
    uint64_t stored_bytes;
    uint64_t view_bytes; /* length of the stream as `cat` shows it now (to the high watermark) */
    uint64_t high_watermark, hw_pos; /* readers see records below it; its stream position */
    uint32_t segments;
    uint32_t leader_epoch; /* the latest in the leader-epoch cache (0 if none) */
    int compacted;         /* the log may have gaps (compaction ran here or at the leader) */
    uint32_t truncations;  /* times the log was cut or reset since it was opened */
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
    uint32_t leader_epoch;    /* stamped on local appends: the cache's latest, or 0 */
    struct leader_epoch_cache leader_epochs;
    /* The high watermark (an offset) and the stream position of its first
     * value byte: log_start <= hw <= log end. hw_follows_end: it is the log
     * end (single-node mode, the default). */
    uint64_t hw, hw_pos;
    int hw_follows_end;
    int reset_pending; /* a reset past its commit point did not finish: EIO */
    /* Acknowledgements (cluster mode, see "acknowledgements" below):
     * acks_cond is signalled whenever the high watermark moves or
     * acks_term changes; acks_term changes when this replica stops
     * leading, truncates or resets, and is deleted. */
    pthread_cond_t acks_cond;
    uint64_t acks_term;
    uint32_t acks_waiting; /* threads blocked in partition_wait_acked */
    uint64_t acks_checks;  /* times a waiter woke and looked again */
    int leading;           /* replicate/ says this broker leads it */
    uint32_t in_sync;      /* then: its ISR's size, itself included */
    uint64_t hw_saved;     /* the high watermark last checkpointed, if hw_saved_valid */
    int hw_saved_valid;
    partition_listener_fn listener;
    void *listener_arg;
    pthread_mutex_t maintenance; /* one cleaner or truncation at a time */
    /* Truncations and resets waiting for the maintenance lock: a cleaner
     * pass that sees one gives up before its commit point (compaction.h),
     * so a follower's truncation never waits for a whole pass. */
    atomic_int maintenance_wanted;
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

/* Appends a built batch; assigns offsets from next_offset and stamps the
 * partition's leader epoch. *base_offset gets the first one. -EMSGSIZE if
 * the batch is larger than max.message.bytes allows (checked per record by
 * the caller; here per batch limit). */
int partition_append(struct partition *p, struct batch_builder *b, int64_t timestamp,
                     uint64_t *base_offset);
/* The produce path of every write, local or forwarded by another broker:
 * the n records (n >= 1) as one batch built in b (reset first; the caller's
 * scratch), appended as partition_append does. With ack (not NULL; see
 * "acknowledgements" below) the append is also checked against the
 * replication state and ack says what to wait for. */
struct partition_ack;
int partition_append_records(struct partition *p, struct batch_builder *b,
                             const struct record_ref *r, size_t n, int64_t timestamp,
                             uint64_t *base_offset, struct partition_ack *ack);
/* Follower path: appends batches a leader sealed, as stored there: `len`
 * bytes holding one or more whole batches back to back. Each is verified
 * (checksum, record table) and must follow on: base offset = the log end
 * and base_pos = the end position, or later in a compacted partition
 * (partition_set_compacted; a position jump starts a new segment there, as
 * the leader's segments do). Their leader epochs are kept and recorded in
 * the epoch cache (written before the log, so it never knows less than the
 * log holds). All or nothing: -EBADMSG (damaged or torn input), -EINVAL
 * (does not follow on, or an epoch above LEADER_EPOCH_MAX), -ENOENT (topic
 * deleted), -EIO (a reset did not finish), or the errno of a write; then
 * no batch of them is in the log. */
int partition_append_batch(struct partition *p, const uint8_t *batches, size_t len);
/* The log may have gaps from now on (a follower of a compacted leader calls
 * it before it appends the leader's batches; see partition_fetch_raw's
 * `compacted`): writes the "compacted" marker. 0 or a negative errno. */
int partition_set_compacted(struct partition *p);
/* Removes every record with offset >= offset (leader change, or the start
 * of a bad range: partition_first_bad), and the
 * leader-epoch entries that start at or after it (written first). Takes
 * the maintenance lock: waits for a cleaner pass to end. If a segment's .log
 * cannot be removed, the log ends with that segment, whole, and its errno
 * is returned (the caller may try again). The high watermark comes down to
 * the new end if it was past it. */
int partition_truncate(struct partition *p, uint64_t offset);
/* Where the first damage found so far (partition_info's bad_batches) starts:
 * 0 and its offset, a point partition_truncate can cut at (a follower
 * drops the damage and fetches it again), or -ENOENT if none was found. */
int partition_first_bad(struct partition *p, uint64_t *offset);
/* Empties the log and starts it afresh at start_offset, the first record's
 * value at stream position start_pos (a follower whose log lies wholly
 * below the leader's log start: Kafka's truncateFullyAndStartAt; the
 * leader's partition_fetch_raw reply gives both). The leader-epoch cache
 * is emptied, the high watermark goes to start_offset, older views read
 * nothing of the old log (ENODATA). Crash-safe and all-or-nothing: the
 * "log-reset" file (written atomically) is the commit point; before it
 * nothing changed, after it the reset only goes forward, at the next open
 * if a step fails now (until then appends, truncation and sync fail with
 * EIO; calling it again retries). -EINVAL for offsets past INT64_MAX,
 * -ENOENT if the topic was deleted. Takes the maintenance lock. */
int partition_reset(struct partition *p, uint64_t start_offset, uint64_t start_pos);
/* Test hook: a reset stops as a crash would (-ECANCELED, nothing cleaned
 * up) at point 1 (after its commit), 2 (old segments removed), 3 (the new
 * segment made). 0 = never. */
extern int partition_reset_crash_point;
int partition_sync(struct partition *p);

/* ---- leader epochs (leader_epoch.h) ---- */

/* A leader records its epoch at its log end (start_offset <= the log end;
 * Kafka's assign, which drops later entries with epoch >= epoch or start >=
 * start_offset). Local appends carry the latest epoch from then on. The
 * checkpoint is written before the cache changes: 0, -EINVAL (epoch past
 * LEADER_EPOCH_MAX, start past the log end), -EOVERFLOW, or the write's
 * errno (nothing changed). start_offset PARTITION_LOG_END: the log end as
 * it is under the partition's lock (a leader at a new epoch whose appends
 * go on meanwhile). */
#define PARTITION_LOG_END UINT64_MAX
int partition_assign_epoch(struct partition *p, uint32_t epoch, uint64_t start_offset);
/* Kafka's OffsetsForLeaderEpoch at this replica (leader_epoch_end_offset_for
 * with the log end): 0, or -ENOENT (undefined: epoch newer than any known,
 * or no epoch known). */
int partition_end_offset_for_epoch(struct partition *p, uint32_t epoch, uint32_t *epoch_out,
                                   uint64_t *end_offset);
/* The latest epoch of the cache: 0 or -ENOENT (empty). */
int partition_latest_epoch(struct partition *p, uint32_t *epoch);
/* A follower's KIP-279 step. It asked the leader for the end of its latest
 * epoch (partition_latest_epoch) and got (leader_epoch, leader_end) (from
 * partition_end_offset_for_epoch there). *offset gets where to truncate;
 * *final is 1 when that is the divergence point, 0 when this replica does
 * not know leader_epoch: it truncates to *offset, then asks again with its
 * new latest epoch. Never past the log end. An undefined answer at the
 * leader (-ENOENT) is the caller's: Kafka then truncates to the high
 * watermark. 0, or -ENOENT if this replica knows no epoch at all. */
int partition_truncation_point(struct partition *p, uint32_t leader_epoch, uint64_t leader_end,
                               uint64_t *offset, int *final);

/* ---- high watermark ---- */

/* Moves the high watermark up to hw (the log end if past it); a lower hw
 * changes nothing. While it follows the log end this is a no-op. 0, or
 * -EIO if the position of hw lies in damage (nothing changed). */
int partition_set_high_watermark(struct partition *p, uint64_t hw);
/* Stops the high watermark following the log end and puts it at hw
 * (clamped to [log start, log end]), below where it was if need be: a
 * replica that starts leading or following sets what it knows is
 * committed. Readers that read past it keep what they read (those bytes do
 * not change unless truncated); they see the file end at it. */
int partition_hold_high_watermark(struct partition *p, uint64_t hw);
/* Single-node mode (how a partition opens): the high watermark is the log
 * end and moves with every append. */
void partition_follow_end(struct partition *p);

/* ---- acknowledgements (cluster mode) ----
 *
 * A replicated partition's high watermark is held (partition_hold_high_
 * watermark) and moved by its leader as the ISR fetches. A produce that
 * passes a struct partition_ack is checked under the partition lock:
 *   - the high watermark is held and replicate/ has not said this broker
 *     leads (partition_lead): -EAGAIN, nothing appended (the caller looks
 *     the leader up again);
 *   - this broker leads with fewer replicas in sync than ack->min_insync:
 *     -EIO, nothing appended (ack->in_sync says how many were);
 * else ack gets the batch's end offset and the term it was appended in.
 * partition_wait_acked() then returns once the high watermark passes that
 * end (every in-sync replica has the records), or -EIO when the term
 * changed first (leadership lost, truncation, reset, shutdown: the records
 * may never be committed), or -ENOENT (topic deleted). A partition whose
 * high watermark follows the log end (single-node mode, one replica)
 * never waits. */
struct partition_ack {
    int64_t min_insync;  /* in: 0 or 1 = no check */
    uint64_t end_offset; /* out: the offset after the batch */
    uint64_t term;       /* out */
    uint32_t in_sync;    /* out: the leader's ISR size at the append (0: not leading) */
};
/* This broker leads the partition with in_sync replicas in its ISR
 * (itself included); called again when the ISR changes. Starting to lead
 * begins a new term. */
void partition_lead(struct partition *p, uint32_t in_sync);
/* It no longer leads, or follows another leader (a role change, dropped,
 * shutdown): a new term, so waits for acknowledgement fail with -EIO. */
void partition_unlead(struct partition *p);
/* What an fsync waits for: the log end and the current term (ack->end_offset,
 * ack->term). */
void partition_ack_point(struct partition *p, struct partition_ack *ack);
/* Waits until the high watermark reaches ack->end_offset within ack->term:
 * 0, -EIO (the term changed, or this leader has fewer in-sync replicas than
 * ack->min_insync by then: the ISR shrank after the append), -ENOENT
 * (deleted). */
int partition_wait_acked(struct partition *p, const struct partition_ack *ack);
/* How many threads wait in partition_wait_acked now, and how many times a
 * waiter has woken and looked again so far (tests: a waiter that woke after
 * a change and waits again has seen it and not returned). */
void partition_ack_waiters(struct partition *p, uint32_t *waiting, uint64_t *checks);
/* The produce path with a topic's acks: partition_append_records, and
 * with acks->all, the min.insync.replicas check and the wait for the
 * in-sync replicas (both logged when they fail with -EIO). Local
 * durability (an fsync per write where acks=all means that) is the
 * caller's. */
struct produce_acks {
    int all;            /* acks=all */
    int64_t min_insync; /* min.insync.replicas */
};
int partition_produce(struct partition *p, struct batch_builder *b, const struct record_ref *r,
                      size_t n, int64_t timestamp, const struct produce_acks *acks,
                      uint64_t *base_offset);

/* The high watermark checkpoint ("replication-offset-checkpoint",
 * leader_epoch.h): writes the held high watermark if it moved since the
 * last save (nothing while it follows the log end or after deletion): 0
 * or a negative errno. One caller at a time. */
int partition_save_high_watermark(struct partition *p);
/* Reads it: 0 with *hw (a replica holds its high watermark there, clamped
 * to its log, when it first gets a role), -ENOENT, -EBADMSG, or another
 * negative errno. */
int partition_saved_high_watermark(struct partition *p, uint64_t *hw);

/* ---- listener ---- */

/* One listener per partition (its owner's: topic.c installs one that
 * forwards to the store's, see store_add_listener). fn is called after
 * every change it names (PARTITION_EVENT_*), in the thread that made the
 * change, after the partition lock is released, so fn may call the
 * partition; but possibly under the caller's own locks (group.c appends to
 * __consumer_offsets under a group lock), so fn must not take a lock such
 * a caller may hold. Calls of concurrent changes may come out of order or
 * name several events: fn reads the state it needs. NULL removes it; arg
 * must stay valid while a change may be in flight. */
void partition_set_listener(struct partition *p, partition_listener_fn fn, void *arg);

/* Copies up to len stream bytes from absolute position pos. Returns the count
 * (0 at the end of the stream; short before a gap compaction left) or a
 * negative errno: -ENODATA in such a gap. */
ssize_t partition_read(struct partition *p, struct partition_cursor *c, uint64_t pos, void *buf,
                       size_t len);
/* Counts bytes handed to a reader by way of partition_fetch (group members)
 * in bytes_out; partition_read and partition_view_read count their own. */
void partition_count_read(struct partition *p, uint64_t bytes);
/* Stream position of the first value byte of `offset` (offsets at or past
 * the high watermark map to its position, below the start to start_pos,
 * removed by compaction to the next record). */
int partition_offset_pos(struct partition *p, uint64_t offset, uint64_t *pos);
/* First offset whose timestamp is >= ts (the high watermark if none below it). */
int partition_time_offset(struct partition *p, int64_t ts, uint64_t *offset);

/* One record, as partition_fetch() hands it out. The key, if any, is the
 * first key_len bytes of the value. Pointers are valid during the call. */
struct record_view {
    uint64_t offset;
    int64_t timestamp;
    const uint8_t *value;
    uint32_t value_len;
    int32_t key_len;
    uint32_t leader_epoch; /* of its batch */
};

/* Calls fn for each record from `offset` on (the log start if below it), at
 * most max_records, until fn returns non-zero. *next gets the offset after
 * the last record visited. Runs under the partition lock: fn must be quick.
 * Stops at a bad range (segment.h): the records before it are handed out,
 * and a fetch whose next record lies in or after it fails with -EIO.
 * Readers' path: records below the high watermark only. */
int partition_fetch(struct partition *p, struct partition_cursor *c, uint64_t offset,
                    size_t max_records, int (*fn)(const struct record_view *r, void *arg),
                    void *arg, uint64_t *next);
/* The same below `limit` instead of the high watermark (compaction, which
 * copies what the log holds). */
int partition_fetch_below(struct partition *p, struct partition_cursor *c, uint64_t offset,
                          uint64_t limit, size_t max_records,
                          int (*fn)(const struct record_view *r, void *arg), void *arg,
                          uint64_t *next);

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
/* Raw fetch (a follower's, or a mount's that holds no replica): the stored
 * batches from the one holding `offset` (or the first after it, in a
 * compacted log) on, verbatim (lz4 stays compressed), while each lies
 * wholly below max_offset (the leader's log end for followers, its high
 * watermark for readers) and their total stays within max_bytes (the first
 * batch is handed out whole whatever its size, so a fetch always makes
 * progress). The bytes go to sink->piece as pieces (file spans or memory,
 * as partition_view_send), then sink->deliver runs under the partition
 * lock. Returns the bytes handed out (0: nothing there yet, e.g. at the
 * log end), -ERANGE if offset is below the log start or past the log end
 * (Kafka's OFFSET_OUT_OF_RANGE: the follower resets or truncates), -EIO if
 * the next batch lies in damage, or the sink's errno. *out is filled
 * whatever the answer. */
struct raw_fetch {
    uint64_t log_start_offset, log_start_pos; /* what partition_reset needs */
    uint64_t log_end_offset, log_end_pos;
    uint64_t high_watermark;
    uint32_t leader_epoch; /* the cache's latest */
    int compacted;         /* the log may have gaps (see partition_set_compacted) */
    uint64_t next_offset;  /* after the last batch handed out (offset if none) */
    uint32_t batches;
};
ssize_t partition_fetch_raw(struct partition *p, uint64_t offset, uint64_t max_offset,
                            size_t max_bytes, const struct stream_sink *sink,
                            struct raw_fetch *out);
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

/* Retention: removes the n oldest segments (never the active one, nor one
 * that holds records at or past the high watermark), oldest first. A
 * segment whose .log cannot be removed stops it: that one and the later
 * ones stay (0 or the errno; *removed, if not NULL, gets how many went). */
int partition_delete_head(struct partition *p, size_t n, size_t *removed);

void partition_info(struct partition *p, struct partition_info *info);
/* The log end's stream position (not bounded by the high watermark). */
uint64_t partition_end_pos(struct partition *p);

void partition_cursor_init(struct partition_cursor *c);
void partition_cursor_free(struct partition_cursor *c);

/* Test hook: while non-zero, growing the layout epochs fails (-ENOMEM). */
extern int partition_fail_epoch_grow;

#endif
