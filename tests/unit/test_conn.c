/* test_conn.c - inter-broker connections (replicate/conn.c) over real
 * loopback TCP: address parsing; listen on 127.0.0.1:0 (and [::1]:0 where
 * the machine has IPv6), connect, accept; frames both ways, small and large
 * (a sender thread, payloads in many iovec pieces, more pieces than
 * IOV_MAX), bursts delivered in order; a frame above the limit refused with
 * nothing sent; garbage, another protocol version, a close inside a frame
 * and a close between frames each give their errno (sticky), never a crash;
 * a receive that times out keeps what it read; a refused connect. Waits are
 * bounded by the calls' own timeouts (seconds, generous); nothing asserts on
 * speed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "logger.h"

#define T_MS 10000

/* A connected pair over loopback TCP: *client connected, *server accepted. */
static int tcp_pair(const char *listen_addr, struct conn *client, struct conn *server,
                    size_t max_payload)
{
    int lfd = conn_listen(listen_addr);
    if (lfd < 0)
        return lfd;
    char addr[CONN_ADDR_MAX];
    assert_int_equal(conn_local_addr(lfd, addr, sizeof(addr)), 0);
    assert_int_equal(conn_connect(client, addr, T_MS, max_payload), 0);
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, T_MS), 1);
    assert_int_equal(conn_accept(lfd, server, max_payload), 0);
    assert_int_equal(conn_accept(lfd, server + 1, max_payload), -EAGAIN);
    close(lfd);
    return 0;
}

