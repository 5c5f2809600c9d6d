package node

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/wire"
)

// TestCloudPushServer: the cloud push endpoint of vigil serve takes an
// EventBridge event with a Bearer token of role agent and a Pub/Sub push
// message with the token in access_token; a viewer's token and no token
// are refused; the events are stored with the token's provenance.
func TestCloudPushServer(t *testing.T) {
	a := startTestApp(t)
	agentTok, _, err := a.tokens.Create("eventbridge", auth.RoleAgent)
	if err != nil {
		t.Fatal(err)
	}
	viewerTok, _, err := a.tokens.Create("viewer", auth.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: a.ca.Pool()}}}
	now := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)
	post := func(path, tok string, body string) (int, wire.Response) {
		t.Helper()
		req, _ := http.NewRequest("POST", a.URL()+path, bytes.NewReader([]byte(body)))
		req.Header.Set("Content-Type", "application/json")
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r wire.Response
		json.NewDecoder(resp.Body).Decode(&r)
		return resp.StatusCode, r
	}
	eb := `{"version":"0","id":"6f1e","detail-type":"AWS API Call via CloudTrail","source":"aws.iot","detail":{"eventTime":"` + now + `","eventSource":"iot.amazonaws.com","eventName":"CreateJob","userIdentity":{"type":"IAMUser","userName":"fleet-admin"},"requestParameters":{"jobId":"fw-9","targets":["arn:aws:iot:us-east-1:111122223333:thing/pump-07"]}}}`
	if code, r := post("/api/v1/ingest/cloud/cloudtrail", agentTok, eb); code != 200 || r.Accepted != 1 {
		t.Fatalf("eventbridge: %d %+v", code, r)
	}
	if code, _ := post("/api/v1/ingest/cloud/cloudtrail", viewerTok, eb); code != http.StatusForbidden {
		t.Errorf("viewer token: %d, want 403", code)
	}
	if code, _ := post("/api/v1/ingest/cloud/cloudtrail", "", eb); code != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", code)
	}
	entry := `{"protoPayload":{"methodName":"google.cloud.iot.v1.DeviceManager.ModifyCloudToDeviceConfig","authenticationInfo":{"principalEmail":"ops@plant.example"}},"insertId":"q1","resource":{"type":"cloudiot_device","labels":{"project_id":"p","device_id":"pump-08"}},"timestamp":"` + now + `","logName":"projects/p/logs/cloudaudit.googleapis.com%2Factivity"}`
	push := `{"message":{"data":"` + base64.StdEncoding.EncodeToString([]byte(entry)) + `","messageId":"1"},"subscription":"projects/p/subscriptions/vigil"}`
	if code, r := post("/api/v1/ingest/cloud/gcp?access_token="+agentTok, "", push); code != 200 || r.Accepted != 1 {
		t.Fatalf("pubsub with access_token: %d %+v", code, r)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		evs, _, err := a.store.ListEvents(t.Context(), store.EventFilter{Kind: "cloud"})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 2 {
			for _, e := range evs {
				if e.Provenance != "token:eventbridge" || (e.DeviceID != "pump-07" && e.DeviceID != "pump-08") {
					t.Errorf("stored: %+v", e)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d cloud events stored, want 2", len(evs))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
