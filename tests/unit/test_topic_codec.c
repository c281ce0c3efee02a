/* test_topic_codec.c - the JSON of the cluster's topic znodes and the data
 * dir's cluster-topics list (topic_codec.h), and json.h's iterators:
 *
 *  - assignments: ours round trip; Kafka's version 1/2 documents (no
 *    topic_id) and partitions in any order decode; growth; every prefix of
 *    a valid document, a missing, repeated or out-of-range partition, a
 *    leading zero, an empty, repeated, negative, quoted or too long replica
 *    list are refused and leave the output alone;
 *  - reassignments: leaving replicas set, encoded as removing_replicas and
 *    decoded back; removing replicas not at the tail refused;
 *  - partition states: round trip, Kafka's with fields we do not know,
 *    refusals (leader -2, no ISR, an ISR id twice);
 *  - configs: the whole config (but partitions and replication.factor)
 *    round trips, key.separator with quotes, backslashes and tabs included;
 *    unknown keys are skipped, a bad value or a non-string refused;
 *  - cluster-topics: parse, format, set, remove, refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "topic_codec.h"

static void assignment_ok(const char *json, const char *id, uint32_t nparts, const char *want)
{
    struct cluster_assignment a;
    int r = cluster_assignment_decode(json, strlen(json), &a);
    if (r)
        fail_msg("refused (%d): %s", r, json);
    assert_string_equal(a.topic_id, id);
    assert_int_equal(a.nparts, nparts);
    char got[256] = "";
    for (uint32_t p = 0; p < a.nparts; p++) {
        const int32_t *ids;
        uint32_t n = cluster_assignment_replicas(&a, p, &ids);
        for (uint32_t i = 0; i < n; i++)
            snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%d", i ? "," : "", ids[i]);
        strcat(got, p + 1 < a.nparts ? ";" : "");
    }
    assert_string_equal(got, want);
    cluster_assignment_free(&a);
}

static void assignment_bad(const char *json)
{
    struct cluster_assignment a = {.nparts = 77};
    if (cluster_assignment_decode(json, strlen(json), &a) != -EINVAL)
        fail_msg("accepted: %s", json);
    assert_int_equal(a.nparts, 77);
}

static void test_assignment(void **state)
{
    (void)state;
    const int32_t flat[] = {1, 2, 3, 2, 3, 1};
    struct cluster_assignment a, b;
    char *json;
    size_t len;
    assert_int_equal(cluster_assignment_make(&a, "4fXa8EwFQ3mKd2GxvVcTqg", 2, 3, flat), 0);
    assert_int_equal(cluster_assignment_encode(&a, &json, &len), 0);
    assert_string_equal(json, "{\"version\":3,\"topic_id\":\"4fXa8EwFQ3mKd2GxvVcTqg\","
                              "\"partitions\":{\"0\":[1,2,3],\"1\":[2,3,1]},"
                              "\"adding_replicas\":{},\"removing_replicas\":{}}");
    assignment_ok(json, "4fXa8EwFQ3mKd2GxvVcTqg", 2, "1,2,3;2,3,1");
    /* Every prefix is refused. */
    for (size_t n = 0; n < len; n++) {
        char *prefix = strndup(json, n);
        assignment_bad(prefix);
        free(prefix);
    }
    free(json);
    const int32_t more[] = {3, 1};
    assert_int_equal(cluster_assignment_grow(&a, 1, 2, more), 0);
    assert_int_equal(cluster_assignment_copy(&b, &a), 0);
    cluster_assignment_free(&a);
    assert_int_equal(cluster_assignment_encode(&b, &json, &len), 0);
    assignment_ok(json, "4fXa8EwFQ3mKd2GxvVcTqg", 3, "1,2,3;2,3,1;3,1");
    free(json);
    cluster_assignment_free(&b);

    assignment_ok("{\"version\":1,\"partitions\":{\"1\":[0],\"0\":[1, 0]}}", "", 2, "1,0;0");
    assignment_ok(" {\"partitions\" : {\"0\":[5]}, \"version\":2, \"x\":[{}]} ", "", 1, "5");
    assignment_ok("{\"version\":3,\"topic_id\":\"AAAAAAAAAAAAAAAAAAAAAA\","
                  "\"partitions\":{\"0\":[1]},\"adding_replicas\":{\"0\":[2]}}",
                  "AAAAAAAAAAAAAAAAAAAAAA", 1, "1");
    assignment_bad("{\"partitions\":{}}");
    assignment_bad("{\"partitions\":{\"1\":[1]}}");
    assignment_bad("{\"partitions\":{\"0\":[1],\"0\":[2]}}");
    assignment_bad("{\"partitions\":{\"0\":[1],\"2\":[2]}}");
    assignment_bad("{\"partitions\":{\"00\":[1]}}");
    assignment_bad("{\"partitions\":{\"-1\":[1]}}");
    assignment_bad("{\"partitions\":{\"0\":[]}}");
    assignment_bad("{\"partitions\":{\"0\":[1,1]}}");
    assignment_bad("{\"partitions\":{\"0\":[-1]}}");
    assignment_bad("{\"partitions\":{\"0\":[\"1\"]}}");
    assignment_bad("{\"partitions\":{\"0\":[1.5]}}");
    assignment_bad("{\"partitions\":{\"0\":1}}");
    assignment_bad("{\"partitions\":[[1]]}");
    assignment_bad("{\"topic_id\":\"no spaces\",\"partitions\":{\"0\":[1]}}");
    assignment_bad("{\"topic_id\":7,\"partitions\":{\"0\":[1]}}");
    assignment_bad("[{\"partitions\":{\"0\":[1]}}]");
    char big[1024] = "{\"partitions\":{\"0\":[0";
    for (int i = 1; i <= CLUSTER_REPLICAS_MAX; i++)
        snprintf(big + strlen(big), sizeof(big) - strlen(big), ",%d", i);
    strcat(big, "]}}");
    assignment_bad(big);
    assert_int_equal(cluster_assignment_make(&a, "x", 1, CLUSTER_REPLICAS_MAX + 1, flat), -EINVAL);
}

