"""A broker whose disk is full or whose data is damaged (issue 9, item 11):
three brokers, a topic with three replicas.

Full disk: a follower's data dir on a small tmpfs (as tests/fs/
test_rollback.py makes one), filled up by a file beside it. Its fetcher gets
ENOSPC appending the leader's batches, logs it and does not move its log end
(so the leader never counts it as having them); the leader takes it out of
the ISR after replica.lag.time.max.ms and writes go on with the others. Once there is room again it catches up and is back in the ISR, its
segments the same bytes as the leader's. A leader whose disk is full
answers ENOSPC to writes at its mount and forwarded ones, and stores (and
ships) nothing of them.

Damage: a follower stopped, one byte of a batch in its (synced) segment
flipped, restarted. It never serves the damaged bytes (its mount fails
with EIO, never shows them) and repairs its log from the leader (truncates
where the damage starts, fetches again) so that every replica ends
byte-identical. A leader whose segment is damaged never ships the damaged
batch: a fetch of that range answers EIO (an error frame), and a follower
that needs it stays behind, out of the ISR."""
import errno
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zkharness import ClusterTest, wait_until  # noqa: E402
import harness  # noqa: E402
from test_replication import append, isr, part_line, peer_fetch, segments  # noqa: E402

SESSION_MS = 6000
LAG_MS = 1000
DEADLINE = 30


