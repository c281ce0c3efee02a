/* make_corpus.c - writes the seed corpus of every fuzz target:
 *   make_corpus OUTDIR   (tests/fuzz/make-corpus.sh runs it)
 *
 * Binary seeds are made by the core itself: batches sealed by the batch
 * builder, segments and partition directories written by partition_append
 * and partition_sync, a manifest left by a compaction pass stopped at its
 * crash point. Text seeds are the names and lines users write. Each seed is
 * small (a few KB), so the corpus stays well under a megabyte. */
#include <dirent.h>
#include <sys/stat.h>

#include "compaction.h"
#include "config.h"
#include "frame.h"
#include "group_proto.h"
#include "leader_epoch.h"
#include "produce_proto.h"
#include "proto.h"
#include "fuzz_util.h"
#include "partition.h"

static char out_dir[512];

static FILE *seed(const char *target, const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", out_dir, target);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/%s/%s", out_dir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    return f;
}

static void text_seed(const char *target, const char *name, const void *text, size_t len)
{
    FILE *f = seed(target, name);
    fwrite(text, 1, len, f);
    fclose(f);
}
#define TEXT(target, name, lit) text_seed(target, name, lit, sizeof(lit) - 1)

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    *len = fread(b, 1, (size_t)n, f);
    fclose(f);
    return b;
}

/* One batch of `n` records "k<i>=value <i>\n" (or without keys). */
static void build(struct batch_builder *b, int n, int keyed, char *text, size_t cap)
{
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        int len = keyed ? snprintf(text + at, cap - at, "k%d=value %d\n", i % 3, i)
                        : snprintf(text + at, cap - at, "line %d\n", i);
        batch_builder_add_record(b, (uint32_t)len, keyed ? (i % 3 > 9 ? 3 : 2) : -1);
        batch_builder_add_values(b, text + at, (size_t)len);
        at += (size_t)len;
    }
}

static void batch_seeds(void)
{
    static const struct {
        const char *name;
        int n, keyed;
        enum batch_codec codec;
    } kinds[] = {{"one", 1, 0, BATCH_CODEC_NONE},
                 {"keyed", 5, 1, BATCH_CODEC_NONE},
                 {"lz4", 20, 1, BATCH_CODEC_LZ4},
                 {"lz4-one", 1, 0, BATCH_CODEC_LZ4}};
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        struct batch_builder b;
        char text[4096];
        const struct iovec *iov;
        int iovcnt;
        size_t len;
        batch_builder_init(&b);
        build(&b, kinds[k].n, kinds[k].keyed, text, sizeof(text));
        batch_builder_seal(&b, kinds[k].codec, 42, 1000, 1763892000000, 1, &iov, &iovcnt, &len);
        FILE *f = seed("fuzz_batch", kinds[k].name);
        for (int i = 0; i < iovcnt; i++)
            fwrite(iov[i].iov_base, 1, iov[i].iov_len, f);
        fclose(f);
        batch_builder_free(&b);
    }
    /* An empty record and a record that is all key. */
    struct batch_builder b;
    const struct iovec *iov;
    int iovcnt;
    size_t len;
    batch_builder_init(&b);
    batch_builder_add_record(&b, 0, -1);
    batch_builder_add_record(&b, 2, 2);
    batch_builder_add_values(&b, "k=", 2);
    batch_builder_seal(&b, BATCH_CODEC_NONE, 0, 0, 0, 0, &iov, &iovcnt, &len);
    FILE *f = seed("fuzz_batch", "empty-values");
    for (int i = 0; i < iovcnt; i++)
        fwrite(iov[i].iov_base, 1, iov[i].iov_len, f);
    fclose(f);
    batch_builder_free(&b);
}

static void append_batches(struct partition *p, int batches, int per, int keyed, int64_t ts)
{
    for (int i = 0; i < batches; i++) {
        struct batch_builder b;
        char text[8192];
        batch_builder_init(&b);
        build(&b, per, keyed, text, sizeof(text));
        if (partition_append(p, &b, ts + i * 10, NULL)) {
            fprintf(stderr, "append failed\n");
            exit(1);
        }
        batch_builder_free(&b);
    }
}

