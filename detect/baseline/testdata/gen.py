#!/usr/bin/env python3
"""Generates the test cases of detect/baseline (run from this directory).

A small plant seen by a sensor: a SCADA master polls a PLC over Modbus/TCP
(reads every 10 s, a setpoint write every 2 minutes), three MQTT sensors
publish to a broker, a camera resolves and reaches its cloud. plant-learn.jsonl
is 30 minutes of it; each case's input.jsonl is 5 more minutes of normal
traffic plus (except normal_traffic) one attack.
"""
import json, os, datetime

T0 = datetime.datetime(2026, 11, 20, 10, 0, 0, tzinfo=datetime.timezone.utc)
seq = [0]

def ts(s):
    return (T0 + datetime.timedelta(seconds=s)).isoformat(timespec="milliseconds").replace("+00:00", "Z")

def ev(s, dev, kind, action, src, sport, dst, dport, fields, outcome=None, prefix="e"):
    seq[0] += 1
    e = {"id": "%s-%d" % (prefix, seq[0]), "time": ts(s), "device_id": dev, "source": "sensor", "kind": kind,
         "action": action, "network": {"transport": "tcp", "src_ip": src, "src_port": sport, "dst_ip": dst, "dst_port": dport},
         "fields": fields}
    if outcome:
        e["outcome"] = outcome
    return e

MASTER, PLC, BROKER, CAM = "10.0.4.9", "10.0.4.20", "10.0.0.2", "10.0.1.7"
SENSORS = [("mac:02:00:00:00:01:01", "10.0.2.11", "th-1"), ("mac:02:00:00:00:01:02", "10.0.2.12", "th-2"), ("mac:02:00:00:00:01:03", "10.0.2.13", "th-3")]

def normal(start, end, prefix):
    out = []
    for s in range(start, end):
        if s % 10 == 0:
            out.append(ev(s, "mac:02:00:00:00:00:09", "modbus", "request", MASTER, 50211, PLC, 502,
                          {"modbus.function_code": 3, "modbus.unit_id": 1, "modbus.address": 100, "modbus.quantity": 10, "modbus.table": "holding_registers", "modbus.write": False}, prefix=prefix))
            out.append(ev(s + 0.01, "mac:02:00:00:00:00:20", "modbus", "response", PLC, 502, MASTER, 50211,
                          {"modbus.function_code": 3, "modbus.unit_id": 1}, outcome="success", prefix=prefix))
        if s % 120 == 60:
            out.append(ev(s, "mac:02:00:00:00:00:09", "modbus", "request", MASTER, 50211, PLC, 502,
                          {"modbus.function_code": 6, "modbus.unit_id": 1, "modbus.address": 110, "modbus.value": 42, "modbus.table": "holding_registers", "modbus.write": True}, prefix=prefix))
        for i, (dev, ip, cid) in enumerate(SENSORS):
            if s % 15 == i:
                out.append(ev(s, dev, "mqtt", "publish", ip, 40000 + i, BROKER, 1883,
                              {"mqtt.topic": "plant/%s/temp" % cid, "mqtt.payload_size": 24, "mqtt.qos": 0}, prefix=prefix))
            if s % 300 == i + 5:
                out.append(ev(s, dev, "mqtt", "connect", ip, 40000 + i, BROKER, 1883,
                              {"mqtt.client_id": cid, "mqtt.keep_alive": 60}, prefix=prefix))
                out.append(ev(s + 0.01, "mac:02:00:00:00:00:02", "mqtt", "connack", BROKER, 1883, ip, 40000 + i,
                              {"mqtt.reason_code": 0}, outcome="success", prefix=prefix))
        if s % 60 == 30:
            e = ev(s, "mac:02:00:00:00:00:07", "dns", "query", CAM, 5353, "10.0.0.1", 53, {"dns.question.name": "cloud.example-cam.com", "dns.question.type": "A"}, prefix=prefix)
            e["network"]["transport"] = "udp"
            out.append(e)
            out.append(ev(s + 1, "mac:02:00:00:00:00:07", "flow", "flow", CAM, 41000, "198.51.100.10", 443,
                          {"flow.reason": "end", "flow.app_proto": "tls", "flow.bytes_toserver": 1200, "flow.bytes_toclient": 5400}, prefix=prefix))
    return out

def write(path, evs):
    evs.sort(key=lambda e: e["time"])
    with open(path, "w") as f:
        for e in evs:
            f.write(json.dumps(e, separators=(",", ":")) + "\n")

write("plant-learn.jsonl", normal(0, 1800, "learn"))

def case(name, attack):
    os.makedirs(name, exist_ok=True)
    seq[0] = 0
    evs = normal(1800, 2100, "in")
    evs += attack
    write(os.path.join(name, "input.jsonl"), evs)
    link = os.path.join(name, "learn.jsonl")
    if not os.path.lexists(link):
        os.symlink("../plant-learn.jsonl", link)

case("normal_traffic", [])
case("new_modbus_writer", [ev(1950, "mac:02:00:00:00:00:66", "modbus", "request", "10.0.4.66", 51000, PLC, 502,
     {"modbus.function_code": 16, "modbus.unit_id": 1, "modbus.address": 110, "modbus.quantity": 2, "modbus.table": "holding_registers", "modbus.write": True}, prefix="attack")])
case("new_mqtt_topic", [ev(1950, SENSORS[1][0], "mqtt", "publish", SENSORS[1][1], 40001, BROKER, 1883,
     {"mqtt.topic": "plant/actuators/valve-3/set", "mqtt.payload_size": 4, "mqtt.qos": 1}, prefix="attack")])
case("mqtt_publish_flood", [ev(1950 + i * 0.05, SENSORS[2][0], "mqtt", "publish", SENSORS[2][1], 40002, BROKER, 1883,
     {"mqtt.topic": "plant/th-3/temp", "mqtt.payload_size": 24, "mqtt.qos": 0}, prefix="attack") for i in range(600)])
bf = []
for i in range(30):
    bf.append(ev(1950 + i * 0.5, "mac:02:00:00:00:00:99", "mqtt", "connect", "10.0.9.9", 45000 + i, BROKER, 1883,
                 {"mqtt.client_id": "x%d" % i, "mqtt.username": "admin", "mqtt.password_present": True}, prefix="attack"))
    bf.append(ev(1950 + i * 0.5 + 0.01, "mac:02:00:00:00:00:02", "mqtt", "connack", BROKER, 1883, "10.0.9.9", 45000 + i,
                 {"mqtt.reason_code": 5, "mqtt.reason": "not_authorized"}, outcome="failure", prefix="attack"))
case("mqtt_auth_bruteforce", bf)
# the master itself reads unit ids 1..30 of the PLC's gateway address within 30 s
case("modbus_unit_scan", [ev(1950 + u, "mac:02:00:00:00:00:09", "modbus", "request", MASTER, 50211, PLC, 502,
     {"modbus.function_code": 3, "modbus.unit_id": u, "modbus.address": 0, "modbus.quantity": 1, "modbus.table": "holding_registers", "modbus.write": False}, prefix="attack") for u in range(2, 32)])
case("new_external_peer", [ev(1950, "mac:02:00:00:00:00:07", "flow", "flow", CAM, 42000, "203.0.113.66", 4444,
     {"flow.reason": "end", "flow.bytes_toserver": 90000, "flow.bytes_toclient": 300}, prefix="attack")])
