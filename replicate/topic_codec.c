/* topic_codec.c - the cluster's topic texts (topic_codec.h).
 *
 * Decoders build their result in a local and hand it over only when all of
 * the text was good, so a refusal leaves the output as it was. The config
 * codec knows the keys by what config_format() writes: the one table of
 * keys stays in config.c. */
#include "topic_codec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "topic.h"

/* ---- the assignment ---- */

void cluster_assignment_free(struct cluster_assignment *a)
{
    free(a->first);
    free(a->ids);
    free(a->leaving);
    a->first = NULL;
    a->ids = NULL;
    a->leaving = NULL;
    a->nparts = 0;
}

int cluster_assignment_make(struct cluster_assignment *a, const char *topic_id, uint32_t nparts,
                            uint32_t rf, const int32_t *flat)
{
    struct cluster_assignment n = {.nparts = 0};
    if (strlen(topic_id) >= sizeof(n.topic_id))
        return -EINVAL;
    strcpy(n.topic_id, topic_id);
    if (!(n.first = calloc(1, sizeof(*n.first))))
        return -ENOMEM;
    int r = cluster_assignment_grow(&n, nparts, rf, flat);
    if (r) {
        cluster_assignment_free(&n);
        return r;
    }
    *a = n;
    return 0;
}

int cluster_assignment_grow(struct cluster_assignment *a, uint32_t more, uint32_t rf,
                            const int32_t *flat)
{
    if (rf == 0 || rf > CLUSTER_REPLICAS_MAX || more > CLUSTER_PARTITIONS_MAX - a->nparts)
        return -EINVAL;
    size_t have = a->first[a->nparts], total = have + (size_t)more * rf;
    uint32_t *first = malloc((a->nparts + more + 1) * sizeof(*first));
    int32_t *ids = malloc((total ? total : 1) * sizeof(*ids));
    uint32_t *leaving = a->leaving ? calloc(a->nparts + more + 1, sizeof(*leaving)) : NULL;
    if (!first || !ids || (a->leaving && !leaving)) {
        free(first);
        free(ids);
        free(leaving);
        return -ENOMEM;
    }
    if (leaving) {
        memcpy(leaving, a->leaving, a->nparts * sizeof(*leaving));
        free(a->leaving);
        a->leaving = leaving;
    }
    memcpy(first, a->first, (a->nparts + 1) * sizeof(*first));
    if (have)
        memcpy(ids, a->ids, have * sizeof(*ids));
    for (uint32_t p = 0; p < more; p++)
        first[a->nparts + p + 1] = (uint32_t)(have + (size_t)(p + 1) * rf);
    if (more)
        memcpy(ids + have, flat, (size_t)more * rf * sizeof(*ids));
    free(a->first);
    free(a->ids);
    a->first = first;
    a->ids = ids;
    a->nparts += more;
    return 0;
}

int cluster_assignment_copy(struct cluster_assignment *dst, const struct cluster_assignment *src)
{
    struct cluster_assignment n = *src;
    size_t nids = src->first[src->nparts];
    n.first = malloc((src->nparts + 1) * sizeof(*n.first));
    n.ids = malloc((nids ? nids : 1) * sizeof(*n.ids));
    n.leaving = src->leaving ? malloc((src->nparts + 1) * sizeof(*n.leaving)) : NULL;
    if (!n.first || !n.ids || (src->leaving && !n.leaving)) {
        free(n.first);
        free(n.ids);
        free(n.leaving);
        return -ENOMEM;
    }
    if (n.leaving)
        memcpy(n.leaving, src->leaving, src->nparts * sizeof(*n.leaving));
    memcpy(n.first, src->first, (src->nparts + 1) * sizeof(*n.first));
    if (nids)
        memcpy(n.ids, src->ids, nids * sizeof(*n.ids));
    *dst = n;
    return 0;
}

uint32_t cluster_assignment_replicas(const struct cluster_assignment *a, uint32_t p,
                                     const int32_t **ids)
{
    if (p >= a->nparts) {
        *ids = NULL;
        return 0;
    }
    *ids = a->ids + a->first[p];
    return a->first[p + 1] - a->first[p];
}

uint32_t cluster_assignment_leaving(const struct cluster_assignment *a, uint32_t p)
{
    return a->leaving && p < a->nparts ? a->leaving[p] : 0;
}

