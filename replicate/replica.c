/* replica.c - every replica's role, from the controller's partition states
 * (replica.h); the store listener that wakes long polls and moves a lone
 * leader's high watermark; start and stop.
 *
 * The role thread scans the data dir's topics every SCAN_MS, and at once
 * when the cluster thread read new states (cluster_set_state_listener):
 * each partition of a cluster topic with this broker among its replicas
 * gets a struct replica whose role follows its state: leader
 * when state.leader is this broker, follower of state.leader otherwise,
 * offline while there is no leader. A new leader epoch, or another leader,
 * is a role change (transition()). Leaders' ISRs are checked on every scan
 * (leader_maintain(): shrink and growth, isr.h), and written through
 * cluster_alter_isr. A replica whose topic went (or was made again, or is
 * no longer assigned here) is dropped. A partition with one replica has
 * a leader too: its FETCH handler serves the brokers that hold no replica
 * (remote.h).
 *
 * High watermark: core's follows the log end until a replica of a
 * partition with two or more replicas first gets a role (with one, it
 * always does: there is nothing to wait for). It is then held at the log
 * start (this broker does not know what was committed: nothing is shown
 * that may be truncated later; a leader alone in its ISR holds it at its
 * log end, all of it committed, so a topic grown from one replica shows no
 * dip) and moves up from there: a leader's to the smallest log end of its
 * ISR (at once when the ISR is itself alone), a follower's with each
 * fetch. It is saved (partition_save_high_watermark) every
 * HW_CHECKPOINT_MS when it moved, and at stop; a replica that starts holds
 * it at the saved one (within its log) instead of the log start, so a
 * restarted broker serves what was committed at once. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "logger.h"
#include "replica_impl.h"

#define SCAN_MS 100
/* Kafka's replica.high.watermark.checkpoint.interval.ms */
#define HW_CHECKPOINT_MS 5000

int64_t replica_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void replica_wait(struct replica_manager *m, pthread_cond_t *cond, int64_t ms)
{
    if (m->stop || ms <= 0)
        return;
    struct timespec at;
    clock_gettime(CLOCK_MONOTONIC, &at);
    at.tv_sec += (time_t)(ms / 1000);
    at.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (at.tv_nsec >= 1000000000L) {
        at.tv_sec++;
        at.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(cond, &m->lock, &at);
}

struct replica *replica_find(struct replica_manager *m, const char *topic, uint32_t part)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->v[i]->part == part && !strcmp(m->v[i]->topic, topic))
            return m->v[i];
    return NULL;
}

void replica_ref(struct replica *r)
{
    r->refs++;
}

void replica_unref(struct replica_manager *m, struct replica *r)
{
    pthread_mutex_lock(&m->lock);
    int last = --r->refs == 0;
    pthread_mutex_unlock(&m->lock);
    if (!last)
        return;
    topic_put(r->t);
    pthread_mutex_destroy(&r->op_lock);
    free(r);
}

void replica_leader_advance(struct replica_manager *m, struct replica *r)
{
    struct partition_info pi;
    pthread_mutex_lock(&m->lock);
    if (r->role != ROLE_LEADER) {
        pthread_mutex_unlock(&m->lock);
        return;
    }
    partition_info(r->p, &pi);
    uint64_t hw = isr_high_watermark(pi.high_watermark, m->o.broker_id, pi.end_offset, r->followers,
                                     r->nfollowers, r->isr, r->nisr);
    pthread_mutex_unlock(&m->lock);
    if (hw > pi.high_watermark) {
        int e = partition_set_high_watermark(r->p, hw);
        if (e)
            logger_log(LOG_LEVEL_WARN, "partition %s-%u: high watermark %" PRIu64 ": %s", r->topic,
                       r->part, hw, strerror(-e));
    }
}

/* The store's listener: a change of a partition this broker leads wakes
 * the long polls (only those serve data); an append there may move its
 * high watermark (at once when the leader is its ISR alone). */
static void on_change(void *arg, struct topic *t, uint32_t partition, unsigned events)
{
    struct replica_manager *m = arg;
    struct replica *r = NULL;
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->n && !r; i++)
        if (m->v[i]->t == t && m->v[i]->part == partition && m->v[i]->role == ROLE_LEADER)
            r = m->v[i];
    if (r) {
        m->gen++;
        pthread_cond_broadcast(&m->data_cond);
        if (events & PARTITION_EVENT_APPEND)
            replica_ref(r);
        else
            r = NULL;
    }
    pthread_mutex_unlock(&m->lock);
    if (r) {
        replica_leader_advance(m, r);
        replica_unref(m, r);
    }
}

