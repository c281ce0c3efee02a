/* topic_codec.h - the texts of the cluster's topics: the JSON of their
 * znodes (Kafka's layout before KRaft) and the data dir's list of the
 * topics it holds for the cluster. No I/O.
 *
 *   /brokers/topics/<t>         the replica assignment, Kafka's version 3
 *     {"version":3,"topic_id":"<22 base64url>","partitions":{"0":[1,2,3],"1":[2,3,1]},
 *      "adding_replicas":{},"removing_replicas":{}}
 *   during a reassignment (Kafka's layout) a partition's list is the target
 *   replicas followed by those leaving, and removing_replicas names the
 *   leaving ones: "partitions":{"0":[1,2,3]},"removing_replicas":{"0":[3]}
 *   (topicfs writes adding_replicas empty; a decoder refuses removing
 *   replicas that are not the tail of the list, or all of it)
 *   /brokers/topics/<t>/partitions/<p>/state
 *     {"controller_epoch":1,"leader":1,"version":1,"leader_epoch":0,"isr":[1,2,3]}
 *   /config/topics/<t>          the topic's whole config but for partitions and
 *     replication.factor (the assignment says both), values as strings:
 *     {"version":1,"config":{"retention.ms":"604800000","cleanup.policy":"delete",...}}
 *
 * Decoders read what other brokers (or Kafka's tools) wrote: fields they do
 * not know are skipped, and anything they cannot trust is refused with
 * -EINVAL and leaves their output untouched. An assignment names partitions
 * 0 to N-1 (1 <= N <= 65536, each once, in any order), each with 1 to
 * CLUSTER_REPLICAS_MAX distinct broker ids; its topic_id may be missing
 * (Kafka's version 1 and 2: ""). A state's ISR has at most
 * CLUSTER_REPLICAS_MAX distinct ids and its leader is -1 (none) or an id.
 * A config's values must be strings that config_set() accepts; keys this
 * version does not know are skipped (a later version's), partitions= and
 * replication.factor= are ignored.
 *
 * DATA_DIR/cluster-topics, the topics of this data dir that the cluster
 * made, with the topic id each was made with, and the cluster's id
 * (topicfs's own file, written whole by fsutil_write_atomic):
 *   # topicfs: topics this broker holds for its cluster: name topic_id
 *   cluster.id=Wm3x0xnKQpG3TzvS1aU8Ag
 *   orders 4fXa8EwFQ3mKd2GxvVcTqg
 * Comment lines start with #; one cluster.id= line (a topic name has no
 * '='); every other line is a valid topic name, one blank, a valid topic
 * id; a name appears once. */
#ifndef TOPICFS_TOPIC_CODEC_H
#define TOPICFS_TOPIC_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "cluster_codec.h"
#include "config.h"

#define CLUSTER_REPLICAS_MAX 64
#define CLUSTER_PARTITIONS_MAX 65536

struct cluster_assignment {
    char topic_id[CLUSTER_ID_MAX]; /* "" when the znode has none */
    uint32_t nparts;
    uint32_t *first; /* nparts + 1: partition p's replicas are ids[first[p]] .. ids[first[p+1]-1] */
    int32_t *ids;
    uint32_t *leaving; /* NULL, or per partition how many of its last replicas leave */
};

/* a from nparts partitions of rf replicas each, flat[p * rf + i]. */
int cluster_assignment_make(struct cluster_assignment *a, const char *topic_id, uint32_t nparts,
                            uint32_t rf, const int32_t *flat);
/* Appends more partitions of rf replicas (flat as above); a unchanged on error. */
int cluster_assignment_grow(struct cluster_assignment *a, uint32_t more, uint32_t rf,
                            const int32_t *flat);
int cluster_assignment_copy(struct cluster_assignment *dst, const struct cluster_assignment *src);
void cluster_assignment_free(struct cluster_assignment *a);
/* Partition p's replicas: their count, and *ids. */
uint32_t cluster_assignment_replicas(const struct cluster_assignment *a, uint32_t p,
                                     const int32_t **ids);
/* Of partition p's replicas, how many leave (the last ones), and the
 * target: the replicas that stay (count, *ids). */
uint32_t cluster_assignment_leaving(const struct cluster_assignment *a, uint32_t p);
uint32_t cluster_assignment_target(const struct cluster_assignment *a, uint32_t p,
                                   const int32_t **ids);
/* 1 if a partition has leaving replicas (a reassignment is under way). */
int cluster_assignment_reassigning(const struct cluster_assignment *a);
/* Partition p's replicas become ids (n of them, the last `leaving` leave):
 * 0, -EINVAL or -ENOMEM (a unchanged). */
int cluster_assignment_set(struct cluster_assignment *a, uint32_t p, const int32_t *ids, uint32_t n,
                           uint32_t leaving);
/* The JSON, malloc'ed (NUL-terminated) with its length: 0 or a negative errno. */
int cluster_assignment_encode(const struct cluster_assignment *a, char **json, size_t *len);
int cluster_assignment_decode(const char *json, size_t len, struct cluster_assignment *a);

struct cluster_partition_state {
    int32_t controller_epoch;
    int32_t leader; /* -1: none */
    int32_t leader_epoch;
    uint32_t nisr;
    int32_t isr[CLUSTER_REPLICAS_MAX];
};

/* The JSON's length, or -ENOSPC (cap too small) or -EINVAL. */
int cluster_state_encode(const struct cluster_partition_state *s, char *buf, size_t cap);
int cluster_state_decode(const char *json, size_t len, struct cluster_partition_state *s);
/* 1 if both say the same. */
int cluster_state_equal(const struct cluster_partition_state *a,
                        const struct cluster_partition_state *b);

/* cfg's keys as the config znode's JSON, malloc'ed. */
int cluster_config_encode(const struct topic_config *cfg, char **json, size_t *len);
/* Into *cfg, which must hold the values of the keys the JSON does not name
 * (the defaults, with partitions and replication.factor already set). */
int cluster_config_decode(const char *json, size_t len, struct topic_config *cfg);

struct topic_id_entry {
    char *name;
    char id[CLUSTER_ID_MAX];
};

struct topic_id_list {
    char cluster_id[CLUSTER_ID_MAX]; /* "" if the file names none */
    struct topic_id_entry *v;        /* sorted by name */
    size_t n;
};

int topic_ids_parse(const char *text, size_t len, struct topic_id_list *l);
/* The file's text, malloc'ed. */
int topic_ids_format(const struct topic_id_list *l, char **text, size_t *len);
/* The entry of name, or NULL. */
const struct topic_id_entry *topic_ids_find(const struct topic_id_list *l, const char *name);
/* Adds or replaces name's entry; removes it (id NULL). 0 or -ENOMEM (l unchanged). */
int topic_ids_set(struct topic_id_list *l, const char *name, const char *id);
void topic_ids_free(struct topic_id_list *l);

#endif
