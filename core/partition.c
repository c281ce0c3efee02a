/* partition.c - the partition log: appends, truncation, sync (partition.h).
 *
 * The log is a list of segments in offset order (partition_layout.c keeps
 * it and its invariants; partition_open.c opens it; partition_read.c reads
 * it). Appends go to the active segment, which rolls at segment.bytes or
 * segment.ms; the follower path appends batches a leader sealed, verbatim.
 *
 * Durability: the recovery point names a segment and a file position below
 * which the log is on stable storage: partition_sync() moves it only after
 * every segment with unsynced bytes was fdatasync'd and the directory
 * entries of the segments created since the last sync were fsync'd (each
 * segment knows its synced_size). Truncation writes it at once, after the
 * cut is stable. */
#include "partition_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "logger.h"
#include "satmath.h"

void partition_set_settings(struct partition *p, const struct partition_settings *st)
{
    pthread_mutex_lock(&p->lock);
    p->settings = *st;
    pthread_mutex_unlock(&p->lock);
}

/* Starts a new active segment if the current one is full or old. */
static int maybe_roll(struct partition *p, size_t incoming, int64_t now)
{
    struct segment *a = active(p);
    if (a->size == 0)
        return 0;
    if (sat_add_u64(a->size, incoming) <= p->settings.segment_bytes &&
        sat_sub_i64(now, a->created_ms) < p->settings.segment_ms)
        return 0;
    struct segment *s;
    int r = segment_create(p->dir, a->next_offset, a->end_pos, now, &s);
    if (r)
        return r;
    s->view_start = a->view_start + (a->end_pos - a->base_pos);
    if ((r = push_segment(p, s))) {
        segment_delete(s);
        return r;
    }
    segment_set_active(a, 0);
    p->dir_dirty = 1; /* partition_sync() makes the new files' entries stable */
    return 0;
}

static void count_in(struct partition *p, const struct batch_header *h)
{
    atomic_fetch_add_explicit(&p->records_in, h->record_count, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->bytes_in, h->values_len, memory_order_relaxed);
}

int partition_append(struct partition *p, struct batch_builder *b, int64_t timestamp,
                     uint64_t *base_offset)
{
    const struct iovec *iov;
    int iovcnt, r;
    size_t len;

    pthread_mutex_lock(&p->lock);
    if (p->deleted) {
        pthread_mutex_unlock(&p->lock);
        return -ENOENT;
    }
    struct segment *a = active(p);
    r = batch_builder_seal(b, p->settings.codec, a->next_offset, a->end_pos, timestamp,
                           p->leader_epoch, &iov, &iovcnt, &len);
    if (!r && (r = maybe_roll(p, len, timestamp)) == 0) {
        struct batch_header h;
        batch_header_decode(iov[0].iov_base, &h);
        r = segment_append(active(p), iov, iovcnt, &h);
        if (!r)
            count_in(p, &h);
        if (!r && base_offset)
            *base_offset = h.base_offset;
    }
    pthread_mutex_unlock(&p->lock);
    return r;
}

int partition_append_batch(struct partition *p, const uint8_t *batch, size_t len)
{
    struct batch_header h;
    int r;
    if (len < BATCH_HEADER_SIZE || batch_header_decode(batch, &h) || batch_verify(batch, len))
        return -EBADMSG;
    pthread_mutex_lock(&p->lock);
    struct segment *a = active(p);
    if (p->deleted) {
        r = -ENOENT;
    } else if (h.base_offset != a->next_offset || h.base_pos != a->end_pos) {
        r = -EINVAL;
    } else if ((r = maybe_roll(p, len, h.timestamp)) == 0) {
        struct iovec iov = {.iov_base = (void *)batch, .iov_len = len};
        r = segment_append(active(p), &iov, 1, &h);
        if (!r)
            count_in(p, &h);
    }
    pthread_mutex_unlock(&p->lock);
    return r;
}

int partition_truncate(struct partition *p, uint64_t offset)
{
    int r = 0;
    /* A cleaner pass must not put back segments it copied before the cut. */
    pthread_mutex_lock(&p->maintenance);
    pthread_mutex_lock(&p->lock);
    if (p->deleted) {
        r = -ENOENT;
        goto out;
    }
    if (offset >= active(p)->next_offset)
        goto out;
    if ((r = reserve_epoch(p)))
        goto out;
    /* Positions from the cut on will hold other bytes: older views must not
     * read there, nor keep old layouts that the cut may reach into. */
    ssize_t i = segment_from_offset(p, offset);
    uint64_t fp, cut_pos = i < 0 ? view_end(p) : 0;
    struct batch_header h;
    if (i >= 0 && !segment_find_offset(p->segs[i], offset, &fp, &h))
        cut_pos = p->segs[i]->view_start + (h.base_pos - p->segs[i]->base_pos);
    kept_expire(p, 1);
    /* Newest first, up to the first whose .log cannot go: the log then ends
     * with that segment, whole (on disk as in memory), and the error is
     * returned once the recovery point says where it ends. */
    size_t removed = 0;
    int failed = 0;
    while (p->nsegs > 1 && active(p)->base_offset >= offset) {
        struct segment *s = active(p);
        if ((failed = segment_unlink(s)))
            break;
        p->nsegs--;
        segment_release(s);
        removed++;
    }
    if (failed && !removed) {
        r = failed;
        goto out;
    }
    if (failed)
        cut_pos = view_end(p);
    struct old_layout none = {0};
    bump_epoch(p, 0, 0, cut_pos, &none);
    p->truncations++;
    struct segment *a = active(p);
    if (!a->active && (r = segment_set_active(a, 1)))
        goto out;
    if (!failed && (r = segment_truncate(a, offset)))
        goto out;
    if ((r = segment_sync(a)))
        goto out;
    a->synced_size = a->size;
    /* The removed segments must not come back after a crash. */
    if ((r = fsutil_sync_dir(p->dir)))
        goto out;
    struct recovery_point now = {a->base_offset, a->size, a->next_offset, a->end_pos};
    if (!(r = write_recovery_point(p, &now)))
        r = failed;
out:
    pthread_mutex_unlock(&p->lock);
    pthread_mutex_unlock(&p->maintenance);
    return r;
}

