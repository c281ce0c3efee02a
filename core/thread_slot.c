/* thread_slot.c - per-thread objects kept between calls (thread_slot.h).
 *
 * Invariant: s->ready is set (release order) only after s->key exists; keys
 * are made under one mutex, so two threads that race to a slot's first get
 * make one key. The key's destructor is the slot's (slot_end), which finds
 * the slot through the object's header. */
#include "thread_slot.h"

#include <errno.h>
#include <stdlib.h>

struct slot_head {
    struct thread_slot *slot;
    max_align_t align[]; /* the object follows, aligned for any type */
};

static pthread_mutex_t keys_lock = PTHREAD_MUTEX_INITIALIZER;

static void slot_end(void *arg)
{
    struct slot_head *h = arg;
    if (h->slot->release)
        h->slot->release(h->align);
    free(h);
}

void *thread_slot_get(struct thread_slot *s)
{
    if (!atomic_load_explicit(&s->ready, memory_order_acquire)) {
        pthread_mutex_lock(&keys_lock);
        int e = s->ready ? 0 : pthread_key_create(&s->key, slot_end);
        if (!e)
            atomic_store_explicit(&s->ready, 1, memory_order_release);
        pthread_mutex_unlock(&keys_lock);
        if (e)
            return NULL;
    }
    struct slot_head *h = pthread_getspecific(s->key);
    if (h)
        return h->align;
    if (!(h = calloc(1, sizeof(*h) + s->size)))
        return NULL;
    h->slot = s;
    if ((s->init && s->init(h->align)) || pthread_setspecific(s->key, h)) {
        if (s->release)
            s->release(h->align);
        free(h);
        return NULL;
    }
    return h->align;
}
