/* partition_acks.c - acknowledgements of appends in cluster mode
 * (partition.h, "acknowledgements"): the term, the leader's ISR size, the
 * checks an acknowledged produce passes before it appends, and the wait
 * for the high watermark.
 *
 * Invariants: acks_term only grows, under the partition lock; it changes
 * whenever records at or below the log end may stop being this replica's
 * to commit (stops leading, truncation, reset, deletion), so a waiter that
 * sees the high watermark past its end offset in its own term knows its
 * records are committed. acks_cond is broadcast on every high watermark
 * move (note_send) and term change.
 *
 * The high watermark checkpoint (leader_epoch.h's format) is written
 * outside the partition lock, by one caller at a time (replicate/'s role
 * thread, then its stop). */
#include "partition_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "logger.h"

/* ---- the high watermark checkpoint ---- */

int partition_save_high_watermark(struct partition *p)
{
    pthread_mutex_lock(&p->lock);
    uint64_t hw = p->hw;
    int skip = p->hw_follows_end || p->deleted || (p->hw_saved_valid && p->hw_saved == hw);
    char *dir = skip ? NULL : strdup(p->dir);
    pthread_mutex_unlock(&p->lock);
    if (skip)
        return 0;
    if (!dir)
        return -ENOMEM;
    int r = hw_checkpoint_store(dir, hw);
    free(dir);
    if (!r) {
        pthread_mutex_lock(&p->lock);
        p->hw_saved = hw;
        p->hw_saved_valid = 1;
        pthread_mutex_unlock(&p->lock);
    }
    return r;
}

int partition_saved_high_watermark(struct partition *p, uint64_t *hw)
{
    pthread_mutex_lock(&p->lock);
    char *dir = strdup(p->dir);
    pthread_mutex_unlock(&p->lock);
    if (!dir)
        return -ENOMEM;
    int r = hw_checkpoint_load(dir, hw);
    free(dir);
    return r;
}

/* Under the lock: a new term; waiters fail. */
void acks_fence(struct partition *p)
{
    p->acks_term++;
    pthread_cond_broadcast(&p->acks_cond);
}

void partition_lead(struct partition *p, uint32_t in_sync)
{
    pthread_mutex_lock(&p->lock);
    if (!p->leading)
        acks_fence(p);
    p->leading = 1;
    p->in_sync = in_sync;
    pthread_mutex_unlock(&p->lock);
}

void partition_unlead(struct partition *p)
{
    pthread_mutex_lock(&p->lock);
    acks_fence(p); /* also ends the waits of a follower's fsync */
    p->leading = 0;
    p->in_sync = 0;
    pthread_mutex_unlock(&p->lock);
}

void partition_ack_point(struct partition *p, struct partition_ack *ack)
{
    pthread_mutex_lock(&p->lock);
    ack->end_offset = active(p)->next_offset;
    ack->term = p->acks_term;
    ack->in_sync = p->leading ? p->in_sync : 0;
    pthread_mutex_unlock(&p->lock);
}

int partition_wait_acked(struct partition *p, const struct partition_ack *ack)
{
    int r;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        if (p->deleted) {
            r = -ENOENT;
            break;
        }
        if (p->acks_term != ack->term) {
            r = -EIO;
            break;
        }
        if (p->hw_follows_end || p->hw >= ack->end_offset) {
            /* Committed by fewer in-sync replicas than asked (the ISR shrank
             * after the append): not acknowledged, as Kafka's
             * NOT_ENOUGH_REPLICAS_AFTER_APPEND. */
            r = p->leading && ack->min_insync > (int64_t)p->in_sync ? -EIO : 0;
            break;
        }
        p->acks_waiting++;
        pthread_cond_wait(&p->acks_cond, &p->lock);
        p->acks_waiting--;
        p->acks_checks++;
    }
    pthread_mutex_unlock(&p->lock);
    return r;
}

void partition_ack_waiters(struct partition *p, uint32_t *waiting, uint64_t *checks)
{
    pthread_mutex_lock(&p->lock);
    *waiting = p->acks_waiting;
    *checks = p->acks_checks;
    pthread_mutex_unlock(&p->lock);
}

int acks_check(struct partition *p, struct partition_ack *ack)
{
    ack->in_sync = p->leading ? p->in_sync : 0;
    if (!p->hw_follows_end && !p->leading)
        return -EAGAIN;
    if (p->leading && ack->min_insync > (int64_t)p->in_sync)
        return -EIO;
    return 0;
}

int partition_produce(struct partition *p, struct batch_builder *b, const struct record_ref *r,
                      size_t n, int64_t timestamp, const struct produce_acks *acks,
                      uint64_t *base_offset)
{
    struct partition_ack ack = {.min_insync = acks->all ? acks->min_insync : 0};
    int e = partition_append_records(p, b, r, n, timestamp, base_offset, &ack);
    if (e == -EIO && ack.in_sync)
        logger_log(LOG_LEVEL_WARN,
                   "%s: write refused (EIO): %" PRIu32
                   " in-sync replicas, min.insync.replicas=%" PRId64 " with acks=all",
                   p->dir, ack.in_sync, acks->min_insync);
    if (!e && acks->all && (e = partition_wait_acked(p, &ack)) == -EIO)
        logger_log(LOG_LEVEL_WARN,
                   "%s: write ending at offset %" PRIu64 " not acknowledged (EIO): this replica "
                   "stopped leading (or was truncated) before every in-sync replica had it",
                   p->dir, ack.end_offset);
    return e;
}
