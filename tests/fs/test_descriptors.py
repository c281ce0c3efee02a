"""Descriptors stay bounded (issue 8, defect 3): a data dir of many segments
(TOPICFS_TEST_SEGMENTS: 3,000 by default, 100,000 on demand) mounts and serves with fewer than
1,000 descriptors open, after a clean stop and after kill -9; a daemon whose
descriptor limit is low (prlimit) keeps serving, and one that runs out
returns an errno, does not crash, and its data dir mounts again.

The segments are written by make_segments (a helper against core/), each a
one-record batch. Timings are printed, never asserted."""
import errno
import glob
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Mount, info, sh, wait_until  # noqa: E402

# 100,000 takes minutes to write on a shared disk: CI runs a few thousand
# (well past the LRU's 512), the full count is on demand.
SEGMENTS = int(os.environ.get("TOPICFS_TEST_SEGMENTS", "3000"))
MAKE_SEGMENTS = os.environ.get("MAKE_SEGMENTS") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "tests", "fs", "make_segments")


def value(i):
    return b"seg-%07d\n" % i


def fds(m):
    return len(os.listdir("/proc/%d/fd" % m.proc.pid))


def set_nofile(m, n):
    subprocess.run(["prlimit", "--pid", str(m.proc.pid), "--nofile=%d:" % n], check=True)


class DescriptorTest(unittest.TestCase):
    def setUp(self):
        self.m = Mount(opts="partitions=1").start()
        self.addCleanup(self.m.cleanup)
        os.mkdir(self.m.path("t"))
        self.m.stop()
        self.pdir = os.path.join(self.m.data, "topics", "t", "0")
        for f in os.listdir(self.pdir):
            os.unlink(os.path.join(self.pdir, f))
        t = time.monotonic()
        subprocess.run([MAKE_SEGMENTS, self.pdir, str(SEGMENTS)], check=True)
        print("\n%d segments written in %.1fs" % (SEGMENTS, time.monotonic() - t), file=sys.stderr)

    def start(self, what):
        t = time.monotonic()
        self.m.start()
        info(self.m, "t")  # the topic answers
        print("mount (%s) of %d segments: %.2fs, %d descriptors" %
              (what, SEGMENTS, time.monotonic() - t, fds(self.m)), file=sys.stderr)
        self.assertLess(fds(self.m), 1000)

    def check_all(self, n):
        """cat p0 is exactly the n records, with fewer than 1,000 descriptors."""
        p0 = self.m.path("t", "p0")
        at, rest = 0, b""
        with open(p0, "rb") as f:
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                rest += chunk
                k = len(rest) // 12
                self.assertEqual(rest[:k * 12], b"".join(value(i) for i in range(at, at + k)))
                at, rest = at + k, rest[k * 12:]
                self.assertLess(fds(self.m), 1000)
        self.assertEqual((at, rest), (n, b""))
        self.assertEqual(info(self.m, "t")["p0"]["end_offset"], n)

    def test_many_segments_bounded(self):
        self.start("clean")
        self.assertEqual(info(self.m, "t")["p0"]["segments"], SEGMENTS)
        self.check_all(SEGMENTS)
        print("after reading everything: %d descriptors" % fds(self.m), file=sys.stderr)
        # Appends after kill -9: the unsynced tail is verified at the next mount.
        with open(self.m.path("t", ".config"), "w") as f:
            f.write("segment.bytes=100\n")
        fd = os.open(self.m.path("t", "p0"), os.O_WRONLY | os.O_APPEND)
        for i in range(SEGMENTS, SEGMENTS + 50):
            os.write(fd, value(i))
        os.close(fd)
        self.m.kill9()
        self.start("after kill -9")
        self.check_all(SEGMENTS + 50)
        self.m.stop()
        self.start("clean, again")

    def test_low_descriptor_limit(self):
        self.start("clean")
        # Far below the LRU's cap: opens that fail close LRU descriptors.
        set_nofile(self.m, 64)
        self.check_all(SEGMENTS)
        fd = os.open(self.m.path("t", "p0"), os.O_WRONLY | os.O_APPEND)
        os.write(fd, value(SEGMENTS))
        os.fsync(fd)
        os.close(fd)
        # No room at all: reads fail with an errno, the daemon lives on.
        set_nofile(self.m, 8)
        errs = set()
        for i in range(0, SEGMENTS, max(1, SEGMENTS // 50)):
            try:
                with open(self.m.path("t", "p0@%d" % i), "rb") as f:
                    self.assertEqual(f.read(12), value(i))
            except OSError as e:
                errs.add(e.errno)
        self.assertLessEqual(errs, {errno.EMFILE, errno.ENFILE, errno.EIO})
        self.assertTrue(self.m.alive(), self.m.log_text())
        set_nofile(self.m, 4096)
        self.check_all(SEGMENTS + 1)
        self.m.kill9()
        self.start("after kill -9 at the limit")
        self.check_all(SEGMENTS + 1)

    def test_mount_under_low_limit(self):
        """A daemon started with 64 descriptors mounts a topic of several
        partitions of many segments each and serves every one whole."""
        with open(os.path.join(self.m.data, "topics", "t", "config")) as f:
            conf = f.read().replace("partitions=1\n", "partitions=4\n")
        with open(os.path.join(self.m.data, "topics", "t", "config"), "w") as f:
            f.write(conf)
        per = max(SEGMENTS // 6, 100)
        for k in (1, 2, 3):
            d = os.path.join(self.m.data, "topics", "t", str(k))
            os.mkdir(d)
            subprocess.run([MAKE_SEGMENTS, d, str(per)], check=True)
        self.m.start(prefix=["prlimit", "--nofile=64:64"])
        self.assertNotIn("failed", self.m.log_text())
        self.assertEqual(info(self.m, "t")["p3"]["end_offset"], per)
        self.check_all(SEGMENTS)
        for k in (1, 2, 3):
            with open(self.m.path("t", "p%d" % k), "rb") as f:
                self.assertEqual(f.read(), b"".join(value(i) for i in range(per)))
        self.assertTrue(self.m.alive())


if __name__ == "__main__":
    unittest.main(verbosity=2)
