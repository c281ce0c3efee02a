/* main.c - topicfs DATA_DIR MOUNTPOINT [-f] [-o opt,...]
 *
 * Parses topicfs's own options (partitions=N; uid=, gid=, umask= for the
 * owner and modes every node shows; zk=, broker=, listen=,
 * cluster.secret.file=, default.replication.factor=, the
 * zookeeper.*.timeout.ms and replica.*.ms options,
 * unclean.leader.election.enable=, auto.leader.rebalance.enable= and
 * leader.imbalance.check.interval.seconds= for cluster mode), hands the rest to libfuse
 * with default_permissions always added (the kernel enforces the modes),
 * checks every value and both directories before anything is created or
 * mounted, so a bad argument is one line on stderr and exit status 1, then
 * runs the multi-threaded session loop. On SIGTERM, SIGINT or `fusermount3
 * -u` the loop ends and every partition is synced.
 *
 * Cluster mode (zk=): the broker joins before the data dir is opened, so a
 * refusal (ZooKeeper unreachable, a live broker with the same id, a data dir
 * of another cluster or broker) is one line and exit status 1 with nothing
 * mounted or written; the data dir is claimed (meta.properties) once it is
 * locked. In the background the ZooKeeper session must begin after the fork
 * (cluster.h): the parent only checks, the daemon joins. The cluster then
 * makes, deletes and configures this data dir's topics through fs/
 * (struct cluster_local), and mkdir, rmdir and .config go through it.
 * Replication (replica.h) starts with the cluster, before the inter-broker
 * server serves (its handlers); it stops before the server (its long polls
 * end), and is freed after the store (whose listener it is).
 * Without zk= there is no ZooKeeper and no socket. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hidden.h"
#include "cleaner.h"
#include "clock.h"
#include "cluster.h"
#include "coordinator.h"
#include "logger.h"
#include "ops.h"
#include "produce.h"
#include "remote.h"
#include "replica.h"
#include "server.h"
#include "status.h"
#include "store.h"
#include "zk.h"

/* How long the kernel keeps topic names and their attributes in cluster
 * mode, where other brokers make and delete topics (fs_context). */
#define CLUSTER_TOPIC_TIMEOUT 1.0

struct options {
    char *data_dir;
    unsigned partitions;
    char *zk;
    char *listen;
    char *broker;
    char *zk_session_timeout, *zk_connection_timeout; /* checked by parse_cluster */
    char *secret_file;
    char *default_rf, *offsets_rf;                  /* checked by parse_cluster */
    char *delivery_timeout;                         /* checked by parse_cluster */
    char *lag_time_max, *fetch_wait_max;            /* replica.*.ms, checked by parse_cluster */
    char *unclean, *rebalance, *imbalance_interval; /* checked by parse_cluster */
    long long check_interval_ms;
    char *uid, *gid, *umask; /* checked by parse_number */
    char *min_insync;        /* min.insync.replicas: of new topics, checked by parse_number */
    int show_help;
};

#define OPT(t, p)                                                                                  \
    {                                                                                              \
        t, offsetof(struct options, p), 1                                                          \
    }
static const struct fuse_opt option_spec[] = {
    OPT("partitions=%u", partitions),
    OPT("zk=%s", zk),
    OPT("listen=%s", listen),
    OPT("broker=%s", broker),
    OPT("cluster.secret.file=%s", secret_file),
    OPT("default.replication.factor=%s", default_rf),
    OPT("offsets.topic.replication.factor=%s", offsets_rf),
    OPT("zookeeper.session.timeout.ms=%s", zk_session_timeout),
    OPT("zookeeper.connection.timeout.ms=%s", zk_connection_timeout),
    OPT("delivery.timeout.ms=%s", delivery_timeout),
    OPT("replica.lag.time.max.ms=%s", lag_time_max),
    OPT("replica.fetch.wait.max.ms=%s", fetch_wait_max),
    OPT("retention.check.interval.ms=%lld", check_interval_ms),
    OPT("unclean.leader.election.enable=%s", unclean),
    OPT("auto.leader.rebalance.enable=%s", rebalance),
    OPT("leader.imbalance.check.interval.seconds=%s", imbalance_interval),
    OPT("uid=%s", uid),
    OPT("gid=%s", gid),
    OPT("umask=%s", umask),
    OPT("min.insync.replicas=%s", min_insync),
    OPT("-h", show_help),
    OPT("--help", show_help),
    FUSE_OPT_END,
};

