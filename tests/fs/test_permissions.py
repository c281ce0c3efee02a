"""Permissions (issue 8, defect 8): every node shows an owner and a mode,
`-o uid=,gid=,umask=` set them, and the kernel enforces them
(default_permissions is always on). Root mounts with allow_other; another
user (nobody) may read, and every change it tries fails and changes
nothing, unless the options make it the owner or the umask lets it write.

Needs root (allow_other and acting as another user)."""
import errno
import grp
import json
import os
import pwd
import stat
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import TOPICFS, Mount, is_mounted, read, wait_until  # noqa: E402

NOBODY = pwd.getpwnam("nobody").pw_uid
try:
    NOGROUP = grp.getgrnam("nogroup").gr_gid
except KeyError:
    NOGROUP = pwd.getpwnam("nobody").pw_gid

# Runs a list of operations as the user it is started as; prints, for each,
# "ok" (with the bytes read, for reads) or the errno's name.
CHILD = r'''
import errno, json, os, sys
def run(op, path, *a):
    try:
        if op == "append":
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            try:
                os.write(fd, a[0].encode())
            finally:
                os.close(fd)
        elif op == "write":  # as the shell's `>`
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, a[0].encode())
            finally:
                os.close(fd)
        elif op == "read":
            with open(path, "rb") as f:
                return ["ok", f.read().decode(errors="replace")]
        elif op == "listdir":
            return ["ok", sorted(os.listdir(path))]
        elif op == "mkdir":
            os.mkdir(path)
        elif op == "rmdir":
            os.rmdir(path)
        elif op == "chmod":
            os.chmod(path, 0o666)
        elif op == "chown":
            os.chown(path, os.getuid(), os.getgid())
        elif op == "truncate":
            os.truncate(path, 0)
        elif op == "unlink":
            os.unlink(path)
        elif op == "rename":
            os.rename(path, a[0])
        elif op == "utime":
            os.utime(path)
        else:
            return ["bad op " + op]
        return ["ok"]
    except OSError as e:
        return [errno.errorcode.get(e.errno, str(e.errno))]
print(json.dumps([run(*op) for op in json.loads(sys.argv[1])]))
'''


