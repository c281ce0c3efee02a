/* test_parsers.c - the fs/ parsers that need no mount:
 *
 *  - framing (framing.h): line framing across arbitrary write boundaries,
 *    the pending partial line and its release at close/fsync, write framing,
 *    keys before key.separator, max.message.bytes (EMSGSIZE, nothing added
 *    and pending untouched on failure), and a seeded fuzz loop checking that
 *    random write splits always give the same records and the same bytes;
 *  - jsonl (jsonl.h): the exact line for simple records, "key":null, the
 *    escapes of control characters, quotes and backslashes, raw valid UTF-8,
 *    and key_base64/value_base64 for bytes that are not UTF-8; a fuzz loop
 *    parses every line with a small JSON checker written here and decodes
 *    each field back to the original bytes;
 *  - node names (nodes.h): topic children (p<N>, dot files, p0@<from>,
 *    .jsonl), rejected names, node_parse_time (ISO 8601, offsets, fractions,
 *    leap days, t<ms>), group children and the node id packing helpers;
 *  - hidden nodes (hidden.h): add/get/forget/count/clear bookkeeping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "framing.h"
#include "hidden.h"
#include "jsonl.h"
#include "nodes.h"

/* ---- small deterministic PRNG (splitmix64) ---- */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static size_t rng_below(size_t n)
{
    return n ? (size_t)(rng_next() % n) : 0;
}

/* ---- framing helpers ---- */

static struct framing_rules line_rules(const char *sep, size_t max)
{
    struct framing_rules r = {FRAMING_LINE, sep, strlen(sep), max};
    return r;
}

/* Records copied out of a record_list (whose refs point into buffers that
 * the next write reuses). */
struct rec {
    char *data;
    size_t len;
    int32_t key_len;
};

struct recs {
    struct rec r[512];
    size_t n;
};

static void recs_add(struct recs *out, const struct record_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        assert_true(out->n < sizeof(out->r) / sizeof(out->r[0]));
        struct rec *r = &out->r[out->n++];
        r->len = l->r[i].len;
        r->data = malloc(r->len ? r->len : 1);
        assert_non_null(r->data);
        memcpy(r->data, l->r[i].data, r->len);
        r->key_len = l->r[i].key_len;
    }
}

static void recs_free(struct recs *out)
{
    for (size_t i = 0; i < out->n; i++)
        free(out->r[i].data);
    out->n = 0;
}

/* One write() on a partition handle, as fs/write.c does it: split, store the
 * completed records, then commit; a line refused for its size is dropped. */
static int feed(const struct framing_rules *rules, struct pending *pd, const char *data, size_t len,
                struct recs *out)
{
    struct record_list l = {0};
    size_t tail = 0;
    int r = framing_split(rules, pd, data, len, &l, &tail);
    if (r == -EMSGSIZE)
        framing_refuse(rules, pd, data, len);
    if (r) {
        assert_int_equal(l.n, 0);
        record_list_free(&l);
        return r;
    }
    recs_add(out, &l);
    r = framing_commit(pd, data, len, tail, l.n > 0);
    record_list_free(&l);
    return r;
}

/* close/fsync: the partial line becomes a record. */
static void close_handle(const struct framing_rules *rules, struct pending *pd, struct recs *out)
{
    struct record_list l = {0};
    assert_int_equal(framing_take_pending(rules, pd, &l), 0);
    recs_add(out, &l);
    record_list_free(&l);
    pd->len = 0;
}

static void assert_rec(const struct recs *rs, size_t i, const char *s, int32_t key_len)
{
    assert_true(i < rs->n);
    assert_int_equal(rs->r[i].len, strlen(s));
    assert_memory_equal(rs->r[i].data, s, strlen(s));
    assert_int_equal(rs->r[i].key_len, key_len);
}

static void test_framing_rules_of(void **state)
{
    (void)state;
    struct topic_config c;
    config_defaults(&c, 1);
    struct framing_rules r;
    framing_rules_of(&c, &r);
    assert_int_equal(r.framing, FRAMING_LINE);
    assert_int_equal(r.key_sep_len, 0);
    assert_int_equal(r.max_record, (size_t)c.max_message_bytes);
    assert_int_equal(config_set(&c, "key.separator", "::"), 0);
    assert_int_equal(config_set(&c, "framing", "write"), 0);
    assert_int_equal(config_set(&c, "max.message.bytes", "100"), 0);
    framing_rules_of(&c, &r);
    assert_int_equal(r.framing, FRAMING_WRITE);
    assert_int_equal(r.key_sep_len, 2);
    assert_string_equal(r.key_sep, "::");
    assert_int_equal(r.max_record, 100);
}

static void test_line_framing_three_records(void **state)
{
    (void)state;
    struct framing_rules rules = line_rules("", 1 << 20);
    struct pending pd = {0};
    struct recs rs = {0};
    assert_int_equal(feed(&rules, &pd, "a\nb\nc\n", 6, &rs), 0);
    assert_int_equal(rs.n, 3);
    assert_rec(&rs, 0, "a\n", -1);
    assert_rec(&rs, 1, "b\n", -1);
    assert_rec(&rs, 2, "c\n", -1);
    assert_int_equal(pd.len, 0);
    /* nothing is left for close */
    close_handle(&rules, &pd, &rs);
    assert_int_equal(rs.n, 3);
    /* empty lines are records of one byte */
    assert_int_equal(feed(&rules, &pd, "\n\n", 2, &rs), 0);
    assert_int_equal(rs.n, 5);
    assert_rec(&rs, 3, "\n", -1);
    assert_rec(&rs, 4, "\n", -1);
    /* an empty write does nothing */
    assert_int_equal(feed(&rules, &pd, "", 0, &rs), 0);
    assert_int_equal(rs.n, 5);
    assert_int_equal(pd.len, 0);
    recs_free(&rs);
    pending_free(&pd);
}

static void test_line_split_across_writes(void **state)
{
    (void)state;
    struct framing_rules rules = line_rules("", 1 << 20);
    struct pending pd = {0};
    struct recs rs = {0};
    assert_int_equal(feed(&rules, &pd, "hel", 3, &rs), 0);
    assert_int_equal(rs.n, 0);
    assert_int_equal(pd.len, 3);
    assert_int_equal(feed(&rules, &pd, "lo\nwo", 5, &rs), 0);
    assert_int_equal(rs.n, 1);
    assert_rec(&rs, 0, "hello\n", -1);
    assert_int_equal(pd.len, 2);
    assert_memory_equal(pd.buf, "wo", 2);
    assert_int_equal(feed(&rules, &pd, "rld\n", 4, &rs), 0);
    assert_int_equal(rs.n, 2);
    assert_rec(&rs, 1, "world\n", -1);
    assert_int_equal(pd.len, 0);
    /* a line spread over many writes, several without a newline */
    assert_int_equal(feed(&rules, &pd, "a", 1, &rs), 0);
    assert_int_equal(feed(&rules, &pd, "b", 1, &rs), 0);
    assert_int_equal(feed(&rules, &pd, "c", 1, &rs), 0);
    assert_int_equal(rs.n, 2);
    assert_int_equal(feed(&rules, &pd, "\nx\ny", 4, &rs), 0);
    assert_int_equal(rs.n, 4);
    assert_rec(&rs, 2, "abc\n", -1);
    assert_rec(&rs, 3, "x\n", -1);
    assert_int_equal(pd.len, 1);
    recs_free(&rs);
    pending_free(&pd);
}

static void test_pending_released_at_close(void **state)
{
    (void)state;
    struct framing_rules rules = line_rules(":", 1 << 20);
    struct pending pd = {0};
    struct recs rs = {0};
    assert_int_equal(feed(&rules, &pd, "k:one\nk2:par", 12, &rs), 0);
    assert_int_equal(rs.n, 1);
    assert_rec(&rs, 0, "k:one\n", 1);
    assert_int_equal(feed(&rules, &pd, "tial", 4, &rs), 0);
    assert_int_equal(rs.n, 1);
    /* fsync/close: the partial line is a record, without a newline added */
    close_handle(&rules, &pd, &rs);
    assert_int_equal(rs.n, 2);
    assert_rec(&rs, 1, "k2:partial", 2);
    /* take_pending on an empty pending adds nothing */
    struct record_list l = {0};
    assert_int_equal(framing_take_pending(&rules, &pd, &l), 0);
    assert_int_equal(l.n, 0);
    record_list_free(&l);
    /* the next line starts fresh */
    assert_int_equal(feed(&rules, &pd, "next\n", 5, &rs), 0);
    assert_rec(&rs, 2, "next\n", -1);
    recs_free(&rs);
    pending_free(&pd);
}

