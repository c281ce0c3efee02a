"""Replication between brokers (issue 9, items 5, 6 and 9): three brokers,
topics with three replicas. Records appended at the leader's mount reach
both followers' mounts (cat, tail -f), and every replica's segment files
end byte-identical, lz4 batches included (they travel as stored). The
leader shrinks the ISR when a follower stops fetching for
replica.lag.time.max.ms and grows it back when it catches up (.cluster
shows both, at the same leader epoch: the leader's doing, not the
controller's). A killed follower restarted on its data dir catches up and
rejoins the ISR; a killed leader whose last records no follower fetched
comes back as a follower, truncates them (KIP-101/279) and ends identical
to the new leader; a follower whose log lies wholly below the leader's log
start (retention ran at the leader meanwhile) starts afresh there."""
import os
import select
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zkharness import ClusterTest, append, isr, part_line, segments, wait_until  # noqa: E402
import harness  # noqa: E402

SESSION_MS = 4000
LAG_MS = 1000
DEADLINE = 20


PEER_FETCH = os.environ.get("PEER_FETCH") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "tests", "cluster",
    "peer_fetch")


def peer_fetch(b, my_id, *args):
    """A FETCH or OFFSET_FOR_EPOCH sent by hand to broker b as broker my_id:
    the answer's first word (an errno name or "ok") and its fields."""
    p = subprocess.run([PEER_FETCH, b.listen, str(my_id)] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=60)
    words = p.stdout.split()
    return (words[0] if words else p.stderr), dict(w.split("=") for w in words[1:])


def answered_fetches(port):
    """How many loopback TCP connections to port hold unread bytes at their
    client's end: a stopped follower whose long poll the leader answered
    (/proc/net/tcp: rem_address is the leader's port, rx_queue > 0)."""
    n = 0
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            rem_port = int(fields[2].split(":")[1], 16)
            rx = int(fields[4].split(":")[1], 16)
            if rem_port == port and fields[3] == "01" and rx > 0:
                n += 1
    return n


