package rules

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/alert"
	"github.com/vigil-iot/vigil/detect/sigma"
	"github.com/vigil-iot/vigil/incident"
	"github.com/vigil-iot/vigil/store/sqlite"
)

// TestPackFiresOncePerKey plays what a new user saw (an unexpected
// listener in each of 275 reports in 10 minutes, 647 runs of a program
// from /tmp on one host) through the pack and the alert stage as vigil
// serve wires it: each rule fires once per device and port or program,
// not once per dedup window, until its incident is resolved.
func TestPackFiresOncePerKey(t *testing.T) {
	files := readPack(t)
	rs := loadPack(t, files)
	ids := packIDs(t, files)
	start := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	var evs []vigil.Event
	for i := range 275 {
		at := start.Add(time.Duration(i) * 10 * time.Minute / 275)
		for _, port := range []uint16{31337, 8081} {
			evs = append(evs, vigil.Event{ID: fmt.Sprintf("listen-%d-%d", port, i), Time: at, Received: at, DeviceID: "cam-0042",
				Source: "agent", Kind: vigil.KindNetwork, Category: "network", Action: "listen", Outcome: vigil.OutcomeSuccess,
				Network: &vigil.Network{Transport: "tcp", DstPort: port},
				// The rule matches what the learned baseline marks new. The
				// baseline marks a port once per device; marked on every
				// snapshot here (the worst case: state lost to a restart,
				// a port that comes and goes), once_per still makes one
				// alert per device and port.
				Fields: map[string]any{"baseline.new_port": true}})
		}
	}
	for i := range 647 {
		at := start.Add(time.Duration(i) * time.Hour / 647)
		exe := "/tmp/.m"
		if i%100 == 99 {
			exe = "/var/tmp/x"
		}
		evs = append(evs, vigil.Event{ID: fmt.Sprintf("exec-%d", i), Time: at, Received: at, DeviceID: "cam-0042",
			Source: "agent", Kind: vigil.KindProcess, Category: "process", Action: "exec", Outcome: vigil.OutcomeSuccess,
			Fields: map[string]any{"process.executable": exe, "process.command_line": exe}})
	}
	created := runAlertStage(t, rs, evs)
	want := map[string]int{ids["net_new_listener_unexpected_port"]: 2, ids["proc_exec_from_writable_dir"]: 2}
	for rule, n := range want {
		if len(created[rule]) != n {
			t.Errorf("rule %s created %d alerts, want %d (one per device and key): %v", rule, len(created[rule]), n, created[rule])
		}
	}
}

// runAlertStage runs events through the pack's online detector and the
// alert stage (dedup with incidents, the correlator) on a fresh store,
// and returns the keys of the alerts created, by rule.
func runAlertStage(t *testing.T, rs *sigma.RuleSet, evs []vigil.Event) map[string][]string {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	corr, err := incident.NewCorrelator(ctx, st, incident.Options{Clock: fixedClock{}})
	if err != nil {
		t.Fatal(err)
	}
	created := map[string][]string{}
	stage, err := alert.NewStage(nil, st, alert.Options{Assigner: corr, Clock: fixedClock{},
		Dedup: alert.DedupOptions{Incidents: st},
		OnStored: func(a vigil.Alert, o alert.Outcome) {
			if o == alert.Created {
				created[a.RuleID] = append(created[a.RuleID], a.DedupKey)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	det := sigma.NewDetector(rs, sigma.DetectorOptions{})
	for i := range evs {
		ev := &evs[i]
		var alerts []vigil.Alert
		det.Detect(ctx, 0, ev, func(a vigil.Alert) {
			a.Created = ev.Time // raised as the event comes in
			alerts = append(alerts, a)
		})
		if err := stage.Handle(ctx, alerts); err != nil {
			t.Fatal(err)
		}
	}
	return created
}
