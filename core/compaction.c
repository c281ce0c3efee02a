/* compaction.c - cleaning closed segments down to the latest record of each
 * key (compaction.h).
 *
 * A pass: (0) finish what an earlier failed pass left (a committed manifest
 * is rolled forward, uncommitted scratch removed); (1) map every key in the
 * closed segments wholly below the high watermark to its latest offset
 * (keys are identified by their XXH3-64 hash); (2) copy each of those
 * segments into cleaning/, keeping a record if it has no key, or if it is
 * the latest of its key and not an expired tombstone; kept records keep
 * their offset, timestamp, leader epoch and order, in batches of
 * consecutive offsets (so a follower copying the cleaned log, and the
 * leader-epoch cache rebuilt from it, see the epochs the records were
 * written in); every copy (log and indexes) is synced;
 * (3) sync cleaning/ and commit the manifest cleaning/COMMIT (written to
 * COMMIT.tmp, synced, renamed, directory synced); (4) move the files into
 * place, sync both directories, write the checkpoint, reload the segments
 * in memory, remove cleaning/. The cleaner checkpoint
 * ("cleaner-checkpoint": offset and oldest kept tombstone time) tells the
 * next pass how much is dirty.
 *
 * Failure invariants. Every rename is followed by an fsync of its directory
 * (of both, when it moves a file between two). A step that fails before
 * COMMIT has its name leaves the partition exactly as before the pass:
 * cleaning/ is removed, its known files by name (so it works when the pass
 * failed for want of a descriptor), and the pass returns the step's errno.
 * Once COMMIT has its name the pass only goes forward: a failing step leaves
 * COMMIT in place, readers keep the layout they had (the old files stay
 * open), and the next pass, retention, or the next mount finish the move
 * (apply_manifest is idempotent) before anything else. A pass holds no
 * descriptor or memory after it returns, whatever step failed. Times are
 * compared through satmath.h, so delete.retention.ms = INT64_MAX keeps a
 * tombstone forever. */
#include "compaction.h"

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

#include "fsutil.h"
#include "logger.h"
#include "satmath.h"
#include "store.h"

int compaction_crash_point;
void (*compaction_visit_hook)(struct partition *p);

/* ---- key map: open addressing, hash -> latest offset ---- */

struct key_map {
    uint64_t *hash; /* 0 = empty slot */
    uint64_t *offset;
    size_t cap, n;
};

static int map_init(struct key_map *m, size_t expected)
{
    m->cap = 1024;
    while (m->cap < expected * 2)
        m->cap *= 2;
    m->n = 0;
    m->hash = calloc(m->cap, sizeof(*m->hash));
    m->offset = calloc(m->cap, sizeof(*m->offset));
    return m->hash && m->offset ? 0 : -ENOMEM;
}

static void map_free(struct key_map *m)
{
    free(m->hash);
    free(m->offset);
}

static uint64_t key_hash(const uint8_t *key, size_t len)
{
    uint64_t h = XXH3_64bits(key, len);
    return h ? h : 1;
}

static uint64_t *map_slot(struct key_map *m, uint64_t h)
{
    size_t i = (size_t)h & (m->cap - 1);
    while (m->hash[i] && m->hash[i] != h)
        i = (i + 1) & (m->cap - 1);
    if (!m->hash[i]) {
        m->hash[i] = h;
        m->n++;
    }
    return &m->offset[i];
}

static int map_grow(struct key_map *m)
{
    struct key_map bigger;
    bigger.cap = m->cap * 2;
    bigger.n = 0;
    bigger.hash = calloc(bigger.cap, sizeof(*bigger.hash));
    bigger.offset = calloc(bigger.cap, sizeof(*bigger.offset));
    if (!bigger.hash || !bigger.offset) {
        map_free(&bigger);
        return -ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++)
        if (m->hash[i])
            *map_slot(&bigger, m->hash[i]) = m->offset[i];
    map_free(m);
    *m = bigger;
    return 0;
}