# The system's python, which another user can run (sys.executable may be
# under root's home).
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def as_user(uid, gid, ops):
    """Runs ops (lists [op, path, args...]) as uid:gid with no other group."""
    r = subprocess.run([PYTHON, "-c", CHILD, json.dumps(ops)], user=uid, group=gid,
                       extra_groups=[], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise AssertionError("child failed: " + r.stderr)
    return json.loads(r.stdout)


class PermissionTest(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.fail("test_permissions must run as root: it mounts with allow_other and "
                      "acts as user nobody")
        # Another user must be able to reach the mount point.
        self.base = tempfile.mkdtemp(prefix="topicfs-test-perm-")
        os.chmod(self.base, 0o755)
        self.addCleanup(shutil.rmtree, self.base, ignore_errors=True)

    def mount(self, opts):
        m = Mount(base=self.base, opts="partitions=1,allow_other" + (opts and "," + opts)).start()
        self.addCleanup(m.cleanup)
        return m

    def populate(self, m):
        """orders/p0 with three records, group g with a committed offset."""
        os.mkdir(m.path("orders"))
        with open(m.path("orders", "p0"), "a") as f:
            f.write("a\nb\nc\n")
        os.mkdir(m.path("orders", ".groups", "g"))
        with open(m.path("orders", ".groups", "g", "p0"), "w") as f:
            f.write("1\n")

    def state(self, m):
        """Everything a change could touch, as root sees it."""
        g = m.path("orders", ".groups", "g")
        return {
            "root": sorted(os.listdir(m.mnt)),
            "topic": sorted(os.listdir(m.path("orders"))),
            "groups": sorted(os.listdir(m.path("orders", ".groups"))),
            "p0": read(m.path("orders", "p0")),
            "config": read(m.path("orders", ".config")),
            "info": read(m.path("orders", ".info")),
            "cursor": read(os.path.join(g, "p0")),
            "group_info": read(os.path.join(g, ".info")).split(" member")[0],
            "modes": {n: oct(os.stat(m.path("orders", n)).st_mode) for n in ["p0", ".config"]},
        }

    def changes(self, m):
        """Every change the issue lists, and a few more, as operations."""
        t = m.path("orders")
        g = m.path("orders", ".groups", "g")
        return [
            ["append", os.path.join(t, "p0"), "evil\n"],
            ["write", os.path.join(t, "p0"), "evil\n"],
            ["append", os.path.join(t, ".produce"), "evil\n"],
            ["append", os.path.join(t, ".config"), "retention.ms=1\n"],
            ["write", os.path.join(t, ".config"), "retention.ms=1\n"],
            ["mkdir", m.path("new")],
            ["mkdir", os.path.join(t, ".groups", "h")],
            ["write", os.path.join(g, "p0"), "earliest\n"],
            ["append", os.path.join(g, "p0"), "latest\n"],
            ["read", os.path.join(g, "drain")],  # consuming commits offsets
            ["rmdir", g],
            ["rmdir", t],
            ["chmod", os.path.join(t, "p0")],
            ["chown", os.path.join(t, "p0")],
            ["truncate", os.path.join(t, "p0")],
            ["write", os.path.join(t, "new-file"), "x"],
            ["unlink", os.path.join(t, "p0")],
            ["rename", os.path.join(t, "p0"), os.path.join(t, "p9")],
            ["utime", os.path.join(t, "p0")],
        ]

    def test_default_owner_and_modes_others_read_only(self):
        m = self.mount("")
        self.populate(m)
        t = m.path("orders")
        g = m.path("orders", ".groups", "g")
        modes = {
            m.mnt: 0o40755, t: 0o40755, os.path.join(t, ".groups"): 0o40755, g: 0o40755,
            os.path.join(t, "p0"): 0o100644, os.path.join(t, ".config"): 0o100644,
            os.path.join(t, ".produce"): 0o100644, os.path.join(g, "p0"): 0o100644,
            os.path.join(t, ".info"): 0o100444, m.path(".cluster"): 0o100444,
            m.path(".metrics"): 0o100444, os.path.join(g, ".info"): 0o100444,
            os.path.join(t, "p0@1"): 0o100444, os.path.join(t, "p0.jsonl"): 0o100444,
            os.path.join(g, "follow"): 0o100400, os.path.join(g, "drain"): 0o100400,
        }
        for path, mode in modes.items():
            st = os.stat(path)
            self.assertEqual((oct(st.st_mode), st.st_uid, st.st_gid),
                             (oct(mode), os.getuid(), os.getgid()), path)
        before = self.state(m)
        results = as_user(NOBODY, NOGROUP, self.changes(m))
        for op, res in zip(self.changes(m), results):
            self.assertIn(res[0], ("EACCES", "EPERM"), op)
        self.assertEqual(self.state(m), before)
        # Reads work.
        reads = as_user(NOBODY, NOGROUP, [
            ["read", os.path.join(t, "p0")], ["read", os.path.join(t, ".info")],
            ["read", os.path.join(t, ".config")], ["read", os.path.join(g, "p0")],
            ["read", os.path.join(g, ".info")], ["read", m.path(".cluster")],
            ["read", m.path(".metrics")], ["read", os.path.join(t, "p0@1")],
            ["read", os.path.join(t, "p0.jsonl")],
            ["listdir", m.mnt], ["listdir", t], ["listdir", g]])
        self.assertEqual([r[0] for r in reads], ["ok"] * len(reads))
        self.assertEqual(reads[0][1], "a\nb\nc\n")
        self.assertEqual(reads[3][1], "1\n")
        self.assertEqual(reads[7][1], "b\nc\n")
        self.assertEqual(reads[-2][1], [".config", ".groups", ".info", ".produce", "p0"])
        self.assertEqual(self.state(m), before)
        # The owner (root here) still changes what it may; chmod, chown of
        # a partition stay refused.
        with open(os.path.join(t, "p0"), "a") as f:
            f.write("d\n")
        self.assertEqual(read(os.path.join(t, "p0")), "a\nb\nc\nd\n")
        for fn, args in [(os.chmod, (0o600,)), (os.chown, (NOBODY, -1))]:
            with self.assertRaises(OSError) as cm:
                fn(os.path.join(t, "p0"), *args)
            self.assertEqual(cm.exception.errno, errno.EPERM)

    def test_uid_gid_options_make_another_user_the_owner(self):
        m = self.mount("uid=%d,gid=%d" % (NOBODY, NOGROUP))
        self.populate(m)
        t = m.path("orders")
        g = m.path("orders", ".groups", "g")
        for path in [m.mnt, t, os.path.join(t, "p0"), os.path.join(g, "drain")]:
            st = os.stat(path)
            self.assertEqual((st.st_uid, st.st_gid), (NOBODY, NOGROUP), path)
        results = as_user(NOBODY, NOGROUP, [
            ["append", os.path.join(t, "p0"), "d\n"],
            ["append", os.path.join(t, ".config"), "retention.ms=86400000\n"],
            ["mkdir", m.path("logs")],
            ["mkdir", os.path.join(t, ".groups", "h")],
            ["write", os.path.join(g, "p0"), "earliest\n"],
            ["read", os.path.join(g, "drain")],
            ["rmdir", os.path.join(t, ".groups", "h")],
            ["rmdir", m.path("logs")],
            ["chmod", os.path.join(t, "p0")],
        ])
        self.assertEqual([r[0] for r in results], ["ok"] * 8 + ["EPERM"])
        self.assertEqual(results[5][1], "a\nb\nc\nd\n")  # drained from the reset cursor
        self.assertEqual(read(os.path.join(t, "p0")), "a\nb\nc\nd\n")
        self.assertIn("retention.ms=86400000\n", read(os.path.join(t, ".config")))
        self.assertEqual(read(os.path.join(g, "p0")), "4\n")
        self.assertEqual(sorted(os.listdir(m.mnt)), [".cluster", ".metrics", "orders"])

    def test_umask(self):
        m = self.mount("umask=077")
        self.populate(m)
        t = m.path("orders")
        g = m.path("orders", ".groups", "g")
        for path, mode in [(m.mnt, 0o40700), (t, 0o40700), (os.path.join(t, "p0"), 0o100600),
                           (os.path.join(t, ".info"), 0o100400),
                           (os.path.join(g, "drain"), 0o100400)]:
            self.assertEqual(oct(os.stat(path).st_mode), oct(mode), path)
        results = as_user(NOBODY, NOGROUP, [["listdir", m.mnt],
                                            ["read", os.path.join(t, "p0")]])
        self.assertEqual([r[0] for r in results], ["EACCES", "EACCES"])
        m.stop()
        # umask=0: everyone may write, though root owns everything.
        m = self.mount("umask=0")
        for path, mode in [(m.mnt, 0o40777), (t, 0o40777), (os.path.join(t, "p0"), 0o100666),
                           (os.path.join(t, ".info"), 0o100444),
                           (os.path.join(g, "drain"), 0o100444)]:
            self.assertEqual(oct(os.stat(path).st_mode), oct(mode), path)
        results = as_user(NOBODY, NOGROUP, [["append", os.path.join(t, "p0"), "d\n"],
                                            ["mkdir", m.path("logs")]])
        self.assertEqual([r[0] for r in results], ["ok", "ok"])
        self.assertEqual(read(os.path.join(t, "p0")), "a\nb\nc\nd\n")

    def test_bad_option_values(self):
        data = os.path.join(self.base, "data")
        mnt = os.path.join(self.base, "mnt")
        os.makedirs(mnt, exist_ok=True)
        for opt in ["uid=abc", "uid=-1", "uid=", "uid=4294967295", "uid=1x", "gid=abc",
                    "gid=+5", "umask=8", "umask=1000", "umask=abc", "umask=-22"]:
            r = subprocess.run([TOPICFS, data, mnt, "-f", "-o", opt], capture_output=True,
                               text=True, timeout=60)
            if is_mounted(mnt):
                subprocess.run(["fusermount3", "-u", mnt])
            self.assertEqual(r.returncode, 1, opt)
            self.assertEqual(len(r.stderr.splitlines()), 1, (opt, r.stderr))
            self.assertIn(opt, r.stderr)
            self.assertFalse(os.path.exists(data), opt)
        wait_until(lambda: not is_mounted(mnt), what="no mount left")


if __name__ == "__main__":
    unittest.main(verbosity=2)