static void on_states(void *arg)
{
    struct replica_manager *m = arg;
    pthread_mutex_lock(&m->lock);
    m->kick = 1;
    pthread_cond_broadcast(&m->work_cond);
    pthread_mutex_unlock(&m->lock);
}

static const char *role_name(enum replica_role role)
{
    return role == ROLE_LEADER ? "leader" : role == ROLE_FOLLOWER ? "follower" : "offline";
}

/* Makes r what the state says (m->lock not held). On failure the role
 * stays as it was, and the next scan tries again. */
static void transition(struct replica_manager *m, struct replica *r, enum replica_role role,
                       int32_t leader, int32_t epoch)
{
    struct partition_info pi;
    int e = 0;
    pthread_mutex_lock(&r->op_lock);
    partition_info(r->p, &pi);
    if (!r->held && r->nreplicas > 1) {
        /* A leader alone in its ISR has committed its whole log; what was
         * committed before a restart is served at once. */
        pthread_mutex_lock(&m->lock);
        int alone = role == ROLE_LEADER && r->nisr == 1 && r->isr[0] == m->o.broker_id;
        pthread_mutex_unlock(&m->lock);
        uint64_t saved = 0;
        int have =
            !alone && partition_saved_high_watermark(r->p, &saved) == 0 && saved > pi.start_offset;
        e = partition_hold_high_watermark(r->p, alone  ? pi.end_offset
                                                : have ? saved
                                                       : pi.start_offset);
        if (!e)
            r->held = 1;
        if (!e && have)
            logger_log(LOG_LEVEL_INFO,
                       "partition %s-%u: high watermark %" PRIu64 " from its checkpoint", r->topic,
                       r->part, saved < pi.end_offset ? saved : pi.end_offset);
    }
    if (!e && role == ROLE_LEADER)
        e = partition_assign_epoch(r->p, (uint32_t)epoch, PARTITION_LOG_END);
    /* What a truncation took, when this replica followed until now. A
     * leader that stays leader at a new epoch truncated nothing, and its
     * appends go on meanwhile: pi.end_offset is stale, and batches past it
     * (kept in the table already) must not be forgotten (their producers'
     * next sequences would then be refused as out of order). */
    pthread_mutex_lock(&m->lock);
    int was_leader = r->role == ROLE_LEADER;
    pthread_mutex_unlock(&m->lock);
    if (!e && role == ROLE_LEADER && !was_leader && m->o.producers)
        e = producer_table_follow(m->o.producers, r->topic, r->part, pi.end_offset, pi.end_offset,
                                  NULL, 0);
    if (e) {
        pthread_mutex_unlock(&r->op_lock);
        logger_log(LOG_LEVEL_ERROR, "partition %s-%u: cannot become %s (leader epoch %d): %s",
                   r->topic, r->part, role_name(role), epoch, strerror(-e));
        return;
    }
    int64_t now = replica_now_ms();
    pthread_mutex_lock(&m->lock);
    r->role = role;
    r->leader = leader;
    r->epoch = epoch;
    r->need_truncate = role == ROLE_FOLLOWER;
    r->retry_at_ms = 0;
    r->isr_err = 0;
    r->fetch_err = 0;
    if (role == ROLE_LEADER)
        partition_lead(r->p, r->nisr);
    else
        partition_unlead(r->p);
    if (role == ROLE_LEADER) {
        /* Every epoch starts with what its followers show in it: a follower
         * the controller took out of the ISR (dead) is never put back
         * before it fetches at this epoch. */
        r->epoch_start = pi.end_offset;
        r->nfollowers = 0;
        for (uint32_t i = 0; i < r->nreplicas; i++) {
            if (r->replicas[i] == m->o.broker_id)
                continue;
            isr_follower_init(&r->followers[r->nfollowers], r->replicas[i], now);
            r->hw_sent[r->nfollowers++] = HW_NOT_SENT;
        }
    } else {
        r->nfollowers = 0;
    }
    if (role == ROLE_FOLLOWER && (e = fetcher_ensure(m, leader)))
        logger_log(LOG_LEVEL_ERROR, "partition %s-%u: no fetcher for broker %d: %s", r->topic,
                   r->part, leader, strerror(-e));
    m->gen++;
    pthread_cond_broadcast(&m->data_cond);
    pthread_cond_broadcast(&m->work_cond);
    pthread_mutex_unlock(&m->lock);
    pthread_mutex_unlock(&r->op_lock);
    if (role == ROLE_FOLLOWER)
        logger_log(LOG_LEVEL_INFO, "partition %s-%u: follower of broker %d (leader epoch %d)",
                   r->topic, r->part, leader, epoch);
    else
        logger_log(LOG_LEVEL_INFO, "partition %s-%u: %s (leader epoch %d, log end %" PRIu64 ")",
                   r->topic, r->part, role_name(role), epoch, pi.end_offset);
    if (role == ROLE_LEADER)
        replica_leader_advance(m, r);
}

