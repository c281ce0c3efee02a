/* conn.c - inter-broker connections (conn.h): address parsing, connect with
 * a timeout, listen and accept, and frames over a non-blocking socket.
 *
 * Sending: the 36-byte header is built on the stack and goes out in the same
 * sendmsg() as the caller's payload iovec (MSG_NOSIGNAL: a peer that closed
 * gives EPIPE, never SIGPIPE); partial writes and EINTR continue where they
 * stopped, EAGAIN waits in poll() until the deadline. Receiving: bytes are
 * read into rbuf and fed to the frame decoder, which takes only what belongs
 * to the current frame; the rest stays in rbuf for the next call, so frames
 * that arrive together are all delivered, in order. Once rbuf is used up
 * in the middle of a payload, the rest of the payload is read straight into
 * the decoder's buffer (frame_decoder_room): a large fetch reply is not
 * copied a second time.
 *
 * Invariant: c->err != 0 means the byte stream is out of step (a malformed
 * frame, a frame sent in part, a closed or failed socket); nothing more is
 * read from or written to it, and the first cause was logged if it was the
 * peer's fault. */
#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/sendfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "logger.h"

#define SMALL_IOV 16
#define GATHER_IOV 64 /* memory pieces per sendmsg */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t conn_deadline(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : mono_ms() + timeout_ms;
}

int conn_left_ms(int64_t deadline)
{
    if (deadline < 0)
        return -1;
    int64_t left = deadline - mono_ms();
    return left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
}

/* Waits until fd is ready for events or the deadline passes: 0 or
 * -ETIMEDOUT. Errors and hangups count as ready: the next call reports them. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int ms = conn_left_ms(deadline);
        if (ms == 0)
            return -ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, ms);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -errno;
    }
}

int conn_host_valid(const char *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = h[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == ':' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int conn_parse_addr(const char *addr, char *host, size_t host_cap, uint16_t *port)
{
    const char *h = addr, *colon;
    size_t hlen;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close || close[1] != ':')
            return -EINVAL;
        h = addr + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
        if (!memchr(h, ':', hlen))
            return -EINVAL; /* brackets are for IPv6 addresses */
    } else {
        colon = strchr(addr, ':');
        if (!colon || strchr(colon + 1, ':'))
            return -EINVAL; /* an IPv6 address needs its brackets */
        hlen = (size_t)(colon - addr);
    }
    if (hlen == 0 || hlen >= host_cap || !conn_host_valid(h, hlen))
        return -EINVAL;
    const char *p = colon + 1;
    unsigned long v = 0;
    if (!*p || strlen(p) > 5)
        return -EINVAL;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v > 65535)
        return -EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = 0;
    *port = (uint16_t)v;
    return 0;
}

void conn_format_addr(const struct sockaddr *sa, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        snprintf(out, cap, "%s:%u", ip, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        snprintf(out, cap, "[%s]:%u", ip, ntohs(in6->sin6_port));
    } else if (sa->sa_family == AF_UNIX) {
        snprintf(out, cap, "local");
    } else {
        snprintf(out, cap, "?");
    }
}

/* getaddrinfo() for addr; *res freed by the caller. */
static int resolve(const char *addr, int passive, struct addrinfo **res)
{
    char host[CONN_ADDR_MAX], port[8];
    uint16_t pn;
    if (conn_parse_addr(addr, host, sizeof(host), &pn) < 0)
        return -EINVAL;
    snprintf(port, sizeof(port), "%u", pn);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0)};
    int r = getaddrinfo(host, port, &hints, res);
    switch (r) {
    case 0:
        return 0;
    case EAI_MEMORY:
        return -ENOMEM;
    case EAI_AGAIN:
        return -EAGAIN;
    case EAI_SYSTEM:
        return errno ? -errno : -EIO;
    default:
        return -EHOSTUNREACH;
    }
}

int conn_listen(const char *addr)
{
    struct addrinfo *res, *ai;
    int r = resolve(addr, 1, &res);
    if (r < 0)
        return r;
    r = -EADDRNOTAVAIL;
    for (ai = res; ai; ai = ai->ai_next) {
        int fd =
            socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            r = -errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0) {
            freeaddrinfo(res);
            return fd;
        }
        r = -errno;
        close(fd);
    }
    freeaddrinfo(res);
    return r;
}

int conn_local_addr(int fd, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -errno;
    conn_format_addr((struct sockaddr *)&ss, out, cap);
    return 0;
}

