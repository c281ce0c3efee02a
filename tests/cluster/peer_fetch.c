/* peer_fetch - a follower's requests by hand, for tests: connects to ADDR
 * as broker MY_ID (no secret: insecure loopback mode) and sends one
 * request for partition TOPIC-PARTITION at leader epoch EPOCH:
 *   peer_fetch ADDR MY_ID fetch REPLICA_ID TOPIC PARTITION OFFSET EPOCH
 *       prints "ERR hw=N start=N end=N epoch=N bytes=N" (ERR: the part's
 *       errno name, or "ok")
 *   peer_fetch ADDR MY_ID fetch2 REPLICA_ID TOPIC PARTITION OFFSET OFFSET2 EPOCH MAX_BYTES
 *       the same partition twice in one request, from OFFSET and OFFSET2,
 *       each part at most MAX_BYTES (the first batch whole): a line per part
 *   peer_fetch ADDR MY_ID epoch TOPIC PARTITION EPOCH LEADER_EPOCH
 *       prints "ERR epoch=E end=N"
 * A refused request prints its errno name alone. Exit 0 when an answer
 * came, 1 otherwise. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "server.h"

static const char *name(uint32_t e)
{
    return e ? strerrorname_np((int)e) : "ok";
}

int main(int argc, char **argv)
{
    uint64_t offset2 = 0;
    uint32_t part_max = 1 << 20;
    int fetch = argc == 9 && !strcmp(argv[3], "fetch");
    int fetch2 = argc == 11 && !strcmp(argv[3], "fetch2");
    int epoch = argc == 8 && !strcmp(argv[3], "epoch");
    if (fetch2) {
        /* as fetch, with the second offset and the part limit moved aside */
        static char *args[9];
        for (int i = 0; i < 8; i++)
            args[i] = argv[i];
        args[8] = argv[9];
        fetch2 = 1;
        fetch = 1;
        offset2 = strtoull(argv[8], NULL, 10);
        part_max = (uint32_t)strtoul(argv[10], NULL, 10);
        argv = args;
    }
    if (!fetch && !epoch) {
        fprintf(stderr, "usage: peer_fetch ADDR MY_ID fetch REPLICA_ID TOPIC PARTITION OFFSET "
                        "EPOCH\n       peer_fetch ADDR MY_ID epoch TOPIC PARTITION EPOCH "
                        "LEADER_EPOCH\n");
        return 2;
    }
    struct peer_conn *pc;
    static uint8_t buf[4096];
    ssize_t len;
    int r = peer_connect(argv[1], NULL, atoi(argv[2]), -1, 10000, &pc);
    if (r) {
        printf("%s\n", strerrorname_np(-r));
        return 1;
    }
    if (fetch) {
        struct proto_fetch_part part[2] = {{.partition = (uint32_t)atoi(argv[6]),
                                            .fetch_offset = strtoull(argv[7], NULL, 10),
                                            .current_leader_epoch = (uint32_t)atoi(argv[8]),
                                            .max_bytes = part_max}};
        snprintf(part[0].topic, sizeof(part[0].topic), "%s", argv[5]);
        part[1] = part[0];
        part[1].fetch_offset = offset2;
        struct proto_fetch_req q = {.replica_id = atoi(argv[4]),
                                    .max_wait_ms = 100,
                                    .min_bytes = 1,
                                    .max_bytes = 1 << 20,
                                    .n = fetch2 ? 2 : 1,
                                    .parts = part};
        len = proto_fetch_req_encode(&q, buf, sizeof(buf));
    } else {
        struct proto_epoch_query q = {.partition = (uint32_t)atoi(argv[5]),
                                      .current_leader_epoch = (uint32_t)atoi(argv[6]),
                                      .leader_epoch = (uint32_t)atoi(argv[7])};
        snprintf(q.topic, sizeof(q.topic), "%s", argv[4]);
        len = proto_epoch_req_encode(&q, 1, buf, sizeof(buf));
    }
    struct iovec iov = {buf, len > 0 ? (size_t)len : 0};
    struct frame reply;
    r = len < 0
            ? (int)len
            : peer_call(pc, fetch ? FRAME_FETCH : FRAME_OFFSET_FOR_EPOCH, &iov, 1, 10000, &reply);
    if (!r && fetch) {
        struct proto_fetch_result *res;
        size_t n;
        if (!(r = proto_fetch_reply_decode(reply.payload, reply.h.length, &res, &n))) {
            size_t want = fetch2 ? 2 : 1;
            for (size_t i = 0; i < n && n == want; i++)
                printf("%s hw=%" PRIu64 " start=%" PRIu64 " end=%" PRIu64 " epoch=%" PRIu32
                       " bytes=%" PRIu32 "\n",
                       name(res[i].error), res[i].high_watermark, res[i].log_start_offset,
                       res[i].log_end_offset, res[i].leader_epoch, res[i].records_len);
            r = n == want ? 0 : -EPROTO;
            free(res);
        }
    } else if (!r) {
        struct proto_epoch_answer *a;
        size_t n;
        if (!(r = proto_epoch_reply_decode(reply.payload, reply.h.length, &a, &n))) {
            if (n == 1)
                printf("%s epoch=%" PRIu32 " end=%" PRIu64 "\n", name(a[0].error),
                       a[0].leader_epoch, a[0].end_offset);
            r = n == 1 ? 0 : -EPROTO;
            free(a);
        }
    }
    if (r)
        printf("%s\n", strerrorname_np(-r));
    peer_close(pc);
    return r ? 1 : 0;
}
