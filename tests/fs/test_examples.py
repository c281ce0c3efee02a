"""The programs in examples/ on a real mount: the shell and Python scripts,
and the legacy programs topicfs is for (nginx, rsyslog, cron lines) writing
their logs into partitions with the example configs, paths replaced."""
import os
import signal
import socket
import subprocess
import sys
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import MountTest, info, read, sh, wait_until  # noqa: E402

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples")


def example(name):
    return os.path.join(EXAMPLES, name)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ExamplesTest(MountTest):
    OPTS = "partitions=1"

    def start(self, args, out):
        """Starts a process writing to the file out, killed (by pid) when the
        test ends."""
        with open(out, "w") as f:
            p = subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT)
        self.addCleanup(lambda: (p.poll() is None and p.kill(), p.wait()))
        return p

    def config_for_mount(self, name, extra=()):
        """The example config with /mnt/log (and any extra pairs) replaced."""
        text = read(example(name)).replace("/mnt/log", self.m.mnt)
        for old, new in extra:
            text = text.replace(old, new)
        path = os.path.join(self.m.base, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_produce_consume_script(self):
        r = sh("bash %s %s" % (example("produce-consume.sh"), self.m.mnt))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        out = r.stdout.split("--- ")
        drains = [s for s in out if s.startswith("the group's first drain")]
        self.assertEqual(sorted(drains[0].splitlines()[1:]),
                         sorted(["alice:logged in", "bob:logged in", "carol:logged in",
                                 "alice:viewed cart", "bob:paid"]))
        second = [s for s in out if s.startswith("the second drain")][0]
        self.assertEqual(second.splitlines()[1:], ["carol:logged out"])
        # Each user's records are in one partition, in order.
        parts = {}
        for p in range(3):
            for line in read(self.m.path("events", "p%d" % p)).splitlines():
                parts.setdefault(line.split(":")[0], set()).add(p)
        self.assertEqual({u: len(ps) for u, ps in parts.items()}, {"alice": 1, "bob": 1, "carol": 1})
        # Run again: it reuses the topic and the group.
        r = sh("bash %s %s" % (example("produce-consume.sh"), self.m.mnt))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(sum(v["end_offset"] for v in info(self.m, "events").values()), 12)

    def test_group_workers_share_and_take_over(self):
        os.mkdir(self.m.path("jobs"))
        with open(self.m.path("jobs", ".config"), "a") as f:
            f.write("partitions=4\n")
        outs = [os.path.join(self.m.base, "worker%d.out" % i) for i in range(2)]
        workers = [self.start(["bash", example("group-worker.sh"), self.m.mnt, "jobs", "crew"],
                              o) for o in outs]
        wait_until(lambda: os.path.isdir(self.m.path("jobs", ".groups", "crew")), what="group")
        wait_until(lambda: sum(1 for line in read(self.m.path("jobs", ".groups", "crew", ".info"))
                               .splitlines() if "owner=-" not in line) == 4, what="partitions owned")
        for p in range(4):
            with open(self.m.path("jobs", "p%d" % p), "a") as f:
                f.write("".join("job %d.%d\n" % (p, i) for i in range(500)))
        expected = {"job %d.%d" % (p, i) for p in range(4) for i in range(500)}

        def handled():
            got = []
            for o in outs:
                got += [line.split(" ", 1)[1] for line in read(o).splitlines() if " " in line]
            return got
        wait_until(lambda: set(handled()) == expected, timeout=30, what="workers to handle every job")
        pids = {line.split(" ", 1)[0] for o in outs for line in read(o).splitlines()}
        self.assertEqual(len(pids), 2, "both workers got partitions")
        # One worker is killed: the other takes its partitions over.
        workers[0].kill()
        workers[0].wait()
        for p in range(4):
            with open(self.m.path("jobs", "p%d" % p), "a") as f:
                f.write("late %d\n" % p)
        wait_until(lambda: {"late %d" % p for p in range(4)} <= set(handled()), timeout=30,
                   what="the survivor to take over")
        self.assertEqual(set(handled()) - expected, {"late %d" % p for p in range(4)})

    def test_python_producer_and_consumer(self):
        r = subprocess.run([sys.executable, example("producer.py"), self.m.mnt, "orders", "300"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("end_offset=300", r.stdout)
        r = subprocess.run([sys.executable, example("consumer.py"), self.m.mnt, "orders", "billing",
                            "300"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), 300)
        self.assertEqual(lines[0], "order 0 total=0.00")
        self.assertEqual(lines[299], "order 299 total=299.99")
        self.assertEqual(read(self.m.path("orders", "p0")), r.stdout)

    def test_nginx_access_log(self):
        os.mkdir(self.m.path("access"))
        port = free_port()
        conf = self.config_for_mount("nginx.conf", [
            ("127.0.0.1:8080", "127.0.0.1:%d" % port),
            ("/tmp/topicfs-nginx", os.path.join(self.m.base, "nginx"))])
        log = os.path.join(self.m.base, "nginx.log")
        nginx = self.start(["nginx", "-e", "stderr", "-c", conf], log)

        def get(path):
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
                    return r.read()
            except OSError:
                return None
        wait_until(lambda: get("/ready") or nginx.poll() is not None, timeout=20, what="nginx")
        self.assertIsNone(nginx.poll(), read(log))
        for i in range(50):
            self.assertEqual(get("/page/%d" % i), b"hello\n")
        wait_until(lambda: read(self.m.path("access", "p0")).count("GET /page/") == 50,
                   what="50 access log records")
        lines = read(self.m.path("access", "p0")).splitlines()
        pages = [line.split('"GET ')[1].split(" ")[0] for line in lines if "GET /page/" in line]
        self.assertEqual(pages, ["/page/%d" % i for i in range(50)])
        self.assertTrue(all(line.startswith("127.0.0.1 - - [") for line in lines))
        self.assertEqual(info(self.m, "access")["p0"]["end_offset"], len(lines))
        nginx.send_signal(signal.SIGQUIT)  # graceful stop
        nginx.wait(timeout=20)
        self.assertAlive()

    def test_rsyslog_messages(self):
        os.mkdir(self.m.path("syslog"))
        sock = os.path.join(self.m.base, "rsyslog.sock")
        conf = self.config_for_mount("rsyslog.conf", [
            ("/tmp/topicfs-rsyslog.sock", sock),
            ('workDirectory="/tmp"', 'workDirectory="%s"' % self.m.base)])
        log = os.path.join(self.m.base, "rsyslog.log")
        rs = self.start(["rsyslogd", "-n", "-f", conf, "-i", os.path.join(self.m.base, "rs.pid")],
                        log)
        wait_until(lambda: os.path.exists(sock) or rs.poll() is not None, timeout=20,
                   what="rsyslog's socket")
        self.assertIsNone(rs.poll(), read(log))
        for i in range(20):
            r = sh("logger -u %s -t app 'message %d'" % (sock, i))
            self.assertEqual(r.returncode, 0, r.stderr)
        wait_until(lambda: read(self.m.path("syslog", "p0")).count(" app: message ") == 20,
                   timeout=20, what="20 syslog records")
        msgs = [line.split(" app: ")[1] for line in read(self.m.path("syslog", "p0")).splitlines()]
        self.assertEqual(msgs, ["message %d" % i for i in range(20)])
        rs.terminate()
        rs.wait(timeout=20)
        self.assertAlive()

    def test_crontab_lines(self):
        os.mkdir(self.m.path("heartbeat"))
        os.mkdir(self.m.path("backups"))
        jobs = [line.split(None, 5)[5] for line in read(self.config_for_mount("crontab")).splitlines()
                if line.strip() and not line.startswith("#")]
        self.assertEqual(len(jobs), 2)
        for _ in range(3):  # what cron does: the command line, by sh
            r = subprocess.run(["sh", "-c", jobs[0]], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
        beats = read(self.m.path("heartbeat", "p0")).splitlines()
        self.assertEqual(len(beats), 3)
        self.assertTrue(all(b.startswith("heartbeat ") and " load=" in b for b in beats), beats)


if __name__ == "__main__":
    unittest.main(verbosity=2)