/* A reassignment's leaving replicas: set, encoded as removing_replicas,
 * decoded back, copied and kept through growth; Kafka's documents decode;
 * removing replicas that are not the tail of the list (or all of it) are
 * refused. */
static void test_reassignment(void **state)
{
    (void)state;
    const int32_t flat[] = {1, 2, 3, 2, 3, 1};
    struct cluster_assignment a, b;
    char *json;
    size_t len;
    const int32_t *ids;
    assert_int_equal(cluster_assignment_make(&a, "4fXa8EwFQ3mKd2GxvVcTqg", 2, 3, flat), 0);
    assert_int_equal(cluster_assignment_reassigning(&a), 0);
    assert_int_equal(cluster_assignment_set(&a, 1, (const int32_t[]){2, 4, 3, 1}, 4, 2), 0);
    assert_int_equal(cluster_assignment_set(&a, 1, (const int32_t[]){2}, 1, 1), -EINVAL);
    assert_int_equal(cluster_assignment_reassigning(&a), 1);
    assert_int_equal(cluster_assignment_leaving(&a, 0), 0);
    assert_int_equal(cluster_assignment_leaving(&a, 1), 2);
    assert_int_equal(cluster_assignment_target(&a, 1, &ids), 2);
    assert_int_equal(ids[0], 2);
    assert_int_equal(ids[1], 4);
    assert_int_equal(cluster_assignment_replicas(&a, 0, &ids), 3);
    assert_int_equal(cluster_assignment_encode(&a, &json, &len), 0);
    assert_string_equal(json, "{\"version\":3,\"topic_id\":\"4fXa8EwFQ3mKd2GxvVcTqg\","
                              "\"partitions\":{\"0\":[1,2,3],\"1\":[2,4,3,1]},"
                              "\"adding_replicas\":{},\"removing_replicas\":{\"1\":[3,1]}}");
    assert_int_equal(cluster_assignment_decode(json, len, &b), 0);
    free(json);
    assert_int_equal(cluster_assignment_leaving(&b, 1), 2);
    assert_int_equal(cluster_assignment_replicas(&b, 1, &ids), 4);
    assert_int_equal(cluster_assignment_grow(&b, 1, 2, (const int32_t[]){3, 1}), 0);
    assert_int_equal(cluster_assignment_leaving(&b, 2), 0);
    assert_int_equal(cluster_assignment_leaving(&b, 1), 2);
    cluster_assignment_free(&a);
    assert_int_equal(cluster_assignment_copy(&a, &b), 0);
    cluster_assignment_free(&b);
    /* Done: the leaving ones go. */
    assert_int_equal(cluster_assignment_set(&a, 1, (const int32_t[]){2, 4}, 2, 0), 0);
    assert_int_equal(cluster_assignment_reassigning(&a), 0);
    assert_int_equal(cluster_assignment_encode(&a, &json, &len), 0);
    assignment_ok(json, "4fXa8EwFQ3mKd2GxvVcTqg", 3, "1,2,3;2,4;3,1");
    free(json);
    cluster_assignment_free(&a);

    /* Kafka's: any order within the tail; empty lists. */
    assignment_ok("{\"version\":3,\"partitions\":{\"0\":[4,1,2,3]},"
                  "\"adding_replicas\":{\"0\":[4]},\"removing_replicas\":{\"0\":[3,2]}}",
                  "", 1, "4,1,2,3");
    assignment_ok("{\"partitions\":{\"0\":[1,2]},\"removing_replicas\":{\"0\":[]}}", "", 1, "1,2");
    assignment_bad("{\"partitions\":{\"0\":[1,2,3]},\"removing_replicas\":{\"0\":[1]}}");
    assignment_bad("{\"partitions\":{\"0\":[1,2]},\"removing_replicas\":{\"0\":[1,2]}}");
    assignment_bad("{\"partitions\":{\"0\":[1,2]},\"removing_replicas\":{\"1\":[2]}}");
    assignment_bad("{\"partitions\":{\"0\":[1,2]},\"removing_replicas\":{\"0\":[5]}}");
    assignment_bad("{\"partitions\":{\"0\":[1,2]},\"removing_replicas\":[2]}");
    assignment_bad("{\"partitions\":{\"0\":[1,2,3]},\"removing_replicas\":{\"0\":[3],\"0\":[3]}}");
}

