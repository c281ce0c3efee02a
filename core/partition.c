/* partition.c - the partition log: appends, truncation, reset, sync, the
 * high watermark, leader epochs, the listener (partition.h).
 *
 * The log is a list of segments in offset order (partition_layout.c keeps
 * it and its invariants; partition_open.c opens it; partition_read.c reads
 * it). Appends go to the active segment, which rolls at segment.bytes or
 * segment.ms; the follower path appends batches a leader sealed, verbatim,
 * and is all or nothing: a batch that fails undoes the ones before it.
 *
 * Durability: the recovery point names a segment and a file position below
 * which the log is on stable storage: partition_sync() moves it only after
 * every segment with unsynced bytes was fdatasync'd and the directory
 * entries of the segments created since the last sync were fsync'd (each
 * segment knows its synced_size). Truncation writes it at once, after the
 * cut is stable.
 *
 * Leader epochs (leader_epoch.h): every change of the cache writes the
 * checkpoint first and changes memory after, so a refused change leaves
 * both as they were. A checkpoint may then claim epochs for offsets the
 * log does not hold (an append that failed or was lost in a crash): the
 * open trims those past the log end; one at the log end is what a new
 * leader's assign leaves anyway. It never lacks an epoch the log holds,
 * except where a truncation's or append's undo could not rewrite it: less
 * knowledge only makes a returning replica truncate more, never less.
 *
 * High watermark: hw (offset) and hw_pos (its stream position) always lie
 * in [log start, log end]; they follow the log end while hw_follows_end,
 * else move only by partition_set_high_watermark (up) and
 * partition_hold_high_watermark, and come down with truncation and reset.
 * Retention never removes a segment past it; compaction never rewrites one.
 *
 * Reset: the "log-reset" file (start offset, start position, XXH3) is
 * written atomically first; it is the commit point. Then every segment
 * file goes, the new empty segment and its recovery point are made, the
 * epoch and cleaner checkpoints go, and the file is removed
 * (reset_finish, which partition_open runs too when it finds the file).
 *
 * Listener: a change notes what it did under the lock (note_take) and
 * calls the listener after unlocking (note_send). */
#include "partition_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "fsutil.h"
#include "logger.h"
#include "satmath.h"

void partition_set_settings(struct partition *p, const struct partition_settings *st)
{
    pthread_mutex_lock(&p->lock);
    p->settings = *st;
    pthread_mutex_unlock(&p->lock);
}

/* ---- listener ---- */

struct note {
    partition_listener_fn fn;
    void *arg;
    unsigned events;
};

static void note_take(struct partition *p, unsigned events, struct note *n)
{
    n->fn = p->listener;
    n->arg = p->listener_arg;
    n->events = events;
}

static void note_send(struct partition *p, const struct note *n)
{
    /* Appends waiting for acknowledgement look again (a broadcast without
     * waiters costs next to nothing, so single-node appends pay no more). */
    if (n->events & (PARTITION_EVENT_HW | PARTITION_EVENT_TRUNCATE))
        pthread_cond_broadcast(&p->acks_cond);
    if (n->fn && n->events)
        n->fn(n->arg, p, n->events);
}

void partition_set_listener(struct partition *p, partition_listener_fn fn, void *arg)
{
    pthread_mutex_lock(&p->lock);
    p->listener = fn;
    p->listener_arg = arg;
    pthread_mutex_unlock(&p->lock);
}

/* ---- high watermark ---- */

unsigned hw_fix(struct partition *p)
{
    struct segment *a = active(p), *first = p->segs[0];
    uint64_t hw = p->hw, pos = p->hw_pos;
    if (p->hw_follows_end || hw >= a->next_offset) {
        hw = a->next_offset;
        pos = a->end_pos;
    } else if (hw <= first->base_offset) {
        hw = first->base_offset;
        pos = first->base_pos;
    }
    if (hw == p->hw && pos == p->hw_pos)
        return 0;
    p->hw = hw;
    p->hw_pos = pos;
    return PARTITION_EVENT_HW;
}

uint64_t visible_view_end(struct partition *p)
{
    struct segment *a = active(p);
    if (p->hw_pos >= a->end_pos)
        return view_end(p);
    ssize_t i = segment_for_pos(p, p->hw_pos);
    if (i < 0)
        return 0;
    struct segment *s = p->segs[i];
    if (p->hw_pos <= s->base_pos)
        return s->view_start;
    uint64_t in = p->hw_pos - s->base_pos;
    return s->view_start + (in < live_bytes(s) ? in : live_bytes(s));
}

