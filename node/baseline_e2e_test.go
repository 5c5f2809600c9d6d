package node

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/store"
)

// TestServeBaselineEndToEnd posts three minutes of Modbus polling through
// the API of a running server (learning period one minute), then a write
// to a PLC from a host that only ever read another one: the learned
// baseline raises it, and so does the pack's Modbus write rule, which
// reads the baseline's baseline.new_writer field. A known master's event
// that brings its own "baseline.new_writer": true raises nothing.
func TestServeBaselineEndToEnd(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.LogLevel = t.TempDir(), "127.0.0.1:0", "warn"
	cfg.Baseline.Learn = Duration(time.Minute)
	a := runTestApp(t, cfg)
	c, err := client.New(a.URL(), a.AdminToken(), client.TLSConfig(a.ca.Pool()))
	if err != nil {
		t.Fatal(err)
	}

	var b strings.Builder
	start := time.Now().UTC().Add(-5 * time.Minute)
	modbus := func(at time.Duration, dev, src, dst string, fc int, extra map[string]any) {
		f := map[string]any{"modbus.function_code": fc, "modbus.unit_id": 1, "modbus.address": 100, "modbus.table": "holding_registers", "modbus.write": fc == 6 || fc == 16}
		for k, v := range extra {
			f[k] = v
		}
		ev, _ := json.Marshal(map[string]any{
			"time": start.Add(at).Format(time.RFC3339Nano), "device_id": dev, "source": "sensor", "kind": "modbus", "action": "request",
			"network": map[string]any{"transport": "tcp", "src_ip": src, "src_port": 50211, "dst_ip": dst, "dst_port": 502},
			"fields":  f,
		})
		b.Write(ev)
		b.WriteByte('\n')
	}
	for s := time.Duration(0); s < 3*time.Minute; s += 5 * time.Second {
		modbus(s, "scada-1", "10.0.4.9", "10.0.4.20", 3, nil)
		if s%(30*time.Second) == 0 {
			modbus(s, "scada-1", "10.0.4.9", "10.0.4.20", 6, nil)
		}
		modbus(s, "hmi-7", "10.0.4.66", "10.0.4.21", 3, nil)
	}
	modbus(3*time.Minute, "hmi-7", "10.0.4.66", "10.0.4.20", 16, nil)
	modbus(3*time.Minute, "scada-1", "10.0.4.9", "10.0.4.20", 6, map[string]any{"baseline.new_writer": true})
	res, err := c.PostEvents(t.Context(), []byte(b.String()))
	if err != nil || res.Accepted == 0 || len(res.Rejected) > 0 {
		t.Fatalf("post: %+v %v", res, err)
	}

	const packWrite = "b4f9cf79-e275-4286-94de-175bc1d4e7a9"
	deadline := time.Now().Add(30 * time.Second)
	for {
		alerts, _, err := c.ListAlerts(t.Context(), store.AlertFilter{})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, al := range alerts {
			got[al.RuleID+"/"+al.DeviceID] = al.Severity.String()
			if al.RuleID == "baseline.new_modbus_writer" && al.Fields["baseline.peer"] != "10.0.4.66" {
				t.Errorf("new writer alert names peer %v, want 10.0.4.66", al.Fields["baseline.peer"])
			}
		}
		if _, ok := got[packWrite+"/scada-1"]; ok {
			t.Fatalf("a source's own baseline.new_writer raised the pack rule: %v", got)
		}
		// Done when the hmi-7 alerts are in and every posted event was
		// evaluated (so scada-1's last event was judged too).
		if got["baseline.new_modbus_writer/hmi-7"] == "high" && got[packWrite+"/hmi-7"] == "high" && evaluated(t, a) >= float64(res.Accepted) {
			alerts, _, _ = c.ListAlerts(t.Context(), store.AlertFilter{DeviceID: "scada-1"})
			for _, al := range alerts {
				t.Errorf("scada-1 raised %s", al.RuleID)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alerts %v, want baseline.new_modbus_writer and %s for hmi-7", got, packWrite)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// evaluated returns the server's count of events the detection stage
// evaluated.
func evaluated(t *testing.T, a *Node) float64 {
	mfs, err := a.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "vigil_detect_events_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}
