/* control.c - control files (.config: the topic's config, cursor files:
 * a group's committed offsets) take lines. All complete lines of one write
 * are checked first (check may use `trial` state), then applied; a bad line
 * fails the write with EINVAL and applies nothing. A partial line waits in
 * h->pending for flush or close. */
#include "ops_impl.h"

#include <errno.h>
#include <string.h>

#include "cluster.h"
#include "config.h"
#include "framing.h"
#include "logger.h"
#include "nodes.h"

/* Calls fn for each complete line of pending + buf (without its '\n'). */
static int each_line(struct handle *h, const char *buf, size_t size,
                     int (*fn)(struct handle *h, void *arg, const char *line, size_t len),
                     void *arg, size_t *consumed)
{
    const char *p = buf, *end = buf + size, *nl;
    char line[512];
    while ((nl = memchr(p, '\n', (size_t)(end - p)))) {
        size_t n = (size_t)(nl - p), lead = p == buf ? h->pending.len : 0;
        if (lead + n >= sizeof(line))
            return -EINVAL;
        if (lead)
            memcpy(line, h->pending.buf, lead);
        memcpy(line + lead, p, n);
        int r = lead + n > 0 ? fn(h, arg, line, lead + n) : 0;
        if (r)
            return r;
        p = nl + 1;
    }
    if ((size_t)(end - p) + (p == buf ? h->pending.len : 0) >= sizeof(line))
        return -EINVAL;
    *consumed = (size_t)(p - buf);
    return 0;
}

struct control_call {
    const struct control_ops *ops;
    void *trial;
};

static int control_check(struct handle *h, void *arg, const char *line, size_t len)
{
    struct control_call *c = arg;
    return c->ops->check(h, c->trial, line, len) ? -EINVAL : 0;
}

static int control_apply(struct handle *h, void *arg, const char *line, size_t len)
{
    return ((struct control_call *)arg)->ops->apply(h, line, len);
}

int write_control(struct handle *h, const struct control_ops *ops, void *trial, const char *buf,
                  size_t size)
{
    struct control_call c = {ops, trial};
    size_t consumed;
    int r = each_line(h, buf, size, control_check, &c, &consumed);
    if (!r)
        r = each_line(h, buf, size, control_apply, &c, &consumed);
    if (r)
        return r;
    if (memchr(buf, '\n', size))
        h->pending.len = 0;
    return framing_commit(&h->pending, buf, size, consumed, 0);
}

int flush_control(struct handle *h, const struct control_ops *ops)
{
    if (!h->pending.len)
        return 0;
    int r = ops->check(h, NULL, h->pending.buf, h->pending.len);
    if (!r)
        r = ops->apply(h, h->pending.buf, h->pending.len);
    h->pending.len = 0;
    return r ? -EINVAL : 0;
}

static int config_check(struct handle *h, void *trial, const char *line, size_t len)
{
    struct topic_config own;
    if (!trial) {
        topic_config_snapshot(h->topic, &own);
        trial = &own;
    }
    return config_set_line(trial, line, len);
}

/* The topic directory's mtime moved (attr_timeout); attributes only. */
static void topic_config_changed(struct topic *t)
{
    if (the_fs && the_fs->se)
        fuse_lowlevel_notify_inval_inode(the_fs->se, node_id(t->id, NODE_TOPIC, 0), -1, 0);
}

/* In cluster mode the line goes to the cluster, which changes the config
 * here (fs_topic_configure) and on every other broker. */
static int config_apply(struct handle *h, const char *line, size_t len)
{
    int r = the_fs && the_fs->cluster
                ? cluster_topic_config(the_fs->cluster, h->topic->name, line, len)
                : topic_config_apply(h->topic, line, len);
    if (!r) {
        logger_log(LOG_LEVEL_INFO, "topic %s: %.*s", h->topic->name, (int)len, line);
        topic_config_changed(h->topic);
    }
    return r;
}

/* Makes cfg t's config: the lines of its text that differ from t's are
 * applied one by one (both texts name every key, in the same order), each
 * all or nothing; the first refusal stops it. */
static int config_apply_all(struct topic *t, const struct topic_config *cfg)
{
    char want[4096], have[4096];
    struct topic_config cur;
    topic_config_snapshot(t, &cur);
    size_t wl = config_format(cfg, want, sizeof(want)),
           hl = config_format(&cur, have, sizeof(have));
    if (wl >= sizeof(want) || hl >= sizeof(have))
        return -EINVAL;
    int r = 0;
    for (const char *w = want, *h = have; !r && *w && *h;) {
        const char *wn = strchr(w, '\n'), *hn = strchr(h, '\n');
        if (wn - w != hn - h || memcmp(w, h, (size_t)(wn - w)))
            r = topic_config_apply(t, w, (size_t)(wn - w));
        w = wn + 1;
        h = hn + 1;
    }
    return r;
}

int fs_topic_configure(void *fs_context, const char *name, const struct topic_config *cfg,
                       int remote)
{
    struct fs_context *fc = fs_context;
    struct topic *t = store_find(fc->store, name);
    if (!t)
        return -ENOENT;
    int r = config_apply_all(t, cfg);
    if (!r) {
        if (remote)
            logger_log(LOG_LEVEL_INFO, "topic %s: config from the cluster", name);
        topic_config_changed(t);
    }
    topic_put(t);
    return r;
}

const struct control_ops control_config_ops = {config_check, config_apply};

static int cursor_check(struct handle *h, void *trial, const char *line, size_t len)
{
    (void)h;
    (void)trial;
    char spec[128];
    int64_t t;
    return node_parse_cursor(line, len, spec, sizeof(spec), &t);
}

static int cursor_apply(struct handle *h, const char *line, size_t len)
{
    char spec[128];
    int64_t t;
    int r = node_parse_cursor(line, len, spec, sizeof(spec), &t);
    return r ? r : coord_cursor_set(the_fs->coord, h->group, h->index, spec, t);
}

const struct control_ops control_cursor_ops = {cursor_check, cursor_apply};