/* A leader's ISR: shrink and growth (isr.h), written to the state znode. */
static void leader_maintain(struct replica_manager *m, struct replica *r, int64_t now)
{
    struct partition_info pi;
    int32_t want[2 * CLUSTER_REPLICAS_MAX + 1];
    pthread_mutex_lock(&m->lock);
    if (r->role != ROLE_LEADER) {
        pthread_mutex_unlock(&m->lock);
        return;
    }
    partition_info(r->p, &pi);
    size_t n = isr_next(m->o.broker_id, pi.high_watermark, r->epoch_start, r->followers,
                        r->nfollowers, r->isr, r->nisr, now, m->o.lag_time_max_ms, want);
    int same = isr_same(want, n, r->isr, r->nisr);
    int32_t epoch = r->epoch;
    pthread_mutex_unlock(&m->lock);
    if (same)
        return;
    if (n > CLUSTER_REPLICAS_MAX)
        n = CLUSTER_REPLICAS_MAX;
    int e = cluster_alter_isr(m->c, r->topic, r->part, epoch, want, (uint32_t)n);
    pthread_mutex_lock(&m->lock);
    if (!e && r->role == ROLE_LEADER && r->epoch == epoch) {
        memcpy(r->isr, want, n * sizeof(*want));
        r->nisr = (uint32_t)n;
        partition_lead(r->p, r->nisr);
    }
    int log = e && e != -ESTALE && e != r->isr_err;
    r->isr_err = e;
    pthread_mutex_unlock(&m->lock);
    if (log)
        logger_log(LOG_LEVEL_WARN, "partition %s-%u: cannot change the ISR: %s (trying again)",
                   r->topic, r->part, strerror(-e));
    if (!e)
        replica_leader_advance(m, r); /* a laggard gone may let it move */
}

static int contains(const int32_t *ids, uint32_t n, int32_t id)
{
    for (uint32_t i = 0; i < n; i++)
        if (ids[i] == id)
            return 1;
    return 0;
}

/* Removes r from the list (m->lock held); the caller unrefs it. */
static void drop(struct replica_manager *m, size_t i)
{
    struct replica *r = m->v[i];
    r->role = ROLE_NONE;
    partition_unlead(r->p);
    m->v[i] = m->v[--m->n];
    logger_log(LOG_LEVEL_INFO, "partition %s-%u: no longer a replica here", r->topic, r->part);
}

/* A dropped replica whose partition stays in the cluster: one the
 * cluster took away empties its log, as Kafka deletes a removed replica
 * (a broker that is no replica holds only what its readers fetch from the
 * leader, remote.h). */
static void replica_left(struct replica_manager *m, struct replica *r)
{
    pthread_mutex_lock(&m->lock);
    int leave = r->leave;
    pthread_mutex_unlock(&m->lock);
    if (leave == LEAVE_GONE)
        return;
    pthread_mutex_lock(&r->op_lock); /* no fetcher appends meanwhile */
    int e = leave == LEAVE_UNASSIGNED ? partition_reset(r->p, 0, 0) : 0;
    if (!e)
        partition_follow_end(r->p);
    pthread_mutex_unlock(&r->op_lock);
    if (e)
        logger_log(LOG_LEVEL_ERROR, "partition %s-%u: cannot empty the removed replica: %s",
                   r->topic, r->part, strerror(-e));
    else if (leave == LEAVE_UNASSIGNED)
        logger_log(LOG_LEVEL_INFO, "partition %s-%u: removed replica emptied", r->topic, r->part);
}

struct topics {
    struct topic **v;
    size_t n, cap;
};

