/* cluster_topics.c - mkdir, rmdir and .config through ZooKeeper, and the
 * data dir kept in step with it (cluster_topics.h).
 *
 * ct->local_lock serializes every change of this data dir's topics in
 * cluster mode: the requests of the mount (which hold it across their
 * ZooKeeper transaction, so that the cluster thread cannot make the same
 * topic from the watch in between) and the cluster thread's reconcile. The
 * cache's lock is never held across a ZooKeeper call or a change of the
 * data dir: reconcile works from a copy (struct wanted).
 *
 * The order of writes keeps cluster-topics true across a crash: its entry
 * is written before the topic is made, and removed after it is deleted. An
 * entry without a topic is harmless (dropped, or the topic made, at the
 * next reconcile); a topic without an entry is never deleted. */
#include "cluster_topics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "assignment.h"
#include "clock.h"
#include "fsutil.h"
#include "group.h"
#include "logger.h"

#define CONFIG_TRIES 8

struct cluster_topics {
    struct cluster_local local;
    struct topic_cache *tc;
    char *ids_path;
    char cluster_id[CLUSTER_ID_MAX];
    int default_rf, default_unclean;
    pthread_mutex_t local_lock;
    struct topic_id_list ids;       /* under local_lock */
    struct topic_id_list conflicts; /* names logged as local-only (ids unused) */
};

static void load_ids(struct cluster_topics *ct)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = fopen(ct->ids_path, "re");
    int r = 0;
    if (!f) {
        if (errno != ENOENT)
            logger_log(LOG_LEVEL_ERROR, "%s: %s: its topics are left as they are", ct->ids_path,
                       strerror(errno));
        strcpy(ct->ids.cluster_id, ct->cluster_id);
        return;
    }
    FILE *m = open_memstream(&text, &len);
    char buf[4096];
    size_t n;
    while (m && (n = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, n, m);
    r = ferror(f) || !m ? -EIO : 0;
    fclose(f);
    if (m)
        fclose(m);
    if (!r)
        r = topic_ids_parse(text ? text : "", len, &ct->ids);
    free(text);
    if (r) {
        logger_log(LOG_LEVEL_ERROR,
                   "%s is damaged: the topics it named are left as they are, as topics of this "
                   "broker only",
                   ct->ids_path);
    } else if (strcmp(ct->ids.cluster_id, ct->cluster_id)) {
        logger_log(LOG_LEVEL_ERROR,
                   "%s names cluster %s, not %s: the topics it named are left as they are, as "
                   "topics of this broker only",
                   ct->ids_path, ct->ids.cluster_id[0] ? ct->ids.cluster_id : "(none)",
                   ct->cluster_id);
        topic_ids_free(&ct->ids);
    }
    strcpy(ct->ids.cluster_id, ct->cluster_id);
}

/* Writes cluster-topics whole (local_lock held). */
static int save_ids(struct cluster_topics *ct)
{
    char *text;
    size_t len;
    int renamed, r = topic_ids_format(&ct->ids, &text, &len);
    if (r)
        return r;
    r = fsutil_write_atomic(ct->ids_path, text, len, NULL, &renamed);
    free(text);
    if (r && renamed)
        r = 0; /* in place; its durability comes with the next write */
    if (r)
        logger_log(LOG_LEVEL_ERROR, "cannot write %s: %s", ct->ids_path, strerror(-r));
    return r;
}

/* Records (id) or forgets (NULL) name's entry, on disk first. */
static int set_entry(struct cluster_topics *ct, const char *name, const char *id)
{
    const struct topic_id_entry *e = topic_ids_find(&ct->ids, name);
    if ((!id && !e) || (id && e && !strcmp(e->id, id)))
        return 0;
    char old[CLUSTER_ID_MAX] = "";
    if (e)
        strcpy(old, e->id);
    int r = topic_ids_set(&ct->ids, name, id);
    if (!r && (r = save_ids(ct)))
        topic_ids_set(&ct->ids, name, old[0] ? old : NULL);
    return r;
}