static uint64_t map_get(const struct key_map *m, uint64_t h)
{
    size_t i = (size_t)h & (m->cap - 1);
    while (m->hash[i]) {
        if (m->hash[i] == h)
            return m->offset[i];
        i = (i + 1) & (m->cap - 1);
    }
    return UINT64_MAX;
}

int compaction_is_tombstone(const struct record_view *r, size_t sep_len)
{
    if (r->key_len < 0)
        return 0;
    size_t rest = r->value_len - (size_t)r->key_len;
    if (rest < sep_len)
        return 0;
    rest -= sep_len;
    return rest == 0 || (rest == 1 && r->value[r->value_len - 1] == '\n');
}

/* ---- file steps: each one a fault point for the tests ---- */

int compaction_fault_at;
int compaction_fault_errno = EIO;
int compaction_fault_count;

static int fault(void)
{
    if (!compaction_fault_at || ++compaction_fault_count != compaction_fault_at)
        return 0;
    return -compaction_fault_errno;
}

static int fsync_dir(const char *dir)
{
    int r = fault();
    return r ? r : fsutil_sync_dir(dir);
}

static int fsync_fd(int fd)
{
    int r = fault();
    return r ? r : fsync(fd) < 0 ? -errno : 0;
}

/* A missing file counts as removed. */
static int unlink_file(const char *path)
{
    int r = fault();
    return r ? r : unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}

static int rename_file(const char *from, const char *to)
{
    int r = fault();
    return r ? r : rename(from, to) < 0 ? -errno : 0;
}

/* Writes dir/name through dir/name.tmp, synced, renamed over it and the
 * directory synced. *renamed tells whether the new content took the name
 * (then a later failure only leaves its durability unsure). */
static int write_file_atomic(const char *dir, const char *name, const char *text, size_t len,
                             int *renamed)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return fsutil_write_atomic(path, text, len, fault, renamed);
}

/* A tombstone goes once it is older than delete.retention.ms; the age
 * saturates, so with INT64_MAX it never does. */
static int tombstone_expired(int64_t ts, int64_t retention_ms, int64_t now)
{
    return sat_sub_i64(now, ts) > retention_ms;
}

/* ---- checkpoint ---- */

struct checkpoint {
    uint64_t offset;      /* closed segments below were cleaned */
    int64_t tombstone_ms; /* oldest tombstone kept by the last pass, or INT64_MAX */
};

static void read_checkpoint(const char *dir, struct checkpoint *c)
{
    char path[4096];
    c->offset = 0;
    c->tombstone_ms = INT64_MAX;
    snprintf(path, sizeof(path), "%s/cleaner-checkpoint", dir);
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    if (fscanf(f, "%" SCNu64 " %" SCNd64, &c->offset, &c->tombstone_ms) != 2) {
        c->offset = 0;
        c->tombstone_ms = INT64_MAX;
    }
    fclose(f);
}

static int write_checkpoint(const char *dir, uint64_t offset, int64_t tombstone_ms)
{
    char text[64];
    int renamed;
    int n = snprintf(text, sizeof(text), "%" PRIu64 " %" PRId64 "\n", offset, tombstone_ms);
    return write_file_atomic(dir, "cleaner-checkpoint", text, (size_t)n, &renamed);
}

/* ---- manifest ---- */

static const char *suffixes[] = {".log", ".index", ".timeindex"};

static void seg_file(char *buf, size_t cap, const char *dir, uint64_t base, const char *suffix)
{
    segment_path(buf, cap, dir, base, suffix);
}

void compaction_manifest_free(struct compaction_manifest *m)
{
    free(m->bases);
    free(m->deleted);
    memset(m, 0, sizeof(*m));
}

/* A decimal number of at most 19 digits (20 for unsigned), '-' if signed. */
static int parse_num(const char **s, const char *end, int is_signed, uint64_t *u, int64_t *i)
{
    const char *p = *s;
    int neg = is_signed && p < end && *p == '-';
    p += neg;
    uint64_t v = 0;
    const char *digits = p;
    for (; p < end && *p >= '0' && *p <= '9'; p++)
        if (__builtin_mul_overflow(v, 10, &v) ||
            __builtin_add_overflow(v, (uint64_t)(*p - '0'), &v))
            return -EBADMSG;
    if (p == digits)
        return -EBADMSG;
    if (is_signed) {
        if (v > (uint64_t)INT64_MAX + neg)
            return -EBADMSG;
        *i = neg ? (int64_t)(0 - v) : (int64_t)v;
    } else {
        *u = v;
    }
    *s = p;
    return 0;
}

