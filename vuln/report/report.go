package report

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/vuln"
	"github.com/vigil-iot/vigil/vuln/scan"
)

// Summary is the headline numbers.
type Summary struct {
	Devices int `json:"devices"`
	// Uninventoried devices reported no vendor, model, firmware or
	// software: nothing about them could be checked.
	Uninventoried     int `json:"uninventoried"`
	Sources           int `json:"sources"`
	VulnerableDevices int `json:"vulnerable_devices"`
	Findings          int `json:"findings"`
	Suppressed        int `json:"suppressed"`
	KEVFindings       int `json:"kev_findings"`
	KEVDevices        int `json:"kev_devices"`
	OverdueKEV        int `json:"overdue_kev"`
	ExposedCritical   int `json:"exposed_critical"`
}

// FirmwareRow is one vendor/model/firmware and its devices. Unknown
// is the row of the devices that reported none of the three.
type FirmwareRow struct {
	Unknown    bool   `json:"unknown,omitempty"`
	Vendor     string `json:"vendor"`
	Model      string `json:"model"`
	Firmware   string `json:"firmware"`
	Devices    int    `json:"devices"`
	Vulnerable int    `json:"vulnerable"`
	Findings   int    `json:"findings"`
	KEV        int    `json:"kev"`
}

// SeverityRow counts findings of one severity.
type SeverityRow struct {
	Severity string `json:"severity"`
	Findings int    `json:"findings"`
	Devices  int    `json:"devices"`
}

// KEVRow is one KEV finding with its due date.
type KEVRow struct {
	CVE         string    `json:"cve"`
	DeviceID    string    `json:"device_id"`
	Component   string    `json:"component"`
	Version     string    `json:"version"`
	Fixed       string    `json:"fixed,omitempty"`
	Due         time.Time `json:"due"`
	Overdue     bool      `json:"overdue"`
	DaysOverdue int       `json:"days_overdue,omitempty"`
	Exposed     bool      `json:"exposed"`
}

// Gap is something the report cannot tell, and how to fix it: what to
// do, and the command that does it.
type Gap struct {
	What    string `json:"what"`
	Fix     string `json:"fix"`
	Command string `json:"command,omitempty"`
}

// IncidentSummary counts incidents and gives the mean times.
type IncidentSummary struct {
	Total         int `json:"total"`
	Open          int `json:"open"`
	Contained     int `json:"contained"`
	Resolved      int `json:"resolved"`
	FalsePositive int `json:"false_positive"`
	// Replayed incidents (made of replayed or backfilled evidence only)
	// are counted but left out of MTTD.
	Replayed int `json:"replayed"`
	// MTTD is the mean time to detect over the Measured incidents.
	MTTD     Duration `json:"mttd"`
	Measured int      `json:"mttd_incidents"`
	// MTTC is the mean time to contain over the ContainedN incidents
	// that were contained.
	MTTC       Duration `json:"mttc"`
	ContainedN int      `json:"mttc_incidents"`
}

// Duration is a duration shown as text ("1m30s") and in seconds.
type Duration struct {
	Text    string  `json:"text"`
	Seconds float64 `json:"seconds"`
}

func duration(d time.Duration) Duration {
	if d >= time.Second {
		d = d.Round(time.Second)
	} else {
		d = d.Round(time.Millisecond)
	}
	return Duration{Text: d.String(), Seconds: d.Seconds()}
}

// IncidentRow is one recent incident.
type IncidentRow struct {
	ID            string    `json:"id"`
	Title         string    `json:"title"`
	Status        string    `json:"status"`
	Severity      string    `json:"severity"`
	Detected      time.Time `json:"detected"`
	TimeToDetect  string    `json:"time_to_detect"`
	TimeToContain string    `json:"time_to_contain,omitempty"`
	Actions       int       `json:"actions"`
}

