/* coordinator.h - consumer groups across the cluster: the group
 * coordinator, and every mount's way to it.
 *
 * One broker coordinates every group: the leader of partition 0 of the
 * replicated topic __consumer_offsets (Kafka: the leader of the group's
 * partition of it; topicfs keeps one partition). It runs core's groups
 * (group.h) for the members of every mount: assignment, member streams,
 * commits. Its registry is active (writes the log, with acks=all); every
 * other broker's registry is a mirror that replays its replica of the log,
 * so that every mount lists the groups and reads their committed offsets
 * (cursor files, .metrics) without asking anyone.
 *
 * What changes a group goes to the coordinator, as a struct group_request
 * (group_proto.h): mkdir and rmdir of a group, cursor writes, .info (it
 * knows the owners), and every member operation (join when a member file is
 * opened, read, fsync, leave when it is released). A request made at the
 * coordinator's own mount is served by the same function as one that came
 * over the wire (coord_serve): one code path; on one node (no cluster)
 * this broker coordinates every group and nothing goes over a socket.
 * Requests travel over the inter-broker protocol (FRAME_GROUP) with its
 * framing, checksums and peer authentication.
 *
 * Members of other mounts. A member is named by the id the coordinator
 * gave it at JOIN; its broker reads through it (READ at the member's file
 * position, exactly as a local read: the window and the acknowledgement
 * rules are core's) and keeps a long poll (WAIT) at the coordinator that
 * answers when the member may find something new (new records, a new
 * assignment): the member's broker then wakes its parked read, as core
 * wakes a local one. These requests are also the member's heartbeats:
 * a member not heard from within the session timeout
 * (zookeeper.session.timeout.ms) leaves the group, and so do the members
 * of a broker that is no longer registered in ZooKeeper (its session
 * expired: killed, or cut off); a JOIN from such a broker is refused with
 * EIO, so its readers get EIO, never a partition another member also has.
 * A JOIN names the broker's incarnation (random per run): members of its
 * earlier runs leave at once.
 *
 * Coordinator changes. The role thread looks at the leader of
 * __consumer_offsets p0 every COORD_TICK_MS. When this broker becomes it
 * (a new leader epoch), it waits until its replica's high watermark has
 * reached its log end (everything it has is committed), replays the whole
 * log (group_registry_reload(r, 1)) and serves; until then requests get
 * EAGAIN. When it stops leading, every member it served leaves (their
 * unacknowledged records go again: at-least-once) and its registry becomes
 * a mirror again. A member's broker, told EREMOTE/EAGAIN or cut off, looks
 * the coordinator up again and retries; told its member is unknown
 * (EBADR: the coordinator changed, or it expired), it joins again, and
 * reading goes on at the same file position: core starts a member that
 * joins at a position past its stream's start afresh from the committed
 * offsets. A member operation that finds no coordinator for
 * COORD_RETRY_MS gives EIO.
 *
 * __consumer_offsets is made in the cluster the first time a group is
 * needed (mkdir of a group, or a member), with offsets.topic.replication.
 * factor replicas (default min(3, live brokers)); fewer live brokers than
 * asked: EAGAIN until there are.
 *
 * Locking: c->lock guards the member table and the role; it is never held
 * while calling into core's groups (which take their own locks and call the
 * wake callbacks, which take c->lock). */
#ifndef TOPICFS_COORDINATOR_H
#define TOPICFS_COORDINATOR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "auth.h"
#include "group.h"
#include "store.h"

struct cluster;
struct server;
struct remote_reader;

#define COORD_TICK_MS 100
#define COORD_WAIT_MS 1000 /* a member's long poll at the coordinator */

struct coord_options {
    struct store *store;
    struct group_registry *groups;
    /* Cluster mode (NULL cluster: one node, which coordinates every group) */
    struct cluster *cluster;
    struct server *server; /* FRAME_GROUP is served there (before server_start) */
    struct remote_reader *remote;
    const struct auth_secret *secret; /* copied; NULL: insecure loopback mode */
    int broker_id;
    int session_timeout_ms; /* zookeeper.session.timeout.ms */
    int offsets_topic_rf;   /* offsets.topic.replication.factor, 0: min(3, live brokers) */
};

struct coord;
struct coord_member;

int coord_open(const struct coord_options *o, struct coord **out);
/* Stops the role thread, and the members it serves leave: before
 * server_stop and cluster_close. */
void coord_stop(struct coord *c);
/* After server_stop (no handler runs). NULL is fine. */
void coord_free(struct coord *c);

/* The broker coordinating groups now (-1: none known; one node: -1 too, as
 * it has no broker id). */
int coord_coordinator(struct coord *c);
/* A mirror replays what its log gained (cheap when nothing did): before a
 * mount lists groups or reads cursors. */
void coord_refresh(struct coord *c);

/* mkdir, rmdir, a cursor write: done by the coordinator, and seen by this
 * mount's registry when they return. group.h's errors, and -EAGAIN (no
 * coordinator now), -EIO (none within COORD_RETRY_MS). */
int coord_group_create(struct coord *c, struct topic *t, const char *name);
int coord_group_delete(struct coord *c, struct topic *t, const char *name);
int coord_cursor_set(struct coord *c, struct group *g, uint32_t partition, const char *spec,
                     int64_t time_ms);
/* The group's .info text as the coordinator has it (owners included),
 * malloc'ed (*len bytes), or this mount's own view when it cannot be
 * asked; NULL when out of memory. */
char *coord_group_info(struct coord *c, struct group *g, size_t *len);

/* A member (an open follow or drain file of group g at this mount): wake
 * is called as group_join's is. */
int coord_join(struct coord *c, struct group *g, pid_t pid, int follow, void (*wake)(void *arg),
               void *wake_arg, struct coord_member **out);
/* As group_member_read and group_member_sync; -EIO when no coordinator
 * could be reached within COORD_RETRY_MS (or it refused this broker). */
ssize_t coord_member_read(struct coord_member *m, uint64_t pos, void *buf, size_t len);
int coord_member_sync(struct coord_member *m);
void coord_leave(struct coord_member *m);

/* For tests: members the coordinator serves now. */
size_t coord_member_count(struct coord *c);

/* The role's state machine (the role thread's decision each tick, apart
 * so that it can be tested):
 *   NONE     it does not lead __consumer_offsets p0: its registry mirrors;
 *   LOADING  it leads in term `epoch`, and waits until its replica's high
 *            watermark has reached its log end (everything it holds is
 *            committed) to replay the log and serve;
 *   SERVING  it coordinates: requests are served.
 * A new leader epoch while SERVING keeps serving only if the log still
 * holds exactly what it wrote (log_ours); otherwise the members of the old
 * term are let go (release) and it loads again. Losing the lead lets the
 * members go and replays the log as a mirror again (reload_mirror). */
enum coord_role { COORD_NONE, COORD_LOADING, COORD_SERVING };

struct coord_state {
    enum coord_role role;
    int32_t epoch;        /* the term it is LOADING or SERVING in */
    int leads;            /* this broker leads __consumer_offsets p0 now... */
    int32_t leader_epoch; /* ...in this leader epoch */
    int log_ours;         /* the log's end is what its registry wrote and replayed */
    int loaded;           /* its replica's high watermark has reached its log end */
};

struct coord_step {
    enum coord_role role; /* the role after the step (SERVING once `load` succeeded) */
    int32_t epoch;
    int release;       /* let every member it serves go first */
    int reload_mirror; /* replay the log as a mirror */
    int load;          /* replay the whole log and serve (stays LOADING if that fails) */
};

struct coord_step coord_role_step(const struct coord_state *now);

#endif
