"""Consumer groups across the cluster (issue 10): three brokers on loopback
with a private ZooKeeper, real worker processes reading group member files
at every mount.

* A group made at one mount is listed at every mount; a cursor written at
  one mount reads the same at the others (and in .info and .metrics); rmdir
  at any mount is EBUSY while a member is open at another, then deletes the
  group everywhere, and the name can be made again at another mount.
* Three drain members, one per mount, opened before they read (so no
  member reads a block of a partition that a later join takes away, the
  documented duplicate window): every record delivered exactly once, .info
  shows owners broker:pid from the three brokers.
* Follow members on every mount keep up with a producer that writes one
  record a write (each commit waits for __consumer_offsets' replicas while
  the same replicas' fetches move the topic's high watermarks), and bash
  `while read` loops on every mount get every line once.
* A follow worker that received records and never acknowledged them is
  killed (kill -9): those records reach the workers on the other mounts,
  which start each of its partitions after what it acknowledged (fsync);
  every record is processed, duplicates only in its partitions after its
  last acknowledgement.
* The issue's run: three drain workers (one per mount) and 300,000
  records; one worker killed and restarted, and one broker (neither the
  producers' mount nor the coordinator) killed along the way: every record
  processed at least once, none skipped, the committed offsets at least
  what the workers acknowledged and, at the end, the log end.
* Coordinator kill loop: ten times the coordinator (.cluster) is killed
  (kill -9) and restarted, while a process writes a cursor at another
  mount, after cursor writes and a drain's fsync at mounts that do not
  coordinate: no acknowledged commit is ever lost, and no drain is given a
  record it acknowledged or skips one. And once with follow workers on
  every mount: the ones on the other mounts go on without an error, and no
  record is delivered after an fsync acknowledged it.
* ZooKeeper lost by one broker only (each broker reaches ZooKeeper through
  its own TCP forwarder, ZkProxy, which the test cuts): its member keeps
  reading what it owns, then gets EIO once its session expired; its
  partitions go to the other mounts, and no partition is read by two
  members at the same time.

Workers are python processes (WORKER below) that read a member file with
os.read, write each record they got to their own output file (flushed
before the next read, so what is in the output is what was processed) and
acknowledge with fsync; every one is killed by pid at the end, even when a
test fails. Records are "pP NNNNNNN": partition P's record number N, which
is also its offset (each partition is written by one producer in order)."""
import collections
import errno
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zkharness import Broker, ClusterTest, free_port, part_line, wait_until  # noqa: E402
import harness  # noqa: E402

SESSION_MS = 4000
DEADLINE = 60
BIG_RECORDS = int(os.environ.get("TOPICFS_TEST_GROUP_RECORDS", "300000"))  # test 4, in total
# Test 4's workers take this long to "process" each block of READ_SMALL
# records (about 4,000 records a second each), so that the whole run takes
# some 30 s and the kills land while records are in flight: without it
# three workers drain 300,000 records in a few seconds on a 2-core machine.
BIG_PAUSE = 0.09
COORDINATOR_KILLS = int(os.environ.get("TOPICFS_TEST_COORDINATOR_KILLS", "10"))
VERBOSE = bool(os.environ.get("TOPICFS_TEST_VERBOSE"))
RECORD = len("p0 0000000\n")  # every record of these tests has this size
# Workers read a whole number of records at a time, so that a read ends at
# a record boundary and an fsync acknowledges only records they processed.
READ_SMALL = 4096 // RECORD * RECORD

# A group member: opens PATH, reads it with os.read(READ_SIZE) and appends
# every record it got to OUT (flushed before it reads again); after EVERY
# records, at a record boundary, fsyncs the member file and notes "#ACK
# pP=N ... @T" (the last record number of each partition it got on that
# open file; T: the monotonic time the fsync returned). At end of file
# (drain) it notes "#EOF", closes, and opens again after a pause unless
# STOP exists. GATE (or -): a file to wait for after
# the open, before the first read. STALL > 0: once it processed that many
# records it reads one more block, writes it to OUT.held instead of
# processing it, and sleeps (a worker stuck with records it never
# acknowledged). TIMES=1: each record line gets the monotonic times at which
# its read started and returned. PAUSE: seconds it takes to "process"
# each block it read (after writing it out). A failed open or read notes "#ERR what
# errno" and exits. Exit status 0 when it stopped at STOP or after GATE's
# one round.
WORKER = r'''
import os, sys, time
path, out_path, every, read_size, gate, stop, stall, times, pause = sys.argv[1:10]
every, read_size, stall, times = int(every), int(read_size), int(stall), times == "1"
pause = float(pause)
out = open(out_path, "a")
def note(s):
    out.write(s + "\n")
    out.flush()
total = 0
while True:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as e:
        note("#ERR open %d" % e.errno)
        sys.exit(2)
    note("#OPEN")
    if gate != "-":
        while not os.path.exists(gate):
            time.sleep(0.02)
    pending = b""
    since = 0
    seen = {}
    try:
        while True:
            t0 = time.monotonic()
            chunk = os.read(fd, read_size)
            t1 = time.monotonic()
            if not chunk:
                break
            if stall and total >= stall:
                with open(out_path + ".held", "a") as h:
                    h.write((pending + chunk).decode())
                note("#STALL")
                time.sleep(3600)
            pending += chunk
            lines = pending.split(b"\n")
            pending = lines.pop()
            suffix = " %.6f %.6f" % (t0, t1) if times else ""
            for l in lines:
                s = l.decode()
                out.write(s + suffix + "\n")
                p, n = s.split()[:2]
                if int(n) > seen.get(p, -1):
                    seen[p] = int(n)
            out.flush()
            total += len(lines)
            since += len(lines)
            if every and since >= every and not pending:
                os.fsync(fd)
                note("#ACK " + " ".join("%s=%d" % kv for kv in sorted(seen.items())) +
                     " @%.6f" % time.monotonic())
                since = 0
            if pause:
                time.sleep(pause)
    except OSError as e:
        note("#ERR read %d" % e.errno)
        sys.exit(1)
    os.close(fd)
    note("#EOF")
    if gate != "-" or os.path.exists(stop):
        sys.exit(0)
    time.sleep(0.3)
'''

# Appends one numbered record to each partition of TOPIC_DIR in turn (own
# counter per partition), one write() each, until STOP exists; a refused
# write is tried again (it may then be stored twice: consumers compare
# sets). Stops after ROUNDS records a partition, if given. Notes the
# records it wrote in OUT at the end: "pP COUNT" lines.
PRODUCER = r'''
import os, sys, time
topic_dir, nparts, stop, out, pause = sys.argv[1:6]
nparts, pause = int(nparts), float(pause)
rounds = int(sys.argv[6]) if len(sys.argv) > 6 else -1
fds = [os.open(os.path.join(topic_dir, "p%d" % p), os.O_WRONLY | os.O_APPEND)
       for p in range(nparts)]
count = [0] * nparts
errors = 0
while not os.path.exists(stop) and count[0] != rounds:
    for p in range(nparts):
        while True:
            try:
                os.write(fds[p], b"p%d %07d\n" % (p, count[p]))
                break
            except OSError:
                errors += 1
                time.sleep(0.2)
        count[p] += 1
    time.sleep(pause)
with open(out, "w") as f:
    f.write("".join("p%d %d\n" % (p, count[p]) for p in range(nparts)))
    f.write("errors %d\n" % errors)
'''

