/* test_fuzz_found.c - one regression test for each bug the libFuzzer targets
 * of tests/fuzz/ found in a decoder or parser (each failed before its fix):
 *
 * - batch headers whose next offset or end position pass INT64_MAX were
 *   believed (an empty segment named 18446744073709551615 took an append
 *   whose offsets wrapped to 0); the builder now refuses to seal them;
 * - an lz4 header could claim a 4 GiB body, which the reader allocated;
 * - a record table whose value lengths do not add up to values_len passed
 *   batch_verify, and made partition_fetch read past the batch;
 * - a segment whose first batch starts before the previous segment's end
 *   moved the log's end position backwards (synced, it is now a bad range;
 *   not synced, it is cut);
 * - key.separator could hold a \r that the config file lost on reload, and a
 *   NUL byte in a config line cut the line short silently;
 * - config_load read lines of at most 511 bytes, applying the tail of a
 *   longer line (a comment, say) as a line of its own;
 * - __consumer_offsets replay took "-2" as offset 2^64-2;
 * - a synced segment whose first batch is damaged got an offset index whose
 *   first entry was not at file position 0 (fuzz_segment);
 * - a synced segment whose damaged last batch was verified at one open (its
 *   bad range ends where the next segment starts) but only header-walked at
 *   the next (it ends where the damaged header says, past that start) made
 *   the next segment's records, appended and synced in between, fail with EIO
 *   (fuzz_recovery);
 * - a synced segment that ends short of the next one (records lost, no
 *   compaction) counted as verified once its lost range was recorded, and
 *   served its damaged batches (fuzz_recovery);
 * - a lookup of an offset or position before a bad range (in a gap that
 *   compaction left) skipped the damaged records: it answered the next good
 *   batch, or ENOENT when there was none (fuzz_recovery);
 * - a segment file named with a base offset at or above 2^63 (no offset
 *   topicfs gives) was opened as the partition's log, whose start then
 *   passed what the leader-epoch cache can hold (fuzz_recovery); a name
 *   with a sign or a space in its 20 digits was read as another base.
 * Files live in one mkdtemp dir that the group teardown removes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "batch.h"
#include "config.h"
#include "group.h"
#include "partition.h"
#include "segment.h"
#include "store.h"

static char tmpdir[64];

/* One sealed batch of the given lines, copied into a buffer. */
static uint8_t *seal(const char *const *lines, int n, uint64_t base_offset, uint64_t base_pos,
                     size_t *len, int *err)
{
    struct batch_builder b;
    const struct iovec *iov;
    int iovcnt;
    batch_builder_init(&b);
    for (int i = 0; i < n; i++) {
        assert_int_equal(batch_builder_add_record(&b, (uint32_t)strlen(lines[i]), -1), 0);
        assert_int_equal(batch_builder_add_values(&b, lines[i], strlen(lines[i])), 0);
    }
    *err = batch_builder_seal(&b, BATCH_CODEC_NONE, base_offset, base_pos, 1000, 0, &iov, &iovcnt,
                              len);
    uint8_t *buf = NULL;
    if (!*err) {
        buf = malloc(*len);
        size_t at = 0;
        for (int i = 0; i < iovcnt; i++) {
            memcpy(buf + at, iov[i].iov_base, iov[i].iov_len);
            at += iov[i].iov_len;
        }
    }
    batch_builder_free(&b);
    return buf;
}

static void put_u64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8); /* the format is little-endian, as is every host we build on */
}

static void fix_checksum(uint8_t *batch, size_t len)
{
    put_u64(batch + 8, XXH3_64bits(batch + 16, len - 16));
}

static void test_header_end_past_int64_max(void **state)
{
    (void)state;
    const char *line[] = {"x\n"};
    size_t len;
    int err;
    free(seal(line, 1, BATCH_END_MAX, 0, &len, &err));
    assert_int_equal(err, -EOVERFLOW);
    free(seal(line, 1, 0, BATCH_END_MAX - 1, &len, &err));
    assert_int_equal(err, -EOVERFLOW);
    uint8_t *b = seal(line, 1, BATCH_END_MAX - 1, BATCH_END_MAX - 2, &len, &err);
    assert_int_equal(err, 0); /* ends exactly at the limit */
    struct batch_header h;
    assert_int_equal(batch_header_decode(b, &h), 0);
    put_u64(b + 16, UINT64_MAX);
    fix_checksum(b, len);
    assert_int_equal(batch_header_decode(b, &h), -EBADMSG);
    assert_int_equal(batch_verify(b, len), -EBADMSG);
    free(b);
}

