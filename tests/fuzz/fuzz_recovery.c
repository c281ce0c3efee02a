/* fuzz_recovery.c - partition_open() of an arbitrary partition directory:
 * the recovery point, every segment's files, an interrupted compaction's
 * cleaning/COMMIT and the cleaner checkpoint, as a mount after a crash or
 * after damage would find them.
 *
 * File set: 'r' recovery-point bytes as they are; 'R' four u64 (segment
 * base, file position, next offset, end position) written with a correct
 * checksum, so that the fuzzer tries believable recovery points; 'l', 'o',
 * 't' a segment's .log, .index, .timeindex, each starting with its u64 base
 * offset; 'c' cleaning/COMMIT; 'C' a file in cleaning/ (u64 base, u8 kind);
 * 'k' cleaner-checkpoint; 'e' leader-epoch-checkpoint as it is, 'E' its
 * body with a correct checksum line appended; 'z' log-reset (an interrupted
 * partition_reset) as it is, 'Z' two u64 with a correct checksum; 'f'
 * flags (bit 0: fix batch checksums). The leader-epoch cache an open
 * leaves names no offset past the log end.
 *
 * After a successful open the whole stream and every record are read (a
 * read may fail on damage, with EIO), then one record is appended and
 * synced: a reopen must find it, last, at the offset it got. Whatever the
 * files held, the partition must stay usable. */
#include <xxhash.h>

#include "fuzz_segment.h"
#include "partition.h"

static const struct partition_settings settings = {
    .segment_bytes = 4096,
    .segment_ms = INT64_MAX,
    .max_message_bytes = 1 << 20,
    .codec = BATCH_CODEC_NONE,
    .file_delete_delay_ms = 0,
};

struct last {
    uint64_t offset, count;
    uint8_t value[16];
    uint32_t len;
};

static int note(const struct record_view *r, void *arg)
{
    struct last *l = arg;
    l->offset = r->offset;
    l->count++;
    l->len = r->value_len;
    memcpy(l->value, r->value, r->value_len < 16 ? r->value_len : 16);
    return 0;
}

