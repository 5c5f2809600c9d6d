package enroll

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/agent"
	"github.com/vigil-iot/vigil/agent/command"
	"github.com/vigil-iot/vigil/agent/protocol"
)

// postResult posts a command result with the client certificate of id and
// returns the answer's status.
func postResult(t *testing.T, f *fixture, id *agent.Identity, r command.Result) int {
	t.Helper()
	b, _ := json.Marshal(r)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: id.TLSConfig()}, Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	resp, err := c.Post(f.srv.URL+protocol.PathResults, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestResultOnlyFromTheCommandsDevice: device A cannot pass a result for a
// command queued for device B to the response engine, nor one for a
// command id that was never issued.
func TestResultOnlyFromTheCommandsDevice(t *testing.T) {
	f := newFixture(t, false)
	a := f.enroll(t, filepath.Join(t.TempDir(), "a"))
	b := f.enroll(t, filepath.Join(t.TempDir(), "b"))
	cmd, err := f.h.Send(b.DeviceID, command.ActionIsolate, nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	forged := command.Result{CommandID: cmd.ID, Status: command.StatusSucceeded, Action: command.ActionIsolate}
	if got := postResult(t, f, a, forged); got != http.StatusForbidden {
		t.Errorf("device A's result for device B's command: status %d, want 403", got)
	}
	made := command.Result{CommandID: vigil.NewID(), Status: command.StatusSucceeded}
	if got := postResult(t, f, a, made); got != http.StatusForbidden {
		t.Errorf("a result for a command never issued: status %d, want 403", got)
	}
	select {
	case r := <-f.results:
		t.Fatalf("a refused result reached OnResult: %+v", r)
	default:
	}
	if _, _, done := f.h.Result(cmd.ID); done {
		t.Fatal("device A's result was recorded on device B's command")
	}
	// Device B's own result goes through.
	if got := postResult(t, f, b, forged); got != http.StatusOK {
		t.Fatalf("device B's own result: status %d", got)
	}
	if r := <-f.results; r.DeviceID != b.DeviceID || r.CommandID != cmd.ID {
		t.Fatalf("OnResult got %+v", r)
	}
}

// TestResultMetricLabelsBounded: 300 results claiming made-up actions do
// not make 300 series of vigil_agent_command_results_total.
func TestResultMetricLabelsBounded(t *testing.T) {
	f := newFixture(t, false)
	a := f.enroll(t, filepath.Join(t.TempDir(), "a"))
	cmd, err := f.h.Send(a.DeviceID, command.ActionIsolate, nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() { // OnResult's channel holds 10
		for {
			select {
			case <-f.results:
			case <-stop:
				return
			}
		}
	}()
	for i := range 300 {
		id := cmd.ID
		if i%2 == 1 {
			id = vigil.NewID() // not issued: refused
		}
		postResult(t, f, a, command.Result{CommandID: id, Status: command.StatusFailed, Action: fmt.Sprintf("made-up-%d", i)})
	}
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "vigil_agent_command_results_total" {
			continue
		}
		if n := len(mf.GetMetric()); n != 1 {
			t.Fatalf("%d series of %s after 300 results with made-up actions, want 1", n, mf.GetName())
		}
		m := mf.GetMetric()[0]
		if v := m.GetCounter().GetValue(); v != 150 || m.GetLabel()[0].GetValue() != command.ActionIsolate {
			t.Fatalf("series %v = %v, want action isolate (the issued command's) and 150", m.GetLabel(), v)
		}
	}
}

// TestQueueOnlyKnownDevicesAndBounded: commands to devices nobody enrolled
// or inventoried are refused, and the queue of all devices is bounded.
func TestQueueOnlyKnownDevicesAndBounded(t *testing.T) {
	f := newFixture(t, false)
	opts := f.h.opts
	opts.Registerer = nil
	opts.KnownDevice = func(_ context.Context, id string) error {
		if len(id) > 4 && id[:4] == "cam-" {
			return nil
		}
		return vigil.Errorf(vigil.ENOTFOUND, "no device %q", id)
	}
	h, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Send("ghost-1", command.ActionIsolate, nil, time.Minute); vigil.ErrorCode(err) != vigil.ENOTFOUND {
		t.Fatalf("a command to an unknown device: %v, want ENOTFOUND", err)
	}
	for i := range MaxQueued {
		if _, err := h.Send(fmt.Sprintf("cam-%d", i/MaxPending), command.ActionReboot, nil, time.Minute); err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
	}
	if _, err := h.Send("cam-new", command.ActionIsolate, nil, time.Minute); vigil.ErrorCode(err) != vigil.EBUSY {
		t.Fatalf("command %d to a device with none queued: %v, want EBUSY", MaxQueued+1, err)
	}
	// Taking a device's commands makes room again.
	pollOnce(t, h, "cam-0")
	if _, err := h.Send("cam-new", command.ActionIsolate, nil, time.Minute); err != nil {
		t.Fatalf("after a poll: %v", err)
	}
}