static void test_parse_addr(void **state)
{
    (void)state;
    char host[64];
    uint16_t port;
    assert_int_equal(conn_parse_addr("127.0.0.1:9093", host, sizeof(host), &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 9093);
    assert_int_equal(conn_parse_addr("[::1]:0", host, sizeof(host), &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 0);
    assert_int_equal(conn_parse_addr("broker-2.example:65535", host, sizeof(host), &port), 0);
    assert_string_equal(host, "broker-2.example");
    assert_int_equal(port, 65535);
    static const char *bad[] = {
        "127.0.0.1", "127.0.0.1:", ":9093", "[::1]9093", "::1:9093",  "[::1]",
        "[]:1",      "h:65536",    "h:-1",  "h:12a",     "h:123456",  "h: 1",
        "[::1:1",    "a]:1",       "h:1:2", "",          "[::1]:1:2",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (conn_parse_addr(bad[i], host, sizeof(host), &port) != -EINVAL)
            fail_msg("\"%s\" parsed", bad[i]);
    assert_int_equal(conn_parse_addr("abcdef:1", host, 6, &port), -EINVAL);
    assert_int_equal(conn_parse_addr("abcde:1", host, 6, &port), 0);
}

static void test_small_frames_both_ways(void **state)
{
    (void)state;
    struct conn c, s[2];
    assert_int_equal(tcp_pair("127.0.0.1:0", &c, s, 0), 0);
    assert_non_null(strstr(s[0].peer, "127.0.0.1:"));
    struct iovec iov[2] = {{"hello ", 6}, {"world", 5}};
    assert_int_equal(conn_send(&c, 7, 1, 99, iov, 2, T_MS), 0);
    struct frame f;
    assert_int_equal(conn_recv(&s[0], &f, T_MS), 0);
    assert_int_equal(f.h.type, 7);
    assert_int_equal(f.h.flags, 1);
    assert_int_equal(f.h.id, 99);
    assert_int_equal(f.h.length, 11);
    assert_memory_equal(f.payload, "hello world", 11);
    /* The reply, with no payload. */
    assert_int_equal(conn_send(&s[0], 8, 0, 99, NULL, 0, T_MS), 0);
    assert_int_equal(conn_recv(&c, &f, T_MS), 0);
    assert_int_equal(f.h.type, 8);
    assert_int_equal(f.h.length, 0);
    /* A burst arrives whole and in order. */
    for (uint64_t i = 0; i < 50; i++) {
        struct iovec one = {&i, sizeof(i)};
        assert_int_equal(conn_send(&c, 1, 0, i, &one, 1, T_MS), 0);
    }
    for (uint64_t i = 0; i < 50; i++) {
        assert_int_equal(conn_recv(&s[0], &f, T_MS), 0);
        assert_int_equal(f.h.id, i);
        assert_memory_equal(f.payload, &i, sizeof(i));
    }
    conn_close(&c);
    assert_int_equal(conn_recv(&s[0], &f, T_MS), -EPIPE);
    assert_int_equal(conn_recv(&s[0], &f, T_MS), -EPIPE);
    conn_close(&s[0]);
    conn_close(&s[0]); /* twice is harmless */
}

struct big_send {
    struct conn *c;
    uint8_t *data;
    size_t len;
    int pieces;
    int result;
};

static void *send_big(void *arg)
{
    struct big_send *b = arg;
    struct iovec *iov = calloc((size_t)b->pieces, sizeof(*iov));
    size_t per = b->len / (size_t)b->pieces, at = 0;
    for (int i = 0; i < b->pieces; i++) {
        size_t n = i == b->pieces - 1 ? b->len - at : per;
        iov[i] = (struct iovec){b->data + at, n};
        at += n;
    }
    b->result = conn_send(b->c, 3, 0, 5, iov, b->pieces, T_MS);
    free(iov);
    return NULL;
}

static void big_exchange(size_t len, int pieces)
{
    struct conn c, s[2];
    assert_int_equal(tcp_pair("127.0.0.1:0", &c, s, 0), 0);
    struct big_send b = {&c, malloc(len), len, pieces, 1};
    for (size_t i = 0; i < len; i++)
        b.data[i] = (uint8_t)(i * 7 + i / 4096);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, send_big, &b), 0);
    struct frame f;
    int r = conn_recv(&s[0], &f, T_MS);
    pthread_join(t, NULL);
    assert_int_equal(r, 0);
    assert_int_equal(b.result, 0);
    assert_int_equal(f.h.length, len);
    assert_memory_equal(f.payload, b.data, len);
    free(b.data);
    conn_close(&c);
    conn_close(&s[0]);
}

static void test_large_frames(void **state)
{
    (void)state;
    big_exchange(3u << 20, 5);
    big_exchange(IOV_MAX * 3 + 17, IOV_MAX + 500); /* more pieces than one sendmsg takes */
    big_exchange(1000, 1000);                      /* one-byte pieces */
}

struct pieces_send {
    struct conn *c;
    const struct frame_piece *p;
    int n;
    int result;
};

static void *send_pieces(void *arg)
{
    struct pieces_send *ps = arg;
    ps->result = conn_send_pieces(ps->c, 3, 0, 8, ps->p, ps->n, T_MS);
    return NULL;
}

static void *send_big_then_small(void *arg)
{
    struct big_send *b = arg;
    send_big(b);
    struct iovec tail = {"after", 5};
    if (!b->result)
        b->result = conn_send(b->c, 4, 0, 6, &tail, 1, T_MS);
    return NULL;
}

/* A large frame read straight into the decoder's buffer, with the next
 * frame right behind it on the stream: both arrive, whole and in order,
 * twice (the second time into the buffer kept from the first). */
static void test_large_then_small_back_to_back(void **state)
{
    (void)state;
    struct conn c, s[2];
    assert_int_equal(tcp_pair("127.0.0.1:0", &c, s, 0), 0);
    size_t len = 2u << 20;
    struct big_send b = {&c, malloc(len), len, 3, 1};
    for (size_t i = 0; i < len; i++)
        b.data[i] = (uint8_t)(i * 13 + i / 1000);
    for (int round = 0; round < 2; round++) {
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, send_big_then_small, &b), 0);
        struct frame f;
        int r1 = conn_recv(&s[0], &f, T_MS);
        int ok1 = !r1 && f.h.id == 5 && f.h.length == len && !memcmp(f.payload, b.data, len);
        int r2 = conn_recv(&s[0], &f, T_MS);
        pthread_join(t, NULL);
        assert_int_equal(b.result, 0);
        assert_int_equal(r1, 0);
        assert_true(ok1);
        assert_int_equal(r2, 0);
        assert_int_equal(f.h.id, 6);
        assert_int_equal(f.h.length, 5);
        assert_memory_equal(f.payload, "after", 5);
    }
    free(b.data);
    conn_close(&c);
    conn_close(&s[0]);
}

