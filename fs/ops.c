/* ops.c - FUSE low-level operations: paths to topics, partitions and
 * control files, and the file semantics of design.md.
 *
 * Caching policy (the part that makes `tail -f` correct): every file is
 * opened with direct_io, so the kernel keeps no pages of it and every read
 * reaches the daemon. Names are stable, so lookups are cached (entry
 * timeout). Attributes: the kernel checks permissions (below) against
 * attributes it holds, and asks again for stale ones, so caching them keeps
 * `echo >> p0` at OPEN, WRITE and RELEASE. The root, topic and .groups
 * directories keep theirs as long as names (node_attr says what drops
 * them). A partition keeps its own for PARTITION_ATTR_TIMEOUT while every
 * open file of it has the current layout (then stat's answer is the same
 * for every caller), and they are dropped at every change of its size or
 * mtime: a WRITE to it makes the kernel drop them itself; anything else
 * calls fs_partition_changed: a move of the high watermark (on one node,
 * every append: through .produce, at close/fsync, or a follower's) by
 * core's listener (fs_partition_event, which also wakes group members),
 * retention and compaction by the cleaner's callback. So each stat() sees
 * the exact size, which is where the high watermark lies. Other files'
 * attributes are not cached (their text changes with no write to them).
 *
 * Permissions: every node shows fs_context's owner and group and a mode
 * from its kind and the umask (node_mode); the kernel enforces them
 * (default_permissions), so the operations here need no checks of their own.
 *
 * A partition keeps one node id for its life (nodes.h), so the kernel keeps
 * one inode for it and inotify watches survive retention and compaction.
 * Each open file has its own view of the layout (struct handle.view; a
 * reader that opened before a pass keeps its positions). The kernel's
 * stat/fstat GETATTR carries no file handle, so open partitions and text
 * files are kept in a registry by node (open_files), and stat answers as
 * the caller's own open file would (stat_view, open_text_size): the price
 * is that while a reader opened before a pass is open, a stat of the name
 * by a process with no open file of it shows that reader's larger size.
 *
 * Text files (.cluster, .metrics, .info, .config, cursor files, a group's
 * .info) are rendered at open: fstat shows that text's length and the first
 * read returns it, so tar, rsync and cp read exactly st_size bytes; a later
 * read from offset 0 renders the current state again.
 *
 * A partition handle carries the partial line its writer left (framing.h)
 * and a read cursor (partition.h). Handles of the same file share nothing
 * but the partition, whose own lock serializes appends.
 *
 * Writes only translate: records go through replicate/'s forward_produce
 * (cluster mode: to the leader, or here) or straight to core's
 * partition_produce with the topic's acks; waiting for the ISR happens
 * there. acks=all on a partition whose high watermark follows its log end
 * (one node, one replica) fsyncs each write instead. fsync of a partition
 * in cluster mode also waits until the high watermark passes the log end
 * and what the handle wrote (written_end, maybe at another broker).
 *
 * Partition reads reply with the pieces partition_view_send hands out:
 * spans of segment files go to libfuse as file buffers, which it splices to
 * the kernel (FUSE_CAP_SPLICE_WRITE), so the values are never copied
 * through the daemon; the reply is sent under the partition's lock, while
 * those files are sure to stay open.
 *
 * In cluster mode a partition this broker holds no replica of is read
 * from a local cache of its leader's committed records (remote.h): stat,
 * open and .info bring it up to date first (a short try), a read past its
 * end fetches (retrying until delivery.timeout.ms, then EIO), an open
 * file keeps a long poll at the leader, and a write forwarded from here
 * makes the cache stale. Everything else reads it as any partition.
 *
 * Lock order: a handle's lock, then open_lock; nothing is taken under
 * open_lock. */
#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "clock.h"
#include "cluster.h"
#include "framing.h"
#include "hidden.h"
#include "jsonl.h"
#include "logger.h"
#include "murmur2.h"
#include "nodes.h"
#include "produce.h"
#include "remote.h"
#include "status.h"

struct handle {
    enum node_kind kind;
    struct topic *topic;
    struct partition *part;
    uint32_t index;
    int append;
    int jsonl;
    struct partition_view view; /* partitions and hidden views */
    int read_any;               /* a read returned bytes on this handle */
    int holds_view;             /* view registered with partition_view_hold() */
    int remote_watched;         /* remote_watch() said yes: remote_unwatch() at release */
    uint32_t *remote_parts;     /* a group member: the partitions it watches so */
    uint32_t nremote_parts;
    /* jsonl: text rendered from next_offset on; jsonl_pos is its file position */
    struct text_buf json;
    uint64_t json_pos, json_next, json_start;
    /* consumer groups: member files, cursor files, .info */
    struct group *group;
    struct group_member *member;
    fuse_req_t parked; /* a follow read waiting for records */
    size_t parked_size;
    uint64_t parked_off;
    pthread_mutex_t lock;
    struct pending pending;
    struct partition_cursor cursor;
    char *text; /* generated content of a text file, or a directory listing */
    size_t text_len;
    int64_t text_ms; /* when text was rendered */
    int text_unread; /* text was rendered at open and not read yet */
    /* The registry of open files (open_add): other threads read view,
     * read_any, text_len and text_ms under open_lock, so once registered
     * they change under it too. */
    uint64_t node;
    pid_t pid; /* the opener's */
    int registered;
    struct handle *open_next;
    uint64_t written_end; /* partitions: the offset after the last records written here */
};

/* Buffers of a read reply made of pieces (reply_pieces). */
#define REPLY_PIECES 64

/* Per-thread buffers, so the hot paths do not allocate. */
struct scratch {
    struct batch_builder builder;
    struct record_list records;
    char *buf;
    size_t buf_cap;
    struct fuse_bufvec *bv; /* room for REPLY_PIECES buffers */
};

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p)
{
    struct scratch *s = p;
    batch_builder_free(&s->builder);
    record_list_free(&s->records);
    free(s->buf);
    free(s->bv);
    free(s);
}

static void scratch_key_init(void)
{
    pthread_key_create(&scratch_key, scratch_free);
}

static struct scratch *scratch_get(void)
{
    pthread_once(&scratch_once, scratch_key_init);
    struct scratch *s = pthread_getspecific(scratch_key);
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return NULL;
        batch_builder_init(&s->builder);
        s->bv = calloc(1, sizeof(*s->bv) + REPLY_PIECES * sizeof(struct fuse_buf));
        pthread_setspecific(scratch_key, s);
    }
    return s;
}

static char *scratch_buf(struct scratch *s, size_t n)
{
    if (n > s->buf_cap) {
        char *b = realloc(s->buf, n);
        if (!b)
            return NULL;
        s->buf = b;
        s->buf_cap = n;
    }
    return s->buf;
}

/* The daemon's context, for code that runs outside a request (wakeups). */
static struct fs_context *the_fs;
static void fs_partition_event(void *arg, struct topic *t, uint32_t partition, unsigned events);

