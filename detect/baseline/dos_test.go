package baseline

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
)

// sensorEv is a sensor event between two addresses.
func sensorEv(at time.Duration, kind, action, src, dst string, dport uint16, fields map[string]any) vigil.Event {
	return vigil.Event{Time: t0.Add(at), Source: "sensor", Kind: kind, Action: action,
		Network: &vigil.Network{Transport: "tcp", SrcIP: netip.MustParseAddr(src), SrcPort: 40000, DstIP: netip.MustParseAddr(dst), DstPort: dport},
		Fields:  fields}
}

// learnBroker has a client publish to a broker once a second for an
// hour, a new connection (with data) every 10 s.
func learnBroker(f *fleet) {
	for s := 0; s < 3600; s++ {
		at := time.Duration(s) * time.Second
		f.send(sensorEv(at, "mqtt", "publish", "10.0.3.21", "10.0.3.10", 1883, map[string]any{"mqtt.topic": "plant/t", "mqtt.payload_size": 10.0}))
		if s%10 == 0 {
			f.send(sensorEv(at, "flow", "flow", "10.0.3.22", "10.0.3.10", 1883, map[string]any{"flow.reason": "end", "flow.app_proto": "mqtt",
				"flow.tcp_flags_toserver": "FIN,SYN,PSH,ACK", "flow.bytes_toserver": 400.0}))
		}
	}
}

// firstAtLeast returns the first alert of rule at severity sev or more.
func firstAtLeast(alerts []vigil.Alert, rule string, sev vigil.Severity) *vigil.Alert {
	for i := range alerts {
		if alerts[i].RuleID == rule && alerts[i].Severity >= sev {
			return &alerts[i]
		}
	}
	return nil
}

// TestSlowDoSIdleConnections checks that connections held open without
// data (a slow DoS) raise the idle connections rate at medium or more,
// naming the attacker; before, a connection counted only at its end and
// 200 idle ones from a new host raised nothing above low.
func TestSlowDoSIdleConnections(t *testing.T) {
	f := &fleet{d: New(Options{Learn: time.Hour, Window: 10 * time.Second})}
	learnBroker(f)
	f.alerts = nil
	for i := 0; i < 200; i++ {
		f.send(sensorEv(time.Hour+time.Duration(i)*20*time.Millisecond, "flow", "flow", "10.0.3.63", "10.0.3.10", 1883,
			map[string]any{"flow.reason": "end", "flow.app_proto": "mqtt", "flow.tcp_flags_toserver": "FIN,SYN,ACK", "flow.bytes_toserver": 160.0}))
	}
	a := firstAtLeast(f.alerts, "baseline.rate_idle_connections", vigil.SeverityMedium)
	if a == nil {
		t.Fatalf("no idle connections alert of medium or more: %v", ruleIDs(f.alerts))
	}
	if x := a.Fields["explanation"].(string); !strings.Contains(x, "10.0.3.63") {
		t.Errorf("explanation does not name the attacker: %s", x)
	}
}

// TestMalformedTraffic checks that parse errors from a host that never
// sent malformed traffic raise a medium novelty naming the sender and the
// kind of anomaly; before, they only counted as messages.
func TestMalformedTraffic(t *testing.T) {
	f := &fleet{d: New(Options{Learn: time.Hour, Window: 10 * time.Second})}
	learnBroker(f)
	f.alerts = nil
	f.send(sensorEv(time.Hour, "mqtt", "anomaly", "10.0.3.64", "10.0.3.10", 1883, map[string]any{"anomaly.event": "malformed_traffic", "anomaly.app_proto": "mqtt"}))
	a := firstAtLeast(f.alerts, "baseline.new_protocol_anomaly", vigil.SeverityMedium)
	if a == nil {
		t.Fatalf("no protocol anomaly alert of medium or more: %v", ruleIDs(f.alerts))
	}
	if x := a.Fields["explanation"].(string); !strings.Contains(x, "malformed_traffic") || a.Fields["baseline.peer"] != "10.0.3.10" || a.Fields["baseline.entity"] != "ip:10.0.3.64" {
		t.Errorf("alert does not name the sender and the anomaly: %v", a.Fields)
	}
	// A flaky device's known error is not news again.
	f.alerts = nil
	f.send(sensorEv(time.Hour+time.Minute, "mqtt", "anomaly", "10.0.3.64", "10.0.3.10", 1883, map[string]any{"anomaly.event": "malformed_traffic", "anomaly.app_proto": "mqtt"}))
	if len(f.alerts) != 0 {
		t.Errorf("the same anomaly again: %v", ruleIDs(f.alerts))
	}
}

