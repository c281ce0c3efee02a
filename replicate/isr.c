/* isr.c - ISR and high watermark arithmetic at a leader (isr.h). */
#include "isr.h"

#include "satmath.h"

void isr_follower_init(struct isr_follower *f, int32_t id, int64_t now_ms)
{
    f->id = id;
    f->leo = ISR_LEO_UNKNOWN;
    f->last_caught_up_ms = now_ms;
    f->last_fetch_ms = now_ms;
    f->last_fetch_leader_leo = 0;
}

void isr_follower_fetched(struct isr_follower *f, uint64_t fetch_offset, uint64_t leader_leo,
                          int64_t now_ms)
{
    if (fetch_offset >= leader_leo) {
        if (now_ms > f->last_caught_up_ms)
            f->last_caught_up_ms = now_ms;
    } else if (fetch_offset >= f->last_fetch_leader_leo &&
               f->last_fetch_ms > f->last_caught_up_ms) {
        f->last_caught_up_ms = f->last_fetch_ms;
    }
    f->leo = fetch_offset > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)fetch_offset;
    f->last_fetch_ms = now_ms;
    f->last_fetch_leader_leo = leader_leo;
}

static const struct isr_follower *find(const struct isr_follower *f, size_t nf, int32_t id)
{
    for (size_t i = 0; i < nf; i++)
        if (f[i].id == id)
            return &f[i];
    return NULL;
}

static int member(const int32_t *ids, size_t n, int32_t id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id)
            return 1;
    return 0;
}

uint64_t isr_high_watermark(uint64_t hw, int32_t leader, uint64_t leader_leo,
                            const struct isr_follower *f, size_t nf, const int32_t *isr,
                            size_t nisr)
{
    uint64_t low = leader_leo;
    for (size_t i = 0; i < nisr; i++) {
        if (isr[i] == leader)
            continue;
        const struct isr_follower *x = find(f, nf, isr[i]);
        if (!x || x->leo < 0)
            return hw;
        if ((uint64_t)x->leo < low)
            low = (uint64_t)x->leo;
    }
    return low > hw ? low : hw;
}

size_t isr_next(int32_t leader, uint64_t hw, uint64_t epoch_start, const struct isr_follower *f,
                size_t nf, const int32_t *isr, size_t nisr, int64_t now_ms, int64_t lag_max_ms,
                int32_t *out)
{
    size_t n = 0;
    if (!member(isr, nisr, leader))
        out[n++] = leader;
    for (size_t i = 0; i < nisr; i++) {
        const struct isr_follower *x = find(f, nf, isr[i]);
        if (isr[i] != leader && x && sat_sub_i64(now_ms, x->last_caught_up_ms) > lag_max_ms)
            continue; /* out of sync */
        if (!member(out, n, isr[i]))
            out[n++] = isr[i];
    }
    for (size_t i = 0; i < nf; i++) {
        const struct isr_follower *x = &f[i];
        if (x->id == leader || member(out, n, x->id) || member(isr, nisr, x->id) || x->leo < 0)
            continue;
        if ((uint64_t)x->leo >= hw && (uint64_t)x->leo >= epoch_start &&
            sat_sub_i64(now_ms, x->last_caught_up_ms) <= lag_max_ms)
            out[n++] = x->id;
    }
    return n;
}

int isr_same(const int32_t *a, size_t na, const int32_t *b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++)
        if (!member(b, nb, a[i]))
            return 0;
    return 1;
}
