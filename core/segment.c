/* segment.c - one .log file with its indexes (segment.h).
 *
 * Appends go to the end with one pwritev of the sealed batch; the indexes are
 * updated after the log write, so an index entry never points past the log.
 * Opening a segment rebuilds whatever the indexes lost: scanning starts at the
 * last index entry that lies in the trusted (already validated) part of the
 * file, re-adds entries by the same rule appends use, and from the caller's
 * validation point on also verifies each batch's checksum and continuity
 * (base offset and base position follow the previous batch). The first batch
 * that fails is cut off with everything after it. */
#include "segment.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "logger.h"

#define SCAN_CHUNK (1u << 20)

void segment_path(char *buf, size_t cap, const char *dir, uint64_t base, const char *suffix)
{
    snprintf(buf, cap, "%s/%020" PRIu64 "%s", dir, base, suffix);
}

static void note_index(struct segment *s, const struct batch_header *h, uint64_t file_pos, int *err)
{
    if (s->oix.n == 0 || s->bytes_since_index >= INDEX_INTERVAL_BYTES) {
        struct offset_index_entry e = {
            .rel_offset = (uint32_t)(h->base_offset - s->base_offset),
            .file_pos = (uint32_t)file_pos,
            .stream_pos = h->base_pos,
        };
        struct time_index_entry t = {.timestamp = h->timestamp, .rel_offset = e.rel_offset};
        int r = offset_index_append(&s->oix, &e);
        if (!r)
            r = time_index_append(&s->tix, &t);
        if (r && err)
            *err = r;
        s->bytes_since_index = 0;
    }
    s->bytes_since_index += h->length;
}

static void note_batch(struct segment *s, const struct batch_header *h, uint64_t file_pos)
{
    if (s->size == 0)
        s->created_ms = h->timestamp;
    s->next_offset = batch_next_offset(h);
    s->end_pos = batch_end_pos(h);
    s->size = file_pos + h->length;
    if (h->timestamp > s->max_timestamp)
        s->max_timestamp = h->timestamp;
}

static struct segment *segment_alloc(const char *dir, uint64_t base_offset, uint64_t base_pos)
{
    struct segment *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->dir = strdup(dir);
    s->fd = -1;
    s->oix.fd = -1;
    s->tix.fd = -1;
    s->base_offset = s->next_offset = base_offset;
    s->base_pos = s->end_pos = base_pos;
    if (!s->dir) {
        free(s);
        return NULL;
    }
    return s;
}

static int open_files(struct segment *s, int create)
{
    char path[4096];
    int r;
    segment_path(path, sizeof(path), s->dir, s->base_offset, ".log");
    s->fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_TRUNC : 0), 0644);
    if (s->fd < 0)
        return -errno;
    segment_path(path, sizeof(path), s->dir, s->base_offset, ".index");
    if (create)
        unlink(path);
    if ((r = offset_index_open(&s->oix, path)))
        return r;
    segment_path(path, sizeof(path), s->dir, s->base_offset, ".timeindex");
    if (create)
        unlink(path);
    return time_index_open(&s->tix, path);
}

int segment_create(const char *dir, uint64_t base_offset, uint64_t base_pos, int64_t now_ms,
                   struct segment **out)
{
    struct segment *s = segment_alloc(dir, base_offset, base_pos);
    if (!s)
        return -ENOMEM;
    int r = open_files(s, 1);
    if (r) {
        segment_close(s);
        return r;
    }
    s->created_ms = now_ms;
    *out = s;
    return 0;
}