uint32_t cluster_assignment_target(const struct cluster_assignment *a, uint32_t p,
                                   const int32_t **ids)
{
    return cluster_assignment_replicas(a, p, ids) - cluster_assignment_leaving(a, p);
}

int cluster_assignment_reassigning(const struct cluster_assignment *a)
{
    for (uint32_t p = 0; a->leaving && p < a->nparts; p++)
        if (a->leaving[p])
            return 1;
    return 0;
}

int cluster_assignment_set(struct cluster_assignment *a, uint32_t p, const int32_t *ids, uint32_t n,
                           uint32_t leaving)
{
    if (p >= a->nparts || n == 0 || n > CLUSTER_REPLICAS_MAX || leaving >= n)
        return -EINVAL;
    uint32_t old = a->first[p + 1] - a->first[p];
    size_t total = a->first[a->nparts] - old + n;
    int32_t *nids = malloc(total * sizeof(*nids));
    uint32_t *nleaving = !a->leaving && leaving ? calloc(a->nparts + 1, sizeof(*nleaving)) : NULL;
    if (!nids || (!a->leaving && leaving && !nleaving)) {
        free(nids);
        free(nleaving);
        return -ENOMEM;
    }
    memcpy(nids, a->ids, a->first[p] * sizeof(*nids));
    memcpy(nids + a->first[p], ids, n * sizeof(*nids));
    memcpy(nids + a->first[p] + n, a->ids + a->first[p + 1],
           (a->first[a->nparts] - a->first[p + 1]) * sizeof(*nids));
    for (uint32_t q = p + 1; q <= a->nparts; q++)
        a->first[q] = a->first[q] - old + n;
    free(a->ids);
    a->ids = nids;
    if (nleaving)
        a->leaving = nleaving;
    if (a->leaving)
        a->leaving[p] = leaving;
    return 0;
}

static void out_ids(struct json_out *o, const int32_t *ids, uint32_t n)
{
    json_out_raw(o, "[", 1);
    for (uint32_t i = 0; i < n; i++)
        json_out_printf(o, "%s%d", i ? "," : "", ids[i]);
    json_out_raw(o, "]", 1);
}

int cluster_assignment_encode(const struct cluster_assignment *a, char **json, size_t *len)
{
    struct json_out o = {0};
    if (a->nparts == 0 || (a->topic_id[0] && !cluster_id_valid(a->topic_id)))
        return -EINVAL;
    json_out_printf(&o, "{\"version\":3,");
    if (a->topic_id[0])
        json_out_printf(&o, "\"topic_id\":\"%s\",", a->topic_id);
    json_out_printf(&o, "\"partitions\":{");
    for (uint32_t p = 0; p < a->nparts; p++) {
        const int32_t *ids;
        uint32_t n = cluster_assignment_replicas(a, p, &ids);
        json_out_printf(&o, "%s\"%u\":", p ? "," : "", p);
        out_ids(&o, ids, n);
    }
    json_out_printf(&o, "},\"adding_replicas\":{},\"removing_replicas\":{");
    int first = 1;
    for (uint32_t p = 0; p < a->nparts; p++) {
        const int32_t *ids;
        uint32_t n = cluster_assignment_replicas(a, p, &ids), k = cluster_assignment_leaving(a, p);
        if (!k)
            continue;
        json_out_printf(&o, "%s\"%u\":", first ? "" : ",", p);
        out_ids(&o, ids + n - k, k);
        first = 0;
    }
    json_out_printf(&o, "}}");
    return json_out_finish(&o, json, len);
}

/* A JSON array of distinct broker ids, 0 to max of them (at least min). */
static int decode_ids(struct json_span v, uint32_t min, int32_t *ids, uint32_t *n)
{
    struct json_iter it;
    struct json_span e;
    uint32_t k = 0;
    int r;
    if (json_array_begin(v, &it))
        return -EINVAL;
    while ((r = json_array_next(&it, &e)) == 1) {
        int64_t id;
        if (k == CLUSTER_REPLICAS_MAX || e.p[0] == '"' || json_span_int(e, 0, INT32_MAX, &id))
            return -EINVAL;
        for (uint32_t i = 0; i < k; i++)
            if (ids[i] == id)
                return -EINVAL;
        ids[k++] = (int32_t)id;
    }
    if (r < 0 || k < min)
        return -EINVAL;
    *n = k;
    return 0;
}

