#!/bin/bash
# build_normal.sh OUTDIR: records normal traffic only — real IoT clients and
# servers in network namespaces, with the rhythms of a working day compressed
# into one recording — for the whole-day measurement (days_test.go in
# detect/baseline extends it to days by replaying it; docs/anomaly.md).
# Writes OUTDIR/normal.pcap and OUTDIR/normal.json (the times of the parts).
# Linux, root. Every address is 10.78.0.0/16 inside namespaces made here and
# removed at the end; nothing leaves the machine.
#
# Tools (Debian): iproute2 tcpdump mosquitto mosquitto-clients libcoap3-bin
# python3-pymodbus python3-serial-asyncio mbpoll curl.
#
# Rhythms: an MQTT sensor publishing every 1 s (±20 %) on one connection
# that drops and reconnects every 4–6 minutes; a battery sensor connecting
# every 8–12 s to publish one message; a dashboard subscribed to plant/#
# (keep-alive 30 s) that reconnects once; a CoAP poller every 2 s (±25 %);
# a SCADA master polling the PLC every 1 s (±20 %). After STEADY seconds,
# the daily burst (firmware manifest checks over HTTP by four devices, the
# first sensor's buffered log upload of 60 messages, the SCADA master's
# daily read of the whole register map), then AFTER seconds of steady
# traffic again.
set -eu
OUT=${1:?usage: build_normal.sh OUTDIR}
HERE=$(cd "$(dirname "$0")" && pwd)
STEADY=${STEADY:-900} # seconds of steady traffic before the daily burst
AFTER=${AFTER:-180}   # seconds of steady traffic after it
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
W=$(mktemp -d)
chmod 755 "$W" # mosquitto drops to its own user
P=h1nv # namespace prefix
PIDS=""

cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	sleep 1
	for n in $(ip netns list | awk '{print $1}' | grep "^$P-" || true); do
		ip netns pids "$n" | xargs -r kill 2>/dev/null || true
		ip netns del "$n"
	done
	rm -rf "$W"
}
trap cleanup EXIT INT TERM

ip netns add $P-sw
ip -n $P-sw link add br0 type bridge
ip -n $P-sw link set br0 up
n=0
host() { # host NAME ADDR
	n=$((n + 1))
	ip netns add $P-$1
	ip link add v$P$n type veth peer name eth0 netns $P-$1
	ip link set v$P$n netns $P-sw
	ip -n $P-sw link set v$P$n master br0 up
	ip -n $P-$1 addr add "$2/16" dev eth0
	ip -n $P-$1 link set eth0 up
	ip -n $P-$1 link set lo up
}
host srv 10.78.0.10   # broker, CoAP server, Modbus server (the PLC), firmware server
host c1 10.78.0.21    # MQTT sensor, one connection
host c2 10.78.0.22    # battery MQTT sensor, a connection per message
host c3 10.78.0.23    # dashboard subscribed to plant/#
host coap 10.78.0.31  # CoAP poller
host scada 10.78.0.41 # Modbus master polling the PLC

X() { ns=$1; shift; ip netns exec $P-$ns "$@"; }
bg() { ns=$1; shift; ip netns exec $P-$ns "$@" >/dev/null 2>&1 & PIDS="$PIDS $!"; }

X sw tcpdump -i br0 -s 0 -U -w "$OUT/normal.pcap" >/dev/null 2>&1 & PIDS="$PIDS $!"
sleep 1

: >"$W/passwd"
for u in c1 c2 c3; do mosquitto_passwd -b "$W/passwd" $u "pw-$u"; done
chmod 644 "$W/passwd"
cat >"$W/mosquitto.conf" <<CONF
listener 1883 10.78.0.10
allow_anonymous false
password_file $W/passwd
max_connections -1
CONF
mkdir -p "$W/www"
printf '{"model":"acme-s1","latest":"2.4.1","url":"/fw/acme-s1-2.4.1.bin"}\n' >"$W/www/manifest.json"
chmod -R 755 "$W/www"
bg srv mosquitto -c "$W/mosquitto.conf"
bg srv coap-server-notls -A 10.78.0.10
bg srv /usr/bin/python3 "$HERE/modbus_server.py" 10.78.0.10
bg srv /usr/bin/python3 -m http.server -b 10.78.0.10 -d "$W/www" 8080
sleep 2

now() { date -u +%s.%N; }
# jit BASE PCT: BASE seconds ± PCT %, for sleep.
JIT='jit() { awk -v b="$1" -v p="$2" -v r="$RANDOM" "BEGIN{printf \"%.3f\", b*(1+p/100*(2*r/32767-1))}"; }'
T0=$(now)

# c1: one connection publishing every 1 s ± 20 %, dropped and reconnected every 4-6 min.
bg c1 bash -c "$JIT"'
while :; do
	end=$((SECONDS + 240 + RANDOM % 120))
	while [ $SECONDS -lt $end ]; do date +%s; sleep "$(jit 1 20)"; done |
		mosquitto_pub -h 10.78.0.10 -u c1 -P pw-c1 -i sensor-c1 -t plant/c1/temp -l
	sleep "$(jit 3 50)"
done'
# c2: a connection every 8-12 s to publish one reading.
bg c2 bash -c "$JIT"'
while :; do mosquitto_pub -h 10.78.0.10 -u c2 -P pw-c2 -i sensor-c2 -t plant/c2/level -m "$(date +%s)"; sleep "$(jit 10 20)"; done'
# c3: the dashboard, reconnecting once at about 7 minutes.
bg c3 bash -c '
timeout 420 mosquitto_sub -h 10.78.0.10 -u c3 -P pw-c3 -i dashboard-c3 -k 30 -t "plant/#" >/dev/null
sleep 5
exec mosquitto_sub -h 10.78.0.10 -u c3 -P pw-c3 -i dashboard-c3 -k 30 -t "plant/#" >/dev/null'
# coap: GET /time every 2 s ± 25 %.
bg coap bash -c "$JIT"'
while :; do coap-client-notls -m get coap://10.78.0.10/time; sleep "$(jit 2 25)"; done'
# scada: holding and input registers every 1 s ± 20 %.
bg scada bash -c "$JIT"'
while :; do mbpoll -m tcp -a 1 -r 1 -c 10 -t 4 -1 10.78.0.10; mbpoll -m tcp -a 1 -r 101 -c 4 -t 3 -1 10.78.0.10; sleep "$(jit 1 20)"; done'

sleep "$STEADY"

# The daily burst.
B0=$(now)
for d in c1 c2 coap scada; do X $d curl -s -m 5 -o /dev/null http://10.78.0.10:8080/manifest.json || true; done
X c1 bash -c 'for i in $(seq 60); do echo "log line $i of the day"; done | mosquitto_pub -h 10.78.0.10 -u c1 -P pw-c1 -i sensor-c1-log -t plant/c1/log -l' || true
X scada bash -c 'for r in 1 126 251 376; do mbpoll -m tcp -a 1 -r $r -c 125 -t 4 -1 10.78.0.10; done' >/dev/null 2>&1 || true
sleep 30
B1=$(now)

sleep "$AFTER"
printf '{"start": %s, "burst_start": %s, "burst_end": %s, "end": %s}\n' "$T0" "$B0" "$B1" "$(now)" >"$OUT/normal.json"
sleep 2
