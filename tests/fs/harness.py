"""harness.py - mounts a real topicfs for the integration tests.

A Mount starts `topicfs DATA MNT -f` as a child process, waits (with a
deadline) until the mount is live, and on stop() unmounts and kills the
daemon by pid. Every Mount registers itself so that even a test that fails
or raises leaves no mount and no process behind.
"""
import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

TOPICFS = os.environ.get("TOPICFS") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "fs", "topicfs")

_live = []


def wait_until(cond, timeout=10.0, interval=0.01, what="condition"):
    """Polls cond() until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def changes_mtime(test, path, change):
    """Asserts that change() moves path's st_mtime forward (waiting first for
    the clock to pass the current one, whose resolution is a millisecond)."""
    before = os.stat(path).st_mtime_ns
    wait_until(lambda: time.time_ns() > before + 2000000, what="the clock to move")
    change()
    test.assertGreater(os.stat(path).st_mtime_ns, before, path)


def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mounts") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 2 and fields[1] == path and fields[2].startswith("fuse"):
                return True
    return False


def failsys_env(op, nth=1, errno="EIO", count=1, path=None, arm=None, crash=False, log=None,
                trace=None):
    """Environment that starts a program under the syscall fault shim
    (tests/fault/failsys.c): the nth matching `op` call fails with errno (or
    kills the process if crash; nth=0: none); trace: a file that gets one line
    per matching call. ASan must not insist on coming first."""
    lib = os.environ.get("FAILSYS_LIB") or os.path.join(
        os.path.dirname(__file__), "..", "..", "build", "tests", "fault", "libfailsys.so")
    env = {"LD_PRELOAD": os.path.abspath(lib), "FAILSYS_OP": op, "FAILSYS_NTH": str(nth),
           "FAILSYS_COUNT": str(count), "FAILSYS_ERRNO": str(errno),
           "ASAN_OPTIONS": ":".join(x for x in (os.environ.get("ASAN_OPTIONS"),
                                                "verify_asan_link_order=0") if x)}
    for k, v in (("PATH", path), ("ARM_FILE", arm), ("LOG", log), ("TRACE", trace)):
        if v:
            env["FAILSYS_" + k] = v
    if crash:
        env["FAILSYS_CRASH"] = "1"
    return env


class Mount:
    def __init__(self, base=None, opts=None, data=None, env=None):
        self.base = base or tempfile.mkdtemp(prefix="topicfs-test-")
        self.data = data or os.path.join(self.base, "data")
        self.mnt = os.path.join(self.base, "mnt")
        self.opts = opts
        self.env = env  # extra environment of the daemon (e.g. failsys_env())
        self.proc = None
        os.makedirs(self.mnt, exist_ok=True)

    def start(self, extra=(), prefix=()):
        """prefix: a command the daemon runs under (e.g. prlimit ...), which execs it."""
        args = list(prefix) + [TOPICFS, self.data, self.mnt, "-f"]
        if self.opts:
            args += ["-o", self.opts]
        args += list(extra)
        self.log = open(os.path.join(self.base, "daemon.log"), "ab")
        env = dict(os.environ, **self.env) if self.env else None
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log, env=env)
        _live.append(self)
        wait_until(lambda: is_mounted(self.mnt) or self.proc.poll() is not None,
                   what="mount of " + self.mnt)
        if self.proc.poll() is not None:
            raise AssertionError("topicfs exited with %d: %s" % (self.proc.returncode, self.log_text()))
        return self

    def log_text(self):
        with open(os.path.join(self.base, "daemon.log"), "rb") as f:
            return f.read().decode(errors="replace")[-4000:]

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def path(self, *parts):
        return os.path.join(self.mnt, *parts)

    def kill9(self):
        """Crash the daemon; the dead mount is cleaned up too."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._unmount()
        if self in _live:
            _live.remove(self)
        if getattr(self, "log", None):
            self.log.close()
            self.log = None

    def _unmount(self):
        if is_mounted(self.mnt):
            r = subprocess.run(["fusermount3", "-u", self.mnt], capture_output=True)
            if r.returncode != 0:
                subprocess.run(["fusermount3", "-u", "-z", self.mnt], capture_output=True)

    def stop(self):
        """Clean unmount; the daemon must exit on its own, else it is killed."""
        self._unmount()
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self in _live:
            _live.remove(self)
        if getattr(self, "log", None):
            self.log.close()
            self.log = None
        return self.proc.returncode if self.proc else None

    def restart(self):
        self.stop()
        return self.start()

    def cleanup(self):
        code = self.stop()
        if code not in (0, None, -9):
            # The daemon failed on its own: show why before its log goes.
            print("\n--- topicfs exited with %s; daemon log:\n%s" % (code, self.log_text()),
                  file=sys.stderr)
        shutil.rmtree(self.base, ignore_errors=True)


@atexit.register
def _cleanup_all():
    for m in list(_live):
        try:
            m.kill9()
        except Exception:
            pass


def info(mount, topic):
    """Parses .info into {partition: {key: int, or str for a list (isr=2,3)}}."""
    out = {}
    with open(mount.path(topic, ".info")) as f:
        for line in f:
            fields = line.split()
            out[fields[0]] = {k: int(v) if v.lstrip("-").isdigit() else v
                              for k, v in (x.split("=") for x in fields[1:])}
    return out


def read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


def sh(cmd, **kw):
    """Runs a bash command line; returns CompletedProcess with text output."""
    return subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, **kw)


class MountTest(unittest.TestCase):
    """Each test gets its own fresh mount (partitions=3 unless OPTS says)."""
    OPTS = "partitions=3"

    def setUp(self):
        self.m = Mount(opts=self.OPTS).start()
        self.addCleanup(self.m.cleanup)

    def assertAlive(self):
        self.assertTrue(self.m.alive(), "daemon died: " + self.m.log_text())

    def assertErrno(self, err, fn, *args):
        with self.assertRaises(OSError) as cm:
            fn(*args)
        self.assertEqual(cm.exception.errno, err, "%s%r" % (fn.__name__, args))