# Writes a cursor file with START+1, START+2, ... (each an `echo N > FILE`)
# until STOP exists or LIMIT is reached, noting in LOG "try N" before each
# write and "ok N" or "err N errno" after it. A process, not a thread of
# the test: a thread blocked in a write to a mount would hold up every
# process the test starts meanwhile (fork waits for it).
RACER = r'''
import os, sys, time
path, v, limit, stop, log = sys.argv[1:6]
v, limit = int(v), int(limit)
out = open(log, "a")
while not os.path.exists(stop) and v < limit:
    v += 1
    out.write("try %d\n" % v)
    out.flush()
    try:
        with open(path, "w") as f:
            f.write("%d\n" % v)
        out.write("ok %d\n" % v)
    except OSError as e:
        out.write("err %d %d\n" % (v, e.errno))
        time.sleep(0.05)
    out.flush()
    time.sleep(0.01)
'''


def record_lines(p, start, end):
    return "".join("p%d %07d\n" % (p, i) for i in range(start, end))


def group_info(b, topic, group):
    """.groups/<group>/.info at b as {"p0": {"committed": .., "owner": ..}}."""
    out = {}
    for line in harness.read(b.path(topic, ".groups", group, ".info")).splitlines():
        fields = line.split()
        out[fields[0]] = dict(x.split("=", 1) for x in fields[1:])
    return out


def owners(b, topic, group):
    return {k: v["owner"] for k, v in group_info(b, topic, group).items()}


def group_lag_metric(b, topic, group, p):
    """topicfs_group_lag of the partition in b's .metrics, or None."""
    m = re.search(r'^topicfs_group_lag\{topic="%s",group="%s",partition="%d"\} (\d+)$'
                  % (topic, group, p), harness.read(b.path(".metrics")), re.M)
    return int(m.group(1)) if m else None


def coordinator(b):
    """The coordinator's broker id in b's .cluster (-1: none, None: no line)."""
    try:
        line = b.cluster().get("coordinator")
    except OSError:
        return None
    return int(line["id"]) if line and "id" in line else None


def read_cursor(b, topic, group, p):
    return harness.read(b.path(topic, ".groups", group, "p%d" % p))


def write_cursor(b, topic, group, p, value):
    """`echo value > cursor`: None if it returned success, else the errno."""
    try:
        with open(b.path(topic, ".groups", group, "p%d" % p), "w") as f:
            f.write("%s\n" % value)
        return None
    except OSError as e:
        return e.errno


class Output:
    """What a WORKER wrote: its records [(p, n)] (with the read's start and
    end times if it ran with TIMES), its acknowledgements {p: n} (the
    highest n each partition was acknowledged up to, by fsync), each
    acknowledgement [(time, {p: n})], and its notes (#OPEN, #EOF, #ERR ...)."""

    def __init__(self, path):
        self.records, self.times, self.acked, self.notes = [], [], {}, []
        self.acks = []
        try:
            with open(path) as f:
                text = f.read()
        except FileNotFoundError:
            text = ""
        if not text.endswith("\n"):
            text = text[:text.rfind("\n") + 1]  # a line being written when it was killed
        for line in text.splitlines():
            if line.startswith("#"):
                self.notes.append(line)
                if line.startswith("#ACK "):
                    ack = {}
                    for kv in line.split()[1:-1]:
                        k, v = kv.split("=")
                        ack[int(k[1:])] = int(v)
                        self.acked[int(k[1:])] = max(self.acked.get(int(k[1:]), -1), int(v))
                    self.acks.append((float(line.split()[-1][1:]), ack))
                continue
            fields = line.split()
            self.records.append((int(fields[0][1:]), int(fields[1])))
            if len(fields) == 4:
                self.times.append((float(fields[2]), float(fields[3])))

    def errors(self):
        return [n for n in self.notes if n.startswith("#ERR")]


def held_records(path):
    try:
        with open(path + ".held") as f:
            text = f.read()
    except FileNotFoundError:
        return []
    return [(int(l.split()[0][1:]), int(l.split()[1])) for l in text.split("\n")[:-1]]


def approx_records(paths):
    """Records in the workers' outputs, from their sizes (a progress mark)."""
    total = 0
    for path in paths:
        try:
            total += os.path.getsize(path)
        except FileNotFoundError:
            pass
    return total // RECORD


class ZkProxy:
    """A TCP forwarder between one broker and the private ZooKeeper, so
    that one broker alone can lose ZooKeeper: cut() closes its connections
    and stops listening (connection refused), heal() listens again on the
    same port. Broker() takes it in place of the ZooKeeper (connect())."""

    def __init__(self, zk):
        self.zk = zk
        self.port = free_port()
        self.lock = threading.Lock()
        self.conns = []
        self.listener = None
        self.heal()

    def connect(self, chroot="/topicfs"):
        return "127.0.0.1:%d%s" % (self.port, chroot or "")

    def heal(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(16)
        self.listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def _accept(self, s):
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.zk.port), timeout=5)
                u.settimeout(None)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.conns += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        if self.listener:
            try:
                self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept()
            except OSError:
                pass
            self.listener.close()
            self.listener = None
        with self.lock:
            conns, self.conns = self.conns, []
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()