int cluster_topics_open(const struct cluster_local *local, const char *data_dir,
                        const char *cluster_id, int default_rf, int default_unclean,
                        struct topic_cache *tc, struct cluster_topics **out)
{
    struct cluster_topics *ct = calloc(1, sizeof(*ct));
    if (!ct)
        return -ENOMEM;
    if (asprintf(&ct->ids_path, "%s/cluster-topics", data_dir) < 0) {
        free(ct);
        return -ENOMEM;
    }
    ct->local = *local;
    ct->tc = tc;
    ct->default_rf = default_rf;
    ct->default_unclean = default_unclean;
    snprintf(ct->cluster_id, sizeof(ct->cluster_id), "%s", cluster_id);
    pthread_mutex_init(&ct->local_lock, NULL);
    load_ids(ct);
    *out = ct;
    return 0;
}

void cluster_topics_close(struct cluster_topics *ct)
{
    if (!ct)
        return;
    topic_ids_free(&ct->ids);
    topic_ids_free(&ct->conflicts);
    pthread_mutex_destroy(&ct->local_lock);
    free(ct->ids_path);
    free(ct);
}

/* ---- this data dir ---- */

static int local_exists(struct cluster_topics *ct, const char *name)
{
    struct topic *t = store_find(ct->local.store, name);
    topic_put(t);
    return t != NULL;
}

/* Makes the cluster's topic here: its entry first (local_lock held). */
static int make_local(struct cluster_topics *ct, const char *name, const char *id,
                      const struct topic_config *cfg, int remote)
{
    int r = set_entry(ct, name, id);
    if (r)
        return r;
    r = ct->local.create(ct->local.arg, name, cfg, remote);
    if (r) {
        logger_log(LOG_LEVEL_ERROR, "cannot make topic %s of the cluster here: %s", name,
                   strerror(-r));
        set_entry(ct, name, NULL);
        return r;
    }
    logger_log(LOG_LEVEL_INFO, "topic %s (id %s): made here with %u partition%s", name, id,
               cfg->partitions, cfg->partitions == 1 ? "" : "s");
    return 0;
}

/* Deletes the cluster's copy of a topic here, then its entry. */
static int drop_local(struct cluster_topics *ct, const char *name, int remote, const char *why)
{
    int r = local_exists(ct, name) ? ct->local.remove(ct->local.arg, name, remote) : 0;
    if (r == -ENOENT)
        r = 0;
    if (r) {
        logger_log(LOG_LEVEL_ERROR, "cannot delete topic %s here: %s", name, strerror(-r));
        return r;
    }
    logger_log(LOG_LEVEL_INFO, "topic %s: deleted here (%s)", name, why);
    return set_entry(ct, name, NULL);
}

static int same_config(const struct topic_config *a, const struct topic_config *b)
{
    char x[4096], y[4096];
    size_t n = config_format(a, x, sizeof(x)), m = config_format(b, y, sizeof(y));
    return n == m && !memcmp(x, y, n);
}

/* What the cache wants of one topic. */
struct wanted {
    char *name;
    char id[CLUSTER_ID_MAX];
    int marked, complete;
    struct topic_config cfg;
};

static void log_conflict(struct cluster_topics *ct, const char *name)
{
    if (topic_ids_find(&ct->conflicts, name))
        return;
    topic_ids_set(&ct->conflicts, name, "");
    logger_log(LOG_LEVEL_WARN,
               "topic %s of the cluster is not made here: this data dir has a topic of that "
               "name that the cluster did not make (rmdir it here to take the cluster's)",
               name);
}

/* This data dir's own __consumer_offsets (kept as a single node, or by an
 * older topicfs that kept groups per broker) goes: the cluster's replaces
 * it. local_lock held. */
static int drop_own_offsets(struct cluster_topics *ct, int remote)
{
    logger_log(LOG_LEVEL_WARN,
               "%s: this data dir's own consumer offsets are replaced by the "
               "cluster's",
               GROUP_OFFSETS_TOPIC);
    return ct->local.remove(ct->local.arg, GROUP_OFFSETS_TOPIC, remote);
}

