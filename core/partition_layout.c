/* partition_layout.c - the segment list of a partition and its layout
 * epochs (partition.h: struct partition_view, struct layout_epoch).
 *
 * Invariants of the list:
 *   - segs[i+1]->base_offset >= segs[i]->next_offset and
 *     segs[i+1]->base_pos >= segs[i]->end_pos (no overlap; compaction leaves
 *     gaps);
 *   - only segs[nsegs-1] (the active segment) is written to;
 *   - segs[i]->view_start is where the segment's bytes lie in the current
 *     view: positions run from 0 at the log start over the surviving values
 *     (relayout).
 *
 * Each change of the layout (retention, compaction, truncation, reset)
 * starts a new layout epoch (reserve_epoch before anything changes, so
 * bump_epoch cannot fail). Views of older epochs keep their coordinates;
 * the segments below a change's frontier stay open for them in the epoch's
 * old layout (refs) for file.delete.delay.ms, or until no open view is old
 * enough to read them.
 *
 * Removal (retention from the head here, truncation from the tail in
 * partition.c) goes segment by segment and stops at the first whose .log
 * cannot be unlinked: that one stays in the list, so memory and disk always
 * hold the same whole log and no open finds a segment the list had dropped.
 * Retention removes only segments wholly below the high watermark (Kafka's
 * rule: the log start never passes it), and leaves the leader-epoch cache
 * the entry that covers the new log start. */
#include "partition_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "compaction.h"
#include "logger.h"
#include "satmath.h"

void relayout(struct partition *p)
{
    uint64_t at = 0;
    for (size_t i = 0; i < p->nsegs; i++) {
        p->segs[i]->view_start = at;
        at += live_bytes(p->segs[i]);
    }
}

