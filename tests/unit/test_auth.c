/* test_auth.c - peer authentication (replicate/auth.c): the handshake over
 * socketpair() with the responder in a second thread: the same secret
 * succeeds both ways and each side learns the other's id; a wrong secret,
 * or a secret on one side only, fails on both sides; the insecure mode works
 * between local peers; a transcript recorded from a successful session and
 * replayed to a fresh responder fails; the responder's proof reflected back
 * to it fails; a responder without the key gets no proof; a peer that claims
 * our id is refused; an oversized handshake frame is refused from its
 * header; a silent peer times out. Secret files: mode 0600 accepted (trailing newline stripped),
 * any group/other bit, a directory or a FIFO refused with EPERM, too short or too long refused with
 * EINVAL, and a refusal leaves the caller's key unchanged. auth_peer_allowed: loopback only without
 * a secret. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "logger.h"

#define T_MS 10000

static char tmpdir[64];

/* One side of a handshake, run in a thread or inline. */
struct side {
    struct conn c;
    const struct auth_secret *secret;
    uint32_t id;
    int initiator;
    int timeout_ms;
    int result;
    uint32_t peer_id;
};

static void *run_side(void *arg)
{
    struct side *s = arg;
    s->peer_id = UINT32_MAX;
    s->result = auth_handshake(&s->c, s->secret, s->id, s->initiator, s->timeout_ms, &s->peer_id);
    return NULL;
}

static void pair(int fds[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
}

static struct side *new_side(int fd, const struct auth_secret *secret, uint32_t id, int initiator)
{
    struct side *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    conn_init(&s->c, fd, 0);
    s->secret = secret;
    s->id = id;
    s->initiator = initiator;
    s->timeout_ms = T_MS;
    return s;
}

static void free_side(struct side *s)
{
    conn_close(&s->c);
    free(s);
}

/* Runs a whole handshake between an initiator and a responder thread. */
static void handshake(const struct auth_secret *si, uint32_t idi, const struct auth_secret *sr,
                      uint32_t idr, struct side **pi, struct side **pr)
{
    int fds[2];
    pair(fds);
    struct side *i = new_side(fds[0], si, idi, 1), *r = new_side(fds[1], sr, idr, 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, run_side, r), 0);
    run_side(i);
    pthread_join(t, NULL);
    *pi = i;
    *pr = r;
}

static void key_of(struct auth_secret *s, uint8_t v)
{
    memset(s->key, v, sizeof(s->key));
}

static void test_same_secret(void **state)
{
    (void)state;
    struct auth_secret k;
    key_of(&k, 1);
    struct side *i, *r;
    handshake(&k, 1, &k, 2, &i, &r);
    assert_int_equal(i->result, 0);
    assert_int_equal(r->result, 0);
    assert_int_equal(i->peer_id, 2);
    assert_int_equal(r->peer_id, 1);
    /* The connection carries frames afterwards, at the full size limit. */
    assert_int_equal(i->c.dec.max_payload, FRAME_MAX_PAYLOAD_DEFAULT);
    static uint8_t big[4096];
    struct iovec iov = {big, sizeof(big)};
    struct frame f;
    assert_int_equal(conn_send(&i->c, 100, 0, 1, &iov, 1, T_MS), 0);
    assert_int_equal(conn_recv(&r->c, &f, T_MS), 0);
    assert_int_equal(f.h.length, sizeof(big));
    free_side(i);
    free_side(r);

    /* The other way round. */
    handshake(&k, 2, &k, 1, &i, &r);
    assert_int_equal(i->result, 0);
    assert_int_equal(r->result, 0);
    assert_int_equal(i->peer_id, 1);
    assert_int_equal(r->peer_id, 2);
    free_side(i);
    free_side(r);
}

static void test_wrong_secret(void **state)
{
    (void)state;
    struct auth_secret a, b;
    key_of(&a, 1);
    key_of(&b, 1);
    b.key[31] ^= 1;
    struct side *i, *r;
    handshake(&a, 1, &b, 2, &i, &r);
    assert_int_equal(i->result, -EACCES);
    assert_int_equal(r->result, -EACCES);
    assert_int_equal(i->peer_id, UINT32_MAX);
    assert_int_equal(r->peer_id, UINT32_MAX);
    free_side(i);
    free_side(r);
}