static struct fs_context *ctx(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

/* Open partitions and text files by node id (see the top comment). */
#define OPEN_BUCKETS 1024
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;
static struct handle *open_files[OPEN_BUCKETS];

static size_t open_bucket(uint64_t node)
{
    return (size_t)((node ^ node >> 20 ^ node >> 40) % OPEN_BUCKETS);
}

static void open_add(struct handle *h)
{
    size_t b = open_bucket(h->node);
    pthread_mutex_lock(&open_lock);
    h->open_next = open_files[b];
    open_files[b] = h;
    h->registered = 1;
    pthread_mutex_unlock(&open_lock);
}

static void open_remove(struct handle *h)
{
    if (!h->registered)
        return;
    pthread_mutex_lock(&open_lock);
    for (struct handle **pp = &open_files[open_bucket(h->node)]; *pp; pp = &(*pp)->open_next)
        if (*pp == h) {
            *pp = h->open_next;
            break;
        }
    h->registered = 0;
    pthread_mutex_unlock(&open_lock);
}

/* Who asks for attributes: the calling thread, and the open file when the
 * kernel names one (lseek(SEEK_END) does; stat and fstat do not). */
struct attr_query {
    pid_t pid;
    struct handle *fh;
};

/* The view whose size stat shows for partition node id: the asking open
 * file's; else the oldest of the caller's own open files of the node; else
 * the oldest held by any open file that has read (a `tail -f` whose file
 * was opened by another process must never see its file shrink); else the
 * current layout. Returns 1 if every open file of the node has the current
 * layout, so that the answer is the same for any caller (attr_timeout). */
static int stat_view(struct partition *p, uint64_t id, const struct attr_query *q,
                     struct partition_view *v)
{
    uint32_t own = UINT32_MAX, old = UINT32_MAX;
    struct partition_view now;
    partition_current_view(p, &now);
    pthread_mutex_lock(&open_lock);
    int uniform = !q->fh || q->fh->view.epoch == now.epoch;
    if (q->fh)
        own = q->fh->view.epoch;
    for (struct handle *o = open_files[open_bucket(id)]; o; o = o->open_next) {
        if (o->node != id)
            continue;
        if (o->view.epoch != now.epoch)
            uniform = 0;
        if (q->fh)
            continue;
        if (o->pid == q->pid && o->view.epoch < own)
            own = o->view.epoch;
        else if (o->pid != q->pid && o->holds_view && o->read_any && o->view.epoch < old)
            old = o->view.epoch;
    }
    pthread_mutex_unlock(&open_lock);
    if (own == UINT32_MAX && old == UINT32_MAX) {
        *v = now;
        return uniform;
    }
    v->epoch = own != UINT32_MAX ? own : old;
    v->shift = 0;
    return uniform;
}

/* A text file's size and render time as the caller's open file of it shows
 * them (the asking one, else one the caller opened): 1, or 0 if it has none. */
static int open_text_size(uint64_t id, const struct attr_query *q, off_t *size, int64_t *ms)
{
    struct handle *h = NULL;
    pthread_mutex_lock(&open_lock);
    if (q->fh && q->fh->text)
        h = q->fh;
    for (struct handle *o = open_files[open_bucket(id)]; o && !h; o = o->open_next)
        if (o->node == id && o->pid == q->pid && o->text)
            h = o;
    if (h) {
        *size = (off_t)h->text_len;
        *ms = h->text_ms;
    }
    pthread_mutex_unlock(&open_lock);
    return h != NULL;
}

static void set_time(struct timespec *t, int64_t ms)
{
    t->tv_sec = ms / 1000;
    t->tv_nsec = (ms % 1000) * 1000000;
}

/* leader= and isr= of a .info line: the cluster's (-1 and empty while it
 * has no state), or this broker alone on a single node. */
static void format_leader(struct topic *t, uint32_t i, char *out, size_t cap)
{
    struct cluster_partition_view v;
    if (!the_fs || !the_fs->cluster || cluster_partition_view(the_fs->cluster, t->name, i, &v)) {
        snprintf(out, cap, "leader=0 isr=0");
        return;
    }
    size_t at = (size_t)snprintf(out, cap, "leader=%d isr=", (int)v.leader);
    for (uint32_t k = 0; k < v.nisr && at < cap; k++)
        at += (size_t)snprintf(out + at, cap - at, k ? ",%d" : "%d", (int)v.isr[k]);
}

static size_t format_info(struct topic *t, char *buf, size_t cap)
{
    size_t len = 0;
    uint32_t n = topic_partition_count(t);
    for (uint32_t i = 0; i < n; i++) {
        struct partition_info pi;
        char lead[64 + CLUSTER_REPLICAS_MAX * 12];
        partition_info(topic_partition(t, i), &pi);
        format_leader(t, i, lead, sizeof(lead));
        int w = snprintf(buf ? buf + len : NULL, buf ? cap - len : 0,
                         "p%u start_offset=%" PRIu64 " end_offset=%" PRIu64
                         " high_watermark=%" PRIu64 " bytes=%" PRIu64 " stored_bytes=%" PRIu64
                         " segments=%u %s bad_batches=%" PRIu64 "\n",
                         i, pi.start_offset, pi.end_offset, pi.high_watermark, pi.view_bytes,
                         pi.stored_bytes, pi.segments, lead, pi.bad_batches);
        if (w < 0)
            break;
        len += (size_t)w;
        if (buf && len >= cap)
            len = cap - 1;
    }
    return len;
}

/* Generated text of .cluster or .metrics, malloc'ed. */
static char *status_text(struct fs_context *fc, enum node_kind kind, size_t *len)
{
    return kind == NODE_CLUSTER ? status_cluster_text(fc->store, len)
                                : status_metrics_text(fc->store, fc->groups, len);
}

/* Generated text of a control file, malloc'ed. */
static char *control_text(struct topic *t, enum node_kind kind, size_t *len)
{
    char *buf;
    if (kind == NODE_CONFIG) {
        struct topic_config c;
        topic_config_snapshot(t, &c);
        buf = malloc(4096);
        if (buf)
            *len = config_format(&c, buf, 4096);
        return buf;
    }
    /* Partitions this broker holds no replica of: the leader's state. */
    for (uint32_t i = 0; the_fs && i < topic_partition_count(t); i++)
        remote_sync(the_fs->remote, t, i, REMOTE_STAT);
    size_t need = format_info(t, NULL, 0) + 256;
    buf = malloc(need);
    if (buf)
        *len = format_info(t, buf, need);
    return buf;
}

/* Text of a cursor file ("<committed offset>\n") or a group's .info. */
static char *group_text(struct group *g, enum node_kind kind, uint32_t partition, size_t *len)
{
    size_t cap =
        kind == NODE_CURSOR ? 32 : 128 + 96 * (size_t)topic_partition_count(group_topic(g));
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    if (kind == NODE_CURSOR) {
        uint64_t off = 0;
        if (group_cursor_get(g, partition, &off)) {
            free(buf);
            return NULL;
        }
        *len = (size_t)snprintf(buf, cap, "%" PRIu64 "\n", off);
    } else {
        *len = group_info_text(g, buf, cap);
    }
    return buf;
}

/* Files whose content is text made when read (see the top comment). */
static int is_text(enum node_kind kind)
{
    return kind == NODE_CLUSTER || kind == NODE_METRICS || kind == NODE_CONFIG ||
           kind == NODE_INFO || kind == NODE_CURSOR || kind == NODE_GROUP_INFO;
}

/* The text of a text file of that kind (t: its topic, g and index: its
 * group and partition), malloc'ed; NULL if it cannot be made. */
static char *node_text(struct fs_context *fc, enum node_kind kind, struct topic *t, struct group *g,
                       uint32_t index, size_t *len)
{
    *len = 0;
    if (kind == NODE_CLUSTER || kind == NODE_METRICS)
        return status_text(fc, kind, len);
    if (kind == NODE_CONFIG || kind == NODE_INFO)
        return control_text(t, kind, len);
    return group_text(g, kind, index, len);
}

struct json_count {
    struct text_buf text; /* one record's line at a time */
    uint64_t len;
};

static int count_json(const struct record_view *r, void *arg)
{
    struct json_count *jc = arg;
    jc->text.len = 0;
    int e = jsonl_append(&jc->text, r);
    jc->len += jc->text.len;
    return e;
}

/* A jsonl node's size: the length of its JSON text from its start offset to
 * the end of the partition. Only records the node has not counted yet are
 * rendered (as read_jsonl renders them), and the count is kept for the next
 * stat. */
static int jsonl_size(struct partition *p, const struct hidden_node *hn, off_t *size)
{
    struct partition_cursor c;
    struct json_count jc = {.len = hn->json_len};
    uint64_t from, next = hn->json_next;
    int r;
    partition_cursor_init(&c);
    do {
        from = next;
        r = partition_fetch(p, &c, from, 4096, count_json, &jc, &next);
    } while (r >= 0 && next != from);
    partition_cursor_free(&c);
    text_buf_free(&jc.text);
    if (r < 0)
        return r;
    hidden_set_json_size(hn->slot, next, jc.len);
    *size = (off_t)jc.len;
    return 0;
}

/* Type and permission bits of a node of this kind: 0777 for directories,
 * 0666 for files one may write, 0444 for read-only ones, less the umask.
 * Reading a group member (follow, drain) commits the group's offsets, a
 * change: its r bits are the w bits of the group's cursor files. */
static mode_t node_mode(const struct fs_context *fc, enum node_kind kind)
{
    mode_t um = fc->umask & 0777;
    switch (kind) {
    case NODE_ROOT:
    case NODE_TOPIC:
    case NODE_GROUPS:
    case NODE_GROUP:
        return S_IFDIR | (0777 & ~um);
    case NODE_PARTITION:
    case NODE_PRODUCE:
    case NODE_CONFIG:
    case NODE_CURSOR:
        return S_IFREG | (0666 & ~um);
    case NODE_FOLLOW:
    case NODE_DRAIN:
        return S_IFREG | ((0222 & ~um) << 1);
    default:
        return S_IFREG | (0444 & ~um);
    }
}

/* How long the kernel may keep attributes (see the top comment): a
 * partition's size and mtime change only by WRITEs to it, after which the
 * kernel drops them itself, or by what fs_partition_changed reports. The
 * short time bounds what a change reported nowhere could cost. */
#define PARTITION_ATTR_TIMEOUT 1.0

/* Fills st for node id as q's caller sees it, and *timeout with how long
 * the kernel may keep it; 0 or -ENOENT. */
static int node_attr(struct fs_context *fc, uint64_t id, const struct attr_query *q,
                     struct stat *st, double *timeout)
{
    enum node_kind kind = node_kind_of(id);
    memset(st, 0, sizeof(*st));
    st->st_ino = id;
    st->st_uid = fc->uid;
    st->st_gid = fc->gid;
    st->st_blksize = 128 * 1024;
    st->st_mode = node_mode(fc, kind);
    st->st_nlink = S_ISDIR(st->st_mode) ? 2 : 1;
    int64_t mtime = fc->started_ms;
    /* The root, topic and .groups directories change by a mkdir or rmdir
     * in them, after which the kernel drops their attributes itself, or by
     * a .config line (the topic's mtime), after which config_apply does.
     * Group directories show the topic's mtime and are not cached. */
    *timeout = kind == NODE_ROOT || kind == NODE_TOPIC ? fc->topic_timeout
               : kind == NODE_GROUPS                   ? fc->entry_timeout
                                                       : 0;
    struct topic *t = NULL;
    struct group *g = NULL;
    uint32_t index = 0;
    int r = 0;
    if (kind == NODE_ROOT) {
        st->st_nlink = 2 + store_count(fc->store);
        mtime = store_mtime_ms(fc->store);
        if (!mtime)
            mtime = fc->started_ms;
    } else if (kind != NODE_CLUSTER && kind != NODE_METRICS) {
        if (!(t = store_find_id(fc->store, node_topic(id))))
            return -ENOENT;
        mtime = atomic_load(&t->mtime_ms);
    }
    switch (kind) {
    case NODE_ROOT:
    case NODE_TOPIC:
    case NODE_PRODUCE:
        break;
    case NODE_PARTITION: {
        struct partition *p = topic_partition(t, node_index(id));
        struct partition_info pi;
        struct partition_view v;
        if (!p) {
            r = -ENOENT;
            break;
        }
        /* Held elsewhere: the leader's size, at most REMOTE_FRESH_MS old
         * (not cached by the kernel: its appends are told to nobody here). */
        int remote = remote_is_remote(fc->remote, t, node_index(id));
        if (remote)
            remote_sync(fc->remote, t, node_index(id), REMOTE_STAT);
        partition_info(p, &pi);
        if (stat_view(p, id, q, &v) && !remote)
            *timeout = PARTITION_ATTR_TIMEOUT;
        st->st_size = (off_t)partition_view_size(p, &v);
        if (pi.last_append_ms)
            mtime = pi.last_append_ms;
        break;
    }
    case NODE_HIDDEN: {
        struct hidden_node hn;
        struct partition *p = NULL;
        if (hidden_get(node_payload(id), &hn) || !(p = topic_partition(t, hn.partition))) {
            r = -ENOENT;
            break;
        }
        struct partition_info pi;
        remote_sync(fc->remote, t, hn.partition, REMOTE_STAT);
        partition_info(p, &pi);
        st->st_ino = hn.ino;
        if (hn.jsonl)
            r = jsonl_size(p, &hn, &st->st_size);
        else
            st->st_size = (off_t)partition_view_size(p, &hn.view);
        if (pi.last_append_ms)
            mtime = pi.last_append_ms;
        break;
    }
    case NODE_GROUPS:
        mtime = atomic_load(&t->groups_mtime_ms);
        break;
    case NODE_GROUP:
    case NODE_FOLLOW:
    case NODE_DRAIN:
    case NODE_CURSOR:
    case NODE_GROUP_INFO:
        g = group_find_id(fc->groups, node_group_of(id));
        index = node_cursor_partition(id);
        if (!g || group_topic(g) != t || (kind == NODE_CURSOR && index >= topic_partition_count(t)))
            r = -ENOENT;
        break;
    case NODE_CLUSTER:
    case NODE_METRICS:
    case NODE_CONFIG:
    case NODE_INFO:
        break;
    default:
        r = -ENOENT;
    }
    if (!r && is_text(kind)) {
        /* The size a read of the caller's open file returns, else that of
         * the text as it is now. .cluster and .metrics change all the
         * time: their mtime is when the text was made. */
        int64_t made = clock_now_ms();
        if (!open_text_size(id, q, &st->st_size, &made)) {
            size_t len;
            char *text = node_text(fc, kind, t, g, index, &len);
            if (!text && (kind == NODE_CLUSTER || kind == NODE_METRICS))
                r = -ENOMEM;
            free(text);
            st->st_size = (off_t)len;
        }
        if (kind == NODE_CLUSTER || kind == NODE_METRICS)
            mtime = made;
    }
    st->st_blocks = (st->st_size + 511) / 512;
    set_time(&st->st_mtim, mtime);
    st->st_ctim = st->st_atim = st->st_mtim;
    group_put(g);
    topic_put(t);
    return r;
}

static void reply_entry(fuse_req_t req, uint64_t id)
{
    struct fuse_entry_param e;
    memset(&e, 0, sizeof(e));
    struct attr_query q = {.pid = fuse_req_ctx(req)->pid};
    int r = node_attr(ctx(req), id, &q, &e.attr, &e.attr_timeout);
    if (r) {
        fuse_reply_err(req, -r);
        return;
    }
    e.ino = id;
    e.generation = 1;
    e.entry_timeout = node_kind_of(id) == NODE_HIDDEN  ? 0
                      : node_kind_of(id) == NODE_TOPIC ? ctx(req)->topic_timeout
                                                       : ctx(req)->entry_timeout;
    if (fuse_reply_entry(req, &e) != 0 && node_kind_of(id) == NODE_HIDDEN)
        hidden_forget(node_payload(id), 1);
}

/* Where a hidden name starts, as a new hidden node. */
static int64_t make_hidden(struct topic *t, struct partition *p, const char *name,
                           const struct node_name *nn)
{
    /* The top payload bit keeps these apart from slot-numbered node ids. */
    uint64_t name_bits = XXH3_64bits(name, strlen(name)) & (NODE_PAYLOAD_MASK >> 1);
    struct hidden_node hn = {
        .topic_id = t->id,
        .partition = nn->partition,
        .jsonl = nn->jsonl,
        .ino =
            node_id(t->id, NODE_HIDDEN, (NODE_PAYLOAD_MASK ^ (NODE_PAYLOAD_MASK >> 1)) | name_bits),
    };
    struct partition_info pi;
    uint64_t offset = 0;
    int r = 0;
    if (the_fs)
        remote_sync(the_fs->remote, t, nn->partition, REMOTE_STAT);
    partition_info(p, &pi);
    switch (nn->from) {
    case FROM_START:
        offset = pi.start_offset;
        break;
    case FROM_OFFSET:
        offset = (uint64_t)nn->value;
        break;
    case FROM_LAST:
        offset =
            (uint64_t)nn->value >= pi.high_watermark ? 0 : pi.high_watermark - (uint64_t)nn->value;
        break;
    case FROM_TIME:
        r = partition_time_offset(p, nn->value, &offset);
        break;
    }
    if (offset < pi.start_offset)
        offset = pi.start_offset;
    hn.start_offset = hn.json_next = offset;
    if (!r && !nn->jsonl)
        r = partition_view_at_offset(p, offset, &hn.view);
    if (!r)
        r = hidden_add(&hn);
    return r ? r : (int64_t)node_id(t->id, NODE_HIDDEN, hn.slot);
}

/* Names under <topic>/.groups and <topic>/.groups/<group>. */
static int64_t resolve_in_groups(struct fs_context *fc, uint64_t parent, const char *name)
{
    struct topic *t = store_find_id(fc->store, node_topic(parent));
    int64_t id = -ENOENT;
    if (!t)
        return -ENOENT;
    if (node_kind_of(parent) == NODE_GROUPS) {
        struct group *g = group_find(fc->groups, t, name);
        if (g)
            id = (int64_t)node_group_id(t->id, NODE_GROUP, group_id(g), 0);
        group_put(g);
    } else {
        enum node_kind kind;
        uint32_t p;
        struct group *g = group_find_id(fc->groups, node_group_of(parent));
        if (g && !node_parse_group_child(name, &kind, &p) &&
            (kind != NODE_CURSOR || p < topic_partition_count(t)))
            id = (int64_t)node_group_id(t->id, kind, group_id(g), p);
        group_put(g);
    }
    topic_put(t);
    return id;
}

/* Node id of name in parent, or a negative errno. Hidden names get a new
 * node only when `lookup` is set (the kernel then counts it). */
static int64_t resolve(struct fs_context *fc, uint64_t parent, const char *name, int lookup)
{
    enum node_kind pk = node_kind_of(parent);
    if (pk == NODE_ROOT) {
        if (!strcmp(name, GROUP_OFFSETS_TOPIC))
            return -ENOENT; /* internal */
        if (!strcmp(name, ".cluster"))
            return (int64_t)node_id(0, NODE_CLUSTER, 0);
        if (!strcmp(name, ".metrics"))
            return (int64_t)node_id(0, NODE_METRICS, 0);
        struct topic *t = store_find(fc->store, name);
        if (!t)
            return -ENOENT;
        uint64_t id = node_id(t->id, NODE_TOPIC, 0);
        topic_put(t);
        return (int64_t)id;
    }
    if (pk == NODE_GROUPS || pk == NODE_GROUP)
        return resolve_in_groups(fc, parent, name);
    if (pk != NODE_TOPIC)
        return -ENOTDIR;
    struct node_name nn;
    if (node_parse_topic_child(name, &nn))
        return -ENOENT;
    struct topic *t = store_find_id(fc->store, node_topic(parent));
    if (!t)
        return -ENOENT;
    int64_t id = -ENOENT;
    struct partition *p = NULL;
    if (nn.kind != NODE_PARTITION && nn.kind != NODE_HIDDEN)
        id = (int64_t)node_id(t->id, nn.kind, 0); /* .produce .config .info .groups */
    else if (!(p = topic_partition(t, nn.partition)))
        id = -ENOENT;
    else if (nn.kind == NODE_PARTITION)
        id = (int64_t)node_partition_id(t->id, nn.partition);
    else
        id = lookup ? make_hidden(t, p, name, &nn) : -EPERM;
    topic_put(t);
    return id;
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
    the_fs = userdata;
    int e = store_add_listener(the_fs->store, fs_partition_event, the_fs);
    if (e)
        logger_log(LOG_LEVEL_ERROR, "cannot listen to partition changes: %s", strerror(-e));
    if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
        conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
    if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
        conn->want |= FUSE_CAP_PARALLEL_DIROPS;
    /* Partition reads splice segment files to the kernel (reply_pieces). */
    if (conn->capable & FUSE_CAP_SPLICE_WRITE)
        conn->want |= FUSE_CAP_SPLICE_WRITE;
    conn->want &= ~(unsigned)FUSE_CAP_AUTO_INVAL_DATA;
    conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    int64_t id = resolve(ctx(req), parent, name, 1);
    if (id < 0)
        fuse_reply_err(req, (int)-id);
    else
        reply_entry(req, (uint64_t)id);
}

/* Answers for the open file fi when the kernel names one, see stat_view. */
static struct attr_query attr_query_of(fuse_req_t req, struct fuse_file_info *fi)
{
    struct attr_query q = {.pid = fuse_req_ctx(req)->pid};
    if (fi)
        q.fh = (struct handle *)(uintptr_t)fi->fh;
    return q;
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct stat st;
    struct attr_query q = attr_query_of(req, fi);
    double timeout;
    int r = node_attr(ctx(req), ino, &q, &st, &timeout);
    if (r)
        fuse_reply_err(req, -r);
    else
        fuse_reply_attr(req, &st, timeout);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
    struct stat st;
    enum node_kind kind = node_kind_of(ino);
    struct attr_query q = attr_query_of(req, fi);
    double timeout;
    int r = node_attr(ctx(req), ino, &q, &st, &timeout);
    if (r) {
        fuse_reply_err(req, -r);
        return;
    }
    if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
        fuse_reply_err(req, EPERM);
        return;
    }
    /* Control files ignore truncation: `>` and `>>` mean the same there. A
     * partition refuses any size change. */
    if ((to_set & FUSE_SET_ATTR_SIZE) && kind != NODE_CONFIG && kind != NODE_PRODUCE &&
        kind != NODE_CURSOR && attr->st_size != st.st_size) {
        fuse_reply_err(req, EPERM);
        return;
    }
    fuse_reply_attr(req, &st, timeout);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    (void)mode;
    struct fs_context *fc = ctx(req);
    enum node_kind pk = node_kind_of(parent);
    if (pk == NODE_GROUPS) {
        struct topic *t = store_find_id(fc->store, node_topic(parent));
        int r = t ? group_create(fc->groups, t, name) : -ENOENT;
        topic_put(t);
        if (r) {
            fuse_reply_err(req, -r);
            return;
        }
        int64_t id = resolve_in_groups(fc, parent, name);
        if (id < 0)
            fuse_reply_err(req, (int)-id);
        else
            reply_entry(req, (uint64_t)id);
        return;
    }
    if (pk != NODE_ROOT) {
        fuse_reply_err(req, pk == NODE_TOPIC || pk == NODE_GROUP ? EPERM : ENOTDIR);
        return;
    }
    int r =
        fc->cluster ? cluster_topic_create(fc->cluster, name) : fs_topic_create(fc, name, NULL, 0);
    struct topic *t = r ? NULL : store_find(fc->store, name);
    if (!t) {
        fuse_reply_err(req, r ? -r : ENOENT); /* ENOENT: deleted since */
        return;
    }
    uint64_t id = node_id(t->id, NODE_TOPIC, 0);
    topic_put(t);
    reply_entry(req, id);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct fs_context *fc = ctx(req);
    enum node_kind pk = node_kind_of(parent);
    if (pk == NODE_GROUPS) {
        struct topic *t = store_find_id(fc->store, node_topic(parent));
        int r = t ? group_delete(fc->groups, t, name) : -ENOENT;
        topic_put(t);
        fuse_reply_err(req, -r);
        return;
    }
    if (pk != NODE_ROOT) {
        int64_t id = resolve(fc, parent, name, 0);
        fuse_reply_err(req, id < 0                                      ? (int)-id
                            : node_kind_of((uint64_t)id) == NODE_GROUPS ? EPERM
                                                                        : ENOTDIR);
        return;
    }
    if (!strcmp(name, GROUP_OFFSETS_TOPIC)) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    int r = fc->cluster ? cluster_topic_delete(fc->cluster, name) : fs_topic_remove(fc, name, 0);
    fuse_reply_err(req, -r);
}

