/* fsutil.c - directory operations shared by the store, topics and configs
 * (fsutil.h). */
#include "fsutil.h"

#include "logger.h"
#include "segment.h" /* segment_open_fd: makes room when out of descriptors */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fsutil_sync_dir(const char *dir)
{
    int fd = segment_open_fd(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return fd;
    int r = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return r;
}

int fsutil_sync_parent(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash)
        return fsutil_sync_dir(".");
    size_t len = slash == path ? 1 : (size_t)(slash - path);
    if (len >= sizeof(dir))
        return -ENAMETOOLONG;
    memcpy(dir, path, len);
    dir[len] = 0;
    return fsutil_sync_dir(dir);
}

/* The next step of fsutil_write_atomic, or the test's injected failure. */
static int step(int (*fault)(void))
{
    return fault ? fault() : 0;
}

int fsutil_write_atomic(const char *path, const void *data, size_t len, int (*fault)(void),
                        int *renamed)
{
    char tmp[4200];
    int r;
    if (renamed)
        *renamed = 0;
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
        return -ENAMETOOLONG;
    if ((r = step(fault)))
        return r;
    int fd = segment_open_fd(tmp, O_WRONLY | O_CREAT | O_TRUNC);
    if (fd < 0)
        return fd;
    r = step(fault);
    for (size_t done = 0; done < len && !r;) {
        ssize_t w = write(fd, (const char *)data + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            r = w < 0 ? -errno : -ENOSPC;
        else
            done += (size_t)w;
    }
    if (!r && !(r = step(fault)) && fsync(fd) < 0)
        r = -errno;
    if (close(fd) < 0 && !r)
        r = -errno;
    if (!r && !(r = step(fault)) && rename(tmp, path) < 0)
        r = -errno;
    if (r) {
        unlink(tmp);
        return r;
    }
    if (renamed)
        *renamed = 1;
    return (r = step(fault)) ? r : fsutil_sync_parent(path);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

int fsutil_remove_tree(const char *path)
{
    /* Without a descriptor first: a file, or a directory already empty. */
    if (unlink(path) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return -errno;
    if (rmdir(path) == 0 || errno == ENOENT)
        return 0;
    if (errno != ENOTEMPTY && errno != EEXIST)
        return -errno;
    if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT)
        return -errno;
    return 0;
}

int fsutil_ensure_dir(const char *path)
{
    struct stat st;
    /* Looked at first: a mkdir of what exists would change nothing, yet
     * reads as a new entry to whoever traces what the daemon does. */
    for (int tries = 0; tries < 2; tries++) {
        if (stat(path, &st) == 0)
            return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
        if (errno != ENOENT)
            return -errno;
        if (mkdir(path, 0755) == 0)
            return 1;
        if (errno != EEXIST)
            return -errno;
    }
    return -EEXIST;
}

void fsutil_remove_leftovers(const char *dir, int (*stale)(const char *name, void *arg), void *arg,
                             const char *what)
{
    char entry[4400];
    DIR *d = opendir(dir);
    struct dirent *de;
    int removed = 0;
    if (!d)
        return;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
            (stale && !stale(de->d_name, arg)))
            continue;
        snprintf(entry, sizeof(entry), "%s/%s", dir, de->d_name);
        logger_log(LOG_LEVEL_WARN, "removing %s, left by an interrupted %s", entry, what);
        int r = fsutil_remove_tree(entry);
        if (r)
            logger_log(LOG_LEVEL_WARN, "%s: %s", entry, strerror(-r));
        removed = 1;
    }
    closedir(d);
    if (removed)
        fsutil_sync_dir(dir);
}