// CountRow is a count of one value.
type CountRow struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// ResponseSummary counts the response actions taken.
type ResponseSummary struct {
	Total           int        `json:"total"`
	Succeeded       int        `json:"succeeded"`
	Failed          int        `json:"failed"`
	PendingApproval int        `json:"pending_approval"`
	ByType          []CountRow `json:"by_type"`
	ByState         []CountRow `json:"by_state"`
}

// ActionRow is one recent action.
type ActionRow struct {
	Type        string    `json:"type"`
	DeviceID    string    `json:"device_id,omitempty"`
	State       string    `json:"state"`
	RequestedBy string    `json:"requested_by"`
	Created     time.Time `json:"created"`
	Result      string    `json:"result,omitempty"`
}

// Report is the posture report.
type Report struct {
	Generated time.Time `json:"generated"`
	// Missing says what the report cannot tell and how to fix it.
	Missing   []Gap           `json:"missing"`
	Summary   Summary         `json:"summary"`
	Incidents IncidentSummary `json:"incidents"`
	Recent    []IncidentRow   `json:"recent_incidents"`
	Response  ResponseSummary `json:"response"`
	Actions   []ActionRow     `json:"recent_actions"`
	// Remediation is what the update plans fixed, with the time to
	// remediate per finding and per cohort.
	Remediation RemediationSummary `json:"remediation"`
	Firmware    []FirmwareRow      `json:"firmware"`
	Severity    []SeverityRow      `json:"severity"`
	KEV         []KEVRow           `json:"kev"`
	Top         []vuln.Finding     `json:"top"`
	Trend       []scan.TrendPoint  `json:"trend"`
	// Findings are every open finding, by rank (CSV rows; not in HTML).
	Findings []vuln.Finding `json:"findings"`
}

// TopN is how many findings the report lists first; RecentN how many
// incidents and actions.
const (
	TopN    = 50
	RecentN = 20
)

// maxObjects bounds how many incidents and actions the report reads.
const maxObjects = 100000

// Input is what the report is built from.
type Input struct {
	// Devices are the devices the server knows (the store's inventory).
	Devices []vigil.Device
	// Scanned are the devices the vulnerability scan knows, with the
	// inventory it matched; a device in either list counts.
	Scanned []vigil.Device
	// Findings may include suppressed ones (they are only counted).
	Findings  []vuln.Finding
	Trend     []scan.TrendPoint
	Sources   []scan.SourceInfo
	Incidents []vigil.Incident
	Actions   []vigil.Action
	// Plans are the update plans (remediate).
	Plans []vigil.UpdatePlan
	Now   time.Time
}

// Store is what the report reads of the server's store.
type Store interface {
	ListDevices(ctx context.Context, f store.DeviceFilter) ([]vigil.Device, string, error)
	ListIncidents(ctx context.Context, f store.IncidentFilter) ([]vigil.Incident, string, error)
	ListActions(ctx context.Context, f store.ActionFilter) ([]vigil.Action, string, error)
	ListUpdatePlans(ctx context.Context, states ...string) ([]vigil.UpdatePlan, error)
}

// Posture builds the report from the store (devices, incidents, actions)
// and the scan DB (inventory matched, findings, sources, trend).
func Posture(ctx context.Context, st Store, db *scan.DB, now time.Time) (*Report, error) {
	in := Input{Scanned: db.Devices(), Findings: db.Findings(scan.Filter{Suppressed: true}), Trend: db.Trend(), Sources: db.Sources(), Now: now}
	var err error
	if in.Devices, err = readAll(func(p store.Page) ([]vigil.Device, string, error) {
		return st.ListDevices(ctx, store.DeviceFilter{Page: p})
	}); err != nil {
		return nil, fmt.Errorf("cannot read devices for the report: %w", err)
	}
	if in.Incidents, err = readAll(func(p store.Page) ([]vigil.Incident, string, error) {
		return st.ListIncidents(ctx, store.IncidentFilter{Page: p})
	}); err != nil {
		return nil, fmt.Errorf("cannot read incidents for the report: %w", err)
	}
	if in.Actions, err = readAll(func(p store.Page) ([]vigil.Action, string, error) {
		return st.ListActions(ctx, store.ActionFilter{Page: p})
	}); err != nil {
		return nil, fmt.Errorf("cannot read actions for the report: %w", err)
	}
	if in.Plans, err = st.ListUpdatePlans(ctx); err != nil {
		return nil, fmt.Errorf("cannot read update plans for the report: %w", err)
	}
	return Build(in), nil
}

