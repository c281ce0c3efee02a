/* ops.c - FUSE low-level operations: paths to topics, partitions and
 * control files, and the file semantics of design.md. Here: the operations
 * table, names (lookup), attributes, open and release; ops_impl.h says
 * which file holds the others and what they share.
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
 * core's listener (fs_partition_event in write.c, which also wakes group
 * members), retention and compaction by the cleaner's callback. So each
 * stat() sees the exact size, which is where the high watermark lies. Other
 * files' attributes are not cached (their text changes with no write to
 * them).
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
 * read from offset 0 renders the current state again. */
#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "clock.h"
#include "cluster.h"
#include "hidden.h"
#include "jsonl.h"
#include "logger.h"
#include "nodes.h"
#include "ops_impl.h"
#include "remote.h"
#include "status.h"
#include "thread_slot.h"

static int scratch_init(void *p)
{
    struct scratch *s = p;
    batch_builder_init(&s->builder);
    s->bv = calloc(1, sizeof(*s->bv) + REPLY_PIECES * sizeof(struct fuse_buf));
    return s->bv ? 0 : -ENOMEM;
}

static void scratch_free(void *p)
{
    struct scratch *s = p;
    batch_builder_free(&s->builder);
    record_list_free(&s->records);
    free(s->buf);
    free(s->bv);
}

static struct thread_slot scratch_slot =
    THREAD_SLOT_INIT(sizeof(struct scratch), scratch_init, scratch_free);

struct scratch *scratch_get(void)
{
    return thread_slot_get(&scratch_slot);
}

char *scratch_buf(struct scratch *s, size_t n)
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

struct fs_context *the_fs;

/* Open partitions and text files by node id (see the top comment). */
#define OPEN_BUCKETS 1024
pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;
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
        remote_sync(the_fs->remote, t, i);
    size_t need = format_info(t, NULL, 0) + 256;
    buf = malloc(need);
    if (buf)
        *len = format_info(t, buf, need);
    return buf;
}

/* Text of a cursor file ("<committed offset>\n") or a group's .info (the
 * coordinator's: it knows the owners). */
static char *group_text(struct fs_context *fc, struct group *g, enum node_kind kind,
                        uint32_t partition, size_t *len)
{
    if (kind != NODE_CURSOR)
        return coord_group_info(fc->coord, g, len);
    char *buf = malloc(32);
    uint64_t off = 0;
    coord_refresh(fc->coord);
    if (!buf || group_cursor_get(g, partition, &off)) {
        free(buf);
        return NULL;
    }
    *len = (size_t)snprintf(buf, 32, "%" PRIu64 "\n", off);
    return buf;
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
    return group_text(fc, g, kind, index, len);
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
    st->st_blksize = 1024 * 1024;
    st->st_mode = node_mode(fc, kind);
    st->st_nlink = S_ISDIR(st->st_mode) ? 2 : 1;
    int64_t mtime = fc->started_ms;
    /* The root, topic and .groups directories change by a mkdir or rmdir
     * in them, after which the kernel drops their attributes itself, or by
     * a .config line (the topic's mtime), after which config_apply does;
     * in a cluster also at other mounts, so they are kept topic_timeout
     * (short there). Group directories show the topic's mtime and are not
     * cached. */
    *timeout =
        kind == NODE_ROOT || kind == NODE_TOPIC || kind == NODE_GROUPS ? fc->topic_timeout : 0;
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
            remote_sync(fc->remote, t, node_index(id));
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
        remote_sync(fc->remote, t, hn.partition);
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

void reply_entry(fuse_req_t req, uint64_t id)
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
    /* Topics, and groups (made and deleted at other mounts in a cluster),
     * are named for topic_timeout only. */
    enum node_kind kind = node_kind_of(id);
    int shared = kind == NODE_TOPIC || kind == NODE_GROUP || kind == NODE_CURSOR ||
                 kind == NODE_GROUP_INFO || kind == NODE_FOLLOW || kind == NODE_DRAIN;
    e.entry_timeout = kind == NODE_HIDDEN ? 0
                      : shared            ? ctx(req)->topic_timeout
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
        remote_sync(the_fs->remote, t, nn->partition);
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
int64_t resolve_in_groups(struct fs_context *fc, uint64_t parent, const char *name)
{
    struct topic *t = store_find_id(fc->store, node_topic(parent));
    int64_t id = -ENOENT;
    if (!t)
        return -ENOENT;
    coord_refresh(fc->coord);
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
int64_t ops_resolve(struct fs_context *fc, uint64_t parent, const char *name, int lookup)
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
    int64_t id = ops_resolve(ctx(req), parent, name, 1);
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

static void op_refuse(fuse_req_t req)
{
    fuse_reply_err(req, EPERM);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    int64_t id = ops_resolve(ctx(req), parent, name, 0);
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
struct handle *handle_new(enum node_kind kind)
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

void handle_free(struct handle *h)
{
    if (!h)
        return;
    open_remove(h);
    pending_free(&h->pending);
    if (h->holds_view)
        partition_view_release(h->part, &h->view);
    if (h->remote_watched && the_fs)
        remote_unwatch(the_fs->remote, h->topic, h->index);
    partition_cursor_free(&h->cursor);
    text_buf_free(&h->json);
    coord_leave(h->member);
    group_put(h->group);
    free(h->text);
    pthread_mutex_destroy(&h->lock);
    topic_put(h->topic);
    free(h);
}

/* Renders the text of a text file's handle again. Caller holds h->lock
 * (or owns h alone). */
void handle_render(struct fs_context *fc, struct handle *h)
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
            remote_sync(fc->remote, t, h->index);
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
        else if (kind != NODE_GROUP_INFO)
            r = coord_join(fc->coord, h->group, pid, kind == NODE_FOLLOW, member_wake, h,
                           &h->member);
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
    int64_t id = ops_resolve(fc, parent, name, 0);
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
