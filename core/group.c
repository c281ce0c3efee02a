/* group.c - consumer groups: assignment, member streams, commits (group.h).
 *
 * Invariants (under the group's lock):
 *   - owner[p] is -1 or the index of the member that owns partition p, and
 *     every member's parts[] lists exactly the partitions it owns;
 *   - a member's window holds the bytes [acked, delivered) of its stream and
 *     recs[] the records they came from, in order, each with its end position;
 *   - committed[p] only moves by an acknowledgement of the owner of p, a
 *     cursor write, or the auto.offset.reset of an unset partition;
 *   - gen[p] grows whenever p changes owner or its cursor is written, and a
 *     record commits only if it was delivered in the current gen[p]: what a
 *     member received before the partition moved away (and maybe back) or
 *     before a cursor write is never committed by it.
 *
 * Creating and deleting a group are all-or-nothing and durable: the group's
 * records (its starting offsets, or its tombstone) are appended to
 * __consumer_offsets and synced before the call returns; if the append or
 * the sync fails, what reached the log is cut off again (appends to it are
 * serialized, so nothing else follows it), and the registry is as it was: a
 * group whose mkdir failed is not in memory and does not come back at the
 * next open, a group whose rmdir failed is still there. Members never see a
 * group before its records are durable (it is published under the registry
 * lock only). A cursor write and a member's fsync are durable the same way
 * when they return; a refused cursor write leaves the committed offset as
 * it was. */
#include "group.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "logger.h"
#include "ptr_array.h"

#define UNSET UINT64_MAX
#define PERSIST_EVERY_MS 100

struct member_record {
    uint32_t partition;
    uint64_t offset;
    uint64_t gen;        /* the partition's gen when delivered */
    uint64_t start, end; /* stream positions of this record's first byte and just past it */
};

struct group_member {
    struct group *g;
    uint64_t seq;
    int broker; /* the broker whose mount it reads through, -1 on one node */
    pid_t pid;
    int follow;
    int stale;   /* the assignment changed: reset the window at the next read */
    int waiting; /* the last read found nothing */
    uint64_t acked, delivered;
    uint64_t read_end; /* the furthest stream position a read has returned up to */
    uint8_t *win;
    size_t win_cap;
    struct member_record *recs;
    size_t rec_head, rec_n, rec_cap;
    uint32_t *parts;
    uint64_t *next;
    struct partition_cursor *cursors;
    uint32_t nparts;
    uint32_t rr;
    void (*wake)(void *);
    void *wake_arg;
    int wake_refs;
};

struct group {
    struct group_registry *r;
    uint64_t id;
    char *name;
    struct topic *topic;
    atomic_int refs;
    int deleted;
    int seen; /* group_registry_reload: found in the log */
    pthread_mutex_t lock;
    pthread_cond_t woken; /* a wake call finished */
    uint64_t *committed;
    uint64_t *gen;
    uint8_t *dirty;
    int32_t *owner;
    uint32_t nparts;
    struct group_member **members;
    uint32_t nmembers, mcap;
    uint64_t next_seq;
    int64_t persisted_ms;
};

struct group_registry {
    struct store *store;
    struct topic *offsets;
    int mirror;           /* cluster mode: the log is the coordinator's */
    atomic_int active;    /* this registry writes the log (one node, or the coordinator) */
    uint64_t next_offset; /* the log is replayed up to here */
    uint32_t truncations; /* the log's, as of the replay: another means it was cut since */
    pthread_mutex_t lock;
    pthread_mutex_t append_lock; /* one append to offsets at a time (append_offsets) */
    struct ptr_array groups;     /* struct group *, sorted by topic name, then group name */
    uint64_t next_id;
};

/* Members to wake once the locks are released. Each listed member has its
 * wake_refs raised, so group_leave() waits for the call before freeing it. */
struct wake_list {
    struct group_member **m;
    size_t n, cap;
};

int group_name_valid(const char *name)
{
    size_t len = strlen(name);
    if (len > GROUP_NAME_MAX)
        return -EINVAL;
    return topic_name_valid(name);
}

/* ---- assignment ---- */

void group_assign(int32_t *owner, uint32_t n, uint32_t m)
{
    if (m == 0) {
        for (uint32_t i = 0; i < n; i++)
            owner[i] = -1;
        return;
    }
    uint32_t base = n / m, extra = n % m;
    uint32_t *count = calloc(m, sizeof(*count)), *allowed = calloc(m, sizeof(*allowed));
    uint32_t *kept = calloc(m, sizeof(*kept));
    if (!count || !allowed || !kept) {
        /* Out of memory: round robin is balanced and never doubles up. */
        for (uint32_t i = 0; i < n; i++)
            owner[i] = (int32_t)(i % m);
        goto out;
    }
    for (uint32_t i = 0; i < n; i++)
        if (owner[i] >= 0 && (uint32_t)owner[i] < m)
            count[owner[i]]++;
    /* The extra partitions go first to members that already hold more. */
    for (uint32_t o = 0; o < m; o++) {
        allowed[o] = base;
        if (extra && count[o] > base) {
            allowed[o]++;
            extra--;
        }
    }
    for (uint32_t o = 0; o < m && extra; o++)
        if (allowed[o] == base) {
            allowed[o]++;
            extra--;
        }
    for (uint32_t i = 0; i < n; i++) {
        int32_t o = owner[i];
        if (o >= 0 && (uint32_t)o < m && kept[o] < allowed[o])
            kept[o]++;
        else
            owner[i] = -1;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (owner[i] >= 0)
            continue;
        uint32_t best = m;
        for (uint32_t o = 0; o < m; o++)
            if (kept[o] < allowed[o] && (best == m || kept[o] < kept[best]))
                best = o;
        owner[i] = (int32_t)best;
        kept[best]++;
    }
out:
    free(count);
    free(allowed);
    free(kept);
}

/* ---- group basics ---- */

uint64_t group_id(const struct group *g)
{
    return g->id;
}

const char *group_name(const struct group *g)
{
    return g->name;
}

struct topic *group_topic(const struct group *g)
{
    return g->topic;
}

