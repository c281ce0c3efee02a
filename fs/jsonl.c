/* jsonl.c - records as JSON lines (jsonl.h). */
#include "jsonl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int reserve(struct text_buf *b, size_t more)
{
    if (b->len + more <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more)
        cap *= 2;
    char *n = realloc(b->data, cap);
    if (!n)
        return -ENOMEM;
    b->data = n;
    b->cap = cap;
    return 0;
}

static void put(struct text_buf *b, const char *s, size_t n)
{
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

/* Length of the valid UTF-8 sequence at p, or 0. */
static size_t utf8_seq(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0) {
        len = 2;
        cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3;
        cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

static int valid_utf8(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(p + i, n - i);
        if (!k)
            return 0;
        i += k;
    }
    return 1;
}

static int put_string(struct text_buf *b, const uint8_t *p, size_t n)
{
    if (reserve(b, n * 6 + 2))
        return -ENOMEM;
    b->data[b->len++] = '"';
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        switch (c) {
        case '"':
            put(b, "\\\"", 2);
            break;
        case '\\':
            put(b, "\\\\", 2);
            break;
        case '\n':
            put(b, "\\n", 2);
            break;
        case '\r':
            put(b, "\\r", 2);
            break;
        case '\t':
            put(b, "\\t", 2);
            break;
        default:
            if (c < 0x20 || c == 0x7f) {
                char esc[8];
                snprintf(esc, sizeof(esc), "\\u%04x", c);
                put(b, esc, 6);
            } else {
                b->data[b->len++] = (char)c;
            }
        }
    }
    b->data[b->len++] = '"';
    return 0;
}

static int put_base64(struct text_buf *b, const uint8_t *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (reserve(b, (n + 2) / 3 * 4 + 2))
        return -ENOMEM;
    b->data[b->len++] = '"';
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        b->data[b->len++] = tab[(v >> 18) & 63];
        b->data[b->len++] = tab[(v >> 12) & 63];
        b->data[b->len++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        b->data[b->len++] = i + 2 < n ? tab[v & 63] : '=';
    }
    b->data[b->len++] = '"';
    return 0;
}

static int put_field(struct text_buf *b, const char *name, const uint8_t *p, size_t n)
{
    int utf8 = valid_utf8(p, n);
    char head[32];
    int len = snprintf(head, sizeof(head), ",\"%s%s\":", name, utf8 ? "" : "_base64");
    if (reserve(b, (size_t)len))
        return -ENOMEM;
    put(b, head, (size_t)len);
    return utf8 ? put_string(b, p, n) : put_base64(b, p, n);
}

int jsonl_append(struct text_buf *b, const struct record_view *r)
{
    char head[96];
    int len = snprintf(head, sizeof(head), "{\"offset\":%" PRIu64 ",\"timestamp\":%" PRId64,
                       r->offset, r->timestamp);
    if (reserve(b, (size_t)len + 16))
        return -ENOMEM;
    put(b, head, (size_t)len);
    int e;
    if (r->key_len < 0) {
        put(b, ",\"key\":null", 11);
    } else if ((e = put_field(b, "key", r->value, (size_t)r->key_len))) {
        return e;
    }
    if ((e = put_field(b, "value", r->value, r->value_len)))
        return e;
    if (reserve(b, 2))
        return -ENOMEM;
    put(b, "}\n", 2);
    return 0;
}

void text_buf_drop(struct text_buf *b, size_t n)
{
    if (n > b->len)
        n = b->len;
    if (n == 0)
        return; /* data may be NULL: no memmove with it */
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void text_buf_free(struct text_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}
