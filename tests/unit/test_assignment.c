/* test_assignment.c - replica assignment (assignment.h) and the
 * controller's leader and ISR decisions (election.h):
 *
 *  - Kafka's own expected assignment (AdminZkClientTest: 5 brokers, 10
 *    partitions, RF 3, fixed start 0), and added partitions whose leaders
 *    continue its walk;
 *  - for many seeds, broker counts, partition counts and RFs: RF distinct
 *    brokers per partition, leaders spread evenly (counts differ by at most
 *    one), every broker holding the same number of replicas when the
 *    partitions go round the brokers a whole number of times;
 *  - a seed gives one assignment, different seeds different ones; the
 *    brokers' order does not matter; refusals (RF > brokers, RF 0, no
 *    partitions, an id twice) leave the output alone;
 *  - elections: a new partition, a follower dying, the leader dying, no
 *    live ISR member (leader -1, the ISR keeps one), its return, a broker
 *    coming back not rejoining the ISR, nothing to change;
 *  - unclean election (off: offline; on: the first live replica leads
 *    alone, a live ISR member still wins), leaders and ISR members a
 *    reassignment took away, preferred-leader moves and when they do not
 *    happen;
 *  - reassignment targets: growing (least loaded, ties spread by
 *    partition), shrinking (leader, ISR, live kept in order), refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "assignment.h"
#include "election.h"

static void test_kafka_expected(void **state)
{
    (void)state;
    const int32_t brokers[] = {0, 1, 2, 3, 4};
    const int32_t expected[10][3] = {{0, 1, 2}, {1, 2, 3}, {2, 3, 4}, {3, 4, 0}, {4, 0, 1},
                                     {0, 2, 3}, {1, 3, 4}, {2, 4, 0}, {3, 0, 1}, {4, 1, 2}};
    int32_t out[30];
    assert_int_equal(assignment_assign(brokers, 5, 0, 10, 3, 0, 99, out), 0);
    assert_memory_equal(out, expected, sizeof(out));
    /* Adding partitions 10..14 with Kafka's fixed start (partition 0's
     * leader) continues the leaders' walk; followers get the shift anew. */
    int32_t all[45], more[15];
    assert_int_equal(assignment_assign(brokers, 5, 0, 15, 3, 0, 1, all), 0);
    assert_int_equal(assignment_assign(brokers, 5, 10, 5, 3, 0, 2, more), 0);
    const int32_t expected_more[5][3] = {{0, 2, 3}, {1, 3, 4}, {2, 4, 0}, {3, 0, 1}, {4, 1, 2}};
    assert_memory_equal(more, expected_more, sizeof(more));
    for (int p = 0; p < 5; p++)
        assert_int_equal(more[p * 3], all[30 + p * 3]);
}

static void check_balance(const int32_t *brokers, size_t n, uint32_t parts, uint32_t rf,
                          uint64_t seed)
{
    int32_t out[64 * 8];
    int leads[8] = {0}, holds[8] = {0};
    if (assignment_assign(brokers, n, 0, parts, rf, -1, seed, out))
        fail_msg("refused n=%zu parts=%u rf=%u", n, parts, rf);
    for (uint32_t p = 0; p < parts; p++) {
        const int32_t *r = out + p * rf;
        for (uint32_t i = 0; i < rf; i++) {
            int k = -1;
            for (size_t b = 0; b < n; b++)
                if (brokers[b] == r[i])
                    k = (int)b;
            if (k < 0)
                fail_msg("partition %u: broker %d is not one of the brokers", p, r[i]);
            for (uint32_t j = 0; j < i; j++)
                if (r[j] == r[i])
                    fail_msg("partition %u: broker %d twice (n=%zu rf=%u seed=%llu)", p, r[i], n,
                             rf, (unsigned long long)seed);
            holds[k]++;
            if (i == 0)
                leads[k]++;
        }
    }
    int lmin = parts, lmax = 0, hmin = parts * rf, hmax = 0;
    for (size_t b = 0; b < n; b++) {
        lmin = leads[b] < lmin ? leads[b] : lmin;
        lmax = leads[b] > lmax ? leads[b] : lmax;
        hmin = holds[b] < hmin ? holds[b] : hmin;
        hmax = holds[b] > hmax ? holds[b] : hmax;
    }
    if (lmax - lmin > 1)
        fail_msg("leaders %d..%d (n=%zu parts=%u rf=%u)", lmin, lmax, n, parts, rf);
    if (parts % n == 0 && hmin != hmax)
        fail_msg("replicas %d..%d per broker (n=%zu parts=%u rf=%u)", hmin, hmax, n, parts, rf);
}

