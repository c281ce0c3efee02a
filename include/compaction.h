/* compaction.h - log compaction of a partition's closed segments.
 *
 * Keeps the latest record of every key (keys as written with key.separator),
 * and every record without a key. A tombstone (a key whose value after the
 * separator is empty, or just "\n") is kept for delete.retention.ms after its
 * append time and then removed with its key. Offsets never change: the
 * cleaned log has gaps. The active segment is never touched.
 *
 * Crash safety: cleaned copies of the segments are written to
 * <partition>/cleaning/ and synced; then a manifest, cleaning/COMMIT, is
 * written and renamed into place in one step. Only after that are the cleaned
 * files moved over the originals. partition_open() rolls a committed
 * manifest forward and throws an uncommitted cleaning/ away, so after a
 * crash the partition is as before the pass or as after it, never a mix. */
#ifndef TOPICFS_COMPACTION_H
#define TOPICFS_COMPACTION_H

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

/* Test hook: stop the pass at a crash point (0 = never): 1 after the cleaned
 * copies are written, 2 after COMMIT is written, 3 after half of the files
 * are moved. The pass returns -ECANCELED there, like a crash would leave it. */
extern int compaction_crash_point;

/* Cleans p if its dirty ratio (bytes appended to closed segments since the
 * last pass, over all closed bytes) reaches min_dirty_ratio, or if a kept
 * tombstone has expired. Returns 1 if the log changed, 0 if not, or -errno. */
int compaction_run(struct partition *p, const struct compaction_rules *rules, int64_t now_ms,
                   struct compaction_result *res);

/* Is this record a tombstone under the separator? */
int compaction_is_tombstone(const struct record_view *r, size_t sep_len);

/* Finishes or discards an interrupted pass in a partition directory. */
int compaction_recover(const char *partition_dir);

#endif