/* Every file of a partition directory as a fuzz_recovery file set. */
static void dir_entries(FILE *f, const char *dir, int with_rp)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char path[1024];
    while ((de = readdir(d))) {
        size_t len;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        const char *dot = strchr(de->d_name, '.');
        if (de->d_name[0] == '.' || de->d_type == DT_DIR)
            continue;
        uint8_t *data = slurp(path, &len);
        if (!data)
            continue;
        if (!strcmp(de->d_name, "recovery-point")) {
            if (with_rp)
                fuzz_put_entry(f, 'r', data, len);
        } else if (!strcmp(de->d_name, "cleaner-checkpoint")) {
            fuzz_put_entry(f, 'k', data, len);
        } else if (!strcmp(de->d_name, LEADER_EPOCH_FILE)) {
            fuzz_put_entry(f, 'e', data, len);
        } else if (!strcmp(de->d_name, "log-reset")) {
            fuzz_put_entry(f, 'z', data, len);
        } else if (dot && strlen(de->d_name) > 20) {
            char tag = !strcmp(dot, ".log") ? 'l' : !strcmp(dot, ".index") ? 'o' : 't';
            uint64_t base = strtoull(de->d_name, NULL, 10);
            uint8_t *e = malloc(len + 8);
            memcpy(e, &base, 8);
            memcpy(e + 8, data, len);
            fuzz_put_entry(f, (uint8_t)tag, e, len + 8);
            free(e);
        }
        free(data);
    }
    closedir(d);
}

static void dir_seed(const char *dir, const char *target, const char *name, int with_rp)
{
    FILE *f = seed(target, name);
    dir_entries(f, dir, with_rp);
    fclose(f);
}

/* The files of dir/cleaning as 'c' (COMMIT) and 'C' entries. */
static void cleaning_entries(FILE *f, const char *dir)
{
    char cdir[1100], path[1300];
    snprintf(cdir, sizeof(cdir), "%s/cleaning", dir);
    DIR *d = opendir(cdir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        size_t len;
        snprintf(path, sizeof(path), "%s/%s", cdir, de->d_name);
        if (de->d_name[0] == '.')
            continue;
        uint8_t *data = slurp(path, &len);
        if (!data)
            continue;
        if (!strcmp(de->d_name, "COMMIT")) {
            fuzz_put_entry(f, 'c', data, len);
        } else {
            const char *dot = strchr(de->d_name, '.');
            uint8_t e[9];
            uint64_t base = strtoull(de->d_name, NULL, 10);
            memcpy(e, &base, 8);
            e[8] = !strcmp(dot, ".log") ? 0 : !strcmp(dot, ".index") ? 1 : 2;
            uint8_t *entry = malloc(len + 9);
            memcpy(entry, e, 9);
            memcpy(entry + 9, data, len < 64 ? len : 64); /* the bytes hardly matter here */
            fuzz_put_entry(f, 'C', entry, 9 + (len < 64 ? len : 64));
            free(entry);
        }
        free(data);
    }
    if (d)
        closedir(d);
}

static const struct partition_settings small = {
    .segment_bytes = 512,
    .segment_ms = INT64_MAX,
    .max_message_bytes = 1 << 20,
    .codec = BATCH_CODEC_NONE,
    .file_delete_delay_ms = 0,
};

