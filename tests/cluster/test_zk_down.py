"""ZooKeeper down (issue 9, item 10): three brokers, a topic with three
replicas (orders) and one with a single replica (solo). With the private
ZooKeeper stopped (by pid):
  * reads go on at every mount holding a replica (cat, and tail -f at a
    follower wakes);
  * writes to the current leaders go on, at the leader's mount and
    forwarded from the others, and reach every replica (the ISR does not
    have to change);
  * mkdir, rmdir and .config lines fail with EAGAIN at every mount and
    leave nothing behind, at any mount, in any data dir or in ZooKeeper;
  * .cluster still answers (ZooKeeper "connecting", the last known view).
When ZooKeeper is back everything resumes without a restart: topics are
made again, writes and replication go on, the ISR is whole. Both when it
comes back within the session timeout (the sessions live on) and when the
sessions expired meanwhile (run_unseen: the server ran out of the brokers'
reach until it expired them): then the brokers register again, a new
controller is elected (controller epoch + 1), and the same holds."""
import errno
import os
import select
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zkharness import ClusterTest, listing, part_line, wait_until  # noqa: E402
import harness  # noqa: E402

SESSION_MS = 6000  # the restarted server keeps the sessions if the brokers are back within it
CHROOT = "/topicfs"
DEADLINE = 30


def isr(b, topic):
    line = part_line(b, topic)
    return sorted(int(x) for x in line["isr"].split(",") if x) if line else []


def stored(b):
    return sorted(n for n in os.listdir(os.path.join(b.data, "topics"))
                  if n != "__consumer_offsets")


def append(b, topic, text):
    with open(b.path(topic, "p0"), "a") as f:
        f.write(text)


class Tail:
    """tail -f of a file, read without blocking."""

    def __init__(self, test, path):
        self.proc = subprocess.Popen(["tail", "-c", "+1", "-f", path], stdout=subprocess.PIPE)
        test.addCleanup(self.close)
        self.got = b""

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()

    def wait_for(self, want, timeout=DEADLINE):
        deadline = time.monotonic() + timeout
        while not self.got.endswith(want) and time.monotonic() < deadline:
            if select.select([self.proc.stdout], [], [], 0.2)[0]:
                self.got += os.read(self.proc.stdout.fileno(), 65536)
        return self.got


