"""The cleaner on a real mount under failure and extreme settings (issue 8,
defects 6 and 7): a compaction pass that fails (the daemon out of file
descriptors) leaves nothing behind and the next pass runs normally; configs
at the ends of Kafka's int64 range ("forever") keep everything through many
retention and compaction passes."""
import json
import os
import resource
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Mount, MountTest, failsys_env, info, read, wait_until  # noqa: E402

INT64_MAX = 9223372036854775807


def set_config(m, topic, **kv):
    with open(m.path(topic, ".config"), "a") as f:
        for k, v in kv.items():
            f.write("%s=%s\n" % (k.replace("_", "."), v))


def daemon_log(m):
    with open(os.path.join(m.base, "daemon.log"), "rb") as f:
        return f.read().decode(errors="replace")


def records(m, topic, name="p0.jsonl"):
    with open(m.path(topic, name)) as f:
        return [json.loads(line) for line in f]


class FailedPassTest(MountTest):
    OPTS = "partitions=1,retention.check.interval.ms=50"

    def test_pass_out_of_fds_then_next_pass(self):
        # A pass that runs out of descriptors midway (the way issue 8 saw
        # it) removes its cleaning/, a pass still short of them fails with
        # that errno (not "File exists"), and once descriptors are back the
        # next pass cleans the log.
        os.mkdir(self.m.path("t"))
        set_config(self.m, "t", key_separator=":", segment_bytes=2000, cleanup_policy="compact",
                   min_cleanable_dirty_ratio="0.01", delete_retention_ms=3000)
        lines = []
        for i in range(100):
            lines.append("gone:%d\n" % i)
            lines.append("stay:%d\n" % i)
        lines.append("gone:\n")  # tombstone: its expiry makes the failing pass
        for i in range(60):  # push it out of the active segment
            lines.append("filler%d:%d\n" % (i, i))
        fd = os.open(self.m.path("t", "p0"), os.O_WRONLY | os.O_APPEND)
        for line in lines:  # one batch each, so that segments roll
            os.write(fd, line.encode())
        os.close(fd)
        cleaning = os.path.join(self.m.data, "topics", "t", "0", "cleaning")
        wait_until(lambda: "gone:\n" in [r["value"] for r in records(self.m, "t")] and
                   "stay:98\n" not in [r["value"] for r in records(self.m, "t")],
                   timeout=20, what="a first pass keeping the tombstone")
        before = records(self.m, "t")
        # From now on the daemon can open nothing: its lowest free descriptor
        # becomes its limit.
        pid = self.m.proc.pid
        used = {int(n) for n in os.listdir("/proc/%d/fd" % pid)}
        lowest = min(set(range(len(used) + 1)) - used)
        old = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        log_at = len(daemon_log(self.m))
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (lowest, old[1]))
        try:
            wait_until(lambda: daemon_log(self.m)[log_at:].count("compaction failed") >= 3,
                       timeout=20, what="failing passes once the tombstone is due")
            failures = daemon_log(self.m)[log_at:]
            self.assertNotIn("File exists", failures)
            self.assertIn("Too many open files", failures)
            self.assertFalse(os.path.exists(cleaning), failures)
        finally:
            resource.prlimit(pid, resource.RLIMIT_NOFILE, old)
        self.assertAlive()
        # The next pass runs normally: the tombstone goes with its key.
        wait_until(lambda: not any(r["key"] == "gone" for r in records(self.m, "t")),
                   timeout=20, what="a pass once descriptors are back")
        after = records(self.m, "t")
        self.assertEqual(after, [r for r in before if r["key"] != "gone"])
        self.assertFalse(os.path.exists(cleaning))
        self.assertEqual(read(self.m.path("t", "p0")), "".join(r["value"] for r in after))
        self.m.restart()
        self.assertEqual(records(self.m, "t"), after)