static void test_balance(void **state)
{
    (void)state;
    const int32_t brokers[] = {3, 7, 11, 12, 20, 21, 30, 1000};
    for (uint64_t seed = 0; seed < 20; seed++)
        for (size_t n = 1; n <= 8; n++)
            for (uint32_t parts = 1; parts <= 64; parts += (parts < 12 ? 1 : 13))
                for (uint32_t rf = 1; rf <= n; rf++)
                    check_balance(brokers, n, parts, rf, seed);
}

static void test_seeded(void **state)
{
    (void)state;
    const int32_t brokers[] = {1, 2, 3, 4}, shuffled[] = {3, 1, 4, 2};
    int32_t a[24], b[24], c[24];
    assert_int_equal(assignment_assign(brokers, 4, 0, 8, 3, -1, 42, a), 0);
    assert_int_equal(assignment_assign(shuffled, 4, 0, 8, 3, -1, 42, b), 0);
    assert_memory_equal(a, b, sizeof(a));
    int differ = 0;
    for (uint64_t seed = 0; seed < 16; seed++) {
        assert_int_equal(assignment_assign(brokers, 4, 0, 8, 3, -1, seed, c), 0);
        differ += memcmp(a, c, sizeof(a)) != 0;
    }
    assert_true(differ > 0);
}

static void test_refusals(void **state)
{
    (void)state;
    const int32_t two[] = {1, 2}, dup[] = {1, 2, 1};
    int32_t out[8] = {0}, zero[8] = {0};
    assert_int_equal(assignment_assign(two, 2, 0, 1, 3, -1, 0, out), -EINVAL);
    assert_int_equal(assignment_assign(two, 2, 0, 1, 0, -1, 0, out), -EINVAL);
    assert_int_equal(assignment_assign(two, 2, 0, 0, 1, -1, 0, out), -EINVAL);
    assert_int_equal(assignment_assign(two, 0, 0, 1, 1, -1, 0, out), -EINVAL);
    assert_int_equal(assignment_assign(dup, 3, 0, 1, 2, -1, 0, out), -EINVAL);
    assert_memory_equal(out, zero, sizeof(out));
}

static struct cluster_partition_state state_of(int leader, int epoch, const int32_t *isr,
                                               uint32_t n)
{
    struct cluster_partition_state s = {
        .controller_epoch = 1, .leader = leader, .leader_epoch = epoch, .nisr = n};
    memcpy(s.isr, isr, n * sizeof(*isr));
    return s;
}

static void assert_state(const struct cluster_partition_state *s, int leader, int epoch,
                         const int32_t *isr, uint32_t n)
{
    assert_int_equal(s->leader, leader);
    assert_int_equal(s->leader_epoch, epoch);
    assert_int_equal(s->nisr, n);
    assert_memory_equal(s->isr, isr, n * sizeof(*isr));
}

static void test_initial(void **state)
{
    (void)state;
    const int32_t replicas[] = {2, 3, 1};
    const int32_t all[] = {1, 2, 3}, two[] = {1, 3};
    struct election_live live = {all, 3};
    struct cluster_partition_state s;
    assert_int_equal(election_initial(replicas, 3, &live, 5, &s), 0);
    assert_int_equal(s.controller_epoch, 5);
    assert_state(&s, 2, 0, replicas, 3);
    live = (struct election_live){two, 2};
    assert_int_equal(election_initial(replicas, 3, &live, 5, &s), 0);
    assert_state(&s, 3, 0, (const int32_t[]){3, 1}, 2);
    live = (struct election_live){NULL, 0};
    assert_int_equal(election_initial(replicas, 3, &live, 5, &s), -ENOENT);
}

