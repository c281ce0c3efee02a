/* produce.c - produce at any mount: the FRAME_PRODUCE handler of the leader
 * and the forwarder of the other brokers (produce.h).
 *
 * Forwarder invariants: a partition's sequence state (struct seq_state) is
 * locked for the whole delivery of one batch, so batches of a partition go
 * out one at a time, in order, and a retry always carries the batch's
 * original (epoch, sequence). next_seq moves on only when the leader
 * answered with an offset. A pooled connection (struct pooled) is used
 * under its mutex by one call at a time, and closed after any error. */
#include "produce.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "clock.h"
#include "config.h"
#include "cluster.h"
#include "logger.h"
#include "partition.h"
#include "produce_proto.h"
#include "producer_table.h"
#include "thread_slot.h"
#include "topic.h"

/* send_once(): this broker leads the partition now. */
#define FORWARD_LOCAL 1

/* ---------------------------------------------------------------- leader */

struct produce_leader {
    struct store *store;
    struct cluster *cluster;
    int broker_id;
    struct producer_table *table;
    /* Test hook: TOPICFS_TEST_LOSE_PRODUCE_REPLIES=N answers the first N
     * appended batches with -EAGAIN, as if their replies were lost. */
    atomic_int lose_replies;
};

struct leader_reply {
    uint8_t buf[PROTO_PRODUCE_REPLY_SIZE];
};

struct append_call {
    struct partition *p;
    const struct proto_produce_req *req;
    struct partition_ack ack; /* what to wait for */
};

/* Under the producer table's lock: appends only (the wait for the ISR
 * comes after, so other producers' batches are not held up). */
static int builder_init(void *b)
{
    batch_builder_init(b);
    return 0;
}

static void builder_free(void *b)
{
    batch_builder_free(b);
}

/* The batch a connection's thread builds, kept for its next request. */
static struct thread_slot builder_slot =
    THREAD_SLOT_INIT(sizeof(struct batch_builder), builder_init, builder_free);

static int append_now(void *arg, uint64_t *base_offset)
{
    struct append_call *a = arg;
    struct batch_builder *b = thread_slot_get(&builder_slot);
    if (!b)
        return -ENOMEM;
    return partition_append_records(a->p, b, a->req->records, a->req->count, clock_now_ms(),
                                    base_offset, &a->ack);
}

/* Stores a batch as the partition's leader (checked: else -EAGAIN, the
 * sender looks again), under the producer table, with the topic's acks:
 * 0 with *base once acknowledged (a duplicate too), or a negative errno. */
static int leader_store(struct produce_leader *l, const struct proto_produce_req *q, uint64_t *base)
{
    struct cluster_broker leader;
    int r = cluster_partition_leader(l->cluster, q->topic, q->partition, &leader);
    if (!r && leader.id != l->broker_id)
        r = -EAGAIN; /* not the leader (any more): the sender looks again */
    struct topic *t = r ? NULL : store_find(l->store, q->topic);
    struct partition *p = t ? topic_partition(t, q->partition) : NULL;
    if (!r && !p)
        r = -ENOENT;
    if (r) {
        if (t)
            topic_put(t);
        return r;
    }
    struct topic_config cfg;
    topic_config_snapshot(t, &cfg);
    int all = config_acks(&cfg) == CONFIG_ACKS_ALL;
    struct producer_batch b = {q->producer_id, q->producer_epoch, q->base_sequence, q->count};
    struct append_call a = {p, q, {.min_insync = all ? cfg.min_insync_replicas : 0}};
    r = producer_table_append(l->table, q->topic, q->partition, &b, append_now, &a, base);
    if (r == -EIO && a.ack.in_sync)
        logger_log(LOG_LEVEL_WARN,
                   "%s/p%" PRIu32 ": write refused (EIO): %" PRIu32
                   " in-sync replicas, min.insync.replicas=%" PRId64 " with acks=all",
                   q->topic, q->partition, a.ack.in_sync, cfg.min_insync_replicas);
    if (r == 1) {
        logger_log(LOG_LEVEL_DEBUG,
                   "%s/p%" PRIu32 ": producer %" PRIx64 " sequence %" PRIu32
                   " again: already at offset %" PRIu64,
                   q->topic, q->partition, q->producer_id, q->base_sequence, *base);
        /* Acknowledged once its records are (a retry of a write whose
         * answer was lost, or that timed out waiting). */
        partition_ack_point(p, &a.ack);
        a.ack.end_offset = *base + q->count;
        r = 0;
    }
    if (!r && all && (r = partition_wait_acked(p, &a.ack)) == -EIO) {
        logger_log(LOG_LEVEL_INFO,
                   "%s/p%" PRIu32 ": write ending at offset %" PRIu64
                   " not acknowledged: leadership moved before every in-sync replica had "
                   "it (the sender tries the new leader)",
                   q->topic, q->partition, a.ack.end_offset);
        r = -EAGAIN;
    }
    topic_put(t);
    return r;
}

