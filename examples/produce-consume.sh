#!/bin/bash
# produce-consume.sh MNT - a topic's whole life from the shell.
#
# Creates the topic `events` with three partitions on a mounted topicfs,
# produces keyed lines through .produce (Kafka's partitioner), reads every
# partition with cat, the last records with p0@-N, one JSON object a record
# with jq, and drains a consumer group twice: the second drain only gets what
# arrived in between. Safe to run again: it reuses the topic and group.
set -eu
MNT=${1:?usage: produce-consume.sh MNT}
T=$MNT/events

[ -d "$T" ] || mkdir "$T"
echo partitions=3 >> "$T/.config"
echo key.separator=: >> "$T/.config"
[ -d "$T/.groups/audit" ] || mkdir "$T/.groups/audit"
cat "$T/.groups/audit/drain" > /dev/null # start the group at the current end

for user in alice bob carol; do
    echo "$user:logged in" >> "$T/.produce"
done
printf 'alice:viewed cart\nbob:paid\n' >> "$T/.produce"

echo "--- every record, partition by partition (each user stays in one)"
for p in "$T"/p*; do
    echo "${p##*/}: $(tr '\n' '|' < "$p")"
done
echo "--- the group's first drain"
cat "$T/.groups/audit/drain"
echo "carol:logged out" >> "$T/.produce"
echo "--- the second drain: only what arrived since"
cat "$T/.groups/audit/drain"
echo "--- the last record of each partition, with its offset"
for p in 0 1 2; do
    if command -v jq > /dev/null; then
        jq -c '{offset, value}' "$T/p$p@-1.jsonl"
    else
        cat "$T/p$p@-1.jsonl"
    fi
done
echo "--- the group's cursors"
cat "$T/.groups/audit/.info"
