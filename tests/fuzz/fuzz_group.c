/* fuzz_group.c - __consumer_offsets records and cursor lines (core/group.c,
 * fs/nodes.c node_parse_cursor).
 *
 * One store lives for the whole run, in the scratch directory: topic "t"
 * with 3 partitions of 5 records each. For each input, __consumer_offsets
 * is emptied and every input line that does not start with '>' is appended
 * to it as a record, as a damaged or foreign log would hold them; the group
 * registry replays them. Then each '>' line is a cursor line: its first
 * byte picks a partition of group "g" (3 is one too many), the rest is
 * what a user writes into .groups/g/pN. Checked: replay and cursor writes
 * never fail on bad text (only on what the store says), a committed offset
 * is never past INT64_MAX, a cursor line that parses and names a partition
 * moves the cursor where it says, and a fresh registry replaying the log
 * sees the same cursors as the one that wrote them. */
#include "fuzz_util.h"
#include "group.h"
#include "nodes.h"
#include "partition.h"

static struct store *store;
static struct topic *topic;

static void setup(void)
{
    char dir[1100];
    snprintf(dir, sizeof(dir), "%s/store", fuzz_dir(0));
    FUZZ_CHECK(store_open(dir, 1, &store) == 0);
    FUZZ_CHECK(store_create_topic(store, "t", &topic) == 0);
    FUZZ_CHECK(topic_config_apply(topic, "partitions=3", 12) == 0);
    for (uint32_t p = 0; p < 3; p++)
        for (int i = 0; i < 5; i++) {
            struct batch_builder b;
            batch_builder_init(&b);
            FUZZ_CHECK(!batch_builder_add_record(&b, 4, 1));
            FUZZ_CHECK(!batch_builder_add_values(&b, "k:v\n", 4));
            FUZZ_CHECK(!partition_append(topic_partition(topic, p), &b, 1000 + i * 1000, NULL));
            batch_builder_free(&b);
        }
    struct group_registry *r;
    FUZZ_CHECK(group_registry_open(store, 0, &r) == 0); /* creates __consumer_offsets */
    group_registry_close(r);
}

static void append_line(struct partition *op, const uint8_t *line, size_t len)
{
    struct batch_builder b;
    batch_builder_init(&b);
    const uint8_t *eq = memchr(line, '=', len);
    FUZZ_CHECK(!batch_builder_add_record(&b, (uint32_t)len, eq ? (int32_t)(eq - line) : -1));
    FUZZ_CHECK(!batch_builder_add_values(&b, line, len));
    FUZZ_CHECK(!partition_append(op, &b, 1, NULL));
    batch_builder_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!store)
        setup();
    if (size > 1 << 14)
        return 0;
    struct topic *ot = store_find(store, GROUP_OFFSETS_TOPIC);
    struct partition *op = topic_partition(ot, 0);
    FUZZ_CHECK(partition_truncate(op, 0) == 0);
    const uint8_t *p = data, *end = data + size;
    while (p < end) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        if (p[0] != '>')
            append_line(op, p, len);
        p += len;
    }
    struct group_registry *r;
    FUZZ_CHECK(group_registry_open(store, 0, &r) == 0);
    struct group *g = group_find(r, topic, "g");
    if (!g) {
        FUZZ_CHECK(group_create(r, topic, "g") == 0);
        g = group_find(r, topic, "g");
    }
    FUZZ_CHECK(g);
    uint64_t off;
    for (uint32_t i = 0; i < 3; i++) {
        FUZZ_CHECK(group_cursor_get(g, i, &off) == 0);
        FUZZ_CHECK(off <= BATCH_END_MAX);
    }
    for (p = data; p < end;) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (p[0] == '>' && len >= 2) {
            uint32_t part = p[1] % 4;
            char spec[128];
            int64_t t;
            if (node_parse_cursor((const char *)p + 2, len - 2, spec, sizeof(spec), &t) == 0) {
                int e = group_cursor_set(g, part, spec, t);
                if (part == 3)
                    FUZZ_CHECK(e == -ENOENT);
                else
                    FUZZ_CHECK(e == 0 || e == -EINVAL);
                if (e == 0 && spec[0] >= '0' && spec[0] <= '9') {
                    FUZZ_CHECK(group_cursor_get(g, part, &off) == 0);
                    FUZZ_CHECK(off == strtoull(spec, NULL, 10));
                } else if (e == 0 && !strcmp(spec, "latest")) {
                    FUZZ_CHECK(group_cursor_get(g, part, &off) == 0 && off == 5);
                }
            }
        }
        p += len + 1;
    }
    uint64_t before[3];
    for (uint32_t i = 0; i < 3; i++)
        FUZZ_CHECK(group_cursor_get(g, i, &before[i]) == 0);
    char info[4096];
    group_info_text(g, info, sizeof(info));
    group_put(g);
    group_registry_close(r);

    /* A fresh replay sees what was committed. */
    FUZZ_CHECK(group_registry_open(store, 0, &r) == 0);
    g = group_find(r, topic, "g");
    FUZZ_CHECK(g);
    for (uint32_t i = 0; i < 3; i++) {
        FUZZ_CHECK(group_cursor_get(g, i, &off) == 0);
        if (off != before[i]) {
            fprintf(stderr, "p%u: committed %llu, replayed %llu\n", i,
                    (unsigned long long)before[i], (unsigned long long)off);
            abort();
        }
    }
    group_put(g);
    group_registry_close(r);
    topic_put(ot);
    return 0;
}