static void test_lz4_header_huge_body(void **state)
{
    (void)state;
    uint8_t hb[BATCH_HEADER_SIZE] = {0};
    struct batch_header h = {.length = 100,
                             .record_count = 1,
                             .table_len = 0xfffffff0u,
                             .values_len = 0xfffffff0u,
                             .codec = BATCH_CODEC_LZ4};
    batch_header_encode(&h, hb);
    assert_int_equal(batch_header_decode(hb, &h), -EBADMSG);
}

static void test_table_longer_than_values(void **state)
{
    (void)state;
    const char *lines[] = {"ab\n", "cd\n"};
    size_t len;
    int err;
    uint8_t *b = seal(lines, 2, 0, 0, &len, &err);
    assert_int_equal(err, 0);
    /* The table is varint(value_len), varint(key_len + 1) per record: make
     * the second record claim 100 bytes. */
    assert_int_equal(b[BATCH_HEADER_SIZE + 2], 3);
    b[BATCH_HEADER_SIZE + 2] = 100;
    fix_checksum(b, len);
    struct batch_header h;
    assert_int_equal(batch_header_decode(b, &h), 0);
    assert_int_equal(batch_verify(b, len), -EBADMSG);
    free(b);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void test_segment_starts_before_previous_end(void **state)
{
    (void)state;
    char dir[128], path[256];
    snprintf(dir, sizeof(dir), "%s/seg", tmpdir);
    assert_int_equal(mkdir(dir, 0755), 0);
    const char *line[] = {"x\n"};
    size_t len;
    int err;
    uint8_t *b = seal(line, 1, 10, 0, &len, &err); /* position 0: before 100 */
    segment_path(path, sizeof(path), dir, 10, ".log");
    write_file(path, b, len);
    free(b);
    /* Synced: kept as a bad range, the end never before 100. */
    struct segment *s;
    assert_int_equal(segment_open(dir, 10, 100, NULL, &s), 0);
    assert_int_equal(s->size, len);
    assert_int_equal(s->base_pos, 100);
    assert_true(s->end_pos >= 100);
    uint64_t fp;
    struct batch_header h;
    assert_int_equal(segment_find_offset(s, 10, &fp, &h), -EIO);
    segment_close(s);
    /* Not synced: cut. */
    struct segment_trust unsynced = {0, UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX, 0};
    assert_int_equal(segment_open(dir, 10, 100, &unsynced, &s), 0);
    assert_int_equal(s->size, 0);
    assert_int_equal(s->base_pos, 100);
    assert_int_equal(s->end_pos, 100);
    segment_close(s);
}

/* Writes batches of one line each ("v<offset>\n") at offsets from..to-1,
 * two records a batch, positions from `pos` on; returns the file size. */
static size_t write_batches(const char *path, uint64_t from, uint64_t to, uint64_t pos,
                            size_t *starts)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    size_t at = 0, k = 0;
    for (uint64_t o = from; o < to; o += 2) {
        char l0[32], l1[32];
        snprintf(l0, sizeof(l0), "v%llu\n", (unsigned long long)o);
        snprintf(l1, sizeof(l1), "v%llu\n", (unsigned long long)o + 1);
        const char *lines[] = {l0, l1};
        size_t len;
        int err;
        uint8_t *b = seal(lines, 2, o, pos, &len, &err);
        assert_int_equal(err, 0);
        assert_int_equal(fwrite(b, 1, len, f), len);
        free(b);
        if (starts)
            starts[k++] = at;
        at += len;
        pos += strlen(l0) + strlen(l1);
    }
    fclose(f);
    return at;
}

static void flip(const char *path, size_t at)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, (long)at, SEEK_SET), 0);
    int c = fgetc(f);
    assert_int_equal(fseek(f, (long)at, SEEK_SET), 0);
    fputc(c ^ 0x5a, f);
    fclose(f);
}

