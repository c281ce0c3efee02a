"""Log lifecycle on a real mount (issue 3): retention under running tail -f /
tail -F readers, compaction with tombstones, lz4 batches, and the hidden
names p0@offset, p0@-N, p0@time, p0.jsonl."""
import base64
import errno
import json
import os
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import MountTest, info, read, sh, wait_until  # noqa: E402


def set_config(m, topic, **kv):
    with open(m.path(topic, ".config"), "a") as f:
        for k, v in kv.items():
            f.write("%s=%s\n" % (k.replace("_", "."), v))


class RetentionTest(MountTest):
    OPTS = "partitions=1,retention.check.interval.ms=100"

    def setUp(self):
        super().setUp()
        os.mkdir(self.m.path("orders"))
        self.p0 = self.m.path("orders", "p0")
        set_config(self.m, "orders", segment_bytes=1000, retention_ms=600)

    def start_tail(self, flag):
        out = os.path.join(self.m.base, "tail%s.out" % flag)
        f = open(out, "wb")
        self.addCleanup(f.close)
        t = subprocess.Popen(["tail", flag, "-s", "0.05", self.p0], stdout=f)
        self.addCleanup(lambda: (t.poll() is None and t.kill(), t.wait()))
        return t, out

    def test_tails_across_removal_print_each_record_once(self):
        tails = [self.start_tail("-f"), self.start_tail("-F")]
        n = 300
        for i in range(n):
            sh("echo 'record %d' >> %s" % (i, self.p0))
            if i == n // 2:
                # The second half is appended once retention removed part of
                # the first, while the tails run.
                wait_until(lambda: info(self.m, "orders")["p0"]["start_offset"] > 0, timeout=20,
                           what="retention to remove the head")
        expected = "".join("record %d\n" % i for i in range(n))
        wait_until(lambda: info(self.m, "orders")["p0"]["start_offset"] > 100, timeout=20,
                   what="retention to remove more of the head")
        for t, out in tails:
            wait_until(lambda: os.path.getsize(out) >= len(expected), timeout=20,
                       what="tail output")
            self.assertIsNone(t.poll(), "tail exited")
            self.assertEqual(read(out), expected)
        # A fresh cat and wc see exactly the retained records. Wait until
        # only the active segment is left: the cleaner can remove nothing
        # more, so the log start cannot move between the checks below.
        i = wait_until(lambda: (lambda p: p if p["segments"] == 1 else None)(
            info(self.m, "orders")["p0"]), timeout=20, what="every closed segment removed")
        start, end = i["start_offset"], i["end_offset"]
        self.assertEqual(end, n)
        retained = "".join("record %d\n" % k for k in range(start, n))
        # A file opened now has the new layout: fstat shows its size. stat
        # of the name, by a process with no open file of it, shows the size
        # of the oldest file still open that has read (the tails'), so that
        # a tail whose file another process opened never sees it shrink.
        with open(self.p0, "rb") as f:
            self.assertEqual(os.fstat(f.fileno()).st_size, len(retained))
            self.assertEqual(f.read(), retained.encode())
        # (the kernel sends the RELEASE of the file closed above after
        # close() returns: until the daemon has it, this process still
        # counts as having p0 open)
        wait_until(lambda: os.stat(self.p0).st_size == len(expected),
                   what="stat to show the tails' size")
        self.assertEqual(sh("wc -l < " + self.p0).stdout.strip(), str(n - start))
        self.assertEqual(i["bytes"], len(retained))
        for t, _ in tails:
            t.kill()
            t.wait()
        wait_until(lambda: os.stat(self.p0).st_size == len(retained),
                   what="stat to show the retained size once the tails are gone")

    def test_tail_of_a_file_another_process_opened(self):
        # `tail -f` on its standard input, opened by this process: its fstat
        # carries no open file of its own, and its file must still never
        # shrink across a removal (stat shows the oldest open file's size).
        out = os.path.join(self.m.base, "tail-stdin.out")
        for i in range(50):
            sh("echo 'record %d' >> %s" % (i, self.p0))
        src = open(self.p0, "rb")
        self.addCleanup(src.close)
        with open(out, "wb") as f:
            t = subprocess.Popen(["tail", "-f", "-n", "+1", "-s", "0.05"], stdin=src, stdout=f)
        self.addCleanup(lambda: (t.poll() is None and t.kill(), t.wait()))
        wait_until(lambda: read(out) == "".join("record %d\n" % i for i in range(50)),
                   what="tail to print the file")
        start = info(self.m, "orders")["p0"]["start_offset"]
        for i in range(50, 150):
            sh("echo 'record %d' >> %s" % (i, self.p0))
        wait_until(lambda: info(self.m, "orders")["p0"]["start_offset"] > start, timeout=20,
                   what="retention to remove the head")
        for i in range(150, 160):
            sh("echo 'record %d' >> %s" % (i, self.p0))
        expected = "".join("record %d\n" % i for i in range(160))
        wait_until(lambda: len(read(out)) >= len(expected), timeout=20, what="tail output")
        self.assertEqual(read(out), expected)
        # This process opened the tail's file: its stat and fstat show that
        # file's size; lseek(SEEK_END) names the open file and answers its
        # own size, for a file opened now the new layout's.
        set_config(self.m, "orders", retention_ms=-1)
        self.assertEqual(os.fstat(src.fileno()).st_size, len(expected))
        with open(self.p0, "rb") as f:
            end = f.seek(0, os.SEEK_END)
            f.seek(0)
            self.assertEqual(end, len(f.read()))
            self.assertLess(end, len(expected))
            self.assertEqual(os.fstat(f.fileno()).st_size, len(expected))

    def test_old_reader_never_gets_misplaced_bytes(self):
        # Removed segments are not kept for older readers at all here.
        set_config(self.m, "orders", file_delete_delay_ms=0, retention_ms=-1)
        for i in range(100):
            sh("echo 'record %d' >> %s" % (i, self.p0))
        fd = os.open(self.p0, os.O_RDONLY)
        self.addCleanup(os.close, fd)
        first = os.pread(fd, 11, 0)
        self.assertEqual(first, b"record 0\nre")
        set_config(self.m, "orders", retention_ms=600)
        wait_until(lambda: info(self.m, "orders")["p0"]["start_offset"] > 0, timeout=20,
                   what="retention")
        # Position 0 of this open file is gone: an error, never other bytes.
        with self.assertRaises(OSError) as cm:
            os.pread(fd, 11, 0)
        self.assertEqual(cm.exception.errno, errno.ENODATA)
        # The tail of the old file is still right, and it grows.
        old_size = os.fstat(fd).st_size
        self.assertEqual(old_size, sum(len("record %d\n" % k) for k in range(100)))
        sh("echo 'record 100' >> " + self.p0)
        self.assertEqual(os.pread(fd, 100, old_size), b"record 100\n")
        self.assertEqual(os.fstat(fd).st_size, old_size + 11)

    def test_old_reader_reads_removed_head_within_delay(self):
        # file.delete.delay.ms (default 60 s): a reader that opened before
        # retention still reads what was there, at the same positions.
        set_config(self.m, "orders", retention_ms=-1)
        for i in range(100):
            sh("echo 'record %d' >> %s" % (i, self.p0))
        fd = os.open(self.p0, os.O_RDONLY)
        self.addCleanup(os.close, fd)
        self.assertEqual(os.pread(fd, 9, 0), b"record 0\n")
        set_config(self.m, "orders", retention_ms=600)
        wait_until(lambda: info(self.m, "orders")["p0"]["start_offset"] > 0, timeout=20,
                   what="retention")
        size = os.fstat(fd).st_size
        expected = "".join("record %d\n" % k for k in range(100)).encode()
        self.assertEqual(size, len(expected))
        self.assertEqual(os.pread(fd, size, 0), expected)
        sh("echo 'record 100' >> " + self.p0)
        self.assertEqual(os.pread(fd, 1 << 20, 0), expected + b"record 100\n")
        # A file opened now starts at the new log start.
        start = info(self.m, "orders")["p0"]["start_offset"]
        self.assertTrue(read(self.p0).startswith("record %d\n" % start))

    def test_retention_bytes(self):
        set_config(self.m, "orders", retention_ms=-1, retention_bytes=3000)
        for i in range(400):
            sh("echo 'record %d' >> %s" % (i, self.p0))
        wait_until(lambda: info(self.m, "orders")["p0"]["stored_bytes"] <= 3000 + 1100,
                   timeout=20, what="retention.bytes")
        i = info(self.m, "orders")["p0"]
        self.assertGreater(i["start_offset"], 0)
        self.assertEqual(read(self.p0), "".join("record %d\n" % k for k in range(i["start_offset"], 400)))


