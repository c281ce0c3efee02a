"""Crash loop (issue 8): each cycle mounts one data dir, runs writers on a
plain, an lz4, a small-segment (segment.bytes=4096) and a compacted topic
(cleanup.policy=compact, passes every 50 ms) with fsync after known points
and cursor writes to a group, kills the daemon with SIGKILL at a random
moment, remounts, and checks:
  - every record acknowledged by fsync is there exactly once (compacted
    topic: the latest acknowledged value of each key, or a newer one, each
    at its own offset);
  - every acknowledged cursor write is the group's committed offset (or the
    one in flight at the crash);
  - every byte read back is a whole line some writer wrote, in order per
    writer; the mount works (the next cycle's writers append to it).
TOPICFS_CRASH_CYCLES sets the number of cycles (tests/soak/crashloop.sh runs
thousands), TOPICFS_CRASH_SECONDS stops earlier after that long,
TOPICFS_CRASH_SEED sets the random seed. The last line printed counts
cycles, records acknowledged and records lost (which must be 0)."""
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Mount, info, read, wait_until  # noqa: E402

CYCLES = int(os.environ.get("TOPICFS_CRASH_CYCLES", "24"))
SECONDS = float(os.environ.get("TOPICFS_CRASH_SECONDS", "0"))  # 0: no time limit
SEED = int(os.environ.get("TOPICFS_CRASH_SEED", str(int(time.time()))))
KEYS = 20
RENEW = 20  # cycles on the same topics

# A writer appends lines to a partition, fsyncs every few writes, and after
# each fsync that returned records the count of lines acknowledged. It stops
# at the first error (the daemon died).
WRITER = r"""
import os, sys
path, name, state, start, compact = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] == "1"
def line(i):
    if compact:
        return b"k%d:%s %d\n" % (i % KEYS, name.encode(), i)
    return b"%s %d %s\n" % (name.encode(), i, b"x" * (i % 37))
out = open(state, "a")
i = start
try:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    writes = 0
    while True:
        n = 1 + i % 7
        os.write(fd, b"".join(line(k) for k in range(i, i + n)))
        i += n
        writes += 1
        if writes % 5 == 0:
            os.fsync(fd)
            out.write("acked %d\n" % i)
            out.flush()
except OSError:
    pass
""".replace("KEYS", str(KEYS))

# Moves a group's cursor on p0 of a topic, recording each value before the
# write ("try") and once the write and close returned ("acked").
CURSOR = r"""
import os, random, sys, time
topic, cursor, state, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rnd = random.Random(seed)
out = open(state, "a")
try:
    while True:
        with open(os.path.join(topic, ".info")) as f:
            end = int(f.readline().split("end_offset=")[1].split()[0])
        v = rnd.randint(0, end)
        out.write("try %d\n" % v)
        out.flush()
        fd = os.open(cursor, os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, b"%d\n" % v)
        finally:
            os.close(fd)
        out.write("acked %d\n" % v)
        out.flush()
        time.sleep(0.002)  # pacing: leave the cores to the writers
except OSError:
    pass
"""

PLAIN_LINE = re.compile(rb"(w\d) (\d+) (x*)\Z")
COMPACT_LINE = re.compile(r"k(\d+):(w\d) (\d+)\n\Z")

TOPICS = {
    "plain": ("", ["w0", "w1"]),
    "lz4": ("compression.type=lz4\n", ["w2"]),
    "small": ("segment.bytes=4096\n", ["w3"]),
    "compact": ("segment.bytes=4096\ncleanup.policy=compact\nkey.separator=:\n"
                "min.cleanable.dirty.ratio=0.01\n", ["w4"]),
}


