/* topic_cache.c - the cluster's topics as ZooKeeper's watches keep them
 * (topic_cache.h).
 *
 * Entries exist for every name listed under /brokers/topics or
 * /admin/delete_topics (a list read drops the others), and for a topic this
 * broker just made (put_*, before the list read that confirms it). An entry's
 * partitions follow its assignment: when the assignment names another topic
 * id (the topic was deleted and made again) every partition state is
 * forgotten and read anew.
 *
 * Event paths wait in a list (tc->events, under event_lock) for the next
 * sync; an event that cannot be queued (no memory) makes that sync a full
 * one. A full sync (a new session or connection, or a failed sync) reads
 * every znode again with its watch: the lists, assignments and configs at
 * once, the partition states through read_missing (their `watched` flags
 * cleared), so a session that expired leaves no znode unwatched or stale.
 * Reads run with no lock held and store their answer under tc->lock,
 * finding the entry again by name: it may have gone meanwhile. */
#include "topic_cache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logger.h"
#include "topic.h"

struct tc_event {
    char *path;
    struct tc_event *next;
};

void tc_assignment_path(char *buf, const char *name)
{
    snprintf(buf, TC_PATH_MAX, TOPICS_PATH "/%s", name);
}

void tc_config_path(char *buf, const char *name)
{
    snprintf(buf, TC_PATH_MAX, CONFIGS_PATH "/%s", name);
}

void tc_marker_path(char *buf, const char *name)
{
    snprintf(buf, TC_PATH_MAX, DELETE_PATH "/%s", name);
}

void tc_partitions_path(char *buf, const char *name)
{
    snprintf(buf, TC_PATH_MAX, TOPICS_PATH "/%s/partitions", name);
}

void tc_partition_path(char *buf, const char *name, uint32_t p)
{
    snprintf(buf, TC_PATH_MAX, TOPICS_PATH "/%s/partitions/%u", name, p);
}

void tc_state_path(char *buf, const char *name, uint32_t p)
{
    snprintf(buf, TC_PATH_MAX, TOPICS_PATH "/%s/partitions/%u/state", name, p);
}

int topic_cache_new(struct topic_cache **out)
{
    struct topic_cache *tc = calloc(1, sizeof(*tc));
    if (!tc)
        return -ENOMEM;
    pthread_mutex_init(&tc->lock, NULL);
    pthread_mutex_init(&tc->event_lock, NULL);
    tc->need_full = 1;
    *out = tc;
    return 0;
}

static void topic_free(struct tc_topic *t)
{
    if (!t)
        return;
    free(t->name);
    cluster_assignment_free(&t->a);
    free(t->parts);
    free(t);
}

static void events_free(struct tc_event *e)
{
    while (e) {
        struct tc_event *next = e->next;
        free(e->path);
        free(e);
        e = next;
    }
}

void topic_cache_free(struct topic_cache *tc)
{
    if (!tc)
        return;
    for (size_t i = 0; i < tc->n; i++)
        topic_free(tc->topics[i]);
    free(tc->topics);
    events_free(tc->events);
    pthread_mutex_destroy(&tc->event_lock);
    pthread_mutex_destroy(&tc->lock);
    free(tc);
}

static size_t search(struct topic_cache *tc, const char *name, int *found)
{
    size_t lo = 0, hi = tc->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(tc->topics[mid]->name, name);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

struct tc_topic *topic_cache_find(struct topic_cache *tc, const char *name)
{
    int found;
    size_t i = search(tc, name, &found);
    return found ? tc->topics[i] : NULL;
}

/* Under tc->lock: the entry of name, made if missing (NULL: no memory). */
static struct tc_topic *find_or_add(struct topic_cache *tc, const char *name)
{
    int found;
    size_t i = search(tc, name, &found);
    if (found)
        return tc->topics[i];
    if (tc->n == tc->cap) {
        size_t cap = tc->cap ? tc->cap * 2 : 16;
        struct tc_topic **v = realloc(tc->topics, cap * sizeof(*v));
        if (!v)
            return NULL;
        tc->topics = v;
        tc->cap = cap;
    }
    struct tc_topic *t = calloc(1, sizeof(*t));
    if (!t || !(t->name = strdup(name))) {
        free(t);
        return NULL;
    }
    memmove(&tc->topics[i + 1], &tc->topics[i], (tc->n - i) * sizeof(*tc->topics));
    tc->topics[i] = t;
    tc->n++;
    return t;
}

int topic_cache_complete(const struct tc_topic *t)
{
    return t->assignment_known == TC_PRESENT && t->config_known == TC_PRESENT;
}

void topic_cache_full_config(const struct tc_topic *t, struct topic_config *out)
{
    const int32_t *ids;
    *out = t->cfg;
    out->partitions = t->a.nparts;
    out->replication_factor = cluster_assignment_target(&t->a, 0, &ids);
}

/* ---- events ---- */

static int is_under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return !strncmp(path, dir, n) && (path[n] == '\0' || path[n] == '/');
}