/* Memory and file pieces in one frame: the file's bytes go out with
 * sendfile and arrive as if they had been in memory; a piece past the
 * file's end is refused with -EIO before anything is sent. */
static void test_file_pieces(void **state)
{
    (void)state;
    char path[] = "/tmp/topicfs-test-conn-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    size_t flen = 3u << 20;
    uint8_t *file = malloc(flen);
    for (size_t i = 0; i < flen; i++)
        file[i] = (uint8_t)(i * 31 + i / 7);
    assert_int_equal(write(fd, file, flen), (ssize_t)flen);
    struct conn c, s[2];
    assert_int_equal(tcp_pair("127.0.0.1:0", &c, s, 0), 0);
    struct frame_piece p[5] = {
        {"head", -1, 0, 4}, {NULL, fd, 1000, 2u << 20}, /* 2 MiB from the file */
        {"mid", -1, 0, 3},  {NULL, fd, flen - 10, 10},  /* its last bytes */
        {"", -1, 0, 0},
    };
    size_t total = 4 + (2u << 20) + 3 + 10;
    uint8_t *want = malloc(total);
    memcpy(want, "head", 4);
    memcpy(want + 4, file + 1000, 2u << 20);
    memcpy(want + 4 + (2u << 20), "mid", 3);
    memcpy(want + 7 + (2u << 20), file + flen - 10, 10);
    struct frame f;
    for (int round = 0; round < 2; round++) {
        /* The receiver reads while the sender sends (2 MiB need not fit
         * the socket's buffers). */
        pthread_t t;
        struct pieces_send ps = {&c, p, 5, 1};
        assert_int_equal(pthread_create(&t, NULL, send_pieces, &ps), 0);
        int r = conn_recv(&s[0], &f, T_MS);
        pthread_join(t, NULL);
        assert_int_equal(ps.result, 0);
        assert_int_equal(r, 0);
        assert_int_equal(f.h.length, total);
        assert_memory_equal(f.payload, want, total);
    }
    struct frame_piece past = {NULL, fd, flen - 5, 10};
    assert_int_equal(conn_send_pieces(&c, 3, 0, 9, &past, 1, T_MS), -EIO);
    /* Nothing went out: the stream still works. */
    struct iovec iov = {"ok", 2};
    assert_int_equal(conn_send(&c, 3, 0, 10, &iov, 1, T_MS), 0);
    assert_int_equal(conn_recv(&s[0], &f, T_MS), 0);
    assert_int_equal(f.h.id, 10);
    assert_memory_equal(f.payload, "ok", 2);
    free(want);
    free(file);
    close(fd);
    conn_close(&c);
    conn_close(&s[0]);
}

static void test_oversize_not_sent(void **state)
{
    (void)state;
    struct conn c, s[2];
    assert_int_equal(tcp_pair("127.0.0.1:0", &c, s, 100), 0);
    uint8_t buf[101] = {0};
    struct iovec iov = {buf, sizeof(buf)};
    assert_int_equal(conn_send(&c, 1, 0, 1, &iov, 1, T_MS), -EMSGSIZE);
    iov.iov_len = 100;
    assert_int_equal(conn_send(&c, 1, 0, 2, &iov, 1, T_MS), 0);
    struct frame f;
    assert_int_equal(conn_recv(&s[0], &f, T_MS), 0);
    assert_int_equal(f.h.id, 2); /* nothing of the refused frame went out */
    conn_close(&c);
    conn_close(&s[0]);
}

