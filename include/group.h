/* group.h - Kafka consumer groups over topicfs partitions.
 *
 * A group belongs to a topic and remembers one committed offset per
 * partition. Its members are the open `follow` / `drain` files; the group's
 * partitions are spread over them (group_assign) and spread again whenever
 * one joins or leaves, so a partition is delivered to one member at a time.
 *
 * A member reads a stream of its partitions' record values. Positions in it
 * are the member's file positions. Bytes handed out but not yet acknowledged
 * stay in the member's window, so a reader may read them again (bash reads a
 * block and seeks back to the end of the line it used). A record is
 * acknowledged, and its offset + 1 committed, when the member reads at a
 * position past its end, reaches end of file on `drain`, or calls fsync. On a
 * rebalance or leave, what was delivered and not acknowledged is dropped and
 * will be delivered again from the committed offset: at-least-once.
 *
 * Commits are durable: they are appended to the internal compacted topic
 * __consumer_offsets as lines "<topic>/<group>/<partition>=<offset>", which
 * the registry replays at open. "…=" with no offset is a tombstone: the group
 * was deleted. Appends go through the topic's produce path with acks=all.
 *
 * Cluster mode (a "mirror" registry): __consumer_offsets is a replicated
 * topic and only the group coordinator (the broker that leads its
 * partition 0, replicate/coordinator.h) writes it. Every other broker's
 * registry is a mirror of that log: group_registry_catch_up() replays what
 * its replica (or cache) holds up to the high watermark, so that every
 * mount lists the groups and reads their committed offsets; it never
 * appends (-EAGAIN) and has no members. When this broker becomes the
 * coordinator, group_registry_reload(r, 1) replays the whole log and the
 * registry writes from then on; group_registry_reload(r, 0) (or
 * group_registry_deactivate()) when it stops. Group objects (and their ids,
 * which are fs/'s node ids) are kept across reloads as long as the log
 * still has the group.
 *
 * Locking: each group has one mutex, taken before any partition lock. */
#ifndef TOPICFS_GROUP_H
#define TOPICFS_GROUP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "store.h"

#define GROUP_OFFSETS_TOPIC "__consumer_offsets"
#define GROUP_NAME_MAX 200

struct group_registry;
struct group;
struct group_member;

/* Replays __consumer_offsets (creating it if missing, unless `mirror`). If
 * that topic failed to open (store.h), the registry opens without groups
 * and every group create or commit fails with -EIO, so the other topics
 * still serve; a replay cut short by a read error keeps what it replayed
 * (logged). A mirror starts inactive. */
int group_registry_open(struct store *s, int mirror, struct group_registry **out);
/* The config __consumer_offsets is made with (compacted, one partition). */
void group_offsets_config(struct store *s, struct topic_config *cfg);
/* Mirror: replays what the log gained since (all of it again if the log
 * was made anew or cut below what was replayed). Nothing for an active
 * registry. 0 or a negative errno (the replay's; what it read stands). */
int group_registry_catch_up(struct group_registry *r);
/* Forgets every committed offset, replays the whole log up to its high
 * watermark (groups no longer in it are deleted, their members woken to
 * ENOENT) and becomes active (writes the log) or not. Members are the
 * caller's: the coordinator removes them first. */
int group_registry_reload(struct group_registry *r, int active);
int group_registry_active(struct group_registry *r);
/* Stops writing the log (this broker stopped coordinating). */
void group_registry_deactivate(struct group_registry *r);
/* The offset after the last record this registry replayed or wrote. */
uint64_t group_registry_log_end(struct group_registry *r);
/* Whether the log holds exactly what this registry replayed and wrote:
 * nobody else appended to it or cut it since (a coordinator that keeps
 * leading across a new leader epoch keeps its state only then). */
int group_registry_log_ours(struct group_registry *r);
/* Persists pending commits and frees everything. */
void group_registry_close(struct group_registry *r);

/* -EINVAL bad name, -EEXIST exists; durable when it returns 0, and on any
 * error (say -ENOSPC) nothing of the group is left, in memory or on disk. */
int group_create(struct group_registry *r, struct topic *t, const char *name);
/* -ENOENT, -EBUSY while members are open; durable, and all or nothing as
 * group_create. */
int group_delete(struct group_registry *r, struct topic *t, const char *name);
/* Deletes every group of a topic, once store_delete_topic() marked it deleted
 * (from then on group_create() refuses it). */
void group_delete_topic(struct group_registry *r, struct topic *t);
/* A new reference, or NULL. */
struct group *group_find(struct group_registry *r, struct topic *t, const char *name);
struct group *group_find_id(struct group_registry *r, uint64_t id);
void group_put(struct group *g);
uint64_t group_id(const struct group *g);
const char *group_name(const struct group *g);
struct topic *group_topic(const struct group *g);
/* Calls fn for each group of topic t, in name order. */
int group_foreach(struct group_registry *r, struct topic *t, int (*fn)(struct group *g, void *arg),
                  void *arg);

/* Members. `wake` is called (without locks held) when a member that found
 * nothing to read may now find something: new records or a new assignment.
 * broker: the broker whose mount the member reads through (-1 on one
 * node), shown with pid as its owner. */
int group_join(struct group *g, int broker, pid_t pid, int follow, void (*wake)(void *arg),
               void *wake_arg, struct group_member **out);
void group_leave(struct group_member *m);
/* Reads the member's stream at pos. Returns bytes, 0 when nothing is there
 * now (drain: end of file, and everything delivered is acknowledged), or a
 * negative errno (-ESPIPE: pos is before what was already acknowledged). */
ssize_t group_member_read(struct group_member *m, uint64_t pos, void *buf, size_t len);
/* Acknowledges every record the reader has read whole (fsync) and makes
 * commits durable; a record read only in part is delivered again. */
int group_member_sync(struct group_member *m);
/* Tells waiting members of topic t that partition p grew. */
void group_notify_append(struct group_registry *r, struct topic *t, uint32_t partition);

/* Cursor files. */
int group_cursor_get(struct group *g, uint32_t partition, uint64_t *offset);
/* spec: "N", "earliest", "latest", "-N", "@<ms>" (time already parsed by the
 * caller into *time_ms when spec[0] == '@'). Durable when it returns 0; any
 * error (-EINVAL, or the errno of a failed append or sync) changes nothing. */
int group_cursor_set(struct group *g, uint32_t partition, const char *spec, int64_t time_ms);
struct group_partition_state {
    uint64_t committed, end_offset, lag;
    pid_t owner;      /* pid of the member that owns the partition, 0 if none */
    int owner_broker; /* the broker it reads through, -1 (one node or none) */
};
/* The state of each of the group's partitions, malloc'ed (*n of them), or
 * NULL when out of memory. */
struct group_partition_state *group_partition_states(struct group *g, uint32_t *n);
/* One line a partition: committed offset, end offset, lag, owner
 * ("pid", or "broker:pid" in a cluster, "-" if none). */
size_t group_info_text(struct group *g, char *buf, size_t cap);

/* Assignment: spreads n partitions over m members as evenly as possible,
 * keeping each partition with its current owner when balance allows.
 * owner[i] is the member index (0..m-1) owning partition i, or -1; it is
 * updated in place. Members are numbered in join order. */
void group_assign(int32_t *owner, uint32_t n, uint32_t m);

int group_name_valid(const char *name);

#endif
