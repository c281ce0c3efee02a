/* auth.c - the cluster secret and the mutual challenge-response handshake
 * (protocol, rules and errors in auth.h), on libsodium.
 *
 * Both roles run one function, auth_handshake(), as a fixed sequence of
 * steps; the MAC is computed in one place (mac_of) for both directions and
 * both modes (the insecure mode is the same handshake under an all-zero
 * key), so there is a single code path to get right. The connection's frame
 * limit is lowered to AUTH_MAX_PAYLOAD for the handshake and put back after.
 *
 * Invariants: no MAC is accepted unless crypto_verify_32() says so; the
 * initiator sends its proof only after the responder's verified; *peer_id is
 * written only on success; secret bytes read from the file are wiped on
 * every path. */
#include "auth.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "logger.h"

_Static_assert(AUTH_MAC_BYTES == crypto_auth_hmacsha256_BYTES, "MAC size");
_Static_assert(AUTH_KEY_BYTES <= crypto_generichash_BYTES_MAX, "key size");

static const char key_label[] = "topicfs cluster secret v1";
static const char mac_label[] = "topicfs-peer-auth";

enum { MODE_INSECURE = 0, MODE_SECRET = 1 };
enum { DIR_RESPONDER = 'R', DIR_INITIATOR = 'I' };

static int sodium_ready(void)
{
    if (sodium_init() < 0) {
        logger_log(LOG_LEVEL_ERROR, "libsodium failed to initialize");
        return -EIO;
    }
    return 0;
}

/* Reads the whole file (at most cap bytes; *len = cap + 1 means more). */
static int read_all(int fd, uint8_t *buf, size_t cap, size_t *len)
{
    size_t at = 0;
    while (at <= cap) {
        ssize_t n = read(fd, buf + at, cap + 1 - at);
        if (n == 0)
            break;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        at += (size_t)n;
    }
    *len = at;
    return 0;
}

/* The checks of auth.h on an open secret file: 0 or -EPERM, logged. */
static int check_file(int fd, const char *path)
{
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int r = -errno;
        logger_log(LOG_LEVEL_ERROR, "cluster.secret.file %s: %s", path, strerror(-r));
        return r;
    }
    if (!S_ISREG(st.st_mode)) {
        logger_log(LOG_LEVEL_ERROR, "cluster.secret.file %s: not a regular file", path);
        return -EPERM;
    }
    if (st.st_mode & 077) {
        logger_log(LOG_LEVEL_ERROR,
                   "cluster.secret.file %s: mode %04o gives group or others access; "
                   "it must be readable by its owner only (chmod 600)",
                   path, (unsigned)(st.st_mode & 07777));
        return -EPERM;
    }
    if (st.st_uid != 0 && st.st_uid != geteuid()) {
        logger_log(LOG_LEVEL_ERROR,
                   "cluster.secret.file %s: owned by uid %u, neither root nor this daemon's user",
                   path, (unsigned)st.st_uid);
        return -EPERM;
    }
    return 0;
}