/* A partition number as a member name: digits, no leading zero. */
static int partition_name(const char *s, uint32_t *p)
{
    int64_t v;
    size_t n = strlen(s);
    if (json_decimal(s, n, CLUSTER_PARTITIONS_MAX - 1, &v) || (n > 1 && s[0] == '0'))
        return -EINVAL;
    *p = (uint32_t)v;
    return 0;
}

/* removing_replicas (Kafka's): partition p's removing replicas are the
 * last ones of its list, fewer than all of them. */
static int decode_removing(const char *json, size_t len, struct cluster_assignment *a)
{
    struct json_span rem, v;
    struct json_iter it;
    char name[16];
    int32_t ids[CLUSTER_REPLICAS_MAX];
    uint32_t p, k;
    int r = json_field(json, len, "removing_replicas", &rem);
    if (r == -ENOENT)
        return 0;
    if (r || json_object_begin(rem, &it))
        return -EINVAL;
    while ((r = json_object_next(&it, name, sizeof(name), &v)) == 1) {
        const int32_t *have;
        if (partition_name(name, &p) || p >= a->nparts || decode_ids(v, 0, ids, &k))
            return -EINVAL;
        uint32_t n = cluster_assignment_replicas(a, p, &have);
        if (k >= n || cluster_assignment_leaving(a, p))
            return -EINVAL;
        for (uint32_t i = 0; i < k; i++) {
            int found = 0;
            for (uint32_t j = n - k; j < n; j++)
                found |= have[j] == ids[i];
            if (!found)
                return -EINVAL;
        }
        if (!k)
            continue;
        if (!a->leaving && !(a->leaving = calloc(a->nparts + 1, sizeof(*a->leaving))))
            return -ENOMEM;
        a->leaving[p] = k;
    }
    return r < 0 ? -EINVAL : 0;
}

int cluster_assignment_decode(const char *json, size_t len, struct cluster_assignment *a)
{
    struct json_span parts, idv;
    struct json_iter it;
    char id[CLUSTER_ID_MAX] = "", name[16];
    int r = json_field(json, len, "topic_id", &idv);
    if (r == 0 && (json_span_string(idv, id, sizeof(id)) || !cluster_id_valid(id)))
        return -EINVAL;
    if ((r && r != -ENOENT) || json_field(json, len, "partitions", &parts) ||
        json_object_begin(parts, &it))
        return -EINVAL;
    /* First pass: how many, and every name once. */
    uint32_t n = 0, p = 0, k = 0;
    struct json_span v;
    int32_t ids[CLUSTER_REPLICAS_MAX];
    while ((r = json_object_next(&it, name, sizeof(name), &v)) == 1) {
        if (partition_name(name, &p) || n == CLUSTER_PARTITIONS_MAX)
            return -EINVAL;
        n++;
    }
    if (r < 0 || n == 0)
        return -EINVAL;
    /* Second pass: each partition's replicas, counted; third: copied. */
    struct cluster_assignment out = {.nparts = n};
    strcpy(out.topic_id, id);
    out.first = calloc(n + 1, sizeof(*out.first));
    r = out.first ? 0 : -ENOMEM;
    json_object_begin(parts, &it);
    while (!r && json_object_next(&it, name, sizeof(name), &v) == 1) {
        partition_name(name, &p);
        if (p >= n || out.first[p + 1] || decode_ids(v, 1, ids, &k))
            r = -EINVAL; /* out of 0..n-1, given twice, or bad replicas */
        else
            out.first[p + 1] = k;
    }
    for (p = 0; !r && p < n; p++)
        out.first[p + 1] += out.first[p];
    if (!r && !(out.ids = malloc(out.first[n] * sizeof(*out.ids))))
        r = -ENOMEM;
    json_object_begin(parts, &it);
    while (!r && json_object_next(&it, name, sizeof(name), &v) == 1) {
        partition_name(name, &p);
        decode_ids(v, 1, out.ids + out.first[p], &k);
    }
    if (!r)
        r = decode_removing(json, len, &out);
    if (r) {
        cluster_assignment_free(&out);
        return r;
    }
    *a = out;
    return 0;
}

/* ---- the partition state ---- */

