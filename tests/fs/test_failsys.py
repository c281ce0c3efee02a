"""The syscall fault shim itself (tests/fault/failsys.c): a small python
program run under LD_PRELOAD sees the Nth matching call fail with the chosen
errno, only calls on paths with FAILSYS_PATH count, nothing counts while
FAILSYS_ARM_FILE is absent, FAILSYS_CRASH kills the process at the call, and a
topicfs daemon under the shim keeps talking to /dev/fuse."""
import errno
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Mount, failsys_env, read, wait_until  # noqa: E402

# Runs one operation per argument and prints "ok" or the errno name of each.
PROGRAM = r"""
import errno, os, sys
d = sys.argv[1]
def run(op, i):
    p = os.path.join(d, "f%d" % i)
    if op == "write":
        fd = os.open(os.path.join(d, "w"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            os.write(fd, b"x")
        finally:
            os.close(fd)
    elif op == "wother":
        fd = os.open(os.path.join(d, "other"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            os.write(fd, b"x")
        finally:
            os.close(fd)
    elif op == "open":
        os.close(os.open(p, os.O_WRONLY | os.O_CREAT))
    elif op == "fopen":
        open(p, "w").close()
    elif op == "fsync":
        fd = os.open(os.path.join(d, "w"), os.O_WRONLY | os.O_CREAT)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    elif op == "rename":
        open(p, "w").close()
        os.rename(p, p + ".r")
    elif op == "mkdir":
        os.mkdir(p + ".d")
    elif op == "unlink":
        open(p, "w").close()
        os.unlink(p)
    elif op == "ftruncate":
        fd = os.open(os.path.join(d, "w"), os.O_WRONLY | os.O_CREAT)
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)
    elif op == "arm":
        open(os.path.join(d, "ARM"), "w").close()
    elif op == "disarm":
        os.unlink(os.path.join(d, "ARM"))
for i, op in enumerate(sys.argv[2:]):
    try:
        run(op, i)
        print("ok", flush=True)
    except OSError as e:
        print(errno.errorcode[e.errno], flush=True)
"""


class ShimTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="topicfs-failsys-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def run_under(self, ops, **kw):
        kw.setdefault("path", self.dir)
        env = dict(os.environ, **failsys_env(**kw))
        r = subprocess.run([sys.executable, "-c", PROGRAM, self.dir] + ops, env=env,
                           capture_output=True, text=True, timeout=60)
        return r.returncode, r.stdout.split()

    def test_nth_write_fails_with_errno(self):
        code, out = self.run_under(["write"] * 5, op="write", nth=3, errno="ENOSPC")
        self.assertEqual(code, 0)
        self.assertEqual(out, ["ok", "ok", "ENOSPC", "ok", "ok"])
        self.assertEqual(read(os.path.join(self.dir, "w")), "xxxx")

    def test_count_and_numeric_errno(self):
        _, out = self.run_under(["write"] * 5, op="write", nth=2, count=2, errno=str(errno.EIO))
        self.assertEqual(out, ["ok", "EIO", "EIO", "ok", "ok"])
        _, out = self.run_under(["write"] * 4, op="write", nth=2, count=0, errno="EDQUOT")
        self.assertEqual(out, ["ok", "EDQUOT", "EDQUOT", "EDQUOT"])

    def test_path_filter(self):
        ops = ["wother", "write", "wother", "write"]
        _, out = self.run_under(ops, op="write", nth=2, path=os.path.join(self.dir, "w"))
        self.assertEqual(out, ["ok", "ok", "ok", "EIO"])
        self.assertEqual(read(os.path.join(self.dir, "other")), "xx")

    def test_each_op(self):
        for op in ["open", "fopen", "fsync", "rename", "mkdir", "unlink", "ftruncate"]:
            shim_op = "open" if op == "fopen" else op
            _, out = self.run_under([op, op], op=shim_op, nth=2, errno="EMFILE")
            self.assertEqual(out, ["ok", "EMFILE"], op)
        # "any" counts every kind of call.
        shutil.rmtree(self.dir)
        os.mkdir(self.dir)
        _, out = self.run_under(["mkdir", "mkdir"], op="any", nth=2)
        self.assertEqual(out, ["ok", "EIO"])

    def test_failed_call_does_nothing(self):
        _, out = self.run_under(["mkdir", "rename", "unlink"], op="any", count=0)
        self.assertEqual(out, ["EIO", "EIO", "EIO"])
        self.assertEqual(os.listdir(self.dir), [])

    def test_arm_file(self):
        arm = os.path.join(self.dir, "ARM")
        ops = ["write", "write", "arm", "write", "write", "disarm", "write"]
        _, out = self.run_under(ops, op="write", nth=2, count=0, arm=arm,
                                path=os.path.join(self.dir, "w"))
        self.assertEqual(out, ["ok", "ok", "ok", "ok", "EIO", "ok", "ok"])

    def test_crash_kills_at_the_call_and_logs(self):
        log = os.path.join(self.dir, "..", os.path.basename(self.dir) + ".log")
        self.addCleanup(lambda: os.path.exists(log) and os.unlink(log))
        code, out = self.run_under(["write"] * 5, op="write", nth=3, crash=True, log=log)
        self.assertEqual(code, -9)
        self.assertEqual(out, ["ok", "ok"])
        self.assertEqual(read(os.path.join(self.dir, "w")), "xx")
        self.assertRegex(read(log), r"^crash write call=3 .*/w pid=\d+\n$")


class DaemonUnderShimTest(unittest.TestCase):
    def test_daemon_serves_with_every_write_failing(self):
        """The shim leaves /dev/fuse alone: with every write of the daemon
        failing once armed, the mount answers, and appends fail with EIO."""
        base = tempfile.mkdtemp(prefix="topicfs-failsys-m-")
        arm = os.path.join(base, "ARM")
        m = Mount(base=base, opts="partitions=1",
                  env=failsys_env("write", count=0, arm=arm, log=os.path.join(base, "faults")))
        m.start()
        self.addCleanup(m.cleanup)
        os.mkdir(m.path("t"))
        with open(m.path("t", "p0"), "a") as f:
            f.write("before\n")
        open(arm, "w").close()
        with self.assertRaises(OSError) as cm:
            with open(m.path("t", "p0"), "a") as f:
                f.write("during\n")
        self.assertEqual(cm.exception.errno, errno.EIO)
        self.assertTrue(m.alive())
        self.assertIn("fail pwritev", read(os.path.join(base, "faults")))
        self.assertNotIn("/dev/fuse", read(os.path.join(base, "faults")))
        os.unlink(arm)
        self.assertEqual(read(m.path("t", "p0")), "before\n")
        with open(m.path("t", "p0"), "a") as f:
            f.write("after\n")
        wait_until(lambda: read(m.path("t", "p0")) == "before\nafter\n", what="append after disarm")


if __name__ == "__main__":
    unittest.main(verbosity=2)
