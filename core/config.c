/* config.c - topic config keys, defaults, parsing and persistence.
 *
 * One table describes every key: its name, how to parse it and where it
 * lives in struct topic_config. config_set() parses into a copy and only
 * commits it when the value is valid, so a refused line changes nothing.
 *
 * Persistence is all-or-nothing: config_save() replaces the file by a rename
 * of a fsynced temp file and then fsyncs the directory, so a crash leaves the
 * old or the new file, never a mix; a failed save removes its temp file.
 * config_load() parses into a copy and hands it over only when every line
 * was good: a damaged file is refused (the topic is then shown as failed),
 * never half applied. A path.tmp left by a crash is not read; the topic
 * removes it at open. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "logger.h"

enum kind {
    K_PARTITIONS,
    K_I64,
    K_RATIO,
    K_POLICY,
    K_CODEC,
    K_FRAMING,
    K_SEP,
    K_ACKS,
    K_RESET,
    K_BOOL
};

struct key {
    const char *name;
    enum kind kind;
    size_t off;
    int64_t min, max;
};

#define F(field) offsetof(struct topic_config, field)
static const struct key keys[] = {
    {"partitions", K_PARTITIONS, F(partitions), 1, 65536},
    {"retention.ms", K_I64, F(retention_ms), -1, INT64_MAX},
    {"retention.bytes", K_I64, F(retention_bytes), -1, INT64_MAX},
    {"segment.bytes", K_I64, F(segment_bytes), 14, INT32_MAX},
    {"segment.ms", K_I64, F(segment_ms), 1, INT64_MAX},
    {"cleanup.policy", K_POLICY, F(cleanup_policy), 0, 0},
    {"min.cleanable.dirty.ratio", K_RATIO, F(min_cleanable_dirty_ratio), 0, 0},
    {"delete.retention.ms", K_I64, F(delete_retention_ms), 0, INT64_MAX},
    {"file.delete.delay.ms", K_I64, F(file_delete_delay_ms), 0, INT64_MAX},
    {"compression.type", K_CODEC, F(compression), 0, 0},
    {"max.message.bytes", K_I64, F(max_message_bytes), 0, 32 << 20},
    {"framing", K_FRAMING, F(framing), 0, 0},
    {"key.separator", K_SEP, F(key_separator), 0, 0},
    {"acks", K_ACKS, F(acks), 0, 0},
    {"min.insync.replicas", K_I64, F(min_insync_replicas), 1, 1000},
    {"replication.factor", K_I64, F(replication_factor), 1, 1000},
    {"flush.ms", K_I64, F(flush_ms), 0, INT64_MAX},
    {"auto.offset.reset", K_RESET, F(auto_offset_reset), 0, 0},
    {"unclean.leader.election.enable", K_BOOL, F(unclean_leader_election), 0, 0},
};
#undef F

void config_defaults(struct topic_config *c, uint32_t partitions)
{
    memset(c, 0, sizeof(*c));
    c->partitions = partitions ? partitions : 1;
    c->retention_ms = 604800000;
    c->retention_bytes = -1;
    c->segment_bytes = 1073741824;
    c->segment_ms = 604800000;
    c->cleanup_policy = CLEANUP_DELETE;
    c->min_cleanable_dirty_ratio = 0.5;
    c->delete_retention_ms = 86400000;
    c->file_delete_delay_ms = 60000;
    c->compression = BATCH_CODEC_NONE;
    c->max_message_bytes = 1048588;
    c->framing = FRAMING_LINE;
    c->acks = CONFIG_ACKS_DEFAULT;
    c->min_insync_replicas = 1;
    c->replication_factor = 1;
    c->flush_ms = INT64_MAX;
    c->auto_offset_reset = OFFSET_RESET_EARLIEST;
}

int config_acks(const struct topic_config *c)
{
    if (c->acks != CONFIG_ACKS_DEFAULT)
        return c->acks;
    return c->replication_factor > 1 ? CONFIG_ACKS_ALL : 1;
}

int config_parse_i64(const char *v, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    if (!*v || isspace((unsigned char)*v))
        return -EINVAL;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || *end || x < min || x > max)
        return -EINVAL;
    *out = x;
    return 0;
}

static const struct key *find_key(const char *name)
{
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (!strcmp(keys[i].name, name))
            return &keys[i];
    return NULL;
}

int config_set(struct topic_config *c, const char *key, const char *value)
{
    const struct key *k = find_key(key);
    if (!k)
        return -EINVAL;
    struct topic_config n = *c;
    void *field = (char *)&n + k->off;
    int64_t i64;
    switch (k->kind) {
    case K_PARTITIONS:
        if (config_parse_i64(value, k->min, k->max, &i64) || (uint32_t)i64 < c->partitions)
            return -EINVAL;
        n.partitions = (uint32_t)i64;
        break;
    case K_I64:
        if (config_parse_i64(value, k->min, k->max, &i64))
            return -EINVAL;
        *(int64_t *)field = i64;
        break;
    case K_RATIO: {
        char *end;
        double d = strtod(value, &end);
        if (!*value || *end || !(d >= 0.0 && d <= 1.0))
            return -EINVAL;
        n.min_cleanable_dirty_ratio = d;
        break;
    }
    case K_POLICY:
        if (!strcmp(value, "delete"))
            n.cleanup_policy = CLEANUP_DELETE;
        else if (!strcmp(value, "compact"))
            n.cleanup_policy = CLEANUP_COMPACT;
        else if (!strcmp(value, "compact,delete") || !strcmp(value, "delete,compact"))
            n.cleanup_policy = CLEANUP_COMPACT | CLEANUP_DELETE;
        else
            return -EINVAL;
        break;
    case K_CODEC:
        if (!strcmp(value, "none") || !strcmp(value, "uncompressed"))
            n.compression = BATCH_CODEC_NONE;
        else if (!strcmp(value, "lz4"))
            n.compression = BATCH_CODEC_LZ4;
        else
            return -EINVAL;
        break;
    case K_FRAMING:
        if (!strcmp(value, "line"))
            n.framing = FRAMING_LINE;
        else if (!strcmp(value, "write"))
            n.framing = FRAMING_WRITE;
        else
            return -EINVAL;
        break;
    case K_SEP:
        /* The text form ends lines with \n and drops a trailing \r. */
        if (strlen(value) > CONFIG_KEY_SEPARATOR_MAX || strpbrk(value, "\r\n"))
            return -EINVAL;
        strcpy(n.key_separator, value);
        break;
    case K_ACKS:
        if (!*value)
            n.acks = CONFIG_ACKS_DEFAULT;
        else if (!strcmp(value, "all") || !strcmp(value, "-1"))
            n.acks = CONFIG_ACKS_ALL;
        else if (!strcmp(value, "1") || !strcmp(value, "0"))
            n.acks = value[0] - '0';
        else
            return -EINVAL;
        break;
    case K_BOOL:
        if (!strcmp(value, "true") || !strcmp(value, "false"))
            *(int *)field = value[0] == 't';
        else
            return -EINVAL;
        break;
    case K_RESET:
        if (!strcmp(value, "earliest"))
            n.auto_offset_reset = OFFSET_RESET_EARLIEST;
        else if (!strcmp(value, "latest"))
            n.auto_offset_reset = OFFSET_RESET_LATEST;
        else
            return -EINVAL;
        break;
    }
    *c = n;
    return 0;
}

