/* fuzz_config.c - config lines (core/config.c).
 *
 * The input is applied line by line with config_set_line(), as writes to
 * .config are; a refused line must change nothing. Whatever was accepted,
 * the text config_format() writes must load back (config_load, as a
 * remount reads it) to the same config: same text again. And the input
 * loaded as a config file, unless refused, gives what its lines give
 * written one by one. */
#include "config.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct topic_config c, before, back;
    config_defaults(&c, 1);
    const char *p = (const char *)data, *end = p + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        before = c;
        if (config_set_line(&c, p, len))
            FUZZ_CHECK(!memcmp(&before, &c, sizeof(c)));
        p += len;
    }
    char text[4096], again[4096];
    size_t n = config_format(&c, text, sizeof(text));
    FUZZ_CHECK(n < sizeof(text));

    const char *dir = fuzz_dir(0);
    char path[1024];
    snprintf(path, sizeof(path), "%s/config", dir);
    fuzz_write_file(dir, "config", text, n);
    config_defaults(&back, 1);
    FUZZ_CHECK(config_load(&back, path) == 0);
    size_t m = config_format(&back, again, sizeof(again));
    if (m != n || memcmp(text, again, n)) {
        fprintf(stderr, "saved:\n%.*s\nloaded back:\n%.*s\n", (int)n, text, (int)m, again);
        abort();
    }

    /* The input as a config file, as a remount finds it: refused, or the
     * same as its lines written to .config (comments, empty lines skipped). */
    fuzz_write_file(dir, "config", data, size);
    config_defaults(&back, 1);
    if (config_load(&back, path))
        return 0;
    struct topic_config want;
    config_defaults(&want, 1);
    for (p = (const char *)data; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        if (len > 1 && p[0] != '#')
            config_set_line(&want, p, len);
        p += len;
    }
    n = config_format(&want, text, sizeof(text));
    m = config_format(&back, again, sizeof(again));
    if (m != n || memcmp(text, again, n)) {
        fprintf(stderr, "lines applied:\n%.*s\nfile loaded:\n%.*s\n", (int)n, text, (int)m, again);
        abort();
    }
    return 0;
}
