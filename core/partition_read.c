/* partition_read.c - every read path of a partition log (partition.h):
 * cursors, stream reads, views, record fetch, offset and time lookups.
 *
 * A cursor caches the batch it last served and a read-ahead of its
 * segment, so sequential reads cost no lookup; its hints are only valid in
 * the layout epoch they were made in. Reads run under the partition lock;
 * bytes are handed to a sink as pieces (a span of a segment file, pinned so
 * the descriptor LRU cannot close it until the reply went, or memory),
 * which lets fs/ splice values straight from the page cache. Nothing is
 * served before segment_verify() checked it; bad ranges fail with EIO. */
#include "partition_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "satmath.h"

void partition_cursor_init(struct partition_cursor *c)
{
    memset(c, 0, sizeof(*c));
    c->seg_base = UINT64_MAX;
    c->buf_seg_base = UINT64_MAX;
    c->scratch_batch = UINT64_MAX;
}

void partition_cursor_free(struct partition_cursor *c)
{
    free(c->buf);
    free(c->scratch);
    partition_cursor_init(c);
}

/* Returns a pointer to file bytes [file_pos, file_pos+len) of segment s,
 * from the cursor's read-ahead buffer, refilling it if needed. */
/* Whether the cursor's read-ahead holds len bytes at file_pos of s. */
static int cursor_holds(const struct partition_cursor *c, const struct segment *s,
                        uint64_t file_pos, size_t len)
{
    return c->buf_seg_base == s->base_offset && file_pos >= c->buf_file_pos &&
           file_pos + len <= c->buf_file_pos + c->buf_len;
}

