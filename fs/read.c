/* read.c - READ: partitions, their p0@... and p0.jsonl views, text files
 * and group members (follow and drain).
 *
 * Partition reads reply with the pieces partition_view_send hands out:
 * spans of segment files go to libfuse as file buffers, which it splices to
 * the kernel (FUSE_CAP_SPLICE_WRITE), so the values are never copied
 * through the daemon; the reply is sent under the partition's lock, while
 * those files are sure to stay open.
 *
 * In cluster mode a partition this broker holds no replica of is read
 * from a local cache of its leader's committed records (remote.h): stat,
 * open, .info and a read past the cache's end bring it up to date first
 * (one short try: with the leader out of reach they answer from the cache,
 * whose end is then the file's end), an open file keeps a long poll at the
 * leader, and a write forwarded from here makes the cache stale.
 * Everything else reads it as any partition. */
#include "ops_impl.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>

#include "jsonl.h"
#include "logger.h"
#include "remote.h"

static int render_json(const struct record_view *r, void *arg)
{
    struct text_buf *b = arg;
    int e = jsonl_append(b, r);
    return e ? e : (b->len >= (256u << 10));
}

/* p0.jsonl: JSON lines rendered on the fly. Sequential reads continue where
 * the last one ended; a read before that starts over from the first record. */
static void read_jsonl(fuse_req_t req, struct handle *h, size_t size, uint64_t off)
{
    pthread_mutex_lock(&h->lock);
    if (off < h->json_pos) {
        h->json_pos = 0;
        h->json_next = h->json_start;
        h->json.len = 0;
    }
    int r = 0, synced = 0;
    while (!r && h->json_pos + h->json.len < off + size) {
        /* Drop text before off, then render more. */
        if (off > h->json_pos) {
            size_t drop = (size_t)(off - h->json_pos);
            if (drop > h->json.len)
                drop = h->json.len;
            text_buf_drop(&h->json, drop);
            h->json_pos += drop;
        }
        size_t before = h->json.len;
        r = partition_fetch(h->part, &h->cursor, h->json_next, 4096, render_json, &h->json,
                            &h->json_next);
        if (h->json.len == before && !r && !synced && the_fs) {
            /* At the end here: a partition of another broker may have more. */
            synced = 1;
            r = remote_sync(the_fs->remote, h->topic, h->index);
            continue;
        }
        if (h->json.len == before)
            break;
    }
    if (r < 0) {
        fuse_reply_err(req, -r);
    } else if (off < h->json_pos || off >= h->json_pos + h->json.len) {
        fuse_reply_buf(req, NULL, 0);
    } else {
        size_t at = (size_t)(off - h->json_pos), n = h->json.len - at;
        fuse_reply_buf(req, h->json.data + at, n < size ? n : size);
    }
    pthread_mutex_unlock(&h->lock);
}

/* Replies to a member read from its stream; returns 0 if there was nothing
 * to reply yet (a follow read then waits). Caller holds h->lock. */
static int member_reply(fuse_req_t req, struct handle *h, size_t size, uint64_t off)
{
    struct scratch *s = scratch_get();
    char *buf = s ? scratch_buf(s, size) : NULL;
    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return 1;
    }
    ssize_t n = coord_member_read(h->member, off, buf, size);
    if (n == 0 && h->kind == NODE_FOLLOW)
        return 0;
    if (n < 0)
        fuse_reply_err(req, (int)-n);
    else
        fuse_reply_buf(req, buf, (size_t)n);
    return 1;
}

static void member_interrupted(fuse_req_t req, void *arg)
{
    struct handle *h = arg;
    pthread_mutex_lock(&h->lock);
    if (h->parked == req) {
        h->parked = NULL;
        fuse_reply_err(req, EINTR);
    }
    pthread_mutex_unlock(&h->lock);
}

/* Called by the group when records or partitions may be there for a
 * member that found none: answers its waiting read. */
void member_wake(void *arg)
{
    struct handle *h = arg;
    pthread_mutex_lock(&h->lock);
    fuse_req_t req = h->parked;
    h->parked = NULL;
    pthread_mutex_unlock(&h->lock);
    if (!req)
        return;
    /* Once answered, the read's interrupt callback must not run (the file
     * may be closed and h freed): clear it first. libfuse runs callbacks
     * under the request's lock, so this also waits for one in progress,
     * which is why h->lock is not held here. */
    fuse_req_interrupt_func(req, NULL, NULL);
    pthread_mutex_lock(&h->lock);
    if (h->parked) {
        fuse_reply_err(req, EBUSY); /* another read parked meanwhile */
    } else if (!member_reply(req, h, h->parked_size, h->parked_off)) {
        h->parked = req;
        /* Runs member_interrupted at once if the read was interrupted. */
        fuse_req_interrupt_func(req, member_interrupted, h);
    }
    pthread_mutex_unlock(&h->lock);
}

static void read_member(fuse_req_t req, struct handle *h, size_t size, uint64_t off)
{
    pthread_mutex_lock(&h->lock);
    if (h->parked) {
        fuse_reply_err(req, EBUSY); /* one waiting read per open file */
    } else if (!member_reply(req, h, size, off)) {
        h->parked = req;
        h->parked_size = size;
        h->parked_off = off;
        /* May call member_interrupted at once: the lock is recursive. */
        fuse_req_interrupt_func(req, member_interrupted, h);
    }
    pthread_mutex_unlock(&h->lock);
}

/* A text file: the text rendered at open for the first read, so that it
 * matches what fstat showed (tar, rsync, cp read st_size bytes); later reads
 * from offset 0 render it again, so a file kept open and read again shows
 * the current state. */