static void group_free(struct group *g)
{
    free(g->committed);
    free(g->gen);
    free(g->dirty);
    free(g->owner);
    free(g->members);
    free(g->name);
    topic_put(g->topic);
    pthread_mutex_destroy(&g->lock);
    pthread_cond_destroy(&g->woken);
    free(g);
}

void group_put(struct group *g)
{
    if (g && atomic_fetch_sub(&g->refs, 1) == 1)
        group_free(g);
}

/* Grows the per-partition arrays to the topic's partition count. */
static int fit_partitions(struct group *g)
{
    uint32_t n = topic_partition_count(g->topic);
    if (n <= g->nparts)
        return 0;
    uint64_t *c = realloc(g->committed, n * sizeof(*c));
    if (c)
        g->committed = c;
    uint64_t *gn = realloc(g->gen, n * sizeof(*gn));
    if (gn)
        g->gen = gn;
    uint8_t *d = realloc(g->dirty, n);
    if (d)
        g->dirty = d;
    int32_t *o = realloc(g->owner, n * sizeof(*o));
    if (o)
        g->owner = o;
    if (!c || !gn || !d || !o)
        return -ENOMEM;
    for (uint32_t i = g->nparts; i < n; i++) {
        /* A partition added to a live group starts at its beginning: nothing
         * appended to it before a member noticed is skipped. A new group's
         * partitions start at auto.offset.reset (group_create). */
        struct partition_info pi;
        partition_info(topic_partition(g->topic, i), &pi);
        g->committed[i] = g->nparts ? pi.start_offset : UNSET;
        g->gen[i] = 0;
        g->dirty[i] = g->nparts != 0;
        g->owner[i] = -1;
    }
    g->nparts = n;
    return 1;
}

static struct group *group_alloc(struct group_registry *r, struct topic *t, const char *name)
{
    struct group *g = calloc(1, sizeof(*g));
    if (!g || !(g->name = strdup(name))) {
        free(g);
        return NULL;
    }
    g->r = r;
    g->id = r->next_id++;
    topic_get(t);
    g->topic = t;
    atomic_init(&g->refs, 1);
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->woken, NULL);
    if (fit_partitions(g) < 0) {
        group_free(g);
        return NULL;
    }
    return g;
}

struct group_key {
    const char *topic, *name;
};

static int group_cmp(const void *item, const void *key)
{
    const struct group *g = item;
    const struct group_key *k = key;
    int c = strcmp(g->topic->name, k->topic);
    return c ? c : strcmp(g->name, k->name);
}

static size_t find_index(struct group_registry *r, const char *topic, const char *name, int *found)
{
    struct group_key k = {topic, name};
    return ptr_array_search(&r->groups, &k, group_cmp, found);
}

static struct group *group_at(struct group_registry *r, size_t i)
{
    return r->groups.items[i];
}

/* ---- commits ---- */

/* The first offset a partition's consumers start at (auto.offset.reset). */
static uint64_t reset_offset(struct group *g, uint32_t p)
{
    struct topic_config cfg;
    struct partition_info pi;
    topic_config_snapshot(g->topic, &cfg);
    partition_info(topic_partition(g->topic, p), &pi);
    return cfg.auto_offset_reset == OFFSET_RESET_LATEST ? pi.high_watermark : pi.start_offset;
}

static uint64_t committed(struct group *g, uint32_t p)
{
    if (g->committed[p] == UNSET) {
        g->committed[p] = reset_offset(g, p);
        g->dirty[p] = 1;
    }
    return g->committed[p];
}

/* What a durable commit waits for once the locks are released: the in-sync
 * replicas of __consumer_offsets to have what it appended (offsets_acked).
 * Waiting under a group or registry lock would hold up the leader's fetch
 * handler, whose high watermark moves wake this group's members. */
struct offsets_wait {
    struct topic *t; /* NULL: nothing to wait for */
    struct partition_ack ack;
    int sync; /* and on stable storage here (fsync, not end of file on drain) */
};

/* Appends the n records to __consumer_offsets through the produce path's
 * checks (in a cluster a broker that does not lead the partition is
 * refused with -EAGAIN: only the coordinator writes; fewer in-sync
 * replicas than min.insync.replicas: -EIO, nothing appended), and with
 * `durable` (not NULL) syncs the log and says what to wait for. On one node
 * it is all or nothing: when the append or the sync fails, whatever reached
 * the log is cut off again (appends are serialized by append_lock, so
 * nothing else was appended after it). In a cluster an append that may have
 * reached the followers is never cut (that would make the replicas
 * diverge): a commit that failed after its append may still take effect
 * (Kafka's outcome of a timed-out commit), and the registry keeps what the
 * log has. */
static int append_offsets(struct group_registry *r, const struct record_ref *recs, size_t n,
                          struct offsets_wait *durable)
{
    if (!r->offsets)
        return r->mirror ? -EAGAIN : -EIO; /* not made yet, or failed at open */
    if (!r->active)
        return -EAGAIN;
    struct partition *op = topic_partition(r->offsets, 0);
    struct partition_info before, after;
    struct topic_config cfg;
    topic_config_snapshot(r->offsets, &cfg);
    struct partition_ack ack = {.min_insync = cfg.min_insync_replicas};
    struct batch_builder b;
    batch_builder_init(&b);
    pthread_mutex_lock(&r->append_lock);
    partition_info(op, &before);
    int e = n ? partition_append_records(op, &b, recs, n, clock_now_ms(), NULL, &ack) : 0;
    if (!e && durable) {
        if (durable->sync)
            e = partition_sync(op);
        if (!n) /* nothing new: what is there must be acknowledged */
            partition_ack_point(op, &ack);
        ack.min_insync = cfg.min_insync_replicas;
        if (!e) {
            topic_get(r->offsets);
            durable->t = r->offsets;
            durable->ack = ack;
        }
    }
    if (e && !r->mirror) {
        partition_info(op, &after);
        if (after.end_offset > before.end_offset) {
            int t = partition_truncate(op, before.end_offset);
            if (t)
                logger_log(LOG_LEVEL_ERROR, "%s: cannot cut a failed append: %s",
                           GROUP_OFFSETS_TOPIC, strerror(-t));
        }
    }
    if (!e) {
        partition_info(op, &after);
        r->next_offset = after.end_offset; /* what it wrote is what it holds */
    }
    pthread_mutex_unlock(&r->append_lock);
    batch_builder_free(&b);
    return e;
}

