#!/usr/bin/env python3
"""producer.py MNT TOPIC [N] - a Python program that only knows how to log.

Appends N lines (default 1000) to partition p0 of TOPIC as any program
appends to a log file: open(..., "a"), write, flush. Each line is one
record. os.fsync() at the end returns once every line is on stable storage
(Kafka's acks=all for this handle). Prints the partition's .info line."""
import os
import sys


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: producer.py MNT TOPIC [N]")
    mnt, topic = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    tdir = os.path.join(mnt, topic)
    if not os.path.isdir(tdir):
        os.mkdir(tdir)
    with open(os.path.join(tdir, "p0"), "a") as log:
        for i in range(n):
            log.write("order %d total=%d.%02d\n" % (i, i % 500, i % 100))
        log.flush()
        os.fsync(log.fileno())
    with open(os.path.join(tdir, ".info")) as info:
        print(info.readline(), end="")


if __name__ == "__main__":
    main()