/* A topic changed behind the kernel's back: the root's attributes (its
 * link count and mtime) and the topic's go. inval_inode takes no lock of
 * the kernel's, so any thread may call it; inval_entry would wait for the
 * root's lock, which a request of this mount may hold while it waits for
 * the thread that calls this (a mkdir waiting for the cluster). Names are
 * kept only topic_timeout (short in cluster mode) instead. */
static void topic_node_changed(struct fs_context *fc, uint64_t topic_id)
{
    if (!fc->se)
        return;
    fuse_lowlevel_notify_inval_inode(fc->se, FUSE_ROOT_ID, -1, 0);
    if (topic_id)
        fuse_lowlevel_notify_inval_inode(fc->se, node_id(topic_id, NODE_TOPIC, 0), -1, 0);
}

int fs_topic_create(void *fs_context, const char *name, const struct topic_config *cfg, int remote)
{
    struct fs_context *fc = fs_context;
    struct topic *t;
    int r = store_create_topic_config(fc->store, name, cfg, &t);
    if (r)
        return r;
    logger_log(LOG_LEVEL_INFO, "created topic %s with %u partitions", name,
               topic_partition_count(t));
    if (remote)
        topic_node_changed(fc, 0);
    topic_put(t);
    return 0;
}

int fs_topic_remove(void *fs_context, const char *name, int remote)
{
    struct fs_context *fc = fs_context;
    struct topic *t = strcmp(name, GROUP_OFFSETS_TOPIC) ? store_find(fc->store, name) : NULL;
    if (!t)
        return -ENOENT;
    int r = store_delete_topic(fc->store, name);
    if (!r) {
        group_delete_topic(fc->groups, t);
        logger_log(LOG_LEVEL_INFO, "deleted topic %s", name);
        if (remote)
            topic_node_changed(fc, t->id);
    }
    topic_put(t);
    return r;
}

