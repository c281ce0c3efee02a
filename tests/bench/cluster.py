#!/usr/bin/env python3
"""cluster.py - the replication benchmark: three brokers on loopback with a
private ZooKeeper (tests/cluster/zkharness.py), each with its own data dir
under /var/tmp and its own mount.

    tests/bench/cluster.py                      # 256 MiB ingest, 1 GiB while a broker is down
    BENCH_CLUSTER_MB=64 BENCH_CLUSTER_DOWN_MB=128 tests/bench/cluster.py   # quick

Workloads, each beside its baseline in the same run:
  (a) `cat` of 100-byte lines `>> p0`: a topic of one replica (RF=1) at its
      leader's mount, against a topic of three replicas with acks=all at its
      leader's mount and at a follower's mount (the write forwarded); and the
      CPU time each took (every broker's daemon + `cat`), which bounds the
      ratio on a machine whose cores the three brokers share;
  (b) replication lag under (a)'s RF=3 load: the leader's and a follower's
      segment files are sampled about every millisecond; for each size the
      leader reached, the time until the follower's reached it (leader
      append to follower append, on disk as both store the same bytes);
  (c) failover: `kill -9` of p0's leader while a writer at another mount
      appends; the time from the kill to the first write acknowledged after it;
  (d) restart to ISR: a follower killed, BENCH_CLUSTER_DOWN_MB written at the
      leader, the follower restarted on its data dir; the time from its start
      until .cluster shows it in p0's ISR again.
Prints one markdown table on stdout; progress on stderr. Needs the build in
build/ (scripts/build.sh) and zookeeperd.
"""
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "cluster"))
os.environ.setdefault("TOPICFS", os.path.join(ROOT, "build", "fs", "topicfs"))
os.environ.setdefault("ZKCAT", os.path.join(ROOT, "build", "tests", "cluster", "zkcat"))
import zkharness  # noqa: E402
from zkharness import Broker, ZooKeeper, wait_until  # noqa: E402

MB = int(os.environ.get("BENCH_CLUSTER_MB", "256"))
DOWN_MB = int(os.environ.get("BENCH_CLUSTER_DOWN_MB", "1024"))
SESSION_MS = 4000
LAG_MS = 2000
DEADLINE = 120


def log(*a):
    print("bench:", *a, file=sys.stderr, flush=True)


def part_line(b, topic):
    for line in b.cluster()["partitions"]:
        if line["topic"] == topic and int(line["partition"]) == 0:
            return line
    return None


def isr(b, topic):
    line = part_line(b, topic)
    return sorted(int(x) for x in line["isr"].split(",") if x) if line else []


def leader_of(brokers, topic, exclude=None):
    def ok():
        line = part_line(brokers[0], topic)
        return line and int(line["leader"]) > 0 and int(line["leader"]) != exclude
    wait_until(ok, timeout=DEADLINE, what="a leader of " + topic)
    lid = int(part_line(brokers[0], topic)["leader"])
    return next(b for b in brokers if b.broker_id == lid)


def log_bytes(b, topic):
    d = os.path.join(b.data, "topics", topic, "0")
    total = 0
    try:
        for name in os.listdir(d):
            if name.endswith(".log"):
                try:
                    total += os.stat(os.path.join(d, name)).st_size
                except FileNotFoundError:
                    pass
    except FileNotFoundError:
        pass
    return total


def lines_file(path, mb):
    """mb MiB of 100-byte numbered lines."""
    line_count = mb * 1048576 // 100
    with open(path, "w") as f:
        chunk = []
        for i in range(line_count):
            chunk.append("%-99d\n" % i)
            if len(chunk) == 10000:
                f.write("".join(chunk))
                chunk = []
        f.write("".join(chunk))
    return line_count


def cpu_seconds(pids):
    """User + system CPU time of the processes' threads so far."""
    total = 0
    for pid in pids:
        try:
            tids = os.listdir("/proc/%d/task" % pid)
        except FileNotFoundError:
            continue
        for tid in tids:
            try:
                with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
            except (FileNotFoundError, ProcessLookupError):
                pass
    return total / os.sysconf("SC_CLK_TCK")


