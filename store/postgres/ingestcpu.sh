#!/usr/bin/env bash
# Run `vigil bench ingest` (server in the same process) on PostgreSQL or on
# SQLite and report, besides the bench's own lines, the CPU per event stored
# and evaluated of: the vigil process (server and load generator), the
# PostgreSQL backends serving it (application_name $APP, sampled every
# second while they live), and PostgreSQL's WAL writer, checkpointer and
# background writer (these serve every database of the cluster: an upper
# bound).
#
#   bash store/postgres/ingestcpu.sh VIGIL DRIVER SECONDS [bench flags...]
#   e.g. bash store/postgres/ingestcpu.sh ./vigil postgres 20
#
# PG (default the test URL) must be on this machine; VIGIL_SECRETS_KEY_FILE
# is made in a temporary file when unset (a PostgreSQL node needs one).
set -uo pipefail
bin=$1 driver=$2 secs=$3; shift 3
PG=${PG:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
APP=${APP:-vigilingestcpu}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -z "${VIGIL_SECRETS_KEY_FILE:-}" ]; then
  (umask 077; head -c 32 /dev/urandom | base64 > "$tmp/secrets.key")
  export VIGIL_SECRETS_KEY_FILE=$tmp/secrets.key
fi
schema=ingestcpu$$
tick=$(getconf CLK_TCK)
cpu() { local s=0 p; for p in "$@"; do [ -r "/proc/$p/stat" ] && s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo $s; }
args=(bench ingest --duration "${secs}s")
[ "$driver" = postgres ] && args+=(--store-driver postgres --store-url "$PG" --store-schema "$schema")
PGAPPNAME=$APP "$bin" "${args[@]}" "$@" > "$tmp/out" 2>&1 &
vp=$!
aux=$(pgrep -u postgres -f 'walwriter|checkpointer|background writer' | tr '\n' ' ')
aux0=$(cpu $aux) vcpu=0
declare -A last
while kill -0 $vp 2>/dev/null; do
  if [ "$driver" = postgres ]; then
    for p in $(psql "$PG" -Atc "SELECT pid FROM pg_stat_activity WHERE application_name = '$APP'" 2>/dev/null); do
      v=$(cpu "$p"); [ "$v" -gt 0 ] && last[$p]=$v
    done
  fi
  v=$(cpu $vp); [ "$v" -gt 0 ] && vcpu=$v
  sleep 1
done
aux1=$(cpu $aux)
be=0; for p in "${!last[@]}"; do be=$((be + ${last[$p]})); done
cat "$tmp/out"
ev=$(sed -n 's/^bench: events=\([0-9]*\).*/\1/p' "$tmp/out")
[ -n "$ev" ] && [ "$ev" -gt 0 ] || exit 1
us() { echo "scale=1; $1 * 1000000 / $tick / $ev" | bc; }
echo "cpu per event (µs): vigil $(us $vcpu) postgres-backends $(us $be) postgres-aux $(us $((aux1 - aux0))) total $(us $((vcpu + be + aux1 - aux0))); load $(cut -d' ' -f1 /proc/loadavg)"
[ "$driver" = postgres ] && psql "$PG" -qAtc "DROP SCHEMA $schema CASCADE" > /dev/null 2>&1
exit 0