int partition_sync(struct partition *p)
{
    int r = 0;
    pthread_mutex_lock(&p->lock);
    struct segment *a = active(p);
    struct recovery_point now = {a->base_offset, a->size, a->next_offset, a->end_pos};
    /* Every segment with bytes not yet on stable storage: the recovery point
     * may only move over synced bytes. Kept alive by a reference while the
     * lock is let go. */
    size_t n = 0;
    for (size_t i = 0; i < p->nsegs; i++)
        n += p->segs[i]->synced_size < p->segs[i]->size;
    if (n == 0 && !p->dir_dirty && now.next_offset == p->recovery_offset) {
        pthread_mutex_unlock(&p->lock);
        return 0;
    }
    struct segment **dirty = n ? malloc(n * sizeof(*dirty)) : NULL;
    uint64_t *sizes = n ? malloc(n * sizeof(*sizes)) : NULL;
    if (n && (!dirty || !sizes)) {
        free(dirty);
        free(sizes);
        pthread_mutex_unlock(&p->lock);
        return -ENOMEM;
    }
    n = 0;
    for (size_t i = 0; i < p->nsegs; i++) {
        struct segment *s = p->segs[i];
        if (s->synced_size < s->size) {
            s->refs++;
            dirty[n] = s;
            sizes[n++] = s->size;
        }
    }
    int dir_dirty = p->dir_dirty;
    const char *dir = p->dir; /* valid until the close (partition_move) */
    uint32_t truncations = p->truncations;
    p->dir_dirty = 0;
    pthread_mutex_unlock(&p->lock);
    /* fdatasync outside the lock: appends go on meanwhile. */
    int *ok = n ? calloc(n, sizeof(*ok)) : NULL;
    for (size_t i = 0; i < n; i++) {
        int e = segment_sync(dirty[i]);
        if (e && !r)
            r = e;
        if (ok)
            ok[i] = !e;
    }
    /* The directory entries of segments created since the last sync. */
    if (dir_dirty) {
        int e = fsutil_sync_dir(dir);
        if (e && !r)
            r = e;
    }
    pthread_mutex_lock(&p->lock);
    if (r && dir_dirty)
        p->dir_dirty = 1;
    for (size_t i = 0; i < n; i++) {
        if (ok && ok[i] && dirty[i]->synced_size < sizes[i])
            dirty[i]->synced_size = sizes[i];
        segment_release(dirty[i]);
    }
    if (!r && !ok && n)
        r = -ENOMEM;
    /* A truncation meanwhile wrote its own recovery point: `now` may lie
     * past its cut. */
    if (!r && now.next_offset > p->recovery_offset && truncations == p->truncations)
        r = write_recovery_point(p, &now);
    pthread_mutex_unlock(&p->lock);
    free(ok);
    free(dirty);
    free(sizes);
    return r;
}

void partition_info(struct partition *p, struct partition_info *info)
{
    pthread_mutex_lock(&p->lock);
    struct segment *a = active(p);
    info->start_offset = p->segs[0]->base_offset;
    info->start_pos = p->segs[0]->base_pos;
    info->end_offset = a->next_offset;
    info->end_pos = a->end_pos;
    info->segments = (uint32_t)p->nsegs;
    info->leader_epoch = p->leader_epoch;
    info->view_bytes = view_end(p);
    info->stored_bytes = 0;
    info->last_append_ms = 0;
    info->records_in = atomic_load_explicit(&p->records_in, memory_order_relaxed);
    info->bytes_in = atomic_load_explicit(&p->bytes_in, memory_order_relaxed);
    info->bytes_out = atomic_load_explicit(&p->bytes_out, memory_order_relaxed);
    info->bad_batches = 0;
    for (size_t i = 0; i < p->nsegs; i++) {
        info->bad_batches += p->segs[i]->nbad;
        info->stored_bytes += p->segs[i]->size;
        if (p->segs[i]->max_timestamp > info->last_append_ms)
            info->last_append_ms = p->segs[i]->max_timestamp;
    }
    pthread_mutex_unlock(&p->lock);
}

uint64_t partition_end_pos(struct partition *p)
{
    pthread_mutex_lock(&p->lock);
    uint64_t e = active(p)->end_pos;
    pthread_mutex_unlock(&p->lock);
    return e;
}
