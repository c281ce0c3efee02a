"""Consumer groups on a real mount (issue 4): .groups/<group>/ with the member
files follow and drain, cursor files, .info, at-least-once delivery across a
killed member, durable commits across a killed daemon, and group lifecycle."""
import errno
import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Mount, MountTest, changes_mtime, info, read, sh, wait_until  # noqa: E402

# A member that prints every line it reads from a group file, flushing each
# one, so what it printed is what it processed.
READER = ("import sys\n"
          "out = open(sys.argv[2], 'a')\n"
          "for line in open(sys.argv[1]):\n"
          "    out.write(line)\n"
          "    out.flush()\n")


def group_info(m, topic, group):
    """Parses .groups/<group>/.info into {partition: {key: value}}."""
    out = {}
    for line in read(m.path(topic, ".groups", group, ".info")).splitlines():
        fields = line.split()
        out[fields[0]] = dict(x.split("=") for x in fields[1:])
    return out


def append_lines(path, lines):
    with open(path, "a") as f:
        f.write("".join(lines))


def lines_of(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


class GroupTest(MountTest):
    OPTS = "partitions=3"

    def setUp(self):
        super().setUp()
        os.mkdir(self.m.path("orders"))
        self.procs = []

    def g(self, group, *parts):
        return self.m.path("orders", ".groups", group, *parts)

    def spawn(self, argv, **kw):
        p = subprocess.Popen(argv, **kw)
        self.procs.append(p)
        self.addCleanup(lambda: (p.poll() is None and p.kill(), p.wait()))
        return p

    def reader(self, group, name, out):
        return self.spawn([sys.executable, "-c", READER, self.g(group, name), out])


class LayoutTest(GroupTest):
    def test_mkdir_ls(self):
        os.mkdir(self.g("billing"))
        self.assertEqual(sh("ls " + self.m.path("orders", ".groups")).stdout.split(), ["billing"])
        # Member files are opened by name, not listed (tools that walk
        # directories must not consume).
        self.assertEqual(sh("ls " + self.g("billing")).stdout.split(), ["p0", "p1", "p2"])
        self.assertEqual(sh("ls -a " + self.g("billing")).stdout.split(),
                         [".", "..", ".info", "p0", "p1", "p2"])
        self.assertEqual(os.stat(self.g("billing", "follow")).st_mode & 0o777, 0o400)
        self.assertErrno(errno.EEXIST, os.mkdir, self.g("billing"))
        self.assertErrno(errno.ENOENT, open, self.g("nosuch", "drain"))
        # A group file is not a partition: no appends to member files.
        self.assertErrno(errno.EACCES, open, self.g("billing", "drain"), "a")

    def test_groups_directory_mtime(self):
        groups = self.m.path("orders", ".groups")
        changes_mtime(self, groups, lambda: os.mkdir(self.g("billing")))
        changes_mtime(self, groups, lambda: os.rmdir(self.g("billing")))

    def test_bad_group_names(self):
        for name in ["a" * 250, "sp ace", "x*y"]:
            self.assertErrno(errno.EINVAL, os.mkdir, self.g(name))
        self.assertEqual(os.listdir(self.m.path("orders", ".groups")), [])

    def test_internal_topic_is_hidden(self):
        self.assertEqual(sh("ls " + self.m.mnt).stdout.split(), ["orders"])
        self.assertErrno(errno.ENOENT, os.stat, self.m.path("__consumer_offsets"))
        self.assertErrno(errno.ENOENT, os.rmdir, self.m.path("__consumer_offsets"))


class DrainTest(GroupTest):
    def test_drain_prints_unconsumed_then_only_new(self):
        os.mkdir(self.g("billing"))
        append_lines(self.m.path("orders", "p0"), ["a%d\n" % i for i in range(5)])
        append_lines(self.m.path("orders", "p2"), ["c%d\n" % i for i in range(3)])
        first = sh("cat " + self.g("billing", "drain"), timeout=20)
        self.assertEqual(first.returncode, 0)
        self.assertEqual(sorted(first.stdout.splitlines()),
                         sorted(["a%d" % i for i in range(5)] + ["c%d" % i for i in range(3)]))
        self.assertEqual(sh("cat " + self.g("billing", "drain"), timeout=20).stdout, "")
        append_lines(self.m.path("orders", "p1"), ["b0\n"])
        self.assertEqual(sh("cat " + self.g("billing", "drain"), timeout=20).stdout, "b0\n")
        self.assertEqual([read(self.g("billing", "p%d" % p)) for p in range(3)],
                         ["5\n", "1\n", "3\n"])

    def test_partition_order_is_kept(self):
        os.mkdir(self.g("billing"))
        append_lines(self.m.path("orders", "p1"), ["r%05d\n" % i for i in range(5000)])
        self.assertEqual(read(self.g("billing", "drain")).splitlines(),
                         ["r%05d" % i for i in range(5000)])

    def test_auto_offset_reset_latest(self):
        append_lines(self.m.path("orders", ".config"), ["auto.offset.reset=latest\n"])
        append_lines(self.m.path("orders", "p0"), ["old\n"])
        os.mkdir(self.g("late"))
        self.assertEqual(read(self.g("late", "drain")), "")
        append_lines(self.m.path("orders", "p0"), ["new\n"])
        self.assertEqual(read(self.g("late", "drain")), "new\n")
        self.assertErrno(errno.EINVAL, append_lines, self.m.path("orders", ".config"),
                         ["auto.offset.reset=none\n"])

    def test_extra_drain_member_gets_eof(self):
        append_lines(self.m.path("orders", "p0"), ["x\n"] * 10)
        os.mkdir(self.g("g"))
        members = [open(self.g("g", "drain")) for _ in range(4)]
        try:
            texts = [f.read() for f in members]
        finally:
            for f in members:
                f.close()
        # Three partitions, four members: one member owns nothing and sees
        # end of file; the records of p0 reach exactly one member.
        self.assertEqual(sorted(len(t) for t in texts), [0, 0, 0, 20])


class FollowTest(GroupTest):
    def test_bash_while_read_loop(self):
        os.mkdir(self.g("billing"))
        out = os.path.join(self.m.base, "bash.out")
        loop = 'while read -r l; do echo "$l"; done < %s > %s' % (self.g("billing", "follow"), out)
        p = self.spawn(["bash", "-c", loop])
        n = 20000
        append_lines(self.m.path("orders", "p0"), ["line %d\n" % i for i in range(n)])
        wait_until(lambda: len(lines_of(out)) >= n, timeout=60, what="bash loop to read all")
        self.assertIsNone(p.poll(), "follow must not end")
        append_lines(self.m.path("orders", "p1"), ["more\n"])
        wait_until(lambda: len(lines_of(out)) == n + 1, timeout=10, what="the next record")
        self.assertEqual(lines_of(out), ["line %d" % i for i in range(n)] + ["more"])
        # bash acknowledged exactly the lines it consumed.
        wait_until(lambda: read(self.g("billing", "p0")) == "%d\n" % n, timeout=10,
                   what="commit of p0")

    def test_python_for_loop_and_wakeup(self):
        os.mkdir(self.g("py"))
        out = os.path.join(self.m.base, "py.out")
        p = self.reader("py", "follow", out)
        append_lines(self.m.path("orders", "p2"), ["first\n"])
        wait_until(lambda: lines_of(out) == ["first"], timeout=10, what="first record")
        append_lines(self.m.path("orders", "p0"), ["second\n"])
        wait_until(lambda: lines_of(out) == ["first", "second"], timeout=10, what="wake-up")
        self.assertIsNone(p.poll())

    def test_members_split_partitions(self):
        os.mkdir(self.g("g"))
        outs = [os.path.join(self.m.base, "m%d.out" % i) for i in range(3)]
        ps = [self.reader("g", "follow", o) for o in outs]
        pids = {str(p.pid) for p in ps}
        wait_until(lambda: {v["owner"] for v in group_info(self.m, "orders", "g").values()} == pids,
                   timeout=10, what="three owners in .info")
        for p in range(3):
            append_lines(self.m.path("orders", "p%d" % p), ["p%d-%d\n" % (p, i) for i in range(1000)])
        wait_until(lambda: sum(len(lines_of(o)) for o in outs) >= 3000, timeout=30,
                   what="all records")
        seen = sorted(sum((lines_of(o) for o in outs), []))
        self.assertEqual(seen, sorted("p%d-%d" % (p, i) for p in range(3) for i in range(1000)))
        # Each partition went to exactly one member.
        for o in outs:
            self.assertEqual(len({line.split("-")[0] for line in lines_of(o)}), 1)

    def test_extra_follow_member_waits_then_takes_over(self):
        os.mkdir(self.g("g"))
        append_lines(self.m.path("orders", ".config"), ["partitions=3\n"])
        outs = [os.path.join(self.m.base, "m%d.out" % i) for i in range(4)]
        ps = [self.reader("g", "follow", o) for o in outs]
        wait_until(lambda: len({v["owner"] for v in group_info(self.m, "orders", "g").values()}) == 3,
                   timeout=10, what="three owners")
        owners = {v["owner"] for v in group_info(self.m, "orders", "g").values()}
        idle = [p for p in ps if str(p.pid) not in owners]
        self.assertEqual(len(idle), 1)
        busy = [p for p in ps if str(p.pid) in owners][0]
        busy.kill()
        busy.wait()
        wait_until(lambda: str(idle[0].pid) in {v["owner"] for v in
                                                group_info(self.m, "orders", "g").values()},
                   timeout=10, what="the waiting member to take over")
        for p in range(3):
            append_lines(self.m.path("orders", "p%d" % p), ["r%d\n" % p])
        wait_until(lambda: sorted(sum((lines_of(o) for o in outs), [])) == ["r0", "r1", "r2"],
                   timeout=10, what="records after takeover")


class AtLeastOnceTest(GroupTest):
    def test_kill9_member_records_go_to_survivors(self):
        os.mkdir(self.g("work"))
        outs = [os.path.join(self.m.base, "m%d.out" % i) for i in range(3)]
        ps = [self.reader("work", "follow", o) for o in outs]
        wait_until(lambda: len({v["owner"] for v in group_info(self.m, "orders", "work").values()}) == 3,
                   timeout=10, what="three owners")
        n = 100000
        producer = self.spawn([sys.executable, "-c",
                               "import sys\n"
                               "fs = [open(sys.argv[1] + '/p%%d' %% p, 'a') for p in range(3)]\n"
                               "for i in range(%d):\n"
                               "    fs[i %% 3].write('rec %%d\\n' %% i)\n"
                               "    if i %% 1000 == 999:\n"
                               "        [f.flush() for f in fs]\n"
                               "[f.close() for f in fs]\n" % n, self.m.path("orders")])
        wait_until(lambda: len(lines_of(outs[0])) > 2000, timeout=30, what="member 0 mid-stream")
        ps[0].send_signal(signal.SIGKILL)
        ps[0].wait()
        self.assertEqual(producer.wait(timeout=120), 0)
        want = {"rec %d" % i for i in range(n)}
        wait_until(lambda: set(sum((lines_of(o) for o in outs), [])) >= want, timeout=60,
                   what="survivors to cover every record")
        self.assertEqual(set(sum((lines_of(o) for o in outs), [])), want)
        for p in ps[1:]:
            self.assertIsNone(p.poll())
        gi = group_info(self.m, "orders", "work")
        self.assertNotIn(str(ps[0].pid), {v["owner"] for v in gi.values()})


class CursorTest(GroupTest):
    def test_read_and_move(self):
        append_lines(self.m.path("orders", "p0"), ["r%d\n" % i for i in range(10)])
        os.mkdir(self.g("c"))
        cur = self.g("c", "p0")
        self.assertEqual(read(cur), "0\n")
        for spec, want in [("4", 4), ("latest", 10), ("earliest", 0), ("-3", 7), ("-30", 0),
                           ("@2000-01-01T00:00:00Z", 0), ("@t99999999999999", 10)]:
            self.assertEqual(sh("echo '%s' > %s" % (spec, cur)).returncode, 0, spec)
            self.assertEqual(read(cur), "%d\n" % want, spec)
        sh("echo 7 >> " + cur)
        self.assertEqual(read(self.g("c", "drain")), "r7\nr8\nr9\n")
        self.assertEqual(read(cur), "10\n")
        for bad in ["x", "12a", "@yesterday", "--1", "1 2", "99999999999999999999999"]:
            r = sh("printf '%%s\\n' '%s' > %s" % (bad, cur))
            self.assertNotEqual(r.returncode, 0, bad)
            self.assertIn("Invalid argument", r.stderr)
            self.assertEqual(read(cur), "10\n", bad)
        self.assertErrno(errno.ENOENT, open, self.g("c", "p3"))

    def test_info_shows_committed_lag_owner(self):
        append_lines(self.m.path("orders", "p1"), ["r%d\n" % i for i in range(4)])
        os.mkdir(self.g("c"))
        gi = group_info(self.m, "orders", "c")
        self.assertEqual(sorted(gi), ["p0", "p1", "p2"])
        self.assertEqual(gi["p1"], {"committed": "0", "end_offset": "4", "lag": "4", "owner": "-"})
        holder = self.spawn([sys.executable, "-c",
                             "import signal, sys\nf = open(sys.argv[1])\nprint('ok', flush=True)\n"
                             "signal.pause()\n", self.g("c", "follow")], stdout=subprocess.PIPE)
        self.assertEqual(holder.stdout.readline(), b"ok\n")
        gi = group_info(self.m, "orders", "c")
        self.assertEqual({v["owner"] for v in gi.values()}, {str(holder.pid)})
        holder.kill()
        holder.wait()
        holder.stdout.close()
        wait_until(lambda: {v["owner"] for v in group_info(self.m, "orders", "c").values()} == {"-"},
                   timeout=10, what="owner to go")


class DurabilityTest(GroupTest):
    def test_commits_survive_kill9_and_remount(self):
        os.mkdir(self.g("billing"))
        append_lines(self.m.path("orders", "p0"), ["a%d\n" % i for i in range(5)])
        self.assertEqual(len(read(self.g("billing", "drain")).splitlines()), 5)
        os.mkdir(self.g("audit"))
        sh("echo 2 > " + self.g("audit", "p0"))
        self.m.kill9()
        self.m.start()
        self.assertEqual(sorted(os.listdir(self.m.path("orders", ".groups"))), ["audit", "billing"])
        self.assertEqual(read(self.g("billing", "p0")), "5\n")
        self.assertEqual(read(self.g("audit", "p0")), "2\n")
        append_lines(self.m.path("orders", "p0"), ["new\n"])
        self.assertEqual(read(self.g("billing", "drain")), "new\n")
        self.m.restart()
        self.assertEqual(read(self.g("billing", "p0")), "6\n")
        self.assertEqual(sh("ls " + self.m.mnt).stdout.split(), ["orders"])

    def test_idle_follow_commit_survives_kill9(self):
        os.mkdir(self.g("f"))
        out = os.path.join(self.m.base, "f.out")
        p = self.reader("f", "follow", out)
        append_lines(self.m.path("orders", "p1"), ["r%d\n" % i for i in range(5)])
        wait_until(lambda: len(lines_of(out)) == 5, timeout=10, what="the reader")
        wait_until(lambda: read(self.g("f", "p1")) == "5\n", timeout=10, what="the commit")
        self.m.kill9()
        p.kill()
        p.wait()
        self.m.start()
        self.assertEqual(read(self.g("f", "p1")), "5\n")
        self.assertEqual(read(self.g("f", "drain")), "")


class LifecycleTest(GroupTest):
    def test_groups_are_independent(self):
        append_lines(self.m.path("orders", "p0"), ["r%d\n" % i for i in range(3)])
        os.mkdir(self.g("a"))
        os.mkdir(self.g("b"))
        self.assertEqual(read(self.g("a", "drain")), "r0\nr1\nr2\n")
        self.assertEqual(read(self.g("b", "p0")), "0\n")
        self.assertEqual(read(self.g("b", "drain")), "r0\nr1\nr2\n")
        self.assertEqual(read(self.g("a", "drain")), "")

    def test_rmdir_group(self):
        os.mkdir(self.g("a"))
        f = open(self.g("a", "follow"))
        try:
            self.assertErrno(errno.EBUSY, os.rmdir, self.g("a"))
        finally:
            f.close()
        wait_until(lambda: sh("rmdir " + self.g("a")).returncode == 0, timeout=10,
                   what="rmdir after the member closed")
        self.assertEqual(os.listdir(self.m.path("orders", ".groups")), [])
        self.assertErrno(errno.ENOENT, os.rmdir, self.g("a"))
        self.m.restart()
        self.assertEqual(os.listdir(self.m.path("orders", ".groups")), [])

    def test_ctrl_c_of_waiting_follow_reader(self):
        os.mkdir(self.g("a"))
        for _ in range(3):
            p = self.spawn(["cat", self.g("a", "follow")], stdout=subprocess.DEVNULL)
            wait_until(lambda: group_info(self.m, "orders", "a")["p0"]["owner"] == str(p.pid),
                       timeout=10, what="the member to join")
            p.send_signal(signal.SIGINT)
            p.wait(timeout=10)
            wait_until(lambda: group_info(self.m, "orders", "a")["p0"]["owner"] == "-",
                       timeout=10, what="the member to leave")
        self.assertAlive()
        append_lines(self.m.path("orders", "p0"), ["x\n"])
        self.assertEqual(read(self.g("a", "drain")), "x\n")

    def test_topic_delete_ends_follow_readers(self):
        os.mkdir(self.g("a"))
        p = self.spawn(["cat", self.g("a", "follow")], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
        wait_until(lambda: group_info(self.m, "orders", "a")["p0"]["owner"] == str(p.pid),
                   timeout=10, what="the member to join")
        os.rmdir(self.m.path("orders"))
        self.assertNotEqual(p.wait(timeout=10), 0)
        self.assertIn(b"No such file", p.stderr.read())
        p.stderr.close()

    def test_topic_delete_deletes_groups(self):
        append_lines(self.m.path("orders", "p0"), ["r\n"])
        os.mkdir(self.g("a"))
        read(self.g("a", "drain"))
        os.rmdir(self.m.path("orders"))
        os.mkdir(self.m.path("orders"))
        self.assertEqual(os.listdir(self.m.path("orders", ".groups")), [])
        self.m.restart()
        self.assertEqual(os.listdir(self.m.path("orders", ".groups")), [])
        os.mkdir(self.g("a"))
        self.assertEqual(read(self.g("a", "p0")), "0\n")


if __name__ == "__main__":
    unittest.main(verbosity=2)
