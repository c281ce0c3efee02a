/* segment.c - one .log file with its indexes (segment.h).
 *
 * Appends go to the end with one pwritev of the sealed batch; the indexes are
 * updated after the log write, so an index entry never points past the log.
 * The log is the truth and the indexes only narrow where a lookup starts: an
 * index entry that cannot be written (ENOSPC, EIO) is left out, in memory as
 * in the file (index.c writes before it adds), and the append succeeds. A
 * sparser index costs a longer scan; one that lost its first entry fails
 * validation at the next open and is rebuilt from the log there.
 *
 * Opening a segment is told by the partition which part of the .log was on
 * stable storage (struct segment_trust):
 *   - the unsynced part (from synced_to on) is verified batch by batch
 *     (checksum, and base offset / stream position follow on from the previous
 *     batch) and cut at the first that fails, with everything after it: only
 *     such a tail can be torn by a crash;
 *   - "follow on" for offsets: the first batch starts at the segment's base
 *     offset (its file name) and each next one where the last ended, unless
 *     compaction touched the partition (segment_trust.compacted: offsets may
 *     then jump, never go back). A header that breaks this is damage even
 *     when its checksum matches (a field rewritten with the checksum redone):
 *     its batch goes into a bad range, never believed;
 *   - the synced part is never cut. Its headers are walked from the last index
 *     entry that can be trusted (checksums wait), and must end where the
 *     partition says (recovery point, next segment: its base offset and the
 *     stream position it starts at). If they do not, the whole synced part
 *     is verified at once: each run of batches that fails becomes a bad
 *     range (file bytes, offsets, stream positions), the scan goes on at the
 *     next batch that verifies and follows on, and nothing is dropped.
 * Before any lookup serves a segment, segment_verify() has checked every
 * batch of it once since the open (lazily, under the partition lock): a bad
 * range is logged once and counted, and lookups of its offsets or positions
 * fail with EIO, as do lookups whose next record lies after it (a range that
 * claims no offsets holds the one it starts at: bad_range_end); only a lookup
 * past it may skip it. Bytes appended since the open were checked
 * when they were sealed. A segment rebuilt with damage at its start gets an
 * index entry at file position 0 for that bad range (the first entry is
 * always there); index entries that would break the index's order are left
 * out (a lookup scans further instead). */
#include "segment.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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

/* ---- open descriptors ----
 * The .log of every active segment is open while it is active. Closed
 * segments' .log descriptors live in one LRU across all partitions, at most
 * segment_fd_cap of them and never more than a quarter of the soft
 * RLIMIT_NOFILE (so the LRU leaves room for every other open, at any limit);
 * an open closed segment holds none until it is first read. A reader pins
 * the descriptor it uses (segment_fd),
 * and only unpinned ones are closed to make room. A descriptor whose file
 * holds bytes not known to be synced is fdatasync'd before it goes (an error
 * is kept and reported by the next segment_sync). Index files are read into
 * memory at open and only the active segment keeps them open (it appends).
 *
 * Retired files. A segment object reads its own bytes for its whole life,
 * even after retention removed its file or compaction put a cleaned copy in
 * its place: older layouts keep the object for file.delete.delay.ms, and an
 * evicted descriptor is reopened by name. So before its name is removed or
 * replaced, segment_retire() gives the file a private name,
 * <base>.log.<n>.deleted (n unique in the process; Kafka's .deleted files),
 * by rename (the name goes) or link (the caller replaces it); the object
 * opens that name from then on and unlinks it when it is closed for good. A
 * crash leaves such files behind: the partition's open removes them. When a
 * topic is deleted its directory moves and segment_set_dir() points the
 * objects there, under fd_lock, so no reopen ever finds another file under
 * an old name (a topic created again under it). */

size_t segment_fd_cap = SEGMENT_FD_CAP_DEFAULT;
static pthread_mutex_t fd_lock = PTHREAD_MUTEX_INITIALIZER;
static struct segment *lru_first, *lru_last; /* most recently used first */
static size_t lru_count;

static void lru_remove(struct segment *s)
{
    if (!s->in_lru)
        return;
    if (s->lru_prev)
        s->lru_prev->lru_next = s->lru_next;
    else
        lru_first = s->lru_next;
    if (s->lru_next)
        s->lru_next->lru_prev = s->lru_prev;
    else
        lru_last = s->lru_prev;
    s->lru_prev = s->lru_next = NULL;
    s->in_lru = 0;
    lru_count--;
}

static void lru_push(struct segment *s)
{
    s->lru_prev = NULL;
    s->lru_next = lru_first;
    if (lru_first)
        lru_first->lru_prev = s;
    lru_first = s;
    if (!lru_last)
        lru_last = s;
    s->in_lru = 1;
    lru_count++;
}

/* Closes the least recently used unpinned descriptor: 1 if one went. Caller
 * holds fd_lock. */
static int evict_one(void)
{
    for (struct segment *s = lru_last; s; s = s->lru_prev) {
        if (s->pins)
            continue;
        if (s->unsynced && fdatasync(s->fd) < 0 && !s->sync_err)
            s->sync_err = -errno;
        s->unsynced = 0;
        lru_remove(s);
        close(s->fd);
        s->fd = -1;
        return 1;
    }
    return 0;
}

/* The LRU's cap under the process's descriptor limit: a quarter of the soft
 * RLIMIT_NOFILE at most, so the LRU never takes the descriptors other opens
 * (directories, configs, other partitions' active segments) need. Read at
 * first use and again whenever an open runs out. Caller holds fd_lock. */