int topic_cache_note(struct topic_cache *tc, const char *path)
{
    if (!path || !(is_under(path, TOPICS_PATH) || is_under(path, CONFIGS_PATH) ||
                   is_under(path, DELETE_PATH)))
        return 0;
    struct tc_event *e = calloc(1, sizeof(*e));
    pthread_mutex_lock(&tc->event_lock);
    if (e && (e->path = strdup(path))) {
        e->next = tc->events;
        tc->events = e;
    } else {
        free(e);
        tc->need_full = 1;
    }
    pthread_mutex_unlock(&tc->event_lock);
    return 1;
}

void topic_cache_need_full(struct topic_cache *tc)
{
    pthread_mutex_lock(&tc->event_lock);
    tc->need_full = 1;
    pthread_mutex_unlock(&tc->event_lock);
}

/* ---- reads ---- */

int topic_cache_read_state(struct topic_cache *tc, struct zk *z, const char *name, uint32_t p)
{
    char path[TC_PATH_MAX], *data = NULL;
    size_t len;
    struct zk_stat st;
    int r = -EAGAIN;
    tc_state_path(path, name, p);
    for (int tries = 0; tries < 3 && r == -EAGAIN; tries++) {
        r = zk_get(z, path, 1, &data, &len, &st);
        if (r == -ENOENT) {
            /* A watch that fires when the controller makes it. */
            r = zk_exists(z, path, 1, NULL);
            r = r == 0 ? -EAGAIN : r == -ENOENT ? 1 : r;
        }
    }
    if (r < 0)
        return r;
    struct cluster_partition_state s;
    int absent = r == 1, bad = !absent && cluster_state_decode(data, len, &s);
    if (bad)
        logger_log(LOG_LEVEL_ERROR, "ZooKeeper: %s is not a partition state: \"%.80s\"", path,
                   data);
    free(data);
    pthread_mutex_lock(&tc->lock);
    struct tc_topic *t = topic_cache_find(tc, name);
    if (t && p < t->a.nparts && t->parts) {
        struct tc_partition *tp = &t->parts[p];
        tp->known = absent || bad ? TC_ABSENT : TC_PRESENT;
        tp->watched = 1;
        if (!absent && !bad) {
            tp->st = s;
            tp->version = st.version;
        }
    }
    pthread_mutex_unlock(&tc->lock);
    return 0;
}

/* Under tc->lock: t's assignment becomes a, with its partitions' states
 * kept where they still belong. Takes a (even on failure: -ENOMEM). */
static int set_assignment(struct tc_topic *t, struct cluster_assignment *a, int32_t version)
{
    int same = t->assignment_known == TC_PRESENT && !strcmp(t->a.topic_id, a->topic_id);
    struct tc_partition *parts = calloc(a->nparts, sizeof(*parts));
    if (!parts) {
        cluster_assignment_free(a);
        return -ENOMEM;
    }
    if (same)
        memcpy(parts, t->parts,
               (a->nparts < t->a.nparts ? a->nparts : t->a.nparts) * sizeof(*parts));
    if (!same && t->assignment_known == TC_PRESENT)
        t->config_known = TC_UNREAD; /* another topic of that name: its own config */
    free(t->parts);
    cluster_assignment_free(&t->a);
    t->parts = parts;
    t->a = *a;
    t->assignment_version = version;
    t->assignment_known = TC_PRESENT;
    t->bad_assignment = 0;
    return 0;
}