static void test_segment_damaged_at_start_index_valid(void **state)
{
    (void)state;
    char dir[128], path[256];
    snprintf(dir, sizeof(dir), "%s/start", tmpdir);
    assert_int_equal(mkdir(dir, 0755), 0);
    segment_path(path, sizeof(path), dir, 0, ".log");
    size_t starts[3];
    write_batches(path, 0, 6, 0, starts);
    flip(path, 0); /* the first batch's magic: the header walk stops there */
    for (int open = 0; open < 2; open++) {
        struct segment *s;
        assert_int_equal(segment_open(dir, 0, 0, NULL, &s), 0);
        assert_int_equal(s->nbad, 1);
        assert_int_equal(offset_index_validate(&s->oix, s->size), 0);
        assert_int_equal(time_index_validate(&s->tix), 0);
        uint64_t fp;
        struct batch_header h;
        assert_int_equal(segment_find_offset(s, 1, &fp, &h), -EIO);
        assert_int_equal(segment_find_offset(s, 3, &fp, &h), 0);
        assert_int_equal(fp, starts[1]);
        assert_int_equal(segment_find_offset(s, 4, &fp, &h), 0);
        assert_int_equal(fp, starts[2]);
        assert_int_equal(segment_find_pos(s, h.base_pos, &fp, &h), 0);
        assert_int_equal(fp, starts[2]);
        segment_close(s);
    }
}

static int note_offset(const struct record_view *r, void *arg)
{
    uint64_t *seen = arg;
    seen[0]++;
    seen[1] = r->offset;
    return 0;
}

static uint64_t append_one(struct partition *p, const char *line)
{
    struct batch_builder b;
    batch_builder_init(&b);
    assert_int_equal(batch_builder_add_record(&b, (uint32_t)strlen(line), -1), 0);
    assert_int_equal(batch_builder_add_values(&b, line, strlen(line)), 0);
    uint64_t off;
    assert_int_equal(partition_append(p, &b, 2000, &off), 0);
    batch_builder_free(&b);
    return off;
}

/* With `roll`, the segment after the damaged one is synced and closed at
 * the reopen (it is opened, then found to start before the damaged one's
 * header-walked end); else it holds the recovery point (read first). */
static void damaged_tail_case(const char *name, int roll)
{
    char dir[128], path[256];
    snprintf(dir, sizeof(dir), "%s/%s", tmpdir, name);
    assert_int_equal(mkdir(dir, 0755), 0);
    /* Segment 0: offsets 0..5, positions 0..18, its last batch damaged (a
     * value byte: the headers still walk); an index entry past the end of
     * the file makes the first open verify it whole. */
    segment_path(path, sizeof(path), dir, 0, ".log");
    size_t size = write_batches(path, 0, 6, 0, NULL);
    flip(path, size - 2);
    struct offset_index_entry e[2] = {{0, 0, 0}, {4, 100000, 12}};
    segment_path(path, sizeof(path), dir, 0, ".index");
    write_file(path, e, sizeof(e));
    /* Segment 6, the last (no recovery point: not synced), starting at
     * position 18 as the damaged header says, damaged too: cut whole. */
    segment_path(path, sizeof(path), dir, 6, ".log");
    size = write_batches(path, 6, 8, 18, NULL);
    flip(path, size - 2);

    struct partition_settings st = {
        .segment_bytes = 1 << 20,
        .segment_ms = INT64_MAX,
        .max_message_bytes = 1 << 20,
        .codec = BATCH_CODEC_NONE,
    };
    struct partition *p;
    assert_int_equal(partition_open(dir, &st, &p), 0);
    uint64_t off[2];
    off[0] = append_one(p, "new\n");
    if (roll) {
        st.segment_bytes = 1;
        partition_set_settings(p, &st);
    }
    off[1] = append_one(p, "newer\n");
    assert_int_equal(partition_sync(p), 0);
    partition_close(p);

    for (int open = 0; open < 2; open++) {
        assert_int_equal(partition_open(dir, &st, &p), 0);
        struct partition_cursor c;
        partition_cursor_init(&c);
        uint64_t seen[2] = {0, 0}, next;
        assert_int_equal(partition_fetch(p, &c, off[0], 10, note_offset, seen, &next), 0);
        assert_int_equal(seen[0], 2);
        assert_int_equal(seen[1], off[1]);
        /* The damaged batch is refused, the good ones before it served. */
        assert_int_equal(partition_fetch(p, &c, 4, 10, note_offset, seen, &next), -EIO);
        seen[0] = 0;
        assert_int_equal(partition_fetch(p, &c, 0, 4, note_offset, seen, &next), 0);
        assert_int_equal(seen[0], 4);
        partition_cursor_free(&c);
        partition_close(p);
    }
}

