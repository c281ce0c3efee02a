"""Refused operations leave nothing behind (issue 8, defect 5): a topic
mkdir, a group mkdir and a partition growth that fail with ENOSPC (the data
dir on a small tmpfs, filled up) or EMFILE (the daemon's descriptor limit
lowered with prlimit) report that errno, show nothing new in the mount, and
leave nothing on disk: no tmp/ leftovers, the config unchanged, no extra
partition directories, no group after a remount. The daemon keeps serving,
and the same operations succeed once the resource is back. Leftovers of a
crash (tmp/, trash/, partition dirs past the committed count, config.tmp)
are removed at the next mount. Under the syscall fault shim, each mkdir,
open, write, fsync, rename, unlink and ftruncate of topic and group creation
and deletion and of partition growth is made to fail (EIO) and, separately,
made a crash point: the operation is whole or absent, in the mount and after
a remount."""
import errno
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Mount, failsys_env, read  # noqa: E402


def visible(path):
    return sorted(n for n in os.listdir(path) if not n.startswith("."))


def write_config_line(path, line):
    """Appends a line to a control file, in one write(2) as `echo >>` does (a
    buffered python file would write it again at close after an error)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def write_config(m, topic, line):
    write_config_line(m.path(topic, ".config"), line)


def config_value(m, topic, key):
    for line in read(m.path(topic, ".config")).splitlines():
        k, _, v = line.partition("=")
        if k == key:
            return v
    return None


class RollbackTest(unittest.TestCase):
    """Common checks: the data dir holds exactly what the mount shows."""

    def assert_nothing_left(self, topics, groups=None):
        data = self.m.data
        self.assertEqual(os.listdir(os.path.join(data, "tmp")), [])
        self.assertEqual(sorted(os.listdir(os.path.join(data, "topics"))),
                         sorted(list(topics) + ["__consumer_offsets"]))
        self.assertEqual(visible(self.m.mnt), sorted(topics))
        for t, parts in topics.items():
            tdir = os.path.join(data, "topics", t)
            self.assertEqual(sorted(os.listdir(tdir)),
                             sorted(["config"] + [str(p) for p in range(parts)]), t)
            self.assertEqual(config_value(self.m, t, "partitions"), str(parts), t)
            self.assertEqual(visible(self.m.path(t)), ["p%d" % p for p in range(parts)], t)
        for t, names in (groups or {}).items():
            self.assertEqual(sorted(os.listdir(self.m.path(t, ".groups"))), sorted(names), t)

    def assertErrnoIn(self, errs, fn, *args):
        with self.assertRaises(OSError) as cm:
            fn(*args)
        self.assertIn(cm.exception.errno, errs, "%s%r" % (fn.__name__, args))
        return cm.exception.errno


class EnospcTest(RollbackTest):
    """The data dir on a small tmpfs, filled up by a file beside it."""

    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="topicfs-rollback-")
        self.fsdir = os.path.join(self.base, "fs")
        os.mkdir(self.fsdir)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", self.fsdir], check=True)
        self.addCleanup(shutil.rmtree, self.base, ignore_errors=True)
        self.addCleanup(subprocess.run, ["umount", "-l", self.fsdir])
        self.m = Mount(base=self.base, opts="partitions=2", data=os.path.join(self.fsdir, "data"))
        self.addCleanup(self.m.stop)
        self.m.start()
        os.mkdir(self.m.path("orders"))
        with open(self.m.path("orders", "p0"), "a") as f:
            f.write("first\n")
        self.filler = os.path.join(self.fsdir, "filler")

    def fill(self):
        """Fills the tmpfs to the last page."""
        with open(self.filler, "ab", buffering=0) as f:
            for size in (1 << 20, 4096, 1):
                try:
                    while True:
                        f.write(b"x" * size)
                except OSError as e:
                    self.assertEqual(e.errno, errno.ENOSPC)

    def free(self):
        os.unlink(self.filler)

    def test_group_mkdir(self):
        made = []
        for i in range(200):
            if i == 0:
                self.fill()
            name = "g%d" % i
            try:
                os.mkdir(self.m.path("orders", ".groups", name))
                made.append(name)
            except OSError as e:
                self.assertEqual(e.errno, errno.ENOSPC)
                break
        else:
            self.fail("no group mkdir failed on a full disk")
        self.assertTrue(self.m.alive())
        self.assertEqual(sorted(os.listdir(self.m.path("orders", ".groups"))), sorted(made))
        self.free()
        # Serving still: a group mkdir works now, and reads go on.
        os.mkdir(self.m.path("orders", ".groups", "later"))
        self.assertEqual(read(self.m.path("orders", ".groups", "later", "drain")), "first\n")
        made.append("later")
        self.m.stop()
        self.m.start()
        self.assertEqual(sorted(os.listdir(self.m.path("orders", ".groups"))), sorted(made))

    def test_partition_growth_and_topic_mkdir(self):
        self.fill()
        self.assertErrnoIn([errno.ENOSPC], write_config, self.m, "orders", "partitions=6")
        self.assertTrue(self.m.alive())
        self.assert_nothing_left({"orders": 2})
        # (A topic mkdir refused for want of space left nothing before too.)
        self.assertErrnoIn([errno.ENOSPC], os.mkdir, self.m.path("full"))
        self.assert_nothing_left({"orders": 2})
        self.assertEqual(read(self.m.path("orders", "p0")), "first\n")
        self.free()
        self.m.stop()
        self.m.start()
        self.assert_nothing_left({"orders": 2})
        write_config(self.m, "orders", "partitions=3")
        self.assert_nothing_left({"orders": 3})


class EmfileTest(RollbackTest):
    """The daemon's descriptor limit lowered to what it has open (plus k)."""

    def setUp(self):
        self.m = Mount(opts="partitions=2")
        self.addCleanup(self.m.cleanup)
        self.m.start()
        self.pid = self.m.proc.pid
        os.mkdir(self.m.path("orders"))
        self.addCleanup(self.limit, None)

    def lowest_free_fd(self):
        used = {int(n) for n in os.listdir("/proc/%d/fd" % self.pid)}
        return min(set(range(len(used) + 1)) - used)

    def limit(self, extra):
        """Sets the daemon's soft limit (on fd numbers) to its lowest free
        descriptor plus extra (None: 4096)."""
        n = 4096 if extra is None else self.lowest_free_fd() + extra
        if self.m.alive():
            subprocess.run(["prlimit", "--pid", str(self.pid), "--nofile=%d:" % n], check=True)

    def test_topic_mkdir(self):
        made = {"orders": 2}
        failed = 0
        # Each free descriptor count makes the create fail at another step.
        for extra in range(0, 12):
            name = "t%d" % extra
            self.limit(extra)
            try:
                os.mkdir(self.m.path(name))
                made[name] = 2
            except OSError as e:
                self.assertEqual(e.errno, errno.EMFILE, name)
                failed += 1
            self.limit(None)
            self.assertTrue(self.m.alive())
            self.assert_nothing_left(made)
        self.assertGreater(failed, 2)
        os.mkdir(self.m.path("after"))
        made["after"] = 2
        self.m.stop()
        self.m.start()
        self.pid = self.m.proc.pid
        self.assert_nothing_left(made)

    def test_partition_growth(self):
        for extra in (0, 3, 10, 30):
            self.limit(extra)
            self.assertErrnoIn([errno.EMFILE], write_config, self.m, "orders", "partitions=40")
            self.limit(None)
            self.assertTrue(self.m.alive())
            self.assert_nothing_left({"orders": 2})
        write_config(self.m, "orders", "partitions=4")
        self.assert_nothing_left({"orders": 4})
        self.m.stop()
        self.m.start()
        self.pid = self.m.proc.pid
        self.assert_nothing_left({"orders": 4})


