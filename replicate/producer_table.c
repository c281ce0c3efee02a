/* producer_table.c - the leader's idempotence state (producer_table.h).
 *
 * A hash table of entries keyed by (topic, partition, producer id), with
 * chaining; entries are never many (one per forwarding broker and
 * partition). Each keeps a ring of the last PRODUCER_TABLE_BATCHES batches:
 * ring[(head - 1) % N] is the newest; `kept` of them are valid. Invariant:
 * last_seq is the last sequence of the newest batch. One mutex guards the
 * whole table and is held across the caller's append, so a decision and the
 * state it leads to never interleave with another batch's: a snapshot taken
 * after a batch is seen in the log holds that batch's entry.
 *
 * Followers keep the same table for the partitions they follow
 * (producer_table_follow, from the snapshots in the leader's fetch
 * replies), so a new leader knows the batches its log holds. */
#include "producer_table.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#define BUCKETS 256

struct kept_batch {
    uint32_t base_sequence, count;
    uint64_t base_offset;
};

struct entry {
    struct entry *next;
    char *topic;
    uint32_t partition;
    uint64_t producer_id;
    uint16_t epoch;
    uint32_t last_seq;
    struct kept_batch ring[PRODUCER_TABLE_BATCHES];
    unsigned head, kept;
};

struct producer_table {
    pthread_mutex_t lock;
    struct entry *bucket[BUCKETS];
};

int producer_table_new(struct producer_table **out)
{
    struct producer_table *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    pthread_mutex_init(&t->lock, NULL);
    *out = t;
    return 0;
}

static void entry_free(struct entry *e)
{
    free(e->topic);
    free(e);
}

void producer_table_free(struct producer_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < BUCKETS; i++)
        for (struct entry *e = t->bucket[i], *n; e; e = n) {
            n = e->next;
            entry_free(e);
        }
    pthread_mutex_destroy(&t->lock);
    free(t);
}

static size_t bucket_of(const char *topic, uint32_t partition, uint64_t pid)
{
    uint64_t h = XXH3_64bits_withSeed(topic, strlen(topic), pid ^ ((uint64_t)partition << 17));
    return (size_t)(h % BUCKETS);
}

static void keep(struct entry *e, const struct producer_batch *b, uint64_t base_offset)
{
    e->ring[e->head] = (struct kept_batch){b->base_sequence, b->count, base_offset};
    e->head = (e->head + 1) % PRODUCER_TABLE_BATCHES;
    if (e->kept < PRODUCER_TABLE_BATCHES)
        e->kept++;
    e->epoch = b->epoch;
    e->last_seq = b->base_sequence + b->count - 1;
}

/* 1 and *off when b is one of the kept batches. */
static int kept_lookup(const struct entry *e, const struct producer_batch *b, uint64_t *off)
{
    for (unsigned i = 0; i < e->kept; i++) {
        const struct kept_batch *k = &e->ring[i];
        if (k->base_sequence == b->base_sequence && k->count == b->count) {
            *off = k->base_offset;
            return 1;
        }
    }
    return 0;
}

int producer_table_append(struct producer_table *t, const char *topic, uint32_t partition,
                          const struct producer_batch *b, producer_append_fn fn, void *arg,
                          uint64_t *base_offset)
{
    if (!b->count)
        return -EINVAL;
    size_t i = bucket_of(topic, partition, b->producer_id);
    pthread_mutex_lock(&t->lock);
    struct entry *e = t->bucket[i];
    while (e && !(e->producer_id == b->producer_id && e->partition == partition &&
                  !strcmp(e->topic, topic)))
        e = e->next;
    int fresh = 0, r;
    if (!e) {
        e = calloc(1, sizeof(*e));
        char *name = strdup(topic);
        if (!e || !name) {
            free(e);
            free(name);
            pthread_mutex_unlock(&t->lock);
            return -ENOMEM;
        }
        e->topic = name;
        e->partition = partition;
        e->producer_id = b->producer_id;
        e->next = t->bucket[i];
        t->bucket[i] = e;
        fresh = 1;
    } else if (b->epoch < e->epoch) {
        r = -ESTALE;
        goto out;
    } else if (b->epoch == e->epoch) {
        if (kept_lookup(e, b, base_offset)) {
            r = 1;
            goto out;
        }
        if (b->base_sequence != e->last_seq + 1) {
            /* Past the next one: batches before it are missing here (this
             * replica led without them: an unclean election). At or below
             * the last: an old batch no longer kept. */
            r = (int32_t)(b->base_sequence - (e->last_seq + 1)) > 0 ? -EILSEQ : -EALREADY;
            goto out;
        }
    }
    r = fn(arg, base_offset);
    if (!r) {
        if (b->epoch != e->epoch)
            e->kept = e->head = 0; /* a new epoch: the old batches no longer count */
        keep(e, b, *base_offset);
    } else if (fresh) {
        t->bucket[i] = e->next;
        entry_free(e);
    }
out:
    pthread_mutex_unlock(&t->lock);
    return r;
}