static size_t limit_cap;

static void read_limit(void)
{
    struct rlimit rl;
    limit_cap = SIZE_MAX;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        limit_cap = rl.rlim_cur / 4 > 4 ? (size_t)(rl.rlim_cur / 4) : 4;
}

/* Caller holds fd_lock. */
static void evict_over_cap(void)
{
    if (!limit_cap)
        read_limit();
    size_t cap = segment_fd_cap < limit_cap ? segment_fd_cap : limit_cap;
    while (lru_count > cap && evict_one())
        ;
}

/* open(2) that, when the process is out of descriptors, closes unpinned
 * segment descriptors and tries again. Caller holds fd_lock. */
static int open_locked(const char *path, int flags)
{
    for (;;) {
        int fd = open(path, flags | O_CLOEXEC, 0644);
        if (fd >= 0)
            return fd;
        int e = errno;
        if (e == EMFILE || e == ENFILE)
            read_limit(); /* the limit may have been lowered */
        if ((e != EMFILE && e != ENFILE) || !evict_one())
            return -e;
    }
}

int segment_open_fd(const char *path, int flags)
{
    pthread_mutex_lock(&fd_lock);
    int fd = open_locked(path, flags);
    pthread_mutex_unlock(&fd_lock);
    return fd;
}

size_t segment_fds_open(void)
{
    pthread_mutex_lock(&fd_lock);
    size_t n = lru_count;
    pthread_mutex_unlock(&fd_lock);
    return n;
}

static uint64_t retire_seq; /* under fd_lock */
int (*segment_retire_fault)(const char *log_path);

/* The name the segment's bytes are under: its .log, or its retired name.
 * Caller holds fd_lock (or owns the segment alone). */
static void log_path(const struct segment *s, char *buf, size_t cap)
{
    if (s->retired)
        snprintf(buf, cap, "%s/%020" PRIu64 ".log.%" PRIu64 ".deleted", s->dir, s->base_offset,
                 s->retired);
    else
        segment_path(buf, cap, s->dir, s->base_offset, ".log");
}

int segment_fd(struct segment *s)
{
    int r = 0;
    pthread_mutex_lock(&fd_lock);
    if (s->fd < 0 && s->gone) {
        r = -ENOENT;
    } else if (s->fd < 0) {
        char path[4200];
        log_path(s, path, sizeof(path));
        r = open_locked(path, O_RDWR);
        if (r >= 0) {
            s->fd = r;
            r = 0;
        }
    }
    if (!r) {
        s->pins++;
        if (!s->active) {
            lru_remove(s);
            lru_push(s);
            evict_over_cap();
        }
        r = s->fd;
    }
    pthread_mutex_unlock(&fd_lock);
    return r;
}

void segment_fd_put(struct segment *s)
{
    pthread_mutex_lock(&fd_lock);
    if (--s->pins == 0)
        evict_over_cap(); /* what pins held past the cap goes now */
    pthread_mutex_unlock(&fd_lock);
}

static int open_indexes(struct segment *s)
{
    char path[4096];
    segment_path(path, sizeof(path), s->dir, s->base_offset, ".index");
    int fd = segment_open_fd(path, O_RDWR | O_CREAT);
    if (fd < 0)
        return fd;
    s->oix.fd = fd;
    segment_path(path, sizeof(path), s->dir, s->base_offset, ".timeindex");
    if ((fd = segment_open_fd(path, O_RDWR | O_CREAT)) < 0)
        return fd;
    s->tix.fd = fd;
    return 0;
}

static void close_indexes(struct segment *s)
{
    if (s->oix.fd >= 0)
        close(s->oix.fd);
    if (s->tix.fd >= 0)
        close(s->tix.fd);
    s->oix.fd = s->tix.fd = -1;
}

int segment_set_active(struct segment *s, int active)
{
    if (active) {
        int fd = segment_fd(s);
        if (fd < 0)
            return fd;
        int r = open_indexes(s);
        pthread_mutex_lock(&fd_lock);
        s->pins--;
        if (!r) {
            s->active = 1;
            lru_remove(s);
        }
        pthread_mutex_unlock(&fd_lock);
        if (r)
            close_indexes(s);
        return r;
    }
    close_indexes(s);
    pthread_mutex_lock(&fd_lock);
    if (s->active && s->fd >= 0) {
        s->active = 0;
        s->unsynced = s->synced_size < s->size;
        lru_push(s);
        evict_over_cap();
    }
    s->active = 0;
    pthread_mutex_unlock(&fd_lock);
    return 0;
}

/* Appends an offset index entry if it keeps the index's invariants (index.h):
 * 1 if it went in, 0 if not (a lookup then scans a little further), or a
 * negative errno. */
static int index_add(struct segment *s, uint64_t offset, uint64_t file_pos, uint64_t stream_pos)
{
    const struct offset_index_entry *last = s->oix.n ? &s->oix.e[s->oix.n - 1] : NULL;
    if (offset < s->base_offset || offset - s->base_offset > UINT32_MAX || file_pos > UINT32_MAX ||
        (!last && file_pos != 0))
        return 0;
    struct offset_index_entry e = {
        .rel_offset = (uint32_t)(offset - s->base_offset),
        .file_pos = (uint32_t)file_pos,
        .stream_pos = stream_pos,
    };
    if (last && (e.rel_offset <= last->rel_offset || e.file_pos <= last->file_pos ||
                 e.stream_pos < last->stream_pos))
        return 0;
    int r = offset_index_append(&s->oix, &e);
    return r ? r : 1;
}

