/* partition.c - the partition log: segments in offset order (partition.h).
 *
 * Invariants, all re-established by partition_open():
 *   - segs[i+1]->base_offset >= segs[i]->next_offset and
 *     segs[i+1]->base_pos >= segs[i]->end_pos (no overlap; compaction leaves
 *     gaps);
 *   - only segs[nsegs-1] (the active segment) is written to;
 *   - the recovery point names a segment and a file position below which the
 *     log is on stable storage: partition_sync() moves it only after every
 *     segment with unsynced bytes was fdatasync'd and the directory entries
 *     of the segments created since the last sync were fsync'd (each segment
 *     knows its synced_size).
 *
 * Open: the log from the recovery point on (never synced) is verified batch
 * by batch and cut at the first bad one, and the segments after a cut go.
 * Below it nothing is ever cut or dropped: damage there (bad checksums, header
 * fields that do not follow on, a segment truncated, zeroed, emptied or
 * missing where no compaction ran) becomes bad ranges of the segments, logged
 * and counted (partition_info's bad_batches); every read path (reads, views,
 * fetch, offset and time lookups, so group members, hidden names and the
 * compaction input too) fails with EIO on them and serves everything else;
 * one whose next record lies after a bad range fails too, whatever offsets
 * the range claims, until it is asked for a record past it (never skipped
 * silently). A segment's first batch starts at its base offset unless the
 * partition is compacted (segment_trust.compacted).
 * Every other batch is verified before it is first served (segment_verify).
 * A synced segment ends at or before the stream position where the next one
 * starts (and the recovery point's end): headers that claim more make the
 * open verify it whole, so that every open lays it out the same (one that
 * verified a damaged tail ended its bad range there, and appends followed).
 *
 * Removal (retention from the head, truncation from the tail) goes segment
 * by segment and stops at the first whose .log cannot be unlinked: that one
 * stays in the list, so memory and disk always hold the same whole log and
 * no open finds a segment the list had dropped. Index files without their
 * .log (a removal that failed or crashed between the files) go at open.
 *
 * The recovery point lives in "recovery-point": five little-endian u64
 * (segment base, file position, next offset, end position, XXH3 of the
 * first four), rewritten in place and fdatasync'd. A torn or missing file
 * means: every closed segment counts as synced, the active one is verified
 * whole and cut at its first bad batch. */
#include "partition.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "clock.h"
#include "compaction.h"
#include "fsutil.h"
#include "logger.h"
#include "satmath.h"

#define READ_AHEAD (256u << 10)
#define DIRECT_COPY_MIN (64u << 10)
/* Finding the next batch reads this much: enough for many small batches,
 * little of a big one's values, which a large read takes from the file. */
#define HEADER_READ_AHEAD (8u << 10)

struct recovery_point {
    uint64_t seg_base, file_pos, next_offset, end_pos;
};

static struct segment *active(struct partition *p)
{
    return p->segs[p->nsegs - 1];
}

static uint64_t live_bytes(const struct segment *s)
{
    return s->end_pos - s->base_pos;
}

/* Recomputes every segment's position in the current view. */
static void relayout(struct partition *p)
{
    uint64_t at = 0;
    for (size_t i = 0; i < p->nsegs; i++) {
        p->segs[i]->view_start = at;
        at += live_bytes(p->segs[i]);
    }
}

static uint64_t view_end(struct partition *p)
{
    struct segment *a = active(p);
    return a->view_start + live_bytes(a);
}

