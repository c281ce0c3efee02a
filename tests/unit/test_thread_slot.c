/* test_thread_slot.c - per-thread objects (thread_slot.h): one per thread,
 * kept between calls, prepared once, released when the thread ends; a
 * failed init gives NULL and leaves nothing behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "thread_slot.h"

struct obj {
    int ready;
    char *held;
};

static atomic_int inits, releases, fail_init;

static int obj_init(void *p)
{
    struct obj *o = p;
    atomic_fetch_add(&inits, 1);
    o->held = malloc(64); /* released by obj_release, even on failure */
    if (atomic_load(&fail_init))
        return -ENOMEM;
    o->ready = 1;
    return 0;
}

static void obj_release(void *p)
{
    struct obj *o = p;
    free(o->held);
    atomic_fetch_add(&releases, 1);
}

static struct thread_slot slot = THREAD_SLOT_INIT(sizeof(struct obj), obj_init, obj_release);

static void *use_slot(void *arg)
{
    struct obj *a = thread_slot_get(&slot), *b = thread_slot_get(&slot);
    *(struct obj **)arg = a;
    return a && a == b && a->ready ? a : NULL;
}

static void test_one_per_thread_released_at_exit(void **state)
{
    (void)state;
    atomic_store(&inits, 0);
    atomic_store(&releases, 0);
    struct obj *mine = thread_slot_get(&slot);
    assert_non_null(mine);
    assert_ptr_equal(thread_slot_get(&slot), mine);
    assert_int_equal(mine->ready, 1);
    pthread_t t[4];
    struct obj *theirs[4];
    void *ok[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, use_slot, &theirs[i]), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], &ok[i]), 0);
        assert_non_null(ok[i]);
        assert_true(theirs[i] != mine);
    }
    assert_int_equal(atomic_load(&inits), 5);
    assert_int_equal(atomic_load(&releases), 4); /* every thread that ended */
}

static void *get_failing(void *arg)
{
    (void)arg;
    return thread_slot_get(&slot);
}

static void test_failed_init_gives_null(void **state)
{
    (void)state;
    atomic_store(&fail_init, 1);
    atomic_store(&releases, 0);
    pthread_t t;
    void *got = (void *)1;
    assert_int_equal(pthread_create(&t, NULL, get_failing, NULL), 0);
    assert_int_equal(pthread_join(t, &got), 0);
    atomic_store(&fail_init, 0);
    assert_null(got);
    assert_int_equal(atomic_load(&releases), 1); /* what init held is freed */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_per_thread_released_at_exit),
        cmocka_unit_test(test_failed_init_gives_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
