/* varint.h - unsigned LEB128 integers, as used in batch record tables. */
#ifndef TOPICFS_VARINT_H
#define TOPICFS_VARINT_H

#include <stddef.h>
#include <stdint.h>

#define VARINT32_MAX_BYTES 5

/* Writes v at p; returns the number of bytes written (1..5). */
size_t varint_encode(uint8_t *p, uint32_t v);
/* Reads one value from [p, end); returns bytes consumed, or 0 if truncated/overlong. */
size_t varint_decode(const uint8_t *p, const uint8_t *end, uint32_t *v);

#endif