static void note_index(struct segment *s, const struct batch_header *h, uint64_t file_pos, int *err)
{
    if (s->oix.n == 0 || s->bytes_since_index >= INDEX_INTERVAL_BYTES) {
        int r = index_add(s, h->base_offset, file_pos, h->base_pos);
        if (r == 1) {
            struct time_index_entry t = {.timestamp = h->timestamp,
                                         .rel_offset = s->oix.e[s->oix.n - 1].rel_offset};
            r = time_index_append(&s->tix, &t);
        }
        if (r < 0 && err)
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
    if ((r = segment_open_fd(path, O_RDWR | (create ? O_CREAT | O_TRUNC : 0))) < 0)
        return r;
    s->fd = r;
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
        segment_delete(s); /* what it created goes: a failed roll leaves no file */
        return r;
    }
    s->active = 1;
    s->verified = 1;
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

/* A reader of a .log in chunks (whole batches when they are larger). */
struct chunk_reader {
    int fd;
    uint8_t *buf;
    size_t cap;
    uint64_t pos, len;
};

/* Points *out at [at, at+len) of the file, reading ahead; 1 if the file ends
 * before, or a negative errno. */
static int chunk_get(struct chunk_reader *cr, uint64_t at, uint64_t len, uint64_t file_size,
                     const uint8_t **out)
{
    if (at + len > file_size)
        return 1;
    if (at < cr->pos || at + len > cr->pos + cr->len) {
        uint64_t want = len > SCAN_CHUNK ? len : SCAN_CHUNK;
        if (want > file_size - at)
            want = file_size - at;
        ssize_t n = read_at(cr->fd, &cr->buf, &cr->cap, at, (size_t)want);
        if (n < 0)
            return (int)n;
        cr->pos = at;
        cr->len = (uint64_t)n;
        if ((uint64_t)n < len)
            return 1;
    }
    *out = cr->buf + (at - cr->pos);
    return 0;
}

/* What the batch at a file position must be to follow on from the last good
 * one: offsets are contiguous (offset_exact: the segment's first batch starts
 * at its base offset) or, where compaction may have left gaps or after
 * damage, only grow; they stay below max_offset; positions are contiguous
 * (pos_exact) or, after damage, only grow. */
struct batch_rule {
    uint64_t next_offset, end_pos, max_offset, limit;
    int offset_exact, pos_exact, verify;
};

/* 0 and *h if the batch at fp obeys the rule (and its checksum, with
 * verify), 1 if not, or a negative errno. */
static int check_batch(struct chunk_reader *cr, uint64_t fp, const struct batch_rule *rule,
                       struct batch_header *h)
{
    const uint8_t *p;
    int r = chunk_get(cr, fp, BATCH_HEADER_SIZE, rule->limit, &p);
    if (r)
        return r;
    if (batch_header_decode(p, h) || fp + h->length > rule->limit ||
        h->base_offset < rule->next_offset ||
        (rule->offset_exact && h->base_offset != rule->next_offset) ||
        batch_next_offset(h) < h->base_offset || batch_next_offset(h) > rule->max_offset ||
        batch_end_pos(h) < h->base_pos ||
        (rule->pos_exact ? h->base_pos != rule->end_pos : h->base_pos < rule->end_pos))
        return 1;
    if (!rule->verify)
        return 0;
    if ((r = chunk_get(cr, fp, h->length, rule->limit, &p)))
        return r;
    return batch_verify(p, h->length) ? 1 : 0;
}

/* The first position after fp (whose batch failed the rule) where a whole,
 * verified batch that follows on loosely (offsets and positions may jump: a
 * gap of lost records) from the rule starts; *y = rule->limit if none. The
 * batch at fp itself is not taken back: a header that failed (a forged field
 * with a checksum to match) is damage, not a gap. */
static int resync(struct chunk_reader *cr, uint64_t fp, const struct batch_rule *rule, uint64_t *y,
                  struct batch_header *h)
{
    struct batch_rule loose = *rule;
    loose.offset_exact = 0;
    loose.pos_exact = 0;
    loose.verify = 1;
    static const uint8_t magic[4] = {BATCH_MAGIC & 0xff, (BATCH_MAGIC >> 8) & 0xff,
                                     (BATCH_MAGIC >> 16) & 0xff, BATCH_MAGIC >> 24};
    for (uint64_t at = fp + 1; at + BATCH_HEADER_SIZE <= rule->limit;) {
        const uint8_t *p;
        uint64_t n = rule->limit - at < SCAN_CHUNK ? rule->limit - at : SCAN_CHUNK;
        int r = chunk_get(cr, at, n, rule->limit, &p);
        if (r < 0)
            return r;
        if (r)
            break;
        const uint8_t *m = memmem(p, (size_t)n, magic, sizeof(magic));
        if (!m) {
            at += n > 3 ? n - 3 : 1;
            continue;
        }
        uint64_t cand = at + (uint64_t)(m - p);
        r = check_batch(cr, cand, &loose, h);
        if (r < 0)
            return r;
        if (r == 0) {
            *y = cand;
            return 0;
        }
        at = cand + 1;
    }
    *y = rule->limit;
    return 0;
}

static int add_bad(struct segment *s, const struct bad_range *b)
{
    struct bad_range *n = realloc(s->bad, (s->nbad + 1) * sizeof(*n));
    if (!n)
        return -ENOMEM;
    s->bad = n;
    s->bad[s->nbad++] = *b;
    return 0;
}

static void log_bad(const struct segment *s, const struct bad_range *b)
{
    logger_log(LOG_LEVEL_ERROR,
               "%s: segment %" PRIu64 ": damaged batches at file positions %" PRIu64 "..%" PRIu64
               ", offsets %" PRIu64 "..%" PRIu64 ", stream positions %" PRIu64 "..%" PRIu64
               ": reads of them fail with EIO",
               s->dir, s->base_offset, b->file_pos, b->file_end, b->offset, b->offset_end, b->pos,
               b->pos_end);
}

/* Verifies every batch of [0, limit): checksums and header fields. A run of
 * batches that fails is recorded as a bad range and skipped to the next
 * batch that verifies and follows on. With `rebuild`, the segment's fields
 * and indexes are made from the good batches (open of a damaged segment);
 * else they stand and bound what the batches may hold. */
static int verify_scan(struct segment *s, uint64_t limit, int rebuild, uint64_t max_offset)
{
    struct chunk_reader cr = {.fd = s->fd};
    struct batch_rule rule = {
        .next_offset = s->base_offset,
        .end_pos = s->base_pos,
        .max_offset = rebuild ? max_offset : s->next_offset,
        .limit = limit,
        .offset_exact = !s->compacted,
        .pos_exact = !rebuild,
        .verify = 1,
    };
    int err = 0;
    uint64_t fp = 0;
    while (fp < limit && !err) {
        struct batch_header h;
        int r = check_batch(&cr, fp, &rule, &h);
        if (r < 0) {
            err = r;
            break;
        }
        if (r == 0) {
            if (rebuild) {
                if (fp == 0)
                    s->base_pos = s->end_pos = h.base_pos;
                note_index(s, &h, fp, &err);
                note_batch(s, &h, fp);
            }
            rule.next_offset = batch_next_offset(&h);
            rule.end_pos = batch_end_pos(&h);
            rule.pos_exact = 1;
            fp += h.length;
            continue;
        }
        uint64_t y;
        if ((err = resync(&cr, fp, &rule, &y, &h)))
            break;
        struct bad_range b = {
            .file_pos = fp,
            .file_end = y,
            .offset = rule.next_offset,
            .offset_end = y < limit ? h.base_offset : BAD_OPEN,
            .pos = rule.end_pos,
            .pos_end = y < limit ? h.base_pos : BAD_OPEN,
        };
        if (!rebuild && y == limit) {
            b.offset_end = s->next_offset;
            b.pos_end = s->end_pos;
        }
        if ((err = add_bad(s, &b)))
            break;
        /* The index's first entry is at file position 0 even when the
         * segment starts damaged: there, lookups skip the bad range. */
        if (rebuild && fp == 0) {
            int ir = index_add(s, b.offset, 0, b.pos);
            if (ir < 0) {
                err = ir;
                break;
            }
            s->bytes_since_index = y;
        }
        if (y < limit) {
            rule.next_offset = h.base_offset;
            rule.end_pos = h.base_pos;
        } else if (rebuild) {
            s->size = limit;
        }
        fp = y;
    }
    free(cr.buf);
    return err;
}

/* Walks the headers from file_pos to `limit` (no checksums below
 * verify_from), indexing them. Returns 0 when the walk reached limit, 1 when
 * a batch failed (*at = where), or a negative errno. */
static int walk(struct segment *s, uint64_t file_pos, uint64_t limit, uint64_t verify_from,
                uint64_t max_offset, uint64_t *at)
{
    struct chunk_reader cr = {.fd = s->fd};
    int err = 0, r = 0;
    while (file_pos < limit && !err) {
        struct batch_header h;
        struct batch_rule rule = {
            .next_offset = s->next_offset,
            .end_pos = s->end_pos,
            .max_offset = max_offset,
            .limit = limit,
            .offset_exact = !s->compacted,
            .pos_exact = 1,
            .verify = file_pos >= verify_from,
        };
        r = check_batch(&cr, file_pos, &rule, &h);
        if (r)
            break;
        note_index(s, &h, file_pos, &err);
        note_batch(s, &h, file_pos);
        file_pos += h.length;
    }
    free(cr.buf);
    *at = file_pos;
    return err ? err : r;
}

/* Cuts the unsynced tail from file_pos on (it failed validation). */
static int cut_tail(struct segment *s, uint64_t file_pos, uint64_t file_size)
{
    s->was_cut = 1;
    logger_log(LOG_LEVEL_WARN,
               "%s: segment %" PRIu64 ": cutting %" PRIu64
               " unsynced bytes at file position %" PRIu64 " (first batch that failed validation)",
               s->dir, s->base_offset, file_size - file_pos, file_pos);
    if (ftruncate(s->fd, (off_t)file_pos) < 0)
        return -errno;
    s->size = file_pos;
    return 0;
}

/* Starts the segment's fields and indexes over, for a scan from 0. */
static int reset_scan(struct segment *s, uint64_t hint)
{
    int r = 0;
    offset_index_rewind(&s->oix, 0);
    time_index_rewind(&s->tix, 0);
    s->next_offset = s->base_offset;
    s->base_pos = s->end_pos = hint;
    s->size = 0;
    s->max_timestamp = 0;
    s->bytes_since_index = INDEX_INTERVAL_BYTES;
    return r;
}

/* The synced part of a segment did not walk cleanly: verifies all of it,
 * recording bad ranges (never cutting), and makes it end where the trust
 * says the synced log ended. */
static int open_damaged(struct segment *s, const struct segment_trust *t, uint64_t hint,
                        uint64_t synced_limit)
{
    int r = reset_scan(s, hint);
    if (r)
        return r;
    if ((r = verify_scan(s, synced_limit, 1, t->max_offset)))
        return r;
    if (s->size < synced_limit)
        s->size = synced_limit;
    /* Records the trust says were synced but the file no longer has. */
    int open_end = s->nbad && s->bad[s->nbad - 1].offset_end == BAD_OPEN;
    if (!open_end && t->synced_next_offset != UINT64_MAX &&
        s->next_offset < t->synced_next_offset) {
        struct bad_range b = {s->size, s->size, s->next_offset, BAD_OPEN, s->end_pos, BAD_OPEN};
        if ((r = add_bad(s, &b)))
            return r;
    }
    /* What ends open reaches the synced end, when known. */
    for (size_t i = 0; i < s->nbad; i++) {
        struct bad_range *b = &s->bad[i];
        if (b->offset_end == BAD_OPEN && t->synced_next_offset != UINT64_MAX) {
            b->offset_end = t->synced_next_offset;
            b->pos_end = t->synced_end_pos > b->pos ? t->synced_end_pos : b->pos;
        }
        if (b->offset_end != BAD_OPEN && b->offset_end > s->next_offset) {
            s->next_offset = b->offset_end;
            s->end_pos = b->pos_end;
        }
    }
    s->verified = 1;
    return 0;
}

/* Where the stream goes on at a segment whose first header is h. */
static uint64_t first_pos_of(const struct batch_header *h, uint64_t base_offset)
{
    return h->base_offset >= base_offset ? h->base_pos : UINT64_MAX;
}

uint64_t segment_first_pos(const char *dir, uint64_t base_offset)
{
    char path[4096];
    uint8_t hb[BATCH_HEADER_SIZE];
    struct batch_header h;
    uint64_t pos = UINT64_MAX;
    segment_path(path, sizeof(path), dir, base_offset, ".log");
    int fd = segment_open_fd(path, O_RDONLY);
    if (fd < 0)
        return pos;
    if (pread(fd, hb, sizeof(hb), 0) == (ssize_t)sizeof(hb) && !batch_header_decode(hb, &h))
        pos = first_pos_of(&h, base_offset);
    close(fd);
    return pos;
}

int segment_open(const char *dir, uint64_t base_offset, uint64_t expect_base_pos,
                 const struct segment_trust *trust, struct segment **out)
{
    static const struct segment_trust all_synced = {UINT64_MAX, UINT64_MAX, UINT64_MAX,
                                                    UINT64_MAX, UINT64_MAX, 1};
    const struct segment_trust *t = trust ? trust : &all_synced;
    struct segment *s = segment_alloc(dir, base_offset, expect_base_pos);
    struct stat st;
    int r;
    if (!s)
        return -ENOMEM;
    s->compacted = t->compacted;
    if ((r = open_files(s, 0)))
        goto fail;
    if (fstat(s->fd, &st) < 0) {
        r = -errno;
        goto fail;
    }
    uint64_t file_size = (uint64_t)st.st_size;
    uint64_t synced_limit = t->synced_to < file_size ? t->synced_to : file_size;
    /* Synced bytes the file lost: index entries point past its end. */
    int damaged = t->synced_to > file_size && t->synced_to != UINT64_MAX;
    for (size_t i = 0; i < s->oix.n && !damaged; i++)
        damaged = s->oix.e[i].file_pos >= file_size && s->oix.e[i].file_pos < t->synced_to;

    /* Index entries are only trusted inside the synced prefix. */
    size_t keep = s->oix.n;
    while (keep > 0 && s->oix.e[keep - 1].file_pos >= synced_limit)
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
        int have = file_size >= BATCH_HEADER_SIZE &&
                   pread(s->fd, hb, sizeof(hb), 0) == BATCH_HEADER_SIZE &&
                   !batch_header_decode(hb, &h);
        s->first_pos = have ? first_pos_of(&h, base_offset) : UINT64_MAX;
        /* ...never before the previous segment's end: then the scan cuts it. */
        if (have && (expect_base_pos == UINT64_MAX || h.base_pos >= expect_base_pos))
            s->base_pos = h.base_pos;
        s->end_pos = s->base_pos;
    }
    if (keep > 0 && s->oix.e[0].stream_pos != s->base_pos) {
        /* The index and the first header disagree on where the segment
         * starts: in the synced part, trust neither before verifying. */
        damaged |= synced_limit > 0;
        keep = 0;
    }
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
    offset_index_rewind(&s->oix, keep);
    size_t tkeep = s->tix.n;
    while (tkeep > 0 && (keep == 0 || s->tix.e[tkeep - 1].rel_offset >= cut_rel))
        tkeep--;
    time_index_rewind(&s->tix, tkeep);
    for (size_t i = 0; i < tkeep; i++)
        if (s->tix.e[i].timestamp > s->max_timestamp)
            s->max_timestamp = s->tix.e[i].timestamp;
    s->bytes_since_index = INDEX_INTERVAL_BYTES; /* index the first scanned batch */

    /* The synced part: headers walked (checksums are verified lazily, by
     * segment_verify), never cut. It must end where the trust says. */
    uint64_t at = start;
    uint64_t max_offset =
        t->synced_next_offset < t->max_offset ? t->synced_next_offset : t->max_offset;
    if (!damaged && start < synced_limit) {
        r = walk(s, start, synced_limit, UINT64_MAX, max_offset, &at);
        if (r < 0)
            goto fail;
        damaged = r == 1;
    }
    if (!damaged && t->synced_to != UINT64_MAX && t->synced_next_offset != UINT64_MAX &&
        (s->next_offset != t->synced_next_offset || s->end_pos != t->synced_end_pos))
        damaged = 1;
    if (!damaged && synced_limit > 0 && s->end_pos > t->max_end_pos)
        damaged = 1;
    if (damaged && (r = open_damaged(s, t, hint, synced_limit)))
        goto fail;
    if (synced_limit == 0 && t->synced_to == 0)
        s->verified = 1; /* all of it is checked below */
    /* The unsynced tail: every batch verified, cut at the first that fails. */
    if (t->synced_to < file_size) {
        r = walk(s, s->size, file_size, 0, t->max_offset, &at);
        if (r < 0)
            goto fail;
        if (at < file_size && (r = cut_tail(s, at, file_size)))
            goto fail;
    }
    s->synced_size = 0;
    if (s->size == 0 && s->nbad == 0) {
        s->base_pos = s->end_pos = hint;
        s->created_ms = clock_now_ms();
    } else if (s->tix.n > 0) {
        s->created_ms = s->tix.e[0].timestamp;
    }
    for (size_t i = 0; i < s->nbad; i++)
        if (s->bad[i].offset_end != BAD_OPEN)
            log_bad(s, &s->bad[i]);
    /* The index files end where the rescan ended them. */
    if ((r = offset_index_settle(&s->oix)) || (r = time_index_settle(&s->tix)))
        goto fail;
    /* Closed until the partition makes it active: indexes in memory only,
     * the .log closed (the first read opens it into the LRU). A mount of
     * many segments so holds no descriptor per segment, whatever the limit. */
    close_indexes(s);
    close(s->fd);
    s->fd = -1;
    *out = s;
    return 0;
fail:
    segment_close(s);
    return r;
}

