package investigate

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// campaignScenario adds to the scenario: inc-2 on cam-2 (the attacker's
// failed login there, same technique sequence), inc-3 on other-1 (a
// different source, nothing shared), and inc-4 on cam-3 linked to inc-2
// only by a file hash (so the campaign grows transitively), plus a
// response action on inc-1.
func campaignScenario(t *testing.T) (*Investigator, store.Store) {
	iv, st := scenario(t)
	ctx := t.Context()
	put := func(evs ...vigil.Event) {
		t.Helper()
		if err := st.PutEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
	}
	login := func(id, dev string, src netip.Addr, user string, at time.Duration) vigil.Event {
		return vigil.Event{ID: id, Time: t0.Add(at), DeviceID: dev, Kind: vigil.KindAuth, Action: "login", Outcome: "failure",
			Network: &vigil.Network{SrcIP: src}, Fields: map[string]any{"user.name": user}}
	}
	put(login("x1", "cam-1", attacker, "root", 0),
		login("x2", "cam-2", attacker, "admin", 2*time.Second),
		login("x3", "other-1", netip.MustParseAddr("198.51.100.1"), "ops", time.Minute),
		vigil.Event{ID: "x4", Time: t0.Add(3 * time.Second), DeviceID: "cam-2", Kind: vigil.KindFile, Fields: map[string]any{"file.hash.sha256": "DEADBEEF"}},
		vigil.Event{ID: "x5", Time: t0.Add(4 * time.Second), DeviceID: "cam-3", Kind: vigil.KindFile, Fields: map[string]any{"file.hash.sha256": "deadbeef"}})
	alert := func(id, inc, dev, title string, at time.Duration, techs []string, evs ...string) {
		t.Helper()
		a := vigil.Alert{ID: id, DedupKey: id, Detector: "sigma", RuleID: "r-" + id, Title: title, Severity: vigil.SeverityHigh, DeviceID: dev,
			Techniques: techs, EventIDs: evs, IncidentID: inc, FirstEventTime: t0.Add(at), LastEventTime: t0.Add(at), Created: t0.Add(at + time.Second), Count: 1}
		if err := st.PutAlert(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	alert("al-1", "inc-1", "cam-1", "Telnet brute force", 0, []string{"T1110"}, "x1")
	alert("al-1b", "inc-1", "cam-1", "Download and execute", 3*time.Second, []string{"T1105"})
	alert("al-2", "inc-2", "cam-2", "Telnet brute force", 2*time.Second, []string{"T1110"}, "x2", "x4")
	alert("al-3", "inc-3", "other-1", "Failed logins", time.Minute, nil, "x3")
	alert("al-4", "inc-4", "cam-3", "Dropped file", 4*time.Second, nil, "x5")
	incident := func(id, dev string, at time.Duration) {
		t.Helper()
		in := vigil.Incident{ID: id, Title: "on " + dev, Status: vigil.IncidentOpen, Severity: vigil.SeverityHigh, DeviceIDs: []string{dev},
			FirstEventTime: t0.Add(at), Detected: t0.Add(at + time.Second), Updated: t0.Add(at + time.Second)}
		if err := st.PutIncident(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	incident("inc-2", "cam-2", 2*time.Second)
	incident("inc-3", "other-1", time.Minute)
	incident("inc-4", "cam-3", 4*time.Second)
	if err := st.PutAction(ctx, vigil.Action{ID: "act-1", Type: "isolate", DeviceID: "cam-1", IncidentID: "inc-1", Playbook: "contain-compromised-device",
		State: vigil.ActionSucceeded, Result: "isolated", RequestedBy: "playbook", Created: t0.Add(8 * time.Second), Updated: t0.Add(9 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	return iv, st
}

func TestCampaigns(t *testing.T) {
	iv, _ := campaignScenario(t)
	cs, err := iv.Campaigns(t.Context(), CampaignQuery{Since: t0.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 {
		t.Fatalf("%d campaigns, want 1: %+v", len(cs), cs)
	}
	c := cs[0]
	if !slices.Equal(c.Incidents, []string{"inc-1", "inc-2", "inc-4"}) || !slices.Equal(c.Devices, []string{"cam-1", "cam-2", "cam-3"}) {
		t.Fatalf("campaign: incidents %v devices %v", c.Incidents, c.Devices)
	}
	var inds []string
	for _, ind := range c.Indicators {
		inds = append(inds, ind.Kind+" "+ind.Value+" "+strings.Join(ind.Incidents, ","))
	}
	want := []string{
		"source 203.0.113.66 inc-1,inc-2",
		"file deadbeef inc-2,inc-4",
	}
	slices.Sort(inds)
	slices.Sort(want)
	if !slices.Equal(inds, want) {
		t.Errorf("indicators:\n%s\nwant:\n%s", strings.Join(inds, "\n"), strings.Join(want, "\n"))
	}
	if c.Timeline != nil || !c.First.Equal(t0) || c.Severity != vigil.SeverityCritical || !strings.HasPrefix(c.ID, "camp-") {
		t.Errorf("campaign: %+v", c)
	}

	full, err := iv.Campaign(t.Context(), c.ID, CampaignQuery{Since: t0.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range full.Timeline {
		lines = append(lines, e.Time.Sub(t0).String()+" "+e.What+" "+e.DeviceID+" "+e.Ref)
	}
	wantTL := []string{"0s alert cam-1 al-1", "2s alert cam-2 al-2", "3s alert cam-1 al-1b", "4s alert cam-3 al-4", "8s action cam-1 act-1"}
	if !slices.Equal(lines, wantTL) {
		t.Errorf("timeline:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(wantTL, "\n"))
	}
	if _, err := iv.Campaign(t.Context(), "camp-nope", CampaignQuery{Since: t0.Add(-time.Hour)}); vigil.ErrorCode(err) != vigil.ENOTFOUND {
		t.Errorf("unknown campaign: %v", err)
	}
	// Out of the window: no campaign.
	cs, err = iv.Campaigns(t.Context(), CampaignQuery{Since: t0.Add(time.Hour)})
	if err != nil || len(cs) != 0 {
		t.Errorf("campaigns after the incidents: %v %v", cs, err)
	}
}

// TestCampaignByTechniqueSequence checks that an incident sharing only the
// sequence of techniques (brute force, then a download) joins, and that
// one technique alone links nothing.
func TestCampaignByTechniqueSequence(t *testing.T) {
	iv, st := campaignScenario(t)
	ctx := t.Context()
	for i, tech := range [][]string{{"T1110.001"}, {"T1105"}} {
		id := []string{"al-5a", "al-5b"}[i]
		at := t0.Add(time.Duration(10+i) * time.Minute)
		if err := st.PutAlert(ctx, vigil.Alert{ID: id, DedupKey: id, RuleID: id, Title: id, Severity: vigil.SeverityMedium, DeviceID: "plc-2",
			Techniques: tech, IncidentID: "inc-5", FirstEventTime: at, LastEventTime: at, Created: at, Count: 1}); err != nil {
			t.Fatal(err)
		}
	}
	at := t0.Add(10 * time.Minute)
	if err := st.PutIncident(ctx, vigil.Incident{ID: "inc-5", Status: vigil.IncidentOpen, DeviceIDs: []string{"plc-2"},
		FirstEventTime: at, Detected: at, Updated: at}); err != nil {
		t.Fatal(err)
	}
	cs, err := iv.Campaigns(ctx, CampaignQuery{Since: t0.Add(-time.Hour)})
	if err != nil || len(cs) != 1 {
		t.Fatalf("campaigns: %v %+v", err, cs)
	}
	if !slices.Equal(cs[0].Incidents, []string{"inc-1", "inc-2", "inc-4", "inc-5"}) ||
		!slices.ContainsFunc(cs[0].Indicators, func(i Indicator) bool {
			return i.Kind == IndicatorTechniques && i.Value == "T1110>T1105" && slices.Equal(i.Incidents, []string{"inc-1", "inc-5"})
		}) {
		t.Errorf("campaign: %v %+v", cs[0].Incidents, cs[0].Indicators)
	}
}

// TestCampaignsKeepIndicators: the indicators of an incident are read
// once and kept; evidence added to an incident that did not change shows
// after IndicatorTTL, and at once when the incident changed (a new
// alert, a new update time).
func TestCampaignsKeepIndicators(t *testing.T) {
	members := func(iv *Investigator) string {
		t.Helper()
		cs, err := iv.Campaigns(t.Context(), CampaignQuery{Since: t0.Add(-time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range cs {
			out = append(out, strings.Join(c.Incidents, ","))
		}
		return strings.Join(out, " ")
	}
	// inc-3 (other-1) gets an alert whose evidence drops the file that links
	// inc-2 and inc-4: it joins their campaign once its indicators are read.
	link := func(t *testing.T, st store.Store) {
		t.Helper()
		ev := vigil.Event{ID: "x6", Time: t0.Add(70 * time.Second), DeviceID: "other-1", Kind: vigil.KindFile, Fields: map[string]any{"file.hash.sha256": "deadbeef"}}
		if err := st.PutEvents(t.Context(), []vigil.Event{ev}); err != nil {
			t.Fatal(err)
		}
		a := vigil.Alert{ID: "al-3b", DedupKey: "al-3b", Detector: "sigma", RuleID: "r", Title: "Dropped file", Severity: vigil.SeverityHigh, DeviceID: "other-1",
			EventIDs: []string{"x6"}, IncidentID: "inc-3", FirstEventTime: ev.Time, LastEventTime: ev.Time, Created: ev.Time, Count: 1}
		if err := st.PutAlert(t.Context(), a); err != nil {
			t.Fatal(err)
		}
	}
	const before, after = "inc-1,inc-2,inc-4", "inc-1,inc-2,inc-4,inc-3" // by detection

	t.Run("ttl", func(t *testing.T) {
		iv, st := campaignScenario(t)
		clk := &stepClock{t: t0.Add(time.Hour)}
		iv.clock = clk
		if got := members(iv); got != before {
			t.Fatalf("campaigns %q, want %q", got, before)
		}
		link(t, st)
		if got := members(iv); got != before {
			t.Fatalf("campaigns right after, with the incident unchanged: %q, want the kept %q", got, before)
		}
		clk.t = clk.t.Add(IndicatorTTL - time.Second)
		if got := members(iv); got != before {
			t.Fatalf("campaigns before IndicatorTTL: %q, want %q", got, before)
		}
		clk.t = clk.t.Add(time.Second)
		if got := members(iv); got != after {
			t.Fatalf("campaigns after IndicatorTTL: %q, want %q", got, after)
		}
	})
	t.Run("incident changed", func(t *testing.T) {
		iv, st := campaignScenario(t)
		iv.clock = &stepClock{t: t0.Add(time.Hour)}
		if got := members(iv); got != before {
			t.Fatalf("campaigns %q, want %q", got, before)
		}
		link(t, st)
		in, err := st.GetIncident(t.Context(), "inc-3")
		if err != nil {
			t.Fatal(err)
		}
		in.AlertIDs = append(in.AlertIDs, "al-3b") // Updated unchanged: an older alert joined
		if err := st.PutIncident(t.Context(), in); err != nil {
			t.Fatal(err)
		}
		if got := members(iv); got != after {
			t.Fatalf("campaigns after the incident took the alert: %q, want %q", got, after)
		}
	})
}

// stepClock is a clock a test moves.
type stepClock struct{ t time.Time }

func (c *stepClock) Now() time.Time { return c.t }
