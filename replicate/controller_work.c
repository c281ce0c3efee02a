/* controller_work.c - partition states and topic deletion by the controller
 * (controller_work.h).
 *
 * A pass decides under the cache's lock (a list of actions, with copies of
 * what each needs) and writes with no lock held. A state write that finds
 * the state changed under it (-ESTALE on the state, not on the epoch) reads
 * that state again, and the pass is made again, up to PASSES times; past
 * that the caller tries later. */
#include "controller_work.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller.h"
#include "election.h"
#include "logger.h"

#define PASSES 4

enum action_kind { ACT_DELETE, ACT_CREATE, ACT_UPDATE, ACT_REASSIGNED };

struct action {
    enum action_kind kind;
    char *name;
    char topic_id[CLUSTER_ID_MAX];
    uint32_t p;
    int32_t version; /* ACT_UPDATE: of the state it replaces; ACT_REASSIGNED: of the assignment */
    struct cluster_partition_state old, st;
    struct cluster_assignment a; /* ACT_REASSIGNED: the assignment without the leaving replicas */
};

struct actions {
    struct action *v;
    size_t n, cap;
};

static int add(struct actions *a, const struct action *act)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        struct action *v = realloc(a->v, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n] = *act;
    a->v[a->n].a = (struct cluster_assignment){0};
    if (!(a->v[a->n].name = strdup(act->name)))
        return -ENOMEM;
    a->n++;
    return act->a.first ? cluster_assignment_copy(&a->v[a->n - 1].a, &act->a) : 0;
}

static void actions_free(struct actions *a)
{
    for (size_t i = 0; i < a->n; i++) {
        free(a->v[i].name);
        cluster_assignment_free(&a->v[i].a);
    }
    free(a->v);
}

static int in_isr(const struct cluster_partition_state *s, int32_t id)
{
    for (uint32_t i = 0; i < s->nisr; i++)
        if (s->isr[i] == id)
            return 1;
    return 0;
}

/* A reassignment's end (Kafka's phase B): the partitions of t whose every
 * target replica is in the ISR lose their leaving replicas. 1 and *out when
 * one does, 0 when none, or a negative errno. */
static int reassigned(const struct tc_topic *t, struct cluster_assignment *out)
{
    int done = 0, r = 0;
    for (uint32_t p = 0; !r && p < t->a.nparts; p++) {
        const int32_t *ids;
        uint32_t n = cluster_assignment_target(&t->a, p, &ids), ok = 1;
        if (!cluster_assignment_leaving(&t->a, p) || t->parts[p].known != TC_PRESENT)
            continue;
        for (uint32_t i = 0; i < n && ok; i++)
            ok = in_isr(&t->parts[p].st, ids[i]);
        if (!ok)
            continue;
        if (!done && (r = cluster_assignment_copy(out, &t->a)))
            break;
        done = 1;
        r = cluster_assignment_set(out, p, ids, n, 0);
    }
    if (r && done)
        cluster_assignment_free(out);
    return r ? r : done;
}

/* What the cache asks of the controller now (rebalance: move leaders back
 * to their preferred replicas too). */
static int decide(struct topic_cache *tc, const struct election_live *live, int32_t epoch,
                  int rebalance, struct actions *out)
{
    int r = 0;
    pthread_mutex_lock(&tc->lock);
    for (size_t i = 0; !r && i < tc->n; i++) {
        struct tc_topic *t = tc->topics[i];
        struct action act = {.name = t->name};
        if (t->marked) {
            act.kind = ACT_DELETE;
            r = add(out, &act);
            continue;
        }
        if (!t->listed || t->assignment_known != TC_PRESENT)
            continue;
        strcpy(act.topic_id, t->a.topic_id);
        if (cluster_assignment_reassigning(&t->a)) {
            struct action done = act;
            if ((r = reassigned(t, &done.a)) == 1) {
                done.kind = ACT_REASSIGNED;
                done.version = t->assignment_version;
                r = add(out, &done);
                cluster_assignment_free(&done.a);
            }
            if (r)
                continue;
        }
        int unclean = t->config_known == TC_PRESENT && t->cfg.unclean_leader_election;
        for (uint32_t p = 0; !r && p < t->a.nparts; p++) {
            const int32_t *replicas;
            uint32_t n = cluster_assignment_replicas(&t->a, p, &replicas);
            const struct tc_partition *tp = &t->parts[p];
            act.p = p;
            if (tp->known == TC_ABSENT) {
                act.kind = ACT_CREATE;
                if (election_initial(replicas, n, live, epoch, &act.st) == 0)
                    r = add(out, &act);
            } else if (tp->known == TC_PRESENT) {
                act.kind = ACT_UPDATE;
                act.version = tp->version;
                act.old = tp->st;
                if (election_update(&tp->st, replicas, n, live, unclean, epoch, &act.st) ||
                    (rebalance && election_preferred(&tp->st, replicas, n, live, epoch, &act.st)))
                    r = add(out, &act);
            }
        }
    }
    pthread_mutex_unlock(&tc->lock);
    return r;
}

