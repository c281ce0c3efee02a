"""Joining a cluster (issue 9, item 1): brokers register under a private
ZooKeeper, every mount's .cluster lists them all with the same controller;
refusals (a live broker id, a data dir of another cluster or broker,
ZooKeeper unreachable, bad options) are one line on stderr, exit status 1,
nothing mounted and nothing written."""
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zkharness import (Broker, ClusterTest, free_port, is_mounted, run_refused,  # noqa: E402
                       wait_until)
import harness  # noqa: E402


def meta(data_dir):
    """meta.properties as a dict (no comments)."""
    with open(os.path.join(data_dir, "meta.properties")) as f:
        return dict(line.strip().split("=", 1) for line in f
                    if line.strip() and not line.startswith("#"))


class JoinTest(ClusterTest):
    def test_three_brokers_join(self):
        brokers = [self.broker(i) for i in (1, 2, 3)]
        wait_until(lambda: all(sorted(b.cluster()["brokers"]) == [1, 2, 3] for b in brokers),
                   timeout=20, what="every mount to list brokers 1, 2 and 3")
        wait_until(lambda: all(b.cluster()["controller"]["id"] != "-1" for b in brokers),
                   timeout=20, what="a controller")
        views = [b.cluster() for b in brokers]
        for b, v in zip(brokers, views):
            self.assertEqual(v["cluster"]["zookeeper"], "connected")
            self.assertEqual(v["cluster"]["id"], views[0]["cluster"]["id"])
            self.assertEqual(v["controller"], views[0]["controller"], "same controller everywhere")
            for other in brokers:
                entry = v["brokers"][other.broker_id]
                self.assertEqual("%s:%s" % (entry["host"], entry["port"]), other.listen)
                self.assertEqual(entry["self"], "1" if other is b else "0")
            self.assertEqual(meta(b.data), {"version": "0", "broker.id": str(b.broker_id),
                                            "cluster.id": v["cluster"]["id"]})
        self.assertIn(int(views[0]["controller"]["id"]), (1, 2, 3))
        self.assertEqual(views[0]["controller"]["epoch"], "1")
        # A topic made here is served: its one replica (default.replication.
        # factor=1) is on one of the brokers, which leads it once the
        # controller has said so, and stores what any mount writes to it.
        os.mkdir(brokers[0].path("orders"))
        with open(brokers[0].path("orders", "p0"), "a") as f:
            f.write("x\n")
        part = wait_until(lambda: [p for p in brokers[0].cluster()["partitions"]
                                   if p["topic"] == "orders" and p["leader"] != "-1"],
                          timeout=10, what="orders' leader")
        self.assertIn(part[0]["leader"], ("1", "2", "3"))
        self.assertEqual(harness.read(brokers[int(part[0]["leader"]) - 1].path("orders", "p0")),
                         "x\n")
        self.assertEqual((part[0]["replicas"], part[0]["isr"]), (part[0]["leader"],) * 2)
        for b in brokers:
            self.assertEqual(b.stop(), 0)

    def test_live_broker_id_refused(self):
        first = self.broker(1)
        wait_until(lambda: 1 in first.cluster()["brokers"], timeout=20, what="broker 1")
        second = Broker(self.zk, 1)
        self.addCleanup(second.cleanup)
        code, err = second.refused()
        self.assertEqual(code, 1)
        lines = err.splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertRegex(lines[0], r"^topicfs: broker 1 is already registered \(%s, since "
                         r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)$" % first.listen.replace(".", r"\."))
        self.assertFalse(os.path.exists(second.data), "a refused broker wrote its data dir")
        # The first one is still registered with its own address.
        self.assertEqual(first.cluster()["brokers"][1]["port"], first.listen.split(":")[1])

    def test_data_dir_of_another_cluster_refused(self):
        # Two clusters in one ZooKeeper: chroots /a and /b.
        a = self.broker(1, chroot="/a")
        wait_until(lambda: 1 in a.cluster()["brokers"], timeout=20, what="broker 1 in /a")
        cluster_a = a.cluster()["cluster"]["id"]
        self.assertEqual(a.stop(), 0)
        b_first = self.broker(2, chroot="/b")
        wait_until(lambda: 2 in b_first.cluster()["brokers"], timeout=20, what="broker 2 in /b")
        cluster_b = b_first.cluster()["cluster"]["id"]
        self.assertNotEqual(cluster_a, cluster_b)
        before = sorted(os.listdir(a.data))
        moved = Broker(self.zk, 1, chroot="/b", data=a.data)
        self.addCleanup(moved.cleanup)
        code, err = moved.refused()
        self.assertEqual(code, 1)
        self.assertEqual(err.splitlines(), [
            "topicfs: data dir %s belongs to cluster %s, not to cluster %s of ZooKeeper "
            "%s (meta.properties)" % (a.data, cluster_a, cluster_b, self.zk.connect("/b"))])
        self.assertEqual(sorted(os.listdir(a.data)), before)
        self.assertEqual(meta(a.data)["cluster.id"], cluster_a)
        # Nothing registered in /b for broker 1.
        self.assertEqual(sorted(b_first.cluster()["brokers"]), [2])

    def test_data_dir_of_another_broker_refused(self):
        one = self.broker(1)
        self.assertEqual(one.stop(), 0)
        other = Broker(self.zk, 2, data=one.data)
        self.addCleanup(other.cleanup)
        code, err = other.refused()
        self.assertEqual(code, 1)
        self.assertEqual(err.splitlines(), [
            "topicfs: data dir %s belongs to broker 1, not to broker 2 (meta.properties)"
            % one.data])
        self.assertEqual(meta(one.data)["broker.id"], "1")
        # The data dir's own broker comes back.
        one.start()
        wait_until(lambda: 1 in one.cluster()["brokers"], timeout=20, what="broker 1 back")

    def test_damaged_meta_refused(self):
        data = tempfile.mkdtemp(prefix="topicfs-zk-meta-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", data]))
        with open(os.path.join(data, "meta.properties"), "w") as f:
            f.write("version=0\nbroker.id=one\n")
        b = Broker(self.zk, 1, data=data)
        self.addCleanup(b.cleanup)
        code, err = b.refused()
        self.assertEqual(code, 1)
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertIn("meta.properties is damaged", err)

    def test_chroots_are_separate_clusters(self):
        a1 = self.broker(1, chroot="/x/a")
        a2 = self.broker(2, chroot="/x/a")
        b1 = self.broker(1, chroot="/x/b")
        wait_until(lambda: sorted(a1.cluster()["brokers"]) == [1, 2], timeout=20, what="/x/a")
        wait_until(lambda: sorted(b1.cluster()["brokers"]) == [1], timeout=20, what="/x/b")
        self.assertNotEqual(a1.cluster()["cluster"]["id"], b1.cluster()["cluster"]["id"])
        self.assertEqual(a2.cluster()["cluster"]["id"], a1.cluster()["cluster"]["id"])

    def test_unmount_leaves_at_once(self):
        """A clean unmount closes the session: the others drop the broker long
        before its (here very long) session timeout."""
        brokers = [self.broker(i, session_ms=60000) for i in (1, 2)]
        wait_until(lambda: sorted(brokers[0].cluster()["brokers"]) == [1, 2], timeout=20,
                   what="both brokers")
        self.assertEqual(brokers[1].stop(), 0)
        wait_until(lambda: sorted(brokers[0].cluster()["brokers"]) == [1], timeout=20,
                   what="broker 2 gone from broker 1's .cluster")
        # And it can come back at once with the same id; SIGTERM leaves at once too.
        brokers[1].start()
        wait_until(lambda: sorted(brokers[0].cluster()["brokers"]) == [1, 2], timeout=20,
                   what="broker 2 back")
        brokers[1].proc.send_signal(signal.SIGTERM)
        brokers[1].proc.wait(timeout=20)
        wait_until(lambda: sorted(brokers[0].cluster()["brokers"]) == [1], timeout=20,
                   what="broker 2 gone after SIGTERM")
        self.assertFalse(is_mounted(brokers[1].mnt))

    def test_background_daemon(self):
        """Without -f the ZooKeeper session begins after the fork; refusals
        still give the exit status."""
        b = Broker(self.zk, 1)
        self.addCleanup(b.cleanup)
        os.makedirs(b.mnt, exist_ok=True)
        r = subprocess.run([harness.TOPICFS, b.data, b.mnt, "-o", b.opts], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        pid = daemon_pid(b.mnt)
        self.addCleanup(stop_daemon, b.mnt, pid)
        self.assertTrue(is_mounted(b.mnt))
        wait_until(lambda: 1 in b.cluster()["brokers"] and b.cluster()["controller"]["id"] == "1",
                   timeout=20, what="broker 1 registered and controller")
        self.assertEqual(meta(b.data)["broker.id"], "1")
        dup = Broker(self.zk, 1)
        self.addCleanup(dup.cleanup)
        code, err = run_refused([harness.TOPICFS, dup.data, dup.mnt, "-o", dup.opts], dup.mnt)
        self.assertEqual(code, 1)
        self.assertRegex(err, r"^topicfs: broker 1 is already registered \(.*\)\n$")
        stop_daemon(b.mnt, pid)
        wait_until(lambda: not os.path.exists("/proc/%d" % pid), timeout=20, what="daemon exit")


def daemon_pid(mnt):
    """The pid of the background topicfs serving mnt (its argv names mnt)."""
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if args and os.path.basename(args[0]) == b"topicfs" and mnt.encode() in args:
            return int(p)
    raise AssertionError("no topicfs daemon for " + mnt)


def stop_daemon(mnt, pid):
    if is_mounted(mnt):
        subprocess.run(["fusermount3", "-u", mnt], capture_output=True)
    try:
        wait_until(lambda: not os.path.exists("/proc/%d" % pid), timeout=15, what="daemon exit")
    except AssertionError:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass


class UnreachableTest(unittest.TestCase):
    def test_zookeeper_unreachable(self):
        port = free_port()  # nobody listens there
        base = tempfile.mkdtemp(prefix="topicfs-zk-unreachable-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", base]))
        mnt = os.path.join(base, "mnt")
        data = os.path.join(base, "data")
        os.mkdir(mnt)
        opts = ("zk=127.0.0.1:%d/topicfs,broker=1,listen=127.0.0.1:%d,"
                "zookeeper.connection.timeout.ms=1500" % (port, free_port()))
        start = time.monotonic()
        code, err = run_refused([harness.TOPICFS, data, mnt, "-f", "-o", opts], mnt)
        waited = time.monotonic() - start
        self.assertEqual(code, 1)
        self.assertEqual(err.splitlines(), [
            "topicfs: ZooKeeper 127.0.0.1:%d/topicfs not reachable within 1500 ms "
            "(zookeeper.connection.timeout.ms)" % port])
        self.assertGreaterEqual(waited, 1.4, "it gave ZooKeeper its time")
        self.assertFalse(is_mounted(mnt))
        self.assertFalse(os.path.exists(data))


    def test_zookeeper_name_unresolvable(self):
        base = tempfile.mkdtemp(prefix="topicfs-zk-unresolvable-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", base]))
        mnt = os.path.join(base, "mnt")
        os.mkdir(mnt)
        opts = "zk=zookeeper.invalid:2181/topicfs,broker=1,listen=127.0.0.1:9093"
        code, err = run_refused([harness.TOPICFS, os.path.join(base, "data"), mnt, "-f", "-o",
                                 opts], mnt)
        self.assertEqual(code, 1)
        self.assertEqual(err.splitlines(), [
            "topicfs: ZooKeeper zookeeper.invalid:2181/topicfs: cannot resolve its servers' names"])