static void test_secret_on_one_side(void **state)
{
    (void)state;
    struct auth_secret a;
    key_of(&a, 0); /* even the all-zero key of the insecure mode */
    struct side *i, *r;
    handshake(&a, 1, NULL, 2, &i, &r);
    assert_int_equal(i->result, -EACCES);
    assert_int_equal(r->result, -EACCES);
    free_side(i);
    free_side(r);
    handshake(NULL, 1, &a, 2, &i, &r);
    assert_int_equal(i->result, -EACCES);
    assert_int_equal(r->result, -EACCES);
    free_side(i);
    free_side(r);
}

static void test_insecure_local(void **state)
{
    (void)state;
    struct side *i, *r;
    handshake(NULL, 5, NULL, 6, &i, &r);
    assert_int_equal(i->result, 0);
    assert_int_equal(r->result, 0);
    assert_int_equal(i->peer_id, 6);
    assert_int_equal(r->peer_id, 5);
    free_side(i);
    free_side(r);

    /* Without a secret, a peer that is not on loopback is refused before a
     * byte is exchanged. */
    int fds[2];
    pair(fds);
    i = new_side(fds[0], NULL, 5, 1);
    struct sockaddr_in *in = (struct sockaddr_in *)&i->c.addr;
    memset(in, 0, sizeof(*in));
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl(0x0a000001);
    run_side(i);
    assert_int_equal(i->result, -EACCES);
    free_side(i);
    char b;
    assert_int_equal(read(fds[1], &b, 1), 0);
    close(fds[1]);
}

static void test_same_id_refused(void **state)
{
    (void)state;
    struct auth_secret k;
    key_of(&k, 3);
    struct side *i, *r;
    handshake(&k, 4, &k, 4, &i, &r);
    assert_int_equal(i->result, -EACCES);
    assert_int_equal(r->result, -EACCES);
    free_side(i);
    free_side(r);
}

/* Receives one frame on c and sends it on to d; its bytes are kept in rec
 * (a whole encoded frame) when rec is not NULL. */
static void relay(struct conn *c, struct conn *d, uint8_t *rec, size_t cap, size_t *rec_len)
{
    struct frame f;
    assert_int_equal(conn_recv(c, &f, T_MS), 0);
    struct iovec iov = {(void *)f.payload, f.h.length};
    if (rec) {
        ssize_t n = frame_encode(rec, cap, f.h.type, f.h.flags, f.h.id, f.payload, f.h.length);
        assert_true(n > 0);
        *rec_len = (size_t)n;
    }
    assert_int_equal(conn_send(d, f.h.type, f.h.flags, f.h.id, &iov, 1, T_MS), 0);
}

static void test_replayed_transcript(void **state)
{
    (void)state;
    struct auth_secret k;
    key_of(&k, 7);
    /* Session 1: initiator <-> (this thread, recording) <-> responder. */
    int a[2], b[2];
    pair(a);
    pair(b);
    struct side *i = new_side(a[0], &k, 1, 1), *r = new_side(b[1], &k, 2, 0);
    struct conn mi, mr;
    conn_init(&mi, a[1], 0);
    conn_init(&mr, b[0], 0);
    pthread_t ti, tr;
    assert_int_equal(pthread_create(&ti, NULL, run_side, i), 0);
    assert_int_equal(pthread_create(&tr, NULL, run_side, r), 0);
    uint8_t hello[256], proof[256];
    size_t hello_len, proof_len;
    relay(&mi, &mr, hello, sizeof(hello), &hello_len); /* HELLO */
    relay(&mr, &mi, NULL, 0, NULL);                    /* CHALLENGE */
    relay(&mi, &mr, proof, sizeof(proof), &proof_len); /* PROOF */
    relay(&mr, &mi, NULL, 0, NULL);                    /* OK */
    pthread_join(ti, NULL);
    pthread_join(tr, NULL);
    assert_int_equal(i->result, 0);
    assert_int_equal(r->result, 0);
    free_side(i);
    free_side(r);
    conn_close(&mi);
    conn_close(&mr);

    /* Session 2: the recorded initiator bytes to a fresh responder. */
    int c[2];
    pair(c);
    r = new_side(c[1], &k, 2, 0);
    assert_int_equal(pthread_create(&tr, NULL, run_side, r), 0);
    assert_int_equal(write(c[0], hello, hello_len), (ssize_t)hello_len);
    assert_int_equal(write(c[0], proof, proof_len), (ssize_t)proof_len);
    struct conn m;
    conn_init(&m, c[0], 0);
    struct frame f;
    assert_int_equal(conn_recv(&m, &f, T_MS), 0);
    assert_int_equal(f.h.type, FRAME_AUTH_CHALLENGE);
    assert_int_equal(conn_recv(&m, &f, T_MS), 0);
    assert_int_equal(f.h.type, FRAME_AUTH_FAIL);
    pthread_join(tr, NULL);
    assert_int_equal(r->result, -EACCES);
    free_side(r);
    conn_close(&m);
}

