"""Producing and consuming with real programs (issue 2, points 3, 4 and 8):
echo/printf/cat appends, line framing across write requests, partial lines,
cat/tail -f/tail -F/head/wc/grep/less/dd/stat, and concurrent writers."""
import hashlib
import os
import random
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import MountTest, info, read, sh, wait_until  # noqa: E402

BIG_MB = int(os.environ.get("TOPICFS_TEST_BIG_MB", "1024"))


class AppendTest(MountTest):
    def setUp(self):
        super().setUp()
        os.mkdir(self.m.path("orders"))
        self.p0 = self.m.path("orders", "p0")

    def end_offset(self):
        return info(self.m, "orders")["p0"]["end_offset"]

    def test_echo_and_printf(self):
        sh("echo msg >> " + self.p0)
        self.assertEqual(self.end_offset(), 1)
        sh("printf 'a\\nb\\nc\\n' >> " + self.p0)
        self.assertEqual(self.end_offset(), 4)
        self.assertEqual(read(self.p0), "msg\na\nb\nc\n")

    def test_lines_split_across_write_requests(self):
        # A 3 MiB write() is cut by the kernel into several requests; odd line
        # lengths guarantee lines straddle the cuts.
        lines = [("line %d %s\n" % (i, "x" * (i % 97))).encode() for i in range(40000)]
        blob = b"".join(lines)
        self.assertGreater(len(blob), 2 << 20)
        fd = os.open(self.p0, os.O_WRONLY | os.O_APPEND)
        try:
            done = 0
            while done < len(blob):
                done += os.write(fd, blob[done:])
        finally:
            os.close(fd)
        self.assertEqual(self.end_offset(), len(lines))
        # Tiny writes that cut every line in pieces.
        fd = os.open(self.p0, os.O_WRONLY | os.O_APPEND)
        try:
            tail = b"".join(("t%d-abcdefghij\n" % i).encode() for i in range(500))
            for i in range(0, len(tail), 7):
                os.write(fd, tail[i:i + 7])
        finally:
            os.close(fd)
        self.assertEqual(self.end_offset(), len(lines) + 500)
        with open(self.p0, "rb") as f:
            self.assertEqual(f.read(), blob + tail)

    def test_partial_line_at_close_and_fsync(self):
        fd = os.open(self.p0, os.O_WRONLY | os.O_APPEND)
        os.write(fd, b"abc")
        self.assertEqual(self.end_offset(), 0)  # held while the file is open
        os.write(fd, b"def")
        os.fsync(fd)
        self.assertEqual(self.end_offset(), 1)  # fsync makes it a record
        os.write(fd, b"ghi")
        os.close(fd)
        # The last close commits the rest (the kernel sends RELEASE after close returns).
        wait_until(lambda: self.end_offset() == 2, what="partial line committed at close")
        self.assertEqual(read(self.p0), "abcdefghi")
        sh("printf tail >> " + self.p0)
        wait_until(lambda: read(self.p0) == "abcdefghitail", what="printf partial line")

    def test_write_framing(self):
        sh("echo framing=write >> " + self.m.path("orders", ".config"))
        fd = os.open(self.p0, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, b"one\ntwo\n")
            os.write(fd, b"three")
        finally:
            os.close(fd)
        self.assertEqual(self.end_offset(), 2)
        self.assertEqual(read(self.p0), "one\ntwo\nthree")

    def test_cat_writes_mebibyte_requests(self):
        """A partition advertises 1 MiB blocks, the largest write request the
        kernel sends topicfs: cat (and stdio) then write 1 MiB at a time, one
        request and one append (for a replicated topic, one ISR round trip)
        per MiB instead of eight."""
        self.assertEqual(os.stat(self.p0).st_blksize, 1 << 20)
        src = os.path.join(self.m.base, "two.txt")
        with open(src, "wb") as f:
            f.write((b"z" * 99 + b"\n") * 25000)  # 2.4 MiB
        trace = os.path.join(self.m.base, "cat.strace")
        r = sh("strace -e trace=write -o %s cat %s >> %s" % (trace, src, self.p0))
        self.assertEqual(r.returncode, 0, r.stderr)
        sizes = [int(line.rsplit("=", 1)[1]) for line in open(trace) if line.startswith("write(")]
        self.assertEqual(sizes[:2], [1 << 20, 1 << 20])
        self.assertEqual(self.end_offset(), 25000)

    def test_big_cat(self):
        src = os.path.join(self.m.base, "big.txt")
        line = b"y" * 99 + b"\n"
        chunk = line * 10000
        n = BIG_MB * (1 << 20) // len(chunk)
        h = hashlib.sha256()
        with open(src, "wb") as f:
            for _ in range(n):
                f.write(chunk)
                h.update(chunk)
        r = sh("cat %s >> %s" % (src, self.p0))
        self.assertEqual(r.returncode, 0, r.stderr)
        os.unlink(src)
        self.assertEqual(self.end_offset(), n * 10000)
        self.assertEqual(os.stat(self.p0).st_size, n * len(chunk))
        got = hashlib.sha256()
        with open(self.p0, "rb") as f:
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                got.update(b)
        self.assertEqual(got.hexdigest(), h.hexdigest())
        self.assertEqual(sh("wc -l < " + self.p0).stdout.strip(), str(n * 10000))


