/* test_cluster.c - the parsers of cluster mode that need no ZooKeeper:
 *
 *  - zk_parse_connect (zk.h): servers and chroot of zk=, every refusal;
 *    zk_errno's table;
 *  - cluster_parse_hostport (listen=), cluster ids (valid characters, a
 *    generated id is Kafka's 22 base64url characters);
 *  - meta.properties (cluster_codec.h): a file Kafka wrote, comments, CRLF,
 *    unknown and repeated keys, every refusal, format/parse round trip, and
 *    read/write on a real directory;
 *  - the znodes' JSON: Kafka's own registrations and controller records,
 *    round trips of ours, every prefix of a valid document refused, nesting
 *    limits, escapes (surrogate pairs, \u0000), long keys, bad numbers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster_codec.h"
#include "zk.h"

static void connect_ok(const char *s, const char *hosts, const char *chroot)
{
    char *h, *c;
    int r = zk_parse_connect(s, &h, &c);
    if (r)
        fail_msg("%s: %d", s, r);
    assert_string_equal(h, hosts);
    if (chroot)
        assert_string_equal(c, chroot);
    else
        assert_null(c);
    free(h);
    free(c);
}

static void connect_bad(const char *s)
{
    char *h = (char *)1, *c = (char *)1;
    if (zk_parse_connect(s, &h, &c) != -EINVAL)
        fail_msg("accepted: %s", s);
    assert_null(h);
    assert_null(c);
}

static void test_parse_connect(void **state)
{
    (void)state;
    connect_ok("127.0.0.1:2181", "127.0.0.1:2181", NULL);
    connect_ok("127.0.0.1:2181/topicfs", "127.0.0.1:2181", "/topicfs");
    connect_ok("a:1,b.example.com:2,[::1]:65535/x/y.z", "a:1,b.example.com:2,[::1]:65535",
               "/x/y.z");
    connect_ok("zk:2181/", "zk:2181", NULL);
    connect_ok("zk:2181/a..b", "zk:2181", "/a..b");
    static const char *bad[] = {
        "",           "/topicfs",  ":2181",   "zk",       "zk:",       "zk:0",
        "zk:65536",   "zk:123456", "zk:1a",   "zk:-1",    "zk:1,",     ",zk:1",
        "zk:1,,zk:2", "zk:1//x",   "zk:1/x/", "zk:1/./x", "zk:1/x/..", "zk:1/x//y",
        "::1:2181",   "[::1]2181", "[]:1",    "[::1:1",   "z k:1",     "zk:1 ",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        connect_bad(bad[i]);
}

static void test_zk_errno(void **state)
{
    (void)state;
    /* The values of zookeeper.h's enum ZOO_ERRORS. */
    assert_int_equal(zk_errno(0), 0);
    assert_int_equal(zk_errno(-101), -ENOENT);    /* ZNONODE */
    assert_int_equal(zk_errno(-110), -EEXIST);    /* ZNODEEXISTS */
    assert_int_equal(zk_errno(-103), -ESTALE);    /* ZBADVERSION */
    assert_int_equal(zk_errno(-111), -ENOTEMPTY); /* ZNOTEMPTY */
    assert_int_equal(zk_errno(-4), -EAGAIN);      /* ZCONNECTIONLOSS */
    assert_int_equal(zk_errno(-7), -EAGAIN);      /* ZOPERATIONTIMEOUT */
    assert_int_equal(zk_errno(-112), -ENOTCONN);  /* ZSESSIONEXPIRED */
    assert_int_equal(zk_errno(-9), -ENOTCONN);    /* ZINVALIDSTATE */
    assert_int_equal(zk_errno(-102), -EACCES);    /* ZNOAUTH */
    assert_int_equal(zk_errno(-116), -ESHUTDOWN); /* ZCLOSING */
    assert_int_equal(zk_errno(-108), -EINVAL);    /* ZNOCHILDRENFOREPHEMERALS */
    assert_int_equal(zk_errno(-1), -EIO);         /* ZSYSTEMERROR */
}

