/* leader_epoch.c - the leader-epoch cache and its checkpoint file, and the
 * high watermark checkpoint (leader_epoch.h).
 *
 * The cache is a sorted array; every change keeps both orders strictly
 * increasing (assign drops the tail entries a new one would break them
 * with, as Kafka's does), so lookups are binary searches. Functions that
 * can fail leave the cache as it was. When the file is written, and how
 * the partition keeps it in step with its log, is partition.c's business
 * (the checkpoint first, memory after). */
#include "leader_epoch.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "fsutil.h"
#include "segment.h" /* segment_open_fd */

#define FORMAT_VERSION 1
#define OFFSET_MAX ((uint64_t)INT64_MAX)
/* "EPOCH OFFSET\n" at most: 10 + 1 + 19 + 1 digits and signs */
#define LINE_MAX_LEN 32

void leader_epoch_init(struct leader_epoch_cache *c)
{
    c->v = NULL;
    c->n = c->cap = 0;
}

void leader_epoch_free(struct leader_epoch_cache *c)
{
    free(c->v);
    leader_epoch_init(c);
}

static int reserve(struct leader_epoch_cache *c, size_t n)
{
    if (n <= c->cap)
        return 0;
    size_t cap = c->cap ? c->cap : 8;
    while (cap < n)
        cap *= 2;
    struct epoch_entry *v = realloc(c->v, cap * sizeof(*v));
    if (!v)
        return -ENOMEM;
    c->v = v;
    c->cap = cap;
    return 0;
}

int leader_epoch_copy(struct leader_epoch_cache *dst, const struct leader_epoch_cache *src)
{
    if (reserve(dst, src->n))
        return -ENOMEM;
    if (src->n)
        memcpy(dst->v, src->v, src->n * sizeof(*src->v));
    dst->n = src->n;
    return 0;
}

int leader_epoch_equal(const struct leader_epoch_cache *a, const struct leader_epoch_cache *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (a->v[i].epoch != b->v[i].epoch || a->v[i].start_offset != b->v[i].start_offset)
            return 0;
    return 1;
}

int leader_epoch_latest(const struct leader_epoch_cache *c, uint32_t *epoch)
{
    if (!c->n)
        return -ENOENT;
    *epoch = c->v[c->n - 1].epoch;
    return 0;
}

int leader_epoch_assign(struct leader_epoch_cache *c, uint32_t epoch, uint64_t start_offset)
{
    if (epoch > LEADER_EPOCH_MAX || start_offset > OFFSET_MAX)
        return -EINVAL;
    if (c->n) {
        const struct epoch_entry *last = &c->v[c->n - 1];
        if (epoch == last->epoch && start_offset >= last->start_offset)
            return 0;
    }
    size_t n = c->n;
    while (n && (c->v[n - 1].epoch >= epoch || c->v[n - 1].start_offset >= start_offset))
        n--;
    if (n >= LEADER_EPOCH_ENTRIES_MAX)
        return -EOVERFLOW;
    if (reserve(c, n + 1))
        return -ENOMEM;
    c->v[n].epoch = epoch;
    c->v[n].start_offset = start_offset;
    c->n = n + 1;
    return 1;
}

int leader_epoch_truncate_from_end(struct leader_epoch_cache *c, uint64_t offset)
{
    size_t n = c->n;
    while (n && c->v[n - 1].start_offset >= offset)
        n--;
    int changed = n != c->n;
    c->n = n;
    return changed;
}

int leader_epoch_truncate_from_start(struct leader_epoch_cache *c, uint64_t offset)
{
    if (offset > OFFSET_MAX)
        return -EINVAL;
    /* k: the entries that start below offset. */
    size_t k = 0;
    while (k < c->n && c->v[k].start_offset < offset)
        k++;
    if (k == 0)
        return 0;
    /* The last of them covers offset, unless the next one starts there. */
    int keep = k == c->n || c->v[k].start_offset > offset;
    size_t drop = keep ? k - 1 : k;
    if (keep)
        c->v[k - 1].start_offset = offset;
    memmove(c->v, c->v + drop, (c->n - drop) * sizeof(*c->v));
    c->n -= drop;
    return 1;
}