class CrashLeftoversTest(RollbackTest):
    """What a crash can leave is removed at the next mount."""

    def setUp(self):
        self.m = Mount(opts="partitions=2")
        self.addCleanup(self.m.cleanup)
        self.m.start()
        os.mkdir(self.m.path("orders"))
        with open(self.m.path("orders", "p1"), "a") as f:
            f.write("kept\n")
        self.m.stop()

    def test_leftovers_removed_at_mount(self):
        data = self.m.data
        tdir = os.path.join(data, "topics", "orders")
        # A create that never committed, a delete that never finished, a
        # growth that never committed (dirs 2 and 3, one with files), a
        # config save that never renamed.
        os.makedirs(os.path.join(data, "tmp", "half.7", "0"))
        with open(os.path.join(data, "tmp", "half.7", "config"), "w") as f:
            f.write("partitions=1\n")
        os.makedirs(os.path.join(data, "trash", "gone.3", "0"))
        os.makedirs(os.path.join(tdir, "2"))
        shutil.copytree(os.path.join(tdir, "0"), os.path.join(tdir, "3"))
        with open(os.path.join(tdir, "config.tmp"), "w") as f:
            f.write("partitions=4\n")
        self.m.start()
        self.assertEqual(os.listdir(os.path.join(data, "trash")), [])
        self.assert_nothing_left({"orders": 2})
        self.assertEqual(read(self.m.path("orders", "p1")), "kept\n")
        log = self.m.log_text()
        for what in ("tmp/half.7", "trash/gone.3", "orders/2", "orders/3", "orders/config.tmp"):
            self.assertIn(what, log)
        # Growing again makes fresh, empty partitions.
        write_config(self.m, "orders", "partitions=4")
        self.assert_nothing_left({"orders": 4})
        self.assertEqual(read(self.m.path("orders", "p3")), "")


