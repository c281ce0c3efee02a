"""Durability and crash recovery on a real mount (issue 2, point 9):
fsynced records survive kill -9; kill -9 during heavy appends recovers on the
next mount with every record before the cut intact; torn or corrupt tails
are cut at the first bad batch; missing or garbage indexes are rebuilt."""
import glob
import os
import random
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import MountTest, info, read, sh, wait_until  # noqa: E402

WRITER = """
import os, sys
path, state = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_WRONLY | os.O_APPEND)
i = 0
buf = []
try:
    while True:
        buf.append(b"seq %d\\n" % i)
        i += 1
        if len(buf) == 997:
            os.write(fd, b"".join(buf))
            buf = []
            if i % 9970 == 0:
                os.fsync(fd)
                with open(state, "w") as f:
                    f.write(str(i))
except OSError:
    pass
"""


class RecoveryTest(MountTest):
    OPTS = "partitions=1"

    def setUp(self):
        super().setUp()
        os.mkdir(self.m.path("orders"))
        self.p0 = self.m.path("orders", "p0")
        self.pdir = os.path.join(self.m.data, "topics", "orders", "0")

    def segment_files(self, suffix):
        return sorted(glob.glob(os.path.join(self.pdir, "*" + suffix)))

    def check_sequence(self, at_least):
        """p0 must be exactly 'seq 0' .. 'seq K-1' with K >= at_least; returns K."""
        data = read(self.p0, "rb")
        k = data.count(b"\n")
        self.assertGreaterEqual(k, at_least)
        self.assertEqual(data, b"".join(b"seq %d\n" % i for i in range(k)))
        self.assertEqual(info(self.m, "orders")["p0"]["end_offset"], k)
        return k

    def test_fsynced_records_survive_kill9(self):
        fd = os.open(self.p0, os.O_WRONLY | os.O_APPEND)
        for i in range(1000):
            os.write(fd, b"seq %d\n" % i)
        os.fsync(fd)
        os.close(fd)
        self.m.kill9()
        self.m.start()
        self.assertEqual(self.check_sequence(1000), 1000)

    def test_kill9_during_heavy_appends(self):
        rnd = random.Random(42)
        state = os.path.join(self.m.base, "fsynced")
        synced_total = 0
        for round_ in range(4):
            with open(state, "w") as f:
                f.write(str(synced_total))
            if round_:
                # Continue the sequence where the recovered log ends.
                k = read(self.p0, "rb").count(b"\n")
                code = WRITER.replace("i = 0", "i = %d" % k)
            else:
                code = WRITER
            w = subprocess.Popen([sys.executable, "-c", code, self.p0, state])
            self.addCleanup(lambda w=w: (w.poll() is None and w.kill(), w.wait()))
            # Crash at an arbitrary moment: after a random amount of appends.
            target = os.stat(self.p0).st_size + 200000 + rnd.randint(0, 2000000)
            wait_until(lambda: os.stat(self.p0).st_size > target, timeout=60, what="appends")
            self.m.kill9()
            w.wait(timeout=30)
            synced_total = int(read(state))
            self.m.start()
            k = self.check_sequence(synced_total)
            synced_total = k
        # The log takes appends after recovery.
        sh("echo 'seq %d' >> %s" % (synced_total, self.p0))
        self.check_sequence(synced_total + 1)

    def write_unsynced(self, start, n):
        fd = os.open(self.p0, os.O_WRONLY | os.O_APPEND)
        for i in range(start, start + n):
            os.write(fd, b"seq %d\n" % i)
        os.close(fd)

    def crash_and_damage(self, damage):
        """Crash after unsynced appends, damage the segment, remount."""
        self.write_unsynced(0, 100)
        self.m.kill9()
        log = self.segment_files(".log")[-1]
        with open(log, "r+b") as f:
            damage(f, os.path.getsize(log))
        self.m.start()

    def test_torn_tail_is_cut(self):
        # Each write above is one 71..73-byte batch; cut 5 bytes into the last one.
        self.crash_and_damage(lambda f, size: f.truncate(size - 5))
        self.assertEqual(self.check_sequence(99), 99)
        self.assertIn("cutting", self.m.log_text())
        sh("echo 'seq 99' >> " + self.p0)
        self.assertEqual(self.check_sequence(100), 100)

    def test_flipped_byte_is_cut_and_never_served(self):
        def flip(f, size):
            pos = size - 40 * 73  # inside one of the last ~40 batches
            f.seek(pos)
            b = f.read(1)
            f.seek(pos)
            f.write(bytes([b[0] ^ 0x55]))
        self.crash_and_damage(flip)
        k = self.check_sequence(50)
        self.assertLess(k, 100)

    def test_garbage_tail_is_cut(self):
        self.crash_and_damage(lambda f, size: (f.seek(size), f.write(os.urandom(5000))))
        self.assertEqual(self.check_sequence(100), 100)

    def test_indexes_rebuilt(self):
        lines = [("record %d %s\n" % (i, "q" * (i % 50))).encode() for i in range(20000)]
        fd = os.open(self.p0, os.O_WRONLY | os.O_APPEND)
        for i in range(0, len(lines), 100):
            os.write(fd, b"".join(lines[i:i + 100]))
        os.fsync(fd)
        os.close(fd)
        data = b"".join(lines)
        for how in ("missing", "garbage"):
            self.m.stop()
            for suffix in (".index", ".timeindex"):
                for path in self.segment_files(suffix):
                    if how == "missing":
                        os.unlink(path)
                    else:
                        with open(path, "wb") as f:
                            f.write(os.urandom(4096))
            self.m.start()
            self.assertGreater(os.path.getsize(self.segment_files(".index")[0]), 0)
            rnd = random.Random(how)
            with open(self.p0, "rb") as f:
                for _ in range(50):
                    pos = rnd.randrange(len(data))
                    self.assertEqual(os.pread(f.fileno(), 300, pos), data[pos:pos + 300])
            self.assertEqual(read(self.p0, "rb"), data)

    def test_recovery_across_segments(self):
        sh("echo segment.bytes=20000 >> " + self.m.path("orders", ".config"))
        self.write_unsynced(0, 3000)
        self.assertGreater(info(self.m, "orders")["p0"]["segments"], 3)
        self.m.kill9()
        logs = self.segment_files(".log")
        # Damage the second segment, never synced (the recovery point is
        # still at the start): everything from there on must go.
        with open(logs[1], "r+b") as f:
            f.seek(10)  # the checksum of its first batch
            f.write(b"\xff" * 8)
        self.m.start()
        k = self.check_sequence(1)
        first_segment_records = int(re.match(r"0*(\d+)", os.path.basename(logs[1])).group(1))
        self.assertEqual(k, first_segment_records)


if __name__ == "__main__":
    unittest.main(verbosity=2)