/* framing_split must not touch pending: a failed store leaves the handle
 * as it was, and a retry of the same write gives the same records. */
static void test_split_leaves_pending(void **state)
{
    (void)state;
    struct framing_rules rules = line_rules("", 1 << 20);
    struct pending pd = {0};
    struct recs rs = {0};
    assert_int_equal(feed(&rules, &pd, "abc", 3, &rs), 0);
    for (int attempt = 0; attempt < 2; attempt++) {
        struct record_list l = {0};
        size_t tail = 99;
        assert_int_equal(framing_split(&rules, &pd, "def\ngh", 6, &l, &tail), 0);
        assert_int_equal(l.n, 1);
        assert_int_equal(l.r[0].len, 7);
        assert_memory_equal(l.r[0].data, "abcdef\n", 7);
        assert_int_equal(tail, 4);
        assert_int_equal(pd.len, 3);
        assert_memory_equal(pd.buf, "abc", 3);
        record_list_free(&l);
    }
    assert_int_equal(feed(&rules, &pd, "def\ngh", 6, &rs), 0);
    assert_rec(&rs, 0, "abcdef\n", -1);
    assert_int_equal(pd.len, 2);
    assert_memory_equal(pd.buf, "gh", 2);
    recs_free(&rs);
    pending_free(&pd);
}

static void test_write_framing(void **state)
{
    (void)state;
    struct framing_rules rules = {FRAMING_WRITE, ":", 1, 8};
    struct pending pd = {0};
    struct recs rs = {0};
    assert_int_equal(feed(&rules, &pd, "a\nb\n", 4, &rs), 0);
    assert_int_equal(rs.n, 1);
    assert_rec(&rs, 0, "a\nb\n", -1);
    assert_int_equal(feed(&rules, &pd, "no-nl", 5, &rs), 0);
    assert_int_equal(rs.n, 2);
    assert_rec(&rs, 1, "no-nl", -1);
    assert_int_equal(pd.len, 0);
    assert_int_equal(feed(&rules, &pd, "k:v\n", 4, &rs), 0);
    assert_rec(&rs, 2, "k:v\n", 1);
    assert_int_equal(feed(&rules, &pd, "", 0, &rs), 0);
    assert_int_equal(rs.n, 3);
    /* max.message.bytes: 8 fits, 9 does not */
    assert_int_equal(feed(&rules, &pd, "12345678", 8, &rs), 0);
    assert_int_equal(rs.n, 4);
    assert_int_equal(feed(&rules, &pd, "123456789", 9, &rs), -EMSGSIZE);
    assert_int_equal(rs.n, 4);
    assert_int_equal(pd.len, 0);
    recs_free(&rs);
    pending_free(&pd);
}

/* A line held under line framing is not lost when framing=write is set
 * before the next write: it becomes a record of its own, first. */
static void test_pending_kept_when_framing_changes(void **state)
{
    (void)state;
    struct framing_rules line = line_rules(":", 1 << 20);
    struct framing_rules write = {FRAMING_WRITE, ":", 1, 1 << 20};
    struct pending pd = {0};
    struct recs rs = {0};
    assert_int_equal(feed(&line, &pd, "ab", 2, &rs), 0);
    assert_int_equal(rs.n, 0);
    assert_int_equal(pd.len, 2);
    assert_int_equal(feed(&write, &pd, "cd\n", 3, &rs), 0);
    assert_int_equal(rs.n, 2);
    assert_rec(&rs, 0, "ab", -1);
    assert_rec(&rs, 1, "cd\n", -1);
    assert_int_equal(pd.len, 0);
    recs_free(&rs);
    pending_free(&pd);
}

static void test_key_len(void **state)
{
    (void)state;
    struct framing_rules colon = line_rules(":", 1 << 20);
    struct framing_rules none = line_rules("", 1 << 20);
    struct framing_rules two = line_rules("::", 1 << 20);
    assert_int_equal(framing_key_len(&colon, "user42:hello\n", 13), 6);
    assert_int_equal(framing_key_len(&colon, "hello\n", 6), -1);
    assert_int_equal(framing_key_len(&colon, ":hello\n", 7), 0);
    assert_int_equal(framing_key_len(&colon, "a:b:c\n", 6), 1); /* first separator */
    assert_int_equal(framing_key_len(&colon, "user42:", 7), 6); /* no newline */
    assert_int_equal(framing_key_len(&colon, "", 0), -1);
    /* the length is honoured: the separator beyond it does not count */
    assert_int_equal(framing_key_len(&colon, "abc:d", 3), -1);
    /* no separator configured: never a key */
    assert_int_equal(framing_key_len(&none, "user42:hello\n", 13), -1);
    /* multi-byte separator */
    assert_int_equal(framing_key_len(&two, "a:b::c\n", 7), 3);
    assert_int_equal(framing_key_len(&two, "a:b:c\n", 6), -1);
    /* records from split carry their key length */
    struct pending pd = {0};
    struct recs rs = {0};
    assert_int_equal(feed(&colon, &pd, "user42:hello\nplain\n:empty\n", 26, &rs), 0);
    assert_int_equal(rs.n, 3);
    assert_rec(&rs, 0, "user42:hello\n", 6);
    assert_rec(&rs, 1, "plain\n", -1);
    assert_rec(&rs, 2, ":empty\n", 0);
    /* a key completed by a later write */
    assert_int_equal(feed(&colon, &pd, "us", 2, &rs), 0);
    assert_int_equal(feed(&colon, &pd, "er:x\n", 5, &rs), 0);
    assert_rec(&rs, 3, "user:x\n", 4);
    recs_free(&rs);
    pending_free(&pd);
}

