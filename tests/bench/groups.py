#!/usr/bin/env python3
"""groups.py - the consumer-group benchmark across brokers: three brokers on
loopback with a private ZooKeeper (tests/cluster/zkharness.py), beside a
single-node mount, in the same run.

    tests/bench/groups.py                    # 256 MiB over 6 partitions, 3 runs
    BENCH_GROUPS_MB=24 BENCH_GROUPS_RUNS=1 tests/bench/groups.py   # quick

Workloads:
  (a) group consumption: BENCH_GROUPS_MB of 100-byte lines in a topic of 6
      partitions; three `cat drain` members start at once, one at each of
      three brokers' mounts (a topic of three replicas: every broker has
      them), against three `cat drain` members at one single-node mount.
      Bytes read by all three ÷ the time until the last one ends, median of
      BENCH_GROUPS_RUNS (a fresh group each run) and the range;
  (b) a member killed: two `follow` members at two mounts; one is killed
      (kill -9 of its reader); the time until .info shows every partition
      owned by the other (its partitions served again);
  (c) a broker killed: the same with the first member's broker killed
      (kill -9) instead, zookeeper.session.timeout.ms=4000; the time until
      the member at the surviving mount owns every partition.
Prints one markdown table on stdout; progress on stderr. Needs the build in
build/ (scripts/build.sh) and zookeeperd.
"""
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "cluster"))
sys.path.insert(0, os.path.join(ROOT, "tests", "fs"))
os.environ.setdefault("TOPICFS", os.path.join(ROOT, "build", "fs", "topicfs"))
os.environ.setdefault("ZKCAT", os.path.join(ROOT, "build", "tests", "cluster", "zkcat"))
import harness  # noqa: E402
from zkharness import Broker, ZooKeeper, wait_until  # noqa: E402

MB = int(os.environ.get("BENCH_GROUPS_MB", "256"))
RUNS = int(os.environ.get("BENCH_GROUPS_RUNS", "3"))
PARTS = 6
SESSION_MS = 4000
DEADLINE = 120


def log(*a):
    print("bench:", *a, file=sys.stderr, flush=True)


def fill(mount, topic, work):
    """MB MiB of 100-byte lines, spread over the partitions."""
    per = MB * 1048576 // 100 // PARTS
    for p in range(PARTS):
        path = os.path.join(work, "p%d" % p)
        with open(path, "w") as f:
            for start in range(0, per, 10000):
                f.write("".join("%-99d\n" % i for i in range(start, min(per, start + 10000))))
        subprocess.run("cat %s >> %s" % (path, mount.path(topic, "p%d" % p)), shell=True,
                       check=True)
        os.unlink(path)
    return per * PARTS * 100


def drain_all(mounts, topic, group):
    """Seconds until three `cat drain` members, one per mount given, end."""
    os.mkdir(mounts[0].path(topic, ".groups", group))
    for m in mounts[1:]:
        wait_until(lambda: os.path.isdir(m.path(topic, ".groups", group)), timeout=DEADLINE,
                   what="the group at every mount")
    t0 = time.monotonic()
    procs = [subprocess.Popen("cat %s > /dev/null" % m.path(topic, ".groups", group, "drain"),
                              shell=True) for m in mounts]
    for p in procs:
        if p.wait(timeout=DEADLINE * 10):
            raise RuntimeError("a drain failed")
    t = time.monotonic() - t0
    # Everything was consumed: the group's lag is 0 on every partition.
    info = harness.read(mounts[0].path(topic, ".groups", group, ".info"))
    if any("lag=0 " not in line for line in info.splitlines()):
        raise RuntimeError("the drains ended before the group was caught up:\n" + info)
    return t


def owners(mount, topic, group):
    text = harness.read(mount.path(topic, ".groups", group, ".info"))
    return [line.split("owner=")[1] for line in text.splitlines()]


