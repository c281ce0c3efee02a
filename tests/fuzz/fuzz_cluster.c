/* fuzz_cluster.c - the texts of cluster mode (cluster_codec.h, zk.h).
 *
 * The input goes to every decoder: meta.properties, the JSON of
 * /brokers/ids/<id>, /controller and /cluster/id, /controller_epoch, the
 * topics' znodes (assignment, partition state, config) and the data dir's
 * cluster-topics (topic_codec.h), and (as a C string up to its first NUL)
 * listen= and zk=. Whatever one accepts must be well formed (valid host,
 * port, ids; distinct replicas; partitions 0..N-1) and must come back the
 * same through its encoder and the decoder again; a refusal leaves the
 * output untouched; an accepted connection string splits into a server list
 * that begins the input and servers that each parse as listen= would. */
#include "cluster_codec.h"
#include "fuzz_util.h"
#include "topic_codec.h"
#include "zk.h"

static void meta(const char *text, size_t size)
{
    struct cluster_meta m, back;
    memset(&m, 0x5a, sizeof(m));
    if (cluster_meta_parse(text, size, &m)) {
        struct cluster_meta untouched;
        memset(&untouched, 0x5a, sizeof(untouched));
        FUZZ_CHECK(!memcmp(&m, &untouched, sizeof(m)));
        return;
    }
    FUZZ_CHECK(m.broker_id >= 0 && cluster_id_valid(m.cluster_id));
    char buf[512];
    int n = cluster_meta_format(&m, buf, sizeof(buf));
    FUZZ_CHECK(n > 0);
    FUZZ_CHECK(cluster_meta_parse(buf, (size_t)n, &back) == 0);
    FUZZ_CHECK(back.broker_id == m.broker_id && !strcmp(back.cluster_id, m.cluster_id));
}

static void broker(const char *text, size_t size)
{
    struct cluster_broker_record b, back;
    if (cluster_broker_decode(text, size, &b))
        return;
    FUZZ_CHECK(cluster_host_valid(b.host) && b.port >= 1 && b.port <= 65535);
    FUZZ_CHECK(b.timestamp_ms >= -1);
    if (b.timestamp_ms < 0)
        b.timestamp_ms = 0; /* ours always have one */
    char json[1024];
    int n = cluster_broker_encode(&b, json, sizeof(json));
    FUZZ_CHECK(n > 0);
    FUZZ_CHECK(cluster_broker_decode(json, (size_t)n, &back) == 0);
    FUZZ_CHECK(!strcmp(back.host, b.host) && back.port == b.port);
    FUZZ_CHECK(back.timestamp_ms == b.timestamp_ms);
}

static void controller(const char *text, size_t size)
{
    struct cluster_controller_record c, back;
    if (cluster_controller_decode(text, size, &c))
        return;
    FUZZ_CHECK(c.broker_id >= 0 && c.timestamp_ms >= -1);
    if (c.timestamp_ms < 0)
        c.timestamp_ms = 0;
    char json[256];
    int n = cluster_controller_encode(&c, json, sizeof(json));
    FUZZ_CHECK(n > 0);
    FUZZ_CHECK(cluster_controller_decode(json, (size_t)n, &back) == 0);
    FUZZ_CHECK(back.broker_id == c.broker_id && back.timestamp_ms == c.timestamp_ms);
}

static void cluster_id(const char *text, size_t size)
{
    char id[CLUSTER_ID_MAX] = "untouched", back[CLUSTER_ID_MAX], json[256];
    if (cluster_id_decode(text, size, id)) {
        FUZZ_CHECK(!strcmp(id, "untouched"));
        return;
    }
    FUZZ_CHECK(cluster_id_valid(id));
    int n = cluster_id_encode(id, json, sizeof(json));
    FUZZ_CHECK(n > 0);
    FUZZ_CHECK(cluster_id_decode(json, (size_t)n, back) == 0 && !strcmp(back, id));
}

static void epoch(const char *text, size_t size)
{
    int e, back;
    char buf[16];
    if (cluster_epoch_decode(text, size, &e))
        return;
    FUZZ_CHECK(e >= 0);
    int n = snprintf(buf, sizeof(buf), "%d", e);
    FUZZ_CHECK(cluster_epoch_decode(buf, (size_t)n, &back) == 0 && back == e);
}

static void strings(const char *s)
{
    char host[CLUSTER_HOST_MAX];
    int port;
    if (cluster_parse_hostport(s, host, &port) == 0)
        FUZZ_CHECK(cluster_host_valid(host) && port >= 1 && port <= 65535);
    char *hosts, *chroot;
    if (zk_parse_connect(s, &hosts, &chroot))
        return;
    size_t hl = strlen(hosts);
    FUZZ_CHECK(hl > 0 && !strncmp(s, hosts, hl));
    FUZZ_CHECK(s[hl] == '\0' || s[hl] == '/');
    if (chroot)
        FUZZ_CHECK(!strcmp(s + hl, chroot) && chroot[0] == '/' && chroot[1]);
    for (char *p = hosts, *comma; p; p = comma ? comma + 1 : NULL) {
        comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        FUZZ_CHECK(cluster_parse_hostport(p, host, &port) == 0);
    }
    free(hosts);
    free(chroot);
}