static void test_line_max_message_bytes(void **state)
{
    (void)state;
    struct framing_rules rules = line_rules("", 4);
    struct pending pd = {0};
    struct recs rs = {0};
    /* exactly max fits, one more does not */
    assert_int_equal(feed(&rules, &pd, "abc\n", 4, &rs), 0);
    assert_int_equal(rs.n, 1);
    assert_int_equal(feed(&rules, &pd, "abcd\n", 5, &rs), -EMSGSIZE);
    assert_int_equal(rs.n, 1);
    assert_int_equal(pd.len, 0);
    /* a good line before a too long one: nothing of the write is added */
    struct record_list l = {0};
    size_t tail;
    assert_int_equal(framing_split(&rules, &pd, "ab\ncdefg\n", 9, &l, &tail), -EMSGSIZE);
    assert_int_equal(l.n, 0);
    /* records already in the list stay, none are added */
    assert_int_equal(framing_split(&rules, &pd, "x\n", 2, &l, &tail), 0);
    assert_int_equal(l.n, 1);
    assert_int_equal(framing_split(&rules, &pd, "ab\ncdefg\n", 9, &l, &tail), -EMSGSIZE);
    assert_int_equal(l.n, 1);
    /* a too long partial tail */
    assert_int_equal(framing_split(&rules, &pd, "ab\ncdefg", 8, &l, &tail), -EMSGSIZE);
    assert_int_equal(l.n, 1);
    record_list_free(&l);
    /* the pending line counts: "ab" + "cd\n" is 5 bytes; the whole line is
     * refused, the held "ab" included */
    assert_int_equal(feed(&rules, &pd, "ab", 2, &rs), 0);
    assert_int_equal(feed(&rules, &pd, "cd\n", 3, &rs), -EMSGSIZE);
    assert_int_equal(pd.len, 0);
    assert_false(pd.refused); /* its '\n' was in the refused write */
    close_handle(&rules, &pd, &rs);
    assert_int_equal(rs.n, 1);
    /* "ab" may have been reported written (a short count): the rest of the
     * line sent again is refused too, once; other bytes are a new line */
    assert_int_equal(feed(&rules, &pd, "cd\nx\n", 5, &rs), -EMSGSIZE);
    assert_int_equal(feed(&rules, &pd, "cd\nx\n", 5, &rs), 0);
    assert_int_equal(rs.n, 3);
    assert_rec(&rs, 1, "cd\n", -1);
    assert_int_equal(feed(&rules, &pd, "ab", 2, &rs), 0);
    assert_int_equal(feed(&rules, &pd, "cd\n", 3, &rs), -EMSGSIZE);
    assert_int_equal(feed(&rules, &pd, "e\n", 2, &rs), 0);
    assert_int_equal(rs.n, 4);
    assert_rec(&rs, 3, "e\n", -1);
    /* a line that outgrows the limit without its '\n' (a big write() the
     * kernel cut into requests): every write up to its end is refused, the
     * one with its '\n' too, and nothing of it is ever a record */
    assert_int_equal(feed(&rules, &pd, "ab", 2, &rs), 0);
    assert_int_equal(feed(&rules, &pd, "cde", 3, &rs), -EMSGSIZE);
    assert_int_equal(pd.len, 0);
    assert_true(pd.refused);
    assert_int_equal(feed(&rules, &pd, "f", 1, &rs), -EMSGSIZE);
    close_handle(&rules, &pd, &rs); /* fsync: nothing is held */
    assert_int_equal(feed(&rules, &pd, "g\nxy\n", 6, &rs), -EMSGSIZE);
    assert_false(pd.refused);
    assert_int_equal(rs.n, 4);
    /* a too long partial tail after good lines: the write is refused and the
     * open line stays refused */
    assert_int_equal(feed(&rules, &pd, "ok\nlonger", 9, &rs), -EMSGSIZE);
    assert_true(pd.refused);
    assert_int_equal(feed(&rules, &pd, "er\n", 3, &rs), -EMSGSIZE);
    assert_int_equal(rs.n, 4);
    /* after the refusals the handle works as new */
    assert_int_equal(feed(&rules, &pd, "ab", 2, &rs), 0);
    assert_int_equal(feed(&rules, &pd, "c\n", 2, &rs), 0);
    assert_int_equal(rs.n, 5);
    assert_rec(&rs, 4, "abc\n", -1);
    assert_int_equal(pd.len, 0);
    /* framing=write ends a refused line: each write is its own record */
    assert_int_equal(feed(&rules, &pd, "abcde", 5, &rs), -EMSGSIZE);
    assert_true(pd.refused);
    struct framing_rules wr = rules;
    wr.framing = FRAMING_WRITE;
    assert_int_equal(feed(&wr, &pd, "w", 1, &rs), 0);
    assert_false(pd.refused);
    assert_int_equal(rs.n, 6);
    recs_free(&rs);
    pending_free(&pd);
}

static void test_line_framing_random_splits(void **state)
{
    (void)state;
    static const char text[] = "first line\n"
                               "\n"
                               "user42:keyed value\n"
                               "a\n"
                               "a much longer line that spans several of the small writes below\n"
                               "\n"
                               "\n"
                               "tab\tand \"quotes\"\n"
                               "last, unterminated";
    const size_t len = sizeof(text) - 1;
    struct framing_rules rules = line_rules(":", 1 << 20);

    /* the records, split by hand */
    struct recs want = {0};
    struct record_list l = {0};
    for (const char *p = text, *nl; (nl = memchr(p, '\n', (size_t)(text + len - p))); p = nl + 1) {
        struct record_ref ref = {p, (uint32_t)(nl - p + 1), 0};
        l.r = &ref;
        l.n = 1;
        recs_add(&want, &l);
        want.r[want.n - 1].key_len = framing_key_len(&rules, p, ref.len);
    }
    l.r = NULL;
    l.n = 0;
    {
        const char *last = strrchr(text, '\n') + 1;
        struct record_ref ref = {last, (uint32_t)strlen(last), -1};
        l.r = &ref;
        l.n = 1;
        recs_add(&want, &l);
        l.r = NULL;
        l.n = 0;
    }
    assert_int_equal(want.n, 9);
    assert_int_equal(want.r[2].key_len, 6);

    rng_state = 20261123;
    for (int iter = 0; iter < 3000; iter++) {
        struct pending pd = {0};
        struct recs got = {0};
        size_t pos = 0;
        while (pos < len) {
            /* mostly short writes, sometimes empty, sometimes long */
            size_t n = rng_below(4) == 0 ? rng_below(len - pos + 1) : rng_below(6);
            if (n > len - pos)
                n = len - pos;
            assert_int_equal(feed(&rules, &pd, text + pos, n, &got), 0);
            pos += n;
        }
        close_handle(&rules, &pd, &got);
        assert_int_equal(got.n, want.n);
        size_t at = 0;
        for (size_t i = 0; i < got.n; i++) {
            assert_int_equal(got.r[i].len, want.r[i].len);
            assert_memory_equal(got.r[i].data, want.r[i].data, want.r[i].len);
            assert_int_equal(got.r[i].key_len, want.r[i].key_len);
            /* no torn records: every record but the last ends in '\n' */
            if (i + 1 < got.n)
                assert_int_equal(got.r[i].data[got.r[i].len - 1], '\n');
            /* what you append is what you read back */
            assert_memory_equal(got.r[i].data, text + at, got.r[i].len);
            at += got.r[i].len;
        }
        assert_int_equal(at, len);
        recs_free(&got);
        pending_free(&pd);
    }
    recs_free(&want);
}

/* ---- jsonl: a small JSON checker ---- */

/* Length of a valid UTF-8 sequence at p (RFC 3629), or 0. */
static size_t check_utf8(const unsigned char *p, size_t n)
{
    if (p[0] < 0x80)
        return 1;
    size_t len;
    uint32_t min, cp;
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        len = 2, min = 0x80, cp = p[0] & 0x1f;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        len = 3, min = 0x800, cp = p[0] & 0x0f;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        len = 4, min = 0x10000, cp = p[0] & 0x07;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000))
        return 0;
    return len;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static size_t put_utf8(unsigned char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xc0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xe0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

struct jparse {
    const char *p, *end;
};

/* Reads four hex digits after "\u". */
static int read_u4(struct jparse *j, uint32_t *v)
{
    if (j->end - j->p < 4)
        return -1;
    *v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(j->p[i]);
        if (h < 0)
            return -1;
        *v = *v << 4 | (uint32_t)h;
    }
    j->p += 4;
    return 0;
}

/* A JSON string at j->p; decoded into out (malloc'd, may be NULL). */
static int parse_string(struct jparse *j, unsigned char **out, size_t *out_len)
{
    if (j->p >= j->end || *j->p != '"')
        return -1;
    j->p++;
    unsigned char *o = malloc((size_t)(j->end - j->p) * 4 + 1);
    assert_non_null(o);
    size_t n = 0;
    for (;;) {
        if (j->p >= j->end)
            goto bad;
        unsigned char c = (unsigned char)*j->p;
        if (c == '"') {
            j->p++;
            break;
        }
        if (c < 0x20)
            goto bad; /* raw control characters are not allowed */
        if (c == '\\') {
            if (++j->p >= j->end)
                goto bad;
            char e = *j->p++;
            uint32_t cp;
            switch (e) {
            case '"':
                o[n++] = '"';
                break;
            case '\\':
                o[n++] = '\\';
                break;
            case '/':
                o[n++] = '/';
                break;
            case 'b':
                o[n++] = '\b';
                break;
            case 'f':
                o[n++] = '\f';
                break;
            case 'n':
                o[n++] = '\n';
                break;
            case 'r':
                o[n++] = '\r';
                break;
            case 't':
                o[n++] = '\t';
                break;
            case 'u':
                if (read_u4(j, &cp))
                    goto bad;
                if (cp >= 0xdc00 && cp < 0xe000)
                    goto bad;
                if (cp >= 0xd800 && cp < 0xdc00) {
                    uint32_t lo;
                    if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u')
                        goto bad;
                    j->p += 2;
                    if (read_u4(j, &lo) || lo < 0xdc00 || lo >= 0xe000)
                        goto bad;
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                }
                n += put_utf8(o + n, cp);
                break;
            default:
                goto bad;
            }
            continue;
        }
        size_t k = check_utf8((const unsigned char *)j->p, (size_t)(j->end - j->p));
        if (!k)
            goto bad;
        memcpy(o + n, j->p, k);
        n += k;
        j->p += k;
    }
    if (out) {
        *out = o;
        *out_len = n;
    } else {
        free(o);
    }
    return 0;
bad:
    free(o);
    return -1;
}

