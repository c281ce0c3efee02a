/* test_server.c - the inter-broker server and its client (server.h) over
 * loopback TCP: requests served only after the handshake, replies and
 * errors matched to their requests, unknown types, garbage and refused
 * peers that leave the server serving, and a stop with peers connected. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "server.h"

#define PING_FAIL_ERRNO ENOSPC

static int done_calls;
static int handler_calls;

static void count_done(void *arg)
{
    (void)arg;
    __atomic_add_fetch(&done_calls, 1, __ATOMIC_SEQ_CST);
}

/* Echoes the payload; "fail" gets ENOSPC back. */
static int ping(void *arg, int peer_id, const struct frame *req, struct server_reply *rep)
{
    (void)arg;
    __atomic_add_fetch(&handler_calls, 1, __ATOMIC_SEQ_CST);
    if (peer_id != 2)
        return -EINVAL;
    if (req->h.length == 4 && !memcmp(req->payload, "fail", 4))
        return -PING_FAIL_ERRNO;
    rep->iov[0].iov_base = (void *)req->payload;
    rep->iov[0].iov_len = req->h.length;
    rep->iovcnt = 1;
    rep->done = count_done;
    return 0;
}

static struct auth_secret key(uint8_t b)
{
    struct auth_secret s;
    memset(s.key, b, sizeof(s.key));
    return s;
}

static struct server *start(const struct auth_secret *secret)
{
    struct server *s;
    struct server_options o = {.listen = "127.0.0.1:0", .secret = secret, .broker_id = 1};
    assert_int_equal(server_create(&o, &s), 0);
    server_handle(s, FRAME_PING, ping, NULL);
    assert_int_equal(server_start(s), 0);
    return s;
}

static void call_ok(struct peer_conn *pc, const char *text)
{
    struct iovec iov = {.iov_base = (void *)text, .iov_len = strlen(text)};
    struct frame reply;
    assert_int_equal(peer_call(pc, FRAME_PING, &iov, 1, 5000, &reply), 0);
    assert_int_equal(reply.h.length, strlen(text));
    assert_memory_equal(reply.payload, text, strlen(text));
}

static void test_ping_and_errors(void **state)
{
    (void)state;
    struct auth_secret k = key(7);
    struct server *s = start(&k);
    struct peer_conn *pc;
    assert_int_equal(peer_connect(server_address(s), &k, 2, 1, 5000, &pc), 0);
    assert_int_equal(peer_id(pc), 1);
    int before = done_calls;
    call_ok(pc, "hello");
    call_ok(pc, "");
    /* A handler's errno comes back; the connection stays usable. */
    struct iovec iov = {.iov_base = "fail", .iov_len = 4};
    struct frame reply;
    assert_int_equal(peer_call(pc, FRAME_PING, &iov, 1, 5000, &reply), -PING_FAIL_ERRNO);
    assert_int_equal(peer_call(pc, 999, &iov, 1, 5000, &reply), -EOPNOTSUPP);
    call_ok(pc, "again");
    peer_close(pc);
    server_stop(s); /* joins the threads: every reply's done() ran */
    assert_int_equal(done_calls, before + 3);
}

