package store_test

import (
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// TestMergeDeviceReportState: the states a report may change and the ones
// it may not.
func TestMergeDeviceReportState(t *testing.T) {
	f := func(stored, report, want vigil.DeviceState) {
		t.Helper()
		got := store.MergeDeviceReport(vigil.Device{ID: "d", State: stored}, vigil.Device{ID: "d", State: report})
		if got.State != want {
			t.Errorf("stored %q, report %q: state %q, want %q", stored, report, got.State, want)
		}
	}
	f(vigil.StateDiscovered, vigil.StateActive, vigil.StateActive)
	f(vigil.StateOffline, vigil.StateActive, vigil.StateActive)
	f(vigil.StateActive, vigil.StateDiscovered, vigil.StateActive)
	f(vigil.StateActive, "", vigil.StateActive)
	f(vigil.StateQuarantined, vigil.StateActive, vigil.StateQuarantined)
	f(vigil.StateRetired, vigil.StateActive, vigil.StateRetired)
	f(vigil.StateRetired, vigil.StateDiscovered, vigil.StateRetired)
}

// TestMergeDeviceReportOwnership: operator-owned fields are kept whatever
// the report holds; report-owned fields are taken when the report has them.
func TestMergeDeviceReportOwnership(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	stored := vigil.Device{ID: "d", Name: "Pump 3", Class: "plc", Firmware: "2.0", Tags: []string{"safety-critical"},
		Enrolled: at, FirstSeen: at, LastSeen: at.Add(time.Hour),
		Software: []vigil.Component{{Name: "a"}}, Health: &vigil.Health{Time: at.Add(time.Hour), CPU: 5}}
	report := vigil.Device{ID: "d", Firmware: "2.1", Tags: []string{"stale"}, Enrolled: at.Add(time.Minute),
		FirstSeen: at.Add(time.Minute), LastSeen: at.Add(30 * time.Minute), Software: []vigil.Component{},
		Health: &vigil.Health{Time: at.Add(30 * time.Minute), CPU: 99}}
	got := store.MergeDeviceReport(stored, report)
	if len(got.Tags) != 1 || got.Tags[0] != "safety-critical" || !got.Enrolled.Equal(at) {
		t.Errorf("operator fields: tags %q enrolled %v", got.Tags, got.Enrolled)
	}
	if got.Name != "Pump 3" || got.Class != "plc" || got.Firmware != "2.1" || got.Software == nil || len(got.Software) != 0 {
		t.Errorf("inventory: %+v", got)
	}
	if !got.FirstSeen.Equal(at) || !got.LastSeen.Equal(at.Add(time.Hour)) || got.Health.CPU != 5 {
		t.Errorf("times and health: first %v last %v health %+v", got.FirstSeen, got.LastSeen, got.Health)
	}
	if len(stored.Software) != 1 || stored.Firmware != "2.0" {
		t.Error("the stored device was modified")
	}
}
