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
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/store/sqlite"
)

// TestRefireControl plays a repeating event (a telnet login every five
// minutes for three hours on one device) through a rule written three
// ways, the alert stage and the correlator as vigil serve wires them, and
// resolves the rule's incident after the first two hours:
//   - default (refire: window): a new alert every dedup window (10 min);
//   - refire: until_cleared: one alert until its incident is resolved,
//     then one more for the repeats after;
//   - once_per with refire: window: one alert per value per window.
func TestRefireControl(t *testing.T) {
	const rule = `title: Telnet login %[1]s
id: refire-%[1]s
logsource: {product: linux, service: auth}
detection:
    sel: {outcome: success, service.name: telnetd}
    condition: sel
level: high
%[2]s`
	var src string
	for i, extra := range []string{"", "refire: until_cleared\n", "once_per: [user.name]\nrefire: window\n"} {
		if i > 0 {
			src += "---\n"
		}
		src += fmt.Sprintf(rule, []string{"window", "cleared", "oncewin"}[i], extra)
	}
	rs, errs := sigma.LoadBytes("refire.yml", []byte(src), nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	ctx := context.Background()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	corr, err := incident.NewCorrelator(ctx, st, incident.Options{Clock: fixedClock{}})
	if err != nil {
		t.Fatal(err)
	}
	created := map[string]int{}
	stage, err := alert.NewStage(nil, st, alert.Options{Assigner: corr, Clock: fixedClock{},
		Dedup: alert.DedupOptions{Incidents: st},
		OnStored: func(a vigil.Alert, o alert.Outcome) {
			if o == alert.Created {
				created[a.RuleID]++
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	det := sigma.NewDetector(rs, sigma.DetectorOptions{})
	start := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	resolved := false
	for i := range 36 {
		at := start.Add(time.Duration(i) * 5 * time.Minute)
		if !resolved && at.Sub(start) >= 2*time.Hour {
			// The analyst closes what refire-cleared raised.
			as, _, err := st.ListAlerts(ctx, store.AlertFilter{RuleID: "refire-cleared"})
			if err != nil || len(as) != 1 {
				t.Fatalf("alerts of refire-cleared before resolving: %d, %v (created %v)", len(as), err, created)
			}
			if err := corr.Resolve(ctx, as[0].IncidentID, vigil.IncidentResolved, at); err != nil {
				t.Fatal(err)
			}
			resolved = true
		}
		ev := vigil.Event{ID: fmt.Sprintf("login-%d", i), Time: at, Received: at, DeviceID: "cam-1", Source: "agent",
			Kind: vigil.KindAuth, Category: "authentication", Action: "login", Outcome: vigil.OutcomeSuccess,
			Fields: map[string]any{"service.name": "telnetd", "user.name": []string{"root", "admin"}[i%2]}}
		var alerts []vigil.Alert
		det.Detect(ctx, 0, &ev, func(a vigil.Alert) {
			a.Created = at
			alerts = append(alerts, a)
		})
		if err := stage.Handle(ctx, alerts); err != nil {
			t.Fatal(err)
		}
	}
	// window: a repeat merges while the alert is at most 10 minutes old
	// (inclusive), so every third 5-minute event is a new alert: 12 in 3
	// hours. oncewin: each user name repeats every 10 minutes, so every
	// other one is new: 9 per name. cleared: one, and one after the
	// resolution.
	want := map[string]int{"refire-window": 12, "refire-cleared": 2, "refire-oncewin": 18}
	for r, n := range want {
		if created[r] != n {
			t.Errorf("rule %s created %d alerts, want %d", r, created[r], n)
		}
	}
}
