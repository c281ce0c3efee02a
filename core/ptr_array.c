/* ptr_array.c - sorted pointer arrays (ptr_array.h). */
#include "ptr_array.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

size_t ptr_array_search(const struct ptr_array *a, const void *key, ptr_array_cmp_fn cmp,
                        int *found)
{
    size_t lo = 0, hi = a->n;
    *found = 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp(a->items[mid], key);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int ptr_array_insert(struct ptr_array *a, size_t at, void *item)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        void **items = realloc(a->items, cap * sizeof(*items));
        if (!items)
            return -ENOMEM;
        a->items = items;
        a->cap = cap;
    }
    memmove(&a->items[at + 1], &a->items[at], (a->n - at) * sizeof(*a->items));
    a->items[at] = item;
    a->n++;
    return 0;
}

void ptr_array_remove(struct ptr_array *a, size_t at)
{
    memmove(&a->items[at], &a->items[at + 1], (a->n - at - 1) * sizeof(*a->items));
    a->n--;
}

void ptr_array_free(struct ptr_array *a)
{
    free(a->items);
    memset(a, 0, sizeof(*a));
}