class GroupClusterTest(ClusterTest):
    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix="topicfs-gtests-")
        self.addCleanup(lambda: shutil.rmtree(self.tmp, ignore_errors=True))

    def spawn(self, argv, **kw):
        """A worker or producer process, killed by pid at the end (before
        the brokers started earlier are stopped: cleanups run in reverse)."""
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, **kw)
        self.addCleanup(self.kill, p)
        return p

    @staticmethod
    def kill(p):
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
        for f in (p.stdout, p.stderr):
            if f:
                f.close()

    def start_brokers(self, partitions=3, extra="", proxies=None, session_ms=SESSION_MS):
        opts = "default.replication.factor=3,partitions=%d" % partitions + extra
        brokers = []
        for i in (1, 2, 3):
            if proxies:
                b = Broker(proxies[i], i, session_ms=session_ms, extra_opts=opts)
                self.addCleanup(b.cleanup)
                brokers.append(b.start())
            else:
                brokers.append(self.broker(i, session_ms=session_ms, extra_opts=opts))
        wait_until(lambda: all(sorted(b.cluster()["brokers"]) == [1, 2, 3] and
                               b.cluster().get("controller", {}).get("id", "-1") != "-1"
                               for b in brokers),
                   timeout=DEADLINE, what="three brokers and a controller on every mount")
        self.by_id = {b.broker_id: b for b in brokers}
        return brokers

    def make_topic(self, brokers, topic, nparts):
        """mkdir at the first mount; waits until every mount shows every
        partition led, with its three replicas in sync."""
        os.mkdir(brokers[0].path(topic))

        def ready():
            for p in range(nparts):
                lines = [part_line(b, topic, p) for b in brokers]
                if not all(lines) or int(lines[0]["leader"]) < 1:
                    return False
                if any(l["leader"] != lines[0]["leader"] or len(l["isr"].split(",")) != 3
                       for l in lines):
                    return False
            return all(os.path.exists(b.path(topic, "p%d" % (nparts - 1))) for b in brokers)
        wait_until(ready, timeout=DEADLINE, interval=0.1,
                   what="%s's %d partitions led and in sync on every mount" % (topic, nparts))

    def make_group(self, brokers, topic, group, at=0):
        """mkdir at brokers[at]; waits until every mount lists it and shows
        the same coordinator. The coordinator's id."""
        os.mkdir(brokers[at].path(topic, ".groups", group))
        wait_until(lambda: all(group in os.listdir(b.path(topic, ".groups")) for b in brokers),
                   timeout=DEADLINE, interval=0.1, what="group %s on every mount" % group)
        return self.wait_coordinator(brokers)

    def wait_coordinator(self, brokers, unlike=()):
        """The coordinator once every mount in brokers shows the same one,
        not -1 and not in unlike."""
        def same():
            ids = [coordinator(b) for b in brokers]
            return ids[0] if (ids[0] is not None and ids[0] > 0 and ids[0] not in unlike and
                              all(i == ids[0] for i in ids)) else None
        return wait_until(same, timeout=DEADLINE, interval=0.1,
                          what="one coordinator (not %s) on mounts %s" %
                          (list(unlike), [b.broker_id for b in brokers]))

    def g(self, b, topic, group, *parts):
        return b.path(topic, ".groups", group, *parts)

    def worker(self, b, topic, group, name, member="follow", every=0, read_size=READ_SMALL,
               gate="-", stall=0, times=False, pause=0.0):
        out = os.path.join(self.tmp, name + ".out")
        p = self.spawn([sys.executable, "-c", WORKER, self.g(b, topic, group, member), out,
                        str(every), str(read_size), gate, os.path.join(self.tmp, "stop"),
                        str(stall), "1" if times else "0", str(pause)])
        p.out = out
        p.broker_id = b.broker_id
        return p

    def produce_files(self, b, topic, per_partition, nparts, start=0):
        """Writes per_partition numbered records to each partition at b with
        `cat FILE >> pP`."""
        for p in range(nparts):
            f = os.path.join(self.tmp, "in%d" % p)
            with open(f, "w") as out:
                out.write(record_lines(p, start, start + per_partition))
            r = harness.sh("cat %s >> %s" % (f, b.path(topic, "p%d" % p)), timeout=300)
            self.assertEqual(r.returncode, 0, "cat >> p%d at broker %d: %s" %
                             (p, b.broker_id, r.stderr))

    def wait_owned_by(self, brokers, topic, group, workers, nparts, what):
        """Every mount's .info shows the partitions owned by exactly these
        workers (broker:pid), balanced."""
        want = {"%d:%d" % (w.broker_id, w.pid) for w in workers}

        def ok():
            for b in brokers:
                o = owners(b, topic, group)
                if set(o.values()) != want:
                    return False
                counts = collections.Counter(o.values())
                if max(counts.values()) - min(counts.values()) > 1:
                    return False
            return True
        try:
            wait_until(ok, timeout=DEADLINE, interval=0.1, what=what)
        except AssertionError:
            for b in brokers:
                print("\nbroker %d .info:\n%s" % (b.broker_id, harness.read(
                    self.g(b, topic, group, ".info"))), file=sys.stderr)
            raise

    def sample(self, what, every=1.0):
        """Prints what() every second until the test ends (TOPICFS_TEST_VERBOSE)."""
        stop = threading.Event()
        began = time.monotonic()

        def run():
            while not stop.wait(every):
                try:
                    print("%6.1fs %s" % (time.monotonic() - began, what()), file=sys.stderr)
                except Exception as e:  # a mount going away while it looks
                    print("%6.1fs %r" % (time.monotonic() - began, e), file=sys.stderr)
        t = threading.Thread(target=run, daemon=True)
        t.start()
        self.addCleanup(lambda: (stop.set(), t.join()))

    def dump(self, brokers):
        for b in brokers:
            try:
                text = b.log_text()
            except OSError:
                text = ""
            print("\n--- broker %d log tail:\n%s" % (b.broker_id, text[-2500:]), file=sys.stderr)


