package web

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/web/api"
)

// TestDeviceCommands lists the commands sent to a device, newest first,
// from its stored actions: who sent them (a playbook, a person), who
// approved, how they ended and what the device answered, without the
// engine's bookkeeping params; a page at a time; ENOTFOUND for an
// unknown device; readable by a viewer.
func TestDeviceCommands(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	for _, id := range []string{"cam-1", "cam-2"} {
		if err := e.store.PutDevice(ctx, vigil.Device{ID: id, State: vigil.StateActive, FirstSeen: now, LastSeen: now}); err != nil {
			t.Fatal(err)
		}
	}
	acts := []vigil.Action{
		{ID: "act-1", Type: "isolate", DeviceID: "cam-1", IncidentID: "inc-1", Playbook: "contain", State: vigil.ActionSucceeded,
			RequestedBy: "playbook:contain", Approvers: []string{"user:ana"}, Result: "isolated; 2 server addresses kept",
			Params: map[string]string{"vigil.connector": "agent", "vigil.guard": "x"}, Created: now.Add(-time.Hour), Updated: now.Add(-59 * time.Minute)},
		{ID: "act-2", Type: "update", DeviceID: "cam-1", State: vigil.ActionFailed, RequestedBy: "user:ana",
			Params: map[string]string{"version": "5.4.6", "vigil.connector": "agent"}, Result: "refused: bad_signature", Created: now.Add(-time.Minute), Updated: now},
		{ID: "act-3", Type: "isolate", DeviceID: "cam-2", State: vigil.ActionPendingApproval, RequestedBy: "playbook:contain", Created: now, Updated: now},
	}
	for _, a := range acts {
		if err := e.store.PutAction(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	var l api.List[DeviceCommand]
	code, body, _ := e.do("GET", "/api/v1/devices/cam-1/commands", "viewer", "")
	if code != 200 {
		t.Fatalf("GET as viewer = %d %s", code, body)
	}
	if err := json.Unmarshal(body, &l); err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 2 {
		t.Fatalf("%d commands, want 2: %s", len(l.Items), body)
	}
	up, iso := l.Items[0], l.Items[1]
	if up.ID != "act-2" || up.Command != "update" || up.By != "user:ana" || up.Status != vigil.ActionFailed || up.Result != "refused: bad_signature" ||
		len(up.Params) != 1 || up.Params["version"] != "5.4.6" || !up.Updated.Equal(now) {
		t.Errorf("newest = %+v", up)
	}
	if iso.ID != "act-1" || iso.Command != "isolate" || iso.By != "playbook:contain" || iso.Playbook != "contain" || iso.Incident != "inc-1" ||
		iso.Params != nil || len(iso.Approvers) != 1 || iso.Status != vigil.ActionSucceeded || !strings.HasPrefix(iso.Result, "isolated") {
		t.Errorf("older = %+v", iso)
	}
	e.get("/api/v1/devices/cam-1/commands?limit=1", 200, &l)
	if len(l.Items) != 1 || l.Items[0].ID != "act-2" || l.NextCursor == "" {
		t.Fatalf("first page = %+v", l)
	}
	e.get("/api/v1/devices/cam-1/commands?limit=1&cursor="+l.NextCursor, 200, &l)
	if len(l.Items) != 1 || l.Items[0].ID != "act-1" {
		t.Fatalf("second page = %+v", l)
	}
	if code, body, _ := e.do("GET", "/api/v1/devices/nope/commands", "viewer", ""); code != 404 {
		t.Errorf("unknown device = %d %s, want 404", code, body)
	}
	if code, _, _ := e.do("GET", "/api/v1/devices/cam-1/commands?limit=x", "viewer", ""); code != 400 {
		t.Errorf("bad limit = %d, want 400", code)
	}
}