/* Visits every record from offset `at` on; returns the last one. */
static int fetch_all(struct partition *p, struct last *l, uint64_t at)
{
    struct partition_cursor c;
    partition_cursor_init(&c);
    uint64_t next;
    int r;
    memset(l, 0, sizeof(*l));
    for (int i = 0; i < 10000; i++) {
        r = partition_fetch(p, &c, at, 4096, note, l, &next);
        if (r || next <= at)
            break;
        at = next;
    }
    partition_cursor_free(&c);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = fuzz_dir(1);
    char cdir[1024];
    snprintf(cdir, sizeof(cdir), "%s/cleaning", dir);
    struct fuzz_in in = {data, size}, flags_in = {NULL, 0};
    uint8_t tag;
    const uint8_t *p;
    size_t len;
    int nfiles = 0;
    /* The flags first: they say how the segments are written. */
    struct fuzz_in scan = in;
    while (fuzz_entry(&scan, &tag, &p, &len))
        if (tag == 'f')
            flags_in = (struct fuzz_in){p, len};
    int fix = fuzz_u8(&flags_in) & 1;
    while (fuzz_entry(&in, &tag, &p, &len) && nfiles < 64) {
        struct fuzz_in e = {p, len};
        uint64_t v[5];
        char name[64];
        nfiles++;
        switch (tag) {
        case 'r':
            fuzz_write_file(dir, "recovery-point", p, len);
            break;
        case 'R':
            for (int i = 0; i < 4; i++)
                v[i] = fuzz_u64(&e);
            v[4] = XXH3_64bits(v, 4 * sizeof(uint64_t));
            fuzz_write_file(dir, "recovery-point", v, sizeof(v));
            break;
        case 'l':
        case 'o':
        case 't': {
            uint64_t base = fuzz_u64(&e);
            fuzz_write_segment(dir, base, tag == 'l' ? e.p : NULL, e.n, fix,
                               tag == 'o' ? e.p : NULL, e.n, tag == 't' ? e.p : NULL, e.n);
            break;
        }
        case 'c':
            mkdir(cdir, 0755);
            fuzz_write_file(cdir, "COMMIT", p, len);
            break;
        case 'C': {
            static const char *suffix[] = {".log", ".index", ".timeindex"};
            uint64_t base = fuzz_u64(&e);
            mkdir(cdir, 0755);
            snprintf(name, sizeof(name), "%020llu%s", (unsigned long long)base,
                     suffix[fuzz_u8(&e) % 3]);
            fuzz_write_file(cdir, name, e.p, e.n);
            break;
        }
        case 'k':
            fuzz_write_file(dir, "cleaner-checkpoint", p, len);
            break;
        case 'e':
            fuzz_write_file(dir, LEADER_EPOCH_FILE, p, len);
            break;
        case 'E': {
            char *t = malloc(len + 18);
            memcpy(t, p, len);
            snprintf(t + len, 18, "%016llx\n", (unsigned long long)XXH3_64bits(p, len));
            fuzz_write_file(dir, LEADER_EPOCH_FILE, t, len + 17);
            free(t);
            break;
        }
        case 'z':
            fuzz_write_file(dir, "log-reset", p, len);
            break;
        case 'Z':
            v[0] = fuzz_u64(&e);
            v[1] = fuzz_u64(&e);
            v[2] = XXH3_64bits(v, 2 * sizeof(uint64_t));
            fuzz_write_file(dir, "log-reset", v, 3 * sizeof(uint64_t));
            break;
        }
    }

    struct partition *part;
    if (partition_open(dir, &settings, &part))
        return 0;
    struct partition_info info;
    partition_info(part, &info);
    if (getenv("FUZZ_DEBUG"))
        fprintf(stderr, "opened: offsets %llu..%llu positions %llu..%llu, %u segments\n",
                (unsigned long long)info.start_offset, (unsigned long long)info.end_offset,
                (unsigned long long)info.start_pos, (unsigned long long)info.end_pos,
                info.segments);
    FUZZ_CHECK(info.start_offset <= info.end_offset && info.start_pos <= info.end_pos);
    for (size_t i = 0; i < part->leader_epochs.n; i++)
        FUZZ_CHECK(part->leader_epochs.v[i].start_offset <= info.end_offset);
    if (part->leader_epochs.n)
        FUZZ_CHECK(part->leader_epochs.v[0].start_offset >= info.start_offset);

    /* Read the whole stream (bounded), then every record. */
    struct partition_cursor c;
    partition_cursor_init(&c);
    static uint8_t buf[1 << 16];
    uint64_t pos = info.start_pos;
    for (int i = 0; i < 64 && pos < info.end_pos; i++) {
        ssize_t n = partition_read(part, &c, pos, buf, sizeof(buf));
        if (n <= 0)
            break;
        pos += (uint64_t)n;
    }
    partition_cursor_free(&c);
    struct last l;
    fetch_all(part, &l, 0);

    /* Append and sync one record: a reopen must have it, last. */
    struct batch_builder b;
    batch_builder_init(&b);
    FUZZ_CHECK(!batch_builder_add_record(&b, 5, -1));
    FUZZ_CHECK(!batch_builder_add_values(&b, "fuzz\n", 5));
    uint64_t off;
    int r = partition_append(part, &b, 1763892000000, &off);
    batch_builder_free(&b);
    if (r == 0)
        r = partition_sync(part);
    partition_close(part);
    if (r)
        return 0; /* a refused append is an answer too (no room for offsets) */
    FUZZ_CHECK(partition_open(dir, &settings, &part) == 0);
    partition_info(part, &info);
    if (getenv("FUZZ_DEBUG"))
        fprintf(stderr, "appended at %llu, end now %llu\n", (unsigned long long)off,
                (unsigned long long)info.end_offset);
    FUZZ_CHECK(info.end_offset == off + 1);
    /* Damage below the recovery point may fail a read that covers it (EIO),
     * never the record appended after it. */
    r = fetch_all(part, &l, 0);
    FUZZ_CHECK(r == 0 || r == -EIO || r == -EBADMSG);
    r = fetch_all(part, &l, off);
    if (getenv("FUZZ_DEBUG"))
        fprintf(stderr, "fetch after reopen: %d, %llu records, last %llu\n", r,
                (unsigned long long)l.count, (unsigned long long)l.offset);
    FUZZ_CHECK(r == 0);
    FUZZ_CHECK(l.count == 1 && l.offset == off && l.len == 5 && !memcmp(l.value, "fuzz\n", 5));
    partition_close(part);
    return 0;
}