class GroupsAcrossMountsTest(GroupClusterTest):
    def test_group_cursor_info_rmdir_everywhere(self):
        brokers = self.start_brokers(partitions=3)
        m1, m2, m3 = brokers
        self.make_topic(brokers, "orders", 3)
        for p in range(3):
            harness.sh("cat >> %s" % m1.path("orders", "p%d" % p), input=record_lines(p, 0, 10))
        self.make_group(brokers, "orders", "billing")
        for b in brokers:
            self.assertEqual(sorted(os.listdir(self.g(b, "orders", "billing"))),
                             [".info", "p0", "p1", "p2"], "broker %d" % b.broker_id)
            self.assertEqual(os.listdir(b.path("orders", ".groups")), ["billing"])
            self.assertNotIn("__consumer_offsets", os.listdir(b.mnt))
        # A cursor written at one mount reads the same at the others.
        for at, p, spec, want in [(m2, 0, "5", 5), (m3, 1, "latest", 10), (m1, 2, "-3", 7),
                                  (m3, 0, "4", 4)]:
            self.assertEqual(harness.sh("echo %s > %s" % (
                spec, self.g(at, "orders", "billing", "p%d" % p))).returncode, 0, spec)
            for b in brokers:
                wait_until(lambda: read_cursor(b, "orders", "billing", p) == "%d\n" % want,
                           timeout=DEADLINE, interval=0.05,
                           what="p%d cursor %d (written at %d) at broker %d: %r" % (
                               p, want, at.broker_id, b.broker_id,
                               read_cursor(b, "orders", "billing", p)))
        want_info = {"p0": {"committed": "4", "end_offset": "10", "lag": "6", "owner": "-"},
                     "p1": {"committed": "10", "end_offset": "10", "lag": "0", "owner": "-"},
                     "p2": {"committed": "7", "end_offset": "10", "lag": "3", "owner": "-"}}
        for b in brokers:
            wait_until(lambda: group_info(b, "orders", "billing") == want_info, timeout=DEADLINE,
                       interval=0.05, what=".info at broker %d" % b.broker_id)
            wait_until(lambda: [group_lag_metric(b, "orders", "billing", p) for p in range(3)] ==
                       [6, 0, 3], timeout=DEADLINE, interval=0.05,
                       what="topicfs_group_lag at broker %d" % b.broker_id)
        # A bad cursor line is refused at a mount that does not coordinate too.
        for b in brokers:
            r = harness.sh("echo bogus > %s" % self.g(b, "orders", "billing", "p0"))
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("Invalid argument", r.stderr)
        # A member open at m1: rmdir refused at every mount, .info shows it as 1:pid.
        fd = os.open(self.g(m1, "orders", "billing", "drain"), os.O_RDONLY)
        try:
            me = "%d:%d" % (m1.broker_id, os.getpid())
            for b in brokers:
                wait_until(lambda: set(owners(b, "orders", "billing").values()) == {me},
                           timeout=DEADLINE, interval=0.05,
                           what="owner %s at broker %d: %s" % (me, b.broker_id,
                                                              owners(b, "orders", "billing")))
            for b in (m3, m2, m1):
                with self.assertRaises(OSError) as cm:
                    os.rmdir(self.g(b, "orders", "billing"))
                self.assertEqual(cm.exception.errno, errno.EBUSY, "rmdir at %d" % b.broker_id)
        finally:
            os.close(fd)
        for b in brokers:
            wait_until(lambda: set(owners(b, "orders", "billing").values()) == {"-"},
                       timeout=DEADLINE, interval=0.05, what="no owner at %d" % b.broker_id)
        wait_until(lambda: harness.sh("rmdir " + self.g(m3, "orders", "billing")).returncode == 0,
                   timeout=DEADLINE, interval=0.1, what="rmdir at broker 3 after the close")
        for b in brokers:
            wait_until(lambda: os.listdir(b.path("orders", ".groups")) == [], timeout=DEADLINE,
                       interval=0.05, what="the group gone at broker %d" % b.broker_id)
            with self.assertRaises(OSError) as cm:
                os.open(self.g(b, "orders", "billing", "drain"), os.O_RDONLY)
            self.assertEqual(cm.exception.errno, errno.ENOENT)
        # Made again (at another mount): a new group, at the beginning.
        os.mkdir(self.g(m2, "orders", "billing"))
        for b in brokers:
            wait_until(lambda: os.path.exists(self.g(b, "orders", "billing", "p0")) and
                       read_cursor(b, "orders", "billing", 0) == "0\n", timeout=DEADLINE,
                       interval=0.05, what="the new group at broker %d" % b.broker_id)

    def test_three_drain_members_share_the_partitions(self):
        nparts, per = 6, 5000
        brokers = self.start_brokers(partitions=nparts)
        self.make_topic(brokers, "orders", nparts)
        self.produce_files(brokers[0], "orders", per, nparts)
        self.make_group(brokers, "orders", "billing")
        gate = os.path.join(self.tmp, "go")
        workers = [self.worker(b, "orders", "billing", "w%d" % b.broker_id, member="drain",
                               gate=gate) for b in brokers]
        self.wait_owned_by(brokers, "orders", "billing", workers, nparts,
                           "the three drains (one per mount) owning two partitions each")
        open(gate, "w").close()
        for w in workers:
            w.wait(timeout=120)
        outs = [Output(w.out) for w in workers]
        for w, o in zip(workers, outs):
            self.assertEqual((w.returncode, o.errors()), (0, []), "worker at %d" % w.broker_id)
        got = collections.Counter(r for o in outs for r in o.records)
        want = {(p, i) for p in range(nparts) for i in range(per)}
        self.assertEqual(set(got) ^ want, set(), "records missing or unknown")
        self.assertEqual(sorted(r for r, c in got.items() if c > 1)[:20], [],
                         "records delivered twice with nothing failing")
        for o in outs:
            by_p = collections.defaultdict(list)
            for p, i in o.records:
                by_p[p].append(i)
            for p, ns in by_p.items():
                self.assertEqual(ns, sorted(ns), "partition %d out of order" % p)
            self.assertEqual(len(by_p), 2, "each drain had two partitions")
        # Nothing left: a drain at every mount ends at once; lag 0 everywhere.
        for b in brokers:
            self.assertEqual(harness.read(self.g(b, "orders", "billing", "drain")), "")
        for b in brokers:
            wait_until(lambda: all(v["committed"] == str(per) and v["lag"] == "0"
                                   for v in group_info(b, "orders", "billing").values()),
                       timeout=DEADLINE, interval=0.05, what="lag 0 at %d" % b.broker_id)
            wait_until(lambda: all(group_lag_metric(b, "orders", "billing", p) == 0
                                   for p in range(nparts)), timeout=DEADLINE, interval=0.05,
                       what="topicfs_group_lag 0 at %d" % b.broker_id)

    def test_follow_members_keep_up_with_a_steady_producer(self):
        """Records appended one write at a time while follow members on
        every mount read and commit: each reaches a member, once."""
        nparts = 6
        brokers = self.start_brokers(partitions=nparts)
        self.make_topic(brokers, "orders", nparts)
        self.make_group(brokers, "orders", "billing")
        workers = [self.worker(b, "orders", "billing", "w%d" % b.broker_id, every=50)
                   for b in brokers]
        self.wait_owned_by(brokers, "orders", "billing", workers, nparts,
                           "three follow workers owning two partitions each")
        pout = os.path.join(self.tmp, "produced")
        # 300 writes a partition, 1800 in all: about 10 s here when nothing waits.
        producer = self.spawn([sys.executable, "-c", PRODUCER, brokers[0].path("orders"),
                               str(nparts), os.path.join(self.tmp, "stop"), pout, "0.005",
                               "300"])
        try:
            wait_until(lambda: producer.poll() is not None, timeout=120, interval=0.1,
                       what="1800 writes while members read")
        except AssertionError:
            got = {r for w in workers for r in Output(w.out).records}
            print("\n%d records read by the members meanwhile" % len(got), file=sys.stderr)
            self.dump(brokers)
            raise
        self.assertEqual(producer.returncode, 0)
        with open(pout) as f:
            counts = {int(l.split()[0][1:]): int(l.split()[1]) for l in f if l.startswith("p")}
        want = {(p, i) for p in range(nparts) for i in range(counts[p])}
        try:
            wait_until(lambda: {r for w in workers for r in Output(w.out).records} >= want,
                       timeout=DEADLINE, interval=0.2, what="every record at a member")
        except AssertionError:
            got = {r for w in workers for r in Output(w.out).records}
            print("\n%d of %d records read" % (len(got & want), len(want)), file=sys.stderr)
            self.dump(brokers)
            raise
        got = collections.Counter(r for w in workers for r in Output(w.out).records)
        self.assertEqual(sorted(r for r, c in got.items() if c > 1)[:10], [])
        for w in workers:
            self.assertIsNone(w.poll())
            self.assertEqual(Output(w.out).errors(), [])

    def test_bash_while_read_at_every_mount(self):
        """`while read -r l; do ...; done < follow` at each mount: bash reads
        a block and seeks back to the end of the line it used; every line
        reaches one loop once, and the group commits what they consumed."""
        nparts, per = 6, 2000
        brokers = self.start_brokers(partitions=nparts)
        self.make_topic(brokers, "orders", nparts)
        self.make_group(brokers, "orders", "billing")
        loops = []
        for b in brokers:
            out = os.path.join(self.tmp, "bash%d.out" % b.broker_id)
            p = self.spawn(["bash", "-c", 'while read -r l; do echo "$l"; done < %s > %s' % (
                self.g(b, "orders", "billing", "follow"), out)])
            p.out, p.broker_id = out, b.broker_id
            loops.append(p)
        self.wait_owned_by(brokers, "orders", "billing", loops, nparts,
                           "three bash loops owning two partitions each")
        self.produce_files(brokers[0], "orders", per, nparts)
        want = {(p, i) for p in range(nparts) for i in range(per)}
        wait_until(lambda: {r for x in loops for r in Output(x.out).records} >= want,
                   timeout=DEADLINE, interval=0.2, what="every line at a bash loop")
        got = collections.Counter(r for x in loops for r in Output(x.out).records)
        self.assertEqual(sorted(r for r, c in got.items() if c > 1)[:10], [])
        self.assertEqual(set(got), want)
        for x in loops:
            self.assertIsNone(x.poll(), "bash loop at %d ended" % x.broker_id)
        for b in brokers:
            wait_until(lambda: all(read_cursor(b, "orders", "billing", p) == "%d\n" % per
                                   for p in range(nparts)), timeout=DEADLINE, interval=0.1,
                       what="every cursor at %d at the end" % b.broker_id)