class OptionsTest(unittest.TestCase):
    """Bad cluster options: one line, exit 1, before any connection."""

    def refused(self, opts):
        base = tempfile.mkdtemp(prefix="topicfs-zk-opts-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", base]))
        mnt = os.path.join(base, "mnt")
        os.mkdir(mnt)
        code, err = run_refused([harness.TOPICFS, os.path.join(base, "data"), mnt, "-f", "-o",
                                 opts], mnt, timeout=20)
        self.assertEqual(code, 1, opts)
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertFalse(os.path.exists(os.path.join(base, "data")))
        return err

    def test_bad_options(self):
        self.assertIn("zk= needs broker=ID and listen=HOST:PORT",
                      self.refused("zk=127.0.0.1:1,listen=127.0.0.1:9093"))
        self.assertIn("zk= needs broker=ID", self.refused("zk=127.0.0.1:1,broker=1"))
        self.assertIn("need zk=", self.refused("broker=1"))
        self.assertIn("need zk=", self.refused("listen=127.0.0.1:9093"))
        self.assertIn("need zk=", self.refused("zookeeper.session.timeout.ms=100"))
        self.assertIn("zk=127.0.0.1: must be HOST:PORT",
                      self.refused("zk=127.0.0.1,broker=1,listen=127.0.0.1:9093"))
        self.assertIn("zk=127.0.0.1:1/a/: must be",
                      self.refused("zk=127.0.0.1:1/a/,broker=1,listen=127.0.0.1:9093"))
        self.assertIn("broker=-1: must be a broker id",
                      self.refused("zk=127.0.0.1:1,broker=-1,listen=127.0.0.1:9093"))
        self.assertIn("broker=1x: must be",
                      self.refused("zk=127.0.0.1:1,broker=1x,listen=127.0.0.1:9093"))
        self.assertIn("listen=9093: must be HOST:PORT",
                      self.refused("zk=127.0.0.1:1,broker=1,listen=9093"))
        self.assertIn("listen=::1:9093: must be",
                      self.refused("zk=127.0.0.1:1,broker=1,listen=::1:9093"))
        self.assertIn("zookeeper.session.timeout.ms=0: must be a number of milliseconds",
                      self.refused("zk=127.0.0.1:1,broker=1,listen=127.0.0.1:1,"
                                   "zookeeper.session.timeout.ms=0"))
        self.assertIn("zookeeper.connection.timeout.ms=soon: must be",
                      self.refused("zk=127.0.0.1:1,broker=1,listen=127.0.0.1:1,"
                                   "zookeeper.connection.timeout.ms=soon"))
        self.assertIn("need zk=", self.refused("default.replication.factor=2"))
        self.assertIn("need zk=", self.refused("unclean.leader.election.enable=true"))
        self.assertIn("auto.leader.rebalance.enable=yes: must be true or false",
                      self.refused("zk=127.0.0.1:1,broker=1,listen=127.0.0.1:1,"
                                   "auto.leader.rebalance.enable=yes"))
        self.assertIn("leader.imbalance.check.interval.seconds=0: must be a number of seconds",
                      self.refused("zk=127.0.0.1:1,broker=1,listen=127.0.0.1:1,"
                                   "leader.imbalance.check.interval.seconds=0"))
        for rf in ("0", "65", "x"):
            self.assertIn("default.replication.factor=%s: must be a number of replicas from 1 "
                          "to 64" % rf,
                          self.refused("zk=127.0.0.1:1,broker=1,listen=127.0.0.1:1,"
                                       "default.replication.factor=" + rf))


if __name__ == "__main__":
    unittest.main(verbosity=2)
