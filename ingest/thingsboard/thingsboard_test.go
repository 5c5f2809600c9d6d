package thingsboard

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/ingest"
)

func readAll(t *testing.T, b []byte) ([]vigil.Event, []error) {
	t.Helper()
	r := NewReader(bytes.NewReader(b), "test")
	var evs []vigil.Event
	var errs []error
	for {
		ev, err := r.Next()
		if err == io.EOF {
			return evs, errs
		}
		if err != nil {
			var re *ingest.RecordError
			if !errors.As(err, &re) {
				return evs, append(errs, err)
			}
			errs = append(errs, err)
			continue
		}
		evs = append(evs, ev)
	}
}

// TestAuditPage reads a page of the audit log REST API: a login, a
// shared attribute update (a twin event), a credentials change and a
// failed server attribute update.
func TestAuditPage(t *testing.T) {
	b, err := os.ReadFile("testdata/audit.json")
	if err != nil {
		t.Fatal(err)
	}
	evs, errs := readAll(t, b)
	if len(errs) > 0 || len(evs) != 4 {
		t.Fatalf("%d events, errors %v", len(evs), errs)
	}
	login := evs[0]
	if login.Kind != "cloud" || login.Action != "login" || login.Category != "authentication" || login.Outcome != "success" ||
		login.Network == nil || login.Network.SrcIP.String() != "203.0.113.66" || login.Fields["user.name"] != "tenant@plant.example" || login.DeviceID != "" {
		t.Errorf("login %+v", login)
	}
	tw := evs[1]
	if tw.Kind != "twin" || tw.Action != "update" || tw.DeviceID != "boiler-3" || tw.Fields["twin.desired.setpoint"] != 85.0 ||
		tw.Fields["twin.params"] != 1.0 || tw.Fields["user.name"] != "tenant@plant.example" || tw.Fields["twin.platform"] != "thingsboard" ||
		tw.Fields["logsource.product"] != nil || tw.Fields["actionData.attributes.mode"] != "boost" {
		t.Errorf("twin %+v", tw)
	}
	cred := evs[2]
	if cred.Kind != "cloud" || cred.DeviceID != "boiler-3" || cred.Fields["logsource.category"] != "platform_change" || cred.Action != "CREDENTIALS_UPDATED" {
		t.Errorf("credentials %+v", cred)
	}
	if cred.Fields["actionData.credentials.credentialsId"] != nil || cred.Fields["thingsboard.credentials_removed"] != true || cred.Fields["actionData.credentials.credentialsType"] != "ACCESS_TOKEN" {
		t.Errorf("credentials kept: %v", cred.Fields)
	}
	if failed := evs[3]; failed.Kind != "cloud" || failed.Outcome != "failure" {
		t.Errorf("failed update %+v", failed)
	}
	if evs[0].ID == "" || evs[0].ID == evs[1].ID {
		t.Errorf("ids %q %q", evs[0].ID, evs[1].ID)
	}
}

func TestBadEntries(t *testing.T) {
	evs, errs := readAll(t, []byte(`{"actionType":"LOGIN"} [{"createdTime":1}] {"actionType":"X","createdTime":-5}`))
	if len(evs) != 0 || len(errs) != 3 {
		t.Fatalf("events %v errors %v", evs, errs)
	}
}

func FuzzReader(f *testing.F) {
	b, _ := os.ReadFile("testdata/audit.json")
	f.Add(b)
	f.Add([]byte(`{"actionType":"ATTRIBUTES_UPDATED","createdTime":1,"entityId":{"entityType":"DEVICE"},"entityName":"d","actionStatus":"SUCCESS","actionData":{"scope":"CLIENT_SCOPE","attributes":{"a":"1","b":{"c":"2"}}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(bytes.NewReader(b), "fuzz")
		for range 10000 {
			ev, err := r.Next()
			if err == io.EOF {
				return
			}
			if err == nil && (ev.Kind == "" || ev.Time.IsZero()) {
				t.Fatalf("event without kind or time: %+v", ev)
			}
		}
	})
}