class WorkerKilledTest(GroupClusterTest):
    def test_killed_follow_worker_records_go_to_other_mounts(self):
        nparts, per = 6, 5000
        brokers = self.start_brokers(partitions=nparts)
        self.make_topic(brokers, "orders", nparts)
        self.make_group(brokers, "orders", "work")
        # The worker at broker 2 stalls with a block it never acknowledges.
        workers = [self.worker(b, "orders", "work", "w%d" % b.broker_id, every=200, times=True,
                               stall=1000 if b.broker_id == 2 else 0) for b in brokers]
        victim = workers[1]
        self.wait_owned_by(brokers, "orders", "work", workers, nparts,
                           "three follow workers owning two partitions each")
        mine = sorted(int(k[1:]) for k, v in owners(brokers[0], "orders", "work").items()
                      if v == "2:%d" % victim.pid)
        self.produce_files(brokers[0], "orders", per, nparts)
        wait_until(lambda: held_records(victim.out), timeout=DEADLINE, interval=0.05,
                   what="the worker at broker 2 to stall")
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        killed = time.monotonic()
        want = {(p, i) for p in range(nparts) for i in range(per)}

        def covered():
            return {r for w in workers for r in Output(w.out).records} >= want
        wait_until(covered, timeout=120, interval=0.5, what="the others to cover every record")
        outs = {w.broker_id: Output(w.out) for w in workers}
        held = held_records(victim.out)
        self.assertTrue(held)
        others = [outs[1], outs[3]]
        other_records = {r for o in others for r in o.records}
        self.assertEqual(sorted(set(held) - other_records)[:10], [],
                         "records the killed worker held, never processed elsewhere")
        firsts = [t1 for o in others for (p, _), (_, t1) in zip(o.records, o.times) if p in mine]
        print("\nkill of a member to its partitions read at another mount: %.2fs" %
              ((min(firsts) if firsts else float("nan")) - killed), file=sys.stderr)
        # The others start each of its partitions at or after its last fsync.
        acked = outs[2].acked
        for p in mine:
            theirs = [i for o in others for q, i in o.records if q == p]
            self.assertTrue(theirs, "partition %d never read after the kill" % p)
            self.assertGreater(min(theirs), acked.get(p, -1),
                               "p%d restarted at or before what the killed worker acknowledged"
                               % p)
        # Duplicates: only the killed worker's partitions, after its acknowledgements.
        got = collections.Counter(r for o in outs.values() for r in o.records)
        dups = sorted(r for r, c in got.items() if c > 1)
        self.assertEqual([r for r in dups if r[0] not in mine or r[1] <= acked.get(r[0], -1)], [],
                         "duplicates outside the killed worker's unacknowledged records")
        for w in (workers[0], workers[2]):
            self.assertIsNone(w.poll(), "worker at %d ended: %s" %
                              (w.broker_id, Output(w.out).notes[-3:]))
        for b in brokers[0], brokers[2]:
            o = set(owners(b, "orders", "work").values())
            self.assertNotIn("2:%d" % victim.pid, o)
        for b in brokers:
            wait_until(lambda: all(v["lag"] == "0" for v in
                                   group_info(b, "orders", "work").values()),
                       timeout=DEADLINE, interval=0.1, what="lag 0 at %d" % b.broker_id)