int compaction_manifest_parse(const char *text, size_t len, struct compaction_manifest *m)
{
    const char *s = text, *end = text + len;
    size_t cap = 0;
    int have_checkpoint = 0;
    memset(m, 0, sizeof(*m));
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        uint64_t base;
        int del;
        if (!nl || have_checkpoint)
            goto bad;
        if ((size_t)(nl - s) > 11 && !memcmp(s, "checkpoint ", 11)) {
            s += 11;
            if (parse_num(&s, nl, 0, &m->checkpoint_offset, NULL) || s == nl || *s++ != ' ' ||
                parse_num(&s, nl, 1, NULL, &m->checkpoint_tombstone_ms) || s != nl)
                goto bad;
            have_checkpoint = 1;
            s = nl + 1;
            continue;
        }
        if ((size_t)(nl - s) > 8 && !memcmp(s, "replace ", 8)) {
            s += 8;
            del = 0;
        } else if ((size_t)(nl - s) > 7 && !memcmp(s, "delete ", 7)) {
            s += 7;
            del = 1;
        } else {
            goto bad;
        }
        if (parse_num(&s, nl, 0, &base, NULL) || s != nl || (m->n && base <= m->bases[m->n - 1]))
            goto bad;
        if (m->n == cap) {
            cap = cap ? cap * 2 : 64;
            uint64_t *b = realloc(m->bases, cap * sizeof(*b));
            if (b)
                m->bases = b;
            int *d = realloc(m->deleted, cap * sizeof(*d));
            if (d)
                m->deleted = d;
            if (!b || !d) {
                compaction_manifest_free(m);
                return -ENOMEM;
            }
        }
        m->bases[m->n] = base;
        m->deleted[m->n++] = del;
        s = nl + 1;
    }
    if (have_checkpoint)
        return 0;
bad:
    compaction_manifest_free(m);
    return -EBADMSG;
}

/* The manifest as text: one line a segment, the checkpoint last. */
static int format_manifest(const struct compaction_manifest *m, char **text, size_t *len)
{
    size_t cap = sat_add_u64(sat_mul_u64(m->n, 32), 64), n = 0;
    char *t = cap < SIZE_MAX ? malloc(cap) : NULL;
    if (!t)
        return -ENOMEM;
    for (size_t i = 0; i < m->n; i++)
        n += (size_t)snprintf(t + n, cap - n, "%s %" PRIu64 "\n",
                              m->deleted[i] ? "delete" : "replace", m->bases[i]);
    n += (size_t)snprintf(t + n, cap - n, "checkpoint %" PRIu64 " %" PRId64 "\n",
                          m->checkpoint_offset, m->checkpoint_tombstone_ms);
    *text = t;
    *len = n;
    return 0;
}

