/* segment.h - one segment of a partition log: a .log file of batches plus
 * its .index and .timeindex, all named by the 20-digit base offset.
 *
 * Only the last segment of a partition (the active one) is appended to; the
 * others are immutable. The in-memory fields below always describe the
 * validated prefix of the .log: bytes past `size` are never read. No batch is
 * served before segment_verify() checked it (see segment.c); damaged runs are
 * kept as bad ranges, refused with EIO, never cut from a synced segment. */
#ifndef TOPICFS_SEGMENT_H
#define TOPICFS_SEGMENT_H

#include <stdint.h>
#include <sys/uio.h>

#include "batch.h"
#include "index.h"

/* A run of a segment's .log that failed verification: its bytes, and the
 * offsets and stream positions it held. Reads of them fail with EIO. */
struct bad_range {
    uint64_t file_pos, file_end;
    uint64_t offset, offset_end;
    uint64_t pos, pos_end;
};
#define BAD_OPEN UINT64_MAX /* end not known yet (segment_close_bad_range) */

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
    uint64_t view_start;   /* stream position of base_pos in the partition's current view */
    uint64_t first_pos;    /* stream position the first header named at open, or UINT64_MAX */
    int was_cut;           /* recovery cut bad bytes off its end */
    int verified;          /* every batch below size was verified since open */
    int compacted;         /* offsets may jump (segment_trust.compacted) */
    struct bad_range *bad; /* what verification found damaged */
    size_t nbad;
    int refs; /* the partition's list and kept old layouts (partition.c) */
    /* under the fd lock: */
    uint64_t retired; /* its bytes are under <base>.log.<retired>.deleted */
    int gone;         /* its directory moved and no name is known: ENOENT */
    char *old_dir;    /* the dir before segment_set_dir, freed at close */
    /* descriptors (segment.c): fd is -1 while closed; guarded by the fd lock */
    int active; /* the .log and the index files stay open */
    int pins;   /* users of fd right now: it is not closed under them */
    int in_lru, unsynced, sync_err;
    struct segment *lru_prev, *lru_next;
    struct offset_index oix;
    struct time_index tix;
};

/* Descriptors: at most segment_fd_cap .log files of closed segments stay
 * open (an LRU over all partitions), and never more than a quarter of the
 * process's RLIMIT_NOFILE; active segments keep theirs. An open closed
 * segment holds no descriptor until it is first read. */
#define SEGMENT_FD_CAP_DEFAULT 512
extern size_t segment_fd_cap;
/* The .log descriptor, opened if needed and pinned (not closed by the LRU)
 * until segment_fd_put(); or a negative errno (EMFILE when none is free). */
int segment_fd(struct segment *s);
void segment_fd_put(struct segment *s);
/* Makes a segment active (it will be appended to: index files reopened) or
 * closed (indexes in memory only, its .log descriptor in the LRU). */
int segment_set_active(struct segment *s, int active);
/* open(2) with O_CLOEXEC that closes LRU descriptors when none is left. */
int segment_open_fd(const char *path, int flags);
/* .log descriptors of closed segments open now (tests, metrics). */
size_t segment_fds_open(void);

/* Creates an empty, active segment file set. */
int segment_create(const char *dir, uint64_t base_offset, uint64_t base_pos, int64_t now_ms,
                   struct segment **out);
/* What the partition knows of a segment it opens. */
struct segment_trust {
    /* File position where bytes that may not be on stable storage begin:
     * from there every batch is verified and the log cut at the first that
     * fails. Below it the log was synced: its headers are walked (checksums
     * wait for segment_verify) and damage there is recorded, never cut.
     * UINT64_MAX: all synced. */
    uint64_t synced_to;
    /* The next offset and end position of the log at synced_to, if known
     * (else UINT64_MAX): the synced part must end there. */
    uint64_t synced_next_offset, synced_end_pos;
    /* No record may reach this offset: the next segment's base. */
    uint64_t max_offset;
    /* Where the stream goes on after this segment, if known (else
     * UINT64_MAX): the next segment's first batch, the recovery point's end.
     * Headers of the synced part that claim positions past it were not
     * believed at an earlier open (verified, they ended there): the synced
     * part is then verified whole, so every open lays it out the same. */
    uint64_t max_end_pos;
    /* Compaction touched the partition: offsets may jump (its first batch
     * may start past the segment's base offset), never go back. Else they
     * are contiguous from the base offset on. */
    int compacted;
};