int leader_epoch_end_offset_for(const struct leader_epoch_cache *c, uint32_t epoch,
                                uint64_t log_end, uint32_t *epoch_out, uint64_t *end_offset)
{
    if (!c->n)
        return -ENOENT;
    if (c->v[c->n - 1].epoch == epoch) {
        *epoch_out = epoch;
        *end_offset = log_end;
        return 0;
    }
    /* The first entry newer than epoch. */
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->v[mid].epoch <= epoch)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == c->n)
        return -ENOENT;
    *epoch_out = lo ? c->v[lo - 1].epoch : epoch;
    *end_offset = c->v[lo].start_offset;
    return 0;
}

/* ---- the checkpoint file ---- */

int leader_epoch_encode(const struct leader_epoch_cache *c, char **text, size_t *len)
{
    size_t cap = 64 + c->n * LINE_MAX_LEN;
    char *t = malloc(cap);
    if (!t)
        return -ENOMEM;
    size_t at = (size_t)snprintf(t, cap, "%d\n%zu\n", FORMAT_VERSION, c->n);
    for (size_t i = 0; i < c->n; i++)
        at += (size_t)snprintf(t + at, cap - at, "%" PRIu32 " %" PRIu64 "\n", c->v[i].epoch,
                               c->v[i].start_offset);
    at += (size_t)snprintf(t + at, cap - at, "%016" PRIx64 "\n", (uint64_t)XXH3_64bits(t, at));
    *text = t;
    *len = at;
    return 0;
}

/* A decimal of at most `max` with no sign or leading zero, ending at `end`
 * (the byte there must be `end`): advances *s past it. */
static int parse_u64(const char **s, const char *lim, char end, uint64_t max, uint64_t *out)
{
    const char *p = *s;
    uint64_t v = 0;
    if (p >= lim || *p < '0' || *p > '9' || (*p == '0' && p + 1 < lim && p[1] != end))
        return -EBADMSG;
    for (; p < lim && *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (max - d) / 10)
            return -EBADMSG;
        v = v * 10 + d;
    }
    if (p >= lim || *p != end)
        return -EBADMSG;
    *s = p + 1;
    *out = v;
    return 0;
}

int leader_epoch_decode(const char *text, size_t len, struct leader_epoch_cache *c)
{
    const char *p = text, *lim = text + len;
    uint64_t version, n;
    if (parse_u64(&p, lim, '\n', UINT32_MAX, &version) || version != FORMAT_VERSION ||
        parse_u64(&p, lim, '\n', LEADER_EPOCH_ENTRIES_MAX, &n))
        return -EBADMSG;
    /* Each entry takes 4 bytes at least: a cheap bound before allocating. */
    if (n > (size_t)(lim - p) / 4)
        return -EBADMSG;
    struct leader_epoch_cache nc;
    leader_epoch_init(&nc);
    if (reserve(&nc, (size_t)n))
        return -ENOMEM;
    int r = 0;
    for (size_t i = 0; i < n && !r; i++) {
        uint64_t epoch, offset;
        if ((r = parse_u64(&p, lim, ' ', LEADER_EPOCH_MAX, &epoch)) ||
            (r = parse_u64(&p, lim, '\n', OFFSET_MAX, &offset)))
            break;
        if (i && (epoch <= nc.v[i - 1].epoch || offset <= nc.v[i - 1].start_offset)) {
            r = -EBADMSG;
            break;
        }
        nc.v[i].epoch = (uint32_t)epoch;
        nc.v[i].start_offset = offset;
        nc.n = i + 1;
    }
    /* The checksum line covers everything before it. */
    size_t body = (size_t)(p - text);
    char want[17];
    snprintf(want, sizeof(want), "%016" PRIx64, (uint64_t)XXH3_64bits(text, body));
    if (!r && (len != body + 17 || memcmp(p, want, 16) || p[16] != '\n'))
        r = -EBADMSG;
    if (r) {
        leader_epoch_free(&nc);
        return r;
    }
    leader_epoch_free(c);
    *c = nc;
    return 0;
}

