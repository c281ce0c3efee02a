/* fetcher.c - followers fetch from their leaders (replica.h): one thread
 * per leader broker, with one authenticated connection to it
 * (peer_connect, the cluster secret), for every partition this broker
 * follows there.
 *
 * A round: the partitions that follow this leader now (their role, epoch
 * and log end taken under m->lock, at most PARTS_MAX, starting each round
 * one further so every partition gets its turn at the front), then
 *   0. the ones whose log was found damaged cut it where the damage starts
 *      (partition_first_bad) and fetch that part again;
 *   1. the ones that must truncate first (a new leader or epoch, a batch
 *      that did not follow on): OffsetForLeaderEpoch with the latest epoch
 *      each knows, partition_truncation_point, partition_truncate, asked
 *      again while the answer is not final (KIP-279);
 *   2. one FETCH of the others from their log end, long-polling at the
 *      leader up to replica.fetch.wait.max.ms; each answer is applied under
 *      the replica's op_lock if it still follows this leader at the same
 *      epoch: the batches appended as stored (partition_append_batch), the
 *      high watermark moved to min(the leader's, the log end). Out of range
 *      below the leader's log start: partition_reset there. A batch that
 *      does not follow on, or out of range above: truncate again first.
 *      A batch this broker cannot store (ENOSPC, EIO, a bad checksum) is
 *      not appended: the log end stays, the partition waits BACKOFF_MAX_MS
 *      and the leader takes it out of the ISR if that lasts. Other errors
 *      (the leader moved, epochs differ, damage at the leader: EIO, ...):
 *      that partition waits RETRY_MS (logged once per error), and the role
 *      thread brings the new state.
 * A connection error closes the connection; the next round connects again
 * after a backoff (BACKOFF_MIN_MS doubling to BACKOFF_MAX_MS). */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logger.h"
#include "replica_impl.h"

#define PARTS_MAX 128
#define RETRY_MS 200
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define IDLE_MS 200
#define CONNECT_TIMEOUT_MS 5000
#define CALL_SLACK_MS 10000
#define FETCH_MAX_BYTES (10u << 20)    /* Kafka's replica.fetch.response.max.bytes */
#define PARTITION_MAX_BYTES (1u << 20) /* Kafka's replica.fetch.max.bytes */
#define TRUNCATE_ROUNDS 8

struct followed {
    struct replica *r; /* referenced */
    int32_t epoch;
    int truncate;
    int damaged; /* reads found bad ranges in its log */
    uint64_t end;
};

/* Under m->lock: the partitions following f's leader now. */
static size_t gather(struct fetcher *f, struct followed *out, unsigned *rot)
{
    struct replica_manager *m = f->m;
    int64_t now = replica_now_ms();
    size_t n = 0;
    for (size_t k = 0; k < m->n && n < PARTS_MAX; k++) {
        struct replica *r = m->v[(k + *rot) % m->n];
        if (r->role != ROLE_FOLLOWER || r->leader != f->leader || r->retry_at_ms > now)
            continue;
        struct partition_info pi;
        partition_info(r->p, &pi);
        replica_ref(r);
        out[n++] =
            (struct followed){r, r->epoch, r->need_truncate, pi.bad_batches > 0, pi.end_offset};
    }
    (*rot)++;
    return n;
}

/* Under r->op_lock: whether r still follows this leader at epoch. */
static int still(struct fetcher *f, struct replica *r, int32_t epoch)
{
    pthread_mutex_lock(&f->m->lock);
    int ok = r->role == ROLE_FOLLOWER && r->leader == f->leader && r->epoch == epoch;
    pthread_mutex_unlock(&f->m->lock);
    return ok;
}

static void set_flags(struct fetcher *f, struct replica *r, int truncate, int64_t retry_at)
{
    pthread_mutex_lock(&f->m->lock);
    if (truncate >= 0)
        r->need_truncate = truncate;
    if (retry_at)
        r->retry_at_ms = retry_at;
    pthread_mutex_unlock(&f->m->lock);
}

