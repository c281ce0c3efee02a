"""The controller's leadership jobs (issue 9, items 8 and 9): with no live
in-sync replica a partition stays offline (leader -1, writes fail with EIO
after delivery.timeout.ms) unless unclean.leader.election.enable is true,
when a live out-of-sync replica leads at epoch + 1; a killed preferred
leader that comes back and rejoins the ISR gets its leadership back within
leader.imbalance.check.interval.seconds (auto.leader.rebalance.enable)."""
import errno
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zkharness import ClusterTest, append, holds, ids, part_line, wait_until  # noqa: E402
import harness  # noqa: E402

SESSION_MS = 4000
DEADLINE = 30


def state(b, topic, p=0):
    """The partition's line less what is each broker's own (high_watermark)."""
    line = part_line(b, topic, p)
    if line:
        line = dict(line)
        line.pop("high_watermark", None)
    return line


def roles(by_id, line):
    """The brokers that lead and follow a two-replica partition (its .cluster
    line), and the third one, which holds no replica."""
    leader_id = int(line["leader"])
    follower_id = next(i for i in ids(line, "replicas") if i != leader_id)
    other_id = next(i for i in by_id if i not in ids(line, "replicas"))
    return by_id[leader_id], by_id[follower_id], by_id[other_id]


class LeadershipTest(ClusterTest):
    def start_brokers(self, rf, extra=""):
        opts = ("default.replication.factor=%d,partitions=1,replica.lag.time.max.ms=1000" % rf +
                extra)
        brokers = [self.broker(i, session_ms=SESSION_MS, extra_opts=opts) for i in (1, 2, 3)]
        wait_until(lambda: all(sorted(b.cluster()["brokers"]) == [1, 2, 3] for b in brokers),
                   timeout=DEADLINE, what="three brokers on every mount")
        return brokers

    def wait_state(self, brokers, topic, ok, what):
        """The partition's line once every mount shows the same one and ok(line)."""
        def same():
            lines = [state(b, topic) for b in brokers]
            return all(lines) and all(l == lines[0] for l in lines) and ok(lines[0])
        wait_until(same, timeout=DEADLINE, what=what)
        return state(brokers[0], topic)

    def test_unclean_leader_election(self):
        brokers = self.start_brokers(2, ",delivery.timeout.ms=2000")
        by_id = {b.broker_id: b for b in brokers}
        os.mkdir(brokers[0].path("orders"))
        line = self.wait_state(brokers, "orders",
                               lambda l: int(l["leader"]) > 0 and len(ids(l, "isr")) == 2,
                               "orders led, both replicas in sync")
        self.assertIn("unclean.leader.election.enable=false\n",
                      harness.read(by_id[1].path("orders", ".config")))
        leader, follower, other = roles(by_id, line)
        leader_id, follower_id, other_id = leader.broker_id, follower.broker_id, other.broker_id
        append(leader, "orders", "one\n")
        wait_until(lambda: harness.read(follower.path("orders", "p0")) == "one\n",
                   timeout=DEADLINE, what="one at the follower")
        # The follower dies; the leader shrinks the ISR to itself and
        # commits alone what the follower never gets.
        follower.kill9()
        self.wait_state([leader, other], "orders", lambda l: ids(l, "isr") == [leader_id],
                        "the ISR shrunk to the leader")
        append(leader, "orders", "two\n")
        wait_until(lambda: harness.read(leader.path("orders", "p0")) == "one\ntwo\n",
                   timeout=DEADLINE, what="two committed")
        epoch = int(part_line(leader, "orders")["leader_epoch"])
        # The leader dies too, then the follower comes back: the only live
        # replica is out of sync, and the partition stays offline.
        leader.kill9()
        self.wait_state([other], "orders", lambda l: int(l["leader"]) == -1,
                        "orders offline")
        follower.start()
        live = [follower, other]
        wait_until(lambda: all(sorted(b.cluster()["brokers"]) == sorted([follower_id, other_id])
                               for b in live), timeout=DEADLINE, what="the follower back")
        # The controller saw it come back (a state write would show now);
        # stays offline however long one looks: look for a while.
        line = self.wait_state(live, "orders", lambda l: int(l["leader"]) == -1,
                               "orders offline at both mounts")
        self.assertEqual(ids(line, "isr"), [leader_id])
        holds(lambda: int(part_line(other, "orders")["leader"]) == -1, 3, "orders offline")
        # Writes fail after delivery.timeout.ms; nothing is stored.
        fd = os.open(other.path("orders", "p0"), os.O_WRONLY | os.O_APPEND)
        try:
            with self.assertRaises(OSError) as cm:
                os.write(fd, b"lost\n")
            self.assertEqual(cm.exception.errno, errno.EIO)
        finally:
            os.close(fd)
        # Unclean election on: the follower leads, out of sync, at epoch + 1
        # (or more: the leader's death was one change already).
        with open(other.path("orders", ".config"), "a") as f:
            f.write("unclean.leader.election.enable=true\n")
        started = time.monotonic()
        line = self.wait_state(live, "orders", lambda l: int(l["leader"]) == follower_id,
                               "the out-of-sync follower leading")
        print("\nunclean election %.2fs after the config change" %
              (time.monotonic() - started), file=sys.stderr)
        self.assertEqual(ids(line, "isr"), [follower_id])
        self.assertGreater(int(line["leader_epoch"]), epoch)
        self.assertIn("unclean.leader.election.enable=true\n",
                      harness.read(follower.path("orders", ".config")))
        # A write at the mount without a replica reaches the new leader.
        append(other, "orders", "three\n")
        wait_until(lambda: harness.read(follower.path("orders", "p0")) == "one\nthree\n",
                   timeout=DEADLINE, what="three after one")

    def test_forwarded_write_after_unclean_election(self):
        """A broker that forwarded writes keeps writing after an unclean
        election whose new leader lacks its last batch: the leader answers
        that sequence as out of order, and the forwarder starts a new
        producer epoch instead of failing the write (it was EIO before)."""
        brokers = self.start_brokers(2, ",unclean.leader.election.enable=true")
        by_id = {b.broker_id: b for b in brokers}
        os.mkdir(brokers[0].path("orders"))
        line = self.wait_state(brokers, "orders",
                               lambda l: int(l["leader"]) > 0 and len(ids(l, "isr")) == 2,
                               "orders led, both replicas in sync")
        leader, follower, other = roles(by_id, line)
        leader_id, follower_id, other_id = leader.broker_id, follower.broker_id, other.broker_id
        # Sequence 0 of other's producer: on both replicas, with its state.
        append(other, "orders", "one\n")
        wait_until(lambda: harness.read(follower.path("orders", "p0")) == "one\n",
                   timeout=DEADLINE, what="one at the follower")
        # The follower stops (its memory, the producer state, stays); the
        # leader commits sequence 1 alone.
        follower.proc.send_signal(signal.SIGSTOP)
        try:
            self.wait_state([leader, other], "orders", lambda l: ids(l, "isr") == [leader_id],
                            "the ISR shrunk to the leader")
            append(other, "orders", "two\n")
            leader.kill9()
        finally:
            follower.proc.send_signal(signal.SIGCONT)
        self.wait_state([follower, other], "orders",
                        lambda l: int(l["leader"]) == follower_id, "the follower leading")
        append(other, "orders", "three\n")  # sequence 2: the new leader lacks 1
        wait_until(lambda: harness.read(follower.path("orders", "p0")) == "one\nthree\n",
                   timeout=DEADLINE, what="three after one at the new leader")

    def test_preferred_leader_comes_back(self):
        brokers = self.start_brokers(3, ",leader.imbalance.check.interval.seconds=1")
        by_id = {b.broker_id: b for b in brokers}
        os.mkdir(brokers[0].path("orders"))
        line = self.wait_state(brokers, "orders",
                               lambda l: int(l["leader"]) > 0 and len(ids(l, "isr")) == 3,
                               "orders led, three in sync")
        preferred = ids(line, "replicas")[0]
        self.assertEqual(int(line["leader"]), preferred)
        append(by_id[preferred], "orders", "one\n")
        wait_until(lambda: all(harness.read(b.path("orders", "p0")) == "one\n" for b in brokers),
                   timeout=DEADLINE, what="one everywhere")
        by_id[preferred].kill9()
        survivors = [b for b in brokers if b.broker_id != preferred]
        line = self.wait_state(survivors, "orders",
                               lambda l: int(l["leader"]) not in (-1, preferred),
                               "another leader")
        append(survivors[0], "orders", "two\n")
        started = time.monotonic()
        by_id[preferred].start()
        line = self.wait_state(brokers, "orders",
                               lambda l: int(l["leader"]) == preferred and
                               len(ids(l, "isr")) == 3, "the preferred leader back")
        print("\nrestart of the preferred leader to its leadership back: %.2fs" %
              (time.monotonic() - started), file=sys.stderr)
        append(survivors[1], "orders", "three\n")
        try:
            wait_until(lambda: all(harness.read(b.path("orders", "p0")) == "one\ntwo\nthree\n"
                                   for b in brokers), timeout=DEADLINE,
                       what="every record everywhere")
        except AssertionError:
            print([(b.broker_id, harness.read(b.path("orders", "p0")), state(b, "orders"))
                   for b in brokers], file=sys.stderr)
            raise

    def test_rebalance_off(self):
        brokers = self.start_brokers(3, ",leader.imbalance.check.interval.seconds=1,"
                                     "auto.leader.rebalance.enable=false")
        by_id = {b.broker_id: b for b in brokers}
        os.mkdir(brokers[0].path("orders"))
        line = self.wait_state(brokers, "orders",
                               lambda l: int(l["leader"]) > 0 and len(ids(l, "isr")) == 3,
                               "orders led, three in sync")
        preferred = int(line["leader"])
        by_id[preferred].kill9()
        survivors = [b for b in brokers if b.broker_id != preferred]
        line = self.wait_state(survivors, "orders",
                               lambda l: int(l["leader"]) not in (-1, preferred),
                               "another leader")
        other = int(line["leader"])
        by_id[preferred].start()
        self.wait_state(brokers, "orders", lambda l: len(ids(l, "isr")) == 3,
                        "the preferred replica back in the ISR")
        holds(lambda: int(part_line(brokers[0], "orders")["leader"]) == other, 3,
              "broker %d still leads (the preferred replica does not take over)" % other)


if __name__ == "__main__":
    unittest.main()