int auth_load_secret(const char *path, struct auth_secret *s)
{
    int r = sodium_ready();
    if (r < 0)
        return r;
    /* O_NONBLOCK: a FIFO planted at the path must not hang the mount. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        r = -errno;
        logger_log(LOG_LEVEL_ERROR, "cluster.secret.file %s: %s", path, strerror(-r));
        return r;
    }
    uint8_t buf[AUTH_SECRET_MAX + 1];
    size_t len = 0;
    r = check_file(fd, path);
    if (r == 0) {
        r = read_all(fd, buf, AUTH_SECRET_MAX, &len);
        if (r < 0)
            logger_log(LOG_LEVEL_ERROR, "cluster.secret.file %s: %s", path, strerror(-r));
    }
    close(fd);
    while (r == 0 && len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    if (r == 0 && (len < AUTH_SECRET_MIN || len > AUTH_SECRET_MAX)) {
        logger_log(LOG_LEVEL_ERROR,
                   "cluster.secret.file %s: the secret must be %d to %d bytes (not counting a "
                   "trailing newline)",
                   path, AUTH_SECRET_MIN, AUTH_SECRET_MAX);
        r = -EINVAL;
    }
    if (r == 0) {
        crypto_generichash_state st;
        crypto_generichash_init(&st, NULL, 0, AUTH_KEY_BYTES);
        crypto_generichash_update(&st, (const uint8_t *)key_label, sizeof(key_label) - 1);
        crypto_generichash_update(&st, buf, len);
        crypto_generichash_final(&st, s->key, AUTH_KEY_BYTES);
        sodium_memzero(&st, sizeof(st));
    }
    sodium_memzero(buf, sizeof(buf));
    return r;
}

void auth_secret_wipe(struct auth_secret *s)
{
    sodium_memzero(s, sizeof(*s));
}

int auth_peer_allowed(const struct sockaddr *sa, int have_secret)
{
    if (have_secret)
        return 1;
    if (sa->sa_family == AF_UNIX)
        return 1;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return 0;
}

/* The state of one handshake. */
struct hs {
    struct conn *c;
    const uint8_t *key;
    uint8_t mode;
    int initiator;
    uint32_t my_id, peer_id;
    uint8_t my_nonce[AUTH_NONCE_BYTES], peer_nonce[AUTH_NONCE_BYTES];
    int64_t deadline;
};

static void mac_of(const struct hs *h, uint8_t dir, uint8_t mac[AUTH_MAC_BYTES])
{
    uint8_t fields[2 + 1 + 1 + 4 + 4 + 2 * AUTH_NONCE_BYTES];
    struct payload_writer w;
    payload_writer_init(&w, fields, sizeof(fields));
    payload_put_u16(&w, FRAME_VERSION);
    payload_put_u8(&w, dir);
    payload_put_u8(&w, h->mode);
    payload_put_u32(&w, h->initiator ? h->my_id : h->peer_id);
    payload_put_u32(&w, h->initiator ? h->peer_id : h->my_id);
    payload_put_raw(&w, h->initiator ? h->my_nonce : h->peer_nonce, AUTH_NONCE_BYTES);
    payload_put_raw(&w, h->initiator ? h->peer_nonce : h->my_nonce, AUTH_NONCE_BYTES);

    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, h->key, AUTH_KEY_BYTES);
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)mac_label, sizeof(mac_label) - 1);
    crypto_auth_hmacsha256_update(&st, fields, w.len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof(st));
}

static int verify(const struct hs *h, uint8_t dir, const uint8_t got[AUTH_MAC_BYTES])
{
    uint8_t want[AUTH_MAC_BYTES];
    mac_of(h, dir, want);
    return crypto_verify_32(want, got) == 0;
}

static int send_msg(struct hs *h, uint16_t type, const struct payload_writer *w)
{
    struct iovec iov = {w->buf, w->len};
    return conn_send(h->c, type, 0, 0, &iov, w->len ? 1 : 0, conn_left_ms(h->deadline));
}

/* Refuses the peer: tells it (best effort), logs why, -EACCES. */
static int refuse(struct hs *h, const char *why)
{
    logger_log(LOG_LEVEL_WARN, "refusing peer %s (broker %u): %s", h->c->peer, h->peer_id, why);
    struct payload_writer w;
    payload_writer_init(&w, NULL, 0);
    send_msg(h, FRAME_AUTH_FAIL, &w);
    return -EACCES;
}

/* The next handshake frame, which must be of type want: 0 with a reader on
 * its payload, -EACCES when the peer refused us, -EPROTO for another type. */
static int recv_msg(struct hs *h, uint16_t want, struct payload_reader *r)
{
    struct frame f;
    int e = conn_recv(h->c, &f, conn_left_ms(h->deadline));
    if (e < 0)
        return e;
    if (f.h.type == FRAME_AUTH_FAIL) {
        logger_log(LOG_LEVEL_WARN,
                   "peer %s refused the handshake (a different cluster secret, or one of us "
                   "has none?)",
                   h->c->peer);
        return -EACCES;
    }
    if (f.h.type != want) {
        logger_log(LOG_LEVEL_WARN, "handshake with %s: frame of type %u where %u was due",
                   h->c->peer, f.h.type, want);
        return -EPROTO;
    }
    payload_reader_init(r, f.payload, f.h.length);
    return 0;
}

/* The peer's id, mode and nonce (in HELLO and CHALLENGE), checked. */
static int take_intro(struct hs *h, struct payload_reader *r)
{
    uint8_t mode;
    payload_get_u32(r, &h->peer_id);
    payload_get_u8(r, &mode);
    if (payload_get_raw(r, h->peer_nonce, AUTH_NONCE_BYTES) < 0)
        return -EBADMSG;
    if (mode != h->mode)
        return refuse(h, mode == MODE_SECRET ? "it has a cluster secret and this broker has none"
                                             : "it has no cluster secret and this broker has one");
    if (h->peer_id == h->my_id)
        return refuse(h, "it claims this broker's own id");
    return 0;
}

