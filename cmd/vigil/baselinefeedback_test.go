package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/detect/baseline"
	"github.com/vigil-iot/vigil/node"
	"github.com/vigil-iot/vigil/store"
)

// modbusPolling returns NDJSON of three minutes of Modbus polling that
// ends, at 3 minutes, with a write to 10.0.4.20 from 10.0.4.66 (which only
// ever read 10.0.4.21): the learned baseline's new writer.
func modbusPolling(start time.Time) []byte {
	var b strings.Builder
	modbus := func(at time.Duration, dev, src, dst string, fc int) {
		ev, _ := json.Marshal(map[string]any{
			"time": start.Add(at).Format(time.RFC3339Nano), "device_id": dev, "source": "sensor", "kind": "modbus", "action": "request",
			"network": map[string]any{"transport": "tcp", "src_ip": src, "src_port": 50211, "dst_ip": dst, "dst_port": 502},
			"fields":  map[string]any{"modbus.function_code": fc, "modbus.unit_id": 1, "modbus.address": 100, "modbus.table": "holding_registers", "modbus.write": fc == 6 || fc == 16},
		})
		b.Write(ev)
		b.WriteByte('\n')
	}
	for s := time.Duration(0); s < 3*time.Minute; s += 5 * time.Second {
		modbus(s, "scada-1", "10.0.4.9", "10.0.4.20", 3)
		if s%(30*time.Second) == 0 {
			modbus(s, "scada-1", "10.0.4.9", "10.0.4.20", 6)
		}
		modbus(s, "hmi-7", "10.0.4.66", "10.0.4.21", 3)
	}
	modbus(3*time.Minute, "hmi-7", "10.0.4.66", "10.0.4.20", 16)
	return []byte(b.String())
}

func openTestApp(t *testing.T, cfg node.Config) *node.Node {
	t.Helper()
	a, err := node.Open(t.Context(), cfg, newLogger(os.Stderr, "warn"))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		a.Close()
		t.Fatal(err)
	}
	return a
}