class ZooKeeperDownTest(ClusterTest):
    def setUp(self):
        super().setUp()
        opts = "partitions=1,replica.lag.time.max.ms=2000"
        # Broker 3 makes the single-replica topic: mkdir takes the replica
        # count of the mount running it.
        self.brokers = [self.broker(i, session_ms=SESSION_MS,
                                    extra_opts=opts + ",default.replication.factor=%d" %
                                    (1 if i == 3 else 3)) for i in (1, 2, 3)]
        self.expect = {"orders": "", "solo": ""}
        wait_until(lambda: all(sorted(b.cluster()["brokers"]) == [1, 2, 3] and
                               b.cluster()["controller"]["id"] != "-1" for b in self.brokers),
                   timeout=DEADLINE, what="three brokers and a controller on every mount")
        os.mkdir(self.brokers[0].path("orders"))
        os.mkdir(self.brokers[2].path("solo"))
        self.wait_states()
        self.write_everywhere("before")

    def by_id(self, i):
        return next(b for b in self.brokers if b.broker_id == i)

    def wait_states(self, full=True):
        """Every mount shows the same leaders of orders and solo, orders'
        ISR whole (full)."""
        def ok():
            for topic in ("orders", "solo"):
                lines = [part_line(b, topic) for b in self.brokers]
                if (not all(lines) or int(lines[0]["leader"]) < 0 or
                        any((l["leader"], l["leader_epoch"]) !=
                            (lines[0]["leader"], lines[0]["leader_epoch"]) for l in lines)):
                    return False
            return not full or all(isr(b, "orders") == [1, 2, 3] for b in self.brokers)
        try:
            wait_until(ok, timeout=DEADLINE, what="the partitions' leaders on every mount")
        except AssertionError:
            for b in self.brokers:
                print("\n--- broker %d:\n%s\n%s" % (b.broker_id, "\n".join(b.cluster()["lines"]),
                                                  b.log_text()[-2500:]), file=sys.stderr)
            raise

    def leader(self, topic):
        return self.by_id(int(part_line(self.brokers[0], topic)["leader"]))

    def write_everywhere(self, tag):
        """Appends to orders and solo at every mount (the leader's own, and
        forwarded), then waits until every mount reads them."""
        for topic in ("orders", "solo"):
            for b in self.brokers:
                line = "%s %s at %d\n" % (tag, topic, b.broker_id)
                append(b, topic, line)
                self.expect[topic] += line
        self.wait_reads()

    def wait_reads(self):
        for topic, text in self.expect.items():
            # solo is read at its replica's mount only: a mount without a
            # replica does not fetch reads from the leader yet (item 5).
            for b in self.brokers if topic == "orders" else [self.leader(topic)]:
                wait_until(lambda: harness.read(b.path(topic, "p0")) == text, timeout=DEADLINE,
                           what="%s at broker %d" % (topic, b.broker_id))

    def assert_refused_and_nothing_left(self):
        """mkdir, rmdir and .config at each mount: EAGAIN, nothing left."""
        for b in self.brokers:
            with self.assertRaises(OSError) as cm:
                os.mkdir(b.path("new%d" % b.broker_id))
            self.assertEqual(cm.exception.errno, errno.EAGAIN, "mkdir at %d" % b.broker_id)
            for topic in ("orders", "solo"):
                with self.assertRaises(OSError) as cm:
                    os.rmdir(b.path(topic))
                self.assertEqual(cm.exception.errno, errno.EAGAIN, "rmdir at %d" % b.broker_id)
                with self.assertRaises(OSError) as cm:
                    with open(b.path(topic, ".config"), "a") as f:
                        f.write("retention.ms=1\n")
                self.assertEqual(cm.exception.errno, errno.EAGAIN, ".config at %d" % b.broker_id)
        for b in self.brokers:
            self.assertEqual(listing(b), ["orders", "solo"], "mount of %d" % b.broker_id)
            self.assertEqual(stored(b), ["orders", "solo"], "data dir of %d" % b.broker_id)
            for topic in ("orders", "solo"):
                cfg = harness.read(b.path(topic, ".config"))
                self.assertIn("retention.ms=604800000\n", cfg)

    def assert_nothing_in_zookeeper(self):
        self.assertEqual(self.zk.children(CHROOT + "/brokers/topics"), ["orders", "solo"])
        self.assertEqual(self.zk.children(CHROOT + "/admin/delete_topics"), [])
        for topic in ("orders", "solo"):
            self.assertIn('"retention.ms":"604800000"',
                          self.zk.get(CHROOT + "/config/topics/" + topic))

    def while_down(self):
        """What must keep working while ZooKeeper is out of reach."""
        wait_until(lambda: all(b.cluster()["cluster"]["zookeeper"] != "connected"
                               for b in self.brokers), timeout=DEADLINE,
                   what=".cluster to say ZooKeeper is gone")
        for b in self.brokers:
            view = b.cluster()
            self.assertEqual(sorted(view["brokers"]), [1, 2, 3], "last known brokers")
            self.assertEqual(isr(b, "orders"), [1, 2, 3])
        follower = next(b for b in self.brokers if b is not self.leader("orders"))
        tail = Tail(self, follower.path("orders", "p0"))
        self.write_everywhere("down")
        self.assertEqual(tail.wait_for(self.expect["orders"].encode()),
                         self.expect["orders"].encode())
        self.assert_refused_and_nothing_left()
        return tail

    def after_back(self, started, tail):
        """What must work again once ZooKeeper is back."""
        wait_until(lambda: all(b.cluster()["cluster"]["zookeeper"] == "connected"
                               for b in self.brokers), timeout=DEADLINE, what="ZooKeeper back")
        wait_until(lambda: all(sorted(b.cluster()["brokers"]) == [1, 2, 3] and
                               b.cluster()["controller"]["id"] != "-1" for b in self.brokers),
                   timeout=DEADLINE, what="every broker registered, a controller")
        self.assert_nothing_in_zookeeper()
        # Topics are made again (retried: a controller may still be settling).
        wait_until(lambda: self.try_mkdir(self.brokers[1], "after"), timeout=DEADLINE,
                   what="mkdir once ZooKeeper is back")
        wait_until(lambda: all(os.path.exists(b.path("after", "p0")) for b in self.brokers),
                   timeout=DEADLINE, what="the new topic at every mount")
        resumed = time.monotonic() - started
        self.wait_states()
        self.isr_whole = time.monotonic() - started
        self.write_everywhere("back")
        self.assertEqual(tail.wait_for(self.expect["orders"].encode()),
                         self.expect["orders"].encode())
        with open(self.brokers[0].path("solo", ".config"), "a") as f:
            f.write("retention.ms=86400000\n")
        wait_until(lambda: all("retention.ms=86400000\n" in harness.read(b.path("solo", ".config"))
                               for b in self.brokers), timeout=DEADLINE,
                   what=".config at every mount")
        os.rmdir(self.brokers[2].path("after"))
        wait_until(lambda: all(listing(b) == ["orders", "solo"] for b in self.brokers),
                   timeout=DEADLINE, what="rmdir at every mount")
        for b in self.brokers:
            self.assertEqual(isr(b, "orders"), [1, 2, 3])
        return resumed

    @staticmethod
    def try_mkdir(b, name):
        try:
            os.mkdir(b.path(name))
            return True
        except FileExistsError:
            return True
        except OSError as e:
            if e.errno != errno.EAGAIN:
                raise
            return False

    def test_back_within_the_session_timeout(self):
        self.zk.stop()
        tail = self.while_down()
        self.zk.start()
        started = time.monotonic()
        resumed = self.after_back(started, tail)
        print("\nZooKeeper back (sessions alive): mkdir works again %.2fs after it started, "
              "ISR whole at every mount after %.2fs" % (resumed, self.isr_whole), file=sys.stderr)
        for b in self.brokers:
            self.assertNotIn("session expired", b.log_text())

    def test_sessions_expired_while_down(self):
        epoch = int(self.brokers[0].cluster()["controller"]["epoch"])
        self.zk.stop()
        tail = self.while_down()
        # ZooKeeper runs where the brokers cannot reach it, until it has
        # expired their sessions (their registrations and /controller go).
        self.zk.run_unseen(lambda: self.zk.children(CHROOT + "/brokers/ids") == [] and
                           self.zk.get(CHROOT + "/controller") is None,
                           timeout=3 * SESSION_MS / 1000 + 20, what="the sessions expired")
        self.write_everywhere("still")
        self.zk.start()
        started = time.monotonic()
        resumed = self.after_back(started, tail)
        print("\nZooKeeper back (sessions expired): mkdir works again %.2fs after it started, "
              "ISR whole at every mount after %.2fs" % (resumed, self.isr_whole), file=sys.stderr)
        for b in self.brokers:
            self.assertIn("ZooKeeper session expired", b.log_text())
            self.assertGreater(int(b.cluster()["controller"]["epoch"]), epoch)


if __name__ == "__main__":
    unittest.main(verbosity=2)
