/* write.c - WRITE, FLUSH and FSYNC, and the appends they make: to a
 * partition's own file, or routed by key through .produce. The lines of
 * .config and cursor files are control.c's.
 *
 * Writes only translate: records go through replicate/'s forward_produce
 * (cluster mode: to the leader, or here) or straight to core's
 * partition_produce with the topic's acks; waiting for the ISR happens
 * there. acks=all on a partition whose high watermark follows its log end
 * (one node, one replica) fsyncs each write instead. fsync of a partition
 * in cluster mode also waits until the high watermark passes the log end
 * and what the handle wrote (written_end, maybe at another broker).
 *
 * Core's listener (fs_partition_event) is here: it tells a thread's own
 * WRITE (writing_topic) from every other append. */
#include "ops_impl.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "framing.h"
#include "murmur2.h"
#include "produce.h"
#include "remote.h"

/* The partition this thread is appending to by a WRITE to its own file
 * (append_records): the kernel drops that file's cached size itself. */
static __thread const struct topic *writing_topic;
static __thread uint32_t writing_index;

/* Core's listener (store_add_listener): readers see a partition change
 * when its high watermark moves (on one node, at every append), whoever
 * appended (a write, .produce, a close or fsync that flushed a partial
 * line, a follower's fetch): the kernel drops its cached attributes
 * (unless the change is this thread's WRITE to that file) and the group
 * members waiting on it wake. __consumer_offsets is internal, and group.c
 * appends to it under a group lock that waking would take. */
void fs_partition_event(void *arg, struct topic *t, uint32_t partition, unsigned events)
{
    struct fs_context *fc = arg;
    if (!(events & (PARTITION_EVENT_HW | PARTITION_EVENT_TRUNCATE)) ||
        !strcmp(t->name, GROUP_OFFSETS_TOPIC))
        return;
    if (writing_topic != t || writing_index != partition)
        fs_partition_changed(fc, t, partition);
    if (fc->groups)
        group_notify_append(fc->groups, t, partition);
}

/* A local append (produce_local_fn): the topic's produce path here. */
struct local_append {
    struct partition *p;
    struct scratch *s;
    const struct record_ref *r;
    size_t n;
    struct produce_acks acks;
};

static int append_here(void *arg, uint64_t *base_offset)
{
    struct local_append *a = arg;
    return partition_produce(a->p, &a->s->builder, a->r, a->n, clock_now_ms(), &a->acks,
                             base_offset);
}

/* Stores a list of records as one batch in partition `index` of t, with
 * the acks of cfg (the topic's); the listener then wakes consumers waiting
 * on it (fs_partition_event). `by_write`: the append is a WRITE to the
 * partition's own file. In cluster mode, records for a partition another
 * broker leads are sent to it (produce.h) and are stored once it has them.
 * *end (optional) gets the offset after them. */
static int append_records(struct topic *t, uint32_t index, struct scratch *s,
                          const struct topic_config *cfg, const struct record_ref *r, size_t n,
                          int by_write, uint64_t *end)
{
    struct partition *p = topic_partition(t, index);
    if (!p)
        return -ENOENT;
    struct local_append a = {
        p, s, r, n, {config_acks(cfg) == CONFIG_ACKS_ALL, cfg->min_insync_replicas}};
    uint64_t base = 0;
    if (by_write) {
        writing_topic = t;
        writing_index = index;
    }
    int e = the_fs && the_fs->forward
                ? forward_produce(the_fs->forward, t->name, index, r, n, append_here, &a, &base)
                : append_here(&a, &base);
    writing_topic = NULL;
    if (!e && the_fs)
        remote_written(the_fs->remote, t, index); /* read your writes where no replica is */
    if (!e && end)
        *end = base + n;
    return e;
}

/* Routes records of .produce: keyed ones by Kafka's partitioner, keyless
 * ones all to one partition per call (sticky), chosen round robin. */
static int produce_records(struct topic *t, struct scratch *s, const struct topic_config *cfg,
                           struct record_list *l)
{
    uint32_t nparts = topic_partition_count(t);
    uint32_t sticky = atomic_fetch_add(&t->round_robin, 1) % nparts;
    size_t done = 0;
    int r = 0;
    /* One pass per partition that has records; order within a partition is kept. */
    unsigned char *seen = calloc(nparts, 1);
    uint32_t *dest = malloc(l->n * sizeof(*dest));
    struct record_ref *sel = malloc(l->n * sizeof(*sel));
    if (!seen || !dest || !sel) {
        r = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < l->n; i++)
        dest[i] = l->r[i].key_len >= 0
                      ? murmur2_partition(l->r[i].data, (size_t)l->r[i].key_len, nparts)
                      : sticky;
    for (size_t i = 0; i < l->n && done < l->n && !r; i++) {
        uint32_t part = dest[i];
        if (seen[part])
            continue;
        seen[part] = 1;
        size_t k = 0;
        for (size_t j = i; j < l->n; j++)
            if (dest[j] == part)
                sel[k++] = l->r[j];
        r = append_records(t, part, s, cfg, sel, k, 0, NULL);
        done += k;
    }
out:
    free(seen);
    free(dest);
    free(sel);
    return r;
}

/* How the handle's writes become records: the topic's framing, except that
 * .produce always takes lines. rules points into cfg, the caller's. */