static void hostport_ok(const char *s, const char *host, int port)
{
    char h[CLUSTER_HOST_MAX];
    int p;
    if (cluster_parse_hostport(s, h, &p))
        fail_msg("refused: %s", s);
    assert_string_equal(h, host);
    assert_int_equal(p, port);
}

static void test_hostport(void **state)
{
    (void)state;
    hostport_ok("127.0.0.1:9093", "127.0.0.1", 9093);
    hostport_ok("broker-1.example.com:1", "broker-1.example.com", 1);
    hostport_ok("[::1]:65535", "::1", 65535);
    hostport_ok("[fe80::1]:9092", "fe80::1", 9092);
    char longhost[300], host255[256];
    memset(host255, 'a', 255);
    host255[255] = '\0';
    snprintf(longhost, sizeof(longhost), "%s:1", host255);
    hostport_ok(longhost, host255, 1);
    snprintf(longhost, sizeof(longhost), "a%s:1", host255);
    static const char *bad[] = {
        "",        "9093",    ":9093",    "host:",   "host:0",    "host:65536",
        "host:+1", "host: 1", "::1:9093", "[::1]",   "[::1]9093", "[host]:1",
        "[]:1",    "ho st:1", "host/x:1", "host:1:2"};
    char h[CLUSTER_HOST_MAX] = "untouched";
    int p = 7;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (cluster_parse_hostport(bad[i], h, &p) != -EINVAL)
            fail_msg("accepted: %s", bad[i]);
    assert_int_equal(cluster_parse_hostport(longhost, h, &p), -EINVAL);
    assert_string_equal(h, "untouched");
    assert_int_equal(p, 7);
}

static void test_cluster_ids(void **state)
{
    (void)state;
    char a[CLUSTER_ID_MAX], b[CLUSTER_ID_MAX];
    assert_int_equal(cluster_id_generate(a), 0);
    assert_int_equal(cluster_id_generate(b), 0);
    assert_int_equal(strlen(a), 22);
    assert_true(cluster_id_valid(a));
    assert_string_not_equal(a, b);
    assert_true(cluster_id_valid("4fXa8EwFQ3mKd2GxvVcTqg"));
    assert_true(cluster_id_valid("a.b_c-D9"));
    assert_false(cluster_id_valid(""));
    assert_false(cluster_id_valid("a b"));
    assert_false(cluster_id_valid("a/b"));
    assert_false(cluster_id_valid("a\"b"));
    char longid[80];
    memset(longid, 'x', 63);
    longid[63] = '\0';
    assert_true(cluster_id_valid(longid));
    longid[63] = 'x';
    longid[64] = '\0';
    assert_false(cluster_id_valid(longid));
}

static void meta_ok(const char *text, int broker, const char *cluster)
{
    struct cluster_meta m;
    int r = cluster_meta_parse(text, strlen(text), &m);
    if (r)
        fail_msg("refused (%d): %s", r, text);
    assert_int_equal(m.broker_id, broker);
    assert_string_equal(m.cluster_id, cluster);
}

