package investigate

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
	vreport "github.com/vigil-iot/vigil/vuln/report"
)

//go:embed report.html.tmpl
var reportHTML string

var reportTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"join": func(s []string) string {
		if len(s) == 0 {
			return "—"
		}
		return strings.Join(s, ", ")
	},
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	},
	"tsms":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000") },
	"inc":   func(i int) int { return i + 1 },
	"minus": func(a, b int) int { return a - b },
}).Parse(reportHTML))

// maxReportEvents bounds the evidence events the report's timeline shows.
const maxReportEvents = 40

// reportData is what the report template renders.
type reportData struct {
	Incident  vigil.Incident
	Generated time.Time
	Summary   string
	TTD, TTC  string
	Alerts    []vigil.Alert
	Actions   []vigil.Action
	Timeline  []Entry
	Blast     BlastRadius
	Campaign  *Campaign
	// Remediation is the time to remediate of the findings of its
	// devices that update plans cover (the posture report's measure).
	Remediation []vreport.FindingTTR
}

// Report writes the report of an incident as one self-contained HTML page
// (no external asset, no script; printable): its key facts with the time
// to detect and to contain, one timeline of alerts, evidence events and
// actions, its blast radius, the actions taken and its alerts.
// ENOTFOUND when the incident does not exist.
func (iv *Investigator) Report(ctx context.Context, incidentID string, w io.Writer) error {
	inc, err := iv.st.GetIncident(ctx, incidentID)
	if err != nil {
		return err
	}
	d := reportData{Incident: inc, Generated: iv.clock.Now().UTC(), TTD: "—", TTC: "not contained"}
	if inc.MeasuresDetection() {
		d.TTD = roundDuration(inc.TimeToDetect())
	} else if inc.Replayed {
		d.TTD = "replayed (not counted)"
	}
	if !inc.Contained.IsZero() {
		d.TTC = roundDuration(inc.TimeToContain())
	}
	if d.Alerts, _, err = iv.st.ListAlerts(ctx, store.AlertFilter{IncidentID: inc.ID, Page: store.Page{Limit: 1000}}); err != nil {
		return err
	}
	slices.SortFunc(d.Alerts, func(a, b vigil.Alert) int { return a.FirstEventTime.Compare(b.FirstEventTime) })
	if d.Actions, _, err = iv.st.ListActions(ctx, store.ActionFilter{IncidentID: inc.ID, Page: store.Page{Limit: 1000}}); err != nil {
		return err
	}
	slices.SortFunc(d.Actions, func(a, b vigil.Action) int { return a.Created.Compare(b.Created) })
	if d.Timeline, err = iv.incidentTimeline(ctx, inc.ID); err != nil {
		return err
	}
	evs, err := iv.evidence(ctx, d.Alerts)
	if err != nil {
		return err
	}
	d.Timeline = append(d.Timeline, evs...)
	sortTimeline(d.Timeline)
	if d.Blast, err = iv.blastRadius(ctx, inc); err != nil {
		return err
	}
	cs, err := iv.Campaigns(ctx, CampaignQuery{Since: inc.Detected.Add(-30 * 24 * time.Hour)})
	if err != nil {
		return err
	}
	for i := range cs {
		if slices.Contains(cs[i].Incidents, inc.ID) {
			d.Campaign = &cs[i]
			break
		}
	}
	plans, err := iv.st.ListUpdatePlans(ctx)
	if err != nil {
		return err
	}
	d.Remediation = vreport.DeviceRemediation(plans, inc.DeviceIDs, d.Generated)
	d.Summary = summary(&d)
	var buf bytes.Buffer
	if err := reportTmpl.Execute(&buf, d); err != nil {
		return fmt.Errorf("cannot render the report of incident %s: %w", inc.ID, err)
	}
	_, err = w.Write(buf.Bytes())
	return err
}

// evidence returns timeline entries for the evidence events of alerts
// (those still stored), at most maxReportEvents.
func (iv *Investigator) evidence(ctx context.Context, alerts []vigil.Alert) ([]Entry, error) {
	var out []Entry
	seen := map[string]bool{}
	for _, a := range alerts {
		for _, id := range a.EventIDs {
			if seen[id] || len(out) == maxReportEvents {
				continue
			}
			seen[id] = true
			ev, err := iv.st.GetEvent(ctx, id)
			if vigil.ErrorCode(err) == vigil.ENOTFOUND {
				continue
			} else if err != nil {
				return nil, err
			}
			out = append(out, Entry{Time: ev.Time, What: "event", IncidentID: a.IncidentID, DeviceID: ev.DeviceID, Title: describe(&ev), Ref: ev.ID})
		}
	}
	return out, nil
}

// describe says what an event is in one line.
func describe(ev *vigil.Event) string {
	parts := []string{strings.Trim(ev.Kind+" "+ev.Action+" "+ev.Outcome, " ")}
	for _, f := range []string{"user.name", "source.ip", "destination.ip", "destination.port", "process.command_line", "mqtt.topic", "dns.question.name", "file.path"} {
		if v, ok := ev.Field(f); ok {
			s := vigil.ValueString(v)
			if len(s) > 120 {
				s = s[:120] + "…"
			}
			parts = append(parts, f+"="+s)
		}
	}
	return strings.Join(parts, " ")
}

func summary(d *reportData) string {
	in := &d.Incident
	s := in.Title
	if devs := strings.Join(in.DeviceIDs, ", "); devs != "" && !strings.Contains(s, devs) {
		s += " on " + devs
	}
	s += fmt.Sprintf(", severity %s, status %s. The first malicious event was at %s UTC",
		in.Severity, in.Status, in.FirstEventTime.UTC().Format("2006-01-02 15:04:05"))
	if in.MeasuresDetection() {
		s += fmt.Sprintf("; Vigil detected it %s after receiving the first evidence", d.TTD)
	}
	if !in.Contained.IsZero() {
		s += fmt.Sprintf(" and it was contained %s after detection", d.TTC)
	} else {
		s += "; it is not contained"
	}
	s += fmt.Sprintf(". %d alerts, %d response actions.", len(d.Alerts), len(d.Actions))
	if d.Blast.Total > 0 {
		var top []string
		for _, im := range d.Blast.Items[:min(3, len(d.Blast.Items))] {
			top = append(top, strings.TrimPrefix(im.Entity, "device:"))
		}
		s += fmt.Sprintf(" Blast radius: %d entities, first %s.", d.Blast.Total, strings.Join(top, ", "))
	}
	if d.Campaign != nil {
		s += fmt.Sprintf(" Part of campaign %s (%d incidents on %d devices).", d.Campaign.ID, len(d.Campaign.Incidents), len(d.Campaign.Devices))
	}
	return s
}

// roundDuration shows a duration to the millisecond below a minute, to
// the second above.
func roundDuration(d time.Duration) string {
	if d < time.Minute {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