// readAll reads the pages of a list, at most maxObjects items.
func readAll[T any](list func(store.Page) ([]T, string, error)) ([]T, error) {
	var out []T
	p := store.Page{Limit: 1000}
	for len(out) < maxObjects {
		items, next, err := list(p)
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
		if next == "" || len(items) == 0 {
			break
		}
		p.Cursor = next
	}
	return out, nil
}

// Build builds the report.
func Build(in Input) *Report {
	now, findings := in.Now, in.Findings
	r := &Report{Generated: now, Trend: in.Trend, Summary: Summary{Sources: len(in.Sources)}}
	devices := mergeDevices(in.Devices, in.Scanned)
	r.Summary.Devices = len(devices)
	open := make([]vuln.Finding, 0, len(findings))
	for _, f := range findings {
		if f.Suppressed != "" {
			r.Summary.Suppressed++
			continue
		}
		open = append(open, f)
	}
	sort.SliceStable(open, func(i, j int) bool {
		if open[i].Rank != open[j].Rank {
			return open[i].Rank > open[j].Rank
		}
		return open[i].ID < open[j].ID
	})
	r.Findings = open
	r.Summary.Findings = len(open)
	vulnDev := map[string]bool{}
	kevDev := map[string]bool{}
	sevDev := map[string]map[string]bool{}
	sevN := map[string]int{}
	perDev := map[string]struct{ n, kev int }{}
	for _, f := range open {
		vulnDev[f.DeviceID] = true
		if sevDev[f.Severity] == nil {
			sevDev[f.Severity] = map[string]bool{}
		}
		sevDev[f.Severity][f.DeviceID] = true
		sevN[f.Severity]++
		pd := perDev[f.DeviceID]
		pd.n++
		if f.KEV {
			pd.kev++
			kevDev[f.DeviceID] = true
			r.Summary.KEVFindings++
			row := KEVRow{CVE: f.Vuln, DeviceID: f.DeviceID, Component: f.Component, Version: f.ComponentVersion, Fixed: f.FixedVersion, Due: f.KEVDue, Exposed: f.Exposed}
			if !f.KEVDue.IsZero() && now.After(f.KEVDue) {
				row.Overdue = true
				row.DaysOverdue = int(now.Sub(f.KEVDue).Hours() / 24)
				r.Summary.OverdueKEV++
			}
			r.KEV = append(r.KEV, row)
		}
		perDev[f.DeviceID] = pd
		if f.Exposed && f.CVSS >= 9 {
			r.Summary.ExposedCritical++
		}
	}
	r.Summary.VulnerableDevices = len(vulnDev)
	r.Summary.KEVDevices = len(kevDev)
	sort.Slice(r.KEV, func(i, j int) bool {
		if r.KEV[i].Overdue != r.KEV[j].Overdue {
			return r.KEV[i].Overdue
		}
		if !r.KEV[i].Due.Equal(r.KEV[j].Due) {
			return r.KEV[i].Due.Before(r.KEV[j].Due)
		}
		return r.KEV[i].DeviceID+r.KEV[i].CVE < r.KEV[j].DeviceID+r.KEV[j].CVE
	})
	for _, s := range []string{"critical", "high", "medium", "low", "unknown"} {
		r.Severity = append(r.Severity, SeverityRow{Severity: s, Findings: sevN[s], Devices: len(sevDev[s])})
	}
	type fk struct{ v, m, f string }
	rows := map[fk]*FirmwareRow{}
	var uninventoried []string
	for _, d := range devices {
		k := fk{d.Vendor, d.Model, d.Firmware}
		row := rows[k]
		if row == nil {
			row = &FirmwareRow{Vendor: d.Vendor, Model: d.Model, Firmware: d.Firmware, Unknown: k == fk{}}
			rows[k] = row
		}
		if k == (fk{}) && len(d.Software) == 0 {
			uninventoried = append(uninventoried, d.ID)
		}
		row.Devices++
		if pd, ok := perDev[d.ID]; ok {
			row.Vulnerable++
			row.Findings += pd.n
			row.KEV += pd.kev
		}
	}
	for _, row := range rows {
		r.Firmware = append(r.Firmware, *row)
	}
	sort.Slice(r.Firmware, func(i, j int) bool {
		a, b := r.Firmware[i], r.Firmware[j]
		if a.Unknown != b.Unknown {
			return b.Unknown // the unknown row last
		}
		if a.Vendor != b.Vendor {
			return a.Vendor < b.Vendor
		}
		if a.Model != b.Model {
			return a.Model < b.Model
		}
		return vuln.Compare(vuln.Generic, a.Firmware, b.Firmware) < 0
	})
	r.Top = open[:min(TopN, len(open))]
	r.Summary.Uninventoried = len(uninventoried)
	r.incidents(in.Incidents, in.Actions)
	r.response(in.Actions)
	r.remediation(in.Plans)
	r.Missing = gaps(r, in, uninventoried)
	return r
}

