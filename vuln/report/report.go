package report

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"sort"
	"strconv"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/vuln"
	"github.com/vigil-iot/vigil/vuln/scan"
)

// Summary is the headline numbers.
type Summary struct {
	Devices           int `json:"devices"`
	VulnerableDevices int `json:"vulnerable_devices"`
	Findings          int `json:"findings"`
	Suppressed        int `json:"suppressed"`
	KEVFindings       int `json:"kev_findings"`
	KEVDevices        int `json:"kev_devices"`
	OverdueKEV        int `json:"overdue_kev"`
	ExposedCritical   int `json:"exposed_critical"`
}

// FirmwareRow is one vendor/model/firmware and its devices.
type FirmwareRow struct {
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

// Report is the posture report.
type Report struct {
	Generated time.Time         `json:"generated"`
	Summary   Summary           `json:"summary"`
	Firmware  []FirmwareRow     `json:"firmware"`
	Severity  []SeverityRow     `json:"severity"`
	KEV       []KEVRow          `json:"kev"`
	Top       []vuln.Finding    `json:"top"`
	Trend     []scan.TrendPoint `json:"trend"`
	// Findings are every open finding, by rank (CSV rows; not in HTML).
	Findings []vuln.Finding `json:"findings"`
}

// TopN is how many findings the report lists first.
const TopN = 50

// FromDB builds the report from a scan DB's state.
func FromDB(db *scan.DB, now time.Time) *Report {
	return Build(db.Devices(), db.Findings(scan.Filter{Suppressed: true}), db.Trend(), now)
}

// Build builds the report. findings may include suppressed ones (they are
// only counted).
func Build(devices []vigil.Device, findings []vuln.Finding, trend []scan.TrendPoint, now time.Time) *Report {
	r := &Report{Generated: now, Trend: trend}
	devByID := map[string]*vigil.Device{}
	for i := range devices {
		devByID[devices[i].ID] = &devices[i]
	}
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
	for _, d := range devices {
		k := fk{d.Vendor, d.Model, d.Firmware}
		row := rows[k]
		if row == nil {
			row = &FirmwareRow{Vendor: d.Vendor, Model: d.Model, Firmware: d.Firmware}
			rows[k] = row
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
		if a.Vendor != b.Vendor {
			return a.Vendor < b.Vendor
		}
		if a.Model != b.Model {
			return a.Model < b.Model
		}
		return vuln.Compare(vuln.Generic, a.Firmware, b.Firmware) < 0
	})
	r.Top = open[:min(TopN, len(open))]
	return r
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
body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}th{background:#f3f3f3}
.critical{color:#a00;font-weight:bold}.high{color:#c50}.overdue{background:#fdd}.num{text-align:right}
.cards{display:flex;gap:1em;flex-wrap:wrap}.card{border:1px solid #ccc;padding:.6em 1em;border-radius:.4em}
.card b{display:block;font-size:1.6em}
</style></head><body>
<h1>Security posture</h1>
<p>Generated {{.Generated.Format "2006-01-02 15:04 MST"}}.</p>
<div class="cards">
<div class="card"><b>{{.Summary.Devices}}</b>devices</div>
<div class="card"><b>{{.Summary.VulnerableDevices}}</b>vulnerable ({{pct .Summary.VulnerableDevices .Summary.Devices}})</div>
<div class="card"><b>{{.Summary.Findings}}</b>findings</div>
<div class="card"><b>{{.Summary.KEVFindings}}</b>KEV findings on {{.Summary.KEVDevices}} devices</div>
<div class="card"><b class="critical">{{.Summary.OverdueKEV}}</b>KEV items overdue</div>
<div class="card"><b class="critical">{{.Summary.ExposedCritical}}</b>exposed critical</div>
<div class="card"><b>{{.Summary.Suppressed}}</b>suppressed by VEX</div>
</div>

<h2>Findings by severity</h2>
<table><tr><th>Severity</th><th>Findings</th><th>Devices</th></tr>
{{range .Severity}}<tr><td class="{{.Severity}}">{{.Severity}}</td><td class="num">{{.Findings}}</td><td class="num">{{.Devices}}</td></tr>
{{end}}</table>

<h2>Devices by firmware</h2>
<table><tr><th>Vendor</th><th>Model</th><th>Firmware</th><th>Devices</th><th>Vulnerable</th><th>Findings</th><th>KEV</th></tr>
{{range .Firmware}}<tr><td>{{.Vendor}}</td><td>{{.Model}}</td><td>{{.Firmware}}</td><td class="num">{{.Devices}}</td><td class="num">{{.Vulnerable}}</td><td class="num">{{.Findings}}</td><td class="num">{{.KEV}}</td></tr>
{{end}}</table>

<h2>Known exploited vulnerabilities</h2>
{{if .KEV}}<table><tr><th>CVE</th><th>Device</th><th>Component</th><th>Version</th><th>Fix</th><th>Due</th><th>Overdue</th><th>Exposed</th></tr>
{{range .KEV}}<tr{{if .Overdue}} class="overdue"{{end}}><td>{{.CVE}}</td><td>{{.DeviceID}}</td><td>{{.Component}}</td><td>{{.Version}}</td><td>{{if .Fixed}}≥ {{.Fixed}}{{end}}</td><td>{{date .Due}}</td><td>{{if .Overdue}}{{.DaysOverdue}} days{{end}}</td><td>{{if .Exposed}}yes{{end}}</td></tr>
{{end}}</table>{{else}}<p>No KEV findings.</p>{{end}}

<h2>Top findings</h2>
<table><tr><th>Rank</th><th>Device</th><th>Vulnerability</th><th>CVSS</th><th>Component</th><th>Fix</th><th>Exposure</th><th>Evidence</th></tr>
{{range .Top}}<tr><td class="num">{{score .Rank}}</td><td>{{.DeviceID}}</td><td class="{{.Severity}}">{{.Vuln}}{{if .KEV}} (KEV){{end}}</td><td class="num">{{score .CVSS}}</td><td>{{.Component}} {{.ComponentVersion}}</td><td>{{if .FixedVersion}}update to ≥ {{.FixedVersion}}{{end}}</td><td>{{.Exposure}}</td><td>{{range .Evidence}}{{.Rule}}: {{.Matched}} {{.Versions}} ({{.Advisory}})<br>{{end}}</td></tr>
{{end}}</table>

<h2>Trend</h2>
<table><tr><th>Day</th><th>Findings</th><th>Vulnerable devices</th><th>KEV findings</th><th>Critical</th></tr>
{{range .Trend}}<tr><td>{{.Day}}</td><td class="num">{{.Findings}}</td><td class="num">{{.VulnerableDevices}}</td><td class="num">{{.KEVFindings}}</td><td class="num">{{.Critical}}</td></tr>
{{end}}</table>
</body></html>
`))