class DiskFaultsTest(ClusterTest):
    def start_brokers(self, tmpfs=False):
        opts = ("default.replication.factor=3,partitions=1,replica.lag.time.max.ms=%d"
                % LAG_MS)
        self.fsdirs = {}
        brokers = []
        for i in (1, 2, 3):
            data = None
            if tmpfs:
                base = tempfile.mkdtemp(prefix="topicfs-zkfaults-fs%d-" % i)
                fsdir = os.path.join(base, "fs")
                os.mkdir(fsdir)
                subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", fsdir],
                               check=True)
                self.addCleanup(shutil.rmtree, base, ignore_errors=True)
                self.addCleanup(subprocess.run, ["umount", "-l", fsdir])
                self.fsdirs[i] = fsdir
                data = os.path.join(fsdir, "data")
            brokers.append(self.broker(i, session_ms=SESSION_MS, extra_opts=opts, data=data))
        wait_until(lambda: all(sorted(b.cluster()["brokers"]) == [1, 2, 3] for b in brokers),
                   timeout=DEADLINE, what="three brokers on every mount")
        return brokers

    def make_topic(self, brokers, topic):
        os.mkdir(brokers[0].path(topic))

        def ok():
            lines = [part_line(b, topic) for b in brokers]
            return (all(lines) and all(l == lines[0] for l in lines) and
                    int(lines[0]["leader"]) > 0 and isr(brokers[0], topic) == [1, 2, 3])
        wait_until(ok, timeout=DEADLINE, what="%s led, its ISR whole, on every mount" % topic)
        leader = int(part_line(brokers[0], topic)["leader"])
        return next(b for b in brokers if b.broker_id == leader)

    def wait_identical(self, brokers, topic, expect):
        def same():
            segs = [segments(b, topic) for b in brokers]
            return (all(harness.read(b.path(topic, "p0"), "rb") == expect for b in brokers) and
                    segs[0] and all(s == segs[0] for s in segs))
        wait_until(same, timeout=DEADLINE, what="%s identical on brokers %s" %
                   (topic, [b.broker_id for b in brokers]))

    def fill(self, fsdir):
        """Fills the tmpfs to the last byte (a file beside the data dir)."""
        with open(os.path.join(fsdir, "filler"), "ab", buffering=0) as f:
            for size in (1 << 20, 4096, 1):
                try:
                    while True:
                        f.write(b"x" * size)
                except OSError as e:
                    self.assertEqual(e.errno, errno.ENOSPC)

    def test_full_disk_follower(self):
        brokers = self.start_brokers(tmpfs=True)
        leader = self.make_topic(brokers, "orders")
        follower = next(b for b in brokers if b is not leader)
        others = sorted(b.broker_id for b in brokers if b is not follower)
        append(leader, "orders", "one\n")
        self.wait_identical(brokers, "orders", b"one\n")
        self.fill(self.fsdirs[follower.broker_id])
        filled = time.monotonic()
        # Stored at the leader (under acks=all it returns once the ISR
        # without the full follower has it).
        big = "".join("two %d %s\n" % (i, "y" * 200) for i in range(50))
        append(leader, "orders", big)
        wait_until(lambda: isr(leader, "orders") == others, timeout=DEADLINE,
                   what="the ISR without the full follower")
        left = time.monotonic() - filled
        wait_until(lambda: "No space left on device" in follower.log_text(), timeout=DEADLINE,
                   what="the follower's ENOSPC logged")
        # It never counts as having what it could not store.
        self.assertEqual(harness.info(follower, "orders")["p0"]["end_offset"], 1)
        self.assertEqual(harness.read(follower.path("orders", "p0")), "one\n")
        live = [b for b in brokers if b is not follower]
        for b in live:
            wait_until(lambda: harness.read(b.path("orders", "p0")) == "one\n" + big,
                       timeout=DEADLINE, what="the write at broker %d" % b.broker_id)
        append(leader, "orders", "three\n")
        expect = ("one\n" + big + "three\n").encode()
        for b in live:
            wait_until(lambda: harness.read(b.path("orders", "p0"), "rb") == expect,
                       timeout=DEADLINE, what="writes going on at broker %d" % b.broker_id)
        self.assertEqual(harness.info(follower, "orders")["p0"]["end_offset"], 1)
        self.assertNotIn(follower.broker_id, isr(leader, "orders"))
        # Room again: it catches up and is back in the ISR.
        os.unlink(os.path.join(self.fsdirs[follower.broker_id], "filler"))
        freed = time.monotonic()
        wait_until(lambda: isr(leader, "orders") == [1, 2, 3], timeout=DEADLINE,
                   what="the follower back in the ISR")
        back = time.monotonic() - freed
        self.wait_identical(brokers, "orders", expect)
        log = follower.log_text()
        self.assertEqual(log.count("No space left on device"), 1, "logged once: " + log)
        self.assertIn("partition orders-0: fetching again at 1", log)
        print("\nfull follower: out of the ISR %.2fs after its disk filled (lag %d ms), "
              "back %.2fs after room came back" % (left, LAG_MS, back), file=sys.stderr)

    def test_full_disk_leader(self):
        brokers = self.start_brokers(tmpfs=True)
        leader = self.make_topic(brokers, "orders")
        other = next(b for b in brokers if b is not leader)
        append(leader, "orders", "one\n")
        self.wait_identical(brokers, "orders", b"one\n")
        self.fill(self.fsdirs[leader.broker_id])
        # At the leader's mount and forwarded from another: ENOSPC, nothing stored.
        for b in (leader, other):
            with self.assertRaises(OSError) as cm:
                append(b, "orders", "".join("lost %d %s\n" % (i, "z" * 200) for i in range(50)))
            self.assertEqual(cm.exception.errno, errno.ENOSPC, "write at %d" % b.broker_id)
        for b in brokers:
            self.assertEqual(harness.info(b, "orders")["p0"]["end_offset"], 1)
            self.assertEqual(harness.read(b.path("orders", "p0")), "one\n")
        os.unlink(os.path.join(self.fsdirs[leader.broker_id], "filler"))
        append(other, "orders", "two\n")
        self.wait_identical(brokers, "orders", b"one\ntwo\n")
        self.assertEqual(isr(leader, "orders"), [1, 2, 3])

    # ---- damage ----

    LINES = ["line %02d %s\n" % (i, "v" * 40) for i in range(20)]

    def damaged_setup(self):
        """Three brokers, orders with LINES appended one by one (one batch
        each) at its leader, identical everywhere."""
        brokers = self.start_brokers()
        leader = self.make_topic(brokers, "orders")
        for line in self.LINES:
            append(leader, "orders", line)
        self.expect = "".join(self.LINES).encode()
        self.wait_identical(brokers, "orders", self.expect)
        return brokers, leader

    def damage(self, b):
        """Flips a byte of line 10's value in b's (stopped) segment file."""
        d = os.path.join(b.data, "topics", "orders", "0")
        name = next(n for n in sorted(os.listdir(d)) if n.endswith(".log"))
        with open(os.path.join(d, name), "r+b") as f:
            data = f.read()
            at = data.index(b"line 10 ") + 8
            f.seek(at)
            f.write(b"w")
        return at

    def read_never_damaged(self, b):
        """b's mount reads a prefix of the right bytes, or fails with EIO."""
        try:
            got = harness.read(b.path("orders", "p0"), "rb")
        except OSError as e:
            self.assertEqual(e.errno, errno.EIO)
            return False
        self.assertTrue(self.expect.startswith(got), "broker %d served %r" % (b.broker_id, got))
        return got == self.expect

    def test_damaged_follower_repairs(self):
        brokers, leader = self.damaged_setup()
        follower = next(b for b in brokers if b is not leader)
        follower.stop()
        self.damage(follower)
        follower.start()
        # Its mount never shows the damaged bytes; it repairs from the leader.
        wait_until(lambda: self.read_never_damaged(follower), timeout=DEADLINE,
                   what="broker %d to read the whole log" % follower.broker_id)
        self.wait_identical(brokers, "orders", self.expect)
        wait_until(lambda: isr(leader, "orders") == [1, 2, 3], timeout=DEADLINE,
                   what="the repaired follower in the ISR")
        self.assertIn("(damaged on disk: fetching it again from the leader)",
                      follower.log_text())
        append(leader, "orders", "more\n")
        self.expect += b"more\n"
        self.wait_identical(brokers, "orders", self.expect)

    def test_damaged_leader_ships_nothing(self):
        brokers, first = self.damaged_setup()
        # The leader restarts with a damaged segment (nothing reads it there,
        # so nothing finds the damage), catches up and rejoins the ISR...
        first.stop()
        others = [b for b in brokers if b is not first]
        wait_until(lambda: all(int(part_line(b, "orders")["leader"]) not in
                               (-1, first.broker_id) for b in others), timeout=DEADLINE,
                   what="another leader")
        self.damage(first)
        first.start()
        wait_until(lambda: isr(others[0], "orders") == [1, 2, 3], timeout=DEADLINE,
                   what="broker %d back in the ISR" % first.broker_id)
        # ...and leads once the others are gone.
        for b in others:
            b.stop()
        wait_until(lambda: int(part_line(first, "orders")["leader"]) == first.broker_id,
                   timeout=DEADLINE, what="broker %d leading" % first.broker_id)
        follower = others[0]
        # A fetch of the damaged range: an EIO error frame, no bytes. The epoch
        # is read again at each try (a loaded machine may see it move).
        wait_until(lambda: peer_fetch(first, follower.broker_id, "fetch", follower.broker_id,
                                      "orders", 0, 10,
                                      part_line(first, "orders")["leader_epoch"])[0] == "EIO",
                   timeout=DEADLINE, what="EIO for a fetch at the damage")
        # A follower that needs it (its data dir emptied) stays behind it.
        shutil.rmtree(follower.data)
        follower.start()
        def end_offset():
            try:
                return harness.info(follower, "orders")["p0"]["end_offset"]
            except OSError:
                return None  # the topic is not made there yet
        wait_until(lambda: end_offset() == 10, timeout=DEADLINE,
                   what="the follower up to the damage")
        wait_until(lambda: "the leader answers Input/output error at offset 10" in
                   follower.log_text(), timeout=DEADLINE, what="the leader's EIO logged")
        self.assertEqual(harness.info(follower, "orders")["p0"]["end_offset"], 10)
        self.assertEqual(isr(first, "orders"), [first.broker_id])
        self.assertEqual(harness.read(follower.path("orders", "p0"), "rb"),
                         "".join(self.LINES[:10]).encode())


if __name__ == "__main__":
    unittest.main(verbosity=2)
