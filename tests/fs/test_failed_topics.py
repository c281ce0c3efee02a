"""Topics that cannot be opened (issue 8, defect 4): a data dir holding good
topics next to broken ones (no config, a garbled or binary config, a config
that is a directory, a partition that is a file, a partition the config
names but that is missing, a topic that is a plain file) mounts; the good
topics serve, each broken one is logged and shown as failed in .cluster and
.metrics, its name stays taken (mkdir: EEXIST; rmdir: ENOENT, it is not in
the mount) and its files are left as they were. Once repaired it serves
again after a remount."""
import errno
import hashlib
import os
import re
import shutil
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Mount, read, sh  # noqa: E402


def tree_digest(path):
    """Every entry under path with its type and its content's hash."""
    out = []
    if os.path.isfile(path):
        return [("", "f", hashlib.sha1(open(path, "rb").read()).hexdigest())]
    for root, dirs, files in os.walk(path):
        rel = os.path.relpath(root, path)
        out.append((rel, "d", ""))
        for f in sorted(files):
            with open(os.path.join(root, f), "rb") as fh:
                out.append((os.path.join(rel, f), "f", hashlib.sha1(fh.read()).hexdigest()))
        dirs.sort()
    return sorted(out)


def visible(path):
    return sorted(n for n in os.listdir(path) if not n.startswith("."))


class FailedTopicsTest(unittest.TestCase):
    def setUp(self):
        self.m = Mount(opts="partitions=2")
        self.addCleanup(self.m.cleanup)
        self.m.start()
        for t in ("alpha", "omega"):
            os.mkdir(self.m.path(t))
            for p in range(2):
                sh("printf '%s %d\\n' >> %s" % (t, p, self.m.path(t, "p%d" % p)))
        os.mkdir(self.m.path("alpha", ".groups", "billing"))
        self.m.stop()
        self.topics = os.path.join(self.m.data, "topics")
        good_config = read(os.path.join(self.topics, "alpha", "config"))

        def topic_dir(name, config=None, parts=()):
            d = os.path.join(self.topics, name)
            os.makedirs(d)
            for p in parts:
                os.makedirs(os.path.join(d, str(p)))
            if config is not None:
                with open(os.path.join(d, "config"), "wb") as f:
                    f.write(config)
            return d

        # Each kind of damage, with the word the .cluster line names.
        self.broken = {}
        topic_dir("zzz", parts=[0])  # mkdir -p DATA/topics/zzz/0
        self.broken["zzz"] = "ENOENT"
        topic_dir("garbled", b"partitions=banana\n", parts=[0])
        self.broken["garbled"] = "EINVAL"
        topic_dir("binary", bytes(range(256)) * 4, parts=[0])
        self.broken["binary"] = "EINVAL"
        topic_dir("noparts", b"retention.ms=1000\n", parts=[0])  # no partitions= line
        self.broken["noparts"] = "EINVAL"
        d = topic_dir("cfgdir", parts=[0])
        os.mkdir(os.path.join(d, "config"))
        self.broken["cfgdir"] = "EISDIR"
        d = topic_dir("partfile", good_config.encode(), parts=[0])
        with open(os.path.join(d, "1"), "w") as f:
            f.write("not a partition\n")
        self.broken["partfile"] = "ENOTDIR"
        topic_dir("partmissing", good_config.encode(), parts=[0])
        self.broken["partmissing"] = "ENOENT"
        with open(os.path.join(self.topics, "plainfile"), "w") as f:
            f.write("x\n")
        self.broken["plainfile"] = "ENOTDIR"
        self.before = {n: tree_digest(os.path.join(self.topics, n)) for n in self.broken}

    def test_good_topics_serve_and_broken_ones_are_shown_failed(self):
        self.m.start()
        self.assertEqual(visible(self.m.mnt), ["alpha", "omega"])
        for t in ("alpha", "omega"):
            for p in range(2):
                self.assertEqual(read(self.m.path(t, "p%d" % p)), "%s %d\n" % (t, p))
        self.assertEqual(os.listdir(self.m.path("alpha", ".groups")), ["billing"])
        # Writes and new topics still work.
        sh("echo more >> " + self.m.path("omega", "p0"))
        self.assertEqual(read(self.m.path("omega", "p0")), "omega 0\nmore\n")
        os.mkdir(self.m.path("fresh"))
        self.assertEqual(visible(self.m.path("fresh")), ["p0", "p1"])

        cluster = read(self.m.path(".cluster"))
        failed = {}
        for line in cluster.splitlines():
            if line.startswith("topic "):
                f = dict(x.split("=", 1) for x in line.split()[1:])
                failed[f["name"]] = f
        self.assertEqual(sorted(failed), sorted(self.broken), cluster)
        for name, err in self.broken.items():
            self.assertEqual(failed[name]["state"], "failed")
            self.assertEqual(failed[name]["error"], err, name)
        # The good topics' partition lines are there as before.
        self.assertIn("partition topic=alpha partition=1 leader=0", cluster)
        self.assertNotIn("topic=zzz", cluster)

        metrics = read(self.m.path(".metrics"))
        for name in self.broken:
            self.assertIn('topicfs_topic_failed{topic="%s"} 1\n' % name, metrics)
        self.assertIn('topicfs_topic_failed{topic="alpha"} 0\n', metrics)
        self.assertIn("topicfs_topics 3\n", metrics)
        self.assertIn("# TYPE topicfs_topic_failed gauge\n", metrics)

        # The names stay taken; rmdir does not reach files the mount does not show.
        for name in self.broken:
            with self.assertRaises(OSError) as cm:
                os.mkdir(self.m.path(name))
            self.assertEqual(cm.exception.errno, errno.EEXIST, name)
            with self.assertRaises(OSError) as cm:
                os.rmdir(self.m.path(name))
            self.assertEqual(cm.exception.errno, errno.ENOENT, name)
        log = self.m.log_text()
        for name in self.broken:
            self.assertRegex(log, r"topic %s.*(cannot|failed)" % re.escape(name))
        self.assertTrue(self.m.alive())
        self.m.stop()
        # Left as they were for the admin.
        for name in self.broken:
            self.assertEqual(tree_digest(os.path.join(self.topics, name)), self.before[name], name)

    def test_repaired_topic_serves_after_remount(self):
        self.m.start()
        self.assertNotIn("zzz", os.listdir(self.m.mnt))
        self.m.stop()
        shutil.copy(os.path.join(self.topics, "alpha", "config"),
                    os.path.join(self.topics, "zzz", "config"))
        os.mkdir(os.path.join(self.topics, "zzz", "1"))
        shutil.rmtree(os.path.join(self.topics, "plainfile"), ignore_errors=True)
        os.unlink(os.path.join(self.topics, "plainfile"))
        self.m.start()
        self.assertEqual(visible(self.m.path("zzz")), ["p0", "p1"])
        sh("echo fixed >> " + self.m.path("zzz", "p1"))
        self.assertEqual(read(self.m.path("zzz", "p1")), "fixed\n")
        cluster = read(self.m.path(".cluster"))
        self.assertNotIn("name=zzz ", cluster)
        self.assertNotIn("name=plainfile ", cluster)
        self.assertIn("partition topic=zzz partition=1", cluster)
        os.mkdir(self.m.path("plainfile"))
        self.assertTrue(self.m.alive())