static void test_meta_parse(void **state)
{
    (void)state;
    /* As Kafka 2.x writes it. */
    meta_ok("#\n#Tue Nov 21 10:00:00 UTC 2023\ncluster.id=4fXa8EwFQ3mKd2GxvVcTqg\nversion=0\n"
            "broker.id=1\n",
            1, "4fXa8EwFQ3mKd2GxvVcTqg");
    meta_ok("version=0\r\nbroker.id=2147483647\r\ncluster.id=abc\r\n", 2147483647, "abc");
    meta_ok("! comment\n\nversion=0\nbroker.id=0\ncluster.id=a\nlog.dirs=/x\nbroker.id=3", 3, "a");
    static const char *bad[] = {
        "",
        "version=0\nbroker.id=1\n",
        "version=0\ncluster.id=a\n",
        "broker.id=1\ncluster.id=a\n",
        "version=1\nbroker.id=1\ncluster.id=a\n",
        "version=0\nbroker.id=-1\ncluster.id=a\n",
        "version=0\nbroker.id=one\ncluster.id=a\n",
        "version=0\nbroker.id=2147483648\ncluster.id=a\n",
        "version=0\nbroker.id=\ncluster.id=a\n",
        "version=0\nbroker.id=1\ncluster.id=\n",
        "version=0\nbroker.id=1\ncluster.id=a b\n",
        "version=0\nbroker.id=1\ncluster.id=a\nnot a property\n",
        "version=0\nbroker.id=1\ncluster.id=a\n=x\n",
        "version=0\nbroker.id= 1\ncluster.id=a\n",
    };
    struct cluster_meta m = {.broker_id = 42};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (cluster_meta_parse(bad[i], strlen(bad[i]), &m) != -EINVAL)
            fail_msg("accepted: %s", bad[i]);
    assert_int_equal(m.broker_id, 42);
    char longid[100] = "version=0\nbroker.id=1\ncluster.id=";
    memset(longid + strlen(longid), 'x', 64);
    assert_int_equal(cluster_meta_parse(longid, strlen(longid), &m), -EINVAL);
}

static void test_meta_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/topicfs-test-meta-XXXXXX", path[128], text[256];
    assert_non_null(mkdtemp(dir));
    struct cluster_meta m = {.broker_id = 7}, back;
    strcpy(m.cluster_id, "Zx_9-a.b");
    int n = cluster_meta_format(&m, text, sizeof(text));
    assert_true(n > 0);
    assert_int_equal(cluster_meta_parse(text, (size_t)n, &back), 0);
    assert_int_equal(back.broker_id, 7);
    assert_string_equal(back.cluster_id, "Zx_9-a.b");
    assert_int_equal(cluster_meta_format(&m, text, 10), -ENOSPC);

    assert_int_equal(cluster_meta_read(dir, &back), -ENOENT);
    snprintf(path, sizeof(path), "%s/none", dir);
    assert_int_equal(cluster_meta_read(path, &back), -ENOENT);
    assert_int_equal(cluster_meta_write(dir, &m), 0);
    memset(&back, 0, sizeof(back));
    assert_int_equal(cluster_meta_read(dir, &back), 0);
    assert_int_equal(back.broker_id, 7);
    assert_string_equal(back.cluster_id, "Zx_9-a.b");
    snprintf(path, sizeof(path), "%s/meta.properties.tmp", dir);
    assert_int_equal(access(path, F_OK), -1); /* no temporary left */
    snprintf(path, sizeof(path), "%s/meta.properties", dir);
    FILE *f = fopen(path, "w");
    fputs("version=0\nbroker.id=x\n", f);
    fclose(f);
    assert_int_equal(cluster_meta_read(dir, &back), -EINVAL);
    unlink(path);
    rmdir(dir);
}

#define KAFKA_BROKER                                                                               \
    "{\"features\":{},\"listener_security_protocol_map\":{\"PLAINTEXT\":\"PLAINTEXT\"},"           \
    "\"endpoints\":[\"PLAINTEXT://kafka-1:9092\"],\"jmx_port\":-1,\"port\":9092,"                  \
    "\"host\":\"kafka-1\",\"version\":5,\"timestamp\":\"1700000000123\",\"rack\":null}"