int topic_cache_read_assignment(struct topic_cache *tc, struct zk *z, const char *name)
{
    char path[TC_PATH_MAX], *data;
    size_t len;
    struct zk_stat st;
    struct cluster_assignment a;
    tc_assignment_path(path, name);
    int r = zk_get(z, path, 1, &data, &len, &st);
    if (r && r != -ENOENT)
        return r;
    int absent = r == -ENOENT, bad = !absent && cluster_assignment_decode(data, len, &a);
    pthread_mutex_lock(&tc->lock);
    struct tc_topic *t = absent ? topic_cache_find(tc, name) : find_or_add(tc, name);
    r = 0;
    if (!t) {
        if (!absent && !bad)
            cluster_assignment_free(&a);
        r = absent ? 0 : -ENOMEM;
    } else if (absent || bad) {
        if (bad && !t->bad_assignment)
            logger_log(LOG_LEVEL_ERROR,
                       "ZooKeeper: %s is not a replica assignment: \"%.80s\"; topic %s is not "
                       "served until it is",
                       path, data, name);
        t->bad_assignment = bad;
        t->assignment_known = TC_ABSENT;
        t->assignment_watched = 0;
    } else if (!(r = set_assignment(t, &a, st.version))) {
        t->assignment_watched = 1;
    }
    /* Partitions whose state was never read. */
    uint32_t *unread = NULL, nunread = 0;
    if (!r && t && t->assignment_known == TC_PRESENT &&
        (unread = malloc(t->a.nparts * sizeof(*unread))))
        for (uint32_t p = 0; p < t->a.nparts; p++)
            if (t->parts[p].known == TC_UNREAD)
                unread[nunread++] = p;
    int config_unread = t && t->config_known == TC_UNREAD;
    pthread_mutex_unlock(&tc->lock);
    if (!absent)
        free(data);
    for (uint32_t i = 0; !r && i < nunread; i++)
        r = topic_cache_read_state(tc, z, name, unread[i]);
    free(unread);
    if (!r && config_unread && !absent)
        r = topic_cache_read_config(tc, z, name);
    return r;
}

int topic_cache_read_config(struct topic_cache *tc, struct zk *z, const char *name)
{
    char path[TC_PATH_MAX], *data;
    size_t len;
    struct zk_stat st;
    struct topic_config cfg;
    tc_config_path(path, name);
    int r = zk_get(z, path, 1, &data, &len, &st);
    if (r == -ENOENT)
        r = zk_exists(z, path, 1, NULL) == -ENOENT ? -ENOENT : -EAGAIN; /* watch its creation */
    if (r && r != -ENOENT)
        return r;
    int absent = r == -ENOENT, bad = 0;
    if (!absent) {
        config_defaults(&cfg, 1);
        bad = cluster_config_decode(data, len, &cfg) != 0;
    }
    pthread_mutex_lock(&tc->lock);
    struct tc_topic *t = topic_cache_find(tc, name);
    if (t && (absent || bad)) {
        if (bad && !t->bad_config)
            logger_log(LOG_LEVEL_ERROR,
                       "ZooKeeper: %s is not a topic config: \"%.80s\"; topic %s is not "
                       "served until it is",
                       path, data, name);
        t->bad_config = bad;
        t->config_known = TC_ABSENT;
    } else if (t && t->config_known == TC_PRESENT && st.version < t->config_version) {
        /* Read before a change this broker made and cached already
         * (topic_cache_put_config): the cache keeps the newer one. A topic
         * made again under the name resets config_known (set_assignment). */
        t->config_watched = 1;
    } else if (t) {
        t->cfg = cfg;
        t->config_version = st.version;
        t->config_known = TC_PRESENT;
        t->bad_config = 0;
        t->config_watched = 1;
    }
    pthread_mutex_unlock(&tc->lock);
    if (!absent)
        free(data);
    return 0;
}

/* Lists /brokers/topics and /admin/delete_topics, then reads the topics new
 * to the cache (all of them when every is set). */