/* Waits for what a durable persist appended to be on every in-sync
 * replica (at once on one node): 0, or -EIO (the ISR shrank below
 * min.insync.replicas, or this broker stopped leading: logged). Without
 * locks held. */
static int offsets_acked(struct offsets_wait *w)
{
    if (!w->t)
        return 0;
    int e = partition_wait_acked(topic_partition(w->t, 0), &w->ack);
    if (e)
        logger_log(LOG_LEVEL_WARN,
                   "%s: commit ending at offset %" PRIu64 " not acknowledged by the in-sync "
                   "replicas: %s",
                   GROUP_OFFSETS_TOPIC, w->ack.end_offset, strerror(-e));
    topic_put(w->t);
    w->t = NULL;
    return e;
}

/* Appends "<topic>/<group>/<p>=<offset>" lines for dirty partitions (or, with
 * tombstone, "…=" for all) to __consumer_offsets; `durable` (not NULL):
 * synced before it returns, and what offsets_acked() then waits for
 * (creating and deleting a group, fsync, a cursor write). All or nothing.
 * Caller holds g->lock. */
static int persist(struct group *g, int force, int tombstone, struct offsets_wait *durable)
{
    if (g->deleted && !tombstone)
        return 0; /* a commit after the tombstone would bring the group back */
    if (!force && clock_now_ms() - g->persisted_ms < PERSIST_EVERY_MS)
        return 0;
    char *text = NULL;
    struct record_ref *recs = NULL;
    size_t len = 0, n = 0;
    int r = 0;
    /* Two passes: the text buffer must not move once records point into it. */
    for (int pass = 0; pass < 2 && !r; pass++) {
        len = 0;
        n = 0;
        for (uint32_t p = 0; p < g->nparts; p++) {
            if (!tombstone && (!g->dirty[p] || g->committed[p] == UNSET))
                continue;
            char line[512];
            int klen = snprintf(line, sizeof(line), "%s/%s/%u", g->topic->name, g->name, p);
            int vlen = tombstone ? snprintf(line + klen, sizeof(line) - (size_t)klen, "=\n")
                                 : snprintf(line + klen, sizeof(line) - (size_t)klen,
                                            "=%" PRIu64 "\n", g->committed[p]);
            size_t l = (size_t)(klen + vlen);
            if (pass == 1) {
                memcpy(text + len, line, l);
                recs[n] = (struct record_ref){text + len, (uint32_t)l, klen};
            }
            len += l;
            n++;
        }
        if (pass == 0) {
            if (n == 0)
                break;
            if (!(text = malloc(len)) || !(recs = malloc(n * sizeof(*recs))))
                r = -ENOMEM;
        }
    }
    if (!r && (n || durable)) {
        r = append_offsets(g->r, recs, n, durable);
        if (!r)
            for (uint32_t p = 0; p < g->nparts; p++)
                g->dirty[p] = 0;
    }
    if (!r)
        g->persisted_ms = clock_now_ms();
    else if (!(r == -EAGAIN && g->r->mirror)) /* a mirror leaves writing to the coordinator */
        logger_log(LOG_LEVEL_ERROR, "group %s/%s: cannot store offsets: %s", g->topic->name,
                   g->name, strerror(-r));
    free(recs);
    free(text);
    return r;
}

/* ---- registry ---- */

struct wake_list;
enum remove_how { REMOVE_TOPIC, REMOVE_IDLE, REMOVE_REPLAYED };
struct offsets_wait;
static int remove_group(struct group_registry *r, size_t at, int how, struct wake_list *w,
                        struct offsets_wait *durable);

struct replay {
    struct group_registry *r;
    struct wake_list *w;
};

static int replay_record(const struct record_view *rv, void *arg)
{
    struct group_registry *r = ((struct replay *)arg)->r;
    char line[512], *eq, *s1, *s2;
    size_t len = rv->value_len;
    if (len >= sizeof(line))
        return 0;
    memcpy(line, rv->value, len);
    line[len] = 0;
    if (len && line[len - 1] == '\n')
        line[--len] = 0;
    if (!(eq = strchr(line, '=')))
        return 0;
    *eq = 0;
    if (!(s1 = strchr(line, '/')) || !(s2 = strrchr(line, '/')) || s1 == s2)
        return 0;
    *s1 = 0;
    *s2 = 0;
    const char *topic = line, *name = s1 + 1, *part = s2 + 1, *value = eq + 1;
    int64_t p, off = 0;
    /* Plain decimals only: strtoull would take "-2" or " 3" as offsets. */
    if (config_parse_i64(part, 0, UINT32_MAX, &p) || group_name_valid(name) ||
        (*value && config_parse_i64(value, 0, INT64_MAX, &off)))
        return 0;
    int found;
    size_t at = find_index(r, topic, name, &found);
    if (!*value) { /* tombstone: the group was deleted */
        if (found)
            remove_group(r, at, REMOVE_REPLAYED, ((struct replay *)arg)->w, NULL);
        return 0;
    }
    if (!found) {
        struct topic *t = store_find(r->store, topic);
        if (!t)
            return 0; /* the topic is gone: so is the group */
        struct group *g = group_alloc(r, t, name);
        topic_put(t);
        if (!g || ptr_array_insert(&r->groups, at, g)) {
            if (g)
                group_free(g);
            return -ENOMEM;
        }
    }
    struct group *g = group_at(r, at);
    pthread_mutex_lock(&g->lock);
    g->seen = 1;
    if ((uint64_t)p < g->nparts) {
        g->committed[p] = (uint64_t)off;
        g->dirty[p] = 0;
    }
    pthread_mutex_unlock(&g->lock);
    return 0;
}