/* Splits "key=value" into buf (surrounding blanks and a trailing \r\n
 * dropped; key.separator keeps its value verbatim, as a blank is a valid
 * separator). -EINVAL without '=' or when too long. */
static int split_line(const char *line, size_t len, char buf[CONFIG_LINE_MAX], char **key,
                      char **val)
{
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    if (len == 0 || len >= CONFIG_LINE_MAX || memchr(line, 0, len))
        return -EINVAL;
    memcpy(buf, line, len);
    buf[len] = 0;
    char *eq = strchr(buf, '=');
    if (!eq)
        return -EINVAL;
    *eq = 0;
    char *k = buf, *v = eq + 1;
    while (isspace((unsigned char)*k))
        k++;
    for (char *e = k + strlen(k); e > k && isspace((unsigned char)e[-1]);)
        *--e = 0;
    if (strcmp(k, "key.separator")) {
        while (isspace((unsigned char)*v))
            v++;
        for (char *e = v + strlen(v); e > v && isspace((unsigned char)e[-1]);)
            *--e = 0;
    }
    *key = k;
    *val = v;
    return 0;
}

int config_set_line(struct topic_config *c, const char *line, size_t len)
{
    char buf[CONFIG_LINE_MAX], *key, *val;
    int r = split_line(line, len, buf, &key, &val);
    return r ? r : config_set(c, key, val);
}