static void test_state(void **state)
{
    (void)state;
    struct cluster_partition_state s = {
        .controller_epoch = 3, .leader = 2, .leader_epoch = 7, .nisr = 2, .isr = {2, 1}};
    struct cluster_partition_state back;
    char buf[256];
    int n = cluster_state_encode(&s, buf, sizeof(buf));
    assert_string_equal(buf, "{\"controller_epoch\":3,\"leader\":2,\"version\":1,"
                             "\"leader_epoch\":7,\"isr\":[2,1]}");
    assert_int_equal(cluster_state_decode(buf, (size_t)n, &back), 0);
    assert_true(cluster_state_equal(&s, &back));
    assert_int_equal(cluster_state_encode(&s, buf, 10), -ENOSPC);
    const char *kafka = "{\"controller_epoch\":1,\"leader\":-1,\"version\":2,"
                        "\"leader_recovery_state\":0,\"leader_epoch\":0,\"isr\":[]}";
    assert_int_equal(cluster_state_decode(kafka, strlen(kafka), &back), 0);
    assert_int_equal(back.leader, -1);
    assert_int_equal(back.nisr, 0);
    const char *bad[] = {
        "{\"controller_epoch\":1,\"leader\":-2,\"leader_epoch\":0,\"isr\":[1]}",
        "{\"controller_epoch\":1,\"leader\":1,\"leader_epoch\":0}",
        "{\"controller_epoch\":1,\"leader\":1,\"leader_epoch\":0,\"isr\":[1,1]}",
        "{\"controller_epoch\":1,\"leader\":1,\"leader_epoch\":-1,\"isr\":[1]}",
        "{\"leader\":1,\"leader_epoch\":0,\"isr\":[1]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&back, 0x5a, sizeof(back));
        struct cluster_partition_state untouched = back;
        if (cluster_state_decode(bad[i], strlen(bad[i]), &back) != -EINVAL)
            fail_msg("accepted: %s", bad[i]);
        assert_memory_equal(&back, &untouched, sizeof(back));
    }
}

static void test_config(void **state)
{
    (void)state;
    struct topic_config c, d, e;
    char *json;
    size_t len;
    config_defaults(&c, 3);
    assert_int_equal(config_set(&c, "retention.ms", "1000"), 0);
    assert_int_equal(config_set(&c, "key.separator", "\"\\\t"), 0);
    assert_int_equal(config_set(&c, "cleanup.policy", "compact,delete"), 0);
    assert_int_equal(config_set(&c, "replication.factor", "3"), 0);
    assert_int_equal(cluster_config_encode(&c, &json, &len), 0);
    assert_null(strstr(json, "partitions"));
    assert_null(strstr(json, "replication.factor"));
    assert_non_null(strstr(json, "\"key.separator\":\"\\\"\\\\\\u0009\""));
    assert_non_null(strstr(json, "\"retention.ms\":\"1000\""));
    config_defaults(&d, 3);
    assert_int_equal(config_set(&d, "replication.factor", "3"), 0);
    assert_int_equal(cluster_config_decode(json, len, &d), 0);
    assert_memory_equal(&c, &d, sizeof(c));
    free(json);

    /* Kafka's overrides only; unknown keys skipped; partitions ignored. */
    const char *kafka = "{\"version\":1,\"config\":{\"retention.ms\":\"5\","
                        "\"unclean.leader.election.enable\":\"true\",\"partitions\":\"1\","
                        "\"replication.factor\":\"9\"}}";
    config_defaults(&d, 4);
    assert_int_equal(cluster_config_decode(kafka, strlen(kafka), &d), 0);
    assert_int_equal(d.retention_ms, 5);
    assert_int_equal(d.partitions, 4);
    assert_int_equal(d.replication_factor, 1);
    const char *bad[] = {
        "{\"version\":1,\"config\":{\"retention.ms\":\"soon\"}}",
        "{\"version\":1,\"config\":{\"retention.ms\":5}}",
        "{\"version\":1,\"config\":[]}",
        "{\"version\":1}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        config_defaults(&d, 4);
        e = d;
        if (cluster_config_decode(bad[i], strlen(bad[i]), &d) != -EINVAL)
            fail_msg("accepted: %s", bad[i]);
        assert_memory_equal(&d, &e, sizeof(d));
    }
}

