/* cluster_codec.c - meta.properties, the znodes' JSON and listen= (cluster_codec.h).
 *
 * The JSON reader is a strict recursive-descent parser of one object (RFC
 * 8259: strings with their escapes, including surrogate pairs; numbers;
 * literals; nested arrays and objects up to JSON_MAX_DEPTH). It validates
 * the whole text and returns the raw span of one top-level field's value;
 * json_int and json_string then read that span. Nothing is allocated.
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

#define JSON_MAX_DEPTH 32

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

/* A decimal in [0, max]: digits only. */
static int parse_decimal(const char *s, size_t n, int64_t max, int64_t *out)
{
    int64_t v = 0;
    if (n == 0 || n > 19)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        if (v > (max - (s[i] - '0')) / 10)
            return -EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

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
            if (parse_decimal(v, vlen, INT32_MAX, &num) || num != 0)
                return -EINVAL;
            have_version = 1;
        } else if (klen == 9 && !memcmp(line, "broker.id", 9)) {
            if (parse_decimal(v, vlen, INT32_MAX, &num))
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

/* ---- JSON ---- */

struct jcur {
    const char *p, *end;
};

static void skip_ws(struct jcur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int hex4(struct jcur *c, uint32_t *out)
{
    uint32_t v = 0;
    if (c->end - c->p < 4)
        return -EINVAL;
    for (int i = 0; i < 4; i++) {
        char h = *c->p++;
        v <<= 4;
        if (h >= '0' && h <= '9')
            v |= (uint32_t)(h - '0');
        else if (h >= 'a' && h <= 'f')
            v |= (uint32_t)(h - 'a' + 10);
        else if (h >= 'A' && h <= 'F')
            v |= (uint32_t)(h - 'A' + 10);
        else
            return -EINVAL;
    }
    *out = v;
    return 0;
}

/* The code point of a \u escape (after the "\u"), a surrogate pair whole. */
static int unicode_escape(struct jcur *c, uint32_t *cp)
{
    uint32_t hi, lo;
    if (hex4(c, &hi))
        return -EINVAL;
    if (hi >= 0xDC00 && hi <= 0xDFFF)
        return -EINVAL;
    if (hi < 0xD800 || hi > 0xDBFF) {
        *cp = hi;
        return 0;
    }
    if (c->end - c->p < 2 || c->p[0] != '\\' || c->p[1] != 'u')
        return -EINVAL;
    c->p += 2;
    if (hex4(c, &lo) || lo < 0xDC00 || lo > 0xDFFF)
        return -EINVAL;
    *cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
    return 0;
}

static size_t utf8_encode(uint32_t cp, char *b)
{
    if (cp < 0x80) {
        b[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        b[0] = (char)(0xC0 | cp >> 6);
        b[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        b[0] = (char)(0xE0 | cp >> 12);
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    b[0] = (char)(0xF0 | cp >> 18);
    b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    b[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A string at c->p, its opening quote. Decoded into out (cap > 0 bytes with
 * its NUL) unless out is NULL: -ENAMETOOLONG if it does not fit (the string
 * is still consumed), -EINVAL if it is not a valid string or holds \u0000. */
static int parse_string(struct jcur *c, char *out, size_t cap)
{
    size_t n = 0;
    int too_long = 0;
    if (c->p >= c->end || *c->p != '"')
        return -EINVAL;
    c->p++;
    for (;;) {
        char b[4];
        size_t blen = 1;
        if (c->p >= c->end)
            return -EINVAL;
        unsigned char ch = (unsigned char)*c->p++;
        if (ch == '"')
            break;
        if (ch < 0x20)
            return -EINVAL;
        b[0] = (char)ch;
        if (ch == '\\') {
            if (c->p >= c->end)
                return -EINVAL;
            switch (*c->p++) {
            case '"':
                b[0] = '"';
                break;
            case '\\':
                b[0] = '\\';
                break;
            case '/':
                b[0] = '/';
                break;
            case 'b':
                b[0] = '\b';
                break;
            case 'f':
                b[0] = '\f';
                break;
            case 'n':
                b[0] = '\n';
                break;
            case 'r':
                b[0] = '\r';
                break;
            case 't':
                b[0] = '\t';
                break;
            case 'u': {
                uint32_t cp;
                if (unicode_escape(c, &cp) || cp == 0)
                    return -EINVAL;
                blen = utf8_encode(cp, b);
                break;
            }
            default:
                return -EINVAL;
            }
        }
        if (!out)
            continue;
        if (n + blen >= cap) {
            too_long = 1;
        } else {
            memcpy(out + n, b, blen);
            n += blen;
        }
    }
    if (out)
        out[n] = '\0';
    return too_long ? -ENAMETOOLONG : 0;
}

static int digits(struct jcur *c)
{
    const char *start = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
        c->p++;
    return c->p > start ? 0 : -EINVAL;
}

static int parse_number(struct jcur *c)
{
    if (c->p < c->end && *c->p == '-')
        c->p++;
    if (c->p < c->end && *c->p == '0')
        c->p++;
    else if (digits(c))
        return -EINVAL;
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        if (digits(c))
            return -EINVAL;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
            c->p++;
        if (digits(c))
            return -EINVAL;
    }
    return 0;
}

static int parse_literal(struct jcur *c, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n))
        return -EINVAL;
    c->p += n;
    return 0;
}

static int parse_value(struct jcur *c, int depth);

/* An object at c->p, its '{'. If key, the span of that field's value (at
 * this level; the last one if repeated) goes to *vs, *ve. */
static int parse_object(struct jcur *c, int depth, const char *key, const char **vs,
                        const char **ve)
{
    if (depth > JSON_MAX_DEPTH)
        return -EINVAL;
    c->p++;
    skip_ws(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
        return 0;
    }
    for (;;) {
        char name[64];
        skip_ws(c);
        int r = parse_string(c, name, sizeof(name));
        int match = !r && key && !strcmp(name, key);
        if (r && r != -ENAMETOOLONG)
            return r;
        skip_ws(c);
        if (c->p >= c->end || *c->p != ':')
            return -EINVAL;
        c->p++;
        skip_ws(c);
        const char *start = c->p;
        if ((r = parse_value(c, depth + 1)))
            return r;
        if (match) {
            *vs = start;
            *ve = c->p;
        }
        skip_ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        if (c->p < c->end && *c->p == '}') {
            c->p++;
            return 0;
        }
        return -EINVAL;
    }
}

static int parse_array(struct jcur *c, int depth)
{
    if (depth > JSON_MAX_DEPTH)
        return -EINVAL;
    c->p++;
    skip_ws(c);
    if (c->p < c->end && *c->p == ']') {
        c->p++;
        return 0;
    }
    for (;;) {
        int r = parse_value(c, depth + 1);
        if (r)
            return r;
        skip_ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        if (c->p < c->end && *c->p == ']') {
            c->p++;
            return 0;
        }
        return -EINVAL;
    }
}

static int parse_value(struct jcur *c, int depth)
{
    skip_ws(c);
    if (c->p >= c->end)
        return -EINVAL;
    switch (*c->p) {
    case '{':
        return parse_object(c, depth, NULL, NULL, NULL);
    case '[':
        return parse_array(c, depth);
    case '"':
        return parse_string(c, NULL, 0);
    case 't':
        return parse_literal(c, "true");
    case 'f':
        return parse_literal(c, "false");
    case 'n':
        return parse_literal(c, "null");
    default:
        return parse_number(c);
    }
}

/* The raw value of the top-level field key of the object json: 0, -ENOENT
 * if the object has no such field, -EINVAL if json is not one valid object. */
static int json_field(const char *json, size_t len, const char *key, const char **vs,
                      const char **ve)
{
    struct jcur c = {json, json + len};
    *vs = *ve = NULL;
    skip_ws(&c);
    if (c.p >= c.end || *c.p != '{')
        return -EINVAL;
    int r = parse_object(&c, 0, key, vs, ve);
    if (r)
        return r;
    skip_ws(&c);
    if (c.p != c.end)
        return -EINVAL;
    return *vs ? 0 : -ENOENT;
}

/* An integer field: a JSON integer (no fraction or exponent) or a string of
 * digits, in [min, max]. */
static int json_int(const char *json, size_t len, const char *key, int64_t min, int64_t max,
                    int64_t *out)
{
    const char *vs, *ve;
    int r = json_field(json, len, key, &vs, &ve);
    if (r)
        return r;
    int neg = 0;
    if (*vs == '"') {
        vs++;
        ve--;
    } else if (*vs == '-') {
        neg = 1;
        vs++;
    }
    int64_t v;
    if (parse_decimal(vs, (size_t)(ve - vs), INT64_MAX, &v) || (ve - vs > 1 && *vs == '0'))
        return -EINVAL;
    v = neg ? -v : v;
    if (v < min || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

static int json_string(const char *json, size_t len, const char *key, char *out, size_t cap)
{
    const char *vs, *ve;
    int r = json_field(json, len, key, &vs, &ve);
    if (r)
        return r;
    struct jcur c = {vs, ve};
    return parse_string(&c, out, cap) ? -EINVAL : 0;
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
    if (parse_decimal(text, len, INT32_MAX, &v))
        return -EINVAL;
    *epoch = (int)v;
    return 0;
}