/* Standard base64 with padding to bytes; -1 if malformed. */
static int base64_decode(const unsigned char *s, size_t n, unsigned char *out, size_t *out_len)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (n % 4)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        uint32_t v = 0;
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            unsigned char c = s[i + k];
            if (c == '=' && i + 4 == n && k >= 2) {
                pad++;
                v <<= 6;
                continue;
            }
            if (pad)
                return -1;
            const char *at = c ? strchr(tab, c) : NULL;
            if (!at)
                return -1;
            v = v << 6 | (uint32_t)(at - tab);
        }
        out[o++] = (unsigned char)(v >> 16);
        if (pad < 2)
            out[o++] = (unsigned char)(v >> 8);
        if (pad < 1)
            out[o++] = (unsigned char)v;
    }
    *out_len = o;
    return 0;
}

struct jrecord {
    uint64_t offset;
    int64_t timestamp;
    int has_offset, has_timestamp;
    int key_null, key_b64, value_b64;
    unsigned char *key, *value; /* decoded, malloc'd */
    size_t key_len, value_len;
    int nkey, nvalue;
};

/* A JSON integer: *neg and its magnitude (digits only, no leading zeros). */
static int parse_int(struct jparse *j, int *neg, uint64_t *mag)
{
    const char *s = j->p;
    *neg = 0;
    if (s < j->end && *s == '-')
        *neg = 1, s++;
    if (s >= j->end || *s < '0' || *s > '9' ||
        (*s == '0' && s + 1 < j->end && s[1] >= '0' && s[1] <= '9'))
        return -1;
    uint64_t u = 0;
    for (; s < j->end && *s >= '0' && *s <= '9'; s++) {
        if (u > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return -1;
        u = u * 10 + (uint64_t)(*s - '0');
    }
    *mag = u;
    j->p = s;
    return 0;
}

/* One line: a flat JSON object with our field names, then "\n", nothing else. */
static int parse_line(const char *line, size_t len, struct jrecord *r)
{
    memset(r, 0, sizeof(*r));
    struct jparse j = {line, line + len};
    if (len < 3 || line[len - 1] != '\n' || memchr(line, '\n', len - 1))
        return -1;
    j.end--;
    if (*j.p++ != '{')
        return -1;
    for (int first = 1;; first = 0) {
        if (j.p < j.end && *j.p == '}' && first)
            return -1; /* never an empty object */
        unsigned char *name;
        size_t name_len;
        if (parse_string(&j, &name, &name_len))
            return -1;
        char nm[32] = {0};
        if (name_len < sizeof(nm))
            memcpy(nm, name, name_len);
        free(name);
        if (j.p >= j.end || *j.p++ != ':')
            return -1;
        int ok;
        if (!strcmp(nm, "offset")) {
            int neg;
            ok = !parse_int(&j, &neg, &r->offset) && !neg && !r->has_offset;
            r->has_offset = 1;
        } else if (!strcmp(nm, "timestamp")) {
            int neg;
            uint64_t mag;
            ok = !parse_int(&j, &neg, &mag) && !r->has_timestamp &&
                 mag <= (neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX);
            r->timestamp = neg ? (int64_t)(0 - mag) : (int64_t)mag;
            r->has_timestamp = 1;
        } else if (!strcmp(nm, "key") || !strcmp(nm, "key_base64")) {
            r->nkey++;
            if (!strcmp(nm, "key") && j.end - j.p >= 4 && !memcmp(j.p, "null", 4)) {
                j.p += 4;
                r->key_null = 1;
                ok = 1;
            } else {
                r->key_b64 = nm[3] == '_';
                ok = !parse_string(&j, &r->key, &r->key_len);
            }
        } else if (!strcmp(nm, "value") || !strcmp(nm, "value_base64")) {
            r->nvalue++;
            r->value_b64 = nm[5] == '_';
            ok = !parse_string(&j, &r->value, &r->value_len);
        } else {
            return -1;
        }
        if (!ok)
            return -1;
        if (j.p >= j.end)
            return -1;
        if (*j.p == '}') {
            j.p++;
            break;
        }
        if (*j.p++ != ',')
            return -1;
    }
    if (j.p != j.end || !r->has_offset || !r->has_timestamp || r->nkey != 1 || r->nvalue != 1)
        return -1;
    /* base64 fields decoded in place */
    if (r->key_b64 && r->key) {
        unsigned char *d = malloc(r->key_len + 1);
        assert_non_null(d);
        size_t n;
        if (base64_decode(r->key, r->key_len, d, &n)) {
            free(d);
            return -1;
        }
        free(r->key);
        r->key = d;
        r->key_len = n;
    }
    if (r->value_b64) {
        unsigned char *d = malloc(r->value_len + 1);
        assert_non_null(d);
        size_t n;
        if (base64_decode(r->value, r->value_len, d, &n)) {
            free(d);
            return -1;
        }
        free(r->value);
        r->value = d;
        r->value_len = n;
    }
    return 0;
}

static void jrecord_free(struct jrecord *r)
{
    free(r->key);
    free(r->value);
    r->key = r->value = NULL;
}

/* jsonl_append of one record into a fresh buffer, as a C string. */
static char *one_line(uint64_t offset, int64_t ts, const void *value, size_t value_len,
                      int32_t key_len, size_t *len)
{
    struct text_buf b = {0};
    struct record_view rv = {offset, ts, value, (uint32_t)value_len, key_len, 0};
    assert_int_equal(jsonl_append(&b, &rv), 0);
    char *s = malloc(b.len + 1);
    assert_non_null(s);
    memcpy(s, b.data, b.len);
    s[b.len] = 0;
    if (len)
        *len = b.len;
    text_buf_free(&b);
    return s;
}

static void assert_line(uint64_t offset, int64_t ts, const char *value, size_t value_len,
                        int32_t key_len, const char *want)
{
    size_t len;
    char *s = one_line(offset, ts, value, value_len, key_len, &len);
    assert_string_equal(s, want);
    assert_int_equal(len, strlen(want));
    struct jrecord r;
    assert_int_equal(parse_line(s, len, &r), 0);
    jrecord_free(&r);
    free(s);
}

static void test_jsonl_simple(void **state)
{
    (void)state;
    assert_line(12, 1763892000000, "user42:hi\n", 10, 6,
                "{\"offset\":12,\"timestamp\":1763892000000,\"key\":\"user42\","
                "\"value\":\"user42:hi\\n\"}\n");
    /* no key: "key":null */
    assert_line(0, 5, "hello\n", 6, -1,
                "{\"offset\":0,\"timestamp\":5,\"key\":null,\"value\":\"hello\\n\"}\n");
    /* empty key, empty value */
    assert_line(1, 2, ":", 1, 0, "{\"offset\":1,\"timestamp\":2,\"key\":\"\",\"value\":\":\"}\n");
    assert_line(3, 4, "", 0, -1, "{\"offset\":3,\"timestamp\":4,\"key\":null,\"value\":\"\"}\n");
    /* extreme numbers */
    assert_line(UINT64_MAX, -1, "x", 1, -1,
                "{\"offset\":18446744073709551615,\"timestamp\":-1,\"key\":null,"
                "\"value\":\"x\"}\n");
    assert_line(0, INT64_MIN, "x", 1, -1,
                "{\"offset\":0,\"timestamp\":-9223372036854775808,\"key\":null,"
                "\"value\":\"x\"}\n");
}

static void test_jsonl_appends(void **state)
{
    (void)state;
    struct text_buf b = {0};
    struct record_view a = {7, 100, (const uint8_t *)"a\n", 2, -1, 0};
    struct record_view c = {8, 101, (const uint8_t *)"k=v", 3, 1, 0};
    assert_int_equal(jsonl_append(&b, &a), 0);
    assert_int_equal(jsonl_append(&b, &c), 0);
    const char *want = "{\"offset\":7,\"timestamp\":100,\"key\":null,\"value\":\"a\\n\"}\n"
                       "{\"offset\":8,\"timestamp\":101,\"key\":\"k\",\"value\":\"k=v\"}\n";
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
    text_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);

    /* a value that outgrows the buffer many times over when escaped */
    size_t n = 20000;
    uint8_t *v = malloc(n);
    assert_non_null(v);
    memset(v, '"', n);
    v[n - 1] = 0x01;
    struct record_view big = {1, 1, v, (uint32_t)n, -1, 0};
    assert_int_equal(jsonl_append(&b, &big), 0);
    const char *head = "{\"offset\":1,\"timestamp\":1,\"key\":null,\"value\":\"";
    assert_int_equal(b.len, strlen(head) + (n - 1) * 2 + 6 + 3);
    assert_memory_equal(b.data, head, strlen(head));
    assert_memory_equal(b.data + b.len - 9, "\\u0001\"}\n", 9);
    struct jrecord r;
    assert_int_equal(parse_line(b.data, b.len, &r), 0);
    assert_int_equal(r.value_len, n);
    assert_memory_equal(r.value, v, n);
    jrecord_free(&r);
    free(v);
    text_buf_free(&b);
}

