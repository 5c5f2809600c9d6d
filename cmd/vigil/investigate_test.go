package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/graph"
	"github.com/vigil-iot/vigil/investigate"
	"github.com/vigil-iot/vigil/node"
)

// TestInvestigationAgainstServer runs the investigation commands on a
// served brute force of two devices from one address: the graph shows the
// address's logins, the first incident's blast radius names the other
// device (same source), the two incidents are one campaign, and the
// report is an HTML page about the incident.
func TestInvestigationAgainstServer(t *testing.T) {
	cfg := node.DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.LogLevel = t.TempDir(), "127.0.0.1:0", "warn"
	// A short grouping window: the second device's brute force, posted
	// after it, is an incident of its own.
	cfg.IncidentWindow = node.Duration(5 * time.Second)
	a := runTestApp(t, cfg)
	conn := []string{"--server", a.URL(), "--token", a.AdminToken(), "--ca", filepath.Join(a.Config().DataDir, "pki", "ca.crt")}
	c, err := client.New(a.URL(), a.AdminToken(), client.TLSConfig(a.CAPool()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	now := time.Now().UTC()
	post := func(lines ...map[string]any) {
		t.Helper()
		var b strings.Builder
		for _, ev := range lines {
			j, _ := json.Marshal(ev)
			b.Write(j)
			b.WriteByte('\n')
		}
		if res, err := c.PostEvents(t.Context(), []byte(b.String())); err != nil || res.Accepted != len(lines) {
			t.Fatalf("post: %+v %v", res, err)
		}
	}
	ev := func(at time.Duration, dev string, ev map[string]any) map[string]any {
		ev["time"] = now.Add(at).Format(time.RFC3339Nano)
		ev["device_id"] = dev
		return ev
	}
	attack := func(i int, dev string) []map[string]any {
		evs := []map[string]any{ev(-time.Minute, dev, map[string]any{"kind": "inventory", "action": "inventory",
			"fields": map[string]any{"host.ip": []string{"10.77.0." + string(rune('1'+i))}}})}
		for j := range 6 {
			evs = append(evs, ev(time.Duration(i*10+j)*time.Second, dev, map[string]any{"kind": "auth", "action": "login", "outcome": "failure",
				"fields": map[string]any{"user.name": "admin", "source.ip": "203.0.113.66"}}))
		}
		return evs
	}
	// incidents waits until the server has n incidents and the address's
	// graph rels relations (logged_in_to each device, used_account admin).
	var incs []map[string]any
	incidents := func(n, rels int) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			out, code := run(t, append([]string{"ctl", "incidents", "-o", "json"}, conn...)...)
			if code != 0 {
				t.Fatalf("ctl incidents: %d %s", code, out)
			}
			json.Unmarshal([]byte(out), &incs)
			var v graph.View
			out, code = run(t, append([]string{"ctl", "graph", "ip:203.0.113.66", "-o", "json"}, conn...)...)
			json.Unmarshal([]byte(out), &v)
			if len(incs) == n && code == 0 && len(v.Relations) == rels {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("after 60s: %d incidents (want %d), graph of the address (exit %d): %s", len(incs), n, code, out)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	// A device chooses its values: a topic with terminal escapes.
	post(append(attack(0, "inv-cam-1"), ev(3*time.Second, "inv-cam-1", map[string]any{"kind": "mqtt", "action": "publish",
		"fields": map[string]any{"mqtt.topic": "x\x1b]0;pwned\x07\x1b[2Jy"}}))...)
	incidents(1, 2)
	// The second brute force arrives after the grouping window: an
	// incident of its own.
	time.Sleep(time.Duration(cfg.IncidentWindow) + 500*time.Millisecond)
	post(attack(1, "inv-cam-2")...)
	incidents(2, 3)
	if out, code := run(t, append([]string{"ctl", "graph", "inv-cam-1", "--depth", "2"}, conn...)...); code != 0 ||
		!strings.Contains(out, "ip:203.0.113.66") || !strings.Contains(out, "device:inv-cam-2") || !strings.Contains(out, "failed_login_as") ||
		!strings.Contains(out, `"mqtt.topic:x\x1b]0;pwned\a\x1b[2Jy"`) || strings.ContainsRune(out, 0x1b) {
		t.Errorf("ctl graph inv-cam-1 --depth 2: exit %d:\n%q", code, out)
	}

	// The blast radius of the incident on inv-cam-1 names inv-cam-2.
	var first string
	for _, in := range incs {
		if devs, _ := in["device_ids"].([]any); len(devs) == 1 && devs[0] == "inv-cam-1" {
			first, _ = in["id"].(string)
		}
	}
	out, code := run(t, append([]string{"ctl", "incidents", first, "--blast-radius", "-o", "json"}, conn...)...)
	var br investigate.BlastRadius
	if code != 0 || json.Unmarshal([]byte(out), &br) != nil || len(br.Items) == 0 || br.Items[0].Device != "inv-cam-2" {
		t.Fatalf("blast radius of %s: exit %d:\n%s", first, code, out)
	}
	if codes := br.Items[0].Reasons; codes[0].Code != investigate.ReasonSameSource || codes[1].Code != investigate.ReasonSameAccount {
		t.Errorf("inv-cam-2's reasons: %+v", codes)
	}
	if out, code := run(t, append([]string{"ctl", "incidents", first, "--blast-radius"}, conn...)...); code != 0 ||
		!strings.Contains(out, "same_source: the attack's source 203.0.113.66") || strings.ContainsRune(out, 0x1b) || !strings.Contains(out, `pwned\a`) {
		t.Errorf("blast radius table: exit %d:\n%s", code, out)
	}

	// One campaign of the two incidents, and its timeline.
	out, code = run(t, append([]string{"ctl", "campaigns", "-o", "json"}, conn...)...)
	var cs []investigate.Campaign
	if code != 0 || json.Unmarshal([]byte(out), &cs) != nil || len(cs) != 1 || len(cs[0].Incidents) != 2 {
		t.Fatalf("ctl campaigns: exit %d:\n%s", code, out)
	}
	if out, code := run(t, append([]string{"ctl", "campaigns", cs[0].ID}, conn...)...); code != 0 || !strings.Contains(out, "source 203.0.113.66") || strings.Count(out, "alert ") < 2 {
		t.Errorf("ctl campaigns %s: exit %d:\n%s", cs[0].ID, code, out)
	}

	// The report.
	out, code = run(t, append([]string{"ctl", "incidents", first, "--report"}, conn...)...)
	if code != 0 || !strings.HasPrefix(out, "<!DOCTYPE html>") || !strings.Contains(out, first) || !strings.Contains(out, "inv-cam-2") {
		t.Errorf("ctl incidents --report: exit %d:\n%.500s", code, out)
	}
	if out, code := run(t, append([]string{"ctl", "incidents", "--report"}, conn...)...); code == 0 || !strings.Contains(out, "need an incident ID") {
		t.Errorf("--report without an id: exit %d: %s", code, out)
	}
}