/* Reads [pos, pos+len) into buf, growing it as needed; returns bytes read. */
static ssize_t read_at(int fd, uint8_t **buf, size_t *cap, uint64_t pos, size_t len)
{
    if (len > *cap) {
        uint8_t *n = realloc(*buf, len);
        if (!n)
            return -ENOMEM;
        *buf = n;
        *cap = len;
    }
    size_t done = 0;
    while (done < len) {
        ssize_t r = pread(fd, *buf + done, len - done, (off_t)(pos + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    return (ssize_t)done;
}

/* Scans batches from file_pos to file_size, indexing them; checksums are
 * verified from verify_from on. Cuts the file at the first bad batch. */
static int scan_and_recover(struct segment *s, uint64_t file_pos, uint64_t file_size,
                            uint64_t verify_from)
{
    uint8_t *buf = NULL;
    size_t cap = 0;
    uint64_t chunk_pos = 0, chunk_len = 0;
    int err = 0;

    while (file_pos < file_size) {
        struct batch_header h;
        uint64_t need = BATCH_HEADER_SIZE;
        if (file_size - file_pos < need)
            break;
        if (file_pos < chunk_pos || file_pos + need > chunk_pos + chunk_len) {
            size_t want =
                (size_t)(file_size - file_pos < SCAN_CHUNK ? file_size - file_pos : SCAN_CHUNK);
            ssize_t n = read_at(s->fd, &buf, &cap, file_pos, want);
            if (n < 0) {
                err = (int)n;
                break;
            }
            chunk_pos = file_pos;
            chunk_len = (uint64_t)n;
            if (chunk_len < need)
                break;
        }
        const uint8_t *p = buf + (file_pos - chunk_pos);
        /* Offsets only grow (compaction leaves gaps); positions are contiguous. */
        if (batch_header_decode(p, &h) || h.base_offset < s->next_offset ||
            h.base_pos != s->end_pos || file_pos + h.length > file_size)
            break;
        if (file_pos + h.length > verify_from) {
            if (file_pos + h.length > chunk_pos + chunk_len) {
                ssize_t n = read_at(s->fd, &buf, &cap, file_pos,
                                    h.length > SCAN_CHUNK ? h.length : SCAN_CHUNK);
                if (n < 0) {
                    err = (int)n;
                    break;
                }
                chunk_pos = file_pos;
                chunk_len = (uint64_t)n;
                if (chunk_len < h.length)
                    break;
                p = buf;
            }
            if (batch_verify(p, h.length))
                break;
        }
        note_index(s, &h, file_pos, &err);
        note_batch(s, &h, file_pos);
        file_pos += h.length;
    }
    free(buf);
    if (err)
        return err;
    if (file_pos < file_size) {
        s->was_cut = 1;
        logger_log(LOG_LEVEL_WARN,
                   "%s: segment %" PRIu64 ": cutting %" PRIu64 " bytes at file position %" PRIu64
                   " (first batch that failed validation)",
                   s->dir, s->base_offset, file_size - file_pos, file_pos);
        if (ftruncate(s->fd, (off_t)file_pos) < 0)
            return -errno;
    }
    s->size = file_pos;
    return 0;
}

int segment_open(const char *dir, uint64_t base_offset, uint64_t expect_base_pos,
                 uint64_t validate_from, struct segment **out)
{
    struct segment *s = segment_alloc(dir, base_offset, expect_base_pos);
    struct stat st;
    int r;
    if (!s)
        return -ENOMEM;
    if ((r = open_files(s, 0)))
        goto fail;
    if (fstat(s->fd, &st) < 0) {
        r = -errno;
        goto fail;
    }
    uint64_t file_size = (uint64_t)st.st_size;
    uint64_t trusted = validate_from < file_size ? validate_from : file_size;

    /* Index entries are only trusted inside the validated prefix. */
    size_t keep = s->oix.n;
    while (keep > 0 && s->oix.e[keep - 1].file_pos >= trusted)
        keep--;
    if (offset_index_validate(&s->oix, file_size) || time_index_validate(&s->tix))
        keep = 0;
    /* A segment starts where its first batch says (after compaction there may
     * be a gap before it); an empty or unreadable one where the caller expects. */
    uint64_t hint = expect_base_pos == UINT64_MAX ? 0 : expect_base_pos;
    {
        uint8_t hb[BATCH_HEADER_SIZE];
        struct batch_header h;
        s->base_pos = hint;
        /* ...never before the previous segment's end: then the scan cuts it. */
        if (file_size >= BATCH_HEADER_SIZE &&
            pread(s->fd, hb, sizeof(hb), 0) == BATCH_HEADER_SIZE && !batch_header_decode(hb, &h) &&
            (expect_base_pos == UINT64_MAX || h.base_pos >= expect_base_pos))
            s->base_pos = h.base_pos;
        s->end_pos = s->base_pos;
    }
    if (keep > 0 && s->oix.e[0].stream_pos != s->base_pos)
        keep = 0;
    /* Both indexes get an entry for the first batch: a time index without it
     * was lost or cut, and is rebuilt with the offset index. */
    if (keep > 0 && (s->tix.n == 0 || s->tix.e[0].rel_offset != s->oix.e[0].rel_offset))
        keep = 0;
    /* Where the scan starts: the last trusted index entry, else the file start. */
    uint64_t start = 0;
    if (keep > 0) {
        const struct offset_index_entry *e = &s->oix.e[keep - 1];
        struct batch_header h;
        uint8_t hb[BATCH_HEADER_SIZE];
        if (pread(s->fd, hb, sizeof(hb), e->file_pos) == (ssize_t)sizeof(hb) &&
            !batch_header_decode(hb, &h) && h.base_offset == s->base_offset + e->rel_offset &&
            h.base_pos == e->stream_pos) {
            start = e->file_pos;
            s->next_offset = h.base_offset;
            s->end_pos = h.base_pos;
            s->size = start;
            keep--; /* the scan re-adds this entry */
        } else {
            keep = 0;
        }
    }
    uint32_t cut_rel = keep > 0 ? s->oix.e[keep].rel_offset : 0;
    if ((r = offset_index_truncate(&s->oix, keep)))
        goto fail;
    size_t tkeep = s->tix.n;
    while (tkeep > 0 && (keep == 0 || s->tix.e[tkeep - 1].rel_offset >= cut_rel))
        tkeep--;
    if ((r = time_index_truncate(&s->tix, tkeep)))
        goto fail;
    for (size_t i = 0; i < tkeep; i++)
        if (s->tix.e[i].timestamp > s->max_timestamp)
            s->max_timestamp = s->tix.e[i].timestamp;
    s->bytes_since_index = INDEX_INTERVAL_BYTES; /* index the first scanned batch */
    if ((r = scan_and_recover(s, start, file_size, validate_from)))
        goto fail;
    if (s->size == 0) {
        s->base_pos = s->end_pos = hint;
        s->created_ms = clock_now_ms();
    } else if (s->tix.n > 0) {
        s->created_ms = s->tix.e[0].timestamp;
    }
    *out = s;
    return 0;
fail:
    segment_close(s);
    return r;
}

void segment_close(struct segment *s)
{
    if (!s)
        return;
    if (s->fd >= 0)
        close(s->fd);
    offset_index_close(&s->oix);
    time_index_close(&s->tix);
    free(s->dir);
    free(s);
}

int segment_unlink(struct segment *s)
{
    char path[4096];
    static const char *suffixes[] = {".log", ".index", ".timeindex"};
    int r = 0;
    for (size_t i = 0; i < 3; i++) {
        segment_path(path, sizeof(path), s->dir, s->base_offset, suffixes[i]);
        if (unlink(path) < 0 && errno != ENOENT)
            r = -errno;
    }
    return r;
}

int segment_delete(struct segment *s)
{
    int r = segment_unlink(s);
    segment_close(s);
    return r;
}

int segment_append(struct segment *s, const struct iovec *iov, int iovcnt,
                   const struct batch_header *h)
{
    size_t done = 0;
    struct iovec local[64];
    const struct iovec *v = iov;
    int n = iovcnt;

    while (done < h->length) {
        ssize_t w = pwritev(s->fd, v, n > 1024 ? 1024 : n, (off_t)(s->size + done));
        if (w < 0) {
            int e = errno;
            if (e == EINTR)
                continue;
            /* Leave no partial batch behind: the log ends where it ended. */
            if (ftruncate(s->fd, (off_t)s->size) < 0)
                logger_log(LOG_LEVEL_ERROR, "%s: cannot cut a failed append: %s", s->dir,
                           strerror(errno));
            return -e;
        }
        done += (size_t)w;
        if (done >= h->length)
            break;
        /* Short write: skip the iovecs already written. */
        size_t skip = (size_t)w;
        while (n > 0 && skip >= v->iov_len) {
            skip -= v->iov_len;
            v++;
            n--;
        }
        if (n == 0)
            break;
        int m = n < 64 ? n : 64;
        memcpy(local, v, (size_t)m * sizeof(*v));
        local[0].iov_base = (char *)local[0].iov_base + skip;
        local[0].iov_len -= skip;
        v = local;
        n = m;
    }
    int err = 0;
    uint64_t pos = s->size;
    note_index(s, h, pos, &err);
    note_batch(s, h, pos);
    return err;
}

int segment_read_header(struct segment *s, uint64_t file_pos, struct batch_header *h)
{
    uint8_t hb[BATCH_HEADER_SIZE];
    if (file_pos + BATCH_HEADER_SIZE > s->size)
        return -ENOENT;
    ssize_t r = pread(s->fd, hb, sizeof(hb), (off_t)file_pos);
    if (r != (ssize_t)sizeof(hb))
        return r < 0 ? -errno : -EIO;
    return batch_header_decode(hb, h) ? -EIO : 0;
}

enum scan_key { BY_POS, BY_OFFSET, BY_TIME };

/* Walks headers from file_pos until the batch matching key/value. */
static int scan_headers_from(struct segment *s, uint64_t file_pos, enum scan_key key,
                             uint64_t value, uint64_t *out_pos, struct batch_header *out)
{
    uint8_t buf[8192];
    uint64_t chunk_pos = 0, chunk_len = 0;
    while (file_pos < s->size) {
        struct batch_header h;
        if (file_pos < chunk_pos || file_pos + BATCH_HEADER_SIZE > chunk_pos + chunk_len) {
            size_t want = sizeof(buf);
            if (s->size - file_pos < want)
                want = (size_t)(s->size - file_pos);
            ssize_t r = pread(s->fd, buf, want, (off_t)file_pos);
            if (r < BATCH_HEADER_SIZE)
                return r < 0 ? -errno : -EIO;
            chunk_pos = file_pos;
            chunk_len = (uint64_t)r;
        }
        if (batch_header_decode(buf + (file_pos - chunk_pos), &h))
            return -EIO;
        int hit = 0;
        switch (key) {
        case BY_POS:
            hit = value < batch_end_pos(&h);
            break;
        case BY_OFFSET:
            hit = value < batch_next_offset(&h);
            break;
        case BY_TIME:
            hit = h.timestamp >= (int64_t)value;
            break;
        }
        if (hit) {
            *out_pos = file_pos;
            *out = h;
            return 0;
        }
        file_pos += h.length;
    }
    return -ENOENT;
}

/* Scans from an index entry's file_pos. An index that passes validation can
 * still point into the middle of a batch or past the target (a damaged but
 * ordered file): then the segment is scanned from its start, so a bad index
 * costs time, never a wrong or failed read. */
static int scan_headers(struct segment *s, uint64_t file_pos, enum scan_key key, uint64_t value,
                        uint64_t *out_pos, struct batch_header *out)
{
    int r = scan_headers_from(s, file_pos, key, value, out_pos, out);
    if (file_pos == 0 || (r != -EIO && !(r == 0 && *out_pos == file_pos)))
        return r;
    if (r == 0) {
        int before = 0;
        switch (key) {
        case BY_POS:
            before = value < out->base_pos;
            break;
        case BY_OFFSET:
            before = value < out->base_offset;
            break;
        case BY_TIME:
            before = 0; /* the time index only narrows where to start */
            break;
        }
        if (!before)
            return 0;
    }
    logger_log(LOG_LEVEL_WARN,
               "%s: index of segment %" PRIu64 " points at the wrong place; "
               "scanning the segment",
               s->dir, s->base_offset);
    return scan_headers_from(s, 0, key, value, out_pos, out);
}

int segment_find_pos(struct segment *s, uint64_t pos, uint64_t *file_pos, struct batch_header *h)
{
    ssize_t i = offset_index_find_pos(&s->oix, pos);
    /* Entries with equal stream_pos (empty values) may precede the match. */
    while (i > 0 && s->oix.e[i - 1].stream_pos == s->oix.e[i].stream_pos)
        i--;
    return scan_headers(s, i < 0 ? 0 : s->oix.e[i].file_pos, BY_POS, pos, file_pos, h);
}

int segment_find_offset(struct segment *s, uint64_t offset, uint64_t *file_pos,
                        struct batch_header *h)
{
    uint32_t rel = offset > s->base_offset ? (uint32_t)(offset - s->base_offset) : 0;
    ssize_t i = offset_index_find_offset(&s->oix, rel);
    return scan_headers(s, i < 0 ? 0 : s->oix.e[i].file_pos, BY_OFFSET, offset, file_pos, h);
}

int segment_find_time(struct segment *s, int64_t ts, uint64_t *file_pos, struct batch_header *h)
{
    ssize_t i = time_index_find(&s->tix, ts);
    uint64_t start = 0;
    if (i >= 0) {
        ssize_t j = offset_index_find_offset(&s->oix, s->tix.e[i].rel_offset);
        start = j < 0 ? 0 : s->oix.e[j].file_pos;
    }
    return scan_headers(s, start, BY_TIME, (uint64_t)ts, file_pos, h);
}

int segment_truncate(struct segment *s, uint64_t offset)
{
    uint64_t fp;
    struct batch_header h;
    if (offset >= s->next_offset)
        return 0;
    int r = segment_find_offset(s, offset, &fp, &h);
    if (r)
        return r;
    if (ftruncate(s->fd, (off_t)fp) < 0)
        return -errno;
    size_t n = s->oix.n;
    while (n > 0 && s->oix.e[n - 1].file_pos >= fp)
        n--;
    if ((r = offset_index_truncate(&s->oix, n)))
        return r;
    uint32_t rel = (uint32_t)(h.base_offset - s->base_offset);
    size_t t = s->tix.n;
    while (t > 0 && s->tix.e[t - 1].rel_offset >= rel)
        t--;
    if ((r = time_index_truncate(&s->tix, t)))
        return r;
    s->size = fp;
    s->next_offset = h.base_offset;
    s->end_pos = h.base_pos;
    s->bytes_since_index = n ? fp - s->oix.e[n - 1].file_pos : INDEX_INTERVAL_BYTES;
    return 0;
}

int segment_sync(struct segment *s)
{
    if (fdatasync(s->fd) < 0)
        return -errno;
    return 0;
}