int push_segment(struct partition *p, struct segment *s)
{
    if (p->nsegs == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        struct segment **n = realloc(p->segs, cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        p->segs = n;
        p->cap = cap;
    }
    p->segs[p->nsegs++] = s;
    return 0;
}

/* Index of the last segment whose base offset (by_pos: base position) is at
 * or below value, or -1: the list is sorted by both. */
static ssize_t last_base_at_or_below(struct partition *p, uint64_t value, int by_pos)
{
    ssize_t lo = 0, hi = (ssize_t)p->nsegs - 1, best = -1;
    while (lo <= hi) {
        ssize_t mid = lo + (hi - lo) / 2;
        uint64_t base = by_pos ? p->segs[mid]->base_pos : p->segs[mid]->base_offset;
        if (base <= value) {
            best = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return best;
}

ssize_t segment_for_offset(struct partition *p, uint64_t offset)
{
    return last_base_at_or_below(p, offset, 0);
}

ssize_t segment_from_offset(struct partition *p, uint64_t offset)
{
    ssize_t i = segment_for_offset(p, offset);
    if (i < 0)
        i = 0;
    while ((size_t)i < p->nsegs &&
           (p->segs[i]->next_offset <= offset || (p->segs[i]->size == 0 && !p->segs[i]->nbad)))
        i++;
    return (size_t)i < p->nsegs ? i : -1;
}

ssize_t segment_for_pos(struct partition *p, uint64_t pos)
{
    ssize_t best = last_base_at_or_below(p, pos, 1);
    /* Skip empty segments that share a base position with the next one. */
    while (best >= 0 && (size_t)best + 1 < p->nsegs && p->segs[best]->end_pos <= pos)
        best++;
    return best;
}

struct segment *segment_by_base(struct partition *p, uint64_t base)
{
    ssize_t i = segment_for_offset(p, base);
    return i >= 0 && p->segs[i]->base_offset == base ? p->segs[i] : NULL;
}

void old_layout_take(struct partition *p, size_t n, struct old_layout *o)
{
    o->n = 0;
    o->segs = n ? malloc(n * sizeof(*o->segs)) : NULL;
    o->start = n ? malloc(n * sizeof(*o->start)) : NULL;
    if (!o->segs || !o->start) {
        free(o->segs);
        free(o->start);
        o->segs = NULL;
        o->start = NULL;
        return; /* not kept: older views get -ENODATA there */
    }
    for (size_t i = 0; i < n; i++) {
        o->segs[i] = p->segs[i];
        o->start[i] = p->segs[i]->view_start;
        p->segs[i]->refs++;
    }
    o->n = n;
}

static void kept_release(struct layout_epoch *le)
{
    for (size_t i = 0; i < le->nbefore; i++)
        segment_release(le->before[i]);
    free(le->before);
    free(le->before_start);
    le->before = NULL;
    le->before_start = NULL;
    le->nbefore = 0;
}

void kept_expire(struct partition *p, int force)
{
    int64_t now = force ? INT64_MAX : clock_now_ms();
    uint64_t newer = 0; /* open views of epochs >= j */
    for (uint32_t j = p->epoch + 1; j-- > p->kept_from;) {
        struct layout_epoch *le = &p->epochs[j];
        newer += le->views;
        if (le->nbefore && (force || le->keep_until_ms <= now || p->views == newer))
            kept_release(le);
    }
    while (p->kept_from < p->epoch && !p->epochs[p->kept_from].nbefore)
        p->kept_from++;
}

void partition_view_hold(struct partition *p, const struct partition_view *v)
{
    pthread_mutex_lock(&p->lock);
    if (v->epoch <= p->epoch) {
        p->epochs[v->epoch].views++;
        p->views++;
    }
    pthread_mutex_unlock(&p->lock);
}

void partition_view_release(struct partition *p, const struct partition_view *v)
{
    pthread_mutex_lock(&p->lock);
    if (v->epoch <= p->epoch && p->epochs[v->epoch].views) {
        p->epochs[v->epoch].views--;
        p->views--;
    }
    if (p->epochs[p->kept_from].nbefore)
        kept_expire(p, 0);
    pthread_mutex_unlock(&p->lock);
}

void partition_expire_kept(struct partition *p)
{
    pthread_mutex_lock(&p->lock);
    kept_expire(p, 0);
    pthread_mutex_unlock(&p->lock);
}

int partition_fail_epoch_grow;

int reserve_epoch(struct partition *p)
{
    if (p->epoch + 1 < p->epochs_cap)
        return 0;
    size_t cap = p->epochs_cap * 2;
    struct layout_epoch *n =
        partition_fail_epoch_grow ? NULL : realloc(p->epochs, cap * sizeof(*n));
    if (!n)
        return -ENOMEM;
    p->epochs = n;
    p->epochs_cap = cap;
    return 0;
}

void bump_epoch(struct partition *p, uint64_t removed, uint64_t frontier_pos, uint64_t cut_pos,
                struct old_layout *old)
{
    p->epoch++;
    struct layout_epoch *le = &p->epochs[p->epoch];
    memset(le, 0, sizeof(*le));
    le->removed = p->epochs[p->epoch - 1].removed + removed;
    le->frontier_pos = frontier_pos;
    le->cut_pos = cut_pos;
    le->before = old->segs;
    le->before_start = old->start;
    le->nbefore = old->n;
    le->keep_until_ms = sat_add_i64(clock_now_ms(), p->settings.file_delete_delay_ms);
    if (p->settings.file_delete_delay_ms <= 0 || p->views == 0)
        kept_release(le); /* nobody could read it */
    relayout(p);
    kept_expire(p, 0);
}

void partition_current_view(struct partition *p, struct partition_view *v)
{
    pthread_mutex_lock(&p->lock);
    v->epoch = p->epoch;
    v->shift = 0;
    pthread_mutex_unlock(&p->lock);
}

uint64_t removed_since(struct partition *p, uint32_t e)
{
    return p->epochs[p->epoch].removed - p->epochs[e].removed;
}

uint64_t partition_view_size(struct partition *p, const struct partition_view *v)
{
    pthread_mutex_lock(&p->lock);
    uint64_t size = 0;
    if (v->epoch <= p->epoch) {
        uint64_t end = visible_view_end(p) + removed_since(p, v->epoch);
        size = end > v->shift ? end - v->shift : 0;
    }
    pthread_mutex_unlock(&p->lock);
    return size;
}

int partition_move(struct partition *p, const char *dir)
{
    int r = 0;
    char seg_dir[4096];
    /* No cleaner pass is halfway through paths under the old name. */
    pthread_mutex_lock(&p->maintenance);
    pthread_mutex_lock(&p->lock);
    char *d = strdup(dir);
    if (d) {
        free(p->old_dir);
        p->old_dir = p->dir;
        p->dir = d;
    } else {
        r = -ENOMEM;
    }
    p->deleted = 1;
    acks_fence(p);
    snprintf(seg_dir, sizeof(seg_dir), "%s", dir);
    /* Every segment object: the list's and the kept layouts'. */
    for (size_t i = 0; i < p->nsegs; i++) {
        int e = segment_set_dir(p->segs[i], seg_dir);
        r = r ? r : e;
    }
    for (uint32_t j = p->kept_from; j <= p->epoch; j++)
        for (size_t i = 0; i < p->epochs[j].nbefore; i++) {
            int e = segment_set_dir(p->epochs[j].before[i], seg_dir);
            r = r ? r : e;
        }
    pthread_mutex_unlock(&p->lock);
    pthread_mutex_unlock(&p->maintenance);
    return r;
}

int partition_retire_segment(struct partition *p, uint64_t base)
{
    int r = 0;
    pthread_mutex_lock(&p->lock);
    struct segment *s = segment_by_base(p, base);
    if (s && (r = segment_retire(s, 1)) == -ENOENT)
        r = 0; /* its .log went already: an earlier try retired it */
    pthread_mutex_unlock(&p->lock);
    return r;
}

int partition_delete_head(struct partition *p, size_t n, size_t *removed)
{
    int r = 0;
    size_t k = 0;
    pthread_mutex_lock(&p->lock);
    if (n >= p->nsegs)
        n = p->nsegs - 1;
    /* The log start never passes the high watermark. */
    while (n && p->segs[n - 1]->next_offset > p->hw)
        n--;
    if (p->reset_pending)
        r = -EIO;
    if (r || n == 0 || (r = reserve_epoch(p)))
        goto out;
    /* Oldest first, up to the first whose .log cannot go: that one and all
     * after it stay, on disk as in memory, so the log stays whole (a segment
     * dropped here but left on disk would come back below the log start at
     * the next open, with a gap). The next pass tries again. */
    while (k < n && !(r = segment_unlink(p->segs[k])))
        k++;
    if (k == 0)
        goto out;
    uint64_t bytes = 0;
    struct old_layout old;
    old_layout_take(p, k, &old);
    uint64_t frontier_pos = p->segs[k]->view_start;
    for (size_t i = 0; i < k; i++) {
        bytes += live_bytes(p->segs[i]);
        segment_release(p->segs[i]);
    }
    memmove(p->segs, p->segs + k, (p->nsegs - k) * sizeof(*p->segs));
    p->nsegs -= k;
    bump_epoch(p, bytes, frontier_pos, UINT64_MAX, &old);
    head_removed(p);
out:
    pthread_mutex_unlock(&p->lock);
    if (removed)
        *removed = k;
    return r;
}

int partition_reload_segments(struct partition *p, const uint64_t *bases, const int *deleted,
                              size_t n)
{
    int r = 0;
    uint64_t removed = 0;
    pthread_mutex_lock(&p->lock);
    if (p->reset_pending || (!p->compacted && (r = note_compacted(p, 1)))) {
        r = r ? r : -EIO;
        pthread_mutex_unlock(&p->lock);
        return r;
    }
    /* Everything up to the last rewritten segment is the old layout. */
    size_t upto = 0;
    for (size_t k = 0; k < n; k++) {
        ssize_t i = segment_for_offset(p, bases[k]);
        if (i >= 0 && p->segs[i]->base_offset == bases[k] && (size_t)i + 1 < p->nsegs &&
            (size_t)i + 1 > upto)
            upto = (size_t)i + 1;
    }
    if (upto == 0 || (r = reserve_epoch(p))) {
        pthread_mutex_unlock(&p->lock);
        return r ? r : n ? -ENOENT : 0;
    }
    uint64_t frontier_pos = p->segs[upto]->view_start;
    struct old_layout old;
    old_layout_take(p, upto, &old);
    for (size_t k = 0; k < n; k++) {
        ssize_t i = segment_for_offset(p, bases[k]);
        if (i < 0 || p->segs[i]->base_offset != bases[k] || (size_t)i + 1 >= p->nsegs) {
            r = -ENOENT; /* only closed segments are ever rewritten */
            continue;
        }
        struct segment *prev = p->segs[i], *s = NULL;
        if (!deleted[k]) {
            int e = segment_open(p->dir, prev->base_offset, prev->base_pos, NULL, &s);
            if (e) {
                r = e;
                continue;
            }
            p->segs[i] = s;
        } else {
            memmove(&p->segs[i], &p->segs[i + 1], (p->nsegs - (size_t)i - 1) * sizeof(*p->segs));
            p->nsegs--;
        }
        removed += live_bytes(prev) - (s ? live_bytes(s) : 0);
        segment_release(prev);
    }
    bump_epoch(p, removed, frontier_pos, UINT64_MAX, &old);
    head_removed(p);
    pthread_mutex_unlock(&p->lock);
    return r;
}

void head_removed(struct partition *p)
{
    leader_epoch_truncate_from_start(&p->leader_epochs, p->segs[0]->base_offset);
    hw_fix(p); /* only compaction's gaps can put the start past it */
}
