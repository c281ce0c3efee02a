/* peer_ping - a broker's peer for tests: connects to ADDR, authenticates as
 * broker MY_ID with the secret in SECRET_FILE ("-": none, insecure
 * loopback mode) expecting broker EXPECT_ID (-1: any), and sends one
 * FRAME_PING. Prints "ok" and exits 0 when the echo comes back, else prints
 * the errno's name (EACCES, EPROTO, ECONNREFUSED, ...) and exits 1.
 *   peer_ping ADDR SECRET_FILE MY_ID EXPECT_ID */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: peer_ping ADDR SECRET_FILE|- MY_ID EXPECT_ID\n");
        return 2;
    }
    struct auth_secret secret;
    int have = strcmp(argv[2], "-") != 0, r = 0;
    if (have && (r = auth_load_secret(argv[2], &secret))) {
        printf("secret: %s\n", strerrorname_np(-r));
        return 1;
    }
    struct peer_conn *pc;
    r = peer_connect(argv[1], have ? &secret : NULL, atoi(argv[3]), atoi(argv[4]), 10000, &pc);
    if (!r) {
        struct iovec iov = {.iov_base = "ping", .iov_len = 4};
        struct frame reply;
        r = peer_call(pc, FRAME_PING, &iov, 1, 10000, &reply);
        if (!r && (reply.h.length != 4 || memcmp(reply.payload, "ping", 4)))
            r = -EPROTO;
        peer_close(pc);
    }
    printf("%s\n", r ? strerrorname_np(-r) : "ok");
    return r ? 1 : 0;
}
