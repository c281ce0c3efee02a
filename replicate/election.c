/* election.c - leader and ISR decisions of the controller (election.h). */
#include "election.h"

#include <errno.h>
#include <string.h>

int election_is_live(const struct election_live *live, int32_t id)
{
    size_t lo = 0, hi = live->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (live->ids[mid] == id)
            return 1;
        if (live->ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static int in_list(const int32_t *ids, uint32_t n, int32_t id)
{
    for (uint32_t i = 0; i < n; i++)
        if (ids[i] == id)
            return 1;
    return 0;
}

int election_initial(const int32_t *replicas, uint32_t nreplicas, const struct election_live *live,
                     int32_t controller_epoch, struct cluster_partition_state *out)
{
    struct cluster_partition_state s = {.controller_epoch = controller_epoch, .leader = -1};
    for (uint32_t i = 0; i < nreplicas && s.nisr < CLUSTER_REPLICAS_MAX; i++)
        if (election_is_live(live, replicas[i]))
            s.isr[s.nisr++] = replicas[i];
    if (s.nisr == 0)
        return -ENOENT;
    s.leader = s.isr[0];
    *out = s;
    return 0;
}

int election_update(const struct cluster_partition_state *cur, const int32_t *replicas,
                    uint32_t nreplicas, const struct election_live *live, int unclean,
                    int32_t controller_epoch, struct cluster_partition_state *out)
{
    struct cluster_partition_state s = *cur;
    s.nisr = 0;
    for (uint32_t i = 0; i < cur->nisr; i++)
        if (election_is_live(live, cur->isr[i]) && in_list(replicas, nreplicas, cur->isr[i]))
            s.isr[s.nisr++] = cur->isr[i];
    int leader_ok = cur->leader >= 0 && election_is_live(live, cur->leader) &&
                    in_list(cur->isr, cur->nisr, cur->leader) &&
                    in_list(replicas, nreplicas, cur->leader);
    if (!leader_ok) {
        s.leader = -1;
        for (uint32_t i = 0; i < nreplicas && s.leader < 0; i++)
            if (in_list(s.isr, s.nisr, replicas[i]))
                s.leader = replicas[i];
        for (uint32_t i = 0; unclean && i < nreplicas && s.leader < 0; i++)
            if (election_is_live(live, replicas[i])) {
                /* Unclean: a live replica out of sync leads, and what it
                 * lacks of the old ISR's records is lost. */
                s.leader = s.isr[0] = replicas[i];
                s.nisr = 1;
            }
        if (s.leader < 0 && s.nisr == 0 && cur->nisr > 0) {
            /* Nobody in sync lives: keep the last one known in sync. */
            s.isr[0] = in_list(cur->isr, cur->nisr, cur->leader) ? cur->leader : cur->isr[0];
            s.nisr = 1;
        }
    }
    if (s.leader == cur->leader && s.nisr == cur->nisr &&
        !memcmp(s.isr, cur->isr, s.nisr * sizeof(s.isr[0])))
        return 0;
    s.leader_epoch = cur->leader_epoch + 1;
    s.controller_epoch = controller_epoch;
    *out = s;
    return 1;
}

int election_preferred(const struct cluster_partition_state *cur, const int32_t *replicas,
                       uint32_t nreplicas, const struct election_live *live,
                       int32_t controller_epoch, struct cluster_partition_state *out)
{
    if (nreplicas == 0 || cur->leader < 0 || cur->leader == replicas[0] ||
        !election_is_live(live, replicas[0]) || !in_list(cur->isr, cur->nisr, replicas[0]))
        return 0;
    struct cluster_partition_state s = *cur;
    s.leader = replicas[0];
    s.leader_epoch = cur->leader_epoch + 1;
    s.controller_epoch = controller_epoch;
    *out = s;
    return 1;
}
