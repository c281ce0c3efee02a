/* assignment.c - Kafka's rack-unaware replica assignment (assignment.h).
 *
 * The same arithmetic as AdminUtils.assignReplicasToBrokersRackUnaware:
 *   startIndex     = fixed_start >= 0 ? fixed_start : rand(n)
 *   nextReplicaShift = fixed_start >= 0 ? fixed_start : rand(n)
 *   for each partition p (from first):
 *     if p > 0 and p % n == 0: nextReplicaShift += 1
 *     firstReplicaIndex = (p + startIndex) % n
 *     replica j >= 1: (firstReplicaIndex + 1 + (nextReplicaShift + j - 1) % (n - 1)) % n
 * rand is splitmix64 over the seed, so a seed gives one assignment.
 *
 * assignment_reassign picks a partition's replicas at a new replication
 * factor: its current replicas stay (in their order) and the least loaded
 * live brokers join when it grows; the leader, then the in-sync, then the
 * live replicas are kept when it shrinks. */
#include "assignment.h"

#include "topic_codec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int compare_ids(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

int assignment_assign(const int32_t *brokers, size_t nbrokers, uint32_t first, uint32_t count,
                      uint32_t rf, int fixed_start, uint64_t seed, int32_t *out)
{
    if (rf == 0 || rf > nbrokers || count == 0)
        return -EINVAL;
    int32_t *sorted = malloc(nbrokers * sizeof(*sorted));
    if (!sorted)
        return -ENOMEM;
    memcpy(sorted, brokers, nbrokers * sizeof(*sorted));
    qsort(sorted, nbrokers, sizeof(*sorted), compare_ids);
    for (size_t i = 1; i < nbrokers; i++)
        if (sorted[i] == sorted[i - 1]) {
            free(sorted);
            return -EINVAL;
        }
    uint64_t n = nbrokers, state = seed;
    uint64_t start = fixed_start >= 0 ? (uint64_t)fixed_start % n : splitmix64(&state) % n;
    uint64_t shift = fixed_start >= 0 ? (uint64_t)fixed_start % n : splitmix64(&state) % n;
    for (uint64_t p = first; p < (uint64_t)first + count; p++) {
        if (p > 0 && p % n == 0)
            shift++;
        uint64_t lead = (p + start) % n;
        int32_t *r = out + (p - first) * rf;
        r[0] = sorted[lead];
        for (uint32_t j = 1; j < rf; j++)
            r[j] = sorted[(lead + 1 + (shift + j - 1) % (n - 1)) % n];
    }
    free(sorted);
    return 0;
}

static int member(const int32_t *ids, size_t n, int32_t id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id)
            return 1;
    return 0;
}

int assignment_reassign(const int32_t *cur, uint32_t ncur, int32_t leader, const int32_t *isr,
                        uint32_t nisr, const int32_t *live, size_t nlive, uint32_t *load,
                        uint32_t p, uint32_t rf, int32_t *out)
{
    if (rf == 0 || rf > CLUSTER_REPLICAS_MAX || ncur > CLUSTER_REPLICAS_MAX)
        return -EINVAL;
    if (rf >= ncur) {
        size_t spare = 0;
        for (size_t i = 0; i < nlive; i++)
            spare += !member(cur, ncur, live[i]);
        if (spare < rf - ncur)
            return -EINVAL;
        memcpy(out, cur, ncur * sizeof(*out));
        for (uint32_t k = ncur; k < rf; k++) {
            size_t best = nlive;
            for (size_t j = 0; j < nlive; j++) {
                size_t i = (p + j) % nlive;
                if (!member(out, k, live[i]) && (best == nlive || load[i] < load[best]))
                    best = i;
            }
            out[k] = live[best];
            load[best]++;
        }
        return (int)rf;
    }
    /* Shrinking: rank each replica, keep the rf best (earlier in cur wins
     * a tie), in cur's order. */
    int rank[CLUSTER_REPLICAS_MAX], keep[CLUSTER_REPLICAS_MAX] = {0};
    for (uint32_t i = 0; i < ncur; i++) {
        int alive = 0;
        for (size_t j = 0; j < nlive && !alive; j++)
            alive = live[j] == cur[i];
        rank[i] = cur[i] == leader ? 3 : member(isr, nisr, cur[i]) && alive ? 2 : alive ? 1 : 0;
    }
    for (uint32_t k = 0; k < rf; k++) {
        int best = -1;
        for (uint32_t i = 0; i < ncur; i++)
            if (!keep[i] && (best < 0 || rank[i] > rank[best]))
                best = (int)i;
        keep[best] = 1;
    }
    uint32_t n = 0;
    for (uint32_t i = 0; i < ncur; i++)
        if (keep[i])
            out[n++] = cur[i];
    return (int)rf;
}
