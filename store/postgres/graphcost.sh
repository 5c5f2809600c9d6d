#!/usr/bin/env bash
# What one relation update of PutGraph's upsert costs PostgreSQL's backend,
# with the relation indexes before the graph-index migration ((src, last_seen) and
# (dst, last_seen): every update writes new index entries) and after it
# ((dst) only, fillfactor 80: updates are HOT). Each variant: 20,000
# relations, then 20 upserts of all of them (the statement PutGraph runs),
# backend CPU (utime+stime of /proc/<pid>/stat) divided by the 400,000
# updates; the last column is how many updates were HOT.
#
#   bash store/postgres/graphcost.sh [ROUNDS]
set -euo pipefail
rounds=${1:-2}
PG=${PG:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rel="SELECT 'device:plc-' || (g % 1000), 'connects_to', 'ip:10.9.' || (g / 1000) || '.' || (g % 250)"
run() {
  local name=$1 idx=$2 ff=$3 s=graphcost_$1
  {
    echo "SET client_min_messages = warning; DROP SCHEMA IF EXISTS $s CASCADE; CREATE SCHEMA $s; SET search_path = $s;"
    echo "CREATE TABLE graph_relations (src text NOT NULL, rel text NOT NULL, dst text NOT NULL, first_seen bigint NOT NULL,
      last_seen bigint NOT NULL, n bigint NOT NULL, first_event text NOT NULL, last_event text NOT NULL,
      PRIMARY KEY (src, rel, dst)) WITH (fillfactor = $ff); $idx"
    echo "INSERT INTO graph_relations $rel, 1, 1, 1, 'b0', 'b0' FROM generate_series(1, 20000) g;"
    echo "\\! psql '$PG' -Atc \"SELECT pid FROM pg_stat_activity WHERE application_name = '$s' AND pid <> pg_backend_pid()\" > $tmp/pid"
    echo "\\! awk '{print \$14 + \$15}' /proc/\$(cat $tmp/pid)/stat > $tmp/cpu0"
    for r in $(seq 1 20); do
      echo "INSERT INTO graph_relations(src, rel, dst, first_seen, last_seen, n, first_event, last_event)
        $rel, $r, $r + 1, 1, 'b$r', 'b$r' FROM generate_series(1, 20000) g
        ON CONFLICT (src, rel, dst) DO UPDATE SET
        first_event = CASE WHEN excluded.first_seen < graph_relations.first_seen THEN excluded.first_event ELSE graph_relations.first_event END,
        first_seen = LEAST(graph_relations.first_seen, excluded.first_seen),
        last_event = CASE WHEN excluded.last_seen >= graph_relations.last_seen THEN excluded.last_event ELSE graph_relations.last_event END,
        last_seen = GREATEST(graph_relations.last_seen, excluded.last_seen),
        n = graph_relations.n + excluded.n;"
    done
    echo "\\! awk '{print \$14 + \$15}' /proc/\$(cat $tmp/pid)/stat > $tmp/cpu1"
    echo "SELECT pg_sleep(1); SELECT n_tup_hot_upd FROM pg_stat_user_tables WHERE schemaname = '$s' AND relname = 'graph_relations';"
    echo "DROP SCHEMA $s CASCADE;"
  } > "$tmp/$name.sql"
  local hot
  hot=$(PGAPPNAME=$s psql "$PG" -qAtX -v ON_ERROR_STOP=1 -f "$tmp/$name.sql" | tail -1)
  local ticks=$(( $(cat "$tmp/cpu1") - $(cat "$tmp/cpu0") ))
  printf "%-8s %6.1f µs/update  hot %s of 400000 (load %s)\n" "$name" "$(echo "$ticks * 1000000 / $(getconf CLK_TCK) / 400000" | bc -l)" "$hot" "$(cut -d' ' -f1 /proc/loadavg)"
}
for _ in $(seq 1 "$rounds"); do
  run before "CREATE INDEX ON graph_relations(src, last_seen); CREATE INDEX ON graph_relations(dst, last_seen);" 100
  run after "CREATE INDEX ON graph_relations(dst);" 80
done
