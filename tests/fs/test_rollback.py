"""Refused operations leave nothing behind (issue 8, defect 5): a topic
mkdir, a group mkdir and a partition growth that fail with ENOSPC (the data
dir on a small tmpfs, filled up) or EMFILE (the daemon's descriptor limit
lowered with prlimit) report that errno, show nothing new in the mount, and
leave nothing on disk: no tmp/ leftovers, the config unchanged, no extra
partition directories, no group after a remount. The daemon keeps serving,
and the same operations succeed once the resource is back. Leftovers of a
crash (tmp/, trash/, partition dirs past the committed count, config.tmp)
are removed at the next mount."""
import errno
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Mount, read  # noqa: E402


def visible(path):
    return sorted(n for n in os.listdir(path) if not n.startswith("."))


def write_config(m, topic, line):
    """Appends a line to .config; the line is applied at close."""
    with open(m.path(topic, ".config"), "a") as f:
        f.write(line + "\n")


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


if __name__ == "__main__":
    unittest.main()