static int truncate_to(struct replica *r, uint64_t offset, const char *why)
{
    struct partition_info pi;
    partition_info(r->p, &pi);
    if (offset >= pi.end_offset)
        return 0;
    int e = partition_truncate(r->p, offset);
    if (e)
        logger_log(LOG_LEVEL_ERROR, "partition %s-%u: cannot truncate to %" PRIu64 ": %s", r->topic,
                   r->part, offset, strerror(-e));
    else
        logger_log(LOG_LEVEL_INFO,
                   "partition %s-%u: truncated from %" PRIu64 " to %" PRIu64 " (%s)", r->topic,
                   r->part, pi.end_offset, offset, why);
    return e;
}

/* A partition that knows no leader epoch: nothing to compare with the
 * leader's. An empty log has nothing to cut; else, as Kafka, what is past
 * the high watermark goes. 0 when done. */
static int truncate_without_epoch(struct replica *r)
{
    struct partition_info pi;
    partition_info(r->p, &pi);
    return truncate_to(r, pi.high_watermark, "no leader epoch known here");
}

/* Step 0: a follower whose log was found damaged (a read, a fetch or the
 * open met a bad range, which core never serves) cuts it where the damage
 * starts and fetches the rest again from the leader. Its log end goes back,
 * so the leader counts it as caught up only once it has them again. */
static void repair_parts(struct fetcher *f, struct followed *fs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct replica *r = fs[i].r;
        uint64_t bad;
        if (!fs[i].damaged)
            continue;
        pthread_mutex_lock(&r->op_lock);
        if (still(f, r, fs[i].epoch) && partition_first_bad(r->p, &bad) == 0 &&
            truncate_to(r, bad, "damaged on disk: fetching it again from the leader"))
            set_flags(f, r, -1, replica_now_ms() + BACKOFF_MAX_MS);
        pthread_mutex_unlock(&r->op_lock);
    }
}

/* Step 1 for the parts that must truncate: 0, or a connection error. */
static int truncate_parts(struct fetcher *f, struct followed *fs, size_t n)
{
    struct proto_epoch_query q[PARTS_MAX];
    struct followed *who[PARTS_MAX];
    uint8_t buf[2 + PARTS_MAX * (2 + 249 + 12)];
    for (int round = 0; round < TRUNCATE_ROUNDS; round++) {
        size_t nq = 0;
        for (size_t i = 0; i < n; i++) {
            struct followed *x = &fs[i];
            if (!x->truncate)
                continue;
            uint32_t latest;
            if (partition_latest_epoch(x->r->p, &latest) == -ENOENT) {
                pthread_mutex_lock(&x->r->op_lock);
                if (still(f, x->r, x->epoch) && truncate_without_epoch(x->r) == 0)
                    set_flags(f, x->r, 0, 0);
                pthread_mutex_unlock(&x->r->op_lock);
                x->truncate = 0;
                continue;
            }
            q[nq] = (struct proto_epoch_query){.partition = x->r->part,
                                               .current_leader_epoch = (uint32_t)x->epoch,
                                               .leader_epoch = latest};
            memcpy(q[nq].topic, x->r->topic, sizeof(q[nq].topic));
            who[nq++] = x;
        }
        if (!nq)
            return 0;
        ssize_t len = proto_epoch_req_encode(q, nq, buf, sizeof(buf));
        if (len < 0)
            return (int)len;
        struct iovec iov = {buf, (size_t)len};
        struct frame reply;
        int e = peer_call(f->pc, FRAME_OFFSET_FOR_EPOCH, &iov, 1, CALL_SLACK_MS, &reply);
        if (e)
            return e;
        struct proto_epoch_answer *a;
        size_t na;
        if ((e = proto_epoch_reply_decode(reply.payload, reply.h.length, &a, &na)))
            return e;
        if (na != nq) {
            free(a);
            return -EPROTO;
        }
        int64_t now = replica_now_ms();
        for (size_t i = 0; i < nq; i++) {
            struct followed *x = who[i];
            struct replica *r = x->r;
            if (a[i].partition != r->part || strcmp(a[i].topic, r->topic)) {
                free(a);
                return -EPROTO;
            }
            pthread_mutex_lock(&r->op_lock);
            if (!still(f, r, x->epoch)) {
                x->truncate = 0;
            } else if (a[i].error == 0) {
                uint64_t off;
                int final;
                e = partition_truncation_point(r->p, a[i].leader_epoch, a[i].end_offset, &off,
                                               &final);
                if (e == -ENOENT)
                    e = truncate_without_epoch(r);
                else if (!e)
                    e = truncate_to(r, off, "diverged from the leader's log");
                if (e || final) {
                    x->truncate = 0;
                    set_flags(f, r, e ? 1 : 0, e ? now + RETRY_MS : 0);
                }
            } else if (a[i].error == ENOENT) {
                /* The leader cannot place our epoch: Kafka truncates to the HW. */
                if (truncate_without_epoch(r) == 0)
                    set_flags(f, r, 0, 0);
                x->truncate = 0;
            } else {
                set_flags(f, r, -1, now + RETRY_MS);
                x->truncate = 0;
            }
            pthread_mutex_unlock(&r->op_lock);
        }
        free(a);
    }
    return 0;
}