/* Reads cleaning/COMMIT: -ENOENT if there is none, or a damaged one. */
static int read_manifest(const char *pdir, struct compaction_manifest *m)
{
    char path[4200];
    struct stat st;
    snprintf(path, sizeof(path), "%s/cleaning/COMMIT", pdir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int r = 0;
    char *text = NULL;
    if (fstat(fd, &st) < 0)
        r = -errno;
    else if (st.st_size > (64 << 20))
        r = -EBADMSG;
    else if (!(text = malloc((size_t)st.st_size + 1)))
        r = -ENOMEM;
    size_t len = 0;
    while (!r && len < (size_t)st.st_size) {
        ssize_t n = read(fd, text + len, (size_t)st.st_size - len);
        if (n < 0 && errno != EINTR)
            r = -errno;
        else if (n == 0)
            break;
        else if (n > 0)
            len += (size_t)n;
    }
    close(fd);
    if (!r)
        r = compaction_manifest_parse(text, len, m);
    free(text);
    if (r == -EBADMSG) {
        /* Files move in offset order, so what is in place is the old log
         * with a prefix of its segments cleaned: a whole log. The rest of
         * the pass is dropped with cleaning/. */
        logger_log(LOG_LEVEL_ERROR,
                   "%s: damaged compaction manifest: the files it moved stay, the rest of its pass "
                   "is dropped",
                   path);
        r = -ENOENT;
    }
    return r;
}

/* Moves the committed files of the first `upto` segments into place and
 * removes those the pass emptied. The open partition p (NULL at recovery)
 * first gives each old file a private name (partition_retire_segment), so
 * that its segments keep reading the old bytes until they are reloaded and
 * the older layouts let go. Idempotent. */
static int move_files(const char *pdir, struct partition *p, const struct compaction_manifest *m,
                      size_t upto)
{
    char cdir[4096], from[4200], to[4200];
    int r;
    snprintf(cdir, sizeof(cdir), "%s/cleaning", pdir);
    for (size_t i = 0; i < upto; i++) {
        uint64_t base = m->bases[i];
        if (p && (r = partition_retire_segment(p, base)))
            return r;
        if (m->deleted[i]) {
            for (size_t k = 0; k < 3; k++) {
                seg_file(to, sizeof(to), pdir, base, suffixes[k]);
                if ((r = unlink_file(to)))
                    return r;
            }
            continue;
        }
        seg_file(from, sizeof(from), cdir, base, ".log");
        if (access(from, F_OK) == 0) {
            /* The old indexes go first: never a new log beside an old index. */
            for (size_t k = 1; k < 3; k++) {
                seg_file(to, sizeof(to), pdir, base, suffixes[k]);
                if ((r = unlink_file(to)))
                    return r;
            }
            seg_file(to, sizeof(to), pdir, base, ".log");
            if ((r = rename_file(from, to)))
                return r;
        } else if (errno != ENOENT) {
            return -errno;
        }
        for (size_t k = 1; k < 3; k++) {
            seg_file(from, sizeof(from), cdir, base, suffixes[k]);
            seg_file(to, sizeof(to), pdir, base, suffixes[k]);
            if ((r = rename_file(from, to)) && r != -ENOENT)
                return r;
        }
    }
    return 0;
}

/* Moves every committed file (move_files) and records the checkpoint; the
 * directories are synced before it returns. Idempotent: a step already done
 * is skipped, so it can be rerun after a crash or a failure at any step. */
static int apply_manifest(const char *pdir, struct partition *p,
                          const struct compaction_manifest *m)
{
    char cdir[4096];
    int r = move_files(pdir, p, m, m->n);
    if (r)
        return r;
    snprintf(cdir, sizeof(cdir), "%s/cleaning", pdir);
    /* Both ends of every rename are stable before the checkpoint says so. */
    if ((r = fsync_dir(pdir)) || (r = fsync_dir(cdir)))
        return r;
    return write_checkpoint(pdir, m->checkpoint_offset, m->checkpoint_tombstone_ms);
}

/* Removes cleaning/: COMMIT first (after it, the rest is scratch), then the
 * files of the given segments by name (needs no descriptor, so it works when
 * the pass failed for want of one), then anything else left by a crash. */
static int discard_cleaning(const char *pdir, const uint64_t *bases, size_t n)
{
    char cdir[4096], path[4400];
    int r;
    snprintf(cdir, sizeof(cdir), "%s/cleaning", pdir);
    snprintf(path, sizeof(path), "%s/COMMIT", cdir);
    if ((r = unlink_file(path)))
        return r;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < 3; k++) {
            seg_file(path, sizeof(path), cdir, bases[i], suffixes[k]);
            if ((r = unlink_file(path)))
                return r;
        }
    snprintf(path, sizeof(path), "%s/COMMIT.tmp", cdir);
    if ((r = unlink_file(path)))
        return r;
    if ((r = fault()))
        return r;
    if (rmdir(cdir) < 0) {
        if (errno == ENOENT)
            return 0;
        if (errno != ENOTEMPTY && errno != EEXIST)
            return -errno;
        DIR *d = opendir(cdir);
        if (!d)
            return -errno;
        struct dirent *de;
        while ((de = readdir(d)) && !r) {
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
                snprintf(path, sizeof(path), "%s/%s", cdir, de->d_name);
                r = unlink_file(path);
            }
        }
        closedir(d);
        if (r)
            return r;
        if (rmdir(cdir) < 0)
            return -errno;
    }
    /* Best effort: should the removal not last, the next pass or mount
     * removes the scratch again, and reapplies an old COMMIT harmlessly. */
    fsync_dir(pdir);
    return 0;
}

