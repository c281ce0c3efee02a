/* controller.c - controller election (controller.h).
 *
 * The role is kept in c->epoch: 0 when this broker is not the controller,
 * else the epoch it won. Every change goes through set_role(), which calls
 * the seam's callbacks and logs the change: lost() before became() when a
 * controller finds itself controller again under a newer epoch (its
 * /controller was deleted and it won again). */
#include "controller.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cluster_codec.h"
#include "logger.h"

#define CONTROLLER_PATH "/controller"
#define EPOCH_PATH CONTROLLER_EPOCH_PATH
#define ELECTION_TRIES 8

struct controller {
    int broker_id;
    struct controller_callbacks cb;
    int epoch;         /* > 0 while this broker is the controller */
    int epoch_version; /* of /controller_epoch, while it is */
};

int controller_new(int broker_id, const struct controller_callbacks *cb, struct controller **out)
{
    struct controller *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->broker_id = broker_id;
    if (cb)
        c->cb = *cb;
    *out = c;
    return 0;
}

void controller_free(struct controller *c)
{
    free(c);
}

int controller_is_self(const struct controller *c)
{
    return c->epoch > 0;
}

int controller_fence(const struct controller *c, int *epoch, int *epoch_version)
{
    if (c->epoch <= 0)
        return -ENOENT;
    *epoch = c->epoch;
    *epoch_version = c->epoch_version;
    return 0;
}

static void set_role(struct controller *c, int epoch)
{
    if (epoch == c->epoch)
        return;
    if (c->epoch > 0) {
        logger_log(LOG_LEVEL_INFO, "broker %d is no longer the controller (epoch %d)", c->broker_id,
                   c->epoch);
        c->epoch = 0;
        if (c->cb.lost)
            c->cb.lost(c->cb.arg);
    }
    if (epoch > 0) {
        c->epoch = epoch;
        logger_log(LOG_LEVEL_INFO, "broker %d is the controller (epoch %d)", c->broker_id, epoch);
        if (c->cb.became)
            c->cb.became(c->cb.arg, epoch);
    }
}

void controller_session_lost(struct controller *c)
{
    set_role(c, 0);
}

/* /controller_epoch and its version; created with 0 when missing. */
static int read_epoch(struct zk *z, int *epoch, int *version)
{
    for (int tries = 0; tries < ELECTION_TRIES; tries++) {
        char *data;
        size_t len;
        struct zk_stat st;
        int r = zk_get(z, EPOCH_PATH, 0, &data, &len, &st);
        if (r == -ENOENT) {
            r = zk_create(z, EPOCH_PATH, "0", 1, 0);
            if (r && r != -EEXIST)
                return r;
            continue;
        }
        if (r)
            return r;
        r = cluster_epoch_decode(data, len, epoch);
        if (r)
            logger_log(LOG_LEVEL_ERROR, "ZooKeeper %s: %s holds no epoch: \"%.40s\"",
                       zk_connect_string(z), EPOCH_PATH, data);
        free(data);
        *version = st.version;
        return r;
    }
    return -EAGAIN;
}

/* One try at becoming the controller: 0 and the new epoch, -EEXIST (another
 * broker is controller), -ESTALE (another broker moved the epoch first), or
 * another negative errno. */
static int elect(struct controller *c, struct zk *z, int *epoch)
{
    int e, version, r;
    if ((r = read_epoch(z, &e, &version)))
        return r;
    if (e == INT32_MAX)
        return -EOVERFLOW;
    struct cluster_controller_record rec = {c->broker_id, clock_now_ms()};
    char json[128], text[16];
    int jlen = cluster_controller_encode(&rec, json, sizeof(json));
    if (jlen < 0)
        return jlen;
    int tlen = snprintf(text, sizeof(text), "%d", e + 1);
    struct zk_op ops[] = {
        {.type = ZK_OP_CREATE,
         .path = CONTROLLER_PATH,
         .data = json,
         .len = (size_t)jlen,
         .flags = ZK_EPHEMERAL},
        {.type = ZK_OP_SET,
         .path = EPOCH_PATH,
         .data = text,
         .len = (size_t)tlen,
         .version = version},
    };
    r = zk_multi(z, ops, 2, NULL);
    if (!r)
        *epoch = e + 1;
    return r;
}

int controller_refresh(struct controller *c, struct zk *z, int *controller_id, int *epoch)
{
    for (int tries = 0; tries < ELECTION_TRIES; tries++) {
        char *data;
        size_t len;
        struct zk_stat st;
        int r = zk_get(z, CONTROLLER_PATH, 1, &data, &len, &st);
        if (r == -ENOENT) {
            int won;
            r = elect(c, z, &won);
            if (r && r != -EEXIST && r != -ESTALE)
                return r;
            continue; /* read what won, with a watch on it */
        }
        if (r)
            return r;
        struct cluster_controller_record rec;
        int id = -1, e, version;
        if (cluster_controller_decode(data, len, &rec) == 0)
            id = rec.broker_id;
        else
            logger_log(LOG_LEVEL_ERROR, "ZooKeeper %s: %s names no broker: \"%.60s\"",
                       zk_connect_string(z), CONTROLLER_PATH, data);
        free(data);
        if ((r = read_epoch(z, &e, &version)))
            return r;
        int self = id == c->broker_id && st.ephemeral_owner == zk_session_id(z);
        if (self)
            c->epoch_version = version; /* before became(), which may write */
        set_role(c, self ? e : 0);
        *controller_id = id;
        *epoch = e;
        return 0;
    }
    return -EAGAIN;
}