/* One topic (local_lock held). */
static int reconcile_one(struct cluster_topics *ct, const struct wanted *w)
{
    const struct topic_id_entry *e = topic_ids_find(&ct->ids, w->name);
    int here = local_exists(ct, w->name);
    if (w->marked) /* being deleted: gone everywhere at once */
        return e ? drop_local(ct, w->name, 1, "deleted from the cluster") : 0;
    if (!w->complete)
        return 0;
    if (here && !e && !strcmp(w->name, GROUP_OFFSETS_TOPIC)) {
        int r = drop_own_offsets(ct, 1);
        if (r)
            return r;
        here = 0;
    }
    if (here && !e) {
        log_conflict(ct, w->name);
        return 0;
    }
    if (here && strcmp(e->id, w->id) && w->id[0]) {
        int r = drop_local(ct, w->name, 1, "the cluster made another topic of that name");
        if (r)
            return r;
        here = 0;
    }
    if (!here)
        return make_local(ct, w->name, w->id, &w->cfg, 1);
    struct topic *t = store_find(ct->local.store, w->name);
    struct topic_config cur;
    int r = 0;
    if (t) {
        struct topic_config want = w->cfg;
        topic_config_snapshot(t, &cur);
        topic_put(t);
        if (want.partitions < cur.partitions) {
            /* Partitions are never taken away (Kafka cannot either): an
             * assignment that names fewer was not written by a broker. */
            if (!topic_ids_find(&ct->conflicts, w->name)) {
                topic_ids_set(&ct->conflicts, w->name, "");
                logger_log(LOG_LEVEL_WARN,
                           "topic %s: the cluster's assignment has %u partitions, this data dir "
                           "%u: they stay",
                           w->name, want.partitions, cur.partitions);
            }
            want.partitions = cur.partitions;
        }
        if (!same_config(&cur, &want)) {
            r = ct->local.configure(ct->local.arg, w->name, &want, 1);
            if (r)
                logger_log(LOG_LEVEL_ERROR, "topic %s: cannot take the cluster's config: %s",
                           w->name, strerror(-r));
        }
    }
    return r;
}

/* A copy of what the cache wants of name (or of every topic). */
static int wanted_of(struct cluster_topics *ct, const char *name, struct wanted **out, size_t *n,
                     int *listed)
{
    struct topic_cache *tc = ct->tc;
    pthread_mutex_lock(&tc->lock);
    size_t cap = name ? 1 : tc->n;
    struct wanted *w = calloc(cap ? cap : 1, sizeof(*w));
    size_t k = 0;
    int r = w ? 0 : -ENOMEM;
    for (size_t i = 0; !r && i < tc->n; i++) {
        struct tc_topic *t = tc->topics[i];
        if (name && strcmp(t->name, name))
            continue;
        if (!(w[k].name = strdup(t->name))) {
            r = -ENOMEM;
            break;
        }
        w[k].marked = t->marked;
        w[k].complete = t->listed && topic_cache_complete(t);
        if (t->assignment_known == TC_PRESENT)
            strcpy(w[k].id, t->a.topic_id);
        if (w[k].complete)
            topic_cache_full_config(t, &w[k].cfg);
        k++;
    }
    *listed = tc->listed;
    pthread_mutex_unlock(&tc->lock);
    if (r) {
        for (size_t i = 0; w && i < k; i++)
            free(w[i].name);
        free(w);
        return r;
    }
    *out = w;
    *n = k;
    return 0;
}

static void wanted_free(struct wanted *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(w[i].name);
    free(w);
}

/* Whether ZooKeeper has no assignment of topic `name` now: the list a
 * reconcile works from may have been read before this broker made it. */
static int gone_from_cluster(struct zk *z, const char *name)
{
    char path[TC_PATH_MAX];
    tc_assignment_path(path, name);
    return z && zk_exists(z, path, 0, NULL) == -ENOENT;
}

/* One topic, or all of them (name NULL; then z checks a topic the list
 * lacks before it is dropped): local_lock held. */
static int reconcile_locked(struct cluster_topics *ct, struct zk *z, const char *name)
{
    struct wanted *w;
    size_t n;
    int listed, r = wanted_of(ct, name, &w, &n, &listed), failed = 0;
    if (r)
        return r;
    for (size_t i = 0; i < n; i++)
        if ((r = reconcile_one(ct, &w[i])))
            failed = r;
    /* Entries of topics ZooKeeper no longer lists: deleted while we were
     * away (or while the mark went by). Only after a whole list was read. */
    if (!name && listed) {
        for (size_t i = 0; i < ct->ids.n;) {
            const char *entry = ct->ids.v[i].name;
            int found = 0;
            for (size_t j = 0; j < n && !found; j++)
                found = !strcmp(w[j].name, entry);
            if (found || !gone_from_cluster(z, entry)) {
                i++;
            } else if ((r = drop_local(ct, entry, 1, "no longer in the cluster"))) {
                failed = r; /* its entry stays */
                i++;
            }
        }
    }
    wanted_free(w, n);
    return failed;
}