static int put_intro(struct hs *h, struct payload_writer *w)
{
    payload_put_u32(w, h->my_id);
    payload_put_u8(w, h->mode);
    return payload_put_raw(w, h->my_nonce, AUTH_NONCE_BYTES);
}

static int run_initiator(struct hs *h)
{
    uint8_t buf[AUTH_MAX_PAYLOAD], mac[AUTH_MAC_BYTES];
    struct payload_writer w;
    struct payload_reader r;
    payload_writer_init(&w, buf, sizeof(buf));
    put_intro(h, &w);
    int e = send_msg(h, FRAME_AUTH_HELLO, &w);
    if (e < 0 || (e = recv_msg(h, FRAME_AUTH_CHALLENGE, &r)) < 0)
        return e;
    if ((e = take_intro(h, &r)) < 0)
        return e;
    payload_get_raw(&r, mac, AUTH_MAC_BYTES);
    if (payload_end(&r) < 0)
        return -EBADMSG;
    if (!verify(h, DIR_RESPONDER, mac))
        return refuse(h, "its proof does not match this broker's cluster secret");
    mac_of(h, DIR_INITIATOR, mac);
    payload_writer_init(&w, buf, sizeof(buf));
    payload_put_raw(&w, mac, AUTH_MAC_BYTES);
    if ((e = send_msg(h, FRAME_AUTH_PROOF, &w)) < 0 || (e = recv_msg(h, FRAME_AUTH_OK, &r)) < 0)
        return e;
    return payload_end(&r) < 0 ? -EBADMSG : 0;
}

static int run_responder(struct hs *h)
{
    uint8_t buf[AUTH_MAX_PAYLOAD], mac[AUTH_MAC_BYTES];
    struct payload_writer w;
    struct payload_reader r;
    int e = recv_msg(h, FRAME_AUTH_HELLO, &r);
    if (e < 0 || (e = take_intro(h, &r)) < 0)
        return e;
    if (payload_end(&r) < 0)
        return -EBADMSG;
    mac_of(h, DIR_RESPONDER, mac);
    payload_writer_init(&w, buf, sizeof(buf));
    put_intro(h, &w);
    payload_put_raw(&w, mac, AUTH_MAC_BYTES);
    if ((e = send_msg(h, FRAME_AUTH_CHALLENGE, &w)) < 0 ||
        (e = recv_msg(h, FRAME_AUTH_PROOF, &r)) < 0)
        return e;
    payload_get_raw(&r, mac, AUTH_MAC_BYTES);
    if (payload_end(&r) < 0)
        return -EBADMSG;
    if (!verify(h, DIR_INITIATOR, mac))
        return refuse(h, "its proof does not match this broker's cluster secret");
    payload_writer_init(&w, NULL, 0);
    return send_msg(h, FRAME_AUTH_OK, &w);
}

int auth_handshake(struct conn *c, const struct auth_secret *s, uint32_t my_id, int initiator,
                   int timeout_ms, uint32_t *peer_id)
{
    static const uint8_t zero_key[AUTH_KEY_BYTES];
    int e = sodium_ready();
    if (e < 0)
        return e;
    if (!auth_peer_allowed((const struct sockaddr *)&c->addr, s != NULL)) {
        logger_log(LOG_LEVEL_WARN,
                   "refusing peer %s: without cluster.secret.file brokers talk over loopback only",
                   c->peer);
        return -EACCES;
    }
    struct hs h = {
        .c = c,
        .key = s ? s->key : zero_key,
        .mode = s ? MODE_SECRET : MODE_INSECURE,
        .initiator = initiator,
        .my_id = my_id,
        .deadline = conn_deadline(timeout_ms),
    };
    randombytes_buf(h.my_nonce, sizeof(h.my_nonce));
    size_t max = c->dec.max_payload;
    c->dec.max_payload = AUTH_MAX_PAYLOAD;
    e = initiator ? run_initiator(&h) : run_responder(&h);
    c->dec.max_payload = max;
    if (e == 0)
        *peer_id = h.peer_id;
    return e;
}