/* Replays the log from r->next_offset up to its high watermark. Caller
 * holds r->lock. */
static int replay(struct group_registry *r, struct wake_list *w)
{
    struct replay rp = {r, w};
    struct partition_info pi;
    partition_info(topic_partition(r->offsets, 0), &pi);
    if (r->next_offset == 0)
        r->truncations = pi.truncations; /* from the start: what it reads is the log now */
    struct partition_cursor c;
    partition_cursor_init(&c);
    uint64_t next;
    int e = 0;
    for (;;) {
        e = partition_fetch(topic_partition(r->offsets, 0), &c, r->next_offset, 65536,
                            replay_record, &rp, &next);
        if (e || next <= r->next_offset)
            break;
        r->next_offset = next;
    }
    partition_cursor_free(&c);
    if (e) {
        /* Commits replayed so far stand; later ones are lost, which means
         * records delivered again (at-least-once), not a data dir that no
         * longer mounts. */
        logger_log(LOG_LEVEL_ERROR, "%s: replay stopped at offset %" PRIu64 ": %s",
                   GROUP_OFFSETS_TOPIC, r->next_offset, strerror(-e));
    }
    return e;
}

int group_registry_open(struct store *s, int mirror, struct group_registry **out)
{
    struct group_registry *r = calloc(1, sizeof(*r));
    int e = 0;
    if (!r)
        return -ENOMEM;
    r->store = s;
    r->next_id = 1;
    r->mirror = mirror;
    atomic_init(&r->active, !mirror);
    pthread_mutex_init(&r->lock, NULL);
    pthread_mutex_init(&r->append_lock, NULL);
    r->offsets = store_find(s, GROUP_OFFSETS_TOPIC);
    if (!r->offsets && (e = store_failed_error(s, GROUP_OFFSETS_TOPIC))) {
        /* The topics serve; groups cannot (append_offsets: -EIO). */
        logger_log(LOG_LEVEL_ERROR,
                   "topic %s failed (%s): no consumer groups until it is repaired or moved "
                   "away from %s/topics/ and the data dir mounted again",
                   GROUP_OFFSETS_TOPIC, strerror(-e), s->dir);
        *out = r;
        return 0;
    }
    if (!r->offsets && !mirror) {
        /* Created with its whole config at once: a crash cannot leave it
         * with the default (delete) policy. */
        struct topic_config cfg;
        group_offsets_config(s, &cfg);
        if ((e = store_create_topic_config(s, GROUP_OFFSETS_TOPIC, &cfg, &r->offsets)))
            goto fail;
    }
    if (r->offsets) {
        struct wake_list w = {0};
        replay(r, &w);
        free(w.m);
    }
    *out = r;
    return 0;
fail:
    group_registry_close(r);
    return e;
}

void group_offsets_config(struct store *s, struct topic_config *cfg)
{
    store_config_defaults(s, cfg);
    cfg->partitions = 1;
    cfg->cleanup_policy = CLEANUP_COMPACT;
    strcpy(cfg->key_separator, "=");
    cfg->segment_bytes = 16777216;
}

/* The log as the store has it now (made, or made again, by the cluster):
 * a new topic means a new log. Caller holds r->lock. */
static int attach(struct group_registry *r)
{
    struct topic *t = store_find(r->store, GROUP_OFFSETS_TOPIC);
    if (t == r->offsets) {
        topic_put(t);
        return r->offsets ? 0 : -EAGAIN;
    }
    topic_put(r->offsets);
    r->offsets = t;
    r->next_offset = 0;
    return t ? 1 : -EAGAIN;
}

static void wake_all(struct wake_list *w);

int group_registry_reload(struct group_registry *r, int active)
{
    struct wake_list w = {0};
    pthread_mutex_lock(&r->lock);
    int e = attach(r);
    for (size_t i = 0; i < r->groups.n; i++) {
        struct group *g = group_at(r, i);
        pthread_mutex_lock(&g->lock);
        g->seen = 0;
        for (uint32_t p = 0; p < g->nparts; p++) {
            g->committed[p] = UNSET;
            g->dirty[p] = 0;
        }
        pthread_mutex_unlock(&g->lock);
    }
    r->next_offset = 0;
    if (e >= 0)
        e = replay(r, &w);
    for (size_t i = 0; i < r->groups.n;) {
        if (!group_at(r, i)->seen)
            remove_group(r, i, REMOVE_REPLAYED, &w, NULL); /* not in the log (any more) */
        else
            i++;
    }
    r->active = e >= 0 && active;
    pthread_mutex_unlock(&r->lock);
    wake_all(&w);
    return e < 0 ? e : 0;
}

/* Whether the log still holds what this registry replayed (not cut since,
 * and, with `exact`, nothing more). Caller holds r->lock. */
static int log_matches(struct group_registry *r, struct partition_info *pi, int exact)
{
    partition_info(topic_partition(r->offsets, 0), pi);
    return pi->truncations == r->truncations &&
           (exact ? pi->end_offset == r->next_offset : pi->end_offset >= r->next_offset);
}

int group_registry_log_ours(struct group_registry *r)
{
    struct partition_info pi;
    pthread_mutex_lock(&r->lock);
    int ours = r->offsets && log_matches(r, &pi, 1);
    pthread_mutex_unlock(&r->lock);
    return ours;
}

int group_registry_catch_up(struct group_registry *r)
{
    struct wake_list w = {0};
    struct partition_info pi;
    pthread_mutex_lock(&r->lock);
    if (r->active) {
        pthread_mutex_unlock(&r->lock);
        return 0; /* it writes the log: it holds what the log holds */
    }
    int e = attach(r);
    if (e > 0 || (e == 0 && !log_matches(r, &pi, 0))) {
        /* A new log, or this one was cut (a new leader): start over. */
        pthread_mutex_unlock(&r->lock);
        return group_registry_reload(r, 0);
    }
    if (e == 0)
        e = replay(r, &w);
    pthread_mutex_unlock(&r->lock);
    wake_all(&w);
    return e == -EAGAIN ? 0 : e;
}