/* Moves the high watermark to hw (within the log), finding its position. */
static int hw_move(struct partition *p, uint64_t hw, struct note *n)
{
    size_t seg;
    uint64_t pos;
    if (hw > active(p)->next_offset)
        hw = active(p)->next_offset;
    if (hw < p->segs[0]->base_offset)
        hw = p->segs[0]->base_offset;
    if (hw == p->hw)
        return 0;
    int r = offset_pos_locked(p, hw, 0, &seg, &pos);
    if (r)
        return r;
    p->hw = hw;
    p->hw_pos = pos;
    n->events |= PARTITION_EVENT_HW;
    return 0;
}

int partition_set_high_watermark(struct partition *p, uint64_t hw)
{
    struct note n;
    int r = 0;
    pthread_mutex_lock(&p->lock);
    note_take(p, 0, &n);
    if (!p->hw_follows_end && hw > p->hw)
        r = hw_move(p, hw, &n);
    pthread_mutex_unlock(&p->lock);
    note_send(p, &n);
    return r;
}

int partition_hold_high_watermark(struct partition *p, uint64_t hw)
{
    struct note n;
    pthread_mutex_lock(&p->lock);
    note_take(p, 0, &n);
    int r = hw_move(p, hw, &n);
    if (!r)
        p->hw_follows_end = 0;
    pthread_mutex_unlock(&p->lock);
    note_send(p, &n);
    return r;
}

void partition_follow_end(struct partition *p)
{
    struct note n;
    pthread_mutex_lock(&p->lock);
    p->hw_follows_end = 1;
    note_take(p, hw_fix(p), &n);
    pthread_mutex_unlock(&p->lock);
    note_send(p, &n);
}

/* ---- leader epochs ---- */

static void epochs_installed(struct partition *p)
{
    uint32_t e;
    p->leader_epoch = leader_epoch_latest(&p->leader_epochs, &e) ? 0 : e;
}

/* Makes `next` the cache, its checkpoint written first, if it differs; on
 * success *next holds the old cache (the caller frees it). */
static int epochs_replace(struct partition *p, struct leader_epoch_cache *next)
{
    if (leader_epoch_equal(&p->leader_epochs, next))
        return 0;
    int r = leader_epoch_store(p->dir, next);
    if (r)
        return r;
    struct leader_epoch_cache old = p->leader_epochs;
    p->leader_epochs = *next;
    *next = old;
    epochs_installed(p);
    return 0;
}

int partition_assign_epoch(struct partition *p, uint32_t epoch, uint64_t start_offset)
{
    struct leader_epoch_cache next;
    leader_epoch_init(&next);
    pthread_mutex_lock(&p->lock);
    if (start_offset == PARTITION_LOG_END)
        start_offset = active(p)->next_offset;
    int r = p->deleted ? -ENOENT : start_offset > active(p)->next_offset ? -EINVAL : 0;
    if (!r)
        r = leader_epoch_copy(&next, &p->leader_epochs);
    if (!r && (r = leader_epoch_assign(&next, epoch, start_offset)) > 0)
        r = epochs_replace(p, &next);
    pthread_mutex_unlock(&p->lock);
    leader_epoch_free(&next);
    return r < 0 ? r : 0;
}

int partition_end_offset_for_epoch(struct partition *p, uint32_t epoch, uint32_t *epoch_out,
                                   uint64_t *end_offset)
{
    pthread_mutex_lock(&p->lock);
    int r = leader_epoch_end_offset_for(&p->leader_epochs, epoch, active(p)->next_offset, epoch_out,
                                        end_offset);
    pthread_mutex_unlock(&p->lock);
    return r;
}

int partition_latest_epoch(struct partition *p, uint32_t *epoch)
{
    pthread_mutex_lock(&p->lock);
    int r = leader_epoch_latest(&p->leader_epochs, epoch);
    pthread_mutex_unlock(&p->lock);
    return r;
}

