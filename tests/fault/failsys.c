/* failsys.c - an LD_PRELOAD shim that makes chosen file syscalls fail, or
 * kills the process at them, so tests can reach every error and crash point
 * of the daemon without touching its code.
 *
 * Configuration, read once from the environment at load time:
 *   FAILSYS_OP     open|write|fsync|rename|mkdir|unlink|ftruncate|any
 *                  (open = open/open64/openat/openat64/creat/fopen;
 *                   write = write/pwrite/pwrite64/writev/pwritev;
 *                   fsync = fsync/fdatasync; rename = rename/renameat/renameat2;
 *                   mkdir = mkdir/mkdirat; unlink = unlink/unlinkat/rmdir;
 *                   ftruncate = ftruncate/fallocate). Unset: the shim only forwards.
 *   FAILSYS_NTH    the Nth matching call fails (1-based, default 1)
 *   FAILSYS_COUNT  how many matching calls fail from the Nth on (default 1, 0 = all)
 *   FAILSYS_ERRNO  errno name (ENOSPC, EIO, EMFILE, ...) or number (default EIO)
 *   FAILSYS_PATH   only calls whose path contains this substring count; for
 *                  calls on a descriptor, its path from /proc/self/fd
 *   FAILSYS_ARM_FILE  calls are counted only while this file exists
 *   FAILSYS_CRASH=1   the process is killed with SIGKILL at the call instead
 *   FAILSYS_LOG    one line is appended per injected fault (or crash)
 *
 * Invariants: a call that is not injected is forwarded unchanged to the next
 * definition (dlsym RTLD_NEXT: libc, or a sanitizer's interceptor); a failed
 * call does nothing and returns -1 (NULL for fopen) with errno set. The
 * counter is atomic, so concurrent threads each see one distinct call
 * number. Nothing here allocates after load: paths are resolved into stack
 * buffers. Descriptors whose path starts with /dev/ (libfuse's /dev/fuse
 * channel, /dev/null, ...) and pipes or sockets are never counted unless
 * FAILSYS_PATH names them, so a FUSE daemon keeps talking to the kernel.
 *
 * Under AddressSanitizer the shim is preloaded before libasan: run with
 * ASAN_OPTIONS=verify_asan_link_order=0. The shim itself is built without
 * sanitizers (tests/fault/meson.build). */
/* Both the plain and the 64-bit names are defined here: no redirection. */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

enum op {
    OP_NONE = 0,
    OP_OPEN = 1 << 0,
    OP_WRITE = 1 << 1,
    OP_FSYNC = 1 << 2,
    OP_RENAME = 1 << 3,
    OP_MKDIR = 1 << 4,
    OP_UNLINK = 1 << 5,
    OP_FTRUNCATE = 1 << 6,
    OP_ANY = 0x7f,
};

static struct {
    int ops;
    long nth;
    long count;
    int err;
    int crash;
    const char *path;
    const char *arm;
    const char *log;
} cfg;

static long calls; /* matching calls counted so far (atomic) */

static const struct {
    const char *name;
    int op;
} op_names[] = {
    {"open", OP_OPEN},   {"write", OP_WRITE},   {"fsync", OP_FSYNC},         {"rename", OP_RENAME},
    {"mkdir", OP_MKDIR}, {"unlink", OP_UNLINK}, {"ftruncate", OP_FTRUNCATE}, {"any", OP_ANY},
};

static const struct {
    const char *name;
    int err;
} errno_names[] = {
    {"ENOSPC", ENOSPC}, {"EIO", EIO},       {"EMFILE", EMFILE}, {"ENFILE", ENFILE},
    {"EDQUOT", EDQUOT}, {"ENOMEM", ENOMEM}, {"EACCES", EACCES}, {"EPERM", EPERM},
    {"EROFS", EROFS},   {"EEXIST", EEXIST}, {"ENOENT", ENOENT}, {"EINTR", EINTR},
    {"EAGAIN", EAGAIN}, {"EFBIG", EFBIG},   {"EBADF", EBADF},   {"EINVAL", EINVAL},
};

