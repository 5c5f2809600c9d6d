package rules

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/detect/baseline"
	"github.com/vigil-iot/vigil/detect/sigma"
	"github.com/vigil-iot/vigil/detect/threshold"
)

// TestListenerRulesUseBaseline plays agent listener snapshots through the
// learned baseline (as the stage's enricher) and then the shipped
// threshold rules and Sigma pack, as vigil serve runs them. Two devices
// learn for an hour: cam-1 listens on 22 and 554, cam-2 on 22 and 9999
// (a port no static list of IoT ports holds). Then every report repeats
// the snapshot; cam-2 raises nothing for 9999; cam-1 opens 7070 (one new
// listener: the Sigma rule, medium, not the count rule) and, half an hour
// later, 8765 and 8766 together (the count rule, high, once). Only the
// listener rules are checked: the stage's dedup (once_per) is not run
// here, so the Sigma rule's repeats would show if the baseline marked
// the repeats of a snapshot.
func TestListenerRulesUseBaseline(t *testing.T) {
	var trs []*threshold.Rule
	err := fs.WalkDir(Threshold, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) != ".yaml" {
			return err
		}
		b, err := Threshold.ReadFile(p)
		if err != nil {
			return err
		}
		rs, errs := threshold.Parse(p, b)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		trs = append(trs, rs...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	files := readPack(t)
	ids := packIDs(t, files)
	sig := sigma.NewDetector(loadPack(t, files), sigma.DetectorOptions{})
	thr := threshold.New(trs, threshold.Options{})
	bl := baseline.New(baseline.Options{Learn: time.Hour})

	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	ctx := context.Background()
	got := map[string][]string{} // rule → device@minute
	report := func(at time.Time, dev string, ports ...uint16) {
		for _, port := range ports {
			ev := vigil.Event{ID: fmt.Sprintf("%s-%d-%d", dev, port, at.Unix()), Time: at, Received: at, DeviceID: dev,
				Source: "agent", Kind: vigil.KindNetwork, Category: "network", Action: "listen", Outcome: vigil.OutcomeSuccess,
				Network: &vigil.Network{Transport: "tcp", DstPort: port}, Fields: map[string]any{"process.name": fmt.Sprintf("p%d", port)}}
			bl.Enrich(ctx, 0, &ev)
			emit := func(a vigil.Alert) {
				if a.Severity >= vigil.SeverityMedium {
					got[a.RuleID] = append(got[a.RuleID], fmt.Sprintf("%s@%d:%s", a.DeviceID, int(at.Sub(start).Minutes()), a.Severity))
				}
			}
			for _, d := range []interface {
				Detect(context.Context, int, *vigil.Event, func(vigil.Alert))
			}{bl, thr, sig} {
				d.Detect(ctx, 0, &ev, emit)
			}
		}
	}
	for m := 0; m < 180; m++ {
		at := start.Add(time.Duration(m) * time.Minute)
		cam1 := []uint16{22, 554}
		if m >= 90 {
			cam1 = append(cam1, 7070)
		}
		if m >= 120 {
			cam1 = append(cam1, 8765, 8766)
		}
		report(at, "cam-1", cam1...)
		report(at, "cam-2", 22, 9999)
	}
	want := map[string][]string{
		"vigil-net-unexpected-listener":         {"cam-1@120:high"},
		ids["net_new_listener_unexpected_port"]: {"cam-1@90:medium", "cam-1@120:medium", "cam-1@120:medium"},
		"baseline.new_port_listen":              {"cam-1@90:medium", "cam-1@120:medium"}, // one novelty alert per family a window
	}
	for rule, w := range want {
		if !slices.Equal(got[rule], w) {
			t.Errorf("rule %s: got %v, want %v", rule, got[rule], w)
		}
	}
}