// mergeDevices returns the devices of either list by id, the store's
// record completed by the scan's inventory.
func mergeDevices(stored, scanned []vigil.Device) []vigil.Device {
	byID := map[string]int{}
	out := make([]vigil.Device, 0, len(stored)+len(scanned))
	for _, d := range stored {
		byID[d.ID] = len(out)
		out = append(out, d)
	}
	for _, d := range scanned {
		i, ok := byID[d.ID]
		if !ok {
			byID[d.ID] = len(out)
			out = append(out, d)
			continue
		}
		o := &out[i]
		if o.Vendor == "" && o.Model == "" && o.Firmware == "" {
			o.Vendor, o.Model, o.Firmware = d.Vendor, d.Model, d.Firmware
		}
		if len(o.Software) == 0 {
			o.Software = d.Software
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// incidents fills the incident summary and the recent incidents.
func (r *Report) incidents(incs []vigil.Incident, actions []vigil.Action) {
	perIncident := map[string]int{}
	for _, a := range actions {
		if a.IncidentID != "" {
			perIncident[a.IncidentID]++
		}
	}
	s := &r.Incidents
	var ttd, ttc time.Duration
	for i := range incs {
		inc := &incs[i]
		s.Total++
		switch inc.Status {
		case vigil.IncidentOpen:
			s.Open++
		case vigil.IncidentContained:
			s.Contained++
		case vigil.IncidentResolved:
			s.Resolved++
		case vigil.IncidentFalsePositive:
			s.FalsePositive++
		}
		if inc.Replayed {
			s.Replayed++
		}
		if inc.MeasuresDetection() {
			ttd += inc.TimeToDetect()
			s.Measured++
		}
		if !inc.Contained.IsZero() {
			ttc += inc.TimeToContain()
			s.ContainedN++
		}
	}
	if s.Measured > 0 {
		s.MTTD = duration(ttd / time.Duration(s.Measured))
	}
	if s.ContainedN > 0 {
		s.MTTC = duration(ttc / time.Duration(s.ContainedN))
	}
	sorted := slices.Clone(incs)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Detected.After(sorted[j].Detected) })
	for _, inc := range sorted[:min(RecentN, len(sorted))] {
		row := IncidentRow{ID: inc.ID, Title: inc.Title, Status: string(inc.Status), Severity: inc.Severity.String(),
			Detected: inc.Detected, Actions: perIncident[inc.ID]}
		switch {
		case inc.Replayed:
			row.TimeToDetect = "replayed"
		case inc.MeasuresDetection():
			row.TimeToDetect = duration(inc.TimeToDetect()).Text
		}
		if !inc.Contained.IsZero() {
			row.TimeToContain = duration(inc.TimeToContain()).Text
		}
		r.Recent = append(r.Recent, row)
	}
}

// response fills the response summary and the recent actions.
func (r *Report) response(actions []vigil.Action) {
	s := &r.Response
	byType, byState := map[string]int{}, map[string]int{}
	for _, a := range actions {
		s.Total++
		byType[a.Type]++
		byState[string(a.State)]++
		switch a.State {
		case vigil.ActionSucceeded:
			s.Succeeded++
		case vigil.ActionFailed, vigil.ActionTimedOut:
			s.Failed++
		case vigil.ActionPendingApproval:
			s.PendingApproval++
		}
	}
	s.ByType, s.ByState = counts(byType), counts(byState)
	sorted := slices.Clone(actions)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Created.After(sorted[j].Created) })
	for _, a := range sorted[:min(RecentN, len(sorted))] {
		r.Actions = append(r.Actions, ActionRow{Type: a.Type, DeviceID: a.DeviceID, State: string(a.State),
			RequestedBy: a.RequestedBy, Created: a.Created, Result: a.Result})
	}
}

