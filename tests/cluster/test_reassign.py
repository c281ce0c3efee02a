"""Reassignment (issue 9, item 3): a change of replication.factor in a
topic's .config reassigns its replicas as Kafka does, with a writer
appending all along: growing (1 -> 3) adds replicas that catch up from the
leader and join the ISR; shrinking (3 -> 2) removes one (never the leader
when it can stay), whose log is emptied. Every acknowledged record is on
every replica afterwards, and the replicas' segments are the same bytes.
More replicas than live brokers: EINVAL, nothing changes."""
import errno
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zkharness import ClusterTest, ids, segments, wait_until  # noqa: E402
import harness  # noqa: E402

SESSION_MS = 4000
DEADLINE = 30


def state(b, topic, p=0):
    for line in b.cluster()["partitions"]:
        if line["topic"] == topic and int(line["partition"]) == p:
            line = dict(line)
            line.pop("high_watermark", None)
            return line
    return None


class Writer:
    """Appends numbered lines to a partition file until stopped; keeps the
    lines whose write() returned."""

    def __init__(self, path):
        self.path, self.acked, self.errors = path, [], []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            i = 0
            while not self.stop.is_set():
                line = "record %d\n" % i
                try:
                    os.write(fd, line.encode())
                    self.acked.append(line)
                except OSError as e:
                    self.errors.append(e.errno)
                i += 1
                self.stop.wait(0.01)
        finally:
            os.close(fd)

    def finish(self):
        self.stop.set()
        self.thread.join(60)


class ReassignTest(ClusterTest):
    def start_brokers(self, rf):
        opts = ("default.replication.factor=%d,partitions=1,replica.lag.time.max.ms=2000" % rf)
        brokers = [self.broker(i, session_ms=SESSION_MS, extra_opts=opts) for i in (1, 2, 3)]
        self.brokers = brokers
        wait_until(lambda: all(sorted(b.cluster()["brokers"]) == [1, 2, 3] for b in brokers),
                   timeout=DEADLINE, what="three brokers on every mount")
        return brokers

    def wait_state(self, brokers, topic, ok, what):
        def same():
            lines = [state(b, topic) for b in brokers]
            return all(lines) and all(l == lines[0] for l in lines) and ok(lines[0])
        try:
            wait_until(same, timeout=DEADLINE, what=what)
        except AssertionError:
            for b in brokers:
                print(b.broker_id, state(b, topic), file=sys.stderr)
                print(b.log_text()[-3000:], file=sys.stderr)
            raise
        return state(brokers[0], topic)

    def set_config(self, b, line):
        with open(b.path("orders", ".config"), "a") as f:
            f.write(line + "\n")

    def check_replicas(self, replicas, writer):
        """Every acknowledged record, once and in order, on every replica,
        and the replicas' segment files the same bytes."""
        if writer.errors:
            for b in self.brokers:
                print("--- broker %d\n%s" % (b.broker_id, b.log_text()[-4000:]), file=sys.stderr)
        self.assertEqual(writer.errors, [])
        self.assertGreater(len(writer.acked), 0)

        def same():
            segs = [segments(b, "orders") for b in replicas]
            return segs[0] and all(s == segs[0] for s in segs)
        wait_until(same, timeout=DEADLINE, what="replicas byte-identical")
        want = "".join(writer.acked)
        for b in replicas:
            wait_until(lambda: harness.read(b.path("orders", "p0")) == want, timeout=DEADLINE,
                       what="every acknowledged record at broker %d" % b.broker_id)

    def test_grow_one_to_three(self):
        brokers = self.start_brokers(1)
        by_id = {b.broker_id: b for b in brokers}
        os.mkdir(brokers[0].path("orders"))
        line = self.wait_state(brokers, "orders", lambda l: int(l["leader"]) > 0,
                               "orders led everywhere")
        leader = by_id[int(line["leader"])]
        other = next(b for b in brokers if b is not leader)
        # Too many replicas for the live brokers: refused, nothing changes.
        with self.assertRaises(OSError) as cm:
            self.set_config(other, "replication.factor=4")
        self.assertEqual(cm.exception.errno, errno.EINVAL)
        self.assertEqual(ids(state(leader, "orders"), "replicas"), [leader.broker_id])
        self.assertIn("replication.factor=1\n", harness.read(other.path("orders", ".config")))
        writer = Writer(leader.path("orders", "p0"))
        self.addCleanup(writer.finish)
        wait_until(lambda: len(writer.acked) >= 50, timeout=DEADLINE, what="50 records")
        started = time.monotonic()
        self.set_config(other, "replication.factor=3")
        line = self.wait_state(brokers, "orders",
                               lambda l: len(ids(l, "replicas")) == 3 and
                               len(ids(l, "isr")) == 3, "three replicas in sync")
        print("\nreplication.factor 1 -> 3: every replica in the ISR %.2fs after the change "
              "(%d records then)" % (time.monotonic() - started, len(writer.acked)),
              file=sys.stderr)
        self.assertEqual(int(line["leader"]), leader.broker_id)
        self.assertEqual(ids(line, "replicas")[0], leader.broker_id)
        for b in brokers:
            self.assertIn("replication.factor=3\n", harness.read(b.path("orders", ".config")))
        n = len(writer.acked)
        wait_until(lambda: len(writer.acked) >= n + 50, timeout=DEADLINE, what="50 more")
        writer.finish()
        self.check_replicas(brokers, writer)

    def test_shrink_three_to_two(self):
        brokers = self.start_brokers(3)
        by_id = {b.broker_id: b for b in brokers}
        os.mkdir(brokers[0].path("orders"))
        line = self.wait_state(brokers, "orders",
                               lambda l: int(l["leader"]) > 0 and len(ids(l, "isr")) == 3,
                               "orders led, three in sync")
        leader = by_id[int(line["leader"])]
        follower = next(b for b in brokers if b is not leader)
        writer = Writer(follower.path("orders", "p0"))  # forwarded to the leader
        self.addCleanup(writer.finish)
        wait_until(lambda: len(writer.acked) >= 50, timeout=DEADLINE, what="50 records")
        started = time.monotonic()
        self.set_config(follower, "replication.factor=2")
        line = self.wait_state(brokers, "orders",
                               lambda l: len(ids(l, "replicas")) == 2 and
                               len(ids(l, "isr")) == 2, "two replicas")
        print("\nreplication.factor 3 -> 2: done %.2fs after the change" %
              (time.monotonic() - started), file=sys.stderr)
        self.assertEqual(int(line["leader"]), leader.broker_id)
        kept = [by_id[i] for i in ids(line, "replicas")]
        removed = next(b for b in brokers if b not in kept)
        n = len(writer.acked)
        wait_until(lambda: len(writer.acked) >= n + 50, timeout=DEADLINE, what="50 more")
        writer.finish()
        self.check_replicas(kept, writer)
        wait_until(lambda: sum(len(v) for v in segments(removed, "orders").values()) == 0,
                   timeout=DEADLINE, what="the removed replica emptied")
        # Back to three: the removed broker catches up from scratch.
        self.set_config(leader, "replication.factor=3")
        self.wait_state(brokers, "orders",
                        lambda l: len(ids(l, "replicas")) == 3 and len(ids(l, "isr")) == 3,
                        "three replicas again")
        self.check_replicas(brokers, writer)


if __name__ == "__main__":
    unittest.main()