int compaction_recover(const char *pdir)
{
    struct compaction_manifest m;
    int r = read_manifest(pdir, &m);
    if (r == 0) {
        logger_log(LOG_LEVEL_INFO, "%s: finishing an interrupted compaction", pdir);
        r = apply_manifest(pdir, NULL, &m);
        compaction_manifest_free(&m);
    } else if (r == -ENOENT || r == -ENOTDIR) {
        r = 0;
    }
    return r ? r : discard_cleaning(pdir, NULL, 0);
}

/* Swaps the partition's segments named by m for the files now in their
 * place. Segments no longer in the partition are left out. */
static int reload_segments(struct partition *p, const struct compaction_manifest *m)
{
    uint64_t *bases = calloc(m->n + 1, sizeof(*bases));
    int *deleted = calloc(m->n + 1, sizeof(*deleted));
    size_t k = 0, j = 0;
    int r = -ENOMEM;
    if (bases && deleted) {
        pthread_mutex_lock(&p->lock);
        for (size_t i = 0; i < m->n; i++) {
            while (j + 1 < p->nsegs && p->segs[j]->base_offset < m->bases[i])
                j++;
            if (j + 1 < p->nsegs && p->segs[j]->base_offset == m->bases[i]) {
                bases[k] = m->bases[i];
                deleted[k++] = m->deleted[i];
            }
        }
        pthread_mutex_unlock(&p->lock);
        r = partition_reload_segments(p, bases, deleted, k);
    }
    free(bases);
    free(deleted);
    return r;
}

/* Rolls a committed manifest forward: files, then memory, then cleaning/.
 * *changed is set once the partition's layout may have changed. */
static int finish_manifest(struct partition *p, const struct compaction_manifest *m, int *changed)
{
    int r = apply_manifest(p->dir, p, m);
    if (r || (r = fault()))
        return r;
    pthread_mutex_lock(&p->lock);
    uint32_t epoch = p->epoch;
    pthread_mutex_unlock(&p->lock);
    r = reload_segments(p, m);
    pthread_mutex_lock(&p->lock);
    *changed |= p->epoch != epoch; /* a reload that failed may have swapped some */
    pthread_mutex_unlock(&p->lock);
    return r ? r : discard_cleaning(p->dir, NULL, 0);
}

/* Finishes what an earlier pass left in cleaning/ (see compaction_finish). */
static int finish_pending(struct partition *p, int *changed)
{
    struct compaction_manifest m;
    int r = read_manifest(p->dir, &m);
    if (r == -ENOENT || r == -ENOTDIR)
        return discard_cleaning(p->dir, NULL, 0);
    if (r)
        return r;
    logger_log(LOG_LEVEL_INFO, "%s: finishing an earlier compaction pass", p->dir);
    r = finish_manifest(p, &m, changed);
    compaction_manifest_free(&m);
    return r;
}

int compaction_finish(struct partition *p)
{
    int changed = 0;
    int r = finish_pending(p, &changed);
    if (r && changed)
        logger_log(LOG_LEVEL_ERROR, "%s: finishing a compaction pass: %s (retried next pass)",
                   p->dir, strerror(-r));
    return changed ? 1 : r;
}

/* ---- the pass ---- */