def cat_into(src, dst, brokers=()):
    """Seconds `cat src >> dst` took, and the CPU seconds it and the
    brokers' daemons spent meanwhile."""
    pids = [b.proc.pid for b in brokers]
    c0, r0 = cpu_seconds(pids), os.times()
    t0 = time.monotonic()
    subprocess.run("cat %s >> %s" % (src, dst), shell=True, check=True)
    t = time.monotonic() - t0
    r1 = os.times()
    cat_cpu = (r1.children_user - r0.children_user) + (r1.children_system - r0.children_system)
    return t, cpu_seconds(pids) - c0 + cat_cpu


def make_topic(b, topic, config=()):
    os.mkdir(b.path(topic))
    for line in config:
        with open(b.path(topic, ".config"), "a") as f:
            f.write(line + "\n")


def main():
    work = tempfile.mkdtemp(prefix="topicfs-bench-cluster-", dir="/var/tmp")
    zk = ZooKeeper(base=os.path.join(work, "zk"))
    brokers = []
    rows = []
    try:
        zk.start()
        common = ("partitions=1,replica.lag.time.max.ms=%d" % LAG_MS)
        for i in (1, 2, 3):
            rf = 1 if i == 2 else 3  # a topic made at broker 2's mount has one replica
            b = Broker(zk, i, session_ms=SESSION_MS, base=os.path.join(work, "b%d" % i),
                       extra_opts=common + ",default.replication.factor=%d" % rf)
            brokers.append(b.start())
        wait_until(lambda: all(len(b.cluster()["brokers"]) == 3 for b in brokers),
                   timeout=DEADLINE, what="three brokers")
        src = os.path.join(work, "lines")
        n = lines_file(src, MB)
        log("%d MiB of 100-byte lines (%d records)" % (MB, n))

        # (a) ingest: RF=1 against RF=3 acks=all, at the leader and at a follower.
        make_topic(brokers[1], "one")
        make_topic(brokers[0], "three", ["acks=all"])
        make_topic(brokers[0], "three_f", ["acks=all"])
        l1 = leader_of(brokers, "one")
        l3 = leader_of(brokers, "three")
        wait_until(lambda: len(isr(brokers[0], "three")) == 3 and
                   len(isr(brokers[0], "three_f")) == 3, timeout=DEADLINE, what="full ISRs")
        lf = leader_of(brokers, "three_f")
        follower_mount = next(b for b in brokers if b is not lf)
        subprocess.run(["sync"])
        t_one, cpu_one = cat_into(src, l1.path("one", "p0"), brokers)
        log("RF=1: %.2f s" % t_one)

        subprocess.run(["sync"])
        t_three, cpu_three = cat_into(src, l3.path("three", "p0"), brokers)
        log("RF=3 at the leader: %.2f s" % t_three)
        subprocess.run(["sync"])
        t_three_f, cpu_three_f = cat_into(src, follower_mount.path("three_f", "p0"), brokers)
        log("RF=3 at a follower's mount: %.2f s" % t_three_f)

        # (b) the same RF=3 ingest again, sampled (apart from (a): the
        # sampler costs CPU).
        f3 = next(b for b in brokers if b is not l3)
        samples_l, samples_f = [], []
        stop = threading.Event()

        def sampler():
            while not stop.is_set():
                samples_l.append((time.monotonic(), log_bytes(l3, "three")))
                samples_f.append((time.monotonic(), log_bytes(f3, "three")))
                time.sleep(0.001)

        subprocess.run(["sync"])
        base = log_bytes(l3, "three")
        th = threading.Thread(target=sampler)
        th.start()
        cat_into(src, l3.path("three", "p0"))
        wait_until(lambda: log_bytes(f3, "three") >= log_bytes(l3, "three"), timeout=DEADLINE,
                   what="the follower caught up")
        stop.set()
        th.join()
        lags = []
        j = 0
        for t, size in samples_l:
            if size <= base:
                continue
            while j < len(samples_f) and samples_f[j][1] < size:
                j += 1
            if j == len(samples_f):
                break
            lags.append(max(0.0, samples_f[j][0] - t) * 1000)
        lags.sort()
        rate = lambda t: n / t  # noqa: E731
        rows.append(("(a) `cat` %d MiB of 100-byte lines `>> p0`, records/s" % MB,
                     "%.0f (RF=1)" % rate(t_one),
                     "%.0f (leader's mount) / %.0f (a follower's mount)" %
                     (rate(t_three), rate(t_three_f)),
                     "%.2f× / %.2f× RF=1" % (t_one / t_three, t_one / t_three_f)))
        # What (a) cost in CPU, and the ratio this machine could give at
        # best if every core were busy all the time: the brokers share it.
        cores = os.cpu_count()
        per_mib = lambda c: c * 1000 / MB  # noqa: E731
        ceiling = lambda c: t_one / (c / cores)  # noqa: E731
        rows.append(("(a) CPU per MiB (all brokers + `cat`), ms; ceiling = RF=1 time / "
                     "(RF=3 CPU / %d cores)" % cores,
                     "%.2f (RF=1)" % per_mib(cpu_one),
                     "%.2f (leader's mount) / %.2f (a follower's mount)" %
                     (per_mib(cpu_three), per_mib(cpu_three_f)),
                     "ceiling %.2f× / %.2f×" % (ceiling(cpu_three), ceiling(cpu_three_f))))
        if lags:
            rows.append(("(b) replication lag under (a), leader append → follower append, ms",
                         "-", "median %.1f, p99 %.1f (%d samples)" %
                         (statistics.median(lags), lags[min(len(lags) - 1, len(lags) * 99 // 100)],
                          len(lags)), "-"))

        # (c) failover: kill -9 the leader of `three` while a writer at another mount appends.
        victim = leader_of(brokers, "three")
        writer_mount = next(b for b in brokers if b is not victim)
        acked = []
        stop_w = threading.Event()

        def writer():
            i = 0
            while not stop_w.is_set():
                try:
                    with open(writer_mount.path("three", "p0"), "a") as f:
                        f.write("failover %d\n" % i)
                    acked.append(time.monotonic())
                except OSError:
                    pass
                i += 1

        wt = threading.Thread(target=writer)
        wt.start()
        wait_until(lambda: len(acked) > 20, timeout=DEADLINE, what="writes before the kill")
        t_kill = time.monotonic()
        victim.kill9()
        wait_until(lambda: acked and acked[-1] > t_kill + 0.0, timeout=DEADLINE,
                   what="a write acknowledged after the kill")
        # The first write acknowledged after the kill that started after it.
        wait_until(lambda: len([t for t in acked if t > t_kill]) >= 2, timeout=DEADLINE,
                   what="writes after the kill")
        t_first = [t for t in acked if t > t_kill][1]
        stop_w.set()
        wt.join()
        rows.append(("(c) failover: leader `kill -9` → first write acknowledged at another "
                     "mount, s (zookeeper.session.timeout.ms=%d)" % SESSION_MS, "-",
                     "%.2f" % (t_first - t_kill), "-"))

        # (d) restart to ISR after DOWN_MB were written while the broker was down.
        others = [b for b in brokers if b is not victim]
        gone = lambda b: lambda: b.broker_id not in others[0].cluster()["brokers"]  # noqa: E731
        wait_until(gone(victim), timeout=DEADLINE, what="the killed broker's session gone")
        victim.start()
        wait_until(lambda: victim.broker_id in isr(brokers[0], "three"), timeout=DEADLINE * 5,
                   what="the victim back in the ISR")
        leader = leader_of([b for b in brokers if b.alive()], "three")
        down = next(b for b in brokers if b is not leader)
        down.kill9()
        wait_until(lambda: down.broker_id not in isr(leader, "three"), timeout=DEADLINE,
                   what="the stopped follower out of the ISR")
        others = [b for b in brokers if b is not down]
        wait_until(gone(down), timeout=DEADLINE, what="the killed broker's session gone")
        big = os.path.join(work, "down")
        lines_file(big, DOWN_MB)
        cat_into(big, leader.path("three", "p0"))
        os.unlink(big)
        t_start = time.monotonic()
        down.start()
        wait_until(lambda: down.broker_id in isr(leader, "three"), timeout=DEADLINE * 10,
                   interval=0.05, what="the restarted follower in the ISR")
        rows.append(("(d) restart → back in the ISR after %d MiB written while down, s" % DOWN_MB,
                     "-", "%.2f" % (time.monotonic() - t_start), "-"))
    finally:
        for b in brokers:
            try:
                b.cleanup()
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