class CrashLoopTest(unittest.TestCase):
    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="topicfs-crashloop-")
        self.m = Mount(base=self.base, opts="partitions=1,retention.check.interval.ms=50")
        self.addCleanup(self.m.cleanup)
        self.procs = []
        self.acked = {}  # writer -> lines acknowledged by fsync so far
        self.cursor = 0  # the committed cursor read back after the last remount
        self.stats = {"cycles": 0, "acked": 0, "lost": 0, "cursor_acked": 0, "cursor_lost": 0,
                      "unsynced_kept": 0}

    def spawn(self, argv):
        p = subprocess.Popen([sys.executable, "-c"] + argv)
        self.procs.append(p)
        self.addCleanup(lambda: (p.poll() is None and p.kill(), p.wait()))
        return p

    def state(self, name):
        """Last 'acked' and 'try' values in a state file."""
        acked = tried = None
        path = os.path.join(self.base, name + ".state")
        if os.path.exists(path):
            for line in read(path).splitlines():
                kind, v = line.split()
                if kind == "acked":
                    acked = int(v)
                else:
                    tried = int(v)
        return acked, tried

    def plain_lines(self, topic):
        """Per writer: the sequence numbers read back, in order; each line must
        be whole and exactly what the writer wrote."""
        data = read(self.m.path(topic, "p0"), "rb")
        self.assertTrue(data == b"" or data.endswith(b"\n"), topic + ": a torn last line")
        seqs = {}
        for line in data.split(b"\n")[:-1]:
            mo = PLAIN_LINE.match(line)
            self.assertIsNotNone(mo, "%s: a line no writer wrote: %r" % (topic, line[:100]))
            w, i = mo.group(1).decode(), int(mo.group(2))
            self.assertEqual(len(mo.group(3)), i % 37, "%s: %r" % (topic, line))
            seqs.setdefault(w, []).append(i)
        return seqs

    def check_plain(self, topic, writers):
        """Returns where each writer goes on: the count of its lines present."""
        seqs = self.plain_lines(topic)
        nxt = {}
        for w in writers:
            got = seqs.get(w, [])
            self.assertEqual(got, list(range(len(got))),
                             "%s/%s: lines out of order, repeated or missing" % (topic, w))
            acked = self.acked.get(w, 0)
            if len(got) < acked:
                self.stats["lost"] += acked - len(got)
            nxt[w] = len(got)
        return nxt

    def compact_seqs(self, topic, w, values, offsets=None):
        """Checks records of the compacted topic (values, with their offsets
        when known); returns {key: latest seq}."""
        latest, last = {}, -1
        for n, v in enumerate(values):
            mo = COMPACT_LINE.match(v)
            self.assertIsNotNone(mo, "%s: a record no writer wrote: %r" % (topic, v))
            key, who, seq = int(mo.group(1)), mo.group(2), int(mo.group(3))
            self.assertEqual((who, key), (w, seq % KEYS), v)
            if offsets:
                self.assertEqual(offsets[n], seq, "%s: record at the wrong offset" % topic)
            self.assertGreater(seq, last, "%s: offsets out of order or repeated" % topic)
            last = seq
            latest[key] = seq
        acked = self.acked.get(w, 0)
        # The latest acknowledged value of each key, or a newer one.
        for key in range(KEYS):
            want = max((i for i in range(key, acked, KEYS)), default=None)
            if want is not None and latest.get(key, -1) < want:
                self.stats["lost"] += 1
                self.fail("%s: key k%d lost its acknowledged value %d (has %s)" % (
                    topic, key, want, latest.get(key)))
        return last

    def check_compact(self, topic, w):
        with open(self.m.path(topic, "p0.jsonl")) as f:
            recs = [json.loads(line) for line in f]
        for r in recs:
            self.assertEqual(r["key"], r["value"].split(":")[0], r)
        last = self.compact_seqs(topic, w, [r["value"] for r in recs], [r["offset"] for r in recs])
        # p0, read apart (a pass may run in between), is such a log too.
        data = read(self.m.path(topic, "p0"))
        self.assertTrue(data == "" or data.endswith("\n"), topic + ": a torn last line")
        self.compact_seqs(topic, w, [x + "\n" for x in data.split("\n")[:-1]])
        end = info(self.m, topic)["p0"]["end_offset"]
        self.assertEqual(end, last + 1, topic + ": end offset after the last record")
        self.assertGreaterEqual(end, self.acked.get(w, 0), topic + ": acknowledged records lost")
        return {w: end}

    def check_cursor(self):
        acked, tried = self.state("cursor")
        if acked is None:
            acked = self.cursor
        got = int(read(self.m.path("plain", ".groups", "g", "p0")))
        if got not in (acked, tried):
            self.stats["cursor_lost"] += 1
        self.assertIn(got, (acked, tried), "committed cursor (acknowledged %d, in flight %s)" % (
            acked, tried))
        self.cursor = got

    def check(self):
        """After a remount: everything acknowledged is there; returns where
        each writer goes on."""
        nxt = {}
        for topic, (_, writers) in TOPICS.items():
            if topic == "compact":
                nxt.update(self.check_compact(topic, writers[0]))
            else:
                nxt.update(self.check_plain(topic, writers))
        self.check_cursor()
        return nxt

    def make_topics(self, renew=False):
        m = self.m
        for topic, (cfg, _) in TOPICS.items():
            if renew:
                os.rmdir(m.path(topic))
            os.mkdir(m.path(topic))
            if cfg:
                with open(m.path(topic, ".config"), "a") as f:
                    f.write(cfg)
        os.mkdir(m.path("plain", ".groups", "g"))

    def test_crash_loop(self):
        rnd = random.Random(SEED)
        m = self.m.start()
        self.make_topics()
        nxt = {w: 0 for _, ws in TOPICS.values() for w in ws}
        t_end = time.monotonic() + SECONDS
        for cycle in range(CYCLES):
            if SECONDS and time.monotonic() > t_end:
                break
            if cycle and cycle % RENEW == 0:
                # Fresh topics now and then, so that a long soak does not read
                # an ever longer log at each check.
                self.make_topics(renew=True)
                nxt = {w: 0 for w in nxt}
                self.acked = {}
                self.cursor = 0
            for name in list(nxt) + ["cursor"]:
                path = os.path.join(self.base, name + ".state")
                if os.path.exists(path):
                    os.unlink(path)
            for topic, (_, writers) in TOPICS.items():
                for w in writers:
                    self.spawn([WRITER, m.path(topic, "p0"), w,
                                os.path.join(self.base, w + ".state"), str(nxt[w]),
                                "1" if topic == "compact" else "0"])
            self.spawn([CURSOR, m.path("plain"), m.path("plain", ".groups", "g", "p0"),
                        os.path.join(self.base, "cursor.state"), str(rnd.randrange(1 << 30))])
            # Kill at a random moment: after a random amount of appends.
            target = os.stat(m.path("small", "p0")).st_size + rnd.randint(100, 30000)
            wait_until(lambda: os.stat(m.path("small", "p0")).st_size > target, timeout=60,
                       what="appends in cycle %d" % cycle)
            m.kill9()
            for p in self.procs:
                p.wait(timeout=30)
            self.procs = []
            before = dict(self.acked)
            for w in nxt:
                acked, _ = self.state(w)
                if acked is not None:
                    self.acked[w] = acked
                    self.stats["acked"] += acked - max(before.get(w, 0), nxt[w])
            if self.state("cursor")[0] is not None:
                self.stats["cursor_acked"] += sum(
                    1 for line in read(os.path.join(self.base, "cursor.state")).splitlines()
                    if line.startswith("acked"))
            t0 = time.monotonic()
            m.start()
            self.stats["mount_s"] = round(time.monotonic() - t0, 3)
            try:
                new = self.check()
            finally:
                self.stats["cycles"] += 1
                print("cycle %d: %s" % (cycle, self.stats), file=sys.stderr)
            self.stats["unsynced_kept"] += sum(max(0, new[w] - self.acked.get(w, 0)) for w in new)
            nxt = new
            for w in nxt:  # what was kept is acknowledged from now on
                self.acked[w] = max(self.acked.get(w, 0), nxt[w])
        # The last remount takes appends too.
        with open(m.path("small", "p0"), "a") as f:
            f.write("w3 %d %s\n" % (nxt["w3"], "x" * (nxt["w3"] % 37)))
        self.assertEqual(self.check_plain("small", ["w3"])["w3"], nxt["w3"] + 1)
        s = self.stats
        print("crashloop: %d cycles, %d records acknowledged, %d lost, %d cursor commits "
              "acknowledged, %d lost, seed %d" % (s["cycles"], s["acked"], s["lost"],
                                                  s["cursor_acked"], s["cursor_lost"], SEED),
              file=sys.stderr)
        self.assertEqual(s["lost"], 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
