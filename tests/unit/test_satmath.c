/* test_satmath.c - the saturating arithmetic of satmath.h at the ends of
 * each type, and text_buf_drop on an empty buffer (issue 8, defect 7: a
 * read of p0.jsonl called memmove with a NULL buffer). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>
#include <string.h>

#include "jsonl.h"
#include "satmath.h"

static void test_add_i64(void **state)
{
    (void)state;
    assert_true(sat_add_i64(1, 2) == 3);
    assert_true(sat_add_i64(-5, 3) == -2);
    assert_true(sat_add_i64(INT64_MAX, 1) == INT64_MAX);
    assert_true(sat_add_i64(1763892000000, INT64_MAX) == INT64_MAX);
    assert_true(sat_add_i64(INT64_MAX, INT64_MAX) == INT64_MAX);
    assert_true(sat_add_i64(INT64_MIN, -1) == INT64_MIN);
    assert_true(sat_add_i64(INT64_MIN, INT64_MIN) == INT64_MIN);
    assert_true(sat_add_i64(INT64_MIN, INT64_MAX) == -1);
    assert_true(sat_add_i64(INT64_MAX, -1) == INT64_MAX - 1);
}

static void test_sub_i64(void **state)
{
    (void)state;
    assert_true(sat_sub_i64(5, 3) == 2);
    assert_true(sat_sub_i64(3, 5) == -2);
    assert_true(sat_sub_i64(1763892000000, INT64_MIN) == INT64_MAX);
    assert_true(sat_sub_i64(INT64_MAX, -1) == INT64_MAX);
    assert_true(sat_sub_i64(INT64_MIN, 1) == INT64_MIN);
    assert_true(sat_sub_i64(-2, INT64_MAX) == INT64_MIN);
    assert_true(sat_sub_i64(-1, INT64_MAX) == INT64_MIN);
    assert_true(sat_sub_i64(0, INT64_MAX) == -INT64_MAX);
    assert_true(sat_sub_i64(INT64_MAX, INT64_MAX) == 0);
    assert_true(sat_sub_i64(1000, INT64_MAX) == 1000 - INT64_MAX);
}

static void test_add_mul_u64(void **state)
{
    (void)state;
    assert_true(sat_add_u64(1, 2) == 3);
    assert_true(sat_add_u64(UINT64_MAX, 1) == UINT64_MAX);
    assert_true(sat_add_u64(UINT64_MAX - 1, 1) == UINT64_MAX);
    assert_true(sat_add_u64(UINT64_MAX / 2 + 1, UINT64_MAX / 2 + 1) == UINT64_MAX);
    assert_true(sat_mul_u64(3, 4) == 12);
    assert_true(sat_mul_u64(0, UINT64_MAX) == 0);
    assert_true(sat_mul_u64(UINT64_MAX, 1) == UINT64_MAX);
    assert_true(sat_mul_u64(UINT64_MAX / 2 + 1, 2) == UINT64_MAX);
    assert_true(sat_mul_u64((uint64_t)1 << 32, (uint64_t)1 << 32) == UINT64_MAX);
    assert_true(sat_mul_u64((uint64_t)1 << 31, (uint64_t)1 << 32) == (uint64_t)1 << 63);
}

static void test_text_buf_drop(void **state)
{
    (void)state;
    struct text_buf b = {0};
    text_buf_drop(&b, 0); /* nothing rendered yet: data is NULL */
    text_buf_drop(&b, 10);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    struct record_view r = {.offset = 7,
                            .timestamp = 1,
                            .value = (const uint8_t *)"k:v\n",
                            .value_len = 4,
                            .key_len = 1};
    assert_int_equal(jsonl_append(&b, &r), 0);
    size_t len = b.len;
    char copy[256];
    memcpy(copy, b.data, len);
    text_buf_drop(&b, 3);
    assert_int_equal(b.len, len - 3);
    assert_memory_equal(b.data, copy + 3, len - 3);
    text_buf_drop(&b, 1000);
    assert_int_equal(b.len, 0);
    text_buf_drop(&b, 1);
    text_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_i64),
        cmocka_unit_test(test_sub_i64),
        cmocka_unit_test(test_add_mul_u64),
        cmocka_unit_test(test_text_buf_drop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