static void test_garbage_from_peer(void **state)
{
    (void)state;
    struct conn c, s[2];
    struct frame f;
    assert_int_equal(tcp_pair("127.0.0.1:0", &c, s, 0), 0);
    char garbage[200];
    for (size_t i = 0; i < sizeof(garbage); i++)
        garbage[i] = (char)(i * 13);
    assert_int_equal(write(c.fd, garbage, sizeof(garbage)), (ssize_t)sizeof(garbage));
    assert_int_equal(conn_recv(&s[0], &f, T_MS), -EBADMSG);
    assert_int_equal(conn_recv(&s[0], &f, T_MS), -EBADMSG);
    assert_int_equal(conn_send(&s[0], 1, 0, 0, NULL, 0, T_MS), -EBADMSG);
    conn_close(&c);
    conn_close(&s[0]);

    /* A frame of another version. */
    assert_int_equal(tcp_pair("127.0.0.1:0", &c, s, 0), 0);
    uint8_t b[FRAME_HEADER_SIZE];
    assert_int_equal(frame_encode(b, sizeof(b), 1, 0, 0, NULL, 0), FRAME_HEADER_SIZE);
    b[5] = 9;
    assert_int_equal(write(c.fd, b, sizeof(b)), (ssize_t)sizeof(b));
    assert_int_equal(conn_recv(&s[0], &f, T_MS), -EPROTO);
    conn_close(&c);
    conn_close(&s[0]);

    /* Half a frame, then the peer goes away. */
    assert_int_equal(tcp_pair("127.0.0.1:0", &c, s, 0), 0);
    uint8_t whole[FRAME_HEADER_SIZE + 10];
    assert_int_equal(frame_encode(whole, sizeof(whole), 1, 0, 0, "0123456789", 10), sizeof(whole));
    assert_int_equal(write(c.fd, whole, 20), 20);
    conn_close(&c);
    assert_int_equal(conn_recv(&s[0], &f, T_MS), -ENODATA);
    conn_close(&s[0]);
}

static void test_timeout_keeps_partial_frame(void **state)
{
    (void)state;
    struct conn c, s[2];
    struct frame f;
    assert_int_equal(tcp_pair("127.0.0.1:0", &c, s, 0), 0);
    assert_int_equal(conn_recv(&s[0], &f, 20), -ETIMEDOUT);
    uint8_t whole[FRAME_HEADER_SIZE + 10];
    assert_int_equal(frame_encode(whole, sizeof(whole), 4, 0, 6, "0123456789", 10), sizeof(whole));
    assert_int_equal(write(c.fd, whole, 30), 30);
    assert_int_equal(conn_recv(&s[0], &f, 20), -ETIMEDOUT);
    assert_int_equal(write(c.fd, whole + 30, sizeof(whole) - 30), (ssize_t)sizeof(whole) - 30);
    assert_int_equal(conn_recv(&s[0], &f, T_MS), 0);
    assert_int_equal(f.h.id, 6);
    assert_memory_equal(f.payload, "0123456789", 10);
    conn_close(&c);
    conn_close(&s[0]);
}

static void test_connect_refused(void **state)
{
    (void)state;
    int lfd = conn_listen("127.0.0.1:0");
    assert_true(lfd >= 0);
    char addr[CONN_ADDR_MAX];
    assert_int_equal(conn_local_addr(lfd, addr, sizeof(addr)), 0);
    close(lfd);
    struct conn c;
    assert_int_equal(conn_connect(&c, addr, T_MS, 0), -ECONNREFUSED);
    conn_close(&c); /* a failed conn may be closed */
    assert_int_equal(conn_connect(&c, "127.0.0.1", T_MS, 0), -EINVAL);
    assert_int_equal(conn_listen("127.0.0.1:x"), -EINVAL);
}

static void test_ipv6_loopback(void **state)
{
    (void)state;
    struct conn c, s[2];
    int r = tcp_pair("[::1]:0", &c, s, 0);
    if (r == -EADDRNOTAVAIL || r == -EAFNOSUPPORT || r == -EHOSTUNREACH)
        skip();
    assert_int_equal(r, 0);
    assert_non_null(strstr(s[0].peer, "[::1]:"));
    assert_int_equal(conn_send(&c, 1, 0, 3, NULL, 0, T_MS), 0);
    struct frame f;
    assert_int_equal(conn_recv(&s[0], &f, T_MS), 0);
    assert_int_equal(f.h.id, 3);
    conn_close(&c);
    conn_close(&s[0]);
}

int main(void)
{
    logger_init("test_conn", 0, LOG_LEVEL_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_addr),
        cmocka_unit_test(test_small_frames_both_ways),
        cmocka_unit_test(test_large_frames),
        cmocka_unit_test(test_large_then_small_back_to_back),
        cmocka_unit_test(test_file_pieces),
        cmocka_unit_test(test_oversize_not_sent),
        cmocka_unit_test(test_garbage_from_peer),
        cmocka_unit_test(test_timeout_keeps_partial_frame),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_ipv6_loopback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