static void partition_seeds(const char *scratch)
{
    char dir[1024];
    struct partition *p;
    /* Segments, indexes and a recovery point, as a clean stop leaves them. */
    snprintf(dir, sizeof(dir), "%s/plain", scratch);
    partition_open(dir, &small, &p);
    append_batches(p, 12, 4, 1, 1763892000000);
    partition_sync(p);
    append_batches(p, 2, 3, 0, 1763892100000); /* past the recovery point */
    partition_close(p);
    dir_seed(dir, "fuzz_recovery", "plain", 1);
    dir_seed(dir, "fuzz_recovery", "no-recovery-point", 0);

    /* One segment, for fuzz_segment and fuzz_index. */
    char path[1200];
    size_t log_len, oix_len, tix_len;
    snprintf(path, sizeof(path), "%s/%020d.log", dir, 0);
    uint8_t *log = slurp(path, &log_len);
    snprintf(path, sizeof(path), "%s/%020d.index", dir, 0);
    uint8_t *oix = slurp(path, &oix_len);
    snprintf(path, sizeof(path), "%s/%020d.timeindex", dir, 0);
    uint8_t *tix = slurp(path, &tix_len);
    static const struct {
        const char *name;
        uint64_t validate_from;
        uint8_t flags;
    } modes[] = {{"verify-all", 0, 0}, {"trusted", UINT64_MAX, 0}, {"fix-checksums", 0, 1}};
    for (size_t m = 0; m < 3; m++) {
        FILE *f = seed("fuzz_segment", modes[m].name);
        uint8_t params[17 + 8];
        uint64_t vf = modes[m].validate_from, expect = UINT64_MAX, key = 5;
        memcpy(params, &vf, 8);
        memcpy(params + 8, &expect, 8);
        params[16] = modes[m].flags;
        memcpy(params + 17, &key, 8);
        fuzz_put_entry(f, 'p', params, sizeof(params));
        fuzz_put_entry(f, 'l', log, log_len);
        fuzz_put_entry(f, 'o', oix, oix_len);
        fuzz_put_entry(f, 't', tix, tix_len);
        fclose(f);
    }
    FILE *f = seed("fuzz_segment", "torn-tail");
    fuzz_put_entry(f, 'l', log, log_len > 30 ? log_len - 30 : log_len);
    fclose(f);
    f = seed("fuzz_index", "segment");
    uint64_t keys[] = {0, 3, 100, 1763892000005, UINT64_MAX};
    uint64_t n = log_len;
    fuzz_put_entry(f, 'o', oix, oix_len);
    fuzz_put_entry(f, 't', tix, tix_len);
    fuzz_put_entry(f, 'k', keys, sizeof(keys));
    fuzz_put_entry(f, 'n', &n, 8);
    fclose(f);
    f = seed("fuzz_index", "torn");
    fuzz_put_entry(f, 'o', oix, oix_len > 5 ? oix_len - 5 : oix_len);
    fuzz_put_entry(f, 't', tix, tix_len);
    fuzz_put_entry(f, 'a', keys, sizeof(keys) - 8);
    fclose(f);
    free(log);
    free(oix);
    free(tix);

    /* lz4 segments. */
    snprintf(dir, sizeof(dir), "%s/lz4", scratch);
    struct partition_settings lz4 = small;
    lz4.codec = BATCH_CODEC_LZ4;
    partition_open(dir, &lz4, &p);
    append_batches(p, 6, 8, 1, 1763892000000);
    partition_sync(p);
    partition_close(p);
    dir_seed(dir, "fuzz_recovery", "lz4", 1);

    /* A compaction pass stopped after its manifest was committed. */
    snprintf(dir, sizeof(dir), "%s/compact", scratch);
    partition_open(dir, &small, &p);
    append_batches(p, 30, 6, 1, 1763892000000);
    partition_sync(p);
    struct compaction_rules rules = {
        .key_sep = "=", .key_sep_len = 1, .delete_retention_ms = 1000, .min_dirty_ratio = 0};
    struct compaction_result res;
    compaction_crash_point = 2;
    compaction_run(p, &rules, 1763892000000 + 100000, &res);
    compaction_crash_point = 0;
    partition_close(p);
    f = seed("fuzz_manifest", "committed");
    cleaning_entries(f, dir);
    fclose(f);
    f = seed("fuzz_recovery", "compaction-committed");
    dir_entries(f, dir, 1);
    cleaning_entries(f, dir);
    fclose(f);
}