static void op_refuse(fuse_req_t req)
{
    fuse_reply_err(req, EPERM);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    int64_t id = resolve(ctx(req), parent, name, 0);
    fuse_reply_err(req, id < 0 ? (int)-id : EPERM);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
    (void)parent;
    (void)name;
    (void)newparent;
    (void)newname;
    (void)flags;
    op_refuse(req);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    (void)ino;
    (void)newparent;
    (void)newname;
    op_refuse(req);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
    (void)link;
    (void)parent;
    (void)name;
    op_refuse(req);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
    (void)parent;
    (void)name;
    (void)mode;
    (void)rdev;
    op_refuse(req);
}

/* A zeroed handle; its lock is recursive because an interrupt callback may
 * run inside fuse_req_interrupt_func() while the read holds it. */
static struct handle *handle_new(enum node_kind kind)
{
    struct handle *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&h->lock, &a);
    pthread_mutexattr_destroy(&a);
    partition_cursor_init(&h->cursor);
    h->kind = kind;
    return h;
}

static void handle_free(struct handle *h)
{
    if (!h)
        return;
    open_remove(h);
    pending_free(&h->pending);
    if (h->holds_view)
        partition_view_release(h->part, &h->view);
    if (h->remote_watched && the_fs)
        remote_unwatch(the_fs->remote, h->topic, h->index);
    for (uint32_t i = 0; i < h->nremote_parts && the_fs; i++)
        remote_unwatch(the_fs->remote, h->topic, h->remote_parts[i]);
    free(h->remote_parts);
    partition_cursor_free(&h->cursor);
    text_buf_free(&h->json);
    if (h->member)
        group_leave(h->member);
    group_put(h->group);
    free(h->text);
    pthread_mutex_destroy(&h->lock);
    topic_put(h->topic);
    free(h);
}