static int produce_handle(void *arg, int peer_id, const struct frame *req, struct server_reply *rep)
{
    struct produce_leader *l = arg;
    struct proto_produce_req q;
    int r = proto_produce_req_decode(req->payload, req->h.length, &q);
    if (r)
        return r;
    uint64_t base = 0;
    r = leader_store(l, &q, &base);
    if (!r && atomic_load(&l->lose_replies) > 0 && atomic_fetch_sub(&l->lose_replies, 1) > 0)
        r = -EAGAIN;
    if (r && r != -EAGAIN && r != -ENOENT)
        logger_log(LOG_LEVEL_WARN, "produce from broker %d to %s/p%" PRIu32 " refused: %s", peer_id,
                   q.topic, q.partition, strerror(-r));
    proto_produce_req_free(&q);
    if (r)
        return r;
    struct leader_reply *lr = malloc(sizeof(*lr));
    if (!lr)
        return -ENOMEM; /* stored: a retry gets the offset as a duplicate */
    proto_produce_reply_encode(base, lr->buf);
    rep->iov[0] = (struct iovec){lr->buf, sizeof(lr->buf)};
    rep->iovcnt = 1;
    rep->done = free;
    rep->done_arg = lr;
    return 0;
}

struct producer_table *produce_leader_table(struct produce_leader *l)
{
    return l ? l->table : NULL;
}

int produce_leader_open(struct server *s, struct store *store, struct cluster *c, int broker_id,
                        struct produce_leader **out)
{
    struct produce_leader *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    int r = producer_table_new(&l->table);
    if (r) {
        free(l);
        return r;
    }
    l->store = store;
    l->cluster = c;
    l->broker_id = broker_id;
    const char *lose = getenv("TOPICFS_TEST_LOSE_PRODUCE_REPLIES");
    atomic_init(&l->lose_replies, lose ? atoi(lose) : 0);
    server_handle(s, FRAME_PRODUCE, produce_handle, l);
    *out = l;
    return 0;
}

void produce_leader_close(struct produce_leader *l)
{
    if (!l)
        return;
    producer_table_free(l->table);
    free(l);
}

/* ------------------------------------------------------------- forwarder */

struct seq_state {
    struct seq_state *next;
    char topic[PROTO_TOPIC_MAX];
    uint32_t partition;
    uint16_t epoch;
    uint32_t next_seq;
    pthread_mutex_t lock;
};

struct pooled {
    struct pooled *next;
    int broker_id;
    char addr[CLUSTER_HOST_MAX + 16];
    struct peer_conn *pc; /* NULL: not connected */
    pthread_mutex_t lock;
};

struct forwarder {
    struct cluster *cluster;
    struct produce_leader *leader; /* this broker's, for batches that come home */
    struct auth_secret secret;
    int have_secret;
    int broker_id;
    int delivery_timeout_ms;
    uint64_t producer_id;
    pthread_mutex_t lock; /* the two lists (their entries have their own locks) */
    struct seq_state *seqs;
    struct pooled *pool;
};

int forwarder_open(const struct forwarder_options *o, struct forwarder **out)
{
    struct forwarder *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    uint32_t rnd;
    if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd)) {
        free(f);
        return -errno;
    }
    f->cluster = o->cluster;
    f->leader = o->leader;
    if (o->secret) {
        f->secret = *o->secret;
        f->have_secret = 1;
    }
    f->broker_id = o->broker_id;
    f->delivery_timeout_ms =
        o->delivery_timeout_ms > 0 ? o->delivery_timeout_ms : DELIVERY_TIMEOUT_MS_DEFAULT;
    f->producer_id = (uint64_t)(uint32_t)o->broker_id << 32 | rnd;
    pthread_mutex_init(&f->lock, NULL);
    logger_log(LOG_LEVEL_INFO, "producer id %" PRIx64 " for writes forwarded to leaders",
               f->producer_id);
    *out = f;
    return 0;
}

