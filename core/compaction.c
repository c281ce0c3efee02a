/* compaction.c - cleaning closed segments down to the latest record of each
 * key (compaction.h).
 *
 * A pass: (1) map every key in the closed segments to its latest offset
 * (keys are identified by their XXH3-64 hash); (2) copy each closed segment
 * into cleaning/, keeping a record if it has no key, or if it is the latest of
 * its key and not an expired tombstone; kept records keep their offset,
 * timestamp and order, in batches of consecutive offsets; (3) commit the
 * manifest; (4) move the files into place and reload them. The cleaner
 * checkpoint ("cleaner-checkpoint": offset and oldest kept tombstone time)
 * tells the next pass how much is dirty. */
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

#include "logger.h"
#include "store.h"

int compaction_crash_point;

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

static int write_file_atomic(const char *path, const char *text, size_t len)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    if (write(fd, text, len) != (ssize_t)len || fsync(fd) < 0) {
        int e = errno ? errno : EIO;
        close(fd);
        unlink(tmp);
        return -e;
    }
    close(fd);
    return rename(tmp, path) < 0 ? -errno : 0;
}

static int write_checkpoint(const char *dir, const struct checkpoint *c)
{
    char path[4096], text[64];
    snprintf(path, sizeof(path), "%s/cleaner-checkpoint", dir);
    int n = snprintf(text, sizeof(text), "%" PRIu64 " %" PRId64 "\n", c->offset, c->tombstone_ms);
    return write_file_atomic(path, text, (size_t)n);
}

/* ---- manifest ---- */

static const char *suffixes[] = {".log", ".index", ".timeindex"};

static void seg_file(char *buf, size_t cap, const char *dir, uint64_t base, const char *suffix)
{
    segment_path(buf, cap, dir, base, suffix);
}

/* Applies cleaning/COMMIT: idempotent, so it can be rerun after a crash. */
static int apply_manifest(const char *pdir)
{
    char cdir[4096], path[4200], from[4200], to[4200];
    snprintf(cdir, sizeof(cdir), "%s/cleaning", pdir);
    snprintf(path, sizeof(path), "%s/COMMIT", cdir);
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    char op[16];
    uint64_t base;
    int r = 0;
    while (fscanf(f, "%15s %" SCNu64, op, &base) == 2) {
        if (!strcmp(op, "checkpoint")) {
            struct checkpoint cp = {.offset = base, .tombstone_ms = INT64_MAX};
            if (fscanf(f, "%" SCNd64, &cp.tombstone_ms) != 1 || (r = write_checkpoint(pdir, &cp)))
                r = r ? r : -EBADMSG;
            continue;
        }
        if (!strcmp(op, "delete")) {
            for (size_t k = 0; k < 3; k++) {
                seg_file(to, sizeof(to), pdir, base, suffixes[k]);
                if (unlink(to) < 0 && errno != ENOENT)
                    r = -errno;
            }
            continue;
        }
        seg_file(from, sizeof(from), cdir, base, ".log");
        if (access(from, F_OK) == 0) {
            /* The old indexes go first: never a new log beside an old index. */
            for (size_t k = 1; k < 3; k++) {
                seg_file(to, sizeof(to), pdir, base, suffixes[k]);
                unlink(to);
            }
            seg_file(to, sizeof(to), pdir, base, ".log");
            if (rename(from, to) < 0)
                r = -errno;
        }
        for (size_t k = 1; k < 3; k++) {
            seg_file(from, sizeof(from), cdir, base, suffixes[k]);
            seg_file(to, sizeof(to), pdir, base, suffixes[k]);
            if (rename(from, to) < 0 && errno != ENOENT)
                r = -errno;
        }
    }
    fclose(f);
    return r;
}