static int collect(struct topic *t, void *arg)
{
    struct topics *ts = arg;
    if (ts->n == ts->cap) {
        size_t cap = ts->cap ? ts->cap * 2 : 16;
        struct topic **v = realloc(ts->v, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        ts->v = v;
        ts->cap = cap;
    }
    topic_get(t);
    ts->v[ts->n++] = t;
    return 0;
}

/* A leader's followers are its other replicas: a reassignment adds some
 * (they start caught up now, as at a new epoch, and join the ISR once they
 * fetched at this epoch) and takes some away (m->lock held). */
static void leader_sync_followers(struct replica_manager *m, struct replica *r, int64_t now)
{
    for (size_t i = 0; i < r->nfollowers;) {
        if (contains(r->replicas, r->nreplicas, r->followers[i].id)) {
            i++;
            continue;
        }
        r->nfollowers--;
        r->followers[i] = r->followers[r->nfollowers];
        r->hw_sent[i] = r->hw_sent[r->nfollowers];
    }
    for (uint32_t i = 0; i < r->nreplicas; i++) {
        int32_t id = r->replicas[i];
        int known = id == m->o.broker_id;
        for (size_t j = 0; j < r->nfollowers && !known; j++)
            known = r->followers[j].id == id;
        if (known || r->nfollowers == CLUSTER_REPLICAS_MAX)
            continue;
        isr_follower_init(&r->followers[r->nfollowers], id, now);
        r->hw_sent[r->nfollowers++] = HW_NOT_SENT;
    }
}

/* One partition of a scan. A replica the cluster no longer puts here (a
 * reassignment took it away) is marked: the drop empties its log. */
static void scan_partition(struct replica_manager *m, struct topic *t, uint32_t part, int64_t now)
{
    struct cluster_partition_view v;
    if (cluster_partition_view(m->c, t->name, part, &v) || strlen(t->name) >= PROTO_TOPIC_MAX)
        return;
    if (v.nreplicas < 1 || !contains(v.replicas, v.nreplicas, m->o.broker_id)) {
        pthread_mutex_lock(&m->lock);
        struct replica *r = replica_find(m, t->name, part);
        if (r && r->topic_id == t->id)
            r->leave = LEAVE_UNASSIGNED;
        pthread_mutex_unlock(&m->lock);
        return;
    }
    struct partition *p = topic_partition(t, part);
    if (!p)
        return;
    pthread_mutex_lock(&m->lock);
    struct replica *r = replica_find(m, t->name, part);
    if (r && r->topic_id != t->id) {
        for (size_t i = 0; i < m->n; i++)
            if (m->v[i] == r) {
                drop(m, i);
                break;
            }
        pthread_mutex_unlock(&m->lock);
        replica_unref(m, r);
        pthread_mutex_lock(&m->lock);
        r = NULL;
    }
    if (!r && m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        struct replica **nv = realloc(m->v, cap * sizeof(*nv));
        if (!nv) {
            pthread_mutex_unlock(&m->lock);
            return;
        }
        m->v = nv;
        m->cap = cap;
    }
    if (!r) {
        if (!(r = calloc(1, sizeof(*r)))) {
            pthread_mutex_unlock(&m->lock);
            return;
        }
        r->refs = 1;
        strcpy(r->topic, t->name);
        r->topic_id = t->id;
        r->part = part;
        topic_get(t);
        r->t = t;
        r->p = p;
        r->leader = r->epoch = -1;
        pthread_mutex_init(&r->op_lock, NULL);
        m->v[m->n++] = r;
    }
    r->seen = 1;
    r->nreplicas = v.nreplicas;
    memcpy(r->replicas, v.replicas, v.nreplicas * sizeof(*v.replicas));
    if (r->role == ROLE_LEADER)
        leader_sync_followers(m, r, now);
    r->nisr = v.nisr; /* the cache has what this broker wrote, or newer */
    memcpy(r->isr, v.isr, v.nisr * sizeof(*v.isr));
    if (r->role == ROLE_LEADER)
        partition_lead(r->p, r->nisr);
    enum replica_role role = v.leader == m->o.broker_id ? ROLE_LEADER
                             : v.leader >= 0            ? ROLE_FOLLOWER
                                                        : ROLE_OFFLINE;
    int changed = role != r->role || v.leader_epoch != r->epoch ||
                  (role == ROLE_FOLLOWER && v.leader != r->leader);
    replica_ref(r);
    pthread_mutex_unlock(&m->lock);
    if (changed)
        transition(m, r, role, v.leader, v.leader_epoch);
    else if (role == ROLE_LEADER)
        leader_maintain(m, r, now);
    if (r->held && now - r->hw_saved_ms >= HW_CHECKPOINT_MS) {
        int e = partition_save_high_watermark(r->p);
        if (e)
            logger_log(LOG_LEVEL_WARN, "partition %s-%u: high watermark checkpoint: %s", r->topic,
                       r->part, strerror(-e));
        r->hw_saved_ms = now;
    }
    replica_unref(m, r);
}

static void scan(struct replica_manager *m)
{
    struct topics ts = {0};
    int64_t now = replica_now_ms();
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->n; i++) {
        m->v[i]->seen = 0;
        m->v[i]->leave = LEAVE_GONE;
    }
    pthread_mutex_unlock(&m->lock);
    if (store_foreach(m->s, collect, &ts)) {
        for (size_t i = 0; i < ts.n; i++)
            topic_put(ts.v[i]);
        free(ts.v);
        return; /* out of memory: drop nothing */
    }
    for (size_t i = 0; i < ts.n && !m->stop; i++) {
        uint32_t n = topic_partition_count(ts.v[i]);
        for (uint32_t part = 0; part < n; part++)
            scan_partition(m, ts.v[i], part, now);
    }
    for (;;) {
        struct replica *gone = NULL;
        pthread_mutex_lock(&m->lock);
        for (size_t i = 0; i < m->n && !gone && !m->stop; i++)
            if (!m->v[i]->seen) {
                gone = m->v[i];
                drop(m, i);
            }
        pthread_mutex_unlock(&m->lock);
        if (!gone)
            break;
        replica_left(m, gone);
        replica_unref(m, gone);
    }
    for (size_t i = 0; i < ts.n; i++)
        topic_put(ts.v[i]);
    free(ts.v);
}

