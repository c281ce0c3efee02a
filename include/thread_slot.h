/* thread_slot.h - an object per thread, kept from one call to the next and
 * released when the thread ends: the buffers a hot path reuses (a FUSE
 * worker's scratch, a connection thread's fetch reply, the batch a leader
 * builds for a forwarded write), so that each request does not fault fresh
 * pages in for a buffer of a megabyte.
 *
 *     static struct thread_slot slot = THREAD_SLOT_INIT(sizeof(struct x), x_init, x_free);
 *     struct x *mine = thread_slot_get(&slot);
 *
 * The object starts zeroed, then init (when set) prepares it: 0 or a
 * negative errno (then it is released and get returns NULL). release (when
 * set) frees what the object holds, also after a failed init; the object
 * itself is freed after it.
 * A slot is a static: its key is made at the first get and never deleted. */
#ifndef TOPICFS_THREAD_SLOT_H
#define TOPICFS_THREAD_SLOT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

struct thread_slot {
    size_t size;
    int (*init)(void *obj);
    void (*release)(void *obj);
    pthread_key_t key;
    atomic_int ready;
};

#define THREAD_SLOT_INIT(size, init, release)                                                      \
    {                                                                                              \
        (size), (init), (release), 0, 0                                                            \
    }

/* This thread's object, made at its first call; NULL without memory. */
void *thread_slot_get(struct thread_slot *s);

#endif