class BigDrainTest(GroupClusterTest):
    def test_300000_records_one_worker_and_one_broker_killed(self):
        nparts = 6
        per = BIG_RECORDS // nparts
        brokers = self.start_brokers(partitions=nparts)
        self.make_topic(brokers, "big", nparts)
        coord = self.make_group(brokers, "big", "work")
        producer_mount = brokers[0]
        workers = [self.worker(b, "big", "work", "w%d" % b.broker_id, member="drain",
                               every=1000, pause=BIG_PAUSE) for b in brokers]
        outs = lambda: [w.out for w in workers]  # noqa: E731
        half = per // 2
        started = time.monotonic()
        marks = []

        def mark(what):
            marks.append("%s %.1fs (%d processed)" % (what, time.monotonic() - started,
                                                      approx_records(outs())))
        if VERBOSE:
            self.sample(lambda: "%d processed; .info at 1: %s" % (
                approx_records(outs()), " ".join(
                    "%s:%s/%s" % (k, v["committed"], v["owner"])
                    for k, v in sorted(group_info(producer_mount, "big", "work").items()))))
        # Half of the records first, with `cat FILE >> pP` at broker 1.
        self.produce_files(producer_mount, "big", half, nparts)
        mark("first half produced")
        wait_until(lambda: approx_records(outs()) >= BIG_RECORDS // 5, timeout=300,
                   interval=0.1, what="a fifth of the records processed")
        # The worker at broker 2 killed, then started again (as a supervisor would).
        w2 = workers[1]
        w2.send_signal(signal.SIGKILL)
        w2.wait()
        mark("worker at broker 2 killed")
        workers.append(self.worker(brokers[1], "big", "work", "w2b", member="drain",
                                   every=1000, pause=BIG_PAUSE))
        wait_until(lambda: approx_records(outs()) >= BIG_RECORDS * 2 // 5, timeout=300,
                   interval=0.1, what="two fifths of the records processed")
        # One broker killed, neither the producers' mount nor the coordinator,
        # while the group has the second half still to do.
        coord = self.wait_coordinator(brokers)
        victim = next(b for b in (brokers[2], brokers[1]) if b.broker_id != coord)
        victim.kill9()
        mark("broker %d killed" % victim.broker_id)
        live = [b for b in brokers if b is not victim]
        # Its members leave the group (within its session timeout).
        for b in live:
            wait_until(lambda: not any(v.startswith("%d:" % victim.broker_id)
                                       for v in owners(b, "big", "work").values()),
                       timeout=DEADLINE, interval=0.1, what="broker %d's members gone at %d"
                       % (victim.broker_id, b.broker_id))
        mark("its members gone from .info")
        self.produce_files(producer_mount, "big", per - half, nparts, start=half)
        mark("second half produced")
        self.wait_coordinator(live)

        def caught_up():
            info = group_info(live[0], "big", "work")
            return all(int(v["committed"]) == per for v in info.values())
        try:
            wait_until(caught_up, timeout=300, interval=0.5, what="every partition committed")
        except AssertionError:
            print(harness.read(self.g(live[0], "big", "work", ".info")), file=sys.stderr)
            for w in workers:
                print(w.broker_id, Output(w.out).notes[-5:], file=sys.stderr)
            self.dump(brokers)
            raise
        mark("all committed")
        open(os.path.join(self.tmp, "stop"), "w").close()
        parsed = [Output(w.out) for w in workers]
        got = collections.Counter(r for o in parsed for r in o.records)
        missing = [(p, i) for p in range(nparts) for i in range(per) if (p, i) not in got]
        self.assertEqual(missing[:20], [], "%d records never processed" % len(missing))
        self.assertEqual(len(got), nparts * per, "records that were never produced")
        # Committed offsets: at least what any worker acknowledged (fsync),
        # and the end, at every live mount.
        acked = {}
        for o in parsed:
            for p, n in o.acked.items():
                acked[p] = max(acked.get(p, -1), n)
        for b in live:
            for p in range(nparts):
                committed = int(read_cursor(b, "big", "work", p))
                self.assertGreaterEqual(committed, acked.get(p, -1) + 1)
                self.assertEqual(committed, per, "p%d at broker %d" % (p, b.broker_id))
        for w in workers:
            if w.broker_id != victim.broker_id and w is not w2:
                wait_until(lambda: w.poll() is not None, timeout=DEADLINE,
                           what="worker at %d to stop" % w.broker_id)
                self.assertEqual(w.returncode, 0, Output(w.out).notes[-5:])
        print("\n%d records, 3 workers, one killed, one on the broker killed: %s; %d processed "
              "twice or more" % (nparts * per, ", ".join(marks),
                                 sum(1 for c in got.values() if c > 1)), file=sys.stderr)


class RacerValues:
    """`v in` the values the racers tried, as their logs say now."""

    def __init__(self, tried):
        self.tried = tried

    def __contains__(self, v):
        return v in self.tried()