int segment_close_bad_range(struct segment *s, uint64_t next_base_offset, uint64_t next_base_pos)
{
    int changed = 0;
    for (size_t i = 0; i < s->nbad; i++) {
        struct bad_range *b = &s->bad[i];
        if (b->offset_end != BAD_OPEN)
            continue;
        b->offset_end = next_base_offset;
        b->pos_end = next_base_pos > b->pos ? next_base_pos : b->pos;
        s->next_offset = b->offset_end;
        s->end_pos = b->pos_end;
        log_bad(s, b);
        changed = 1;
    }
    return changed;
}

int segment_mark_lost(struct segment *s, uint64_t next_base_offset, uint64_t next_base_pos)
{
    struct bad_range b = {s->size,        s->size,
                          s->next_offset, next_base_offset,
                          s->end_pos,     next_base_pos > s->end_pos ? next_base_pos : s->end_pos};
    int r = add_bad(s, &b);
    if (r)
        return r;
    s->next_offset = b.offset_end;
    s->end_pos = b.pos_end;
    log_bad(s, &b); /* the batches before it are verified as any others */
    return 0;
}

int segment_verify(struct segment *s)
{
    if (s->verified)
        return 0;
    size_t before = s->nbad;
    int fd = segment_fd(s);
    if (fd < 0)
        return fd;
    int r = verify_scan(s, s->size, 0, s->next_offset);
    segment_fd_put(s);
    if (r) {
        s->nbad = before;
        return r;
    }
    for (size_t i = before; i < s->nbad; i++)
        log_bad(s, &s->bad[i]);
    s->verified = 1;
    return 0;
}

