"""zkharness.py - a private ZooKeeper and topicfs brokers for the cluster tests.

ZooKeeper runs from Debian's zookeeperd: `zkServer.sh start-foreground CFG`
with a generated zoo.cfg (a free loopback port, its own dataDir, the admin
server off, the `ruok` and `srvr` four-letter words on). zkServer.sh execs
java, so the child's pid is the server's: stop() sends SIGTERM to that pid,
then SIGKILL if it has not exited within its deadline. stop() keeps the
dataDir, so start() again is a ZooKeeper that comes back with its data (the
"ZooKeeper down" cases); run_unseen() runs it on its data dir at another
port until its clients' sessions expired there; cleanup() stops it and
removes everything.

get(), children() and tree() read the ZooKeeper's znodes (tests/cluster/
zkcat, built with the tests), so a test sees what the brokers wrote there.

Broker is a tests/fs/harness.py Mount with the cluster options (zk=,
broker=, listen= and the ZooKeeper timeouts); Broker.refused() runs a daemon
that must refuse to start and returns its exit status and stderr.

Every ZooKeeper and Mount registers itself, so even a test that fails or
raises leaves no process and no mount behind (the Mounts first: a daemon
whose ZooKeeper is gone could wait on it).
"""
import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fs"))
import harness  # noqa: E402
from harness import Mount, is_mounted, wait_until  # noqa: E402,F401

ZK_SERVER = os.environ.get("ZK_SERVER", "/usr/share/zookeeper/bin/zkServer.sh")
ZKCAT = os.environ.get("ZKCAT") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "tests", "cluster", "zkcat")

_live_zk = []