int cluster_topics_reconcile(struct cluster_topics *ct, struct zk *z)
{
    pthread_mutex_lock(&ct->local_lock);
    int r = reconcile_locked(ct, z, NULL);
    pthread_mutex_unlock(&ct->local_lock);
    return r;
}

/* ---- requests of this mount ---- */

/* A ZooKeeper errno as the requests answer it. */
static int request_errno(int r, const char *what, const char *name)
{
    switch (r) {
    case 0:
    case -EEXIST:
    case -ENOENT:
    case -EINVAL:
        return r;
    case -EAGAIN:
    case -ENOTCONN:
    case -ESHUTDOWN:
        logger_log(LOG_LEVEL_WARN, "%s %s: ZooKeeper is out of reach", what, name);
        return -EAGAIN;
    default:
        logger_log(LOG_LEVEL_ERROR, "%s %s: ZooKeeper: %s", what, name, strerror(-r));
        return -EIO;
    }
}

static uint64_t random_seed(void)
{
    uint64_t seed;
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
        seed = (uint64_t)clock_now_ms();
    return seed;
}

/* Undoes a topic made in ZooKeeper by this mount that could not be made
 * here: deleted if nobody touched it yet, else marked for deletion. */
static void undo_create(struct cluster_topics *ct, struct zk *z, const char *name)
{
    char apath[TC_PATH_MAX], cpath[TC_PATH_MAX], mpath[TC_PATH_MAX];
    tc_assignment_path(apath, name);
    tc_config_path(cpath, name);
    tc_marker_path(mpath, name);
    struct zk_op ops[] = {
        {.type = ZK_OP_DELETE, .path = apath, .version = 0},
        {.type = ZK_OP_DELETE, .path = cpath, .version = 0},
    };
    if (zk_multi(z, ops, 2, NULL) == 0)
        return;
    int r = zk_create(z, mpath, "", 0, 0);
    if (r && r != -EEXIST)
        logger_log(LOG_LEVEL_ERROR,
                   "topic %s: made in ZooKeeper but not here, and cannot be "
                   "undone: %s (rmdir it)",
                   name, strerror(-r));
    topic_cache_put_marked(ct->tc, name);
}

int cluster_topics_create(struct cluster_topics *ct, struct zk *z, const int32_t *live,
                          size_t nlive, const char *name, const struct topic_config *internal)
{
    int r = topic_name_valid(name);
    if (r)
        return r;
    if (!internal && !strcmp(name, GROUP_OFFSETS_TOPIC))
        return -EEXIST;
    pthread_mutex_lock(&ct->local_lock);
    struct topic_config cfg;
    struct cluster_assignment a = {0};
    char id[CLUSTER_ID_MAX], apath[TC_PATH_MAX], cpath[TC_PATH_MAX];
    char *ajson = NULL, *cjson = NULL;
    size_t alen, clen;
    int32_t *flat = NULL;
    if (local_exists(ct, name)) {
        r = internal && !topic_ids_find(&ct->ids, name) ? drop_own_offsets(ct, 0) : -EEXIST;
        if (r)
            goto out;
    }
    if (zk_state(z) != ZK_CONNECTED) {
        r = request_errno(-ENOTCONN, "mkdir", name);
        goto out;
    }
    if (internal) {
        cfg = *internal;
    } else {
        store_config_defaults(ct->local.store, &cfg);
        cfg.replication_factor = ct->default_rf;
        cfg.unclean_leader_election = ct->default_unclean;
    }
    int rf = (int)cfg.replication_factor;
    if ((size_t)rf > nlive || rf < 1) {
        logger_log(LOG_LEVEL_WARN, "mkdir %s: %s=%d, but %zu broker%s live", name,
                   internal ? "replication factor" : "default.replication.factor", rf, nlive,
                   nlive == 1 ? " is" : "s are");
        r = -EINVAL;
        goto out;
    }
    if (!(flat = malloc((size_t)cfg.partitions * (size_t)rf * sizeof(*flat)))) {
        r = -ENOMEM;
        goto out;
    }
    if ((r = assignment_assign(live, nlive, 0, cfg.partitions, (uint32_t)rf, -1, random_seed(),
                               flat)) ||
        (r = cluster_id_generate(id)) ||
        (r = cluster_assignment_make(&a, id, cfg.partitions, (uint32_t)rf, flat)) ||
        (r = cluster_assignment_encode(&a, &ajson, &alen)) ||
        (r = cluster_config_encode(&cfg, &cjson, &clen)))
        goto out;
    tc_assignment_path(apath, name);
    tc_config_path(cpath, name);
    struct zk_op ops[] = {
        {.type = ZK_OP_CREATE, .path = apath, .data = ajson, .len = alen},
        {.type = ZK_OP_CREATE, .path = cpath, .data = cjson, .len = clen},
    };
    if ((r = request_errno(zk_multi(z, ops, 2, NULL), "mkdir", name)))
        goto out;
    topic_cache_put_assignment(ct->tc, name, &a, 0);
    topic_cache_put_config(ct->tc, name, id, &cfg, 0);
    if ((r = make_local(ct, name, id, &cfg, 0)))
        undo_create(ct, z, name);
    else
        logger_log(LOG_LEVEL_INFO, "topic %s made in the cluster: %u partitions, %d replicas", name,
                   cfg.partitions, rf);
out:
    pthread_mutex_unlock(&ct->local_lock);
    cluster_assignment_free(&a);
    free(flat);
    free(ajson);
    free(cjson);
    return r;
}

