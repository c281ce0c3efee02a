/* config.h - topic configuration: Kafka's key names and defaults.
 *
 * A config is a plain struct; config_set() is the only way to change a key
 * and it validates before it writes, so a refused line (-EINVAL) changes
 * nothing. The text form, one "key=value" a line, is both what `.config`
 * shows and what the topic directory stores. The stored file is replaced
 * whole (temp file, fsync, rename, directory fsync), so after a crash it is
 * the old or the new one, and it is loaded whole or refused. */
#ifndef TOPICFS_CONFIG_H
#define TOPICFS_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"

enum framing { FRAMING_LINE = 0, FRAMING_WRITE = 1 };
enum cleanup_policy { CLEANUP_DELETE = 1, CLEANUP_COMPACT = 2 }; /* bit set */
enum offset_reset { OFFSET_RESET_EARLIEST = 0, OFFSET_RESET_LATEST = 1 };

#define CONFIG_KEY_SEPARATOR_MAX 16

#define CONFIG_ACKS_ALL (-1)
/* acks not set (the text form's empty value): all with more than one
 * replica, else 1 (Kafka's producers default to all since 3.0). */
#define CONFIG_ACKS_DEFAULT (-2)

/* Longest "key=value" line accepted, newline included. */
#define CONFIG_LINE_MAX 512

struct topic_config {
    uint32_t partitions;
    int64_t retention_ms;
    int64_t retention_bytes;
    int64_t segment_bytes;
    int64_t segment_ms;
    int cleanup_policy;
    double min_cleanable_dirty_ratio;
    int64_t delete_retention_ms;
    int64_t file_delete_delay_ms; /* how long removed segments stay readable by older views */
    enum batch_codec compression;
    int64_t max_message_bytes;
    enum framing framing;
    char key_separator[CONFIG_KEY_SEPARATOR_MAX + 1]; /* "" = no keys */
    int acks; /* Kafka's: 0, 1, CONFIG_ACKS_ALL (-1, "all") or CONFIG_ACKS_DEFAULT */
    int64_t min_insync_replicas;
    int64_t replication_factor;
    int64_t flush_ms;
    enum offset_reset auto_offset_reset;
    int unclean_leader_election; /* unclean.leader.election.enable (cluster mode) */
};

void config_defaults(struct topic_config *c, uint32_t partitions);
/* Applies one key; -EINVAL (and no change) for unknown keys and bad values.
 * partitions may only grow. */
int config_set(struct topic_config *c, const char *key, const char *value);
/* The acks a write takes: 0, 1 or CONFIG_ACKS_ALL (the default resolved
 * by replication_factor). */
int config_acks(const struct topic_config *c);
/* Parses a whole decimal string into [min, max]; -EINVAL otherwise. */
int config_parse_i64(const char *v, int64_t min, int64_t max, int64_t *out);
/* Parses "key=value" (surrounding blanks and a trailing \r ignored). */
int config_set_line(struct topic_config *c, const char *line, size_t len);
/* Writes every key, one "key=value\n" a line; returns the length (like snprintf). */
size_t config_format(const struct topic_config *c, char *buf, size_t cap);
/* Reads a config file written by config_save() into *c, whole or not at all.
 * Unknown keys (with a name a later version could use) are skipped with a
 * log line; a line that is not "key=value", a bad value of a known key, a
 * missing partitions= line, a NUL byte or a read error make it -EINVAL (or
 * the read's errno) and leave *c alone. */
int config_load(struct topic_config *c, const char *path);
/* Atomically replaces the file: writes path.tmp, fsyncs it, renames it over
 * path, fsyncs the directory. On an error before the rename the old file is
 * in place and path.tmp is gone, with *replaced (optional) 0; *replaced is 1
 * once the rename is done, so an error with *replaced set came from the
 * directory's fsync: the new file is in place but maybe not yet durable. */
int config_save(const struct topic_config *c, const char *path, int *replaced);

#endif