class CompactionTest(MountTest):
    OPTS = "partitions=1,retention.check.interval.ms=100"

    def setUp(self):
        super().setUp()
        os.mkdir(self.m.path("orders"))
        self.p0 = self.m.path("orders", "p0")
        set_config(self.m, "orders", key_separator=":", segment_bytes=2000,
                   cleanup_policy="compact", min_cleanable_dirty_ratio="0.01",
                   delete_retention_ms=60000)

    def records(self, name="p0.jsonl"):
        with open(self.m.path("orders", name)) as f:
            return [json.loads(l) for l in f]

    def test_latest_per_key_offsets_kept(self):
        lines = []
        for i in range(300):
            line = "k%d:v%d\n" % (i % 7, i)
            lines.append(line)
        fd = os.open(self.p0, os.O_WRONLY | os.O_APPEND)
        for line in lines:
            os.write(fd, line.encode())
        os.close(fd)
        # Readers during compaction always see a consistent log.
        stop = threading.Event()
        bad = []

        def reader():
            while not stop.is_set():
                recs = self.records()
                offs = [r["offset"] for r in recs]
                if offs != sorted(offs) or any(r["value"] != lines[r["offset"]] for r in recs):
                    bad.append(offs)
        th = threading.Thread(target=reader)
        th.start()
        try:
            # A pass can run while the records are being written and clean
            # only the segments closed by then: wait for the later passes.
            wait_until(lambda: len(self.records()) < 100, timeout=20, what="compaction")
        finally:
            stop.set()
            th.join()
        self.assertEqual(bad, [])
        recs = self.records()
        self.assertLess(len(recs), 150)
        # Every key keeps its latest record; offsets are the original ones.
        latest = {}
        for off, line in enumerate(lines):
            latest[line.split(":")[0]] = off
        offs = {r["offset"] for r in recs}
        for key, off in latest.items():
            self.assertIn(off, offs, key)
        for r in recs:
            self.assertEqual(r["value"], lines[r["offset"]])
            self.assertEqual(r["key"], lines[r["offset"]].split(":")[0])
        # The partition file is the surviving values in offset order.
        stream = "".join(r["value"] for r in recs)
        self.assertEqual(read(self.p0), stream)
        # The kernel may still hold the name of the layout before the pass
        # for a moment (the daemon invalidates it right after the pass).
        wait_until(lambda: os.stat(self.p0).st_size == len(stream), what="st_size of the new layout")
        self.assertEqual(info(self.m, "orders")["p0"]["bytes"], len(stream))
        self.assertEqual(info(self.m, "orders")["p0"]["end_offset"], 300)

    def test_tombstone_kept_then_removed(self):
        set_config(self.m, "orders", delete_retention_ms=1500)
        fd = os.open(self.p0, os.O_WRONLY | os.O_APPEND)
        for i in range(100):
            os.write(fd, b"gone:%d\n" % i)
            os.write(fd, b"stay:%d\n" % i)
        os.write(fd, b"gone:\n")  # tombstone
        for i in range(60):  # push the tombstone out of the active segment
            os.write(fd, b"filler%d:%d\n" % (i, i))
        os.close(fd)
        wait_until(lambda: "gone:\n" in [r["value"] for r in self.records()] and
                   not any(r["value"].startswith("gone:9") for r in self.records()),
                   timeout=20, what="compaction keeping the tombstone")
        wait_until(lambda: not any(r["key"] == "gone" for r in self.records()), timeout=20,
                   what="tombstone removed after delete.retention.ms")
        vals = [r["value"] for r in self.records()]
        self.assertIn("stay:99\n", vals)
        self.assertNotIn("stay:98\n", vals)

    def test_kill9_during_compaction_keeps_log_whole(self):
        # Big enough that a pass takes a while; the daemon is killed while a
        # pass is writing cleaning/ (at least once over three rounds).
        set_config(self.m, "orders", segment_bytes=1 << 20)
        cleaning = os.path.join(self.m.data, "topics", "orders", "0", "cleaning")
        pad = "x" * 90
        value = lambda i: "k%d:v%d %s\n" % (i % 1000, i, pad)  # noqa: E731
        n, caught = 0, 0
        for _ in range(3):
            fd = os.open(self.p0, os.O_WRONLY | os.O_APPEND)
            data = "".join(value(i) for i in range(n, n + 100000)).encode()
            for k in range(0, len(data), 1 << 17):
                os.write(fd, data[k:k + (1 << 17)])
            os.close(fd)
            n += 100000
            try:
                wait_until(lambda: os.path.isdir(cleaning), timeout=10, interval=0.001,
                           what="a compaction pass")
                caught += 1
            except AssertionError:
                pass  # the pass ran between two polls: kill after it instead
            self.m.kill9()
            self.m.start()
            recs = self.records()
            offs = [r["offset"] for r in recs]
            self.assertEqual(offs, sorted(set(offs)))
            for r in recs:
                self.assertEqual(r["value"], value(r["offset"]))
            # the latest record of every key is there
            for key in range(1000):
                self.assertIn(max(i for i in range(key, n, 1000)), set(offs))
            self.assertEqual(offs[-1], n - 1)
            # p0 (read separately: a new pass may run in between) is such a
            # log too: whole records of increasing offsets, latest per key.
            text = read(self.p0)
            seq = [int(line.split(" ")[0].split(":v")[1]) for line in text.splitlines()]
            self.assertEqual(seq, sorted(set(seq)))
            self.assertEqual(text, "".join(value(i) for i in seq))
            self.assertTrue(set(range(n - 1000, n)) <= set(seq))
        self.assertGreater(caught, 0)

    def test_reader_across_compaction(self):
        # No pass may run before the readers below are open.
        set_config(self.m, "orders", cleanup_policy="delete", retention_ms=-1)
        fd = os.open(self.p0, os.O_WRONLY | os.O_APPEND)
        for i in range(300):
            os.write(fd, b"k%d:v%d\n" % (i % 3, i))
        os.close(fd)
        expected = b"".join(b"k%d:v%d\n" % (i % 3, i) for i in range(300))
        # One reader stops in the middle of what compaction will rewrite,
        # one has not read yet: both go on in the log as they opened it.
        mid = os.open(self.p0, os.O_RDONLY)
        self.addCleanup(os.close, mid)
        fresh = os.open(self.p0, os.O_RDONLY)
        self.addCleanup(os.close, fresh)
        first = os.read(mid, 1001)
        set_config(self.m, "orders", cleanup_policy="compact")
        wait_until(lambda: len(self.records()) < 150, timeout=20, what="compaction")
        for fd, data in [(mid, first), (fresh, b"")]:
            while True:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                data += chunk
            self.assertEqual(data, expected)
        # With old layouts not kept, an unread file reads the compacted log.
        set_config(self.m, "orders", file_delete_delay_ms=0)
        late = os.open(self.p0, os.O_RDONLY)
        self.addCleanup(os.close, late)
        sh("echo 'k0:more' >> " + self.p0)
        wait_until(lambda: len(self.records()) < 10, timeout=20, what="another compaction")
        data = b""
        while True:
            chunk = os.read(late, 65536)
            if not chunk:
                break
            data += chunk
        self.assertLess(len(data), len(expected))
        self.assertTrue(data.endswith(b"k0:more\n"))

    def test_state_survives_remount(self):
        fd = os.open(self.p0, os.O_WRONLY | os.O_APPEND)
        for i in range(300):
            os.write(fd, b"k%d:v%d\n" % (i % 3, i))
        os.close(fd)
        wait_until(lambda: len(self.records()) < 150, timeout=20, what="compaction")
        before = read(self.p0)
        self.m.restart()
        self.assertEqual(read(self.p0), before)
        sh("echo 'k1:new' >> " + self.p0)
        self.assertTrue(read(self.p0).endswith("k1:new\n"))