static void format_isr(const struct cluster_partition_state *s, char *buf, size_t cap)
{
    size_t off = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < s->nisr && off < cap; i++)
        off += (size_t)snprintf(buf + off, cap - off, "%s%d", i ? "," : "", s->isr[i]);
}

static void log_state(const struct action *a)
{
    char isr[512], old[512];
    format_isr(&a->st, isr, sizeof(isr));
    if (a->kind == ACT_CREATE) {
        logger_log(LOG_LEVEL_INFO, "controller: partition %s-%u: leader %d, isr %s", a->name, a->p,
                   a->st.leader, isr);
        return;
    }
    format_isr(&a->old, old, sizeof(old));
    int unclean =
        a->st.leader >= 0 && a->st.leader != a->old.leader && !in_isr(&a->old, a->st.leader);
    if (unclean) {
        logger_log(LOG_LEVEL_WARN,
                   "controller: partition %s-%u: unclean leader election: broker %d was not in "
                   "the ISR %s and leads at epoch %d; records it lacks are lost",
                   a->name, a->p, a->st.leader, old, a->st.leader_epoch);
        return;
    }
    logger_log(LOG_LEVEL_INFO,
               "controller: partition %s-%u: leader %d, isr %s, leader epoch %d (was leader %d, "
               "isr %s)",
               a->name, a->p, a->st.leader, isr, a->st.leader_epoch, a->old.leader, old);
}

/* Creates path, already there or not: 0, -ENOENT (its parent is gone), or
 * another negative errno. */
static int ensure(struct zk *z, const char *path)
{
    int r = zk_create(z, path, "", 0, 0);
    return r == -EEXIST ? 0 : r;
}

/* Writes one state: 0, -ESTALE (fenced), -EAGAIN (read again, decide
 * again), or another negative errno. */
static int write_state(struct zk *z, struct topic_cache *tc, const struct action *a,
                       int32_t epoch_version)
{
    char path[TC_PATH_MAX], json[1024];
    int len = cluster_state_encode(&a->st, json, sizeof(json));
    if (len < 0)
        return len;
    if (a->kind == ACT_CREATE) {
        int r;
        tc_partitions_path(path, a->name);
        if (!(r = ensure(z, path))) {
            tc_partition_path(path, a->name, a->p);
            r = ensure(z, path);
        }
        if (r == -ENOENT)
            return 0; /* the topic went meanwhile */
        if (r)
            return r;
    }
    tc_state_path(path, a->name, a->p);
    struct zk_op ops[] = {
        {.type = ZK_OP_CHECK, .path = CONTROLLER_EPOCH_PATH, .version = epoch_version},
        {.type = a->kind == ACT_CREATE ? ZK_OP_CREATE : ZK_OP_SET,
         .path = path,
         .data = json,
         .len = (size_t)len,
         .version = a->version},
    };
    size_t failed = 0;
    int r = zk_multi(z, ops, 2, &failed);
    if (r && failed == 0)
        return r == -ESTALE || r == -ENOENT ? -ESTALE : r;
    if (r == -ESTALE || r == -EEXIST || r == -ENOENT) {
        int e = topic_cache_read_state(tc, z, a->name, a->p);
        return e ? e : -EAGAIN;
    }
    if (r)
        return r;
    topic_cache_put_state(tc, a->name, a->topic_id, a->p, &a->st,
                          a->kind == ACT_CREATE ? 0 : a->version + 1);
    log_state(a);
    return 0;
}

/* Removes a marked topic's znodes: states and partitions first (in any
 * order, any of them may be gone), then assignment, config and mark
 * together, fenced by the epoch. */