class ForeverConfigTest(MountTest):
    OPTS = "partitions=1,retention.check.interval.ms=50"

    def test_int64_max_keeps_everything(self):
        # Long.MAX_VALUE, Kafka's "forever", for every time and size: the
        # config takes it, and passes of retention and compaction delete
        # nothing they should keep (the tombstone included), nor overflow.
        os.mkdir(self.m.path("t"))
        forever = dict(retention_ms=INT64_MAX, retention_bytes=INT64_MAX, segment_ms=INT64_MAX,
                       delete_retention_ms=INT64_MAX, file_delete_delay_ms=INT64_MAX,
                       flush_ms=INT64_MAX)
        set_config(self.m, "t", key_separator=":", segment_bytes=200,
                   cleanup_policy="compact,delete", min_cleanable_dirty_ratio="0.01", **forever)
        config = read(self.m.path("t", ".config"))
        for k, v in forever.items():
            self.assertIn("%s=%d\n" % (k.replace("_", "."), v), config)
        # A jsonl read past the start on a fresh handle, with nothing
        # rendered yet (UBSan: memmove with NULL before the fix).
        fd = os.open(self.m.path("t", "p0.jsonl"), os.O_RDONLY)
        self.assertEqual(os.pread(fd, 100, 50), b"")
        os.close(fd)
        p0 = self.m.path("t", "p0")
        lines = []

        def append(new):
            fd = os.open(p0, os.O_WRONLY | os.O_APPEND)
            for line in new:  # one batch each, so that segments roll
                os.write(fd, line.encode())
            os.close(fd)
            lines.extend(new)

        append(["keep%d:%d\n" % (i, i) for i in range(20)] + ["dead:x\n", "dead:\n"])
        old_reader = open(p0)  # its layout must stay readable: delay is forever
        for rnd in range(3):
            log_at = daemon_log(self.m).count("compacted")
            append(["churn:%d.%d\n" % (rnd, i) for i in range(30)])
            wait_until(lambda: daemon_log(self.m).count("compacted") > log_at, timeout=20,
                       what="compaction pass %d" % rnd)
            self.assertAlive()
            recs = records(self.m, "t")
            values = [r["value"] for r in recs]
            for i in range(20):
                self.assertIn("keep%d:%d\n" % (i, i), values)
            self.assertIn("dead:\n", values)  # the tombstone stays
            self.assertNotIn("dead:x\n", values)
            self.assertEqual(len([v for v in values if v.startswith("churn:")]) > 0, True)
            self.assertEqual(info(self.m, "t")["p0"]["start_offset"], 0)
            self.assertEqual(info(self.m, "t")["p0"]["end_offset"], len(lines))
            for r in recs:
                self.assertEqual(r["value"], lines[r["offset"]])
        first = "".join(lines[:22])
        self.assertEqual(old_reader.read(len(first)), first)
        old_reader.close()
        self.m.restart()
        values = [r["value"] for r in records(self.m, "t")]
        self.assertIn("dead:\n", values)
        self.assertEqual(info(self.m, "t")["p0"]["start_offset"], 0)


class FailedMoveTest(unittest.TestCase):
    """Moves into place failing after the commit point (the fault shim fails
    every rename in cleaning/ after the first, COMMIT's): the manifest stays
    and readers keep the old layout, each later pass retries, a crash then
    is rolled forward at mount, and once renames work again the next pass
    finishes the move."""

    def test_moves_fail_after_commit_then_finish(self):
        base = tempfile.mkdtemp(prefix="topicfs-compaction-")
        arm = os.path.join(base, "ARM")
        env = failsys_env("rename", nth=2, count=0, errno="EIO", path="cleaning", arm=arm)
        m = Mount(base=base, opts="partitions=1,retention.check.interval.ms=50", env=env).start()
        self.addCleanup(m.cleanup)
        os.mkdir(m.path("t"))
        set_config(m, "t", key_separator=":", segment_bytes=300, cleanup_policy="delete",
                   retention_ms=-1, min_cleanable_dirty_ratio="0.01")
        lines = ["k%d:v%d\n" % (i % 7, i) for i in range(300)]
        p0 = m.path("t", "p0")
        fd = os.open(p0, os.O_WRONLY | os.O_APPEND)
        for line in lines:  # one batch each, so that segments roll
            os.write(fd, line.encode())
        os.close(fd)
        # One pass over all of it, its moves failing.
        open(arm, "w").close()
        set_config(m, "t", cleanup_policy="compact")
        commit = os.path.join(m.data, "topics", "t", "0", "cleaning", "COMMIT")
        wait_until(lambda: daemon_log(m).count("compaction failed") >= 3, timeout=20,
                   what="passes failing after their commit")
        # The manifest waits to be finished; readers still get every record.
        self.assertTrue(os.path.exists(commit), daemon_log(m))
        self.assertNotIn("File exists", daemon_log(m))
        self.assertEqual(read(p0), "".join(lines))
        # A crash now: the mount rolls the manifest forward.
        m.kill9()
        os.unlink(arm)
        m.start()
        self.assertIn("finishing an interrupted compaction", daemon_log(m))
        self.assertFalse(os.path.exists(commit))
        self.check_compacted(m, lines)
        # The same with the daemon alive: renames work again, the next pass
        # finishes and cleans up.
        open(arm, "w").close()  # the shim counts on: every rename fails
        fd = os.open(p0, os.O_WRONLY | os.O_APPEND)
        more = ["k%d:w%d\n" % (i % 7, i) for i in range(300, 400)]
        for line in more:
            os.write(fd, line.encode())
        os.close(fd)
        lines += more
        at = len(daemon_log(m))
        wait_until(lambda: "compaction" in daemon_log(m)[at:] and "failed" in daemon_log(m)[at:],
                   timeout=20, what="a failing pass")
        os.unlink(arm)
        wait_until(lambda: not os.path.exists(os.path.dirname(commit)) and
                   len(records(m, "t")) < 100, timeout=20, what="the next pass finishing")
        self.check_compacted(m, lines)
        m.restart()
        self.check_compacted(m, lines)

    def check_compacted(self, m, lines):
        recs = records(m, "t")
        offs = [r["offset"] for r in recs]
        self.assertEqual(offs, sorted(set(offs)))
        self.assertLess(len(recs), len(lines) // 2)
        for r in recs:
            self.assertEqual(r["value"], lines[r["offset"]])
        latest = {}
        for off, line in enumerate(lines):
            latest[line.split(":")[0]] = off
        for key, off in latest.items():
            self.assertIn(off, offs, key)
        self.assertEqual(read(m.path("t", "p0")), "".join(r["value"] for r in recs))


if __name__ == "__main__":
    unittest.main()