/* Renders the text of a text file's handle again. Caller holds h->lock
 * (or owns h alone). */
static void handle_render(struct fs_context *fc, struct handle *h)
{
    size_t len;
    char *text = node_text(fc, h->kind, h->topic, h->group, h->index, &len);
    pthread_mutex_lock(&open_lock);
    free(h->text);
    h->text = text;
    h->text_len = text ? len : 0;
    h->text_ms = clock_now_ms();
    pthread_mutex_unlock(&open_lock);
}

/* Opens node id with fi->flags; fills fi. 0 or a negative errno. */
static void member_wake(void *arg);

/* A group member of a topic with partitions this broker holds no replica
 * of: their caches brought up to date (a drain member ends where the
 * leaders were) and kept so while it is open (a follow member wakes on
 * their appends). 0 or -ENOMEM. */
static int remote_watch_topic(struct fs_context *fc, struct handle *h)
{
    uint32_t n = topic_partition_count(h->topic);
    if (!fc->remote || !n)
        return 0;
    if (!(h->remote_parts = calloc(n, sizeof(*h->remote_parts))))
        return -ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        if (!remote_is_remote(fc->remote, h->topic, i))
            continue;
        remote_sync(fc->remote, h->topic, i, REMOTE_STAT);
        if (remote_watch(fc->remote, h->topic, i))
            h->remote_parts[h->nremote_parts++] = i;
    }
    return 0;
}

static int open_node(struct fs_context *fc, uint64_t id, struct fuse_file_info *fi, pid_t pid)
{
    enum node_kind kind = node_kind_of(id);
    int acc = fi->flags & O_ACCMODE;
    if (kind == NODE_ROOT || kind == NODE_TOPIC || kind == NODE_GROUPS || kind == NODE_GROUP)
        return -EISDIR;
    struct topic *t = NULL;
    if (kind != NODE_CLUSTER && kind != NODE_METRICS &&
        !(t = store_find_id(fc->store, node_topic(id))))
        return -ENOENT;
    struct handle *h = handle_new(kind);
    if (!h) {
        topic_put(t);
        return -ENOMEM;
    }
    h->node = id;
    h->pid = pid;
    h->topic = t;
    h->index = node_index(id);
    h->append = !!(fi->flags & O_APPEND);
    int r = 0;
    switch (kind) {
    case NODE_PARTITION:
        h->part = topic_partition(t, h->index);
        if (!h->part) {
            r = -ENOENT;
            break;
        }
        if (acc != O_WRONLY)
            remote_sync(fc->remote, t, h->index, REMOTE_STAT);
        partition_current_view(h->part, &h->view);
        if ((fi->flags & O_TRUNC) && acc != O_RDONLY && partition_view_size(h->part, &h->view))
            r = -EPERM;
        break;
    case NODE_HIDDEN: {
        struct hidden_node hn;
        if (acc != O_RDONLY) {
            r = -EACCES;
        } else if (hidden_get(node_payload(id), &hn) ||
                   !(h->part = topic_partition(t, hn.partition))) {
            r = -ENOENT;
        } else {
            h->index = hn.partition;
            h->jsonl = hn.jsonl;
            h->view = hn.view;
            h->json_start = h->json_next = hn.start_offset;
        }
        break;
    }
    case NODE_FOLLOW:
    case NODE_DRAIN:
    case NODE_CURSOR:
    case NODE_GROUP_INFO:
        h->group = group_find_id(fc->groups, node_group_of(id));
        if (!h->group || group_topic(h->group) != t)
            r = -ENOENT;
        else if (kind == NODE_CURSOR)
            h->index = node_cursor_partition(id);
        else if (acc != O_RDONLY)
            r = -EACCES;
        else if (kind != NODE_GROUP_INFO && (r = remote_watch_topic(fc, h)) == 0)
            r = group_join(h->group, pid, kind == NODE_FOLLOW, member_wake, h, &h->member);
        break;
    case NODE_PRODUCE: /* reads as an empty file, so tools that walk a topic can copy it */
    case NODE_CONFIG:
        break;
    case NODE_INFO:
    case NODE_CLUSTER:
    case NODE_METRICS:
        if (acc != O_RDONLY)
            r = -EACCES;
        break;
    default:
        r = -ENOENT;
    }
    if (r) {
        handle_free(h);
        return r;
    }
    if ((kind == NODE_PARTITION || (kind == NODE_HIDDEN && !h->jsonl)) && acc != O_WRONLY) {
        partition_view_hold(h->part, &h->view);
        h->holds_view = 1;
    }
    if ((kind == NODE_PARTITION || kind == NODE_HIDDEN) && acc != O_WRONLY)
        h->remote_watched = remote_watch(fc->remote, t, h->index);
    if (is_text(kind) && acc != O_WRONLY) {
        /* What fstat shows until the first read, which reads this text. */
        handle_render(fc, h);
        h->text_unread = 1;
    }
    if (kind == NODE_PARTITION || is_text(kind))
        open_add(h);
    fi->fh = (uint64_t)(uintptr_t)h;
    fi->direct_io = 1;
    fi->keep_cache = 0;
    /* No FLUSH at every close(): bash's `>>` closes twice per echo, and each
     * FLUSH is a round trip. A partial line is committed at RELEASE (the
     * last close) or fsync instead. Control files keep FLUSH: their lines
     * are applied there. */
    fi->noflush = kind == NODE_PARTITION || kind == NODE_PRODUCE;
    return 0;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    int r = open_node(ctx(req), ino, fi, fuse_req_ctx(req)->pid);
    if (r)
        fuse_reply_err(req, -r);
    else if (fuse_reply_open(req, fi) == -ENOENT)
        handle_free((struct handle *)(uintptr_t)fi->fh); /* the caller went away */
}

