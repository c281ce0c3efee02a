"""Damaged files in a data dir (issue 8, defect 2): a byte of a synced
segment that fails its checksum, a flipped header field, a zeroed, truncated
or deleted segment, lost or garbled indexes and recovery point. Whatever is
damaged, a mount serves every other record exactly, refuses the damaged ones
with EIO through every read path (`cat p0`, `p0@N`, `p0.jsonl`, a group
drain), counts them in .info and .metrics, and a remount keeps every later
segment; only a tail that was never synced is cut."""
import ctypes
import errno
import glob
import json
import os
import shutil
import struct
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Mount, info, read, sh  # noqa: E402

RECORDS = 300
HEADER = 64


def line(i):
    return b"line-%04d\n" % i


def batches(path):
    """[(file_pos, length, base_offset, record_count)] of a .log."""
    out = []
    with open(path, "rb") as f:
        data = f.read()
    at = 0
    while at + HEADER <= len(data):
        _magic, length, _ck, base, _pos, _ts, count = struct.unpack_from("<IIQQQqI", data, at)
        out.append((at, length, base, count))
        at += length
    return out


def flip(path, at, mask=0xFF):
    with open(path, "r+b") as f:
        f.seek(at)
        c = f.read(1)[0]
        f.seek(at)
        f.write(bytes([c ^ mask]))


class CorruptionTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        """One data dir: RECORDS one-record batches in 1 KiB segments, synced."""
        cls.orig = Mount(opts="partitions=1").start()
        m = cls.orig
        try:
            os.mkdir(m.path("orders"))
            with open(m.path("orders", ".config"), "w") as f:
                f.write("segment.bytes=1024\n")
            fd = os.open(m.path("orders", "p0"), os.O_WRONLY | os.O_APPEND)
            for i in range(RECORDS):
                os.write(fd, line(i))
            os.fsync(fd)
            os.close(fd)
            m.stop()
        except Exception:
            m.cleanup()
            raise
        cls.pdir = os.path.join(m.data, "topics", "orders", "0")
        cls.logs = sorted(glob.glob(os.path.join(cls.pdir, "*.log")))
        assert len(cls.logs) > 20, cls.logs

    @classmethod
    def tearDownClass(cls):
        cls.orig.cleanup()

    def setUp(self):
        """A fresh copy of the data dir, mounted after the test damaged it."""
        self.m = Mount(opts="partitions=1")
        self.addCleanup(self.m.cleanup)
        shutil.copytree(self.orig.data, self.m.data)
        self.pdir = os.path.join(self.m.data, "topics", "orders", "0")

    def seg(self, k, suffix=".log"):
        """Path of the k-th segment's file in the copy."""
        base = os.path.basename(self.logs[k])[:-4]
        return os.path.join(self.pdir, base + suffix)

    def p0(self, *rest):
        return self.m.path("orders", "p0" + "".join(rest))

    def read_all(self, path):
        """What a reader gets: (bytes before the first error, errno or None)."""
        data = b""
        with open(path, "rb", buffering=0) as f:
            while True:
                try:
                    b = f.read(65536)
                except OSError as e:
                    return data, e.errno
                if not b:
                    return data, None
                data += b

    def expect_served(self, bad):
        """Every record outside `bad` (a range of offsets) reads back exactly,
        every one inside fails with EIO, by every read path."""
        self.m.start()
        want = b"".join(line(i) for i in range(RECORDS))
        inf = info(self.m, "orders")["p0"]
        self.assertEqual(inf["end_offset"], RECORDS)
        self.assertEqual(len(glob.glob(os.path.join(self.pdir, "*.log"))), len(self.logs))
        good = [i for i in range(RECORDS) if i not in bad]
        # cat p0: the records before the damage, then EIO.
        data, err = self.read_all(self.p0())
        if bad:
            self.assertEqual(err, errno.EIO)
            self.assertEqual(data, want[:len(data)])
            self.assertLessEqual(len(data), bad.start * 10)
        else:
            self.assertIsNone(err)
            self.assertEqual(data, want)
        # p0@N from every 7th record: exactly the stream from there, up to the damage.
        for i in range(0, RECORDS, 7):
            try:
                data, err = self.read_all(self.p0("@%d" % i))
            except OSError as e:
                data, err = b"", e.errno
            if i in bad:
                self.assertEqual((data, err), (b"", errno.EIO), i)
                continue
            end = bad.start if bad and i < bad.start else RECORDS
            self.assertEqual(data, want[i * 10:end * 10], i)
            self.assertEqual(err, errno.EIO if end < RECORDS else None, i)
        # p0.jsonl (its exact size needs every record: EIO when one is
        # damaged) and p0@N.jsonl past the damage.
        try:
            data, err = self.read_all(self.p0(".jsonl"))
        except OSError as e:
            data, err = b"", e.errno
        if bad:
            self.assertEqual(err, errno.EIO)
        else:
            self.assertIsNone(err)
            offsets = [json.loads(x)["offset"] for x in data.splitlines()]
            self.assertEqual(offsets, list(range(RECORDS)))
        after = bad.stop if bad else 0
        data, err = self.read_all(self.p0("@%d.jsonl" % after))
        self.assertIsNone(err)
        recs = [json.loads(x) for x in data.splitlines()]
        self.assertEqual([r["offset"] for r in recs], list(range(after, RECORDS)))
        self.assertEqual([r["value"].rstrip("\n") for r in recs],
                         [line(i).decode().rstrip("\n") for i in range(after, RECORDS)])
        # A group drain: up to the damage, EIO, and past it after a cursor move.
        os.mkdir(self.m.path("orders", ".groups", "g"))
        data, err = self.read_all(self.m.path("orders", ".groups", "g", "drain"))
        self.assertEqual(data, want[:len(data)])
        if bad:
            self.assertEqual(err, errno.EIO)
            self.assertLessEqual(len(data), bad.start * 10)
            sh("echo %d > %s" % (bad.stop, self.m.path("orders", ".groups", "g", "p0")))
            data, err = self.read_all(self.m.path("orders", ".groups", "g", "drain"))
            self.assertEqual(data, want[bad.stop * 10:])
        self.assertIsNone(err)
        # Counted, and still so (and still refused) after a remount.
        nbad = 1 if bad else 0
        self.assertEqual(info(self.m, "orders")["p0"]["bad_batches"], nbad)
        metrics = read(self.m.path(".metrics"))
        self.assertIn('topicfs_partition_bad_batches{topic="orders",partition="0"} %d' % nbad,
                      metrics)
        if bad:
            self.assertIn("damaged batches", self.m.log_text())
        self.m.restart()
        self.assertEqual(len(glob.glob(os.path.join(self.pdir, "*.log"))), len(self.logs))
        self.assertEqual(info(self.m, "orders")["p0"]["end_offset"], RECORDS)
        data, err = self.read_all(self.p0("@%d" % good[-1]))
        self.assertEqual(data, line(good[-1]))
        if bad:
            self.assertErrno(errno.EIO, self.read_all, self.p0("@%d" % bad.start))

    def assertErrno(self, err, fn, *args):
        try:
            _, e = fn(*args)
        except OSError as ex:
            e = ex.errno
        self.assertEqual(e, err)

    def batch_of(self, k, n):
        """(file_pos, length, base_offset) of the n-th batch of segment k."""
        at, length, base, _count = batches(self.seg(k))[n]
        return at, length, base

    def test_flipped_value_byte(self):
        at, length, base = self.batch_of(5, 3)
        flip(self.seg(5), at + length - 3)
        self.expect_served(range(base, base + 1))

    def test_flipped_header_base_offset(self):
        at, _length, base = self.batch_of(5, 4)
        flip(self.seg(5), at + 16 + 7, 0x04)  # a high bit of base_offset
        self.expect_served(range(base, base + 1))

    def test_forged_first_offset(self):
        """The first batch of a segment claims the next offset, its checksum
        recomputed (the acceptance tester's repro): that batch is damaged, not
        believed; no group drain or p0@N skips a record."""
        at, length, base = self.batch_of(5, 0)
        xxh = ctypes.CDLL("libxxhash.so.0")
        xxh.XXH3_64bits.restype = ctypes.c_uint64
        xxh.XXH3_64bits.argtypes = (ctypes.c_char_p, ctypes.c_size_t)
        with open(self.seg(5), "r+b") as f:
            f.seek(at)
            b = bytearray(f.read(length))
            struct.pack_into("<Q", b, 16, base + 1)
            struct.pack_into("<Q", b, 8, xxh.XXH3_64bits(bytes(b[16:]), length - 16))
            f.seek(at)
            f.write(b)
        self.expect_served(range(base, base + 1))
        # A drain from just before the damage stops there, and again.
        os.mkdir(self.m.path("orders", ".groups", "q"))
        sh("echo %d > %s" % (base - 1, self.m.path("orders", ".groups", "q", "p0")))
        for _ in range(2):
            data, err = self.read_all(self.m.path("orders", ".groups", "q", "drain"))
            self.assertEqual((data, err), (line(base - 1) if _ == 0 else b"", errno.EIO))
        self.assertErrno(errno.EIO, self.read_all, self.p0("@%d" % base))
        self.assertEqual(read(self.p0("@%d" % (base + 1)), "rb")[:10], line(base + 1))

    def test_zeroed_segment(self):
        b = batches(self.seg(4))
        first, last = b[0][2], b[-1][2] + b[-1][3]
        size = os.path.getsize(self.seg(4))
        with open(self.seg(4), "r+b") as f:
            f.write(b"\0" * size)
        self.expect_served(range(first, last))

    def test_segment_truncated_to_zero(self):
        b = batches(self.seg(6))
        os.truncate(self.seg(6), 0)
        self.expect_served(range(b[0][2], b[-1][2] + b[-1][3]))

    def test_segment_truncated_at_a_batch(self):
        b = batches(self.seg(6))
        os.truncate(self.seg(6), b[5][0])
        self.expect_served(range(b[5][2], b[-1][2] + b[-1][3]))

    def test_segment_deleted(self):
        b = batches(self.seg(3))
        os.unlink(self.seg(3))
        self.logs = self.logs[:3] + self.logs[4:]
        self.expect_served(range(b[0][2], b[-1][2] + b[-1][3]))

    def test_indexes_damaged_or_lost(self):
        os.unlink(self.seg(2, ".index"))
        os.unlink(self.seg(3, ".timeindex"))
        for k, suffix in ((4, ".index"), (5, ".timeindex")):
            with open(self.seg(k, suffix), "r+b") as f:
                f.write(b"\x5a" * 40)
        os.truncate(self.seg(6, ".index"), 5)
        self.expect_served(range(0))

    def test_recovery_point_lost(self):
        """Without it every closed segment counts as synced: nothing is cut."""
        os.unlink(os.path.join(self.pdir, "recovery-point"))
        self.expect_served(range(0))

    def test_recovery_point_garbled_and_a_bad_batch(self):
        with open(os.path.join(self.pdir, "recovery-point"), "r+b") as f:
            f.write(b"\x5a" * 8)
        at, length, base = self.batch_of(7, 2)
        flip(self.seg(7), at + length - 1)
        self.expect_served(range(base, base + 1))

    def test_unsynced_tail_is_cut(self):
        """Records appended without fsync and then damaged go (from the
        first bad batch on); every synced record stays."""
        self.m.start()
        fd = os.open(self.p0(), os.O_WRONLY | os.O_APPEND)
        for i in range(RECORDS, RECORDS + 20):
            os.write(fd, line(i))
        os.close(fd)
        self.m.kill9()
        cut = [(log, x) for log in glob.glob(os.path.join(self.pdir, "*.log"))
               for x in batches(log) if x[2] == RECORDS + 10][0]
        flip(cut[0], cut[1][0] + cut[1][1] - 2)
        self.m.start()
        self.assertEqual(info(self.m, "orders")["p0"]["end_offset"], RECORDS + 10)
        self.assertEqual(read(self.p0(), "rb"), b"".join(line(i) for i in range(RECORDS + 10)))
        self.assertEqual(info(self.m, "orders")["p0"]["bad_batches"], 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