/* Whether err (a negative errno: the leader's answer, or this broker's
 * append of it; 0: a fetch went through) differs from the last one of r:
 * each error is logged once, and its end. */
static int new_error(struct replica *r, int err)
{
    int is_new = err != r->fetch_err;
    r->fetch_err = err;
    return is_new;
}

/* The leader's producer state that came with its batches: kept for the
 * batches this log now holds (under r->op_lock, so a role change, which
 * takes it too, never sees batches without their producers). */
static void follow_producers(struct replica_manager *m, const struct followed *x,
                             const struct proto_fetch_result *res)
{
    static __thread struct producer_kept v[PROTO_PRODUCERS_MAX];
    if (!m->o.producers)
        return;
    struct partition_info pi;
    partition_info(x->r->p, &pi);
    for (size_t i = 0; i < res->nproducers; i++)
        proto_fetch_producer(res, i, &v[i]);
    int e = producer_table_follow(m->o.producers, x->r->topic, x->r->part, x->end, pi.end_offset, v,
                                  res->nproducers);
    if (e)
        logger_log(LOG_LEVEL_WARN, "partition %s-%u: producer state not kept: %s", x->r->topic,
                   x->r->part, strerror(-e));
}

/* One answer of a fetch, applied (under r->op_lock). */
static void apply(struct fetcher *f, struct followed *x, const struct proto_fetch_result *res)
{
    struct replica *r = x->r;
    int64_t now = replica_now_ms();
    int e = 0;
    if (res->error && res->error != ERANGE && new_error(r, -(int)res->error))
        logger_log(LOG_LEVEL_WARN,
                   "partition %s-%u: the leader answers %s at offset %" PRIu64
                   " (asking again every %d ms)",
                   r->topic, r->part, strerror((int)res->error), x->end, RETRY_MS);
    if (res->error == 0) {
        if (res->records_len) {
            if (res->compacted)
                e = partition_set_compacted(r->p);
            if (!e)
                e = partition_append_batch(r->p, res->records, res->records_len);
            if (e == -EINVAL) {
                logger_log(LOG_LEVEL_WARN,
                           "partition %s-%u: the leader's batches do not follow on at %" PRIu64
                           ": truncating first",
                           r->topic, r->part, x->end);
                set_flags(f, r, 1, 0);
                return;
            }
            if (e) {
                if (new_error(r, e))
                    logger_log(LOG_LEVEL_ERROR,
                               "partition %s-%u: cannot append the leader's batches at %" PRIu64
                               ": %s (trying again every %d ms)",
                               r->topic, r->part, x->end, strerror(-e), BACKOFF_MAX_MS);
                set_flags(f, r, -1, now + BACKOFF_MAX_MS);
                return;
            }
        }
        if (new_error(r, 0))
            logger_log(LOG_LEVEL_INFO, "partition %s-%u: fetching again at %" PRIu64, r->topic,
                       r->part, x->end);
        follow_producers(f->m, x, res);
        if ((e = partition_set_high_watermark(r->p, res->high_watermark)))
            logger_log(LOG_LEVEL_WARN, "partition %s-%u: high watermark %" PRIu64 ": %s", r->topic,
                       r->part, res->high_watermark, strerror(-e));
        return;
    }
    if (res->error == ERANGE) {
        if (x->end < res->log_start_offset) {
            e = partition_reset(r->p, res->log_start_offset, res->log_start_pos);
            if (e)
                logger_log(LOG_LEVEL_ERROR,
                           "partition %s-%u: cannot start afresh at %" PRIu64 ": %s", r->topic,
                           r->part, res->log_start_offset, strerror(-e));
            else
                logger_log(LOG_LEVEL_INFO,
                           "partition %s-%u: log end %" PRIu64
                           " below the leader's log start: started afresh at %" PRIu64,
                           r->topic, r->part, x->end, res->log_start_offset);
            set_flags(f, r, -1, e ? now + BACKOFF_MAX_MS : 0);
        } else {
            set_flags(f, r, 1, 0);
        }
        return;
    }
    set_flags(f, r, -1, now + RETRY_MS);
}