/* Sends a HELLO as an initiator would, with the given nonce. */
static void send_hello(struct conn *m, uint32_t id, const uint8_t *nonce, size_t nonce_len)
{
    uint8_t buf[2048];
    struct payload_writer w;
    payload_writer_init(&w, buf, sizeof(buf));
    payload_put_u32(&w, id);
    payload_put_u8(&w, 1);
    assert_int_equal(payload_put_raw(&w, nonce, nonce_len), 0);
    struct iovec iov = {buf, w.len};
    assert_int_equal(conn_send(m, FRAME_AUTH_HELLO, 0, 0, &iov, 1, T_MS), 0);
}

static void test_reflected_proof(void **state)
{
    (void)state;
    struct auth_secret k;
    key_of(&k, 9);
    int c[2];
    pair(c);
    struct side *r = new_side(c[1], &k, 2, 0);
    pthread_t tr;
    assert_int_equal(pthread_create(&tr, NULL, run_side, r), 0);
    struct conn m;
    conn_init(&m, c[0], 0);
    uint8_t nonce[AUTH_NONCE_BYTES];
    memset(nonce, 0x5a, sizeof(nonce));
    send_hello(&m, 1, nonce, sizeof(nonce));
    struct frame f;
    assert_int_equal(conn_recv(&m, &f, T_MS), 0);
    assert_int_equal(f.h.type, FRAME_AUTH_CHALLENGE);
    assert_int_equal(f.h.length, 4 + 1 + AUTH_NONCE_BYTES + AUTH_MAC_BYTES);
    /* Its own proof, sent back as ours. */
    struct iovec iov = {(void *)(f.payload + 4 + 1 + AUTH_NONCE_BYTES), AUTH_MAC_BYTES};
    assert_int_equal(conn_send(&m, FRAME_AUTH_PROOF, 0, 0, &iov, 1, T_MS), 0);
    assert_int_equal(conn_recv(&m, &f, T_MS), 0);
    assert_int_equal(f.h.type, FRAME_AUTH_FAIL);
    pthread_join(tr, NULL);
    assert_int_equal(r->result, -EACCES);
    free_side(r);
    conn_close(&m);
}

/* A responder without the key answers with a made-up MAC: the initiator
 * refuses it and never sends a proof of its own. */
