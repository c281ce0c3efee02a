/* murmur2.c - Kafka's murmur2: seed 0x9747b28c, m 0x5bd1e995, r 24, with the
 * Java client's little-endian word reads and tail handling. Arithmetic is
 * done on uint32_t so overflow wraps exactly as Java's int does. */
#include "murmur2.h"

int32_t murmur2(const void *data, size_t len)
{
    const uint8_t *d = data;
    const uint32_t m = 0x5bd1e995u;
    const int r = 24;
    uint32_t h = 0x9747b28cu ^ (uint32_t)len;
    size_t len4 = len / 4;

    for (size_t i = 0; i < len4; i++) {
        const uint8_t *p = d + i * 4;
        uint32_t k =
            (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        k *= m;
        k ^= k >> r;
        k *= m;
        h *= m;
        h ^= k;
    }
    const uint8_t *tail = d + (len & ~(size_t)3);
    switch (len % 4) {
    case 3:
        h ^= (uint32_t)tail[2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)tail[1] << 8;
        /* fall through */
    case 1:
        h ^= tail[0];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return (int32_t)h;
}

uint32_t murmur2_partition(const void *key, size_t len, uint32_t partitions)
{
    uint32_t positive = (uint32_t)murmur2(key, len) & 0x7fffffffu;
    return partitions ? positive % partitions : 0;
}
