"""Acknowledged writes in cluster mode (issue 9, items 7 and 8).

* acks=all (the default of a topic with more than one replica): a write at
  the leader's mount, and one forwarded from another mount, returns only
  once every in-sync replica has it. With a follower stopped (SIGSTOP) the
  write waits; it completes when the follower resumes, or when the leader
  takes the follower out of the ISR after replica.lag.time.max.ms. A topic
  set to acks=1 does not wait.
* A leader that loses leadership (stopped past its ZooKeeper session)
  while an acks=all write at its mount waits: the write fails with EIO.
* min.insync.replicas=2 with the only follower gone (out of the ISR): the
  write fails with EIO at the leader's mount and at another mount, and no
  replica's log changed; fsync too waits for the ISR.
* Failover: 20 times, the broker leading p0 is killed (kill -9) and
  restarted while writers at the other mounts append numbered lines with
  acks=all. Every acknowledged line is there exactly once, each writer's in
  order, no line twice, and every replica's partition file and segment
  files end byte-identical.
* A replica restarted when no leader is there (both brokers stopped, the
  one out of the ISR started alone) shows what was committed at once, from
  its high watermark checkpoint."""
import errno
import os
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zkharness import ClusterTest, isr, part_line, segments, wait_until  # noqa: E402
import harness  # noqa: E402

DEADLINE = 30


def writer(path, text, fsync=False):
    """A background `echo text >> path` (python, to report the errno)."""
    code = ("import os,sys\n"
            "fd=os.open(sys.argv[1],os.O_WRONLY|os.O_APPEND)\n"
            "try:\n"
            "    os.write(fd,sys.argv[2].encode())\n"
            "    if sys.argv[3]=='1': os.fsync(fd)\n"
            "except OSError as e:\n"
            "    print(e.errno); sys.exit(3)\n")
    return subprocess.Popen([sys.executable, "-c", code, path, text, "1" if fsync else "0"],
                            stdout=subprocess.PIPE, text=True)


def done(p):
    """Waits for a writer: its exit status (0, or 3 with the errno printed)."""
    p.communicate(timeout=DEADLINE)
    return p.returncode


def still_running(test, p, what):
    """p has not finished a moment after it started (it waits)."""
    try:
        p.wait(timeout=0.7)
    except subprocess.TimeoutExpired:
        return
    test.fail("%s returned (%s) while it should wait" % (what, p.returncode))


