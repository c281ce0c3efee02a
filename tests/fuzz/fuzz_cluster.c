/* fuzz_cluster.c - the texts of cluster mode (cluster_codec.h, zk.h).
 *
 * The input goes to every decoder: meta.properties, the JSON of
 * /brokers/ids/<id>, /controller and /cluster/id, /controller_epoch, and (as
 * a C string up to its first NUL) listen= and zk=. Whatever one accepts
 * must be well formed (valid host, port, ids) and must come back the same
 * through its encoder and the decoder again; a refusal leaves the output
 * untouched; an accepted connection string splits into a server list that
 * begins the input and servers that each parse as listen= would. */
#include "cluster_codec.h"
#include "fuzz_util.h"
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    meta(text, size);
    broker(text, size);
    controller(text, size);
    cluster_id(text, size);
    epoch(text, size);
    char *s = strndup(text, size);
    if (s)
        strings(s);
    free(s);
    return 0;
}