int cluster_topics_delete(struct cluster_topics *ct, struct zk *z, const char *name)
{
    char apath[TC_PATH_MAX], mpath[TC_PATH_MAX];
    int r;
    pthread_mutex_lock(&ct->local_lock);
    if (!local_exists(ct, name)) {
        r = -ENOENT;
        goto out;
    }
    if (!topic_ids_find(&ct->ids, name)) {
        /* Not the cluster's: this data dir's alone. */
        r = ct->local.remove(ct->local.arg, name, 0);
        goto out;
    }
    if (zk_state(z) != ZK_CONNECTED) {
        r = request_errno(-ENOTCONN, "rmdir", name);
        goto out;
    }
    tc_assignment_path(apath, name);
    tc_marker_path(mpath, name);
    struct zk_op ops[] = {
        {.type = ZK_OP_CHECK, .path = apath, .version = ZK_ANY_VERSION},
        {.type = ZK_OP_CREATE, .path = mpath, .data = "", .len = 0},
    };
    size_t failed = 0;
    r = zk_multi(z, ops, 2, &failed);
    /* Gone from the cluster already (ENOENT) or marked already (EEXIST):
     * only this copy is left to delete. */
    if (r == -ENOENT || (r == -EEXIST && failed == 1))
        r = 0;
    if ((r = request_errno(r, "rmdir", name)))
        goto out;
    topic_cache_put_marked(ct->tc, name);
    if ((r = drop_local(ct, name, 0, "rmdir")) == 0)
        logger_log(LOG_LEVEL_INFO, "topic %s marked for deletion in the cluster", name);
out:
    pthread_mutex_unlock(&ct->local_lock);
    return r;
}

/* The topic as the cache has it, read first if it has not yet (a topic
 * just made at this mount may not have reached the cache by its watch). */
static int config_base(struct cluster_topics *ct, struct zk *z, const char *name,
                       struct cluster_assignment *a, int32_t *aversion, struct topic_config *cfg,
                       int32_t *cversion)
{
    for (int tries = 0; tries < 2; tries++) {
        pthread_mutex_lock(&ct->tc->lock);
        struct tc_topic *t = topic_cache_find(ct->tc, name);
        int r = !t                        ? (tries ? -ENOENT : -EAGAIN)
                : t->marked               ? -ENOENT
                : topic_cache_complete(t) ? 0
                                          : -EAGAIN;
        if (!r) {
            topic_cache_full_config(t, cfg);
            *aversion = t->assignment_version;
            *cversion = t->config_version;
            r = cluster_assignment_copy(a, &t->a);
        }
        pthread_mutex_unlock(&ct->tc->lock);
        if (r != -EAGAIN || tries)
            return r;
        if ((r = topic_cache_read_assignment(ct->tc, z, name)) ||
            (r = topic_cache_read_config(ct->tc, z, name)))
            return r;
    }
    return -EAGAIN;
}

/* partitions=N: N - nparts more partitions in the assignment (Kafka's
 * addPartitions: replicas as many as partition 0's, the walk of leaders
 * started at partition 0's leader). */
