/* fuzz_framing.c - splitting writes into records (fs/framing.c), driven
 * the way fs/write.c drives it: split, refuse on EMSGSIZE, commit, and take
 * the pending line at flush.
 *
 * Input: u8 settings (framing, key separator, max record size) and then
 * writes, each a u8 length (0xff: a flush) and its bytes. Checked:
 * with line framing every record holds exactly one '\n', at its end (the
 * flushed pending line: none); no record is longer than max_record; a key
 * ends where the separator starts; and the records and the pending bytes
 * are exactly the accepted writes, in order, minus refused lines. */
#include "framing.h"
#include "fuzz_util.h"

static void check_record(const struct framing_rules *rules, const struct record_ref *r, int flushed)
{
    FUZZ_CHECK(r->len <= rules->max_record);
    if (rules->framing == FRAMING_LINE) {
        const char *nl = memchr(r->data, '\n', r->len);
        if (flushed)
            FUZZ_CHECK(nl == NULL && r->len > 0);
        else
            FUZZ_CHECK(nl == r->data + r->len - 1);
    }
    if (r->key_len >= 0) {
        FUZZ_CHECK(rules->key_sep_len && (uint32_t)r->key_len + rules->key_sep_len <= r->len);
        FUZZ_CHECK(!memcmp(r->data + r->key_len, rules->key_sep, rules->key_sep_len));
    } else {
        FUZZ_CHECK(r->key_len == -1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    uint8_t set = fuzz_u8(&in);
    static const char *seps[] = {"", ":", "=", "::", " ", "ab"};
    struct topic_config cfg;
    config_defaults(&cfg, 1);
    cfg.framing = set & 1 ? FRAMING_WRITE : FRAMING_LINE;
    strcpy(cfg.key_separator, seps[(set >> 1) % 6]);
    cfg.max_message_bytes = (set >> 4) * 4 + 1;
    struct framing_rules rules;
    framing_rules_of(&cfg, &rules);

    struct pending pd = {0};
    struct record_list out = {0};
    /* The bytes records and pending must add up to: accepted writes, where a
     * refused line drops what was held of it. */
    char *model = malloc(size + 1), *got = malloc(size + 1);
    size_t model_len = 0;
    while (in.n) {
        uint8_t len = fuzz_u8(&in);
        if (len == 0xff) { /* flush */
            out.n = 0;
            FUZZ_CHECK(framing_take_pending(&rules, &pd, &out) == 0);
            FUZZ_CHECK(out.n == (pd.len ? 1u : 0u));
            if (out.n) {
                check_record(&rules, &out.r[0], 1);
                FUZZ_CHECK(out.r[0].len == model_len && !memcmp(out.r[0].data, model, model_len));
            }
            pd.len = 0;
            model_len = 0;
            continue;
        }
        if (len > in.n)
            len = (uint8_t)in.n;
        const char *w = (const char *)in.p;
        in.p += len;
        in.n -= len;
        size_t tail;
        out.n = 0;
        int r = framing_split(&rules, &pd, w, len, &out, &tail);
        if (r == -EMSGSIZE) {
            FUZZ_CHECK(out.n == 0 || rules.framing == FRAMING_LINE);
            framing_refuse(&rules, &pd, w, len);
            FUZZ_CHECK(pd.len == 0);
            model_len = 0;
            continue;
        }
        FUZZ_CHECK(r == 0 && tail <= len);
        memcpy(model + model_len, w, len);
        model_len += len;
        /* Records, then what stays pending, are the model. */
        size_t at = 0;
        for (size_t i = 0; i < out.n; i++) {
            check_record(&rules, &out.r[i], 0);
            memcpy(got + at, out.r[i].data, out.r[i].len);
            at += out.r[i].len;
        }
        FUZZ_CHECK(framing_commit(&pd, w, len, tail, out.n > 0) == 0);
        FUZZ_CHECK(pd.len <= rules.max_record || rules.framing == FRAMING_WRITE);
        if (rules.framing == FRAMING_LINE) {
            if (pd.len)
                memcpy(got + at, pd.buf, pd.len);
            FUZZ_CHECK(at + pd.len == model_len && !memcmp(got, model, model_len));
            if (pd.len)
                memmove(model, pd.buf, pd.len);
            model_len = pd.len;
        } else {
            FUZZ_CHECK(at == model_len && !memcmp(got, model, model_len));
            model_len = 0;
            pd.len = 0; /* write.c: framing=write leaves nothing pending */
        }
    }
    free(model);
    free(got);
    pending_free(&pd);
    record_list_free(&out);
    return 0;
}
