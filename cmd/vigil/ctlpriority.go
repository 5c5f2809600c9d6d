package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/incident"
	"github.com/vigil-iot/vigil/vuln/scan"
)

// priorityCell is the PRIORITY column of a list: the score, "-" without one.
func priorityCell(p *vigil.Priority) string {
	if p == nil {
		return "-"
	}
	return strconv.Itoa(p.Score)
}

// printPriority writes a priority and its factors, one line each:
// "priority 76", "priority.severity +45  high", ...,
// "priority.confidence ×0.80  ...".
func printPriority(w io.Writer, p *vigil.Priority) {
	if p == nil {
		fmt.Fprintf(w, "priority\t-\n")
		return
	}
	fmt.Fprintf(w, "priority\t%d\n", p.Score)
	for _, f := range p.Factors {
		pts := fmt.Sprintf("%+g", f.Points)
		if f.Name == "confidence" {
			pts = fmt.Sprintf("×%.2f", f.Points)
		}
		fmt.Fprintf(w, "priority.%s\t%s  %s\n", f.Name, pts, printable(f.Value))
	}
}

// prioritizer gives alerts and incidents their priority: the inventory's
// devices, the KEV findings of the vulnerability DB (when open) and the
// devices of the incident's blast radius (investigate.Reach, recomputed
// at most once a minute per incident).
func (a *app) prioritizer() *incident.Prioritizer {
	p := &incident.Prioritizer{Devices: a.store, Logger: a.log, BlastRadius: a.investigator().Reach(time.Minute).Devices}
	if a.vuln != nil {
		p.KEV = kevFindings{a.vuln}
	}
	return p
}

// kevFindings is incident.KEVSource over the vulnerability DB.
type kevFindings struct{ db *scan.DB }

func (k kevFindings) KEV(deviceID string) []string {
	var out []string
	for _, f := range k.db.Findings(scan.Filter{DeviceID: deviceID, KEVOnly: true}) {
		if !slices.Contains(out, f.Vuln) {
			out = append(out, f.Vuln)
		}
	}
	return out
}