// TestRefusalsNameClient checks that a broker known by address refusing
// many connects raises failed authentications naming the guessing client
// (before, its alert named the broker itself as the peer), and that the
// client's own rate is judged.
func TestRefusalsNameClient(t *testing.T) {
	f := &fleet{d: New(Options{Learn: time.Hour, Window: 10 * time.Second})}
	learnBroker(f)
	f.alerts = nil
	for i := 0; i < 40; i++ {
		ev := sensorEv(time.Hour+time.Duration(i)*100*time.Millisecond, "mqtt", "connack", "10.0.3.10", "10.0.3.65", 40000,
			map[string]any{"mqtt.connack.return_code": 5.0})
		ev.Outcome = vigil.OutcomeFailure
		f.send(ev)
	}
	var broker, client bool
	for _, a := range f.alerts {
		if a.RuleID != "baseline.rate_failed_auths" || a.Severity < vigil.SeverityMedium {
			continue
		}
		if a.Fields["baseline.peer"] != "10.0.3.65" && a.Fields["baseline.entity"] != "ip:10.0.3.65" {
			t.Errorf("failed auths alert names neither the client as peer nor as entity: %v", a.Fields)
		}
		broker = broker || a.Fields["baseline.entity"] == "ip:10.0.3.10"
		client = client || a.Fields["baseline.entity"] == "ip:10.0.3.65"
	}
	if !broker || !client {
		t.Errorf("want failed auths alerts for the broker (%v) and the client (%v): %v", broker, client, ruleIDs(f.alerts))
	}
}

func ruleIDs(alerts []vigil.Alert) []string {
	var s []string
	for _, a := range alerts {
		s = append(s, a.RuleID+"/"+a.Severity.String())
	}
	return s
}

// TestLongConnectionEnd checks that the end of a connection that lasted
// the whole learning period (seen then only in periodic flow records) is
// not a new peer or port; before, periodic records taught nothing.
func TestLongConnectionEnd(t *testing.T) {
	f := &fleet{d: New(Options{Learn: time.Hour, Window: 10 * time.Second})}
	rec := func(at time.Duration, reason string) {
		f.send(sensorEv(at, "flow", "flow", "10.0.3.21", "10.0.3.10", 1883, map[string]any{"flow.reason": reason, "flow.app_proto": "mqtt",
			"flow.tcp_flags_toserver": "SYN,PSH,ACK", "flow.duration": at.Seconds(), "flow.bytes_toserver": 1000.0}))
	}
	for m := 1; m <= 70; m++ {
		rec(time.Duration(m)*time.Minute, "periodic")
	}
	f.alerts = nil
	rec(71*time.Minute, "end")
	if len(f.alerts) != 0 {
		t.Errorf("the end of a long connection raised %v: %v", ruleIDs(f.alerts), f.alerts[0].Fields["explanation"])
	}
}

// TestNoveltyNamesSenderAddress checks that a novelty of a device the
// sensor knows by its MAC names the device's address: before, the alert
// carried only the peer and the MAC, so the malformed traffic of the
// labelled set did not name its sender.
func TestNoveltyNamesSenderAddress(t *testing.T) {
	f := &fleet{d: New(Options{Learn: time.Hour, Window: 10 * time.Second})}
	learnBroker(f)
	ev := sensorEv(time.Hour, "mqtt", "anomaly", "10.0.3.64", "10.0.3.10", 1883, map[string]any{"anomaly.event": "invalid_flags", "anomaly.app_proto": "mqtt"})
	ev.DeviceID = "mac:02:00:00:00:00:64"
	f.alerts = nil
	f.send(ev)
	if len(f.alerts) != 1 {
		t.Fatalf("want one alert, got %v", ruleIDs(f.alerts))
	}
	a := f.alerts[0]
	if !strings.Contains(a.Fields["explanation"].(string), "(10.0.3.64)") || !slices.Contains(a.Entities, "ip:10.0.3.64") {
		t.Errorf("the alert does not name the sender's address: %v %s", a.Entities, a.Fields["explanation"])
	}
}

