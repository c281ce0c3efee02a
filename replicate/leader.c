/* leader.c - the leader's side of replication: FRAME_FETCH and
 * FRAME_OFFSET_FOR_EPOCH (proto.h), each follower's log end and last
 * caught-up time, and the high watermark they move (replica.h, isr.h).
 *
 * FETCH: every part is checked first (this broker leads the partition at
 * the requester's epoch, and a follower is one of its replicas); a
 * follower's fetch offset is its log end offset (LEO), recorded at once,
 * which may move the high watermark. Then the long poll: the stored
 * batches from each fetch offset (a follower's up to the log end, a
 * reader's, replica_id -1, up to the high watermark), copied out of the
 * log under its lock (partition_fetch_raw); the answer goes back as soon
 * as there are records, an error, or a high watermark that the follower
 * has not been told yet, else when the store listener's generation moves
 * (anything changed: look again) or max_wait_ms (capped at
 * FETCH_WAIT_CAP_MS) passes, or the manager stops. The first batch of the
 * reply is whole whatever its size; the next ones fit the request's
 * max_bytes, and the whole reply the receiver's frame limit (a batch that
 * does not fit waits for the next fetch). A follower's reply also carries
 * each partition's producer state (the idempotence table), read after the
 * batches, so the follower knows every batch it appends. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logger.h"
#include "replica_impl.h"
#include "thread_slot.h"

#define FETCH_WAIT_CAP_MS 30000
#define FETCH_PARTS_MAX 4096

/* Under m->lock: where follower `id` is in r->followers, or -1. */
static int follower_index(const struct replica *r, int32_t id)
{
    for (size_t i = 0; i < r->nfollowers; i++)
        if (r->followers[i].id == id)
            return (int)i;
    return -1;
}

/* Under m->lock: 0 with a reference to the partition's replica that this
 * broker leads at epoch, or the errno of replica.h's table. */
static int lead(struct replica_manager *m, const char *topic, uint32_t part, uint32_t epoch,
                int32_t replica_id, struct replica **out)
{
    struct replica *r = replica_find(m, topic, part);
    if (!r)
        return -ENOENT;
    if (r->role != ROLE_LEADER)
        return -EREMOTE;
    if ((int64_t)epoch < r->epoch)
        return -ESTALE;
    if ((int64_t)epoch > r->epoch)
        return -EAGAIN;
    if (replica_id >= 0 && follower_index(r, replica_id) < 0)
        return -EPERM;
    replica_ref(r);
    *out = r;
    return 0;
}

/* Where a reply's records are, in order: pieces of the log's segment
 * files, sent from the page cache without a copy (each with its own
 * duplicate of the segment's descriptor, so a segment closed meanwhile
 * does not matter; adjacent pieces of one file are one), or bytes copied
 * into buf (pieces in memory, or a file piece whose descriptor could not
 * be duplicated). total counts both, against limit. Pieces are joined only
 * within one part (from part_from on): each part's records stay its own. */
struct rec_piece {
    int fd;       /* the duplicate, or -1: len bytes at buf + pos */
    int src_fd;   /* the segment's own descriptor (to join adjacent pieces) */
    uint64_t pos; /* in the file, or in buf */
    size_t len;
};

struct record_sink {
    uint8_t *buf;
    size_t len, cap;
    struct rec_piece *v;
    size_t n, vcap, part_from;
    size_t total, limit;
};

/* Drops the pieces from index `from` on (their descriptors closed). */
static void sink_cut(struct record_sink *rs, size_t from, size_t total, size_t len)
{
    for (size_t i = from; i < rs->n; i++)
        if (rs->v[i].fd >= 0)
            close(rs->v[i].fd);
    rs->n = from;
    rs->total = total;
    rs->len = len;
}

static int sink_copy(struct record_sink *rs, const struct stream_piece *pc)
{
    size_t need = rs->len + pc->len;
    if (need > rs->cap) {
        size_t cap = rs->cap ? rs->cap : 65536;
        while (cap < need)
            cap *= 2;
        uint8_t *b = realloc(rs->buf, cap);
        if (!b)
            return -ENOMEM;
        rs->buf = b;
        rs->cap = cap;
    }
    int e = stream_piece_copy(pc, rs->buf + rs->len);
    if (e)
        return e;
    rs->v[rs->n++] = (struct rec_piece){-1, -1, rs->len, pc->len};
    rs->len = need;
    return 0;
}