class CoordinatorKillTest(GroupClusterTest):
    def test_coordinator_kill_loop_loses_no_commit(self):
        nparts, per, racing_max = 3, 1000, 30000
        brokers = self.start_brokers(partitions=nparts,
                                     extra=",offsets.topic.replication.factor=3,"
                                     "auto.leader.rebalance.enable=false")
        self.make_topic(brokers, "orders", nparts)
        self.produce_files(brokers[0], "orders", per, nparts)
        # p2's cursor is written all the time, through the kills: room for it.
        r = harness.sh("cat >> %s" % brokers[0].path("orders", "p2"),
                       input=record_lines(2, per, racing_max))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.make_group(brokers, "orders", "g")
        self.make_group(brokers, "orders", "d")
        ends = [per, per, racing_max]
        last_ok = {}  # p: the last cursor value whose write returned success
        written = collections.defaultdict(set)  # p: every value written (applied or not)
        written[2] = RacerValues(lambda: racing()[0])
        refused = []
        racers = []  # (process, its log)
        d_acked = [0] * nparts  # group d: offsets a drain's fsync acknowledged
        d_got = collections.defaultdict(set)
        value = 0
        stalls = []

        def racing():
            """What the racers wrote to p2: (values tried, acknowledged, failed)."""
            tried, ok, failed = set(), [], []
            for _, log in racers:
                try:
                    with open(log) as f:
                        text = f.read()
                except FileNotFoundError:  # not started yet
                    continue
                for line in text[:text.rfind("\n") + 1].splitlines():
                    word, v = line.split()[:2]
                    {"try": tried.add, "ok": ok.append, "err": failed.append}[word](int(v))
            return tried, ok, failed

        def stop_racer():
            p, log = racers[-1]
            open(log + ".stop", "w").close()
            p.wait(timeout=DEADLINE)

        for k in range(COORDINATOR_KILLS):
            coord = self.wait_coordinator(brokers)
            self.wait_offsets_in_sync(brokers)
            others = [b for b in brokers if b.broker_id != coord]
            # Cursor writes at the mounts that do not coordinate: p2's all
            # the time by a racer process (through the kill), p0's and p1's
            # before it.
            log = os.path.join(self.tmp, "racer%d" % k)
            start = max(racing()[0] | {per})
            racers.append((self.spawn([sys.executable, "-c", RACER,
                                       self.g(others[1], "orders", "g", "p2"), str(start),
                                       str(racing_max), log + ".stop", log]), log))
            for p in range(nparts - 1):
                value += 7
                at = others[p % 2]
                written[p].add(value)
                err = write_cursor(at, "orders", "g", p, value)
                if err is None:
                    last_ok[p] = value
                else:
                    refused.append((k, p, value, err))
            # New records, then a drain of group d to the end and its fsync.
            for p in range(nparts):
                r = harness.sh("cat >> %s" % others[0].path("orders", "p%d" % p),
                               input=record_lines(p, ends[p], ends[p] + 10))
                self.assertEqual(r.returncode, 0, "append to p%d at broker %d: %s" % (
                    p, others[0].broker_id, r.stderr))
                ends[p] += 10
            self.drain_and_ack(others[1], d_acked, d_got)
            if VERBOSE and d_acked != ends:
                print("kill %d: the drain at %d ended at %s of %s" % (
                    k, others[1].broker_id, d_acked, ends), file=sys.stderr)
            victim = self.by_id[coord]
            before = len(racing()[1])
            wait_until(lambda: len(racing()[1]) > before + 3, timeout=DEADLINE, interval=0.01,
                       what="racing cursor writes before kill %d" % k)
            victim.proc.send_signal(signal.SIGKILL)
            victim.proc.wait()
            killed = time.monotonic()
            victim.kill9()  # unmounts
            new = self.wait_coordinator(others, unlike=(coord,))
            stalls.append(time.monotonic() - killed)
            before = len(racing()[1])
            wait_until(lambda: len(racing()[1]) > before, timeout=DEADLINE, interval=0.01,
                       what="a racing cursor write after kill %d" % k)
            last_ok[2] = max(racing()[1])
            for b in others:
                self.check_commits(b, last_ok, written, "after kill %d (coordinator %d -> %d)"
                                   % (k, coord, new))
            stop_racer()
            checked = time.monotonic()
            wait_until(lambda: all(coord not in b.cluster()["brokers"] for b in others),
                       timeout=DEADLINE, interval=0.1,
                       what="broker %d's registration gone" % coord)
            victim.start()
            wait_until(lambda: all(sorted(b.cluster()["brokers"]) == [1, 2, 3] for b in brokers),
                       timeout=DEADLINE, interval=0.1, what="broker %d back" % coord)
            if VERBOSE:
                print("kill %d: coordinator %d -> %d in %.2fs; commits checked after %.2fs, "
                      "broker back after %.2fs more" % (
                          k, coord, new, stalls[-1], checked - killed,
                          time.monotonic() - checked), file=sys.stderr)
        self.wait_coordinator(brokers)
        tried, ok, failed = racing()
        last_ok[2] = max(ok)
        for b in brokers:
            self.check_commits(b, last_ok, written, "after the loop")
            for p in range(nparts):
                wait_until(lambda: int(read_cursor(b, "orders", "d", p)) >= d_acked[p],
                           timeout=DEADLINE, interval=0.1,
                           what="group d's p%d cursor >= %d at %d: %r" % (
                               p, d_acked[p], b.broker_id, read_cursor(b, "orders", "d", p)))
        # Group d: the last drains get nothing acknowledged; nothing skipped.
        def all_drained():
            self.drain_and_ack(brokers[0], d_acked, d_got)
            return all(d_got[p] >= set(range(ends[p])) for p in range(nparts))
        try:
            wait_until(all_drained, timeout=DEADLINE, interval=0.2, what="group d drained")
        except AssertionError:
            self.fail("group d skipped records: %s" % [
                (p, sorted(set(range(ends[p])) - d_got[p])[:10]) for p in range(nparts)])
        stalls.sort()
        print("\n%d coordinator kills: new coordinator after median %.2fs, max %.2fs; "
              "%d cursor writes refused %s; racing writes: %d acknowledged, %d failed" %
              (len(stalls), stalls[len(stalls) // 2], stalls[-1], len(refused), refused[:5],
               len(ok), len(failed)), file=sys.stderr)

    def test_members_go_on_when_the_coordinator_dies(self):
        """Follow workers on every mount while a producer writes; the
        coordinator's broker is killed (its own worker goes with it): the
        workers at the other mounts go on without an error, every record
        is processed, and none is delivered again after a worker's fsync
        acknowledged it."""
        nparts = 6
        brokers = self.start_brokers(partitions=nparts)
        self.make_topic(brokers, "orders", nparts)
        coord = self.make_group(brokers, "orders", "work")
        workers = {b.broker_id: self.worker(b, "orders", "work", "w%d" % b.broker_id, every=100,
                                            times=True, pause=0.01) for b in brokers}
        self.wait_owned_by(brokers, "orders", "work", list(workers.values()), nparts,
                           "three follow workers")
        others = [b for b in brokers if b.broker_id != coord]
        survivors = [workers[b.broker_id] for b in others]
        pout = os.path.join(self.tmp, "produced")
        producer = self.spawn([sys.executable, "-c", PRODUCER, others[0].path("orders"),
                               str(nparts), os.path.join(self.tmp, "stop"), pout, "0.005"])
        wait_until(lambda: all(len(Output(w.out).acked) > 0 for w in survivors),
                   timeout=DEADLINE, interval=0.1, what="both surviving workers acknowledging")
        victim = self.by_id[coord]
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait()
        killed = time.monotonic()
        victim.kill9()
        new = self.wait_coordinator(others, unlike=(coord,))
        marks = [len(Output(w.out).records) for w in survivors]
        wait_until(lambda: all(len(Output(w.out).records) > m + 100
                               for w, m in zip(survivors, marks)),
                   timeout=DEADLINE, interval=0.1, what="the workers at %s reading on" %
                   [b.broker_id for b in others])
        open(os.path.join(self.tmp, "stop"), "w").close()
        self.assertEqual(producer.wait(timeout=DEADLINE), 0)
        with open(pout) as f:
            counts = {int(l.split()[0][1:]): int(l.split()[1]) for l in f if l.startswith("p")}
        want = {(p, i) for p in range(nparts) for i in range(counts[p])}
        wait_until(lambda: {r for w in workers.values() for r in Output(w.out).records} >= want,
                   timeout=DEADLINE, interval=0.5, what="every record processed")
        outs = {i: Output(w.out) for i, w in workers.items()}
        for w in survivors:
            self.assertIsNone(w.poll())
            self.assertEqual(outs[w.broker_id].errors(), [], "worker at %d" % w.broker_id)
        # Nothing a worker's fsync acknowledged is delivered again after it.
        again = []
        for i, o in outs.items():
            for t_ack, ack in o.acks:
                for j, other in outs.items():
                    again += [(i, t_ack, j, p, n) for (p, n), (t0, _) in
                              zip(other.records, other.times)
                              if t0 > t_ack and n <= ack.get(p, -1)]
        self.assertEqual(again[:5], [], "(acknowledged at, time, delivered at, p, n)")
        print("\ncoordinator %d killed: coordinator %d; %d records, %d processed twice" % (
            coord, new, len(want), sum(1 for c in collections.Counter(
                r for o in outs.values() for r in o.records).values() if c > 1)),
            file=sys.stderr)

    def wait_offsets_in_sync(self, brokers):
        """__consumer_offsets p0 with its three replicas in sync (if .cluster
        shows it), so that killing its leader leaves an in-sync replica."""
        def ok():
            lines = [part_line(b, "__consumer_offsets", 0) for b in brokers]
            if not all(lines):
                return not any(lines)
            return all(len(l["isr"].split(",")) == 3 and int(l["leader"]) > 0 for l in lines)
        wait_until(ok, timeout=DEADLINE, interval=0.1, what="__consumer_offsets p0 in sync")

    def check_commits(self, b, last_ok, written, when):
        for p, v in last_ok.items():
            first = []

            def ok():
                try:
                    got = int(read_cursor(b, "orders", "g", p))
                except (OSError, ValueError) as e:
                    first.append(repr(e))
                    return False
                first.append(got)
                return got >= v and got in written[p]
            began = time.monotonic()
            try:
                wait_until(ok, timeout=DEADLINE, interval=0.1, what="")
            except AssertionError:
                self.fail("%s: broker %d reads cursor p%d as %r, last acknowledged write %d"
                          % (when, b.broker_id, p, read_cursor(b, "orders", "g", p), v))
            if VERBOSE and len(first) > 1:
                print("%s: broker %d read p%d as %s before %d (%.2fs)" % (
                    when, b.broker_id, p, first[:-1][:3], v, time.monotonic() - began),
                    file=sys.stderr)

    def drain_and_ack(self, b, d_acked, d_got):
        """A drain of group d at b, read to the end, then fsync: what it
        read is then acknowledged (d_acked[p]: the offset after the last
        record of p any drain acknowledged). No record it gets may be one a
        drain acknowledged before. (It may end before the last records
        written at another mount: b's high watermark may lag behind.)"""
        fd = os.open(self.g(b, "orders", "d", "drain"), os.O_RDONLY)
        data = b""
        try:
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                data += chunk
            os.fsync(fd)
            acked = True
        except OSError:
            acked = False
        finally:
            os.close(fd)
        last = {}
        for line in data.decode().splitlines():
            p, i = int(line.split()[0][1:]), int(line.split()[1])
            self.assertGreaterEqual(i, d_acked[p], "group d got p%d %d again, after a drain "
                                    "acknowledged it" % (p, i))
            d_got[p].add(i)
            last[p] = max(last.get(p, -1), i)
        if acked:
            for p, i in last.items():
                d_acked[p] = max(d_acked[p], i + 1)


class ZooKeeperLostTest(GroupClusterTest):
    def test_broker_that_lost_zookeeper_gives_its_members_eio(self):
        nparts = 6
        proxies = {i: ZkProxy(self.zk) for i in (1, 2, 3)}
        self.addCleanup(lambda: [p.cut() for p in proxies.values()])  # after the brokers
        brokers = self.start_brokers(partitions=nparts, proxies=proxies)
        self.make_topic(brokers, "orders", nparts)
        coord = self.make_group(brokers, "orders", "work")
        controller = int(brokers[0].cluster()["controller"]["id"])
        lost = next((b for b in reversed(brokers) if b.broker_id not in (coord, controller)),
                    None) or next(b for b in reversed(brokers) if b.broker_id != coord)
        rest = [b for b in brokers if b is not lost]
        workers = {b.broker_id: self.worker(b, "orders", "work", "w%d" % b.broker_id, every=100,
                                            times=True) for b in brokers}
        self.wait_owned_by(brokers, "orders", "work", list(workers.values()), nparts,
                           "three follow workers")
        theirs = sorted(int(k[1:]) for k, v in owners(rest[0], "orders", "work").items()
                        if v.startswith("%d:" % lost.broker_id))
        pout = os.path.join(self.tmp, "produced")
        producer = self.spawn([sys.executable, "-c", PRODUCER, rest[0].path("orders"),
                               str(nparts), os.path.join(self.tmp, "stop"), pout, "0.02"])
        w = workers[lost.broker_id]
        try:
            wait_until(lambda: len(Output(w.out).records) > 50, timeout=DEADLINE, interval=0.1,
                       what="the worker at the broker to be cut off reading")
        except AssertionError:
            print("\nproducer: %s; .info at %d:\n%s" % (
                producer.poll(), rest[0].broker_id,
                harness.read(self.g(rest[0], "orders", "work", ".info"))), file=sys.stderr)
            for i, x in workers.items():
                o = Output(x.out)
                print("worker at %d: %s, %d records, notes %s" % (
                    i, x.poll(), len(o.records), o.notes[-4:]), file=sys.stderr)
            self.dump(brokers)
            raise
        proxies[lost.broker_id].cut()
        cut = time.monotonic()
        wait_until(lambda: w.poll() is not None, timeout=DEADLINE + SESSION_MS / 1000,
                   interval=0.1, what="the member at broker %d to fail" % lost.broker_id)
        failed = time.monotonic()
        o = Output(w.out)
        self.assertEqual(o.errors(), ["#ERR read %d" % errno.EIO])
        after_cut = [t0 for t0, _ in o.times if t0 > cut]
        self.assertTrue(after_cut, "no record read after ZooKeeper was cut off")
        # Its partitions go to the others, which read on.
        for b in rest:
            wait_until(lambda: not any(v.startswith("%d:" % lost.broker_id)
                                       for v in owners(b, "orders", "work").values()),
                       timeout=DEADLINE, interval=0.1, what="broker %d's member gone from .info"
                       " at %d" % (lost.broker_id, b.broker_id))
        marks = [len(Output(workers[b.broker_id].out).records) for b in rest]
        wait_until(lambda: [len(Output(workers[b.broker_id].out).records) for b in rest] != marks,
                   timeout=DEADLINE, interval=0.1, what="the others reading on")
        open(os.path.join(self.tmp, "stop"), "w").close()
        self.assertEqual(producer.wait(timeout=DEADLINE), 0)
        with open(pout) as f:
            counts = {int(l.split()[0][1:]): int(l.split()[1]) for l in f if l.startswith("p")}
        want = {(p, i) for p in range(nparts) for i in range(counts[p])}
        wait_until(lambda: {r for x in workers.values() for r in Output(x.out).records} >= want,
                   timeout=DEADLINE, interval=0.5, what="every record processed")
        # Never two members at once: for each of its partitions, every read
        # of the cut-off member began before any other member's read of it
        # returned.
        outs = {i: Output(x.out) for i, x in workers.items()}
        for p in theirs:
            mine_starts = [t0 for (q, _), (t0, _) in zip(outs[lost.broker_id].records,
                                                          outs[lost.broker_id].times) if q == p]
            other_ends = [t1 for i in outs if i != lost.broker_id
                          for (q, _), (_, t1) in zip(outs[i].records, outs[i].times) if q == p]
            self.assertTrue(other_ends, "p%d never read by another member" % p)
            self.assertLess(max(mine_starts), min(other_ends),
                            "p%d read at broker %d after another member had it" %
                            (p, lost.broker_id))
        moved = [t1 for i in outs if i != lost.broker_id
                 for (q, _), (_, t1) in zip(outs[i].records, outs[i].times) if q in theirs]
        last = max(t1 for _, t1 in outs[lost.broker_id].times)
        print("\nZooKeeper cut off broker %d: its member's last record %.2fs after the cut, "
              "its read failed %.2fs after (session %d ms); its partitions read elsewhere "
              "%.2fs after the cut" % (lost.broker_id, last - cut, failed - cut, SESSION_MS,
                                       (min(moved) if moved else float("nan")) - cut),
              file=sys.stderr)
        # Back in touch: the broker registers again and serves the group.
        proxies[lost.broker_id].heal()
        wait_until(lambda: sorted(lost.cluster()["brokers"]) == [1, 2, 3] and
                   all(sorted(b.cluster()["brokers"]) == [1, 2, 3] for b in rest),
                   timeout=DEADLINE, interval=0.2, what="broker %d registered again" %
                   lost.broker_id)
        self.assertEqual(harness.sh("echo latest > " + self.g(lost, "orders", "work", "p0"))
                         .returncode, 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