uint64_t bad_range_end(uint64_t start, uint64_t end)
{
    return end > start ? end : start + 1;
}

const struct bad_range *segment_bad_at(const struct segment *s, enum segment_key key,
                                       uint64_t value)
{
    for (size_t i = 0; i < s->nbad; i++) {
        const struct bad_range *b = &s->bad[i];
        int in = 0;
        switch (key) {
        case SEG_BY_FILE:
            in = value >= b->file_pos && value < b->file_end;
            break;
        case SEG_BY_OFFSET:
            in = value >= b->offset && value < bad_range_end(b->offset, b->offset_end);
            break;
        case SEG_BY_POS:
            in = value >= b->pos && value < bad_range_end(b->pos, b->pos_end);
            break;
        }
        if (in)
            return b;
    }
    return NULL;
}

void segment_close(struct segment *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&fd_lock);
    lru_remove(s);
    pthread_mutex_unlock(&fd_lock);
    if (s->fd >= 0)
        close(s->fd);
    offset_index_close(&s->oix);
    time_index_close(&s->tix);
    if (s->retired) {
        char path[4200];
        log_path(s, path, sizeof(path));
        if (unlink(path) < 0 && errno != ENOENT)
            logger_log(LOG_LEVEL_WARN, "cannot remove %s (removed at the next mount): %s", path,
                       strerror(errno));
    }
    free(s->bad);
    free(s->dir);
    free(s->old_dir);
    free(s);
}