def takeover(killer, mounts, topic, group):
    """Seconds from killer(reader at mounts[0]) until the member at mounts[1]
    owns every partition."""
    os.mkdir(mounts[0].path(topic, ".groups", group))
    wait_until(lambda: os.path.isdir(mounts[1].path(topic, ".groups", group)), timeout=DEADLINE,
               what="the group at the second mount")
    readers = [subprocess.Popen(["cat", m.path(topic, ".groups", group, "follow")],
                                stdout=subprocess.DEVNULL) for m in mounts]
    try:
        wait_until(lambda: len({o.split(":")[0] for o in owners(mounts[1], topic, group)}) == 2,
                   timeout=DEADLINE, what="both members owning partitions")
        survivor = "%d:%d" % (mounts[1].broker_id, readers[1].pid)
        t0 = time.monotonic()
        killer(readers[0])
        wait_until(lambda: all(o == survivor for o in owners(mounts[1], topic, group)),
                   timeout=DEADLINE, interval=0.01, what="the survivor owning every partition")
        return time.monotonic() - t0
    finally:
        for r in readers:
            r.kill()
            r.wait()


def rate(nbytes, secs):
    return nbytes / secs / 1e6


def main():
    work = tempfile.mkdtemp(prefix="topicfs-bench-groups-", dir="/var/tmp")
    zk = ZooKeeper()
    brokers, single = [], None
    rows = []
    try:
        zk.start()
        opts = "default.replication.factor=3,partitions=%d" % PARTS
        brokers = [Broker(zk, i, session_ms=SESSION_MS, extra_opts=opts,
                          base=tempfile.mkdtemp(prefix="b%d-" % i, dir=work)).start()
                   for i in (1, 2, 3)]
        single = harness.Mount(base=tempfile.mkdtemp(prefix="single-", dir=work),
                               opts="partitions=%d" % PARTS).start()
        wait_until(lambda: all(len(b.cluster()["brokers"]) == 3 for b in brokers),
                   timeout=DEADLINE, what="three live brokers")
        os.mkdir(brokers[0].path("events"))
        os.mkdir(single.path("events"))
        wait_until(lambda: all(os.path.exists(b.path("events", "p%d" % (PARTS - 1)))
                               for b in brokers), timeout=DEADLINE, what="the topic everywhere")
        log("filling %d MiB" % MB)
        nbytes = fill(brokers[0], "events", work)
        fill(single, "events", work)
        wait_until(lambda: all(os.path.getsize(b.path("events", "p%d" % (PARTS - 1))) ==
                               os.path.getsize(brokers[0].path("events", "p%d" % (PARTS - 1)))
                               for b in brokers), timeout=DEADLINE, what="replicas caught up")
        one, three = [], []
        for run in range(RUNS):
            one.append(rate(nbytes, drain_all([single] * 3, "events", "one%d" % run)))
            three.append(rate(nbytes, drain_all(brokers, "events", "three%d" % run)))
            log("run %d: single node %.0f MB/s, three mounts %.0f MB/s" % (run, one[-1],
                                                                           three[-1]))
        ratios = [t / o for t, o in zip(three, one)]
        rows.append(("(a) 3 `drain` members, MB/s: one single-node mount vs three brokers' mounts",
                     "%.0f (%.0f–%.0f)" % (statistics.median(one), min(one), max(one)),
                     "%.0f (%.0f–%.0f)" % (statistics.median(three), min(three), max(three)),
                     "%.2f× (%.2f–%.2f)" % (statistics.median(ratios), min(ratios),
                                            max(ratios))))
        coord = int(brokers[0].cluster()["coordinator"]["id"])
        others = [b for b in brokers if b.broker_id != coord]
        t = takeover(lambda r: r.send_signal(signal.SIGKILL), others, "events", "kill1")
        rows.append(("(b) member killed (kill -9 of its reader) → partitions owned at another "
                     "mount, s", "-", "%.3f" % t, "-"))
        t = takeover(lambda r: others[0].kill9(), others, "events", "kill2")
        rows.append(("(c) its broker killed (kill -9, session %d ms) → partitions owned at "
                     "another mount, s" % SESSION_MS, "-", "%.3f" % t, "-"))
    finally:
        for m in brokers + ([single] if single else []):
            try:
                m.cleanup()
            except Exception as e:  # keep cleaning up
                log("cleanup:", e)
        zk.cleanup()
        subprocess.run(["rm", "-rf", work])
    print("| workload | baseline | topicfs cluster | ratio |")
    print("|---|---|---|---|")
    for r in rows:
        print("| %s | %s | %s | %s |" % r)


if __name__ == "__main__":
    main()