/* O_CREAT of a name that does not exist yet. Existing names are opened
 * (a new partition the kernel has not looked up); anything else is refused. */
static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
    (void)mode;
    struct fs_context *fc = ctx(req);
    int64_t id = resolve(fc, parent, name, 0);
    if (id < 0) {
        fuse_reply_err(req, id == -ENOENT ? EPERM : (int)-id);
        return;
    }
    struct fuse_entry_param e;
    memset(&e, 0, sizeof(e));
    struct attr_query q = {.pid = fuse_req_ctx(req)->pid};
    int r = node_attr(fc, (uint64_t)id, &q, &e.attr, &e.attr_timeout);
    if (!r)
        r = open_node(fc, (uint64_t)id, fi, fuse_req_ctx(req)->pid);
    if (r) {
        fuse_reply_err(req, -r);
        return;
    }
    e.ino = (uint64_t)id;
    e.generation = 1;
    e.entry_timeout = fc->entry_timeout;
    if (fuse_reply_create(req, &e, fi) == -ENOENT)
        handle_free((struct handle *)(uintptr_t)fi->fh);
}

static struct handle *handle_of(struct fuse_file_info *fi)
{
    return (struct handle *)(uintptr_t)fi->fh;
}

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
            r = remote_sync(the_fs->remote, h->topic, h->index, 0);
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
    ssize_t n = group_member_read(h->member, off, buf, size);
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
static void member_wake(void *arg)
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

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
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
    if (the_fs && the_fs->remote && (uint64_t)off + size > partition_view_size(h->part, &h->view)) {
        /* Past what is here: a partition of another broker may have more. */
        int e = remote_sync(the_fs->remote, h->topic, h->index, 0);
        if (e) {
            pthread_mutex_unlock(&h->lock);
            fuse_reply_err(req, -e);
            return;
        }
    }
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

/* The partition this thread is appending to by a WRITE to its own file
 * (append_records): the kernel drops that file's cached size itself. */
static __thread const struct topic *writing_topic;
static __thread uint32_t writing_index;

/* Core's listener (store_add_listener): readers see a partition change
 * when its high watermark moves (on one node, at every append), whoever
 * appended (a write, .produce, a close or fsync that flushed a partial
 * line, a follower's fetch): the kernel drops its cached attributes
 * (unless the change is this thread's WRITE to that file) and the group
 * members waiting on it wake. __consumer_offsets is internal, and group.c
 * appends to it under a group lock that waking would take. */
static void fs_partition_event(void *arg, struct topic *t, uint32_t partition, unsigned events)
{
    struct fs_context *fc = arg;
    if (!(events & (PARTITION_EVENT_HW | PARTITION_EVENT_TRUNCATE)) ||
        !strcmp(t->name, GROUP_OFFSETS_TOPIC))
        return;
    if (writing_topic != t || writing_index != partition)
        fs_partition_changed(fc, t, partition);
    if (fc->groups)
        group_notify_append(fc->groups, t, partition);
}

/* A local append (produce_local_fn): the topic's produce path here. */
struct local_append {
    struct partition *p;
    struct scratch *s;
    const struct record_ref *r;
    size_t n;
    struct produce_acks acks;
};

static int append_here(void *arg, uint64_t *base_offset)
{
    struct local_append *a = arg;
    return partition_produce(a->p, &a->s->builder, a->r, a->n, clock_now_ms(), &a->acks,
                             base_offset);
}

/* Stores a list of records as one batch in partition `index` of t, with
 * the acks of cfg (the topic's); the listener then wakes consumers waiting
 * on it (fs_partition_event). `by_write`: the append is a WRITE to the
 * partition's own file. In cluster mode, records for a partition another
 * broker leads are sent to it (produce.h) and are stored once it has them.
 * *end (optional) gets the offset after them. */
static int append_records(struct topic *t, uint32_t index, struct scratch *s,
                          const struct topic_config *cfg, const struct record_ref *r, size_t n,
                          int by_write, uint64_t *end)
{
    struct partition *p = topic_partition(t, index);
    if (!p)
        return -ENOENT;
    struct local_append a = {
        p, s, r, n, {config_acks(cfg) == CONFIG_ACKS_ALL, cfg->min_insync_replicas}};
    uint64_t base = 0;
    if (by_write) {
        writing_topic = t;
        writing_index = index;
    }
    int e = the_fs && the_fs->forward
                ? forward_produce(the_fs->forward, t->name, index, r, n, append_here, &a, &base)
                : append_here(&a, &base);
    writing_topic = NULL;
    if (!e && the_fs)
        remote_written(the_fs->remote, t, index); /* read your writes where no replica is */
    if (!e && end)
        *end = base + n;
    return e;
}

/* Routes records of .produce: keyed ones by Kafka's partitioner, keyless
 * ones all to one partition per call (sticky), chosen round robin. */
static int produce_records(struct topic *t, struct scratch *s, const struct topic_config *cfg,
                           struct record_list *l)
{
    uint32_t nparts = topic_partition_count(t);
    uint32_t sticky = atomic_fetch_add(&t->round_robin, 1) % nparts;
    size_t done = 0;
    int r = 0;
    /* One pass per partition that has records; order within a partition is kept. */
    unsigned char *seen = calloc(nparts, 1);
    uint32_t *dest = malloc(l->n * sizeof(*dest));
    struct record_ref *sel = malloc(l->n * sizeof(*sel));
    if (!seen || !dest || !sel) {
        r = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < l->n; i++)
        dest[i] = l->r[i].key_len >= 0
                      ? murmur2_partition(l->r[i].data, (size_t)l->r[i].key_len, nparts)
                      : sticky;
    for (size_t i = 0; i < l->n && done < l->n && !r; i++) {
        uint32_t part = dest[i];
        if (seen[part])
            continue;
        seen[part] = 1;
        size_t k = 0;
        for (size_t j = i; j < l->n; j++)
            if (dest[j] == part)
                sel[k++] = l->r[j];
        r = append_records(t, part, s, cfg, sel, k, 0, NULL);
        done += k;
    }
out:
    free(seen);
    free(dest);
    free(sel);
    return r;
}

/* How the handle's writes become records: the topic's framing, except that
 * .produce always takes lines. rules points into cfg, the caller's. */
static void handle_framing_rules(const struct handle *h, struct topic_config *cfg,
                                 struct framing_rules *rules)
{
    topic_config_snapshot(h->topic, cfg);
    framing_rules_of(cfg, rules);
    if (h->kind == NODE_PRODUCE)
        rules->framing = FRAMING_LINE;
}

/* Appends the records framed in s->records: to the handle's partition, or
 * routed by key for .produce. by_write: see append_records. */
static int store_records(struct handle *h, struct scratch *s, const struct topic_config *cfg,
                         int by_write)
{
    if (h->kind != NODE_PARTITION)
        return produce_records(h->topic, s, cfg, &s->records);
    uint64_t end = 0;
    int r = append_records(h->topic, h->index, s, cfg, s->records.r, s->records.n, by_write, &end);
    if (!r && end > h->written_end)
        h->written_end = end;
    return r;
}

/* Turns the handle's partial line into a record. Caller holds h->lock. */
static int commit_pending(struct handle *h)
{
    if (!h->pending.len || (h->kind != NODE_PARTITION && h->kind != NODE_PRODUCE))
        return 0;
    struct scratch *s = scratch_get();
    if (!s)
        return -ENOMEM;
    struct topic_config cfg;
    struct framing_rules rules;
    handle_framing_rules(h, &cfg, &rules);
    s->records.n = 0;
    int r = framing_take_pending(&rules, &h->pending, &s->records);
    if (!r)
        r = store_records(h, s, &cfg, 0);
    if (!r)
        h->pending.len = 0;
    return r;
}

static int write_records(struct handle *h, const char *buf, size_t size, off_t off)
{
    struct scratch *s = scratch_get();
    if (!s)
        return -ENOMEM;
    struct topic_config cfg;
    struct framing_rules rules;
    handle_framing_rules(h, &cfg, &rules);
    if (h->kind == NODE_PARTITION && !h->append &&
        (uint64_t)off != partition_view_size(h->part, &h->view) + h->pending.len)
        return -ESPIPE;
    size_t tail;
    s->records.n = 0;
    int r = framing_split(&rules, &h->pending, buf, size, &s->records, &tail);
    if (r == -EMSGSIZE)
        framing_refuse(&rules, &h->pending, buf, size);
    if (r)
        return r;
    if (s->records.n) {
        r = store_records(h, s, &cfg, 1);
        if (r)
            return r;
    }
    return framing_commit(&h->pending, buf, size, tail, s->records.n > 0);
}

