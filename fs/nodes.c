/* nodes.c - names inside a topic directory (nodes.h). */
#include "nodes.h"

#include <errno.h>
#include <string.h>

int node_parse_topic_child(const char *name, enum node_kind *kind, uint32_t *index)
{
    *index = 0;
    if (!strcmp(name, ".produce")) {
        *kind = NODE_PRODUCE;
        return 0;
    }
    if (!strcmp(name, ".config")) {
        *kind = NODE_CONFIG;
        return 0;
    }
    if (!strcmp(name, ".info")) {
        *kind = NODE_INFO;
        return 0;
    }
    if (name[0] != 'p' || name[1] < '0' || name[1] > '9' || (name[1] == '0' && name[2]))
        return -ENOENT;
    uint64_t n = 0;
    for (const char *c = name + 1; *c; c++) {
        if (*c < '0' || *c > '9')
            return -ENOENT;
        n = n * 10 + (uint64_t)(*c - '0');
        if (n > NODE_INDEX_MAX)
            return -ENOENT;
    }
    *kind = NODE_PARTITION;
    *index = (uint32_t)n;
    return 0;
}
