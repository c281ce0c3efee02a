"""Consume at any mount (issue 9, item 5): a broker that holds no replica
of a partition serves its reads by fetching from the partition's leader.
`cat p0`, `dd skip=` mid-stream, `p0@N`, `p0.jsonl`, `stat` and `.info` at
such a mount show what the leader's mount shows, byte for byte; a write
there is read back there at once; `tail -f` and a consumer group's follow
member there see a line appended at another mount; and after the leader of
a topic with two replicas is killed, reads there continue from the new
leader. test_throughput prints a remote cat's speed beside a local one."""
import json
import os
import select
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zkharness import ClusterTest, append, part_line, wait_until  # noqa: E402
import harness  # noqa: E402

SESSION_MS = 4000
DEADLINE = 20


def read_at(path, pos, n=1 << 30):
    with open(path, "rb") as f:
        f.seek(pos)
        return f.read(n)


class RemoteReadTest(ClusterTest):
    def start_brokers(self, rf, extra=""):
        opts = "default.replication.factor=%d,partitions=1" % rf + extra
        brokers = [self.broker(i, session_ms=SESSION_MS, extra_opts=opts) for i in (1, 2, 3)]
        wait_until(lambda: all(sorted(b.cluster()["brokers"]) == [1, 2, 3] for b in brokers),
                   timeout=DEADLINE, what="three brokers on every mount")
        return brokers

    def make_topic(self, brokers, topic, rf, config=()):
        os.mkdir(brokers[0].path(topic))
        for line in config:
            with open(brokers[0].path(topic, ".config"), "a") as f:
                f.write(line + "\n")

        def ready():
            lines = [part_line(b, topic) for b in brokers]
            return (all(lines) and all(line == lines[0] for line in lines) and
                    int(lines[0]["leader"]) > 0 and
                    len([x for x in lines[0]["isr"].split(",") if x]) == rf)
        wait_until(ready, timeout=DEADLINE, what="a leader of %s on every mount" % topic)
        line = part_line(brokers[0], topic)
        replicas = [int(x) for x in line["replicas"].split(",")]
        leader = next(b for b in brokers if b.broker_id == int(line["leader"]))
        others = [b for b in brokers if b.broker_id not in replicas]
        return leader, others

    def test_reads_at_a_broker_without_a_replica(self):
        brokers = self.start_brokers(1)
        leader, others = self.make_topic(brokers, "orders", 1)
        far, third = others
        lines = ["line %d %s\n" % (i, "x" * (i % 50)) for i in range(3000)]
        text = "".join(lines).encode()
        append(leader, "orders", "".join(lines))
        self.assertEqual(harness.read(leader.path("orders", "p0"), "rb"), text)
        # cat and stat: the leader's bytes and size.
        self.assertEqual(harness.read(far.path("orders", "p0"), "rb"), text)
        self.assertEqual(os.stat(far.path("orders", "p0")).st_size, len(text))
        # dd skip= mid-stream, and tail -c.
        for pos in (1, 4097, len(text) // 2, len(text) - 7):
            self.assertEqual(read_at(far.path("orders", "p0"), pos), text[pos:], pos)
        p = harness.sh("dd if=%s bs=1000 skip=37 count=5 status=none | md5sum; "
                       "tail -c 12345 %s | md5sum" % ((far.path("orders", "p0"),) * 2))
        q = harness.sh("dd if=%s bs=1000 skip=37 count=5 status=none | md5sum; "
                       "tail -c 12345 %s | md5sum" % ((leader.path("orders", "p0"),) * 2))
        self.assertEqual(p.stdout, q.stdout)
        # p0@N, p0@-N and p0.jsonl.
        for name in ("p0@1234", "p0@-10", "p0.jsonl", "p0@2990.jsonl"):
            self.assertEqual(harness.read(far.path("orders", name), "rb"),
                             harness.read(leader.path("orders", name), "rb"), name)
        self.assertEqual(harness.read(far.path("orders", "p0@2999"), "rb"), lines[-1].encode())
        recs = [json.loads(x) for x in harness.read(far.path("orders", "p0.jsonl")).splitlines()]
        self.assertEqual(len(recs), 3000)
        # .info: the leader's offsets, its id and ISR.
        info_far, info_leader = harness.info(far, "orders")["p0"], harness.info(leader, "orders")["p0"]
        for k in ("start_offset", "end_offset", "high_watermark", "bytes"):
            self.assertEqual(info_far[k], info_leader[k], k)
        self.assertEqual(info_far["leader"], leader.broker_id)
        self.assertEqual(str(info_far["isr"]), str(leader.broker_id))
        self.assertEqual(info_far["high_watermark"], 3000)
        # A write here is read back here at once (read your writes).
        with open(far.path("orders", "p0"), "rb") as r:
            self.assertEqual(r.read(), text)
            for i in range(5):
                append(far, "orders", "mine %d\n" % i)
                text += b"mine %d\n" % i
                self.assertEqual(r.read(), b"mine %d\n" % i)
        self.assertEqual(harness.read(leader.path("orders", "p0"), "rb"), text)
        # tail -f at the mount without a replica wakes on a line appended at
        # the third mount (forwarded to the leader).
        tail = subprocess.Popen(["tail", "-c", "+%d" % (len(text) + 1), "-f",
                                 far.path("orders", "p0")], stdout=subprocess.PIPE)
        self.addCleanup(lambda: (tail.kill(), tail.wait(), tail.stdout.close()))
        appended = time.monotonic()
        harness.sh("echo woken >> " + third.path("orders", "p0"))
        got = b""
        deadline = time.monotonic() + DEADLINE
        while not got.endswith(b"woken\n") and time.monotonic() < deadline:
            if select.select([tail.stdout], [], [], 0.2)[0]:
                got += os.read(tail.stdout.fileno(), 65536)
        self.assertEqual(got, b"woken\n")
        print("\ntail -f at a mount without a replica: woken %.3fs after the append" %
              (time.monotonic() - appended), file=sys.stderr)
        text += b"woken\n"
        self.assertEqual(os.stat(far.path("orders", "p0")).st_size, len(text))
        # stat with no open file: the leader's size (not cached for long).
        os.stat(far.path("orders", "p0"))
        appended = time.monotonic()
        append(leader, "orders", "stat me\n")
        text += b"stat me\n"
        wait_until(lambda: os.stat(far.path("orders", "p0")).st_size == len(text),
                   timeout=DEADLINE, what="the new size at broker %d" % far.broker_id)
        print("\nstat at a mount without a replica: new size %.3fs after the append" %
              (time.monotonic() - appended), file=sys.stderr)
        # A consumer group at this mount: drain reads the leader's records,
        # and a blocked follow member wakes on a line appended elsewhere
        # (the open member's long poll at the leader).
        os.mkdir(far.path("orders", ".groups", "g"))
        self.assertEqual(harness.read(far.path("orders", ".groups", "g", "drain"), "rb"), text)
        follow = subprocess.Popen(["cat", far.path("orders", ".groups", "g", "follow")],
                                  stdout=subprocess.PIPE)
        self.addCleanup(lambda: (follow.kill(), follow.wait(), follow.stdout.close()))
        wait_until(lambda: "owner=%d:%d" % (far.broker_id, follow.pid) in
                   harness.read(far.path("orders", ".groups", "g", ".info")),
                   timeout=DEADLINE, what="the follow member joined")
        appended = time.monotonic()
        append(third, "orders", "followed\n")
        got = b""
        deadline = time.monotonic() + DEADLINE
        while not got.endswith(b"followed\n") and time.monotonic() < deadline:
            if select.select([follow.stdout], [], [], 0.2)[0]:
                got += os.read(follow.stdout.fileno(), 65536)
        self.assertTrue(got.endswith(b"followed\n"), got[-100:])
        print("\ngroup follow member at a mount without a replica: woken %.3fs after the "
              "append" % (time.monotonic() - appended), file=sys.stderr)
        text += b"followed\n"
        # lz4 batches: fetched as stored, decompressed by core.
        leader, others = self.make_topic(brokers, "zipped", 1, ["compression.type=lz4"])
        ztext = "".join("compressible %d %s\n" % (i, "abc" * 40) for i in range(500))
        append(leader, "zipped", ztext)
        for b in others:
            self.assertEqual(harness.read(b.path("zipped", "p0")), ztext)
            self.assertEqual(read_at(b.path("zipped", "p0"), 10001), ztext.encode()[10001:])

    def test_throughput(self):
        """Not a benchmark (no assertion on speed): a remote cat beside a
        local one in the same run, for the report."""
        brokers = self.start_brokers(1)
        leader, others = self.make_topic(brokers, "bulk", 1)
        harness.sh("yes %s | head -c %d >> %s" % ("y" * 99, 16 << 20, leader.path("bulk", "p0")))
        size = os.stat(leader.path("bulk", "p0")).st_size
        self.assertEqual(size, 16 << 20)
        for name, b in (("remote, first", others[0]), ("remote, cached", others[0]),
                        ("local", leader)):
            t = time.monotonic()
            p = harness.sh("cat %s | wc -c" % b.path("bulk", "p0"))
            dt = time.monotonic() - t
            self.assertEqual(int(p.stdout), size, name)
            print("\ncat of %d MiB at the mount (%s): %.0f MB/s" % (size >> 20, name,
                                                                    size / dt / 1e6),
                  file=sys.stderr)

    def test_cached_records_read_with_the_leader_offline(self):
        """With the only replica's broker gone, a broker without a replica
        still reads what it has cached (cat's large reads included): only
        a read wholly past it waits for delivery.timeout.ms, then EIO. A
        cat used to wait that long and fail with EIO."""
        brokers = self.start_brokers(1, ",delivery.timeout.ms=60000")
        leader, others = self.make_topic(brokers, "solo", 1)
        far = others[0]
        text = "".join("cached %d\n" % i for i in range(50))
        append(far, "solo", text)
        self.assertEqual(harness.read(far.path("solo", "p0")), text)
        leader.kill9()
        wait_until(lambda: int(part_line(far, "solo")["leader"]) == -1, timeout=DEADLINE,
                   what="solo offline at broker %d" % far.broker_id)
        # Before delivery.timeout.ms (60 s) could pass: the cache answers.
        out = subprocess.run(["cat", far.path("solo", "p0")], capture_output=True, text=True,
                             timeout=50)
        self.assertEqual((out.returncode, out.stdout), (0, text), out.stderr)
        self.assertEqual(read_at(far.path("solo", "p0"), 10, 20), text[10:30].encode())

    def test_reads_follow_a_new_leader(self):
        brokers = self.start_brokers(2)
        leader, others = self.make_topic(brokers, "orders", 2)
        (far,) = others
        first = "".join("before %d\n" % i for i in range(100)).encode()
        append(leader, "orders", first.decode())
        wait_until(lambda: harness.read(far.path("orders", "p0"), "rb") == first,
                   timeout=DEADLINE, what="the first records at broker %d" % far.broker_id)
        with open(far.path("orders", "p0"), "rb") as held:
            self.assertEqual(held.read(), first)
            epoch = int(part_line(far, "orders")["leader_epoch"])
            leader.kill9()
            survivor = next(b for b in brokers if b is not leader and b is not far)

            def moved():
                line = part_line(far, "orders")
                return int(line["leader"]) == survivor.broker_id and \
                    int(line["leader_epoch"]) > epoch
            wait_until(moved, timeout=DEADLINE, what="the new leader %d" % survivor.broker_id)
            append(survivor, "orders", "after\n")
            expect = first + b"after\n"
            wait_until(lambda: harness.read(far.path("orders", "p0"), "rb") == expect,
                       timeout=DEADLINE, what="the new leader's record at broker %d" %
                       far.broker_id)
            # The file held open across the failover reads on.
            wait_until(lambda: held.read() == b"after\n" or None, timeout=DEADLINE,
                       what="the open file reading on")
        self.assertEqual(harness.info(far, "orders")["p0"]["leader"], survivor.broker_id)
        self.assertEqual(harness.read(far.path("orders", "p0@100"), "rb"), b"after\n")


if __name__ == "__main__":
    unittest.main(verbosity=2)