struct pass {
    const struct compaction_rules *rules;
    int64_t now;
    struct key_map map;
    int err;
    /* copying */
    struct segment *out;
    struct batch_builder b;
    uint64_t run_next; /* offset the open batch expects next */
    int64_t run_ts;
    uint32_t run_epoch; /* leader epoch of the open batch's records */
    enum batch_codec codec;
    int64_t oldest_tombstone;
    uint64_t kept, seen;
    uint64_t limit; /* visit records below this offset only */
    /* values of the open batch, copied: the fetch buffer moves on */
    uint8_t *vals;
    size_t vals_len, vals_cap;
};

static int note_key(const struct record_view *r, void *arg)
{
    struct pass *ps = arg;
    if (r->offset >= ps->limit)
        return 1;
    if (r->key_len < 0)
        return 0;
    if (ps->map.n * 2 >= ps->map.cap && (ps->err = map_grow(&ps->map)))
        return 1;
    *map_slot(&ps->map, key_hash(r->value, (size_t)r->key_len)) = r->offset;
    return 0;
}

static int flush_run(struct pass *ps)
{
    if (ps->b.record_count == 0)
        return 0;
    const struct iovec *iov;
    int iovcnt;
    size_t len;
    uint64_t base = ps->run_next - ps->b.record_count;
    batch_builder_add_values(&ps->b, ps->vals, ps->vals_len);
    int r = batch_builder_seal(&ps->b, ps->codec, base, ps->out->end_pos, ps->run_ts, ps->run_epoch,
                               &iov, &iovcnt, &len);
    if (!r && !(r = fault())) {
        struct batch_header h;
        batch_header_decode(iov[0].iov_base, &h);
        r = segment_append(ps->out, iov, iovcnt, &h);
    }
    batch_builder_reset(&ps->b);
    ps->vals_len = 0;
    return r;
}

static int copy_record(const struct record_view *r, void *arg)
{
    struct pass *ps = arg;
    int keep = 1;
    if (r->offset >= ps->limit)
        return 1;
    ps->seen++;
    if (r->key_len >= 0) {
        uint64_t latest = map_get(&ps->map, key_hash(r->value, (size_t)r->key_len));
        keep = latest == r->offset;
        if (keep && compaction_is_tombstone(r, ps->rules->key_sep_len)) {
            if (tombstone_expired(r->timestamp, ps->rules->delete_retention_ms, ps->now))
                keep = 0;
            else if (r->timestamp < ps->oldest_tombstone)
                ps->oldest_tombstone = r->timestamp;
        }
    }
    if (!keep)
        return 0;
    if (ps->b.record_count && (r->offset != ps->run_next || r->timestamp != ps->run_ts ||
                               r->leader_epoch != ps->run_epoch || ps->vals_len > (1u << 20))) {
        if ((ps->err = flush_run(ps)))
            return 1;
    }
    size_t need = sat_add_u64(ps->vals_len, r->value_len);
    if (need > ps->vals_cap) {
        size_t cap = ps->vals_cap ? ps->vals_cap : 65536;
        while (cap < need)
            cap = sat_mul_u64(cap, 2);
        uint8_t *n = cap < SIZE_MAX ? realloc(ps->vals, cap) : NULL;
        if (!n) {
            ps->err = -ENOMEM;
            return 1;
        }
        ps->vals = n;
        ps->vals_cap = cap;
    }
    memcpy(ps->vals + ps->vals_len, r->value, r->value_len);
    ps->vals_len += r->value_len;
    if ((ps->err = batch_builder_add_record(&ps->b, r->value_len, r->key_len)))
        return 1;
    ps->run_next = r->offset + 1;
    ps->run_ts = r->timestamp;
    ps->run_epoch = r->leader_epoch;
    ps->kept++;
    return 0;
}

/* Visits the records of closed segments [first, last] by offset. */
static int visit(struct partition *p, uint64_t from, uint64_t to,
                 int (*fn)(const struct record_view *, void *), struct pass *ps)
{
    struct partition_cursor c;
    partition_cursor_init(&c);
    uint64_t at = from;
    int r = 0;
    ps->limit = to;
    while (at < to && !r && !ps->err) {
        uint64_t next;
        if (compaction_visit_hook)
            compaction_visit_hook(p);
        if (atomic_load(&p->maintenance_wanted)) {
            r = -EINTR; /* a truncation waits: before the commit point, give up */
            break;
        }
        r = partition_fetch_below(p, &c, at, to, to - at < 65536 ? to - at : 65536, fn, ps, &next);
        if (next <= at)
            break;
        at = next;
    }
    partition_cursor_free(&c);
    return r ? r : ps->err;
}

