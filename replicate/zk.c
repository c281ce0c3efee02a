/* zk.c - ZooKeeper sessions over libzookeeper-mt (zk.h).
 *
 * The C client runs two threads per handle (I/O and completions) and calls
 * `watcher` on the completion thread for session changes and for watches
 * (every watch here is set through the handle's global watcher, so there is
 * no per-watch context to allocate or leak). The watcher records the
 * session's state under z->lock, wakes zk_open's wait, and passes the event
 * on. Synchronous calls are answered by the I/O thread, so they work from
 * any thread of ours, several at once: each holds z->zh_lock for reading
 * while it uses z->zh, and zk_renew() and zk_close() hold it for writing
 * while they replace or close the handle.
 *
 * The chroot of the connection string is created before the real session
 * starts: a first session without the chroot makes the path (mkdir -p),
 * then the session is opened with it. Both count against the one deadline
 * of zookeeper.connection.timeout.ms.
 *
 * ZooKeeper's result codes become negative errnos:
 *
 *   ZOK                                   0
 *   ZNONODE                               -ENOENT
 *   ZNODEEXISTS                           -EEXIST
 *   ZBADVERSION                           -ESTALE    (someone changed it first)
 *   ZNOTEMPTY                             -ENOTEMPTY
 *   ZNOCHILDRENFOREPHEMERALS, ZBADARGUMENTS -EINVAL
 *   ZCONNECTIONLOSS, ZOPERATIONTIMEOUT,
 *   ZTHROTTLEDOP                          -EAGAIN    (try again: the op may or may not
 *                                                     have been applied)
 *   ZSESSIONEXPIRED, ZINVALIDSTATE,
 *   ZSESSIONMOVED                         -ENOTCONN  (the session is gone: zk_renew)
 *   ZNOAUTH, ZAUTHFAILED                  -EACCES
 *   ZMARSHALLINGERROR                     -ENOMEM
 *   ZCLOSING                              -ESHUTDOWN
 *   anything else                         -EIO
 */
#include "zk.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define THREADED /* the synchronous API of libzookeeper-mt */
#include <zookeeper/zookeeper.h>

#include "cluster_codec.h"
#include "logger.h"

struct zk {
    char *connect; /* as given: servers and chroot */
    char *hosts;   /* servers only */
    char *chroot;  /* NULL: none */
    int session_timeout_ms, connection_timeout_ms;

    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_rwlock_t zh_lock; /* read: a call uses zh; write: zh is replaced or closed */
    zhandle_t *zh;
    enum zk_state state;  /* under lock, from session events */
    zk_event_fn on_event; /* under lock: NULL until zk_open is done */
    void *arg;
};

int zk_errno(int rc)
{
    switch (rc) {
    case ZOK:
        return 0;
    case ZNONODE:
        return -ENOENT;
    case ZNODEEXISTS:
        return -EEXIST;
    case ZBADVERSION:
        return -ESTALE;
    case ZNOTEMPTY:
        return -ENOTEMPTY;
    case ZNOCHILDRENFOREPHEMERALS:
    case ZBADARGUMENTS:
        return -EINVAL;
    case ZCONNECTIONLOSS:
    case ZOPERATIONTIMEOUT:
    case ZTHROTTLEDOP:
        return -EAGAIN;
    case ZSESSIONEXPIRED:
    case ZINVALIDSTATE:
    case ZSESSIONMOVED:
        return -ENOTCONN;
    case ZNOAUTH:
    case ZAUTHFAILED:
        return -EACCES;
    case ZMARSHALLINGERROR:
        return -ENOMEM;
    case ZCLOSING:
        return -ESHUTDOWN;
    default:
        return -EIO;
    }
}

/* One server of the list: host:port or [v6]:port (cluster_parse_hostport). */
static int valid_server(const char *s, size_t n)
{
    char server[CLUSTER_HOST_MAX + 16], host[CLUSTER_HOST_MAX];
    int port;
    if (n >= sizeof(server))
        return 0;
    memcpy(server, s, n);
    server[n] = '\0';
    return cluster_parse_hostport(server, host, &port) == 0;
}

static int valid_chroot(const char *c)
{
    /* Each component: not empty, not "." or "..". */
    for (const char *p = c; *p;) {
        p++; /* the '/' */
        const char *end = strchrnul(p, '/');
        size_t n = (size_t)(end - p);
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return 0;
        p = end;
    }
    return 1;
}

