"""The controller and the session (issue 9, item 2): when the controller dies
another broker takes over within the ZooKeeper session timeout with a
greater controller epoch, and every mount shows it; a broker whose session
expired registers again; a ZooKeeper restart within the session timeout
keeps the sessions, and .cluster stays readable while ZooKeeper is down."""
import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zkharness import ClusterTest, wait_until  # noqa: E402

SESSION_MS = 4000


class ControllerTest(ClusterTest):
    def start_three(self):
        brokers = [self.broker(i, session_ms=SESSION_MS) for i in (1, 2, 3)]
        wait_until(lambda: all(sorted(b.cluster()["brokers"]) == [1, 2, 3] and
                               b.cluster()["controller"]["id"] != "-1" for b in brokers),
                   timeout=20, what="three brokers and a controller on every mount")
        return brokers

    def controller(self, broker):
        c = broker.cluster()["controller"]
        return int(c["id"]), int(c["epoch"])

    def test_controller_killed(self):
        brokers = self.start_three()
        cid, epoch = self.controller(brokers[0])
        self.assertTrue(all(self.controller(b) == (cid, epoch) for b in brokers))
        dead = brokers[cid - 1]
        dead.kill9()
        survivors = [b for b in brokers if b is not dead]

        def took_over():
            views = [s.cluster() for s in survivors]
            ids = {(v["controller"]["id"], v["controller"]["epoch"]) for v in views}
            if len(ids) != 1:
                return False
            new_id, new_epoch = (int(x) for x in ids.pop())
            return (new_id != cid and new_id in (s.broker_id for s in survivors) and
                    new_epoch > epoch and
                    all(sorted(v["brokers"]) == sorted(s.broker_id for s in survivors)
                        for v in views))
        # The dead session expires after SESSION_MS; ZooKeeper checks it on
        # its ticks: the deadline leaves room for a loaded machine.
        wait_until(took_over, timeout=3 * SESSION_MS / 1000 + 10,
                   what="a new controller with a greater epoch on every surviving mount")
        new_id, new_epoch = self.controller(survivors[0])
        self.assertEqual(new_epoch, epoch + 1)
        # The dead broker comes back as a follower of the new controller.
        dead.start()
        wait_until(lambda: all(sorted(b.cluster()["brokers"]) == [1, 2, 3] for b in brokers),
                   timeout=20, what="the restarted broker on every mount")
        # It reads /controller after it registered: wait for that, too.
        wait_until(lambda: self.controller(dead) == (new_id, new_epoch), timeout=20,
                   what="the restarted broker to know the new controller")
        self.assertEqual(self.controller(dead), (new_id, new_epoch))

    def test_session_expiry_registers_again(self):
        brokers = self.start_three()
        cid, epoch = self.controller(brokers[0])
        paused = next(b for b in brokers if b.broker_id != cid)
        others = [b for b in brokers if b is not paused]
        # A stopped daemon answers no heartbeat: ZooKeeper expires its session.
        paused.proc.send_signal(signal.SIGSTOP)
        try:
            wait_until(lambda: all(paused.broker_id not in b.cluster()["brokers"] for b in others),
                       timeout=3 * SESSION_MS / 1000 + 10, what="the paused broker to expire")
        finally:
            paused.proc.send_signal(signal.SIGCONT)
        wait_until(lambda: all(sorted(b.cluster()["brokers"]) == [1, 2, 3] for b in brokers),
                   timeout=20, what="the expired broker registered again")
        wait_until(lambda: paused.cluster()["cluster"]["zookeeper"] == "connected", timeout=20,
                   what="its new session")
        # Its new session reads /controller again just after the brokers.
        wait_until(lambda: self.controller(paused) != (-1, -1), timeout=20,
                   what="the controller read again")
        self.assertEqual(self.controller(paused), (cid, epoch), "the controller stayed")
        self.assertIn("ZooKeeper session expired", paused.log_text())

    def test_zookeeper_restart(self):
        brokers = self.start_three()
        before = self.controller(brokers[0])
        self.zk.stop()
        wait_until(lambda: all(b.cluster()["cluster"]["zookeeper"] == "connecting"
                               for b in brokers), timeout=20,
                   what=".cluster to say ZooKeeper is gone (and stay readable)")
        self.assertEqual(sorted(brokers[0].cluster()["brokers"]), [1, 2, 3], "last known")
        self.zk.start()
        wait_until(lambda: all(b.cluster()["cluster"]["zookeeper"] == "connected"
                               for b in brokers), timeout=30, what="the sessions back")
        wait_until(lambda: all(sorted(b.cluster()["brokers"]) == [1, 2, 3] for b in brokers),
                   timeout=20, what="every broker still registered")
        self.assertTrue(all(self.controller(b) == before for b in brokers))


if __name__ == "__main__":
    unittest.main(verbosity=2)
