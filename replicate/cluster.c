/* cluster.c - joining a cluster and staying in it (cluster.h).
 *
 * One thread of ours (cluster_main) makes every ZooKeeper call once the
 * broker runs. ZooKeeper's completion thread only records what happened in
 * c->pending (on_event) and wakes it:
 *   PENDING_REGISTER    (re)create /brokers/ids/<id> if this session has not
 *   PENDING_BROKERS     re-read /brokers/ids (children watch) into the cache
 *   PENDING_CONTROLLER  re-read /controller (watch), elect if it is gone
 *   PENDING_EXPIRED     the session expired: a new one (zk_renew)
 *   PENDING_TOPICS      re-read the topics' znodes that changed (topic_cache.h)
 *   PENDING_LOCAL       make the data dir match them (cluster_topics.h)
 *   PENDING_CONTROL     the controller's work (controller_work.h)
 *   PENDING_REBALANCE   the same, preferred leaders too: set by the clock
 *                       every leader.imbalance.check.interval.seconds while
 *                       this broker is controller (rebalance_at) and
 *                       auto.leader.rebalance.enable
 * A new session, or a connection found again, sets the first three and
 * PENDING_TOPICS, with a full read of the topics. Work that fails (ZooKeeper
 * unreachable, or the id still held by an old session) is tried again every
 * RETRY_MS while connected. In a pass, the brokers and topics are read
 * before the controller works from them; the controller works after any
 * change of brokers, topics or role.
 *
 * The mount's requests (mkdir, rmdir, .config) run on FUSE threads: they
 * call ZooKeeper themselves (zk.h allows it) and cluster_topics.c
 * serializes them with the cluster thread's changes of the data dir.
 *
 * The cache (brokers, controller, epoch) is under c->lock, written by the
 * thread and copied out by cluster_view(). The registration is ours while
 * c->registered_session is the current session's id: a session that expired
 * took the ephemeral with it, and the new one registers again. */
#include "cluster.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "controller_work.h"
#include "isr.h"
#include "logger.h"

#define BROKERS_PATH "/brokers/ids"
#define CLUSTER_ID_PATH "/cluster/id"
#define RETRY_MS 500

enum {
    PENDING_REGISTER = 1,
    PENDING_BROKERS = 2,
    PENDING_CONTROLLER = 4,
    PENDING_EXPIRED = 8,
    PENDING_TOPICS = 16,
    PENDING_LOCAL = 32,
    PENDING_CONTROL = 64,
    PENDING_REBALANCE = 128,
    PENDING_ALL = PENDING_REGISTER | PENDING_BROKERS | PENDING_CONTROLLER | PENDING_TOPICS,
};

struct cluster {
    struct cluster_options o; /* strings below are our copies */
    char *zk_connect, *host, *data_dir;
    char cluster_id[CLUSTER_ID_MAX];
    struct zk *zk;
    struct controller *controller;
    struct topic_cache *tc;     /* from cluster_start (set under lock) */
    struct cluster_topics *ct;  /* from cluster_start, if it got a cluster_local */
    int control_due;            /* the controller's work waits (cluster thread only) */
    int64_t registered_session; /* 0: not registered */
    int new_cluster;            /* this join made the cluster id */

    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    int started, stop;
    unsigned pending, retry;
    int disconnected;     /* since the last ZK_EV_CONNECTED */
    int64_t rebalance_at; /* monotonic ms of the next rebalance; 0: none due */
    /* the cache */
    struct cluster_broker *brokers;
    size_t nbrokers;
    int controller_id, controller_epoch;
    void (*state_fn)(void *arg); /* cluster_set_state_listener */
    void *state_arg;
};

const char *cluster_zk_state_name(enum zk_state s)
{
    switch (s) {
    case ZK_CONNECTED:
        return "connected";
    case ZK_CONNECTING:
        return "connecting";
    case ZK_EXPIRED:
        return "expired";
    default:
        return "closed";
    }
}