int partition_truncation_point(struct partition *p, uint32_t leader_epoch, uint64_t leader_end,
                               uint64_t *offset, int *final)
{
    uint32_t epoch;
    uint64_t end;
    pthread_mutex_lock(&p->lock);
    uint64_t log_end = active(p)->next_offset;
    int r = p->leader_epochs.n ? 0 : -ENOENT;
    if (!r) {
        /* Where leader_epoch (or the largest epoch below it) ends here. */
        if (leader_epoch_end_offset_for(&p->leader_epochs, leader_epoch, log_end, &epoch, &end)) {
            /* Newer than all ours: the leader's end is the bound. */
            *offset = leader_end;
            *final = 1;
        } else if (epoch != leader_epoch) {
            /* We do not know the leader's epoch: cut back to the end of the
             * largest one below it that we know, and ask again. */
            *offset = end;
            *final = 0;
        } else {
            *offset = end < leader_end ? end : leader_end;
            *final = 1;
        }
        if (*offset > log_end)
            *offset = log_end;
    }
    pthread_mutex_unlock(&p->lock);
    return r;
}

/* ---- appends ---- */

/* Starts a new active segment at (base, pos) after the current one, which
 * is closed. */
static int roll_at(struct partition *p, uint64_t base, uint64_t pos, int64_t now)
{
    struct segment *a = active(p), *s;
    int r = segment_create(p->dir, base, pos, now, &s);
    if (r)
        return r;
    s->view_start = a->view_start + live_bytes(a);
    if ((r = push_segment(p, s))) {
        segment_delete(s);
        return r;
    }
    segment_set_active(a, 0);
    p->dir_dirty = 1; /* partition_sync() makes the new files' entries stable */
    return 0;
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
    return roll_at(p, a->next_offset, a->end_pos, now);
}

static void count_in(struct partition *p, const struct batch_header *h)
{
    atomic_fetch_add_explicit(&p->records_in, h->record_count, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->bytes_in, h->values_len, memory_order_relaxed);
}

/* Appends are refused on a deleted topic's partition and after a reset
 * that did not finish. */
static int writable(struct partition *p)
{
    return p->deleted ? -ENOENT : p->reset_pending ? -EIO : 0;
}

static int append(struct partition *p, struct batch_builder *b, int64_t timestamp,
                  uint64_t *base_offset, struct partition_ack *ack);

int partition_append_records(struct partition *p, struct batch_builder *b,
                             const struct record_ref *r, size_t n, int64_t timestamp,
                             uint64_t *base_offset, struct partition_ack *ack)
{
    batch_builder_reset(b);
    for (size_t i = 0; i < n; i++) {
        int e = batch_builder_add_record(b, r[i].len, r[i].key_len);
        if (!e)
            e = batch_builder_add_values(b, r[i].data, r[i].len);
        if (e)
            return e;
    }
    return append(p, b, timestamp, base_offset, ack);
}

int partition_append(struct partition *p, struct batch_builder *b, int64_t timestamp,
                     uint64_t *base_offset)
{
    return append(p, b, timestamp, base_offset, NULL);
}

static int append(struct partition *p, struct batch_builder *b, int64_t timestamp,
                  uint64_t *base_offset, struct partition_ack *ack)
{
    const struct iovec *iov;
    int iovcnt, r;
    size_t len;
    struct note n = {0};

    pthread_mutex_lock(&p->lock);
    if ((r = writable(p)) || (ack && (r = acks_check(p, ack)))) {
        pthread_mutex_unlock(&p->lock);
        return r;
    }
    struct segment *a = active(p);
    r = batch_builder_seal(b, p->settings.codec, a->next_offset, a->end_pos, timestamp,
                           p->leader_epoch, &iov, &iovcnt, &len);
    if (!r && (r = maybe_roll(p, len, timestamp)) == 0) {
        struct batch_header h;
        batch_header_decode(iov[0].iov_base, &h);
        r = segment_append(active(p), iov, iovcnt, &h);
        if (!r) {
            count_in(p, &h);
            note_take(p, PARTITION_EVENT_APPEND | hw_fix(p), &n);
        }
        if (!r && base_offset)
            *base_offset = h.base_offset;
        if (!r && ack) {
            ack->end_offset = batch_next_offset(&h);
            ack->term = p->acks_term;
        }
    }
    pthread_mutex_unlock(&p->lock);
    note_send(p, &n);
    return r;
}

/* Checks that `len` bytes are whole verified batches, each following on
 * from the one before (offsets and positions never go back): 0, -EBADMSG,
 * or -EINVAL. *gaps says whether offsets or positions jump somewhere. */
