/* ptr_array.h - a growable array of pointers kept sorted by a key.
 *
 * The store's topics and the registry's groups are such arrays: looked up by
 * binary search, inserted in place. The array does not own its items. */
#ifndef TOPICFS_PTR_ARRAY_H
#define TOPICFS_PTR_ARRAY_H

#include <stddef.h>
#include <sys/types.h>

struct ptr_array {
    void **items;
    size_t n, cap;
};

/* Compares an item with a key as strcmp does (item minus key). */
typedef int (*ptr_array_cmp_fn)(const void *item, const void *key);

/* Index of the item equal to key (*found = 1), or where key would be
 * inserted to keep the array sorted (*found = 0). */
size_t ptr_array_search(const struct ptr_array *a, const void *key, ptr_array_cmp_fn cmp,
                        int *found);
/* Inserts item at index at (0..n); 0 or -ENOMEM. */
int ptr_array_insert(struct ptr_array *a, size_t at, void *item);
/* Removes the item at index at (0..n-1). */
void ptr_array_remove(struct ptr_array *a, size_t at);
void ptr_array_free(struct ptr_array *a);

#endif