static int option_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
    struct options *o = data;
    (void)outargs;
    if (key == FUSE_OPT_KEY_NONOPT && !o->data_dir) {
        o->data_dir = strdup(arg);
        return 0; /* consumed: the next non-option is the mountpoint */
    }
    return 1;
}

/* Option `name`=s as a number in base (digits only, at most max): 0, or -1
 * after one line on stderr. */
static int parse_number(const char *name, const char *s, int base, unsigned long max,
                        const char *what, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = *s >= '0' && *s <= '9' ? strtoul(s, &end, base) : 0;
    if (*s < '0' || *s > '9' || errno || *end || v > max) {
        fprintf(stderr, "topicfs: %s=%s: must be %s\n", name, s, what);
        return -1;
    }
    *out = v;
    return 0;
}

/* The owner, group and umask of every node: the mounting user's unless
 * uid=, gid=, umask= say otherwise. 0 or -1 (reported). */
static int parse_ownership(const struct options *o, struct fs_context *fc)
{
    unsigned long v;
    fc->uid = getuid();
    fc->gid = getgid();
    fc->umask = 022;
    if (o->uid) {
        if (parse_number("uid", o->uid, 10, (uid_t)-2, "a numeric user id", &v))
            return -1;
        fc->uid = (uid_t)v;
    }
    if (o->gid) {
        if (parse_number("gid", o->gid, 10, (gid_t)-2, "a numeric group id", &v))
            return -1;
        fc->gid = (gid_t)v;
    }
    if (o->umask) {
        if (parse_number("umask", o->umask, 8, 0777, "an octal mask from 000 to 777", &v))
            return -1;
        fc->umask = (mode_t)v;
    }
    return 0;
}

