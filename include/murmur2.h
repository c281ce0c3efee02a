/* murmur2.h - Kafka's default partitioner hash, bit-identical to the Java
 * client's Utils.murmur2() and Utils.toPositive(). */
#ifndef TOPICFS_MURMUR2_H
#define TOPICFS_MURMUR2_H

#include <stddef.h>
#include <stdint.h>

int32_t murmur2(const void *data, size_t len);
/* toPositive(murmur2(key)) % partitions */
uint32_t murmur2_partition(const void *key, size_t len, uint32_t partitions);

#endif
