/* index.c - offset and time indexes (index.h).
 *
 * Entries live in a growable array and are appended to the file with
 * pwrite; a crash can leave a torn last entry, which open() drops (the file
 * size is rounded down to whole entries) and validation catches the rest.
 * The arrays are exactly as large as the file at open (a closed segment's
 * never grow), and only an active segment keeps its index files open
 * (segment.c closes them, fd = -1): appends and cuts need the file. */
#include "index.h"

#include "segment.h" /* segment_open_fd */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int load(int fd, void **arr, size_t *n, size_t *cap, size_t esz)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    size_t count = (size_t)st.st_size / esz;
    size_t c = count ? count : 1; /* exact: closed segments never grow */
    void *a = malloc(c * esz);
    if (!a)
        return -ENOMEM;
    if (count) {
        ssize_t r = pread(fd, a, count * esz, 0);
        if (r < 0) {
            free(a);
            return -errno;
        }
        count = (size_t)r / esz;
    }
    if ((size_t)st.st_size != count * esz && ftruncate(fd, (off_t)(count * esz)) < 0) {
        free(a);
        return -errno;
    }
    *arr = a;
    *n = count;
    *cap = c;
    return 0;
}

/* Appends an entry. Entries the file already holds there (an open that
 * re-adds what it rewound over) are not written again. */
static int push(int fd, void **arr, size_t *n, size_t *cap, size_t *file_n, size_t esz,
                const void *e)
{
    if (*n < *file_n && !memcmp((char *)*arr + *n * esz, e, esz)) {
        (*n)++;
        return 0;
    }
    if (*n < *file_n) {
        if (ftruncate(fd, (off_t)(*n * esz)) < 0)
            return -errno;
        *file_n = *n;
    }
    if (*n == *cap) {
        void *a = realloc(*arr, *cap * 2 * esz);
        if (!a)
            return -ENOMEM;
        *arr = a;
        *cap *= 2;
    }
    if (pwrite(fd, e, esz, (off_t)(*n * esz)) != (ssize_t)esz)
        return errno ? -errno : -EIO;
    memcpy((char *)*arr + *n * esz, e, esz);
    (*n)++;
    *file_n = *n;
    return 0;
}

static int cut(int fd, size_t *n, size_t *file_n, size_t newn, size_t esz)
{
    if (newn >= *file_n) {
        if (newn < *n)
            *n = newn;
        return 0;
    }
    if (ftruncate(fd, (off_t)(newn * esz)) < 0)
        return -errno;
    *n = *file_n = newn;
    return 0;
}

/* The file keeps only the first n entries (after a rewind). */
static int settle(int fd, size_t n, size_t *file_n, size_t esz)
{
    if (*file_n <= n)
        return 0;
    if (ftruncate(fd, (off_t)(n * esz)) < 0)
        return -errno;
    *file_n = n;
    return 0;
}

/* Opens (creating) an index file and loads its whole entries into *arr. */
static int index_file_open(const char *path, int *fd, void **arr, size_t *n, size_t *cap,
                           size_t *file_n, size_t esz)
{
    *arr = NULL;
    *n = *cap = *file_n = 0;
    *fd = segment_open_fd(path, O_RDWR | O_CREAT);
    if (*fd < 0)
        return *fd;
    int r = load(*fd, arr, n, cap, esz);
    if (r) {
        close(*fd);
        *fd = -1;
    }
    *file_n = *n;
    return r;
}

static void index_file_close(int *fd, void **arr, size_t *n, size_t *cap)
{
    if (*fd >= 0)
        close(*fd);
    free(*arr);
    *arr = NULL;
    *n = *cap = 0;
    *fd = -1;
}

/* Index of the last of n sorted entries for which below(entries, i, key)
 * holds, or -1; below must hold for a prefix of the entries. */
