/* partition_open.c - opening and closing a partition log: recovery
 * (partition.h).
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
 * Index files without their .log (a removal that failed or crashed between
 * the files) go at open.
 *
 * The recovery point lives in "recovery-point": five little-endian u64
 * (segment base, file position, next offset, end position, XXH3 of the
 * first four), rewritten in place and fdatasync'd. A torn or missing file
 * means: every closed segment counts as synced, the active one is verified
 * whole and cut at its first bad batch. An empty first segment takes its
 * stream position from the recovery point when it names it. */
#include "partition_impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "clock.h"
#include "compaction.h"
#include "fsutil.h"
#include "logger.h"

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
int recovery_point_write(const char *dir, const struct recovery_point *rp)
{
    char path[4096];
    uint64_t v[5] = {rp->seg_base, rp->file_pos, rp->next_offset, rp->end_pos, 0};
    v[4] = XXH3_64bits(v, 4 * sizeof(uint64_t));
    snprintf(path, sizeof(path), "%s/recovery-point", dir);
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
    if (created && (e = fsutil_sync_dir(dir)))
        return e;
    return 0;
}

int write_recovery_point(struct partition *p, const struct recovery_point *rp)
{
    int r = recovery_point_write(p->dir, rp);
    if (!r)
        p->recovery_offset = rp->next_offset;
    return r;
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

/* The base offset of a segment file name "<20 digits><suffix>", if it is
 * one. A base at or above BATCH_END_MAX is no segment topicfs wrote (offsets
 * stay below 2^63): such a file is left alone, as other strangers are. */
static int segment_file_base(const char *name, const char *suffix, uint64_t *base)
{
    size_t len = strlen(name);
    if (len != 20 + strlen(suffix) || strcmp(name + 20, suffix) || strspn(name, "0123456789") != 20)
        return 0;
    errno = 0;
    *base = strtoull(name, NULL, 10);
    return errno == 0 && *base < BATCH_END_MAX;
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
    for (size_t i = from; i < n; i++) {
        logger_log(LOG_LEVEL_WARN, "%s: removing segment %" PRIu64 " after a cut log", dir,
                   bases[i]);
        segment_remove_files(dir, bases[i]);
    }
}

static int dir_has(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

int note_compacted(struct partition *p, int compacted)
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

/* ---- reset (partition_reset) ---- */

/* "log-reset": start offset, start position, XXH3 of both (little-endian
 * u64), written atomically: the reset's commit point. */
#define RESET_FILE "log-reset"

int reset_commit(const char *dir, uint64_t start_offset, uint64_t start_pos)
{
    char path[4200];
    uint64_t v[3] = {start_offset, start_pos, 0};
    v[2] = XXH3_64bits(v, 2 * sizeof(uint64_t));
    snprintf(path, sizeof(path), "%s/" RESET_FILE, dir);
    return fsutil_write_atomic(path, v, sizeof(v), NULL, NULL);
}

/* The reset a crash interrupted: 0 with its offsets, -ENOENT, or -EBADMSG. */
static int reset_read(const char *dir, uint64_t *start_offset, uint64_t *start_pos)
{
    char path[4200];
    uint64_t v[3];
    snprintf(path, sizeof(path), "%s/" RESET_FILE ".tmp", dir);
    unlink(path); /* a commit that never renamed: nothing happened */
    snprintf(path, sizeof(path), "%s/" RESET_FILE, dir);
    int fd = segment_open_fd(path, O_RDONLY);
    if (fd < 0)
        return fd;
    ssize_t n = pread(fd, v, sizeof(v), 0);
    char extra;
    ssize_t more = n == (ssize_t)sizeof(v) ? pread(fd, &extra, 1, (off_t)sizeof(v)) : 0;
    close(fd);
    if (n != (ssize_t)sizeof(v) || more != 0 || XXH3_64bits(v, 2 * sizeof(uint64_t)) != v[2] ||
        v[0] > BATCH_END_MAX || v[1] > BATCH_END_MAX)
        return -EBADMSG;
    *start_offset = v[0];
    *start_pos = v[1];
    return 0;
}

/* A file of the old log: a segment file, a retired one, or compaction's,
 * the epochs' and the high watermark's bookkeeping. */
static int old_log_file(const char *name)
{
    uint64_t base;
    return segment_file_base(name, ".log", &base) || segment_file_base(name, ".index", &base) ||
           segment_file_base(name, ".timeindex", &base) || is_retired_file(name) ||
           !strcmp(name, "cleaner-checkpoint") || !strcmp(name, LEADER_EPOCH_FILE) ||
           !strcmp(name, HW_CHECKPOINT_FILE);
}

static int unlink_entry(const char *dir, const char *name)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}

int reset_finish(const char *dir, uint64_t start_offset, uint64_t start_pos, struct segment **out)
{
    char path[4200];
    struct segment *s;
    int r = 0;
    if (partition_reset_crash_point == 1)
        return -ECANCELED;
    /* Everything of the old log goes (idempotent: a crash may have taken
     * some already), compaction's scratch with it. */
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    struct dirent *de;
    while (!r && (de = readdir(d)))
        if (old_log_file(de->d_name))
            r = unlink_entry(dir, de->d_name);
    closedir(d);
    snprintf(path, sizeof(path), "%s/cleaning", dir);
    if (r || (r = fsutil_remove_tree(path)))
        return r;
    if (partition_reset_crash_point == 2)
        return -ECANCELED;
    /* The new log: one empty segment; its stream position lives in the
     * recovery point (an empty first segment takes it from there). */
    if ((r = segment_create(dir, start_offset, start_pos, clock_now_ms(), &s)))
        return r;
    if (partition_reset_crash_point == 3) {
        segment_close(s);
        return -ECANCELED;
    }
    struct recovery_point rp = {start_offset, 0, start_offset, start_pos};
    if ((r = recovery_point_write(dir, &rp)) || (r = fsutil_sync_dir(dir)) ||
        (r = unlink_entry(dir, RESET_FILE)) || (r = fsutil_sync_dir(dir))) {
        segment_close(s);
        return r;
    }
    if (out)
        *out = s;
    else
        segment_close(s);
    return 0;
}

/* Finishes the reset a crash (or a failed step) left in dir, if any. */
static int reset_recover(const char *dir)
{
    uint64_t start_offset, start_pos;
    int r = reset_read(dir, &start_offset, &start_pos);
    if (r == -ENOENT)
        return 0;
    if (r == -EBADMSG) {
        /* Written whole by a rename, so never torn: damaged since. */
        logger_log(LOG_LEVEL_ERROR, "%s: %s is damaged; removed, the log is kept as it is", dir,
                   RESET_FILE);
        return unlink_entry(dir, RESET_FILE);
    }
    if (r)
        return r;
    logger_log(LOG_LEVEL_WARN, "%s: finishing a reset to offset %llu", dir,
               (unsigned long long)start_offset);
    return reset_finish(dir, start_offset, start_pos, NULL);
}

/* ---- leader epochs at open ---- */

/* The cache from the batch headers (the checkpoint was damaged): every
 * batch's epoch, verified first. */
static int epochs_rebuild(struct partition *p)
{
    struct leader_epoch_cache c;
    leader_epoch_init(&c);
    int r = 0;
    for (size_t i = 0; i < p->nsegs && r >= 0; i++) {
        struct segment *s = p->segs[i];
        if ((r = segment_verify(s)) < 0)
            break;
        for (uint64_t fp = 0; fp < s->size && r >= 0;) {
            const struct bad_range *bad = segment_bad_at(s, SEG_BY_FILE, fp);
            struct batch_header h;
            if (bad) {
                fp = bad->file_end > fp ? bad->file_end : fp + 1;
                continue;
            }
            if ((r = segment_read_header(s, fp, &h)) < 0)
                break;
            if ((r = leader_epoch_assign(&c, h.leader_epoch, h.base_offset)) == -EINVAL)
                r = 0; /* an epoch no leader gave: not recorded */
            fp += h.length;
        }
    }
    if (r < 0) {
        leader_epoch_free(&c);
        return r;
    }
    leader_epoch_free(&p->leader_epochs);
    p->leader_epochs = c;
    return 0;
}

/* Loads the leader-epoch cache and makes it agree with the log. */
static int epochs_open(struct partition *p)
{
    int rewrite = 0;
    int r = leader_epoch_load(p->dir, &p->leader_epochs);
    if (r == -ENOMEM)
        return r;
    if (r && r != -ENOENT) {
        logger_log(LOG_LEVEL_WARN, "%s: %s: %s; rebuilt from the batches", p->dir,
                   LEADER_EPOCH_FILE, strerror(-r));
        if ((r = epochs_rebuild(p)))
            return r;
        rewrite = 1;
    }
    /* Entries past the log end: the checkpoint was written, the log then
     * lost what it named (a crash before it was synced, an append undone). */
    if (leader_epoch_truncate_from_end(&p->leader_epochs, active(p)->next_offset + 1))
        rewrite = 1;
    /* Below the log start only the entry that covers it counts; written
     * with the next change. */
    leader_epoch_truncate_from_start(&p->leader_epochs, p->segs[0]->base_offset);
    uint32_t e;
    p->leader_epoch = leader_epoch_latest(&p->leader_epochs, &e) ? 0 : e;
    if (rewrite && (r = leader_epoch_store(p->dir, &p->leader_epochs)))
        logger_log(LOG_LEVEL_WARN, "%s: cannot rewrite %s: %s (kept in memory)", p->dir,
                   LEADER_EPOCH_FILE, strerror(-r));
    return 0;
}

/* Damage holds the offsets and stream positions it claims, and one that
 * claims none holds the one it starts at (bad_range_end): a record appended
 * there would be refused with the damage. So when damage reaches past the
 * log's last record, appends start after it, in a segment of their own (a
 * gap between segments, as the damage left). Caller: partition_open. */
static int roll_past_damage(struct partition *p)
{
    struct segment *a = active(p);
    uint64_t off = a->next_offset, pos = a->end_pos;
    for (size_t i = 0; i < p->nsegs; i++)
        for (size_t k = 0; k < p->segs[i]->nbad; k++) {
            const struct bad_range *b = &p->segs[i]->bad[k];
            if (b->offset_end != BAD_OPEN && bad_range_end(b->offset, b->offset_end) > off)
                off = bad_range_end(b->offset, b->offset_end);
            if (b->pos_end != BAD_OPEN && bad_range_end(b->pos, b->pos_end) > pos)
                pos = bad_range_end(b->pos, b->pos_end);
        }
    if (off == a->next_offset && pos == a->end_pos)
        return 0;
    struct segment *s;
    int r = segment_create(p->dir, off, pos, clock_now_ms(), &s);
    if (r)
        return r;
    if ((r = push_segment(p, s))) {
        segment_delete(s);
        return r;
    }
    logger_log(LOG_LEVEL_WARN,
               "%s: damage reaches past the last record: appends start at offset %" PRIu64, p->dir,
               off);
    relayout(p);
    return fsutil_sync_dir(p->dir);
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
    pthread_cond_init(&p->acks_cond, NULL);
    leader_epoch_init(&p->leader_epochs);
    p->hw_follows_end = 1;
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
    if ((r = reset_recover(dir)))
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
    if ((r = roll_past_damage(p)))
        goto fail;
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
    if ((r = epochs_open(p)))
        goto fail;
    p->hw = a->next_offset;
    p->hw_pos = a->end_pos;
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
    leader_epoch_free(&p->leader_epochs);
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->maintenance);
    pthread_cond_destroy(&p->acks_cond);
    free(p);
}