int leader_epoch_load(const char *dir, struct leader_epoch_cache *c)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/" LEADER_EPOCH_FILE ".tmp", dir);
    unlink(path); /* a write that never renamed */
    snprintf(path, sizeof(path), "%s/" LEADER_EPOCH_FILE, dir);
    int fd = segment_open_fd(path, O_RDONLY);
    if (fd < 0)
        return fd;
    size_t cap = 64 + (size_t)LEADER_EPOCH_ENTRIES_MAX * LINE_MAX_LEN, len = 0, bufcap = 4096;
    char *buf = malloc(bufcap);
    int r = buf ? 0 : -ENOMEM;
    while (!r) {
        if (len == bufcap) {
            char *nb = bufcap < cap ? realloc(buf, bufcap * 2) : NULL;
            if (!nb) {
                r = bufcap < cap ? -ENOMEM : -EBADMSG;
                break;
            }
            buf = nb;
            bufcap *= 2;
        }
        ssize_t got = read(fd, buf + len, bufcap - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            r = -errno;
        else if (got == 0)
            break;
        else
            len += (size_t)got;
    }
    close(fd);
    if (!r)
        r = leader_epoch_decode(buf, len, c);
    free(buf);
    return r;
}

int leader_epoch_store(const char *dir, const struct leader_epoch_cache *c)
{
    char path[4200], *text;
    size_t len;
    int r = leader_epoch_encode(c, &text, &len);
    if (r)
        return r;
    snprintf(path, sizeof(path), "%s/" LEADER_EPOCH_FILE, dir);
    r = fsutil_write_atomic(path, text, len, NULL, NULL);
    free(text);
    return r;
}

/* ---- high watermark checkpoint ---- */

#define HW_FORMAT_VERSION 0

size_t hw_checkpoint_encode(uint64_t hw, char *buf)
{
    int n = snprintf(buf, HW_CHECKPOINT_MAX_LEN, "%d\n%" PRIu64 "\n", HW_FORMAT_VERSION, hw);
    n += snprintf(buf + n, HW_CHECKPOINT_MAX_LEN - (size_t)n, "%016" PRIx64 "\n",
                  (uint64_t)XXH3_64bits(buf, (size_t)n));
    return (size_t)n;
}

int hw_checkpoint_decode(const char *text, size_t len, uint64_t *hw)
{
    const char *p = text, *lim = text + len;
    uint64_t version, v;
    if (parse_u64(&p, lim, '\n', UINT32_MAX, &version) || version != HW_FORMAT_VERSION ||
        parse_u64(&p, lim, '\n', OFFSET_MAX, &v))
        return -EBADMSG;
    size_t body = (size_t)(p - text);
    char want[17];
    snprintf(want, sizeof(want), "%016" PRIx64, (uint64_t)XXH3_64bits(text, body));
    if (len != body + 17 || memcmp(p, want, 16) || p[16] != '\n')
        return -EBADMSG;
    *hw = v;
    return 0;
}

int hw_checkpoint_load(const char *dir, uint64_t *hw)
{
    char path[4200], buf[HW_CHECKPOINT_MAX_LEN + 1];
    snprintf(path, sizeof(path), "%s/" HW_CHECKPOINT_FILE ".tmp", dir);
    unlink(path); /* a write that never renamed */
    snprintf(path, sizeof(path), "%s/" HW_CHECKPOINT_FILE, dir);
    int fd = segment_open_fd(path, O_RDONLY);
    if (fd < 0)
        return fd;
    size_t len = 0;
    int r = 0;
    while (len < sizeof(buf)) {
        ssize_t got = read(fd, buf + len, sizeof(buf) - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            r = -errno;
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    close(fd);
    if (!r && len > HW_CHECKPOINT_MAX_LEN)
        r = -EBADMSG; /* longer than any checkpoint */
    return r ? r : hw_checkpoint_decode(buf, len, hw);
}

int hw_checkpoint_store(const char *dir, uint64_t hw)
{
    char path[4200], text[HW_CHECKPOINT_MAX_LEN];
    size_t len = hw_checkpoint_encode(hw, text);
    snprintf(path, sizeof(path), "%s/" HW_CHECKPOINT_FILE, dir);
    return fsutil_write_atomic(path, text, len, NULL, NULL);
}
