#!/bin/sh
# build.sh OUTDIR: records a labelled capture of real IoT clients, servers and
# attack tools in network namespaces (Linux, root). Writes OUTDIR/cap.pcap
# and OUTDIR/labels.json. Every address is 10.77.0.0/16 inside namespaces
# made here and removed at the end; nothing leaves the machine.
#
# Tools (Debian): iproute2 tcpdump mosquitto mosquitto-clients libcoap3-bin
# python3-pymodbus python3-serial-asyncio mbpoll netcat-openbsd nmap.
set -eu
OUT=${1:?usage: build.sh OUTDIR}
HERE=$(cd "$(dirname "$0")" && pwd)
LEARN=${LEARN:-240}   # seconds of normal traffic to learn from
NORMAL=${NORMAL:-180} # seconds of normal traffic judged after learning
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
W=$(mktemp -d)
chmod 755 "$W" # mosquitto drops to its own user
P=h10v # namespace prefix
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
host srv 10.77.0.10      # broker, CoAP server, Modbus server (the PLC)
host c1 10.77.0.21       # MQTT sensor publishing every second (one connection)
host c2 10.77.0.22       # MQTT sensor: a new connection and a message every 3 s
host c3 10.77.0.23       # MQTT dashboard subscribed to plant/#
host coap 10.77.0.31     # CoAP poller
host scada 10.77.0.41    # Modbus master polling the PLC
host malaria 10.77.0.62  # attackers, one address per class
host slow 10.77.0.63
host malf 10.77.0.64
host brute 10.77.0.65
host writer 10.77.0.66
host recon 10.77.0.67
host ext 10.77.200.1     # stands for an external server

X() { ns=$1; shift; ip netns exec $P-$ns "$@"; }
bg() { ns=$1; shift; ip netns exec $P-$ns "$@" >/dev/null 2>&1 & PIDS="$PIDS $!"; }

X sw tcpdump -i br0 -s 0 -U -w "$OUT/cap.pcap" >/dev/null 2>&1 & PIDS="$PIDS $!"
sleep 1

# Servers.
: >"$W/passwd"
for u in c1 c2 c3; do mosquitto_passwd -b "$W/passwd" $u "pw-$u"; done
chmod 644 "$W/passwd"
cat >"$W/mosquitto.conf" <<CONF
listener 1883 10.77.0.10
allow_anonymous false
password_file $W/passwd
max_connections -1
CONF
bg srv mosquitto -c "$W/mosquitto.conf"
bg srv coap-server-notls -A 10.77.0.10
bg srv /usr/bin/python3 "$HERE/modbus_server.py" 10.77.0.10
bg scada sh -c 'while :; do nc -l 10.77.0.41 23 </dev/null >/dev/null; done'
bg ext sh -c 'while :; do nc -l 10.77.200.1 4444 </dev/null >/dev/null; done'
sleep 2

now() { date -u +%s.%N; }
T0=$(now)

# Normal traffic, for the whole capture.
bg c1 sh -c 'while :; do date +%s; sleep 1; done | mosquitto_pub -h 10.77.0.10 -u c1 -P pw-c1 -i sensor-c1 -t plant/c1/temp -l'
bg c2 sh -c 'while :; do mosquitto_pub -h 10.77.0.10 -u c2 -P pw-c2 -i sensor-c2 -t plant/c2/level -m "$(date +%s)"; sleep 3; done'
bg c3 mosquitto_sub -h 10.77.0.10 -u c3 -P pw-c3 -i dashboard-c3 -k 30 -t 'plant/#'
bg coap sh -c 'while :; do coap-client-notls -m get coap://10.77.0.10/time; sleep 2; done'
bg scada sh -c 'while :; do mbpoll -m tcp -a 1 -r 1 -c 10 -t 4 -1 10.77.0.10; mbpoll -m tcp -a 1 -r 101 -c 4 -t 3 -1 10.77.0.10; sleep 1; done'

sleep $((LEARN + NORMAL))

