/* status.c - .cluster and .metrics (status.h).
 *
 * Both start from a snapshot: the topics (referenced, so a concurrent rmdir
 * cannot free them) with each partition's partition_info, taken under the
 * store's lock; the groups are then visited with no store lock held. The
 * snapshot also copies the store's failed topics (those that could not be
 * opened at mount): .cluster shows each as a `topic name=N state=failed
 * error=ERRNO` line and .metrics as topicfs_topic_failed{topic="N"} 1 (0 for
 * every topic that serves).
 *
 * In cluster mode (status_set_cluster) .cluster starts with what replicate/
 * knows, from its cache: cluster_view() makes no ZooKeeper round trip; each
 * partition line then shows the partition's assignment and state from the
 * same cache (cluster_partition_view) and its high watermark. */
#include "status.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

/* Set by main before the mount and cleared after it: no .cluster read runs
 * while it changes. */
static struct cluster *status_cluster;

void status_set_cluster(struct cluster *c)
{
    status_cluster = c;
}

struct topic_snapshot {
    struct topic *topic;
    uint32_t nparts;
    struct partition_info *parts;
};

struct failed_snapshot {
    char *name;
    int err;
};

struct snapshot {
    struct topic_snapshot *topics;
    size_t n, cap;
    struct failed_snapshot *failed;
    size_t nfailed, failed_cap;
};

static int take_topic(struct topic *t, void *arg)
{
    struct snapshot *s = arg;
    if (!strcmp(t->name, GROUP_OFFSETS_TOPIC))
        return 0;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        struct topic_snapshot *n = realloc(s->topics, cap * sizeof(*n));
        if (!n)
            return -1;
        s->topics = n;
        s->cap = cap;
    }
    struct topic_snapshot *ts = &s->topics[s->n];
    ts->nparts = topic_partition_count(t);
    ts->parts = calloc(ts->nparts ? ts->nparts : 1, sizeof(*ts->parts));
    if (!ts->parts)
        return -1;
    for (uint32_t i = 0; i < ts->nparts; i++)
        partition_info(topic_partition(t, i), &ts->parts[i]);
    topic_get(t);
    ts->topic = t;
    s->n++;
    return 0;
}

/* A failed __consumer_offsets is shown too: without it there are no groups. */
static int take_failed(const char *name, int err, void *arg)
{
    struct snapshot *s = arg;
    if (s->nfailed == s->failed_cap) {
        size_t cap = s->failed_cap ? s->failed_cap * 2 : 4;
        struct failed_snapshot *n = realloc(s->failed, cap * sizeof(*n));
        if (!n)
            return -1;
        s->failed = n;
        s->failed_cap = cap;
    }
    if (!(s->failed[s->nfailed].name = strdup(name)))
        return -1;
    s->failed[s->nfailed++].err = err;
    return 0;
}

static void snapshot_free(struct snapshot *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->topics[i].parts);
        topic_put(s->topics[i].topic);
    }
    free(s->topics);
    for (size_t i = 0; i < s->nfailed; i++)
        free(s->failed[i].name);
    free(s->failed);
}

static int snapshot_take(struct store *st, struct snapshot *s)
{
    memset(s, 0, sizeof(*s));
    if (store_foreach(st, take_topic, s) || store_foreach_failed(st, take_failed, s)) {
        snapshot_free(s);
        return -1;
    }
    return 0;
}

/* Writes one status file from a snapshot; 0 or -1. */
typedef int (*status_writer)(FILE *f, const struct snapshot *s, struct group_registry *groups);

/* The text a writer makes of a fresh snapshot, malloc'ed, or NULL. */
static char *render(struct store *st, struct group_registry *groups, status_writer write,
                    size_t *len)
{
    struct snapshot s;
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f)
        return NULL;
    int failed = snapshot_take(st, &s) != 0;
    if (!failed) {
        failed = write(f, &s, groups) != 0;
        snapshot_free(&s);
    }
    if (fclose(f) != 0 || failed) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* The cluster's lines; the id of this broker, or -1. */
