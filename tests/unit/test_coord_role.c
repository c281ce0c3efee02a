/* test_coord_role.c - the group coordinator's role state machine
 * (coord_role_step, coordinator.h): when a broker loads, serves, keeps its
 * members across a leader epoch bump, and lets them go. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>

#include "coordinator.h"

static struct coord_step step(enum coord_role role, int32_t epoch, int leads, int32_t leader_epoch,
                              int log_ours, int loaded)
{
    struct coord_state now = {role, epoch, leads, leader_epoch, log_ours, loaded};
    return coord_role_step(&now);
}

static void assert_step(struct coord_step st, enum coord_role role, int32_t epoch, int release,
                        int reload_mirror, int load)
{
    assert_int_equal(st.role, role);
    assert_int_equal(st.epoch, epoch);
    assert_int_equal(st.release, release);
    assert_int_equal(st.reload_mirror, reload_mirror);
    assert_int_equal(st.load, load);
}

static void test_a_follower_stays_a_mirror(void **state)
{
    (void)state;
    assert_step(step(COORD_NONE, -1, 0, -1, 0, 0), COORD_NONE, -1, 0, 0, 0);
}

static void test_a_new_leader_loads_once_its_log_is_committed(void **state)
{
    (void)state;
    /* Leads, but its replica holds records not yet committed: it waits. */
    assert_step(step(COORD_NONE, -1, 1, 4, 0, 0), COORD_LOADING, 4, 0, 0, 0);
    assert_step(step(COORD_LOADING, 4, 1, 4, 0, 0), COORD_LOADING, 4, 0, 0, 0);
    /* Committed: it replays and serves. */
    assert_step(step(COORD_LOADING, 4, 1, 4, 0, 1), COORD_LOADING, 4, 0, 0, 1);
    /* At once when already committed. */
    assert_step(step(COORD_NONE, -1, 1, 4, 0, 1), COORD_LOADING, 4, 0, 0, 1);
}

static void test_serving_goes_on_in_its_term(void **state)
{
    (void)state;
    assert_step(step(COORD_SERVING, 4, 1, 4, 1, 1), COORD_SERVING, 4, 0, 0, 0);
    assert_step(step(COORD_SERVING, 4, 1, 4, 0, 0), COORD_SERVING, 4, 0, 0, 0);
}

static void test_an_epoch_bump_with_its_own_log_keeps_the_members(void **state)
{
    (void)state;
    /* The controller bumped the epoch (a broker left the ISR); nobody else
     * wrote the log: same members, new epoch. */
    assert_step(step(COORD_SERVING, 4, 1, 5, 1, 1), COORD_SERVING, 5, 0, 0, 0);
}

static void test_an_epoch_bump_after_another_leader_reloads(void **state)
{
    (void)state;
    /* Someone else led and wrote meanwhile: the members go, it loads again. */
    assert_step(step(COORD_SERVING, 4, 1, 6, 0, 1), COORD_LOADING, 6, 1, 0, 1);
    assert_step(step(COORD_SERVING, 4, 1, 6, 0, 0), COORD_LOADING, 6, 1, 0, 0);
    /* A new term while still loading starts the wait over. */
    assert_step(step(COORD_LOADING, 4, 1, 6, 0, 0), COORD_LOADING, 6, 1, 0, 0);
}

static void test_losing_the_lead_lets_members_go(void **state)
{
    (void)state;
    assert_step(step(COORD_SERVING, 4, 0, -1, 0, 0), COORD_NONE, -1, 1, 1, 0);
    assert_step(step(COORD_LOADING, 4, 0, -1, 0, 0), COORD_NONE, -1, 1, 1, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_follower_stays_a_mirror),
        cmocka_unit_test(test_a_new_leader_loads_once_its_log_is_committed),
        cmocka_unit_test(test_serving_goes_on_in_its_term),
        cmocka_unit_test(test_an_epoch_bump_with_its_own_log_keeps_the_members),
        cmocka_unit_test(test_an_epoch_bump_after_another_leader_reloads),
        cmocka_unit_test(test_losing_the_lead_lets_members_go),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
