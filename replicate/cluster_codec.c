/* cluster_codec.c - meta.properties, the znodes' JSON and listen= (cluster_codec.h).
 *
 * The JSON is read by json.h's strict reader: each decoder asks it for the
 * fields it needs of a whole, valid document. Nothing is allocated.
 *
 * The encoders only ever write values that passed cluster_host_valid or
 * cluster_id_valid, whose characters need no JSON escape. */
#include "cluster_codec.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "conn.h"
#include "fsutil.h"
#include "json.h"

static int charset_valid(const char *s, size_t max, const char *extra)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr(extra, c)))
            return 0;
    }
    return 1;
}

int cluster_id_valid(const char *id)
{
    return charset_valid(id, CLUSTER_ID_MAX - 1, "._-");
}

int cluster_host_valid(const char *host)
{
    size_t n = strlen(host);
    return n > 0 && n < CLUSTER_HOST_MAX && conn_host_valid(host, n);
}

int cluster_id_generate(char id[CLUSTER_ID_MAX])
{
    static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char raw[16];
    size_t got = 0;
    while (got < sizeof(raw)) {
        ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        got += (size_t)n;
    }
    /* 128 bits: 21 full sextets and 2 bits left. */
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < sizeof(raw); i++) {
        acc = acc << 8 | raw[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            id[o++] = b64url[(acc >> bits) & 63];
        }
    }
    id[o++] = b64url[(acc << (6 - bits)) & 63];
    id[o] = '\0';
    return 0;
}

int cluster_parse_hostport(const char *s, char host[CLUSTER_HOST_MAX], int *port)
{
    char h[CLUSTER_HOST_MAX];
    uint16_t p;
    /* Port 0 means "any" to a listener, never a place to reach a broker. */
    if (conn_parse_addr(s, h, sizeof(h), &p) || p == 0)
        return -EINVAL;
    memcpy(host, h, strlen(h) + 1);
    *port = p;
    return 0;
}

/* ---- meta.properties ---- */

int cluster_meta_parse(const char *text, size_t len, struct cluster_meta *m)
{
    const char *end = text + len;
    int have_version = 0, have_broker = 0, have_cluster = 0;
    struct cluster_meta n = {0};
    for (const char *p = text; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *line = p;
        p = nl ? nl + 1 : end;
        if (le > line && le[-1] == '\r')
            le--;
        if (le == line || *line == '#' || *line == '!')
            continue;
        const char *eq = memchr(line, '=', (size_t)(le - line));
        if (!eq || eq == line)
            return -EINVAL;
        size_t klen = (size_t)(eq - line), vlen = (size_t)(le - eq - 1);
        const char *v = eq + 1;
        int64_t num;
        if (klen == 7 && !memcmp(line, "version", 7)) {
            if (json_decimal(v, vlen, INT32_MAX, &num) || num != 0)
                return -EINVAL;
            have_version = 1;
        } else if (klen == 9 && !memcmp(line, "broker.id", 9)) {
            if (json_decimal(v, vlen, INT32_MAX, &num))
                return -EINVAL;
            n.broker_id = (int)num;
            have_broker = 1;
        } else if (klen == 10 && !memcmp(line, "cluster.id", 10)) {
            if (vlen >= CLUSTER_ID_MAX)
                return -EINVAL;
            memcpy(n.cluster_id, v, vlen);
            n.cluster_id[vlen] = '\0';
            if (!cluster_id_valid(n.cluster_id))
                return -EINVAL;
            have_cluster = 1;
        }
    }
    if (!have_version || !have_broker || !have_cluster)
        return -EINVAL;
    *m = n;
    return 0;
}

int cluster_meta_format(const struct cluster_meta *m, char *buf, size_t cap)
{
    if (!cluster_id_valid(m->cluster_id) || m->broker_id < 0)
        return -EINVAL;
    int n = snprintf(buf, cap,
                     "# topicfs: this data dir belongs to broker %d of cluster %s\n"
                     "version=0\nbroker.id=%d\ncluster.id=%s\n",
                     m->broker_id, m->cluster_id, m->broker_id, m->cluster_id);
    return n < 0 || (size_t)n >= cap ? -ENOSPC : n;
}

#define META_MAX (64 * 1024)