static int delete_topic(struct zk *z, const char *name, int32_t epoch_version)
{
    char path[TC_PATH_MAX], child[TC_PATH_MAX + 64];
    char **names = NULL;
    size_t n = 0;
    tc_partitions_path(path, name);
    int r = zk_children(z, path, 0, &names, &n);
    if (r && r != -ENOENT)
        return r;
    for (size_t i = 0; !r && i < n; i++) {
        snprintf(child, sizeof(child), "%s/%s/state", path, names[i]);
        if ((r = zk_delete(z, child, ZK_ANY_VERSION)) == -ENOENT)
            r = 0;
        snprintf(child, sizeof(child), "%s/%s", path, names[i]);
        if (!r && (r = zk_delete(z, child, ZK_ANY_VERSION)) == -ENOENT)
            r = 0;
    }
    if (names)
        zk_free_names(names, n);
    if (!r && (r = zk_delete(z, path, ZK_ANY_VERSION)) == -ENOENT)
        r = 0;
    if (r)
        return r;
    char apath[TC_PATH_MAX], cpath[TC_PATH_MAX], mpath[TC_PATH_MAX];
    tc_assignment_path(apath, name);
    tc_config_path(cpath, name);
    tc_marker_path(mpath, name);
    struct zk_op ops[4] = {
        {.type = ZK_OP_CHECK, .path = CONTROLLER_EPOCH_PATH, .version = epoch_version}};
    size_t nops = 1, failed = 0;
    const char *paths[] = {apath, cpath, mpath};
    for (size_t i = 0; i < 3; i++) {
        if ((r = zk_exists(z, paths[i], 0, NULL)) == -ENOENT)
            continue;
        if (r)
            return r;
        ops[nops++] =
            (struct zk_op){.type = ZK_OP_DELETE, .path = paths[i], .version = ZK_ANY_VERSION};
    }
    if (nops == 1)
        return 0;
    r = zk_multi(z, ops, nops, &failed);
    if (r && failed == 0)
        return -ESTALE;
    if (r == -ENOENT || r == -ENOTEMPTY)
        return -EAGAIN; /* changed meanwhile: next pass */
    if (!r)
        logger_log(LOG_LEVEL_INFO, "controller: topic %s deleted from the cluster", name);
    return r;
}

/* Writes the assignment without the leaving replicas, fenced: 0 (the
 * states follow at the next pass: election_update takes the leaving
 * replicas out of the ISR, and a new leader if the old one left),
 * -ESTALE (fenced), -EAGAIN (changed meanwhile: read again), or another
 * negative errno. */
static int write_reassigned(struct zk *z, struct topic_cache *tc, const struct action *a,
                            int32_t epoch_version)
{
    char path[TC_PATH_MAX], *json;
    size_t len, failed = 0;
    int r = cluster_assignment_encode(&a->a, &json, &len);
    if (r)
        return r;
    tc_assignment_path(path, a->name);
    struct zk_op ops[] = {
        {.type = ZK_OP_CHECK, .path = CONTROLLER_EPOCH_PATH, .version = epoch_version},
        {.type = ZK_OP_SET, .path = path, .data = json, .len = len, .version = a->version},
    };
    r = zk_multi(z, ops, 2, &failed);
    free(json);
    if (r && failed == 0)
        return r == -ESTALE || r == -ENOENT ? -ESTALE : r;
    if (r == -ESTALE || r == -ENOENT) {
        int e = topic_cache_read_assignment(tc, z, a->name);
        return e ? e : -EAGAIN;
    }
    if (r)
        return r;
    topic_cache_put_assignment(tc, a->name, &a->a, a->version + 1);
    logger_log(LOG_LEVEL_INFO, "controller: topic %s: reassignment done", a->name);
    return -EAGAIN; /* the states follow: decide again */
}

int controller_work_run(struct zk *z, struct topic_cache *tc, const int32_t *live, size_t nlive,
                        int32_t epoch, int32_t epoch_version, int rebalance)
{
    struct election_live el = {live, nlive};
    int r = -EAGAIN;
    for (int pass = 0; pass < PASSES && r == -EAGAIN; pass++) {
        struct actions acts = {0};
        int again = 0;
        r = decide(tc, &el, epoch, rebalance, &acts);
        for (size_t i = 0; !r && i < acts.n; i++) {
            const struct action *a = &acts.v[i];
            int e = a->kind == ACT_DELETE       ? delete_topic(z, a->name, epoch_version)
                    : a->kind == ACT_REASSIGNED ? write_reassigned(z, tc, a, epoch_version)
                                                : write_state(z, tc, a, epoch_version);
            if (e == -EAGAIN)
                again = 1;
            else if (e)
                r = e;
        }
        actions_free(&acts);
        if (!r && again)
            r = -EAGAIN;
    }
    return r;
}
