/* peer.c - the client side of an inter-broker connection (server.h).
 *
 * One connection, authenticated as initiator before anything else, with
 * calls one at a time: a request goes out with a fresh id, and the next
 * frame must be its reply (a server answers a connection's requests in
 * order). Anything else breaks the connection: the caller closes it and
 * connects again, and no reply is ever matched to the wrong request. */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "logger.h"
#include "server.h"

struct peer_conn {
    struct conn c;
    int id;
    uint64_t next_id;
    int broken;
};

int peer_connect(const char *addr, const struct auth_secret *secret, int my_id, int expect_id,
                 int timeout_ms, struct peer_conn **out)
{
    struct peer_conn *pc = calloc(1, sizeof(*pc));
    if (!pc)
        return -ENOMEM;
    int64_t deadline = conn_deadline(timeout_ms);
    uint32_t id;
    int r = conn_connect(&pc->c, addr, timeout_ms, 0);
    if (r) {
        free(pc);
        return r;
    }
    r = auth_handshake(&pc->c, secret, (uint32_t)my_id, 1, conn_left_ms(deadline), &id);
    if (!r && expect_id >= 0 && id != (uint32_t)expect_id) {
        logger_log(LOG_LEVEL_WARN, "%s is broker %u, not broker %d", addr, id, expect_id);
        r = -EPROTO;
    }
    if (r) {
        conn_close(&pc->c);
        free(pc);
        return r;
    }
    pc->id = (int)id;
    pc->next_id = 1;
    *out = pc;
    return 0;
}

int peer_call(struct peer_conn *pc, uint16_t type, const struct iovec *iov, int iovcnt,
              int timeout_ms, struct frame *reply)
{
    if (pc->broken)
        return pc->broken;
    int64_t deadline = conn_deadline(timeout_ms);
    uint64_t id = pc->next_id++;
    int r = conn_send(&pc->c, type, 0, id, iov, iovcnt, timeout_ms);
    if (!r)
        r = conn_recv(&pc->c, reply, conn_left_ms(deadline));
    if (!r && (reply->h.id != id || reply->h.type != type || !(reply->h.flags & FRAME_F_REPLY))) {
        logger_log(LOG_LEVEL_WARN, "broker %d (%s): a frame that is not the reply awaited", pc->id,
                   pc->c.peer);
        r = -EPROTO;
    }
    if (r) {
        /* A late reply would answer the next call: the connection is done. */
        pc->broken = r;
        return r;
    }
    if (reply->h.flags & FRAME_F_ERROR) {
        struct payload_reader rd;
        uint32_t e = 0;
        payload_reader_init(&rd, reply->payload, reply->h.length);
        if (payload_get_u32(&rd, &e) || payload_end(&rd) || e == 0 || e > 4095)
            return pc->broken = -EPROTO;
        return -(int)e;
    }
    return 0;
}

void peer_abort(struct peer_conn *pc)
{
    shutdown(pc->c.fd, SHUT_RDWR);
}

int peer_id(const struct peer_conn *pc)
{
    return pc->id;
}

void peer_close(struct peer_conn *pc)
{
    if (!pc)
        return;
    conn_close(&pc->c);
    free(pc);
}
