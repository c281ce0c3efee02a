/* framing.c - splitting appended bytes into records (framing.h). */
#include "framing.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

void framing_rules_of(const struct topic_config *c, struct framing_rules *r)
{
    r->framing = c->framing;
    r->key_sep = c->key_separator;
    r->key_sep_len = strlen(c->key_separator);
    r->max_record = (size_t)c->max_message_bytes;
}

int32_t framing_key_len(const struct framing_rules *rules, const char *rec, size_t len)
{
    if (!rules->key_sep_len)
        return -1;
    if (len && rec[len - 1] == '\n')
        len--;
    const char *at = memmem(rec, len, rules->key_sep, rules->key_sep_len);
    return at ? (int32_t)(at - rec) : -1;
}

static int push(struct record_list *l, const struct framing_rules *rules, const char *data,
                size_t len)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        struct record_ref *n = realloc(l->r, cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        l->r = n;
        l->cap = cap;
    }
    l->r[l->n].data = data;
    l->r[l->n].len = (uint32_t)len;
    l->r[l->n].key_len = framing_key_len(rules, data, len);
    l->n++;
    return 0;
}

static int reserve(struct pending *pd, size_t need)
{
    if (need <= pd->cap)
        return 0;
    size_t cap = pd->cap ? pd->cap : 256;
    while (cap < need)
        cap *= 2;
    char *n = realloc(pd->buf, cap);
    if (!n)
        return -ENOMEM;
    pd->buf = n;
    pd->cap = cap;
    return 0;
}

int framing_split(const struct framing_rules *rules, struct pending *pd, const char *data,
                  size_t len, struct record_list *out, size_t *tail)
{
    size_t start_n = out->n;
    int r;
    if (rules->framing == FRAMING_WRITE) {
        *tail = len;
        if (len == 0)
            return 0;
        if (len > rules->max_record)
            return -EMSGSIZE;
        /* A line held from before framing=write was set is a record first. */
        if (pd->len && (r = push(out, rules, pd->buf, pd->len)))
            return r;
        if ((r = push(out, rules, data, len))) {
            out->n = start_n;
            return r;
        }
        return 0;
    }
    if (pd->refused)
        return -EMSGSIZE;
    if (pd->resend_len && len >= pd->resend_len &&
        XXH3_64bits(data, pd->resend_len) == pd->resend_hash)
        return -EMSGSIZE;
    const char *end = data + len;
    const char *nl = memchr(data, '\n', len);
    if (!nl) {
        *tail = 0;
        return pd->len + len > rules->max_record ? -EMSGSIZE : 0;
    }
    const char *p = data;
    if (pd->len) {
        size_t first = (size_t)(nl - data) + 1;
        if (pd->len + first > rules->max_record)
            return -EMSGSIZE;
        if ((r = reserve(pd, pd->len + first)))
            return r;
        memcpy(pd->buf + pd->len, data, first); /* scratch beyond pd->len */
        if ((r = push(out, rules, pd->buf, pd->len + first)))
            return r;
        p = nl + 1;
    }
    while (p < end) {
        nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break;
        size_t n = (size_t)(nl - p) + 1;
        if (n > rules->max_record) {
            out->n = start_n;
            return -EMSGSIZE;
        }
        if ((r = push(out, rules, p, n))) {
            out->n = start_n;
            return r;
        }
        p = nl + 1;
    }
    if ((size_t)(end - p) > rules->max_record) {
        out->n = start_n;
        return -EMSGSIZE;
    }
    *tail = (size_t)(p - data);
    return 0;
}

void framing_refuse(const struct framing_rules *rules, struct pending *pd, const char *data,
                    size_t len)
{
    if (rules->framing != FRAMING_LINE)
        return;
    const char *first = memchr(data, '\n', len), *last = memrchr(data, '\n', len);
    size_t open_len;
    if (last)
        open_len = len - (size_t)(last + 1 - data);
    else
        open_len = pd->refused ? rules->max_record + 1 : pd->len + len;
    pd->resend_len = 0;
    if (pd->len && first) {
        pd->resend_len = (size_t)(first + 1 - data);
        pd->resend_hash = XXH3_64bits(data, pd->resend_len);
    }
    pd->refused = open_len > rules->max_record;
    pd->len = 0;
}

int framing_commit(struct pending *pd, const char *data, size_t len, size_t tail, int completed)
{
    pd->resend_len = 0;
    pd->refused = 0; /* a stored write ends a refused line (framing=write) */
    if (completed)
        pd->len = 0;
    size_t n = len - tail;
    if (!n)
        return 0;
    int r = reserve(pd, pd->len + n);
    if (r)
        return r;
    memcpy(pd->buf + pd->len, data + tail, n);
    pd->len += n;
    return 0;
}

int framing_take_pending(const struct framing_rules *rules, struct pending *pd,
                         struct record_list *out)
{
    if (!pd->len)
        return 0;
    return push(out, rules, pd->buf, pd->len);
}

void pending_free(struct pending *pd)
{
    free(pd->buf);
    pd->buf = NULL;
    pd->len = pd->cap = 0;
}

void record_list_free(struct record_list *l)
{
    free(l->r);
    l->r = NULL;
    l->n = l->cap = 0;
}