int group_registry_active(struct group_registry *r)
{
    pthread_mutex_lock(&r->lock);
    int a = r->active;
    pthread_mutex_unlock(&r->lock);
    return a;
}

void group_registry_deactivate(struct group_registry *r)
{
    pthread_mutex_lock(&r->lock);
    r->active = 0;
    pthread_mutex_unlock(&r->lock);
}

uint64_t group_registry_log_end(struct group_registry *r)
{
    pthread_mutex_lock(&r->lock);
    uint64_t end = r->next_offset;
    pthread_mutex_unlock(&r->lock);
    return end;
}

void group_registry_close(struct group_registry *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->groups.n; i++) {
        struct group *g = group_at(r, i);
        pthread_mutex_lock(&g->lock);
        persist(g, 1, 0, NULL);
        pthread_mutex_unlock(&g->lock);
        group_put(g);
    }
    ptr_array_free(&r->groups);
    topic_put(r->offsets);
    pthread_mutex_destroy(&r->lock);
    pthread_mutex_destroy(&r->append_lock);
    free(r);
}

int group_create(struct group_registry *r, struct topic *t, const char *name)
{
    int found, e;
    if ((e = group_name_valid(name)))
        return e;
    pthread_mutex_lock(&r->lock);
    if (atomic_load(&t->deleted)) {
        pthread_mutex_unlock(&r->lock);
        return -ENOENT;
    }
    size_t at = find_index(r, t->name, name, &found);
    if (found) {
        pthread_mutex_unlock(&r->lock);
        return -EEXIST;
    }
    struct group *g = group_alloc(r, t, name);
    if (!g || (e = ptr_array_insert(&r->groups, at, g))) {
        if (g)
            group_free(g);
        pthread_mutex_unlock(&r->lock);
        return -ENOMEM;
    }
    /* No one sees the group before r->lock is released: if its records
     * cannot be stored, it goes again without a trace. */
    struct offsets_wait ow = {.sync = 1};
    pthread_mutex_lock(&g->lock);
    for (uint32_t p = 0; p < g->nparts; p++)
        committed(g, p);
    e = persist(g, 1, 0, &ow);
    pthread_mutex_unlock(&g->lock);
    if (e) {
        ptr_array_remove(&r->groups, at);
        group_put(g);
    } else {
        atomic_store(&t->groups_mtime_ms, clock_now_ms());
    }
    pthread_mutex_unlock(&r->lock);
    return e ? e : offsets_acked(&ow);
}

static void wake_add(struct wake_list *w, struct group_member *m);

/* Deletes the group at `at`; members waiting in follow are added to w, to be
 * woken (to end of file with ENOENT) once the registry lock is released.
 * REMOVE_IDLE (rmdir): refused with -EBUSY while it has members, and its
 * tombstone durable first; REMOVE_TOPIC: its topic is gone, the tombstone
 * written as it can; REMOVE_REPLAYED: the log says so already. */

static int remove_group(struct group_registry *r, size_t at, int how, struct wake_list *w,
                        struct offsets_wait *durable)
{
    struct group *g = group_at(r, at);
    int require_idle = how == REMOVE_IDLE;
    pthread_mutex_lock(&g->lock);
    if (require_idle && g->nmembers) {
        pthread_mutex_unlock(&g->lock);
        return -EBUSY;
    }
    int e = how == REMOVE_REPLAYED ? 0 : persist(g, 1, 1, require_idle ? durable : NULL);
    if (e && require_idle) {
        /* Refused: the group stays, as on disk. */
        pthread_mutex_unlock(&g->lock);
        return e;
    }
    g->deleted = 1;
    for (uint32_t k = 0; k < g->nmembers; k++)
        wake_add(w, g->members[k]);
    pthread_mutex_unlock(&g->lock);
    ptr_array_remove(&r->groups, at);
    atomic_store(&g->topic->groups_mtime_ms, clock_now_ms());
    group_put(g);
    return e;
}

int group_delete(struct group_registry *r, struct topic *t, const char *name)
{
    int found;
    struct wake_list w = {0};
    struct offsets_wait ow = {.sync = 1};
    pthread_mutex_lock(&r->lock);
    size_t at = find_index(r, t->name, name, &found);
    int e = found ? remove_group(r, at, REMOVE_IDLE, &w, &ow) : -ENOENT;
    pthread_mutex_unlock(&r->lock);
    wake_all(&w);
    return e ? e : offsets_acked(&ow);
}

void group_delete_topic(struct group_registry *r, struct topic *t)
{
    struct wake_list w = {0};
    int removed = 0;
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->groups.n;) {
        if (group_at(r, i)->topic == t) {
            remove_group(r, i, REMOVE_TOPIC, &w, NULL);
            removed = 1;
        } else {
            i++;
        }
    }
    pthread_mutex_unlock(&r->lock);
    /* One sync for all the tombstones: a topic made again with this name
     * must not get the old groups back after a crash. */
    if (removed && r->offsets)
        partition_sync(topic_partition(r->offsets, 0));
    wake_all(&w);
}

struct group *group_find(struct group_registry *r, struct topic *t, const char *name)
{
    int found;
    struct group *g = NULL;
    pthread_mutex_lock(&r->lock);
    size_t at = find_index(r, t->name, name, &found);
    if (found && group_at(r, at)->topic == t) {
        g = group_at(r, at);
        atomic_fetch_add(&g->refs, 1);
    }
    pthread_mutex_unlock(&r->lock);
    return g;
}

struct group *group_find_id(struct group_registry *r, uint64_t id)
{
    struct group *g = NULL;
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->groups.n; i++)
        if (group_at(r, i)->id == id) {
            g = group_at(r, i);
            atomic_fetch_add(&g->refs, 1);
            break;
        }
    pthread_mutex_unlock(&r->lock);
    return g;
}

int group_foreach(struct group_registry *r, struct topic *t, int (*fn)(struct group *g, void *arg),
                  void *arg)
{
    int e = 0;
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->groups.n && !e; i++)
        if (group_at(r, i)->topic == t)
            e = fn(group_at(r, i), arg);
    pthread_mutex_unlock(&r->lock);
    return e;
}