static int write_members(FILE *f)
{
    struct cluster_view v;
    if (cluster_view(status_cluster, &v))
        return -1;
    fprintf(f, "cluster id=%s zookeeper=%s\n", v.cluster_id, cluster_zk_state_name(v.zookeeper));
    for (size_t i = 0; i < v.nbrokers; i++) {
        const struct cluster_broker *b = &v.brokers[i];
        fprintf(f, "broker id=%d host=%s port=%d self=%d\n", b->id, b->host, b->port,
                b->id == v.self);
    }
    fprintf(f, "controller id=%d epoch=%d\n", v.controller, v.controller_epoch);
    /* The group coordinator: the leader of __consumer_offsets p0. */
    struct cluster_broker coordinator = {.id = -1};
    if (cluster_partition_leader(status_cluster, GROUP_OFFSETS_TOPIC, 0, &coordinator))
        coordinator.id = -1;
    fprintf(f, "coordinator id=%d\n", coordinator.id);
    int self = v.self;
    cluster_view_free(&v);
    return self;
}

static void write_ids(FILE *f, const char *key, const int32_t *ids, uint32_t n)
{
    fprintf(f, " %s=", key);
    for (uint32_t i = 0; i < n; i++)
        fprintf(f, "%s%d", i ? "," : "", ids[i]);
}

/* A partition as the cluster has it, with this replica's high watermark
 * (replica.h: a leader's, or what a follower last heard from its leader).
 * A topic the cluster does not know (this data dir's own) has no leader,
 * replicas or ISR. */
static void write_cluster_partition(FILE *f, const char *topic, uint32_t p,
                                    const struct partition_info *pi)
{
    struct cluster_partition_view v;
    if (cluster_partition_view(status_cluster, topic, p, &v))
        v = (struct cluster_partition_view){.leader = -1, .leader_epoch = -1};
    fprintf(f, "partition topic=%s partition=%u leader=%d", topic, p, v.leader);
    write_ids(f, "replicas", v.replicas, v.nreplicas);
    write_ids(f, "isr", v.isr, v.nisr);
    fprintf(f, " leader_epoch=%d high_watermark=%" PRIu64 "\n", v.leader_epoch, pi->high_watermark);
}

static int write_cluster(FILE *f, const struct snapshot *s, struct group_registry *groups)
{
    int self = 0;
    (void)groups;
    if (status_cluster) {
        if ((self = write_members(f)) < 0)
            return -1;
    } else {
        fprintf(f, "broker id=0 self=1\ncontroller id=0\ncoordinator id=0\n");
    }
    for (size_t i = 0; i < s->n; i++)
        for (uint32_t p = 0; p < s->topics[i].nparts; p++) {
            if (status_cluster) {
                write_cluster_partition(f, s->topics[i].topic->name, p, &s->topics[i].parts[p]);
                continue;
            }
            /* A single node leads its own partitions. */
            fprintf(f,
                    "partition topic=%s partition=%u leader=%d replicas=%d isr=%d "
                    "leader_epoch=%u\n",
                    s->topics[i].topic->name, p, self, self, self,
                    s->topics[i].parts[p].leader_epoch);
        }
    for (size_t i = 0; i < s->nfailed; i++) {
        const char *name = strerrorname_np(-s->failed[i].err);
        if (name)
            fprintf(f, "topic name=%s state=failed error=%s\n", s->failed[i].name, name);
        else
            fprintf(f, "topic name=%s state=failed error=%d\n", s->failed[i].name,
                    -s->failed[i].err);
    }
    return 0;
}

char *status_cluster_text(struct store *st, size_t *len)
{
    return render(st, NULL, write_cluster, len);
}

/* A per-partition metric: a number field of struct partition_info. */
struct partition_metric {
    const char *name, *type, *help;
    size_t offset, size; /* of the field: uint64_t or uint32_t */
};

#define FIELD(f) offsetof(struct partition_info, f), sizeof(((struct partition_info *)0)->f)

