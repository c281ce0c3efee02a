#!/usr/bin/env python3
"""consumer.py MNT TOPIC GROUP [N] - a consumer group member in Python.

Reads the group's `follow` file as a plain file: each line is one record,
and the read blocks at the end until the next record arrives. Python reads
a block ahead of the line it hands out; the group counts a record consumed
only when the next read starts past it, so a consumer killed halfway
through a block gets that block again from whichever member takes over
(at-least-once). With N, stops after N records; otherwise runs forever."""
import os
import sys


def main():
    if len(sys.argv) < 4:
        sys.exit("usage: consumer.py MNT TOPIC GROUP [N]")
    mnt, topic, group = sys.argv[1:4]
    limit = int(sys.argv[4]) if len(sys.argv) > 4 else None
    gdir = os.path.join(mnt, topic, ".groups", group)
    if not os.path.isdir(gdir):
        os.mkdir(gdir)
    seen = 0
    with open(os.path.join(gdir, "follow"), errors="replace") as records:
        for line in records:
            handle(line)
            seen += 1
            if limit is not None and seen >= limit:
                break


def handle(line):
    sys.stdout.write(line)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
