"""Peers prove who they are (issue 9, "How it is built"): every broker
listens on listen= and serves nothing before a peer proved it holds the
cluster secret (cluster.secret.file=, an HMAC challenge-response); without
a secret, loopback only, and the broker says so. Driven by peer_ping, a
client built on the broker's own code (replicate/peer.c).

- the right secret gets an answer, as the broker expected; a wrong secret,
  no secret, or the wrong broker id get EACCES / EPROTO, are logged, and
  the broker keeps serving;
- garbage on the port is logged and closed, the broker keeps serving;
- without a secret: loopback peers are served, the start line says
  "insecure loopback mode", and listen= on a non-loopback address is
  refused at start;
- a secret file others can read, or too short, is refused at start with
  one line and exit status 1.
"""
import os
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zkharness import Broker, ClusterTest, free_port, wait_until  # noqa: E402

PEER_PING = os.environ.get("PEER_PING") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "tests", "cluster",
    "peer_ping")


def ping(addr, secret, my_id=9, expect=-1):
    p = subprocess.run([PEER_PING, addr, secret or "-", str(my_id), str(expect)],
                       capture_output=True, text=True, timeout=60)
    return p.stdout.strip()


class PeersTest(ClusterTest):
    def secret_file(self, text, mode=0o600):
        d = tempfile.mkdtemp(prefix="topicfs-secret-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", d]))
        path = os.path.join(d, "secret")
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def test_only_peers_with_the_secret_are_served(self):
        good = self.secret_file("correct horse battery staple\n")
        bad = self.secret_file("another cluster's secret value\n")
        b = self.broker(1, extra_opts="cluster.secret.file=" + good)
        wait_until(lambda: "inter-broker server on" in b.log_text(), what="the server line")
        self.assertIn("peers authenticated with cluster.secret.file", b.log_text())
        self.assertEqual(ping(b.listen, good, expect=1), "ok")
        self.assertEqual(ping(b.listen, bad), "EACCES")
        self.assertEqual(ping(b.listen, None), "EACCES")
        self.assertEqual(ping(b.listen, good, expect=2), "EPROTO")
        # Not a frame at all: closed, logged.
        with socket.create_connection(tuple(b.listen.rsplit(":", 1))) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: curl\r\n\r\n" * 2)
            s.settimeout(10)
            try:
                while s.recv(4096):
                    pass
            except ConnectionResetError:
                pass
        wait_until(lambda: b.log_text().count("refused a peer at") >= 3,
                   what="the refused peers logged")
        self.assertEqual(ping(b.listen, good, expect=1), "ok")
        self.assertTrue(b.alive())
        self.assertEqual(b.stop(), 0)

    def test_without_a_secret_loopback_only(self):
        b = self.broker(1)
        wait_until(lambda: "inter-broker server on" in b.log_text(), what="the server line")
        self.assertIn("insecure loopback mode", b.log_text())
        self.assertEqual(ping(b.listen, None, expect=1), "ok")
        self.assertEqual(ping(b.listen, self.secret_file("a secret of some length\n")), "EACCES")
        self.assertEqual(b.stop(), 0)
        # Reachable from other machines, but nothing to authenticate them with.
        open_addr = Broker(self.zk, 2, listen="0.0.0.0:%d" % free_port())
        self.addCleanup(open_addr.cleanup)
        code, err = open_addr.refused()
        self.assertEqual(code, 1)
        self.assertIn("not a loopback address", err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)

    def test_bad_secret_files_refused_at_start(self):
        for text, mode, why in [("readable by everyone here\n", 0o644, "chmod 600"),
                                ("short\n", 0o600, "16 to 4096 bytes")]:
            b = Broker(self.zk, 1, extra_opts="cluster.secret.file=" + self.secret_file(text, mode))
            self.addCleanup(b.cleanup)
            code, err = b.refused()
            self.assertEqual(code, 1, err)
            self.assertIn(why, err)
            self.assertEqual(len(err.strip().splitlines()), 1, err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
