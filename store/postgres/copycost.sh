#!/usr/bin/env bash
# What one event costs PostgreSQL's backend in a COPY into the events table,
# for variants of the table: body jsonb or text, text keys in the database's
# collation or "C", and which indexes. Each variant gets a fresh schema
# with one day partition, one warm-up COPY, then CHUNKS copies of 1,000 rows
# (one transaction each, server-side files); the backend's CPU (utime+stime
# of /proc/<pid>/stat) over those copies is divided by the rows. Rows are
# made by PostgreSQL itself in the shape of `vigil bench ingest`'s events
# (sequential ids, 1,000 devices, four kinds, ~480-byte JSON body).
#
#   bash store/postgres/copycost.sh [ROUNDS [CHUNKS]]
#
# PG (default the test URL) must be a superuser on the same machine (it
# reads /proc and writes files in $DIR, default /tmp/vigil-copycost).
set -euo pipefail
rounds=${1:-3}
chunks=${2:-60}
PG=${PG:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
DIR=${DIR:-/tmp/vigil-copycost}
mkdir -p "$DIR" && chmod 777 "$DIR"
cols="id, time, device_id, kind, source, category, action, outcome, severity, body"
day=$(( $(date +%s) / 86400 ))
lo=$((day * 86400 * 1000000000)); hi=$(((day + 1) * 86400 * 1000000000))

# Data: chunks+1 files of 1,000 rows.
if [ ! -f "$DIR/chunk.$chunks" ]; then
  for i in $(seq 0 "$chunks"); do
    psql "$PG" -qX -c "COPY (SELECT id, t, d, k, 'bench', k, a, 'success', 0,
      json_build_object('id', id, 'time', to_char(to_timestamp(t / 1e9) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),
        'device_id', d, 'source', 'bench', 'kind', k, 'category', k, 'action', a, 'outcome', 'success',
        'network', json_build_object('transport', 'tcp', 'src_ip', '10.9.0.' || (n % 200), 'src_port', 40000 + n % 20000, 'dst_ip', '10.20.1.' || (n % 250), 'dst_port', 22),
        'fields', json_build_object('host.name', d, 'user.name', 'maint', 'service.name', 'dropbear',
          'user_agent.original', 'SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6',
          'event.reason', 'password accepted for maint from trusted engineering subnet'))::text
      FROM (SELECT n, 'b' || lpad(to_hex(n), 15, '0') AS id, $lo + n * 1000 AS t,
              'plc-gateway-' || lpad(((n * 7919) % 1000)::text, 3, '0') AS d,
              (ARRAY['auth', 'process', 'network', 'network'])[1 + n % 4] AS k,
              (ARRAY['login', 'exec', 'connect', 'listen'])[1 + n % 4] AS a
            FROM generate_series($i * 1000, $i * 1000 + 999) AS n) AS g) TO '$DIR/chunk.$i'"
  done
fi

PK="ALTER TABLE events ADD PRIMARY KEY (seq, time);"
UQ="ALTER TABLE events ADD UNIQUE (id, time);"
TI="CREATE INDEX ON events(time, seq);"
DI="CREATE INDEX ON events(device_id, time, seq);"
KI="CREATE INDEX ON events(kind, time, seq);"
C='COLLATE "C"'

# run NAME BODYTYPE KEYCOLLATION INDEXES
run() {
  local name=$1 body=$2 coll=$3 idx=$4 s=copycost_${1//-/_} app=copycost_${1//-/_}
  {
    echo "SET client_min_messages = warning; DROP SCHEMA IF EXISTS $s CASCADE; CREATE SCHEMA $s; SET search_path = $s;"
    echo "CREATE SEQUENCE events_seq AS bigint;"
    echo "CREATE TABLE events (seq bigint NOT NULL DEFAULT nextval('events_seq'), id text $coll NOT NULL, time bigint NOT NULL,
      device_id text $coll NOT NULL, kind text $coll NOT NULL, source text NOT NULL, category text NOT NULL, action text NOT NULL,
      outcome text NOT NULL, severity integer NOT NULL, body $body NOT NULL) PARTITION BY RANGE (time);"
    echo "CREATE TABLE events_default PARTITION OF events DEFAULT; $idx"
    echo "CREATE TABLE events_p PARTITION OF events FOR VALUES FROM ($lo) TO ($hi);"
    echo "COPY events($cols) FROM '$DIR/chunk.$chunks';"
    echo "\\! psql '$PG' -Atc \"SELECT pid FROM pg_stat_activity WHERE application_name = '$app' AND pid <> pg_backend_pid()\" > $DIR/pid"
    echo "\\! awk '{print \$14 + \$15}' /proc/\$(cat $DIR/pid)/stat > $DIR/cpu0"
    for i in $(seq 0 $((chunks - 1))); do echo "COPY events($cols) FROM '$DIR/chunk.$i';"; done
    echo "\\! awk '{print \$14 + \$15}' /proc/\$(cat $DIR/pid)/stat > $DIR/cpu1"
    echo "DROP SCHEMA $s CASCADE;"
  } > "$DIR/$name.sql"
  PGAPPNAME=$app psql "$PG" -qX -v ON_ERROR_STOP=1 -f "$DIR/$name.sql" > /dev/null
  local ticks=$(( $(cat "$DIR/cpu1") - $(cat "$DIR/cpu0") ))
  printf "%-34s %6.1f µs/event (load %s)\n" "$name" "$(echo "$ticks * 1000000 / $(getconf CLK_TCK) / ($chunks * 1000)" | bc -l)" "$(cut -d' ' -f1 /proc/loadavg)"
}

for _ in $(seq 1 "$rounds"); do
  run jsonb-5idx jsonb "" "$PK $UQ $TI $DI $KI"
  run text-5idx text "" "$PK $UQ $TI $DI $KI"
  run text-C-5idx text "$C" "$PK $UQ $TI $DI $KI"
  run text-C-no-kind-idx text "$C" "$PK $UQ $TI $DI"
  run text-C-no-device-idx text "$C" "$PK $UQ $TI $KI"
  run text-C-no-seq-pk text "$C" "$UQ $TI $DI $KI"
  run text-C-unique-id-only text "$C" "$UQ"
  run text-C-no-index text "$C" ""
done
