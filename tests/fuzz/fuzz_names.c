/* fuzz_names.c - hidden names, group children, times and cursor lines
 * (fs/nodes.c).
 *
 * Every parser gets the input as a name or a line. A name that parses must
 * mean what it says: a partition name is "p" and its number, printed back
 * the same; an offset or count is the decimal it was written as; a cursor
 * spec is the line without its blanks. */
#include <inttypes.h>

#include "fuzz_util.h"
#include "nodes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *name = fuzz_strndup(data, size);
    char buf[64];
    struct node_name nn;
    if (node_parse_topic_child(name, &nn) == 0) {
        switch (nn.kind) {
        case NODE_PARTITION:
            snprintf(buf, sizeof(buf), "p%" PRIu32, nn.partition);
            FUZZ_CHECK(!strcmp(buf, name));
            break;
        case NODE_HIDDEN:
            FUZZ_CHECK(nn.partition <= NODE_PARTITION_MAX);
            FUZZ_CHECK(nn.from == FROM_TIME || nn.value >= 0);
            if (nn.from == FROM_OFFSET || nn.from == FROM_LAST) {
                snprintf(buf, sizeof(buf), "p%" PRIu32 "@%s%" PRId64 "%s", nn.partition,
                         nn.from == FROM_LAST ? "-" : "", nn.value, nn.jsonl ? ".jsonl" : "");
                FUZZ_CHECK(!strcmp(buf, name));
            } else if (nn.from == FROM_START) {
                snprintf(buf, sizeof(buf), "p%" PRIu32 ".jsonl", nn.partition);
                FUZZ_CHECK(nn.jsonl && !strcmp(buf, name));
            }
            break;
        default:
            FUZZ_CHECK(name[0] == '.');
        }
    }
    enum node_kind kind;
    uint32_t part;
    if (node_parse_group_child(name, &kind, &part) == 0 && kind == NODE_CURSOR) {
        snprintf(buf, sizeof(buf), "p%" PRIu32, part);
        FUZZ_CHECK(!strcmp(buf, name));
    }
    int64_t ms;
    if (node_parse_time(name, size, &ms) == 0 && size && name[0] != 't' && size <= 19 &&
        memchr(name, '-', size) == NULL) {
        snprintf(buf, sizeof(buf), "%" PRId64, ms);
        FUZZ_CHECK(!strcmp(buf, name));
    }
    char spec[128];
    if (node_parse_cursor(name, size, spec, sizeof(spec), &ms) == 0) {
        size_t n = strlen(spec);
        FUZZ_CHECK(n > 0 && n < sizeof(spec) && memmem(name, size, spec, n) != NULL);
        FUZZ_CHECK(spec[0] != ' ' && spec[0] != '\t' && spec[n - 1] != ' ' && spec[n - 1] != '\r');
    }
    free(name);
    return 0;
}