int cluster_meta_read(const char *data_dir, struct cluster_meta *m)
{
    char path[4096];
    if (snprintf(path, sizeof(path), "%s/meta.properties", data_dir) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOTDIR ? -ENOENT : -errno;
    char *buf = malloc(META_MAX);
    size_t len = 0;
    int r = buf ? 0 : -ENOMEM;
    while (!r && len < META_MAX) {
        ssize_t n = read(fd, buf + len, META_MAX - len);
        if (n < 0 && errno != EINTR)
            r = -errno;
        else if (n == 0)
            break;
        else if (n > 0)
            len += (size_t)n;
    }
    close(fd);
    if (!r)
        r = len == META_MAX ? -EINVAL : cluster_meta_parse(buf, len, m);
    free(buf);
    return r;
}

int cluster_meta_write(const char *data_dir, const struct cluster_meta *m)
{
    char path[4096], text[512];
    int len = cluster_meta_format(m, text, sizeof(text)), renamed;
    if (len < 0)
        return len;
    if (snprintf(path, sizeof(path), "%s/meta.properties", data_dir) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    return fsutil_write_atomic(path, text, (size_t)len, NULL, &renamed);
}

/* An optional timestamp: -1 when absent. */
static int json_timestamp(const char *json, size_t len, int64_t *ts)
{
    int r = json_int(json, len, "timestamp", 0, INT64_MAX, ts);
    if (r == -ENOENT) {
        *ts = -1;
        return 0;
    }
    return r;
}

int cluster_broker_encode(const struct cluster_broker_record *b, char *buf, size_t cap)
{
    if (!cluster_host_valid(b->host) || b->port < 1 || b->port > 65535)
        return -EINVAL;
    int v6 = strchr(b->host, ':') != NULL;
    int n =
        snprintf(buf, cap,
                 "{\"version\":4,\"host\":\"%s\",\"port\":%d,\"jmx_port\":-1,"
                 "\"timestamp\":\"%" PRId64 "\",\"endpoints\":[\"TOPICFS://%s%s%s:%d\"]}",
                 b->host, b->port, b->timestamp_ms, v6 ? "[" : "", b->host, v6 ? "]" : "", b->port);
    return n < 0 || (size_t)n >= cap ? -ENOSPC : n;
}

int cluster_broker_decode(const char *json, size_t len, struct cluster_broker_record *b)
{
    struct cluster_broker_record n;
    int64_t port;
    if (json_string(json, len, "host", n.host, sizeof(n.host)) || !cluster_host_valid(n.host) ||
        json_int(json, len, "port", 1, 65535, &port) || json_timestamp(json, len, &n.timestamp_ms))
        return -EINVAL;
    n.port = (int)port;
    *b = n;
    return 0;
}

int cluster_controller_encode(const struct cluster_controller_record *c, char *buf, size_t cap)
{
    if (c->broker_id < 0)
        return -EINVAL;
    int n = snprintf(buf, cap, "{\"version\":1,\"brokerid\":%d,\"timestamp\":\"%" PRId64 "\"}",
                     c->broker_id, c->timestamp_ms);
    return n < 0 || (size_t)n >= cap ? -ENOSPC : n;
}

int cluster_controller_decode(const char *json, size_t len, struct cluster_controller_record *c)
{
    int64_t id, ts;
    if (json_int(json, len, "brokerid", 0, INT32_MAX, &id) || json_timestamp(json, len, &ts))
        return -EINVAL;
    c->broker_id = (int)id;
    c->timestamp_ms = ts;
    return 0;
}

int cluster_id_encode(const char *id, char *buf, size_t cap)
{
    if (!cluster_id_valid(id))
        return -EINVAL;
    int n = snprintf(buf, cap, "{\"version\":\"1\",\"id\":\"%s\"}", id);
    return n < 0 || (size_t)n >= cap ? -ENOSPC : n;
}

int cluster_id_decode(const char *json, size_t len, char id[CLUSTER_ID_MAX])
{
    char tmp[CLUSTER_ID_MAX];
    if (json_string(json, len, "id", tmp, sizeof(tmp)) || !cluster_id_valid(tmp))
        return -EINVAL;
    memcpy(id, tmp, sizeof(tmp));
    return 0;
}

int cluster_epoch_decode(const char *text, size_t len, int *epoch)
{
    int64_t v;
    if (json_decimal(text, len, INT32_MAX, &v))
        return -EINVAL;
    *epoch = (int)v;
    return 0;
}