static void test_update(void **state)
{
    (void)state;
    const int32_t replicas[] = {1, 2, 3};
    const int32_t all[] = {1, 2, 3}, no3[] = {1, 2}, no1[] = {2, 3}, only3[] = {3}, only1[] = {1};
    struct election_live live = {all, 3};
    struct cluster_partition_state cur = state_of(1, 4, replicas, 3), out;
    memset(&out, 0x5a, sizeof(out));
    struct cluster_partition_state untouched = out;
    assert_int_equal(election_update(&cur, replicas, 3, &live, 0, 2, &out), 0);
    assert_memory_equal(&out, &untouched, sizeof(out));

    /* A follower dies: the ISR shrinks, the leader stays. */
    live = (struct election_live){no3, 2};
    assert_int_equal(election_update(&cur, replicas, 3, &live, 0, 2, &out), 1);
    assert_state(&out, 1, 5, no3, 2);
    assert_int_equal(out.controller_epoch, 2);

    /* The leader dies: the next replica in the ISR leads. */
    live = (struct election_live){no1, 2};
    assert_int_equal(election_update(&cur, replicas, 3, &live, 0, 2, &out), 1);
    assert_state(&out, 2, 5, no1, 2);

    /* The next replica lives but is not in sync: it is skipped. */
    cur = state_of(1, 4, (const int32_t[]){1, 3}, 2);
    assert_int_equal(election_update(&cur, replicas, 3, &live, 0, 2, &out), 1);
    assert_state(&out, 3, 5, only3, 1);

    /* No live ISR member: no leader, the ISR keeps the old leader. */
    cur = state_of(1, 4, (const int32_t[]){1, 2}, 2);
    live = (struct election_live){only3, 1};
    assert_int_equal(election_update(&cur, replicas, 3, &live, 0, 2, &out), 1);
    assert_state(&out, -1, 5, only1, 1);
    cur = out;
    assert_int_equal(election_update(&cur, replicas, 3, &live, 0, 2, &out), 0);
    /* It comes back: it leads again. */
    live = (struct election_live){only1, 1};
    assert_int_equal(election_update(&cur, replicas, 3, &live, 0, 3, &out), 1);
    assert_state(&out, 1, 6, only1, 1);
    assert_int_equal(out.controller_epoch, 3);

    /* Brokers that come back do not rejoin the ISR here. */
    cur = state_of(2, 7, (const int32_t[]){2}, 1);
    live = (struct election_live){all, 3};
    assert_int_equal(election_update(&cur, replicas, 3, &live, 0, 3, &out), 0);
}

static void test_unclean(void **state)
{
    (void)state;
    const int32_t replicas[] = {1, 2, 3};
    const int32_t only3[] = {3}, no1[] = {2, 3};
    struct cluster_partition_state cur = state_of(1, 4, (const int32_t[]){1}, 1), out;
    struct election_live live = {only3, 1};
    /* Off: offline, the ISR keeps the old leader. */
    assert_int_equal(election_update(&cur, replicas, 3, &live, 0, 2, &out), 1);
    assert_state(&out, -1, 5, (const int32_t[]){1}, 1);
    /* On: the first live replica leads, alone in the ISR. */
    assert_int_equal(election_update(&cur, replicas, 3, &live, 1, 2, &out), 1);
    assert_state(&out, 3, 5, only3, 1);
    live = (struct election_live){no1, 2};
    assert_int_equal(election_update(&cur, replicas, 3, &live, 1, 2, &out), 1);
    assert_state(&out, 2, 5, (const int32_t[]){2}, 1);
    /* Offline, then turned on: the next pass elects. */
    cur = state_of(-1, 5, (const int32_t[]){1}, 1);
    assert_int_equal(election_update(&cur, replicas, 3, &live, 0, 2, &out), 0);
    assert_int_equal(election_update(&cur, replicas, 3, &live, 1, 2, &out), 1);
    assert_state(&out, 2, 6, (const int32_t[]){2}, 1);
    /* A live ISR member always wins over an unclean choice. */
    cur = state_of(1, 4, (const int32_t[]){1, 3}, 2);
    assert_int_equal(election_update(&cur, replicas, 3, &live, 1, 2, &out), 1);
    assert_state(&out, 3, 5, only3, 1);
    /* Nobody lives: offline either way. */
    live = (struct election_live){NULL, 0};
    cur = state_of(1, 4, (const int32_t[]){1}, 1);
    assert_int_equal(election_update(&cur, replicas, 3, &live, 1, 2, &out), 1);
    assert_state(&out, -1, 5, (const int32_t[]){1}, 1);
}

static void test_not_a_replica(void **state)
{
    (void)state;
    /* A reassignment took 3 (the leader) and 4 away: they leave. */
    const int32_t replicas[] = {1, 2};
    const int32_t all[] = {1, 2, 3, 4};
    struct election_live live = {all, 4};
    struct cluster_partition_state cur = state_of(3, 7, (const int32_t[]){3, 1, 4, 2}, 4), out;
    assert_int_equal(election_update(&cur, replicas, 2, &live, 0, 2, &out), 1);
    assert_state(&out, 1, 8, (const int32_t[]){1, 2}, 2);
    /* A follower only. */
    cur = state_of(2, 7, (const int32_t[]){2, 4, 1}, 3);
    assert_int_equal(election_update(&cur, replicas, 2, &live, 0, 2, &out), 1);
    assert_state(&out, 2, 8, (const int32_t[]){2, 1}, 2);
}