static void assignment(const char *text, size_t size)
{
    struct cluster_assignment a = {.nparts = 7}, back;
    if (cluster_assignment_decode(text, size, &a)) {
        FUZZ_CHECK(a.nparts == 7 && !a.first && !a.ids && !a.leaving);
        return;
    }
    FUZZ_CHECK(a.nparts >= 1 && a.nparts <= CLUSTER_PARTITIONS_MAX);
    FUZZ_CHECK(!a.topic_id[0] || cluster_id_valid(a.topic_id));
    for (uint32_t p = 0; p < a.nparts; p++) {
        const int32_t *ids;
        uint32_t n = cluster_assignment_replicas(&a, p, &ids);
        FUZZ_CHECK(n >= 1 && n <= CLUSTER_REPLICAS_MAX);
        FUZZ_CHECK(cluster_assignment_leaving(&a, p) < n);
        for (uint32_t i = 0; i < n; i++) {
            FUZZ_CHECK(ids[i] >= 0);
            for (uint32_t j = 0; j < i; j++)
                FUZZ_CHECK(ids[i] != ids[j]);
        }
    }
    char *json;
    size_t len;
    FUZZ_CHECK(cluster_assignment_encode(&a, &json, &len) == 0);
    FUZZ_CHECK(cluster_assignment_decode(json, len, &back) == 0);
    FUZZ_CHECK(back.nparts == a.nparts && !strcmp(back.topic_id, a.topic_id));
    FUZZ_CHECK(!memcmp(back.first, a.first, (a.nparts + 1) * sizeof(*a.first)));
    FUZZ_CHECK(!memcmp(back.ids, a.ids, a.first[a.nparts] * sizeof(*a.ids)));
    for (uint32_t p = 0; p < a.nparts; p++)
        FUZZ_CHECK(cluster_assignment_leaving(&back, p) == cluster_assignment_leaving(&a, p));
    free(json);
    cluster_assignment_free(&back);
    cluster_assignment_free(&a);
}

static void state(const char *text, size_t size)
{
    struct cluster_partition_state s, back;
    memset(&s, 0x5a, sizeof(s));
    struct cluster_partition_state untouched = s;
    if (cluster_state_decode(text, size, &s)) {
        FUZZ_CHECK(!memcmp(&s, &untouched, sizeof(s)));
        return;
    }
    FUZZ_CHECK(s.leader >= -1 && s.leader_epoch >= 0 && s.controller_epoch >= 0);
    FUZZ_CHECK(s.nisr <= CLUSTER_REPLICAS_MAX);
    char json[2048];
    int n = cluster_state_encode(&s, json, sizeof(json));
    FUZZ_CHECK(n > 0);
    FUZZ_CHECK(cluster_state_decode(json, (size_t)n, &back) == 0 && cluster_state_equal(&s, &back));
}

static void topic_config(const char *text, size_t size)
{
    struct topic_config c, untouched, back;
    config_defaults(&c, 2);
    untouched = c;
    if (cluster_config_decode(text, size, &c)) {
        FUZZ_CHECK(!memcmp(&c, &untouched, sizeof(c)));
        return;
    }
    FUZZ_CHECK(c.partitions == 2 && c.replication_factor == 1);
    char *json;
    size_t len;
    FUZZ_CHECK(cluster_config_encode(&c, &json, &len) == 0);
    config_defaults(&back, 2);
    FUZZ_CHECK(cluster_config_decode(json, len, &back) == 0);
    char x[4096], y[4096];
    size_t xl = config_format(&c, x, sizeof(x)), yl = config_format(&back, y, sizeof(y));
    FUZZ_CHECK(xl == yl && !memcmp(x, y, xl));
    free(json);
}

static void topic_ids(const char *text, size_t size)
{
    struct topic_id_list l, back;
    if (topic_ids_parse(text, size, &l))
        return;
    char *out;
    size_t len;
    FUZZ_CHECK(topic_ids_format(&l, &out, &len) == 0);
    FUZZ_CHECK(topic_ids_parse(out, len, &back) == 0);
    FUZZ_CHECK(back.n == l.n && !strcmp(back.cluster_id, l.cluster_id));
    for (size_t i = 0; i < l.n; i++) {
        FUZZ_CHECK(!strcmp(back.v[i].name, l.v[i].name) && !strcmp(back.v[i].id, l.v[i].id));
        FUZZ_CHECK(topic_ids_find(&l, l.v[i].name) == &l.v[i]);
    }
    free(out);
    topic_ids_free(&back);
    topic_ids_free(&l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    meta(text, size);
    broker(text, size);
    controller(text, size);
    cluster_id(text, size);
    epoch(text, size);
    assignment(text, size);
    state(text, size);
    topic_config(text, size);
    topic_ids(text, size);
    char *s = strndup(text, size);
    if (s)
        strings(s);
    free(s);
    return 0;
}