int compaction_run(struct partition *p, const struct compaction_rules *rules, int64_t now_ms,
                   struct compaction_result *res)
{
    char cdir[4096];
    struct checkpoint cp;
    struct pass ps;
    struct compaction_manifest m = {0};
    int r = 0;
    size_t n = 0, created = 0;
    uint64_t *nexts = NULL, *sizes = NULL;
    int changed = 0, committed = 0;
    char *text = NULL;

    memset(res, 0, sizeof(*res));
    memset(&ps, 0, sizeof(ps));
    batch_builder_init(&ps.b);
    pthread_mutex_lock(&p->maintenance);
    if (p->deleted) /* its topic went: its files go with the last reader */
        goto out;
    /* A pass that failed after its commit is finished first (and is this
     * pass's work); one that failed before it left nothing, or (after a
     * crash) scratch that goes now. */
    if ((r = finish_pending(p, &changed)) || changed) {
        committed = 1; /* whatever is in cleaning/ stays for the next try */
        goto out;
    }
    read_checkpoint(p->dir, &cp);

    /* Snapshot the closed segments wholly below the high watermark (Kafka
     * cleans nothing a follower may still truncate): only this pass changes
     * them. */
    pthread_mutex_lock(&p->lock);
    n = p->nsegs - 1;
    while (n && p->segs[n - 1]->next_offset > p->hw)
        n--;
    m.bases = calloc(n + 1, sizeof(*m.bases));
    m.deleted = calloc(n + 1, sizeof(*m.deleted));
    nexts = calloc(n + 1, sizeof(*nexts));
    sizes = calloc(n + 1, sizeof(*sizes));
    uint64_t dirty = 0, total = 0, records = 0;
    for (size_t i = 0; m.bases && nexts && sizes && i < n; i++) {
        struct segment *s = p->segs[i];
        m.bases[i] = s->base_offset;
        nexts[i] = s->next_offset;
        sizes[i] = s->size;
        total = sat_add_u64(total, s->size);
        if (s->next_offset > cp.offset)
            dirty = sat_add_u64(dirty, s->size);
        records = sat_add_u64(records, s->next_offset - s->base_offset);
    }
    enum batch_codec codec = p->settings.codec;
    pthread_mutex_unlock(&p->lock);
    if (!m.bases || !m.deleted || !nexts || !sizes) {
        r = -ENOMEM;
        goto out;
    }
    int tombstones_due = cp.tombstone_ms != INT64_MAX &&
                         tombstone_expired(cp.tombstone_ms, rules->delete_retention_ms, now_ms);
    if (n == 0 || total == 0 ||
        (!tombstones_due && (dirty == 0 || (double)dirty / (double)total < rules->min_dirty_ratio)))
        goto out;

    ps.rules = rules;
    ps.now = now_ms;
    ps.codec = codec;
    ps.oldest_tombstone = INT64_MAX;
    /* Offsets may have gaps: the map starts at most this big and grows. */
    if ((r = map_init(&ps.map, records < (1u << 20) ? (size_t)records : (1u << 20))))
        goto out;
    uint64_t end = nexts[n - 1];
    if ((r = visit(p, m.bases[0], end, note_key, &ps)))
        goto out;