static void test_damaged_tail_verified_then_walked(void **state)
{
    (void)state;
    damaged_tail_case("tail", 0);
    damaged_tail_case("tail-rolled", 1);
}

static void test_lost_end_still_verified(void **state)
{
    (void)state;
    char dir[128], path[256];
    snprintf(dir, sizeof(dir), "%s/lost", tmpdir);
    assert_int_equal(mkdir(dir, 0755), 0);
    /* Segment 0: offsets 0..3, its first batch damaged in a value byte (the
     * headers walk); segment 10 after a gap no compaction made. */
    segment_path(path, sizeof(path), dir, 0, ".log");
    size_t starts[2];
    write_batches(path, 0, 4, 0, starts);
    flip(path, starts[1] - 2);
    segment_path(path, sizeof(path), dir, 10, ".log");
    write_batches(path, 10, 12, 100, NULL);

    struct partition_settings st = {
        .segment_bytes = 1 << 20,
        .segment_ms = INT64_MAX,
        .max_message_bytes = 1 << 20,
        .codec = BATCH_CODEC_NONE,
    };
    struct partition *p;
    assert_int_equal(partition_open(dir, &st, &p), 0);
    struct partition_cursor c;
    partition_cursor_init(&c);
    uint64_t seen[2] = {0, 0}, next;
    assert_int_equal(partition_fetch(p, &c, 0, 10, note_offset, seen, &next), -EIO);
    assert_int_equal(seen[0], 0);
    char buf[64];
    assert_int_equal(partition_read(p, &c, 0, buf, sizeof(buf)), -EIO);
    /* The good batch after it, and the next segment, are served. */
    assert_int_equal(partition_fetch(p, &c, 2, 2, note_offset, seen, &next), 0);
    assert_int_equal(seen[0], 2);
    assert_int_equal(partition_fetch(p, &c, 10, 10, note_offset, seen, &next), 0);
    assert_int_equal(seen[0], 4);
    partition_cursor_free(&c);
    partition_close(p);
}

static void test_lookup_before_bad_range(void **state)
{
    (void)state;
    char dir[128], path[256];
    snprintf(dir, sizeof(dir), "%s/before", tmpdir);
    assert_int_equal(mkdir(dir, 0755), 0);
    /* Segment 10 (offsets 0..9 went with compaction), positions from 50:
     * its first batch damaged in a value byte, the second good. */
    segment_path(path, sizeof(path), dir, 10, ".log");
    size_t starts[2];
    write_batches(path, 10, 14, 50, starts);
    flip(path, starts[1] - 2);
    struct segment *s;
    assert_int_equal(segment_open(dir, 10, 40, NULL, &s), 0);
    uint64_t fp;
    struct batch_header h;
    assert_int_equal(segment_find_offset(s, 5, &fp, &h), -EIO);
    assert_int_equal(segment_find_pos(s, 45, &fp, &h), -EIO);
    assert_int_equal(segment_find_offset(s, 12, &fp, &h), 0);
    assert_int_equal(fp, starts[1]);
    assert_int_equal(segment_find_pos(s, h.base_pos, &fp, &h), 0);
    assert_int_equal(fp, starts[1]);
    segment_close(s);
    /* Both damaged: nothing after the gap is good. */
    flip(path, starts[1] + BATCH_HEADER_SIZE + 6);
    assert_int_equal(segment_open(dir, 10, 40, NULL, &s), 0);
    assert_int_equal(segment_find_offset(s, 5, &fp, &h), -EIO);
    assert_int_equal(segment_find_pos(s, 45, &fp, &h), -EIO);
    segment_close(s);
}

static void test_segment_name_past_offset_limit(void **state)
{
    (void)state;
    char dir[128], path[256];
    snprintf(dir, sizeof(dir), "%s/names", tmpdir);
    assert_int_equal(mkdir(dir, 0755), 0);
    static const char *const strangers[] = {"14042980179556106250.log", "99999999999999999999.log",
                                            " 0000000000000000007.log", "+0000000000000000007.log"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, strangers[i]);
        write_file(path, "x", 1);
    }
    struct partition_settings st = {
        .segment_bytes = 1 << 20,
        .segment_ms = INT64_MAX,
        .max_message_bytes = 1 << 20,
        .codec = BATCH_CODEC_NONE,
    };
    struct partition *p;
    assert_int_equal(partition_open(dir, &st, &p), 0);
    struct partition_info info;
    partition_info(p, &info);
    assert_int_equal(info.start_offset, 0);
    assert_int_equal(info.end_offset, 0);
    assert_int_equal(append_one(p, "new\n"), 0);
    assert_int_equal(partition_sync(p), 0);
    partition_close(p);
    /* Left alone, as other files that are no segment of topicfs's. */
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, strangers[i]);
        assert_int_equal(access(path, F_OK), 0);
    }
}

