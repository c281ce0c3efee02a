/* remote.c - reads at a broker that holds no replica (remote.h).
 *
 * One entry per partition read here, kept until remote_close (the
 * partitions of the cluster bound them), each with:
 *   io      held across one exchange with the leader and the appends of
 *           its answer: one catch-up per partition at a time, never held
 *           while waiting to retry;
 *   pc      its connection to the leader (under io; set and cleared under
 *           rr->lock too, so remote_close can abort it);
 *   synced_ms, polling (under rr->lock): when the last catch-up that
 *           reached the leader's high watermark started, and whether a
 *           watch's long poll is at the leader now: either makes the
 *           cache fresh;
 *   watchers, its watch thread (under rr->lock): the thread long-polls
 *           while watchers > 0, then ends; the next watch joins it and
 *           starts another.
 * A catch-up (catch_up) asks the cluster's cache for the partition's
 * replicas, leader and leader epoch at every try: a broker that became a
 * replica reads its own log from then on. It fetches from the local log
 * end (replica_id -1: the leader answers with batches below its high
 * watermark only) until the log end reaches the leader's high watermark.
 * An answer that cannot follow on (ERANGE: the cache lies below the
 * leader's log start, or past its log end after an unclean election;
 * EINVAL from partition_append_batch: the cache diverged) starts the cache
 * afresh at the leader's log start (partition_reset): what it holds is a
 * cache, never the only copy.
 *
 * Lock order: e->io, then rr->lock. A watch thread that saw no watchers
 * marks itself ended under rr->lock and takes it no more, so remote_watch
 * may join it under rr->lock. */
#include "remote.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "cluster.h"
#include "logger.h"
#include "partition.h"
#include "proto.h"
#include "server.h"
#include "topic.h"

#define CONNECT_TIMEOUT_MS 5000
#define CALL_SLACK_MS 5000

struct remote_entry {
    uint64_t topic_id;
    uint32_t part;
    char topic[PROTO_TOPIC_MAX];
    pthread_mutex_t io;
    struct peer_conn *pc;
    int32_t pc_broker;
    /* under rr->lock */
    int64_t synced_ms;
    int64_t stat_skip_until;
    int polling;
    uint64_t writes;                     /* remote_written calls */
    uint64_t synced_writes, poll_writes; /* writes when the last catch-up / the poll began */
    int watchers;
    int thread_made, thread_running;
    pthread_t thread;
    struct topic *watch_topic; /* held while the thread runs */
    int last_err;              /* logged once until it changes */
};

