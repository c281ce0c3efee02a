/* server.h - the inter-broker server: a listener on listen= that serves
 * requests of authenticated peers, and the client side of one connection.
 *
 * Nothing is served before the peer has proved it belongs to the cluster
 * (auth.h): the listener checks the peer's address (auth_peer_allowed:
 * without a secret, loopback only), then runs the handshake within
 * handshake_timeout_ms. A peer that fails is logged once (its address and
 * why) and its connection closed; it never gets a reply to anything.
 *
 * Threads: one accept thread, and one thread per accepted connection, which
 * reads a request, calls its handler and sends the reply, in order. A
 * handler may block (a long-polling fetch waits at the leader), which holds
 * up only its own connection: a peer opens one connection per kind of
 * traffic. Brokers are few, so are connections. A handler returns within a
 * bounded time (a long poll has its maximum wait): server_stop() waits for
 * the handlers running.
 *
 * Requests and replies are frames (frame.h). A reply has its request's type
 * and id and FRAME_F_REPLY; a handler's negative errno goes back as a reply
 * with FRAME_F_ERROR and the errno as an i32, and a request of a type with
 * no handler gets EOPNOTSUPP. Every server answers FRAME_PING with its
 * payload. A malformed frame closes the connection
 * (conn.h); the server goes on.
 *
 * server_stop() closes the listener, shuts every connection down and joins
 * every thread: no handler runs after it returns. */
#ifndef TOPICFS_SERVER_H
#define TOPICFS_SERVER_H

#include <stdint.h>
#include <sys/uio.h>

#include "auth.h"
#include "conn.h"
#include "frame.h"

#define SERVER_REPLY_IOV 8

/* What a handler answers: a payload in iov[0..iovcnt), or in pieces of
 * memory and files (conn_send_pieces), sent without a copy, then
 * done(done_arg) is called (when set) to let go of what it points at. */
struct server_reply {
    struct iovec iov[SERVER_REPLY_IOV];
    int iovcnt;
    const struct frame_piece *pieces; /* instead of iov when set: npieces, the handler's */
    int npieces;
    void (*done)(void *arg);
    void *done_arg;
};

/* Serves one request from broker peer_id: 0 with *rep filled, or a
 * negative errno that the peer gets back. */
typedef int (*server_handler)(void *arg, int peer_id, const struct frame *req,
                              struct server_reply *rep);

struct server_options {
    const char *listen;               /* host:port; port 0 picks one */
    const struct auth_secret *secret; /* NULL: insecure loopback mode */
    int broker_id;
    int handshake_timeout_ms; /* 0: 10000 */
};

struct server;

/* Listens (no thread yet: it may fork after): 0, or a negative errno: the
 * address taken (EADDRINUSE), -EPERM for an address that is not loopback
 * without a secret, ... Handlers are registered with server_handle(), then
 * server_start() serves. */
int server_create(const struct server_options *o, struct server **out);
/* type's handler (replaces one registered before); before server_start. */
void server_handle(struct server *s, uint16_t type, server_handler fn, void *arg);
int server_start(struct server *s);
/* The address the listener is bound to (after create). */
const char *server_address(const struct server *s);
void server_stop(struct server *s);

/* ---- the client side ---- */

struct peer_conn;

/* Connects to a broker at addr and runs the handshake as initiator within
 * timeout_ms: 0 with *out, -EACCES when authentication fails, -EPROTO when
 * the broker there is not expect_id (-1: any), or the errors of conn.h. */
int peer_connect(const char *addr, const struct auth_secret *secret, int my_id, int expect_id,
                 int timeout_ms, struct peer_conn **out);
/* Sends a request and waits for its reply within timeout_ms: 0 with *reply
 * (its payload valid until the next call or peer_close), the errno the
 * handler returned (negative), or the errors of conn.h (the connection is
 * then broken: close it and connect again). One call at a time. */
int peer_call(struct peer_conn *pc, uint16_t type, const struct iovec *iov, int iovcnt,
              int timeout_ms, struct frame *reply);
int peer_id(const struct peer_conn *pc);
/* From another thread: makes a call in progress (and every later one)
 * fail at once (the socket is shut down; peer_close still frees it). */
void peer_abort(struct peer_conn *pc);
void peer_close(struct peer_conn *pc);

#endif
