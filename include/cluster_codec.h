/* cluster_codec.h - the texts of cluster mode, with no I/O but the data dir's
 * own file: the data dir's meta.properties, the JSON of the znodes, listen=.
 *
 * meta.properties (DATA_DIR/meta.properties, Kafka's name and keys):
 *   version=0
 *   broker.id=1
 *   cluster.id=4fXa8EwFQ3mKd2GxvVcTqg
 * Lines starting with # or ! are comments; unknown keys are ignored (as
 * Kafka's Properties do); a key given twice keeps its last value.
 *
 * znodes (Kafka's layout and fields before KRaft; cluster.c, controller.c):
 *   /cluster/id        {"version":"1","id":"<cluster id>"}
 *   /brokers/ids/<id>  {"version":4,"host":"127.0.0.1","port":9093,"jmx_port":-1,
 *                       "timestamp":"<ms>","endpoints":["TOPICFS://127.0.0.1:9093"]}
 *   /controller        {"version":1,"brokerid":1,"timestamp":"<ms>"}
 *   /controller_epoch  the epoch in decimal, e.g. 3
 * Decoders read the fields they need from a whole, valid JSON object (any
 * other field is skipped; nesting up to 32 levels) and refuse anything else
 * with -EINVAL: they read what other brokers wrote. A timestamp may be a
 * number or a string of digits (Kafka writes strings).
 *
 * A cluster id is 1 to 63 of [A-Za-z0-9._-]; a host 1 to 255 of
 * [A-Za-z0-9._:-] (an IPv6 address without its brackets). */
#ifndef TOPICFS_CLUSTER_CODEC_H
#define TOPICFS_CLUSTER_CODEC_H

#include <stddef.h>
#include <stdint.h>

#define CLUSTER_ID_MAX 64    /* with its NUL */
#define CLUSTER_HOST_MAX 256 /* with its NUL */

int cluster_id_valid(const char *id);
/* A new cluster id as Kafka makes them: 16 random bytes in base64url, no
 * padding (22 characters). 0 or a negative errno (getrandom). */
int cluster_id_generate(char id[CLUSTER_ID_MAX]);
int cluster_host_valid(const char *host);

/* listen=HOST:PORT or [IPV6]:PORT, port 1-65535; host without brackets. */
int cluster_parse_hostport(const char *s, char host[CLUSTER_HOST_MAX], int *port);

struct cluster_meta {
    int broker_id;
    char cluster_id[CLUSTER_ID_MAX];
};

/* -EINVAL: a line that is neither a comment nor key=value, a version other
 * than 0, broker.id or cluster.id missing or bad. */
int cluster_meta_parse(const char *text, size_t len, struct cluster_meta *m);
/* The file's text into buf: its length, or -ENOSPC. */
int cluster_meta_format(const struct cluster_meta *m, char *buf, size_t cap);
/* DATA_DIR/meta.properties: -ENOENT if there is none (nor a data dir),
 * -EINVAL if it does not parse, or another negative errno. */
int cluster_meta_read(const char *data_dir, struct cluster_meta *m);
/* Writes it whole or not at all: a temporary file, fsync, rename, fsync of
 * the data dir. */
int cluster_meta_write(const char *data_dir, const struct cluster_meta *m);

struct cluster_broker_record {
    char host[CLUSTER_HOST_MAX];
    int port;
    int64_t timestamp_ms; /* -1 if absent */
};

/* Encoders: the JSON's length, or -ENOSPC (or -EINVAL for a bad field). */
int cluster_broker_encode(const struct cluster_broker_record *b, char *buf, size_t cap);
int cluster_broker_decode(const char *json, size_t len, struct cluster_broker_record *b);

struct cluster_controller_record {
    int broker_id;
    int64_t timestamp_ms; /* -1 if absent */
};

int cluster_controller_encode(const struct cluster_controller_record *c, char *buf, size_t cap);
int cluster_controller_decode(const char *json, size_t len, struct cluster_controller_record *c);

int cluster_id_encode(const char *id, char *buf, size_t cap);
int cluster_id_decode(const char *json, size_t len, char id[CLUSTER_ID_MAX]);

/* /controller_epoch: decimal digits, 0 to INT32_MAX (no sign, no spaces). */
int cluster_epoch_decode(const char *text, size_t len, int *epoch);

#endif