static void text_seeds(void)
{
    TEXT("fuzz_names", "partition", "p0");
    TEXT("fuzz_names", "offset", "p12@345");
    TEXT("fuzz_names", "last", "p0@-10");
    TEXT("fuzz_names", "ms", "p1@t1763892000000");
    TEXT("fuzz_names", "iso", "p0@2026-11-23T10:00:00Z");
    TEXT("fuzz_names", "iso-frac-tz-jsonl", "p0@2026-11-23T10:00:00.123+01:00.jsonl");
    TEXT("fuzz_names", "jsonl", "p3.jsonl");
    TEXT("fuzz_names", "config", ".config");
    TEXT("fuzz_names", "follow", "follow");
    TEXT("fuzz_names", "cursor", " @2024-02-29T23:59:60.5-05:30\r");
    TEXT("fuzz_names", "cursor-last", "-3");
    TEXT("fuzz_names", "big", "p65535@9223372036854775807");

    struct topic_config c;
    char text[2048];
    config_defaults(&c, 1);
    size_t n = config_format(&c, text, sizeof(text));
    text_seed("fuzz_config", "defaults", text, n);
    TEXT("fuzz_config", "lines",
         "retention.ms=1000\n cleanup.policy = compact,delete \r\nkey.separator= :\n"
         "min.cleanable.dirty.ratio=0.25\ncompression.type=lz4\nframing=write\nacks=all\n");
    TEXT("fuzz_config", "bad", "retention.ms=-2\npartitions=0\nnope=1\nsegment.bytes=9\n");

    TEXT("fuzz_framing", "lines", "\x20\x06hello\n\x05wor\nd\xff\x03\nx\n");
    TEXT("fuzz_framing", "keyed-write", "\x33\x08k:v\nk2:v\x04:::\n");
    TEXT("fuzz_framing", "too-long",
         "\x00\x04"
         "abcd\x03"
         "ef\n\x02gh");

    TEXT("fuzz_cluster", "meta",
         "#\n#Tue Nov 21 10:00:00 UTC "
         "2023\nversion=0\nbroker.id=1\ncluster.id=4fXa8EwFQ3mKd2GxvVcTqg\n");
    TEXT("fuzz_cluster", "broker",
         "{\"version\":4,\"host\":\"127.0.0.1\",\"port\":9093,\"jmx_port\":-1,"
         "\"timestamp\":\"1700000000000\",\"endpoints\":[\"TOPICFS://127.0.0.1:9093\"]}");
    TEXT("fuzz_cluster", "kafka-broker",
         "{\"features\":{},\"listener_security_protocol_map\":{\"PLAINTEXT\":\"PLAINTEXT\"},"
         "\"endpoints\":[\"PLAINTEXT://[::1]:9092\"],\"port\":9092,\"host\":\"::1\","
         "\"version\":5,\"timestamp\":\"1\",\"rack\":null,\"x\":\"\\ud83d\\ude00\\n\"}");
    TEXT("fuzz_cluster", "controller",
         "{\"version\":1,\"brokerid\":3,\"timestamp\":\"1559742391035\"}");
    TEXT("fuzz_cluster", "cluster-id", "{\"version\":\"1\",\"id\":\"4fXa8EwFQ3mKd2GxvVcTqg\"}");
    TEXT("fuzz_cluster", "epoch", "2147483647");
    TEXT("fuzz_cluster", "zk", "127.0.0.1:2181,[::1]:2182,zk.example.com:65535/topicfs/a");
    TEXT("fuzz_cluster", "listen", "[fe80::1]:9093");
    TEXT("fuzz_cluster", "assignment",
         "{\"version\":3,\"topic_id\":\"4fXa8EwFQ3mKd2GxvVcTqg\",\"partitions\":{\"1\":[2,3,1],"
         "\"0\":[1,2,3]},\"adding_replicas\":{},\"removing_replicas\":{}}");
    TEXT("fuzz_cluster", "reassignment",
         "{\"version\":3,\"partitions\":{\"0\":[4,1,2,3],\"1\":[2]},"
         "\"adding_replicas\":{\"0\":[4]},\"removing_replicas\":{\"0\":[3,2]}}");
    TEXT("fuzz_cluster", "state",
         "{\"controller_epoch\":2,\"leader\":-1,\"version\":1,\"leader_epoch\":5,\"isr\":[3]}");
    TEXT("fuzz_cluster", "topic-config",
         "{\"version\":1,\"config\":{\"retention.ms\":\"1000\",\"key.separator\":\"\\t\\\"\","
         "\"cleanup.policy\":\"compact,delete\",\"later.key\":\"x\",\"partitions\":\"9\"}}");
    TEXT("fuzz_cluster", "cluster-topics",
         "# topicfs\ncluster.id=Wm3x0xnKQpG3TzvS1aU8Ag\norders 4fXa8EwFQ3mKd2GxvVcTqg\n"
         "a.b-c_d AAAAAAAAAAAAAAAAAAAAAA\n");

    TEXT("fuzz_jsonl", "keyed", "\x03\x00\x00\x00\x00\x10\x20\x30\x00\x00\x00\x00key=value\n");
    TEXT("fuzz_jsonl", "binary",
         "\xff\xff\xff\xff\x01\x00\x00\x00\x00\x00\x00\x00\xc3\x28\x00\x7f\"\\");
    TEXT("fuzz_jsonl", "utf8",
         "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xe2\x82\xac\xf0\x9f\x98\x80\t\r");

    TEXT("fuzz_group", "commits",
         "t/g/0=3\nt/g/1=5\nt/h/2=1\nt/g/0=4\n>\x00"
         "2\n");
    TEXT("fuzz_group", "tombstone", "t/g/0=3\nt/g/0=\nt/g/1=2\n>\x01latest\n>\x02 -2 \n");
    TEXT("fuzz_group", "cursors",
         ">\x00"
         "earliest\n>\x01@1970-01-01T00:00:02Z\n>\x02@t3000\n>\x03"
         "1\n");
}