class ReadToolsTest(MountTest):
    def setUp(self):
        super().setUp()
        os.mkdir(self.m.path("orders"))
        self.p0 = self.m.path("orders", "p0")
        self.lines = ["record %05d %s\n" % (i, "z" * (i % 13)) for i in range(3000)]
        with open(self.p0, "a") as f:
            f.write("".join(self.lines))
        self.text = "".join(self.lines)

    def test_coreutils(self):
        self.assertEqual(sh("cat " + self.p0).stdout, self.text)
        self.assertEqual(sh("tail -n 5 " + self.p0).stdout, "".join(self.lines[-5:]))
        self.assertEqual(sh("head -n 3 " + self.p0).stdout, "".join(self.lines[:3]))
        self.assertEqual(sh("wc -l < " + self.p0).stdout.strip(), "3000")
        self.assertEqual(sh("grep -c 'record 01' " + self.p0).stdout.strip(), "1000")
        self.assertEqual(sh("less " + self.p0 + " | cat").stdout, self.text)
        self.assertEqual(int(sh("stat -c %s " + self.p0).stdout), len(self.text))
        sh("echo more >> " + self.p0)
        self.assertEqual(int(sh("stat -c %s " + self.p0).stdout), len(self.text) + 5)

    def test_dd_at_arbitrary_positions(self):
        data = self.text.encode()
        rnd = random.Random(7)
        for _ in range(40):
            skip = rnd.randrange(0, len(data))
            count = rnd.randrange(1, 5000)
            out = subprocess.run(["dd", "if=" + self.p0, "bs=1", "skip=%d" % skip,
                                  "count=%d" % count, "status=none"], capture_output=True).stdout
            self.assertEqual(out, data[skip:skip + count])
        out = subprocess.run(["dd", "if=" + self.p0, "bs=4096", "skip=3", "status=none"],
                             capture_output=True).stdout
        self.assertEqual(out, data[3 * 4096:])
        with open(self.p0, "rb") as f:  # pread far past the end
            self.assertEqual(os.pread(f.fileno(), 10, len(data) + 1000), b"")


class FollowTest(MountTest):
    N = 100000

    def setUp(self):
        super().setUp()
        os.mkdir(self.m.path("orders"))
        self.p0 = self.m.path("orders", "p0")
        sh("echo before >> " + self.p0)

    def follow(self, flag):
        out = os.path.join(self.m.base, "tail.out")
        with open(out, "wb") as f:
            tail = subprocess.Popen(["tail", flag, "-n", "+1", "-s", "0.1", self.p0], stdout=f)
        self.addCleanup(lambda: (tail.poll() is None and tail.kill(), tail.wait()))
        wait_until(lambda: os.path.getsize(out) == len("before\n"), what="tail start")
        writer = subprocess.Popen([sys.executable, "-c", """
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
for i in range(int(sys.argv[2])):
    os.write(fd, b"line %d\\n" % i)
os.close(fd)
""", self.p0, str(self.N)])
        self.addCleanup(lambda: (writer.poll() is None and writer.kill(), writer.wait()))
        expected = "before\n" + "".join("line %d\n" % i for i in range(self.N))
        # Records show up while the writer is still going, not only at the end.
        wait_until(lambda: os.path.getsize(out) > 1000, timeout=30, what="first records")
        self.assertEqual(writer.wait(timeout=300), 0)
        wait_until(lambda: os.path.getsize(out) >= len(expected), timeout=60,
                   what="tail to catch up")
        self.assertEqual(read(out), expected)
        # A later append reaches the still-running tail.
        sh("echo last >> " + self.p0)
        wait_until(lambda: read(out).endswith("line %d\nlast\n" % (self.N - 1)),
                   timeout=10, what="tail to print a new record")

    def test_tail_f(self):
        self.follow("-f")

    def test_tail_F(self):
        self.follow("-F")


class ConcurrentWritersTest(MountTest):
    WRITERS = 8
    LINES = 100000

    def test_eight_writers_one_partition(self):
        os.mkdir(self.m.path("orders"))
        p0 = self.m.path("orders", "p0")
        # Buffered writes of 4 KiB cut lines at arbitrary points, so a line's
        # halves arrive in different write requests with other writers' data between.
        code = """
import sys
w, n = sys.argv[2], int(sys.argv[3])
with open(sys.argv[1], "ab", buffering=4096) as f:
    for i in range(n):
        f.write(b"w%s %07d %s\\n" % (w.encode(), i, b"p" * (i % 41)))
"""
        procs = [subprocess.Popen([sys.executable, "-c", code, p0, str(w), str(self.LINES)])
                 for w in range(self.WRITERS)]
        for p in procs:
            self.addCleanup(lambda p=p: (p.poll() is None and p.kill(), p.wait()))
        for p in procs:
            self.assertEqual(p.wait(timeout=600), 0)
        total = self.WRITERS * self.LINES
        self.assertEqual(info(self.m, "orders")["p0"]["end_offset"], total)
        nxt = [0] * self.WRITERS
        count = 0
        with open(p0, "rb") as f:
            for line in f:
                w, i, pad = line.rstrip(b"\n").split(b" ")
                w, i = int(w[1:]), int(i)
                self.assertEqual(i, nxt[w], "writer %d out of order or lost" % w)
                self.assertEqual(pad, b"p" * (i % 41))
                nxt[w] += 1
                count += 1
        self.assertEqual(count, total)
        self.assertEqual(nxt, [self.LINES] * self.WRITERS)


if __name__ == "__main__":
    unittest.main(verbosity=2)