/* Step 2: 0, or a connection error. */
static int fetch_parts(struct fetcher *f, struct followed *fs, size_t n)
{
    struct replica_manager *m = f->m;
    struct proto_fetch_part parts[PARTS_MAX];
    struct followed *who[PARTS_MAX];
    static const size_t cap = 16 + PARTS_MAX * (2 + 249 + 24);
    size_t np = 0;
    for (size_t i = 0; i < n; i++) {
        if (fs[i].truncate)
            continue;
        struct partition_info pi;
        partition_info(fs[i].r->p, &pi); /* after any truncation */
        fs[i].end = pi.end_offset;
        parts[np] = (struct proto_fetch_part){.partition = fs[i].r->part,
                                              .fetch_offset = pi.end_offset,
                                              .current_leader_epoch = (uint32_t)fs[i].epoch,
                                              .max_bytes = PARTITION_MAX_BYTES};
        memcpy(parts[np].topic, fs[i].r->topic, sizeof(parts[np].topic));
        who[np++] = &fs[i];
    }
    if (!np)
        return 0;
    struct proto_fetch_req q = {.replica_id = m->o.broker_id,
                                .max_wait_ms = (uint32_t)m->o.fetch_wait_max_ms,
                                .min_bytes = 1,
                                .max_bytes = FETCH_MAX_BYTES,
                                .n = np,
                                .parts = parts};
    uint8_t *buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    ssize_t len = proto_fetch_req_encode(&q, buf, cap);
    if (len < 0) {
        free(buf);
        return (int)len;
    }
    struct iovec iov = {buf, (size_t)len};
    struct frame reply;
    int e = peer_call(f->pc, FRAME_FETCH, &iov, 1, m->o.fetch_wait_max_ms + CALL_SLACK_MS, &reply);
    free(buf);
    if (e)
        return e;
    struct proto_fetch_result *res;
    size_t nr;
    if ((e = proto_fetch_reply_decode(reply.payload, reply.h.length, &res, &nr)))
        return e;
    if (nr != np)
        e = -EPROTO;
    for (size_t i = 0; !e && i < np; i++)
        if (res[i].partition != parts[i].partition || strcmp(res[i].topic, parts[i].topic))
            e = -EPROTO;
    for (size_t i = 0; !e && i < np; i++) {
        struct replica *r = who[i]->r;
        pthread_mutex_lock(&r->op_lock);
        if (still(f, r, who[i]->epoch))
            apply(f, who[i], &res[i]);
        pthread_mutex_unlock(&r->op_lock);
    }
    free(res);
    return e;
}

