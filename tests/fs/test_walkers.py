"""Tools that walk directories (issue 8, defect 9): grep -r, cp -r, tar and
rsync -a of a topic or of the whole mount finish, exit 0, copy what cat
shows, and change no consumer group. Group members (follow, drain) are not
listed, only opened by name; .produce reads as an empty file; generated
files (.info, .metrics, cursor files...) read exactly the size fstat shows."""
import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import MountTest, read  # noqa: E402


class WalkerTest(MountTest):
    OPTS = "partitions=2"

    def setUp(self):
        super().setUp()
        for topic in ["orders", "logs"]:
            os.mkdir(self.m.path(topic))
            for p in range(2):
                with open(self.m.path(topic, "p%d" % p), "a") as f:
                    for i in range(20):
                        f.write("%s p%d record %d\n" % (topic, p, i))
        with open(self.m.path("logs", ".config"), "a") as f:
            f.write("compression.type=lz4\n")
        # billing has committed offsets; audit has never consumed.
        for g in ["billing", "audit"]:
            os.mkdir(self.m.path("orders", ".groups", g))
        for p, off in [(0, 3), (1, 7)]:
            with open(self.m.path("orders", ".groups", "billing", "p%d" % p), "w") as f:
                f.write("%d\n" % off)

    def groups_state(self):
        """Committed offsets of every group, as cursor files and .info show them."""
        state = {}
        for g in ["billing", "audit"]:
            d = self.m.path("orders", ".groups", g)
            state[g] = {name: read(os.path.join(d, name)) for name in ["p0", "p1", ".info"]}
        return state

    def run_tool(self, cmd, cwd=None):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=cwd)
        self.assertEqual((r.returncode, r.stderr), (0, ""), cmd)
        return r.stdout

    def check_copy(self, dest, topic_dir):
        """dest holds a copy of topic_dir: partitions and control files as
        read, .produce empty, no group member files."""
        for p in ["p0", "p1", ".config", ".info"]:
            self.assertEqual(read(os.path.join(dest, p)), read(os.path.join(topic_dir, p)), p)
        self.assertEqual(read(os.path.join(dest, ".produce")), "")
        if os.path.basename(topic_dir) == "orders":
            g = os.path.join(dest, ".groups", "billing")
            self.assertEqual(sorted(os.listdir(g)), [".info", "p0", "p1"])
            self.assertEqual(read(os.path.join(g, "p0")), "3\n")

    def test_recursive_tools_finish_and_change_no_group(self):
        before = self.groups_state()
        info_before = read(self.m.path("orders", ".info"))
        out = os.path.join(self.m.base, "out")
        os.mkdir(out)
        orders = self.m.path("orders")
        # grep -r
        found = self.run_tool(["grep", "-r", "record 19", orders]).splitlines()
        self.assertEqual(sorted(found), sorted("%s/p%d:orders p%d record 19" % (orders, p, p)
                                               for p in range(2)))
        self.assertEqual(len(self.run_tool(["grep", "-r", "record 19", self.m.mnt]).splitlines()), 4)
        # cp -r
        self.run_tool(["cp", "-r", orders, os.path.join(out, "cp-topic")])
        self.check_copy(os.path.join(out, "cp-topic"), orders)
        self.run_tool(["cp", "-r", self.m.mnt, os.path.join(out, "cp-all")])
        self.check_copy(os.path.join(out, "cp-all", "logs"), self.m.path("logs"))
        # tar: exit 0 and no "file changed as we read it" or "file shrank"
        for name, what in [("topic.tar", "orders"), ("all.tar", ".")]:
            self.run_tool(["tar", "-cf", os.path.join(out, name), "-C", self.m.mnt, what])
            dest = os.path.join(out, name + ".d")
            os.mkdir(dest)
            self.run_tool(["tar", "-xf", os.path.join(out, name), "-C", dest])
            self.check_copy(os.path.join(dest, "orders"), orders)
        # .metrics and .cluster came out whole: the text ends with its last line.
        for f in [".metrics", ".cluster"]:
            text = read(os.path.join(out, "all.tar.d", f))
            self.assertTrue(text.endswith("\n") and "\0" not in text, f)
        # rsync -a
        self.run_tool(["rsync", "-a", orders + "/", os.path.join(out, "rsync-topic")])
        self.check_copy(os.path.join(out, "rsync-topic"), orders)
        self.run_tool(["rsync", "-a", self.m.mnt + "/", os.path.join(out, "rsync-all")])
        self.check_copy(os.path.join(out, "rsync-all", "orders"), orders)
        # No group moved; the topic is as it was; nothing left open.
        self.assertEqual(self.groups_state(), before)
        self.assertEqual(read(self.m.path("orders", ".info")), info_before)
        for line in read(self.m.path("orders", ".groups", "billing", ".info")).splitlines():
            self.assertTrue(line.endswith(" owner=-"), line)
        # The member files are still there by name, from the committed offsets.
        drained = read(self.m.path("orders", ".groups", "billing", "drain")).splitlines()
        self.assertEqual(sorted(drained), sorted(["orders p0 record %d" % i for i in range(3, 20)] +
                                                 ["orders p1 record %d" % i for i in range(7, 20)]))
        shutil.rmtree(out)

    def test_produce_reads_empty_and_generated_files_read_their_size(self):
        produce = self.m.path("orders", ".produce")
        self.assertEqual(os.stat(produce).st_size, 0)
        self.assertEqual(read(produce), "")
        with open(produce, "r+") as f:  # read-write: writes still produce
            self.assertEqual(f.read(), "")
            f.write("k:v\n")
        self.assertIn("k:v\n", read(self.m.path("orders", "p0")) + read(self.m.path("orders", "p1")))
        def write(path, line):
            with open(path, "a") as f:
                f.write(line)
        billing = self.m.path("orders", ".groups", "billing")
        # Each file, and a change that makes its text longer.
        cases = [
            (self.m.path(".metrics"), lambda: os.mkdir(self.m.path("new1"))),
            (self.m.path(".cluster"), lambda: os.mkdir(self.m.path("new2"))),
            (self.m.path("orders", ".info"),
             lambda: write(self.m.path("orders", ".config"), "partitions=3\n")),
            (self.m.path("orders", ".config"),
             lambda: write(self.m.path("orders", ".config"), "retention.bytes=123456789\n")),
            (os.path.join(billing, "p0"), lambda: write(os.path.join(billing, "p0"), "15\n")),
            (os.path.join(billing, ".info"),
             lambda: write(self.m.path("orders", ".config"), "partitions=4\n")),
        ]
        for path, change in cases:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                change()
                # The open file reads the text its fstat described, and
                # fstat keeps describing it (tar checks both).
                data = f.read()
                self.assertEqual(len(data), size, path)
                self.assertEqual(os.fstat(f.fileno()).st_size, size, path)
                # Read again from the start: the text as it is now.
                f.seek(0)
                again = f.read()
                self.assertGreater(len(again), size, path)
                self.assertEqual(os.fstat(f.fileno()).st_size, len(again), path)


if __name__ == "__main__":
    unittest.main(verbosity=2)