static void test_topic_ids(void **state)
{
    (void)state;
    struct topic_id_list l = {0};
    const char *text = "# comment\nzeta BBBBBBBBBBBBBBBBBBBBBB\norders AAAAAAAAAAAAAAAAAAAAAA\n";
    char *out;
    size_t len;
    assert_int_equal(topic_ids_parse(text, strlen(text), &l), 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(topic_ids_find(&l, "orders")->id, "AAAAAAAAAAAAAAAAAAAAAA");
    assert_null(topic_ids_find(&l, "other"));
    assert_int_equal(topic_ids_set(&l, "middle", "CCCCCCCCCCCCCCCCCCCCCC"), 0);
    assert_int_equal(topic_ids_set(&l, "zeta", "DDDDDDDDDDDDDDDDDDDDDD"), 0);
    assert_int_equal(topic_ids_set(&l, "orders", NULL), 0);
    assert_int_equal(topic_ids_set(&l, "absent", NULL), 0);
    assert_int_equal(topic_ids_format(&l, &out, &len), 0);
    assert_string_equal(out, "# topicfs: topics this broker holds for its cluster: name topic_id\n"
                             "middle CCCCCCCCCCCCCCCCCCCCCC\nzeta DDDDDDDDDDDDDDDDDDDDDD\n");
    topic_ids_free(&l);
    assert_int_equal(topic_ids_parse(out, len, &l), 0);
    assert_int_equal(l.n, 2);
    topic_ids_free(&l);
    free(out);
    const char *bad[] = {"o A\0\n",          "orders\n",      "orders  AAAA\n",
                         "bad/name AAAA\n",  "o AA AA\n",     "o A\no B\n",
                         "cluster.id=a b\n", "cluster.id=\n", "cluster.id=A\ncluster.id=B\n",
                         "cluster.idx=A\n",  "o=A B\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n = i == 0 ? 6 : strlen(bad[i]);
        if (topic_ids_parse(bad[i], n, &l) != -EINVAL)
            fail_msg("accepted: %s", bad[i]);
    }
    assert_int_equal(topic_ids_parse("", 0, &l), 0);
    assert_int_equal(l.n, 0);
}

static void test_json_iterators(void **state)
{
    (void)state;
    const char *doc = "{\"o\":{\"a\":1,\"bb\":[2,{\"c\":3}],\"a-very-long-name\":4},\"e\":[]}";
    struct json_span v, m;
    struct json_iter it;
    char name[8];
    assert_int_equal(json_field(doc, strlen(doc), "o", &v), 0);
    assert_int_equal(json_object_begin(v, &it), 0);
    assert_int_equal(json_object_next(&it, name, sizeof(name), &m), 1);
    assert_string_equal(name, "a");
    assert_int_equal(json_object_next(&it, name, sizeof(name), &m), 1);
    assert_string_equal(name, "bb");
    assert_int_equal((int)(m.end - m.p), 11);
    assert_int_equal(json_object_next(&it, name, sizeof(name), &m), -ENAMETOOLONG);
    int64_t x;
    assert_int_equal(json_span_int(m, 0, 9, &x), 0);
    assert_int_equal(x, 4);
    assert_int_equal(json_object_next(&it, name, sizeof(name), &m), 0);
    assert_int_equal(json_array_begin(v, &it), -EINVAL);
    assert_int_equal(json_field(doc, strlen(doc), "e", &v), 0);
    assert_int_equal(json_array_begin(v, &it), 0);
    assert_int_equal(json_array_next(&it, &m), 0);
    /* Broken spans are caught by the iterators themselves. */
    v.p = "[1,,2]";
    v.end = v.p + 6;
    assert_int_equal(json_array_begin(v, &it), 0);
    assert_int_equal(json_array_next(&it, &m), 1);
    assert_true(json_array_next(&it, &m) < 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_assignment),     cmocka_unit_test(test_state),
        cmocka_unit_test(test_config),         cmocka_unit_test(test_topic_ids),
        cmocka_unit_test(test_json_iterators), cmocka_unit_test(test_reassignment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