static void test_config_key_separator_cr_and_nul(void **state)
{
    (void)state;
    struct topic_config c, before;
    config_defaults(&c, 1);
    before = c;
    assert_int_equal(config_set(&c, "key.separator", "\r="), -EINVAL);
    assert_int_equal(config_set(&c, "key.separator", "=\r"), -EINVAL);
    static const char line[] = "retention.ms=5\0garbage";
    assert_int_equal(config_set_line(&c, line, sizeof(line) - 1), -EINVAL);
    assert_memory_equal(&c, &before, sizeof(c));
    assert_int_equal(config_set_line(&c, "key.separator= :\r\n", 18), 0);
    assert_string_equal(c.key_separator, " :");
}

static void test_config_load_long_line(void **state)
{
    (void)state;
    char path[128], text[1024];
    snprintf(path, sizeof(path), "%s/config", tmpdir);
    /* A comment whose bytes from 511 on read as a line of their own. */
    memset(text, 'x', sizeof(text));
    text[0] = '#';
    memcpy(text + 511, "retention.ms=1\n", 15);
    memcpy(text + 526, "partitions=1\nsegment.ms=7\n", 26);
    write_file(path, text, 526 + 26);
    struct topic_config c;
    config_defaults(&c, 1);
    assert_int_equal(config_load(&c, path), 0);
    assert_int_equal(c.retention_ms, 604800000);
    assert_int_equal(c.segment_ms, 7);
}

static void test_offsets_replay_plain_decimals(void **state)
{
    (void)state;
    char dir[128];
    struct store *s;
    struct topic *t;
    struct group_registry *r;
    snprintf(dir, sizeof(dir), "%s/store", tmpdir);
    assert_int_equal(store_open(dir, 1, &s), 0);
    assert_int_equal(store_create_topic(s, "t", &t), 0);
    assert_int_equal(group_registry_open(s, 0, &r), 0);
    assert_int_equal(group_create(r, t, "g"), 0);
    group_registry_close(r);
    struct topic *ot = store_find(s, GROUP_OFFSETS_TOPIC);
    assert_non_null(ot);
    static const char *lines[] = {"t/g/0=-2\n", "t/g/0= 3\n", "t/g/0=3x\n"};
    for (size_t i = 0; i < 3; i++) {
        struct batch_builder b;
        batch_builder_init(&b);
        assert_int_equal(batch_builder_add_record(&b, (uint32_t)strlen(lines[i]), 5), 0);
        assert_int_equal(batch_builder_add_values(&b, lines[i], strlen(lines[i])), 0);
        assert_int_equal(partition_append(topic_partition(ot, 0), &b, 1, NULL), 0);
        batch_builder_free(&b);
    }
    topic_put(ot);
    assert_int_equal(group_registry_open(s, 0, &r), 0);
    struct group *g = group_find(r, t, "g");
    assert_non_null(g);
    uint64_t off;
    assert_int_equal(group_cursor_get(g, 0, &off), 0);
    assert_int_equal(off, 0);
    group_put(g);
    group_registry_close(r);
    topic_put(t);
    store_close(s);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/topicfs-fuzzfound-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_end_past_int64_max),
        cmocka_unit_test(test_lz4_header_huge_body),
        cmocka_unit_test(test_table_longer_than_values),
        cmocka_unit_test(test_segment_starts_before_previous_end),
        cmocka_unit_test(test_segment_damaged_at_start_index_valid),
        cmocka_unit_test(test_damaged_tail_verified_then_walked),
        cmocka_unit_test(test_lost_end_still_verified),
        cmocka_unit_test(test_lookup_before_bad_range),
        cmocka_unit_test(test_segment_name_past_offset_limit),
        cmocka_unit_test(test_config_key_separator_cr_and_nul),
        cmocka_unit_test(test_config_load_long_line),
        cmocka_unit_test(test_offsets_replay_plain_decimals),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