struct remote_reader {
    struct remote_options o;
    struct auth_secret secret;
    int have_secret;
    struct cluster *c;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* stop */
    int stop;
    struct remote_entry **v;
    size_t n, cap;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits ms or until stop (rr->lock held). */
static void pause_ms(struct remote_reader *rr, int64_t ms)
{
    int64_t until = now_ms() + ms;
    for (int64_t now; !rr->stop && (now = now_ms()) < until;) {
        struct timespec at;
        clock_gettime(CLOCK_MONOTONIC, &at);
        int64_t left = until - now;
        at.tv_sec += (time_t)(left / 1000);
        at.tv_nsec += (long)(left % 1000) * 1000000L;
        if (at.tv_nsec >= 1000000000L) {
            at.tv_sec++;
            at.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&rr->cond, &rr->lock, &at);
    }
}

int remote_open(const struct remote_options *o, struct cluster *c, struct remote_reader **out)
{
    struct remote_reader *rr = calloc(1, sizeof(*rr));
    if (!rr)
        return -ENOMEM;
    rr->o = *o;
    rr->o.secret = NULL;
    if (o->secret) {
        rr->secret = *o->secret;
        rr->have_secret = 1;
    }
    if (rr->o.fetch_wait_max_ms <= 0)
        rr->o.fetch_wait_max_ms = 500;
    rr->c = c;
    pthread_mutex_init(&rr->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&rr->cond, &ca);
    pthread_condattr_destroy(&ca);
    *out = rr;
    return 0;
}

void remote_close(struct remote_reader *rr)
{
    if (!rr)
        return;
    pthread_mutex_lock(&rr->lock);
    rr->stop = 1;
    pthread_cond_broadcast(&rr->cond);
    for (size_t i = 0; i < rr->n; i++)
        if (rr->v[i]->pc)
            peer_abort(rr->v[i]->pc);
    pthread_mutex_unlock(&rr->lock);
    /* No thread is made once stop is set. */
    for (size_t i = 0; i < rr->n; i++) {
        struct remote_entry *e = rr->v[i];
        if (e->thread_made)
            pthread_join(e->thread, NULL);
        peer_close(e->pc);
        pthread_mutex_destroy(&e->io);
        free(e);
    }
    free(rr->v);
    pthread_cond_destroy(&rr->cond);
    pthread_mutex_destroy(&rr->lock);
    auth_secret_wipe(&rr->secret);
    free(rr);
}

static int contains(const int32_t *ids, uint32_t n, int32_t id)
{
    for (uint32_t i = 0; i < n; i++)
        if (ids[i] == id)
            return 1;
    return 0;
}

/* The cluster's view of the partition, if this broker holds no replica
 * of it: 1, else 0. */
static int remote_view(struct remote_reader *rr, const char *topic, uint32_t part,
                       struct cluster_partition_view *v)
{
    if (strlen(topic) >= PROTO_TOPIC_MAX || cluster_partition_view(rr->c, topic, part, v))
        return 0;
    return v->nreplicas > 0 && !contains(v->replicas, v->nreplicas, rr->o.broker_id);
}

int remote_is_remote(struct remote_reader *rr, const struct topic *t, uint32_t part)
{
    struct cluster_partition_view v;
    return rr && remote_view(rr, t->name, part, &v);
}

/* Under rr->lock: the entry of (t, part), made if missing (NULL: no memory). */
static struct remote_entry *entry_of(struct remote_reader *rr, const struct topic *t, uint32_t part)
{
    for (size_t i = 0; i < rr->n; i++)
        if (rr->v[i]->topic_id == t->id && rr->v[i]->part == part)
            return rr->v[i];
    if (rr->n == rr->cap) {
        size_t cap = rr->cap ? rr->cap * 2 : 16;
        struct remote_entry **v = realloc(rr->v, cap * sizeof(*v));
        if (!v)
            return NULL;
        rr->v = v;
        rr->cap = cap;
    }
    struct remote_entry *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->topic_id = t->id;
    e->part = part;
    snprintf(e->topic, sizeof(e->topic), "%s", t->name);
    e->pc_broker = -1;
    e->synced_ms = -1; /* never */
    pthread_mutex_init(&e->io, NULL);
    rr->v[rr->n++] = e;
    return e;
}

/* Under rr->lock. A write forwarded from this mount since the last
 * catch-up (or the poll) began makes the cache stale at once: a read here
 * after a write here shows it. */
static int fresh(const struct remote_entry *e, int64_t now)
{
    if (e->polling && e->poll_writes == e->writes)
        return 1;
    return e->synced_ms >= 0 && now - e->synced_ms < REMOTE_FRESH_MS &&
           e->synced_writes == e->writes;
}

/* Under e->io. */
static void disconnect(struct remote_reader *rr, struct remote_entry *e)
{
    pthread_mutex_lock(&rr->lock);
    struct peer_conn *pc = e->pc;
    e->pc = NULL;
    e->pc_broker = -1;
    pthread_mutex_unlock(&rr->lock);
    peer_close(pc);
}

/* Under e->io: a connection to broker id. */
static int connect_to(struct remote_reader *rr, struct remote_entry *e, int32_t id, int timeout_ms)
{
    if (e->pc && e->pc_broker == id)
        return 0;
    disconnect(rr, e);
    struct cluster_broker b;
    char addr[CLUSTER_HOST_MAX + 16];
    int err = cluster_broker(rr->c, id, &b);
    if (err)
        return err;
    snprintf(addr, sizeof(addr), strchr(b.host, ':') ? "[%s]:%d" : "%s:%d", b.host, b.port);
    struct peer_conn *pc;
    err = peer_connect(addr, rr->have_secret ? &rr->secret : NULL, rr->o.broker_id, id,
                       timeout_ms < CONNECT_TIMEOUT_MS ? timeout_ms : CONNECT_TIMEOUT_MS, &pc);
    if (err)
        return err;
    pthread_mutex_lock(&rr->lock);
    if (rr->stop) {
        pthread_mutex_unlock(&rr->lock);
        peer_close(pc);
        return -ECANCELED;
    }
    e->pc = pc;
    e->pc_broker = id;
    pthread_mutex_unlock(&rr->lock);
    return 0;
}

int remote_apply(struct partition *p, const char *name, uint64_t fetch_offset,
                 const struct proto_fetch_result *res, int *more)
{
    int err = 0;
    *more = 0;
    if (res->error == 0 && res->records_len) {
        if (res->compacted)
            err = partition_set_compacted(p);
        if (!err)
            err = partition_append_batch(p, res->records, res->records_len);
        if (!err) {
            struct partition_info pi;
            partition_info(p, &pi);
            *more = pi.end_offset < res->high_watermark;
            return 0;
        }
        if (err != -EINVAL)
            return err;
    } else if (res->error != ERANGE) {
        return res->error ? -(int)res->error : 0;
    }
    /* Does not follow on: what the leader holds from its log start on. */
    err = partition_reset(p, res->log_start_offset, res->log_start_pos);
    if (err)
        return err;
    logger_log(LOG_LEVEL_INFO,
               "partition %s: cache of the leader's log started afresh at %" PRIu64
               " (it held up to %" PRIu64 ")",
               name, res->log_start_offset, fetch_offset);
    *more = 1;
    return 0;
}

/* The errnos of a fetch answer that mean: look the leader up again. */
static int leader_moved(int err)
{
    return err == -EREMOTE || err == -ESTALE || err == -EAGAIN || err == -ENOENT;
}

/* Under e->io: one FETCH from the local log end, its answer applied.
 * *retry: the error may pass (the leader moved, the connection broke). */
static int fetch_once(struct remote_reader *rr, struct remote_entry *e, struct partition *p,
                      const struct cluster_partition_view *v, int wait_ms, int64_t deadline,
                      int *more, int *retry)
{
    int64_t left = deadline - now_ms();
    int err = connect_to(rr, e, v->leader, left > 0 ? (int)left : 1);
    if (err) {
        *retry = 1;
        return err;
    }
    struct partition_info pi;
    partition_info(p, &pi);
    struct proto_fetch_part part = {.partition = e->part,
                                    .fetch_offset = pi.end_offset,
                                    .current_leader_epoch = (uint32_t)v->leader_epoch,
                                    .max_bytes = REMOTE_FETCH_MAX_BYTES};
    memcpy(part.topic, e->topic, sizeof(part.topic));
    struct proto_fetch_req q = {.replica_id = -1,
                                .max_wait_ms = (uint32_t)wait_ms,
                                .min_bytes = 1,
                                .max_bytes = REMOTE_FETCH_MAX_BYTES,
                                .n = 1,
                                .parts = &part};
    uint8_t buf[64 + PROTO_TOPIC_MAX];
    ssize_t len = proto_fetch_req_encode(&q, buf, sizeof(buf));
    if (len < 0)
        return (int)len;
    struct iovec iov = {buf, (size_t)len};
    struct frame reply;
    int call_ms = wait_ms + (left > CALL_SLACK_MS ? CALL_SLACK_MS : left > 1000 ? (int)left : 1000);
    if (wait_ms) {
        pthread_mutex_lock(&rr->lock);
        e->polling = 1;
        e->poll_writes = e->writes;
        pthread_mutex_unlock(&rr->lock);
    }
    err = peer_call(e->pc, FRAME_FETCH, &iov, 1, call_ms, &reply);
    struct proto_fetch_result *res = NULL;
    size_t nr = 0;
    if (!err && !(err = proto_fetch_reply_decode(reply.payload, reply.h.length, &res, &nr)) &&
        (nr != 1 || res[0].partition != e->part || strcmp(res[0].topic, e->topic)))
        err = -EPROTO;
    if (err) {
        /* A broken connection, or a whole request refused. */
        free(res);
        disconnect(rr, e);
        *retry = 1;
    } else {
        char name[PROTO_TOPIC_MAX + 16];
        snprintf(name, sizeof(name), "%s-%u", e->topic, e->part);
        err = remote_apply(p, name, pi.end_offset, &res[0], more);
        *retry = leader_moved(err);
        free(res);
    }
    if (wait_ms) {
        pthread_mutex_lock(&rr->lock);
        e->polling = 0;
        pthread_mutex_unlock(&rr->lock);
    }
    return err;
}

/* Brings the cache up to the leader's high watermark (see the top). 0,
 * -ETIMEDOUT at the deadline, or the local log's errno. once: no retry,
 * the first error is returned. */
static int catch_up(struct remote_reader *rr, struct remote_entry *e, struct topic *t, int wait_ms,
                    int64_t deadline, int force, int once)
{
    struct partition *p = topic_partition(t, e->part);
    if (!p)
        return -ENOENT;
    for (;;) {
        int64_t started = now_ms();
        pthread_mutex_lock(&e->io);
        pthread_mutex_lock(&rr->lock);
        uint64_t writes = e->writes;
        int skip = rr->stop || (!force && fresh(e, started));
        pthread_mutex_unlock(&rr->lock);
        if (skip) {
            pthread_mutex_unlock(&e->io);
            return 0;
        }
        struct cluster_partition_view v;
        int err = 0, more = 1, retry = 1;
        while (!err && more) {
            if (!remote_view(rr, e->topic, e->part, &v)) {
                more = 0; /* a replica here now, or no cluster topic */
            } else if (v.leader < 0 || v.leader == rr->o.broker_id || v.leader_epoch < 0) {
                err = -EAGAIN;
            } else {
                err = fetch_once(rr, e, p, &v, wait_ms, deadline, &more, &retry);
                wait_ms = 0;
            }
            if (atomic_load(&t->deleted))
                err = -ENOENT, retry = 0;
        }
        pthread_mutex_lock(&rr->lock);
        if (!err && e->synced_ms <= started) {
            e->synced_ms = started;
            e->synced_writes = writes;
        }
        int log = err && err != e->last_err;
        if (log || !err) {
            if (!err && e->last_err)
                logger_log(LOG_LEVEL_INFO, "partition %s-%u: fetching from the leader again",
                           e->topic, e->part);
            e->last_err = err;
        }
        pthread_mutex_unlock(&rr->lock);
        pthread_mutex_unlock(&e->io);
        if (log)
            logger_log(LOG_LEVEL_WARN, "partition %s-%u: cannot fetch from the leader: %s%s",
                       e->topic, e->part, strerror(-err), retry ? " (trying again)" : "");
        if (!err || !retry || once)
            return err;
        if (now_ms() + REMOTE_RETRY_MS > deadline)
            return -ETIMEDOUT;
        pthread_mutex_lock(&rr->lock);
        pause_ms(rr, REMOTE_RETRY_MS);
        int stop = rr->stop;
        pthread_mutex_unlock(&rr->lock);
        if (stop)
            return -ECANCELED;
        force = 1; /* the freshness seen above was before the error */
    }
}

int remote_sync(struct remote_reader *rr, struct topic *t, uint32_t part)
{
    struct cluster_partition_view v;
    if (!rr || !remote_view(rr, t->name, part, &v))
        return 0;
    int64_t now = now_ms();
    pthread_mutex_lock(&rr->lock);
    struct remote_entry *e = entry_of(rr, t, part);
    int skip = !e || fresh(e, now) || now < e->stat_skip_until;
    pthread_mutex_unlock(&rr->lock);
    if (!e)
        return -ENOMEM;
    if (skip)
        return 0;
    if (catch_up(rr, e, t, 0, now + REMOTE_SYNC_MS, 0, 1)) {
        pthread_mutex_lock(&rr->lock);
        e->stat_skip_until = now_ms() + REMOTE_SYNC_MS;
        pthread_mutex_unlock(&rr->lock);
    }
    return 0;
}

struct watch_arg {
    struct remote_reader *rr;
    struct remote_entry *e;
};

static void *watch_run(void *arg)
{
    struct watch_arg wa = *(struct watch_arg *)arg;
    free(arg);
    struct remote_reader *rr = wa.rr;
    struct remote_entry *e = wa.e;
    struct topic *t = e->watch_topic;
    pthread_mutex_lock(&rr->lock);
    while (!rr->stop && e->watchers > 0 && !atomic_load(&t->deleted)) {
        pthread_mutex_unlock(&rr->lock);
        int64_t now = now_ms();
        int err = catch_up(rr, e, t, rr->o.fetch_wait_max_ms, now + rr->o.fetch_wait_max_ms, 1, 1);
        pthread_mutex_lock(&rr->lock);
        if (err && !rr->stop)
            pause_ms(rr, REMOTE_RETRY_MS);
    }
    e->thread_running = 0;
    e->watch_topic = NULL;
    pthread_mutex_unlock(&rr->lock);
    topic_put(t);
    return NULL;
}

int remote_watch(struct remote_reader *rr, struct topic *t, uint32_t part)
{
    if (!remote_is_remote(rr, t, part))
        return 0;
    pthread_mutex_lock(&rr->lock);
    struct remote_entry *e = rr->stop ? NULL : entry_of(rr, t, part);
    if (!e) {
        pthread_mutex_unlock(&rr->lock);
        return 0;
    }
    e->watchers++;
    if (!e->thread_running) {
        if (e->thread_made) {
            /* The last one ended (it saw no watchers, under the lock). */
            pthread_join(e->thread, NULL);
            e->thread_made = 0;
        }
        struct watch_arg *wa = malloc(sizeof(*wa));
        if (wa) {
            *wa = (struct watch_arg){rr, e};
            topic_get(t);
            e->watch_topic = t;
            sigset_t block, old;
            sigfillset(&block);
            pthread_sigmask(SIG_BLOCK, &block, &old);
            int err = pthread_create(&e->thread, NULL, watch_run, wa);
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            if (err) {
                free(wa);
                e->watch_topic = NULL;
                topic_put(t);
            } else {
                e->thread_made = e->thread_running = 1;
            }
        }
    }
    pthread_mutex_unlock(&rr->lock);
    return 1;
}

void remote_written(struct remote_reader *rr, const struct topic *t, uint32_t part)
{
    if (!rr)
        return;
    pthread_mutex_lock(&rr->lock);
    for (size_t i = 0; i < rr->n; i++)
        if (rr->v[i]->topic_id == t->id && rr->v[i]->part == part)
            rr->v[i]->writes++;
    pthread_mutex_unlock(&rr->lock);
}

void remote_unwatch(struct remote_reader *rr, struct topic *t, uint32_t part)
{
    if (!rr)
        return;
    pthread_mutex_lock(&rr->lock);
    for (size_t i = 0; i < rr->n; i++) {
        struct remote_entry *e = rr->v[i];
        if (e->topic_id == t->id && e->part == part && e->watchers > 0) {
            e->watchers--;
            break;
        }
    }
    pthread_mutex_unlock(&rr->lock);
}

int remote_watch_topic(struct remote_reader *rr, struct topic *t, uint32_t **parts, uint32_t *n)
{
    uint32_t count = topic_partition_count(t);
    *parts = NULL;
    *n = 0;
    if (!rr || !count)
        return 0;
    if (!(*parts = calloc(count, sizeof(**parts))))
        return -ENOMEM;
    for (uint32_t i = 0; i < count; i++) {
        if (!remote_is_remote(rr, t, i))
            continue;
        remote_sync(rr, t, i);
        if (remote_watch(rr, t, i))
            (*parts)[(*n)++] = i;
    }
    return 0;
}

void remote_unwatch_topic(struct remote_reader *rr, struct topic *t, uint32_t *parts, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        remote_unwatch(rr, t, parts[i]);
    free(parts);
}
