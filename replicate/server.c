/* server.c - the inter-broker listener and its connection threads
 * (server.h).
 *
 * Invariants:
 *   - a connection thread calls no handler before auth_handshake() returned
 *     0 on its connection, and the accept thread hands it no connection
 *     whose address auth_peer_allowed() refused;
 *   - only the thread that joins a connection thread (the accept thread's
 *     reaper, or server_stop) closes its descriptor, so server_stop() can
 *     shut down any connection in the list without racing a close (and a
 *     reuse of the descriptor number);
 *   - after server_stop() returns, no thread of the server runs and no
 *     descriptor of it is open. */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logger.h"

#define HANDLERS_MAX 32
#define REAP_INTERVAL_MS 1000

struct server_conn {
    struct server *srv;
    struct conn c;
    pthread_t thread;
    int finished; /* under srv->lock */
    struct server_conn *next;
};

struct server {
    struct server_options o;
    struct auth_secret secret;
    int have_secret;
    char addr[CONN_ADDR_MAX];
    int listen_fd;
    int wake[2]; /* server_stop writes a byte: the accept thread returns */
    pthread_t accept_thread;
    int started;
    pthread_mutex_t lock;
    struct server_conn *conns;
    struct {
        uint16_t type;
        server_handler fn;
        void *arg;
    } handlers[HANDLERS_MAX];
    size_t nhandlers;
};

/* FRAME_PING: the payload back (a liveness check any broker answers). */
static int ping(void *arg, int peer_id, const struct frame *req, struct server_reply *rep)
{
    (void)arg;
    (void)peer_id;
    rep->iov[0].iov_base = (void *)req->payload;
    rep->iov[0].iov_len = req->h.length;
    rep->iovcnt = 1;
    return 0;
}

int server_create(const struct server_options *o, struct server **out)
{
    struct server *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->o = *o;
    if (o->secret) {
        s->secret = *o->secret;
        s->have_secret = 1;
    }
    if (!s->o.handshake_timeout_ms)
        s->o.handshake_timeout_ms = 10000;
    s->wake[0] = s->wake[1] = s->listen_fd = -1;
    pthread_mutex_init(&s->lock, NULL);
    int r = conn_listen(o->listen);
    if (r < 0)
        goto fail;
    s->listen_fd = r;
    if ((r = conn_local_addr(s->listen_fd, s->addr, sizeof(s->addr))) < 0)
        goto fail;
    struct sockaddr_storage sa;
    socklen_t salen = sizeof(sa);
    if (getsockname(s->listen_fd, (struct sockaddr *)&sa, &salen) < 0) {
        r = -errno;
        goto fail;
    }
    if (!auth_peer_allowed((const struct sockaddr *)&sa, s->have_secret)) {
        r = -EPERM; /* without a secret, loopback only */
        goto fail;
    }
    if (pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        r = -errno;
        goto fail;
    }
    server_handle(s, FRAME_PING, ping, NULL);
    *out = s;
    return 0;
fail:
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    if (s->wake[0] >= 0) {
        close(s->wake[0]);
        close(s->wake[1]);
    }
    pthread_mutex_destroy(&s->lock);
    auth_secret_wipe(&s->secret);
    free(s);
    return r;
}

void server_handle(struct server *s, uint16_t type, server_handler fn, void *arg)
{
    size_t i = 0;
    while (i < s->nhandlers && s->handlers[i].type != type)
        i++;
    if (i == HANDLERS_MAX)
        return;
    s->handlers[i].type = type;
    s->handlers[i].fn = fn;
    s->handlers[i].arg = arg;
    if (i == s->nhandlers)
        s->nhandlers++;
}

const char *server_address(const struct server *s)
{
    return s->addr;
}

static int send_error(struct conn *c, const struct frame *req, int err)
{
    uint8_t buf[4];
    struct payload_writer w;
    payload_writer_init(&w, buf, sizeof(buf));
    payload_put_u32(&w, (uint32_t)(err < 0 ? -err : err));
    struct iovec iov = {.iov_base = buf, .iov_len = w.len};
    return conn_send(c, req->h.type, FRAME_F_REPLY | FRAME_F_ERROR, req->h.id, &iov, 1, -1);
}

/* Answers one request: 0, or the connection's error. */
static int serve_one(struct server *s, int peer, struct conn *c, const struct frame *req)
{
    if (req->h.flags & FRAME_F_REPLY) {
        logger_log(LOG_LEVEL_WARN, "broker %d (%s): a reply where a request was due: closing", peer,
                   c->peer);
        return -EPROTO;
    }
    server_handler fn = NULL;
    void *arg = NULL;
    for (size_t i = 0; i < s->nhandlers; i++)
        if (s->handlers[i].type == req->h.type) {
            fn = s->handlers[i].fn;
            arg = s->handlers[i].arg;
        }
    if (!fn)
        return send_error(c, req, EOPNOTSUPP);
    struct server_reply rep = {.iovcnt = 0};
    int r = fn(arg, peer, req, &rep);
    if (r < 0)
        r = send_error(c, req, r);
    else
        r = rep.pieces
                ? conn_send_pieces(c, req->h.type, FRAME_F_REPLY, req->h.id, rep.pieces,
                                   rep.npieces, -1)
                : conn_send(c, req->h.type, FRAME_F_REPLY, req->h.id, rep.iov, rep.iovcnt, -1);
    if (rep.done)
        rep.done(rep.done_arg);
    return r;
}

