/* fuzz_util.h - helpers shared by the libFuzzer targets in tests/fuzz/.
 *
 * Targets that fuzz files (segments, indexes, recovery points, manifests)
 * take a "file set": a sequence of entries, each a one-byte tag, a
 * little-endian u32 length and that many bytes (a length past the end takes
 * the rest). make_corpus.c writes seeds in the same format, so the fuzzer
 * starts from real files the core wrote. Files go to a per-process
 * directory under $FUZZ_TMPDIR (default /dev/shm, so that fsync costs
 * nothing), emptied before every run and removed at exit. */
#ifndef TOPICFS_FUZZ_UTIL_H
#define TOPICFS_FUZZ_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "logger.h"

struct fuzz_in {
    const uint8_t *p;
    size_t n;
};

static inline uint8_t fuzz_u8(struct fuzz_in *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

static inline uint32_t fuzz_u32(struct fuzz_in *in)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)fuzz_u8(in) << (8 * i);
    return v;
}

static inline uint64_t fuzz_u64(struct fuzz_in *in)
{
    uint64_t lo = fuzz_u32(in);
    return lo | (uint64_t)fuzz_u32(in) << 32;
}

/* The next file-set entry: 1 and its tag and bytes, or 0 at the end. */
static inline int fuzz_entry(struct fuzz_in *in, uint8_t *tag, const uint8_t **data, size_t *len)
{
    if (in->n < 5)
        return 0;
    *tag = fuzz_u8(in);
    size_t l = fuzz_u32(in);
    if (l > in->n)
        l = in->n;
    *data = in->p;
    *len = l;
    in->p += l;
    in->n -= l;
    return 1;
}

/* Writes one file-set entry (for make_corpus.c). */
static inline void fuzz_put_entry(FILE *f, uint8_t tag, const void *data, size_t len)
{
    uint8_t h[5] = {tag, (uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16),
                    (uint8_t)(len >> 24)};
    fwrite(h, 1, 5, f);
    fwrite(data, 1, len, f);
}

static char fuzz_dir_path[512];

static inline void fuzz_rm_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *de;
        char sub[1024];
        while ((de = readdir(d))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
            fuzz_rm_tree(sub);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static void fuzz_dir_remove(void)
{
    if (fuzz_dir_path[0])
        fuzz_rm_tree(fuzz_dir_path);
}

/* The process's scratch directory, created at the first call; `fresh`
 * empties it first. Logging is silenced (errors only) on first use. */
static inline const char *fuzz_dir(int fresh)
{
    if (!fuzz_dir_path[0]) {
        const char *base = getenv("FUZZ_TMPDIR");
        snprintf(fuzz_dir_path, sizeof(fuzz_dir_path), "%s/topicfs-fuzz-XXXXXX",
                 base ? base : "/dev/shm");
        if (!mkdtemp(fuzz_dir_path)) {
            perror("mkdtemp");
            abort();
        }
        atexit(fuzz_dir_remove);
        logger_init("fuzz", 0, LOG_LEVEL_ERROR);
    } else if (fresh) {
        fuzz_rm_tree(fuzz_dir_path);
        if (mkdir(fuzz_dir_path, 0700) < 0) {
            perror("mkdir");
            abort();
        }
    }
    return fuzz_dir_path;
}

static inline void fuzz_write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        perror(path);
        abort();
    }
    if (len && write(fd, data, len) != (ssize_t)len) {
        perror(path);
        abort();
    }
    close(fd);
}

/* A NUL-terminated copy of the input (for parsers of C strings). */
static inline char *fuzz_strndup(const uint8_t *data, size_t len)
{
    char *s = malloc(len + 1);
    if (!s)
        abort();
    memcpy(s, data, len);
    s[len] = 0;
    return s;
}

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