/* ---- members ---- */

static void window_clear(struct group_member *m)
{
    m->rec_head = m->rec_n = 0;
    m->delivered = m->acked;
}

/* Caller holds m->g->lock. */
static void wake_add(struct wake_list *w, struct group_member *m)
{
    if (!m->wake || !m->waiting)
        return;
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 8;
        struct group_member **n = realloc(w->m, cap * sizeof(*n));
        if (!n)
            return;
        w->m = n;
        w->cap = cap;
    }
    m->wake_refs++;
    w->m[w->n++] = m;
}

/* Caller holds no group lock. */
static void wake_all(struct wake_list *w)
{
    for (size_t i = 0; i < w->n; i++) {
        struct group_member *m = w->m[i];
        m->wake(m->wake_arg);
        pthread_mutex_lock(&m->g->lock);
        if (--m->wake_refs == 0)
            pthread_cond_broadcast(&m->g->woken);
        pthread_mutex_unlock(&m->g->lock);
    }
    free(w->m);
    w->m = NULL;
    w->n = w->cap = 0;
}

/* Recomputes the assignment; members whose partitions changed get a stale
 * window and are woken if they were waiting. Caller holds g->lock. */
static void rebalance(struct group *g, struct wake_list *w)
{
    fit_partitions(g);
    struct group_member **was = malloc((g->nparts ? g->nparts : 1) * sizeof(*was));
    for (uint32_t p = 0; was && p < g->nparts; p++)
        was[p] = g->owner[p] >= 0 ? g->members[g->owner[p]] : NULL;
    group_assign(g->owner, g->nparts, g->nmembers);
    for (uint32_t p = 0; p < g->nparts; p++)
        if (!was || was[p] != (g->owner[p] >= 0 ? g->members[g->owner[p]] : NULL))
            g->gen[p]++;
    free(was);
    for (uint32_t k = 0; k < g->nmembers; k++) {
        struct group_member *m = g->members[k];
        uint32_t n = 0;
        for (uint32_t p = 0; p < g->nparts; p++)
            n += g->owner[p] == (int32_t)k;
        int same = n == m->nparts;
        uint32_t idx = 0;
        for (uint32_t p = 0; same && p < g->nparts; p++)
            if (g->owner[p] == (int32_t)k && (idx >= m->nparts || m->parts[idx++] != p))
                same = 0;
        if (same)
            continue;
        for (uint32_t i = 0; i < m->nparts; i++)
            partition_cursor_free(&m->cursors[i]);
        free(m->parts);
        free(m->next);
        free(m->cursors);
        m->parts = calloc(n ? n : 1, sizeof(*m->parts));
        m->next = calloc(n ? n : 1, sizeof(*m->next));
        m->cursors = calloc(n ? n : 1, sizeof(*m->cursors));
        m->nparts = 0;
        if (!m->parts || !m->next || !m->cursors)
            continue; /* reads fail with ENOMEM until the next rebalance */
        for (uint32_t p = 0; p < g->nparts; p++)
            if (g->owner[p] == (int32_t)k) {
                m->parts[m->nparts] = p;
                partition_cursor_init(&m->cursors[m->nparts]);
                m->nparts++;
            }
        m->rr = 0;
        m->stale = 1;
        wake_add(w, m);
    }
}

int group_join(struct group *g, int broker, pid_t pid, int follow, void (*wake)(void *arg),
               void *wake_arg, struct group_member **out)
{
    struct group_member *m = calloc(1, sizeof(*m));
    struct wake_list w = {0};
    if (!m)
        return -ENOMEM;
    m->g = g;
    m->broker = broker;
    m->pid = pid;
    m->follow = follow;
    m->wake = wake;
    m->wake_arg = wake_arg;
    pthread_mutex_lock(&g->lock);
    if (g->deleted) {
        pthread_mutex_unlock(&g->lock);
        free(m);
        return -ENOENT;
    }
    if (g->nmembers == g->mcap) {
        uint32_t cap = g->mcap ? g->mcap * 2 : 8;
        struct group_member **n = realloc(g->members, cap * sizeof(*n));
        if (!n) {
            pthread_mutex_unlock(&g->lock);
            free(m);
            return -ENOMEM;
        }
        g->members = n;
        g->mcap = cap;
    }
    m->seq = g->next_seq++;
    g->members[g->nmembers++] = m;
    atomic_fetch_add(&g->refs, 1);
    rebalance(g, &w);
    pthread_mutex_unlock(&g->lock);
    wake_all(&w);
    *out = m;
    return 0;
}

/* Commits the records of the window that end at or before pos, for the
 * partitions m still owns, and drops them. Caller holds g->lock. */
static void ack_to(struct group_member *m, uint64_t pos)
{
    struct group *g = m->g;
    while (m->rec_n && m->recs[m->rec_head].end <= pos) {
        struct member_record *r = &m->recs[m->rec_head];
        int32_t k = -1;
        for (uint32_t i = 0; i < g->nmembers; i++)
            if (g->members[i] == m)
                k = (int32_t)i;
        if (r->partition < g->nparts && g->owner[r->partition] == k && k >= 0 &&
            r->gen == g->gen[r->partition]) {
            g->committed[r->partition] = r->offset + 1;
            g->dirty[r->partition] = 1;
        }
        m->rec_head++;
        m->rec_n--;
    }
    if (!m->rec_n)
        m->rec_head = 0;
    uint64_t upto = pos < m->delivered ? pos : m->delivered;
    if (upto > m->acked) {
        size_t drop = (size_t)(upto - m->acked);
        memmove(m->win, m->win + drop, (size_t)(m->delivered - upto));
        m->acked = upto;
    }
}