void conn_init(struct conn *c, int fd, size_t max_payload)
{
    c->fd = fd;
    c->err = 0;
    c->rat = c->rlen = 0;
    frame_decoder_init(&c->dec, max_payload);
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && !(fl & O_NONBLOCK))
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    c->addrlen = sizeof(c->addr);
    memset(&c->addr, 0, sizeof(c->addr));
    if (getpeername(fd, (struct sockaddr *)&c->addr, &c->addrlen) < 0)
        c->addrlen = 0;
    conn_format_addr((struct sockaddr *)&c->addr, c->peer, sizeof(c->peer));
    if (c->addr.ss_family == AF_INET || c->addr.ss_family == AF_INET6) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
}

/* A conn that conn_close() accepts, before a connect or accept succeeds. */
static void conn_init_closed(struct conn *c, size_t max_payload)
{
    c->fd = -1;
    c->err = -ENOTCONN;
    c->rat = c->rlen = 0;
    c->addrlen = 0;
    c->peer[0] = 0;
    frame_decoder_init(&c->dec, max_payload);
}

/* One non-blocking connect to ai, finished within the deadline: the fd or
 * a negative errno. */
static int connect_one(const struct addrinfo *ai, int64_t deadline)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return -errno;
    int r = 0;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        r = -errno;
        if (r == -EINPROGRESS || r == -EINTR) {
            r = wait_fd(fd, POLLOUT, deadline);
            if (r == 0) {
                int soerr = 0;
                socklen_t len = sizeof(soerr);
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
                    r = -errno;
                else
                    r = -soerr;
            }
        }
    }
    if (r < 0) {
        close(fd);
        return r;
    }
    return fd;
}

int conn_connect(struct conn *c, const char *addr, int timeout_ms, size_t max_payload)
{
    struct addrinfo *res, *ai;
    conn_init_closed(c, max_payload);
    int r = resolve(addr, 0, &res);
    if (r < 0)
        return r;
    int64_t deadline = conn_deadline(timeout_ms);
    r = -EHOSTUNREACH;
    for (ai = res; ai && r != -ETIMEDOUT; ai = ai->ai_next) {
        r = connect_one(ai, deadline);
        if (r >= 0) {
            conn_init(c, r, max_payload);
            r = 0;
            break;
        }
    }
    freeaddrinfo(res);
    return r;
}

int conn_accept(int listen_fd, struct conn *c, size_t max_payload)
{
    conn_init_closed(c, max_payload);
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            conn_init(c, fd, max_payload);
            return 0;
        }
        if (errno != EINTR)
            return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

/* Marks the stream broken (first cause wins) and returns the cause. */
static int broken(struct conn *c, int err)
{
    if (!c->err)
        c->err = err;
    return c->err;
}

/* Sends what is left of pieces v[i..n) from piece i, its first `done`
 * bytes already sent: memory pieces gathered into one sendmsg (MSG_MORE
 * when a file piece follows), file pieces with sendfile. Returns the bytes
 * that went out, or -errno (-EAGAIN: the socket is full). */
static ssize_t send_some(int fd, const struct frame_piece *v, int i, int n, size_t done)
{
    if (!v[i].mem) {
        off_t pos = (off_t)(v[i].pos + done);
        ssize_t w = sendfile(fd, v[i].fd, &pos, v[i].len - done);
        if (w == 0)
            return -EIO; /* the file ended before the piece */
        return w < 0 ? -errno : w;
    }
    struct iovec iov[GATHER_IOV];
    int k = 0;
    for (int j = i; j < n && v[j].mem && k < GATHER_IOV; j++, k++)
        iov[k] = (struct iovec){(uint8_t *)v[j].mem + (j == i ? done : 0),
                                v[j].len - (j == i ? done : 0)};
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)k};
    ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL | (i + k < n ? MSG_MORE : 0));
    return w < 0 ? -errno : w;
}

/* Sends one frame whose payload is v[1..n) (v[0] is the header's place):
 * the frame_header_encode_pieces checks, then every piece in order; frees
 * v unless it is `small`. */
static int send_frame(struct conn *c, uint16_t type, uint32_t flags, uint64_t id,
                      struct frame_piece *v, int n, const struct frame_piece *small, int timeout_ms)
{
    uint64_t total = 0;
    for (int i = 1; i < n; i++)
        total += v[i].len;
    uint8_t hdr[FRAME_HEADER_SIZE];
    int r = c->err ? c->err
            : total > c->dec.max_payload
                ? -EMSGSIZE
                : frame_header_encode_pieces(hdr, type, flags, id, v + 1, n - 1);
    if (r < 0) {
        if (v != small)
            free(v);
        return r;
    }
    v[0] = frame_piece_mem(hdr, sizeof(hdr));

