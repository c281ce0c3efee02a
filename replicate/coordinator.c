/* coordinator.c - the group coordinator and every mount's way to it
 * (coordinator.h).
 *
 * Two halves share one request type (struct group_request):
 *   serving   coord_serve() runs a request on this broker's registry when
 *             it coordinates: the member table (struct served: the members
 *             it serves, of every mount, by id), the role thread (which
 *             broker coordinates, loading, expiry), the FRAME_GROUP handler;
 *   asking    call() sends a request to the coordinator wherever it is
 *             (straight to coord_serve() when that is this broker, which is
 *             always so on one node), retrying while there is none; the
 *             members of this mount (struct coord_member) join, read, sync
 *             and leave through it, and a poller thread per member long-polls
 *             WAIT at a coordinator on another broker to wake its reads.
 *
 * Invariants (c->lock): a served member is in c->members exactly while it
 * may be used; it is unlinked (and `gone` set) before it leaves its group,
 * and is freed only when no request holds it (refs == 0). Members are only
 * added while c->role is SERVING in the epoch they were checked in. A served
 * member of this mount (`local`) holds a reference on its coord_member,
 * and coord_leave waits for those to go: a wake never reaches a freed
 * member. Nothing waits for a coordinator on the role thread: members of
 * this mount that it lets go are woken by their own pollers. Only answers
 * that another try may change are retried (retriable()). */
#include "coordinator.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "cluster.h"
#include "frame.h"
#include "group_proto.h"
#include "logger.h"
#include "remote.h"
#include "server.h"
#include "thread_slot.h"

#define CALL_TIMEOUT_MS 35000 /* a commit may wait for a slow follower */
#define CONNECT_TIMEOUT_MS 2000
#define RETRY_PAUSE_MS 100
#define MIRROR_WAIT_MS 5000
#define DELETE_BUSY_WAIT_MS 1000
#define EXPIRED_KEPT 256
#define INFO_RETRY_MS 1000 /* .info: then this mount's own view */

/* A member served here, of any mount. */
struct served {
    struct served *next;
    struct coord *c;
    uint64_t id;
    int broker; /* whose mount (-1 on one node) */
    uint64_t incarnation;
    /* This mount's member, woken directly; it holds a reference on it
     * (coord_member.refs) until released or left. */
    struct coord_member *local;
    struct group *g;
    struct topic *t;
    struct group_member *m;
    uint32_t *watched, nwatched; /* remote.h watches of the topic's partitions */
    uint64_t wakes;
    int64_t seen_ms; /* last request: the heartbeat of a member of another mount */
    int refs;
    int gone;
};

/* A connection to a coordinator on another broker: one call at a time. */
struct link {
    struct peer_conn *pc;
    int broker;
};

struct coord {
    struct store *store;
    struct group_registry *groups;
    struct cluster *cluster;
    struct remote_reader *remote;
    struct auth_secret secret;
    int have_secret;
    int self;
    int session_timeout_ms, retry_ms, offsets_rf;
    uint64_t incarnation;

    pthread_mutex_t lock;
    pthread_cond_t changed; /* wakes, role changes, a member let go */
    enum coord_role role;
    int32_t epoch; /* the leader epoch of __consumer_offsets p0 served in */
    struct served *members;
    uint64_t next_id;
    int stopping;
    pthread_t thread;
    int has_thread;
    int64_t create_logged_ms;
    /* Ids of members that expired here, the latest EXPIRED_KEPT: their
     * broker's next request for one gets EIO (once), not a quiet join. */
    uint64_t expired[EXPIRED_KEPT];
    unsigned nexpired;

    pthread_mutex_t call_lock; /* `link`, for requests that are not a member's */
    struct link link;
};

struct coord_member {
    struct coord *c;
    char topic[PROTO_TOPIC_MAX];
    char group[GROUP_NAME_MAX + 1];
    pid_t pid;
    int follow;
    void (*wake)(void *);
    void *wake_arg;
    int refs;             /* served entries that name it as local (c->lock) */
    pthread_mutex_t lock; /* its calls, one at a time, on `link` */
    struct link link;
    /* Under state_lock: where it is joined, for the poller. */
    pthread_mutex_t state_lock;
    pthread_cond_t state_changed;
    uint64_t id; /* 0: not joined */
    int at;      /* the broker it joined at */
    uint64_t joins;
    int stop;
    int kicked;                /* its poller wakes its reads: it was let go here (join again) */
    struct peer_conn *poll_pc; /* the poller's, while it has one (aborted at leave) */
    pthread_t poller;
    int has_poller;
};

