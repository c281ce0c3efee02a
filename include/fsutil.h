/* fsutil.h - directory operations shared by the store, topics and configs.
 *
 * A new directory entry (mkdir, a created file, a rename) is only on stable
 * storage once its directory is fsynced: callers follow each such step with
 * fsutil_sync_dir() of the directory, or fsutil_sync_parent() of the entry.
 * fsutil_remove_tree() needs no descriptor for an empty directory or a plain
 * file, so a rollback of what was just created works when the process is
 * out of descriptors (EMFILE). */
#ifndef TOPICFS_FSUTIL_H
#define TOPICFS_FSUTIL_H

#include <stddef.h>

/* fsync of a directory: 0 or a negative errno. Out of descriptors, it
 * closes idle segment descriptors and tries again (segment_open_fd). */
int fsutil_sync_dir(const char *dir);
/* fsync of the directory holding path. */
int fsutil_sync_parent(const char *path);
/* Writes a whole small file: through path.tmp, written, fsynced and renamed
 * over path, then path's directory fsynced: a crash leaves the old file or
 * the new one. *renamed (renamed may be NULL) tells whether the new content
 * took the name (a later failure then only leaves its durability unsure);
 * before that, a failure removes path.tmp and leaves path as it was. Out of
 * descriptors, it closes idle segment descriptors (segment_open_fd). fault
 * (tests, may be NULL) runs before each step and fails it with the negative
 * errno it returns. */
int fsutil_write_atomic(const char *path, const void *data, size_t len, int (*fault)(void),
                        int *renamed);
/* Removes a file or a directory with everything in it; 0 if it is gone
 * (or was never there), else a negative errno. */
int fsutil_remove_tree(const char *path);
/* mkdir 0755 that accepts an existing directory (and then calls no
 * mkdir): 1 if it was made (its parent then needs an fsync), 0 if it was
 * there, or a negative errno. */
int fsutil_ensure_dir(const char *path);

/* Removes, with a log line each, the entries of dir that stale() names
 * (all of them if stale is NULL), left by an interrupted `what`; then syncs
 * dir. Failures are logged: what stays goes at the next try. */
void fsutil_remove_leftovers(const char *dir, int (*stale)(const char *name, void *arg), void *arg,
                             const char *what);

#endif