class ReplicationTest(ClusterTest):
    def start_brokers(self, ids=(1, 2, 3), extra="", lag_ms=LAG_MS, session_ms=SESSION_MS):
        opts = ("default.replication.factor=3,partitions=1,replica.lag.time.max.ms=%d,"
                "retention.check.interval.ms=200" % lag_ms) + extra
        brokers = [self.broker(i, session_ms=session_ms, extra_opts=opts) for i in ids]
        wait_until(lambda: all(sorted(b.cluster()["brokers"]) == sorted(ids) for b in brokers),
                   timeout=DEADLINE, what="brokers %s on every mount" % (ids,))
        return brokers

    def make_topic(self, brokers, topic, config=()):
        os.mkdir(brokers[0].path(topic))
        for line in config:
            with open(brokers[0].path(topic, ".config"), "a") as f:
                f.write(line + "\n")
        return self.wait_leader(brokers, topic)

    def wait_leader(self, brokers, topic, full=True, exclude=None):
        """The partition's leader once every mount shows it (and the whole ISR)."""
        def ok():
            lines = [part_line(b, topic) for b in brokers]
            if not all(lines) or any(l != lines[0] for l in lines):
                return False
            leader = int(lines[0]["leader"])
            return (leader > 0 and leader != exclude and
                    (not full or len(isr(brokers[0], topic)) == len(brokers)))
        wait_until(ok, timeout=DEADLINE, what="a leader of %s on every mount" % topic)
        leader = int(part_line(brokers[0], topic)["leader"])
        return next(b for b in brokers if b.broker_id == leader)

    def wait_identical(self, brokers, topic, expect=None):
        """Every mount reads the same (expect, if given) and every replica's
        segment files are the same bytes."""
        def same():
            texts = [harness.read(b.path(topic, "p0"), "rb") for b in brokers]
            segs = [segments(b, topic) for b in brokers]
            return (all(t == texts[0] for t in texts) and (expect is None or texts[0] == expect)
                    and segs[0] and all(s == segs[0] for s in segs))
        wait_until(same, timeout=DEADLINE, what="%s identical on brokers %s" %
                   (topic, [b.broker_id for b in brokers]))

    def test_followers_copy_the_leader(self):
        brokers = self.start_brokers()
        leader = self.make_topic(brokers, "orders")
        followers = [b for b in brokers if b is not leader]
        # tail -f at a follower's mount wakes when its high watermark moves.
        tail = subprocess.Popen(["tail", "-c", "+1", "-f", followers[0].path("orders", "p0")],
                                stdout=subprocess.PIPE)
        self.addCleanup(lambda: (tail.kill(), tail.wait(), tail.stdout.close()))
        lines = ["line %d %s\n" % (i, "x" * i) for i in range(50)]
        for line in lines:
            append(leader, "orders", line)
        appended = time.monotonic()
        expect = "".join(lines).encode()
        self.wait_identical(brokers, "orders", expect)
        print("\n50 appends at the leader: on every mount %.3fs after the last" %
              (time.monotonic() - appended), file=sys.stderr)
        got = b""
        deadline = time.monotonic() + DEADLINE
        while len(got) < len(expect) and time.monotonic() < deadline:
            if select.select([tail.stdout], [], [], 0.5)[0]:
                got += os.read(tail.stdout.fileno(), 65536)
        self.assertEqual(got, expect)
        for b in brokers:
            line = part_line(b, "orders")
            self.assertEqual(line["high_watermark"], "50")
            self.assertEqual(isr(b, "orders"), [1, 2, 3])
            self.assertEqual(harness.info(b, "orders")["p0"]["high_watermark"], 50)
        # lz4 batches travel compressed, and are stored the same everywhere.
        leader = self.make_topic(brokers, "zipped", ["compression.type=lz4"])
        wait_until(lambda: "compression.type=lz4\n" in
                   harness.read(leader.path("zipped", ".config")),
                   timeout=DEADLINE, what="lz4 at the leader")
        text = "".join("compressible %d %s\n" % (i, "abc" * 40) for i in range(20))
        append(leader, "zipped", text)
        self.wait_identical(brokers, "zipped", text.encode())
        stored = sum(len(v) for v in segments(leader, "zipped").values())
        self.assertLess(stored, len(text) // 2, "lz4 batches on disk")

    def test_isr_shrinks_and_grows(self):
        # The leader's lag (1 s) well within the session timeout, after which
        # the controller would take the dead follower out itself.
        brokers = self.start_brokers(session_ms=6000)
        leader = self.make_topic(brokers, "orders")
        epoch = part_line(leader, "orders")["leader_epoch"]
        follower = next(b for b in brokers if b is not leader)
        append(leader, "orders", "one\n")
        self.wait_identical(brokers, "orders", b"one\n")
        # A follower that stops fetching leaves the ISR after
        # replica.lag.time.max.ms, by the leader's hand (same epoch), and the
        # high watermark moves without it.
        follower.kill9()
        append(leader, "orders", "two\n")
        want = sorted(b.broker_id for b in brokers if b is not follower)
        wait_until(lambda: isr(leader, "orders") == want, timeout=DEADLINE,
                   what="the ISR without broker %d" % follower.broker_id)
        self.assertEqual(part_line(leader, "orders")["leader_epoch"], epoch)
        wait_until(lambda: harness.read(leader.path("orders", "p0")) == "one\ntwo\n",
                   timeout=DEADLINE, what="the high watermark past two")
        live = [b for b in brokers if b is not follower]
        wait_until(lambda: follower.broker_id not in leader.cluster()["brokers"],
                   timeout=DEADLINE, what="broker %d's session gone" % follower.broker_id)
        for i in range(30):
            append(leader, "orders", "more %d\n" % i)
        # Back on the same data dir: it catches up and rejoins the ISR.
        started = time.monotonic()
        follower.start()
        wait_until(lambda: isr(leader, "orders") == [1, 2, 3], timeout=DEADLINE,
                   what="broker %d back in the ISR" % follower.broker_id)
        print("\nrestart to ISR: %.2fs" % (time.monotonic() - started), file=sys.stderr)
        expect = ("one\ntwo\n" + "".join("more %d\n" % i for i in range(30))).encode()
        self.wait_identical(live + [follower], "orders", expect)

    def test_divergent_leader_truncates(self):
        # A lag the stop below stays within: the followers stay in the ISR.
        brokers = self.start_brokers(extra=",replica.fetch.wait.max.ms=200", lag_ms=8000)
        # acks=1: the leader's last write returns before any follower has it.
        old = self.make_topic(brokers, "orders", ["acks=1"])
        wait_until(lambda: all("acks=1\n" in harness.read(b.path("orders", ".config"))
                               for b in brokers), timeout=DEADLINE, what="acks=1 everywhere")
        followers = [b for b in brokers if b is not old]
        append(old, "orders", "committed\n")
        self.wait_identical(brokers, "orders", b"committed\n")
        # Records that no follower fetched: the followers are stopped, and
        # once the leader answered their long polls (no fetch in flight that
        # would carry the next records), it appends and dies.
        for b in followers:
            os.kill(b.proc.pid, signal.SIGSTOP)
        try:
            port = int(old.listen.rsplit(":", 1)[1])
            wait_until(lambda: answered_fetches(port) >= 2, timeout=DEADLINE,
                       what="the followers' long polls answered")
            append(old, "orders", "lost 1\nlost 2\n")
            old.kill9()
        finally:
            for b in followers:
                os.kill(b.proc.pid, signal.SIGCONT)
        new = self.wait_leader(followers, "orders", full=False, exclude=old.broker_id)
        append(new, "orders", "after\n")
        self.wait_identical(followers, "orders", b"committed\nafter\n")
        # The old leader comes back: it truncates what it alone had.
        old.start()
        wait_until(lambda: isr(new, "orders") == [1, 2, 3], timeout=DEADLINE,
                   what="broker %d back in the ISR" % old.broker_id)
        self.wait_identical(brokers, "orders", b"committed\nafter\n")
        self.assertIn("truncated", old.log_text())

        # The leader's answers, by hand (replica.h's errnos). Epoch 0 ended
        # at offset 1 at the new leader (epoch 1): where the old one cut.
        follower = next(b for b in followers if b is not new).broker_id
        epoch = int(part_line(new, "orders")["leader_epoch"])
        self.assertEqual(epoch, 1)
        self.assertEqual(peer_fetch(new, 9, "epoch", "orders", 0, 1, 0),
                         ("ok", {"epoch": "0", "end": "1"}))
        self.assertEqual(peer_fetch(new, 9, "epoch", "orders", 0, 1, 1),
                         ("ok", {"epoch": "1", "end": "2"}))
        self.assertEqual(peer_fetch(new, 9, "epoch", "orders", 0, 0, 1)[0], "ESTALE")
        self.assertEqual(peer_fetch(new, 9, "epoch", "nothing", 0, 1, 1)[0], "ENOENT")
        err, f = peer_fetch(new, follower, "fetch", follower, "orders", 0, 0, 1)
        self.assertEqual((err, f["hw"], f["start"], f["end"], f["epoch"]),
                         ("ok", "2", "0", "2", "1"))
        self.assertGreater(int(f["bytes"]), len("committed\nafter\n"))
        self.assertEqual(peer_fetch(new, 9, "fetch", -1, "orders", 0, 1, 1)[0], "ok")
        for args, want in (((follower, "orders", 0, 2, 0), "ESTALE"),
                           ((follower, "orders", 0, 2, 2), "EAGAIN"),
                           ((follower, "orders", 0, 3, 1), "ERANGE"),
                           ((follower, "nothing", 0, 0, 1), "ENOENT")):
            self.assertEqual(peer_fetch(new, follower, "fetch", *args)[0], want, args)
        self.assertEqual(peer_fetch(new, 9, "fetch", 9, "orders", 0, 0, 1)[0], "EPERM")
        self.assertEqual(peer_fetch(new, 9, "fetch", follower, "orders", 0, 0, 1)[0], "EACCES")
        self.assertEqual(peer_fetch(old, 9, "fetch", -1, "orders", 0, 0, 1)[0], "EREMOTE")
        # One request naming the partition twice, the first part held to its
        # first batch and the second from the next one: two batches stored
        # next to each other in one segment (large enough to be sent from the
        # file, not copied), and still each part's own.
        big = ["".join("%c%098d\n" % (c, i) for i in range(1000)) for c in "xy"]
        append(new, "orders", big[0])
        append(new, "orders", big[1])
        self.wait_identical(brokers, "orders",
                            b"committed\nafter\n" + "".join(big).encode())
        both = peer_fetch(new, 9, "fetch", -1, "orders", 0, 2, 1)
        self.assertEqual(both[0], "ok")
        p = subprocess.run([PEER_FETCH, new.listen, "9", "fetch2", "-1", "orders", "0", "2",
                            "1002", "1", "1"], capture_output=True, text=True, timeout=60)
        out = p.stdout.splitlines()
        self.assertEqual([line.split()[0] for line in out], ["ok", "ok"], p.stdout + p.stderr)
        sizes = [int(dict(w.split("=") for w in line.split()[1:])["bytes"]) for line in out]
        self.assertTrue(all(n > 0 for n in sizes), sizes)
        self.assertEqual(sum(sizes), int(both[1]["bytes"]))

    def test_follower_below_log_start_starts_afresh(self):
        brokers = self.start_brokers()
        leader = self.make_topic(brokers, "orders",
                                 ["segment.bytes=200", "retention.bytes=400"])
        follower = next(b for b in brokers if b is not leader)
        append(leader, "orders", "first\n")
        self.wait_identical(brokers, "orders", b"first\n")
        follower.kill9()
        live = [b for b in brokers if b is not follower]
        # Enough at the leader for retention to delete what the follower has.
        for i in range(60):
            append(leader, "orders", "record %02d %s\n" % (i, "y" * 30))
        wait_until(lambda: harness.info(leader, "orders")["p0"]["start_offset"] > 1,
                   timeout=DEADLINE, what="retention at the leader")
        wait_until(lambda: follower.broker_id not in leader.cluster()["brokers"],
                   timeout=DEADLINE, what="broker %d's session gone" % follower.broker_id)
        follower.start()
        wait_until(lambda: isr(leader, "orders") == [1, 2, 3], timeout=DEADLINE,
                   what="broker %d back in the ISR" % follower.broker_id)
        self.wait_identical(live + [follower], "orders")
        self.assertIn("started afresh", follower.log_text())


if __name__ == "__main__":
    unittest.main()