static void test_forged_challenge(void **state)
{
    (void)state;
    struct auth_secret k;
    key_of(&k, 11);
    int c[2];
    pair(c);
    struct side *i = new_side(c[0], &k, 1, 1);
    pthread_t ti;
    assert_int_equal(pthread_create(&ti, NULL, run_side, i), 0);
    struct conn m;
    conn_init(&m, c[1], 0);
    struct frame f;
    assert_int_equal(conn_recv(&m, &f, T_MS), 0);
    assert_int_equal(f.h.type, FRAME_AUTH_HELLO);
    uint8_t buf[128];
    struct payload_writer w;
    payload_writer_init(&w, buf, sizeof(buf));
    payload_put_u32(&w, 2);
    payload_put_u8(&w, 1);
    uint8_t nonce[AUTH_NONCE_BYTES] = {1}, mac[AUTH_MAC_BYTES] = {2};
    payload_put_raw(&w, nonce, sizeof(nonce));
    assert_int_equal(payload_put_raw(&w, mac, sizeof(mac)), 0);
    struct iovec iov = {buf, w.len};
    assert_int_equal(conn_send(&m, FRAME_AUTH_CHALLENGE, 0, 0, &iov, 1, T_MS), 0);
    assert_int_equal(conn_recv(&m, &f, T_MS), 0);
    assert_int_equal(f.h.type, FRAME_AUTH_FAIL);
    pthread_join(ti, NULL);
    assert_int_equal(i->result, -EACCES);
    free_side(i);
    assert_int_equal(conn_recv(&m, &f, T_MS), -EPIPE); /* and nothing else came */
    conn_close(&m);
}

static void test_bad_handshake_frames(void **state)
{
    (void)state;
    struct auth_secret k;
    key_of(&k, 13);
    int c[2];
    struct side *r;
    pthread_t tr;
    struct conn m;
    uint8_t big[1000] = {0};

    /* A HELLO above AUTH_MAX_PAYLOAD: refused from its header. */
    pair(c);
    r = new_side(c[1], &k, 2, 0);
    assert_int_equal(pthread_create(&tr, NULL, run_side, r), 0);
    conn_init(&m, c[0], 0);
    send_hello(&m, 1, big, sizeof(big));
    pthread_join(tr, NULL);
    assert_int_equal(r->result, -EMSGSIZE);
    assert_null(r->c.dec.buf);
    free_side(r);
    conn_close(&m);

    /* A short HELLO. */
    pair(c);
    r = new_side(c[1], &k, 2, 0);
    assert_int_equal(pthread_create(&tr, NULL, run_side, r), 0);
    conn_init(&m, c[0], 0);
    send_hello(&m, 1, big, AUTH_NONCE_BYTES - 1);
    pthread_join(tr, NULL);
    assert_int_equal(r->result, -EBADMSG);
    free_side(r);
    conn_close(&m);

    /* A frame of another type first. */
    pair(c);
    r = new_side(c[1], &k, 2, 0);
    assert_int_equal(pthread_create(&tr, NULL, run_side, r), 0);
    conn_init(&m, c[0], 0);
    assert_int_equal(conn_send(&m, FRAME_AUTH_PROOF, 0, 0, NULL, 0, T_MS), 0);
    pthread_join(tr, NULL);
    assert_int_equal(r->result, -EPROTO);
    free_side(r);
    conn_close(&m);

    /* A peer that says nothing. */
    pair(c);
    r = new_side(c[1], &k, 2, 0);
    r->timeout_ms = 50;
    run_side(r);
    assert_int_equal(r->result, -ETIMEDOUT);
    free_side(r);
    close(c[0]);

    /* A peer that hangs up. */
    pair(c);
    r = new_side(c[1], &k, 2, 0);
    close(c[0]);
    run_side(r);
    assert_int_equal(r->result, -EPIPE);
    free_side(r);
}

/* --------------------------------------------------------------- secrets */

static void write_secret(const char *name, const char *text, size_t len, mode_t mode, char *path)
{
    snprintf(path, 128, "%s/%s", tmpdir, name);
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    assert_int_equal(chmod(path, mode), 0);
}

/* A refused load leaves the key as it was. */
static void refused(const char *path, int err)
{
    struct auth_secret s;
    key_of(&s, 0xAB);
    assert_int_equal(auth_load_secret(path, &s), err);
    for (size_t i = 0; i < sizeof(s.key); i++)
        assert_int_equal(s.key[i], 0xAB);
}