static void test_jsonl_escapes(void **state)
{
    (void)state;
    /* quotes, backslash, the named escapes, other controls and DEL */
    static const char v[] = "q\"b\\n\nr\rt\tz\x01\x1f\x7f\b\f/";
    assert_line(0, 0, v, sizeof(v) - 1, -1,
                "{\"offset\":0,\"timestamp\":0,\"key\":null,"
                "\"value\":\"q\\\"b\\\\n\\nr\\rt\\tz\\u0001\\u001f\\u007f\\u0008\\u000c/\"}\n");
    /* NUL inside a value */
    assert_line(0, 0, "a\0b", 3, -1,
                "{\"offset\":0,\"timestamp\":0,\"key\":null,\"value\":\"a\\u0000b\"}\n");
    /* escapes apply to the key too */
    assert_line(0, 0, "a\"b\t:v", 6, 4,
                "{\"offset\":0,\"timestamp\":0,\"key\":\"a\\\"b\\t\",\"value\":\"a\\\"b\\t:v\"}\n");
    /* valid UTF-8 (2, 3 and 4 byte sequences) is kept as it is */
    assert_line(0, 0, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14, -1,
                "{\"offset\":0,\"timestamp\":0,\"key\":null,"
                "\"value\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}\n");
    assert_line(0, 0, "\xef\xbf\xbf\xf4\x8f\xbf\xbf", 7, -1, /* U+FFFF, U+10FFFF */
                "{\"offset\":0,\"timestamp\":0,\"key\":null,"
                "\"value\":\"\xef\xbf\xbf\xf4\x8f\xbf\xbf\"}\n");
}

static void test_jsonl_base64(void **state)
{
    (void)state;
    /* bytes that are not UTF-8: base64, with padding for 1, 2, 3 bytes */
    assert_line(0, 0, "\xff", 1, -1,
                "{\"offset\":0,\"timestamp\":0,\"key\":null,\"value_base64\":\"/w==\"}\n");
    assert_line(0, 0, "\xff\xfe", 2, -1,
                "{\"offset\":0,\"timestamp\":0,\"key\":null,\"value_base64\":\"//4=\"}\n");
    assert_line(0, 0, "k:\xff", 3, -1,
                "{\"offset\":0,\"timestamp\":0,\"key\":null,\"value_base64\":\"azr/\"}\n");
    /* a valid key with an invalid value, and an invalid key */
    assert_line(0, 0, "k:\xff", 3, 1,
                "{\"offset\":0,\"timestamp\":0,\"key\":\"k\",\"value_base64\":\"azr/\"}\n");
    assert_line(
        0, 0, "\xff:x", 3, 1,
        "{\"offset\":0,\"timestamp\":0,\"key_base64\":\"/w==\",\"value_base64\":\"/zp4\"}\n");
    /* overlong, surrogate, beyond U+10FFFF, truncated, stray continuation */
    static const struct {
        const char *in;
        size_t len;
        const char *b64;
    } bad[] = {
        {"\xc0\x80", 2, "wIA="},
        {"\xe0\x80\x80", 3, "4ICA"},
        {"\xed\xa0\x80", 3, "7aCA"},
        {"\xf4\x90\x80\x80", 4, "9JCAgA=="},
        {"\xe2\x82", 2, "4oI="},
        {"a\x80", 2, "YYA="},
        {"\xf8\x88\x80\x80\x80", 5, "+IiAgIA="},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char want[128];
        snprintf(want, sizeof(want),
                 "{\"offset\":0,\"timestamp\":0,\"key\":null,\"value_base64\":\"%s\"}\n",
                 bad[i].b64);
        assert_line(0, 0, bad[i].in, bad[i].len, -1, want);
    }
}

/* Random bytes (biased to text, controls and UTF-8 pieces) always give one
 * valid JSON line whose fields decode back to the record's bytes. */
static void test_jsonl_fuzz_roundtrip(void **state)
{
    (void)state;
    static const char *pieces[] = {"a",
                                   "Z",
                                   " ",
                                   "\"",
                                   "\\",
                                   "\n",
                                   "\r",
                                   "\t",
                                   "\x01",
                                   "\x7f",
                                   ":",
                                   "\xc3\xa9",
                                   "\xe2\x82\xac",
                                   "\xf0\x9f\x98\x80",
                                   "\xff",
                                   "\x80",
                                   "\xc3",
                                   "\xed\xa0\x80",
                                   "/",
                                   "{",
                                   "}"};
    const size_t npieces = sizeof(pieces) / sizeof(pieces[0]);
    rng_state = 42;
    int saw_b64 = 0, saw_text = 0, saw_nonascii_text = 0;
    for (int iter = 0; iter < 4000; iter++) {
        unsigned char v[256];
        size_t n = 0, want_pieces = rng_below(24);
        for (size_t k = 0; k < want_pieces; k++) {
            if (rng_below(8) == 0) {
                v[n++] = (unsigned char)rng_next();
            } else {
                const char *p = pieces[rng_below(npieces)];
                memcpy(v + n, p, strlen(p));
                n += strlen(p);
            }
        }
        int32_t key_len = rng_below(3) == 0 ? -1 : (int32_t)rng_below(n + 1);
        uint64_t off = rng_next() >> (rng_below(64));
        int64_t ts = (int64_t)(rng_next() >> 1) * (rng_below(2) ? 1 : -1);
        size_t len;
        char *s = one_line(off, ts, v, n, key_len, &len);
        struct jrecord r;
        if (parse_line(s, len, &r))
            fail_msg("not valid JSON (iteration %d): %s", iter, s);
        assert_int_equal(r.offset, off);
        assert_int_equal(r.timestamp, ts);
        assert_int_equal(r.value_len, n);
        assert_memory_equal(r.value, v, n);
        if (key_len < 0) {
            assert_true(r.key_null);
        } else {
            assert_false(r.key_null);
            assert_int_equal(r.key_len, (size_t)key_len);
            assert_memory_equal(r.key, v, (size_t)key_len);
        }
        /* base64 only when the bytes are not UTF-8 */
        int utf8 = 1;
        for (size_t i = 0; i < n;) {
            size_t k = check_utf8(v + i, n - i);
            if (!k) {
                utf8 = 0;
                break;
            }
            i += k;
        }
        assert_int_equal(r.value_b64, !utf8);
        saw_b64 |= r.value_b64;
        saw_text |= !r.value_b64;
        if (!r.value_b64)
            for (size_t i = 0; i < n; i++)
                saw_nonascii_text |= v[i] >= 0x80;
        jrecord_free(&r);
        free(s);
    }
    assert_true(saw_b64 && saw_text && saw_nonascii_text);
}

/* The checker itself must refuse what is not JSON, or the tests above
 * prove nothing. */