class Lz4Test(MountTest):
    OPTS = "partitions=1"

    def test_compressed_batches_read_back(self):
        os.mkdir(self.m.path("logs"))
        set_config(self.m, "logs", compression_type="lz4")
        p0 = self.m.path("logs", "p0")
        lines = ['10.0.%d.%d - - [23/Nov/2026:10:%02d:%02d +0000] "GET /api/v1/items/%d HTTP/1.1" '
                 '200 %d "-" "curl/8.1"\n' % (i % 7, i % 250, i % 60, i % 60, i, 100 + i % 900)
                 for i in range(20000)]
        data = "".join(lines).encode()
        fd = os.open(p0, os.O_WRONLY | os.O_APPEND)
        for i in range(0, len(data), 65536):
            os.write(fd, data[i:i + 65536])
        os.close(fd)
        self.assertEqual(read(p0, "rb"), data)
        i = info(self.m, "logs")["p0"]
        self.assertEqual(i["end_offset"], 20000)
        self.assertEqual(i["bytes"], len(data))
        self.assertLess(i["stored_bytes"], len(data) / 2)
        # Random reads land right inside compressed batches.
        with open(p0, "rb") as f:
            for pos in (0, 1, 65535, 65536, 123457, len(data) - 10):
                self.assertEqual(os.pread(f.fileno(), 50, pos), data[pos:pos + 50])
        self.m.restart()
        self.assertEqual(read(p0, "rb"), data)
        recs = [json.loads(l) for l in read(self.m.path("logs", "p0@19998.jsonl")).splitlines()]
        self.assertEqual([r["value"] for r in recs], lines[19998:])


