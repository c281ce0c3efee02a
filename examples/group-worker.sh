#!/bin/bash
# group-worker.sh MNT TOPIC GROUP - one member of a consumer group.
#
# Run it several times at once: the topic's partitions are shared among the
# running workers, and when one stops (Ctrl-C, kill -9) its partitions go to
# the others, starting after the last line it acknowledged. A line is
# acknowledged when the worker reads past it, so a worker killed while it
# handles a line gets that line again (at-least-once). Each handled line is
# printed with the worker's pid; replace `handle` with the real work.
set -eu
MNT=${1:?usage: group-worker.sh MNT TOPIC GROUP}
TOPIC=${2:?usage: group-worker.sh MNT TOPIC GROUP}
GROUP=${3:?usage: group-worker.sh MNT TOPIC GROUP}
G=$MNT/$TOPIC/.groups/$GROUP

handle() {
    printf '%s %s\n' "$$" "$1"
}

[ -d "$G" ] || mkdir "$G" 2> /dev/null || [ -d "$G" ]
while IFS= read -r line; do
    handle "$line"
done < "$G/follow"
