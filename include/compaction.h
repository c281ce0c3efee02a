/* compaction.h - log compaction of a partition's closed segments.
 *
 * Keeps the latest record of every key (keys as written with key.separator),
 * and every record without a key. A tombstone (a key whose value after the
 * separator is empty, or just "\n") is kept for delete.retention.ms after its
 * append time and then removed with its key (INT64_MAX: kept forever).
 * Offsets never change: the cleaned log has gaps. The active segment is never
 * touched.
 *
 * Crash safety: cleaned copies of the segments are written to
 * <partition>/cleaning/ and synced; then a manifest, cleaning/COMMIT, is
 * written and renamed into place in one step (the commit point). Only after
 * that are the cleaned files moved over the originals, each rename's
 * directory synced. partition_open() rolls a committed manifest forward and
 * throws an uncommitted cleaning/ away, so after a crash the partition is as
 * before the pass or as after it, never a mix.
 *
 * Failures: a pass that fails before the commit point removes cleaning/ and
 * leaves the partition as before; one that fails after it leaves COMMIT, and
 * the next pass (or retention, or the next mount) finishes it first. Either
 * way the next pass runs normally. */
#ifndef TOPICFS_COMPACTION_H
#define TOPICFS_COMPACTION_H

#include <stddef.h>
#include <stdint.h>

#include "partition.h"

struct compaction_rules {
    const char *key_sep;
    size_t key_sep_len;
    int64_t delete_retention_ms;
    double min_dirty_ratio;
};

struct compaction_result {
    uint64_t records_before, records_after;
    uint64_t bytes_before, bytes_after;
    uint32_t segments_rewritten, segments_deleted;
};

/* Test hooks. compaction_crash_point stops the pass as a crash would (0 =
 * never): 1 after the cleaned copies are written, 2 after COMMIT is written,
 * 3 after half of the files are moved; the pass returns -ECANCELED there and
 * cleans nothing up. compaction_fault_at = N makes the Nth file step (mkdir,
 * create, append, fsync, rename, unlink, rmdir, reload) counted in
 * compaction_fault_count fail with compaction_fault_errno, as a failing
 * system call would; the pass then handles it as any other failure. */
extern int compaction_crash_point;
/* Called before each chunk of records a pass reads (tests: to hold a pass
 * at a known point). */
extern void (*compaction_visit_hook)(struct partition *p);
extern int compaction_fault_at, compaction_fault_errno, compaction_fault_count;

/* Cleans p if its dirty ratio (bytes appended to closed segments since the
 * last pass, over all closed bytes) reaches min_dirty_ratio, or if a kept
 * tombstone has expired. Returns 1 if the log changed, 0 if not, or -errno.
 * A truncation or reset that waits for the partition's maintenance lock
 * (p->maintenance_wanted) ends the pass before its commit point: -EINTR,
 * nothing changed, as if it had not run (the next pass starts over). */
int compaction_run(struct partition *p, const struct compaction_rules *rules, int64_t now_ms,
                   struct compaction_result *res);

/* Is this record a tombstone under the separator? */
int compaction_is_tombstone(const struct record_view *r, size_t sep_len);

/* At open: finishes (committed) or discards (uncommitted) what a crashed or
 * failed pass left in a partition directory. */
int compaction_recover(const char *partition_dir);

/* The same on a live partition, memory included; the caller holds
 * p->maintenance. compaction_run() does it first; retention must do it before
 * it removes segments, so a pending manifest never puts back a removed one.
 * 1 if the layout changed, 0 if there was nothing to do, or -errno. */
int compaction_finish(struct partition *p);

/* cleaning/COMMIT: "replace BASE" or "delete BASE" a line, bases
 * increasing, then "checkpoint OFFSET TOMBSTONE_MS". Parsing is strict:
 * anything else is -EBADMSG. */
struct compaction_manifest {
    size_t n;
    uint64_t *bases;
    int *deleted;
    uint64_t checkpoint_offset;
    int64_t checkpoint_tombstone_ms;
};
int compaction_manifest_parse(const char *text, size_t len, struct compaction_manifest *m);
void compaction_manifest_free(struct compaction_manifest *m);

#endif