static void test_json_checker_refuses(void **state)
{
    (void)state;
    static const char *bad[] = {
        "{\"offset\":0,\"timestamp\":0,\"key\":null,\"value\":\"a\nb\"}\n",
        "{\"offset\":0,\"timestamp\":0,\"key\":null,\"value\":\"a\x01\"}\n",
        "{\"offset\":0,\"timestamp\":0,\"key\":null,\"value\":\"\\x\"}\n",
        "{\"offset\":0,\"timestamp\":0,\"key\":null,\"value\":\"\xff\"}\n",
        "{\"offset\":0,\"timestamp\":0,\"key\":null,\"value\":\"\\ud800\"}\n",
        "{\"offset\":0,\"timestamp\":0,\"key\":null,\"value\":\"a\"}",
        "{\"offset\":0,\"timestamp\":0,\"key\":null,\"value\":\"a}\n",
        "{\"offset\":01,\"timestamp\":0,\"key\":null,\"value\":\"a\"}\n",
        "{\"offset\":0,\"timestamp\":0,\"value\":\"a\"}\n",
        "{\"offset\":0,\"timestamp\":0,\"key\":null,\"value_base64\":\"/w=\"}\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct jrecord r;
        if (!parse_line(bad[i], strlen(bad[i]), &r)) {
            jrecord_free(&r);
            fail_msg("accepted: %s", bad[i]);
        }
        jrecord_free(&r);
    }
    struct jrecord r;
    const char *good = "{\"offset\":0,\"timestamp\":0,\"key\":null,\"value\":\"\\ud83d\\ude00\"}\n";
    assert_int_equal(parse_line(good, strlen(good), &r), 0);
    assert_int_equal(r.value_len, 4);
    assert_memory_equal(r.value, "\xf0\x9f\x98\x80", 4);
    jrecord_free(&r);
}

/* ---- node names ---- */

struct topic_case {
    const char *name;
    enum node_kind kind;
    uint32_t partition;
    int jsonl;
    int from;
    int64_t value;
};

static void test_topic_child_names(void **state)
{
    (void)state;
    static const struct topic_case ok[] = {
        {"p0", NODE_PARTITION, 0, 0, FROM_START, 0},
        {"p12", NODE_PARTITION, 12, 0, FROM_START, 0},
        {"p65535", NODE_PARTITION, 65535, 0, FROM_START, 0},
        {".produce", NODE_PRODUCE, 0, 0, FROM_START, 0},
        {".config", NODE_CONFIG, 0, 0, FROM_START, 0},
        {".info", NODE_INFO, 0, 0, FROM_START, 0},
        {".groups", NODE_GROUPS, 0, 0, FROM_START, 0},
        {"p0.jsonl", NODE_HIDDEN, 0, 1, FROM_START, 0},
        {"p7.jsonl", NODE_HIDDEN, 7, 1, FROM_START, 0},
        {"p0@1234", NODE_HIDDEN, 0, 0, FROM_OFFSET, 1234},
        {"p0@0", NODE_HIDDEN, 0, 0, FROM_OFFSET, 0},
        {"p3@9223372036854775807", NODE_HIDDEN, 3, 0, FROM_OFFSET, INT64_MAX},
        {"p0@-10", NODE_HIDDEN, 0, 0, FROM_LAST, 10},
        {"p0@2026-11-23T10:00:00Z", NODE_HIDDEN, 0, 0, FROM_TIME, INT64_C(1795428000000)},
        {"p0@2025-11-23T10:00:00Z", NODE_HIDDEN, 0, 0, FROM_TIME, INT64_C(1763892000000)},
        {"p0@t1763892000000", NODE_HIDDEN, 0, 0, FROM_TIME, INT64_C(1763892000000)},
        {"p0@1234.jsonl", NODE_HIDDEN, 0, 1, FROM_OFFSET, 1234},
        {"p2@-10.jsonl", NODE_HIDDEN, 2, 1, FROM_LAST, 10},
        {"p1@t5.jsonl", NODE_HIDDEN, 1, 1, FROM_TIME, 5},
        {"p0@2026-11-23T12:00:00.250+02:00.jsonl", NODE_HIDDEN, 0, 1, FROM_TIME,
         INT64_C(1795428000250)},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct node_name n;
        memset(&n, 0xa5, sizeof(n));
        if (node_parse_topic_child(ok[i].name, &n))
            fail_msg("refused: %s", ok[i].name);
        assert_int_equal(n.kind, ok[i].kind);
        assert_int_equal(n.partition, ok[i].partition);
        assert_int_equal(n.jsonl, ok[i].jsonl);
        if (ok[i].kind == NODE_HIDDEN || ok[i].kind == NODE_PARTITION) {
            assert_int_equal(n.from, ok[i].from);
            if (ok[i].from != FROM_START)
                assert_int_equal(n.value, ok[i].value);
        }
    }
}

static void test_topic_child_rejects(void **state)
{
    (void)state;
    static const char *bad[] = {
        "p0@",
        "p0@x",
        "p0@-",
        "p0@t",
        "p0@1x",
        "p0@01",
        "p0@2026-13-01T00:00:00Z",
        "p0@2026-11-23",
        "p0@1.json",
        "p0.jsonx",
        "q0@1",
        "p",
        "p-1",
        "p01",
        "p99999999999",
        "p65536",
        "",
        "P0",
        "p0 ",
        " p0",
        ".jsonl",
        "p.jsonl",
        "p@1",
        "p0@1@2",
        "p0.jsonl@1",
        "p0@-01",
        "p0@t01",
        "p0@t-1",
        "p0@+1",
        "p0@ 1",
        "p0@-x",
        "p0@1.jsonl.jsonl",
        "p0@.jsonl",
        "p0@99999999999999999999",
        "p0@t9223372036854775808",
        ".Produce",
        ".produce2",
        ".",
        "..",
        "p0@2026-11-23T10:00:00",
        "p0@2026-11-23T10:00:00Zjunk",
        "p0@2026-11-23T25:00:00Z",
        "p0.JSONL",
        "p0.jsonl.jsonl",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct node_name n;
        int r = node_parse_topic_child(bad[i], &n);
        if (r != -ENOENT)
            fail_msg("\"%s\" gave %d, not -ENOENT", bad[i], r);
    }
}

static int64_t parse_time_ok(const char *s)
{
    int64_t ms = -42;
    int r = node_parse_time(s, strlen(s), &ms);
    if (r)
        fail_msg("refused: %s (%d)", s, r);
    return ms;
}