static ssize_t segment_for_offset(struct partition *p, uint64_t offset)
{
    ssize_t lo = 0, hi = (ssize_t)p->nsegs - 1, best = -1;
    while (lo <= hi) {
        ssize_t mid = lo + (hi - lo) / 2;
        if (p->segs[mid]->base_offset <= offset) {
            best = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return best;
}

/* Index of the first segment with a record at or after `offset` (offsets
 * that compaction removed from a segment's end lead to the next one), or -1. */
static ssize_t segment_from_offset(struct partition *p, uint64_t offset)
{
    ssize_t i = segment_for_offset(p, offset);
    if (i < 0)
        i = 0;
    while ((size_t)i < p->nsegs &&
           (p->segs[i]->next_offset <= offset || (p->segs[i]->size == 0 && !p->segs[i]->nbad)))
        i++;
    return (size_t)i < p->nsegs ? i : -1;
}

/* A segment is owned by the partition's list and by every kept layout that
 * names it (refs counts the latter); the last owner closes it. */
static void segment_release(struct segment *s)
{
    if (s->refs-- == 0)
        segment_close(s);
}

/* The old layout of segs[0 .. n-1], to keep for older views. */
struct old_layout {
    struct segment **segs;
    uint64_t *start;
    size_t n;
};

static void old_layout_take(struct partition *p, size_t n, struct old_layout *o)
{
    o->n = 0;
    o->segs = n ? malloc(n * sizeof(*o->segs)) : NULL;
    o->start = n ? malloc(n * sizeof(*o->start)) : NULL;
    if (!o->segs || !o->start) {
        free(o->segs);
        free(o->start);
        o->segs = NULL;
        o->start = NULL;
        return; /* not kept: older views get -ENODATA there */
    }
    for (size_t i = 0; i < n; i++) {
        o->segs[i] = p->segs[i];
        o->start[i] = p->segs[i]->view_start;
        p->segs[i]->refs++;
    }
    o->n = n;
}

static void kept_release(struct layout_epoch *le)
{
    for (size_t i = 0; i < le->nbefore; i++)
        segment_release(le->before[i]);
    free(le->before);
    free(le->before_start);
    le->before = NULL;
    le->before_start = NULL;
    le->nbefore = 0;
}

/* Lets go of the old layouts kept longer than file.delete.delay.ms or that
 * no open view is old enough to read (all of them, with force). */
static void kept_expire(struct partition *p, int force)
{
    int64_t now = force ? INT64_MAX : clock_now_ms();
    uint64_t newer = 0; /* open views of epochs >= j */
    for (uint32_t j = p->epoch + 1; j-- > p->kept_from;) {
        struct layout_epoch *le = &p->epochs[j];
        newer += le->views;
        if (le->nbefore && (force || le->keep_until_ms <= now || p->views == newer))
            kept_release(le);
    }
    while (p->kept_from < p->epoch && !p->epochs[p->kept_from].nbefore)
        p->kept_from++;
}

void partition_view_hold(struct partition *p, const struct partition_view *v)
{
    pthread_mutex_lock(&p->lock);
    if (v->epoch <= p->epoch) {
        p->epochs[v->epoch].views++;
        p->views++;
    }
    pthread_mutex_unlock(&p->lock);
}

void partition_view_release(struct partition *p, const struct partition_view *v)
{
    pthread_mutex_lock(&p->lock);
    if (v->epoch <= p->epoch && p->epochs[v->epoch].views) {
        p->epochs[v->epoch].views--;
        p->views--;
    }
    if (p->epochs[p->kept_from].nbefore)
        kept_expire(p, 0);
    pthread_mutex_unlock(&p->lock);
}

void partition_expire_kept(struct partition *p)
{
    pthread_mutex_lock(&p->lock);
    kept_expire(p, 0);
    pthread_mutex_unlock(&p->lock);
}

int partition_fail_epoch_grow;

/* Makes room for one more epoch, so that bump_epoch() cannot fail: callers
 * reserve before they change anything. Caller holds the lock. */
static int reserve_epoch(struct partition *p)
{
    if (p->epoch + 1 < p->epochs_cap)
        return 0;
    size_t cap = p->epochs_cap * 2;
    struct layout_epoch *n =
        partition_fail_epoch_grow ? NULL : realloc(p->epochs, cap * sizeof(*n));
    if (!n)
        return -ENOMEM;
    p->epochs = n;
    p->epochs_cap = cap;
    return 0;
}

/* Starts a new layout epoch: `removed` view bytes went, every change lies
 * below view position frontier_pos and everything from cut_pos on was cut
 * (both in the old epoch's coordinates); `old` is what lay below
 * frontier_pos before. Caller holds the lock and has reserved the epoch. */
static void bump_epoch(struct partition *p, uint64_t removed, uint64_t frontier_pos,
                       uint64_t cut_pos, struct old_layout *old)
{
    p->epoch++;
    struct layout_epoch *le = &p->epochs[p->epoch];
    memset(le, 0, sizeof(*le));
    le->removed = p->epochs[p->epoch - 1].removed + removed;
    le->frontier_pos = frontier_pos;
    le->cut_pos = cut_pos;
    le->before = old->segs;
    le->before_start = old->start;
    le->nbefore = old->n;
    le->keep_until_ms = sat_add_i64(clock_now_ms(), p->settings.file_delete_delay_ms);
    if (p->settings.file_delete_delay_ms <= 0 || p->views == 0)
        kept_release(le); /* nobody could read it */
    relayout(p);
    kept_expire(p, 0);
}

static int read_recovery_point(const char *dir, struct recovery_point *rp)
{
    char path[4096];
    uint64_t v[5];
    snprintf(path, sizeof(path), "%s/recovery-point", dir);
    int fd = segment_open_fd(path, O_RDONLY);
    if (fd < 0)
        return fd;
    ssize_t n = pread(fd, v, sizeof(v), 0);
    close(fd);
    if (n != (ssize_t)sizeof(v) || XXH3_64bits(v, 4 * sizeof(uint64_t)) != v[4])
        return -EBADMSG;
    rp->seg_base = v[0];
    rp->file_pos = v[1];
    rp->next_offset = v[2];
    rp->end_pos = v[3];
    return 0;
}

/* Writes the recovery point in place (one 40-byte write, inside one disk
 * sector) and makes it stable; a torn one fails its checksum and counts as
 * missing. A file created here gets its directory entry synced too. */
static int write_recovery_point(struct partition *p, const struct recovery_point *rp)
{
    char path[4096];
    uint64_t v[5] = {rp->seg_base, rp->file_pos, rp->next_offset, rp->end_pos, 0};
    v[4] = XXH3_64bits(v, 4 * sizeof(uint64_t));
    snprintf(path, sizeof(path), "%s/recovery-point", p->dir);
    int created = 0;
    int fd = segment_open_fd(path, O_WRONLY);
    if (fd == -ENOENT) {
        fd = segment_open_fd(path, O_WRONLY | O_CREAT);
        created = 1;
    }
    if (fd < 0)
        return fd;
    ssize_t n = pwrite(fd, v, sizeof(v), 0);
    int e = n < 0 ? errno : EIO;
    if (n == (ssize_t)sizeof(v) && fdatasync(fd) < 0) {
        n = -1;
        e = errno;
    }
    close(fd);
    if (n != (ssize_t)sizeof(v))
        return -e;
    if (created && (e = fsutil_sync_dir(p->dir)))
        return e;
    p->recovery_offset = rp->next_offset;
    return 0;
}

static int push_segment(struct partition *p, struct segment *s)
{
    if (p->nsegs == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        struct segment **n = realloc(p->segs, cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        p->segs = n;
        p->cap = cap;
    }
    p->segs[p->nsegs++] = s;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

struct u64_list {
    uint64_t *v;
    size_t n, cap;
};

static int u64_push(struct u64_list *l, uint64_t x)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        uint64_t *nv = realloc(l->v, cap * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = x;
    return 0;
}

/* The base offset of a segment file name "<20 digits><suffix>", if it is one. */
static int segment_file_base(const char *name, const char *suffix, uint64_t *base)
{
    size_t len = strlen(name);
    char *end;
    if (len != 20 + strlen(suffix) || strcmp(name + 20, suffix))
        return 0;
    *base = strtoull(name, &end, 10);
    return end == name + 20;
}

/* Removes index files whose .log is gone: a removal that stopped (or
 * crashed) between a segment's .log and its indexes left them. */
static void remove_orphan_indexes(const char *dir, const struct u64_list *logs,
                                  const struct u64_list *indexes)
{
    char path[4096];
    static const char *suffixes[] = {".index", ".timeindex"};
    for (size_t i = 0; i < indexes->n; i++) {
        if (logs->n && bsearch(&indexes->v[i], logs->v, logs->n, sizeof(*logs->v), cmp_u64))
            continue;
        logger_log(LOG_LEVEL_WARN, "%s: removing the index files of removed segment %" PRIu64, dir,
                   indexes->v[i]);
        for (size_t k = 0; k < 2; k++) {
            segment_path(path, sizeof(path), dir, indexes->v[i], suffixes[k]);
            unlink(path);
        }
    }
}

/* Whether a name is a retired segment file, "<20 digits>.log.<n>.deleted"
 * (segment_retire): what it held was removed, so a crash left it. */
static int is_retired_file(const char *name)
{
    size_t len = strlen(name);
    return len > 20 + 5 + 8 && strspn(name, "0123456789") == 20 &&
           !strncmp(name + 20, ".log.", 5) && !strcmp(name + len - 8, ".deleted");
}

/* Base offsets of the .log files in dir, sorted; index files without their
 * .log, and retired files, are removed. */
static int list_segments(const char *dir, uint64_t **out, size_t *n)
{
    DIR *d = opendir(dir);
    struct u64_list logs = {0}, indexes = {0};
    struct dirent *de;
    int r = 0;
    if (!d)
        return -errno;
    while (!r && (de = readdir(d))) {
        uint64_t base;
        if (segment_file_base(de->d_name, ".log", &base))
            r = u64_push(&logs, base);
        else if (segment_file_base(de->d_name, ".index", &base) ||
                 segment_file_base(de->d_name, ".timeindex", &base))
            r = u64_push(&indexes, base);
        else if (is_retired_file(de->d_name) && unlinkat(dirfd(d), de->d_name, 0) == 0)
            logger_log(LOG_LEVEL_INFO, "%s: removed %s (a removed segment's bytes)", dir,
                       de->d_name);
    }
    closedir(d);
    if (r) {
        free(logs.v);
        free(indexes.v);
        return r;
    }
    if (logs.n) /* qsort and bsearch want an array, even of none */
        qsort(logs.v, logs.n, sizeof(*logs.v), cmp_u64);
    remove_orphan_indexes(dir, &logs, &indexes);
    free(indexes.v);
    *out = logs.v;
    *n = logs.n;
    return 0;
}

/* Deletes segment files from index i on (after a cut left a gap). */
static void drop_tail_files(const char *dir, const uint64_t *bases, size_t from, size_t n)
{
    char path[4096];
    static const char *suffixes[] = {".log", ".index", ".timeindex"};
    for (size_t i = from; i < n; i++) {
        logger_log(LOG_LEVEL_WARN, "%s: removing segment %" PRIu64 " after a cut log", dir,
                   bases[i]);
        for (size_t k = 0; k < 3; k++) {
            segment_path(path, sizeof(path), dir, bases[i], suffixes[k]);
            unlink(path);
        }
    }
}

static int dir_has(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

/* "compacted" marks a partition whose log compaction changed: gaps between
 * its segments are no damage. Written (and its directory entry synced)
 * before the first reload of compacted segments; a pass that crashed before
 * that left its "cleaning" directory, which the next open sees. */
static int note_compacted(struct partition *p, int compacted)
{
    if (dir_has(p->dir, "compacted")) {
        p->compacted = 1;
        return 0;
    }
    if (!compacted)
        return 0;
    char path[4096];
    snprintf(path, sizeof(path), "%s/compacted", p->dir);
    int fd = segment_open_fd(path, O_WRONLY | O_CREAT);
    if (fd < 0)
        return fd;
    close(fd);
    int r = fsutil_sync_dir(p->dir);
    if (!r)
        p->compacted = 1;
    return r;
}

/* What the partition knows of segment i when it opens it. */
static struct segment_trust trust_for(const uint64_t *bases, size_t nbases, size_t i, int have_rp,
                                      const struct recovery_point *rp)
{
    struct segment_trust t = {UINT64_MAX, UINT64_MAX,
                              UINT64_MAX, i + 1 < nbases ? bases[i + 1] : UINT64_MAX,
                              UINT64_MAX, 0};
    if (have_rp) {
        if (bases[i] > rp->seg_base) {
            t.synced_to = 0;
        } else if (bases[i] == rp->seg_base) {
            t.synced_to = rp->file_pos;
            t.synced_next_offset = rp->next_offset;
            t.synced_end_pos = rp->end_pos;
        } else {
            t.max_end_pos = rp->end_pos; /* it ends before the segment of the point */
        }
    } else if (i + 1 == nbases) {
        /* No recovery point: the closed segments count as synced (a crash
         * cannot tear them all), the last one is checked whole. */
        t.synced_to = 0;
    }
    return t;
}

int partition_open(const char *dir, const struct partition_settings *st, struct partition **out)
{
    struct partition *p = calloc(1, sizeof(*p));
    uint64_t *bases = NULL;
    size_t nbases = 0;
    struct recovery_point rp = {0};
    int r, have_rp;

    if (!p)
        return -ENOMEM;
    pthread_mutex_init(&p->lock, NULL);
    pthread_mutex_init(&p->maintenance, NULL);
    p->settings = *st;
    p->epochs_cap = 16;
    if (!(p->epochs = calloc(p->epochs_cap, sizeof(*p->epochs)))) {
        free(p);
        return -ENOMEM;
    }
    if (!(p->dir = strdup(dir))) {
        r = -ENOMEM;
        goto fail;
    }
    /* A directory made here is the caller's to make durable (its parent's
     * fsync: one for all the partitions a topic grows by). */
    if ((r = fsutil_ensure_dir(dir)) < 0)
        goto fail;
    /* Whether compaction ever touched the log (it may then have gaps): its
     * checkpoint, a pass it left behind, or the marker reload leaves. */
    if ((r = note_compacted(p, dir_has(dir, "cleaning") || dir_has(dir, "cleaner-checkpoint"))))
        goto fail;
    if ((r = compaction_recover(dir)))
        goto fail;
    if ((r = list_segments(dir, &bases, &nbases)))
        goto fail;
    have_rp = read_recovery_point(dir, &rp) == 0;

    for (size_t i = 0; i < nbases; i++) {
        struct segment_trust t = trust_for(bases, nbases, i, have_rp, &rp);
        t.compacted = p->compacted;
        uint64_t expect_pos = i ? p->segs[i - 1]->end_pos : UINT64_MAX;
        struct segment *s;
        /* A synced segment ends where the next one starts: an open that
         * verified a damaged tail ended it there, whatever the damaged
         * headers say, and later opens must agree. A next segment that its
         * open may cut is peeked at first; a synced one is opened and
         * checked after (below), which costs no extra read. */
        int next_synced =
            i + 1 < nbases && trust_for(bases, nbases, i + 1, have_rp, &rp).synced_to == UINT64_MAX;
        if (t.synced_to == UINT64_MAX && i + 1 < nbases && !next_synced) {
            uint64_t next_pos = segment_first_pos(dir, bases[i + 1]);
            if (next_pos < t.max_end_pos)
                t.max_end_pos = next_pos;
        }
        /* Offsets may jump (compaction), never go back; after a segment
         * whose unsynced tail recovery had to cut, nothing that follows can
         * be trusted (it was never synced either). */
        if (i && (bases[i] < p->segs[i - 1]->next_offset || p->segs[i - 1]->was_cut)) {
            drop_tail_files(dir, bases, i, nbases);
            break;
        }
        if ((r = segment_open(dir, bases[i], expect_pos, &t, &s)))
            goto fail;
        struct segment *prev = i ? p->segs[i - 1] : NULL;
        if (prev && !prev->verified && t.synced_to == UINT64_MAX && s->first_pos < prev->end_pos) {
            /* Both synced, opened without a change to their .log: the
             * previous one again, verified, then this one after it. */
            struct segment_trust pt = trust_for(bases, nbases, i - 1, have_rp, &rp);
            pt.compacted = p->compacted;
            struct segment *again;
            if (s->first_pos < pt.max_end_pos)
                pt.max_end_pos = s->first_pos;
            segment_close(s);
            if ((r = segment_open(dir, bases[i - 1], i > 1 ? p->segs[i - 2]->end_pos : UINT64_MAX,
                                  &pt, &again)))
                goto fail;
            segment_close(prev);
            p->segs[i - 1] = again;
            if ((r = segment_open(dir, bases[i], again->end_pos, &t, &s)))
                goto fail;
        }
        if (i == 0 && s->size == 0 && s->nbad == 0 && have_rp && rp.seg_base == bases[0])
            s->base_pos = s->end_pos = rp.end_pos;
        if ((r = push_segment(p, s))) {
            segment_close(s);
            goto fail;
        }
    }
    /* A synced segment whose damage ran to its end, a closed one found
     * empty, or one that ends short of the next one where compaction never
     * ran (only compaction leaves gaps) held what lies up to the next
     * segment's start: those offsets and positions are damaged, never
     * skipped silently. */
    int compacted = p->compacted;
    for (size_t i = 0; i < p->nsegs; i++) {
        struct segment *s = p->segs[i];
        if (i + 1 == p->nsegs) {
            segment_close_bad_range(
                s, have_rp && rp.next_offset > s->next_offset ? rp.next_offset : s->next_offset,
                have_rp && rp.end_pos > s->end_pos ? rp.end_pos : s->end_pos);
            break;
        }
        struct segment *nx = p->segs[i + 1];
        segment_close_bad_range(s, nx->base_offset, nx->base_pos);
        int gap = s->next_offset < nx->base_offset || s->end_pos < nx->base_pos;
        if (((s->size == 0 && !s->nbad) || (gap && !compacted)) &&
            (r = segment_mark_lost(s, nx->base_offset, nx->base_pos)))
            goto fail;
    }
    if (p->nsegs == 0) {
        struct segment *s;
        if ((r = segment_create(dir, 0, 0, clock_now_ms(), &s)))
            goto fail;
        if ((r = push_segment(p, s))) {
            segment_close(s);
            goto fail;
        }
        if ((r = fsutil_sync_dir(dir)))
            goto fail;
    }
    free(bases);
    bases = NULL;
    relayout(p);
    if (!active(p)->active && (r = segment_set_active(active(p), 1)))
        goto fail;

    /* What was verified may be only in the page cache: make it stable before
     * the recovery point moves past it (and rewrite it only if it moves). */
    struct segment *a = active(p);
    int synced = 1;
    for (size_t i = 0; i < p->nsegs; i++) {
        struct segment *s = p->segs[i];
        if (have_rp && s->base_offset < rp.seg_base)
            s->synced_size = s->size;
        else if (have_rp && s->base_offset == rp.seg_base)
            s->synced_size = rp.file_pos < s->size ? rp.file_pos : s->size;
        if (s->synced_size < s->size && !segment_sync(s))
            s->synced_size = s->size;
        synced &= s->synced_size == s->size;
    }
    struct recovery_point now = {a->base_offset, a->size, a->next_offset, a->end_pos};
    p->recovery_offset = have_rp ? rp.next_offset : 0;
    if (synced && (!have_rp || memcmp(&now, &rp, sizeof(now))) &&
        (r = write_recovery_point(p, &now)))
        goto fail;
    *out = p;
    return 0;
fail:
    free(bases);
    partition_close(p);
    return r;
}

void partition_close(struct partition *p)
{
    if (!p)
        return;
    if (p->epochs)
        kept_expire(p, 1);
    for (size_t i = 0; i < p->nsegs; i++)
        segment_release(p->segs[i]);
    free(p->segs);
    free(p->dir);
    free(p->old_dir);
    free(p->epochs);
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->maintenance);
    free(p);
}

void partition_set_settings(struct partition *p, const struct partition_settings *st)
{
    pthread_mutex_lock(&p->lock);
    p->settings = *st;
    pthread_mutex_unlock(&p->lock);
}

/* Starts a new active segment if the current one is full or old. */
static int maybe_roll(struct partition *p, size_t incoming, int64_t now)
{
    struct segment *a = active(p);
    if (a->size == 0)
        return 0;
    if (sat_add_u64(a->size, incoming) <= p->settings.segment_bytes &&
        sat_sub_i64(now, a->created_ms) < p->settings.segment_ms)
        return 0;
    struct segment *s;
    int r = segment_create(p->dir, a->next_offset, a->end_pos, now, &s);
    if (r)
        return r;
    s->view_start = a->view_start + (a->end_pos - a->base_pos);
    if ((r = push_segment(p, s))) {
        segment_delete(s);
        return r;
    }
    segment_set_active(a, 0);
    p->dir_dirty = 1; /* partition_sync() makes the new files' entries stable */
    return 0;
}

static void count_in(struct partition *p, const struct batch_header *h)
{
    atomic_fetch_add_explicit(&p->records_in, h->record_count, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->bytes_in, h->values_len, memory_order_relaxed);
}

int partition_append(struct partition *p, struct batch_builder *b, int64_t timestamp,
                     uint64_t *base_offset)
{
    const struct iovec *iov;
    int iovcnt, r;
    size_t len;

    pthread_mutex_lock(&p->lock);
    if (p->deleted) {
        pthread_mutex_unlock(&p->lock);
        return -ENOENT;
    }
    struct segment *a = active(p);
    r = batch_builder_seal(b, p->settings.codec, a->next_offset, a->end_pos, timestamp,
                           p->leader_epoch, &iov, &iovcnt, &len);
    if (!r && (r = maybe_roll(p, len, timestamp)) == 0) {
        struct batch_header h;
        batch_header_decode(iov[0].iov_base, &h);
        r = segment_append(active(p), iov, iovcnt, &h);
        if (!r)
            count_in(p, &h);
        if (!r && base_offset)
            *base_offset = h.base_offset;
    }
    pthread_mutex_unlock(&p->lock);
    return r;
}

int partition_append_batch(struct partition *p, const uint8_t *batch, size_t len)
{
    struct batch_header h;
    int r;
    if (len < BATCH_HEADER_SIZE || batch_header_decode(batch, &h) || batch_verify(batch, len))
        return -EBADMSG;
    pthread_mutex_lock(&p->lock);
    struct segment *a = active(p);
    if (p->deleted) {
        r = -ENOENT;
    } else if (h.base_offset != a->next_offset || h.base_pos != a->end_pos) {
        r = -EINVAL;
    } else if ((r = maybe_roll(p, len, h.timestamp)) == 0) {
        struct iovec iov = {.iov_base = (void *)batch, .iov_len = len};
        r = segment_append(active(p), &iov, 1, &h);
        if (!r)
            count_in(p, &h);
    }
    pthread_mutex_unlock(&p->lock);
    return r;
}

int partition_truncate(struct partition *p, uint64_t offset)
{
    int r = 0;
    /* A cleaner pass must not put back segments it copied before the cut. */
    pthread_mutex_lock(&p->maintenance);
    pthread_mutex_lock(&p->lock);
    if (p->deleted) {
        r = -ENOENT;
        goto out;
    }
    if (offset >= active(p)->next_offset)
        goto out;
    if ((r = reserve_epoch(p)))
        goto out;
    /* Positions from the cut on will hold other bytes: older views must not
     * read there, nor keep old layouts that the cut may reach into. */
    ssize_t i = segment_from_offset(p, offset);
    uint64_t fp, cut_pos = i < 0 ? view_end(p) : 0;
    struct batch_header h;
    if (i >= 0 && !segment_find_offset(p->segs[i], offset, &fp, &h))
        cut_pos = p->segs[i]->view_start + (h.base_pos - p->segs[i]->base_pos);
    kept_expire(p, 1);
    /* Newest first, up to the first whose .log cannot go: the log then ends
     * with that segment, whole (on disk as in memory), and the error is
     * returned once the recovery point says where it ends. */
    size_t removed = 0;
    int failed = 0;
    while (p->nsegs > 1 && active(p)->base_offset >= offset) {
        struct segment *s = active(p);
        if ((failed = segment_unlink(s)))
            break;
        p->nsegs--;
        segment_release(s);
        removed++;
    }
    if (failed && !removed) {
        r = failed;
        goto out;
    }
    if (failed)
        cut_pos = view_end(p);
    struct old_layout none = {0};
    bump_epoch(p, 0, 0, cut_pos, &none);
    p->truncations++;
    struct segment *a = active(p);
    if (!a->active && (r = segment_set_active(a, 1)))
        goto out;
    if (!failed && (r = segment_truncate(a, offset)))
        goto out;
    if ((r = segment_sync(a)))
        goto out;
    a->synced_size = a->size;
    /* The removed segments must not come back after a crash. */
    if ((r = fsutil_sync_dir(p->dir)))
        goto out;
    struct recovery_point now = {a->base_offset, a->size, a->next_offset, a->end_pos};
    if (!(r = write_recovery_point(p, &now)))
        r = failed;
out:
    pthread_mutex_unlock(&p->lock);
    pthread_mutex_unlock(&p->maintenance);
    return r;
}

int partition_sync(struct partition *p)
{
    int r = 0;
    pthread_mutex_lock(&p->lock);
    struct segment *a = active(p);
    struct recovery_point now = {a->base_offset, a->size, a->next_offset, a->end_pos};
    /* Every segment with bytes not yet on stable storage: the recovery point
     * may only move over synced bytes. Kept alive by a reference while the
     * lock is let go. */
    size_t n = 0;
    for (size_t i = 0; i < p->nsegs; i++)
        n += p->segs[i]->synced_size < p->segs[i]->size;
    if (n == 0 && !p->dir_dirty && now.next_offset == p->recovery_offset) {
        pthread_mutex_unlock(&p->lock);
        return 0;
    }
    struct segment **dirty = n ? malloc(n * sizeof(*dirty)) : NULL;
    uint64_t *sizes = n ? malloc(n * sizeof(*sizes)) : NULL;
    if (n && (!dirty || !sizes)) {
        free(dirty);
        free(sizes);
        pthread_mutex_unlock(&p->lock);
        return -ENOMEM;
    }
    n = 0;
    for (size_t i = 0; i < p->nsegs; i++) {
        struct segment *s = p->segs[i];
        if (s->synced_size < s->size) {
            s->refs++;
            dirty[n] = s;
            sizes[n++] = s->size;
        }
    }
    int dir_dirty = p->dir_dirty;
    const char *dir = p->dir; /* valid until the close (partition_move) */
    uint32_t truncations = p->truncations;
    p->dir_dirty = 0;
    pthread_mutex_unlock(&p->lock);
    /* fdatasync outside the lock: appends go on meanwhile. */
    int *ok = n ? calloc(n, sizeof(*ok)) : NULL;
    for (size_t i = 0; i < n; i++) {
        int e = segment_sync(dirty[i]);
        if (e && !r)
            r = e;
        if (ok)
            ok[i] = !e;
    }
    /* The directory entries of segments created since the last sync. */
    if (dir_dirty) {
        int e = fsutil_sync_dir(dir);
        if (e && !r)
            r = e;
    }
    pthread_mutex_lock(&p->lock);
    if (r && dir_dirty)
        p->dir_dirty = 1;
    for (size_t i = 0; i < n; i++) {
        if (ok && ok[i] && dirty[i]->synced_size < sizes[i])
            dirty[i]->synced_size = sizes[i];
        segment_release(dirty[i]);
    }
    if (!r && !ok && n)
        r = -ENOMEM;
    /* A truncation meanwhile wrote its own recovery point: `now` may lie
     * past its cut. */
    if (!r && now.next_offset > p->recovery_offset && truncations == p->truncations)
        r = write_recovery_point(p, &now);
    pthread_mutex_unlock(&p->lock);
    free(ok);
    free(dirty);
    free(sizes);
    return r;
}

/* Index of the segment holding stream position pos (the last one whose
 * base_pos <= pos), or -1. */
static ssize_t segment_for_pos(struct partition *p, uint64_t pos)
{
    ssize_t lo = 0, hi = (ssize_t)p->nsegs - 1, best = -1;
    while (lo <= hi) {
        ssize_t mid = lo + (hi - lo) / 2;
        if (p->segs[mid]->base_pos <= pos) {
            best = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    /* Skip empty segments that share a base position with the next one. */
    while (best >= 0 && (size_t)best + 1 < p->nsegs && p->segs[best]->end_pos <= pos)
        best++;
    return best;
}

static struct segment *segment_by_base(struct partition *p, uint64_t base)
{
    ssize_t i = segment_for_offset(p, base);
    return i >= 0 && p->segs[i]->base_offset == base ? p->segs[i] : NULL;
}

void partition_cursor_init(struct partition_cursor *c)
{
    memset(c, 0, sizeof(*c));
    c->seg_base = UINT64_MAX;
    c->buf_seg_base = UINT64_MAX;
    c->scratch_batch = UINT64_MAX;
}

void partition_cursor_free(struct partition_cursor *c)
{
    free(c->buf);
    free(c->scratch);
    partition_cursor_init(c);
}

/* Returns a pointer to file bytes [file_pos, file_pos+len) of segment s,
 * from the cursor's read-ahead buffer, refilling it if needed. */
/* Whether the cursor's read-ahead holds len bytes at file_pos of s. */
static int cursor_holds(const struct partition_cursor *c, const struct segment *s,
                        uint64_t file_pos, size_t len)
{
    return c->buf_seg_base == s->base_offset && file_pos >= c->buf_file_pos &&
           file_pos + len <= c->buf_file_pos + c->buf_len;
}

static int cursor_bytes(struct partition_cursor *c, struct segment *s, uint64_t file_pos,
                        size_t len, size_t read_ahead, const uint8_t **out)
{
    if (cursor_holds(c, s, file_pos, len)) {
        *out = c->buf + (file_pos - c->buf_file_pos);
        return 0;
    }
    size_t want = len > read_ahead ? len : read_ahead;
    if (file_pos + want > s->size)
        want = (size_t)(s->size - file_pos);
    if (want < len)
        return -EIO;
    if (want > c->buf_cap) {
        uint8_t *n = realloc(c->buf, want);
        if (!n)
            return -ENOMEM;
        c->buf = n;
        c->buf_cap = want;
    }
    size_t done = 0;
    int fd = segment_fd(s);
    if (fd < 0) {
        c->buf_seg_base = UINT64_MAX;
        return fd;
    }
    while (done < want) {
        ssize_t r = pread(fd, c->buf + done, want - done, (off_t)(file_pos + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? -errno : -EIO;
            segment_fd_put(s);
            c->buf_seg_base = UINT64_MAX;
            return e;
        }
        done += (size_t)r;
    }
    segment_fd_put(s);
    c->buf_seg_base = s->base_offset;
    c->buf_file_pos = file_pos;
    c->buf_len = want;
    *out = c->buf;
    return 0;
}

/* Drops the cursor's hints and cached bytes (they name segments by base
 * offset, which an old layout's segments share with the current ones). */
static void cursor_forget(struct partition_cursor *c)
{
    c->seg_base = c->buf_seg_base = c->scratch_batch = UINT64_MAX;
}

/* Points the cursor at the batch holding stream position pos; with `in`, in
 * that segment only (which need not be in the current list). -ENODATA if
 * compaction removed pos. */
static int cursor_seek(struct partition *p, struct partition_cursor *c, uint64_t pos,
                       struct segment *in, struct segment **seg)
{
    if (c->layout_epoch != p->epoch) {
        /* Segment files may have been rewritten: forget what was cached. */
        cursor_forget(c);
        c->layout_epoch = p->epoch;
    }
    struct segment *s = NULL;
    if (c->seg_base != UINT64_MAX)
        s = !in ? segment_by_base(p, c->seg_base) : c->seg_base == in->base_offset ? in : NULL;
    if (s && pos >= c->h.base_pos && pos < batch_end_pos(&c->h)) {
        *seg = s;
        return 0;
    }
    /* Sequential case: the next batch(es) after the cached one. */
    if (s && pos >= batch_end_pos(&c->h)) {
        uint64_t fp = c->file_pos + c->h.length;
        for (int hops = 0; hops < 64; hops++) {
            if (fp >= s->size) {
                ssize_t i = in ? -1 : segment_for_offset(p, s->base_offset);
                if (i < 0 || (size_t)i + 1 >= p->nsegs)
                    break;
                s = p->segs[i + 1];
                fp = 0;
                if (s->size == 0)
                    continue;
                if (segment_verify(s))
                    break;
            }
            if (segment_bad_at(s, SEG_BY_FILE, fp))
                break; /* the lookup below refuses or skips it */
            const uint8_t *hb;
            struct batch_header h;
            if (cursor_bytes(c, s, fp, BATCH_HEADER_SIZE, HEADER_READ_AHEAD, &hb) ||
                batch_header_decode(hb, &h))
                break;
            if (pos < h.base_pos)
                break;
            if (pos < batch_end_pos(&h)) {
                c->seg_base = s->base_offset;
                c->file_pos = fp;
                c->h = h;
                *seg = s;
                return 0;
            }
            fp += h.length;
        }
    }
    if (in) {
        s = in;
    } else {
        ssize_t i = segment_for_pos(p, pos);
        if (i < 0)
            return -ERANGE;
        s = p->segs[i];
    }
    uint64_t fp;
    struct batch_header h;
    int r = segment_find_pos(s, pos, &fp, &h);
    if (r)
        return r;
    if (pos < h.base_pos)
        return -ENODATA; /* in a gap compaction left */
    c->seg_base = s->base_offset;
    c->file_pos = fp;
    c->h = h;
    *seg = s;
    return 0;
}

/* The decompressed (or in-file) table and values of the cursor's batch. */
static int cursor_body(struct partition_cursor *c, struct segment *s, const uint8_t **table,
                       const uint8_t **values)
{
    const uint8_t *batch;
    int r = cursor_bytes(c, s, c->file_pos, c->h.length, READ_AHEAD, &batch);
    if (r)
        return r;
    if (c->h.codec == BATCH_CODEC_NONE)
        return batch_body(&c->h, batch, NULL, NULL, table, values);
    if (c->scratch_batch == c->h.base_offset) {
        *table = c->scratch;
        *values = c->scratch + c->h.table_len;
        return 0;
    }
    r = batch_body(&c->h, batch, &c->scratch, &c->scratch_cap, table, values);
    c->scratch_batch = r ? UINT64_MAX : c->h.base_offset;
    return r;
}

/* Segments whose descriptors handed-out file pieces use: pinned (the fd
 * LRU cannot close them, whichever partition needs room) until the reply
 * that carries the pieces was sent, then let go by pins_release. */
struct pin_list {
    struct segment **v;
    size_t n, cap;
};

/* The pinned descriptor of s for one more file piece, or -1 (then the piece
 * is copied through memory instead). */
static int pin_piece(struct pin_list *pl, struct segment *s)
{
    if (pl->n == pl->cap) {
        size_t cap = pl->cap ? pl->cap * 2 : 8;
        struct segment **v = realloc(pl->v, cap * sizeof(*v));
        if (!v)
            return -1;
        pl->v = v;
        pl->cap = cap;
    }
    int fd = segment_fd(s);
    if (fd >= 0)
        pl->v[pl->n++] = s;
    return fd;
}

static void pins_release(struct pin_list *pl)
{
    for (size_t i = 0; i < pl->n; i++)
        segment_fd_put(pl->v[i]);
    free(pl->v);
    pl->v = NULL;
    pl->n = pl->cap = 0;
}

/* Hands out the stream bytes from position pos on, up to len, as pieces;
 * with `in`, only from that segment. Returns the bytes handed out (short
 * before a compaction gap) or a negative errno. Caller holds the lock and
 * releases `pins` once the pieces are used. */
static ssize_t visit_locked(struct partition *p, struct partition_cursor *c, struct segment *in,
                            uint64_t pos, size_t len, const struct stream_sink *sink,
                            struct pin_list *pins)
{
    size_t done = 0;
    int r = 0;
    uint64_t end = in ? in->end_pos : active(p)->end_pos;
    if (pos < (in ? in->base_pos : p->segs[0]->base_pos))
        return -ERANGE;
    if (pos + len > end)
        len = pos < end ? (size_t)(end - pos) : 0;
    while (done < len) {
        struct segment *s;
        if ((r = cursor_seek(p, c, pos, in, &s)))
            break;
        uint64_t in_batch = pos - c->h.base_pos;
        size_t n = (size_t)(batch_end_pos(&c->h) - pos);
        if (n > len - done)
            n = len - done;
        struct stream_piece pc = {.fd = -1, .len = n};
        if (c->h.codec == BATCH_CODEC_NONE) {
            uint64_t fp = c->file_pos + BATCH_HEADER_SIZE + c->h.table_len + in_batch;
            if (n >= DIRECT_COPY_MIN && !cursor_holds(c, s, fp, n) &&
                (pc.fd = pin_piece(pins, s)) >= 0) {
                pc.file_pos = fp;
            } else {
                pc.fd = -1;
                const uint8_t *src;
                if ((r = cursor_bytes(c, s, fp, n, READ_AHEAD, &src)))
                    break;
                pc.mem = src;
            }
        } else {
            const uint8_t *table, *values;
            if ((r = cursor_body(c, s, &table, &values)))
                break;
            pc.mem = values + in_batch;
        }
        if ((r = sink->piece(&pc, sink->arg)))
            break;
        done += n;
        pos += n;
    }
    if (done > 0)
        return (ssize_t)done;
    return r;
}

/* A sink that copies the pieces into a buffer. */
struct copy_target {
    char *buf;
    size_t done;
};

int stream_piece_copy(const struct stream_piece *pc, void *dst)
{
    if (pc->fd < 0) {
        memcpy(dst, pc->mem, pc->len);
        return 0;
    }
    for (size_t got = 0; got < pc->len;) {
        ssize_t r = pread(pc->fd, (char *)dst + got, pc->len - got, (off_t)(pc->file_pos + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? -errno : -EIO;
        got += (size_t)r;
    }
    return 0;
}

static int copy_piece(const struct stream_piece *pc, void *arg)
{
    struct copy_target *t = arg;
    int r = stream_piece_copy(pc, t->buf + t->done);
    if (!r)
        t->done += pc->len;
    return r;
}

static ssize_t read_locked(struct partition *p, struct partition_cursor *c, struct segment *in,
                           uint64_t pos, void *buf, size_t len)
{
    struct copy_target t = {.buf = buf};
    struct stream_sink sink = {.piece = copy_piece, .arg = &t};
    struct pin_list pins = {0};
    ssize_t n = visit_locked(p, c, in, pos, len, &sink, &pins);
    pins_release(&pins);
    return n;
}

ssize_t partition_read(struct partition *p, struct partition_cursor *c, uint64_t pos, void *buf,
                       size_t len)
{
    pthread_mutex_lock(&p->lock);
    ssize_t r = read_locked(p, c, NULL, pos, buf, len);
    if (r > 0)
        partition_count_read(p, (uint64_t)r);
    pthread_mutex_unlock(&p->lock);
    return r;
}

void partition_count_read(struct partition *p, uint64_t bytes)
{
    atomic_fetch_add_explicit(&p->bytes_out, bytes, memory_order_relaxed);
}

/* Stream position of the first value byte of `offset`, or of the next record
 * if it is gone, and the index of the segment that holds it (the last one at
 * the end). */
static int offset_pos_locked(struct partition *p, uint64_t offset, size_t *seg, uint64_t *pos)
{
    int r = 0;
    struct segment *a = active(p);
    ssize_t i;
    if (offset <= p->segs[0]->base_offset) {
        *seg = 0;
        *pos = p->segs[0]->base_pos;
    } else if (offset >= a->next_offset || (i = segment_from_offset(p, offset)) < 0) {
        *seg = p->nsegs - 1;
        *pos = a->end_pos;
    } else {
        struct segment *s = p->segs[i];
        struct partition_cursor c;
        const uint8_t *table, *values;
        partition_cursor_init(&c);
        r = segment_find_offset(s, offset, &c.file_pos, &c.h);
        if (!r) {
            c.seg_base = s->base_offset;
            r = cursor_body(&c, s, &table, &values);
        }
        if (!r) {
            const uint8_t *tend = table + c.h.table_len;
            uint64_t at = c.h.base_pos;
            uint32_t vlen;
            int32_t klen;
            for (uint64_t o = c.h.base_offset; o < offset; o++) {
                if (batch_next_record(&table, tend, &vlen, &klen) != 1) {
                    r = -EIO;
                    break;
                }
                at += vlen;
            }
            *seg = (size_t)i;
            *pos = at;
        }
        partition_cursor_free(&c);
    }
    return r;
}

int partition_offset_pos(struct partition *p, uint64_t offset, uint64_t *pos)
{
    size_t seg;
    pthread_mutex_lock(&p->lock);
    int r = offset_pos_locked(p, offset, &seg, pos);
    pthread_mutex_unlock(&p->lock);
    return r;
}

int partition_time_offset(struct partition *p, int64_t ts, uint64_t *offset)
{
    int r = 0;
    pthread_mutex_lock(&p->lock);
    *offset = active(p)->next_offset;
    for (size_t i = 0; i < p->nsegs; i++) {
        struct segment *s = p->segs[i];
        if (s->size == 0 || s->max_timestamp < ts)
            continue;
        uint64_t fp;
        struct batch_header h;
        r = segment_find_time(s, ts, &fp, &h);
        if (r == -ENOENT) {
            r = 0;
            continue;
        }
        if (!r)
            *offset = h.base_offset;
        break;
    }
    pthread_mutex_unlock(&p->lock);
    return r;
}

void partition_info(struct partition *p, struct partition_info *info)
{
    pthread_mutex_lock(&p->lock);
    struct segment *a = active(p);
    info->start_offset = p->segs[0]->base_offset;
    info->start_pos = p->segs[0]->base_pos;
    info->end_offset = a->next_offset;
    info->end_pos = a->end_pos;
    info->segments = (uint32_t)p->nsegs;
    info->leader_epoch = p->leader_epoch;
    info->view_bytes = view_end(p);
    info->stored_bytes = 0;
    info->last_append_ms = 0;
    info->records_in = atomic_load_explicit(&p->records_in, memory_order_relaxed);
    info->bytes_in = atomic_load_explicit(&p->bytes_in, memory_order_relaxed);
    info->bytes_out = atomic_load_explicit(&p->bytes_out, memory_order_relaxed);
    info->bad_batches = 0;
    for (size_t i = 0; i < p->nsegs; i++) {
        info->bad_batches += p->segs[i]->nbad;
        info->stored_bytes += p->segs[i]->size;
        if (p->segs[i]->max_timestamp > info->last_append_ms)
            info->last_append_ms = p->segs[i]->max_timestamp;
    }
    pthread_mutex_unlock(&p->lock);
}

uint64_t partition_end_pos(struct partition *p)
{
    pthread_mutex_lock(&p->lock);
    uint64_t e = active(p)->end_pos;
    pthread_mutex_unlock(&p->lock);
    return e;
}

void partition_current_view(struct partition *p, struct partition_view *v)
{
    pthread_mutex_lock(&p->lock);
    v->epoch = p->epoch;
    v->shift = 0;
    pthread_mutex_unlock(&p->lock);
}

/* Bytes removed from the view between epoch e and now. */
static uint64_t removed_since(struct partition *p, uint32_t e)
{
    return p->epochs[p->epoch].removed - p->epochs[e].removed;
}

uint64_t partition_view_size(struct partition *p, const struct partition_view *v)
{
    pthread_mutex_lock(&p->lock);
    uint64_t size = 0;
    if (v->epoch <= p->epoch) {
        uint64_t end = view_end(p) + removed_since(p, v->epoch);
        size = end > v->shift ? end - v->shift : 0;
    }
    pthread_mutex_unlock(&p->lock);
    return size;
}

/* Index of the segment holding current-view position y (the last one whose
 * view_start <= y and that is not empty there), or -1. */
static ssize_t segment_for_view_pos(struct partition *p, uint64_t y)
{
    ssize_t lo = 0, hi = (ssize_t)p->nsegs - 1, best = -1;
    while (lo <= hi) {
        ssize_t mid = lo + (hi - lo) / 2;
        if (p->segs[mid]->view_start <= y) {
            best = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    while (best >= 0 && (size_t)best + 1 < p->nsegs &&
           p->segs[best]->view_start + live_bytes(p->segs[best]) <= y)
        best++;
    return best;
}

/* Where position x of a view of epoch e lies now. Returns 0 with *y its
 * position in the current view; 1 with *j the epoch whose kept old layout
 * holds it (*y unchanged, in that layout's coordinates); or -ENODATA.
 * *room gets how many bytes from x on lie before the next truncation cut. */
static int view_locate(struct partition *p, uint32_t e, uint64_t x, uint32_t *j, uint64_t *y,
                       uint64_t *room)
{
    *room = UINT64_MAX;
    for (uint32_t k = e + 1; k <= p->epoch; k++) {
        const struct layout_epoch *le = &p->epochs[k];
        if (x >= le->cut_pos)
            return -ENODATA;
        if (le->cut_pos - x < *room)
            *room = le->cut_pos - x;
        if (x < le->frontier_pos) {
            if (!le->nbefore)
                return -ENODATA;
            *j = k;
            *y = x;
            return 1;
        }
        x -= le->removed - p->epochs[k - 1].removed;
    }
    *y = x;
    return 0;
}

/* The kept segment of epoch j's old layout at position y, or NULL. */
static struct segment *kept_segment(struct partition *p, uint32_t j, uint64_t y, uint64_t *in_seg)
{
    const struct layout_epoch *le = &p->epochs[j];
    for (size_t i = le->nbefore; i-- > 0;)
        if (le->before_start[i] <= y && y < le->before_start[i] + live_bytes(le->before[i])) {
            *in_seg = y - le->before_start[i];
            return le->before[i];
        }
    return NULL;
}

/* The view's bytes from pos on, up to len, as pieces (see visit_locked).
 * Caller holds the lock. */
static ssize_t view_visit_locked(struct partition *p, struct partition_cursor *c,
                                 const struct partition_view *v, uint64_t pos, size_t len,
                                 const struct stream_sink *sink, struct pin_list *pins)
{
    size_t done = 0;
    int r = 0;
    if (v->epoch > p->epoch)
        return -ENODATA;
    if (p->epochs[p->kept_from].nbefore)
        kept_expire(p, 0);
    /* Kept segments are read through a cursor of their own, forgotten at
     * each new one: they share base offsets with the current segments and
     * with each other. */
    struct partition_cursor old_cursor;
    struct segment *old_seg = NULL;
    partition_cursor_init(&old_cursor);
    uint64_t x = pos + v->shift, end = view_end(p) + removed_since(p, v->epoch);
    while (done < len && x < end) {
        uint32_t j;
        uint64_t y, in_seg, room;
        struct segment *s = NULL;
        int where = view_locate(p, v->epoch, x, &j, &y, &room);
        if (where == 0) {
            ssize_t i = segment_for_view_pos(p, y);
            if (i >= 0) {
                s = p->segs[i];
                in_seg = y - s->view_start;
            }
        } else if (where == 1) {
            s = kept_segment(p, j, y, &in_seg);
        }
        if (!s) {
            r = -ENODATA;
            break;
        }
        size_t n = len - done;
        if (n > live_bytes(s) - in_seg)
            n = (size_t)(live_bytes(s) - in_seg);
        if (n > room)
            n = (size_t)room;
        if (where == 1 && old_seg != s) {
            cursor_forget(&old_cursor);
            old_seg = s;
        }
        ssize_t got =
            visit_locked(p, where == 1 ? &old_cursor : c, s, s->base_pos + in_seg, n, sink, pins);
        if (got <= 0) {
            r = got < 0 ? (int)got : -EIO;
            break;
        }
        done += (size_t)got;
        x += (uint64_t)got;
        end = view_end(p) + removed_since(p, v->epoch);
    }
    partition_cursor_free(&old_cursor);
    partition_count_read(p, done);
    return done > 0 ? (ssize_t)done : r;
}

ssize_t partition_view_read(struct partition *p, struct partition_cursor *c,
                            const struct partition_view *v, uint64_t pos, void *buf, size_t len)
{
    struct copy_target t = {.buf = buf};
    struct stream_sink sink = {.piece = copy_piece, .arg = &t};
    struct pin_list pins = {0};
    pthread_mutex_lock(&p->lock);
    ssize_t n = view_visit_locked(p, c, v, pos, len, &sink, &pins);
    pins_release(&pins);
    pthread_mutex_unlock(&p->lock);
    return n;
}

ssize_t partition_view_send(struct partition *p, struct partition_cursor *c,
                            const struct partition_view *v, uint64_t pos, size_t len,
                            const struct stream_sink *sink)
{
    struct pin_list pins = {0};
    pthread_mutex_lock(&p->lock);
    ssize_t n = view_visit_locked(p, c, v, pos, len, sink, &pins);
    if (n > 0)
        sink->deliver(sink->arg);
    pins_release(&pins); /* the reply is sent: its descriptors may go */
    pthread_mutex_unlock(&p->lock);
    return n;
}

int partition_view_at_offset(struct partition *p, uint64_t offset, struct partition_view *v)
{
    size_t i;
    uint64_t pos;
    pthread_mutex_lock(&p->lock);
    v->epoch = p->epoch;
    v->shift = 0;
    int r = offset_pos_locked(p, offset, &i, &pos);
    if (!r)
        v->shift = p->segs[i]->view_start + (pos - p->segs[i]->base_pos);
    pthread_mutex_unlock(&p->lock);
    return r;
}

int partition_move(struct partition *p, const char *dir)
{
    int r = 0;
    char seg_dir[4096];
    /* No cleaner pass is halfway through paths under the old name. */
    pthread_mutex_lock(&p->maintenance);
    pthread_mutex_lock(&p->lock);
    char *d = strdup(dir);
    if (d) {
        free(p->old_dir);
        p->old_dir = p->dir;
        p->dir = d;
    } else {
        r = -ENOMEM;
    }
    p->deleted = 1;
    snprintf(seg_dir, sizeof(seg_dir), "%s", dir);
    /* Every segment object: the list's and the kept layouts'. */
    for (size_t i = 0; i < p->nsegs; i++) {
        int e = segment_set_dir(p->segs[i], seg_dir);
        r = r ? r : e;
    }
    for (uint32_t j = p->kept_from; j <= p->epoch; j++)
        for (size_t i = 0; i < p->epochs[j].nbefore; i++) {
            int e = segment_set_dir(p->epochs[j].before[i], seg_dir);
            r = r ? r : e;
        }
    pthread_mutex_unlock(&p->lock);
    pthread_mutex_unlock(&p->maintenance);
    return r;
}

int partition_retire_segment(struct partition *p, uint64_t base)
{
    int r = 0;
    pthread_mutex_lock(&p->lock);
    struct segment *s = segment_by_base(p, base);
    if (s && (r = segment_retire(s, 1)) == -ENOENT)
        r = 0; /* its .log went already: an earlier try retired it */
    pthread_mutex_unlock(&p->lock);
    return r;
}

int partition_delete_head(struct partition *p, size_t n, size_t *removed)
{
    int r = 0;
    size_t k = 0;
    pthread_mutex_lock(&p->lock);
    if (n >= p->nsegs)
        n = p->nsegs - 1;
    if (n == 0 || (r = reserve_epoch(p)))
        goto out;
    /* Oldest first, up to the first whose .log cannot go: that one and all
     * after it stay, on disk as in memory, so the log stays whole (a segment
     * dropped here but left on disk would come back below the log start at
     * the next open, with a gap). The next pass tries again. */
    while (k < n && !(r = segment_unlink(p->segs[k])))
        k++;
    if (k == 0)
        goto out;
    uint64_t bytes = 0;
    struct old_layout old;
    old_layout_take(p, k, &old);
    uint64_t frontier_pos = p->segs[k]->view_start;
    for (size_t i = 0; i < k; i++) {
        bytes += live_bytes(p->segs[i]);
        segment_release(p->segs[i]);
    }
    memmove(p->segs, p->segs + k, (p->nsegs - k) * sizeof(*p->segs));
    p->nsegs -= k;
    bump_epoch(p, bytes, frontier_pos, UINT64_MAX, &old);
out:
    pthread_mutex_unlock(&p->lock);
    if (removed)
        *removed = k;
    return r;
}

int partition_fetch(struct partition *p, struct partition_cursor *c, uint64_t offset,
                    size_t max_records, int (*fn)(const struct record_view *r, void *arg),
                    void *arg, uint64_t *next)
{
    int r = 0;
    size_t seen = 0;
    pthread_mutex_lock(&p->lock);
    if (c->layout_epoch != p->epoch) {
        cursor_forget(c);
        c->layout_epoch = p->epoch;
    }
    if (offset < p->segs[0]->base_offset)
        offset = p->segs[0]->base_offset;
    *next = offset;
    ssize_t i = segment_for_offset(p, offset);
    int damaged = 0;
    for (; i >= 0 && (size_t)i < p->nsegs && seen < max_records && !r && !damaged; i++) {
        struct segment *s = p->segs[i];
        if (offset >= s->next_offset || (s->size == 0 && !s->nbad))
            continue;
        uint64_t fp;
        if ((r = segment_find_offset(s, offset, &fp, &c->h))) {
            /* The next record lies in or after damage: hand out what came
             * before it; the fetch that starts there fails. */
            if (r == -EIO && seen) {
                r = 0;
                damaged = 1;
            }
            break;
        }
        while (fp < s->size && seen < max_records && !r && !damaged) {
            const uint8_t *hb, *table, *values;
            /* The lookup never answers inside a bad range: one met on the
             * way lies before the next record, whatever offsets it claims. */
            if (segment_bad_at(s, SEG_BY_FILE, fp)) {
                damaged = 1;
                break;
            }
            if ((r = cursor_bytes(c, s, fp, BATCH_HEADER_SIZE, READ_AHEAD, &hb)))
                break;
            if (batch_header_decode(hb, &c->h)) {
                r = -EIO;
                break;
            }
            c->seg_base = s->base_offset;
            c->file_pos = fp;
            if ((r = cursor_body(c, s, &table, &values)))
                break;
            const uint8_t *tend = table + c->h.table_len, *vend = values + c->h.values_len;
            struct record_view rv = {.timestamp = c->h.timestamp};
            uint64_t o = c->h.base_offset;
            uint32_t vlen;
            int32_t klen;
            while (seen < max_records && batch_next_record(&table, tend, &vlen, &klen) == 1) {
                if (vlen > (size_t)(vend - values)) { /* a table that was never verified */
                    r = -EIO;
                    break;
                }
                if (o >= offset) {
                    rv.offset = o;
                    rv.value = values;
                    rv.value_len = vlen;
                    rv.key_len = klen;
                    seen++;
                    *next = o + 1;
                    if ((r = fn(&rv, arg)))
                        break;
                }
                values += vlen;
                o++;
            }
            offset = *next > offset ? *next : offset;
            if (o >= batch_next_offset(&c->h) && offset < batch_next_offset(&c->h))
                offset = batch_next_offset(&c->h);
            fp += c->h.length;
        }
        /* Records lost from the segment's end (found short at open). */
        for (size_t k = 0; k < s->nbad && !r && !damaged && seen < max_records && fp >= s->size;
             k++)
            damaged = s->bad[k].file_pos >= s->size;
        if (!r && seen < max_records && segment_bad_at(s, SEG_BY_OFFSET, offset))
            damaged = 1;
    }
    /* Damaged records: hand out what came before them; the fetch that
     * starts at them fails. */
    if (damaged && seen == 0)
        r = -EIO;
    pthread_mutex_unlock(&p->lock);
    return r > 0 ? 0 : r;
}

int partition_reload_segments(struct partition *p, const uint64_t *bases, const int *deleted,
                              size_t n)
{
    int r = 0;
    uint64_t removed = 0;
    pthread_mutex_lock(&p->lock);
    if (!p->compacted && (r = note_compacted(p, 1))) {
        pthread_mutex_unlock(&p->lock);
        return r;
    }
    /* Everything up to the last rewritten segment is the old layout. */
    size_t upto = 0;
    for (size_t k = 0; k < n; k++) {
        ssize_t i = segment_for_offset(p, bases[k]);
        if (i >= 0 && p->segs[i]->base_offset == bases[k] && (size_t)i + 1 < p->nsegs &&
            (size_t)i + 1 > upto)
            upto = (size_t)i + 1;
    }
    if (upto == 0 || (r = reserve_epoch(p))) {
        pthread_mutex_unlock(&p->lock);
        return r ? r : n ? -ENOENT : 0;
    }
    uint64_t frontier_pos = p->segs[upto]->view_start;
    struct old_layout old;
    old_layout_take(p, upto, &old);
    for (size_t k = 0; k < n; k++) {
        ssize_t i = segment_for_offset(p, bases[k]);
        if (i < 0 || p->segs[i]->base_offset != bases[k] || (size_t)i + 1 >= p->nsegs) {
            r = -ENOENT; /* only closed segments are ever rewritten */
            continue;
        }
        struct segment *prev = p->segs[i], *s = NULL;
        if (!deleted[k]) {
            int e = segment_open(p->dir, prev->base_offset, prev->base_pos, NULL, &s);
            if (e) {
                r = e;
                continue;
            }
            p->segs[i] = s;
        } else {
            memmove(&p->segs[i], &p->segs[i + 1], (p->nsegs - (size_t)i - 1) * sizeof(*p->segs));
            p->nsegs--;
        }
        removed += live_bytes(prev) - (s ? live_bytes(s) : 0);
        segment_release(prev);
    }
    bump_epoch(p, removed, frontier_pos, UINT64_MAX, &old);
    pthread_mutex_unlock(&p->lock);
    return r;
}
