package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/detect/newplace"
	"github.com/vigil-iot/vigil/store"
)

// TestCloudToDeviceIncident: the attack goes from the cloud console to a
// device, and ends up in ONE incident. Through vigil serve: a camera
// reports its inventory (cam-0042 at 192.168.1.20); CloudTrail records
// pushed to /api/v1/ingest/cloud/cloudtrail hold eight days of
// fleet-admin's console logins from the office, then a login from a new
// place without MFA, a certificate attached to the camera's thing and a
// fleet job; then a Suricata alert from the camera's address (ingested
// with vigil ingest --server, tied to the camera by its address). The
// new-place alert (user), the thing change (the camera), the fleet-change
// correlation (user) and the IDS alert (the camera) are one incident.
func TestCloudToDeviceIncident(t *testing.T) {
	a := startTestApp(t)
	c, err := client.New(a.URL(), a.AdminToken(), client.TLSConfig(a.CAPool()))
	if err != nil {
		t.Fatal(err)
	}
	report, err := os.ReadFile(filepath.Join("..", "..", "wire", "testdata", "report.xml"))
	if err != nil {
		t.Fatal(err)
	}
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

	now := time.Now().UTC().Truncate(time.Second)
	at := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	rec := func(id, ts, src, name, ip, extra string) string {
		return fmt.Sprintf(`{"eventVersion":"1.08","eventID":"%s","eventTime":"%s","eventSource":"%s","eventName":"%s","awsRegion":"us-east-1","recipientAccountId":"111122223333","sourceIPAddress":"%s","userAgent":"Mozilla/5.0","userIdentity":{"type":"IAMUser","accountId":"111122223333","userName":"fleet-admin","principalId":"AIDAEXAMPLE"}%s}`, id, ts, src, name, ip, extra)
	}
	var recs []string
	for d := 10; d >= 3; d-- {
		recs = append(recs, rec(fmt.Sprintf("known-%d", d), at(-time.Duration(d)*24*time.Hour), "signin.amazonaws.com", "ConsoleLogin", "198.51.100.20",
			`,"responseElements":{"ConsoleLogin":"Success"},"additionalEventData":{"MFAUsed":"Yes"}`))
	}
	recs = append(recs,
		rec("takeover-1", at(-30*time.Minute), "signin.amazonaws.com", "ConsoleLogin", "203.0.113.66", `,"responseElements":{"ConsoleLogin":"Success"},"additionalEventData":{"MFAUsed":"No"}`),
		rec("takeover-2", at(-25*time.Minute), "iot.amazonaws.com", "AttachThingPrincipal", "203.0.113.66", `,"requestParameters":{"thingName":"cam-0042","principal":"arn:aws:iot:us-east-1:111122223333:cert/ab12"}`),
		rec("takeover-3", at(-24*time.Minute), "iot.amazonaws.com", "CreateJob", "203.0.113.66", `,"requestParameters":{"jobId":"fw-evil","targets":["arn:aws:iot:us-east-1:111122223333:thing/cam-0042","arn:aws:iot:us-east-1:111122223333:thing/cam-0043"]}`),
	)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: a.CAPool()}}}
	req, _ := http.NewRequest("POST", a.URL()+"/api/v1/ingest/cloud/cloudtrail", bytes.NewReader([]byte(`{"Records":[`+strings.Join(recs, ",")+`]}`)))
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

	// The cloud side alerts first.
	waitAlert := func(match func(vigil.Alert) bool, what string) vigil.Alert {
		t.Helper()
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
			if time.Now().After(deadline.Add(60 * time.Second)) {
				var got []string
				for _, x := range as {
					got = append(got, x.Detector+":"+x.RuleID+" "+x.DeviceID+" "+x.IncidentID)
				}
				t.Fatalf("no %s alert in an incident; alerts: %v", what, got)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	np := waitAlert(func(x vigil.Alert) bool { return x.Detector == newplace.Name }, "new place")
	if !strings.Contains(np.Title, "fleet-admin from 203.0.113.66: new network 203.0.113.0/24 (known: 198.51.100.0/24)") {
		t.Errorf("new place alert: %s", np.Title)
	}
	thing := waitAlert(func(x vigil.Alert) bool { return x.Title == "AWS IoT device credentials changed from the console" }, "thing change")
	if thing.DeviceID != "cam-0042" {
		t.Errorf("thing change alert device %q", thing.DeviceID)
	}
	fleet := waitAlert(func(x vigil.Alert) bool { return x.Title == "Fleet change after a console login without MFA" }, "fleet change")

	// Then the device side.
	eve := writeTemp(t, "eve.json", fmt.Sprintf(`{"timestamp":"%s","flow_id":1,"event_type":"alert","src_ip":"192.168.1.20","src_port":40000,"dest_ip":"203.0.113.66","dest_port":443,"proto":"TCP","alert":{"action":"allowed","gid":1,"signature_id":2027865,"rev":2,"signature":"ET MALWARE Suspicious firmware download","category":"A Network Trojan was detected","severity":1}}`+"\n",
		now.Add(-20*time.Minute).Format("2006-01-02T15:04:05.000000-0700")))
	if out, code := run(t, "ingest", "--format", "suricata", eve, "--server", a.URL(), "--token", a.AdminToken(), "--ca", filepath.Join(a.Config().DataDir, "pki", "ca.crt")); code != 0 {
		t.Fatalf("ingest: exit %d\n%s", code, out)
	}
	ids := waitAlert(func(x vigil.Alert) bool { return x.Detector == "ids" }, "ids")
	if ids.DeviceID != "cam-0042" {
		t.Errorf("ids alert device %q", ids.DeviceID)
	}
	for _, x := range []vigil.Alert{thing, fleet, ids} {
		if x.IncidentID != np.IncidentID {
			t.Errorf("%s %q is in incident %s, the new-place login in %s", x.Detector, x.Title, x.IncidentID, np.IncidentID)
		}
	}
	inc, err := a.Store().GetIncident(t.Context(), np.IncidentID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(inc.DeviceIDs, "cam-0042") || !slices.Contains(inc.Entities, "user:fleet-admin") || len(inc.AlertIDs) < 4 {
		t.Errorf("incident: devices %v entities %v alerts %d", inc.DeviceIDs, inc.Entities, len(inc.AlertIDs))
	}
	t.Logf("incident %s %q: devices %v, entities %v, %d alerts", inc.ID, inc.Title, inc.DeviceIDs, inc.Entities, len(inc.AlertIDs))
}