/* Inter-broker frames and payload fields (replicate/frame.c). */
/* One payload of each request kind, after its selector byte. */
static void proto_seeds(void)
{
    uint8_t b[1024];
    struct proto_fetch_part parts[2] = {{"orders", 0, 42, 3, 1 << 20}, {"logs", 5, 0, 0, 4096}};
    struct proto_fetch_req fr = {2, 500, 1, 1 << 20, 2, parts};
    b[0] = 0;
    text_seed("fuzz_proto", "fetch-request", b,
              1 + (size_t)proto_fetch_req_encode(&fr, b + 1, sizeof(b) - 1));
    static const uint8_t records[] = "batches as stored";
    struct proto_fetch_result res = {"orders",        0, 0, 40,   0, 42, 3, records,
                                     sizeof(records), 0, 0, NULL, 0};
    b[0] = 1;
    proto_fetch_reply_count(1, b + 1);
    size_t at = 3 + (size_t)proto_fetch_reply_part(&res, b + 3, sizeof(b) - 3);
    memcpy(b + at, records, sizeof(records));
    at += sizeof(records);
    struct producer_kept kept = {0x100000002ull, 1, 5, 2, 40};
    at += (size_t)proto_fetch_reply_producers(&kept, 1, b + at, sizeof(b) - at);
    text_seed("fuzz_proto", "fetch-reply", b, at);
    struct proto_epoch_query q = {"orders", 1, 4, 2};
    b[0] = 2;
    text_seed("fuzz_proto", "epoch-request", b,
              1 + (size_t)proto_epoch_req_encode(&q, 1, b + 1, sizeof(b) - 1));
    struct proto_epoch_answer a = {"orders", 1, 0, 2, 4242};
    b[0] = 3;
    text_seed("fuzz_proto", "epoch-reply", b,
              1 + (size_t)proto_epoch_reply_encode(&a, 1, b + 1, sizeof(b) - 1));
}