static void test_secret_file(void **state)
{
    (void)state;
    char path[128], path2[128];
    struct auth_secret a, b;
    write_secret("ok", "0123456789abcdef\n", 17, 0600, path);
    assert_int_equal(auth_load_secret(path, &a), 0);
    write_secret("ok2", "0123456789abcdef", 16, 0400, path2);
    assert_int_equal(auth_load_secret(path2, &b), 0);
    assert_memory_equal(a.key, b.key, sizeof(a.key)); /* newline stripped */
    write_secret("crlf", "0123456789abcdef\r\n", 18, 0600, path2);
    assert_int_equal(auth_load_secret(path2, &b), 0);
    assert_memory_equal(a.key, b.key, sizeof(a.key));
    write_secret("other", "0123456789abcdeF", 16, 0600, path2);
    assert_int_equal(auth_load_secret(path2, &b), 0);
    assert_memory_not_equal(a.key, b.key, sizeof(a.key));
    /* The key is not the secret. */
    assert_memory_not_equal(a.key, "0123456789abcdef", 16);

    write_secret("world", "0123456789abcdef", 16, 0644, path);
    refused(path, -EPERM);
    write_secret("group-read", "0123456789abcdef", 16, 0640, path);
    refused(path, -EPERM);
    write_secret("other-write", "0123456789abcdef", 16, 0602, path);
    refused(path, -EPERM);
    write_secret("group-exec", "0123456789abcdef", 16, 0610, path);
    refused(path, -EPERM);
    write_secret("short", "0123456789abcde\n", 16, 0600, path);
    refused(path, -EINVAL);
    write_secret("empty", "", 0, 0600, path);
    refused(path, -EINVAL);
    static char longer[AUTH_SECRET_MAX + 2];
    memset(longer, 'x', sizeof(longer));
    write_secret("max", longer, AUTH_SECRET_MAX, 0600, path);
    assert_int_equal(auth_load_secret(path, &b), 0);
    write_secret("long", longer, AUTH_SECRET_MAX + 1, 0600, path);
    refused(path, -EINVAL);

    snprintf(path, sizeof(path), "%s/dir", tmpdir);
    assert_int_equal(mkdir(path, 0700), 0);
    refused(path, -EPERM);
    snprintf(path, sizeof(path), "%s/fifo", tmpdir);
    assert_int_equal(mkfifo(path, 0600), 0);
    refused(path, -EPERM); /* refused, not hung on the open */
    snprintf(path, sizeof(path), "%s/missing", tmpdir);
    refused(path, -ENOENT);
}

static void test_peer_allowed(void **state)
{
    (void)state;
    struct sockaddr_in in = {.sin_family = AF_INET};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    struct {
        int family;
        const char *addr;
        int ok;
    } cases[] = {
        {AF_INET, "127.0.0.1", 1},         {AF_INET, "127.1.2.3", 1},
        {AF_INET, "10.0.0.1", 0},          {AF_INET, "128.0.0.1", 0},
        {AF_INET, "0.0.0.0", 0},           {AF_INET6, "::1", 1},
        {AF_INET6, "::ffff:127.0.0.1", 1}, {AF_INET6, "::ffff:10.0.0.1", 0},
        {AF_INET6, "2001:db8::1", 0},      {AF_INET6, "::", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct sockaddr *sa;
        if (cases[i].family == AF_INET) {
            assert_int_equal(inet_pton(AF_INET, cases[i].addr, &in.sin_addr), 1);
            sa = (const struct sockaddr *)&in;
        } else {
            assert_int_equal(inet_pton(AF_INET6, cases[i].addr, &in6.sin6_addr), 1);
            sa = (const struct sockaddr *)&in6;
        }
        if (auth_peer_allowed(sa, 0) != cases[i].ok)
            fail_msg("%s without a secret: not %d", cases[i].addr, cases[i].ok);
        assert_int_equal(auth_peer_allowed(sa, 1), 1);
    }
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/topicfs-wire-auth-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    logger_init("test_auth", 0, LOG_LEVEL_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_secret),          cmocka_unit_test(test_wrong_secret),
        cmocka_unit_test(test_secret_on_one_side),   cmocka_unit_test(test_insecure_local),
        cmocka_unit_test(test_same_id_refused),      cmocka_unit_test(test_replayed_transcript),
        cmocka_unit_test(test_reflected_proof),      cmocka_unit_test(test_forged_challenge),
        cmocka_unit_test(test_bad_handshake_frames), cmocka_unit_test(test_secret_file),
        cmocka_unit_test(test_peer_allowed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