static void test_refused_peers_get_nothing(void **state)
{
    (void)state;
    struct auth_secret k = key(7), wrong = key(8);
    struct server *s = start(&k);
    struct peer_conn *pc;
    int calls = handler_calls;
    assert_int_equal(peer_connect(server_address(s), &wrong, 2, 1, 5000, &pc), -EACCES);
    assert_int_equal(peer_connect(server_address(s), NULL, 2, 1, 5000, &pc), -EACCES);
    /* The right secret, but not the broker expected there. */
    assert_int_equal(peer_connect(server_address(s), &k, 2, 3, 5000, &pc), -EPROTO);
    /* Garbage instead of a handshake: the server closes, and serves on. */
    struct conn raw;
    assert_int_equal(conn_connect(&raw, server_address(s), 5000, 0), 0);
    static const char junk[] = "GET / HTTP/1.0\r\nHost: broker\r\nUser-Agent: x\r\n\r\n";
    assert_true(sizeof(junk) - 1 > FRAME_HEADER_SIZE);
    assert_int_equal(write(raw.fd, junk, sizeof(junk) - 1), (ssize_t)sizeof(junk) - 1);
    struct frame f;
    int r = conn_recv(&raw, &f, 5000);
    assert_true(r == -EBADMSG || r == -EPIPE || r == -ECONNRESET || r == -ENODATA);
    conn_close(&raw);
    /* A request before the handshake is not served either. */
    assert_int_equal(conn_connect(&raw, server_address(s), 5000, 0), 0);
    struct iovec iov = {.iov_base = "x", .iov_len = 1};
    assert_int_equal(conn_send(&raw, FRAME_PING, 0, 1, &iov, 1, 5000), 0);
    r = conn_recv(&raw, &f, 5000);
    assert_true(r != 0 || (f.h.type == FRAME_AUTH_FAIL));
    conn_close(&raw);
    assert_int_equal(handler_calls, calls);
    assert_int_equal(peer_connect(server_address(s), &k, 2, 1, 5000, &pc), 0);
    call_ok(pc, "still serving");
    peer_close(pc);
    server_stop(s);
}

static void test_insecure_loopback(void **state)
{
    (void)state;
    struct server *s = start(NULL);
    struct peer_conn *pc;
    struct auth_secret k = key(7);
    assert_int_equal(peer_connect(server_address(s), &k, 2, 1, 5000, &pc), -EACCES);
    assert_int_equal(peer_connect(server_address(s), NULL, 2, 1, 5000, &pc), 0);
    call_ok(pc, "loopback");
    peer_close(pc);
    server_stop(s);
}

struct client_arg {
    const char *addr;
    struct auth_secret k;
    int ok;
};

static void *client_main(void *arg)
{
    struct client_arg *a = arg;
    struct peer_conn *pc;
    if (peer_connect(a->addr, &a->k, 2, 1, 10000, &pc))
        return NULL;
    for (int i = 0; i < 50; i++) {
        char text[32];
        int n = snprintf(text, sizeof(text), "request %d", i);
        struct iovec iov = {.iov_base = text, .iov_len = (size_t)n};
        struct frame reply;
        if (peer_call(pc, FRAME_PING, &iov, 1, 10000, &reply) || reply.h.length != (size_t)n ||
            memcmp(reply.payload, text, (size_t)n))
            break;
        if (i == 49)
            a->ok = 1;
    }
    peer_close(pc);
    return NULL;
}

static void test_many_peers_at_once(void **state)
{
    (void)state;
    struct auth_secret k = key(3);
    struct server *s = start(&k);
    pthread_t t[12];
    struct client_arg a[12];
    for (int i = 0; i < 12; i++) {
        a[i] = (struct client_arg){.addr = server_address(s), .k = k};
        assert_int_equal(pthread_create(&t[i], NULL, client_main, &a[i]), 0);
    }
    for (int i = 0; i < 12; i++) {
        pthread_join(t[i], NULL);
        assert_true(a[i].ok);
    }
    server_stop(s);
}

static void test_stop_with_peers_connected(void **state)
{
    (void)state;
    struct auth_secret k = key(9);
    struct server *s = start(&k);
    struct peer_conn *idle, *busy;
    assert_int_equal(peer_connect(server_address(s), &k, 2, 1, 5000, &idle), 0);
    assert_int_equal(peer_connect(server_address(s), &k, 2, 1, 5000, &busy), 0);
    call_ok(busy, "before");
    server_stop(s);
    struct iovec iov = {.iov_base = "after", .iov_len = 5};
    struct frame reply;
    assert_int_not_equal(peer_call(busy, FRAME_PING, &iov, 1, 5000, &reply), 0);
    assert_int_not_equal(peer_call(idle, FRAME_PING, &iov, 1, 5000, &reply), 0);
    peer_close(idle);
    peer_close(busy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ping_and_errors),
        cmocka_unit_test(test_refused_peers_get_nothing),
        cmocka_unit_test(test_insecure_loopback),
        cmocka_unit_test(test_many_peers_at_once),
        cmocka_unit_test(test_stop_with_peers_connected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