class FaultPointTest(unittest.TestCase):
    """One data dir prepared once; each case runs on a fresh copy of it."""
    NTH = (1, 2, 5)

    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix="topicfs-faultpoint-")
        m = Mount(base=os.path.join(cls.base, "seed"), opts="partitions=2")
        m.start()
        try:
            for t in ("orders", "doomed"):
                os.mkdir(m.path(t))
            with open(m.path("orders", "p0"), "a") as f:
                f.write("first\n")
            os.mkdir(m.path("orders", ".groups", "kept"))
        finally:
            m.stop()
        cls.seed = m.data

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.base, ignore_errors=True)

    def state(self, m):
        """What the mount shows and the data dir holds."""
        out = {"tmp": os.listdir(os.path.join(m.data, "tmp"))}
        for t in visible(m.mnt):
            out[t] = (visible(m.path(t)), config_value(m, t, "partitions"),
                      sorted(os.listdir(os.path.join(m.data, "topics", t))),
                      sorted(os.listdir(m.path(t, ".groups"))))
        out["topics"] = sorted(os.listdir(os.path.join(m.data, "topics")))
        return out

    def run_point(self, action, op, nth, crash):
        """Runs action on a fresh copy of the seed with the nth `op` call in
        the data dir failing (or crashing). Returns whether a fault was
        injected."""
        case = tempfile.mkdtemp(dir=self.base)
        data = os.path.join(case, "data")
        shutil.copytree(self.seed, data)
        arm, log = os.path.join(case, "ARM"), os.path.join(case, "faults")
        m = Mount(base=case, data=data, opts="partitions=2",
                  env=failsys_env(op, nth=nth, errno="EIO", path=data, arm=arm, crash=crash, log=log))
        self.addCleanup(m.cleanup)
        m.start()
        before = self.state(m)
        open(arm, "w").close()
        try:
            action(m)
            err = None
        except OSError as e:
            err = e.errno
        os.unlink(arm)
        injected = os.path.exists(log)
        what = "%s call %d%s: %s" % (op, nth, " (crash)" if crash else "", action.__name__)
        if crash:
            if not injected:
                self.assertIsNone(err, what)
                return False
            m.kill9()
            m.env = None
            m.start()
            now = self.state(m)
            self.assertEqual(now["tmp"], [], what)
            if now != before:
                self.after_check(m, what)
        else:
            self.assertTrue(m.alive(), what)
            now = self.state(m)
            if err is not None:
                self.assertEqual(err, errno.EIO, what)
                self.assertEqual(now, before, what)
            else:
                self.after_check(m, what)
            m.stop()
            m.env = None
            m.start()
            self.assertEqual(self.state(m), now, what + ", after a remount")
        # A removal cut short is finished at the mount.
        self.assertEqual(os.listdir(os.path.join(data, "trash")), [], what)
        self.assertEqual(read(m.path("orders", "p0")), "first\n", what)
        m.stop()
        shutil.rmtree(case, ignore_errors=True)
        return injected

    def sweep(self, action, ops, after_check, crash_too=True):
        self.after_check = after_check
        for crash in ((False, True) if crash_too else (False,)):
            for op in ops:
                for nth in self.NTH:
                    if not self.run_point(action, op, nth, crash):
                        break

    def test_partition_growth(self):
        def grow(m):
            write_config(m, "orders", "partitions=3")

        def whole(m, what):
            self.assertEqual(visible(m.path("orders")), ["p0", "p1", "p2"], what)
            self.assertEqual(config_value(m, "orders", "partitions"), "3", what)
            self.assertEqual(sorted(os.listdir(os.path.join(m.data, "topics", "orders"))),
                             ["0", "1", "2", "config"], what)
        self.sweep(grow, ("mkdir", "open", "write", "fsync", "rename"), whole)

    def test_group_mkdir(self):
        def mkdir_group(m):
            os.mkdir(m.path("orders", ".groups", "fresh"))

        def whole(m, what):
            self.assertEqual(sorted(os.listdir(m.path("orders", ".groups"))), ["fresh", "kept"], what)
            self.assertEqual(read(m.path("orders", ".groups", "fresh", "p0")), "0\n", what)
        self.sweep(mkdir_group, ("open", "write", "fsync", "ftruncate"), whole)

    def test_topic_mkdir_rmdir_and_group_rmdir(self):
        # (Alone, the topic sweeps passed before issue 8 too: a single failed
        # call of the old create and delete already undid itself.)
        def mkdir_topic(m):
            os.mkdir(m.path("fresh"))

        def whole(m, what):
            self.assertEqual(visible(m.path("fresh")), ["p0", "p1"], what)
            self.assertEqual(sorted(os.listdir(os.path.join(m.data, "topics", "fresh"))),
                             ["0", "1", "config"], what)
        self.sweep(mkdir_topic, ("mkdir", "open", "write", "fsync", "rename"), whole)

        def rmdir_topic(m):
            os.rmdir(m.path("doomed"))

        def topic_gone(m, what):
            self.assertNotIn("doomed", visible(m.mnt), what)
            self.assertNotIn("doomed", os.listdir(os.path.join(m.data, "topics")), what)
        self.sweep(rmdir_topic, ("rename", "fsync", "unlink"), topic_gone, crash_too=False)

        def rmdir_group(m):
            os.rmdir(m.path("orders", ".groups", "kept"))

        def group_gone(m, what):
            self.assertEqual(os.listdir(m.path("orders", ".groups")), [], what)
        self.sweep(rmdir_group, ("write", "fsync"), group_gone, crash_too=False)