/* The next definition of each wrapped function, looked up on first use (a
 * call can come from another library's constructor before ours ran). */
#define REAL(name)                                                                                 \
    static __typeof__(name) *real_##name;                                                          \
    if (!real_##name)                                                                              \
        real_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name);

static long env_long(const char *name, long dflt)
{
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 10) : dflt;
}

__attribute__((constructor)) static void failsys_init(void)
{
    const char *op = getenv("FAILSYS_OP");
    if (!op || !*op)
        return;
    for (size_t i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++)
        if (!strcmp(op, op_names[i].name))
            cfg.ops = op_names[i].op;
    cfg.nth = env_long("FAILSYS_NTH", 1);
    cfg.count = env_long("FAILSYS_COUNT", 1);
    cfg.crash = env_long("FAILSYS_CRASH", 0) != 0;
    cfg.err = EIO;
    const char *e = getenv("FAILSYS_ERRNO");
    if (e && *e) {
        if (e[0] >= '0' && e[0] <= '9')
            cfg.err = atoi(e);
        for (size_t i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++)
            if (!strcmp(e, errno_names[i].name))
                cfg.err = errno_names[i].err;
    }
    cfg.path = getenv("FAILSYS_PATH");
    if (cfg.path && !*cfg.path)
        cfg.path = NULL;
    cfg.arm = getenv("FAILSYS_ARM_FILE");
    if (cfg.arm && !*cfg.arm)
        cfg.arm = NULL;
    cfg.log = getenv("FAILSYS_LOG");
    if (cfg.log && !*cfg.log)
        cfg.log = NULL;
}

/* Path of a descriptor into buf (empty if it has none). */
static void fd_path(int fd, char *buf, size_t size)
{
    char link[64];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = syscall(SYS_readlinkat, AT_FDCWD, link, buf, size - 1);
    buf[n > 0 ? n : 0] = '\0';
}

/* dirfd-relative path made absolute into buf when it can be. */
static const char *at_path(int dirfd, const char *path, char *buf, size_t size)
{
    if (!path || path[0] == '/' || dirfd == AT_FDCWD)
        return path;
    fd_path(dirfd, buf, size);
    size_t n = strlen(buf);
    if (n + 1 + strlen(path) + 1 > size)
        return path;
    buf[n] = '/';
    strcpy(buf + n + 1, path);
    return buf;
}

static int path_matches(const char *path)
{
    if (cfg.path)
        return path && strstr(path, cfg.path) != NULL;
    /* Without a filter, device and anonymous descriptors are left alone. */
    return !path || (strncmp(path, "/dev/", 5) && !strchr(path, ':'));
}

static void log_line(const char *fn, const char *path, long n)
{
    if (!cfg.log)
        return;
    char line[PATH_MAX + 128];
    int len = snprintf(line, sizeof(line), "%s %s call=%ld %s pid=%d\n",
                       cfg.crash ? "crash" : "fail", fn, n, path ? path : "-", (int)getpid());
    int fd = (int)syscall(SYS_openat, AT_FDCWD, cfg.log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
                          0644);
    if (fd < 0)
        return;
    if (len > (int)sizeof(line))
        len = sizeof(line);
    ssize_t w = syscall(SYS_write, fd, line, (size_t)len);
    (void)w;
    syscall(SYS_close, fd);
}

/* Decides whether this call is injected; on a crash it does not return. */
static int inject(int op, const char *fn, const char *path)
{
    if (!(cfg.ops & op))
        return 0;
    if (!path_matches(path))
        return 0;
    if (cfg.arm) {
        struct stat st;
        if (syscall(SYS_newfstatat, AT_FDCWD, cfg.arm, &st, 0) < 0)
            return 0;
    }
    long n = __atomic_add_fetch(&calls, 1, __ATOMIC_SEQ_CST);
    if (n < cfg.nth || (cfg.count > 0 && n >= cfg.nth + cfg.count))
        return 0;
    log_line(fn, path, n);
    if (cfg.crash) {
        syscall(SYS_kill, getpid(), SIGKILL);
        for (;;)
            pause();
    }
    return 1;
}

