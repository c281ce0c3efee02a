/* conn.h - one inter-broker TCP connection: connect, listen, accept, and
 * whole frames (frame.h) sent and received with a deadline.
 *
 * Addresses are "host:port" or "[ipv6]:port"; host is a name or a numeric
 * address, port a decimal number 0-65535 (0 only makes sense for a listener:
 * the kernel picks one, conn_local_addr() tells which).
 *
 * Every socket is non-blocking and every wait is a poll() bounded by the
 * call's timeout (milliseconds, -1 for none), so no call blocks past its
 * deadline. Errors are negative errnos:
 *   -ETIMEDOUT      the deadline passed (a receive may be retried: what was
 *                   read is kept; a send that wrote part of its frame leaves
 *                   the connection unusable)
 *   -EPIPE          the peer closed the connection between two frames
 *   -ENODATA        the peer closed it inside a frame (truncated frame)
 *   -EBADMSG, -EPROTO, -EMSGSIZE   a malformed frame (frame.h), logged once
 *                   with the peer's address
 *   -EINVAL         a malformed address
 *   -EHOSTUNREACH   a host name that does not resolve
 *   others          from the socket calls (ECONNREFUSED, ECONNRESET, ...)
 * After any error other than a retryable -ETIMEDOUT the connection is
 * broken: every later call returns the same error, and the caller closes it.
 * A peer never gets to crash us or to have a damaged frame handed on.
 *
 * A struct conn is used by one thread at a time (a reader and a writer
 * thread on the same conn would need a lock around each). */
#ifndef TOPICFS_CONN_H
#define TOPICFS_CONN_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "frame.h"

#define CONN_READ_BUF (64u << 10)
#define CONN_ADDR_MAX 80 /* "[v6 address]:port" and a NUL */

struct conn {
    int fd;
    int err; /* sticky: the stream can no longer be used */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char peer[CONN_ADDR_MAX]; /* the peer's address, for log lines */
    struct frame_decoder dec;
    size_t rat, rlen; /* unread bytes are rbuf[rat, rlen) */
    uint8_t rbuf[CONN_READ_BUF];
};

/* Splits "host:port" / "[v6]:port": 0, or -EINVAL (no port, a port that is
 * not 0-65535, an empty host, an unbracketed ':' in the host, a host longer
 * than host_cap - 1). */
int conn_parse_addr(const char *addr, char *host, size_t host_cap, uint16_t *port);
/* Whether h[0..n) is a host name or address as conn_parse_addr takes it:
 * letters, digits and . : _ - only (no spaces, slashes or brackets), so it
 * can go into a znode's JSON as it is. */
int conn_host_valid(const char *h, size_t n);

/* Formats a socket address as conn_parse_addr() reads it. */
void conn_format_addr(const struct sockaddr *sa, char *out, size_t cap);

/* A listening socket on addr (SO_REUSEADDR, non-blocking, close-on-exec):
 * its fd, or a negative errno. */
int conn_listen(const char *addr);

/* The address a socket is bound to ("127.0.0.1:40123"): 0 or -errno. */
int conn_local_addr(int fd, char *out, size_t cap);

/* Wraps a connected socket (taking ownership of fd, which becomes
 * non-blocking): for accept and connect, and for socketpair() in tests.
 * max_payload bounds the frames received (0: FRAME_MAX_PAYLOAD_DEFAULT). */
void conn_init(struct conn *c, int fd, size_t max_payload);

/* Connects to addr within timeout_ms (every address the name resolves to,
 * in turn): 0 with c ready, or a negative errno with nothing left open. */
int conn_connect(struct conn *c, const char *addr, int timeout_ms, size_t max_payload);

/* Accepts one pending connection on a listener: 0, -EAGAIN when none is
 * pending, or another negative errno. The caller checks c->addr (see
 * auth_peer_allowed()) before anything else. */
int conn_accept(int listen_fd, struct conn *c, size_t max_payload);

/* Sends one frame: header, then the payload iov[0..iovcnt) as it is (no
 * copy). -EMSGSIZE, with nothing sent, for a payload above the connection's
 * max_payload; the errors above. */
int conn_send(struct conn *c, uint16_t type, uint32_t flags, uint64_t id, const struct iovec *iov,
              int iovcnt, int timeout_ms);
/* The same for a payload of pieces (frame.h): memory pieces go out as they
 * are, file pieces with sendfile(), from the page cache without a copy
 * (after frame_header_encode_pieces read them once for the checksum). A
 * file that ends before its piece: -EIO (the stream is broken if part of
 * the frame went out). */
int conn_send_pieces(struct conn *c, uint16_t type, uint32_t flags, uint64_t id,
                     const struct frame_piece *pieces, int npieces, int timeout_ms);

/* Receives the next frame: 0 with *f (its payload valid until the next
 * conn_recv or conn_close), or the errors above. */
int conn_recv(struct conn *c, struct frame *f, int timeout_ms);

/* Deadlines on the monotonic clock, in ms: the deadline of a timeout (-1:
 * none), and the timeout left until a deadline (0 once it passed; -1: none).
 * For callers that make several calls under one deadline. */
int64_t conn_deadline(int timeout_ms);
int conn_left_ms(int64_t deadline);

/* Closes the socket and frees the buffers (a closed conn may be closed
 * again). */
void conn_close(struct conn *c);

#endif
