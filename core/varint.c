/* varint.c - unsigned LEB128, at most 5 bytes for 32 bits. */
#include "varint.h"

size_t varint_encode(uint8_t *p, uint32_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

size_t varint_decode(const uint8_t *p, const uint8_t *end, uint32_t *v)
{
    uint32_t r = 0;
    for (size_t i = 0; i < VARINT32_MAX_BYTES && p + i < end; i++) {
        uint32_t b = p[i];
        if (i == 4 && b > 0x0f)
            return 0; /* more than 32 bits */
        r |= (b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *v = r;
            return i + 1;
        }
    }
    return 0;
}
