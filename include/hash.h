/* hash.h - XXH3-64 over bulk data (batches, inter-broker frames) through
 * xxHash's own runtime dispatch on x86-64: the widest vector unit the CPU
 * has (AVX2 on this machine kind: about 3.7 times the SSE2 path the plain
 * entry points are built for, 38 against 140 us per MiB). The values are
 * the same whichever path computes them; other CPUs use the plain entry
 * points. Small inputs (checkpoint lines, keys) call xxhash.h directly. */
#ifndef TOPICFS_HASH_H
#define TOPICFS_HASH_H

#include <xxhash.h>

#if defined(__x86_64__) || defined(__i386__)
#include <xxh_x86dispatch.h>
#define hash_bulk XXH3_64bits_dispatch
#define hash_bulk_update XXH3_64bits_update_dispatch
#else
#define hash_bulk XXH3_64bits
#define hash_bulk_update XXH3_64bits_update
#endif

#endif
