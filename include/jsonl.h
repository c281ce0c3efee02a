/* jsonl.h - one JSON object a record, for p0.jsonl.
 *
 *   {"offset":12,"timestamp":1763892000000,"key":"user42","value":"user42:hi\n"}
 *
 * Keys and values that are valid UTF-8 are JSON strings (control characters,
 * quotes and backslashes escaped); any other bytes are given base64-encoded as
 * "key_base64" / "value_base64", so every record is valid JSON whatever it
 * holds. A record without a key has "key":null. */
#ifndef TOPICFS_JSONL_H
#define TOPICFS_JSONL_H

#include <stddef.h>

#include "partition.h"

struct text_buf {
    char *data;
    size_t len, cap;
};

/* Appends one line for r to b. 0 or -ENOMEM. */
int jsonl_append(struct text_buf *b, const struct record_view *r);
/* Removes the first n bytes (at most len); b may be empty (data NULL). */
void text_buf_drop(struct text_buf *b, size_t n);
void text_buf_free(struct text_buf *b);

#endif
