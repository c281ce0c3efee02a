/* json.c - the JSON reader and writer of the znodes (json.h).
 *
 * The reader is a strict recursive-descent parser: parse_value consumes one
 * value at a cursor and says whether it was valid; json_field runs it over
 * a whole document and keeps the span of the field it was asked for. The
 * iterators walk an object or array one member at a time with the same
 * functions, so each member they hand out has been checked whole. */
#include "json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int json_decimal(const char *s, size_t n, int64_t max, int64_t *out)
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
 * this level; the last one if repeated) goes to *v. */
static int parse_object(struct jcur *c, int depth, const char *key, struct json_span *v)
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
            v->p = start;
            v->end = c->p;
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
        return parse_object(c, depth, NULL, NULL);
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

int json_field(const char *json, size_t len, const char *key, struct json_span *v)
{
    struct jcur c = {json, json + len};
    v->p = v->end = NULL;
    skip_ws(&c);
    if (c.p >= c.end || *c.p != '{')
        return -EINVAL;
    int r = parse_object(&c, 0, key, v);
    if (r)
        return r;
    skip_ws(&c);
    if (c.p != c.end)
        return -EINVAL;
    return v->p ? 0 : -ENOENT;
}

int json_span_int(struct json_span v, int64_t min, int64_t max, int64_t *out)
{
    const char *vs = v.p, *ve = v.end;
    int neg = 0;
    if (ve - vs >= 2 && *vs == '"' && ve[-1] == '"') {
        vs++;
        ve--;
    } else if (vs < ve && *vs == '-') {
        neg = 1;
        vs++;
    }
    int64_t n;
    if (json_decimal(vs, (size_t)(ve - vs), INT64_MAX, &n) || (ve - vs > 1 && *vs == '0'))
        return -EINVAL;
    n = neg ? -n : n;
    if (n < min || n > max)
        return -EINVAL;
    *out = n;
    return 0;
}

int json_span_string(struct json_span v, char *out, size_t cap)
{
    struct jcur c = {v.p, v.end};
    int r = parse_string(&c, out, cap);
    if (r)
        return r;
    return c.p == c.end ? 0 : -EINVAL;
}

int json_int(const char *json, size_t len, const char *key, int64_t min, int64_t max, int64_t *out)
{
    struct json_span v;
    int r = json_field(json, len, key, &v);
    return r ? r : json_span_int(v, min, max, out);
}

int json_string(const char *json, size_t len, const char *key, char *out, size_t cap)
{
    struct json_span v;
    int r = json_field(json, len, key, &v);
    return r ? r : json_span_string(v, out, cap) ? -EINVAL : 0;
}

static int iter_begin(struct json_span v, struct json_iter *it, char open)
{
    struct jcur c = {v.p, v.end};
    skip_ws(&c);
    if (c.p >= c.end || *c.p != open)
        return -EINVAL;
    it->p = c.p + 1;
    it->end = v.end;
    it->depth = 1;
    it->started = 0;
    return 0;
}

int json_object_begin(struct json_span v, struct json_iter *it)
{
    return iter_begin(v, it, '{');
}

int json_array_begin(struct json_span v, struct json_iter *it)
{
    return iter_begin(v, it, '[');
}

/* Before the next member: 1 if there is one (cursor at it), 0 at the
 * closing bracket (consumed), or -EINVAL. */
static int iter_step(struct json_iter *it, struct jcur *c, char close)
{
    c->p = it->p;
    c->end = it->end;
    skip_ws(c);
    if (c->p < c->end && *c->p == close) {
        it->p = c->p + 1;
        it->end = it->p; /* nothing after the end */
        return 0;
    }
    if (it->started) {
        if (c->p >= c->end || *c->p != ',')
            return -EINVAL;
        c->p++;
        skip_ws(c);
    }
    it->started = 1;
    return 1;
}

int json_object_next(struct json_iter *it, char *name, size_t cap, struct json_span *v)
{
    struct jcur c;
    int r = iter_step(it, &c, '}');
    if (r <= 0)
        return r;
    int nr = parse_string(&c, name, cap);
    if (nr && nr != -ENAMETOOLONG)
        return nr;
    skip_ws(&c);
    if (c.p >= c.end || *c.p != ':')
        return -EINVAL;
    c.p++;
    skip_ws(&c);
    v->p = c.p;
    if ((r = parse_value(&c, it->depth)))
        return r;
    v->end = c.p;
    it->p = c.p;
    return nr ? nr : 1;
}

int json_array_next(struct json_iter *it, struct json_span *v)
{
    struct jcur c;
    int r = iter_step(it, &c, ']');
    if (r <= 0)
        return r;
    v->p = c.p;
    if ((r = parse_value(&c, it->depth)))
        return r;
    v->end = c.p;
    it->p = c.p;
    return 1;
}

static void out_reserve(struct json_out *o, size_t n)
{
    if (o->err || o->len + n + 1 <= o->cap)
        return;
    size_t cap = o->cap ? o->cap : 256;
    while (cap < o->len + n + 1)
        cap *= 2;
    char *b = realloc(o->buf, cap);
    if (!b) {
        o->err = -ENOMEM;
        return;
    }
    o->buf = b;
    o->cap = cap;
}

void json_out_raw(struct json_out *o, const char *s, size_t n)
{
    out_reserve(o, n);
    if (o->err)
        return;
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

void json_out_printf(struct json_out *o, const char *fmt, ...)
{
    char small[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        o->err = o->err ? o->err : -EINVAL;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        json_out_raw(o, small, (size_t)n);
        return;
    }
    out_reserve(o, (size_t)n);
    if (o->err)
        return;
    va_start(ap, fmt);
    vsnprintf(o->buf + o->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    o->len += (size_t)n;
}

void json_out_string(struct json_out *o, const char *s, size_t n)
{
    json_out_raw(o, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            char e[2] = {'\\', (char)ch};
            json_out_raw(o, e, 2);
        } else if (ch < 0x20) {
            json_out_printf(o, "\\u%04x", ch);
        } else {
            json_out_raw(o, (const char *)&s[i], 1);
        }
    }
    json_out_raw(o, "\"", 1);
}

int json_out_finish(struct json_out *o, char **text, size_t *len)
{
    out_reserve(o, 0);
    if (o->err) {
        free(o->buf);
        *o = (struct json_out){0};
        return -ENOMEM;
    }
    *text = o->buf;
    *len = o->len;
    *o = (struct json_out){0};
    return 0;
}
