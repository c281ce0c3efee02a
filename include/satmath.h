/* satmath.h - saturating arithmetic for times and sizes.
 *
 * Configured times and sizes take the whole int64 range Kafka accepts
 * (Long.MAX_VALUE is "forever"), so adding one to a timestamp or a size may
 * not fit. These clamp to the type's range instead of overflowing: a deadline
 * of now + INT64_MAX is INT64_MAX, which no clock reaches, and an age of
 * now - INT64_MIN is INT64_MAX, older than any limit but "forever". Every
 * computation that mixes a configured time or size with a timestamp or a
 * size goes through one of these. */
#ifndef TOPICFS_SATMATH_H
#define TOPICFS_SATMATH_H

#include <stdint.h>

static inline int64_t sat_add_i64(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

static inline int64_t sat_sub_i64(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_sub_overflow(a, b, &r))
        return b < 0 ? INT64_MAX : INT64_MIN;
    return r;
}

static inline uint64_t sat_add_u64(uint64_t a, uint64_t b)
{
    uint64_t r;
    return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}

static inline uint64_t sat_mul_u64(uint64_t a, uint64_t b)
{
    uint64_t r;
    return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}

#endif
