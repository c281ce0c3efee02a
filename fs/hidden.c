/* hidden.c - the table of hidden-name nodes (hidden.h): a chained hash on
 * the slot number, one mutex. Slots count up and are never reused. */
#include "hidden.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#define BUCKETS 1024

struct entry {
    struct hidden_node node;
    uint64_t lookups;
    struct entry *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry *table[BUCKETS];
static uint64_t next_slot = 1;
static uint64_t alive;

int hidden_add(struct hidden_node *n)
{
    struct entry *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    pthread_mutex_lock(&lock);
    if (n->jsonl) {
        for (size_t i = 0; i < BUCKETS; i++)
            for (struct entry *o = table[i]; o; o = o->next)
                if (o->node.jsonl && o->node.topic_id == n->topic_id &&
                    o->node.partition == n->partition && o->node.start_offset == n->start_offset &&
                    o->node.json_next > n->json_next) {
                    n->json_next = o->node.json_next;
                    n->json_len = o->node.json_len;
                }
    }
    n->slot = next_slot++;
    e->node = *n;
    e->lookups = 1;
    e->next = table[n->slot % BUCKETS];
    table[n->slot % BUCKETS] = e;
    alive++;
    pthread_mutex_unlock(&lock);
    return 0;
}

int hidden_get(uint64_t slot, struct hidden_node *out)
{
    int r = -ENOENT;
    pthread_mutex_lock(&lock);
    for (struct entry *e = table[slot % BUCKETS]; e; e = e->next)
        if (e->node.slot == slot) {
            *out = e->node;
            r = 0;
            break;
        }
    pthread_mutex_unlock(&lock);
    return r;
}

void hidden_set_json_size(uint64_t slot, uint64_t next, uint64_t len)
{
    pthread_mutex_lock(&lock);
    for (struct entry *e = table[slot % BUCKETS]; e; e = e->next)
        if (e->node.slot == slot) {
            if (next > e->node.json_next) {
                e->node.json_next = next;
                e->node.json_len = len;
            }
            break;
        }
    pthread_mutex_unlock(&lock);
}

void hidden_forget(uint64_t slot, uint64_t count)
{
    pthread_mutex_lock(&lock);
    for (struct entry **p = &table[slot % BUCKETS]; *p; p = &(*p)->next) {
        struct entry *e = *p;
        if (e->node.slot != slot)
            continue;
        e->lookups = e->lookups > count ? e->lookups - count : 0;
        if (!e->lookups) {
            *p = e->next;
            free(e);
            alive--;
        }
        break;
    }
    pthread_mutex_unlock(&lock);
}

uint64_t hidden_count(void)
{
    pthread_mutex_lock(&lock);
    uint64_t n = alive;
    pthread_mutex_unlock(&lock);
    return n;
}

void hidden_clear(void)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < BUCKETS; i++) {
        while (table[i]) {
            struct entry *e = table[i];
            table[i] = e->next;
            free(e);
        }
    }
    alive = 0;
    pthread_mutex_unlock(&lock);
}