/* A forwarded write: keyed, keyless and empty records. */
static void produce_seeds(void)
{
    uint8_t b[1024];
    struct record_ref recs[3] = {{"k1:hello\n", 9, 2}, {"no key\n", 7, -1}, {"", 0, 0}};
    struct proto_produce_req r = {"orders", 2, 0x0000000100c0ffeeull, 1, 41, 3, recs};
    text_seed("fuzz_produce", "request", b, (size_t)proto_produce_req_encode(&r, b, sizeof(b)));
    proto_produce_reply_encode(4242, b);
    text_seed("fuzz_produce", "reply", b, PROTO_PRODUCE_REPLY_SIZE);
}

/* fuzz_group_proto: a request of each kind a mount sends its coordinator,
 * and replies with and without data. */
static void group_proto_seeds(void)
{
    uint8_t b[GROUP_PROTO_REQ_MAX];
    struct group_request q = {.op = GROUP_OP_JOIN, .topic = "orders", .group = "billing"};
    q.incarnation = 0x5eed5eed00000001ull;
    q.pid = 4242;
    q.follow = 1;
    text_seed("fuzz_group_proto", "join", b, (size_t)group_req_encode(&q, b, sizeof(b)));
    q.op = GROUP_OP_READ;
    q.member = 0x0000a11ce0000001ull;
    q.pos = 65536;
    q.len = 4096;
    text_seed("fuzz_group_proto", "read", b, (size_t)group_req_encode(&q, b, sizeof(b)));
    q.op = GROUP_OP_WAIT;
    q.len = 1000;
    q.since = 7;
    text_seed("fuzz_group_proto", "wait", b, (size_t)group_req_encode(&q, b, sizeof(b)));
    struct group_request c = {.op = GROUP_OP_CURSOR, .topic = "orders", .group = "billing"};
    c.partition = 3;
    c.time_ms = 1763892000000;
    strcpy(c.spec, "@2025-11-23T10:00:00Z");
    text_seed("fuzz_group_proto", "cursor", b, (size_t)group_req_encode(&c, b, sizeof(b)));
    struct group_request i = {.op = GROUP_OP_INFO, .topic = "orders", .group = "billing"};
    text_seed("fuzz_group_proto", "info", b, (size_t)group_req_encode(&i, b, sizeof(b)));
    static const char text[] = "p0 committed=4 end_offset=9 lag=5 owner=2:4242\n";
    uint8_t r[GROUP_PROTO_REPLY_HEAD + sizeof(text)];
    group_reply_head(12, sizeof(text) - 1, r);
    memcpy(r + GROUP_PROTO_REPLY_HEAD, text, sizeof(text) - 1);
    text_seed("fuzz_group_proto", "reply-info", r, GROUP_PROTO_REPLY_HEAD + sizeof(text) - 1);
    group_reply_head(0x0000a11ce0000001ull, 0, r);
    text_seed("fuzz_group_proto", "reply-join", r, GROUP_PROTO_REPLY_HEAD);
}