int cluster_state_encode(const struct cluster_partition_state *s, char *buf, size_t cap)
{
    if (s->nisr > CLUSTER_REPLICAS_MAX || s->leader < -1 || s->leader_epoch < 0 ||
        s->controller_epoch < 0)
        return -EINVAL;
    struct json_out o = {0};
    char *text;
    size_t len;
    json_out_printf(&o,
                    "{\"controller_epoch\":%d,\"leader\":%d,\"version\":1,\"leader_epoch\":%d,"
                    "\"isr\":",
                    s->controller_epoch, s->leader, s->leader_epoch);
    out_ids(&o, s->isr, s->nisr);
    json_out_raw(&o, "}", 1);
    int r = json_out_finish(&o, &text, &len);
    if (r)
        return r;
    if (len >= cap)
        r = -ENOSPC;
    else
        memcpy(buf, text, len + 1);
    free(text);
    return r ? r : (int)len;
}

int cluster_state_decode(const char *json, size_t len, struct cluster_partition_state *s)
{
    struct cluster_partition_state n;
    struct json_span isr;
    int64_t ce, leader, le;
    if (json_int(json, len, "controller_epoch", 0, INT32_MAX, &ce) ||
        json_int(json, len, "leader", -1, INT32_MAX, &leader) ||
        json_int(json, len, "leader_epoch", 0, INT32_MAX, &le) ||
        json_field(json, len, "isr", &isr) || decode_ids(isr, 0, n.isr, &n.nisr))
        return -EINVAL;
    n.controller_epoch = (int32_t)ce;
    n.leader = (int32_t)leader;
    n.leader_epoch = (int32_t)le;
    *s = n;
    return 0;
}

int cluster_state_equal(const struct cluster_partition_state *a,
                        const struct cluster_partition_state *b)
{
    return a->controller_epoch == b->controller_epoch && a->leader == b->leader &&
           a->leader_epoch == b->leader_epoch && a->nisr == b->nisr &&
           !memcmp(a->isr, b->isr, a->nisr * sizeof(a->isr[0]));
}

/* ---- the config ---- */

#define CONFIG_TEXT_MAX 4096

/* Keys the assignment says, not the config znode. */
static int assignment_key(const char *key, size_t n)
{
    return (n == 10 && !memcmp(key, "partitions", 10)) ||
           (n == 18 && !memcmp(key, "replication.factor", 18));
}

int cluster_config_encode(const struct topic_config *cfg, char **json, size_t *len)
{
    char text[CONFIG_TEXT_MAX];
    size_t tlen = config_format(cfg, text, sizeof(text));
    if (tlen == 0 || tlen >= sizeof(text))
        return -EINVAL;
    struct json_out o = {0};
    int first = 1;
    json_out_printf(&o, "{\"version\":1,\"config\":{");
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n'), *eq = memchr(line, '=', (size_t)(nl - line));
        if (eq && !assignment_key(line, (size_t)(eq - line))) {
            if (!first)
                json_out_raw(&o, ",", 1);
            json_out_string(&o, line, (size_t)(eq - line));
            json_out_raw(&o, ":", 1);
            json_out_string(&o, eq + 1, (size_t)(nl - eq - 1));
            first = 0;
        }
        line = nl + 1;
    }
    json_out_raw(&o, "}}", 2);
    return json_out_finish(&o, json, len);
}

/* 1 if config_format writes key (so config_set knows it). */
static int known_key(const char *key)
{
    char text[CONFIG_TEXT_MAX];
    struct topic_config d;
    size_t n = strlen(key);
    config_defaults(&d, 1);
    config_format(&d, text, sizeof(text));
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        if ((size_t)(nl - line) > n && line[n] == '=' && !memcmp(line, key, n))
            return 1;
        line = nl + 1;
    }
    return 0;
}

int cluster_config_decode(const char *json, size_t len, struct topic_config *cfg)
{
    struct json_span conf, v;
    struct json_iter it;
    char key[128], value[CONFIG_LINE_MAX];
    struct topic_config n = *cfg;
    int r;
    if (json_field(json, len, "config", &conf) || json_object_begin(conf, &it))
        return -EINVAL;
    while ((r = json_object_next(&it, key, sizeof(key), &v)) != 0) {
        if (r == -ENAMETOOLONG)
            continue; /* no key of ours is that long */
        if (r < 0 || v.p[0] != '"' || json_span_string(v, value, sizeof(value)))
            return -EINVAL;
        if (assignment_key(key, strlen(key)) || !known_key(key))
            continue;
        if (config_set(&n, key, value))
            return -EINVAL;
    }
    *cfg = n;
    return 0;
}

/* ---- DATA_DIR/cluster-topics ---- */

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct topic_id_entry *)a)->name,
                  ((const struct topic_id_entry *)b)->name);
}