static int check_batches(const uint8_t *buf, size_t len, int *gaps)
{
    uint64_t next = 0, end = 0;
    *gaps = 0;
    for (size_t at = 0; at < len;) {
        struct batch_header h;
        if (len - at < BATCH_HEADER_SIZE || batch_header_decode(buf + at, &h) ||
            h.length > len - at || batch_verify(buf + at, h.length))
            return -EBADMSG;
        if (at && (h.base_offset < next || h.base_pos < end))
            return -EINVAL;
        if (at && (h.base_offset != next || h.base_pos != end))
            *gaps = 1;
        next = batch_next_offset(&h);
        end = batch_end_pos(&h);
        at += h.length;
    }
    return len ? 0 : -EBADMSG;
}

/* What a follower append changed, to undo it: the list had nsegs segments,
 * the last of them `a` with next_offset `next` (and compacted flag); or
 * that empty active segment was replaced by one at another position. */
struct append_undo {
    size_t nsegs;
    uint64_t next;
    int compacted;
    int replaced;
    uint64_t replaced_base, replaced_pos;
    int64_t replaced_ms;
};

/* Moves the empty active segment to (base, pos): its files go, a new one
 * takes its place. */
static int replace_empty_active(struct partition *p, uint64_t base, uint64_t pos, int64_t now)
{
    struct segment *a = active(p), *s;
    uint64_t view_start = a->view_start;
    int r = segment_unlink(a);
    if (r)
        return r;
    if ((r = segment_create(p->dir, base, pos, now, &s))) {
        /* Put an empty one back where it was. */
        struct segment *back;
        if (segment_create(p->dir, a->base_offset, a->base_pos, a->created_ms, &back) == 0) {
            back->view_start = view_start;
            segment_release(a);
            p->segs[p->nsegs - 1] = back;
        } else {
            logger_log(LOG_LEVEL_ERROR, "%s: cannot recreate the empty active segment", p->dir);
        }
        return r;
    }
    s->view_start = view_start;
    segment_release(a);
    p->segs[p->nsegs - 1] = s;
    p->dir_dirty = 1;
    return 0;
}

/* Takes back what a follower append wrote (all or nothing). */
static void append_undo(struct partition *p, const struct append_undo *u)
{
    while (p->nsegs > u->nsegs) {
        struct segment *s = active(p);
        p->nsegs--;
        if (segment_unlink(s))
            logger_log(LOG_LEVEL_ERROR, "%s: cannot remove segment %llu of a failed append", p->dir,
                       (unsigned long long)s->base_offset);
        segment_release(s);
    }
    struct segment *a = active(p);
    if (u->replaced) {
        if (a->size && segment_truncate(a, a->base_offset))
            logger_log(LOG_LEVEL_ERROR, "%s: cannot cut a failed append", p->dir);
        if (replace_empty_active(p, u->replaced_base, u->replaced_pos, u->replaced_ms))
            logger_log(LOG_LEVEL_ERROR, "%s: cannot move the empty active segment back", p->dir);
        return;
    }
    if (!a->active && segment_set_active(a, 1))
        logger_log(LOG_LEVEL_ERROR, "%s: cannot reopen the active segment", p->dir);
    if (a->next_offset > u->next && segment_truncate(a, u->next))
        logger_log(LOG_LEVEL_ERROR, "%s: cannot cut a failed append", p->dir);
    a->compacted = u->compacted;
}

