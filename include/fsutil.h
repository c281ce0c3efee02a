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

/* fsync of a directory: 0 or a negative errno. Out of descriptors, it
 * closes idle segment descriptors and tries again (segment_open_fd). */
int fsutil_sync_dir(const char *dir);
/* fsync of the directory holding path. */
int fsutil_sync_parent(const char *path);
/* Removes a file or a directory with everything in it; 0 if it is gone
 * (or was never there), else a negative errno. */
int fsutil_remove_tree(const char *path);
/* mkdir 0755 that accepts an existing directory (and then calls no
 * mkdir): 1 if it was made (its parent then needs an fsync), 0 if it was
 * there, or a negative errno. */
int fsutil_ensure_dir(const char *path);

#endif