def free_port():
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def four_letter(port, word, timeout=1.0):
    """ZooKeeper's answer to a four-letter word, or None if it does not answer."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(word.encode())
            out = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    return out.decode(errors="replace")
                out += chunk
    except OSError:
        return None


class ZooKeeper:
    TICK_MS = 250  # session timeouts from 2 ticks (500 ms) up

    def __init__(self, base=None):
        if not os.path.exists(ZK_SERVER):
            raise AssertionError("%s is missing: install zookeeperd (scripts/install-deps.sh)"
                                 % ZK_SERVER)
        self.base = base or tempfile.mkdtemp(prefix="topicfs-zk-")
        self.data = os.path.join(self.base, "zkdata")
        self.cfg = os.path.join(self.base, "zoo.cfg")
        self.port = free_port()
        self.proc = None
        self.log = None
        os.makedirs(self.data, exist_ok=True)
        self._write_cfg()

    def _write_cfg(self):
        with open(self.cfg, "w") as f:
            f.write("tickTime=%d\n" % self.TICK_MS)
            f.write("dataDir=%s\n" % self.data)
            f.write("clientPort=%d\nclientPortAddress=127.0.0.1\n" % self.port)
            f.write("admin.enableServer=false\n")
            f.write("4lw.commands.whitelist=ruok,srvr\n")
            f.write("minSessionTimeout=%d\nmaxSessionTimeout=60000\n" % (2 * self.TICK_MS))
            f.write("maxClientCnxns=0\n")

    def run_unseen(self, until, timeout=60.0, what="condition"):
        """Runs this ZooKeeper (stopped) on its data dir at another port, out
        of its clients' reach, until until() holds (it may call get(),
        children() and tree(), which ask the server there), then stops it:
        its clients' sessions expire while ZooKeeper is "down" for them."""
        saved = self.port, self.cfg
        self.port, self.cfg = free_port(), os.path.join(self.base, "zoo-unseen.cfg")
        try:
            self._write_cfg()
            self.start()
            wait_until(until, timeout=timeout, interval=0.2, what=what)
        finally:
            self.stop()
            self.port, self.cfg = saved

    def connect(self, chroot="/topicfs"):
        """The zk= option: host:port and the chroot."""
        return "127.0.0.1:%d%s" % (self.port, chroot or "")

    def start(self, timeout=60.0):
        env = dict(os.environ, JMXDISABLE="true",
                   SERVER_JVMFLAGS="-Dzookeeper.log.dir=%s -Xmx128m -XX:+UseSerialGC "
                                   "-XX:TieredStopAtLevel=1" % self.base)
        self.log = open(os.path.join(self.base, "zookeeper.log"), "ab")
        self.proc = subprocess.Popen([ZK_SERVER, "start-foreground", self.cfg], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        if self not in _live_zk:
            _live_zk.append(self)
        wait_until(lambda: self.proc.poll() is not None or four_letter(self.port, "ruok") == "imok",
                   timeout=timeout, interval=0.05, what="ZooKeeper on port %d" % self.port)
        if self.proc.poll() is not None:
            raise AssertionError("ZooKeeper exited with %d: %s" % (self.proc.returncode,
                                                                   self.log_text()))
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        try:
            with open(os.path.join(self.base, "zookeeper.log"), "rb") as f:
                return f.read().decode(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self, timeout=10.0):
        """SIGTERM by pid, SIGKILL past the deadline. The data stays."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log:
            self.log.close()
            self.log = None

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.stop()

    def restart(self):
        self.stop()
        return self.start()

    def _zkcat(self, cmd, path):
        p = subprocess.run([ZKCAT, "127.0.0.1:%d" % self.port, cmd, path], capture_output=True,
                           text=True, timeout=60)
        if p.returncode != 0 and p.stdout.strip() == "ENOENT":
            return None
        if p.returncode != 0:
            raise AssertionError("zkcat %s %s: %s%s" % (cmd, path, p.stdout, p.stderr))
        return p.stdout

    def get(self, path):
        """A znode's data (absolute path, chroot included), or None if it is not there."""
        out = self._zkcat("get", path)
        return None if out is None else out[:-1]

    def children(self, path):
        """A znode's children, sorted, or None if it is not there."""
        out = self._zkcat("ls", path)
        return None if out is None else out.split()

    def tree(self, path):
        """{path: data} of the znode and every one under it ({} if it is not there)."""
        out = self._zkcat("tree", path)
        return dict((line.split(" ", 1) + [""])[:2] for line in (out or "").splitlines())

    def cleanup(self):
        self.stop()
        if self in _live_zk:
            _live_zk.remove(self)
        shutil.rmtree(self.base, ignore_errors=True)


@atexit.register
def _cleanup_all():
    # Mounts first (harness registered its own atexit earlier: it runs after this one).
    harness._cleanup_all()
    for z in list(_live_zk):
        try:
            z.kill9()
        except Exception:
            pass


class Broker(Mount):
    """A topicfs broker: a Mount with zk=, broker=, listen= and short timeouts."""

    def __init__(self, zk, broker_id, session_ms=4000, connection_ms=10000, chroot="/topicfs",
                 extra_opts=None, base=None, data=None, listen=None):
        self.zk = zk
        self.broker_id = broker_id
        self.listen = listen or "127.0.0.1:%d" % free_port()
        self.session_ms = session_ms
        opts = ["zk=" + zk.connect(chroot), "broker=%d" % broker_id, "listen=" + self.listen,
                "zookeeper.session.timeout.ms=%d" % session_ms,
                "zookeeper.connection.timeout.ms=%d" % connection_ms]
        if extra_opts:
            opts.append(extra_opts)
        super().__init__(base=base or tempfile.mkdtemp(prefix="topicfs-broker%d-" % broker_id),
                         opts=",".join(opts), data=data)

    def refused(self, timeout=60.0):
        """Runs a daemon that must not start: (exit status, stderr text)."""
        return run_refused([harness.TOPICFS, self.data, self.mnt, "-f", "-o", self.opts],
                           self.mnt, timeout)

    def cluster(self):
        """.cluster as {"cluster": {..}, "brokers": {id: {..}}, "controller": {..}, ...}."""
        return parse_cluster(harness.read(self.path(".cluster")))


def run_refused(args, mnt, timeout=60.0):
    """Runs a topicfs that must refuse to start: (exit status, stderr text).
    Fails the test if it mounted mnt or did not exit in time; either way
    the daemon is killed by pid and mnt unmounted."""
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        subprocess.run(["fusermount3", "-u", "-z", mnt], capture_output=True)
        raise AssertionError("topicfs did not exit within %.0fs" % timeout)
    if is_mounted(mnt):
        subprocess.run(["fusermount3", "-u", "-z", mnt], capture_output=True)
        raise AssertionError("a refused topicfs mounted " + mnt)
    return p.returncode, err.decode(errors="replace")


def parse_cluster(text):
    out = {"brokers": {}, "partitions": [], "lines": text.splitlines()}
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        kv = dict(x.split("=", 1) for x in fields[1:])
        if fields[0] == "broker":
            out["brokers"][int(kv["id"])] = kv
        elif fields[0] == "partition":
            out["partitions"].append(kv)
        else:
            out[fields[0]] = kv
    return out


# ---- what the cluster tests read from mounts and data dirs ----

def part_line(b, topic, p=0):
    """The partition's line of .cluster at broker b, as a dict (None if missing)."""
    for line in b.cluster()["partitions"]:
        if line["topic"] == topic and int(line["partition"]) == p:
            return line
    return None


def isr(b, topic, p=0):
    line = part_line(b, topic, p)
    return sorted(int(x) for x in line["isr"].split(",") if x) if line else []


def ids(line, key):
    """A broker-list field of a .cluster line (replicas, isr) as ints."""
    return [int(x) for x in line[key].split(",") if x] if line else []


def holds(cond, seconds, what):
    """Asserts that cond() stays true for `seconds`, looking every 0.2 s: a
    check that something does not happen can only look for a while (on a
    loaded machine it looks less often; it never fails falsely)."""
    deadline = time.monotonic() + seconds
    while True:
        if not cond():
            raise AssertionError("no longer true: %s" % what)
        if time.monotonic() >= deadline:
            return
        time.sleep(0.2)


def append(b, topic, text, p=0):
    with open(b.path(topic, "p%d" % p), "a") as f:
        f.write(text)


def segments(b, topic, p=0):
    """{file name: bytes} of the partition's segment .log files in b's data dir."""
    d = os.path.join(b.data, "topics", topic, str(p))
    out = {}
    for name in sorted(os.listdir(d)):
        if name.endswith(".log"):
            with open(os.path.join(d, name), "rb") as f:
                out[name] = f.read()
    return out


def listing(b):
    """The topics b's mount shows."""
    return sorted(n for n in os.listdir(b.mnt) if not n.startswith("."))


class ClusterTest(unittest.TestCase):
    """Each test gets its own ZooKeeper (self.zk), stopped at the end."""

    def setUp(self):
        self.zk = ZooKeeper()
        self.addCleanup(self.zk.cleanup)
        self.zk.start()

    def broker(self, broker_id, start=True, **kw):
        b = Broker(self.zk, broker_id, **kw)
        self.addCleanup(b.cleanup)
        return b.start() if start else b
