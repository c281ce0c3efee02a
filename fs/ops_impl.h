/* ops_impl.h - what the files of the FUSE operations share; private to
 * fs/. ops.c holds the operations table, names, attributes, open and
 * release; read.c READ; write.c WRITE, FLUSH, FSYNC and the appends they
 * make; control.c the lines written to .config and cursor files; dirs.c
 * the directories and the cluster's topic callbacks.
 *
 * A struct handle is an open file or directory (fi->fh). A partition
 * handle carries the partial line its writer left (framing.h) and a read
 * cursor (partition.h). Handles of the same file share nothing but the
 * partition, whose own lock serializes appends.
 *
 * Lock order: a handle's lock, then open_lock; nothing is taken under
 * open_lock. */
#ifndef TOPICFS_OPS_IMPL_H
#define TOPICFS_OPS_IMPL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "batch.h"
#include "coordinator.h"
#include "framing.h"
#include "jsonl.h"
#include "nodes.h"
#include "ops.h"
#include "partition.h"

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
    /* jsonl: text rendered from next_offset on; jsonl_pos is its file position */
    struct text_buf json;
    uint64_t json_pos, json_next, json_start;
    /* consumer groups: member files, cursor files, .info */
    struct group *group;
    struct coord_member *member;
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

struct scratch *scratch_get(void);
char *scratch_buf(struct scratch *s, size_t n);

/* The daemon's context, for code that runs outside a request (wakeups). */
extern struct fs_context *the_fs;

/* Guards the registry of open files (ops.c) and the fields of struct
 * handle that it lists. */
extern pthread_mutex_t open_lock;

static inline struct fs_context *ctx(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

static inline struct handle *handle_of(struct fuse_file_info *fi)
{
    return (struct handle *)(uintptr_t)fi->fh;
}

/* Files whose content is text made when read (see ops.c's top comment). */
static inline int is_text(enum node_kind kind)
{
    return kind == NODE_CLUSTER || kind == NODE_METRICS || kind == NODE_CONFIG ||
           kind == NODE_INFO || kind == NODE_CURSOR || kind == NODE_GROUP_INFO;
}

/* ops.c */
struct handle *handle_new(enum node_kind kind);
void handle_free(struct handle *h);
void handle_render(struct fs_context *fc, struct handle *h);
int64_t ops_resolve(struct fs_context *fc, uint64_t parent, const char *name, int lookup);
int64_t resolve_in_groups(struct fs_context *fc, uint64_t parent, const char *name);
void reply_entry(fuse_req_t req, uint64_t id);

/* read.c */
void member_wake(void *arg);
void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);

/* write.c */
void fs_partition_event(void *arg, struct topic *t, uint32_t partition, unsigned events);
int flush_handle(struct handle *h);
void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
              struct fuse_file_info *fi);
void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);

/* control.c: how a control file checks and applies one line. */
struct control_ops {
    int (*check)(struct handle *h, void *trial, const char *line, size_t len);
    int (*apply)(struct handle *h, const char *line, size_t len);
};

extern const struct control_ops control_config_ops, control_cursor_ops;
int write_control(struct handle *h, const struct control_ops *ops, void *trial, const char *buf,
                  size_t size);
int flush_control(struct handle *h, const struct control_ops *ops);

/* dirs.c */
void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void op_statfs(fuse_req_t req, fuse_ino_t ino);

#endif
