/* controller.h - controller election, as Kafka does it with ZooKeeper.
 *
 * /controller is an ephemeral znode naming the controller
 * ({"version":1,"brokerid":N,"timestamp":"ms"}); /controller_epoch a
 * persistent counter (decimal text). A broker that finds no /controller
 * reads the epoch E (creating /controller_epoch with 0 when missing) and,
 * in one ZooKeeper transaction, creates /controller and sets the epoch to
 * E+1 if its version is still the one read: of brokers racing, exactly one
 * wins, and every controller has its own epoch, greater than its
 * predecessors'. Every broker keeps a watch on /controller; when the
 * controller's session ends (it died: within zookeeper.session.timeout.ms)
 * the znode goes and they race again.
 *
 * This broker is the controller while /controller names it and belongs to
 * its current session. The controller's work (replica assignment, leader
 * election) is the seam below: became() when this broker takes the role,
 * lost() when it no longer has it (another broker took over, or the session
 * expired). Both run on cluster.c's thread, which makes every call here. */
#ifndef TOPICFS_CONTROLLER_H
#define TOPICFS_CONTROLLER_H

#include "zk.h"

struct controller_callbacks {
    void (*became)(void *arg, int epoch);
    void (*lost)(void *arg);
    void *arg;
};

struct controller;

int controller_new(int broker_id, const struct controller_callbacks *cb, struct controller **out);
void controller_free(struct controller *c);

/* Reads /controller (setting the watch) and, if there is none, runs the
 * election. 0 and the controller's id (-1 if /controller cannot be read)
 * and epoch, or a negative errno (-EAGAIN: try again). */
int controller_refresh(struct controller *c, struct zk *z, int *controller_id, int *epoch);
/* The session ended: a controller is one no more. */
void controller_session_lost(struct controller *c);
int controller_is_self(const struct controller *c);
/* While this broker is the controller: 0, its epoch and the version of
 * /controller_epoch it set (writes of the controller check it); else
 * -ENOENT. */
int controller_fence(const struct controller *c, int *epoch, int *epoch_version);

#define CONTROLLER_EPOCH_PATH "/controller_epoch"

#endif