class FailedOffsetsTopicTest(unittest.TestCase):
    """A damaged __consumer_offsets: the topics serve, groups cannot."""

    def test_topics_serve_without_groups(self):
        m = Mount(opts="partitions=1")
        self.addCleanup(m.cleanup)
        m.start()
        os.mkdir(m.path("alpha"))
        sh("echo one >> " + m.path("alpha", "p0"))
        m.stop()
        with open(os.path.join(m.data, "topics", "__consumer_offsets", "config"), "wb") as f:
            f.write(b"\x00garbage\n")
        m.start()
        self.assertEqual(read(m.path("alpha", "p0")), "one\n")
        sh("echo two >> " + m.path("alpha", "p0"))
        self.assertEqual(read(m.path("alpha", "p0")), "one\ntwo\n")
        with self.assertRaises(OSError) as cm:
            os.mkdir(m.path("alpha", ".groups", "billing"))
        self.assertEqual(cm.exception.errno, errno.EIO)
        self.assertEqual(os.listdir(m.path("alpha", ".groups")), [])
        self.assertIn("topic name=__consumer_offsets state=failed error=EINVAL",
                      read(m.path(".cluster")))
        self.assertIn('topicfs_topic_failed{topic="__consumer_offsets"} 1',
                      read(m.path(".metrics")))
        self.assertRegex(m.log_text(), "__consumer_offsets failed.*no consumer groups")
        self.assertTrue(m.alive())


if __name__ == "__main__":
    unittest.main()