static void read_text(fuse_req_t req, struct handle *h, size_t size, uint64_t off)
{
    pthread_mutex_lock(&h->lock);
    if (!h->text || (off == 0 && !h->text_unread))
        handle_render(ctx(req), h);
    h->text_unread = 0;
    size_t len = h->text ? h->text_len : 0;
    if (off >= len)
        fuse_reply_buf(req, NULL, 0);
    else
        fuse_reply_buf(req, h->text + off, len - off < size ? len - off : size);
    pthread_mutex_unlock(&h->lock);
}

/* A read reply made of partition pieces: spans of segment files are sent
 * with splice (no copy through the daemon; libfuse falls back to copying
 * where the kernel cannot splice), bytes in memory are copied to `mem`. */
struct reply_pieces {
    fuse_req_t req;
    struct fuse_bufvec *bv; /* room for REPLY_PIECES buffers */
    char *mem;              /* as large as the read */
    size_t mem_used;
};

/* bv->buf[i]: the vector is allocated with room for more than its one. */
static struct fuse_buf *bv_buf(struct fuse_bufvec *bv, size_t i)
{
    return (struct fuse_buf *)((char *)bv + offsetof(struct fuse_bufvec, buf)) + i;
}

static int add_piece(const struct stream_piece *pc, void *arg)
{
    struct reply_pieces *rp = arg;
    struct fuse_bufvec *bv = rp->bv;
    /* Keep one slot for a memory piece after the last file piece. */
    if (pc->fd >= 0 && bv->count + 1 < REPLY_PIECES) {
        *bv_buf(bv, bv->count++) = (struct fuse_buf){
            .size = pc->len,
            .flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK | FUSE_BUF_FD_RETRY,
            .fd = pc->fd,
            .pos = (off_t)pc->file_pos,
        };
        return 0;
    }
    char *dst = rp->mem + rp->mem_used;
    int r = stream_piece_copy(pc, dst);
    if (r)
        return r;
    rp->mem_used += pc->len;
    struct fuse_buf *last = bv->count ? bv_buf(bv, bv->count - 1) : NULL;
    if (last && !(last->flags & FUSE_BUF_IS_FD) && (char *)last->mem + last->size == dst)
        last->size += pc->len; /* one memory piece after another */
    else if (bv->count < REPLY_PIECES)
        *bv_buf(bv, bv->count++) = (struct fuse_buf){.size = pc->len, .mem = dst};
    else
        return -EIO; /* cannot happen: a slot is kept */
    return 0;
}

/* Answers the request (on failure too: libfuse then replies an error). */
static void send_pieces(void *arg)
{
    struct reply_pieces *rp = arg;
    rp->bv->idx = 0;
    rp->bv->off = 0;
    int r = fuse_reply_data(rp->req, rp->bv, 0);
    if (r)
        logger_log(LOG_LEVEL_WARN, "read reply not sent: %s", strerror(-r));
}

void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    (void)ino;
    struct handle *h = handle_of(fi);
    if (h->member) {
        read_member(req, h, size, (uint64_t)off);
        return;
    }
    if (is_text(h->kind)) {
        read_text(req, h, size, (uint64_t)off);
        return;
    }
    if (h->kind == NODE_PRODUCE) {
        fuse_reply_buf(req, NULL, 0);
        return;
    }
    if (h->kind != NODE_PARTITION && h->kind != NODE_HIDDEN) {
        fuse_reply_err(req, EBADF);
        return;
    }
    if (h->jsonl) {
        read_jsonl(req, h, size, (uint64_t)off);
        return;
    }
    struct scratch *s = scratch_get();
    char *buf = s ? scratch_buf(s, size) : NULL;
    if (!buf || !s->bv) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    struct reply_pieces rp = {.req = req, .bv = s->bv, .mem = buf};
    struct stream_sink sink = {.piece = add_piece, .deliver = send_pieces, .arg = &rp};
    rp.bv->count = 0;
    pthread_mutex_lock(&h->lock);
    if (the_fs && the_fs->remote && (uint64_t)off + size > partition_view_size(h->part, &h->view))
        /* Past what is here: a partition of another broker may have more.
         * One short try (as a stat); with the leader out of reach the read
         * gets what is cached, and its end is the end of the file. */
        remote_sync(the_fs->remote, h->topic, h->index);
    ssize_t n = partition_view_send(h->part, &h->cursor, &h->view, (uint64_t)off, size, &sink);
    if (n == -ENODATA && off == 0 && !h->read_any && h->kind == NODE_PARTITION) {
        /* Retention or compaction changed the layout between open() and the
         * first read: a reader at the very start has seen nothing of the old
         * layout and can read the current one. */
        struct partition_view now;
        partition_view_release(h->part, &h->view);
        partition_current_view(h->part, &now);
        partition_view_hold(h->part, &now);
        pthread_mutex_lock(&open_lock);
        h->view = now;
        pthread_mutex_unlock(&open_lock);
        n = partition_view_send(h->part, &h->cursor, &h->view, 0, size, &sink);
    }
    if (n > 0 && !h->read_any) {
        pthread_mutex_lock(&open_lock);
        h->read_any = 1;
        pthread_mutex_unlock(&open_lock);
    }
    pthread_mutex_unlock(&h->lock);
    if (n < 0) /* n > 0: send_pieces answered */
        fuse_reply_err(req, (int)-n);
    else if (n == 0)
        fuse_reply_buf(req, NULL, 0);
}