/* A time option in ms, 1 to INT32_MAX: 0, or -1 after one line on stderr. */
static int parse_ms(const char *name, const char *s, int *out)
{
    const char *what = "a number of milliseconds from 1 to 2147483647";
    unsigned long v;
    if (parse_number(name, s, 10, INT32_MAX, what, &v))
        return -1;
    if (v == 0) {
        fprintf(stderr, "topicfs: %s=%s: must be %s\n", name, s, what);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* A true/false option: 0, or -1 after one line on stderr. */
static int parse_bool(const char *name, const char *s, int *out)
{
    if (strcmp(s, "true") && strcmp(s, "false")) {
        fprintf(stderr, "topicfs: %s=%s: must be true or false\n", name, s);
        return -1;
    }
    *out = s[0] == 't';
    return 0;
}

/* A number of replicas (1 to CLUSTER_REPLICAS_MAX) into *out: 0 or -1
 * (reported). */
static int parse_replicas(const char *name, const char *text, int *out)
{
    char what[64];
    unsigned long v;
    snprintf(what, sizeof(what), "a number of replicas from 1 to %d", CLUSTER_REPLICAS_MAX);
    if (parse_number(name, text, 10, CLUSTER_REPLICAS_MAX, what, &v))
        return -1;
    if (v == 0) {
        fprintf(stderr, "topicfs: %s=%s: must be %s\n", name, text, what);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* The cluster options into co (host: its buffer); 0 or -1 (reported).
 * Without zk=, none of them may be given. */
static int parse_cluster(const struct options *o, struct cluster_options *co,
                         char host[CLUSTER_HOST_MAX], int *delivery_timeout_ms,
                         struct replica_options *ro, int *offsets_rf)
{
    unsigned long v;
    if (!o->zk) {
        if (o->broker || o->listen || o->zk_session_timeout || o->zk_connection_timeout ||
            o->secret_file || o->default_rf || o->offsets_rf || o->delivery_timeout ||
            o->lag_time_max || o->fetch_wait_max || o->unclean || o->rebalance ||
            o->imbalance_interval) {
            fprintf(stderr, "topicfs: broker=, listen=, cluster.secret.file=, "
                            "default.replication.factor=, offsets.topic.replication.factor=, "
                            "delivery.timeout.ms=, "
                            "zookeeper.*.timeout.ms, replica.*.ms, "
                            "unclean.leader.election.enable=, auto.leader.rebalance.enable= and "
                            "leader.imbalance.check.interval.seconds= need zk= (cluster mode)\n");
            return -1;
        }
        return 0;
    }
    char *hosts, *chroot;
    if (zk_parse_connect(o->zk, &hosts, &chroot)) {
        fprintf(stderr, "topicfs: zk=%s: must be HOST:PORT[,HOST:PORT...][/CHROOT]\n", o->zk);
        return -1;
    }
    free(hosts);
    free(chroot);
    if (!o->broker || !o->listen) {
        fprintf(stderr, "topicfs: zk= needs broker=ID and listen=HOST:PORT\n");
        return -1;
    }
    if (parse_number("broker", o->broker, 10, INT32_MAX, "a broker id from 0 to 2147483647", &v))
        return -1;
    co->broker_id = (int)v;
    if (cluster_parse_hostport(o->listen, host, &co->port)) {
        fprintf(stderr, "topicfs: listen=%s: must be HOST:PORT or [IPV6]:PORT, port 1 to 65535\n",
                o->listen);
        return -1;
    }
    co->host = host;
    co->zk = o->zk;
    co->session_timeout_ms = co->connection_timeout_ms = 18000; /* Kafka's defaults */
    co->default_replication_factor = 1;
    if ((o->default_rf && parse_replicas("default.replication.factor", o->default_rf,
                                         &co->default_replication_factor)) ||
        (o->offsets_rf &&
         parse_replicas("offsets.topic.replication.factor", o->offsets_rf, offsets_rf)))
        return -1;
    co->auto_leader_rebalance = 1;
    co->leader_imbalance_check_interval_ms = CLUSTER_LEADER_IMBALANCE_CHECK_INTERVAL_MS_DEFAULT;
    if ((o->unclean &&
         parse_bool("unclean.leader.election.enable", o->unclean, &co->unclean_leader_election)) ||
        (o->rebalance &&
         parse_bool("auto.leader.rebalance.enable", o->rebalance, &co->auto_leader_rebalance)))
        return -1;
    if (o->imbalance_interval) {
        if (parse_number("leader.imbalance.check.interval.seconds", o->imbalance_interval, 10,
                         INT32_MAX / 1000, "a number of seconds from 1 to 2147483", &v))
            return -1;
        if (v == 0) {
            fprintf(stderr,
                    "topicfs: leader.imbalance.check.interval.seconds=%s: must be a number of "
                    "seconds from 1 to 2147483\n",
                    o->imbalance_interval);
            return -1;
        }
        co->leader_imbalance_check_interval_ms = (int)v * 1000;
    }
    ro->broker_id = co->broker_id;
    ro->lag_time_max_ms = REPLICA_LAG_TIME_MAX_MS_DEFAULT;
    ro->fetch_wait_max_ms = REPLICA_FETCH_WAIT_MAX_MS_DEFAULT;
    if ((o->zk_session_timeout && parse_ms("zookeeper.session.timeout.ms", o->zk_session_timeout,
                                           &co->session_timeout_ms)) ||
        (o->zk_connection_timeout &&
         parse_ms("zookeeper.connection.timeout.ms", o->zk_connection_timeout,
                  &co->connection_timeout_ms)) ||
        (o->delivery_timeout &&
         parse_ms("delivery.timeout.ms", o->delivery_timeout, delivery_timeout_ms)) ||
        (o->lag_time_max &&
         parse_ms("replica.lag.time.max.ms", o->lag_time_max, &ro->lag_time_max_ms)) ||
        (o->fetch_wait_max &&
         parse_ms("replica.fetch.wait.max.ms", o->fetch_wait_max, &ro->fetch_wait_max_ms)))
        return -1;
    return 0;
}

/* Loads cluster.secret.file into *secret (kept for the forwarder's and the
 * replica fetchers' connections; the caller wipes it) and binds listen=
 * (before the mount, so that a refusal is one line and an exit status): 0 or
 * -1 (reported). */
static int open_server(const struct options *o, int broker_id, struct auth_secret *secret,
                       struct server **out)
{
    int r;
    if (o->secret_file && auth_load_secret(o->secret_file, secret))
        return -1; /* its line says why (on stderr: the daemon has not forked yet) */
    struct server_options so = {
        .listen = o->listen, .secret = o->secret_file ? secret : NULL, .broker_id = broker_id};
    r = server_create(&so, out);
    if (r) {
        fprintf(stderr, "topicfs: listen=%s: %s\n", o->listen,
                r == -EPERM ? "not a loopback address, and without cluster.secret.file peers "
                              "cannot be authenticated"
                            : strerror(-r));
        return -1;
    }
    return 0;
}

static void usage(const char *prog)
{
    printf("usage: %s DATA_DIR MOUNTPOINT [-f] [-o opt[,opt...]]\n\n"
           "topicfs options:\n"
           "    -o partitions=N    partitions of a new topic (default 1)\n"
           "    -o min.insync.replicas=N\n"
           "                       min.insync.replicas of a new topic (default 1)\n"
           "    -o retention.check.interval.ms=MS\n"
           "                       how often retention and compaction run (default 300000)\n"
           "    -o uid=N,gid=N     owner and group of every file (default: the mounting user)\n"
           "    -o umask=NNN       octal bits taken from the modes 0666 (files), 0444\n"
           "                       (read-only files) and 0777 (directories); default 022.\n"
           "                       The kernel checks them (default_permissions is always on)\n"
           "    -o zk=HOST:PORT[,HOST:PORT...][/CHROOT]\n"
           "                       cluster mode: join the cluster of this ZooKeeper (the\n"
           "                       chroot is created if missing)\n"
           "    -o broker=ID       cluster mode: this broker's id (0 to 2147483647)\n"
           "    -o listen=HOST:PORT\n"
           "                       cluster mode: where other brokers reach this one\n"
           "    -o default.replication.factor=N\n"
           "                       cluster mode: replicas of a new topic (default 1)\n"
           "    -o offsets.topic.replication.factor=N\n"
           "                       cluster mode: replicas of __consumer_offsets, made when the\n"
           "                       first group is (default min(3, live brokers))\n"
           "    -o cluster.secret.file=PATH\n"
           "                       cluster mode: the secret brokers prove to each other\n"
           "                       (a file only its owner can read, 16 to 4096 bytes);\n"
           "                       without it, brokers talk over loopback only\n"
           "    -o zookeeper.session.timeout.ms=MS\n"
           "                       ZooKeeper session timeout (default 18000): a dead\n"
           "                       broker leaves the cluster after it\n"
           "    -o zookeeper.connection.timeout.ms=MS\n"
           "                       how long to wait for ZooKeeper at start (default 18000)\n"
           "    -o delivery.timeout.ms=MS\n"
           "                       cluster mode: how long a write at a broker that does not\n"
           "                       lead the partition is retried to reach its leader before\n"
           "                       it fails with EIO (default 120000)\n"
           "    -o replica.lag.time.max.ms=MS\n"
           "                       cluster mode: a follower this far behind the leader's\n"
           "                       log end leaves the ISR (default 30000)\n"
           "    -o replica.fetch.wait.max.ms=MS\n"
           "                       cluster mode: how long a follower's fetch waits at the\n"
           "                       leader for new records (default 500)\n"
           "    -o unclean.leader.election.enable=true|false\n"
           "                       cluster mode: the value topics made at this mount get:\n"
           "                       with no live in-sync replica, may one out of sync lead\n"
           "                       (and records be lost)? (default false)\n"
           "    -o auto.leader.rebalance.enable=true|false\n"
           "                       cluster mode: the controller gives leadership back to\n"
           "                       each partition's preferred replica (default true)\n"
           "    -o leader.imbalance.check.interval.seconds=N\n"
           "                       cluster mode: how often it looks (default 300)\n"
           "    -f                 stay in the foreground, log to stderr\n"
           "    -d                 debug: log every FUSE request\n\n",
           prog);
    fuse_cmdline_help();
    fuse_lowlevel_help();
}

int main(int argc, char *argv[])
{
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    struct options opt = {.partitions = 1, .check_interval_ms = 300000};
    struct cleaner *cleaner = NULL;
    struct fuse_cmdline_opts cli;
    struct store *store = NULL;
    struct group_registry *groups = NULL;
    struct fuse_session *se = NULL;
    struct fs_context fc = {
        .entry_timeout = 3600.0, .topic_timeout = 3600.0, .started_ms = clock_now_ms()};
    struct cluster_options co = {0};
    struct cluster *cluster = NULL;
    struct server *server = NULL;
    struct auth_secret secret = {0};
    int delivery_timeout_ms = DELIVERY_TIMEOUT_MS_DEFAULT;
    int offsets_rf = 0; /* offsets.topic.replication.factor: min(3, live brokers) */
    struct coord *coord = NULL;
    struct produce_leader *leader = NULL;
    struct forwarder *forward = NULL;
    struct replica_options ro = {0};
    struct replica_manager *replicas = NULL;
    struct remote_reader *remote = NULL;
    char listen_host[CLUSTER_HOST_MAX], why[1024];
    int ret = 1;

    memset(&cli, 0, sizeof(cli));
    if (fuse_opt_parse(&args, &opt, option_spec, option_proc) == -1)
        goto out;
    if (opt.show_help) {
        usage(argv[0]);
        ret = 0;
        goto out;
    }
    if (fuse_parse_cmdline(&args, &cli) != 0)
        goto out;
    if (cli.show_version) {
        printf("topicfs 0.1.0\n");
        fuse_lowlevel_version();
        ret = 0;
        goto out;
    }
    if (!opt.data_dir || !cli.mountpoint) {
        fprintf(stderr, "topicfs: usage: topicfs DATA_DIR MOUNTPOINT [-f] [-o opt,...]\n");
        goto out;
    }
    if (parse_cluster(&opt, &co, listen_host, &delivery_timeout_ms, &ro, &offsets_rf))
        goto out;
    if (opt.check_interval_ms < 1) {
        fprintf(stderr, "topicfs: retention.check.interval.ms must be positive\n");
        goto out;
    }
    if (opt.partitions < 1 || opt.partitions > 65536) {
        fprintf(stderr, "topicfs: partitions=%u: must be between 1 and 65536\n", opt.partitions);
        goto out;
    }
    if (parse_ownership(&opt, &fc))
        goto out;
    unsigned long min_insync = 1;
    if (opt.min_insync && (parse_number("min.insync.replicas", opt.min_insync, 10, 1000,
                                        "between 1 and 1000", &min_insync) ||
                           min_insync < 1)) {
        if (min_insync < 1)
            fprintf(stderr, "topicfs: min.insync.replicas=%s: must be between 1 and 1000\n",
                    opt.min_insync);
        goto out;
    }
    /* Modes mean something only if the kernel checks them. */
    if (fuse_opt_add_arg(&args, "-odefault_permissions") == -1)
        goto out;
    struct stat st;
    if (stat(cli.mountpoint, &st) < 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "topicfs: mountpoint %s: %s\n", cli.mountpoint,
                errno && !S_ISDIR(st.st_mode) ? strerror(errno) : "not a directory");
        goto out;
    }
    if (opt.data_dir[0] != '/') {
        /* The daemon leaves the working directory (fuse_daemonize). */
        char *cwd = get_current_dir_name(), *abs = NULL;
        if (!cwd || asprintf(&abs, "%s/%s", cwd, opt.data_dir) < 0) {
            fprintf(stderr, "topicfs: data dir %s: %s\n", opt.data_dir, strerror(errno));
            free(cwd);
            goto out;
        }
        free(cwd);
        free(opt.data_dir);
        opt.data_dir = abs;
    }
    enum log_level level = cli.debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO;
    /* stderr until the daemon forks: a refusal at start is seen where it was
     * typed; syslog after. */
    logger_init("topicfs", 0, level);
    /* The session first: it refuses unknown options before the data dir is
     * created. The store is filled in before the session runs. */
    se = fuse_session_new(&args, &topicfs_ops, sizeof(topicfs_ops), &fc);
    if (!se)
        goto out;
    co.data_dir = opt.data_dir;
    if (opt.zk && open_server(&opt, co.broker_id, &secret, &server))
        goto out;
    ro.secret = opt.secret_file ? &secret : NULL;
    if (opt.zk &&
        cluster_join(&co, cli.foreground ? 0 : CLUSTER_CHECK_ONLY, &cluster, why, sizeof(why))) {
        fprintf(stderr, "topicfs: %s\n", why);
        goto out;
    }
    int r = store_open(opt.data_dir, opt.partitions, &store);
    if (r) {
        fprintf(stderr, "topicfs: data dir %s: %s\n", opt.data_dir,
                r == -EBUSY ? "in use by another topicfs" : strerror(-r));
        goto out;
    }
    store->default_min_insync = (int64_t)min_insync;
    if (cluster && cli.foreground && cluster_claim_data_dir(cluster, why, sizeof(why))) {
        fprintf(stderr, "topicfs: %s\n", why);
        goto out;
    }
    r = group_registry_open(store, opt.zk != NULL, &groups);
    if (r) {
        fprintf(stderr, "topicfs: data dir %s: consumer offsets: %s\n", opt.data_dir, strerror(-r));
        goto out;
    }
    fc.store = store;
    fc.groups = groups;
    if (!opt.zk) {
        struct coord_options cdo = {.store = store, .groups = groups};
        if ((r = coord_open(&cdo, &coord))) {
            fprintf(stderr, "topicfs: consumer groups: %s\n", strerror(-r));
            goto out;
        }
        fc.coord = coord;
    }
    if (fuse_set_signal_handlers(se) != 0)
        goto out;
    if (fuse_session_mount(se, cli.mountpoint) != 0) {
        fprintf(stderr, "topicfs: cannot mount on %s\n", cli.mountpoint);
        goto out_signals;
    }
    if (!cli.foreground) {
        cluster_close(cluster); /* checked only: the session starts after the fork */
        cluster = NULL;
    }
    fuse_daemonize(cli.foreground);
    if (!cli.foreground)
        logger_init("topicfs", 1, level);
    fc.se = se;
    if (opt.zk && !cluster &&
        (cluster_join(&co, 0, &cluster, why, sizeof(why)) ||
         cluster_claim_data_dir(cluster, why, sizeof(why)))) {
        logger_log(LOG_LEVEL_ERROR, "%s", why);
        goto out_unmount;
    }
    if (cluster) {
        /* The cluster makes, deletes and configures topics here through fs/. */
        struct cluster_local local = {store, fs_topic_create, fs_topic_remove, fs_topic_configure,
                                      &fc};
        fc.topic_timeout = CLUSTER_TOPIC_TIMEOUT;
        fc.cluster = cluster;
        r = cluster_start(cluster, &local);
        if (r) {
            logger_log(LOG_LEVEL_ERROR, "cannot start the cluster thread: %s", strerror(-r));
            goto out_unmount;
        }
        status_set_cluster(cluster);
        if ((r = produce_leader_open(server, store, cluster, co.broker_id, &leader)) == 0) {
            struct forwarder_options fo = {cluster, leader, opt.secret_file ? &secret : NULL,
                                           co.broker_id, delivery_timeout_ms};
            r = forwarder_open(&fo, &forward);
        }
        if (r) {
            logger_log(LOG_LEVEL_ERROR, "cannot start forwarding: %s", strerror(-r));
            goto out_unmount;
        }
        fc.forward = forward;
        /* Reads of partitions held elsewhere fetch from their leaders. */
        struct remote_options rmo = {co.broker_id, opt.secret_file ? &secret : NULL,
                                     ro.fetch_wait_max_ms};
        if ((r = remote_open(&rmo, cluster, &remote))) {
            logger_log(LOG_LEVEL_ERROR, "cannot start remote reads: %s", strerror(-r));
            goto out_unmount;
        }
        fc.remote = remote;
        /* Replication: its handlers before the server serves. */
        ro.producers = produce_leader_table(leader);
        if ((r = replica_start(&ro, cluster, store, server, &replicas))) {
            logger_log(LOG_LEVEL_ERROR, "cannot start replication: %s", strerror(-r));
            goto out_unmount;
        }
        /* Consumer groups: the coordinator's handler before the server serves. */
        struct coord_options cdo = {store,        groups,
                                    cluster,      server,
                                    remote,       opt.secret_file ? &secret : NULL,
                                    co.broker_id, co.session_timeout_ms,
                                    offsets_rf};
        if ((r = coord_open(&cdo, &coord))) {
            logger_log(LOG_LEVEL_ERROR, "cannot start the group coordinator: %s", strerror(-r));
            goto out_unmount;
        }
        fc.coord = coord;
        if ((r = server_start(server))) {
            logger_log(LOG_LEVEL_ERROR, "cannot start the inter-broker server: %s", strerror(-r));
            goto out_unmount;
        }
    }
    r = cleaner_start(store, opt.check_interval_ms, fs_partition_changed, &fc, &cleaner);
    if (r) {
        logger_log(LOG_LEVEL_ERROR, "cannot start the cleaner: %s", strerror(-r));
        goto out_unmount;
    }
    /* Users' topics: __consumer_offsets is internal, as in .cluster and .metrics. */
    size_t ntopics = store_count(store);
    struct topic *internal = store_find(store, GROUP_OFFSETS_TOPIC);
    if (internal) {
        ntopics--;
        topic_put(internal);
    }
    logger_log(LOG_LEVEL_INFO, "serving %s on %s (%zu topic%s)", opt.data_dir, cli.mountpoint,
               ntopics, ntopics == 1 ? "" : "s");
    if (cli.singlethread) {
        ret = fuse_session_loop(se);
    } else {
        struct fuse_loop_config lc = {
            .clone_fd = cli.clone_fd,
            .max_idle_threads = cli.max_idle_threads > 1000 ? 10 : cli.max_idle_threads,
        };
        ret = fuse_session_loop_mt(se, &lc);
    }
    /* libfuse's loop answers the number of the signal that ended it
     * (SIGTERM, SIGINT, SIGHUP): a clean stop, as an unmount is; a negative
     * errno is a failure. */
    if (ret > 0)
        ret = 0;
    /* Leave the cluster first: the registration vanishes at once. Long
     * polls end within replica.fetch.wait.max.ms. */
    coord_stop(coord);
    fc.remote = NULL;
    remote_close(remote);
    remote = NULL;
    replica_stop(replicas);
    server_stop(server);
    server = NULL;
    fc.forward = NULL;
    forwarder_close(forward);
    forward = NULL;
    produce_leader_close(leader);
    leader = NULL;
    status_set_cluster(NULL);
    cluster_close(cluster);
    cluster = NULL;
    fc.cluster = NULL;
    cleaner_stop(cleaner);
out_unmount:
    fuse_session_unmount(se);
    logger_log(LOG_LEVEL_INFO, "unmounted %s", cli.mountpoint);
out_signals:
    fuse_remove_signal_handlers(se);
out:
    coord_stop(coord);
    fc.remote = NULL;
    remote_close(remote);
    replica_stop(replicas);
    server_stop(server);
    fc.forward = NULL;
    forwarder_close(forward);
    produce_leader_close(leader);
    auth_secret_wipe(&secret);
    status_set_cluster(NULL);
    cluster_close(cluster);
    if (se)
        fuse_session_destroy(se);
    fc.coord = NULL;
    coord_free(coord);
    group_registry_close(groups);
    store_close(store);
    replica_free(replicas); /* the store's listener may call it until store_close */
    if (opt.secret_file)
        auth_secret_wipe(&secret);
    hidden_clear();
    free(cli.mountpoint);
    free(opt.data_dir);
    free(opt.zk);
    free(opt.listen);
    free(opt.broker);
    free(opt.zk_session_timeout);
    free(opt.offsets_rf);
    free(opt.zk_connection_timeout);
    free(opt.secret_file);
    free(opt.default_rf);
    free(opt.min_insync);
    free(opt.delivery_timeout);
    free(opt.unclean);
    free(opt.rebalance);
    free(opt.imbalance_interval);
    free(opt.lag_time_max);
    free(opt.fetch_wait_max);
    free(opt.uid);
    free(opt.gid);
    free(opt.umask);
    fuse_opt_free_args(&args);
    return ret ? 1 : 0;
}