static ssize_t last_below(const void *entries, size_t n, const void *key,
                          int (*below)(const void *entries, size_t i, const void *key))
{
    ssize_t lo = 0, hi = (ssize_t)n - 1, best = -1;
    while (lo <= hi) {
        ssize_t mid = lo + (hi - lo) / 2;
        if (below(entries, (size_t)mid, key)) {
            best = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return best;
}

int offset_index_open(struct offset_index *ix, const char *path)
{
    return index_file_open(path, &ix->fd, (void **)&ix->e, &ix->n, &ix->cap, &ix->file_n,
                           sizeof(*ix->e));
}

void offset_index_rewind(struct offset_index *ix, size_t n)
{
    if (n < ix->n)
        ix->n = n;
}

int offset_index_settle(struct offset_index *ix)
{
    return settle(ix->fd, ix->n, &ix->file_n, sizeof(*ix->e));
}

void offset_index_close(struct offset_index *ix)
{
    index_file_close(&ix->fd, (void **)&ix->e, &ix->n, &ix->cap);
}

int offset_index_append(struct offset_index *ix, const struct offset_index_entry *e)
{
    return push(ix->fd, (void **)&ix->e, &ix->n, &ix->cap, &ix->file_n, sizeof(*e), e);
}

int offset_index_truncate(struct offset_index *ix, size_t n)
{
    return cut(ix->fd, &ix->n, &ix->file_n, n, sizeof(*ix->e));
}

static int rel_offset_at_most(const void *entries, size_t i, const void *key)
{
    return ((const struct offset_index_entry *)entries)[i].rel_offset <= *(const uint32_t *)key;
}

ssize_t offset_index_find_offset(const struct offset_index *ix, uint32_t rel)
{
    return last_below(ix->e, ix->n, &rel, rel_offset_at_most);
}

static int stream_pos_at_most(const void *entries, size_t i, const void *key)
{
    return ((const struct offset_index_entry *)entries)[i].stream_pos <= *(const uint64_t *)key;
}

ssize_t offset_index_find_pos(const struct offset_index *ix, uint64_t pos)
{
    return last_below(ix->e, ix->n, &pos, stream_pos_at_most);
}

int offset_index_validate(const struct offset_index *ix, uint64_t log_size)
{
    for (size_t i = 0; i < ix->n; i++) {
        const struct offset_index_entry *e = &ix->e[i];
        if (e->file_pos >= log_size)
            return -EBADMSG;
        if (i == 0 && e->file_pos != 0)
            return -EBADMSG;
        if (i > 0 &&
            (e->rel_offset <= ix->e[i - 1].rel_offset || e->file_pos <= ix->e[i - 1].file_pos ||
             e->stream_pos < ix->e[i - 1].stream_pos))
            return -EBADMSG;
    }
    return 0;
}

int time_index_open(struct time_index *ix, const char *path)
{
    return index_file_open(path, &ix->fd, (void **)&ix->e, &ix->n, &ix->cap, &ix->file_n,
                           sizeof(*ix->e));
}

void time_index_rewind(struct time_index *ix, size_t n)
{
    if (n < ix->n)
        ix->n = n;
}

int time_index_settle(struct time_index *ix)
{
    return settle(ix->fd, ix->n, &ix->file_n, sizeof(*ix->e));
}

void time_index_close(struct time_index *ix)
{
    index_file_close(&ix->fd, (void **)&ix->e, &ix->n, &ix->cap);
}

int time_index_append(struct time_index *ix, const struct time_index_entry *e)
{
    if (ix->n && (e->timestamp <= ix->e[ix->n - 1].timestamp ||
                  e->rel_offset <= ix->e[ix->n - 1].rel_offset))
        return 0;
    return push(ix->fd, (void **)&ix->e, &ix->n, &ix->cap, &ix->file_n, sizeof(*e), e);
}

int time_index_truncate(struct time_index *ix, size_t n)
{
    return cut(ix->fd, &ix->n, &ix->file_n, n, sizeof(*ix->e));
}

static int timestamp_before(const void *entries, size_t i, const void *key)
{
    return ((const struct time_index_entry *)entries)[i].timestamp < *(const int64_t *)key;
}

ssize_t time_index_find(const struct time_index *ix, int64_t ts)
{
    return last_below(ix->e, ix->n, &ts, timestamp_before);
}

int time_index_validate(const struct time_index *ix)
{
    for (size_t i = 1; i < ix->n; i++)
        if (ix->e[i].timestamp <= ix->e[i - 1].timestamp ||
            ix->e[i].rel_offset <= ix->e[i - 1].rel_offset)
            return -EBADMSG;
    return 0;
}