static void test_broker_json(void **state)
{
    (void)state;
    struct cluster_broker_record b, back;
    assert_int_equal(cluster_broker_decode(KAFKA_BROKER, strlen(KAFKA_BROKER), &b), 0);
    assert_string_equal(b.host, "kafka-1");
    assert_int_equal(b.port, 9092);
    assert_int_equal(b.timestamp_ms, 1700000000123LL);

    char json[512];
    struct cluster_broker_record v6 = {.host = "::1", .port = 65535, .timestamp_ms = 5};
    int n = cluster_broker_encode(&v6, json, sizeof(json));
    assert_true(n > 0);
    assert_non_null(strstr(json, "\"TOPICFS://[::1]:65535\""));
    assert_int_equal(cluster_broker_decode(json, (size_t)n, &back), 0);
    assert_string_equal(back.host, "::1");
    assert_int_equal(back.port, 65535);
    assert_int_equal(back.timestamp_ms, 5);
    assert_int_equal(cluster_broker_encode(&v6, json, 20), -ENOSPC);
    struct cluster_broker_record badhost = {.host = "a\"b", .port = 1};
    assert_int_equal(cluster_broker_encode(&badhost, json, sizeof(json)), -EINVAL);

    /* Every prefix of a valid document is refused. */
    size_t len = strlen(KAFKA_BROKER);
    for (size_t i = 0; i < len; i++)
        if (cluster_broker_decode(KAFKA_BROKER, i, &back) != -EINVAL)
            fail_msg("prefix of %zu bytes accepted", i);

    static const char *bad[] = {
        "{\"host\":\"h\"}",            /* no port */
        "{\"port\":1}",                /* no host */
        "{\"host\":\"h\",\"port\":0}", /* port range */
        "{\"host\":\"h\",\"port\":65536}",
        "{\"host\":\"h\",\"port\":1.0}", /* not an integer */
        "{\"host\":\"h\",\"port\":1e3}",
        "{\"host\":\"h\",\"port\":\"1\"x}", /* garbage */
        "{\"host\":\"h\",\"port\":01}",     /* not JSON */
        "{\"host\":\"h\",\"port\":1} x",    /* trailing */
        "{\"host\":\"h\",\"port\":1,}",     /* trailing comma */
        "{\"host\":\"h b\",\"port\":1}",    /* host characters */
        "{\"host\":\"\",\"port\":1}",
        "{\"host\":\"h\\u0000x\",\"port\":1}", /* NUL */
        "{\"host\":\"\\ud800\",\"port\":1}",   /* lone surrogates */
        "{\"host\":\"\\udc00\",\"port\":1}",
        "{\"host\":\"h\\x\",\"port\":1}",               /* bad escape */
        "{\"host\":\"h\",\"port\":1,\"timestamp\":-5}", /* bad timestamp */
        "{\"host\":\"h\",\"port\":1,\"timestamp\":\"12a\"}",
        "{\"host\":h,\"port\":1}",
        "[\"host\",\"h\"]",
        "{\"host\":\"h\",\"port\":1,\"x\":tru}",
        "{\"host\":\"h\",\"port\":1,\"x\":\"\t\"}", /* raw control character */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (cluster_broker_decode(bad[i], strlen(bad[i]), &back) != -EINVAL)
            fail_msg("accepted: %s", bad[i]);

    /* Escapes, whitespace, a repeated key (the last wins), a key longer than
     * the reader keeps (skipped), a surrogate pair elsewhere. */
    const char *ok = " {\"h\\u006fst\" : \"a\\u002db\", \"port\":1, \"port\" : 2 ,"
                     "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\":"
                     "{\"host\":\"nested\"},\"e\":\"\\ud83d\\ude00\",\"n\":-0.5e+3} ";
    assert_int_equal(cluster_broker_decode(ok, strlen(ok), &back), 0);
    assert_string_equal(back.host, "a-b");
    assert_int_equal(back.port, 2);
    assert_int_equal(back.timestamp_ms, -1);
}

static void test_nesting(void **state)
{
    (void)state;
    char json[512];
    struct cluster_controller_record c;
    /* depth containers nested in the document's object: {"k": and [ by turns. */
    for (int depth = 30; depth <= 34; depth++) {
        size_t n = (size_t)snprintf(json, sizeof(json), "{\"brokerid\":1,\"x\":");
        for (int i = 0; i < depth; i++)
            n += (size_t)snprintf(json + n, sizeof(json) - n, "%s", i % 2 ? "[" : "{\"k\":");
        json[n++] = '1';
        for (int i = depth - 1; i >= 0; i--)
            json[n++] = i % 2 ? ']' : '}';
        json[n++] = '}';
        int r = cluster_controller_decode(json, n, &c);
        if (depth <= 32)
            assert_int_equal(r, 0);
        else
            assert_int_equal(r, -EINVAL);
    }
}

static void test_controller_json(void **state)
{
    (void)state;
    struct cluster_controller_record c;
    const char *kafka = "{\"version\":1,\"brokerid\":3,\"timestamp\":\"1559742391035\"}";
    assert_int_equal(cluster_controller_decode(kafka, strlen(kafka), &c), 0);
    assert_int_equal(c.broker_id, 3);
    assert_int_equal(c.timestamp_ms, 1559742391035LL);
    const char *kafka2 =
        "{\"version\":2,\"brokerid\":0,\"timestamp\":1,\"kraftControllerEpoch\":-1}";
    assert_int_equal(cluster_controller_decode(kafka2, strlen(kafka2), &c), 0);
    assert_int_equal(c.broker_id, 0);
    char json[128];
    struct cluster_controller_record mine = {2147483647, 9223372036854775807LL}, back;
    int n = cluster_controller_encode(&mine, json, sizeof(json));
    assert_true(n > 0);
    assert_int_equal(cluster_controller_decode(json, (size_t)n, &back), 0);
    assert_int_equal(back.broker_id, 2147483647);
    assert_int_equal(back.timestamp_ms, 9223372036854775807LL);
    static const char *bad[] = {"{}",
                                "{\"brokerid\":-1}",
                                "{\"brokerid\":2147483648}",
                                "{\"brokerid\":\"x\"}",
                                "{\"brokerid\":1,\"timestamp\":"
                                "\"99999999999999999999\"}",
                                "{\"brokerid\":99999999999999999999}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (cluster_controller_decode(bad[i], strlen(bad[i]), &c) != -EINVAL)
            fail_msg("accepted: %s", bad[i]);
}

static void test_cluster_id_json(void **state)
{
    (void)state;
    char id[CLUSTER_ID_MAX], json[128];
    const char *kafka = "{\"version\":\"1\",\"id\":\"4fXa8EwFQ3mKd2GxvVcTqg\"}";
    assert_int_equal(cluster_id_decode(kafka, strlen(kafka), id), 0);
    assert_string_equal(id, "4fXa8EwFQ3mKd2GxvVcTqg");
    int n = cluster_id_encode("abc", json, sizeof(json));
    assert_string_equal(json, "{\"version\":\"1\",\"id\":\"abc\"}");
    assert_int_equal(cluster_id_decode(json, (size_t)n, id), 0);
    assert_string_equal(id, "abc");
    assert_int_equal(cluster_id_encode("a b", json, sizeof(json)), -EINVAL);
    static const char *bad[] = {"{\"id\":\"\"}", "{\"id\":\"a/b\"}", "{\"id\":1}", "{}",
                                "{\"id\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                                "xxxxxxxxxxxxxxxxxxxxxxxx\"}"};
    strcpy(id, "kept");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (cluster_id_decode(bad[i], strlen(bad[i]), id) != -EINVAL)
            fail_msg("accepted: %s", bad[i]);
    assert_string_equal(id, "kept");
}

static void test_epoch(void **state)
{
    (void)state;
    int e = -1;
    assert_int_equal(cluster_epoch_decode("0", 1, &e), 0);
    assert_int_equal(e, 0);
    assert_int_equal(cluster_epoch_decode("2147483647", 10, &e), 0);
    assert_int_equal(e, 2147483647);
    static const char *bad[] = {"", "-1", "2147483648", " 1", "1 ", "1x", "+1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (cluster_epoch_decode(bad[i], strlen(bad[i]), &e) != -EINVAL)
            fail_msg("accepted: %s", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_connect),   cmocka_unit_test(test_zk_errno),
        cmocka_unit_test(test_hostport),        cmocka_unit_test(test_cluster_ids),
        cmocka_unit_test(test_meta_parse),      cmocka_unit_test(test_meta_files),
        cmocka_unit_test(test_broker_json),     cmocka_unit_test(test_nesting),
        cmocka_unit_test(test_controller_json), cmocka_unit_test(test_cluster_id_json),
        cmocka_unit_test(test_epoch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