int partition_append_batch(struct partition *p, const uint8_t *batches, size_t len)
{
    struct leader_epoch_cache next, old;
    struct note n = {0};
    int gaps;
    /* Checksums outside the lock: appends and reads go on meanwhile. */
    int r = check_batches(batches, len, &gaps);
    if (r)
        return r;
    leader_epoch_init(&next);
    leader_epoch_init(&old);
    pthread_mutex_lock(&p->lock);
    struct segment *a = active(p);
    struct append_undo u = {p->nsegs, a->next_offset, a->compacted, 0, 0, 0, 0};
    struct batch_header h;
    batch_header_decode(batches, &h);
    if ((r = writable(p)))
        goto out;
    /* Follows on from the log, gaps only where the log may have them. */
    if (h.base_offset < a->next_offset || h.base_pos < a->end_pos ||
        (!p->compacted && (gaps || h.base_offset != a->next_offset || h.base_pos != a->end_pos))) {
        r = -EINVAL;
        goto out;
    }
    /* The epochs they carry, recorded before the log holds them. */
    if ((r = leader_epoch_copy(&next, &p->leader_epochs)) || (r = leader_epoch_copy(&old, &next)))
        goto out;
    for (size_t at = 0; at < len; at += h.length) {
        batch_header_decode(batches + at, &h);
        if ((r = leader_epoch_assign(&next, h.leader_epoch, h.base_offset)) < 0)
            goto out; /* an epoch no leader gives (EINVAL), a full cache, ENOMEM */
    }
    r = 0;
    int epochs_changed = !leader_epoch_equal(&next, &p->leader_epochs);
    if (epochs_changed && (r = leader_epoch_store(p->dir, &next)))
        goto out;
    for (size_t at = 0; at < len && !r; at += h.length) {
        batch_header_decode(batches + at, &h);
        a = active(p);
        if (h.base_pos > a->end_pos) {
            /* The leader started a segment here: so does this log. */
            if (a->size == 0 && p->nsegs == u.nsegs && !u.replaced) {
                u.replaced = 1;
                u.replaced_base = a->base_offset;
                u.replaced_pos = a->base_pos;
                u.replaced_ms = a->created_ms;
                r = replace_empty_active(p, h.base_offset, h.base_pos, h.timestamp);
                if (r)
                    u.replaced = 0; /* it is back as it was */
            } else if (a->size == 0) {
                r = replace_empty_active(p, h.base_offset, h.base_pos, h.timestamp);
            } else {
                r = roll_at(p, h.base_offset, h.base_pos, h.timestamp);
            }
        } else {
            r = maybe_roll(p, h.length, h.timestamp);
        }
        if (r)
            break;
        a = active(p);
        if (h.base_offset != a->next_offset)
            a->compacted = 1; /* offsets jump: lookups must not assume them dense */
        struct iovec iov = {.iov_base = (void *)(batches + at), .iov_len = h.length};
        r = segment_append(a, &iov, 1, &h);
    }
    if (r) {
        append_undo(p, &u);
        if (epochs_changed && leader_epoch_store(p->dir, &old))
            logger_log(LOG_LEVEL_WARN,
                       "%s: leader-epoch-checkpoint names epochs of a failed append (trimmed "
                       "at the next open)",
                       p->dir);
        goto out;
    }
    for (size_t at = 0; at < len; at += h.length) {
        batch_header_decode(batches + at, &h);
        count_in(p, &h);
    }
    if (epochs_changed) {
        struct leader_epoch_cache t = p->leader_epochs;
        p->leader_epochs = next;
        next = t;
        epochs_installed(p);
    }
    note_take(p, PARTITION_EVENT_APPEND | hw_fix(p), &n);
out:
    pthread_mutex_unlock(&p->lock);
    note_send(p, &n);
    leader_epoch_free(&next);
    leader_epoch_free(&old);
    return r;
}

int partition_set_compacted(struct partition *p)
{
    pthread_mutex_lock(&p->lock);
    int r = p->compacted ? 0 : note_compacted(p, 1);
    pthread_mutex_unlock(&p->lock);
    return r;
}

/* ---- truncation ---- */

/* The maintenance lock for a truncation or reset: a cleaner pass that
 * holds it sees the request and gives up (compaction_run). */
static void maintenance_take(struct partition *p)
{
    atomic_fetch_add(&p->maintenance_wanted, 1);
    pthread_mutex_lock(&p->maintenance);
    atomic_fetch_sub(&p->maintenance_wanted, 1);
}

int partition_truncate(struct partition *p, uint64_t offset)
{
    int r = 0;
    struct note n = {0};
    struct leader_epoch_cache next;
    leader_epoch_init(&next);
    /* A cleaner pass must not put back segments it copied before the cut. */
    maintenance_take(p);
    pthread_mutex_lock(&p->lock);
    if ((r = writable(p)))
        goto out;
    if (offset >= active(p)->next_offset)
        goto out;
    if ((r = reserve_epoch(p)))
        goto out;
    /* The epochs that start at or after the cut go first: a checkpoint
     * that cannot be written refuses the truncation. */
    if ((r = leader_epoch_copy(&next, &p->leader_epochs)))
        goto out;
    leader_epoch_truncate_from_end(&next, offset);
    if ((r = epochs_replace(p, &next)))
        goto out;
    /* Positions from the cut on will hold other bytes: older views must not
     * read there, nor keep old layouts that the cut may reach into. */
    ssize_t i = segment_from_offset(p, offset);
    uint64_t fp, cut_pos = i < 0 ? view_end(p) : 0;
    struct batch_header h;
    if (i >= 0 && !segment_find_cut(p->segs[i], offset, &fp, &h))
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
    acks_fence(p);
    struct segment *a = active(p);
    if (!a->active && (r = segment_set_active(a, 1)))
        goto cut;
    if (!failed && (r = segment_truncate(a, offset)))
        goto cut;
    if ((r = segment_sync(a)))
        goto cut;
    a->synced_size = a->size;
    /* The removed segments must not come back after a crash. */
    if ((r = fsutil_sync_dir(p->dir)))
        goto cut;
    struct recovery_point now = {a->base_offset, a->size, a->next_offset, a->end_pos};
    if (!(r = write_recovery_point(p, &now)))
        r = failed;
cut:
    note_take(p, PARTITION_EVENT_TRUNCATE | hw_fix(p), &n);
out:
    pthread_mutex_unlock(&p->lock);
    pthread_mutex_unlock(&p->maintenance);
    note_send(p, &n);
    leader_epoch_free(&next);
    return r;
}