void group_leave(struct group_member *m)
{
    struct group *g = m->g;
    struct wake_list w = {0};
    pthread_mutex_lock(&g->lock);
    for (uint32_t i = 0; i < g->nmembers; i++) {
        if (g->members[i] != m)
            continue;
        memmove(&g->members[i], &g->members[i + 1], (g->nmembers - i - 1) * sizeof(*g->members));
        g->nmembers--;
        for (uint32_t p = 0; p < g->nparts; p++) {
            if (g->owner[p] == (int32_t)i)
                g->owner[p] = -1;
            else if (g->owner[p] > (int32_t)i)
                g->owner[p]--;
        }
        break;
    }
    rebalance(g, &w);
    if (!g->deleted)
        persist(g, 1, 0, NULL);
    while (m->wake_refs)
        pthread_cond_wait(&g->woken, &g->lock);
    pthread_mutex_unlock(&g->lock);
    wake_all(&w);
    for (uint32_t i = 0; i < m->nparts; i++)
        partition_cursor_free(&m->cursors[i]);
    free(m->parts);
    free(m->next);
    free(m->cursors);
    free(m->recs);
    free(m->win);
    free(m);
    group_put(g);
}

struct fill {
    struct group_member *m;
    uint32_t partition;
    size_t want, got;
    int err;
};

static int window_add(const struct record_view *r, void *arg)
{
    struct fill *f = arg;
    struct group_member *m = f->m;
    size_t used = (size_t)(m->delivered - m->acked);
    if (used + r->value_len > m->win_cap) {
        size_t cap = m->win_cap ? m->win_cap : 65536;
        while (cap < used + r->value_len)
            cap *= 2;
        uint8_t *n = realloc(m->win, cap);
        if (!n) {
            f->err = -ENOMEM;
            return -ENOMEM;
        }
        m->win = n;
        m->win_cap = cap;
    }
    if (m->rec_head + m->rec_n == m->rec_cap) {
        if (m->rec_head) {
            memmove(m->recs, m->recs + m->rec_head, m->rec_n * sizeof(*m->recs));
            m->rec_head = 0;
        } else {
            size_t cap = m->rec_cap ? m->rec_cap * 2 : 1024;
            struct member_record *n = realloc(m->recs, cap * sizeof(*n));
            if (!n) {
                f->err = -ENOMEM;
                return -ENOMEM;
            }
            m->recs = n;
            m->rec_cap = cap;
        }
    }
    memcpy(m->win + used, r->value, r->value_len);
    m->delivered += r->value_len;
    struct member_record *mr = &m->recs[m->rec_head + m->rec_n++];
    mr->partition = f->partition;
    mr->offset = r->offset;
    mr->gen = m->g->gen[f->partition];
    mr->start = m->delivered - r->value_len;
    mr->end = m->delivered;
    f->got += r->value_len;
    return f->got >= f->want;
}

/* Fetches records from the member's partitions, in turn, into its window.
 * Returns bytes added (0: nothing new) or a negative errno. */
static ssize_t fetch_more(struct group_member *m, size_t want)
{
    struct group *g = m->g;
    for (uint32_t k = 0; k < m->nparts; k++) {
        uint32_t i = (m->rr + k) % m->nparts;
        struct partition *p = topic_partition(g->topic, m->parts[i]);
        struct fill f = {.m = m, .partition = m->parts[i], .want = want ? want : 1};
        uint64_t next;
        int e = partition_fetch(p, &m->cursors[i], m->next[i], 65536, window_add, &f, &next);
        if (e < 0 && !f.got)
            return e;
        m->next[i] = next > m->next[i] ? next : m->next[i];
        if (f.got) {
            partition_count_read(p, f.got);
            m->rr = i + 1;
            return (ssize_t)f.got;
        }
    }
    return 0;
}

ssize_t group_member_read(struct group_member *m, uint64_t pos, void *buf, size_t len)
{
    struct group *g = m->g;
    size_t done = 0;
    ssize_t e = 0;
    pthread_mutex_lock(&g->lock);
    if (g->deleted) {
        pthread_mutex_unlock(&g->lock);
        return -ENOENT;
    }
    if (pos < m->acked) {
        pthread_mutex_unlock(&g->lock);
        return -ESPIPE;
    }
    ack_to(m, pos);
    if (pos > m->delivered) /* a reader that skipped ahead: resynchronize */
        m->acked = m->delivered = pos;
    if (m->stale) {
        /* A record the reader is in the middle of is finished first, so the
         * stream never holds a torn line; everything after it is dropped. */
        struct member_record *torn = NULL;
        if (m->rec_n && m->recs[m->rec_head].start < pos) {
            torn = &m->recs[m->rec_head];
            m->rec_n = 1;
            m->delivered = torn->end;
        } else {
            window_clear(m);
        }
        for (uint32_t i = 0; i < m->nparts; i++) {
            m->next[i] = committed(g, m->parts[i]);
            if (torn && torn->partition == m->parts[i] && torn->gen == g->gen[torn->partition] &&
                torn->offset + 1 > m->next[i])
                m->next[i] = torn->offset + 1;
        }
        m->stale = 0;
    }
    while (done < len) {
        if (pos < m->delivered) {
            size_t n = (size_t)(m->delivered - pos);
            if (n > len - done)
                n = len - done;
            memcpy((char *)buf + done, m->win + (pos - m->acked), n);
            done += n;
            pos += n;
            if (pos > m->read_end)
                m->read_end = pos;
            continue;
        }
        e = fetch_more(m, len - done);
        if (e <= 0)
            break;
    }
    int caught_up = done == 0 && e >= 0;
    m->waiting = caught_up;
    /* Caught up (end of file on drain, waiting on follow): what was read is
     * committed now, not at the next read that may never come. End of file
     * on drain tells the reader it is all consumed: it comes once the
     * in-sync replicas have the commit. */
    struct offsets_wait ow = {0};
    int eof = caught_up && !m->follow;
    persist(g, caught_up, 0, eof ? &ow : NULL);
    pthread_mutex_unlock(&g->lock);
    if (eof && offsets_acked(&ow))
        return -EIO;
    return done > 0 ? (ssize_t)done : e;
}

