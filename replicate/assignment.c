/* assignment.c - Kafka's rack-unaware replica assignment (assignment.h).
 *
 * The same arithmetic as AdminUtils.assignReplicasToBrokersRackUnaware:
 *   startIndex     = fixed_start >= 0 ? fixed_start : rand(n)
 *   nextReplicaShift = fixed_start >= 0 ? fixed_start : rand(n)
 *   for each partition p (from first):
 *     if p > 0 and p % n == 0: nextReplicaShift += 1
 *     firstReplicaIndex = (p + startIndex) % n
 *     replica j >= 1: (firstReplicaIndex + 1 + (nextReplicaShift + j - 1) % (n - 1)) % n
 * rand is splitmix64 over the seed, so a seed gives one assignment. */
#include "assignment.h"

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
