/* test_isr.c - the ISR and high watermark arithmetic of a leader (isr.h):
 * Kafka's lastCaughtUpTime rules, shrink after replica.lag.time.max.ms,
 * growth once caught up (and not for a follower that stopped), the high
 * watermark as the smallest log end of the ISR that never goes down. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>
#include <string.h>

#include "isr.h"

#define LAG 1000

static void test_caught_up_times(void **state)
{
    (void)state;
    struct isr_follower f;
    isr_follower_init(&f, 2, 100);
    assert_int_equal(f.leo, ISR_LEO_UNKNOWN);
    assert_int_equal(f.last_caught_up_ms, 100); /* a new leader gives it the lag to show up */
    /* At the leader's end: caught up now. */
    isr_follower_fetched(&f, 10, 10, 200);
    assert_int_equal(f.leo, 10);
    assert_int_equal(f.last_caught_up_ms, 200);
    /* Behind the end now, but at the end as it was at its previous fetch:
     * caught up as of that fetch. */
    isr_follower_fetched(&f, 10, 15, 300);
    assert_int_equal(f.last_caught_up_ms, 200);
    isr_follower_fetched(&f, 15, 20, 400);
    assert_int_equal(f.last_caught_up_ms, 300);
    /* Behind what the leader had at its previous fetch: no longer. */
    isr_follower_fetched(&f, 16, 30, 500);
    assert_int_equal(f.last_caught_up_ms, 300);
    isr_follower_fetched(&f, 17, 30, 600);
    assert_int_equal(f.last_caught_up_ms, 300);
    /* Times never go back. */
    isr_follower_fetched(&f, 30, 30, 50);
    assert_int_equal(f.last_caught_up_ms, 300);
    assert_int_equal(f.leo, 30);
}

static void test_high_watermark(void **state)
{
    (void)state;
    struct isr_follower f[2];
    int32_t isr[] = {1, 2, 3};
    isr_follower_init(&f[0], 2, 0);
    isr_follower_init(&f[1], 3, 0);
    /* A member whose log end is not known yet holds it where it is. */
    assert_int_equal(isr_high_watermark(5, 1, 20, f, 2, isr, 3), 5);
    isr_follower_fetched(&f[0], 12, 20, 10);
    assert_int_equal(isr_high_watermark(5, 1, 20, f, 2, isr, 3), 5);
    isr_follower_fetched(&f[1], 9, 20, 10);
    assert_int_equal(isr_high_watermark(5, 1, 20, f, 2, isr, 3), 9);
    /* Only the ISR counts; the leader alone: its log end. */
    assert_int_equal(isr_high_watermark(5, 1, 20, f, 2, isr, 2), 12);
    assert_int_equal(isr_high_watermark(5, 1, 20, f, 2, isr, 1), 20);
    /* Never down. */
    assert_int_equal(isr_high_watermark(15, 1, 20, f, 2, isr, 3), 15);
    /* A member that is no follower (unknown to this leader) holds it. */
    int32_t odd[] = {1, 7};
    assert_int_equal(isr_high_watermark(5, 1, 20, f, 2, odd, 2), 5);
}

static void test_shrink_and_grow(void **state)
{
    (void)state;
    struct isr_follower f[2];
    int32_t isr[] = {1, 2, 3}, out[8];
    isr_follower_init(&f[0], 2, 0);
    isr_follower_init(&f[1], 3, 0);
    /* Within the lag: nobody leaves, even before a first fetch. */
    assert_int_equal(isr_next(1, 0, 0, f, 2, isr, 3, LAG, LAG, out), 3);
    /* Broker 2 keeps up, broker 3 never fetched: 3 leaves once the lag passed. */
    isr_follower_fetched(&f[0], 5, 5, 1500);
    size_t n = isr_next(1, 5, 0, f, 2, isr, 3, 1500, LAG, out);
    assert_int_equal(n, 2);
    assert_int_equal(out[0], 1);
    assert_int_equal(out[1], 2);
    /* Broker 3 fetches but is behind the high watermark: stays out. */
    isr_follower_fetched(&f[1], 3, 5, 1600);
    assert_int_equal(isr_next(1, 5, 0, f, 2, out, 2, 1600, LAG, out + 4), 2);
    /* At the high watermark and the epoch's start: back in, last. */
    isr_follower_fetched(&f[1], 5, 8, 1700);
    n = isr_next(1, 5, 5, f, 2, isr, 2, 1700, LAG, out);
    assert_int_equal(n, 3);
    assert_int_equal(out[2], 3);
    /* Not before it holds the records of the leader's epoch. */
    assert_int_equal(isr_next(1, 5, 6, f, 2, isr, 2, 1700, LAG, out), 2);
    /* A follower that stopped fetching, out of the ISR, does not come back
     * on its own though its log end is at the high watermark. */
    struct isr_follower g;
    int32_t alone[] = {1};
    isr_follower_init(&g, 2, 0);
    isr_follower_fetched(&g, 5, 5, 100);
    assert_int_equal(isr_next(1, 5, 0, &g, 1, alone, 1, 100 + LAG + 1, LAG, out), 1);
    /* The leader is always in, first if it was missing; never below it. */
    int32_t none[] = {2};
    n = isr_next(1, 5, 0, &g, 1, none, 1, 100 + LAG + 1, LAG, out);
    assert_int_equal(n, 1);
    assert_int_equal(out[0], 1);
    /* A caught-up follower stays in as long as it keeps fetching. */
    int64_t now = 0;
    uint64_t end = 0;
    isr_follower_init(&g, 2, 0);
    for (int i = 0; i < 100; i++) {
        isr_follower_fetched(&g, end, end + 3, now); /* always one fetch behind */
        end += 3;
        now += 400;
        int32_t two[] = {1, 2};
        assert_int_equal(isr_next(1, end - 3, 0, &g, 1, two, 2, now, LAG, out), 2);
    }
}

static void test_same(void **state)
{
    (void)state;
    int32_t a[] = {1, 2, 3}, b[] = {3, 1, 2}, c[] = {1, 2};
    assert_true(isr_same(a, 3, b, 3));
    assert_false(isr_same(a, 3, c, 2));
    assert_false(isr_same(c, 2, (int32_t[]){1, 3}, 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_caught_up_times),
        cmocka_unit_test(test_high_watermark),
        cmocka_unit_test(test_shrink_and_grow),
        cmocka_unit_test(test_same),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
