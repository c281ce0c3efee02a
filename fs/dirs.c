/* dirs.c - directories: the root (topics, .cluster, .metrics), a topic's
 * (partitions, .produce, .config, .info, .groups), .groups and a group's
 * (cursor files, .info). mkdir and rmdir make and delete topics at the root
 * and groups in .groups; in cluster mode topics are made and deleted
 * through the cluster, which calls back fs_topic_create and fs_topic_remove
 * (ops.h). A listing is made whole at opendir and kept in the handle, from
 * which readdir replies. */
#include "ops_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "cluster.h"
#include "logger.h"
#include "nodes.h"

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    (void)mode;
    struct fs_context *fc = ctx(req);
    enum node_kind pk = node_kind_of(parent);
    if (pk == NODE_GROUPS) {
        struct topic *t = store_find_id(fc->store, node_topic(parent));
        int r = t ? coord_group_create(fc->coord, t, name) : -ENOENT;
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

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct fs_context *fc = ctx(req);
    enum node_kind pk = node_kind_of(parent);
    if (pk == NODE_GROUPS) {
        struct topic *t = store_find_id(fc->store, node_topic(parent));
        int r = t ? coord_group_delete(fc->coord, t, name) : -ENOENT;
        topic_put(t);
        fuse_reply_err(req, -r);
        return;
    }
    if (pk != NODE_ROOT) {
        int64_t id = ops_resolve(fc, parent, name, 0);
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
    uint32_t nparts = topic_partition_count(t);
    logger_log(LOG_LEVEL_INFO, "created topic %s with %u partition%s", name, nparts,
               nparts == 1 ? "" : "s");
    if (remote)
        topic_node_changed(fc, 0);
    topic_put(t);
    return 0;
}

int fs_topic_remove(void *fs_context, const char *name, int remote)
{
    struct fs_context *fc = fs_context;
    struct topic *t = store_find(fc->store, name); /* users never name __consumer_offsets here */
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
        coord_refresh(fc->coord);
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

void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
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

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
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

void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    struct handle *h = handle_of(fi);
    pthread_mutex_lock(&h->lock); /* a readdir reply still being sent */
    pthread_mutex_unlock(&h->lock);
    handle_free(h);
    fuse_reply_err(req, 0);
}

void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    (void)ino;
    struct statvfs sv;
    if (statvfs(ctx(req)->store->dir, &sv) < 0)
        fuse_reply_err(req, errno);
    else
        fuse_reply_statfs(req, &sv);
}
