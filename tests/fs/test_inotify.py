"""A partition's one inode (issue 8, defect 10): an inotify watch keeps
reporting appends across retention and compaction passes (inotifywait,
lnav), readers still see what design.md's Fetching promises, and the
attributes the kernel caches for the inode are dropped at every change it
did not make itself, so stat stays exact."""
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import MountTest, info, read, sh, wait_until  # noqa: E402


def set_config(m, topic, **kv):
    with open(m.path(topic, ".config"), "a") as f:
        for k, v in kv.items():
            f.write("%s=%s\n" % (k.replace("_", "."), v))


class InotifyTest(MountTest):
    OPTS = "partitions=1,retention.check.interval.ms=100"

    def setUp(self):
        super().setUp()
        os.mkdir(self.m.path("orders"))
        self.p0 = self.m.path("orders", "p0")
        set_config(self.m, "orders", segment_bytes=300, key_separator=":")
        self.n = 0

    def watch(self):
        out = os.path.join(self.m.base, "inotify.out")
        err = os.path.join(self.m.base, "inotify.err")
        with open(out, "wb") as o, open(err, "wb") as e:
            w = subprocess.Popen(["inotifywait", "-m", "-e", "modify", "--format", "%e", self.p0],
                                 stdout=o, stderr=e)
        self.addCleanup(lambda: (w.poll() is None and w.kill(), w.wait()))
        wait_until(lambda: "Watches established" in read(err), what="inotifywait to start")
        return out

    def append(self, count=1, key=None):
        for _ in range(count):
            sh("echo '%s:record %d' >> %s" % (key or "k%d" % self.n, self.n, self.p0))
            self.n += 1

    def expect_event(self, out, what):
        before = read(out).count("MODIFY")
        self.append()
        wait_until(lambda: read(out).count("MODIFY") > before, what="an inotify event " + what)

    def records(self):
        with open(self.m.path("orders", "p0.jsonl")) as f:
            return [json.loads(line) for line in f]

    def test_watch_reports_appends_across_retention_and_compaction(self):
        out = self.watch()
        ino = os.stat(self.p0).st_ino
        self.expect_event(out, "before any pass")
        set_config(self.m, "orders", retention_ms=1)
        for k in range(3):
            start = info(self.m, "orders")["p0"]["start_offset"]
            self.append(20)  # closes segments the next pass removes
            wait_until(lambda: info(self.m, "orders")["p0"]["start_offset"] > start, timeout=20,
                       what="retention pass %d" % k)
            self.expect_event(out, "after retention pass %d" % k)
            self.assertEqual(os.stat(self.p0).st_ino, ino)
            # A fresh cat shows exactly the retained records.
            i = info(self.m, "orders")["p0"]
            with open(self.p0, "rb") as f:
                text = f.read().decode()
            first = int(text.split("\n")[0].split(" ")[-1])
            self.assertGreaterEqual(first, i["start_offset"])
            self.assertEqual(text, "".join("k%d:record %d\n" % (j, j) for j in range(first, self.n)))
        # Compaction: one key written over and over.
        set_config(self.m, "orders", retention_ms=-1, cleanup_policy="compact",
                   min_cleanable_dirty_ratio="0.01")
        self.append(40, key="same")
        wait_until(lambda: sum(r["key"] == "same" for r in self.records()) < 30, timeout=20,
                   what="a compaction pass")
        self.expect_event(out, "after compaction")
        self.assertEqual(os.stat(self.p0).st_ino, ino)


    def test_stat_exact_after_every_kind_of_append(self):
        size = lambda: os.stat(self.p0).st_size  # noqa: E731
        content = lambda: len(read(self.p0))  # noqa: E731
        self.append(3)
        self.assertEqual(size(), content())
        # Through .produce: the kernel wrote another file.
        before = size()
        with open(self.m.path("orders", ".produce"), "a") as f:
            f.write("k:via produce\n")
        self.assertEqual(size(), before + len("k:via produce\n"))
        # A partial line becomes a record at fsync, not in a WRITE.
        fd = os.open(self.p0, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, b"partial")
            before = os.fstat(fd).st_size
            self.assertEqual(size(), before)
            os.fsync(fd)
            self.assertEqual(os.fstat(fd).st_size, before + len("partial"))
            self.assertEqual(size(), content())
        finally:
            os.close(fd)


if __name__ == "__main__":
    unittest.main(verbosity=2)