    snprintf(cdir, sizeof(cdir), "%s/cleaning", p->dir);
    if ((r = fault()) || (mkdir(cdir, 0755) < 0 && (r = -errno)))
        goto out;
    /* cleaning/ itself must be stable before COMMIT inside it can count. */
    if ((r = fsync_dir(p->dir)))
        goto out;
    for (size_t i = 0; i < n; i++) {
        struct segment *orig;
        pthread_mutex_lock(&p->lock);
        orig = p->segs[i];
        uint64_t base_pos = orig->base_pos;
        int64_t created_ms = orig->created_ms;
        pthread_mutex_unlock(&p->lock);
        created = i + 1;
        if ((r = fault()) || (r = segment_create(cdir, m.bases[i], base_pos, created_ms, &ps.out)))
            goto out;
        uint64_t kept_before = ps.kept;
        r = visit(p, m.bases[i], nexts[i], copy_record, &ps);
        if (!r)
            r = flush_run(&ps);
        /* The cleaned copy is stable before the manifest can name it. */
        if (!r && !(r = fault()))
            r = segment_sync(ps.out);
        if (!r && !(r = fsync_fd(ps.out->oix.fd)))
            r = fsync_fd(ps.out->tix.fd);
        if (r)
            goto out;
        res->bytes_before += sizes[i];
        res->bytes_after += ps.out->size;
        m.deleted[i] = ps.kept == kept_before;
        /* An emptied copy is scratch: if its unlink fails, the pass's
         * removal of cleaning/ takes it. */
        if (m.deleted[i])
            segment_delete(ps.out);
        else
            segment_close(ps.out);
        ps.out = NULL;
    }
    m.n = n;
    res->records_before = ps.seen;
    res->records_after = ps.kept;
    m.checkpoint_offset = nexts[n - 1];
    m.checkpoint_tombstone_ms = ps.oldest_tombstone;
    if (res->records_after == res->records_before) {
        /* Nothing to remove: keep the files, remember the work. */
        if (!(r = discard_cleaning(p->dir, m.bases, created)))
            r = write_checkpoint(p->dir, m.checkpoint_offset, m.checkpoint_tombstone_ms);
        goto out;
    }
    size_t tlen;
    if ((r = format_manifest(&m, &text, &tlen)) || (r = fsync_dir(cdir)))
        goto out;
    if (compaction_crash_point == 1) {
        r = -ECANCELED;
        goto out;
    }
    /* The commit point: once COMMIT has its name, the pass only goes forward. */
    r = write_file_atomic(cdir, "COMMIT", text, tlen, &committed);
    if (r)
        goto out;
    if (compaction_crash_point == 2) {
        r = -ECANCELED;
        goto out;
    }
    if (compaction_crash_point == 3) {
        /* Move the first half of the files, as a crash in apply_manifest would. */
        move_files(p->dir, p, &m, (n + 1) / 2);
        r = -ECANCELED;
        goto out;
    }
    if ((r = finish_manifest(p, &m, &changed)))
        goto out;
    for (size_t i = 0; i < n; i++) {
        res->segments_rewritten += !m.deleted[i];
        res->segments_deleted += m.deleted[i];
    }
    logger_log(
        LOG_LEVEL_INFO,
        "%s: compacted %" PRIu64 " records into %" PRIu64 " (%" PRIu64 " -> %" PRIu64 " bytes)",
        p->dir, res->records_before, res->records_after, res->bytes_before, res->bytes_after);
out:
    if (ps.out)
        segment_close(ps.out);
    if (r && r != -ECANCELED) {
        if (!committed) {
            /* Before the commit point: as if the pass had not run. */
            int e = discard_cleaning(p->dir, m.bases, created);
            if (e)
                logger_log(LOG_LEVEL_ERROR, "%s: removing cleaning/: %s (retried next pass)",
                           p->dir, strerror(-e));
        } else {
            logger_log(LOG_LEVEL_ERROR,
                       "%s: compaction stopped after its commit: %s (finished by the next pass "
                       "or mount)",
                       p->dir, strerror(-r));
        }
        if (changed) {
            /* The layout did change: report that, the error is logged. */
            logger_log(LOG_LEVEL_ERROR, "%s: compaction failed: %s", p->dir, strerror(-r));
            r = 0;
        }
    }
    batch_builder_free(&ps.b);
    map_free(&ps.map);
    free(ps.vals);
    free(text);
    compaction_manifest_free(&m);
    free(nexts);
    free(sizes);
    pthread_mutex_unlock(&p->maintenance);
    return r ? r : changed;
}
