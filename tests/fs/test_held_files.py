"""Open files outlive the names they were opened by.

A partition file held open keeps reading the bytes it was opened on, like
any Unix file whose name went:
- across a topic's deletion, even after a topic of the same name was
  created again (the held file never reads the new topic's segments, and
  takes no more appends: ENOENT); the deleted topic's files go when the
  last such file is closed;
- across retention and compaction, with so few descriptors that every
  segment is reopened by name after it was closed (the daemon runs under
  `prlimit --nofile=64`, so its segment LRU keeps 16): the removed or
  rewritten segments are read from their retired copies, never from a name
  that is gone or now holds the cleaned file.
"""
import errno
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Mount, info, read, wait_until  # noqa: E402

LINES = 3000


def old_lines(tag):
    return b"".join(b"%s-%05d %s\n" % (tag, i, b"x" * 40) for i in range(LINES))


class HeldFileTest(unittest.TestCase):
    def setUp(self):
        self.m = Mount(opts="partitions=1,retention.check.interval.ms=100")
        self.m.start(prefix=["prlimit", "--nofile=64:64"])
        self.addCleanup(self.m.cleanup)

    def make_topic(self, name, tag, extra=""):
        os.mkdir(self.m.path(name))
        with open(self.m.path(name, ".config"), "a") as f:
            f.write("segment.bytes=4096\n" + extra)
        data = old_lines(tag)
        self.append(name, data)
        self.assertGreater(len(os.listdir(os.path.join(self.m.data, "topics", name, "0"))), 80)
        return data

    def append(self, name, data):
        """Appends in writes of about 1 KiB (a batch each: many segments)."""
        fd = os.open(self.m.path(name, "p0"), os.O_WRONLY | os.O_APPEND)
        try:
            lines = data.splitlines(keepends=True)
            for i in range(0, len(lines), 20):
                os.write(fd, b"".join(lines[i:i + 20]))
        finally:
            os.close(fd)

    def read_all(self, fd):
        out = []
        while True:
            b = os.read(fd, 65536)
            if not b:
                return b"".join(out)
            out.append(b)

    def test_deleted_topic_reads_on_and_goes_at_last_close(self):
        old = self.make_topic("t", b"old")
        fd = os.open(self.m.path("t", "p0"), os.O_RDONLY)
        wfd = os.open(self.m.path("t", "p0"), os.O_WRONLY | os.O_APPEND)
        try:
            os.rmdir(self.m.path("t"))
            os.mkdir(self.m.path("t"))
            with open(self.m.path("t", "p0"), "ab") as f:
                f.write(b"new\n")
            self.assertEqual(self.read_all(fd), old)
            with self.assertRaises(OSError) as cm:
                os.write(wfd, b"late\n")
            self.assertEqual(cm.exception.errno, errno.ENOENT)
            self.assertEqual(read(self.m.path("t", "p0"), "rb"), b"new\n")
            trash = os.path.join(self.m.data, "trash")
            self.assertNotEqual(os.listdir(trash), [])
        finally:
            os.close(fd)
            os.close(wfd)
        wait_until(lambda: os.listdir(trash) == [], what="the deleted topic's files removed")
        self.assertEqual(read(self.m.path("t", "p0"), "rb"), b"new\n")

    def held_across(self, name, data, change, changed):
        """Reads data through a file opened before change() made changed() true."""
        fd = os.open(self.m.path(name, "p0"), os.O_RDONLY)
        try:
            first = os.read(fd, 100)
            change()
            wait_until(changed, what="the change to " + name)
            self.assertEqual(first + self.read_all(fd), data)
        finally:
            os.close(fd)

    def test_reader_across_retention_with_few_descriptors(self):
        data = self.make_topic("r", b"ret")

        def change():
            with open(self.m.path("r", ".config"), "a") as f:
                f.write("retention.bytes=8192\n")

        self.held_across("r", data, change, lambda: info(self.m, "r")["p0"]["start_offset"] > 0)
        self.assertTrue(self.m.alive())

    def test_reader_across_compaction_with_few_descriptors(self):
        # Keyed records, every key written twice: compaction rewrites every
        # closed segment.
        os.mkdir(self.m.path("c"))
        with open(self.m.path("c", ".config"), "a") as f:
            f.write("segment.bytes=4096\nkey.separator=:\n")
        for rnd in range(2):
            self.append("c", b"".join(b"k%04d:v%d %s\n" % (i, rnd, b"y" * 40) for i in range(1500)))
        data = read(self.m.path("c", "p0"), "rb")
        before = info(self.m, "c")["p0"]

        def change():
            with open(self.m.path("c", ".config"), "a") as f:
                f.write("cleanup.policy=compact\nmin.cleanable.dirty.ratio=0.01\n")

        def compacted():
            now = info(self.m, "c")["p0"]
            return now["stored_bytes"] < before["stored_bytes"]

        self.held_across("c", data, change, compacted)
        self.assertTrue(self.m.alive())


if __name__ == "__main__":
    unittest.main(verbosity=2)