/* ---- reset ---- */

int partition_reset_crash_point;

int partition_reset(struct partition *p, uint64_t start_offset, uint64_t start_pos)
{
    struct note n = {0};
    struct segment *s = NULL;
    int r;
    if (start_offset > BATCH_END_MAX || start_pos > BATCH_END_MAX)
        return -EINVAL;
    maintenance_take(p);
    pthread_mutex_lock(&p->lock);
    if (p->deleted) {
        r = -ENOENT;
        goto out;
    }
    if ((r = reserve_epoch(p)))
        goto out;
    if ((r = reset_commit(p->dir, start_offset, start_pos)))
        goto out; /* nothing changed */
    /* Past the commit point: forward only. */
    p->truncations++; /* a sync in flight must not write its recovery point */
    acks_fence(p);
    if ((r = reset_finish(p->dir, start_offset, start_pos, &s))) {
        if (r != -ECANCELED)
            logger_log(LOG_LEVEL_ERROR,
                       "%s: reset to offset %llu did not finish (%s): appends fail until it "
                       "does (a retry, or the next open)",
                       p->dir, (unsigned long long)start_offset, strerror(-r));
        p->reset_pending = 1;
        goto out;
    }
    p->reset_pending = 0;
    /* Older views read nothing of the old log: everything was cut. */
    kept_expire(p, 1);
    for (size_t i = 0; i < p->nsegs; i++)
        segment_release(p->segs[i]);
    p->segs[0] = s;
    p->nsegs = 1;
    struct old_layout none = {0};
    bump_epoch(p, 0, 0, 0, &none);
    p->recovery_offset = start_offset;
    p->dir_dirty = 0;
    leader_epoch_free(&p->leader_epochs);
    epochs_installed(p);
    p->hw = start_offset;
    p->hw_pos = start_pos;
    hw_fix(p);
    note_take(p, PARTITION_EVENT_TRUNCATE | PARTITION_EVENT_HW, &n);
    logger_log(LOG_LEVEL_INFO, "%s: log reset to start at offset %llu, position %llu", p->dir,
               (unsigned long long)start_offset, (unsigned long long)start_pos);
out:
    pthread_mutex_unlock(&p->lock);
    pthread_mutex_unlock(&p->maintenance);
    note_send(p, &n);
    return r;
}

/* ---- sync ---- */

int partition_sync(struct partition *p)
{
    int r = 0;
    pthread_mutex_lock(&p->lock);
    if (p->reset_pending) {
        pthread_mutex_unlock(&p->lock);
        return -EIO;
    }
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
    /* A truncation (or reset) meanwhile wrote its own recovery point: `now`
     * may lie past its cut. */
    if (!r && now.next_offset > p->recovery_offset && truncations == p->truncations)
        r = write_recovery_point(p, &now);
    pthread_mutex_unlock(&p->lock);
    free(ok);
    free(dirty);
    free(sizes);
    return r;
}

int partition_first_bad(struct partition *p, uint64_t *offset)
{
    int r = -ENOENT;
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->nsegs && r; i++)
        r = segment_first_bad(p->segs[i], offset);
    pthread_mutex_unlock(&p->lock);
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
    info->high_watermark = p->hw;
    info->hw_pos = p->hw_pos;
    info->segments = (uint32_t)p->nsegs;
    info->leader_epoch = p->leader_epoch;
    info->compacted = p->compacted;
    info->truncations = p->truncations;
    info->view_bytes = visible_view_end(p);
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