static void remove_cleaning(const char *pdir)
{
    char cdir[4096], path[4400];
    snprintf(cdir, sizeof(cdir), "%s/cleaning", pdir);
    DIR *d = opendir(cdir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", cdir, de->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(cdir);
}

int compaction_recover(const char *pdir)
{
    char commit[4200];
    snprintf(commit, sizeof(commit), "%s/cleaning/COMMIT", pdir);
    if (access(commit, F_OK) == 0) {
        logger_log(LOG_LEVEL_INFO, "%s: finishing an interrupted compaction", pdir);
        int r = apply_manifest(pdir);
        if (r)
            return r;
    }
    remove_cleaning(pdir);
    return 0;
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
    int r = batch_builder_seal(&ps->b, ps->codec, base, ps->out->end_pos, ps->run_ts, 0, &iov,
                               &iovcnt, &len);
    if (!r) {
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
            if (r->timestamp + ps->rules->delete_retention_ms <= ps->now)
                keep = 0;
            else if (r->timestamp < ps->oldest_tombstone)
                ps->oldest_tombstone = r->timestamp;
        }
    }
    if (!keep)
        return 0;
    if (ps->b.record_count &&
        (r->offset != ps->run_next || r->timestamp != ps->run_ts || ps->vals_len > (1u << 20))) {
        if ((ps->err = flush_run(ps)))
            return 1;
    }
    if (ps->vals_len + r->value_len > ps->vals_cap) {
        size_t cap = ps->vals_cap ? ps->vals_cap : 65536;
        while (cap < ps->vals_len + r->value_len)
            cap *= 2;
        uint8_t *n = realloc(ps->vals, cap);
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
        r = partition_fetch(p, &c, at, to - at < 65536 ? to - at : 65536, fn, ps, &next);
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
    int r = 0;
    size_t n = 0;
    uint64_t *bases = NULL, *nexts = NULL, *sizes = NULL;
    int *deleted = NULL;
    int changed = 0;

    memset(res, 0, sizeof(*res));
    memset(&ps, 0, sizeof(ps));
    pthread_mutex_lock(&p->maintenance);
    read_checkpoint(p->dir, &cp);

    /* Snapshot the closed segments: only this pass changes them. */
    pthread_mutex_lock(&p->lock);
    n = p->nsegs - 1;
    bases = calloc(n + 1, sizeof(*bases));
    nexts = calloc(n + 1, sizeof(*nexts));
    sizes = calloc(n + 1, sizeof(*sizes));
    deleted = calloc(n + 1, sizeof(*deleted));
    uint64_t dirty = 0, total = 0, records = 0;
    for (size_t i = 0; bases && nexts && sizes && i < n; i++) {
        struct segment *s = p->segs[i];
        bases[i] = s->base_offset;
        nexts[i] = s->next_offset;
        sizes[i] = s->size;
        total += s->size;
        if (s->next_offset > cp.offset)
            dirty += s->size;
        records += s->next_offset - s->base_offset;
    }
    enum batch_codec codec = p->settings.codec;
    pthread_mutex_unlock(&p->lock);
    if (!bases || !nexts || !sizes || !deleted) {
        r = -ENOMEM;
        goto out;
    }
    int tombstones_due =
        cp.tombstone_ms != INT64_MAX && cp.tombstone_ms + rules->delete_retention_ms <= now_ms;
    if (n == 0 || total == 0 ||
        (!tombstones_due && (dirty == 0 || (double)dirty / (double)total < rules->min_dirty_ratio)))
        goto out;

    ps.rules = rules;
    ps.now = now_ms;
    ps.codec = codec;
    ps.oldest_tombstone = INT64_MAX;
    batch_builder_init(&ps.b);
    if ((r = map_init(&ps.map, records < 1024 ? 1024 : (size_t)records)))
        goto out;
    uint64_t end = nexts[n - 1];
    if ((r = visit(p, bases[0], end, note_key, &ps)))
        goto out;

    snprintf(cdir, sizeof(cdir), "%s/cleaning", p->dir);
    remove_cleaning(p->dir);
    if (mkdir(cdir, 0755) < 0) {
        r = -errno;
        goto out;
    }
    char manifest[65536];
    size_t mlen = 0;
    for (size_t i = 0; i < n; i++) {
        struct segment *orig;
        pthread_mutex_lock(&p->lock);
        orig = p->segs[i];
        uint64_t base_pos = orig->base_pos;
        int64_t created = orig->created_ms;
        pthread_mutex_unlock(&p->lock);
        if ((r = segment_create(cdir, bases[i], base_pos, created, &ps.out)))
            goto out;
        uint64_t kept_before = ps.kept;
        r = visit(p, bases[i], nexts[i], copy_record, &ps);
        if (!r)
            r = flush_run(&ps);
        if (!r)
            r = segment_sync(ps.out);
        if (!r) {
            if (fsync(ps.out->oix.fd) < 0 || fsync(ps.out->tix.fd) < 0)
                r = -errno;
        }
        uint64_t out_size = ps.out->size;
        res->bytes_before += sizes[i];
        res->bytes_after += out_size;
        if (r) {
            segment_close(ps.out);
            ps.out = NULL;
            goto out;
        }
        deleted[i] = ps.kept == kept_before;
        if (deleted[i])
            segment_delete(ps.out);
        else
            segment_close(ps.out);
        ps.out = NULL;
        mlen += (size_t)snprintf(manifest + mlen, sizeof(manifest) - mlen, "%s %" PRIu64 "\n",
                                 deleted[i] ? "delete" : "replace", bases[i]);
        if (mlen + 128 > sizeof(manifest)) {
            n = i + 1; /* the rest waits for the next pass */
            break;
        }
    }
    res->records_before = ps.seen;
    res->records_after = ps.kept;
    cp.offset = nexts[n - 1];
    cp.tombstone_ms = ps.oldest_tombstone;
    if (res->records_after == res->records_before) {
        /* Nothing to remove: keep the files, remember the work. */
        remove_cleaning(p->dir);
        r = write_checkpoint(p->dir, &cp);
        goto out;
    }
    mlen += (size_t)snprintf(manifest + mlen, sizeof(manifest) - mlen,
                             "checkpoint %" PRIu64 " %" PRId64 "\n", cp.offset, cp.tombstone_ms);
    if (compaction_crash_point == 1) {
        r = -ECANCELED;
        goto out;
    }
    char commit[4200];
    snprintf(commit, sizeof(commit), "%s/COMMIT", cdir);
    if ((r = write_file_atomic(commit, manifest, mlen)))
        goto out;
    int dfd = open(cdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    if (compaction_crash_point == 2) {
        r = -ECANCELED;
        goto out;
    }
    if (compaction_crash_point == 3) {
        /* Move the first half of the files, as a crash in apply_manifest would. */
        char from[4200], to[4200];
        for (size_t i = 0; i < (n + 1) / 2; i++)
            if (!deleted[i]) {
                seg_file(from, sizeof(from), cdir, bases[i], ".log");
                seg_file(to, sizeof(to), p->dir, bases[i], ".log");
                for (size_t k = 1; k < 3; k++) {
                    char ix[4200];
                    seg_file(ix, sizeof(ix), p->dir, bases[i], suffixes[k]);
                    unlink(ix);
                }
                rename(from, to);
            }
        r = -ECANCELED;
        goto out;
    }
    if ((r = apply_manifest(p->dir)))
        goto out;
    changed = 1;
    if ((r = partition_reload_segments(p, bases, deleted, n)))
        goto out;
    remove_cleaning(p->dir);
    for (size_t i = 0; i < n; i++) {
        res->segments_rewritten += !deleted[i];
        res->segments_deleted += deleted[i];
    }
    logger_log(
        LOG_LEVEL_INFO,
        "%s: compacted %" PRIu64 " records into %" PRIu64 " (%" PRIu64 " -> %" PRIu64 " bytes)",
        p->dir, res->records_before, res->records_after, res->bytes_before, res->bytes_after);
out:
    if (ps.out)
        segment_close(ps.out);
    if (r && r != -ECANCELED && !changed)
        remove_cleaning(p->dir);
    batch_builder_free(&ps.b);
    map_free(&ps.map);
    free(ps.vals);
    free(bases);
    free(nexts);
    free(sizes);
    free(deleted);
    pthread_mutex_unlock(&p->maintenance);
    if (r)
        return r;
    return changed;
}
