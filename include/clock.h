/* clock.h - wall-clock time as Kafka counts it: milliseconds since the epoch.
 *
 * Record timestamps, segment ages and retention all use this one clock, so
 * a record's timestamp and the retention check that ages it agree. */
#ifndef TOPICFS_CLOCK_H
#define TOPICFS_CLOCK_H

#include <stdint.h>

int64_t clock_now_ms(void);

#endif