static int inject_fd(int op, const char *fn, int fd)
{
    if (!(cfg.ops & op))
        return 0;
    char path[PATH_MAX];
    fd_path(fd, path, sizeof(path));
    return inject(op, fn, path);
}

static int inject_at(int op, const char *fn, int dirfd, const char *path)
{
    if (!(cfg.ops & op))
        return 0;
    char buf[PATH_MAX];
    return inject(op, fn, at_path(dirfd, path, buf, sizeof(buf)));
}

#define FAIL(ret)                                                                                  \
    do {                                                                                           \
        errno = cfg.err;                                                                           \
        return ret;                                                                                \
    } while (0)

static mode_t open_mode(int flags, va_list ap)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? va_arg(ap, mode_t) : 0;
}

int open(const char *path, int flags, ...)
{
    REAL(open);
    va_list ap;
    va_start(ap, flags);
    mode_t mode = open_mode(flags, ap);
    va_end(ap);
    if (inject(OP_OPEN, "open", path))
        FAIL(-1);
    return real_open(path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
    REAL(open64);
    va_list ap;
    va_start(ap, flags);
    mode_t mode = open_mode(flags, ap);
    va_end(ap);
    if (inject(OP_OPEN, "open64", path))
        FAIL(-1);
    return real_open64(path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...)
{
    REAL(openat);
    va_list ap;
    va_start(ap, flags);
    mode_t mode = open_mode(flags, ap);
    va_end(ap);
    if (inject_at(OP_OPEN, "openat", dirfd, path))
        FAIL(-1);
    return real_openat(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    REAL(openat64);
    va_list ap;
    va_start(ap, flags);
    mode_t mode = open_mode(flags, ap);
    va_end(ap);
    if (inject_at(OP_OPEN, "openat64", dirfd, path))
        FAIL(-1);
    return real_openat64(dirfd, path, flags, mode);
}

int creat(const char *path, mode_t mode)
{
    REAL(creat);
    if (inject(OP_OPEN, "creat", path))
        FAIL(-1);
    return real_creat(path, mode);
}

int creat64(const char *path, mode_t mode)
{
    REAL(creat64);
    if (inject(OP_OPEN, "creat64", path))
        FAIL(-1);
    return real_creat64(path, mode);
}

FILE *fopen(const char *path, const char *mode)
{
    REAL(fopen);
    if (inject(OP_OPEN, "fopen", path))
        FAIL(NULL);
    return real_fopen(path, mode);
}

FILE *fopen64(const char *path, const char *mode)
{
    REAL(fopen64);
    if (inject(OP_OPEN, "fopen64", path))
        FAIL(NULL);
    return real_fopen64(path, mode);
}

ssize_t write(int fd, const void *buf, size_t n)
{
    REAL(write);
    if (inject_fd(OP_WRITE, "write", fd))
        FAIL(-1);
    return real_write(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    REAL(pwrite);
    if (inject_fd(OP_WRITE, "pwrite", fd))
        FAIL(-1);
    return real_pwrite(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
    REAL(pwrite64);
    if (inject_fd(OP_WRITE, "pwrite64", fd))
        FAIL(-1);
    return real_pwrite64(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int n)
{
    REAL(writev);
    if (inject_fd(OP_WRITE, "writev", fd))
        FAIL(-1);
    return real_writev(fd, iov, n);
}

ssize_t pwritev(int fd, const struct iovec *iov, int n, off_t off)
{
    REAL(pwritev);
    if (inject_fd(OP_WRITE, "pwritev", fd))
        FAIL(-1);
    return real_pwritev(fd, iov, n, off);
}

ssize_t pwritev64(int fd, const struct iovec *iov, int n, off64_t off)
{
    REAL(pwritev64);
    if (inject_fd(OP_WRITE, "pwritev64", fd))
        FAIL(-1);
    return real_pwritev64(fd, iov, n, off);
}

int fsync(int fd)
{
    REAL(fsync);
    if (inject_fd(OP_FSYNC, "fsync", fd))
        FAIL(-1);
    return real_fsync(fd);
}

int fdatasync(int fd)
{
    REAL(fdatasync);
    if (inject_fd(OP_FSYNC, "fdatasync", fd))
        FAIL(-1);
    return real_fdatasync(fd);
}

/* A rename counts when either name matches the filter. */
static int inject_rename(const char *fn, int olddir, const char *from, int newdir, const char *to)
{
    if (!(cfg.ops & OP_RENAME))
        return 0;
    char a[PATH_MAX], b[PATH_MAX];
    const char *pa = at_path(olddir, from, a, sizeof(a));
    const char *pb = at_path(newdir, to, b, sizeof(b));
    if (cfg.path && !path_matches(pa))
        pa = pb;
    return inject(OP_RENAME, fn, pa);
}

int rename(const char *from, const char *to)
{
    REAL(rename);
    if (inject_rename("rename", AT_FDCWD, from, AT_FDCWD, to))
        FAIL(-1);
    return real_rename(from, to);
}

int renameat(int olddir, const char *from, int newdir, const char *to)
{
    REAL(renameat);
    if (inject_rename("renameat", olddir, from, newdir, to))
        FAIL(-1);
    return real_renameat(olddir, from, newdir, to);
}

int renameat2(int olddir, const char *from, int newdir, const char *to, unsigned flags)
{
    REAL(renameat2);
    if (inject_rename("renameat2", olddir, from, newdir, to))
        FAIL(-1);
    return real_renameat2(olddir, from, newdir, to, flags);
}

int mkdir(const char *path, mode_t mode)
{
    REAL(mkdir);
    if (inject(OP_MKDIR, "mkdir", path))
        FAIL(-1);
    return real_mkdir(path, mode);
}

int mkdirat(int dirfd, const char *path, mode_t mode)
{
    REAL(mkdirat);
    if (inject_at(OP_MKDIR, "mkdirat", dirfd, path))
        FAIL(-1);
    return real_mkdirat(dirfd, path, mode);
}

int unlink(const char *path)
{
    REAL(unlink);
    if (inject(OP_UNLINK, "unlink", path))
        FAIL(-1);
    return real_unlink(path);
}

int unlinkat(int dirfd, const char *path, int flags)
{
    REAL(unlinkat);
    if (inject_at(OP_UNLINK, "unlinkat", dirfd, path))
        FAIL(-1);
    return real_unlinkat(dirfd, path, flags);
}

int rmdir(const char *path)
{
    REAL(rmdir);
    if (inject(OP_UNLINK, "rmdir", path))
        FAIL(-1);
    return real_rmdir(path);
}

int ftruncate(int fd, off_t len)
{
    REAL(ftruncate);
    if (inject_fd(OP_FTRUNCATE, "ftruncate", fd))
        FAIL(-1);
    return real_ftruncate(fd, len);
}

int ftruncate64(int fd, off64_t len)
{
    REAL(ftruncate64);
    if (inject_fd(OP_FTRUNCATE, "ftruncate64", fd))
        FAIL(-1);
    return real_ftruncate64(fd, len);
}

int fallocate(int fd, int mode, off_t off, off_t len)
{
    REAL(fallocate);
    if (inject_fd(OP_FTRUNCATE, "fallocate", fd))
        FAIL(-1);
    return real_fallocate(fd, mode, off, len);
}

int fallocate64(int fd, int mode, off64_t off, off64_t len)
{
    REAL(fallocate64);
    if (inject_fd(OP_FTRUNCATE, "fallocate64", fd))
        FAIL(-1);
    return real_fallocate64(fd, mode, off, len);
}