static int connect_leader(struct fetcher *f)
{
    struct replica_manager *m = f->m;
    struct cluster_broker b;
    char addr[CLUSTER_HOST_MAX + 16];
    int e = cluster_broker(m->c, f->leader, &b);
    if (e)
        return e;
    snprintf(addr, sizeof(addr), strchr(b.host, ':') ? "[%s]:%d" : "%s:%d", b.host, b.port);
    struct peer_conn *pc;
    e = peer_connect(addr, m->have_secret ? &m->secret : NULL, m->o.broker_id, f->leader,
                     CONNECT_TIMEOUT_MS, &pc);
    if (e)
        return e;
    pthread_mutex_lock(&m->lock);
    f->pc = pc;
    pthread_mutex_unlock(&m->lock);
    logger_log(LOG_LEVEL_INFO, "fetching from broker %d at %s", f->leader, addr);
    return 0;
}

static void disconnect(struct fetcher *f)
{
    pthread_mutex_lock(&f->m->lock);
    struct peer_conn *pc = f->pc;
    f->pc = NULL;
    pthread_mutex_unlock(&f->m->lock);
    peer_close(pc);
}

static void *fetcher_main(void *arg)
{
    struct fetcher *f = arg;
    struct replica_manager *m = f->m;
    struct followed *fs = calloc(PARTS_MAX, sizeof(*fs));
    unsigned rot = 0;
    int64_t backoff = 0;
    int last_err = 0;
    pthread_mutex_lock(&m->lock);
    while (fs && !m->stop) {
        size_t n = gather(f, fs, &rot);
        if (!n) {
            replica_wait(m, &m->work_cond, IDLE_MS);
            continue;
        }
        pthread_mutex_unlock(&m->lock);
        repair_parts(f, fs, n);
        int e = f->pc ? 0 : connect_leader(f);
        if (!e)
            e = truncate_parts(f, fs, n);
        if (!e)
            e = fetch_parts(f, fs, n);
        for (size_t i = 0; i < n; i++)
            replica_unref(m, fs[i].r);
        if (e) {
            if (e != last_err)
                logger_log(LOG_LEVEL_WARN, "fetching from broker %d: %s (trying again)", f->leader,
                           strerror(-e));
            last_err = e;
            disconnect(f);
            backoff = backoff ? backoff * 2 : BACKOFF_MIN_MS;
            if (backoff > BACKOFF_MAX_MS)
                backoff = BACKOFF_MAX_MS;
        } else {
            if (last_err)
                logger_log(LOG_LEVEL_INFO, "fetching from broker %d again", f->leader);
            last_err = 0;
            backoff = 0;
        }
        pthread_mutex_lock(&m->lock);
        if (backoff && !m->stop) {
            int64_t until = replica_now_ms() + backoff;
            for (int64_t now; !m->stop && (now = replica_now_ms()) < until;)
                replica_wait(m, &m->work_cond, until - now);
        }
    }
    pthread_mutex_unlock(&m->lock);
    free(fs);
    disconnect(f);
    return NULL;
}

int fetcher_ensure(struct replica_manager *m, int32_t leader)
{
    for (size_t i = 0; i < m->nfetchers; i++)
        if (m->fetchers[i]->leader == leader)
            return 0;
    if (m->stop)
        return -ECANCELED;
    if (m->nfetchers == m->fetchers_cap) {
        size_t cap = m->fetchers_cap ? m->fetchers_cap * 2 : 4;
        struct fetcher **v = realloc(m->fetchers, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        m->fetchers = v;
        m->fetchers_cap = cap;
    }
    struct fetcher *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->m = m;
    f->leader = leader;
    sigset_t block, old;
    sigfillset(&block);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int e = pthread_create(&f->thread, NULL, fetcher_main, f);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e) {
        free(f);
        return -e;
    }
    m->fetchers[m->nfetchers++] = f;
    return 0;
}

void fetchers_stop(struct replica_manager *m)
{
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->nfetchers; i++)
        if (m->fetchers[i]->pc)
            peer_abort(m->fetchers[i]->pc);
    pthread_cond_broadcast(&m->work_cond);
    pthread_mutex_unlock(&m->lock);
    /* No fetcher is made once stop is set: the list no longer changes. */
    for (size_t i = 0; i < m->nfetchers; i++) {
        pthread_join(m->fetchers[i]->thread, NULL);
        free(m->fetchers[i]);
    }
    m->nfetchers = 0;
}