class HiddenNamesTest(MountTest):
    OPTS = "partitions=2"

    def setUp(self):
        super().setUp()
        os.mkdir(self.m.path("orders"))
        self.p0 = self.m.path("orders", "p0")
        self.lines = ["record %d\n" % i for i in range(50)]
        fd = os.open(self.p0, os.O_WRONLY | os.O_APPEND)
        for i, l in enumerate(self.lines):
            os.write(fd, l.encode())
            if i == 24:
                # t_mid: a millisecond after record 24, before record 25.
                os.close(fd)
                before = time.time_ns() // 1000000
                wait_until(lambda: time.time_ns() // 1000000 > before, what="the clock to move")
                self.t_mid = time.time_ns() // 1000000
                wait_until(lambda: time.time_ns() // 1000000 > self.t_mid, what="the clock to move")
                fd = os.open(self.p0, os.O_WRONLY | os.O_APPEND)
        os.close(fd)

    def test_from_offset_last_and_time(self):
        self.assertEqual(read(self.m.path("orders", "p0@40")), "".join(self.lines[40:]))
        self.assertEqual(read(self.m.path("orders", "p0@0")), "".join(self.lines))
        self.assertEqual(read(self.m.path("orders", "p0@-10")), "".join(self.lines[-10:]))
        self.assertEqual(read(self.m.path("orders", "p0@-100")), "".join(self.lines))
        self.assertEqual(read(self.m.path("orders", "p0@99")), "")
        self.assertEqual(read(self.m.path("orders", "p0@t%d" % self.t_mid)),
                         "".join(self.lines[25:]))
        iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.t_mid // 1000))
        iso += ".%03dZ" % (self.t_mid % 1000)
        self.assertEqual(read(self.m.path("orders", "p0@" + iso)), "".join(self.lines[25:]))
        self.assertEqual(read(self.m.path("orders", "p0@2000-01-01T00:00:00Z")),
                         "".join(self.lines))
        self.assertEqual(read(self.m.path("orders", "p0@2999-01-01T00:00:00+02:00")), "")
        self.assertEqual(sh("head -n 2 " + self.m.path("orders", "p0@10")).stdout,
                         "".join(self.lines[10:12]))
        self.assertEqual(os.stat(self.m.path("orders", "p0@45")).st_size,
                         len("".join(self.lines[45:])))

    def test_malformed_is_enoent_and_names_are_hidden(self):
        for name in ["p0@", "p0@x", "p0@-", "p0@t", "p0@1x", "p0@01", "p0@2026-13-01T00:00:00Z",
                     "p0@2026-11-23", "p5@1", "p0@1.json", "p0.jsonx", "q0@1"]:
            self.assertErrno(errno.ENOENT, open, self.m.path("orders", name))
        self.assertEqual(sorted(os.listdir(self.m.path("orders"))),
                         [".config", ".groups", ".info", ".produce", "p0", "p1"])
        self.assertErrno(errno.EACCES, open, self.m.path("orders", "p0@1"), "a")

    def test_tail_f_on_offset_name(self):
        out = os.path.join(self.m.base, "t.out")
        with open(out, "wb") as f:
            t = subprocess.Popen(["tail", "-f", "-n", "+1", "-s", "0.05",
                                  self.m.path("orders", "p0@45")], stdout=f)
        self.addCleanup(lambda: (t.poll() is None and t.kill(), t.wait()))
        sh("echo 'record 50' >> " + self.p0)
        expected = "".join(self.lines[45:]) + "record 50\n"
        wait_until(lambda: read(out) == expected, timeout=10, what="tail -f p0@45")

    def tail(self, *args):
        out = os.path.join(self.m.base, "tail%d.out" % len(os.listdir(self.m.base)))
        with open(out, "wb") as f:
            t = subprocess.Popen(["tail"] + list(args), stdout=f, stderr=subprocess.STDOUT)
        self.addCleanup(lambda: (t.poll() is None and t.kill(), t.wait()))
        return out

    def test_stat_is_stable_and_exact(self):
        # Each stat looks the name up again: st_ino must not change (tail -F),
        # and a jsonl name's size is the length of its text, growing.
        for name in ["p0@45", "p0@-3", "p0.jsonl", "p0@40.jsonl"]:
            path = self.m.path("orders", name)
            self.assertEqual(len({os.stat(path).st_ino for _ in range(5)}), 1, name)
            self.assertEqual(os.stat(path).st_size, len(read(path, "rb")), name)
        self.assertNotEqual(os.stat(self.m.path("orders", "p0@45")).st_ino,
                            os.stat(self.m.path("orders", "p0@46")).st_ino)
        self.assertNotEqual(os.stat(self.m.path("orders", "p0@45")).st_ino, os.stat(self.p0).st_ino)
        jl = self.m.path("orders", "p0.jsonl")
        before = os.stat(jl).st_size
        sh("echo 'record 50' >> " + self.p0)
        self.assertEqual(os.stat(jl).st_size, len(read(jl, "rb")))
        self.assertGreater(os.stat(jl).st_size, before)

    def test_tail_f_on_jsonl_and_tail_F_on_hidden_names(self):
        outs = [self.tail("-f", "-s", "0.05", self.m.path("orders", "p0@48.jsonl")),
                self.tail("-F", "-n", "+1", "-s", "0.05", self.m.path("orders", "p0@47")),
                self.tail("-F", "-s", "0.05", self.m.path("orders", "p0.jsonl"))]
        wait_until(lambda: all(os.path.getsize(o) for o in outs), what="tails to start")
        sh("echo 'record 50' >> " + self.p0)

        def offsets(out):
            return [json.loads(line)["offset"] for line in read(out).splitlines()]
        wait_until(lambda: offsets(outs[0]) == [48, 49, 50], what="tail -f of p0@48.jsonl")
        # tail -F stats the name at every poll: had it taken any lookup for
        # a new file, it would print the file again before record 51.
        wait_until(lambda: read(outs[1]).endswith("record 50\n"), what="tail -F of p0@47")
        sh("echo 'record 51' >> " + self.p0)
        expected = "".join(self.lines[47:]) + "record 50\nrecord 51\n"
        wait_until(lambda: read(outs[1]) == expected, what="tail -F of p0@47, each record once")
        wait_until(lambda: offsets(outs[0]) == [48, 49, 50, 51], what="tail -f of p0@48.jsonl")
        wait_until(lambda: offsets(outs[2]) == list(range(40, 52)), what="tail -F of p0.jsonl")

    def test_jsonl_any_bytes(self):
        p1 = self.m.path("orders", "p1")
        values = [b"plain\n", b"quote \" backslash \\ tab \t\n", b"\x00\x01ctl\x7f\n",
                  "ünïcödé ✓\n".encode(), b"bad utf8 \xff\xfe\n", b"no newline"]
        for v in values:
            fd = os.open(p1, os.O_WRONLY | os.O_APPEND)
            os.write(fd, v)
            os.close(fd)
        sh("echo key.separator=: >> " + self.m.path("orders", ".config"))
        sh("echo 'user42:keyed' >> " + p1)
        values.append(b"user42:keyed\n")
        recs = [json.loads(l) for l in read(self.m.path("orders", "p1.jsonl")).splitlines()]
        self.assertEqual([r["offset"] for r in recs], list(range(len(values))))
        for r, v in zip(recs, values):
            got = base64.b64decode(r["value_base64"]) if "value_base64" in r else r["value"].encode()
            self.assertEqual(got, v)
            self.assertGreater(r["timestamp"], 1700000000000)
        self.assertIsNone(recs[0]["key"])
        self.assertEqual(recs[-1]["key"], "user42")
        jq = sh("command -v jq >/dev/null && jq -r .offset " + self.m.path("orders", "p1.jsonl"))
        if jq.returncode == 0:
            self.assertEqual(jq.stdout.split(), [str(i) for i in range(len(values))])
        later = [json.loads(l) for l in read(self.m.path("orders", "p1@5.jsonl")).splitlines()]
        self.assertEqual([r["offset"] for r in later], [5, 6])


if __name__ == "__main__":
    unittest.main(verbosity=2)