/* Control files (.config, cursor files) take lines. All complete lines of
 * one write are checked first (check may use `trial` state), then applied;
 * a bad line fails the write with EINVAL and applies nothing. A partial
 * line waits in h->pending for flush or close. */
struct control_ops {
    int (*check)(struct handle *h, void *trial, const char *line, size_t len);
    int (*apply)(struct handle *h, const char *line, size_t len);
};

/* Calls fn for each complete line of pending + buf (without its '\n'). */
static int each_line(struct handle *h, const char *buf, size_t size,
                     int (*fn)(struct handle *h, void *arg, const char *line, size_t len),
                     void *arg, size_t *consumed)
{
    const char *p = buf, *end = buf + size, *nl;
    char line[512];
    while ((nl = memchr(p, '\n', (size_t)(end - p)))) {
        size_t n = (size_t)(nl - p), lead = p == buf ? h->pending.len : 0;
        if (lead + n >= sizeof(line))
            return -EINVAL;
        if (lead)
            memcpy(line, h->pending.buf, lead);
        memcpy(line + lead, p, n);
        int r = lead + n > 0 ? fn(h, arg, line, lead + n) : 0;
        if (r)
            return r;
        p = nl + 1;
    }
    if ((size_t)(end - p) + (p == buf ? h->pending.len : 0) >= sizeof(line))
        return -EINVAL;
    *consumed = (size_t)(p - buf);
    return 0;
}

struct control_call {
    const struct control_ops *ops;
    void *trial;
};

static int control_check(struct handle *h, void *arg, const char *line, size_t len)
{
    struct control_call *c = arg;
    return c->ops->check(h, c->trial, line, len) ? -EINVAL : 0;
}

static int control_apply(struct handle *h, void *arg, const char *line, size_t len)
{
    return ((struct control_call *)arg)->ops->apply(h, line, len);
}

static int write_control(struct handle *h, const struct control_ops *ops, void *trial,
                         const char *buf, size_t size)
{
    struct control_call c = {ops, trial};
    size_t consumed;
    int r = each_line(h, buf, size, control_check, &c, &consumed);
    if (!r)
        r = each_line(h, buf, size, control_apply, &c, &consumed);
    if (r)
        return r;
    if (memchr(buf, '\n', size))
        h->pending.len = 0;
    return framing_commit(&h->pending, buf, size, consumed, 0);
}

static int flush_control(struct handle *h, const struct control_ops *ops)
{
    if (!h->pending.len)
        return 0;
    int r = ops->check(h, NULL, h->pending.buf, h->pending.len);
    if (!r)
        r = ops->apply(h, h->pending.buf, h->pending.len);
    h->pending.len = 0;
    return r ? -EINVAL : 0;
}

static int config_check(struct handle *h, void *trial, const char *line, size_t len)
{
    struct topic_config own;
    if (!trial) {
        topic_config_snapshot(h->topic, &own);
        trial = &own;
    }
    return config_set_line(trial, line, len);
}

/* The topic directory's mtime moved (attr_timeout); attributes only. */
static void topic_config_changed(struct topic *t)
{
    if (the_fs && the_fs->se)
        fuse_lowlevel_notify_inval_inode(the_fs->se, node_id(t->id, NODE_TOPIC, 0), -1, 0);
}

/* In cluster mode the line goes to the cluster, which changes the config
 * here (fs_topic_configure) and on every other broker. */
static int config_apply(struct handle *h, const char *line, size_t len)
{
    int r = the_fs && the_fs->cluster
                ? cluster_topic_config(the_fs->cluster, h->topic->name, line, len)
                : topic_config_apply(h->topic, line, len);
    if (!r) {
        logger_log(LOG_LEVEL_INFO, "topic %s: %.*s", h->topic->name, (int)len, line);
        topic_config_changed(h->topic);
    }
    return r;
}

/* Makes cfg t's config: the lines of its text that differ from t's are
 * applied one by one (both texts name every key, in the same order), each
 * all or nothing; the first refusal stops it. */
static int config_apply_all(struct topic *t, const struct topic_config *cfg)
{
    char want[4096], have[4096];
    struct topic_config cur;
    topic_config_snapshot(t, &cur);
    size_t wl = config_format(cfg, want, sizeof(want)),
           hl = config_format(&cur, have, sizeof(have));
    if (wl >= sizeof(want) || hl >= sizeof(have))
        return -EINVAL;
    int r = 0;
    for (const char *w = want, *h = have; !r && *w && *h;) {
        const char *wn = strchr(w, '\n'), *hn = strchr(h, '\n');
        if (wn - w != hn - h || memcmp(w, h, (size_t)(wn - w)))
            r = topic_config_apply(t, w, (size_t)(wn - w));
        w = wn + 1;
        h = hn + 1;
    }
    return r;
}

int fs_topic_configure(void *fs_context, const char *name, const struct topic_config *cfg,
                       int remote)
{
    struct fs_context *fc = fs_context;
    struct topic *t = store_find(fc->store, name);
    if (!t)
        return -ENOENT;
    int r = config_apply_all(t, cfg);
    if (!r) {
        if (remote)
            logger_log(LOG_LEVEL_INFO, "topic %s: config from the cluster", name);
        topic_config_changed(t);
    }
    topic_put(t);
    return r;
}

static const struct control_ops config_ops = {config_check, config_apply};

static int cursor_check(struct handle *h, void *trial, const char *line, size_t len)
{
    (void)h;
    (void)trial;
    char spec[128];
    int64_t t;
    return node_parse_cursor(line, len, spec, sizeof(spec), &t);
}

static int cursor_apply(struct handle *h, const char *line, size_t len)
{
    char spec[128];
    int64_t t;
    int r = node_parse_cursor(line, len, spec, sizeof(spec), &t);
    return r ? r : group_cursor_set(h->group, h->index, spec, t);
}

static const struct control_ops cursor_ops = {cursor_check, cursor_apply};

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    (void)ino;
    struct handle *h = handle_of(fi);
    int r;
    pthread_mutex_lock(&h->lock);
    switch (h->kind) {
    case NODE_PARTITION:
    case NODE_PRODUCE:
        r = write_records(h, buf, size, off);
        break;
    case NODE_CONFIG: {
        struct topic_config trial;
        topic_config_snapshot(h->topic, &trial);
        r = write_control(h, &config_ops, &trial, buf, size);
        break;
    }
    case NODE_CURSOR:
        r = write_control(h, &cursor_ops, NULL, buf, size);
        break;
    default:
        r = -EBADF;
    }
    if (!r && h->kind == NODE_PARTITION) {
        /* acks=all on one node (or one replica): every write is an fsync.
         * A replicated partition's acks=all waited for its ISR instead. */
        struct topic_config cfg;
        topic_config_snapshot(h->topic, &cfg);
        if (config_acks(&cfg) == CONFIG_ACKS_ALL &&
            !(the_fs && the_fs->forward && cfg.replication_factor > 1))
            r = partition_sync(h->part);
    }
    pthread_mutex_unlock(&h->lock);
    if (r)
        fuse_reply_err(req, -r);
    else
        fuse_reply_write(req, size);
}

static int flush_handle(struct handle *h)
{
    if (h->kind == NODE_CONFIG)
        return flush_control(h, &config_ops);
    if (h->kind == NODE_CURSOR)
        return flush_control(h, &cursor_ops);
    return commit_pending(h);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    struct handle *h = handle_of(fi);
    pthread_mutex_lock(&h->lock);
    int r = flush_handle(h);
    pthread_mutex_unlock(&h->lock);
    fuse_reply_err(req, -r);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    struct handle *h = handle_of(fi);
    pthread_mutex_lock(&h->lock);
    int r = flush_handle(h);
    pthread_mutex_unlock(&h->lock);
    if (r)
        logger_log(LOG_LEVEL_WARN, "topic %s: partial record lost at close: %s", h->topic->name,
                   strerror(-r));
    handle_free(h);
    fuse_reply_err(req, 0);
}