static int read_lists(struct topic_cache *tc, struct zk *z, int every)
{
    char **listed = NULL, **marked = NULL;
    size_t nl = 0, nm = 0;
    int r = zk_children(z, TOPICS_PATH, 1, &listed, &nl);
    if (!r)
        r = zk_children(z, DELETE_PATH, 1, &marked, &nm);
    if (r) {
        if (listed)
            zk_free_names(listed, nl);
        return r;
    }
    char **todo = calloc(nl ? nl : 1, sizeof(*todo));
    size_t ntodo = 0;
    pthread_mutex_lock(&tc->lock);
    for (size_t i = 0; i < tc->n; i++)
        tc->topics[i]->listed = tc->topics[i]->marked = 0;
    for (size_t i = 0; !r && i < nl + nm; i++) {
        const char *name = i < nl ? listed[i] : marked[i - nl];
        if (topic_name_valid(name))
            continue; /* not a topic of ours to serve */
        struct tc_topic *t = find_or_add(tc, name);
        if (!t) {
            r = -ENOMEM;
            break;
        }
        if (i < nl) {
            t->listed = 1;
            if ((every || t->assignment_known == TC_UNREAD) && todo)
                todo[ntodo++] = listed[i];
        } else {
            t->marked = 1;
        }
    }
    size_t kept = 0;
    for (size_t i = 0; i < tc->n; i++) {
        struct tc_topic *t = tc->topics[i];
        if (r || t->listed || t->marked)
            tc->topics[kept++] = t;
        else
            topic_free(t);
    }
    tc->n = kept;
    tc->listed = !r && todo;
    pthread_mutex_unlock(&tc->lock);
    if (!todo && !r)
        r = -ENOMEM;
    for (size_t i = 0; !r && i < ntodo; i++) {
        r = topic_cache_read_assignment(tc, z, todo[i]);
        if (!r)
            r = topic_cache_read_config(tc, z, todo[i]);
    }
    free(todo);
    zk_free_names(listed, nl);
    zk_free_names(marked, nm);
    return r;
}

/* One event's znode read again. */
static int read_event(struct topic_cache *tc, struct zk *z, const char *path, int *lists_done)
{
    char name[256];
    unsigned p;
    int n = 0;
    if (!strcmp(path, TOPICS_PATH) || is_under(path, DELETE_PATH)) {
        if (*lists_done)
            return 0;
        *lists_done = 1;
        return read_lists(tc, z, 0);
    }
    if (sscanf(path, TOPICS_PATH "/%255[^/]/partitions/%u/state%n", name, &p, &n) == 2 &&
        path[n] == '\0')
        return topic_cache_read_state(tc, z, name, p);
    if (sscanf(path, TOPICS_PATH "/%255[^/]%n", name, &n) == 1 && path[n] == '\0')
        return topic_cache_read_assignment(tc, z, name);
    if (sscanf(path, CONFIGS_PATH "/%255[^/]%n", name, &n) == 1 && path[n] == '\0')
        return topic_cache_read_config(tc, z, name);
    return 0;
}

/* Reads what the cache knows it lacks: the config and partition states of
 * topics whose assignment it has, and what this broker put without a watch
 * (UINT32_MAX - 1: the assignment). */
static int read_missing(struct topic_cache *tc, struct zk *z)
{
    struct missing {
        char *name;
        uint32_t p; /* UINT32_MAX: the config */
    } *v = NULL;
    size_t n = 0, cap = 0;
    int r = 0;
    pthread_mutex_lock(&tc->lock);
    for (size_t i = 0; !r && i < tc->n; i++) {
        struct tc_topic *t = tc->topics[i];
        if (t->assignment_known != TC_PRESENT || !t->listed || t->marked)
            continue;
        for (uint32_t p = 0; !r && p <= t->a.nparts + 1; p++) {
            int lacks = p == t->a.nparts + 1 ? !t->assignment_watched
                        : p == t->a.nparts
                            ? t->config_known == TC_UNREAD ||
                                  (t->config_known == TC_PRESENT && !t->config_watched)
                            : t->parts[p].known == TC_UNREAD || !t->parts[p].watched;
            if (!lacks)
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                struct missing *m = realloc(v, cap * sizeof(*m));
                if (!m) {
                    r = -ENOMEM;
                    break;
                }
                v = m;
            }
            if (!(v[n].name = strdup(t->name))) {
                r = -ENOMEM;
                break;
            }
            v[n++].p = p == t->a.nparts + 1 ? UINT32_MAX - 1 : p == t->a.nparts ? UINT32_MAX : p;
        }
    }
    pthread_mutex_unlock(&tc->lock);
    for (size_t i = 0; !r && i < n; i++)
        r = v[i].p == UINT32_MAX       ? topic_cache_read_config(tc, z, v[i].name)
            : v[i].p == UINT32_MAX - 1 ? topic_cache_read_assignment(tc, z, v[i].name)
                                       : topic_cache_read_state(tc, z, v[i].name, v[i].p);
    for (size_t i = 0; i < n; i++)
        free(v[i].name);
    free(v);
    return r;
}