struct reply {
    uint64_t value;
    uint8_t *data; /* the caller's buffer of cap bytes; len filled */
    size_t cap, len;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void deadline_in(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* ------------------------------------------------------------- serving */

/* Core's wake of a served member: its WAIT answers, or (this mount's) its
 * parked read is woken. */
static void served_wake(void *arg)
{
    struct served *s = arg;
    struct coord *c = s->c;
    pthread_mutex_lock(&c->lock);
    s->wakes++;
    struct coord_member *local = s->local;
    pthread_cond_broadcast(&c->changed);
    pthread_mutex_unlock(&c->lock);
    if (local && local->wake)
        local->wake(local->wake_arg);
}

/* The member `id` of broker `broker` (a peer acts only for its own
 * members) with a reference, or NULL. */
static struct served *served_get(struct coord *c, uint64_t id, int broker)
{
    pthread_mutex_lock(&c->lock);
    struct served *s = c->members;
    while (s && (s->id != id || s->broker != broker))
        s = s->next;
    if (s) {
        s->refs++;
        s->seen_ms = mono_ms();
    }
    pthread_mutex_unlock(&c->lock);
    return s;
}

static void served_put(struct coord *c, struct served *s)
{
    pthread_mutex_lock(&c->lock);
    if (--s->refs == 0)
        pthread_cond_broadcast(&c->changed);
    pthread_mutex_unlock(&c->lock);
}

/* Unlinks s (caller holds c->lock) onto the list `out`, to be let go. */
static void unlink_served(struct coord *c, struct served *s, struct served **out)
{
    for (struct served **pp = &c->members; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    s->gone = 1;
    s->next = *out;
    *out = s;
    pthread_cond_broadcast(&c->changed);
}

/* Members unlinked by unlink_served leave their groups (their partitions
 * go to the others) once no request holds them; a member of this mount is
 * woken so that its parked read joins again (not when stopping). Without
 * c->lock. */
static void release_served(struct coord *c, struct served *list)
{
    while (list) {
        struct served *s = list;
        list = s->next;
        pthread_mutex_lock(&c->lock);
        while (s->refs)
            pthread_cond_wait(&c->changed, &c->lock);
        struct coord_member *local = s->local; /* its reference is ours now */
        s->local = NULL;
        pthread_mutex_unlock(&c->lock);
        group_leave(s->m); /* after it, no wake of s runs */
        remote_unwatch_topic(c->remote, s->t, s->watched, s->nwatched);
        group_put(s->g);
        topic_put(s->t);
        free(s);
        if (local) {
            /* Not woken from here: its read would ask a coordinator, maybe
             * at length, on this thread (the role thread's, say). */
            pthread_mutex_lock(&c->lock);
            if (!c->stopping) {
                pthread_mutex_lock(&local->state_lock);
                local->kicked = 1;
                pthread_cond_broadcast(&local->state_changed);
                pthread_mutex_unlock(&local->state_lock);
            }
            local->refs--;
            pthread_cond_broadcast(&c->changed);
            pthread_mutex_unlock(&c->lock);
        }
    }
}

/* No served entry names m any more once it returns (m is leaving). */
static void detach_local(struct coord *c, struct coord_member *m)
{
    struct served *gone = NULL;
    pthread_mutex_lock(&c->lock);
    for (struct served *s = c->members, *n; s; s = n) {
        n = s->next;
        if (s->local == m) {
            s->local = NULL;
            m->refs--;
            unlink_served(c, s, &gone);
        }
    }
    pthread_mutex_unlock(&c->lock);
    release_served(c, gone);
    pthread_mutex_lock(&c->lock);
    while (m->refs) /* entries another thread is releasing */
        pthread_cond_wait(&c->changed, &c->lock);
    pthread_mutex_unlock(&c->lock);
}

static void release_all(struct coord *c)
{
    struct served *gone = NULL;
    pthread_mutex_lock(&c->lock);
    while (c->members)
        unlink_served(c, c->members, &gone);
    pthread_mutex_unlock(&c->lock);
    release_served(c, gone);
}

static int serve_join(struct coord *c, int broker, const struct group_request *q,
                      struct coord_member *local, struct reply *out)
{
    struct cluster_broker b;
    if (c->cluster && broker != c->self && cluster_broker(c->cluster, broker, &b)) {
        /* Its session is gone: its members are out of the group. */
        logger_log(LOG_LEVEL_INFO, "group %s/%s: join from broker %d refused: not registered",
                   q->topic, q->group, broker);
        return -EIO;
    }
    pthread_mutex_lock(&c->lock);
    int32_t epoch = c->epoch;
    pthread_mutex_unlock(&c->lock);
    struct topic *t = store_find(c->store, q->topic);
    struct group *g = t ? group_find(c->groups, t, q->group) : NULL;
    struct served *s = g ? calloc(1, sizeof(*s)) : NULL;
    int e = !g ? -ENOENT : !s ? -ENOMEM : 0;
    if (!e && (e = remote_watch_topic(c->remote, t, &s->watched, &s->nwatched)) == 0) {
        s->c = c;
        s->broker = broker;
        s->incarnation = q->incarnation;
        s->g = g;
        s->t = t;
        e = group_join(g, c->cluster ? broker : -1, (pid_t)q->pid, q->follow, served_wake, s,
                       &s->m);
        if (e)
            remote_unwatch_topic(c->remote, t, s->watched, s->nwatched);
    }
    if (e) {
        free(s);
        group_put(g);
        topic_put(t);
        return e;
    }
    struct served *gone = NULL;
    pthread_mutex_lock(&c->lock);
    if (local) {
        s->local = local;
        local->refs++;
    }
    if (c->role != COORD_SERVING || c->epoch != epoch) {
        e = -EAGAIN; /* the role changed meanwhile */
        s->next = NULL;
        gone = s;
    } else {
        s->id = c->next_id++;
        s->seen_ms = mono_ms();
        /* The same broker's members of an earlier run are gone. */
        for (struct served *o = c->members, *n; o; o = n) {
            n = o->next;
            if (!local && !o->local && o->broker == broker && o->incarnation != q->incarnation)
                unlink_served(c, o, &gone);
        }
        s->next = c->members;
        c->members = s;
        out->value = s->id;
    }
    pthread_mutex_unlock(&c->lock);
    release_served(c, gone);
    return e;
}

static int serve_wait(struct coord *c, struct served *s, const struct group_request *q,
                      struct reply *out)
{
    struct timespec until;
    deadline_in(&until, (int)q->len);
    pthread_mutex_lock(&c->lock);
    while (!s->gone && s->wakes <= q->since && c->role == COORD_SERVING && !c->stopping &&
           pthread_cond_timedwait(&c->changed, &c->lock, &until) == 0)
        ;
    int e = s->gone ? -EBADR : 0;
    out->value = s->wakes;
    pthread_mutex_unlock(&c->lock);
    return e;
}

/* Whether member id expired here (and forgets it: EIO is said once). */
static int expired(struct coord *c, uint64_t id)
{
    int found = 0;
    pthread_mutex_lock(&c->lock);
    for (unsigned i = 0; i < EXPIRED_KEPT && !found; i++)
        if (c->expired[i] == id) {
            c->expired[i] = 0;
            found = 1;
        }
    pthread_mutex_unlock(&c->lock);
    return found;
}

static int serve_member(struct coord *c, int broker, const struct group_request *q,
                        struct reply *out)
{
    struct served *s = served_get(c, q->member, broker);
    if (!s) /* expired: its partitions went to others; else unknown here: join again */
        return (q->op == GROUP_OP_READ || q->op == GROUP_OP_SYNC) && expired(c, q->member)
                   ? -EKEYEXPIRED
                   : -EBADR;
    int e = 0;
    switch (q->op) {
    case GROUP_OP_READ: {
        size_t len = q->len < out->cap ? q->len : out->cap;
        ssize_t n = group_member_read(s->m, q->pos, out->data, len);
        if (n < 0)
            e = (int)n;
        else
            out->len = (size_t)n;
        break;
    }
    case GROUP_OP_SYNC:
        e = group_member_sync(s->m);
        break;
    case GROUP_OP_WAIT:
        e = serve_wait(c, s, q, out);
        break;
    case GROUP_OP_LEAVE: {
        struct served *gone = NULL;
        pthread_mutex_lock(&c->lock);
        if (!s->gone)
            unlink_served(c, s, &gone);
        if (s->local) { /* leaving: nothing to wake */
            s->local->refs--;
            s->local = NULL;
        }
        pthread_mutex_unlock(&c->lock);
        served_put(c, s);
        release_served(c, gone);
        return 0;
    }
    }
    served_put(c, s);
    return e;
}

/* mkdir, rmdir, cursor write, .info of a group. */
static int serve_group(struct coord *c, const struct group_request *q, struct reply *out)
{
    struct topic *t = store_find(c->store, q->topic);
    if (!t)
        return -ENOENT;
    int e = 0;
    struct group *g = NULL;
    if (q->op == GROUP_OP_CREATE) {
        e = group_create(c->groups, t, q->group);
    } else if (q->op == GROUP_OP_DELETE) {
        /* A member file closed just before (a script's `kill; rmdir`) is
         * released a moment after close() returned: give it that moment. */
        int64_t until = mono_ms() + DELETE_BUSY_WAIT_MS;
        while ((e = group_delete(c->groups, t, q->group)) == -EBUSY && mono_ms() < until)
            pause_ms(20);
    } else if (!(g = group_find(c->groups, t, q->group))) {
        e = -ENOENT;
    } else if (q->op == GROUP_OP_CURSOR) {
        e = group_cursor_set(g, q->partition, q->spec, q->time_ms);
    } else {
        out->len = group_info_text(g, (char *)out->data, out->cap);
    }
    out->value = group_registry_log_end(c->groups);
    group_put(g);
    topic_put(t);
    return e;
}

/* Serves one request of broker `broker` (this mount's member `local` when
 * it is one). */
static int coord_serve(struct coord *c, int broker, const struct group_request *q,
                       struct coord_member *local, struct reply *out)
{
    pthread_mutex_lock(&c->lock);
    enum coord_role role = c->role;
    pthread_mutex_unlock(&c->lock);
    if (role != COORD_SERVING)
        return role == COORD_LOADING ? -EAGAIN : -EREMOTE;
    out->len = 0;
    switch (q->op) {
    case GROUP_OP_JOIN:
        return serve_join(c, broker, q, local, out);
    case GROUP_OP_READ:
    case GROUP_OP_SYNC:
    case GROUP_OP_LEAVE:
    case GROUP_OP_WAIT:
        return serve_member(c, broker, q, out);
    default:
        return serve_group(c, q, out);
    }
}

/* A connection thread's reply buffer, kept between requests (a member's
 * reads are up to GROUP_PROTO_READ_MAX each; a fresh malloc of that size
 * would map and fault in new pages every time). The reply is sent before
 * the thread takes its next request. */
struct reply_buf {
    uint8_t *buf;
    size_t cap;
};

static void reply_buf_free(void *p)
{
    free(((struct reply_buf *)p)->buf);
}

static struct thread_slot reply_slot =
    THREAD_SLOT_INIT(sizeof(struct reply_buf), NULL, reply_buf_free);

static int handle_group(void *arg, int peer_id, const struct frame *req, struct server_reply *rep)
{
    struct coord *c = arg;
    struct group_request q;
    if (group_req_decode(req->payload, req->h.length, &q))
        return -EBADMSG;
    size_t cap = 0;
    if (q.op == GROUP_OP_READ) {
        cap = q.len;
    } else if (q.op == GROUP_OP_INFO) {
        struct topic *t = store_find(c->store, q.topic);
        cap = 128 + 128 * (size_t)(t ? topic_partition_count(t) : 0);
        topic_put(t);
    }
    struct reply_buf *rb = thread_slot_get(&reply_slot);
    size_t need = GROUP_PROTO_REPLY_HEAD + cap;
    if (rb && rb->cap < need) {
        uint8_t *b = realloc(rb->buf, need);
        if (b) {
            rb->buf = b;
            rb->cap = need;
        }
    }
    if (!rb || rb->cap < need)
        return -ENOMEM;
    struct reply out = {.data = rb->buf + GROUP_PROTO_REPLY_HEAD, .cap = cap};
    int e = coord_serve(c, peer_id, &q, NULL, &out);
    if (e)
        return e;
    group_reply_head(out.value, (uint32_t)out.len, rb->buf);
    rep->iov[0] = (struct iovec){rb->buf, GROUP_PROTO_REPLY_HEAD + out.len};
    rep->iovcnt = 1;
    return 0;
}

/* ---------------------------------------------------------- the role */

/* Whether this broker leads __consumer_offsets p0 now, and in which epoch. */
static int leads_offsets(struct coord *c, int32_t *epoch)
{
    struct cluster_partition_view v;
    if (cluster_partition_view(c->cluster, GROUP_OFFSETS_TOPIC, 0, &v) || v.leader != c->self)
        return 0;
    *epoch = v.leader_epoch;
    return 1;
}

/* Everything this replica has is committed: it may serve what it has. */
static int offsets_loaded(struct coord *c)
{
    struct topic *t = store_find(c->store, GROUP_OFFSETS_TOPIC);
    struct partition_info pi = {0};
    if (t)
        partition_info(topic_partition(t, 0), &pi);
    topic_put(t);
    return t && pi.high_watermark >= pi.end_offset;
}

/* Members of other mounts not heard from within the session timeout, or
 * whose broker is no longer registered, leave. */
static void expire_members(struct coord *c)
{
    struct served *gone = NULL;
    int64_t now = mono_ms();
    struct cluster_broker b;
    pthread_mutex_lock(&c->lock);
    for (struct served *s = c->members, *n; s; s = n) {
        n = s->next;
        if (s->local || s->refs)
            continue;
        int silent = now - s->seen_ms > c->session_timeout_ms;
        if (silent || cluster_broker(c->cluster, s->broker, &b)) {
            logger_log(LOG_LEVEL_INFO, "group member %" PRIu64 " of broker %d leaves: %s", s->id,
                       s->broker, silent ? "not heard from" : "its broker is gone");
            c->expired[c->nexpired++ % EXPIRED_KEPT] = s->id;
            unlink_served(c, s, &gone);
        }
    }
    pthread_mutex_unlock(&c->lock);
    release_served(c, gone);
}

struct coord_step coord_role_step(const struct coord_state *now)
{
    struct coord_step st = {now->role, now->epoch, 0, 0, 0};
    if (!now->leads) {
        if (now->role != COORD_NONE) { /* it stopped coordinating */
            st.role = COORD_NONE;
            st.epoch = -1;
            st.release = st.reload_mirror = 1;
        }
        return st;
    }
    if (now->role == COORD_SERVING && now->epoch != now->leader_epoch && now->log_ours) {
        /* A new leader epoch while it still leads (the controller bumps it
         * when the ISR loses a broker), and no one else wrote the log
         * meanwhile: it goes on serving, its members stay. */
        st.epoch = now->leader_epoch;
        return st;
    }
    if (now->role == COORD_NONE || now->epoch != now->leader_epoch) {
        /* It leads in a new term: what it served belonged to the old one. */
        st.release = now->role != COORD_NONE;
        st.role = COORD_LOADING;
        st.epoch = now->leader_epoch;
    }
    st.load = st.role == COORD_LOADING && now->loaded;
    return st;
}

static void role_tick(struct coord *c)
{
    struct coord_state now = {0};
    now.leads = leads_offsets(c, &now.leader_epoch);
    now.log_ours = now.leads && group_registry_log_ours(c->groups);
    now.loaded = now.leads && offsets_loaded(c);
    pthread_mutex_lock(&c->lock);
    now.role = c->role;
    now.epoch = c->epoch;
    struct coord_step st = coord_role_step(&now);
    if (st.role != c->role || st.epoch != c->epoch) {
        c->role = st.role;
        c->epoch = st.epoch;
        pthread_cond_broadcast(&c->changed);
    }
    pthread_mutex_unlock(&c->lock);
    if (st.release) {
        group_registry_deactivate(c->groups);
        release_all(c);
    }
    if (st.reload_mirror) {
        logger_log(LOG_LEVEL_INFO, "no longer the group coordinator");
        group_registry_reload(c->groups, 0);
    }
    enum coord_role role = st.role;
    if (st.load) {
        int e = group_registry_reload(c->groups, 1);
        pthread_mutex_lock(&c->lock);
        if (!e && c->role == COORD_LOADING && c->epoch == st.epoch) {
            c->role = role = COORD_SERVING;
            logger_log(LOG_LEVEL_INFO, "group coordinator (leader epoch %d of %s)", (int)st.epoch,
                       GROUP_OFFSETS_TOPIC);
        }
        pthread_mutex_unlock(&c->lock);
    }
    if (role == COORD_SERVING)
        expire_members(c);
    else
        coord_refresh(c);
}

static void *role_thread(void *arg)
{
    struct coord *c = arg;
    pthread_mutex_lock(&c->lock);
    while (!c->stopping) {
        pthread_mutex_unlock(&c->lock);
        role_tick(c);
        pthread_mutex_lock(&c->lock);
        struct timespec until;
        deadline_in(&until, COORD_TICK_MS);
        while (!c->stopping && pthread_cond_timedwait(&c->changed, &c->lock, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

int coord_open(const struct coord_options *o, struct coord **out)
{
    struct coord *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    uint64_t rnd[2];
    if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
        free(c);
        return -EIO;
    }
    c->store = o->store;
    c->groups = o->groups;
    c->cluster = o->cluster;
    c->remote = o->remote;
    if (o->secret) {
        c->secret = *o->secret;
        c->have_secret = 1;
    }
    c->self = o->cluster ? o->broker_id : -1;
    c->session_timeout_ms = o->session_timeout_ms > 0 ? o->session_timeout_ms : 18000;
    c->retry_ms = 2 * c->session_timeout_ms + 5000;
    c->offsets_rf = o->offsets_topic_rf;
    c->incarnation = rnd[0] | 1;
    c->next_id = (rnd[1] >> 16) | 1;                   /* ids of another coordinator never match */
    c->role = o->cluster ? COORD_NONE : COORD_SERVING; /* one node coordinates its groups */
    c->epoch = -1;
    c->link.broker = -1;
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_init(&c->call_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->changed, &ca);
    pthread_condattr_destroy(&ca);
    if (o->cluster) {
        server_handle(o->server, FRAME_GROUP, handle_group, c);
        int e = pthread_create(&c->thread, NULL, role_thread, c);
        if (e) {
            coord_free(c);
            return -e;
        }
        c->has_thread = 1;
    }
    *out = c;
    return 0;
}

void coord_stop(struct coord *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    c->stopping = 1;
    c->role = COORD_NONE;
    pthread_cond_broadcast(&c->changed);
    pthread_mutex_unlock(&c->lock);
    if (c->has_thread)
        pthread_join(c->thread, NULL);
    c->has_thread = 0;
    release_all(c);
}

static void link_close(struct link *l)
{
    peer_close(l->pc);
    l->pc = NULL;
    l->broker = -1;
}

void coord_free(struct coord *c)
{
    if (!c)
        return;
    coord_stop(c);
    link_close(&c->link);
    auth_secret_wipe(&c->secret);
    pthread_mutex_destroy(&c->lock);
    pthread_mutex_destroy(&c->call_lock);
    pthread_cond_destroy(&c->changed);
    free(c);
}

size_t coord_member_count(struct coord *c)
{
    size_t n = 0;
    pthread_mutex_lock(&c->lock);
    for (struct served *s = c->members; s; s = s->next)
        n++;
    pthread_mutex_unlock(&c->lock);
    return n;
}

/* -------------------------------------------------------------- asking */

int coord_coordinator(struct coord *c)
{
    struct cluster_broker b;
    if (!c->cluster || cluster_partition_leader(c->cluster, GROUP_OFFSETS_TOPIC, 0, &b))
        return -1;
    return b.id;
}

/* The coordinator now: 0 with *b, or -EAGAIN (none now: the topic is made
 * if the cluster has none yet). */
static int find_coordinator(struct coord *c, struct cluster_broker *b)
{
    int r = cluster_partition_leader(c->cluster, GROUP_OFFSETS_TOPIC, 0, b);
    if (r != -ENOENT)
        return r ? -EAGAIN : 0;
    struct topic_config cfg;
    group_offsets_config(c->store, &cfg);
    r = cluster_internal_topic_create(c->cluster, GROUP_OFFSETS_TOPIC, &cfg, c->offsets_rf);
    if (r && r != -EEXIST) {
        int64_t now = mono_ms();
        pthread_mutex_lock(&c->lock);
        int say = now - c->create_logged_ms > 10000; /* once in 10 s */
        if (say)
            c->create_logged_ms = now;
        pthread_mutex_unlock(&c->lock);
        if (say)
            logger_log(LOG_LEVEL_WARN, "cannot make %s for consumer groups yet: %s",
                       GROUP_OFFSETS_TOPIC, strerror(-r));
    }
    return -EAGAIN;
}

static int link_connect(struct coord *c, struct link *l, const struct cluster_broker *b)
{
    char addr[CLUSTER_HOST_MAX + 16];
    snprintf(addr, sizeof(addr), "%s:%d", b->host, b->port);
    int r = peer_connect(addr, c->have_secret ? &c->secret : NULL, c->self, b->id,
                         CONNECT_TIMEOUT_MS, &l->pc);
    if (r)
        l->pc = NULL;
    else
        l->broker = b->id;
    return r;
}

/* One request to broker b over l (connected first if needed). After an
 * error, the caller closes l: the next call starts on a fresh connection. */
static int send_request(struct coord *c, struct link *l, const struct cluster_broker *b,
                        const struct group_request *q, int timeout_ms, struct reply *out)
{
    if (l->pc && l->broker != b->id)
        link_close(l);
    int r = l->pc ? 0 : link_connect(c, l, b);
    if (r)
        return r;
    uint8_t buf[GROUP_PROTO_REQ_MAX];
    ssize_t n = group_req_encode(q, buf, sizeof(buf));
    if (n < 0)
        return (int)n;
    struct iovec iov = {buf, (size_t)n};
    struct frame reply;
    r = peer_call(l->pc, FRAME_GROUP, &iov, 1, timeout_ms, &reply);
    const uint8_t *data;
    uint32_t dlen;
    if (!r && !(r = group_reply_decode(reply.payload, reply.h.length, &out->value, &data, &dlen))) {
        if (dlen > out->cap)
            r = -EBADMSG;
        else if (dlen)
            memcpy(out->data, data, dlen);
        out->len = r ? 0 : dlen;
    }
    return r;
}

/* Answers that another try, maybe at another coordinator, may change: no
 * coordinator now, not (or no longer) the coordinator, and what a broken
 * or unreachable connection gives (conn.h). Anything else is the answer. */
static int retriable(int e)
{
    switch (-e) {
    case EAGAIN:
    case EREMOTE:
    case ETIMEDOUT:
    case EPIPE:
    case ECONNREFUSED:
    case ECONNRESET:
    case ECONNABORTED:
    case ENOTCONN:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case ESHUTDOWN:
    case EPROTO: /* another broker answered at that address */
    case EINTR:
        return 1;
    default:
        return 0;
    }
}

/* A request to the coordinator wherever it is, tried again while the
 * answer may change, for at most retry_ms: then -EIO. *at gets the
 * broker that answered. */
static int call_within(struct coord *c, struct link *l, const struct group_request *q,
                       struct coord_member *local, struct reply *out, int *at, int retry_ms)
{
    int64_t deadline = mono_ms() + retry_ms;
    for (;;) {
        int r;
        struct cluster_broker b = {.id = c->self};
        if (!c->cluster || (r = find_coordinator(c, &b)) == 0)
            r = b.id == c->self ? coord_serve(c, c->self, q, local, out)
                                : send_request(c, l, &b, q, CALL_TIMEOUT_MS, out);
        if (r && l->pc && b.id != c->self)
            link_close(l);
        if (!retriable(r)) {
            if (at)
                *at = b.id;
            return r;
        }
        pthread_mutex_lock(&c->lock);
        int stopping = c->stopping;
        pthread_mutex_unlock(&c->lock);
        if (stopping)
            return -EIO;
        if (mono_ms() >= deadline) {
            logger_log(LOG_LEVEL_WARN, "group %s/%s: no group coordinator answered: %s", q->topic,
                       q->group, strerror(-r));
            return -EIO;
        }
        pause_ms(RETRY_PAUSE_MS);
    }
}

static int call(struct coord *c, struct link *l, const struct group_request *q,
                struct coord_member *local, struct reply *out, int *at)
{
    return call_within(c, l, q, local, out, at, c->retry_ms);
}

void coord_refresh(struct coord *c)
{
    if (!c->cluster || group_registry_active(c->groups))
        return;
    struct topic *t = store_find(c->store, GROUP_OFFSETS_TOPIC);
    if (t)
        remote_sync(c->remote, t, 0);
    topic_put(t);
    group_registry_catch_up(c->groups);
}

/* A change the coordinator made, up to log offset `end`, seen here too. */
static void mirror_wait(struct coord *c, uint64_t end)
{
    int64_t deadline = mono_ms() + MIRROR_WAIT_MS;
    for (;;) {
        coord_refresh(c);
        if (group_registry_active(c->groups) || group_registry_log_end(c->groups) >= end ||
            mono_ms() >= deadline)
            return;
        pause_ms(10);
    }
}

static void request_init(struct group_request *q, enum group_op op, const char *topic,
                         const char *group)
{
    memset(q, 0, sizeof(*q));
    q->op = op;
    snprintf(q->topic, sizeof(q->topic), "%s", topic);
    snprintf(q->group, sizeof(q->group), "%s", group);
}

/* A group change at the coordinator, seen here when it returns. */
static int group_change(struct coord *c, const struct group_request *q)
{
    struct reply out = {0};
    pthread_mutex_lock(&c->call_lock);
    int r = call(c, &c->link, q, NULL, &out, NULL);
    pthread_mutex_unlock(&c->call_lock);
    if (!r)
        mirror_wait(c, out.value);
    return r;
}

int coord_group_create(struct coord *c, struct topic *t, const char *name)
{
    struct group_request q;
    int r = group_name_valid(name);
    if (r)
        return r;
    request_init(&q, GROUP_OP_CREATE, t->name, name);
    return group_change(c, &q);
}

int coord_group_delete(struct coord *c, struct topic *t, const char *name)
{
    struct group_request q;
    if (group_name_valid(name))
        return -ENOENT;
    request_init(&q, GROUP_OP_DELETE, t->name, name);
    return group_change(c, &q);
}

int coord_cursor_set(struct coord *c, struct group *g, uint32_t partition, const char *spec,
                     int64_t time_ms)
{
    struct group_request q;
    request_init(&q, GROUP_OP_CURSOR, group_topic(g)->name, group_name(g));
    if (strlen(spec) >= sizeof(q.spec))
        return -EINVAL;
    snprintf(q.spec, sizeof(q.spec), "%s", spec);
    q.partition = partition;
    q.time_ms = time_ms;
    return group_change(c, &q);
}

char *coord_group_info(struct coord *c, struct group *g, size_t *len)
{
    size_t cap = 128 + 128 * (size_t)topic_partition_count(group_topic(g));
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    struct group_request q;
    request_init(&q, GROUP_OP_INFO, group_topic(g)->name, group_name(g));
    struct reply out = {.data = (uint8_t *)buf, .cap = cap};
    pthread_mutex_lock(&c->call_lock);
    int r = call_within(c, &c->link, &q, NULL, &out, NULL, INFO_RETRY_MS);
    pthread_mutex_unlock(&c->call_lock);
    *len = r ? group_info_text(g, buf, cap) : out.len; /* no coordinator: what this mount knows */
    return buf;
}

/* ------------------------------------------------------ this mount's members */

/* The poller's connection goes (never while coord_leave may abort it). */
static void poller_close(struct coord_member *m, struct link *l)
{
    pthread_mutex_lock(&m->state_lock);
    m->poll_pc = NULL;
    pthread_mutex_unlock(&m->state_lock);
    link_close(l);
}

/* The poller of a member joined at a coordinator on another broker: a WAIT
 * long poll there, which is also the member's heartbeat, wakes its reads
 * when it may find something (and when its coordinator is gone, so that
 * they join again). */
static void *member_poller(void *arg)
{
    struct coord_member *m = arg;
    struct coord *c = m->c;
    struct link l = {NULL, -1};
    uint64_t since = 0, joins = 0;
    pthread_mutex_lock(&m->state_lock);
    while (!m->stop) {
        if (m->kicked) {
            m->kicked = 0;
            pthread_mutex_unlock(&m->state_lock);
            if (m->wake)
                m->wake(m->wake_arg);
            pthread_mutex_lock(&m->state_lock);
            continue;
        }
        if (!m->id || m->at == c->self) {
            struct timespec until;
            deadline_in(&until, COORD_WAIT_MS);
            pthread_cond_timedwait(&m->state_changed, &m->state_lock, &until);
            continue;
        }
        if (m->joins != joins) {
            joins = m->joins;
            since = 0;
        }
        struct group_request q;
        request_init(&q, GROUP_OP_WAIT, m->topic, m->group);
        q.member = m->id;
        q.since = since;
        q.len = COORD_WAIT_MS;
        int at = m->at;
        pthread_mutex_unlock(&m->state_lock);
        struct cluster_broker b;
        struct reply out = {0};
        int r = cluster_broker(c->cluster, at, &b);
        if (!r && l.pc && l.broker != at)
            poller_close(m, &l);
        if (!r && !l.pc) {
            r = link_connect(c, &l, &b);
            pthread_mutex_lock(&m->state_lock);
            m->poll_pc = l.pc; /* coord_leave aborts its long poll */
            if (m->stop && l.pc)
                peer_abort(l.pc);
            pthread_mutex_unlock(&m->state_lock);
        }
        if (!r)
            r = send_request(c, &l, &b, &q, COORD_WAIT_MS + 5000, &out);
        if (r)
            poller_close(m, &l);
        if (!r && out.value == since)
            goto again; /* nothing new: poll again */
        if (!r)
            since = out.value;
        /* Else the member may be gone there: its read finds out (and joins
         * again, or says EIO if it expired). */
        if (m->wake)
            m->wake(m->wake_arg);
        if (r)
            pause_ms(RETRY_PAUSE_MS);
    again:
        pthread_mutex_lock(&m->state_lock);
    }
    pthread_mutex_unlock(&m->state_lock);
    poller_close(m, &l);
    return NULL;
}

/* Joins at the coordinator unless joined. Caller holds m->lock. */
static int member_join(struct coord_member *m)
{
    pthread_mutex_lock(&m->state_lock);
    uint64_t id = m->id;
    pthread_mutex_unlock(&m->state_lock);
    if (id)
        return 0;
    struct group_request q;
    request_init(&q, GROUP_OP_JOIN, m->topic, m->group);
    q.incarnation = m->c->incarnation;
    q.pid = (uint32_t)m->pid;
    q.follow = (uint8_t)m->follow;
    struct reply out = {0};
    int at = -1;
    int r = call(m->c, &m->link, &q, m, &out, &at);
    if (r)
        return r;
    pthread_mutex_lock(&m->state_lock);
    m->id = out.value;
    m->at = at;
    m->joins++;
    pthread_cond_broadcast(&m->state_changed);
    pthread_mutex_unlock(&m->state_lock);
    return 0;
}

/* A member request, joining (again) first when needed. */
static int member_call(struct coord_member *m, struct group_request *q, struct reply *out)
{
    int r = -EBADR;
    pthread_mutex_lock(&m->lock);
    for (int tries = 0; tries < 3 && r == -EBADR; tries++) {
        if ((r = member_join(m)))
            break;
        pthread_mutex_lock(&m->state_lock);
        q->member = m->id;
        pthread_mutex_unlock(&m->state_lock);
        r = call(m->c, &m->link, q, m, out, NULL);
        if (r == -EBADR || r == -EKEYEXPIRED) {
            pthread_mutex_lock(&m->state_lock);
            if (m->id == q->member)
                m->id = 0;
            pthread_mutex_unlock(&m->state_lock);
        }
    }
    pthread_mutex_unlock(&m->lock);
    /* ETIMEDOUT: it expired (its broker was cut off longer than the
     * session): what it was reading went to others. */
    return r == -EBADR || r == -EKEYEXPIRED ? -EIO : r;
}

int coord_join(struct coord *c, struct group *g, pid_t pid, int follow, void (*wake)(void *arg),
               void *wake_arg, struct coord_member **out)
{
    struct coord_member *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->c = c;
    snprintf(m->topic, sizeof(m->topic), "%s", group_topic(g)->name);
    snprintf(m->group, sizeof(m->group), "%s", group_name(g));
    m->pid = pid;
    m->follow = follow;
    m->wake = wake;
    m->wake_arg = wake_arg;
    m->link.broker = -1;
    m->at = -1;
    pthread_mutex_init(&m->lock, NULL);
    pthread_mutex_init(&m->state_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->state_changed, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_lock(&m->lock);
    int r = member_join(m);
    pthread_mutex_unlock(&m->lock);
    if (!r && c->cluster) {
        int e = pthread_create(&m->poller, NULL, member_poller, m);
        if (e)
            r = -e;
        else
            m->has_poller = 1;
    }
    if (r) {
        coord_leave(m);
        return r;
    }
    *out = m;
    return 0;
}

ssize_t coord_member_read(struct coord_member *m, uint64_t pos, void *buf, size_t len)
{
    struct group_request q;
    request_init(&q, GROUP_OP_READ, m->topic, m->group);
    q.pos = pos;
    q.len = len < GROUP_PROTO_READ_MAX ? (uint32_t)len : GROUP_PROTO_READ_MAX;
    struct reply out = {.data = buf, .cap = q.len};
    int r = member_call(m, &q, &out);
    return r ? r : (ssize_t)out.len;
}

int coord_member_sync(struct coord_member *m)
{
    struct group_request q;
    request_init(&q, GROUP_OP_SYNC, m->topic, m->group);
    struct reply out = {0};
    return member_call(m, &q, &out);
}

void coord_leave(struct coord_member *m)
{
    if (!m)
        return;
    struct coord *c = m->c;
    pthread_mutex_lock(&m->state_lock);
    m->stop = 1;
    if (m->poll_pc)
        peer_abort(m->poll_pc);
    pthread_cond_broadcast(&m->state_changed);
    uint64_t id = m->id;
    int at = m->at;
    pthread_mutex_unlock(&m->state_lock);
    if (m->has_poller)
        pthread_join(m->poller, NULL);
    if (id) {
        /* Best effort: a coordinator that does not hear it lets the member
         * go after the session timeout. */
        struct group_request q;
        request_init(&q, GROUP_OP_LEAVE, m->topic, m->group);
        q.member = id;
        struct reply out = {0};
        struct cluster_broker b;
        if (c->cluster && at != c->self && !cluster_broker(c->cluster, at, &b))
            send_request(c, &m->link, &b, &q, CONNECT_TIMEOUT_MS, &out);
    }
    detach_local(c, m);
    link_close(&m->link);
    pthread_mutex_destroy(&m->lock);
    pthread_mutex_destroy(&m->state_lock);
    pthread_cond_destroy(&m->state_changed);
    free(m);
}
