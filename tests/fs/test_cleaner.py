"""The cleaner on a real mount under failure and extreme settings (issue 8,
defects 6 and 7): a compaction pass that fails (the daemon out of file
descriptors) leaves nothing behind and the next pass runs normally; configs
at the ends of Kafka's int64 range ("forever") keep everything through many
retention and compaction passes."""
import json
import os
import resource
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import MountTest, info, read, wait_until  # noqa: E402

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


if __name__ == "__main__":
    unittest.main()