static int grow_assignment(struct cluster_topics *ct, struct zk *z, const int32_t *live,
                           size_t nlive, const char *name, struct cluster_assignment *a,
                           int32_t version, uint32_t nparts)
{
    const int32_t *p0;
    uint32_t rf = cluster_assignment_target(a, 0, &p0), more = nparts - a->nparts;
    int start = -1;
    for (size_t i = 0; i < nlive; i++)
        if (live[i] == p0[0])
            start = (int)i;
    if (rf > nlive)
        return -EINVAL;
    if (cluster_assignment_reassigning(a))
        return -EBUSY;
    int32_t *flat = malloc((size_t)more * rf * sizeof(*flat));
    char *json = NULL, path[TC_PATH_MAX];
    size_t len;
    struct zk_stat st;
    int r = flat ? 0 : -ENOMEM;
    if (!r &&
        !(r = assignment_assign(live, nlive, a->nparts, more, rf, start, random_seed(), flat)) &&
        !(r = cluster_assignment_grow(a, more, rf, flat)) &&
        !(r = cluster_assignment_encode(a, &json, &len))) {
        tc_assignment_path(path, name);
        r = zk_set(z, path, json, len, version, &st);
        if (!r)
            topic_cache_put_assignment(ct->tc, name, a, st.version);
    }
    free(flat);
    free(json);
    return r;
}

/* replication.factor=rf: Kafka's reassignment. Every partition's list
 * becomes its target (assignment_reassign) followed by the replicas that
 * leave; the controller drops those once the whole target is in the ISR
 * (controller_work.c). -EINVAL with fewer live brokers than rf, -EBUSY
 * while a reassignment is under way. */
static int reassign(struct cluster_topics *ct, struct zk *z, const int32_t *live, size_t nlive,
                    const char *name, struct cluster_assignment *a, int32_t version, uint32_t rf)
{
    if (cluster_assignment_reassigning(a))
        return -EBUSY;
    if (rf > nlive || rf > CLUSTER_REPLICAS_MAX) {
        logger_log(LOG_LEVEL_WARN, "topic %s: replication.factor=%u, but %zu broker%s live", name,
                   rf, nlive, nlive == 1 ? " is" : "s are");
        return -EINVAL;
    }
    uint32_t *load = calloc(nlive ? nlive : 1, sizeof(*load));
    if (!load)
        return -ENOMEM;
    for (size_t i = 0; i < nlive; i++)
        for (uint32_t k = 0; k < a->first[a->nparts]; k++)
            load[i] += a->ids[k] == live[i];
    int r = 0, changed = 0;
    for (uint32_t p = 0; !r && p < a->nparts; p++) {
        const int32_t *cur;
        int32_t target[CLUSTER_REPLICAS_MAX], list[2 * CLUSTER_REPLICAS_MAX];
        struct cluster_partition_state st = {.leader = -1};
        uint32_t ncur = cluster_assignment_replicas(a, p, &cur), n = 0;
        pthread_mutex_lock(&ct->tc->lock);
        struct tc_topic *t = topic_cache_find(ct->tc, name);
        if (t && p < t->a.nparts && t->parts[p].known == TC_PRESENT)
            st = t->parts[p].st;
        pthread_mutex_unlock(&ct->tc->lock);
        int nt = assignment_reassign(cur, ncur, st.leader, st.isr, st.nisr, live, nlive, load, p,
                                     rf, target);
        if (nt < 0) {
            r = nt;
            break;
        }
        memcpy(list, target, (size_t)nt * sizeof(*list));
        n = (uint32_t)nt;
        for (uint32_t i = 0; i < ncur; i++) {
            int kept = 0;
            for (int j = 0; j < nt; j++)
                kept |= target[j] == cur[i];
            if (!kept)
                list[n++] = cur[i];
        }
        if (n > CLUSTER_REPLICAS_MAX) {
            r = -EINVAL;
            break;
        }
        changed |= n != ncur || n != (uint32_t)nt || memcmp(list, cur, n * sizeof(*list));
        r = cluster_assignment_set(a, p, list, n, n - (uint32_t)nt);
    }
    free(load);
    if (r || !changed)
        return r;
    char *json, path[TC_PATH_MAX];
    size_t len;
    struct zk_stat st;
    if ((r = cluster_assignment_encode(a, &json, &len)))
        return r;
    tc_assignment_path(path, name);
    r = zk_set(z, path, json, len, version, &st);
    free(json);
    if (!r) {
        topic_cache_put_assignment(ct->tc, name, a, st.version);
        logger_log(LOG_LEVEL_INFO, "topic %s: reassignment to replication.factor=%u started", name,
                   rf);
    }
    return r;
}