// counts returns the counts by name, the largest first.
func counts(m map[string]int) []CountRow {
	out := make([]CountRow, 0, len(m))
	for k, n := range m {
		out = append(out, CountRow{Name: k, Count: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// maxListed is how many device ids a gap names.
const maxListed = 10

// gaps says what the report cannot tell and how to fix it.
func gaps(r *Report, in Input, uninventoried []string) []Gap {
	var out []Gap
	if r.Summary.Devices == 0 {
		out = append(out, Gap{
			What: "No device has reported to this server yet: the report has nothing to count.",
			Fix:  "Enroll a device and run vigil-agent on it (docs/agent.md), or point vigil sensor at its network.",
		})
	}
	hasAdvisories, hasKEV := false, false
	for _, s := range in.Sources {
		switch s.Kind {
		case scan.KindAdvisories:
			hasAdvisories = true
		case scan.KindKEV:
			hasKEV = true
		}
	}
	if !hasAdvisories {
		out = append(out, Gap{
			What:    "No vulnerability source is imported, so no device was checked for known vulnerabilities: the absence of findings says nothing about the fleet.",
			Fix:     "Import advisories (NVD CVE 2.0, OSV or CSAF; see docs/vuln.md):",
			Command: "vigil vuln import --name osv FILE|URL",
		})
	}
	if !hasKEV {
		out = append(out, Gap{
			What:    "No CISA KEV catalog is imported: known exploitation and remediation due dates are unknown.",
			Fix:     "Import the catalog (known_exploited_vulnerabilities.json from cisa.gov):",
			Command: "vigil vuln import --name kev known_exploited_vulnerabilities.json",
		})
	}
	if n := len(uninventoried); n > 0 {
		ids := strings.Join(uninventoried[:min(maxListed, n)], ", ")
		if n > maxListed {
			ids += fmt.Sprintf(" and %d more", n-maxListed)
		}
		out = append(out, Gap{
			What:    fmt.Sprintf("%d of %d devices reported no inventory (vendor, model, firmware, software), so they were not checked: %s.", n, r.Summary.Devices, ids),
			Fix:     "Run vigil-agent on them (its reports carry the inventory), or import an SBOM for them:",
			Command: "vigil vuln import --name NAME --vendor V --model M --firmware F sbom.json",
		})
	}
	return out
}

// Formats Write knows.
var Formats = []string{"html", "csv", "json"}

// Write writes the report in a format: html, csv or json. Returns EINVALID
// for another format.
func Write(w io.Writer, format string, r *Report) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case "csv":
		return writeCSV(w, r)
	case "html":
		return page.Execute(w, r)
	}
	return vigil.Errorf(vigil.EINVALID, "unknown report format %q (html, csv, json)", format)
}

// CSVHeader is the header of the CSV report.
var CSVHeader = []string{"device_id", "vuln", "severity", "cvss", "kev", "kev_due", "kev_overdue", "component", "version",
	"fixed_version", "exposed", "exposure", "rank", "confidence", "rule", "advisory", "evidence"}

func writeCSV(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return fmt.Errorf("cannot write report: %w", err)
	}
	for _, f := range r.Findings {
		due, overdue := "", ""
		if f.KEV {
			due = f.KEVDue.Format(time.DateOnly)
			overdue = strconv.FormatBool(!f.KEVDue.IsZero() && r.Generated.After(f.KEVDue))
		}
		var rule, adv, ev string
		if len(f.Evidence) > 0 {
			e := f.Evidence[0]
			rule, adv, ev = e.Rule, e.Advisory, e.Component+" matches "+e.Matched+" "+e.Versions
		}
		rec := []string{f.DeviceID, f.Vuln, f.Severity, strconv.FormatFloat(f.CVSS, 'f', 1, 64), strconv.FormatBool(f.KEV), due, overdue,
			f.Component, f.ComponentVersion, f.FixedVersion, strconv.FormatBool(f.Exposed), f.Exposure,
			strconv.FormatFloat(f.Rank, 'f', 1, 64), strconv.FormatFloat(f.Confidence, 'f', 2, 64), rule, adv, ev}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("cannot write report: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("cannot write report: %w", err)
	}
	return nil
}

var page = template.Must(template.New("posture").Funcs(template.FuncMap{
	"date": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.Format(time.DateOnly)
	},
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"score": func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
	"pct": func(a, b int) string {
		if b == 0 {
			return "0%"
		}
		return strconv.Itoa(a*100/b) + "%"
	},
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Vigil security posture {{date .Generated}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:80em}table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}th{background:#f3f3f3}
h2{margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
.critical{color:#a00;font-weight:bold}.high{color:#c50}.overdue{background:#fdd}.num{text-align:right}
.cards{display:flex;gap:1em;flex-wrap:wrap;margin:.5em 0}.card{border:1px solid #ccc;padding:.6em 1em;border-radius:.4em;min-width:8em}
.card b{display:block;font-size:1.6em}.muted{color:#666}.unknown{color:#666;font-style:italic}
.gaps{border:1px solid #e0b000;background:#fff8e0;padding:.6em 1.2em;border-radius:.4em}
.gaps li{margin:.5em 0}.gaps code{background:#fff;border:1px solid #eee;padding:0 .3em;white-space:nowrap}.nowrap{white-space:nowrap}
</style></head><body>
<h1>Security posture</h1>
<p class="muted">Generated {{when .Generated}}.</p>
{{if .Missing}}<div class="gaps"><h2 style="margin-top:.4em;border:0">What this report cannot tell yet</h2><ul>
{{range .Missing}}<li>{{.What}}<br><b>Fix:</b> {{.Fix}}{{if .Command}} <code>{{.Command}}</code>{{end}}</li>
{{end}}</ul></div>{{end}}

<div class="cards">
<div class="card"><b>{{.Summary.Devices}}</b>devices</div>
<div class="card"><b>{{.Summary.Uninventoried}}</b>without inventory</div>
<div class="card"><b>{{.Incidents.Open}}</b>open incidents</div>
<div class="card"><b>{{if .Incidents.Measured}}{{.Incidents.MTTD.Text}}{{else}}—{{end}}</b>mean time to detect</div>
<div class="card"><b>{{if .Incidents.ContainedN}}{{.Incidents.MTTC.Text}}{{else}}—{{end}}</b>mean time to contain</div>
<div class="card"><b>{{.Response.Total}}</b>response actions</div>
{{if .Summary.Sources}}<div class="card"><b>{{.Summary.VulnerableDevices}}</b>vulnerable devices ({{pct .Summary.VulnerableDevices .Summary.Devices}})</div>{{end}}
</div>

<h2>Incidents</h2>
{{if .Incidents.Total}}<p>{{.Incidents.Total}} incidents: {{.Incidents.Open}} open, {{.Incidents.Contained}} contained, {{.Incidents.Resolved}} resolved, {{.Incidents.FalsePositive}} false positives.
Mean time to detect {{if .Incidents.Measured}}<b>{{.Incidents.MTTD.Text}}</b> over {{.Incidents.Measured}} incidents{{else}}not measured yet{{end}}{{if .Incidents.Replayed}} ({{.Incidents.Replayed}} made of replayed or backfilled data left out){{end}};
mean time to contain {{if .Incidents.ContainedN}}<b>{{.Incidents.MTTC.Text}}</b> over {{.Incidents.ContainedN}} contained incidents{{else}}not measured: no incident was contained{{end}}.</p>
<table><tr><th>Detected</th><th>Incident</th><th>Severity</th><th>Status</th><th>Time to detect</th><th>Time to contain</th><th>Actions</th></tr>
{{range .Recent}}<tr><td class="nowrap">{{when .Detected}}</td><td>{{.Title}}</td><td class="{{.Severity}}">{{.Severity}}</td><td>{{.Status}}</td><td class="num">{{.TimeToDetect}}</td><td class="num">{{.TimeToContain}}</td><td class="num">{{.Actions}}</td></tr>
{{end}}</table>{{if gt .Incidents.Total (len .Recent)}}<p class="muted">The {{len .Recent}} most recent of {{.Incidents.Total}}: vigil ctl incidents lists them all.</p>{{end}}
{{else}}<p>No incident so far.</p>{{end}}

<h2>Response</h2>
{{if .Response.Total}}<p>{{.Response.Total}} actions: {{.Response.Succeeded}} succeeded, {{.Response.Failed}} failed or timed out, {{.Response.PendingApproval}} waiting for approval.</p>
<table><tr><th>Action</th><th>Count</th></tr>
{{range .Response.ByType}}<tr><td>{{.Name}}</td><td class="num">{{.Count}}</td></tr>
{{end}}</table>
<table><tr><th>Created</th><th>Action</th><th>Device</th><th>State</th><th>Requested by</th><th>Result</th></tr>
{{range .Actions}}<tr><td class="nowrap">{{when .Created}}</td><td>{{.Type}}</td><td>{{.DeviceID}}</td><td>{{.State}}</td><td>{{.RequestedBy}}</td><td>{{.Result}}</td></tr>
{{end}}</table>
{{else}}<p>No response action was taken.</p>{{end}}

<h2>Remediation</h2>
{{with .Remediation}}{{if .Plans}}<p>{{.Plans}} update plans: {{.Completed}} completed, {{.Running}} running, {{.Proposed}} waiting for approval, {{.Halted}} halted.
{{.Closed}} findings closed, {{.Open}} still open; mean time to remediate {{if .Closed}}<b>{{.MeanTTR.Text}}</b>{{else}}not measured: no finding closed yet{{end}}.</p>
<table><tr><th>Cohort</th><th>Closed</th><th>Open</th><th>Mean time to remediate</th></tr>
{{range .ByCohort}}<tr><td>{{.Cohort}}</td><td class="num">{{.Closed}}</td><td class="num">{{.Open}}</td><td class="num">{{if .Closed}}{{.MeanTTR.Text}}{{end}}</td></tr>
{{end}}</table>
{{if .Fixed}}<table><tr><th>Closed</th><th>Vulnerability</th><th>Device</th><th>Cohort</th><th>Time to remediate</th></tr>
{{range .Fixed}}<tr><td class="nowrap">{{when .Closed}}</td><td>{{.Vuln}}</td><td>{{.DeviceID}}</td><td>{{.Cohort}}</td><td class="num">{{.TTR.Text}}</td></tr>
{{end}}</table>{{end}}
{{else}}<p>No update plan so far: a finding whose fixed version has an update artifact gets one.</p>{{end}}{{end}}

<h2>Vulnerabilities</h2>
{{if .Summary.Sources}}<div class="cards">
<div class="card"><b>{{.Summary.Findings}}</b>findings</div>
<div class="card"><b>{{.Summary.KEVFindings}}</b>KEV findings on {{.Summary.KEVDevices}} devices</div>
<div class="card"><b class="critical">{{.Summary.OverdueKEV}}</b>KEV items overdue</div>
<div class="card"><b class="critical">{{.Summary.ExposedCritical}}</b>exposed critical</div>
<div class="card"><b>{{.Summary.Suppressed}}</b>suppressed by VEX</div>
</div>
<h3>Findings by severity</h3>
<table><tr><th>Severity</th><th>Findings</th><th>Devices</th></tr>
{{range .Severity}}<tr><td class="{{.Severity}}">{{.Severity}}</td><td class="num">{{.Findings}}</td><td class="num">{{.Devices}}</td></tr>
{{end}}</table>
{{else}}<p>Not checked: no vulnerability source is imported (see above).</p>{{end}}

<h3>Devices by firmware</h3>
{{$checked := .Summary.Sources}}{{if .Firmware}}<table><tr><th>Vendor</th><th>Model</th><th>Firmware</th><th>Devices</th>{{if $checked}}<th>Vulnerable</th><th>Findings</th><th>KEV</th>{{end}}</tr>
{{range .Firmware}}<tr>{{if .Unknown}}<td colspan="3" class="unknown">not reported (no inventory)</td>{{else}}<td>{{or .Vendor "—"}}</td><td>{{or .Model "—"}}</td><td>{{or .Firmware "—"}}</td>{{end}}<td class="num">{{.Devices}}</td>{{if $checked}}<td class="num">{{.Vulnerable}}</td><td class="num">{{.Findings}}</td><td class="num">{{.KEV}}</td>{{end}}</tr>
{{end}}</table>{{else}}<p>No device.</p>{{end}}

{{if .Summary.Sources}}<h3>Known exploited vulnerabilities</h3>
{{if .KEV}}<table><tr><th>CVE</th><th>Device</th><th>Component</th><th>Version</th><th>Fix</th><th>Due</th><th>Overdue</th><th>Exposed</th></tr>
{{range .KEV}}<tr{{if .Overdue}} class="overdue"{{end}}><td>{{.CVE}}</td><td>{{.DeviceID}}</td><td>{{.Component}}</td><td>{{.Version}}</td><td>{{if .Fixed}}≥ {{.Fixed}}{{end}}</td><td>{{date .Due}}</td><td>{{if .Overdue}}{{.DaysOverdue}} days{{end}}</td><td>{{if .Exposed}}yes{{end}}</td></tr>
{{end}}</table>{{else}}<p>No KEV findings.</p>{{end}}

<h3>Top findings</h3>
{{if .Top}}<table><tr><th>Rank</th><th>Device</th><th>Vulnerability</th><th>CVSS</th><th>Component</th><th>Fix</th><th>Exposure</th><th>Evidence</th></tr>
{{range .Top}}<tr><td class="num">{{score .Rank}}</td><td>{{.DeviceID}}</td><td class="{{.Severity}} nowrap">{{.Vuln}}{{if .KEV}} (KEV){{end}}</td><td class="num">{{score .CVSS}}</td><td>{{.Component}} {{.ComponentVersion}}</td><td>{{if .FixedVersion}}update to ≥ {{.FixedVersion}}{{end}}</td><td>{{.Exposure}}</td><td>{{range .Evidence}}{{.Rule}}: {{.Matched}} {{.Versions}} ({{.Advisory}})<br>{{end}}</td></tr>
{{end}}</table>{{else}}<p>No open finding.</p>{{end}}

<h3>Trend</h3>
{{if .Trend}}<table><tr><th>Day</th><th>Findings</th><th>Vulnerable devices</th><th>KEV findings</th><th>Critical</th></tr>
{{range .Trend}}<tr><td>{{.Day}}</td><td class="num">{{.Findings}}</td><td class="num">{{.VulnerableDevices}}</td><td class="num">{{.KEVFindings}}</td><td class="num">{{.Critical}}</td></tr>
{{end}}</table>{{else}}<p>No trend yet: a point is added each day the findings change.</p>{{end}}{{end}}
</body></html>
`))