static const struct partition_metric partition_metrics[] = {
    {"topicfs_partition_start_offset", "gauge", "First offset of the log.", FIELD(start_offset)},
    {"topicfs_partition_end_offset", "gauge", "Offset the next record gets.", FIELD(end_offset)},
    {"topicfs_partition_high_watermark", "gauge", "End of the records readers see.",
     FIELD(high_watermark)},
    {"topicfs_partition_bytes", "gauge", "Length of the partition stream.", FIELD(view_bytes)},
    {"topicfs_partition_stored_bytes", "gauge", "Bytes its segments take on disk.",
     FIELD(stored_bytes)},
    {"topicfs_partition_segments", "gauge", "Segments of the log.", FIELD(segments)},
    {"topicfs_partition_bad_batches", "gauge",
     "Damaged runs of batches found in the log (reads of them fail with EIO).", FIELD(bad_batches)},
    {"topicfs_partition_records_in_total", "counter", "Records appended since the mount.",
     FIELD(records_in)},
    {"topicfs_partition_bytes_in_total", "counter", "Value bytes appended since the mount.",
     FIELD(bytes_in)},
    {"topicfs_partition_bytes_out_total", "counter",
     "Partition-stream bytes read since the mount (partitions, hidden names, group members).",
     FIELD(bytes_out)},
};

static uint64_t metric_value(const struct partition_metric *m, const struct partition_info *pi)
{
    const char *field = (const char *)pi + m->offset;
    if (m->size == sizeof(uint32_t)) {
        uint32_t v;
        memcpy(&v, field, sizeof(v));
        return v;
    }
    uint64_t v;
    memcpy(&v, field, sizeof(v));
    return v;
}

static void partition_family(FILE *f, const struct snapshot *s, const struct partition_metric *m)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name, m->type);
    for (size_t i = 0; i < s->n; i++)
        for (uint32_t p = 0; p < s->topics[i].nparts; p++)
            fprintf(f, "%s{topic=\"%s\",partition=\"%u\"} %" PRIu64 "\n", m->name,
                    s->topics[i].topic->name, p, metric_value(m, &s->topics[i].parts[p]));
}

/* The groups' samples of one family, for every topic of the snapshot. */
struct group_family {
    FILE *f;
    const char *name;
    int lag; /* else the committed offset */
};

static int group_samples(struct group *g, void *arg)
{
    struct group_family *gf = arg;
    struct topic *t = group_topic(g);
    uint32_t n;
    struct group_partition_state *st = group_partition_states(g, &n);
    if (!st)
        return -1;
    for (uint32_t p = 0; p < n; p++)
        fprintf(gf->f, "%s{topic=\"%s\",group=\"%s\",partition=\"%u\"} %" PRIu64 "\n", gf->name,
                t->name, group_name(g), p, gf->lag ? st[p].lag : st[p].committed);
    free(st);
    return 0;
}

static int write_metrics(FILE *f, const struct snapshot *s, struct group_registry *groups)
{
    fprintf(f,
            "# HELP topicfs_topics Topics of the mount.\n# TYPE topicfs_topics gauge\n"
            "topicfs_topics %zu\n",
            s->n);
    fprintf(f, "# HELP topicfs_topic_failed 1 if the topic could not be opened at mount and is "
               "not served (see the daemon's log), else 0.\n"
               "# TYPE topicfs_topic_failed gauge\n");
    for (size_t i = 0; i < s->n; i++)
        fprintf(f, "topicfs_topic_failed{topic=\"%s\"} 0\n", s->topics[i].topic->name);
    for (size_t i = 0; i < s->nfailed; i++)
        fprintf(f, "topicfs_topic_failed{topic=\"%s\"} 1\n", s->failed[i].name);
    for (size_t m = 0; m < sizeof(partition_metrics) / sizeof(partition_metrics[0]); m++)
        partition_family(f, s, &partition_metrics[m]);
    struct group_family families[] = {
        {f, "topicfs_group_committed_offset", 0},
        {f, "topicfs_group_lag", 1},
    };
    const char *help[] = {"Offset the group will read next in the partition.",
                          "Records of the partition the group has not consumed."};
    for (size_t k = 0; k < 2; k++) {
        fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n", families[k].name, help[k], families[k].name);
        for (size_t i = 0; i < s->n; i++)
            if (group_foreach(groups, s->topics[i].topic, group_samples, &families[k]))
                return -1;
    }
    return 0;
}

char *status_metrics_text(struct store *st, struct group_registry *groups, size_t *len)
{
    return render(st, groups, write_metrics, len);
}