static void *connection_main(void *arg)
{
    struct server_conn *sc = arg;
    struct server *s = sc->srv;
    uint32_t peer;
    int r = auth_handshake(&sc->c, s->have_secret ? &s->secret : NULL, (uint32_t)s->o.broker_id, 0,
                           s->o.handshake_timeout_ms, &peer);
    if (r) {
        logger_log(LOG_LEVEL_WARN, "refused a peer at %s: %s", sc->c.peer,
                   r == -EACCES ? "it does not hold the cluster secret" : strerror(-r));
    } else {
        logger_log(LOG_LEVEL_DEBUG, "broker %" PRIu32 " connected from %s", peer, sc->c.peer);
        struct frame f;
        while (!(r = conn_recv(&sc->c, &f, -1)) && !(r = serve_one(s, (int)peer, &sc->c, &f)))
            ;
        if (r != -EPIPE && r != -ECONNRESET)
            logger_log(LOG_LEVEL_INFO, "broker %" PRIu32 " (%s): connection closed: %s", peer,
                       sc->c.peer, strerror(-r));
    }
    shutdown(sc->c.fd, SHUT_RDWR); /* the peer hears of it now; the reaper closes */
    pthread_mutex_lock(&s->lock);
    sc->finished = 1;
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* Joins and frees the connections whose thread ended (all, with all). */
static void reap(struct server *s, int all)
{
    pthread_mutex_lock(&s->lock);
    struct server_conn **p = &s->conns, *done = NULL;
    while (*p) {
        struct server_conn *sc = *p;
        if (all || sc->finished) {
            *p = sc->next;
            sc->next = done;
            done = sc;
        } else {
            p = &sc->next;
        }
    }
    pthread_mutex_unlock(&s->lock);
    while (done) {
        struct server_conn *sc = done;
        done = sc->next;
        pthread_join(sc->thread, NULL);
        conn_close(&sc->c);
        free(sc);
    }
}

static void accept_pending(struct server *s)
{
    for (;;) {
        struct server_conn *sc = calloc(1, sizeof(*sc));
        if (!sc)
            return; /* the connection waits in the backlog */
        int r = conn_accept(s->listen_fd, &sc->c, 0);
        if (r) {
            if (r != -EAGAIN)
                logger_log(LOG_LEVEL_WARN, "accept on %s: %s", s->addr, strerror(-r));
            free(sc);
            return;
        }
        if (!auth_peer_allowed((const struct sockaddr *)&sc->c.addr, s->have_secret)) {
            logger_log(LOG_LEVEL_WARN,
                       "refused a peer at %s: not loopback, and no cluster.secret.file to "
                       "authenticate it",
                       sc->c.peer);
            conn_close(&sc->c);
            free(sc);
            continue;
        }
        sc->srv = s;
        pthread_mutex_lock(&s->lock);
        r = pthread_create(&sc->thread, NULL, connection_main, sc);
        if (!r) {
            sc->next = s->conns;
            s->conns = sc;
        }
        pthread_mutex_unlock(&s->lock);
        if (r) {
            logger_log(LOG_LEVEL_WARN, "no thread for a peer at %s: %s", sc->c.peer, strerror(r));
            conn_close(&sc->c);
            free(sc);
        }
    }
}

static void *accept_main(void *arg)
{
    struct server *s = arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = s->listen_fd, .events = POLLIN},
                              {.fd = s->wake[0], .events = POLLIN}};
        int n = poll(p, 2, REAP_INTERVAL_MS);
        if (n < 0 && errno != EINTR)
            break;
        if (p[1].revents)
            break;
        if (n > 0 && p[0].revents)
            accept_pending(s);
        reap(s, 0);
    }
    return NULL;
}

int server_start(struct server *s)
{
    int r = pthread_create(&s->accept_thread, NULL, accept_main, s);
    if (r)
        return -r;
    s->started = 1;
    logger_log(LOG_LEVEL_INFO, "inter-broker server on %s (%s)", s->addr,
               s->have_secret
                   ? "peers authenticated with cluster.secret.file"
                   : "insecure loopback mode: no cluster.secret.file, loopback peers only");
    return 0;
}

void server_stop(struct server *s)
{
    if (!s)
        return;
    if (s->started) {
        (void)!write(s->wake[1], "x", 1);
        pthread_join(s->accept_thread, NULL);
    }
    close(s->listen_fd);
    pthread_mutex_lock(&s->lock);
    for (struct server_conn *sc = s->conns; sc; sc = sc->next)
        shutdown(sc->c.fd, SHUT_RDWR);
    pthread_mutex_unlock(&s->lock);
    reap(s, 1);
    close(s->wake[0]);
    close(s->wake[1]);
    pthread_mutex_destroy(&s->lock);
    auth_secret_wipe(&s->secret);
    free(s);
}
