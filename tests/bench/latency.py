"""latency.py - append-to-reader delay, in milliseconds.

usage: latency.py tail FILE N      a `tail -f FILE` reader
       latency.py follow FILE APPEND_TO N
                                   a reader blocked on a group's follow file,
                                   records appended to APPEND_TO
Prints: median p90 max (ms) over N appends, one at a time."""
import os
import select
import statistics
import subprocess
import sys
import time


def reach_end(reader_out, fd, poll_s, deadline_s=60):
    """Appends marker lines until the reader shows one (it is then at the
    end and following), and reads up to the last marker written."""
    end = time.monotonic() + deadline_s
    k = 0
    while True:
        k += 1
        os.write(fd, b"ready %d\n" % k)
        if select.select([reader_out], [], [], poll_s)[0]:
            break
        if time.monotonic() > end:
            raise SystemExit("the reader never showed an appended line")
    while True:
        line = reader_out.readline()
        if not line:
            raise SystemExit("the reader ended")
        if line == b"ready %d\n" % k:
            return


def measure(reader_out, append_path, n, poll_s):
    lat = []
    fd = os.open(append_path, os.O_WRONLY | os.O_APPEND)
    try:
        reach_end(reader_out, fd, poll_s)
        for i in range(n):
            line = ("lat %d\n" % i).encode()
            t0 = time.perf_counter()
            os.write(fd, line)
            got = reader_out.readline()
            lat.append((time.perf_counter() - t0) * 1000)
            if got != line:
                raise SystemExit("reader got %r, expected %r" % (got, line))
    finally:
        os.close(fd)
    lat.sort()
    return lat


def main():
    mode = sys.argv[1]
    if mode == "tail":
        path, n = sys.argv[2], int(sys.argv[3])
        p = subprocess.Popen(["tail", "-f", "-n", "0", path], stdout=subprocess.PIPE)
        append_to = path
    else:
        path, append_to, n = sys.argv[2], sys.argv[3], int(sys.argv[4])
        p = subprocess.Popen([sys.executable, "-u", "-c",
                              "import sys\nfor l in open(sys.argv[1], 'rb'):\n"
                              "    sys.stdout.buffer.write(l); sys.stdout.flush()\n", path],
                             stdout=subprocess.PIPE)
    try:
        lat = measure(p.stdout, append_to, n, 0.2 if mode == "follow" else 1.5)
    finally:
        p.kill()
        p.wait()
    print("%.3f %.3f %.3f" % (statistics.median(lat), lat[int(len(lat) * 0.9) - 1], lat[-1]))


main()