/* fsync of a partition: stable storage here, and in cluster mode every
 * in-sync replica holding everything up to the log end and to written_end
 * (what this handle wrote, maybe forwarded to another broker's leader). */
static int sync_partition(struct partition *p, uint64_t written_end)
{
    int r = partition_sync(p);
    if (r || !the_fs || !the_fs->forward)
        return r;
    struct partition_ack ack;
    partition_ack_point(p, &ack);
    if (written_end > ack.end_offset)
        ack.end_offset = written_end;
    return partition_wait_acked(p, &ack);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    (void)ino;
    (void)datasync;
    struct handle *h = handle_of(fi);
    pthread_mutex_lock(&h->lock);
    int r = flush_handle(h);
    pthread_mutex_unlock(&h->lock);
    if (!r && h->kind == NODE_PARTITION)
        r = sync_partition(h->part, h->written_end);
    else if (!r && h->kind == NODE_PRODUCE)
        for (uint32_t i = 0, n = topic_partition_count(h->topic); i < n && !r; i++)
            r = sync_partition(topic_partition(h->topic, i), 0);
    else if (!r && h->member)
        r = group_member_sync(h->member);
    fuse_reply_err(req, -r);
}

struct listing {
    fuse_req_t req;
    char *buf;
    size_t len, cap;
};

static int listing_add(struct listing *l, const char *name, uint64_t id, mode_t mode)
{
    struct stat st = {.st_ino = id, .st_mode = mode};
    size_t need = fuse_add_direntry(l->req, NULL, 0, name, NULL, 0);
    if (l->len + need > l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4096;
        while (cap < l->len + need)
            cap *= 2;
        char *n = realloc(l->buf, cap);
        if (!n)
            return -ENOMEM;
        l->buf = n;
        l->cap = cap;
    }
    fuse_add_direntry(l->req, l->buf + l->len, l->cap - l->len, name, &st, (off_t)(l->len + need));
    l->len += need;
    return 0;
}

static int list_topic(struct topic *t, void *arg)
{
    if (!strcmp(t->name, GROUP_OFFSETS_TOPIC))
        return 0; /* internal */
    return listing_add(arg, t->name, node_id(t->id, NODE_TOPIC, 0), S_IFDIR);
}

static int list_root(struct fs_context *fc, struct listing *l)
{
    int r = listing_add(l, ".cluster", node_id(0, NODE_CLUSTER, 0), S_IFREG);
    if (!r)
        r = listing_add(l, ".metrics", node_id(0, NODE_METRICS, 0), S_IFREG);
    return r ? r : store_foreach(fc->store, list_topic, l);
}

static int list_group(struct group *g, void *arg)
{
    return listing_add(arg, group_name(g),
                       node_group_id(group_topic(g)->id, NODE_GROUP, group_id(g), 0), S_IFDIR);
}

/* Entries of a topic directory, .groups, or a group directory. */
static int list_dir(struct fs_context *fc, uint64_t ino, struct listing *l)
{
    enum node_kind kind = node_kind_of(ino);
    struct topic *t = store_find_id(fc->store, node_topic(ino));
    struct group *g = NULL;
    char name[32];
    int r = 0;
    if (!t)
        return -ENOENT;
    uint32_t n = topic_partition_count(t);
    if (kind == NODE_TOPIC) {
        for (uint32_t i = 0; i < n && !r; i++) {
            snprintf(name, sizeof(name), "p%u", i);
            r = listing_add(l, name, node_partition_id(t->id, i), S_IFREG);
        }
        static const struct {
            const char *name;
            enum node_kind kind;
            mode_t mode;
        } dot[] = {{".produce", NODE_PRODUCE, S_IFREG},
                   {".config", NODE_CONFIG, S_IFREG},
                   {".info", NODE_INFO, S_IFREG},
                   {".groups", NODE_GROUPS, S_IFDIR}};
        for (size_t i = 0; i < sizeof(dot) / sizeof(dot[0]) && !r; i++)
            r = listing_add(l, dot[i].name, node_id(t->id, dot[i].kind, 0), dot[i].mode);
    } else if (kind == NODE_GROUPS) {
        r = group_foreach(fc->groups, t, list_group, l);
    } else if (!(g = group_find_id(fc->groups, node_group_of(ino)))) {
        r = -ENOENT;
    } else {
        /* follow and drain are opened by name and not listed: reading one
         * joins the group and consumes, which tools that walk directories
         * (grep -r, cp -r, tar, rsync) must not do. */
        uint64_t gid = group_id(g);
        for (uint32_t i = 0; i < n && !r; i++) {
            snprintf(name, sizeof(name), "p%u", i);
            r = listing_add(l, name, node_group_id(t->id, NODE_CURSOR, gid, i), S_IFREG);
        }
        if (!r)
            r = listing_add(l, ".info", node_group_id(t->id, NODE_GROUP_INFO, gid, 0), S_IFREG);
        group_put(g);
    }
    topic_put(t);
    return r;
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct fs_context *fc = ctx(req);
    enum node_kind kind = node_kind_of(ino);
    struct listing l = {.req = req};
    int r = 0;
    if (kind != NODE_ROOT && kind != NODE_TOPIC && kind != NODE_GROUPS && kind != NODE_GROUP) {
        fuse_reply_err(req, ENOTDIR);
        return;
    }
    struct handle *h = handle_new(kind);
    if (!h) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    r = listing_add(&l, ".", ino, S_IFDIR);
    if (!r)
        r = listing_add(&l, "..", NODE_ROOT_ID, S_IFDIR);
    if (!r)
        r = kind == NODE_ROOT ? list_root(fc, &l) : list_dir(fc, ino, &l);
    if (r) {
        free(l.buf);
        handle_free(h);
        fuse_reply_err(req, -r);
        return;
    }
    h->text = l.buf;
    h->text_len = l.len;
    fi->fh = (uint64_t)(uintptr_t)h;
    if (fuse_reply_open(req, fi) == -ENOENT)
        handle_free(h);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    (void)ino;
    struct handle *h = handle_of(fi);
    /* Replies from h->text under h->lock, which releasedir takes before it
     * frees h: the process may close the directory as soon as the kernel
     * has the reply, before fuse_reply_buf() returns here. */
    pthread_mutex_lock(&h->lock);
    if ((size_t)off >= h->text_len) {
        fuse_reply_buf(req, NULL, 0);
    } else {
        /* The kernel keeps the whole entries of a cut reply and asks again
         * from the offset of the last one. */
        size_t n = h->text_len - (size_t)off;
        fuse_reply_buf(req, h->text + off, n < size ? n : size);
    }
    pthread_mutex_unlock(&h->lock);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    struct handle *h = handle_of(fi);
    pthread_mutex_lock(&h->lock); /* a readdir reply still being sent */
    pthread_mutex_unlock(&h->lock);
    handle_free(h);
    fuse_reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    (void)ino;
    struct statvfs sv;
    if (statvfs(ctx(req)->store->dir, &sv) < 0)
        fuse_reply_err(req, errno);
    else
        fuse_reply_statfs(req, &sv);
}

void fs_partition_changed(void *fs_context, struct topic *t, uint32_t partition)
{
    struct fs_context *fc = fs_context;
    /* Attributes only: there are no pages (direct_io). */
    if (fc && fc->se)
        fuse_lowlevel_notify_inval_inode(fc->se, node_partition_id(t->id, partition), -1, 0);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    if (node_kind_of(ino) == NODE_HIDDEN)
        hidden_forget(node_payload(ino), nlookup);
    fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    for (size_t i = 0; i < count; i++)
        if (node_kind_of(forgets[i].ino) == NODE_HIDDEN)
            hidden_forget(node_payload(forgets[i].ino), forgets[i].nlookup);
    fuse_reply_none(req);
}

const struct fuse_lowlevel_ops topicfs_ops = {
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .init = op_init,
    .lookup = op_lookup,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .mkdir = op_mkdir,
    .rmdir = op_rmdir,
    .unlink = op_unlink,
    .rename = op_rename,
    .link = op_link,
    .symlink = op_symlink,
    .mknod = op_mknod,
    .open = op_open,
    .create = op_create,
    .read = op_read,
    .write = op_write,
    .flush = op_flush,
    .release = op_release,
    .fsync = op_fsync,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .releasedir = op_releasedir,
    .statfs = op_statfs,
};