static void on_event(void *arg, enum zk_event ev, const char *path)
{
    struct cluster *c = arg;
    unsigned bits = 0;
    pthread_mutex_lock(&c->lock);
    if (ev == ZK_EV_CONNECTED) {
        bits = PENDING_ALL;
        if (c->tc)
            topic_cache_need_full(c->tc);
    } else if (c->tc && topic_cache_note(c->tc, path))
        bits = PENDING_TOPICS;
    else if (ev == ZK_EV_EXPIRED)
        bits = PENDING_EXPIRED;
    else if (path && !strcmp(path, "/controller"))
        bits = PENDING_CONTROLLER;
    else if (path && !strncmp(path, BROKERS_PATH, strlen(BROKERS_PATH)))
        bits = PENDING_BROKERS;
    if (ev == ZK_EV_DISCONNECTED && !c->disconnected)
        logger_log(LOG_LEVEL_WARN, "lost the connection to ZooKeeper %s: looking for it",
                   c->zk_connect);
    if (ev == ZK_EV_CONNECTED && c->disconnected)
        logger_log(LOG_LEVEL_INFO, "connected to ZooKeeper %s again", c->zk_connect);
    if (ev == ZK_EV_DISCONNECTED || ev == ZK_EV_CONNECTED)
        c->disconnected = ev == ZK_EV_DISCONNECTED;
    c->pending |= bits;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void format_time(int64_t ms, char *buf, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (ms < 0 || !gmtime_r(&t, &tm) || !strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, cap, "at an unknown time");
}

/* why for a broker id held by another session: its address and since when. */
static void already_registered(struct cluster *c, char *why, size_t whylen)
{
    char path[64], *data, since[64];
    size_t len;
    struct cluster_broker_record rec;
    snprintf(path, sizeof(path), BROKERS_PATH "/%d", c->o.broker_id);
    if (zk_get(c->zk, path, 0, &data, &len, NULL) == 0) {
        if (cluster_broker_decode(data, len, &rec) == 0) {
            format_time(rec.timestamp_ms, since, sizeof(since));
            snprintf(why, whylen, "broker %d is already registered (%s%s%s:%d, since %s)",
                     c->o.broker_id, strchr(rec.host, ':') ? "[" : "", rec.host,
                     strchr(rec.host, ':') ? "]" : "", rec.port, since);
        } else {
            snprintf(why, whylen, "broker %d is already registered", c->o.broker_id);
        }
        free(data);
        return;
    }
    snprintf(why, whylen, "broker %d is already registered", c->o.broker_id);
}

/* Creates /brokers/ids/<id> for this session: 0, -EEXIST if another
 * session holds it, or another negative errno. */
static int register_broker(struct cluster *c)
{
    char path[64], json[512];
    struct cluster_broker_record rec = {.port = c->o.port, .timestamp_ms = clock_now_ms()};
    snprintf(rec.host, sizeof(rec.host), "%s", c->o.host);
    snprintf(path, sizeof(path), BROKERS_PATH "/%d", c->o.broker_id);
    int len = cluster_broker_encode(&rec, json, sizeof(json));
    if (len < 0)
        return len;
    int64_t session = zk_session_id(c->zk);
    int r = zk_create(c->zk, path, json, (size_t)len, ZK_EPHEMERAL);
    if (r == -EEXIST) {
        /* Ours if an earlier try was applied but its answer lost. */
        struct zk_stat st;
        if (zk_exists(c->zk, path, 0, &st) == 0 && st.ephemeral_owner == session)
            r = 0;
    }
    if (!r)
        c->registered_session = session;
    return r;
}

/* The cluster id in ZooKeeper, made (Kafka's way) if there is none yet. */
static int read_cluster_id(struct cluster *c, char *why, size_t whylen)
{
    for (int tries = 0; tries < 4; tries++) {
        char *data;
        size_t len;
        int r = zk_get(c->zk, CLUSTER_ID_PATH, 0, &data, &len, NULL);
        if (r == -ENOENT) {
            char id[CLUSTER_ID_MAX], json[128];
            if ((r = cluster_id_generate(id)) < 0)
                break;
            int jlen = cluster_id_encode(id, json, sizeof(json));
            r = zk_create(c->zk, CLUSTER_ID_PATH, json, (size_t)jlen, 0);
            c->new_cluster |= r == 0;
            if (r && r != -EEXIST)
                break;
            continue;
        }
        if (r) {
            snprintf(why, whylen, "ZooKeeper %s: cannot read %s: %s", c->zk_connect,
                     CLUSTER_ID_PATH, strerror(-r));
            return r;
        }
        r = cluster_id_decode(data, len, c->cluster_id);
        if (r)
            snprintf(why, whylen, "ZooKeeper %s: %s holds no cluster id: \"%.60s\"", c->zk_connect,
                     CLUSTER_ID_PATH, data);
        free(data);
        return r;
    }
    snprintf(why, whylen, "ZooKeeper %s: cannot create %s", c->zk_connect, CLUSTER_ID_PATH);
    return -EAGAIN;
}

/* meta.properties against the cluster id and the broker id: 0 if it
 * matches, -ENOENT if there is none, else a refusal in why. */
static int check_meta(struct cluster *c, char *why, size_t whylen)
{
    struct cluster_meta m;
    int r = cluster_meta_read(c->data_dir, &m);
    if (r == -ENOENT)
        return r;
    if (r == -EINVAL) {
        snprintf(why, whylen,
                 "data dir %s: meta.properties is damaged (version=0, broker.id=, "
                 "cluster.id= expected)",
                 c->data_dir);
        return r;
    }
    if (r) {
        snprintf(why, whylen, "data dir %s: meta.properties: %s", c->data_dir, strerror(-r));
        return r;
    }
    if (strcmp(m.cluster_id, c->cluster_id)) {
        snprintf(why, whylen,
                 "data dir %s belongs to cluster %s, not to cluster %s of ZooKeeper %s "
                 "(meta.properties)",
                 c->data_dir, m.cluster_id, c->cluster_id, c->zk_connect);
        return -EINVAL;
    }
    if (m.broker_id != c->o.broker_id) {
        snprintf(why, whylen,
                 "data dir %s belongs to broker %d, not to broker %d (meta.properties)",
                 c->data_dir, m.broker_id, c->o.broker_id);
        return -EINVAL;
    }
    return 0;
}

static void cluster_free(struct cluster *c)
{
    if (!c)
        return;
    zk_close(c->zk);
    cluster_topics_close(c->ct);
    topic_cache_free(c->tc);
    controller_free(c->controller);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    free(c->brokers);
    free(c->zk_connect);
    free(c->host);
    free(c->data_dir);
    free(c);
}

int cluster_join(const struct cluster_options *o, int flags, struct cluster **out, char *why,
                 size_t whylen)
{
    struct cluster *c = calloc(1, sizeof(*c));
    pthread_condattr_t ca;
    int r;

    snprintf(why, whylen, "out of memory");
    if (!c)
        return -ENOMEM;
    pthread_mutex_init(&c->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &ca);
    pthread_condattr_destroy(&ca);
    c->o = *o;
    c->controller_id = c->controller_epoch = -1;
    c->zk_connect = strdup(o->zk);
    c->host = strdup(o->host);
    c->data_dir = strdup(o->data_dir);
    if (!c->zk_connect || !c->host || !c->data_dir) {
        r = -ENOMEM;
        goto fail;
    }
    c->o.zk = c->zk_connect;
    c->o.host = c->host;
    c->o.data_dir = c->data_dir;
    struct zk_options zo = {
        .connect = o->zk,
        .session_timeout_ms = o->session_timeout_ms,
        .connection_timeout_ms = o->connection_timeout_ms,
        .on_event = on_event,
        .arg = c,
    };
    r = zk_open(&zo, &c->zk);
    if (r == -ETIMEDOUT) {
        snprintf(why, whylen,
                 "ZooKeeper %s not reachable within %d ms "
                 "(zookeeper.connection.timeout.ms)",
                 o->zk, o->connection_timeout_ms);
        goto fail;
    }
    if (r == -EINVAL) {
        snprintf(why, whylen,
                 "zk=%s: not a ZooKeeper connection string "
                 "(host:port[,host:port...][/chroot])",
                 o->zk);
        goto fail;
    }
    if (r == -EHOSTUNREACH) {
        snprintf(why, whylen, "ZooKeeper %s: cannot resolve its servers' names", o->zk);
        goto fail;
    }
    if (r) {
        snprintf(why, whylen, "ZooKeeper %s: %s", o->zk, strerror(-r));
        goto fail;
    }
    static const char *const parents[] = {BROKERS_PATH, "/brokers/topics", "/config/topics",
                                          "/admin/delete_topics", "/cluster"};
    for (size_t i = 0; i < sizeof(parents) / sizeof(parents[0]); i++)
        if ((r = zk_create_path(c->zk, parents[i]))) {
            snprintf(why, whylen, "ZooKeeper %s: cannot create %s: %s", o->zk, parents[i],
                     strerror(-r));
            goto fail;
        }
    if ((r = read_cluster_id(c, why, whylen)))
        goto fail;
    if ((r = check_meta(c, why, whylen)) && r != -ENOENT)
        goto fail;
    char path[64];
    snprintf(path, sizeof(path), BROKERS_PATH "/%d", o->broker_id);
    r = flags & CLUSTER_CHECK_ONLY ? zk_exists(c->zk, path, 0, NULL) == 0 ? -EEXIST : 0
                                   : register_broker(c);
    if (r == -EEXIST) {
        already_registered(c, why, whylen);
        goto fail;
    }
    if (r) {
        snprintf(why, whylen, "ZooKeeper %s: cannot register broker %d: %s", o->zk, o->broker_id,
                 strerror(-r));
        goto fail;
    }
    if (!(flags & CLUSTER_CHECK_ONLY))
        logger_log(LOG_LEVEL_INFO,
                   "broker %d joined %scluster %s (ZooKeeper %s, listening at %s:%d)", o->broker_id,
                   c->new_cluster ? "the new " : "", c->cluster_id, o->zk, o->host, o->port);
    why[0] = '\0';
    *out = c;
    return 0;
fail:
    cluster_free(c);
    return r;
}

int cluster_claim_data_dir(struct cluster *c, char *why, size_t whylen)
{
    int r = check_meta(c, why, whylen);
    if (r != -ENOENT)
        return r;
    struct cluster_meta m = {.broker_id = c->o.broker_id};
    memcpy(m.cluster_id, c->cluster_id, sizeof(m.cluster_id));
    r = cluster_meta_write(c->data_dir, &m);
    if (r)
        snprintf(why, whylen, "data dir %s: cannot write meta.properties: %s", c->data_dir,
                 strerror(-r));
    return r;
}

static int compare_brokers(const void *a, const void *b)
{
    const struct cluster_broker *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

/* A broker id as a znode name: digits, no leading zero, at most INT32_MAX. */
static int parse_id(const char *s, int *id)
{
    long long v = 0;
    if (!*s || (s[0] == '0' && s[1]) || strlen(s) > 10)
        return -1;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    if (v > INT32_MAX)
        return -1;
    *id = (int)v;
    return 0;
}

static int refresh_brokers(struct cluster *c)
{
    char **names;
    size_t n;
    int r = zk_children(c->zk, BROKERS_PATH, 1, &names, &n);
    if (r)
        return r;
    struct cluster_broker *b = calloc(n ? n : 1, sizeof(*b));
    size_t nb = 0;
    if (!b)
        r = -ENOMEM;
    for (size_t i = 0; !r && i < n; i++) {
        char path[128], *data;
        size_t len;
        struct cluster_broker_record rec;
        if (parse_id(names[i], &b[nb].id)) {
            logger_log(LOG_LEVEL_WARN, "ZooKeeper %s: %s/%s is not a broker id", c->zk_connect,
                       BROKERS_PATH, names[i]);
            continue;
        }
        snprintf(path, sizeof(path), BROKERS_PATH "/%s", names[i]);
        r = zk_get(c->zk, path, 0, &data, &len, NULL);
        if (r == -ENOENT) {
            r = 0; /* gone since the list: the watch tells us */
            continue;
        }
        if (r)
            break;
        if (cluster_broker_decode(data, len, &rec) == 0) {
            b[nb].port = rec.port;
            memcpy(b[nb].host, rec.host, sizeof(rec.host));
            nb++;
        } else {
            logger_log(LOG_LEVEL_WARN, "ZooKeeper %s: %s is not a broker registration: \"%.60s\"",
                       c->zk_connect, path, data);
        }
        free(data);
    }
    zk_free_names(names, n);
    if (r) {
        free(b);
        return r;
    }
    qsort(b, nb, sizeof(*b), compare_brokers);
    char list[512];
    size_t off = 0;
    list[0] = '\0';
    for (size_t i = 0; i < nb && off < sizeof(list); i++)
        off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%d", i ? "," : "", b[i].id);
    pthread_mutex_lock(&c->lock);
    int changed = nb != c->nbrokers;
    for (size_t i = 0; !changed && i < nb; i++)
        changed = memcmp(&b[i], &c->brokers[i], sizeof(*b)) != 0;
    free(c->brokers);
    c->brokers = b;
    c->nbrokers = nb;
    pthread_mutex_unlock(&c->lock);
    if (changed)
        logger_log(LOG_LEVEL_INFO, "live brokers: %s", nb ? list : "none");
    return 0;
}

static int refresh_controller(struct cluster *c)
{
    int id, epoch;
    int r = controller_refresh(c->controller, c->zk, &id, &epoch);
    if (r)
        return r;
    pthread_mutex_lock(&c->lock);
    int changed = id != c->controller_id || epoch != c->controller_epoch;
    c->controller_id = id;
    c->controller_epoch = epoch;
    pthread_mutex_unlock(&c->lock);
    if (changed)
        logger_log(LOG_LEVEL_INFO, "controller: broker %d (epoch %d)", id, epoch);
    return 0;
}

/* The live brokers' ids (sorted), malloc'ed: 0 or -ENOMEM. */
static int live_ids(struct cluster *c, int32_t **ids, size_t *n)
{
    pthread_mutex_lock(&c->lock);
    int32_t *v = malloc((c->nbrokers ? c->nbrokers : 1) * sizeof(*v));
    for (size_t i = 0; v && i < c->nbrokers; i++)
        v[i] = c->brokers[i].id;
    *n = c->nbrokers;
    pthread_mutex_unlock(&c->lock);
    *ids = v;
    return v ? 0 : -ENOMEM;
}

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Under c->lock: the next rebalance from now (0: none while not controller
 * or rebalance is off). */
static void schedule_rebalance(struct cluster *c, int controller)
{
    c->rebalance_at = controller && c->o.auto_leader_rebalance
                          ? monotonic_ms() + c->o.leader_imbalance_check_interval_ms
                          : 0;
}

/* The controller's work; the bits to try again. */
static unsigned control(struct cluster *c, int epoch, int version, int rebalance)
{
    int32_t *live;
    size_t n;
    if (live_ids(c, &live, &n))
        return PENDING_CONTROL;
    int r = controller_work_run(c->zk, c->tc, live, n, epoch, version, rebalance);
    free(live);
    if (r == -ESTALE) {
        logger_log(LOG_LEVEL_WARN, "controller epoch %d: another controller took over", epoch);
        return PENDING_CONTROLLER;
    }
    if (r)
        logger_log(LOG_LEVEL_WARN, "controller: %s (trying again)", strerror(-r));
    if (r)
        return rebalance ? PENDING_REBALANCE : PENDING_CONTROL;
    if (rebalance) {
        pthread_mutex_lock(&c->lock);
        schedule_rebalance(c, 1);
        pthread_mutex_unlock(&c->lock);
    }
    return 0;
}

/* Does the work of the pending bits; returns the bits to try again. */
static unsigned work(struct cluster *c, unsigned todo)
{
    unsigned failed = 0;
    int r;
    if (todo & PENDING_EXPIRED) {
        logger_log(LOG_LEVEL_WARN,
                   "ZooKeeper session expired: starting a new one to register "
                   "broker %d again",
                   c->o.broker_id);
        controller_session_lost(c->controller);
        c->registered_session = 0;
        pthread_mutex_lock(&c->lock);
        c->controller_id = c->controller_epoch = -1;
        pthread_mutex_unlock(&c->lock);
        if ((r = zk_renew(c->zk))) {
            logger_log(LOG_LEVEL_ERROR, "ZooKeeper %s: cannot start a new session: %s",
                       c->zk_connect, strerror(-r));
            return PENDING_EXPIRED;
        }
        return 0; /* ZK_EV_CONNECTED brings the rest */
    }
    if (zk_state(c->zk) != ZK_CONNECTED)
        return 0; /* likewise */
    if ((todo & PENDING_REGISTER) && c->registered_session != zk_session_id(c->zk)) {
        r = register_broker(c);
        if (r) {
            failed |= PENDING_REGISTER;
            if (r == -EEXIST)
                logger_log(LOG_LEVEL_WARN,
                           "broker %d is registered by another session: "
                           "waiting for it to go",
                           c->o.broker_id);
            else
                logger_log(LOG_LEVEL_WARN, "cannot register broker %d: %s", c->o.broker_id,
                           strerror(-r));
        } else {
            logger_log(LOG_LEVEL_INFO, "broker %d registered again", c->o.broker_id);
        }
    }
    if ((todo & PENDING_BROKERS) && refresh_brokers(c))
        failed |= PENDING_BROKERS;
    if (todo & PENDING_TOPICS) {
        if (topic_cache_sync(c->tc, c->zk))
            failed |= PENDING_TOPICS;
        else
            todo |= PENDING_LOCAL;
    }
    /* A controller must be a registered broker. */
    if ((todo & PENDING_CONTROLLER) &&
        (c->registered_session != zk_session_id(c->zk) || refresh_controller(c)))
        failed |= PENDING_CONTROLLER;
    if (todo & (PENDING_BROKERS | PENDING_TOPICS | PENDING_CONTROLLER))
        c->control_due = 1;
    if ((todo & (PENDING_CONTROL | PENDING_REBALANCE)) || c->control_due) {
        int epoch, version;
        if (controller_fence(c->controller, &epoch, &version) == 0)
            failed |= control(c, epoch, version, (todo & PENDING_REBALANCE) != 0);
        c->control_due = 0;
    }
    if ((todo & PENDING_LOCAL) && c->ct && cluster_topics_reconcile(c->ct, c->zk))
        failed |= PENDING_LOCAL;
    if ((todo & (PENDING_BROKERS | PENDING_TOPICS | PENDING_CONTROL | PENDING_REBALANCE)) &&
        c->state_fn)
        c->state_fn(c->state_arg);
    return failed;
}

static void *cluster_main(void *arg)
{
    struct cluster *c = arg;
    pthread_mutex_lock(&c->lock);
    while (!c->stop) {
        if (!c->pending) {
            int64_t now = monotonic_ms(), until = c->retry ? now + RETRY_MS : 0;
            if (c->rebalance_at && (!until || c->rebalance_at < until))
                until = c->rebalance_at;
            if (!until) {
                pthread_cond_wait(&c->cond, &c->lock);
                continue;
            }
            struct timespec at = {.tv_sec = (time_t)(until / 1000),
                                  .tv_nsec = (long)(until % 1000) * 1000000L};
            while (!c->stop && !c->pending &&
                   pthread_cond_timedwait(&c->cond, &c->lock, &at) != ETIMEDOUT)
                ;
            c->pending |= c->retry;
            c->retry = 0;
            if (c->rebalance_at && monotonic_ms() >= c->rebalance_at) {
                c->pending |= PENDING_REBALANCE;
                c->rebalance_at = 0; /* set again when it ran */
            }
            continue;
        }
        unsigned todo = c->pending;
        c->pending = 0;
        pthread_mutex_unlock(&c->lock);
        unsigned failed = work(c, todo);
        pthread_mutex_lock(&c->lock);
        c->retry |= failed;
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

static void became_controller(void *arg, int epoch)
{
    struct cluster *c = arg;
    (void)epoch;
    c->control_due = 1; /* a new controller looks at every partition */
    pthread_mutex_lock(&c->lock);
    schedule_rebalance(c, 1);
    pthread_mutex_unlock(&c->lock);
}

static void lost_controller(void *arg)
{
    struct cluster *c = arg;
    c->control_due = 0;
    pthread_mutex_lock(&c->lock);
    schedule_rebalance(c, 0);
    pthread_mutex_unlock(&c->lock);
}

int cluster_start(struct cluster *c, const struct cluster_local *local)
{
    struct controller_callbacks cb = {became_controller, lost_controller, c};
    int r = controller_new(c->o.broker_id, &cb, &c->controller);
    struct topic_cache *tc = NULL;
    if (!r)
        r = topic_cache_new(&tc);
    if (!r && local)
        r = cluster_topics_open(local, c->data_dir, c->cluster_id, c->o.default_replication_factor,
                                c->o.unclean_leader_election, tc, &c->ct);
    pthread_mutex_lock(&c->lock); /* on_event reads it there */
    c->tc = tc;
    pthread_mutex_unlock(&c->lock);
    if (r)
        return r;
    pthread_mutex_lock(&c->lock);
    c->pending |= PENDING_ALL;
    pthread_mutex_unlock(&c->lock);
    sigset_t block, old;
    sigfillset(&block);
    pthread_sigmask(SIG_BLOCK, &block, &old); /* the daemon's signals are for its own threads */
    r = -pthread_create(&c->thread, NULL, cluster_main, c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r)
        return r;
    c->started = 1;
    return 0;
}

void cluster_close(struct cluster *c)
{
    if (!c)
        return;
    if (c->started) {
        pthread_mutex_lock(&c->lock);
        c->stop = 1;
        pthread_cond_signal(&c->cond);
        pthread_mutex_unlock(&c->lock);
        pthread_join(c->thread, NULL);
    }
    if (c->registered_session)
        logger_log(LOG_LEVEL_INFO, "broker %d leaves cluster %s", c->o.broker_id, c->cluster_id);
    cluster_free(c);
}

int cluster_view(struct cluster *c, struct cluster_view *v)
{
    memset(v, 0, sizeof(*v));
    pthread_mutex_lock(&c->lock);
    v->brokers = calloc(c->nbrokers ? c->nbrokers : 1, sizeof(*v->brokers));
    if (v->brokers) {
        if (c->nbrokers)
            memcpy(v->brokers, c->brokers, c->nbrokers * sizeof(*v->brokers));
        v->nbrokers = c->nbrokers;
        v->controller = c->controller_id;
        v->controller_epoch = c->controller_epoch;
    }
    pthread_mutex_unlock(&c->lock);
    if (!v->brokers)
        return -ENOMEM;
    memcpy(v->cluster_id, c->cluster_id, sizeof(v->cluster_id));
    v->self = c->o.broker_id;
    v->zookeeper = zk_state(c->zk);
    return 0;
}

void cluster_view_free(struct cluster_view *v)
{
    free(v->brokers);
    v->brokers = NULL;
    v->nbrokers = 0;
}

static int topic_create(struct cluster *c, const char *name, struct topic_config *internal,
                        int internal_rf)
{
    int32_t *live;
    size_t n;
    int r = c->ct ? live_ids(c, &live, &n) : -EAGAIN;
    if (!r) {
        if (internal)
            internal->replication_factor = internal_rf > 0 ? internal_rf : (n < 3 ? (int)n : 3);
        r = cluster_topics_create(c->ct, c->zk, live, n, name, internal);
        free(live);
    }
    return r;
}

int cluster_topic_create(struct cluster *c, const char *name)
{
    return topic_create(c, name, NULL, 0);
}

int cluster_internal_topic_create(struct cluster *c, const char *name,
                                  const struct topic_config *cfg, int replication_factor)
{
    struct topic_config copy = *cfg;
    return topic_create(c, name, &copy, replication_factor);
}

int cluster_topic_delete(struct cluster *c, const char *name)
{
    return c->ct ? cluster_topics_delete(c->ct, c->zk, name) : -EAGAIN;
}

int cluster_topic_config(struct cluster *c, const char *name, const char *line, size_t len)
{
    int32_t *live;
    size_t n;
    int r = c->ct ? live_ids(c, &live, &n) : -EAGAIN;
    if (!r) {
        r = cluster_topics_config(c->ct, c->zk, live, n, name, line, len);
        free(live);
    }
    return r;
}

int cluster_partition_view(struct cluster *c, const char *topic, uint32_t p,
                           struct cluster_partition_view *v)
{
    return c->ct ? cluster_topics_partition(c->ct, topic, p, v) : -ENOENT;
}

int cluster_partition_leader(struct cluster *c, const char *topic, uint32_t p,
                             struct cluster_broker *leader)
{
    struct cluster_partition_view v;
    int r = cluster_partition_view(c, topic, p, &v);
    if (r)
        return r;
    if (v.leader < 0)
        return -EAGAIN;
    r = -EAGAIN; /* a leader whose registration is gone: not reachable now */
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->nbrokers; i++)
        if (c->brokers[i].id == v.leader) {
            *leader = c->brokers[i];
            r = 0;
        }
    pthread_mutex_unlock(&c->lock);
    return r;
}

void cluster_set_state_listener(struct cluster *c, void (*fn)(void *arg), void *arg)
{
    c->state_fn = fn;
    c->state_arg = arg;
}

int cluster_broker(struct cluster *c, int id, struct cluster_broker *out)
{
    int r = -ENOENT;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->nbrokers; i++)
        if (c->brokers[i].id == id) {
            *out = c->brokers[i];
            r = 0;
        }
    pthread_mutex_unlock(&c->lock);
    return r;
}

static void isr_text(const int32_t *isr, uint32_t n, char *buf, size_t cap)
{
    size_t off = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < n && off < cap; i++)
        off += (size_t)snprintf(buf + off, cap - off, "%s%d", i ? "," : "", isr[i]);
}

int cluster_alter_isr(struct cluster *c, const char *topic, uint32_t p, int32_t leader_epoch,
                      const int32_t *isr, uint32_t nisr)
{
    if (!c->tc || !c->started)
        return -EAGAIN;
    if (nisr > CLUSTER_REPLICAS_MAX)
        return -EINVAL;
    for (int tries = 0; tries < 4; tries++) {
        struct cluster_partition_state st, old;
        int32_t version = 0;
        char id[CLUSTER_ID_MAX], path[TC_PATH_MAX], json[1024], was[512], now[512];
        int r = -ENOENT;
        pthread_mutex_lock(&c->tc->lock);
        struct tc_topic *t = topic_cache_find(c->tc, topic);
        if (t && t->assignment_known == TC_PRESENT && p < t->a.nparts &&
            t->parts[p].known == TC_PRESENT) {
            st = old = t->parts[p].st;
            version = t->parts[p].version;
            strcpy(id, t->a.topic_id);
            r = 0;
        }
        pthread_mutex_unlock(&c->tc->lock);
        if (r)
            return r;
        if (st.leader != c->o.broker_id || st.leader_epoch != leader_epoch)
            return -ESTALE;
        if (isr_same(st.isr, st.nisr, isr, nisr))
            return 0;
        memcpy(st.isr, isr, nisr * sizeof(*isr));
        st.nisr = nisr;
        int len = cluster_state_encode(&st, json, sizeof(json));
        if (len < 0)
            return len;
        tc_state_path(path, topic, p);
        r = zk_set(c->zk, path, json, (size_t)len, version, NULL);
        if (r == -ESTALE) {
            if ((r = topic_cache_read_state(c->tc, c->zk, topic, p)))
                return r;
            continue;
        }
        if (r)
            return r;
        topic_cache_put_state(c->tc, topic, id, p, &st, version + 1);
        isr_text(old.isr, old.nisr, was, sizeof(was));
        isr_text(st.isr, st.nisr, now, sizeof(now));
        logger_log(LOG_LEVEL_INFO, "partition %s-%u: isr %s (was %s), leader %d, leader epoch %d",
                   topic, p, now, was, st.leader, st.leader_epoch);
        return 0;
    }
    return -EAGAIN;
}
