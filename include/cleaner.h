/* cleaner.h - the background thread that applies retention and compaction.
 *
 * Every check interval it visits each topic's partitions: with
 * cleanup.policy containing `delete` it removes whole closed segments, oldest
 * first, while they are older than retention.ms or the log is larger than
 * retention.bytes; with `compact` it runs compaction (compaction.h). The
 * active segment is never removed. `changed` is called after a partition's
 * layout changed, so the filesystem can show new readers the new layout. */
#ifndef TOPICFS_CLEANER_H
#define TOPICFS_CLEANER_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct segment_stat {
    uint64_t bytes;
    int64_t max_timestamp;
};

/* How many of the oldest segments retention removes (Kafka's rules); the
 * last one (active) never counts. -1 disables a limit. */
size_t retention_count(const struct segment_stat *segs, size_t n, int64_t now_ms,
                       int64_t retention_ms, int64_t retention_bytes);

typedef void (*cleaner_changed_fn)(void *arg, struct topic *t, uint32_t partition);

/* One pass over every topic now. Returns the number of partitions changed. */
int cleaner_run_once(struct store *s, int64_t now_ms, cleaner_changed_fn changed, void *arg);

struct cleaner;
int cleaner_start(struct store *s, int64_t interval_ms, cleaner_changed_fn changed, void *arg,
                  struct cleaner **out);
void cleaner_stop(struct cleaner *c);

#endif
