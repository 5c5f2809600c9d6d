package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/detect/newplace"
	"github.com/vigil-iot/vigil/node"
	"github.com/vigil-iot/vigil/store"
)

// TestTwinToDeviceIncident: a stolen ThingsBoard password pushes a device
// past its operating range and the device then calls out; through vigil
// serve, ONE incident holds the cloud and the device sides. A camera
// (cam-0042 at 192.168.1.20, from its inventory report) talks to its
// broker and reports its heater setpoint between 18 and 23 in its shadow
// (twin events as the sensor makes them from the MQTT publishes) while the
// baseline learns (one hour). ThingsBoard's audit log, pushed to
// /api/v1/ingest/cloud/thingsboard, holds a week of the tenant admin's
// logins from the office, then a login from a new place and a shared
// attribute update setting the camera's setpoint to 85. Then the camera
// connects to an address it never used. Expected: the new-place login
// (user), the out-of-range setpoint (the camera, and the user who set
// it), the login-then-out-of-range correlation (user), the new peer and
// the platform-change-then-new-peer correlation (the camera), in one
// incident.
//
// The login has no device and the setpoint update has the camera's: on a
// bus of several partitions they are judged in different partitions,
// where a correlation cannot join them (docs/rule-pack.md). This server
// has one partition, so the login-then-out-of-range correlation is
// checked online too; the incident would join the alerts either way.
func TestTwinToDeviceIncident(t *testing.T) {
	cfg := node.DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.LogLevel = t.TempDir(), "127.0.0.1:0", "warn"
	cfg.SigmaDirs = []string{t.TempDir()}
	cfg.Baseline.Learn = node.Duration(time.Hour)
	cfg.Partitions = 1
	a := runTestApp(t, cfg)
	c, err := client.New(a.URL(), a.AdminToken(), client.TLSConfig(a.CAPool()))
	if err != nil {
		t.Fatal(err)
	}
	report, err := os.ReadFile(filepath.Join("..", "..", "wire", "testdata", "report.xml"))
	if err != nil {
		t.Fatal(err)
	}
	// The report is dated 3h10m ago, so that the camera's baseline
	// starts learning then (its own date is weeks old).
	now := time.Now().UTC().Truncate(time.Second)
	report = regexp.MustCompile(`2026-11-22T03:1[45]:[0-9.]+Z`).ReplaceAll(report, []byte(now.Add(-3*time.Hour-10*time.Minute).Format(time.RFC3339)))
	if res, err := c.PostReport(t.Context(), "application/xml", report); err != nil || res.Accepted == 0 {
		t.Fatalf("report: %+v %v", res, err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if d, err := a.Store().GetDevice(t.Context(), "cam-0042"); err == nil && len(d.Network) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the camera is not in the inventory")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := a.RefreshDeviceIndex(t.Context()); err != nil {
		t.Fatal(err)
	}

	at := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339Nano) }
	post := func(lines []map[string]any) {
		t.Helper()
		var b strings.Builder
		for _, l := range lines {
			j, _ := json.Marshal(l)
			b.Write(j)
			b.WriteByte('\n')
		}
		res, err := c.PostEvents(t.Context(), []byte(b.String()))
		if err != nil || res.Accepted != len(lines) || len(res.Rejected) > 0 {
			t.Fatalf("post: %+v %v", res, err)
		}
	}
	flow := func(d time.Duration, port int, dst string, dport int) map[string]any {
		// No device id: ingest/devmap ties the flow to the camera by its
		// address, as it does for a network monitor's records.
		return map[string]any{"time": at(d), "source": "sensor", "kind": "flow", "action": "flow",
			"network": map[string]any{"transport": "tcp", "src_ip": "192.168.1.20", "src_port": port, "dst_ip": dst, "dst_port": dport},
			"fields":  map[string]any{"flow.app_proto": "mqtt", "flow.bytes_toserver": 900, "flow.bytes_toclient": 300}}
	}

	// The device side while the baseline learns: its broker, and its
	// heater setpoint as it reports it in its shadow.
	var learn []map[string]any
	setpoints := []float64{18, 21, 23, 19.5, 22}
	for i, d := 0, -3*time.Hour; d < -40*time.Minute; i, d = i+1, d+5*time.Minute {
		learn = append(learn, flow(d, 40000+i, "198.51.100.10", 8883))
		if i%3 == 0 {
			learn = append(learn, map[string]any{"time": at(d + time.Second), "device_id": "cam-0042", "source": "sensor", "kind": "twin", "action": "update", "category": "configuration",
				"network": map[string]any{"transport": "tcp", "src_ip": "192.168.1.20", "src_port": 40000 + i, "dst_ip": "198.51.100.10", "dst_port": 8883},
				"fields": map[string]any{"twin.platform": "aws_iot_shadow", "twin.thing": "cam-0042", "twin.sections": []string{"reported"},
					"twin.reported.heater.setpoint": setpoints[(i/3)%len(setpoints)], "mqtt.topic": "$aws/things/cam-0042/shadow/update"}})
		}
	}
	post(learn)

	// The cloud side: ThingsBoard's audit log.
	entry := func(id string, d time.Duration, ent, entType, action, data string) string {
		return fmt.Sprintf(`{"id":{"entityType":"AUDIT_LOG","id":"%s"},"createdTime":%d,"tenantId":{"entityType":"TENANT","id":"13814000-1dd2-11b2-8080-808080808080"},"entityId":{"entityType":"%s","id":"784f394c-42b6-435a-983c-b7beff2784f9"},"entityName":"%s","userId":{"entityType":"USER","id":"5a797660-4612-11e7-a919-92ebcb67c2aa"},"userName":"tenant@plant.example","actionType":"%s","actionData":%s,"actionStatus":"SUCCESS","actionFailureDetails":null}`,
			id, now.Add(d).UnixMilli(), entType, ent, action, data)
	}
	var recs []string
	for day := 10; day >= 3; day-- {
		recs = append(recs, entry(fmt.Sprintf("known-%d", day), -time.Duration(day)*24*time.Hour, "tenant@plant.example", "USER", "LOGIN",
			`{"clientAddress":"198.51.100.20","browser":"Firefox 128.0","os":"Linux","device":"Other"}`))
	}
	recs = append(recs,
		entry("takeover-1", -30*time.Minute, "tenant@plant.example", "USER", "LOGIN", `{"clientAddress":"203.0.113.66","browser":"Chrome 131.0","os":"Windows","device":"Other"}`),
		entry("takeover-2", -25*time.Minute, "cam-0042", "DEVICE", "ATTRIBUTES_UPDATED", `{"entityId":"784f394c-42b6-435a-983c-b7beff2784f9","scope":"SHARED_SCOPE","attributes":{"heater.setpoint":"85"}}`),
	)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: a.CAPool()}}}
	req, _ := http.NewRequest("POST", a.URL()+"/api/v1/ingest/cloud/thingsboard", bytes.NewReader([]byte(`{"data":[`+strings.Join(recs, ",")+`],"totalPages":1,"hasNext":false}`)))
	req.Header.Set("Authorization", "Bearer "+a.AdminToken())
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var pr struct{ Accepted int }
	json.NewDecoder(resp.Body).Decode(&pr)
	resp.Body.Close()
	if resp.StatusCode != 200 || pr.Accepted != len(recs) {
		t.Fatalf("push: %d accepted %d of %d", resp.StatusCode, pr.Accepted, len(recs))
	}

	waitAlert := func(match func(vigil.Alert) bool, what string) vigil.Alert {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			as, _, err := a.Store().ListAlerts(t.Context(), store.AlertFilter{Page: store.Page{Limit: 500}})
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range as {
				if match(x) && x.IncidentID != "" {
					return x
				}
			}
			if time.Now().After(deadline) {
				var got []string
				for _, x := range as {
					got = append(got, x.Detector+":"+x.RuleID+" "+x.Title+" "+x.DeviceID+" "+x.IncidentID)
				}
				t.Fatalf("no %s alert in an incident; alerts:\n%s", what, strings.Join(got, "\n"))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	np := waitAlert(func(x vigil.Alert) bool { return x.Detector == newplace.Name }, "new place")
	tw := waitAlert(func(x vigil.Alert) bool { return x.RuleID == "baseline.twin_param_out_of_range" }, "twin out of range")
	if tw.DeviceID != "cam-0042" || !strings.Contains(tw.Title, "heater.setpoint") || !strings.Contains(tw.Title, "85") || !strings.Contains(tw.Title, "18 to 23") {
		t.Errorf("twin alert: %s on %q", tw.Title, tw.DeviceID)
	}
	if ex, _ := tw.Fields["explanation"].(string); !strings.Contains(ex, "user tenant@plant.example set heater.setpoint of cam-0042 to 85") {
		t.Errorf("twin alert explanation: %q", ex)
	}
	loginThenSet := waitAlert(func(x vigil.Alert) bool { return x.RuleID == "96b685ee-c39e-4943-a678-8d7d4909780c" }, "login then out of range")

	// Then the device calls out.
	post([]map[string]any{flow(-20*time.Minute, 41999, "203.0.113.99", 4444)})
	peer := waitAlert(func(x vigil.Alert) bool {
		return x.RuleID == "baseline.new_peer_out" && strings.Contains(x.Title, "203.0.113.99")
	}, "new peer")
	changeThenPeer := waitAlert(func(x vigil.Alert) bool { return x.RuleID == "4aac7e51-89ba-4b9f-b2f1-967d1c5925c4" }, "platform change then new peer")
	if changeThenPeer.DeviceID != "cam-0042" {
		t.Errorf("correlation device %q", changeThenPeer.DeviceID)
	}
	for _, x := range []vigil.Alert{tw, loginThenSet, peer, changeThenPeer} {
		if x.IncidentID != np.IncidentID {
			t.Errorf("%s %q is in incident %s, the new-place login in %s", x.Detector, x.Title, x.IncidentID, np.IncidentID)
		}
	}
	all, _, err := a.Store().ListAlerts(t.Context(), store.AlertFilter{Page: store.Page{Limit: 500}})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range all {
		if strings.Contains(x.Title, "198.51.100.10") {
			t.Errorf("the camera's broker, learned, alerted: %s", x.Title)
		}
		t.Logf("alert %s %s: %s (%s)", x.Detector, x.Severity, x.Title, x.DeviceID)
	}
	inc, err := a.Store().GetIncident(t.Context(), np.IncidentID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(inc.DeviceIDs, "cam-0042") || !slices.Contains(inc.Entities, "user:tenant@plant.example") || len(inc.AlertIDs) < 5 {
		t.Errorf("incident: devices %v entities %v alerts %d", inc.DeviceIDs, inc.Entities, len(inc.AlertIDs))
	}
	t.Logf("incident %s %q: devices %v, entities %v, %d alerts", inc.ID, inc.Title, inc.DeviceIDs, inc.Entities, len(inc.AlertIDs))
}