int cluster_topics_config(struct cluster_topics *ct, struct zk *z, const int32_t *live,
                          size_t nlive, const char *name, const char *line, size_t len)
{
    int r;
    pthread_mutex_lock(&ct->local_lock);
    if (!topic_ids_find(&ct->ids, name)) {
        /* Not the cluster's: this data dir's alone. */
        struct topic *t = store_find(ct->local.store, name);
        struct topic_config cfg;
        r = t ? 0 : -ENOENT;
        if (t)
            topic_config_snapshot(t, &cfg);
        topic_put(t);
        if (!r && !(r = config_set_line(&cfg, line, len)))
            r = ct->local.configure(ct->local.arg, name, &cfg, 0);
        goto out;
    }
    if (zk_state(z) != ZK_CONNECTED) {
        r = request_errno(-ENOTCONN, ".config of", name);
        goto out;
    }
    r = -ESTALE;
    for (int tries = 0; tries < CONFIG_TRIES && r == -ESTALE; tries++) {
        struct cluster_assignment a = {0};
        struct topic_config cur, trial;
        int32_t aversion, cversion;
        if ((r = config_base(ct, z, name, &a, &aversion, &cur, &cversion)))
            break;
        trial = cur;
        if ((r = config_set_line(&trial, line, len))) {
            cluster_assignment_free(&a);
            break;
        }
        if (trial.replication_factor != cur.replication_factor) {
            r = reassign(ct, z, live, nlive, name, &a, aversion,
                         (uint32_t)trial.replication_factor);
            if (r == -ESTALE)
                topic_cache_read_assignment(ct->tc, z, name);
        } else if (trial.partitions != cur.partitions) {
            r = grow_assignment(ct, z, live, nlive, name, &a, aversion, trial.partitions);
            if (r == -ESTALE)
                topic_cache_read_assignment(ct->tc, z, name);
        } else if (!same_config(&trial, &cur)) {
            char *json, path[TC_PATH_MAX];
            size_t jlen;
            struct zk_stat st;
            tc_config_path(path, name);
            if (!(r = cluster_config_encode(&trial, &json, &jlen))) {
                r = zk_set(z, path, json, jlen, cversion, &st);
                free(json);
            }
            if (!r) {
                topic_cache_put_config(ct->tc, name, a.topic_id, &trial, st.version);
                /* Here at once, as the writer reads its .config next (the
                 * watches may not have listed a topic just made). */
                int e = ct->local.configure(ct->local.arg, name, &trial, 0);
                if (e)
                    logger_log(LOG_LEVEL_ERROR, "topic %s: cannot take the new config here: %s",
                               name, strerror(-e));
            } else if (r == -ESTALE)
                topic_cache_read_config(ct->tc, z, name);
        }
        cluster_assignment_free(&a);
    }
    if (r == -ESTALE)
        r = -EAGAIN; /* changed by others every time we tried */
    if (r && r != -EBUSY)
        r = request_errno(r, ".config of", name);
    if (!r && (r = reconcile_locked(ct, NULL, name)))
        logger_log(LOG_LEVEL_ERROR, "topic %s: changed in the cluster, not yet here: %s", name,
                   strerror(-r));
out:
    pthread_mutex_unlock(&ct->local_lock);
    return r;
}

int cluster_topics_partition(struct cluster_topics *ct, const char *name, uint32_t p,
                             struct cluster_partition_view *v)
{
    int r = -ENOENT;
    pthread_mutex_lock(&ct->tc->lock);
    struct tc_topic *t = topic_cache_find(ct->tc, name);
    if (t && t->assignment_known == TC_PRESENT && p < t->a.nparts) {
        const int32_t *ids;
        v->nreplicas = cluster_assignment_replicas(&t->a, p, &ids);
        memcpy(v->replicas, ids, v->nreplicas * sizeof(*ids));
        const struct tc_partition *tp = &t->parts[p];
        if (tp->known == TC_PRESENT) {
            v->leader = tp->st.leader;
            v->leader_epoch = tp->st.leader_epoch;
            v->nisr = tp->st.nisr;
            memcpy(v->isr, tp->st.isr, v->nisr * sizeof(*v->isr));
        } else {
            v->leader = v->leader_epoch = -1;
            v->nisr = 0;
        }
        r = 0;
    }
    pthread_mutex_unlock(&ct->tc->lock);
    return r;
}
