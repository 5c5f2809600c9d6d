package web

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/agent/command"
	"github.com/vigil-iot/vigil/store"
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

// TestDeviceCommandsMerged lists a device's queued commands with its
// actions, newest first: a command sent by a person (queued), one a
// response action sent (taken, with the agent's result), one expired; who
// sent each, its action and parameters from the signed payload, its
// status and result; the same items page by page with any limit as in
// one page; a malformed cursor is refused.
func TestDeviceCommandsMerged(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	if err := e.store.PutDevice(ctx, vigil.Device{ID: "cam-1", State: vigil.StateActive, FirstSeen: now, LastSeen: now}); err != nil {
		t.Fatal(err)
	}
	for _, a := range []vigil.Action{
		{ID: "act-1", Type: "isolate", DeviceID: "cam-1", State: vigil.ActionSucceeded, RequestedBy: "playbook:contain", Created: now.Add(-time.Hour), Updated: now.Add(-59 * time.Minute)},
		{ID: "act-2", Type: "restore", DeviceID: "cam-1", State: vigil.ActionPendingApproval, RequestedBy: "user:ana", Created: now.Add(-10 * time.Minute), Updated: now.Add(-10 * time.Minute)},
	} {
		if err := e.store.PutAction(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	signed := func(id, action string, params map[string]string) []byte {
		p, _ := json.Marshal(command.Command{ID: id, DeviceID: "cam-1", Action: action, Params: params})
		b, _ := json.Marshal(command.Signed{Payload: p, Signature: []byte("sig")})
		return b
	}
	for _, c := range []store.QueuedCommand{
		{ID: "cmd-old", DeviceID: "cam-1", Queued: now.Add(-2 * time.Hour), Expires: now.Add(-115 * time.Minute), Signed: signed("cmd-old", "reboot", nil), By: "token:ci"},
		{ID: "cmd-iso", DeviceID: "cam-1", Queued: now.Add(-59*time.Minute - 30*time.Second), Expires: now.Add(time.Hour), Signed: signed("cmd-iso", "isolate", nil), By: "action:act-1"},
		{ID: "cmd-new", DeviceID: "cam-1", Queued: now.Add(-time.Minute), Expires: now.Add(4 * time.Minute), Signed: signed("cmd-new", "kill_process", map[string]string{"pid": "42"}), By: "user:bob"},
	} {
		if _, err := e.store.EnqueueCommand(ctx, c, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.store.TakeCommands(ctx, "cam-1", now.Add(-59*time.Minute), 1); err != nil { // takes cmd-iso (cmd-old expired)
		t.Fatal(err)
	}
	res, _ := json.Marshal(command.Result{CommandID: "cmd-iso", Status: "succeeded", Output: "isolated; 2 server addresses kept"})
	if err := e.store.RecordCommandResult(ctx, "cmd-iso", res, now.Add(-58*time.Minute)); err != nil {
		t.Fatal(err)
	}
	var l api.List[DeviceCommand]
	e.get("/api/v1/devices/cam-1/commands", 200, &l)
	var got []string
	for _, c := range l.Items {
		got = append(got, c.ID)
	}
	want := []string{"cmd-new", "act-2", "cmd-iso", "act-1", "cmd-old"}
	if strings.Join(got, " ") != strings.Join(want, " ") || l.NextCursor != "" {
		t.Fatalf("history = %v (next %q), want %v", got, l.NextCursor, want)
	}
	nw, iso, old := l.Items[0], l.Items[2], l.Items[4]
	if nw.Kind != "command" || nw.Command != "kill_process" || nw.Params["pid"] != "42" || nw.By != "user:bob" || nw.Status != "queued" ||
		nw.Taken != nil || nw.Expires == nil || !nw.Created.Equal(now.Add(-time.Minute)) {
		t.Errorf("queued command = %+v", nw)
	}
	if iso.Kind != "command" || iso.Command != "isolate" || iso.ActionID != "act-1" || iso.By != "action:act-1" || iso.Status != vigil.ActionSucceeded ||
		iso.Result != "isolated; 2 server addresses kept" || iso.Taken == nil || !iso.Taken.Equal(now.Add(-59*time.Minute)) || !iso.Updated.Equal(now.Add(-58*time.Minute)) {
		t.Errorf("command of an action = %+v", iso)
	}
	if old.Status != "expired" || old.By != "token:ci" || old.Command != "reboot" {
		t.Errorf("expired command = %+v", old)
	}
	if l.Items[1].Kind != "action" || l.Items[1].Status != vigil.ActionPendingApproval {
		t.Errorf("action = %+v", l.Items[1])
	}
	for _, limit := range []int{1, 2, 3, 4, 5} {
		var paged []string
		cursor := ""
		for range 10 {
			var p api.List[DeviceCommand]
			e.get(fmt.Sprintf("/api/v1/devices/cam-1/commands?limit=%d&cursor=%s", limit, cursor), 200, &p)
			if len(p.Items) > limit {
				t.Fatalf("limit %d: page of %d", limit, len(p.Items))
			}
			for _, c := range p.Items {
				paged = append(paged, c.ID)
			}
			if cursor = p.NextCursor; cursor == "" {
				break
			}
		}
		if strings.Join(paged, " ") != strings.Join(want, " ") {
			t.Errorf("by pages of %d: %v, want %v", limit, paged, want)
		}
	}
	if code, _, _ := e.do("GET", "/api/v1/devices/cam-1/commands?cursor=notacursor", "viewer", ""); code != 400 {
		t.Errorf("bad cursor = %d, want 400", code)
	}
}