/* Opens an existing segment (trust NULL: all synced, nothing known,
 * compacted).
 * `expect_base_pos` is the stream position the segment must start at (for
 * empty or damaged segments). A synced part whose headers do not walk to
 * where the trust says is verified whole at once, and its bad ranges
 * recorded (the segment is then `verified`). */
int segment_open(const char *dir, uint64_t base_offset, uint64_t expect_base_pos,
                 const struct segment_trust *trust, struct segment **out);
/* The stream position the first batch header of a segment's .log names
 * (read without opening the segment), or UINT64_MAX if there is none. */
uint64_t segment_first_pos(const char *dir, uint64_t base_offset);
/* Verifies every batch not verified yet (checksum, and header fields follow
 * on: base offset and stream position), recording and logging bad ranges.
 * Every lookup below calls it first: nothing unverified is ever served. */
int segment_verify(struct segment *s);
enum segment_key { SEG_BY_FILE, SEG_BY_OFFSET, SEG_BY_POS };
/* Where a lookup is past a bad range's offsets or positions [start, end):
 * end, or start + 1 if the range is empty. */
uint64_t bad_range_end(uint64_t start, uint64_t end);
/* The bad range holding a file position, offset or stream position, or NULL.
 * A range that claims no offsets (or positions) holds the one it starts at:
 * the record there comes after damage, so it is refused too, never reached
 * by skipping the damage silently (see bad_range_end). */
const struct bad_range *segment_bad_at(const struct segment *s, enum segment_key key,
                                       uint64_t value);
/* Ends the bad ranges whose end open could not find at the next segment's
 * start; returns whether there were any. */
int segment_close_bad_range(struct segment *s, uint64_t next_base_offset, uint64_t next_base_pos);
/* Records that the segment lost records up to the next segment's start (a
 * closed segment found empty or short): a bad range at its end. */
int segment_mark_lost(struct segment *s, uint64_t next_base_offset, uint64_t next_base_pos);
void segment_close(struct segment *s);
/* Closes and removes the segment's files. */
int segment_delete(struct segment *s);
/* Removes the .log and index files of segment `base` in dir (those that
 * are there): 0, or the first errno other than ENOENT. */
int segment_remove_files(const char *dir, uint64_t base);
/* Removes the segment's names, the .log first (retired by rename: the
 * object still reads what it held, until its close removes the file). A
 * negative errno means the .log is still there (nothing was removed): the
 * segment is still part of the log. Once the .log is gone the segment is,
 * and an index file that stays is only logged (an open removes index files
 * without a .log). */
int segment_unlink(struct segment *s);
/* Gives the segment's bytes a private name that it reads from until its
 * close, which removes it (segment.c: retired files): by rename, or by a
 * link (keep_name) when the caller then replaces the .log. Idempotent. */
int segment_retire(struct segment *s, int keep_name);
/* Tests: a negative errno makes segment_retire of that .log fail. */
extern int (*segment_retire_fault)(const char *log_path);
/* The segment's directory moved (a deleted topic): its files are read there.
 * ENOMEM leaves it without a name: its reads then fail with ENOENT. */
int segment_set_dir(struct segment *s, const char *dir);

/* Writes one sealed batch at the end, then indexes it. Only the log write
 * can fail the append; an index entry that cannot be written is left out
 * (logged; see segment.c). */
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
/* Where a cut at `offset` falls: the batch holding it (segment_find_offset),
 * or, where that is damaged (EIO), the start of a bad range of damaged bytes
 * that begins at offset (*h then has only base_offset and base_pos: the cut
 * drops the damage and what follows). */
int segment_find_cut(struct segment *s, uint64_t offset, uint64_t *file_pos,
                     struct batch_header *h);
/* Removes every batch that holds an offset >= offset, so a batch that
 * straddles the offset goes whole and next_offset becomes its base offset
 * (as Kafka's truncateTo). Callers truncate at batch boundaries, or at the
 * start of a bad range (segment_find_cut): the bad ranges from the cut on
 * go with the bytes. */
int segment_truncate(struct segment *s, uint64_t offset);
/* The offset where the first bad range of damaged bytes found so far
 * starts (a cut there removes it): 0, or -ENOENT if none was found.
 * Records missing past the end of the file are not counted: no cut there
 * brings them back. */
int segment_first_bad(const struct segment *s, uint64_t *offset);
int segment_sync(struct segment *s);
/* Path of a segment file: "<dir>/<20-digit base><suffix>". */
void segment_path(char *buf, size_t cap, const char *dir, uint64_t base, const char *suffix);

#endif