LABELS="$OUT/labels.json"
printf '{"start": %s, "learn_end": %s, "normal_end": %s, "attacks": [\n' "$T0" "$(echo "$T0 + $LEARN" | bc)" "$(now)" >"$LABELS"
sep=""
label() { # label CLASS START PEER...
	c=$1; s=$2; shift 2
	peers=$(printf '"%s",' "$@"); peers=${peers%,}
	printf '%s  {"class": "%s", "start": %s, "end": %s, "peers": [%s]}' "$sep" "$c" "$s" "$(now)" "$peers" >>"$LABELS"
	sep=",
"
	sleep 15
}

# 1. Publish flood from a compromised sensor (c1's credentials, its own id).
s=$(now); X c1 sh -c 'seq 20000 | mosquitto_pub -h 10.77.0.10 -u c1 -P pw-c1 -i sensor-c1-x -t plant/c1/temp -l' || true
label publish_flood "$s" 10.77.0.21
# 2. Many-connection DoS ("malaria"): 300 clients connect and stay.
s=$(now)
X malaria sh -c 'for i in $(seq 300); do mosquitto_sub -h 10.77.0.10 -u c2 -P pw-c2 -i m$i -t x >/dev/null 2>&1 & done; sleep 15; kill $(jobs -p) 2>/dev/null' || true
label connection_dos "$s" 10.77.0.62
# 3. Slow DoS: 200 TCP connections held open idle for 30 s.
s=$(now); X slow /usr/bin/python3 "$HERE/hold.py" 10.77.0.10 1883 200 30 || true
label slow_dos "$s" 10.77.0.63
# 4. Malformed packets: random bytes to the broker, the CoAP and the Modbus server.
s=$(now)
X malf sh -c 'for i in $(seq 10); do head -c 300 /dev/urandom | nc -w 1 10.77.0.10 1883; head -c 40 /dev/urandom | nc -u -w 1 10.77.0.10 5683; head -c 30 /dev/urandom | nc -w 1 10.77.0.10 502; done' >/dev/null 2>&1 || true
label malformed "$s" 10.77.0.64
# 5. Credential brute force.
s=$(now)
X brute sh -c 'for i in $(seq 60); do mosquitto_pub -h 10.77.0.10 -u c1 -P guess$i -t x -m x; done' >/dev/null 2>&1 || true
label bruteforce "$s" 10.77.0.65
# 6. Writes from a new Modbus master.
s=$(now); X writer sh -c 'mbpoll -m tcp -a 1 -r 5 -t 4 -1 10.77.0.10 1234; mbpoll -m tcp -a 1 -r 20 -t 0 -1 10.77.0.10 1' >/dev/null 2>&1 || true
label modbus_new_writer "$s" 10.77.0.66
# 7. Reconnaissance: reads across unit ids and register blocks.
s=$(now)
X recon sh -c 'mbpoll -m tcp -a 1:40 -r 1 -c 2 -t 4 -1 -o 0.2 10.77.0.10; for r in 1 500 1000 1500; do mbpoll -m tcp -a 1 -r $r -c 10 -t 3 -1 10.77.0.10; done' >/dev/null 2>&1 || true
label modbus_recon "$s" 10.77.0.67
# 8. A shell session inside the OT network: the CoAP poller opens a telnet-like
#    session to the SCADA host.
s=$(now); X coap sh -c '(echo id; sleep 1; echo "cat /etc/passwd"; sleep 1; echo exit) | nc -w 3 10.77.0.41 23' >/dev/null 2>&1 || true
label shell_session "$s" 10.77.0.31 10.77.0.41
# 9. A beacon from a sensor to a new external peer, every 2 s.
s=$(now); X c2 sh -c 'for i in $(seq 8); do echo beacon | nc -w 1 10.77.200.1 4444; sleep 2; done' >/dev/null 2>&1 || true
label beacon "$s" 10.77.0.22 10.77.200.1
printf '\n], "end": %s}\n' "$(now)" >>"$LABELS"
sleep 2
