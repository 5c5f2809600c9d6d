package report

import (
	"sort"
	"time"

	"github.com/vigil-iot/vigil"
)

// RemediationSummary is what the update plans fixed and how fast: time
// to remediate is from a finding's first sighting to the report of the
// fixed version by its device.
type RemediationSummary struct {
	Plans     int `json:"plans"`
	Running   int `json:"running"`
	Proposed  int `json:"proposed"`
	Halted    int `json:"halted"`
	Completed int `json:"completed"`
	// Closed and Open count the findings the plans cover.
	Closed   int         `json:"closed"`
	Open     int         `json:"open"`
	MeanTTR  Duration    `json:"mean_ttr"`
	ByCohort []CohortRow `json:"by_cohort"`
	Fixed    []FixedRow  `json:"fixed"`
}

// CohortRow is the time to remediate of one cohort (class/model).
type CohortRow struct {
	Cohort  string   `json:"cohort"`
	Closed  int      `json:"closed"`
	Open    int      `json:"open"`
	MeanTTR Duration `json:"mean_ttr"`
}

// FixedRow is one closed finding.
type FixedRow struct {
	Vuln     string    `json:"vuln"`
	DeviceID string    `json:"device_id"`
	Cohort   string    `json:"cohort"`
	Closed   time.Time `json:"closed"`
	TTR      Duration  `json:"ttr"`
}

// remediation fills the remediation summary from the update plans.
func (r *Report) remediation(plans []vigil.UpdatePlan) {
	s := &r.Remediation
	type acc struct {
		closed, open int
		sum          time.Duration
	}
	by := map[string]*acc{}
	var total acc
	for _, p := range plans {
		s.Plans++
		switch p.State {
		case vigil.PlanRunning:
			s.Running++
		case vigil.PlanProposed:
			s.Proposed++
		case vigil.PlanHalted:
			s.Halted++
		case vigil.PlanCompleted:
			s.Completed++
		}
		c := by[p.Cohort]
		if c == nil {
			c = &acc{}
			by[p.Cohort] = c
		}
		for _, f := range p.Findings {
			if f.Closed.IsZero() {
				c.open++
				total.open++
				continue
			}
			c.closed++
			total.closed++
			c.sum += f.TimeToRemediate()
			total.sum += f.TimeToRemediate()
			s.Fixed = append(s.Fixed, FixedRow{Vuln: f.Vuln, DeviceID: f.DeviceID, Cohort: p.Cohort, Closed: f.Closed, TTR: duration(f.TimeToRemediate())})
		}
	}
	s.Closed, s.Open = total.closed, total.open
	if total.closed > 0 {
		s.MeanTTR = duration(total.sum / time.Duration(total.closed))
	}
	for name, c := range by {
		row := CohortRow{Cohort: name, Closed: c.closed, Open: c.open}
		if c.closed > 0 {
			row.MeanTTR = duration(c.sum / time.Duration(c.closed))
		}
		s.ByCohort = append(s.ByCohort, row)
	}
	sort.Slice(s.ByCohort, func(i, j int) bool { return s.ByCohort[i].Cohort < s.ByCohort[j].Cohort })
	sort.SliceStable(s.Fixed, func(i, j int) bool { return s.Fixed[i].Closed.After(s.Fixed[j].Closed) })
	s.Fixed = s.Fixed[:min(RecentN, len(s.Fixed))]
}

// FindingTTR is the remediation of one finding of one device, as the
// update plans know it.
type FindingTTR struct {
	Vuln      string    `json:"vuln"`
	DeviceID  string    `json:"device_id"`
	Component string    `json:"component,omitempty"`
	Fixed     string    `json:"fixed,omitempty"`
	KEV       bool      `json:"kev,omitempty"`
	PlanID    string    `json:"plan_id"`
	PlanState string    `json:"plan_state"`
	FirstSeen time.Time `json:"first_seen"`
	Closed    time.Time `json:"closed,omitzero"`
	// TTR is a closed finding's time to remediate, as in the posture
	// report (vigil.PlanFinding.TimeToRemediate); zero while open.
	TTR Duration `json:"ttr"`
	// OpenFor is how long an open finding has been open at the time
	// given; zero once closed.
	OpenFor Duration `json:"open_for"`
}

// DeviceRemediation returns the findings of the given devices that the
// update plans cover, with their time to remediate (closed) or how long
// they have been open at now: one row per device and vulnerability (a
// closed one before an open one, else the plan that saw it last), by
// device then vulnerability.
func DeviceRemediation(plans []vigil.UpdatePlan, devices []string, now time.Time) []FindingTTR {
	want := map[string]bool{}
	for _, d := range devices {
		want[d] = true
	}
	rows := map[[2]string]FindingTTR{}
	for _, p := range plans {
		for _, f := range p.Findings {
			if !want[f.DeviceID] {
				continue
			}
			k := [2]string{f.DeviceID, f.Vuln}
			if old, ok := rows[k]; ok && !old.Closed.IsZero() && f.Closed.IsZero() {
				continue
			}
			row := FindingTTR{Vuln: f.Vuln, DeviceID: f.DeviceID, Component: f.Component, Fixed: f.Fixed, KEV: f.KEV, PlanID: p.ID, PlanState: p.State,
				FirstSeen: f.FirstSeen, Closed: f.Closed}
			if f.Closed.IsZero() {
				row.OpenFor = duration(max(now.Sub(f.FirstSeen), 0))
			} else {
				row.TTR = duration(f.TimeToRemediate())
			}
			rows[k] = row
		}
	}
	out := make([]FindingTTR, 0, len(rows))
	for _, r := range rows {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].DeviceID != out[j].DeviceID {
			return out[i].DeviceID < out[j].DeviceID
		}
		return out[i].Vuln < out[j].Vuln
	})
	return out
}
