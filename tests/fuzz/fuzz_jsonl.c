/* fuzz_jsonl.c - rendering records as JSON lines (fs/jsonl.c).
 *
 * Input: i32 key length (negative: no key), i64 timestamp, then the value.
 * The line must be one JSON object ending in "}\n" with no raw control
 * character, and decoding its "key"/"value" (JSON string or base64) must give
 * back the bytes of the record. */
#include <inttypes.h>

#include "fuzz_util.h"
#include "jsonl.h"

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes the JSON string or base64 text at *s (after the opening quote)
 * into out; returns its length and moves *s past the closing quote. */
static size_t decode(const char **s, int base64, uint8_t *out)
{
    const char *p = *s;
    size_t n = 0;
    if (base64) {
        static const char tab[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        uint32_t v = 0;
        int bits = 0;
        for (; *p != '"'; p++) {
            FUZZ_CHECK(*p);
            if (*p == '=')
                continue;
            const char *at = strchr(tab, *p);
            FUZZ_CHECK(at && *p);
            v = v << 6 | (uint32_t)(at - tab);
            bits += 6;
            if (bits >= 8) {
                bits -= 8;
                out[n++] = (uint8_t)(v >> bits);
            }
        }
    } else {
        for (; *p != '"'; p++) {
            FUZZ_CHECK(*p && (uint8_t)*p >= 0x20);
            if (*p != '\\') {
                out[n++] = (uint8_t)*p;
                continue;
            }
            p++;
            switch (*p) {
            case 'n':
                out[n++] = '\n';
                break;
            case 'r':
                out[n++] = '\r';
                break;
            case 't':
                out[n++] = '\t';
                break;
            case '"':
                out[n++] = '"';
                break;
            case '\\':
                out[n++] = '\\';
                break;
            case 'u': {
                FUZZ_CHECK(p[1] == '0' && p[2] == '0');
                int hi = hexval(p[3]), lo = hexval(p[4]);
                FUZZ_CHECK(hi >= 0 && lo >= 0);
                out[n++] = (uint8_t)(hi * 16 + lo);
                p += 4;
                break;
            }
            default:
                FUZZ_CHECK(!"bad escape");
            }
        }
    }
    *s = p + 1;
    return n;
}

/* Finds ,"name": or ,"name_base64": and decodes what follows. */
static size_t field(const char *line, const char *name, uint8_t *out, int *present)
{
    char pat[32];
    snprintf(pat, sizeof(pat), ",\"%s\":", name);
    const char *at = strstr(line, pat);
    int base64 = 0;
    if (!at) {
        snprintf(pat, sizeof(pat), ",\"%s_base64\":", name);
        at = strstr(line, pat);
        base64 = 1;
    }
    FUZZ_CHECK(at);
    at += strlen(pat);
    if (!strncmp(at, "null", 4)) {
        *present = 0;
        return 0;
    }
    FUZZ_CHECK(*at == '"');
    at++;
    *present = 1;
    return decode(&at, base64, out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    int32_t key_len = (int32_t)fuzz_u32(&in);
    int64_t ts = (int64_t)fuzz_u64(&in);
    if (key_len >= 0)
        key_len = in.n ? (int32_t)((uint32_t)key_len % (in.n + 1)) : 0;
    else
        key_len = -1;
    struct record_view r = {.offset = size * 7919,
                            .timestamp = ts,
                            .value = in.p,
                            .value_len = (uint32_t)in.n,
                            .key_len = key_len};
    struct text_buf b = {0};
    FUZZ_CHECK(jsonl_append(&b, &r) == 0);
    FUZZ_CHECK(b.len >= 2 && b.data[b.len - 2] == '}' && b.data[b.len - 1] == '\n');
    FUZZ_CHECK(memchr(b.data, '\n', b.len) == b.data + b.len - 1);
    FUZZ_CHECK(memchr(b.data, 0, b.len) == NULL);
    char *line = fuzz_strndup((const uint8_t *)b.data, b.len);
    char head[96];
    snprintf(head, sizeof(head), "{\"offset\":%" PRIu64 ",\"timestamp\":%" PRId64 ",", r.offset,
             ts);
    FUZZ_CHECK(!strncmp(line, head, strlen(head)));
    uint8_t *out = malloc(in.n + 4);
    int present;
    /* The value comes last: search from the key's end is not needed, as a
     * string never holds a raw '"' (the pattern cannot occur inside one). */
    size_t n = field(line, "key", out, &present);
    FUZZ_CHECK(present == (key_len >= 0));
    if (present)
        FUZZ_CHECK(n == (size_t)key_len && !memcmp(out, in.p, n));
    n = field(line, "value", out, &present);
    FUZZ_CHECK(present && n == in.n && (n == 0 || !memcmp(out, in.p, n)));
    free(out);
    free(line);
    text_buf_free(&b);
    return 0;
}
