"""Mounting, topics, control files, the partitioner and the errno table
(issue 2, points 1, 2, 5, 6, 7 and 10) on a real topicfs mount."""
import errno
import os
import signal
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import (Mount, MountTest, TOPICFS, changes_mtime, info, is_mounted, read, sh,  # noqa: E402
                     wait_until)


def kafka_murmur2(data):
    """Kafka's Utils.murmur2, written independently of the C version."""
    m, r, mask = 0x5BD1E995, 24, 0xFFFFFFFF
    h = (0x9747B28C ^ len(data)) & mask
    n4 = len(data) // 4
    for i in range(n4):
        k = int.from_bytes(data[4 * i:4 * i + 4], "little")
        k = (k * m) & mask
        k ^= k >> r
        k = (k * m) & mask
        h = (h * m) & mask
        h ^= k
    rest = len(data) % 4
    base = len(data) & ~3
    if rest == 3:
        h ^= data[base + 2] << 16
    if rest >= 2:
        h ^= data[base + 1] << 8
    if rest >= 1:
        h ^= data[base]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h


class MountCommandTest(unittest.TestCase):
    def test_mount_unmount_remount_keeps_everything(self):
        m = Mount(opts="partitions=2").start()
        self.addCleanup(m.cleanup)
        os.mkdir(m.path("orders"))
        os.mkdir(m.path("audit"))
        sh("echo one >> %s; echo two >> %s" % (m.path("orders", "p1"), m.path("audit", "p0")))
        self.assertEqual(m.stop(), 0)
        self.assertFalse(is_mounted(m.mnt))
        m.start()
        self.assertEqual(sorted(os.listdir(m.mnt)), [".cluster", ".metrics", "audit", "orders"])
        self.assertEqual(read(m.path("orders", "p1")), "one\n")
        self.assertEqual(read(m.path("audit", "p0")), "two\n")
        # The start line counts the user's topics, not __consumer_offsets.
        self.assertIn("(0 topics)", m.log_text())
        self.assertIn("(2 topics)", m.log_text())
        self.assertIn("created topic orders with 2 partitions", m.log_text())

    def test_fuse_options_pass_through(self):
        m = Mount(opts="partitions=1,fsname=topicfs-test-fsname").start()
        self.addCleanup(m.cleanup)
        with open("/proc/self/mounts") as f:
            self.assertIn("topicfs-test-fsname " + os.path.realpath(m.mnt), f.read())

    def test_relative_paths(self):
        m = Mount()
        self.addCleanup(m.cleanup)
        m.proc = subprocess.Popen([os.path.abspath(TOPICFS), "data", "mnt", "-f"], cwd=m.base,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: is_mounted(m.mnt) or m.proc.poll() is not None, what="mount")
        os.mkdir(m.path("orders"))
        sh("echo one >> " + m.path("orders", "p0"))
        self.assertEqual(read(m.path("orders", "p0")), "one\n")
        self.assertTrue(os.path.isdir(os.path.join(m.base, "data", "topics", "orders")))

    def run_refused(self, data, mnt):
        r = subprocess.run([TOPICFS, data, mnt, "-f"], capture_output=True, text=True, timeout=20)
        self.assertNotEqual(r.returncode, 0)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertFalse(is_mounted(mnt))
        return lines[0]

    def test_bad_data_dir_is_refused(self):
        base = tempfile.mkdtemp(prefix="topicfs-test-")
        self.addCleanup(sh, "rm -rf " + base)
        os.mkdir(os.path.join(base, "mnt"))
        open(os.path.join(base, "file"), "w").close()
        msg = self.run_refused(os.path.join(base, "file", "data"), os.path.join(base, "mnt"))
        self.assertIn("data dir", msg)

    def test_missing_mountpoint_is_refused(self):
        base = tempfile.mkdtemp(prefix="topicfs-test-")
        self.addCleanup(sh, "rm -rf " + base)
        msg = self.run_refused(os.path.join(base, "data"), os.path.join(base, "nope"))
        self.assertIn("mount point", msg.replace("mountpoint", "mount point"))

    def test_mount_right_after_unmount(self):
        # fusermount3 -u returns before the daemon has synced and let go of
        # the data dir: a mount right after it waits for that, not refuses.
        m = Mount().start()
        self.addCleanup(m.cleanup)
        os.mkdir(m.path("t"))
        for i in range(5):
            sh("echo r%d >> %s" % (i, m.path("t", "p0")))
            old = m.proc
            sh("fusermount3 -u " + m.mnt)
            m.start()
            old.wait(timeout=15)
            self.assertEqual(old.returncode, 0)
            self.assertEqual(read(m.path("t", "p0")), "".join("r%d\n" % k for k in range(i + 1)))

    def test_sigterm_and_sigint_stop_cleanly(self):
        # A service manager stops a daemon with SIGTERM: it flushes,
        # unmounts and exits 0 (a failure status would be recorded).
        for sig in (signal.SIGTERM, signal.SIGINT):
            m = Mount().start()
            self.addCleanup(m.cleanup)
            os.mkdir(m.path("t"))
            sh("echo kept >> " + m.path("t", "p0"))
            m.proc.send_signal(sig)
            self.assertEqual(m.proc.wait(timeout=15), 0, "exit status after %s" % sig.name)
            wait_until(lambda: not is_mounted(m.mnt), timeout=15, what="unmounted")
            m.restart()
            self.assertEqual(read(m.path("t", "p0")), "kept\n")

    def test_data_dir_in_use_is_refused(self):
        m = Mount().start()
        self.addCleanup(m.cleanup)
        other = tempfile.mkdtemp(prefix="topicfs-test-")
        self.addCleanup(sh, "rm -rf " + other)
        msg = self.run_refused(m.data, other)
        self.assertIn("in use", msg)


