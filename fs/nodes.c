/* nodes.c - names inside a topic and a group directory, times, cursor lines (nodes.h). */
#include "nodes.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int parse_uint(const char *s, size_t len, int64_t max, int64_t *out)
{
    int64_t v = 0;
    if (len == 0 || (len > 1 && s[0] == '0'))
        return -ENOENT;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -ENOENT;
        if (v > (max - (s[i] - '0')) / 10)
            return -ENOENT;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Fixed-width decimal field. */
static int field(const char *s, int width, int *out)
{
    int v = 0;
    for (int i = 0; i < width; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM) to epoch ms. */
static int parse_time(const char *s, size_t len, int64_t *ms)
{
    struct tm tm = {0};
    int y, mo, d, h, mi, sec, frac_ms = 0;
    if (len < 20 || field(s, 4, &y) || s[4] != '-' || field(s + 5, 2, &mo) || s[7] != '-' ||
        field(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || field(s + 11, 2, &h) ||
        s[13] != ':' || field(s + 14, 2, &mi) || s[16] != ':' || field(s + 17, 2, &sec))
        return -ENOENT;
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap) ||
        h > 23 || mi > 59 || sec > 60)
        return -ENOENT;
    size_t i = 19;
    if (i < len && s[i] == '.') {
        int digits = 0;
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, digits++)
            if (digits < 3)
                frac_ms = frac_ms * 10 + (s[i] - '0');
        if (digits == 0)
            return -ENOENT;
        for (; digits < 3; digits++)
            frac_ms *= 10;
    }
    int64_t tz = 0;
    if (i + 1 == len && (s[i] == 'Z' || s[i] == 'z')) {
        tz = 0;
    } else if (i + 6 == len && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
        int th, tm_;
        if (field(s + i + 1, 2, &th) || field(s + i + 4, 2, &tm_) || th > 23 || tm_ > 59)
            return -ENOENT;
        tz = (th * 60 + tm_) * 60 * (s[i] == '+' ? 1 : -1);
    } else {
        return -ENOENT;
    }
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm); /* the fields are valid: -1 is 1969-12-31T23:59:59Z */
    *ms = ((int64_t)t - tz) * 1000 + frac_ms;
    return 0;
}

int node_parse_time(const char *s, size_t len, int64_t *ms)
{
    if (len > 1 && s[0] == 't')
        return parse_uint(s + 1, len - 1, INT64_MAX, ms);
    if (len > 10 && s[4] == '-')
        return parse_time(s, len, ms);
    return parse_uint(s, len, INT64_MAX, ms);
}

int node_parse_group_child(const char *name, enum node_kind *kind, uint32_t *partition)
{
    int64_t p;
    *partition = 0;
    if (!strcmp(name, "follow"))
        *kind = NODE_FOLLOW;
    else if (!strcmp(name, "drain"))
        *kind = NODE_DRAIN;
    else if (!strcmp(name, ".info"))
        *kind = NODE_GROUP_INFO;
    else if (name[0] == 'p' && !parse_uint(name + 1, strlen(name + 1), NODE_PARTITION_MAX, &p)) {
        *kind = NODE_CURSOR;
        *partition = (uint32_t)p;
    } else
        return -ENOENT;
    return 0;
}

int node_parse_topic_child(const char *name, struct node_name *out)
{
    memset(out, 0, sizeof(*out));
    if (!strcmp(name, ".groups")) {
        out->kind = NODE_GROUPS;
        return 0;
    }
    if (!strcmp(name, ".produce")) {
        out->kind = NODE_PRODUCE;
        return 0;
    }
    if (!strcmp(name, ".config")) {
        out->kind = NODE_CONFIG;
        return 0;
    }
    if (!strcmp(name, ".info")) {
        out->kind = NODE_INFO;
        return 0;
    }
    if (name[0] != 'p')
        return -ENOENT;
    size_t len = strlen(name);
    if (len > 6 && !strcmp(name + len - 6, ".jsonl")) {
        out->jsonl = 1;
        len -= 6;
    }
    const char *at = memchr(name, '@', len);
    size_t num_len = at ? (size_t)(at - name) - 1 : len - 1;
    int64_t part;
    if (parse_uint(name + 1, num_len, NODE_PARTITION_MAX, &part))
        return -ENOENT;
    out->partition = (uint32_t)part;
    out->kind = out->jsonl || at ? NODE_HIDDEN : NODE_PARTITION;
    out->from = FROM_START;
    if (!at)
        return 0;
    const char *spec = at + 1;
    size_t slen = len - (size_t)(spec - name);
    if (slen > 1 && spec[0] == '-') {
        out->from = FROM_LAST;
        return parse_uint(spec + 1, slen - 1, INT64_MAX, &out->value);
    }
    if (slen > 1 && spec[0] == 't') {
        out->from = FROM_TIME;
        return parse_uint(spec + 1, slen - 1, INT64_MAX, &out->value);
    }
    if (slen > 10 && spec[4] == '-') {
        out->from = FROM_TIME;
        return parse_time(spec, slen, &out->value);
    }
    out->from = FROM_OFFSET;
    return parse_uint(spec, slen, INT64_MAX, &out->value);
}

int node_parse_cursor(const char *line, size_t len, char *spec, size_t cap, int64_t *time_ms)
{
    while (len && (line[len - 1] == ' ' || line[len - 1] == '\r' || line[len - 1] == '\t'))
        len--;
    while (len && (*line == ' ' || *line == '\t')) {
        line++;
        len--;
    }
    if (!len || len >= cap)
        return -EINVAL;
    memcpy(spec, line, len);
    spec[len] = 0;
    *time_ms = 0;
    if (spec[0] == '@')
        return node_parse_time(spec + 1, len - 1, time_ms) ? -EINVAL : 0;
    if (!strcmp(spec, "earliest") || !strcmp(spec, "latest"))
        return 0;
    size_t i = spec[0] == '-' ? 1 : 0;
    if (i == len)
        return -EINVAL;
    for (; i < len; i++)
        if (spec[i] < '0' || spec[i] > '9')
            return -EINVAL;
    return 0;
}