    int64_t deadline = conn_deadline(timeout_ms);
    int i = 0, started = 0;
    size_t done = 0; /* bytes of piece i already sent */
    r = 0;
    while (i < n) {
        if (done == v[i].len) {
            i++;
            done = 0;
            continue;
        }
        ssize_t w = send_some(c->fd, v, i, n, done);
        if (w == -EINTR)
            continue;
        if (w == -EAGAIN || w == -EWOULDBLOCK) {
            if ((r = wait_fd(c->fd, POLLOUT, deadline)) < 0)
                break;
            continue;
        }
        if (w < 0) {
            r = (int)w;
            break;
        }
        started = 1;
        /* Skip what went out, including empty pieces. */
        while (i < n && (size_t)w >= v[i].len - done) {
            w -= (ssize_t)(v[i].len - done);
            i++;
            done = 0;
        }
        if (i < n)
            done += (size_t)w;
    }
    if (v != small)
        free(v);
    if (r < 0 && (started || r != -ETIMEDOUT))
        return broken(c, r);
    return r;
}

/* The payload's place after v[0]: small, or n pieces malloc'ed. */
static struct frame_piece *pieces_room(struct frame_piece *small, int n)
{
    return n <= SMALL_IOV ? small : malloc(sizeof(*small) * (size_t)n);
}

int conn_send_pieces(struct conn *c, uint16_t type, uint32_t flags, uint64_t id,
                     const struct frame_piece *pieces, int npieces, int timeout_ms)
{
    struct frame_piece small[SMALL_IOV], *v;
    if (npieces < 0)
        return -EINVAL;
    if (!(v = pieces_room(small, npieces + 1)))
        return -ENOMEM;
    if (npieces)
        memcpy(v + 1, pieces, sizeof(*pieces) * (size_t)npieces);
    return send_frame(c, type, flags, id, v, npieces + 1, small, timeout_ms);
}

int conn_send(struct conn *c, uint16_t type, uint32_t flags, uint64_t id, const struct iovec *iov,
              int iovcnt, int timeout_ms)
{
    struct frame_piece small[SMALL_IOV], *v;
    if (iovcnt < 0)
        return -EINVAL;
    if (!(v = pieces_room(small, iovcnt + 1)))
        return -ENOMEM;
    for (int i = 0; i < iovcnt; i++)
        v[i + 1] = frame_piece_mem(iov[i].iov_base, iov[i].iov_len);
    return send_frame(c, type, flags, id, v, iovcnt + 1, small, timeout_ms);
}

static const char *malformed_why(int err)
{
    switch (err) {
    case -EBADMSG:
        return "damaged frame (bad magic or checksum)";
    case -EPROTO:
        return "frame of a protocol version this broker does not speak";
    case -EMSGSIZE:
        return "frame larger than the maximum";
    default:
        return "cannot buffer frame";
    }
}

int conn_recv(struct conn *c, struct frame *f, int timeout_ms)
{
    if (c->err)
        return c->err;
    int64_t deadline = conn_deadline(timeout_ms);
    for (;;) {
        if (c->rat < c->rlen) {
            size_t used;
            int r = frame_decoder_feed(&c->dec, c->rbuf + c->rat, c->rlen - c->rat, &used, f);
            c->rat += used;
            if (r == 1)
                return 0;
            if (r < 0) {
                logger_log(LOG_LEVEL_WARN, "closing connection with %s: %s", c->peer,
                           malformed_why(r));
                return broken(c, r);
            }
        }
        c->rat = c->rlen = 0;
        /* Mid-payload, the bytes go straight where the decoder keeps them
         * (never past the frame: the room ends with the payload). */
        uint8_t *to;
        size_t room;
        int r = frame_decoder_room(&c->dec, &to, &room);
        if (r < 0)
            return broken(c, r);
        ssize_t n = room ? read(c->fd, to, room) : read(c->fd, c->rbuf, sizeof(c->rbuf));
        if (n > 0 && room) {
            if ((r = frame_decoder_filled(&c->dec, (size_t)n, f)) == 1)
                return 0;
            if (r < 0) {
                logger_log(LOG_LEVEL_WARN, "closing connection with %s: %s", c->peer,
                           malformed_why(r));
                return broken(c, r);
            }
            continue;
        }
        if (n > 0) {
            c->rlen = (size_t)n;
            continue;
        }
        if (n == 0) {
            if (frame_decoder_mid_frame(&c->dec)) {
                logger_log(LOG_LEVEL_WARN, "closing connection with %s: closed inside a frame",
                           c->peer);
                return broken(c, -ENODATA);
            }
            return broken(c, -EPIPE);
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return broken(c, -errno);
        if ((r = wait_fd(c->fd, POLLIN, deadline)) < 0)
            return r;
    }
}

void conn_close(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    if (!c->err)
        c->err = -EPIPE;
    frame_decoder_free(&c->dec);
}