// TestSlowDoSKeepAlive checks that MQTT connects asking the broker to hold
// the session for hours without hearing from the client (SlowITe) count as
// idle connections; before, they were connections like any other.
func TestSlowDoSKeepAlive(t *testing.T) {
	f := &fleet{d: New(Options{Learn: time.Hour, Window: 10 * time.Second})}
	learnBroker(f)
	f.alerts = nil
	for i := 0; i < 30; i++ {
		f.send(sensorEv(time.Hour+time.Duration(i)*300*time.Millisecond, "mqtt", "connect", "10.0.3.68", "10.0.3.10", 1883,
			map[string]any{"mqtt.client_id": "s" + string(rune('a'+i%26)), "mqtt.keep_alive": 65535.0}))
	}
	if firstAtLeast(f.alerts, "baseline.rate_idle_connections", vigil.SeverityMedium) == nil {
		t.Fatalf("no idle connections alert of medium or more: %v", ruleIDs(f.alerts))
	}
}

// TestIdleWhileOpen checks that connections held open and idle are
// counted while they are open, at the first periodic flow record past a
// minute, not only when they end: 30 connections from a new host that the
// client keeps alive without data raise the idle connections rate at
// medium or more, naming the attacker, a minute after they opened; their
// later periodic records and their end do not count them again.
func TestIdleWhileOpen(t *testing.T) {
	f := &fleet{d: New(Options{Learn: time.Hour, Window: 10 * time.Second})}
	learnBroker(f)
	f.alerts = nil
	rec := func(at time.Duration, i int, reason string, dur float64) []vigil.Alert {
		return f.send(sensorEv(at, "flow", "flow", "10.0.3.70", "10.0.3.10", 1883, map[string]any{
			"flow.id": fmt.Sprintf("%016x", 0xa000+i), "flow.reason": reason, "flow.duration": dur, "flow.app_proto": "mqtt",
			"flow.tcp_flags_toserver": "SYN,ACK", "flow.bytes_toserver": 60.0 + dur}))
	}
	var open []vigil.Alert
	for tick := 1; tick <= 3; tick++ { // periodic records at 60, 120, 180 s
		for i := 0; i < 30; i++ {
			open = append(open, rec(time.Hour+time.Duration(tick*60)*time.Second+time.Duration(i)*100*time.Millisecond, i, "periodic", float64(tick*60))...)
		}
	}
	a := firstAtLeast(open, "baseline.rate_idle_connections", vigil.SeverityMedium)
	if a == nil {
		t.Fatalf("connections held idle raised no idle connections alert while open: %v", ruleIDs(open))
	}
	if !strings.Contains(a.Fields["explanation"].(string), "10.0.3.70") {
		t.Errorf("explanation does not name the attacker: %v", a.Fields["explanation"])
	}
	if a.Fields["baseline.observed"].(float64) > 30 {
		t.Errorf("counted %v idle connections in one window, want each of the 30 once", a.Fields["baseline.observed"])
	}
	for _, x := range open {
		if x.RuleID == "baseline.rate_idle_connections" && x.Fields["baseline.observed"].(float64) > 30 {
			t.Errorf("a periodic record counted a connection again: %v", x.Fields["explanation"])
		}
	}
	var end []vigil.Alert
	for i := 0; i < 30; i++ {
		end = append(end, rec(time.Hour+300*time.Second+time.Duration(i)*100*time.Millisecond, i, "timeout", 300)...)
	}
	for _, x := range end {
		if x.RuleID == "baseline.rate_idle_connections" {
			t.Errorf("the end of connections counted while open counted them again: %v", x.Fields["explanation"])
		}
	}
}