/* A second name for `from`: 0, a negative errno, or 1 where the filesystem
 * has no hard links (the caller renames instead: compaction's manifest puts
 * the new file in place again after a crash). */
static int link_aside(const char *from, const char *to)
{
    if (link(from, to) == 0)
        return 0;
    if (errno == EEXIST && unlink(to) == 0 && link(from, to) == 0)
        return 0; /* a leftover of an earlier process had the name */
    if (errno == EPERM || errno == EOPNOTSUPP || errno == EMLINK)
        return 1;
    return -errno;
}

int segment_retire(struct segment *s, int keep_name)
{
    char from[4096], to[4200];
    int r = 0;
    pthread_mutex_lock(&fd_lock);
    if (!s->retired) {
        struct segment named = *s;
        named.retired = ++retire_seq;
        segment_path(from, sizeof(from), s->dir, s->base_offset, ".log");
        log_path(&named, to, sizeof(to));
        if (!segment_retire_fault || !(r = segment_retire_fault(from))) {
            r = keep_name ? link_aside(from, to) : 1;
            if (r == 1)
                r = rename(from, to) < 0 ? -errno : 0;
        }
        if (!r)
            s->retired = named.retired;
    }
    pthread_mutex_unlock(&fd_lock);
    return r;
}

int segment_unlink(struct segment *s)
{
    char path[4096];
    static const char *suffixes[] = {".index", ".timeindex"};
    int r = segment_retire(s, 0);
    if (r && r != -ENOENT)
        return r;
    for (size_t i = 0; i < 2; i++) {
        segment_path(path, sizeof(path), s->dir, s->base_offset, suffixes[i]);
        if (unlink(path) < 0 && errno != ENOENT)
            logger_log(LOG_LEVEL_WARN, "%s: cannot remove %s of a removed segment: %s", s->dir,
                       path, strerror(errno));
    }
    return 0;
}

