package sim

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

func TestReportsAreValid(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	f := NewFleet(8, 1, now)
	for _, d := range f.Devices {
		r := f.Report(d, now)
		if err := r.Validate(); err != nil {
			t.Fatalf("%s: routine report is invalid: %v", d.ID, err)
		}
	}
	d := f.Devices[0]
	for _, s := range MiraiScript() {
		evs := s.Apply(d, now.Add(s.At))
		r := f.Report(d, now.Add(s.At))
		r.Events = evs
		if err := r.Validate(); err != nil {
			t.Fatalf("step %q: report is invalid: %v", s.Say, err)
		}
	}
	r := f.Report(d, now.Add(time.Minute))
	if r.Health.CPU < 90 {
		t.Errorf("after the attack CPU = %v, want > 90", r.Health.CPU)
	}
	found := false
	for _, l := range r.Network.Listening {
		found = found || l.Port == 23
	}
	if !found {
		t.Errorf("after the attack no listener on port 23: %+v", r.Network.Listening)
	}
}

func TestBulkBatchSizeAndShape(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	f := NewFleet(100, 1, now)
	b := f.BulkBatch(1000, now, 100, 0)
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	if len(lines) != 1000 {
		t.Fatalf("got %d lines, want 1000", len(lines))
	}
	probes := 0
	for i, l := range lines {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if m["action"] == "listen" {
			probes++
		}
	}
	if probes != 10 {
		t.Errorf("got %d probe events, want 10", probes)
	}
	if avg := len(b) / 1000; avg < 300 || avg > 600 {
		t.Errorf("average event size %d bytes, want about 480", avg)
	}
}