size_t config_format(const struct topic_config *c, char *buf, size_t cap)
{
    static const char *codecs[] = {"none", "lz4"};
    static const char *policies[] = {"", "delete", "compact", "compact,delete"};
    int n = snprintf(buf, cap,
                     "partitions=%" PRIu32 "\n"
                     "retention.ms=%" PRId64 "\n"
                     "retention.bytes=%" PRId64 "\n"
                     "segment.bytes=%" PRId64 "\n"
                     "segment.ms=%" PRId64 "\n"
                     "cleanup.policy=%s\n"
                     "min.cleanable.dirty.ratio=%.15g\n"
                     "delete.retention.ms=%" PRId64 "\n"
                     "file.delete.delay.ms=%" PRId64 "\n"
                     "compression.type=%s\n"
                     "max.message.bytes=%" PRId64 "\n"
                     "framing=%s\n"
                     "key.separator=%s\n"
                     "acks=%s\n"
                     "min.insync.replicas=%" PRId64 "\n"
                     "replication.factor=%" PRId64 "\n"
                     "flush.ms=%" PRId64 "\n"
                     "auto.offset.reset=%s\n"
                     "unclean.leader.election.enable=%s\n",
                     c->partitions, c->retention_ms, c->retention_bytes, c->segment_bytes,
                     c->segment_ms, policies[c->cleanup_policy & 3], c->min_cleanable_dirty_ratio,
                     c->delete_retention_ms, c->file_delete_delay_ms, codecs[c->compression],
                     c->max_message_bytes, c->framing == FRAMING_LINE ? "line" : "write",
                     c->key_separator,
                     c->acks == CONFIG_ACKS_ALL       ? "all"
                     : c->acks == CONFIG_ACKS_DEFAULT ? ""
                     : c->acks                        ? "1"
                                                      : "0",
                     c->min_insync_replicas, c->replication_factor, c->flush_ms,
                     c->auto_offset_reset == OFFSET_RESET_LATEST ? "latest" : "earliest",
                     c->unclean_leader_election ? "true" : "false");
    return n < 0 ? 0 : (size_t)n;
}

/* A name a later version could give a key: [a-z0-9._-], not empty. */
static int key_name_plausible(const char *k)
{
    if (!*k)
        return 0;
    for (; *k; k++)
        if (!((*k >= 'a' && *k <= 'z') || (*k >= '0' && *k <= '9') || *k == '.' || *k == '_' ||
              *k == '-'))
            return 0;
    return 1;
}

int config_load(struct topic_config *c, const char *path)
{
    FILE *f = fopen(path, "re");
    char buf[CONFIG_LINE_MAX], *line = NULL, *key, *val;
    size_t cap = 0;
    ssize_t len;
    struct topic_config n;
    int r = 0, lineno = 0;
    if (!f)
        return -errno;
    config_defaults(&n, 1);
    n.partitions = 0; /* a config must name its partition count */
    errno = 0;
    while (!r && (len = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (line[0] == '#' || (len == 1 && line[0] == '\n'))
            continue;
        if ((r = split_line(line, (size_t)len, buf, &key, &val)) == 0) {
            if (find_key(key))
                r = config_set(&n, key, val);
            else if (key_name_plausible(key)) /* a key of a later version */
                logger_log(LOG_LEVEL_WARN, "%s: unknown key %s skipped", path, key);
            else
                r = -EINVAL;
        }
        if (r)
            logger_log(LOG_LEVEL_ERROR, "%s: line %d is not a valid config line", path, lineno);
        errno = 0;
    }
    if (!r && ferror(f))
        r = errno ? -errno : -EIO;
    free(line);
    fclose(f);
    if (!r && n.partitions == 0) {
        logger_log(LOG_LEVEL_ERROR, "%s: no partitions= line", path);
        r = -EINVAL;
    }
    if (!r)
        *c = n;
    return r;
}

int config_save(const struct topic_config *c, const char *path, int *replaced)
{
    char buf[2048];
    size_t len = config_format(c, buf, sizeof(buf));
    return fsutil_write_atomic(path, buf, len, NULL, replaced);
}