class AcksTest(ClusterTest):
    def start_brokers(self, ids=(1, 2, 3), rf=3, lag_ms=3000, session_ms=4000, extra=""):
        opts = ("default.replication.factor=%d,partitions=1,replica.lag.time.max.ms=%d,"
                "replica.fetch.wait.max.ms=200" % (rf, lag_ms)) + extra
        brokers = [self.broker(i, session_ms=session_ms, extra_opts=opts) for i in ids]
        wait_until(lambda: all(sorted(b.cluster()["brokers"]) == sorted(ids) for b in brokers),
                   timeout=DEADLINE, what="brokers %s on every mount" % (ids,))
        return brokers

    def make_topic(self, brokers, topic, config=(), nisr=3):
        os.mkdir(brokers[0].path(topic))
        for line in config:
            with open(brokers[0].path(topic, ".config"), "a") as f:
                f.write(line + "\n")
        for line in config:
            wait_until(lambda: all(line + "\n" in harness.read(b.path(topic, ".config"))
                                   for b in brokers), timeout=DEADLINE, what=line)
        return self.wait_leader(brokers, topic, nisr)

    def wait_leader(self, brokers, topic, nisr):
        def ok():
            lines = [part_line(b, topic) for b in brokers]
            return (all(lines) and all(l == lines[0] for l in lines) and
                    int(lines[0]["leader"]) > 0 and len(isr(brokers[0], topic)) == nisr)
        wait_until(ok, timeout=DEADLINE, what="a leader of %s on every mount" % topic)
        leader = int(part_line(brokers[0], topic)["leader"])
        return next(b for b in brokers if b.broker_id == leader)

    def test_acks_all_waits_for_the_isr(self):
        brokers = self.start_brokers(lag_ms=3000)
        leader = self.make_topic(brokers, "orders")
        self.assertEqual(harness.read(leader.path("orders", ".config")).count("acks=\n"), 1)
        stopped, other = [b for b in brokers if b is not leader]
        self.assertEqual(done(writer(leader.path("orders", "p0"), "zero\n")), 0)
        os.kill(stopped.proc.pid, signal.SIGSTOP)
        resumed = False
        try:
            # At the leader's mount and forwarded from the other follower's:
            # both wait for the stopped follower, then complete when it resumes.
            w1 = writer(leader.path("orders", "p0"), "one\n")
            still_running(self, w1, "an acks=all write at the leader")
            w2 = writer(other.path("orders", "p0"), "two\n")
            still_running(self, w2, "an acks=all write forwarded to the leader")
            self.assertEqual(isr(leader, "orders"), [1, 2, 3])
            os.kill(stopped.proc.pid, signal.SIGCONT)
            resumed = True
            self.assertEqual(done(w1), 0)
            self.assertEqual(done(w2), 0)
            # Stopped again: the write completes once the lag takes the
            # follower out of the ISR (and not before).
            os.kill(stopped.proc.pid, signal.SIGSTOP)
            resumed = False
            w3 = writer(other.path("orders", "p0"), "three\n", fsync=True)
            still_running(self, w3, "an acks=all write with a stopped follower")
            self.assertEqual(done(w3), 0)
            want = sorted(b.broker_id for b in brokers if b is not stopped)
            self.assertEqual(isr(leader, "orders"), want)
        finally:
            if not resumed:
                os.kill(stopped.proc.pid, signal.SIGCONT)
        wait_until(lambda: isr(leader, "orders") == [1, 2, 3], timeout=DEADLINE,
                   what="the follower back in the ISR")
        text = harness.read(leader.path("orders", "p0"))
        self.assertEqual(sorted(text.splitlines()), sorted(["zero", "one", "two", "three"]))
        wait_until(lambda: all(harness.read(b.path("orders", "p0")) == text for b in brokers),
                   timeout=DEADLINE, what="every mount identical")

        # acks=1, set explicitly: the write returns with the follower stopped.
        with open(leader.path("orders", ".config"), "a") as f:
            f.write("acks=1\n")
        wait_until(lambda: all("acks=1\n" in harness.read(b.path("orders", ".config"))
                               for b in brokers), timeout=DEADLINE, what="acks=1 everywhere")
        os.kill(stopped.proc.pid, signal.SIGSTOP)
        try:
            self.assertEqual(done(writer(leader.path("orders", "p0"), "four\n")), 0)
            self.assertEqual(isr(leader, "orders"), [1, 2, 3])
        finally:
            os.kill(stopped.proc.pid, signal.SIGCONT)

    def test_min_insync_replicas_refuses(self):
        # The mount option gives new topics their min.insync.replicas.
        brokers = self.start_brokers(rf=2, lag_ms=1000, extra=",min.insync.replicas=2")
        leader = self.make_topic(brokers, "orders", nisr=2)
        for b in brokers:
            self.assertIn("min.insync.replicas=2\n", harness.read(b.path("orders", ".config")))
        replicas = [int(x) for x in part_line(leader, "orders")["replicas"].split(",")]
        follower = next(b for b in brokers if b.broker_id in replicas and b is not leader)
        elsewhere = next(b for b in brokers if b.broker_id not in replicas)
        self.assertEqual(done(writer(leader.path("orders", "p0"), "kept\n", fsync=True)), 0)
        wait_until(lambda: harness.read(follower.path("orders", "p0")) == "kept\n",
                   timeout=DEADLINE, what="the follower has it")
        before = {b.broker_id: segments(b, "orders") for b in (leader, follower)}
        follower.kill9()
        wait_until(lambda: isr(leader, "orders") == [leader.broker_id], timeout=DEADLINE,
                   what="the ISR without the follower")
        for b in (leader, elsewhere):
            w = writer(b.path("orders", "p0"), "refused\n")
            out, _ = w.communicate(timeout=DEADLINE)
            self.assertEqual((w.returncode, out.strip()), (3, str(errno.EIO)),
                             "a write at broker %d" % b.broker_id)
        self.assertIn("min.insync.replicas=2", leader.log_text())
        self.assertEqual(harness.read(leader.path("orders", "p0")), "kept\n")
        self.assertEqual(harness.info(leader, "orders")["p0"]["end_offset"], 1)
        self.assertEqual(segments(leader, "orders"), before[leader.broker_id])
        self.assertEqual(segments(follower, "orders"), before[follower.broker_id])
        # The follower back: writes work again, and both replicas are the same.
        wait_until(lambda: follower.broker_id not in leader.cluster()["brokers"],
                   timeout=DEADLINE, what="the follower's session gone")
        follower.start()
        wait_until(lambda: isr(leader, "orders") == sorted(replicas), timeout=DEADLINE,
                   what="the follower back in the ISR")
        self.assertEqual(done(writer(elsewhere.path("orders", "p0"), "after\n")), 0)
        wait_until(lambda: segments(follower, "orders") == segments(leader, "orders") and
                   harness.read(follower.path("orders", "p0")) == "kept\nafter\n",
                   timeout=DEADLINE, what="both replicas identical")

    def test_restarted_replica_serves_what_was_committed(self):
        # A lag far above the deadline below: only the checkpoint can show it.
        brokers = self.start_brokers(ids=(1, 2), rf=2, lag_ms=60000)
        leader = self.make_topic(brokers, "orders", nisr=2)
        follower = next(b for b in brokers if b is not leader)
        self.assertEqual(done(writer(follower.path("orders", "p0"), "a\nb\n")), 0)
        wait_until(lambda: harness.read(follower.path("orders", "p0")) == "a\nb\n",
                   timeout=DEADLINE, what="the follower's high watermark")
        # Both stop, the follower first (the controller takes it out of the
        # ISR); the follower alone comes back: no leader it can fetch from,
        # yet it shows what was committed, from its checkpoint.
        follower.stop()
        wait_until(lambda: isr(leader, "orders") == [leader.broker_id], timeout=DEADLINE,
                   what="the ISR without the follower")
        leader.stop()
        follower.start()
        self.assertTrue(os.path.exists(os.path.join(follower.data, "topics", "orders", "0",
                                                    "replication-offset-checkpoint")))
        def role():
            text = follower.log_text()
            text = text[text.rfind("serving "):]
            return any("partition orders-0: " + r in text for r in ("offline", "follower"))
        wait_until(role, timeout=DEADLINE, what="the restarted replica's role")
        wait_until(lambda: harness.read(follower.path("orders", "p0")) == "a\nb\n",
                   timeout=5, what="the committed records at once")

    def test_leadership_lost_while_waiting_fails(self):
        # No shrink: the write waits for the stopped follower until the
        # leader, stopped past its session, is no longer the leader.
        brokers = self.start_brokers(lag_ms=60000, session_ms=2000)
        leader = self.make_topic(brokers, "orders")
        stopped, other = [b for b in brokers if b is not leader]
        self.assertEqual(done(writer(leader.path("orders", "p0"), "zero\n")), 0)
        os.kill(stopped.proc.pid, signal.SIGSTOP)
        paused = [stopped]
        try:
            w = writer(leader.path("orders", "p0"), "waits\n")
            still_running(self, w, "an acks=all write with a stopped follower")
            os.kill(leader.proc.pid, signal.SIGSTOP)
            paused.append(leader)
            wait_until(lambda: int(part_line(other, "orders")["leader"]) == other.broker_id,
                       timeout=DEADLINE, what="another leader")
            os.kill(leader.proc.pid, signal.SIGCONT)
            paused.remove(leader)
            out, _ = w.communicate(timeout=DEADLINE)
            self.assertEqual((w.returncode, out.strip()), (3, str(errno.EIO)))
        finally:
            for b in paused:
                os.kill(b.proc.pid, signal.SIGCONT)
        self.assertIn("not acknowledged", leader.log_text())

    def test_leader_kills_lose_and_duplicate_nothing(self):
        kills = int(os.environ.get("TOPICFS_TEST_KILLS", "20"))
        session_ms = 1500
        brokers = self.start_brokers(lag_ms=3000, session_ms=session_ms)
        by_id = {b.broker_id: b for b in brokers}
        self.make_topic(brokers, "orders")
        nwriters = 2
        targets = [None] * nwriters  # broker each writer appends at
        acked = [[] for _ in range(nwriters)]
        failed = [[] for _ in range(nwriters)]
        lock = threading.Lock()
        targets_set = threading.Condition(lock)  # notified when targets change or at stop
        stop = threading.Event()

        def run(k):
            n = 0
            while not stop.is_set():
                with targets_set:
                    while targets[k] is None and not stop.is_set():
                        targets_set.wait(1.0)
                    b = targets[k]
                if b is None:
                    continue
                line = "w%d %06d\n" % (k, n)
                try:
                    fd = os.open(b.path("orders", "p0"), os.O_WRONLY | os.O_APPEND)
                    try:
                        os.write(fd, line.encode())
                    finally:
                        os.close(fd)
                    with lock:
                        acked[k].append(n)
                    stop.wait(0.002)  # pacing: leave the CPUs to the brokers
                except OSError as e:
                    with lock:
                        failed[k].append((n, e.errno))
                    stop.wait(0.05)  # back off after a refused write
                n += 1

        threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(nwriters)]
        for t in threads:
            t.start()
        self.addCleanup(lambda: (stop.set(), [t.join(timeout=60) for t in threads]))

        def progress():
            with lock:
                return sum(len(a) for a in acked)

        stalls = []
        began = time.monotonic()
        for i in range(kills):
            live = list(by_id.values())
            leader = self.wait_leader(live, "orders", 3)
            others = [b for b in live if b is not leader]
            with targets_set:
                for k in range(nwriters):
                    targets[k] = others[k % len(others)]
                targets_set.notify_all()
            # Writes go on at the other mounts before the kill.
            seen = progress()
            wait_until(lambda: progress() >= seen + 4, timeout=DEADLINE,
                       what="writes before kill %d" % i)
            leader.kill9()
            killed = time.monotonic()
            seen = progress()
            wait_until(lambda: progress() > seen, timeout=DEADLINE,
                       what="an acknowledged write after kill %d" % i)
            stalls.append(time.monotonic() - killed)
            wait_until(lambda: leader.broker_id not in others[0].cluster()["brokers"],
                       timeout=DEADLINE, what="broker %d's session gone" % leader.broker_id)
            leader.start()
            if os.environ.get("TOPICFS_TEST_VERBOSE"):
                print("kill %d at %.1fs: stall %.2fs" % (i, time.monotonic() - began, stalls[-1]),
                      file=sys.stderr)
        stop.set()
        for t in threads:
            t.join(timeout=DEADLINE * 2)
        live = list(by_id.values())
        self.wait_leader(live, "orders", 3)
        stalls.sort()
        print("\n%d kills: %d writes acknowledged, %d failed; write stall after a kill: "
              "median %.2fs, max %.2fs" % (kills, sum(len(a) for a in acked),
                                           sum(len(f) for f in failed),
                                           stalls[len(stalls) // 2], stalls[-1]),
              file=sys.stderr)

        def identical():
            texts = [harness.read(b.path("orders", "p0")) for b in live]
            segs = [segments(b, "orders") for b in live]
            return all(t == texts[0] for t in texts) and all(s == segs[0] for s in segs)
        wait_until(identical, timeout=DEADLINE, what="every replica identical")
        text = harness.read(live[0].path("orders", "p0"))
        seen = [[] for _ in range(nwriters)]
        for line in text.splitlines():
            w, n = line.split()
            seen[int(w[1:])].append(int(n))
        for k in range(nwriters):
            dup = sorted({n for n in seen[k] if seen[k].count(n) > 1})
            self.assertEqual(dup, [], "writer %d's lines stored twice" % k)
            self.assertEqual(seen[k], sorted(seen[k]), "writer %d's lines out of order" % k)
            lost = sorted(set(acked[k]) - set(seen[k]))
            self.assertEqual(lost, [], "writer %d's acknowledged lines lost" % k)
            self.assertTrue(set(seen[k]) <= set(acked[k]) | {n for n, _ in failed[k]})


if __name__ == "__main__":
    unittest.main()