static void wire_seeds(void)
{
    uint8_t b[1024], p[256];
    size_t at = 0;
    struct payload_writer w;
    payload_writer_init(&w, p, sizeof(p));
    payload_put_u32(&w, 3);
    payload_put_str(&w, "orders");
    payload_put_i64(&w, -1);
    payload_put_bytes(&w, "batch bytes", 11);

    b[at++] = 0x0e; /* raw stream, default limit */
    b[at++] = 0x42; /* chunking */
    at += (size_t)frame_encode(b + at, sizeof(b) - at, FRAME_AUTH_HELLO, 0, 0, p, 37);
    at += (size_t)frame_encode(b + at, sizeof(b) - at, 100, 1, 7, p, w.len);
    at += (size_t)frame_encode(b + at, sizeof(b) - at, 101, 0, 7, NULL, 0);
    size_t last = (size_t)frame_encode(b + at, sizeof(b) - at, 102, 0, 8, p, w.len);
    at += last / 2; /* and half of one */
    text_seed("fuzz_frame", "raw-frames", b, at);

    at = 0;
    b[at++] = 0x0b; /* built stream, 4096-byte limit */
    b[at++] = 0x07;
    static const uint8_t ops[] = {0, 1, 2, 3, 0};
    for (size_t i = 0; i < sizeof(ops); i++) {
        b[at++] = ops[i];
        b[at++] = (uint8_t)w.len;
        b[at++] = 0;
        memcpy(b + at, p, w.len);
        at += w.len;
    }
    text_seed("fuzz_frame", "built", b, at);

    /* Operations: u32, str (cap 8), i64, bytes, end; then the payload. */
    at = 0;
    static const uint8_t fields[] = {2, 7 | 7 << 4, 4, 6, 8, 0, 1, 3, 5 | 4 << 4};
    b[at++] = sizeof(fields);
    memcpy(b + at, fields, sizeof(fields));
    at += sizeof(fields);
    memcpy(b + at, p, w.len);
    at += w.len;
    text_seed("fuzz_payload", "fields", b, at);
}

/* fuzz_leader_epoch: a mode byte, then a checkpoint (mode 1: without its
 * checksum line, which the target appends). One written by the core. */
static void epoch_seeds(const char *scratch)
{
    char path[1100];
    struct leader_epoch_cache c;
    leader_epoch_init(&c);
    if (leader_epoch_assign(&c, 0, 0) != 1 || leader_epoch_assign(&c, 7, 1234) != 1 ||
        leader_epoch_assign(&c, 2147483647, 9223372036854775807ull) != 1 ||
        leader_epoch_store(scratch, &c)) {
        fprintf(stderr, "epoch seeds: cannot write a checkpoint\n");
        exit(1);
    }
    leader_epoch_free(&c);
    snprintf(path, sizeof(path), "%s/" LEADER_EPOCH_FILE, scratch);
    size_t len;
    uint8_t *text = slurp(path, &len);
    FILE *f = seed("fuzz_leader_epoch", "written");
    fputc(0, f);
    fwrite(text, 1, len, f);
    fclose(f);
    free(text);
    /* fuzz_recovery: a partition with leader epochs, and one whose reset a
     * crash interrupted. */
    char dir[1024];
    struct partition *p;
    snprintf(dir, sizeof(dir), "%s/epochs", scratch);
    partition_open(dir, &small, &p);
    partition_assign_epoch(p, 3, 0);
    append_batches(p, 4, 2, 1, 1763892000000);
    partition_assign_epoch(p, 5, 8);
    append_batches(p, 4, 2, 1, 1763892000000);
    partition_sync(p);
    partition_close(p);
    dir_seed(dir, "fuzz_recovery", "epochs", 1);
    partition_open(dir, &small, &p);
    partition_reset_crash_point = 2;
    partition_reset(p, 40, 400);
    partition_reset_crash_point = 0;
    partition_close(p);
    dir_seed(dir, "fuzz_recovery", "reset-interrupted", 1);
    TEXT("fuzz_leader_epoch", "body", "\0011\n3\n0 0\n5 100\n9 9223372036854775807\n");
    TEXT("fuzz_leader_epoch", "empty", "\0011\n0\n");
    TEXT("fuzz_leader_epoch", "high-watermark", "\0010\n42\n");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_corpus OUTDIR\n");
        return 2;
    }
    snprintf(out_dir, sizeof(out_dir), "%s", argv[1]);
    mkdir(out_dir, 0755);
    const char *scratch = fuzz_dir(1);
    batch_seeds();
    partition_seeds(scratch);
    text_seeds();
    wire_seeds();
    proto_seeds();
    produce_seeds();
    group_proto_seeds();
    epoch_seeds(scratch);
    return 0;
}