int segment_set_dir(struct segment *s, const char *dir)
{
    char *d = strdup(dir);
    pthread_mutex_lock(&fd_lock);
    if (d) {
        /* Kept until the close: a caller without fd_lock may still read it. */
        free(s->old_dir);
        s->old_dir = s->dir;
        s->dir = d;
    } else {
        s->gone = 1;
    }
    pthread_mutex_unlock(&fd_lock);
    return d ? 0 : -ENOMEM;
}

int segment_remove_files(const char *dir, uint64_t base)
{
    char path[4200];
    static const char *suffixes[] = {".log", ".index", ".timeindex"};
    int r = 0;
    for (size_t i = 0; i < 3; i++) {
        segment_path(path, sizeof(path), dir, base, suffixes[i]);
        if (unlink(path) < 0 && errno != ENOENT && !r)
            r = -errno;
    }
    return r;
}

int segment_delete(struct segment *s)
{
    /* Nothing else reads it: its names go, no retired copy is needed. */
    int r = segment_remove_files(s->dir, s->base_offset);
    segment_close(s);
    return r;
}

/* Iovecs per pwritev (IOV_MAX on Linux). */
#define APPEND_IOV_CHUNK 1024

/* Cuts a failed append off: the log ends where it ended. */
static int append_failed(struct segment *s, int e)
{
    if (ftruncate(s->fd, (off_t)s->size) < 0)
        logger_log(LOG_LEVEL_ERROR, "%s: cannot cut a failed append: %s", s->dir, strerror(errno));
    return -e;
}