void topic_ids_free(struct topic_id_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].name);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

int topic_ids_parse(const char *text, size_t len, struct topic_id_list *l)
{
    struct topic_id_list n = {0};
    size_t cap = 0;
    int r = 0;
    if (memchr(text, '\0', len))
        return -EINVAL;
    for (const char *p = text, *end = text + len; !r && p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end, *line = p;
        p = nl ? nl + 1 : end;
        if (le == line || *line == '#')
            continue;
        if (memchr(line, '=', (size_t)(le - line))) {
            size_t vlen = (size_t)(le - line) - 11;
            if ((size_t)(le - line) < 11 || memcmp(line, "cluster.id=", 11) || n.cluster_id[0] ||
                vlen >= sizeof(n.cluster_id)) {
                r = -EINVAL;
                break;
            }
            memcpy(n.cluster_id, line + 11, vlen);
            n.cluster_id[vlen] = '\0';
            if (!cluster_id_valid(n.cluster_id))
                r = -EINVAL;
            continue;
        }
        const char *sp = memchr(line, ' ', (size_t)(le - line));
        char name[256], id[CLUSTER_ID_MAX];
        size_t nlen = sp ? (size_t)(sp - line) : 0, ilen = sp ? (size_t)(le - sp - 1) : 0;
        if (!sp || nlen >= sizeof(name) || ilen >= sizeof(id)) {
            r = -EINVAL;
            break;
        }
        memcpy(name, line, nlen);
        name[nlen] = '\0';
        memcpy(id, sp + 1, ilen);
        id[ilen] = '\0';
        if (topic_name_valid(name) || !cluster_id_valid(id)) {
            r = -EINVAL;
            break;
        }
        if (n.n == cap) {
            size_t c = cap ? cap * 2 : 16;
            struct topic_id_entry *v = realloc(n.v, c * sizeof(*v));
            if (!v) {
                r = -ENOMEM;
                break;
            }
            n.v = v;
            cap = c;
        }
        if (!(n.v[n.n].name = strdup(name))) {
            r = -ENOMEM;
            break;
        }
        strcpy(n.v[n.n++].id, id);
    }
    if (!r && n.n)
        qsort(n.v, n.n, sizeof(*n.v), entry_cmp);
    for (size_t i = 1; !r && i < n.n; i++)
        if (!strcmp(n.v[i - 1].name, n.v[i].name))
            r = -EINVAL;
    if (r) {
        topic_ids_free(&n);
        return r;
    }
    *l = n;
    return 0;
}

int topic_ids_format(const struct topic_id_list *l, char **text, size_t *len)
{
    struct json_out o = {0}; /* a growing buffer: nothing here is JSON */
    json_out_printf(&o, "# topicfs: topics this broker holds for its cluster: name topic_id\n");
    if (l->cluster_id[0])
        json_out_printf(&o, "cluster.id=%s\n", l->cluster_id);
    for (size_t i = 0; i < l->n; i++) {
        json_out_raw(&o, l->v[i].name, strlen(l->v[i].name));
        json_out_printf(&o, " %s\n", l->v[i].id);
    }
    return json_out_finish(&o, text, len);
}

/* The index of name, or where it would go (*found 0). */
static size_t search(const struct topic_id_list *l, const char *name, int *found)
{
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(l->v[mid].name, name);
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

const struct topic_id_entry *topic_ids_find(const struct topic_id_list *l, const char *name)
{
    int found;
    size_t i = search(l, name, &found);
    return found ? &l->v[i] : NULL;
}

int topic_ids_set(struct topic_id_list *l, const char *name, const char *id)
{
    int found;
    size_t i = search(l, name, &found);
    if (!id) {
        if (found) {
            free(l->v[i].name);
            memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof(*l->v));
            l->n--;
        }
        return 0;
    }
    if (strlen(id) >= CLUSTER_ID_MAX)
        return -EINVAL;
    if (found) {
        strcpy(l->v[i].id, id);
        return 0;
    }
    char *copy = strdup(name);
    struct topic_id_entry *v = copy ? realloc(l->v, (l->n + 1) * sizeof(*v)) : NULL;
    if (!v) {
        free(copy);
        return -ENOMEM;
    }
    l->v = v;
    memmove(&v[i + 1], &v[i], (l->n - i) * sizeof(*v));
    v[i].name = copy;
    strcpy(v[i].id, id);
    l->n++;
    return 0;
}
