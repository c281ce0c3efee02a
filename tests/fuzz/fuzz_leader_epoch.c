/* fuzz_leader_epoch.c - the leader-epoch checkpoint decoder and the cache
 * operations (core/leader_epoch.c), and the high watermark checkpoint's
 * decoder on the same text (a round trip when it accepts it).
 *
 * Input: a mode byte, then the checkpoint text. With mode bit 0 set, the
 * checksum line is computed and appended (so the fuzzer reaches past the
 * checksum into the parser); else the text is taken as it is. A refused
 * text leaves the cache as it was. An accepted one holds strictly
 * increasing epochs (<= INT32_MAX) and offsets (<= INT64_MAX), encodes
 * back to exactly the bytes decoded (the format has one spelling), and
 * loads the same from a file. Then a few operations (assign, truncation
 * from either end, lookups) driven by the input keep both orders strict,
 * and every OffsetsForLeaderEpoch answer is one Kafka's rules allow. */
#include <xxhash.h>

#include "fuzz_util.h"
#include "leader_epoch.h"

static void check_cache(const struct leader_epoch_cache *c)
{
    FUZZ_CHECK(c->n <= LEADER_EPOCH_ENTRIES_MAX);
    for (size_t i = 0; i < c->n; i++) {
        FUZZ_CHECK(c->v[i].epoch <= LEADER_EPOCH_MAX);
        FUZZ_CHECK(c->v[i].start_offset <= (uint64_t)INT64_MAX);
        if (i) {
            FUZZ_CHECK(c->v[i].epoch > c->v[i - 1].epoch);
            FUZZ_CHECK(c->v[i].start_offset > c->v[i - 1].start_offset);
        }
    }
}

static void check_answer(const struct leader_epoch_cache *c, uint32_t epoch, uint64_t log_end)
{
    uint32_t e;
    uint64_t end;
    int r = leader_epoch_end_offset_for(c, epoch, log_end, &e, &end);
    if (r) {
        FUZZ_CHECK(r == -ENOENT);
        FUZZ_CHECK(c->n == 0 || epoch > c->v[c->n - 1].epoch);
        return;
    }
    FUZZ_CHECK(e <= epoch);
    if (epoch == c->v[c->n - 1].epoch) {
        FUZZ_CHECK(end == log_end);
        return;
    }
    /* The answer ends where the first newer epoch starts. */
    size_t k = 0;
    while (k < c->n && c->v[k].epoch <= epoch)
        k++;
    FUZZ_CHECK(k < c->n && end == c->v[k].start_offset);
    FUZZ_CHECK(k == 0 ? e == epoch : e == c->v[k - 1].epoch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1u << 20))
        return 0;
    const char *body = (const char *)data + 1;
    size_t blen = size - 1;
    char *text = malloc(blen + 17);
    size_t len = blen;
    memcpy(text, body, blen);
    if (data[0] & 1) {
        char sum[18];
        snprintf(sum, sizeof(sum), "%016llx\n", (unsigned long long)XXH3_64bits(body, blen));
        memcpy(text + blen, sum, 17);
        len += 17;
    }

    /* The same text as a high watermark checkpoint: accepted only in its
     * one spelling, and read the same from a file. */
    uint64_t hw = 12345;
    if (hw_checkpoint_decode(text, len, &hw) == 0) {
        char again[HW_CHECKPOINT_MAX_LEN];
        FUZZ_CHECK(hw <= (uint64_t)INT64_MAX);
        FUZZ_CHECK(hw_checkpoint_encode(hw, again) == len && !memcmp(again, text, len));
        const char *dir = fuzz_dir(1);
        fuzz_write_file(dir, HW_CHECKPOINT_FILE, text, len);
        uint64_t from_file = 0;
        FUZZ_CHECK(hw_checkpoint_load(dir, &from_file) == 0 && from_file == hw);
    } else {
        FUZZ_CHECK(hw == 12345);
    }

    struct leader_epoch_cache c, before;
    leader_epoch_init(&c);
    leader_epoch_init(&before);
    FUZZ_CHECK(leader_epoch_assign(&c, 3, 30) == 1);
    FUZZ_CHECK(leader_epoch_copy(&before, &c) == 0);
    int r = leader_epoch_decode(text, len, &c);
    if (r) {
        FUZZ_CHECK(r == -EBADMSG || r == -ENOMEM);
        FUZZ_CHECK(leader_epoch_equal(&c, &before));
    } else {
        check_cache(&c);
        char *again;
        size_t alen;
        FUZZ_CHECK(leader_epoch_encode(&c, &again, &alen) == 0);
        FUZZ_CHECK(alen == len && !memcmp(again, text, len));
        free(again);
        /* The same from the file. */
        const char *dir = fuzz_dir(1);
        fuzz_write_file(dir, LEADER_EPOCH_FILE, text, len);
        struct leader_epoch_cache f;
        leader_epoch_init(&f);
        FUZZ_CHECK(leader_epoch_load(dir, &f) == 0);
        FUZZ_CHECK(leader_epoch_equal(&f, &c));
        leader_epoch_free(&f);
    }

    /* Operations, driven by the input. */
    struct fuzz_in in = {data, size};
    for (int op = 0; op < 16 && in.n; op++) {
        uint8_t kind = fuzz_u8(&in);
        uint32_t epoch = fuzz_u32(&in) >> (kind >> 5);
        uint64_t offset = fuzz_u64(&in) >> (kind >> 3 & 3) * 16;
        switch (kind & 3) {
        case 0: {
            FUZZ_CHECK(leader_epoch_copy(&before, &c) == 0);
            int a = leader_epoch_assign(&c, epoch, offset);
            if (a <= 0)
                FUZZ_CHECK(leader_epoch_equal(&c, &before));
            if (a == 1)
                FUZZ_CHECK(c.v[c.n - 1].epoch == epoch && c.v[c.n - 1].start_offset == offset);
            break;
        }
        case 1:
            leader_epoch_truncate_from_end(&c, offset);
            FUZZ_CHECK(c.n == 0 || c.v[c.n - 1].start_offset < offset);
            break;
        case 2: {
            uint32_t covering = 0;
            int had = 0;
            for (size_t i = 0; i < c.n && c.v[i].start_offset <= offset; i++) {
                covering = c.v[i].epoch;
                had = 1;
            }
            FUZZ_CHECK(leader_epoch_copy(&before, &c) == 0);
            if (leader_epoch_truncate_from_start(&c, offset) < 0) {
                FUZZ_CHECK(offset > (uint64_t)INT64_MAX && leader_epoch_equal(&c, &before));
                break;
            }
            if (had)
                FUZZ_CHECK(c.n && c.v[0].epoch == covering && c.v[0].start_offset == offset);
            break;
        }
        default:
            check_answer(&c, epoch, offset);
            break;
        }
        check_cache(&c);
    }
    leader_epoch_free(&c);
    leader_epoch_free(&before);
    free(text);
    return 0;
}