class TopicTest(MountTest):
    def test_mkdir_ls_rmdir(self):
        os.mkdir(self.m.path("orders"))
        self.assertEqual(sh("ls " + self.m.path("orders")).stdout.split(), ["p0", "p1", "p2"])
        self.assertEqual(sh("ls -a " + self.m.path("orders")).stdout.split(),
                         [".", "..", ".config", ".groups", ".info", ".produce", "p0", "p1", "p2"])
        sh("echo hello >> " + self.m.path("orders", "p0"))
        topic_dir = os.path.join(self.m.data, "topics", "orders")
        self.assertTrue(os.path.isdir(topic_dir))
        os.rmdir(self.m.path("orders"))
        self.assertFalse(os.path.exists(self.m.path("orders")))
        self.assertFalse(os.path.exists(topic_dir))
        os.mkdir(self.m.path("orders"))
        self.assertEqual(read(self.m.path("orders", "p0")), "")

    def test_directory_mtimes_follow_their_entries(self):
        changes_mtime(self, self.m.mnt, lambda: os.mkdir(self.m.path("orders")))
        changes_mtime(self, self.m.mnt, lambda: os.mkdir(self.m.path("other")))
        changes_mtime(self, self.m.mnt, lambda: os.rmdir(self.m.path("other")))
        topic = self.m.path("orders")
        changes_mtime(self, topic, lambda: sh("echo partitions=4 >> " + self.m.path("orders", ".config")))
        # The root's time is the data dir's: it survives a remount.
        before = os.stat(self.m.mnt).st_mtime_ns
        self.m.restart()
        self.assertEqual(os.stat(self.m.mnt).st_mtime_ns, before)

    def test_bad_names_and_existing_topic(self):
        for name in ["bad name", "a/b" if False else "sp ace", "x" * 250, "ü", "a:b", "a*b"]:
            self.assertErrno(errno.EINVAL, os.mkdir, self.m.path(name))
        for name in ["ok.name", "ok_name", "ok-name", "A1", "x" * 249]:
            os.mkdir(self.m.path(name))
        self.assertErrno(errno.EEXIST, os.mkdir, self.m.path("ok.name"))
        r = sh("mkdir " + self.m.path("bad%name"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Invalid argument", r.stderr)
        self.assertAlive()

    def test_rmdir_missing_topic(self):
        self.assertErrno(errno.ENOENT, os.rmdir, self.m.path("ghost"))


class ConfigTest(MountTest):
    def setUp(self):
        super().setUp()
        os.mkdir(self.m.path("orders"))
        self.cfg = self.m.path("orders", ".config")

    def config(self):
        with open(self.cfg) as f:
            return dict(l.rstrip("\n").split("=", 1) for l in f if l.strip())

    def test_defaults_are_kafkas(self):
        c = self.config()
        expected = {
            "partitions": "3", "retention.ms": "604800000", "retention.bytes": "-1",
            "segment.bytes": "1073741824", "segment.ms": "604800000", "cleanup.policy": "delete",
            "min.cleanable.dirty.ratio": "0.5", "delete.retention.ms": "86400000",
            "file.delete.delay.ms": "60000",
            "compression.type": "none", "max.message.bytes": "1048588", "framing": "line",
            "key.separator": "", "min.insync.replicas": "1", "replication.factor": "1",
            "auto.offset.reset": "earliest", "acks": "",  # the default: all with replicas, else 1
        }
        for k, v in expected.items():
            self.assertEqual(c.get(k), v, k)
        self.assertIn("flush.ms", c)

    def test_append_changes_and_persists(self):
        r = sh("echo retention.ms=5000 >> " + self.cfg)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = sh("echo 'segment.bytes=1048576' > " + self.cfg)  # '>' must not wipe the rest
        self.assertEqual(r.returncode, 0, r.stderr)
        c = self.config()
        self.assertEqual(c["retention.ms"], "5000")
        self.assertEqual(c["segment.bytes"], "1048576")
        self.assertEqual(c["partitions"], "3")
        self.m.restart()
        c = self.config()
        self.assertEqual(c["retention.ms"], "5000")
        self.assertEqual(c["segment.bytes"], "1048576")

    def test_partitions_grow_never_shrink(self):
        sh("echo partitions=5 >> " + self.cfg)
        self.assertEqual(sh("ls " + self.m.path("orders")).stdout.split(),
                         ["p0", "p1", "p2", "p3", "p4"])
        sh("echo new >> " + self.m.path("orders", "p4"))
        self.assertEqual(read(self.m.path("orders", "p4")), "new\n")
        r = sh("echo partitions=2 >> " + self.cfg)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Invalid argument", r.stderr)
        self.assertEqual(self.config()["partitions"], "5")
        self.m.restart()
        self.assertEqual(len(info(self.m, "orders")), 5)

    def test_bad_lines_change_nothing(self):
        before = read(self.cfg)
        for line in ["no.such.key=1", "retention.ms=abc", "cleanup.policy=sometimes",
                     "compression.type=zstd", "partitions=0", "garbage", "framing=lines"]:
            r = sh("printf '%%s\\n' '%s' >> %s" % (line, self.cfg))
            self.assertNotEqual(r.returncode, 0, line)
            self.assertIn("Invalid argument", r.stderr, line)
        # Lines of one write are all applied or none is.
        fd = os.open(self.cfg, os.O_WRONLY | os.O_APPEND)
        try:
            self.assertErrno(errno.EINVAL, os.write, fd, b"retention.ms=5000\nbogus=1\n")
        finally:
            os.close(fd)
        self.assertEqual(read(self.cfg), before)
        self.assertAlive()

    def test_partial_line_applied_at_close(self):
        with open(self.cfg, "a") as f:
            f.write("retention")
            f.flush()
            f.write(".ms=777")
        self.assertEqual(self.config()["retention.ms"], "777")


class InfoTest(MountTest):
    def test_one_line_per_partition(self):
        os.mkdir(self.m.path("orders"))
        sh("printf 'a\\nbb\\n' >> %s; echo ccc >> %s" % (self.m.path("orders", "p0"),
                                                        self.m.path("orders", "p2")))
        i = info(self.m, "orders")
        self.assertEqual(sorted(i), ["p0", "p1", "p2"])
        self.assertEqual((i["p0"]["start_offset"], i["p0"]["end_offset"], i["p0"]["bytes"]),
                         (0, 2, 5))
        self.assertEqual((i["p1"]["end_offset"], i["p1"]["bytes"]), (0, 0))
        self.assertEqual((i["p2"]["end_offset"], i["p2"]["bytes"]), (1, 4))
        for p in i.values():
            self.assertEqual(p["segments"], 1)
            self.assertIn("stored_bytes", p)


def parse_metrics(text):
    """Prometheus text format: {(name, labels): value}; checks that every
    sample follows its family's # HELP and # TYPE lines, each family once."""
    samples, families, current = {}, [], None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            current = line.split()[2]
            assert current not in families, "family %s twice" % current
            families.append(current)
        elif line.startswith("# TYPE "):
            assert line.split()[2] == current and line.split()[3] in ("gauge", "counter"), line
        else:
            name, value = line.rsplit(" ", 1)
            metric = name.split("{")[0]
            assert metric == current, "%s outside its family" % line
            labels = tuple(sorted(kv.split("=") for kv in name[len(metric) + 1:-1].split(",")
                                  if kv)) if "{" in name else ()
            samples[(metric, tuple((k, v.strip('"')) for k, v in labels))] = int(value)
    return samples


class StatusFilesTest(MountTest):
    OPTS = "partitions=2"

    def test_cluster_and_metrics(self):
        self.assertEqual(sh("ls -a " + self.m.mnt).stdout.split(), [".", "..", ".cluster", ".metrics"])
        self.assertEqual(sh("ls " + self.m.mnt).stdout.split(), [])
        os.mkdir(self.m.path("orders"))
        for i in range(5):
            sh("echo 'order %d' >> %s" % (i, self.m.path("orders", "p1")))
        lines = read(self.m.path(".cluster")).splitlines()
        self.assertEqual(lines[:3], ["broker id=0 self=1", "controller id=0", "coordinator id=0"])
        self.assertEqual(lines[3:], ["partition topic=orders partition=%d leader=0 replicas=0 isr=0 "
                                     "leader_epoch=0" % p for p in range(2)])
        os.mkdir(self.m.path("orders", ".groups", "billing"))
        self.assertEqual(len(read(self.m.path("orders", ".groups", "billing", "drain"))), 40)
        self.assertEqual(read(self.m.path("orders", "p1")), "".join("order %d\n" % i for i in range(5)))
        sh("echo late >> " + self.m.path("orders", "p1"))
        m = parse_metrics(read(self.m.path(".metrics")))

        def part(name, p):
            return m[(name, (("partition", str(p)), ("topic", "orders")))]

        def grp(name, p):
            return m[(name, (("group", "billing"), ("partition", str(p)), ("topic", "orders")))]
        self.assertEqual(m[("topicfs_topics", ())], 1)
        inf = info(self.m, "orders")
        for p in range(2):
            self.assertEqual(part("topicfs_partition_end_offset", p), inf["p%d" % p]["end_offset"])
            self.assertEqual(part("topicfs_partition_bytes", p), inf["p%d" % p]["bytes"])
            self.assertEqual(part("topicfs_partition_stored_bytes", p), inf["p%d" % p]["stored_bytes"])
            self.assertEqual(part("topicfs_partition_segments", p), 1)
        self.assertEqual(part("topicfs_partition_records_in_total", 1), 6)
        self.assertEqual(part("topicfs_partition_bytes_in_total", 1), 45)
        self.assertEqual(part("topicfs_partition_bytes_out_total", 1), 80)  # drain + cat
        self.assertEqual(part("topicfs_partition_records_in_total", 0), 0)
        self.assertEqual(grp("topicfs_group_committed_offset", 1), 5)
        self.assertEqual(grp("topicfs_group_lag", 1), 1)
        self.assertEqual(grp("topicfs_group_lag", 0), 0)
        # The internal topic stays out; the files are read-only and stay.
        self.assertNotIn("__consumer_offsets", read(self.m.path(".metrics")))
        self.assertEqual(os.stat(self.m.path(".metrics")).st_size, len(read(self.m.path(".metrics"))))
        for name in (".cluster", ".metrics"):
            self.assertErrno(errno.EACCES, open, self.m.path(name), "a")
            self.assertErrno(errno.EPERM, os.unlink, self.m.path(name))
            self.assertErrno(errno.EEXIST, os.mkdir, self.m.path(name))
        self.assertAlive()


class ProduceTest(MountTest):
    OPTS = "partitions=4"

    def setUp(self):
        super().setUp()
        os.mkdir(self.m.path("orders"))
        self.produce = self.m.path("orders", ".produce")

    def test_keyed_lines_follow_kafkas_partitioner(self):
        sh("echo key.separator=: >> " + self.m.path("orders", ".config"))
        keys = ["user42", "21", "foobar", "a-little-bit-long-string", "k", "", "abc", "zz9"]
        keys += ["user%d" % i for i in range(200)]
        with open(self.produce, "a") as f:
            for i, k in enumerate(keys):
                f.write("%s:hello %d\n" % (k, i))
        expected = {p: [] for p in range(4)}
        for i, k in enumerate(keys):
            part = (kafka_murmur2(k.encode()) & 0x7FFFFFFF) % 4
            expected[part].append("%s:hello %d\n" % (k, i))
        for p in range(4):
            self.assertEqual(read(self.m.path("orders", "p%d" % p)), "".join(expected[p]))
        # Known answer from Kafka's UtilsTest: murmur2("21") = -973932308.
        self.assertEqual(kafka_murmur2(b"21") - (1 << 32), -973932308)

    def test_keyless_lines_spread_over_partitions(self):
        for i in range(64):
            sh("echo line%d >> %s" % (i, self.produce))
        counts = [info(self.m, "orders")["p%d" % p]["end_offset"] for p in range(4)]
        self.assertEqual(sum(counts), 64)
        self.assertTrue(all(c > 0 for c in counts), counts)

    def test_produce_reads_empty(self):
        # Tools that walk a topic (cp -r, tar, grep -r) read it too.
        self.assertEqual(read(self.produce), "")
        self.assertEqual(os.stat(self.produce).st_size, 0)


class ErrorTest(MountTest):
    def setUp(self):
        super().setUp()
        os.mkdir(self.m.path("orders"))
        self.p0 = self.m.path("orders", "p0")
        sh("printf 'one\\ntwo\\n' >> " + self.p0)

    def assertUnchanged(self):
        self.assertEqual(read(self.p0), "one\ntwo\n")
        self.assertEqual(info(self.m, "orders")["p0"]["end_offset"], 2)
        self.assertAlive()

    def test_errno_table(self):
        cases = [
            ("echo x > P0", "Operation not permitted"),
            ("truncate -s 0 P0", "Operation not permitted"),
            ("truncate -s 100 P0", "Operation not permitted"),
            ("rm P0", "Operation not permitted"),
            ("mv P0 D/p9", "Operation not permitted"),
            ("ln P0 D/link", "Operation not permitted"),
            ("ln -s P0 D/link", "Operation not permitted"),
            ("chmod 600 P0", "Operation not permitted"),
            ("touch D/foo", "Operation not permitted"),
            ("mkdir 'MNT/bad name'", "Invalid argument"),
            ("mkdir MNT/orders", "File exists"),
        ]
        for cmd, msg in cases:
            cmd = cmd.replace("P0", self.p0).replace("D/", self.m.path("orders") + "/")
            cmd = cmd.replace("MNT", self.m.mnt)
            r = sh(cmd)
            self.assertNotEqual(r.returncode, 0, cmd)
            self.assertIn(msg, r.stderr, cmd)
            self.assertUnchanged()
        self.assertFalse(os.path.exists(self.m.path("orders", "foo")))

    def test_write_not_at_end_is_espipe(self):
        fd = os.open(self.p0, os.O_WRONLY)
        try:
            self.assertErrno(errno.ESPIPE, os.pwrite, fd, b"x\n", 0)
            self.assertErrno(errno.ESPIPE, os.pwrite, fd, b"x\n", 100)
            os.lseek(fd, 0, os.SEEK_END)
            self.assertEqual(os.write(fd, b"three\n"), 6)  # at the end: appends
        finally:
            os.close(fd)
        self.assertEqual(read(self.p0), "one\ntwo\nthree\n")

    def test_o_trunc_on_empty_partition_appends(self):
        p1 = self.m.path("orders", "p1")
        r = sh("echo first > " + p1)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(read(p1), "first\n")
        self.assertNotEqual(sh("echo second > " + p1).returncode, 0)

    def test_record_over_max_message_bytes(self):
        sh("echo max.message.bytes=100 >> " + self.m.path("orders", ".config"))
        fd = os.open(self.p0, os.O_WRONLY | os.O_APPEND)
        try:
            self.assertErrno(errno.EMSGSIZE, os.write, fd, b"y" * 200 + b"\n")
            # A batch with one oversize line among good ones stores none of them.
            self.assertErrno(errno.EMSGSIZE, os.write, fd, b"ok\n" + b"z" * 150 + b"\nok\n")
            # A partial line that grows past the limit is refused whole: the
            # part held from before too, and the rest of it up to its end.
            os.write(fd, b"p" * 60)
            self.assertErrno(errno.EMSGSIZE, os.write, fd, b"q" * 60)
            self.assertErrno(errno.EMSGSIZE, os.write, fd, b"rest of it\n")
            os.write(fd, b"next\n")
        finally:
            os.close(fd)
        self.assertEqual(read(self.p0), "one\ntwo\nnext\n")
        r = sh("head -c 300 /dev/zero | tr '\\0' x >> %s; echo >> %s" % (self.p0, self.p0))
        self.assertIn("Message too long", r.stderr)
        self.assertAlive()

    def test_line_over_default_limit_leaves_nothing(self):
        # Over 1 MiB: the kernel cuts one write() into several requests, and
        # cat writes 128 KiB at a time; no piece of the line may be stored.
        big = os.path.join(self.m.base, "long.txt")
        with open(big, "wb") as f:
            f.write(b"c" * 2000000 + b"\n")
        r = sh("cat %s >> %s" % (big, self.p0))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Message too long", r.stderr)
        fd = os.open(self.p0, os.O_WRONLY | os.O_APPEND)
        try:
            line = b"a" * 1048588 + b"\n"
            try:
                n = os.write(fd, line)  # a short count: the first request went through
                self.assertLess(n, len(line))
                self.assertErrno(errno.EMSGSIZE, os.write, fd, line[n:])
            except OSError as e:
                self.assertEqual(e.errno, errno.EMSGSIZE)
            os.write(fd, b"three\n")
        finally:
            os.close(fd)
        self.assertEqual(read(self.p0), "one\ntwo\nthree\n")
        self.assertEqual(info(self.m, "orders")["p0"]["end_offset"], 3)
        self.assertAlive()

    def test_info_and_produce_modes(self):
        self.assertErrno(errno.EACCES, open, self.m.path("orders", ".info"), "a")
        self.assertErrno(errno.EPERM, os.unlink, self.m.path("orders", ".config"))
        self.assertErrno(errno.ENOENT, open, self.m.path("orders", "p3"))
        self.assertErrno(errno.ENOENT, open, self.m.path("orders", "p01"))
        self.assertUnchanged()


if __name__ == "__main__":
    unittest.main(verbosity=2)