int segment_append(struct segment *s, const struct iovec *iov, int iovcnt,
                   const struct batch_header *h)
{
    /* Written in chunks of at most APPEND_IOV_CHUNK iovecs, resumed after a
     * short write: iov[i] from byte skip on is the next to go. */
    static __thread struct iovec chunk[APPEND_IOV_CHUNK];
    size_t done = 0, skip = 0;
    int i = 0;
    while (done < h->length) {
        if (i >= iovcnt)
            return append_failed(s, EIO); /* the iovecs hold less than the header says */
        int m = iovcnt - i < APPEND_IOV_CHUNK ? iovcnt - i : APPEND_IOV_CHUNK;
        memcpy(chunk, iov + i, (size_t)m * sizeof(*chunk));
        chunk[0].iov_base = (char *)chunk[0].iov_base + skip;
        chunk[0].iov_len -= skip;
        ssize_t w = pwritev(s->fd, chunk, m, (off_t)(s->size + done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return append_failed(s, w < 0 ? errno : EIO);
        done += (size_t)w;
        for (size_t adv = (size_t)w; adv && i < iovcnt;) {
            size_t left = iov[i].iov_len - skip;
            if (adv < left) {
                skip += adv;
                break;
            }
            adv -= left;
            skip = 0;
            i++;
        }
    }
    int err = 0;
    uint64_t pos = s->size;
    note_index(s, h, pos, &err);
    note_batch(s, h, pos);
    if (err)
        logger_log(LOG_LEVEL_WARN,
                   "%s: segment %" PRIu64 ": index entry for offset %" PRIu64
                   " not written (%s); lookups scan further, the next open rebuilds it",
                   s->dir, s->base_offset, h->base_offset, strerror(-err));
    return 0;
}

int segment_read_header(struct segment *s, uint64_t file_pos, struct batch_header *h)
{
    uint8_t hb[BATCH_HEADER_SIZE];
    if (file_pos + BATCH_HEADER_SIZE > s->size)
        return -ENOENT;
    int fd = segment_fd(s);
    if (fd < 0)
        return fd;
    ssize_t r = pread(fd, hb, sizeof(hb), (off_t)file_pos);
    int e = errno;
    segment_fd_put(s);
    if (r != (ssize_t)sizeof(hb))
        return r < 0 ? -e : -EIO;
    return batch_header_decode(hb, h) ? -EIO : 0;
}

enum scan_key { BY_POS, BY_OFFSET, BY_TIME };

/* scan_headers_from's answer when the batch wanted lies in a bad range. */
#define SCAN_DAMAGED 1

/* Walks headers from file_pos until the batch matching key/value. A bad
 * range on the way that holds the offset or position wanted, or the first
 * one after it (the value lies in a gap before it), answers SCAN_DAMAGED:
 * damaged records are refused, never skipped. */
static int scan_headers_from(struct segment *s, uint64_t file_pos, enum scan_key key,
                             uint64_t value, uint64_t *out_pos, struct batch_header *out)
{
    uint8_t buf[8192];
    uint64_t chunk_pos = 0, chunk_len = 0;
    while (file_pos < s->size) {
        struct batch_header h;
        const struct bad_range *b = segment_bad_at(s, SEG_BY_FILE, file_pos);
        if (b) {
            if ((key == BY_OFFSET && value < bad_range_end(b->offset, b->offset_end)) ||
                (key == BY_POS && value < bad_range_end(b->pos, b->pos_end)))
                return SCAN_DAMAGED;
            file_pos = b->file_end;
            continue;
        }
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

static int scan_headers_pinned(struct segment *s, uint64_t file_pos, enum scan_key key,
                               uint64_t value, uint64_t *out_pos, struct batch_header *out);

/* Scans from an index entry's file_pos. An index that passes validation can
 * still point into the middle of a batch or past the target (a damaged but
 * ordered file): then the segment is scanned from its start, so a bad index
 * costs time, never a wrong or failed read. */
static int scan_headers(struct segment *s, uint64_t file_pos, enum scan_key key, uint64_t value,
                        uint64_t *out_pos, struct batch_header *out)
{
    int r = segment_verify(s);
    if (r)
        return r;
    /* Damaged offsets and positions are refused, never looked for. */
    if ((key == BY_POS && segment_bad_at(s, SEG_BY_POS, value)) ||
        (key == BY_OFFSET && segment_bad_at(s, SEG_BY_OFFSET, value)))
        return -EIO;
    int fd = segment_fd(s);
    if (fd < 0)
        return fd;
    r = scan_headers_pinned(s, file_pos, key, value, out_pos, out);
    segment_fd_put(s);
    return r;
}

static int scan_headers_pinned(struct segment *s, uint64_t file_pos, enum scan_key key,
                               uint64_t value, uint64_t *out_pos, struct batch_header *out)
{
    int r = scan_headers_from(s, file_pos, key, value, out_pos, out);
    if (r == SCAN_DAMAGED)
        return -EIO;
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
    r = scan_headers_from(s, 0, key, value, out_pos, out);
    return r == SCAN_DAMAGED ? -EIO : r;
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

int segment_find_cut(struct segment *s, uint64_t offset, uint64_t *file_pos, struct batch_header *h)
{
    int r = segment_find_offset(s, offset, file_pos, h);
    for (size_t i = 0; r == -EIO && i < s->nbad; i++)
        if (s->bad[i].offset == offset && s->bad[i].file_end > s->bad[i].file_pos) {
            memset(h, 0, sizeof(*h));
            h->base_offset = offset;
            h->base_pos = s->bad[i].pos;
            *file_pos = s->bad[i].file_pos;
            r = 0;
        }
    return r;
}

int segment_first_bad(const struct segment *s, uint64_t *offset)
{
    /* Only damaged bytes a cut can remove: not records missing past the
     * file's end (an empty range there). */
    for (size_t i = 0; i < s->nbad; i++)
        if (s->bad[i].file_end > s->bad[i].file_pos && s->bad[i].offset < s->next_offset) {
            *offset = s->bad[i].offset;
            return 0;
        }
    return -ENOENT;
}

int segment_truncate(struct segment *s, uint64_t offset)
{
    uint64_t fp;
    struct batch_header h;
    if (offset >= s->next_offset)
        return 0;
    int r = segment_find_cut(s, offset, &fp, &h);
    if (r)
        return r;
    if (ftruncate(s->fd, (off_t)fp) < 0)
        return -errno;
    size_t kept = 0; /* the bad ranges whose bytes the cut removed go */
    for (size_t i = 0; i < s->nbad; i++)
        if (s->bad[i].file_pos < fp || (s->bad[i].file_pos == fp && s->bad[i].file_end == fp))
            s->bad[kept++] = s->bad[i];
    s->nbad = kept;
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
    if (s->synced_size > fp)
        s->synced_size = fp;
    s->next_offset = h.base_offset;
    s->end_pos = h.base_pos;
    s->bytes_since_index = n ? fp - s->oix.e[n - 1].file_pos : INDEX_INTERVAL_BYTES;
    return 0;
}

int segment_sync(struct segment *s)
{
    int fd = segment_fd(s);
    if (fd < 0)
        return fd;
    int r = fdatasync(fd) < 0 ? -errno : 0;
    pthread_mutex_lock(&fd_lock);
    if (!r && s->sync_err)
        r = s->sync_err; /* an evicted descriptor's sync failed: never forgotten */
    if (!r)
        s->unsynced = 0;
    if (--s->pins == 0)
        evict_over_cap();
    pthread_mutex_unlock(&fd_lock);
    return r;
}