int topic_cache_sync(struct topic_cache *tc, struct zk *z)
{
    pthread_mutex_lock(&tc->event_lock);
    struct tc_event *events = tc->events;
    int full = tc->need_full;
    tc->events = NULL;
    tc->need_full = 0;
    pthread_mutex_unlock(&tc->event_lock);
    int r = 0, lists_done = 0;
    if (full) {
        /* A new session has none of the old one's watches: every state is
         * read again (read_missing), with its watch. */
        pthread_mutex_lock(&tc->lock);
        for (size_t i = 0; i < tc->n; i++)
            for (uint32_t p = 0; tc->topics[i]->parts && p < tc->topics[i]->a.nparts; p++)
                tc->topics[i]->parts[p].watched = 0;
        pthread_mutex_unlock(&tc->lock);
        r = read_lists(tc, z, 1);
    } else {
        for (struct tc_event *e = events; e && !r; e = e->next)
            r = read_event(tc, z, e->path, &lists_done);
    }
    events_free(events);
    if (!r)
        r = read_missing(tc, z);
    if (r)
        topic_cache_need_full(tc);
    return r;
}

/* ---- this broker's own writes ---- */

/* Under tc->lock: t may take what was written for topic_id at version. */
static int newer(const struct tc_topic *t, const char *topic_id, enum tc_known known, int32_t have,
                 int32_t version)
{
    if (t->assignment_known == TC_PRESENT && strcmp(t->a.topic_id, topic_id))
        return 0; /* another topic of the same name */
    return known != TC_PRESENT || version > have;
}

void topic_cache_put_assignment(struct topic_cache *tc, const char *name,
                                const struct cluster_assignment *a, int32_t version)
{
    struct cluster_assignment copy;
    pthread_mutex_lock(&tc->lock);
    struct tc_topic *t = find_or_add(tc, name);
    if (t && (t->assignment_known != TC_PRESENT || strcmp(t->a.topic_id, a->topic_id) ||
              version > t->assignment_version)) {
        int same = t->assignment_known == TC_PRESENT && !strcmp(t->a.topic_id, a->topic_id);
        if (cluster_assignment_copy(&copy, a) == 0 && set_assignment(t, &copy, version) == 0) {
            t->listed = 1;
            t->assignment_watched &= same;
        }
    }
    pthread_mutex_unlock(&tc->lock);
}

void topic_cache_put_config(struct topic_cache *tc, const char *name, const char *topic_id,
                            const struct topic_config *cfg, int32_t version)
{
    pthread_mutex_lock(&tc->lock);
    struct tc_topic *t = topic_cache_find(tc, name);
    if (t && newer(t, topic_id, t->config_known, t->config_version, version)) {
        t->cfg = *cfg;
        t->config_version = version;
        t->config_known = TC_PRESENT;
    }
    pthread_mutex_unlock(&tc->lock);
}

void topic_cache_put_state(struct topic_cache *tc, const char *name, const char *topic_id,
                           uint32_t p, const struct cluster_partition_state *st, int32_t version)
{
    pthread_mutex_lock(&tc->lock);
    struct tc_topic *t = topic_cache_find(tc, name);
    if (t && p < t->a.nparts && t->parts &&
        newer(t, topic_id, t->parts[p].known, t->parts[p].version, version)) {
        t->parts[p].st = *st;
        t->parts[p].version = version;
        t->parts[p].known = TC_PRESENT;
    }
    pthread_mutex_unlock(&tc->lock);
}

void topic_cache_put_marked(struct topic_cache *tc, const char *name)
{
    pthread_mutex_lock(&tc->lock);
    struct tc_topic *t = topic_cache_find(tc, name);
    if (t)
        t->marked = 1;
    pthread_mutex_unlock(&tc->lock);
}
