"""A broker whose disk is full or whose data is damaged (issue 9, item 11):
three brokers, a topic with three replicas.

Full disk: a follower's data dir on a small tmpfs (as tests/fs/
test_rollback.py makes one), filled up by a file beside it. Its fetcher gets
ENOSPC appending the leader's batches, logs it and does not move its log end
(so the leader never counts it as having them); the leader takes it out of
the ISR after replica.lag.time.max.ms and acks=all writes go on with the
others. Once there is room again it catches up and is back in the ISR, its
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
        # acks=all: this write returns once the ISR without the full follower has it.
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


if __name__ == "__main__":
    unittest.main(verbosity=2)