int group_member_sync(struct group_member *m)
{
    struct group *g = m->g;
    pthread_mutex_lock(&g->lock);
    if (g->deleted) {
        pthread_mutex_unlock(&g->lock);
        return -ENOENT;
    }
    /* What the reader has whole: a record it read only the start of is not
     * acknowledged (the rest would never be delivered to anyone). */
    ack_to(m, m->read_end);
    struct offsets_wait ow = {.sync = 1};
    int e = persist(g, 1, 0, &ow); /* fsync: durable when it returns */
    pthread_mutex_unlock(&g->lock);
    return e ? e : offsets_acked(&ow);
}

void group_notify_append(struct group_registry *r, struct topic *t, uint32_t partition)
{
    struct wake_list w = {0};
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->groups.n; i++) {
        struct group *g = group_at(r, i);
        if (g->topic != t)
            continue;
        pthread_mutex_lock(&g->lock);
        if (partition < g->nparts && g->owner[partition] >= 0)
            wake_add(&w, g->members[g->owner[partition]]);
        else if (g->nmembers) {
            /* The topic grew (maybe seen by .info first): spread the new
             * partitions. */
            rebalance(g, &w);
        }
        pthread_mutex_unlock(&g->lock);
    }
    pthread_mutex_unlock(&r->lock);
    wake_all(&w);
}

/* ---- cursors and info ---- */

int group_cursor_get(struct group *g, uint32_t partition, uint64_t *offset)
{
    pthread_mutex_lock(&g->lock);
    fit_partitions(g);
    int e = partition < g->nparts ? 0 : -ENOENT;
    if (!e)
        *offset = committed(g, partition);
    pthread_mutex_unlock(&g->lock);
    return e;
}

int group_cursor_set(struct group *g, uint32_t partition, const char *spec, int64_t time_ms)
{
    struct partition *p = topic_partition(g->topic, partition);
    struct partition_info pi;
    uint64_t off;
    if (!p)
        return -ENOENT;
    partition_info(p, &pi);
    if (!strcmp(spec, "earliest")) {
        off = pi.start_offset;
    } else if (!strcmp(spec, "latest")) {
        off = pi.high_watermark;
    } else if (spec[0] == '@') {
        int e = partition_time_offset(p, time_ms, &off);
        if (e)
            return e;
    } else if (spec[0] == '-' && spec[1] >= '0' && spec[1] <= '9') {
        int64_t n;
        if (config_parse_i64(spec + 1, 0, INT64_MAX, &n))
            return -EINVAL;
        off = (uint64_t)n >= pi.high_watermark ? 0 : pi.high_watermark - (uint64_t)n;
        if (off < pi.start_offset)
            off = pi.start_offset;
    } else if (spec[0] >= '0' && spec[0] <= '9') {
        int64_t n;
        if (config_parse_i64(spec, 0, INT64_MAX, &n))
            return -EINVAL;
        off = (uint64_t)n;
    } else {
        return -EINVAL;
    }
    if (off > pi.high_watermark)
        return -EINVAL;
    struct wake_list w = {0};
    pthread_mutex_lock(&g->lock);
    if (g->deleted) {
        pthread_mutex_unlock(&g->lock);
        return -ENOENT;
    }
    if (fit_partitions(g) < 0 || partition >= g->nparts) {
        pthread_mutex_unlock(&g->lock);
        return -ENOMEM;
    }
    /* Durable before anyone acts on it; refused, it changes nothing. */
    uint64_t was = g->committed[partition];
    uint8_t was_dirty = g->dirty[partition];
    g->committed[partition] = off;
    g->dirty[partition] = 1;
    struct offsets_wait ow = {.sync = 1};
    int e = persist(g, 1, 0, &ow);
    if (e) {
        g->committed[partition] = was;
        g->dirty[partition] = was_dirty;
        pthread_mutex_unlock(&g->lock);
        return e;
    }
    g->gen[partition]++;
    int32_t k = g->owner[partition];
    if (k >= 0) {
        /* The owner restarts from the new position; what it received of this
         * partition before is no longer committed (gen). */
        struct group_member *m = g->members[k];
        m->stale = 1;
        wake_add(&w, m);
    }
    pthread_mutex_unlock(&g->lock);
    wake_all(&w);
    return offsets_acked(&ow);
}

struct group_partition_state *group_partition_states(struct group *g, uint32_t *n_out)
{
    pthread_mutex_lock(&g->lock);
    fit_partitions(g);
    uint32_t n = g->nparts;
    struct group_partition_state *out = calloc(n ? n : 1, sizeof(*out));
    if (!out) {
        pthread_mutex_unlock(&g->lock);
        return NULL;
    }
    for (uint32_t p = 0; p < n; p++) {
        struct partition_info pi;
        partition_info(topic_partition(g->topic, p), &pi);
        out[p].committed = committed(g, p);
        out[p].end_offset = pi.high_watermark; /* the end consumers see */
        out[p].lag =
            pi.high_watermark > out[p].committed ? pi.high_watermark - out[p].committed : 0;
        out[p].owner = g->owner[p] >= 0 ? g->members[g->owner[p]]->pid : 0;
        out[p].owner_broker = g->owner[p] >= 0 ? g->members[g->owner[p]]->broker : -1;
    }
    pthread_mutex_unlock(&g->lock);
    *n_out = n;
    return out;
}

size_t group_info_text(struct group *g, char *buf, size_t cap)
{
    uint32_t n;
    struct group_partition_state *st = group_partition_states(g, &n);
    if (!st)
        return 0;
    size_t len = 0;
    for (uint32_t p = 0; p < n && len < cap; p++) {
        char owner[32] = "-";
        if (st[p].owner && st[p].owner_broker >= 0)
            snprintf(owner, sizeof(owner), "%d:%d", st[p].owner_broker, (int)st[p].owner);
        else if (st[p].owner)
            snprintf(owner, sizeof(owner), "%d", (int)st[p].owner);
        int w =
            snprintf(buf + len, cap - len,
                     "p%u committed=%" PRIu64 " end_offset=%" PRIu64 " lag=%" PRIu64 " owner=%s\n",
                     p, st[p].committed, st[p].end_offset, st[p].lag, owner);
        if (w < 0)
            break;
        len += (size_t)w;
    }
    free(st);
    return len < cap ? len : cap;
}