void producer_table_forget_topic(struct producer_table *t, const char *topic)
{
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < BUCKETS; i++)
        for (struct entry **pe = &t->bucket[i]; *pe;) {
            struct entry *e = *pe;
            if (!strcmp(e->topic, topic)) {
                *pe = e->next;
                entry_free(e);
            } else {
                pe = &e->next;
            }
        }
    pthread_mutex_unlock(&t->lock);
}

size_t producer_table_snapshot(struct producer_table *t, const char *topic, uint32_t partition,
                               struct producer_kept *out, size_t cap)
{
    size_t n = 0;
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < BUCKETS; i++)
        for (struct entry *e = t->bucket[i]; e; e = e->next) {
            if (e->partition != partition || strcmp(e->topic, topic))
                continue;
            for (unsigned k = 0; k < e->kept && n < cap; k++) {
                const struct kept_batch *b =
                    &e->ring[(e->head + PRODUCER_TABLE_BATCHES - e->kept + k) %
                             PRODUCER_TABLE_BATCHES];
                out[n++] = (struct producer_kept){e->producer_id, e->epoch, b->base_sequence,
                                                  b->count, b->base_offset};
            }
        }
    pthread_mutex_unlock(&t->lock);
    return n;
}

/* The newest kept batch (e->kept > 0). */
static const struct kept_batch *newest(const struct entry *e)
{
    return &e->ring[(e->head + PRODUCER_TABLE_BATCHES - 1) % PRODUCER_TABLE_BATCHES];
}

static void unlink_entry(struct producer_table *t, size_t bucket, struct entry *e)
{
    for (struct entry **pe = &t->bucket[bucket]; *pe; pe = &(*pe)->next)
        if (*pe == e) {
            *pe = e->next;
            entry_free(e);
            return;
        }
}

int producer_table_follow(struct producer_table *t, const char *topic, uint32_t partition,
                          uint64_t from, uint64_t to, const struct producer_kept *v, size_t n)
{
    int r = 0;
    pthread_mutex_lock(&t->lock);
    /* What lies at or past `from` is not this log's any more. */
    for (size_t i = 0; i < BUCKETS; i++)
        for (struct entry *e = t->bucket[i], *next; e; e = next) {
            next = e->next;
            if (e->partition != partition || strcmp(e->topic, topic))
                continue;
            while (e->kept && newest(e)->base_offset >= from) {
                e->head = (e->head + PRODUCER_TABLE_BATCHES - 1) % PRODUCER_TABLE_BATCHES;
                e->kept--;
            }
            if (!e->kept)
                unlink_entry(t, i, e);
            else
                e->last_seq = newest(e)->base_sequence + newest(e)->count - 1;
        }
    for (size_t k = 0; k < n && !r; k++) {
        const struct producer_kept *b = &v[k];
        if (!b->count || b->base_offset > to || b->count > to - b->base_offset)
            continue; /* not in this log (yet) */
        size_t i = bucket_of(topic, partition, b->producer_id);
        struct entry *e = t->bucket[i];
        while (e && !(e->producer_id == b->producer_id && e->partition == partition &&
                      !strcmp(e->topic, topic)))
            e = e->next;
        if (!e) {
            e = calloc(1, sizeof(*e));
            char *name = strdup(topic);
            if (!e || !name) {
                free(e);
                free(name);
                r = -ENOMEM;
                break;
            }
            e->topic = name;
            e->partition = partition;
            e->producer_id = b->producer_id;
            e->epoch = b->epoch;
            e->next = t->bucket[i];
            t->bucket[i] = e;
        } else if (e->kept && b->base_offset <= newest(e)->base_offset) {
            continue; /* known already (or older than what is kept) */
        }
        if (b->epoch != e->epoch)
            e->kept = e->head = 0; /* as the leader did at its append */
        struct producer_batch pb = {b->producer_id, b->epoch, b->base_sequence, b->count};
        keep(e, &pb, b->base_offset);
    }
    pthread_mutex_unlock(&t->lock);
    return r;
}