static void *replica_main(void *arg)
{
    struct replica_manager *m = arg;
    pthread_mutex_lock(&m->lock);
    while (!m->stop) {
        m->kick = 0;
        pthread_mutex_unlock(&m->lock);
        scan(m);
        pthread_mutex_lock(&m->lock);
        if (!m->kick)
            replica_wait(m, &m->work_cond, SCAN_MS);
    }
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

int replica_start(const struct replica_options *o, struct cluster *c, struct store *s,
                  struct server *srv, struct replica_manager **out)
{
    struct replica_manager *m = calloc(1, sizeof(*m));
    pthread_condattr_t ca;
    if (!m)
        return -ENOMEM;
    m->o = *o;
    m->o.secret = NULL;
    if (o->secret) {
        m->secret = *o->secret;
        m->have_secret = 1;
    }
    if (m->o.lag_time_max_ms <= 0)
        m->o.lag_time_max_ms = REPLICA_LAG_TIME_MAX_MS_DEFAULT;
    if (m->o.fetch_wait_max_ms <= 0)
        m->o.fetch_wait_max_ms = REPLICA_FETCH_WAIT_MAX_MS_DEFAULT;
    m->c = c;
    m->s = s;
    pthread_mutex_init(&m->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->data_cond, &ca);
    pthread_cond_init(&m->work_cond, &ca);
    pthread_condattr_destroy(&ca);
    int r = store_add_listener(s, on_change, m);
    if (r) {
        replica_free(m);
        return r;
    }
    leader_register(m, srv);
    cluster_set_state_listener(c, on_states, m);
    sigset_t block, old;
    sigfillset(&block);
    pthread_sigmask(SIG_BLOCK, &block, &old); /* the daemon's signals are for its own threads */
    r = -pthread_create(&m->thread, NULL, replica_main, m);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r) {
        /* The listener stays registered (never removed): m lives until
         * replica_free, after store_close. */
        *out = m;
        return r;
    }
    m->started = 1;
    *out = m;
    return 0;
}

void replica_stop(struct replica_manager *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    m->stop = 1;
    pthread_cond_broadcast(&m->work_cond);
    pthread_cond_broadcast(&m->data_cond);
    pthread_mutex_unlock(&m->lock);
    if (m->started)
        pthread_join(m->thread, NULL);
    m->started = 0;
    fetchers_stop(m);
    /* The replicas let go of their topics before the store closes. */
    for (;;) {
        struct replica *r = NULL;
        pthread_mutex_lock(&m->lock);
        if (m->n) {
            r = m->v[--m->n];
            r->role = ROLE_NONE;
            partition_unlead(r->p); /* writes waiting for acknowledgement fail */
        }
        pthread_mutex_unlock(&m->lock);
        if (!r)
            break;
        if (r->held)
            partition_save_high_watermark(r->p); /* the role thread has stopped */
        replica_unref(m, r);
    }
}

void replica_free(struct replica_manager *m)
{
    if (!m)
        return;
    replica_stop(m);
    free(m->v);
    free(m->fetchers);
    pthread_cond_destroy(&m->data_cond);
    pthread_cond_destroy(&m->work_cond);
    pthread_mutex_destroy(&m->lock);
    auth_secret_wipe(&m->secret);
    free(m);
}
