/* zkcat - reads a ZooKeeper for the cluster tests (zk.h), so they can see
 * what brokers wrote there without a JVM:
 *   zkcat HOST:PORT get PATH     the node's data
 *   zkcat HOST:PORT ls PATH      its children, sorted, one a line
 *   zkcat HOST:PORT tree PATH    PATH and every node under it, one a line:
 *                                "path data" (data as it is: our JSON has no
 *                                newline), sorted by path
 * Paths are absolute (give no chroot in HOST:PORT: zk_open would make it).
 * Exit 0, or 1 with the errno's name on stdout (ENOENT: no such node). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zk.h"

static int compare(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int tree(struct zk *z, const char *path)
{
    char *data, **names;
    size_t len, n;
    int r = zk_get(z, path, 0, &data, &len, NULL);
    if (r)
        return r;
    printf("%s %s\n", path, data);
    free(data);
    if ((r = zk_children(z, path, 0, &names, &n)))
        return r == -ENOENT ? 0 : r;
    qsort(names, n, sizeof(*names), compare);
    for (size_t i = 0; !r && i < n; i++) {
        char child[4096];
        snprintf(child, sizeof(child), "%s/%s", strcmp(path, "/") ? path : "", names[i]);
        r = tree(z, child);
        if (r == -ENOENT)
            r = 0; /* gone meanwhile */
    }
    zk_free_names(names, n);
    return r;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: zkcat HOST:PORT get|ls|tree PATH\n");
        return 2;
    }
    struct zk_options o = {
        .connect = argv[1], .session_timeout_ms = 4000, .connection_timeout_ms = 10000};
    struct zk *z;
    int r = zk_open(&o, &z);
    if (!r) {
        if (!strcmp(argv[2], "get")) {
            char *data;
            size_t len;
            if (!(r = zk_get(z, argv[3], 0, &data, &len, NULL))) {
                fwrite(data, 1, len, stdout);
                putchar('\n');
                free(data);
            }
        } else if (!strcmp(argv[2], "ls")) {
            char **names;
            size_t n;
            if (!(r = zk_children(z, argv[3], 0, &names, &n))) {
                qsort(names, n, sizeof(*names), compare);
                for (size_t i = 0; i < n; i++)
                    printf("%s\n", names[i]);
                zk_free_names(names, n);
            }
        } else if (!strcmp(argv[2], "tree")) {
            r = tree(z, argv[3]);
        } else {
            r = -EINVAL;
        }
        zk_close(z);
    }
    if (r)
        printf("%s\n", strerrorname_np(-r));
    return r ? 1 : 0;
}