static int record_piece(const struct stream_piece *pc, void *arg)
{
    struct record_sink *rs = arg;
    if (pc->len > rs->limit - rs->total)
        return -ENOBUFS;
    struct rec_piece *last = rs->n > rs->part_from ? &rs->v[rs->n - 1] : NULL;
    if (pc->fd >= 0 && last && last->fd >= 0 && last->src_fd == pc->fd &&
        last->pos + last->len == pc->file_pos) {
        last->len += pc->len;
        rs->total += pc->len;
        return 0;
    }
    if (rs->n == rs->vcap) {
        size_t cap = rs->vcap ? rs->vcap * 2 : 16;
        struct rec_piece *v = realloc(rs->v, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        rs->v = v;
        rs->vcap = cap;
    }
    int fd = pc->fd >= 0 ? fcntl(pc->fd, F_DUPFD_CLOEXEC, 0) : -1;
    if (fd < 0) {
        int e = sink_copy(rs, pc); /* in memory, or out of descriptors */
        if (!e)
            rs->total += pc->len;
        return e;
    }
    rs->v[rs->n++] = (struct rec_piece){fd, pc->fd, pc->file_pos, pc->len};
    rs->total += pc->len;
    return 0;
}

static void no_deliver(void *arg)
{
    (void)arg;
}

struct part_state {
    struct replica *r; /* referenced, NULL when err */
    int err;
    struct raw_fetch info;
    size_t rec_from, rec_to; /* its pieces in the record sink */
    size_t rec_len;
};

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* One pass over the parts: 1 if the reply should go now. */
static int fetch_pass(struct replica_manager *m, const struct proto_fetch_req *q,
                      struct part_state *ps, struct record_sink *rs, size_t hard)
{
    struct stream_sink sink = {record_piece, no_deliver, rs};
    int ready = 0;
    sink_cut(rs, 0, 0, 0);
    for (size_t i = 0; i < q->n; i++) {
        struct part_state *s = &ps[i];
        s->rec_len = 0;
        s->rec_from = s->rec_to = rs->n;
        if (!s->r) {
            ready = 1;
            continue;
        }
        uint64_t max_offset = UINT64_MAX;
        if (q->replica_id < 0) {
            struct partition_info pi;
            partition_info(s->r->p, &pi);
            max_offset = pi.high_watermark;
        }
        size_t at = rs->total, from = rs->n, len = rs->len;
        rs->part_from = from;
        rs->limit = at ? min_size(hard, q->max_bytes > at ? q->max_bytes : at) : hard;
        size_t budget = q->max_bytes > at ? q->max_bytes - at : 0;
        ssize_t n = partition_fetch_raw(s->r->p, q->parts[i].fetch_offset, max_offset,
                                        min_size(q->parts[i].max_bytes, budget), &sink, &s->info);
        if (n == -ENOBUFS) /* does not fit this reply: the next fetch */
            n = 0;
        if (n <= 0)
            sink_cut(rs, from, at, len);
        if (n < 0) {
            s->err = (int)-n;
            ready = 1;
            continue;
        }
        s->err = 0;
        s->rec_to = rs->n;
        s->rec_len = rs->total - at;
        ready |= s->rec_len > 0;
        if (q->replica_id >= 0) {
            pthread_mutex_lock(&m->lock);
            int k = follower_index(s->r, q->replica_id);
            ready |= k >= 0 && s->r->hw_sent[k] != s->info.high_watermark;
            pthread_mutex_unlock(&m->lock);
        }
    }
    return ready;
}

/* The buffers a connection's thread builds its fetch replies in (each
 * server connection has its own thread, and a reply is sent before the
 * thread reads the next request): kept from one fetch to the next, so a
 * stream of fetches does not fault fresh pages in for every reply, and
 * released when the thread ends, or after a reply when they grew past
 * REPLY_KEEP_BYTES. */
#define REPLY_KEEP_BYTES (16u << 20)

struct reply_bufs {
    struct record_sink records;
    uint8_t *meta; /* everything else: the count, heads, tails */
    size_t meta_cap;
    struct frame_piece *pieces;
    size_t pieces_cap;
};

static void reply_bufs_free(void *arg)
{
    struct reply_bufs *b = arg;
    sink_cut(&b->records, 0, 0, 0);
    free(b->records.buf);
    free(b->records.v);
    free(b->meta);
    free(b->pieces);
}

static struct thread_slot reply_slot =
    THREAD_SLOT_INIT(sizeof(struct reply_bufs), NULL, reply_bufs_free);

/* After the reply went out (server_reply.done): the descriptors closed. */
static void reply_bufs_trim(void *arg)
{
    struct reply_bufs *b = arg;
    sink_cut(&b->records, 0, 0, 0);
    if (b->records.cap > REPLY_KEEP_BYTES) {
        free(b->records.buf);
        b->records.buf = NULL;
        b->records.cap = 0;
    }
}

/* Grows the reply buffer to hold `more` bytes past `at`. */
static int reserve(uint8_t **buf, size_t *cap, size_t at, size_t more)
{
    if (at + more <= *cap)
        return 0;
    size_t c = *cap ? *cap : 4096;
    while (c < at + more)
        c *= 2;
    uint8_t *b = realloc(*buf, c);
    if (!b)
        return -ENOMEM;
    *buf = b;
    *cap = c;
    return 0;
}

/* The reply: each part's fields, records, and for a follower the
 * partition's producer state, read from the table now, after the records
 * (producer_table.h: so it covers every batch in them). The records go out
 * as fetch_pass found them (file pieces from the page cache); the other
 * fields are laid out in b->meta, and the payload's pieces alternate
 * between the two. */
static int reply_fetch(struct replica_manager *m, const struct proto_fetch_req *q,
                       struct part_state *ps, struct reply_bufs *b, struct server_reply *rep)
{
    static __thread struct producer_kept kept[PROTO_PRODUCERS_MAX];
    size_t at = 2, np = 0, want = q->n + b->records.n + 1;
    size_t *meta_end = calloc(q->n ? q->n : 1, sizeof(*meta_end)); /* each part's head end */
    int e = meta_end ? reserve(&b->meta, &b->meta_cap, 0, 2) : -ENOMEM;
    if (!e && b->pieces_cap < want) {
        struct frame_piece *v = realloc(b->pieces, want * sizeof(*v));
        if (v) {
            b->pieces = v;
            b->pieces_cap = want;
        } else {
            e = -ENOMEM;
        }
    }
    if (e) {
        free(meta_end);
        return e;
    }
    proto_fetch_reply_count((uint16_t)q->n, b->meta);
    for (size_t i = 0; i < q->n; i++) {
        const struct part_state *s = &ps[i];
        struct proto_fetch_result res = {
            .partition = q->parts[i].partition,
            .error = (uint32_t)s->err,
            .high_watermark = s->info.high_watermark,
            .log_start_offset = s->info.log_start_offset,
            .log_start_pos = s->info.log_start_pos,
            .log_end_offset = s->info.log_end_offset,
            .leader_epoch = s->info.leader_epoch,
            .compacted = s->info.compacted ? 1 : 0,
            .records_len = (uint32_t)s->rec_len,
        };
        memcpy(res.topic, q->parts[i].topic, sizeof(res.topic));
        size_t nkept = 0;
        if (s->r && !s->err && q->replica_id >= 0 && m->o.producers)
            nkept = producer_table_snapshot(m->o.producers, s->r->topic, s->r->part, kept,
                                            PROTO_PRODUCERS_MAX);
        if ((e = reserve(&b->meta, &b->meta_cap, at,
                         PROTO_FETCH_PART_HEAD + PROTO_FETCH_PART_TAIL)))
            break;
        ssize_t h = proto_fetch_reply_part(&res, b->meta + at, PROTO_FETCH_PART_HEAD);
        if (h >= 0) {
            at += (size_t)h;
            meta_end[i] = at;
            h = proto_fetch_reply_producers(kept, nkept, b->meta + at, PROTO_FETCH_PART_TAIL);
        }
        if (h < 0) {
            e = (int)h;
            break;
        }
        at += (size_t)h;
        if (s->r && !s->err && q->replica_id >= 0) {
            pthread_mutex_lock(&m->lock);
            int k = follower_index(s->r, q->replica_id);
            if (k >= 0)
                s->r->hw_sent[k] = s->info.high_watermark;
            pthread_mutex_unlock(&m->lock);
        }
    }
    if (e) {
        free(meta_end);
        return e;
    }
    /* meta: count head0 | tail0 head1 | ... | tail(n-1), records between. */
    size_t from = 0;
    for (size_t i = 0; i < q->n; i++) {
        if (!ps[i].rec_len)
            continue;
        b->pieces[np++] = (struct frame_piece){b->meta + from, -1, 0, meta_end[i] - from};
        for (size_t k = ps[i].rec_from; k < ps[i].rec_to; k++) {
            const struct rec_piece *rp = &b->records.v[k];
            b->pieces[np++] = rp->fd >= 0
                                  ? (struct frame_piece){NULL, rp->fd, rp->pos, rp->len}
                                  : (struct frame_piece){b->records.buf + rp->pos, -1, 0, rp->len};
        }
        from = meta_end[i];
    }
    b->pieces[np++] = (struct frame_piece){b->meta + from, -1, 0, at - from};
    free(meta_end);
    rep->pieces = b->pieces;
    rep->npieces = (int)np;
    rep->done = reply_bufs_trim;
    rep->done_arg = b;
    return 0;
}

static int handle_fetch(void *arg, int peer, const struct frame *req, struct server_reply *rep)
{
    struct replica_manager *m = arg;
    struct proto_fetch_req q;
    int e = proto_fetch_req_decode(req->payload, req->h.length, &q);
    if (e)
        return e;
    if (q.replica_id < -1)
        e = -EINVAL;
    else if (q.replica_id >= 0 && q.replica_id != peer)
        e = -EACCES;
    else if (q.n > FETCH_PARTS_MAX)
        e = -EMSGSIZE;
    struct reply_bufs *b = e ? NULL : thread_slot_get(&reply_slot);
    struct part_state *ps = b ? calloc(q.n ? q.n : 1, sizeof(*ps)) : NULL;
    if (!e && !ps)
        e = -ENOMEM;
    if (e) {
        proto_fetch_req_free(&q);
        return e;
    }
    size_t hard =
        FRAME_MAX_PAYLOAD_DEFAULT - 2 - q.n * (PROTO_FETCH_PART_HEAD + PROTO_FETCH_PART_TAIL);
    int64_t now = replica_now_ms();
    int64_t deadline =
        now + (q.max_wait_ms < FETCH_WAIT_CAP_MS ? q.max_wait_ms : FETCH_WAIT_CAP_MS);
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < q.n; i++)
        ps[i].err = -lead(m, q.parts[i].topic, q.parts[i].partition,
                          q.parts[i].current_leader_epoch, q.replica_id, &ps[i].r);
    pthread_mutex_unlock(&m->lock);
    /* A follower's fetch offset is its log end. */
    for (size_t i = 0; i < q.n && q.replica_id >= 0; i++) {
        struct replica *r = ps[i].r;
        if (!r)
            continue;
        struct partition_info pi;
        pthread_mutex_lock(&m->lock);
        partition_info(r->p, &pi);
        int k = follower_index(r, q.replica_id);
        if (k >= 0 && r->role == ROLE_LEADER && q.parts[i].fetch_offset <= pi.end_offset)
            isr_follower_fetched(&r->followers[k], q.parts[i].fetch_offset, pi.end_offset, now);
        pthread_mutex_unlock(&m->lock);
        replica_leader_advance(m, r);
    }
    struct record_sink *rs = &b->records;
    for (;;) {
        pthread_mutex_lock(&m->lock);
        uint64_t gen = m->gen;
        pthread_mutex_unlock(&m->lock);
        if ((e = fetch_pass(m, &q, ps, rs, hard)) != 0 || replica_now_ms() >= deadline)
            break;
        pthread_mutex_lock(&m->lock);
        while (m->gen == gen && !m->stop && (now = replica_now_ms()) < deadline)
            replica_wait(m, &m->data_cond, deadline - now);
        int stop = m->stop;
        pthread_mutex_unlock(&m->lock);
        if (stop)
            break;
    }
    e = reply_fetch(m, &q, ps, b, rep);
    for (size_t i = 0; i < q.n; i++)
        if (ps[i].r)
            replica_unref(m, ps[i].r);
    free(ps);
    if (e)
        reply_bufs_trim(b);
    proto_fetch_req_free(&q);
    return e;
}