int zk_parse_connect(const char *connect, char **hosts, char **chroot)
{
    const char *slash = strchr(connect, '/');
    size_t hlen = slash ? (size_t)(slash - connect) : strlen(connect);
    *hosts = *chroot = NULL;
    if (hlen == 0)
        return -EINVAL;
    for (const char *p = connect; p < connect + hlen;) {
        const char *comma = memchr(p, ',', (size_t)(connect + hlen - p));
        const char *end = comma ? comma : connect + hlen;
        if (!valid_server(p, (size_t)(end - p)))
            return -EINVAL;
        p = comma ? comma + 1 : end;
        if (comma && p == connect + hlen)
            return -EINVAL; /* a trailing comma */
    }
    if (slash && strcmp(slash, "/") != 0 && !valid_chroot(slash))
        return -EINVAL;
    if (!(*hosts = strndup(connect, hlen)))
        return -ENOMEM;
    if (slash && strcmp(slash, "/") != 0 && !(*chroot = strdup(slash))) {
        free(*hosts);
        *hosts = NULL;
        return -ENOMEM;
    }
    return 0;
}

static void client_log(const char *message)
{
    size_t n = strlen(message);
    while (n && (message[n - 1] == '\n' || message[n - 1] == '\r'))
        n--;
    logger_log(LOG_LEVEL_DEBUG, "zookeeper client: %.*s", (int)n, message);
}

static void watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
    struct zk *z = ctx;
    enum zk_event ev;
    (void)zh;
    if (type == ZOO_SESSION_EVENT) {
        enum zk_state s;
        if (state == ZOO_CONNECTED_STATE || state == ZOO_READONLY_STATE) {
            s = ZK_CONNECTED;
            ev = ZK_EV_CONNECTED;
        } else if (state == ZOO_EXPIRED_SESSION_STATE || state == ZOO_AUTH_FAILED_STATE) {
            s = ZK_EXPIRED;
            ev = ZK_EV_EXPIRED;
        } else {
            s = ZK_CONNECTING;
            ev = ZK_EV_DISCONNECTED;
        }
        if (state == ZOO_AUTH_FAILED_STATE)
            logger_log(LOG_LEVEL_ERROR, "ZooKeeper %s: authentication failed", z->connect);
        path = NULL;
        pthread_mutex_lock(&z->lock);
        if (z->state != ZK_CLOSED)
            z->state = s;
        pthread_cond_broadcast(&z->cond);
        pthread_mutex_unlock(&z->lock);
    } else if (type == ZOO_CREATED_EVENT) {
        ev = ZK_EV_CREATED;
    } else if (type == ZOO_DELETED_EVENT) {
        ev = ZK_EV_DELETED;
    } else if (type == ZOO_CHANGED_EVENT) {
        ev = ZK_EV_CHANGED;
    } else if (type == ZOO_CHILD_EVENT) {
        ev = ZK_EV_CHILD;
    } else {
        return; /* ZOO_NOTWATCHING_EVENT: a watch removed, nothing to do */
    }
    pthread_mutex_lock(&z->lock);
    zk_event_fn fn = z->on_event;
    void *arg = z->arg;
    pthread_mutex_unlock(&z->lock);
    if (fn)
        fn(arg, ev, path);
}

/* A new handle on connect; the session comes later (watcher). The client's
 * threads inherit a mask without the daemon's signals. */
static int start_session(struct zk *z, const char *connect)
{
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGPIPE);
    pthread_mutex_lock(&z->lock);
    z->state = ZK_CONNECTING;
    pthread_mutex_unlock(&z->lock);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    errno = 0;
    zhandle_t *zh =
        zookeeper_init2(connect, watcher, z->session_timeout_ms, NULL, z, 0, client_log);
    int e = errno == ENOMEM ? ENOMEM : EHOSTUNREACH; /* the client resolves the servers here */
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!zh)
        return -e;
    z->zh = zh;
    return 0;
}

static void stop_session(struct zk *z)
{
    if (z->zh)
        zookeeper_close(z->zh);
    z->zh = NULL;
}

/* Waits for ZK_CONNECTED until deadline (CLOCK_MONOTONIC). */
static int wait_connected(struct zk *z, const struct timespec *deadline)
{
    int r = 0;
    pthread_mutex_lock(&z->lock);
    while (z->state != ZK_CONNECTED && r != ETIMEDOUT)
        r = pthread_cond_timedwait(&z->cond, &z->lock, deadline);
    int ok = z->state == ZK_CONNECTED;
    pthread_mutex_unlock(&z->lock);
    return ok ? 0 : -ETIMEDOUT;
}