// TestBaselineFeedbackEndToEnd drives the baseline API and CLI against a
// running server: show (viewer), "this is normal" (analyst; a viewer is
// denied, another detector's alert and cohort scope on the unclassified
// cohort are refused; each audited), closing the incident as a false
// positive (lists the baseline alert; --learn marks it), the checkpoint
// restored after a restart of the app, and reset (admin only).
func TestBaselineFeedbackEndToEnd(t *testing.T) {
	cfg := node.DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.LogLevel = t.TempDir(), "127.0.0.1:0", "warn"
	cfg.Baseline.Learn = node.Duration(time.Minute)
	cfg.Baseline.Checkpoint = node.Duration(time.Hour) // only the saves of feedback and shutdown
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a := openTestApp(t, cfg)
	stopped := false
	defer func() {
		if !stopped {
			a.Close()
		}
	}()
	ca := filepath.Join(cfg.DataDir, "pki", "ca.crt")
	admin := a.AdminToken() // given on the first start only
	conn := func(a *node.Node, token string) []string {
		return []string{"--server", a.URL(), "--token", token, "--ca", ca}
	}
	c, err := client.New(a.URL(), a.AdminToken(), client.TLSConfig(a.CAPool()))
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.PostEvents(t.Context(), modbusPolling(time.Now().UTC().Add(-5*time.Minute)))
	if err != nil || len(res.Rejected) > 0 {
		t.Fatalf("post: %+v %v", res, err)
	}
	var writer, pack vigil.Alert
	deadline := time.Now().Add(30 * time.Second)
	for writer.ID == "" || pack.ID == "" {
		alerts, _, err := c.ListAlerts(t.Context(), store.AlertFilter{DeviceID: "hmi-7"})
		if err != nil {
			t.Fatal(err)
		}
		for _, al := range alerts {
			switch {
			case al.RuleID == "baseline.new_modbus_writer":
				writer = al
			case al.Detector != baseline.Name:
				pack = al
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new writer alert and pack alert: %+v %+v", writer, pack)
		}
		time.Sleep(200 * time.Millisecond)
	}
	token := func(role string) string {
		out, code := run(t, "ctl", "token", "create", "--role", role, "--data-dir", cfg.DataDir)
		if code != 0 {
			t.Fatalf("token create %s: %d %s", role, code, out)
		}
		return strings.TrimSpace(out)
	}
	viewer, analyst := token("viewer"), token("analyst")

	// Show, as a viewer.
	out, code := run(t, append([]string{"baseline", "show", "ip:10.0.4.20", "-o", "json"}, conn(a, viewer)...)...)
	var v baseline.View
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || writers(v) != 2 {
		t.Fatalf("baseline show: exit %d: %s", code, out)
	}
	if out, code := run(t, append([]string{"baseline", "show", "unclassified"}, conn(a, viewer)...)...); code != 0 || !strings.Contains(out, "cohort unclassified") {
		t.Errorf("baseline show cohort: exit %d: %s", code, out)
	}
	if out, code := run(t, append([]string{"baseline", "show", "nobody"}, conn(a, viewer)...)...); code == 0 {
		t.Errorf("baseline show nobody: exit 0: %s", out)
	}

	// "This is normal": a viewer is denied; cohort scope on the
	// unclassified cohort and a Sigma alert are refused; an analyst may.
	if out, code := run(t, append([]string{"ctl", "alerts", "normal", writer.ID}, conn(a, viewer)...)...); code == 0 {
		t.Errorf("a viewer marked an alert normal: %s", out)
	}
	if out, code := run(t, append([]string{"ctl", "alerts", "normal", writer.ID, "--cohort"}, conn(a, analyst)...)...); code == 0 || !strings.Contains(out, "unclassified") {
		t.Errorf("cohort scope on unclassified: exit %d: %s", code, out)
	}
	if out, code := run(t, append([]string{"ctl", "alerts", "normal", pack.ID}, conn(a, analyst)...)...); code == 0 {
		t.Errorf("a Sigma alert marked normal: %s", out)
	}
	out, code = run(t, append([]string{"ctl", "alerts", "normal", writer.ID, "-o", "json"}, conn(a, analyst)...)...)
	var fb baseline.Feedback
	if code != 0 || json.Unmarshal([]byte(out), &fb) != nil || fb.Entity != "ip:10.0.4.20" || len(fb.Partitions) == 0 {
		t.Fatalf("ctl alerts normal: exit %d: %s", code, out)
	}
	// Saved at once.
	if _, err := a.Store().GetBaseline(t.Context(), fb.Partitions[0]); err != nil {
		t.Errorf("the feedback's partition is not checkpointed: %v", err)
	}
	recs, err := a.Store().ListAudit(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]int{}
	for _, r := range recs {
		if r.Action == "baseline.normal" {
			outcomes[string(r.Outcome)]++
			if r.Outcome == vigil.OutcomeOK && (r.Object != "alert:"+writer.ID || !strings.Contains(r.Detail, "modbus.writer")) {
				t.Errorf("audit record %+v", r)
			}
		}
	}
	if outcomes[string(vigil.OutcomeOK)] != 1 || outcomes[string(vigil.OutcomeDenied)] != 1 || outcomes[string(vigil.OutcomeRefused)] != 2 {
		t.Errorf("baseline.normal audit outcomes %v, want 1 ok, 1 denied, 2 refused", outcomes)
	}

	// Closing the incident as a false positive lists the baseline alert;
	// with --learn marks it.
	if writer.IncidentID == "" {
		if writer, err = c.GetAlert(t.Context(), writer.ID); err != nil || writer.IncidentID == "" {
			t.Fatalf("the new writer alert has no incident: %v", err)
		}
	}
	out, code = run(t, append([]string{"ctl", "incidents", "resolve", writer.IncidentID, "--as", "false_positive"}, conn(a, analyst)...)...)
	if code != 0 || !strings.Contains(out, writer.ID) || !strings.Contains(out, "vigil ctl alerts normal") {
		t.Errorf("resolve as false positive: exit %d: %s", code, out)
	}
	out, code = run(t, append([]string{"ctl", "incidents", "resolve", writer.IncidentID, "--as", "false_positive", "--learn", "-o", "json"}, conn(a, analyst)...)...)
	var r client.Resolution
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil || r.Baseline == nil || len(r.Baseline.Learned) == 0 {
		t.Errorf("resolve --learn: exit %d: %s", code, out)
	}

	// Restart: the checkpoint (saved at shutdown) is restored.
	a.Close()
	stopped = true
	a = openTestApp(t, cfg)
	stopped = false
	out, code = run(t, append([]string{"baseline", "show", "ip:10.0.4.20", "-o", "json"}, conn(a, viewer)...)...)
	v = baseline.View{}
	// 3: the partition of scada-1 learned the new writer of 10.0.4.20 too.
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || writers(v) != 3 || v.Devices[0].JudgedAgainst != "device" {
		t.Fatalf("after restart, baseline show: exit %d: %s", code, out)
	}

	// Reset: admin only.
	if out, code := run(t, append([]string{"baseline", "reset", "ip:10.0.4.20"}, conn(a, analyst)...)...); code == 0 {
		t.Errorf("an analyst reset a baseline: %s", out)
	}
	if out, code := run(t, append([]string{"baseline", "reset", "ip:10.0.4.20"}, conn(a, admin)...)...); code != 0 {
		t.Errorf("baseline reset: exit %d: %s", code, out)
	}
	out, _ = run(t, append([]string{"baseline", "show", "ip:10.0.4.20", "-o", "json"}, conn(a, viewer)...)...)
	v = baseline.View{}
	if json.Unmarshal([]byte(out), &v) != nil || len(v.Devices) != 2 || writers(v) != 0 {
		t.Errorf("after reset: %s", out)
	}
}

// writers counts the Modbus writers learned for a device over the
// partitions that know it (a receiver known by address is learned in the
// partition of each sender).
func writers(v baseline.View) int {
	n := 0
	for _, d := range v.Devices {
		n += d.Values["modbus.writer"]
	}
	return n
}
