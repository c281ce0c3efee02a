/* json.h - the JSON of the znodes: a strict reader and a small writer.
 *
 * Reader: json_field() validates one whole document (RFC 8259: one object
 * at the top; strings with their escapes, surrogate pairs included, but not
 * \u0000; numbers; literals; arrays and objects nested up to JSON_MAX_DEPTH)
 * and returns the raw span of one top-level field's value. The span readers
 * and iterators then read a value: an integer, a string, an object's members
 * or an array's elements. They check what they read, so a span that did not
 * come from json_field is safe too. Nothing is allocated.
 *
 * Writer: struct json_out, a growing buffer; the first failure (out of
 * memory) sticks and json_out_finish reports it. Strings are escaped (",
 * \ and control characters), other bytes go as they are (UTF-8 passes).
 *
 * Errors: -EINVAL for text that is not what was asked for, -ENOENT for a
 * field that is not there, -ENAMETOOLONG for a string longer than its
 * buffer. */
#ifndef TOPICFS_JSON_H
#define TOPICFS_JSON_H

#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 32

/* The raw text of one value. */
struct json_span {
    const char *p, *end;
};

/* A decimal of digits only (no sign, no blank), in [0, max]. */
int json_decimal(const char *s, size_t n, int64_t max, int64_t *out);

/* The value of the top-level field key of the object json (the last one if
 * repeated): 0, -ENOENT, or -EINVAL if json is not one valid object. */
int json_field(const char *json, size_t len, const char *key, struct json_span *v);

/* An integer: a JSON number without fraction or exponent, or a string of
 * digits (Kafka writes some numbers as strings), in [min, max]. */
int json_span_int(struct json_span v, int64_t min, int64_t max, int64_t *out);
/* A string, decoded into out (cap bytes with its NUL). */
int json_span_string(struct json_span v, char *out, size_t cap);
/* json_field + json_span_int / json_span_string. */
int json_int(const char *json, size_t len, const char *key, int64_t min, int64_t max, int64_t *out);
int json_string(const char *json, size_t len, const char *key, char *out, size_t cap);

struct json_iter {
    const char *p, *end;
    int depth, started;
};

/* Starts on an object (or an array): -EINVAL if v is something else. */
int json_object_begin(struct json_span v, struct json_iter *it);
int json_array_begin(struct json_span v, struct json_iter *it);
/* The next member (its name into name, cap bytes) or element: 1, 0 at the
 * end, or a negative errno (-ENAMETOOLONG: a name longer than cap). */
int json_object_next(struct json_iter *it, char *name, size_t cap, struct json_span *v);
int json_array_next(struct json_iter *it, struct json_span *v);

struct json_out {
    char *buf;
    size_t len, cap;
    int err;
};

void json_out_raw(struct json_out *o, const char *s, size_t n);
void json_out_printf(struct json_out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A quoted, escaped string. */
void json_out_string(struct json_out *o, const char *s, size_t n);
/* 0 and the NUL-terminated text (malloc'ed, the caller frees) and its
 * length, or -ENOMEM (nothing to free). */
int json_out_finish(struct json_out *o, char **text, size_t *len);

#endif
