/* framing.h - where one record ends and the next begins.
 *
 * FRAMING_LINE: a record ends after each '\n' (kept in the value). Bytes
 * after the last '\n' of a write are held in the open file's `pending`
 * buffer until a later write completes the line, or until flush/fsync/close
 * turns them into a record of their own. FRAMING_WRITE: each write() is one
 * record.
 *
 * framing_split() never changes `pending` (it may use the bytes beyond
 * pending->len as scratch), so a failed append leaves the open file exactly
 * as it was; framing_commit() applies the split once the records are stored.
 *
 * A line longer than max_record is refused as a whole, however it arrives:
 * the write that makes it too long fails with EMSGSIZE (with every other line
 * of that write), framing_refuse() drops the part held from earlier writes,
 * and while the line stays open each later write fails too, until one holds
 * its '\n' (that write is refused whole as well). When the refused write
 * completed a line begun by an earlier write, the kernel may have told the
 * writer that the earlier part was written (one big write() cut into
 * requests returns a short count), and the writer then sends the rest
 * again: a next write that starts with the refused write's bytes up to its
 * first '\n' is refused too. So no piece of a refused line is ever a record.
 * A record's key is the bytes before the first key separator, if any. */
#ifndef TOPICFS_FRAMING_H
#define TOPICFS_FRAMING_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "config.h"

struct framing_rules {
    enum framing framing;
    const char *key_sep; /* points into the topic_config the rules were made from */
    size_t key_sep_len;
    size_t max_record;
};

struct pending {
    char *buf;
    size_t len, cap;
    int refused;          /* inside a line refused for its size: refuse up to its end */
    size_t resend_len;    /* refuse a next write that starts with these bytes again */
    uint64_t resend_hash; /* XXH3-64 of them */
};

struct record_list {
    struct record_ref *r;
    size_t n, cap;
};

void framing_rules_of(const struct topic_config *c, struct framing_rules *r);
/* Appends to out the records completed by data. *tail gets the index in data
 * of bytes left incomplete. -EMSGSIZE if a record (or the pending line) would
 * exceed max_record; nothing is added then. */
int framing_split(const struct framing_rules *rules, struct pending *pd, const char *data,
                  size_t len, struct record_list *out, size_t *tail);
/* After framing_split refused data with -EMSGSIZE: drops the held line, and
 * remembers whether the refused line is still open after data. */
void framing_refuse(const struct framing_rules *rules, struct pending *pd, const char *data,
                    size_t len);
/* After the records from framing_split are stored: pending becomes the tail
 * (or, if no record was completed, pending grows by data). */
int framing_commit(struct pending *pd, const char *data, size_t len, size_t tail, int completed);
/* The pending partial line as one record (0 if there is none). */
int framing_take_pending(const struct framing_rules *rules, struct pending *pd,
                         struct record_list *out);
int32_t framing_key_len(const struct framing_rules *rules, const char *rec, size_t len);
void pending_free(struct pending *pd);
void record_list_free(struct record_list *l);

#endif