class GroupSyncTest(unittest.TestCase):
    """A member's fsync and a cursor write return only once the commit is
    on stable storage: a failing sync of __consumer_offsets is reported (and
    the refused cursor write changes nothing)."""

    def test_member_fsync_and_cursor_write_sync_the_offsets(self):
        base = tempfile.mkdtemp(prefix="topicfs-groupsync-")
        arm = os.path.join(base, "ARM")
        m = Mount(base=base, opts="partitions=1",
                  env=failsys_env("fsync", count=0, errno="EIO", path="__consumer_offsets", arm=arm))
        self.addCleanup(m.cleanup)
        m.start()
        os.mkdir(m.path("orders"))
        with open(m.path("orders", "p0"), "a") as f:
            f.write("a\nb\nc\n")
        os.mkdir(m.path("orders", ".groups", "g"))
        cursor = m.path("orders", ".groups", "g", "p0")
        fd = os.open(m.path("orders", ".groups", "g", "drain"), os.O_RDONLY)
        self.addCleanup(os.close, fd)
        self.assertEqual(os.read(fd, 100), b"a\nb\nc\n")
        self.assertEqual(os.read(fd, 100), b"")
        open(arm, "w").close()
        with self.assertRaises(OSError) as cm:
            os.fsync(fd)
        self.assertEqual(cm.exception.errno, errno.EIO)
        with self.assertRaises(OSError) as cm:
            write_config_line(cursor, "1")
        self.assertEqual(cm.exception.errno, errno.EIO)
        self.assertEqual(read(cursor), "3\n")
        os.unlink(arm)
        os.fsync(fd)
        write_config_line(cursor, "1")
        self.assertEqual(read(cursor), "1\n")
        self.assertTrue(m.alive())


if __name__ == "__main__":
    unittest.main()