static int cursor_bytes(struct partition_cursor *c, struct segment *s, uint64_t file_pos,
                        size_t len, size_t read_ahead, const uint8_t **out)
{
    if (cursor_holds(c, s, file_pos, len)) {
        *out = c->buf + (file_pos - c->buf_file_pos);
        return 0;
    }
    size_t want = len > read_ahead ? len : read_ahead;
    if (file_pos + want > s->size)
        want = (size_t)(s->size - file_pos);
    if (want < len)
        return -EIO;
    if (want > c->buf_cap) {
        uint8_t *n = realloc(c->buf, want);
        if (!n)
            return -ENOMEM;
        c->buf = n;
        c->buf_cap = want;
    }
    size_t done = 0;
    int fd = segment_fd(s);
    if (fd < 0) {
        c->buf_seg_base = UINT64_MAX;
        return fd;
    }
    while (done < want) {
        ssize_t r = pread(fd, c->buf + done, want - done, (off_t)(file_pos + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? -errno : -EIO;
            segment_fd_put(s);
            c->buf_seg_base = UINT64_MAX;
            return e;
        }
        done += (size_t)r;
    }
    segment_fd_put(s);
    c->buf_seg_base = s->base_offset;
    c->buf_file_pos = file_pos;
    c->buf_len = want;
    *out = c->buf;
    return 0;
}

void cursor_forget(struct partition_cursor *c)
{
    c->seg_base = c->buf_seg_base = c->scratch_batch = UINT64_MAX;
}

/* Points the cursor at the batch holding stream position pos; with `in`, in
 * that segment only (which need not be in the current list). -ENODATA if
 * compaction removed pos. */
static int cursor_seek(struct partition *p, struct partition_cursor *c, uint64_t pos,
                       struct segment *in, struct segment **seg)
{
    if (c->layout_epoch != p->epoch) {
        /* Segment files may have been rewritten: forget what was cached. */
        cursor_forget(c);
        c->layout_epoch = p->epoch;
    }
    struct segment *s = NULL;
    if (c->seg_base != UINT64_MAX)
        s = !in ? segment_by_base(p, c->seg_base) : c->seg_base == in->base_offset ? in : NULL;
    if (s && pos >= c->h.base_pos && pos < batch_end_pos(&c->h)) {
        *seg = s;
        return 0;
    }
    /* Sequential case: the next batch(es) after the cached one. */
    if (s && pos >= batch_end_pos(&c->h)) {
        uint64_t fp = c->file_pos + c->h.length;
        for (int hops = 0; hops < 64; hops++) {
            if (fp >= s->size) {
                ssize_t i = in ? -1 : segment_for_offset(p, s->base_offset);
                if (i < 0 || (size_t)i + 1 >= p->nsegs)
                    break;
                s = p->segs[i + 1];
                fp = 0;
                if (s->size == 0)
                    continue;
                if (segment_verify(s))
                    break;
            }
            if (segment_bad_at(s, SEG_BY_FILE, fp))
                break; /* the lookup below refuses or skips it */
            const uint8_t *hb;
            struct batch_header h;
            if (cursor_bytes(c, s, fp, BATCH_HEADER_SIZE, HEADER_READ_AHEAD, &hb) ||
                batch_header_decode(hb, &h))
                break;
            if (pos < h.base_pos)
                break;
            if (pos < batch_end_pos(&h)) {
                c->seg_base = s->base_offset;
                c->file_pos = fp;
                c->h = h;
                *seg = s;
                return 0;
            }
            fp += h.length;
        }
    }
    if (in) {
        s = in;
    } else {
        ssize_t i = segment_for_pos(p, pos);
        if (i < 0)
            return -ERANGE;
        s = p->segs[i];
    }
    uint64_t fp;
    struct batch_header h;
    int r = segment_find_pos(s, pos, &fp, &h);
    if (r)
        return r;
    if (pos < h.base_pos)
        return -ENODATA; /* in a gap compaction left */
    c->seg_base = s->base_offset;
    c->file_pos = fp;
    c->h = h;
    *seg = s;
    return 0;
}

/* The decompressed (or in-file) table and values of the cursor's batch. */
static int cursor_body(struct partition_cursor *c, struct segment *s, const uint8_t **table,
                       const uint8_t **values)
{
    const uint8_t *batch;
    int r = cursor_bytes(c, s, c->file_pos, c->h.length, READ_AHEAD, &batch);
    if (r)
        return r;
    if (c->h.codec == BATCH_CODEC_NONE)
        return batch_body(&c->h, batch, NULL, NULL, table, values);
    if (c->scratch_batch == c->h.base_offset) {
        *table = c->scratch;
        *values = c->scratch + c->h.table_len;
        return 0;
    }
    r = batch_body(&c->h, batch, &c->scratch, &c->scratch_cap, table, values);
    c->scratch_batch = r ? UINT64_MAX : c->h.base_offset;
    return r;
}

/* Segments whose descriptors handed-out file pieces use: pinned (the fd
 * LRU cannot close them, whichever partition needs room) until the reply
 * that carries the pieces was sent, then let go by pins_release. */
struct pin_list {
    struct segment **v;
    size_t n, cap;
};

/* The pinned descriptor of s for one more file piece, or -1 (then the piece
 * is copied through memory instead). */
static int pin_piece(struct pin_list *pl, struct segment *s)
{
    if (pl->n == pl->cap) {
        size_t cap = pl->cap ? pl->cap * 2 : 8;
        struct segment **v = realloc(pl->v, cap * sizeof(*v));
        if (!v)
            return -1;
        pl->v = v;
        pl->cap = cap;
    }
    int fd = segment_fd(s);
    if (fd >= 0)
        pl->v[pl->n++] = s;
    return fd;
}

static void pins_release(struct pin_list *pl)
{
    for (size_t i = 0; i < pl->n; i++)
        segment_fd_put(pl->v[i]);
    free(pl->v);
    pl->v = NULL;
    pl->n = pl->cap = 0;
}

/* Hands out the stream bytes from position pos on, up to len, as pieces;
 * with `in`, only from that segment, else up to the high watermark. Returns
 * the bytes handed out (short before a compaction gap) or a negative errno.
 * Caller holds the lock and releases `pins` once the pieces are used. */
static ssize_t visit_locked(struct partition *p, struct partition_cursor *c, struct segment *in,
                            uint64_t pos, size_t len, const struct stream_sink *sink,
                            struct pin_list *pins)
{
    size_t done = 0;
    int r = 0;
    uint64_t end = in ? in->end_pos : p->hw_pos;
    if (pos < (in ? in->base_pos : p->segs[0]->base_pos))
        return -ERANGE;
    if (pos + len > end)
        len = pos < end ? (size_t)(end - pos) : 0;
    while (done < len) {
        struct segment *s;
        if ((r = cursor_seek(p, c, pos, in, &s)))
            break;
        uint64_t in_batch = pos - c->h.base_pos;
        size_t n = (size_t)(batch_end_pos(&c->h) - pos);
        if (n > len - done)
            n = len - done;
        struct stream_piece pc = {.fd = -1, .len = n};
        if (c->h.codec == BATCH_CODEC_NONE) {
            uint64_t fp = c->file_pos + BATCH_HEADER_SIZE + c->h.table_len + in_batch;
            if (n >= DIRECT_COPY_MIN && !cursor_holds(c, s, fp, n) &&
                (pc.fd = pin_piece(pins, s)) >= 0) {
                pc.file_pos = fp;
            } else {
                pc.fd = -1;
                const uint8_t *src;
                if ((r = cursor_bytes(c, s, fp, n, READ_AHEAD, &src)))
                    break;
                pc.mem = src;
            }
        } else {
            const uint8_t *table, *values;
            if ((r = cursor_body(c, s, &table, &values)))
                break;
            pc.mem = values + in_batch;
        }
        if ((r = sink->piece(&pc, sink->arg)))
            break;
        done += n;
        pos += n;
    }
    if (done > 0)
        return (ssize_t)done;
    return r;
}

/* A sink that copies the pieces into a buffer. */
struct copy_target {
    char *buf;
    size_t done;
};

int stream_piece_copy(const struct stream_piece *pc, void *dst)
{
    if (pc->fd < 0) {
        memcpy(dst, pc->mem, pc->len);
        return 0;
    }
    for (size_t got = 0; got < pc->len;) {
        ssize_t r = pread(pc->fd, (char *)dst + got, pc->len - got, (off_t)(pc->file_pos + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? -errno : -EIO;
        got += (size_t)r;
    }
    return 0;
}

static int copy_piece(const struct stream_piece *pc, void *arg)
{
    struct copy_target *t = arg;
    int r = stream_piece_copy(pc, t->buf + t->done);
    if (!r)
        t->done += pc->len;
    return r;
}

static ssize_t read_locked(struct partition *p, struct partition_cursor *c, struct segment *in,
                           uint64_t pos, void *buf, size_t len)
{
    struct copy_target t = {.buf = buf};
    struct stream_sink sink = {.piece = copy_piece, .arg = &t};
    struct pin_list pins = {0};
    ssize_t n = visit_locked(p, c, in, pos, len, &sink, &pins);
    pins_release(&pins);
    return n;
}

ssize_t partition_read(struct partition *p, struct partition_cursor *c, uint64_t pos, void *buf,
                       size_t len)
{
    pthread_mutex_lock(&p->lock);
    ssize_t r = read_locked(p, c, NULL, pos, buf, len);
    if (r > 0)
        partition_count_read(p, (uint64_t)r);
    pthread_mutex_unlock(&p->lock);
    return r;
}

void partition_count_read(struct partition *p, uint64_t bytes)
{
    atomic_fetch_add_explicit(&p->bytes_out, bytes, memory_order_relaxed);
}

int offset_pos_locked(struct partition *p, uint64_t offset, int bounded, size_t *seg, uint64_t *pos)
{
    int r = 0;
    struct segment *a = active(p);
    ssize_t i;
    if (bounded && offset >= p->hw && p->hw_pos < a->end_pos) {
        *seg = p->nsegs - 1; /* callers place the high watermark by visible_view_end */
        *pos = p->hw_pos;
    } else if (offset <= p->segs[0]->base_offset) {
        *seg = 0;
        *pos = p->segs[0]->base_pos;
    } else if (offset >= a->next_offset || (i = segment_from_offset(p, offset)) < 0) {
        *seg = p->nsegs - 1;
        *pos = a->end_pos;
    } else {
        struct segment *s = p->segs[i];
        struct partition_cursor c;
        const uint8_t *table, *values;
        partition_cursor_init(&c);
        r = segment_find_offset(s, offset, &c.file_pos, &c.h);
        if (!r) {
            c.seg_base = s->base_offset;
            r = cursor_body(&c, s, &table, &values);
        }
        if (!r) {
            const uint8_t *tend = table + c.h.table_len;
            uint64_t at = c.h.base_pos;
            uint32_t vlen;
            int32_t klen;
            for (uint64_t o = c.h.base_offset; o < offset; o++) {
                if (batch_next_record(&table, tend, &vlen, &klen) != 1) {
                    r = -EIO;
                    break;
                }
                at += vlen;
            }
            *seg = (size_t)i;
            *pos = at;
        }
        partition_cursor_free(&c);
    }
    return r;
}

int partition_offset_pos(struct partition *p, uint64_t offset, uint64_t *pos)
{
    size_t seg;
    pthread_mutex_lock(&p->lock);
    int r = offset_pos_locked(p, offset, 1, &seg, pos);
    pthread_mutex_unlock(&p->lock);
    return r;
}

int partition_time_offset(struct partition *p, int64_t ts, uint64_t *offset)
{
    int r = 0;
    pthread_mutex_lock(&p->lock);
    *offset = p->hw;
    for (size_t i = 0; i < p->nsegs && p->segs[i]->base_offset < p->hw; i++) {
        struct segment *s = p->segs[i];
        if (s->size == 0 || s->max_timestamp < ts)
            continue;
        uint64_t fp;
        struct batch_header h;
        r = segment_find_time(s, ts, &fp, &h);
        if (r == -ENOENT) {
            r = 0;
            continue;
        }
        if (!r && h.base_offset < p->hw)
            *offset = h.base_offset;
        break;
    }
    pthread_mutex_unlock(&p->lock);
    return r;
}

/* Index of the segment holding current-view position y (the last one whose
 * view_start <= y and that is not empty there), or -1. */
static ssize_t segment_for_view_pos(struct partition *p, uint64_t y)
{
    ssize_t lo = 0, hi = (ssize_t)p->nsegs - 1, best = -1;
    while (lo <= hi) {
        ssize_t mid = lo + (hi - lo) / 2;
        if (p->segs[mid]->view_start <= y) {
            best = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    while (best >= 0 && (size_t)best + 1 < p->nsegs &&
           p->segs[best]->view_start + live_bytes(p->segs[best]) <= y)
        best++;
    return best;
}

/* Where position x of a view of epoch e lies now. Returns 0 with *y its
 * position in the current view; 1 with *j the epoch whose kept old layout
 * holds it (*y unchanged, in that layout's coordinates); or -ENODATA.
 * *room gets how many bytes from x on lie before the next truncation cut. */
static int view_locate(struct partition *p, uint32_t e, uint64_t x, uint32_t *j, uint64_t *y,
                       uint64_t *room)
{
    *room = UINT64_MAX;
    for (uint32_t k = e + 1; k <= p->epoch; k++) {
        const struct layout_epoch *le = &p->epochs[k];
        if (x >= le->cut_pos)
            return -ENODATA;
        if (le->cut_pos - x < *room)
            *room = le->cut_pos - x;
        if (x < le->frontier_pos) {
            if (!le->nbefore)
                return -ENODATA;
            *j = k;
            *y = x;
            return 1;
        }
        x -= le->removed - p->epochs[k - 1].removed;
    }
    *y = x;
    return 0;
}

/* The kept segment of epoch j's old layout at position y, or NULL. */
static struct segment *kept_segment(struct partition *p, uint32_t j, uint64_t y, uint64_t *in_seg)
{
    const struct layout_epoch *le = &p->epochs[j];
    for (size_t i = le->nbefore; i-- > 0;)
        if (le->before_start[i] <= y && y < le->before_start[i] + live_bytes(le->before[i])) {
            *in_seg = y - le->before_start[i];
            return le->before[i];
        }
    return NULL;
}

/* The view's bytes from pos on, up to len, as pieces (see visit_locked).
 * Caller holds the lock. */
static ssize_t view_visit_locked(struct partition *p, struct partition_cursor *c,
                                 const struct partition_view *v, uint64_t pos, size_t len,
                                 const struct stream_sink *sink, struct pin_list *pins)
{
    size_t done = 0;
    int r = 0;
    if (v->epoch > p->epoch)
        return -ENODATA;
    if (p->epochs[p->kept_from].nbefore)
        kept_expire(p, 0);
    /* Kept segments are read through a cursor of their own, forgotten at
     * each new one: they share base offsets with the current segments and
     * with each other. */
    struct partition_cursor old_cursor;
    struct segment *old_seg = NULL;
    partition_cursor_init(&old_cursor);
    uint64_t x = pos + v->shift, end = visible_view_end(p) + removed_since(p, v->epoch);
    while (done < len && x < end) {
        uint32_t j;
        uint64_t y, in_seg, room;
        struct segment *s = NULL;
        int where = view_locate(p, v->epoch, x, &j, &y, &room);
        if (where == 0) {
            ssize_t i = segment_for_view_pos(p, y);
            if (i >= 0) {
                s = p->segs[i];
                in_seg = y - s->view_start;
            }
        } else if (where == 1) {
            s = kept_segment(p, j, y, &in_seg);
        }
        if (!s) {
            r = -ENODATA;
            break;
        }
        size_t n = len - done;
        if (n > live_bytes(s) - in_seg)
            n = (size_t)(live_bytes(s) - in_seg);
        if (n > room)
            n = (size_t)room;
        if (n > end - x)
            n = (size_t)(end - x);
        if (where == 1 && old_seg != s) {
            cursor_forget(&old_cursor);
            old_seg = s;
        }
        ssize_t got =
            visit_locked(p, where == 1 ? &old_cursor : c, s, s->base_pos + in_seg, n, sink, pins);
        if (got <= 0) {
            r = got < 0 ? (int)got : -EIO;
            break;
        }
        done += (size_t)got;
        x += (uint64_t)got;
        end = visible_view_end(p) + removed_since(p, v->epoch);
    }
    partition_cursor_free(&old_cursor);
    partition_count_read(p, done);
    return done > 0 ? (ssize_t)done : r;
}

ssize_t partition_view_read(struct partition *p, struct partition_cursor *c,
                            const struct partition_view *v, uint64_t pos, void *buf, size_t len)
{
    struct copy_target t = {.buf = buf};
    struct stream_sink sink = {.piece = copy_piece, .arg = &t};
    struct pin_list pins = {0};
    pthread_mutex_lock(&p->lock);
    ssize_t n = view_visit_locked(p, c, v, pos, len, &sink, &pins);
    pins_release(&pins);
    pthread_mutex_unlock(&p->lock);
    return n;
}

ssize_t partition_view_send(struct partition *p, struct partition_cursor *c,
                            const struct partition_view *v, uint64_t pos, size_t len,
                            const struct stream_sink *sink)
{
    struct pin_list pins = {0};
    pthread_mutex_lock(&p->lock);
    ssize_t n = view_visit_locked(p, c, v, pos, len, sink, &pins);
    if (n > 0)
        sink->deliver(sink->arg);
    pins_release(&pins); /* the reply is sent: its descriptors may go */
    pthread_mutex_unlock(&p->lock);
    return n;
}

int partition_view_at_offset(struct partition *p, uint64_t offset, struct partition_view *v)
{
    size_t i;
    uint64_t pos;
    pthread_mutex_lock(&p->lock);
    v->epoch = p->epoch;
    v->shift = 0;
    int r = offset_pos_locked(p, offset, 1, &i, &pos);
    if (!r)
        v->shift = pos >= p->hw_pos ? visible_view_end(p)
                                    : p->segs[i]->view_start + (pos - p->segs[i]->base_pos);
    pthread_mutex_unlock(&p->lock);
    return r;
}

/* partition_fetch below `limit` (UINT64_MAX: the high watermark). */
static int fetch(struct partition *p, struct partition_cursor *c, uint64_t offset, uint64_t limit,
                 size_t max_records, int (*fn)(const struct record_view *r, void *arg), void *arg,
                 uint64_t *next)
{
    int r = 0;
    size_t seen = 0;
    pthread_mutex_lock(&p->lock);
    if (limit == UINT64_MAX)
        limit = p->hw;
    if (c->layout_epoch != p->epoch) {
        cursor_forget(c);
        c->layout_epoch = p->epoch;
    }
    if (offset < p->segs[0]->base_offset)
        offset = p->segs[0]->base_offset;
    *next = offset;
    ssize_t i = segment_for_offset(p, offset);
    int damaged = 0;
    for (; i >= 0 && (size_t)i < p->nsegs && seen < max_records && !r && !damaged && offset < limit;
         i++) {
        struct segment *s = p->segs[i];
        if (offset >= s->next_offset || (s->size == 0 && !s->nbad))
            continue;
        uint64_t fp;
        if ((r = segment_find_offset(s, offset, &fp, &c->h))) {
            /* The next record lies in or after damage: hand out what came
             * before it; the fetch that starts there fails. */
            if (r == -EIO && seen) {
                r = 0;
                damaged = 1;
            }
            break;
        }
        while (fp < s->size && seen < max_records && !r && !damaged && offset < limit) {
            const uint8_t *hb, *table, *values;
            /* The lookup never answers inside a bad range: one met on the
             * way lies before the next record, whatever offsets it claims. */
            if (segment_bad_at(s, SEG_BY_FILE, fp)) {
                damaged = 1;
                break;
            }
            if ((r = cursor_bytes(c, s, fp, BATCH_HEADER_SIZE, READ_AHEAD, &hb)))
                break;
            if (batch_header_decode(hb, &c->h)) {
                r = -EIO;
                break;
            }
            c->seg_base = s->base_offset;
            c->file_pos = fp;
            if ((r = cursor_body(c, s, &table, &values)))
                break;
            const uint8_t *tend = table + c->h.table_len, *vend = values + c->h.values_len;
            struct record_view rv = {.timestamp = c->h.timestamp,
                                     .leader_epoch = c->h.leader_epoch};
            uint64_t o = c->h.base_offset;
            uint32_t vlen;
            int32_t klen;
            while (seen < max_records && o < limit &&
                   batch_next_record(&table, tend, &vlen, &klen) == 1) {
                if (vlen > (size_t)(vend - values)) { /* a table that was never verified */
                    r = -EIO;
                    break;
                }
                if (o >= offset) {
                    rv.offset = o;
                    rv.value = values;
                    rv.value_len = vlen;
                    rv.key_len = klen;
                    seen++;
                    *next = o + 1;
                    if ((r = fn(&rv, arg)))
                        break;
                }
                values += vlen;
                o++;
            }
            offset = *next > offset ? *next : offset;
            if (o >= batch_next_offset(&c->h) && offset < batch_next_offset(&c->h))
                offset = batch_next_offset(&c->h);
            if (o >= limit)
                break;
            fp += c->h.length;
        }
        /* Records lost from the segment's end (found short at open). */
        for (size_t k = 0; k < s->nbad && !r && !damaged && seen < max_records && fp >= s->size;
             k++)
            damaged = s->bad[k].file_pos >= s->size;
        if (!r && seen < max_records && offset < limit && segment_bad_at(s, SEG_BY_OFFSET, offset))
            damaged = 1;
    }
    /* Damaged records: hand out what came before them; the fetch that
     * starts at them fails. */
    if (damaged && seen == 0)
        r = -EIO;
    pthread_mutex_unlock(&p->lock);
    return r > 0 ? 0 : r;
}

int partition_fetch(struct partition *p, struct partition_cursor *c, uint64_t offset,
                    size_t max_records, int (*fn)(const struct record_view *r, void *arg),
                    void *arg, uint64_t *next)
{
    return fetch(p, c, offset, UINT64_MAX, max_records, fn, arg, next);
}

int partition_fetch_below(struct partition *p, struct partition_cursor *c, uint64_t offset,
                          uint64_t limit, size_t max_records,
                          int (*fn)(const struct record_view *r, void *arg), void *arg,
                          uint64_t *next)
{
    return fetch(p, c, offset, limit == UINT64_MAX ? UINT64_MAX - 1 : limit, max_records, fn, arg,
                 next);
}

/* Hands out file bytes [from, to) of segment s as one piece: its pinned
 * descriptor, or the cursor's copy. */
static int raw_piece(struct partition_cursor *c, struct segment *s, uint64_t from, uint64_t to,
                     const struct stream_sink *sink, struct pin_list *pins)
{
    struct stream_piece pc = {.fd = -1, .len = (size_t)(to - from)};
    if (pc.len >= DIRECT_COPY_MIN && !cursor_holds(c, s, from, pc.len) &&
        (pc.fd = pin_piece(pins, s)) >= 0) {
        pc.file_pos = from;
    } else {
        const uint8_t *src;
        pc.fd = -1;
        int r = cursor_bytes(c, s, from, pc.len, READ_AHEAD, &src);
        if (r)
            return r;
        pc.mem = src;
    }
    return sink->piece(&pc, sink->arg);
}

ssize_t partition_fetch_raw(struct partition *p, uint64_t offset, uint64_t max_offset,
                            size_t max_bytes, const struct stream_sink *sink, struct raw_fetch *out)
{
    struct partition_cursor c;
    struct pin_list pins = {0};
    size_t done = 0;
    int r = 0, stop = 0, damaged = 0;
    partition_cursor_init(&c);
    pthread_mutex_lock(&p->lock);
    struct segment *a = active(p);
    out->log_start_offset = p->segs[0]->base_offset;
    out->log_start_pos = p->segs[0]->base_pos;
    out->log_end_offset = a->next_offset;
    out->log_end_pos = a->end_pos;
    out->high_watermark = p->hw;
    out->leader_epoch = p->leader_epoch;
    out->compacted = p->compacted;
    out->next_offset = offset;
    out->batches = 0;
    if (offset < out->log_start_offset || offset > out->log_end_offset) {
        r = -ERANGE;
        goto out;
    }
    if (max_offset > a->next_offset)
        max_offset = a->next_offset;
    ssize_t i = segment_from_offset(p, offset);
    for (; i >= 0 && (size_t)i < p->nsegs && !r && !stop && !damaged; i++) {
        struct segment *s = p->segs[i];
        if (offset >= s->next_offset || (s->size == 0 && !s->nbad))
            continue;
        uint64_t fp;
        struct batch_header h;
        if ((r = segment_find_offset(s, offset, &fp, &h))) {
            if (r == -EIO && done) { /* damage after what was handed out */
                r = 0;
                damaged = 1;
            }
            break;
        }
        /* The batches that fit: one run of the file. */
        uint64_t from = fp;
        while (fp < s->size) {
            const uint8_t *hb;
            if (segment_bad_at(s, SEG_BY_FILE, fp)) {
                damaged = 1;
                break;
            }
            if ((r = cursor_bytes(&c, s, fp, BATCH_HEADER_SIZE, HEADER_READ_AHEAD, &hb)))
                break;
            if (batch_header_decode(hb, &h)) {
                r = -EIO;
                break;
            }
            size_t run = done + (size_t)(fp - from);
            if (batch_next_offset(&h) > max_offset ||
                (run && sat_add_u64(run, h.length) > max_bytes)) {
                stop = 1;
                break;
            }
            fp += h.length;
            out->next_offset = batch_next_offset(&h);
            out->batches++;
        }
        /* Records lost from the segment's end (found short at open). */
        for (size_t k = 0; k < s->nbad && !r && !stop && !damaged && fp >= s->size; k++)
            damaged = s->bad[k].file_pos >= s->size;
        if (fp > from) {
            int e = raw_piece(&c, s, from, fp, sink, &pins);
            if (e) {
                r = e;
                break;
            }
            done += (size_t)(fp - from);
        }
        offset = out->next_offset > s->next_offset ? out->next_offset : s->next_offset;
    }
    if (damaged && !done)
        r = -EIO;
    if (done && !r)
        sink->deliver(sink->arg);
out:
    pins_release(&pins);
    pthread_mutex_unlock(&p->lock);
    partition_cursor_free(&c);
    return r ? r : (ssize_t)done;
}