static void test_parse_time(void **state)
{
    (void)state;
    /* 2026-11-23 is day 20780 since 1970-01-01 (56 * 365 + 14 leap days,
     * then 326 days into 2026): 20780 * 86400 + 10 * 3600 = 1795428000. */
    assert_int_equal(parse_time_ok("2026-11-23T10:00:00Z"), INT64_C(1795428000000));
    assert_int_equal(parse_time_ok("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(parse_time_ok("1970-01-01T00:00:01.5Z"), 1500);
    assert_int_equal(parse_time_ok("2000-01-01T00:00:00Z"), INT64_C(946684800000));
    /* offsets: local time minus the offset */
    assert_int_equal(parse_time_ok("2026-11-23T12:00:00+02:00"), INT64_C(1795428000000));
    assert_int_equal(parse_time_ok("2026-11-23T04:30:00-05:30"), INT64_C(1795428000000));
    assert_int_equal(parse_time_ok("2026-11-23T10:00:00+00:00"), INT64_C(1795428000000));
    assert_int_equal(parse_time_ok("2026-11-24T00:00:00+14:00"), INT64_C(1795428000000));
    /* fractions: tenths, ms, beyond ms truncated */
    assert_int_equal(parse_time_ok("2026-11-23T10:00:00.5Z"), INT64_C(1795428000500));
    assert_int_equal(parse_time_ok("2026-11-23T10:00:00.05Z"), INT64_C(1795428000050));
    assert_int_equal(parse_time_ok("2026-11-23T10:00:00.123Z"), INT64_C(1795428000123));
    assert_int_equal(parse_time_ok("2026-11-23T10:00:00.123999Z"), INT64_C(1795428000123));
    assert_int_equal(parse_time_ok("2026-11-23T12:00:00.999+02:00"), INT64_C(1795428000999));
    /* RFC 3339 lower-case t and z */
    assert_int_equal(parse_time_ok("2026-11-23t10:00:00z"), INT64_C(1795428000000));
    /* leap days: 2024-02-29 is day 19782; 2000 is a leap year */
    assert_int_equal(parse_time_ok("2024-02-29T00:00:00Z"), INT64_C(1709164800000));
    assert_int_equal(parse_time_ok("2024-03-01T00:00:00Z"), INT64_C(1709164800000) + 86400000);
    assert_int_equal(parse_time_ok("2000-02-29T12:00:00Z"), INT64_C(951825600000));
    assert_int_equal(parse_time_ok("2026-03-01T00:00:00Z"), INT64_C(1772323200000));
    assert_int_equal(parse_time_ok("2026-12-31T23:59:59.999Z"), INT64_C(1798761599999));
    assert_int_equal(parse_time_ok("1969-12-31T23:59:59Z"), -1000);
    /* epoch ms, with or without t */
    assert_int_equal(parse_time_ok("t1763892000000"), INT64_C(1763892000000));
    assert_int_equal(parse_time_ok("1234"), 1234);
    assert_int_equal(parse_time_ok("0"), 0);
    assert_int_equal(parse_time_ok("t0"), 0);
    assert_int_equal(parse_time_ok("t9223372036854775807"), INT64_MAX);
    /* only len bytes count */
    int64_t ms = -1;
    assert_int_equal(node_parse_time("1234xyz", 4, &ms), 0);
    assert_int_equal(ms, 1234);
    assert_int_equal(node_parse_time("2026-11-23T10:00:00Zjunk", 20, &ms), 0);
    assert_int_equal(ms, INT64_C(1795428000000));

    static const char *bad[] = {
        "",
        "t",
        "x",
        "-1",
        "t-1",
        "01",
        "t01",
        "1.5",
        "12a",
        "t9223372036854775808",
        "9223372036854775808",
        "2026-11-23",
        "2026-11-23T10:00:00",
        "2026-11-23T10:00Z",
        "2026-11-23 10:00:00Z",
        "2026-11-23T10:00:00+0200",
        "2026-11-23T10:00:00+02",
        "2026-11-23T10:00:00.Z",
        "2026-11-23T10:00:00.5",
        "2026-11-23T10:00:00ZZ",
        "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z",
        "2026-11-00T00:00:00Z",
        "2026-11-32T00:00:00Z",
        "2026-11-23T24:00:00Z",
        "2026-11-23T10:60:00Z",
        "2026-11-23T10:00:61Z",
        "2026-11-23T10:00:00+24:00",
        "2026-11-23T10:00:00+02:60",
        "2026-1-23T10:00:00Z",
        "2026/11/23T10:00:00Z",
        "20261123T100000Z",
        "2026-11-23T10:00:00 Z",
        "2026-11-23T1a:00:00Z",
        /* days that do not exist */
        "2026-02-29T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-04-31T00:00:00Z",
        "1900-02-29T00:00:00Z",
        "2026-06-31T00:00:00Z",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int r = node_parse_time(bad[i], strlen(bad[i]), &ms);
        if (r != -ENOENT)
            fail_msg("\"%s\" gave %d, not -ENOENT", bad[i], r);
    }
}

static void test_group_child_names(void **state)
{
    (void)state;
    enum node_kind k;
    uint32_t p;
    assert_int_equal(node_parse_group_child("follow", &k, &p), 0);
    assert_int_equal(k, NODE_FOLLOW);
    assert_int_equal(p, 0);
    assert_int_equal(node_parse_group_child("drain", &k, &p), 0);
    assert_int_equal(k, NODE_DRAIN);
    assert_int_equal(node_parse_group_child(".info", &k, &p), 0);
    assert_int_equal(k, NODE_GROUP_INFO);
    p = 99;
    assert_int_equal(node_parse_group_child("p0", &k, &p), 0);
    assert_int_equal(k, NODE_CURSOR);
    assert_int_equal(p, 0);
    assert_int_equal(node_parse_group_child("p17", &k, &p), 0);
    assert_int_equal(k, NODE_CURSOR);
    assert_int_equal(p, 17);
    assert_int_equal(node_parse_group_child("p65535", &k, &p), 0);
    assert_int_equal(p, 65535);
    static const char *bad[] = {
        "",       "p",        "p01",    "p-1",     "p65536",   "p99999999999",
        "Follow", "follow2",  "drain ", ".config", ".produce", ".groups",
        "p0@1",   "p0.jsonl", "q0",     "info",    "..",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int r = node_parse_group_child(bad[i], &k, &p);
        if (r != -ENOENT)
            fail_msg("\"%s\" gave %d, not -ENOENT", bad[i], r);
    }
}

static void test_node_ids(void **state)
{
    (void)state;
    const uint64_t topic_max = (UINT64_C(1) << 24) - 1;
    static const enum node_kind kinds[] = {
        NODE_TOPIC,  NODE_PARTITION, NODE_PRODUCE, NODE_CONFIG, NODE_INFO,   NODE_HIDDEN,
        NODE_GROUPS, NODE_GROUP,     NODE_FOLLOW,  NODE_DRAIN,  NODE_CURSOR, NODE_GROUP_INFO};
    const uint64_t topics[] = {1, 2, 0x123456, topic_max};
    const uint64_t payloads[] = {0, 1, NODE_PAYLOAD_MASK >> 1, NODE_PAYLOAD_MASK};
    for (size_t t = 0; t < 4; t++)
        for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
            for (size_t p = 0; p < 4; p++) {
                uint64_t id = node_id(topics[t], kinds[k], payloads[p]);
                assert_int_equal(node_topic(id), topics[t]);
                assert_int_equal(node_kind_of(id), kinds[k]);
                assert_int_equal(node_payload(id), payloads[p]);
                assert_true(id != NODE_ROOT_ID);
            }
    /* the payload cannot spill into the kind */
    assert_int_equal(node_kind_of(node_id(5, NODE_TOPIC, NODE_PAYLOAD_MASK + 1)), NODE_TOPIC);
    assert_int_equal(node_payload(node_id(5, NODE_TOPIC, NODE_PAYLOAD_MASK + 1)), 0);
    /* the root */
    assert_int_equal(node_kind_of(NODE_ROOT_ID), NODE_ROOT);
    assert_int_equal(node_topic(NODE_ROOT_ID), 0);
    assert_int_equal(node_id(1, NODE_TOPIC, 0), UINT64_C(1) << 40 | UINT64_C(1) << 36);

    /* partitions: one id for the partition's life */
    const uint32_t parts[] = {0, 1, 12, NODE_PARTITION_MAX};
    for (size_t t = 0; t < 4; t++)
        for (size_t p = 0; p < 4; p++) {
            uint64_t id = node_partition_id(topics[t], parts[p]);
            assert_int_equal(node_topic(id), topics[t]);
            assert_int_equal(node_kind_of(id), NODE_PARTITION);
            assert_int_equal(node_index(id), parts[p]);
        }
    /* node_index of a node that is not a partition */
    assert_int_equal(node_index(node_id(1, NODE_HIDDEN, 7)), 0);

    /* group nodes */
    const uint64_t groups[] = {0, 1, 0x12345, 0xfffff};
    for (size_t g = 0; g < 4; g++)
        for (size_t p = 0; p < 4; p++) {
            uint64_t gid = node_group_id(topic_max, NODE_CURSOR, groups[g], parts[p]);
            assert_int_equal(node_topic(gid), topic_max);
            assert_int_equal(node_kind_of(gid), NODE_CURSOR);
            assert_int_equal(node_group_of(gid), groups[g]);
            assert_int_equal(node_cursor_partition(gid), parts[p]);
        }
    uint64_t f = node_group_id(9, NODE_FOLLOW, 0x12345, 0);
    assert_int_equal(node_kind_of(f), NODE_FOLLOW);
    assert_int_equal(node_group_of(f), 0x12345);
    assert_int_equal(node_cursor_partition(f), 0);
    /* a group id wider than 20 bits does not reach the kind */
    uint64_t w = node_group_id(9, NODE_GROUP, 0x1fffff, 0);
    assert_int_equal(node_kind_of(w), NODE_GROUP);
    assert_int_equal(node_group_of(w), 0xfffff);
    assert_int_equal(node_topic(w), 9);
}

/* ---- hidden nodes ---- */

static void test_hidden_table(void **state)
{
    (void)state;
    hidden_clear();
    assert_int_equal(hidden_count(), 0);
    struct hidden_node a = {0}, b = {0}, got;
    a.topic_id = 7;
    a.partition = 3;
    a.view.epoch = 11;
    a.view.shift = 12345;
    a.start_offset = 99;
    b.topic_id = 8;
    b.jsonl = 1;
    b.start_offset = 1234;
    assert_int_equal(hidden_add(&a), 0);
    assert_int_equal(hidden_add(&b), 0);
    assert_true(a.slot != 0);
    assert_true(b.slot > a.slot);
    assert_int_equal(hidden_count(), 2);

    memset(&got, 0, sizeof(got));
    assert_int_equal(hidden_get(a.slot, &got), 0);
    assert_int_equal(got.slot, a.slot);
    assert_int_equal(got.topic_id, 7);
    assert_int_equal(got.partition, 3);
    assert_int_equal(got.jsonl, 0);
    assert_int_equal(got.view.epoch, 11);
    assert_int_equal(got.view.shift, 12345);
    assert_int_equal(got.start_offset, 99);
    assert_int_equal(hidden_get(b.slot, &got), 0);
    assert_int_equal(got.topic_id, 8);
    assert_int_equal(got.jsonl, 1);
    assert_int_equal(got.start_offset, 1234);
    assert_int_equal(hidden_get(b.slot + 1000, &got), -ENOENT);
    assert_int_equal(hidden_get(0, &got), -ENOENT);

    /* forgetting zero lookups or an unknown slot changes nothing */
    hidden_forget(a.slot, 0);
    hidden_forget(b.slot + 1000, 1);
    assert_int_equal(hidden_count(), 2);
    assert_int_equal(hidden_get(a.slot, &got), 0);
    /* one lookup: forget 1 frees it, only it */
    hidden_forget(a.slot, 1);
    assert_int_equal(hidden_count(), 1);
    assert_int_equal(hidden_get(a.slot, &got), -ENOENT);
    assert_int_equal(hidden_get(b.slot, &got), 0);
    /* a second forget of a freed slot is harmless */
    hidden_forget(a.slot, 1);
    assert_int_equal(hidden_count(), 1);
    /* forgetting more than was looked up frees it too */
    hidden_forget(b.slot, 5);
    assert_int_equal(hidden_count(), 0);
    assert_int_equal(hidden_get(b.slot, &got), -ENOENT);

    /* slots are never reused, even after clear */
    uint64_t last = b.slot;
    struct hidden_node c = {0};
    assert_int_equal(hidden_add(&c), 0);
    assert_true(c.slot > last);
    hidden_clear();
    assert_int_equal(hidden_count(), 0);
    assert_int_equal(hidden_get(c.slot, &got), -ENOENT);
    struct hidden_node d = {0};
    assert_int_equal(hidden_add(&d), 0);
    assert_true(d.slot > c.slot);
    hidden_clear();
}

/* A node for the same name as n, knowing nothing of its size yet. */
static struct hidden_node unsized_like(const struct hidden_node *n)
{
    struct hidden_node c = *n;
    c.json_next = n->start_offset;
    c.json_len = 0;
    return c;
}

/* A jsonl node's known size is kept per node, only ever grows, and is
 * handed to a new node of the same partition and start offset. */
static void test_hidden_json_size(void **state)
{
    (void)state;
    hidden_clear();
    struct hidden_node a = {
        .topic_id = 7, .partition = 1, .jsonl = 1, .start_offset = 10, .json_next = 10};
    struct hidden_node got;
    assert_int_equal(hidden_add(&a), 0);
    hidden_set_json_size(a.slot, 50, 4000);
    hidden_set_json_size(a.slot, 40, 3000); /* behind what it knew: ignored */
    assert_int_equal(hidden_get(a.slot, &got), 0);
    assert_int_equal(got.json_next, 50);
    assert_int_equal(got.json_len, 4000);
    /* same partition and start: starts from what a knows */
    struct hidden_node b = unsized_like(&a);
    assert_int_equal(hidden_add(&b), 0);
    assert_int_not_equal(b.slot, a.slot);
    assert_int_equal(b.json_next, 50);
    assert_int_equal(b.json_len, 4000);
    /* another start offset, partition, topic, or a non-jsonl node: nothing */
    struct hidden_node others[] = {
        {.topic_id = 7, .partition = 1, .jsonl = 1, .start_offset = 11, .json_next = 11},
        {.topic_id = 7, .partition = 2, .jsonl = 1, .start_offset = 10, .json_next = 10},
        {.topic_id = 8, .partition = 1, .jsonl = 1, .start_offset = 10, .json_next = 10},
        {.topic_id = 7, .partition = 1, .jsonl = 0, .start_offset = 10, .json_next = 10},
    };
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        uint64_t next = others[i].json_next;
        assert_int_equal(hidden_add(&others[i]), 0);
        assert_int_equal(others[i].json_next, next);
        assert_int_equal(others[i].json_len, 0);
    }
    /* once every node that knew is forgotten, a new one starts over */
    hidden_forget(a.slot, 1);
    hidden_forget(b.slot, 1);
    struct hidden_node c = unsized_like(&a);
    assert_int_equal(hidden_add(&c), 0);
    assert_int_equal(c.json_len, 0);
    hidden_clear();
}

/* More nodes than hash buckets: chains hold them all, each found by slot. */
static void test_hidden_many(void **state)
{
    (void)state;
    hidden_clear();
    enum { N = 3000 };
    static uint64_t slots[N];
    for (uint32_t i = 0; i < N; i++) {
        struct hidden_node n = {0};
        n.partition = i;
        n.start_offset = (uint64_t)i * 10;
        assert_int_equal(hidden_add(&n), 0);
        slots[i] = n.slot;
        if (i)
            assert_true(slots[i] > slots[i - 1]);
    }
    assert_int_equal(hidden_count(), N);
    /* drop every other one, from the middle of chains */
    for (uint32_t i = 0; i < N; i += 2)
        hidden_forget(slots[i], 1);
    assert_int_equal(hidden_count(), N / 2);
    for (uint32_t i = 0; i < N; i++) {
        struct hidden_node got;
        int r = hidden_get(slots[i], &got);
        if (i % 2 == 0) {
            assert_int_equal(r, -ENOENT);
        } else {
            assert_int_equal(r, 0);
            assert_int_equal(got.partition, i);
            assert_int_equal(got.start_offset, (uint64_t)i * 10);
        }
    }
    hidden_clear();
    assert_int_equal(hidden_count(), 0);
    struct hidden_node got;
    assert_int_equal(hidden_get(slots[1], &got), -ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_framing_rules_of),
        cmocka_unit_test(test_line_framing_three_records),
        cmocka_unit_test(test_line_split_across_writes),
        cmocka_unit_test(test_pending_released_at_close),
        cmocka_unit_test(test_split_leaves_pending),
        cmocka_unit_test(test_write_framing),
        cmocka_unit_test(test_pending_kept_when_framing_changes),
        cmocka_unit_test(test_key_len),
        cmocka_unit_test(test_line_max_message_bytes),
        cmocka_unit_test(test_line_framing_random_splits),
        cmocka_unit_test(test_jsonl_simple),
        cmocka_unit_test(test_jsonl_appends),
        cmocka_unit_test(test_jsonl_escapes),
        cmocka_unit_test(test_jsonl_base64),
        cmocka_unit_test(test_jsonl_fuzz_roundtrip),
        cmocka_unit_test(test_json_checker_refuses),
        cmocka_unit_test(test_topic_child_names),
        cmocka_unit_test(test_topic_child_rejects),
        cmocka_unit_test(test_parse_time),
        cmocka_unit_test(test_group_child_names),
        cmocka_unit_test(test_node_ids),
        cmocka_unit_test(test_hidden_table),
        cmocka_unit_test(test_hidden_json_size),
        cmocka_unit_test(test_hidden_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