int zk_open(const struct zk_options *o, struct zk **out)
{
    struct zk *z = calloc(1, sizeof(*z));
    pthread_condattr_t ca;
    struct timespec deadline;
    int r;

    if (!z)
        return -ENOMEM;
    pthread_mutex_init(&z->lock, NULL);
    pthread_rwlock_init(&z->zh_lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&z->cond, &ca);
    pthread_condattr_destroy(&ca);
    z->session_timeout_ms = o->session_timeout_ms;
    z->connection_timeout_ms = o->connection_timeout_ms;
    if (!(z->connect = strdup(o->connect))) {
        r = -ENOMEM;
        goto fail;
    }
    if ((r = zk_parse_connect(o->connect, &z->hosts, &z->chroot)))
        goto fail;
    zoo_set_debug_level(ZOO_LOG_LEVEL_WARN);
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += o->connection_timeout_ms / 1000;
    deadline.tv_nsec += (long)(o->connection_timeout_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    if (z->chroot) {
        if (!(r = start_session(z, z->hosts)) && !(r = wait_connected(z, &deadline)))
            r = zk_create_path(z, z->chroot);
        stop_session(z);
        if (r)
            goto fail;
    }
    if ((r = start_session(z, z->connect)) || (r = wait_connected(z, &deadline)))
        goto fail;
    if (zoo_recv_timeout(z->zh) != z->session_timeout_ms)
        logger_log(LOG_LEVEL_INFO,
                   "ZooKeeper gave a session timeout of %d ms (zookeeper.session.timeout.ms=%d)",
                   zoo_recv_timeout(z->zh), z->session_timeout_ms);
    pthread_mutex_lock(&z->lock);
    z->on_event = o->on_event;
    z->arg = o->arg;
    pthread_mutex_unlock(&z->lock);
    *out = z;
    return 0;
fail:
    zk_close(z);
    return r;
}

void zk_close(struct zk *z)
{
    if (!z)
        return;
    pthread_mutex_lock(&z->lock);
    z->state = ZK_CLOSED;
    z->on_event = NULL;
    pthread_mutex_unlock(&z->lock);
    pthread_rwlock_wrlock(&z->zh_lock);
    stop_session(z); /* joins the client's threads: no watcher runs after this */
    pthread_rwlock_unlock(&z->zh_lock);
    pthread_rwlock_destroy(&z->zh_lock);
    pthread_cond_destroy(&z->cond);
    pthread_mutex_destroy(&z->lock);
    free(z->connect);
    free(z->hosts);
    free(z->chroot);
    free(z);
}

int zk_renew(struct zk *z)
{
    pthread_mutex_lock(&z->lock);
    int expired = z->state == ZK_EXPIRED;
    pthread_mutex_unlock(&z->lock);
    if (!expired)
        return 0;
    pthread_rwlock_wrlock(&z->zh_lock);
    stop_session(z);
    int r = start_session(z, z->connect);
    pthread_rwlock_unlock(&z->zh_lock);
    return r;
}

enum zk_state zk_state(struct zk *z)
{
    pthread_mutex_lock(&z->lock);
    enum zk_state s = z->state;
    pthread_mutex_unlock(&z->lock);
    return s;
}

int64_t zk_session_id(struct zk *z)
{
    pthread_rwlock_rdlock(&z->zh_lock);
    const clientid_t *id = z->zh ? zoo_client_id(z->zh) : NULL;
    int64_t r = id ? id->client_id : 0;
    pthread_rwlock_unlock(&z->zh_lock);
    return r;
}

int zk_session_timeout(struct zk *z)
{
    pthread_rwlock_rdlock(&z->zh_lock);
    int r = z->zh ? zoo_recv_timeout(z->zh) : z->session_timeout_ms;
    pthread_rwlock_unlock(&z->zh_lock);
    return r;
}

/* A call on the current handle, under zh_lock: `rc = zoo_xxx(zh, ...)`. */
#define ZK_CALL(z, rc, call)                                                                       \
    do {                                                                                           \
        pthread_rwlock_rdlock(&(z)->zh_lock);                                                      \
        zhandle_t *zh = (z)->zh;                                                                   \
        (rc) = zh ? (call) : ZINVALIDSTATE;                                                        \
        pthread_rwlock_unlock(&(z)->zh_lock);                                                      \
    } while (0)

const char *zk_connect_string(const struct zk *z)
{
    return z->connect;
}

static void copy_stat(struct zk_stat *st, const struct Stat *s)
{
    if (!st)
        return;
    st->version = s->version;
    st->ephemeral_owner = s->ephemeralOwner;
    st->ctime_ms = s->ctime;
    st->mtime_ms = s->mtime;
    st->num_children = s->numChildren;
}

int zk_create(struct zk *z, const char *path, const void *data, size_t len, int flags)
{
    int rc;
    if (len > INT_MAX)
        return -EINVAL;
    ZK_CALL(z, rc,
            zoo_create(zh, path, data, (int)len, &ZOO_OPEN_ACL_UNSAFE,
                       flags & ZK_EPHEMERAL ? ZOO_EPHEMERAL : ZOO_PERSISTENT, NULL, 0));
    return zk_errno(rc);
}

int zk_create_path(struct zk *z, const char *path)
{
    char *p = strdup(path);
    int r = 0;
    if (!p)
        return -ENOMEM;
    for (char *slash = p; slash && !r;) {
        slash = strchr(slash + 1, '/');
        if (slash)
            *slash = '\0';
        r = zk_create(z, p, "", 0, 0);
        if (r == -EEXIST)
            r = 0;
        if (slash)
            *slash = '/';
    }
    free(p);
    return r;
}

#define ZK_MAX_DATA (16 << 20)

int zk_get(struct zk *z, const char *path, int watch, char **data, size_t *len, struct zk_stat *st)
{
    int cap = 1024;
    for (;;) {
        char *buf = malloc((size_t)cap + 1);
        struct Stat s;
        int n = cap, rc;
        if (!buf)
            return -ENOMEM;
        ZK_CALL(z, rc, zoo_get(zh, path, watch, buf, &n, &s));
        int r = zk_errno(rc);
        if (r) {
            free(buf);
            return r;
        }
        if (s.dataLength > cap && s.dataLength <= ZK_MAX_DATA) {
            free(buf);
            cap = s.dataLength; /* it grew under us: read it again */
            continue;
        }
        if (n < 0)
            n = 0; /* a node with no data */
        buf[n] = '\0';
        *data = buf;
        *len = (size_t)n;
        copy_stat(st, &s);
        return 0;
    }
}

int zk_set(struct zk *z, const char *path, const void *data, size_t len, int version,
           struct zk_stat *st)
{
    struct Stat s;
    int rc;
    if (len > INT_MAX)
        return -EINVAL;
    ZK_CALL(z, rc, zoo_set2(zh, path, data, (int)len, version, &s));
    if (rc == ZOK)
        copy_stat(st, &s);
    return zk_errno(rc);
}

int zk_delete(struct zk *z, const char *path, int version)
{
    int rc;
    ZK_CALL(z, rc, zoo_delete(zh, path, version));
    return zk_errno(rc);
}

int zk_exists(struct zk *z, const char *path, int watch, struct zk_stat *st)
{
    struct Stat s;
    int rc;
    ZK_CALL(z, rc, zoo_exists(zh, path, watch, &s));
    if (rc == ZOK)
        copy_stat(st, &s);
    return zk_errno(rc);
}

void zk_free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int zk_children(struct zk *z, const char *path, int watch, char ***names, size_t *n)
{
    struct String_vector sv = {0, NULL};
    int rc;
    ZK_CALL(z, rc, zoo_get_children(zh, path, watch, &sv));
    int r = zk_errno(rc);
    if (r)
        return r;
    char **out = calloc(sv.count > 0 ? (size_t)sv.count : 1, sizeof(*out));
    if (!out)
        r = -ENOMEM;
    for (int32_t i = 0; !r && i < sv.count; i++)
        if (!(out[i] = strdup(sv.data[i])))
            r = -ENOMEM;
    if (r) {
        if (out)
            zk_free_names(out, (size_t)sv.count);
    } else {
        *names = out;
        *n = (size_t)sv.count;
    }
    deallocate_String_vector(&sv);
    return r;
}

int zk_multi(struct zk *z, const struct zk_op *ops, size_t n, size_t *failed)
{
    if (n == 0 || n > 64)
        return -EINVAL;
    zoo_op_t zops[64];
    zoo_op_result_t results[64];
    struct Stat stats[64];
    char created[64][256]; /* the created path comes back here; we need none of it */
    for (size_t i = 0; i < n; i++) {
        const struct zk_op *o = &ops[i];
        if (o->len > INT_MAX)
            return -EINVAL;
        switch (o->type) {
        case ZK_OP_CREATE:
            zoo_create_op_init(&zops[i], o->path, o->data, (int)o->len, &ZOO_OPEN_ACL_UNSAFE,
                               o->flags & ZK_EPHEMERAL ? ZOO_EPHEMERAL : ZOO_PERSISTENT, created[i],
                               sizeof(created[i]));
            break;
        case ZK_OP_SET:
            zoo_set_op_init(&zops[i], o->path, o->data, (int)o->len, o->version, &stats[i]);
            break;
        case ZK_OP_DELETE:
            zoo_delete_op_init(&zops[i], o->path, o->version);
            break;
        case ZK_OP_CHECK:
            zoo_check_op_init(&zops[i], o->path, o->version);
            break;
        default:
            return -EINVAL;
        }
    }
    memset(results, 0, sizeof(results)); /* a lost connection fills in none */
    int rc;
    ZK_CALL(z, rc, zoo_multi(zh, (int)n, zops, results));
    if (rc == ZOK)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (results[i].err != ZOK && results[i].err != ZRUNTIMEINCONSISTENCY) {
            if (failed)
                *failed = i;
            return zk_errno(results[i].err);
        }
    if (failed)
        *failed = n;
    return zk_errno(rc);
}