#define EPOCH_ANSWER_MAX (2 + 249 + 4 + 4 + 4 + 8)

static int handle_offset_for_epoch(void *arg, int peer, const struct frame *req,
                                   struct server_reply *rep)
{
    struct replica_manager *m = arg;
    struct proto_epoch_query *q;
    size_t n;
    (void)peer;
    int e = proto_epoch_req_decode(req->payload, req->h.length, &q, &n);
    if (e)
        return e;
    struct proto_epoch_answer *a = calloc(n ? n : 1, sizeof(*a));
    size_t cap = 2 + n * EPOCH_ANSWER_MAX;
    uint8_t *buf = malloc(cap);
    if (!a || !buf) {
        free(a);
        free(buf);
        free(q);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        struct replica *r = NULL;
        memcpy(a[i].topic, q[i].topic, sizeof(a[i].topic));
        a[i].partition = q[i].partition;
        pthread_mutex_lock(&m->lock);
        e = lead(m, q[i].topic, q[i].partition, q[i].current_leader_epoch, -1, &r);
        pthread_mutex_unlock(&m->lock);
        if (!e) {
            e = partition_end_offset_for_epoch(r->p, q[i].leader_epoch, &a[i].leader_epoch,
                                               &a[i].end_offset);
            replica_unref(m, r);
        }
        a[i].error = (uint32_t)-e;
    }
    ssize_t len = proto_epoch_reply_encode(a, n, buf, cap);
    free(a);
    free(q);
    if (len < 0) {
        free(buf);
        return (int)len;
    }
    rep->iov[0].iov_base = buf;
    rep->iov[0].iov_len = (size_t)len;
    rep->iovcnt = 1;
    rep->done = free;
    rep->done_arg = buf;
    return 0;
}

void leader_register(struct replica_manager *m, struct server *srv)
{
    server_handle(srv, FRAME_FETCH, handle_fetch, m);
    server_handle(srv, FRAME_OFFSET_FOR_EPOCH, handle_offset_for_epoch, m);
}
