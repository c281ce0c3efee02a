"""Produce at any mount (issue 9, item 4): a write at a broker that does not
lead the partition is forwarded to the leader (FRAME_PRODUCE) and stored
there once; .produce routes by key at any mount as at the leader; a retry
after a lost reply (the leader's test hook TOPICFS_TEST_LOSE_PRODUCE_REPLIES
answers the first appended batches with EAGAIN, as if their replies were
lost) never duplicates; a leader that stays unreachable past
delivery.timeout.ms makes write() fail with EIO, leaving nothing at the
forwarding mount."""
import errno
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zkharness import ClusterTest, wait_until  # noqa: E402
import harness  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fs"))
from test_basic import kafka_murmur2  # noqa: E402

SESSION_MS = 4000


def leaders(b, topic):
    return {int(p["partition"]): int(p["leader"])
            for p in b.cluster()["partitions"] if p["topic"] == topic}


class ForwardTest(ClusterTest):
    def start(self, ids, partitions=3, env=None, extra=""):
        out = []
        for i in ids:
            opts = "default.replication.factor=1,partitions=%d" % partitions + extra
            b = self.broker(i, start=False, session_ms=SESSION_MS, extra_opts=opts)
            b.env = (env or {}).get(i)
            out.append(b.start())
        return out

    def make_topic(self, brokers, topic, nparts):
        """mkdir at the first mount; waits for every mount to see every
        partition's leader, the same everywhere. {partition: leader id}"""
        os.mkdir(brokers[0].path(topic))
        ids = {b.broker_id for b in brokers}

        def ready():
            views = [leaders(b, topic) for b in brokers]
            return (all(sorted(v) == list(range(nparts)) and set(v.values()) <= ids
                        for v in views) and all(v == views[0] for v in views) and
                    all(os.path.exists(b.path(topic, "p%d" % (nparts - 1))) for b in brokers))
        wait_until(ready, timeout=30, what="leaders of %s on every mount" % topic)
        return leaders(brokers[0], topic)

    def by_id(self, brokers):
        return {b.broker_id: b for b in brokers}

    def test_writes_at_any_mount_reach_the_leader(self):
        brokers = self.start([1, 2, 3])
        lead = self.make_topic(brokers, "orders", 3)
        ids = self.by_id(brokers)
        leader = ids[lead[0]]
        others = [b for b in brokers if b is not leader]
        a, c = others
        harness.sh("echo a1 >> " + a.path("orders", "p0"))
        harness.sh("printf 'c1\\nc2\\n' | cat >> " + c.path("orders", "p0"))
        with open(a.path("orders", "p0"), "a") as f:
            for i in range(2, 6):
                f.write("a%d\n" % i)
                f.flush()
        with open(c.path("orders", "p0"), "a") as f:
            f.write("c3\nc")  # a line completed by the next write
            f.flush()
            f.write("4\n")
        harness.sh("echo l1 >> " + leader.path("orders", "p0"))
        text = harness.read(leader.path("orders", "p0"))
        lines = text.splitlines()
        self.assertEqual(sorted(lines), sorted(["a1", "a2", "a3", "a4", "a5", "c1", "c2", "c3",
                                                "c4", "l1"]), text)
        self.assertEqual([x for x in lines if x[0] == "a"], ["a1", "a2", "a3", "a4", "a5"])
        self.assertEqual([x for x in lines if x[0] == "c"], ["c1", "c2", "c3", "c4"])
        # Stored once, at the leader (RF=1): the forwarding mounts read the
        # leader's records (remote.h), the same bytes.
        for b in others:
            self.assertEqual(harness.read(b.path("orders", "p0")), text)
        # .produce with keys at a non-leader mount routes as at the leader.
        harness.sh("echo key.separator=: >> " + a.path("orders", ".config"))
        wait_until(lambda: all("key.separator=:" in harness.read(b.path("orders", ".config"))
                               for b in brokers), timeout=10, what=".config everywhere")
        keys = ["k%d" % i for i in range(24)]
        for w in (a, c):
            with open(w.path("orders", ".produce"), "a") as f:
                for k in keys:
                    f.write("%s:from %d\n" % (k, w.broker_id))
        for p in range(3):
            got = [x for x in harness.read(ids[lead[p]].path("orders", "p%d" % p)).splitlines()
                   if x.startswith("k")]
            want = [k for k in keys if (kafka_murmur2(k.encode()) & 0x7FFFFFFF) % 3 == p]
            for w in (a, c):
                self.assertEqual([x.split(":")[0] for x in got if x.endswith("from %d" %
                                                                              w.broker_id)],
                                 want, "partition %d, writer %d" % (p, w.broker_id))

    def test_one_write_of_many_records(self):
        """One write() of 5000 lines at a mount that does not lead: each
        forwarded record's value is its own piece of the leader's batch
        (more than a pwritev takes); stored whole and readable everywhere
        (the batch was stored short, EIO at every mount, before)."""
        brokers = self.start([1, 2], partitions=1)
        lead = self.make_topic(brokers, "many", 1)
        far = next(b for b in brokers if b.broker_id != lead[0])
        text = "".join("%d\n" % i for i in range(5000))
        fd = os.open(far.path("many", "p0"), os.O_WRONLY | os.O_APPEND)
        try:
            self.assertEqual(os.write(fd, text.encode()), len(text))
        finally:
            os.close(fd)
        for b in brokers:
            wait_until(lambda: harness.read(b.path("many", "p0")) == text, timeout=30,
                       what="5000 lines at broker %d" % b.broker_id)

    def test_lost_replies_never_duplicate(self):
        # Every broker's first 3 appended forwarded batches "lose" their reply:
        # the forwarder sends each again with the same producer id and sequence.
        env = {i: {"TOPICFS_TEST_LOSE_PRODUCE_REPLIES": "3"} for i in (1, 2)}
        brokers = self.start([1, 2], partitions=1, env=env)
        lead = self.make_topic(brokers, "orders", 1)
        ids = self.by_id(brokers)
        leader, other = ids[lead[0]], ids[3 - lead[0]]
        for i in range(6):
            harness.sh("echo r%d >> %s" % (i, other.path("orders", "p0")))
        self.assertEqual(harness.read(leader.path("orders", "p0")),
                         "".join("r%d\n" % i for i in range(6)))

    def test_unreachable_leader_fails_with_eio(self):
        brokers = self.start([1, 2], partitions=2, extra=",delivery.timeout.ms=2000")
        lead = self.make_topic(brokers, "orders", 2)
        ids = self.by_id(brokers)
        # The partition broker 2 does not lead.
        p = [q for q in lead if lead[q] != 2][0]
        leader, other = ids[lead[p]], ids[2]
        harness.sh("echo before >> " + other.path("orders", "p%d" % p))
        self.assertEqual(harness.read(leader.path("orders", "p%d" % p)), "before\n")
        leader.kill9()
        path = other.path("orders", "p%d" % p)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            t0 = time.monotonic()
            with self.assertRaises(OSError) as cm:
                os.write(fd, b"lost\n")
            self.assertEqual(cm.exception.errno, errno.EIO)
            # Bounded: the delivery timeout and some slack, never a hang.
            self.assertLess(time.monotonic() - t0, 30)
        finally:
            os.close(fd)
        # Nothing stored here, and nothing cached: with the leader out of
        # reach a read ends where the cache ends (here at once), as stat says.
        self.assertEqual(os.path.getsize(path), 0)
        self.assertEqual(harness.info(other, "orders")["p%d" % p]["end_offset"], 0)
        self.assertEqual(harness.read(path), "")
        self.assertTrue(other.alive())
        # Writes to partitions it leads still work.
        q = 1 - p
        harness.sh("echo mine >> " + other.path("orders", "p%d" % q))
        self.assertEqual(harness.read(other.path("orders", "p%d" % q)), "mine\n")


if __name__ == "__main__":
    unittest.main()