static void test_preferred(void **state)
{
    (void)state;
    const int32_t replicas[] = {1, 2, 3};
    const int32_t all[] = {1, 2, 3}, no1[] = {2, 3};
    struct election_live live = {all, 3};
    struct cluster_partition_state cur = state_of(2, 4, (const int32_t[]){2, 3, 1}, 3), out;
    memset(&out, 0x5a, sizeof(out));
    assert_int_equal(election_preferred(&cur, replicas, 3, &live, 9, &out), 1);
    assert_state(&out, 1, 5, (const int32_t[]){2, 3, 1}, 3);
    assert_int_equal(out.controller_epoch, 9);
    /* Already leads; not in the ISR; dead; no leader at all: nothing. */
    cur = state_of(1, 4, all, 3);
    assert_int_equal(election_preferred(&cur, replicas, 3, &live, 9, &out), 0);
    cur = state_of(2, 4, no1, 2);
    assert_int_equal(election_preferred(&cur, replicas, 3, &live, 9, &out), 0);
    cur = state_of(2, 4, all, 3);
    live = (struct election_live){no1, 2};
    assert_int_equal(election_preferred(&cur, replicas, 3, &live, 9, &out), 0);
    cur = state_of(-1, 4, all, 3);
    live = (struct election_live){all, 3};
    assert_int_equal(election_preferred(&cur, replicas, 3, &live, 9, &out), 0);
}

static void reassign_is(const int32_t *cur, uint32_t ncur, int32_t leader, const int32_t *isr,
                        uint32_t nisr, const int32_t *live, size_t nlive, uint32_t *load,
                        uint32_t p, uint32_t rf, const int32_t *want)
{
    int32_t out[CLUSTER_REPLICAS_MAX];
    assert_int_equal(
        assignment_reassign(cur, ncur, leader, isr, nisr, live, nlive, load, p, rf, out), rf);
    assert_memory_equal(out, want, rf * sizeof(*out));
}

static void test_reassign(void **state)
{
    (void)state;
    const int32_t live[] = {1, 2, 3, 4};
    uint32_t load[] = {1, 1, 1, 1};
    /* Growing: current ones stay first, the least loaded join. */
    reassign_is((const int32_t[]){2}, 1, 2, (const int32_t[]){2}, 1, live, 4, load, 0, 3,
                (const int32_t[]){2, 1, 3});
    assert_int_equal(load[0], 2);
    assert_int_equal(load[2], 2);
    /* Ties start at p % nlive; a loaded broker waits. */
    reassign_is((const int32_t[]){3}, 1, 3, (const int32_t[]){3}, 1, live, 4, load, 1, 2,
                (const int32_t[]){3, 2});
    reassign_is((const int32_t[]){1}, 1, 1, (const int32_t[]){1}, 1, live, 4, load, 0, 2,
                (const int32_t[]){1, 4});
    /* Same factor: nothing moves. */
    reassign_is((const int32_t[]){3, 1}, 2, 1, (const int32_t[]){3, 1}, 2, live, 4, load, 0, 2,
                (const int32_t[]){3, 1});
    /* Shrinking keeps the leader, then ISR members, then live ones, in
     * the current order. */
    const int32_t cur[] = {1, 2, 3, 4};
    reassign_is(cur, 4, 3, (const int32_t[]){3, 4, 1}, 3, live, 4, load, 0, 2,
                (const int32_t[]){1, 3});
    reassign_is(cur, 4, 4, (const int32_t[]){4}, 1, (const int32_t[]){2, 4}, 2, load, 0, 2,
                (const int32_t[]){2, 4});
    reassign_is(cur, 4, 1, (const int32_t[]){1, 2, 3, 4}, 4, live, 4, load, 0, 3,
                (const int32_t[]){1, 2, 3});
    reassign_is(cur, 4, -1, NULL, 0, NULL, 0, load, 0, 1, (const int32_t[]){1});
    /* Too few live brokers outside the replicas; bad factors. */
    int32_t out[CLUSTER_REPLICAS_MAX];
    uint32_t before[4];
    memcpy(before, load, sizeof(before));
    assert_int_equal(assignment_reassign((const int32_t[]){1, 2}, 2, 1, NULL, 0,
                                         (const int32_t[]){1, 2, 3}, 3, load, 0, 4, out),
                     -EINVAL);
    assert_int_equal(assignment_reassign((const int32_t[]){1, 5}, 2, 1, NULL, 0,
                                         (const int32_t[]){1, 2}, 2, load, 0, 3, out),
                     3);
    assert_int_equal(out[2], 2);
    assert_int_equal(assignment_reassign(cur, 4, 1, NULL, 0, live, 4, load, 0, 0, out), -EINVAL);
    assert_int_equal(
        assignment_reassign(cur, 4, 1, NULL, 0, live, 4, load, 0, CLUSTER_REPLICAS_MAX + 1, out),
        -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kafka_expected), cmocka_unit_test(test_balance),
        cmocka_unit_test(test_seeded),         cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_initial),        cmocka_unit_test(test_update),
        cmocka_unit_test(test_unclean),        cmocka_unit_test(test_not_a_replica),
        cmocka_unit_test(test_preferred),      cmocka_unit_test(test_reassign),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
