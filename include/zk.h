/* zk.h - a ZooKeeper session through the C client (libzookeeper-mt).
 *
 * One struct zk is one session with the ensemble named by a connection
 * string `host:port[,host:port...][/chroot]` (zk_parse_connect). The chroot
 * is created at open when missing (persistent, empty), then the session runs
 * under it: every path given here is relative to the chroot.
 *
 * Calls are synchronous and return 0 or a negative errno (table in zk.c).
 * Any thread may make them, several at once, except the event callback: it
 * runs on the client's completion thread, and should only take note of the
 * event and wake a thread of the caller's (cluster.c does so).
 *
 * A watch set by a call (watch=1) fires once, as an event for its path;
 * session changes come as events with a NULL path. After ZK_EV_EXPIRED the
 * session, its ephemerals and its watches are gone: zk_renew() starts a new
 * session (ZK_EV_CONNECTED when it is up), and the caller registers its
 * ephemerals and sets its watches again. A connection lost and found again
 * within the session timeout keeps the session, its ephemerals and watches
 * (ZK_EV_DISCONNECTED, then ZK_EV_CONNECTED).
 *
 * The client's threads start with SIGINT, SIGTERM, SIGHUP and SIGPIPE
 * blocked, so the daemon's signals reach its own threads. Its log lines go to
 * the logger at debug level (-d). */
#ifndef TOPICFS_ZK_H
#define TOPICFS_ZK_H

#include <stddef.h>
#include <stdint.h>

struct zk;

enum zk_event {
    ZK_EV_CONNECTED,    /* the session is up (new, or resumed after a disconnection) */
    ZK_EV_DISCONNECTED, /* connection lost: the client looks for a server on its own */
    ZK_EV_EXPIRED,      /* the session is gone: zk_renew() */
    ZK_EV_CREATED,      /* watches: path was created, */
    ZK_EV_DELETED,      /* deleted, */
    ZK_EV_CHANGED,      /* its data changed, */
    ZK_EV_CHILD,        /* its children changed */
};

/* Called on the client's completion thread; path is NULL for session events. */
typedef void (*zk_event_fn)(void *arg, enum zk_event ev, const char *path);

enum zk_state { ZK_CONNECTING, ZK_CONNECTED, ZK_EXPIRED, ZK_CLOSED };

struct zk_options {
    const char *connect;       /* host:port[,host:port...][/chroot] */
    int session_timeout_ms;    /* asked for; the server may give another (zk_session_timeout) */
    int connection_timeout_ms; /* zk_open's wait for the first session */
    zk_event_fn on_event;      /* may be NULL */
    void *arg;
};

struct zk_stat {
    int32_t version;         /* of the data: the `version` of zk_set/zk_delete/ZK_OP_* */
    int64_t ephemeral_owner; /* session id, 0 for a persistent node */
    int64_t ctime_ms, mtime_ms;
    int32_t num_children;
};

#define ZK_ANY_VERSION (-1)
#define ZK_EPHEMERAL 1 /* zk_create flag: removed when the session ends */

/* Splits a connection string into its servers and its chroot (NULL when
 * there is none; "/" counts as none). Both malloc'ed. -EINVAL for an empty
 * server list, a server without a port or with a bad one, an empty server, a
 * chroot with an empty, "." or ".." component or a trailing slash. */
int zk_parse_connect(const char *connect, char **hosts, char **chroot);

/* Connects and waits up to connection_timeout_ms for the session (and the
 * chroot): -ETIMEDOUT if no server answered by then, -EINVAL for a bad
 * connection string, -EHOSTUNREACH if no server name resolves, or another
 * negative errno. */
int zk_open(const struct zk_options *o, struct zk **out);
/* Ends the session (the server removes its ephemerals at once) and frees z. */
void zk_close(struct zk *z);
/* After ZK_EV_EXPIRED: replaces the dead session with a new one, without
 * waiting for it (ZK_EV_CONNECTED says when it is up). 0 if the session was
 * not expired or a new one is on its way, or a negative errno. */
int zk_renew(struct zk *z);

enum zk_state zk_state(struct zk *z);
int64_t zk_session_id(struct zk *z);
int zk_session_timeout(struct zk *z); /* ms, as the server negotiated it */
const char *zk_connect_string(const struct zk *z);

int zk_create(struct zk *z, const char *path, const void *data, size_t len, int flags);
/* Creates path and its missing ancestors as empty persistent nodes (mkdir -p). */
int zk_create_path(struct zk *z, const char *path);
/* The node's data, malloc'ed with a NUL after it (len bytes without it). */
int zk_get(struct zk *z, const char *path, int watch, char **data, size_t *len, struct zk_stat *st);
/* st (optional): the node's stat after the change (its new version). */
int zk_set(struct zk *z, const char *path, const void *data, size_t len, int version,
           struct zk_stat *st);
int zk_delete(struct zk *z, const char *path, int version);
/* 0 and *st if it exists, -ENOENT if not; a watch is set either way (it
 * fires on creation, deletion or a change). st may be NULL. */
int zk_exists(struct zk *z, const char *path, int watch, struct zk_stat *st);
/* The names of path's children, malloc'ed (free with zk_free_names). */
int zk_children(struct zk *z, const char *path, int watch, char ***names, size_t *n);
void zk_free_names(char **names, size_t n);

/* A transaction (ZooKeeper's multi): all the ops or none. */
enum zk_op_type { ZK_OP_CREATE, ZK_OP_SET, ZK_OP_DELETE, ZK_OP_CHECK };
struct zk_op {
    enum zk_op_type type;
    const char *path;
    const void *data; /* CREATE, SET */
    size_t len;
    int flags;   /* CREATE: ZK_EPHEMERAL */
    int version; /* SET, DELETE, CHECK: expected version or ZK_ANY_VERSION */
};
/* 0, or the negative errno of the op that failed, whose index goes to *failed. */
int zk_multi(struct zk *z, const struct zk_op *ops, size_t n, size_t *failed);

/* The errno of a ZooKeeper error code (the table in zk.c). */
int zk_errno(int zoo_rc);

#endif