void forwarder_close(struct forwarder *f)
{
    if (!f)
        return;
    for (struct seq_state *s = f->seqs, *n; s; s = n) {
        n = s->next;
        pthread_mutex_destroy(&s->lock);
        free(s);
    }
    for (struct pooled *p = f->pool, *n; p; p = n) {
        n = p->next;
        peer_close(p->pc);
        pthread_mutex_destroy(&p->lock);
        free(p);
    }
    auth_secret_wipe(&f->secret);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

uint64_t forwarder_producer_id(const struct forwarder *f)
{
    return f->producer_id;
}

static struct seq_state *seq_state_of(struct forwarder *f, const char *topic, uint32_t partition)
{
    pthread_mutex_lock(&f->lock);
    struct seq_state *s = f->seqs;
    while (s && !(s->partition == partition && !strcmp(s->topic, topic)))
        s = s->next;
    if (!s && (s = calloc(1, sizeof(*s)))) {
        snprintf(s->topic, sizeof(s->topic), "%s", topic);
        s->partition = partition;
        pthread_mutex_init(&s->lock, NULL);
        s->next = f->seqs;
        f->seqs = s;
    }
    pthread_mutex_unlock(&f->lock);
    return s;
}

static struct pooled *pooled_of(struct forwarder *f, int broker_id)
{
    pthread_mutex_lock(&f->lock);
    struct pooled *p = f->pool;
    while (p && p->broker_id != broker_id)
        p = p->next;
    if (!p && (p = calloc(1, sizeof(*p)))) {
        p->broker_id = broker_id;
        pthread_mutex_init(&p->lock, NULL);
        p->next = f->pool;
        f->pool = p;
    }
    pthread_mutex_unlock(&f->lock);
    return p;
}

/* Errors after which the same request may succeed later. -EIO is the
 * leader's refusal with fewer in-sync replicas than min.insync.replicas
 * (nothing stored), or damage there. */
static int retriable(int e)
{
    return e != -EMSGSIZE && e != -EINVAL && e != -ENOSPC && e != -EDQUOT && e != -EILSEQ &&
           e != -EALREADY && e != -ESTALE && e != -ENOMEM && e != -EACCES && e != -EIO;
}

/* One attempt: the request in buf to the leader now, within left_ms. */
static int send_once(struct forwarder *f, const char *topic, uint32_t partition, const uint8_t *buf,
                     size_t len, int left_ms, uint64_t *base_offset)
{
    struct cluster_broker leader;
    int r = cluster_partition_leader(f->cluster, topic, partition, &leader);
    if (r)
        return r == -ENOENT ? -EAGAIN : r; /* the cluster may not know the topic yet */
    if (leader.id == f->broker_id)
        return FORWARD_LOCAL; /* this broker leads it now */
    struct pooled *p = pooled_of(f, leader.id);
    if (!p)
        return -ENOMEM;
    char addr[sizeof(p->addr)];
    snprintf(addr, sizeof(addr), "%s:%d", leader.host, leader.port);
    pthread_mutex_lock(&p->lock);
    if (p->pc && strcmp(p->addr, addr)) { /* the broker came back elsewhere */
        peer_close(p->pc);
        p->pc = NULL;
    }
    if (!p->pc) {
        r = peer_connect(addr, f->have_secret ? &f->secret : NULL, f->broker_id, leader.id, left_ms,
                         &p->pc);
        if (r)
            p->pc = NULL;
        else
            snprintf(p->addr, sizeof(p->addr), "%s", addr);
    }
    if (!r) {
        struct iovec iov = {(void *)buf, len};
        struct frame reply;
        r = peer_call(p->pc, FRAME_PRODUCE, &iov, 1, left_ms, &reply);
        if (!r)
            r = proto_produce_reply_decode(reply.payload, reply.h.length, base_offset);
        if (r) { /* whatever it was, start the next call on a fresh connection */
            peer_close(p->pc);
            p->pc = NULL;
        }
    }
    pthread_mutex_unlock(&p->lock);
    return r;
}

/* The request a forwarding thread encodes, kept for its next write (a
 * buffer above REQUEST_KEEP_BYTES is let go after use). */
#define REQUEST_KEEP_BYTES (16u << 20)

struct request_buf {
    uint8_t *buf;
    size_t cap;
};

static void request_buf_free(void *p)
{
    free(((struct request_buf *)p)->buf);
}

static struct thread_slot request_slot =
    THREAD_SLOT_INIT(sizeof(struct request_buf), NULL, request_buf_free);

/* This thread's request buffer with room for size bytes, or NULL. */
static uint8_t *request_room(size_t size)
{
    struct request_buf *rb = size == SIZE_MAX ? NULL : thread_slot_get(&request_slot);
    if (rb && rb->cap < size) {
        uint8_t *b = realloc(rb->buf, size);
        if (!b)
            return NULL;
        rb->buf = b;
        rb->cap = size;
    }
    return rb ? rb->buf : NULL;
}

static void request_done(void)
{
    struct request_buf *rb = thread_slot_get(&request_slot);
    if (rb && rb->cap > REQUEST_KEEP_BYTES) {
        free(rb->buf);
        *rb = (struct request_buf){0};
    }
}

static void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int forward_produce(struct forwarder *f, const char *topic, uint32_t partition,
                    const struct record_ref *recs, size_t n, produce_local_fn local, void *arg,
                    uint64_t *base_offset)
{
    struct cluster_broker leader;
    int r = cluster_partition_leader(f->cluster, topic, partition, &leader);
    if (r == -ENOENT || (!r && leader.id == f->broker_id)) {
        r = local(arg, base_offset);
        if (r != -EAGAIN)
            return r;
        /* Leadership is coming here, but this replica does not lead yet. */
    }
    if (!n || n > UINT32_MAX)
        return -EINVAL;
    struct seq_state *s = seq_state_of(f, topic, partition);
    if (!s)
        return -ENOMEM;
    int64_t deadline = clock_now_ms() + f->delivery_timeout_ms;
    pthread_mutex_lock(&s->lock);
    struct proto_produce_req q = {.partition = partition,
                                  .producer_id = f->producer_id,
                                  .producer_epoch = s->epoch,
                                  .base_sequence = s->next_seq,
                                  .count = (uint32_t)n,
                                  .records = (struct record_ref *)recs};
    snprintf(q.topic, sizeof(q.topic), "%s", topic);
    size_t size = proto_produce_req_size(&q);
    uint8_t *buf = request_room(size);
    ssize_t len = buf                ? proto_produce_req_encode(&q, buf, size)
                  : size == SIZE_MAX ? -EMSGSIZE
                                     : -ENOMEM;
    if (len < 0) {
        r = (int)len;
        goto out;
    }
    uint64_t base = 0;
    int remote = 0;  /* an attempt may have reached another broker */
    int renewed = 0; /* the epoch went up for a leader that lacked earlier batches */
    for (int attempt = 0;; attempt++) {
        int64_t left = deadline - clock_now_ms();
        if (left <= 0) {
            r = -ETIMEDOUT;
            break;
        }
        r = send_once(f, topic, partition, buf, (size_t)len, (int)left, &base);
        if (r == FORWARD_LOCAL) {
            /* Leadership moved here. A batch that may have reached the old
             * leader goes through this broker's producer table, with its
             * sequence: if it came here by replication, it is a duplicate. */
            r = remote && f->leader ? leader_store(f->leader, &q, &base) : local(arg, &base);
            if (r != -EAGAIN) {
                r = r ? r : FORWARD_LOCAL;
                break;
            }
        } else {
            remote = 1;
        }
        if (r == -EILSEQ && !renewed) {
            /* The leader lacks batches before this one (it led without
             * them: an unclean election), so it has not stored this one
             * either: a new epoch starts the producer's state again there. */
            renewed = 1;
            s->epoch++;
            s->next_seq = 0;
            q.producer_epoch = s->epoch;
            q.base_sequence = 0;
            logger_log(LOG_LEVEL_WARN,
                       "%s/p%" PRIu32 ": the leader lacks earlier batches of this broker "
                       "(out of order): sending again under producer epoch %" PRIu32,
                       topic, partition, (uint32_t)s->epoch);
            size = proto_produce_req_size(&q);
            if (!(buf = request_room(size))) {
                r = size == SIZE_MAX ? -EMSGSIZE : -ENOMEM;
                break;
            }
            if ((len = proto_produce_req_encode(&q, buf, size)) < 0) {
                r = (int)len;
                break;
            }
            continue;
        }
        if (!r || !retriable(r))
            break;
        if (attempt == 0 || attempt % 50 == 0)
            logger_log(LOG_LEVEL_INFO,
                       "%s/p%" PRIu32 ": sequence %" PRIu32 " not delivered (%s): retrying", topic,
                       partition, q.base_sequence, strerror(-r));
        left = deadline - clock_now_ms();
        pause_ms(left < PRODUCE_RETRY_BACKOFF_MS ? (int)(left > 0 ? left : 0)
                                                 : PRODUCE_RETRY_BACKOFF_MS);
    }
    if (r == FORWARD_LOCAL) {
        /* Leadership came here while the batch was on its way: appended
         * locally. An earlier attempt may have reached the old leader, so
         * the batch's sequence must never be used again. */
        if (remote) {
            s->epoch++;
            s->next_seq = 0;
        }
        r = 0;
        if (base_offset)
            *base_offset = base;
    } else if (!r) {
        s->next_seq += (uint32_t)n;
        if (base_offset)
            *base_offset = base;
    } else if (retriable(r) || r == -EILSEQ || r == -EALREADY || r == -ESTALE) {
        /* Stored or not, nobody knows: a new epoch, so the next batch is
         * never taken for this one. */
        logger_log(LOG_LEVEL_WARN,
                   "%s/p%" PRIu32 ": sequence %" PRIu32 " not delivered within %d ms (%s)", topic,
                   partition, q.base_sequence, f->delivery_timeout_ms, strerror(-r));
        s->epoch++;
        s->next_seq = 0;
        r = -EIO;
    }
out:
    pthread_mutex_unlock(&s->lock);
    request_done();
    return r;
}
