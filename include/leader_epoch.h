/* leader_epoch.h - a partition's leader-epoch cache (Kafka's KIP-101 and
 * KIP-279), and its checkpoint file.
 *
 * Each entry says: from start_offset on, the records were appended by the
 * leader of `epoch`. Entries are strictly increasing in both epoch and
 * start offset, so the entry that covers an offset is the last one whose
 * start offset is at or below it. A new leader records its epoch at its log
 * end; a follower records the epochs of the batches it appends (every batch
 * header carries one). A replica that comes back asks the leader where its
 * own latest epoch ends there (leader_epoch_end_offset_for on the leader)
 * and truncates what lies past it: KIP-101's fix for replicas that diverge
 * after a leader change.
 *
 * The operations mirror Kafka's LeaderEpochFileCache: assign,
 * truncate_from_end (truncation cuts the entries at or after the cut),
 * truncate_from_start (retention keeps the entry that covers the new log
 * start, its offset moved up to it), end_offset_for.
 *
 * The checkpoint file, "leader-epoch-checkpoint" in the partition directory
 * (Kafka's name), is text so an admin can read it:
 *
 *   1                      format version
 *   N                      number of entries
 *   EPOCH START_OFFSET     N lines, both decimal
 *   XXXXXXXXXXXXXXXX       XXH3-64 of every byte above, 16 lowercase hex digits
 *
 * each line ending in "\n". Decoding is strict (no signs, spaces or leading
 * zeros, both orders strictly increasing, epoch <= INT32_MAX as Kafka's
 * int32 epochs, offsets <= INT64_MAX): anything else is -EBADMSG. It is
 * written whole to a temporary name, fsynced, renamed over the old one and
 * its directory fsynced, so a crash leaves the old file or the new one. */
#ifndef TOPICFS_LEADER_EPOCH_H
#define TOPICFS_LEADER_EPOCH_H

#include <stddef.h>
#include <stdint.h>

#define LEADER_EPOCH_FILE "leader-epoch-checkpoint"
#define LEADER_EPOCH_MAX ((uint32_t)INT32_MAX)
/* Entries a cache holds at most (a leader change each minute for two
 * years): the file stays below 32 MiB. */
#define LEADER_EPOCH_ENTRIES_MAX (1u << 20)

struct epoch_entry {
    uint32_t epoch;
    uint64_t start_offset;
};

struct leader_epoch_cache {
    struct epoch_entry *v;
    size_t n, cap;
};

void leader_epoch_init(struct leader_epoch_cache *c);
void leader_epoch_free(struct leader_epoch_cache *c);
/* dst (initialized) becomes a copy of src: 0 or -ENOMEM (dst unchanged). */
int leader_epoch_copy(struct leader_epoch_cache *dst, const struct leader_epoch_cache *src);
int leader_epoch_equal(const struct leader_epoch_cache *a, const struct leader_epoch_cache *b);

/* The latest entry's epoch: 0 with *epoch set, or -ENOENT if empty. */
int leader_epoch_latest(const struct leader_epoch_cache *c, uint32_t *epoch);

/* Kafka's assign: nothing to do (0) when epoch is the latest one and starts
 * no earlier; otherwise drops the entries from the end whose epoch is >=
 * epoch or whose start offset is >= start_offset, then adds (epoch,
 * start_offset): 1. -EINVAL for an epoch past LEADER_EPOCH_MAX or an offset
 * past INT64_MAX, -EOVERFLOW when full, -ENOMEM; the cache is then as it
 * was. */
int leader_epoch_assign(struct leader_epoch_cache *c, uint32_t epoch, uint64_t start_offset);
/* Drops the entries whose start offset is >= offset (a truncation to
 * offset). Returns whether any went. */
int leader_epoch_truncate_from_end(struct leader_epoch_cache *c, uint64_t offset);
/* Drops the entries below the log start `offset`, except the last of them,
 * whose start moves up to offset if no entry starts there (retention: the
 * epoch of the first retained record stays known). Returns whether the
 * cache changed, or -EINVAL (nothing changed) for an offset past INT64_MAX. */
int leader_epoch_truncate_from_start(struct leader_epoch_cache *c, uint64_t offset);

/* Kafka's OffsetsForLeaderEpoch answer for `epoch`, given the log end:
 *   - epoch is the latest: (epoch, log_end);
 *   - some entry is newer: (the largest epoch <= epoch, or epoch itself if
 *     all are newer; the start offset of the first newer entry);
 *   - else (epoch is newer than every entry, or the cache is empty):
 *     -ENOENT (Kafka's UNDEFINED_EPOCH_OFFSET).
 * Returns 0 with *epoch_out and *end_offset set, or -ENOENT. */
int leader_epoch_end_offset_for(const struct leader_epoch_cache *c, uint32_t epoch,
                                uint64_t log_end, uint32_t *epoch_out, uint64_t *end_offset);

/* The checkpoint text of the cache: malloc'd into *text (0 or -ENOMEM). */
int leader_epoch_encode(const struct leader_epoch_cache *c, char **text, size_t *len);
/* Parses a checkpoint into c (initialized, replaced on success): 0,
 * -EBADMSG, -ENOMEM. c is unchanged on failure. */
int leader_epoch_decode(const char *text, size_t len, struct leader_epoch_cache *c);
/* Reads dir/leader-epoch-checkpoint into c: 0, -ENOENT (no file: c left
 * empty), -EBADMSG (damaged), or another negative errno. */
int leader_epoch_load(const char *dir, struct leader_epoch_cache *c);
/* Writes c as dir/leader-epoch-checkpoint atomically (tmp, fsync, rename,
 * directory fsync): 0 or a negative errno (the old file then stays, or the
 * new one is whole; a temporary file left over is removed at the next
 * write or by leader_epoch_load). */
int leader_epoch_store(const char *dir, const struct leader_epoch_cache *c);

/* The high watermark checkpoint, "replication-offset-checkpoint" in the
 * partition directory (Kafka keeps one such file per data dir; here each
 * partition has its own, beside its leader-epoch checkpoint), so a
 * restarted replica serves what was committed at once:
 *
 *   0                      format version
 *   OFFSET                 the high watermark, decimal
 *   XXXXXXXXXXXXXXXX       XXH3-64 of every byte above, 16 lowercase hex digits
 *
 * each line ending in "\n", decoded as strictly as the epoch checkpoint
 * (one spelling; offset <= INT64_MAX), written the same way. */
#define HW_CHECKPOINT_FILE "replication-offset-checkpoint"
#define HW_CHECKPOINT_MAX_LEN 64
/* The text into buf (HW_CHECKPOINT_MAX_LEN bytes): its length. */
size_t hw_checkpoint_encode(uint64_t hw, char *buf);
/* 0 with *hw, or -EBADMSG. */
int hw_checkpoint_decode(const char *text, size_t len, uint64_t *hw);
/* dir/replication-offset-checkpoint: 0 with *hw, -ENOENT, -EBADMSG, or
 * another negative errno. */
int hw_checkpoint_load(const char *dir, uint64_t *hw);
/* Writes it atomically (as leader_epoch_store): 0 or a negative errno. */
int hw_checkpoint_store(const char *dir, uint64_t hw);

#endif