static void handle_framing_rules(const struct handle *h, struct topic_config *cfg,
                                 struct framing_rules *rules)
{
    topic_config_snapshot(h->topic, cfg);
    framing_rules_of(cfg, rules);
    if (h->kind == NODE_PRODUCE)
        rules->framing = FRAMING_LINE;
}

/* Appends the records framed in s->records: to the handle's partition, or
 * routed by key for .produce. by_write: see append_records. */
static int store_records(struct handle *h, struct scratch *s, const struct topic_config *cfg,
                         int by_write)
{
    if (h->kind != NODE_PARTITION)
        return produce_records(h->topic, s, cfg, &s->records);
    uint64_t end = 0;
    int r = append_records(h->topic, h->index, s, cfg, s->records.r, s->records.n, by_write, &end);
    if (!r && end > h->written_end)
        h->written_end = end;
    return r;
}

/* Turns the handle's partial line into a record. Caller holds h->lock. */
static int commit_pending(struct handle *h)
{
    if (!h->pending.len || (h->kind != NODE_PARTITION && h->kind != NODE_PRODUCE))
        return 0;
    struct scratch *s = scratch_get();
    if (!s)
        return -ENOMEM;
    struct topic_config cfg;
    struct framing_rules rules;
    handle_framing_rules(h, &cfg, &rules);
    s->records.n = 0;
    int r = framing_take_pending(&rules, &h->pending, &s->records);
    if (!r)
        r = store_records(h, s, &cfg, 0);
    if (!r)
        h->pending.len = 0;
    return r;
}

static int write_records(struct handle *h, const char *buf, size_t size, off_t off)
{
    struct scratch *s = scratch_get();
    if (!s)
        return -ENOMEM;
    struct topic_config cfg;
    struct framing_rules rules;
    handle_framing_rules(h, &cfg, &rules);
    if (h->kind == NODE_PARTITION && !h->append &&
        (uint64_t)off != partition_view_size(h->part, &h->view) + h->pending.len)
        return -ESPIPE;
    size_t tail;
    s->records.n = 0;
    int r = framing_split(&rules, &h->pending, buf, size, &s->records, &tail);
    if (r == -EMSGSIZE)
        framing_refuse(&rules, &h->pending, buf, size);
    if (r)
        return r;
    if (s->records.n) {
        r = store_records(h, s, &cfg, 1);
        if (r)
            return r;
    }
    return framing_commit(&h->pending, buf, size, tail, s->records.n > 0);
}

void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
              struct fuse_file_info *fi)
{
    (void)ino;
    struct handle *h = handle_of(fi);
    int r;
    pthread_mutex_lock(&h->lock);
    switch (h->kind) {
    case NODE_PARTITION:
    case NODE_PRODUCE:
        r = write_records(h, buf, size, off);
        break;
    case NODE_CONFIG: {
        struct topic_config trial;
        topic_config_snapshot(h->topic, &trial);
        r = write_control(h, &control_config_ops, &trial, buf, size);
        break;
    }
    case NODE_CURSOR:
        r = write_control(h, &control_cursor_ops, NULL, buf, size);
        break;
    default:
        r = -EBADF;
    }
    if (!r && h->kind == NODE_PARTITION) {
        /* acks=all on one node (or one replica): every write is an fsync.
         * A replicated partition's acks=all waited for its ISR instead. */
        struct topic_config cfg;
        topic_config_snapshot(h->topic, &cfg);
        if (config_acks(&cfg) == CONFIG_ACKS_ALL &&
            !(the_fs && the_fs->forward && cfg.replication_factor > 1))
            r = partition_sync(h->part);
    }
    pthread_mutex_unlock(&h->lock);
    if (r)
        fuse_reply_err(req, -r);
    else
        fuse_reply_write(req, size);
}

int flush_handle(struct handle *h)
{
    if (h->kind == NODE_CONFIG)
        return flush_control(h, &control_config_ops);
    if (h->kind == NODE_CURSOR)
        return flush_control(h, &control_cursor_ops);
    return commit_pending(h);
}

void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    struct handle *h = handle_of(fi);
    pthread_mutex_lock(&h->lock);
    int r = flush_handle(h);
    pthread_mutex_unlock(&h->lock);
    fuse_reply_err(req, -r);
}

/* fsync of a partition: stable storage here, and in cluster mode every
 * in-sync replica holding everything up to the log end and to written_end
 * (what this handle wrote, maybe forwarded to another broker's leader). */
static int sync_partition(struct partition *p, uint64_t written_end)
{
    int r = partition_sync(p);
    if (r || !the_fs || !the_fs->forward)
        return r;
    struct partition_ack ack = {0}; /* fsync waits for the ISR, whatever its size */
    partition_ack_point(p, &ack);
    if (written_end > ack.end_offset)
        ack.end_offset = written_end;
    return partition_wait_acked(p, &ack);
}

void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    (void)ino;
    (void)datasync;
    struct handle *h = handle_of(fi);
    pthread_mutex_lock(&h->lock);
    int r = flush_handle(h);
    pthread_mutex_unlock(&h->lock);
    if (!r && h->kind == NODE_PARTITION)
        r = sync_partition(h->part, h->written_end);
    else if (!r && h->kind == NODE_PRODUCE)
        for (uint32_t i = 0, n = topic_partition_count(h->topic); i < n && !r; i++)
            r = sync_partition(topic_partition(h->topic, i), 0);
    else if (!r && h->member)
        r = coord_member_sync(h->member);
    fuse_reply_err(req, -r);
}
