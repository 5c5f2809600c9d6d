package console

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/respond/playbook"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/vuln"
	"github.com/vigil-iot/vigil/vuln/report"
	"github.com/vigil-iot/vigil/vuln/scan"
	"github.com/vigil-iot/vigil/web"
	"github.com/vigil-iot/vigil/web/api"
)

// pageRoutes is the console's route table: every page and every form,
// with the permission it needs. A form (POST) calls the API route named
// in its comment, which checks the permission again and audits.
//
// Pages added after other work lands plug in here: one Route and one
// template each (see docs/console.md, "Adding a page").
func (c *Console) pageRoutes() []Route {
	return []Route{
		{Method: "GET", Pattern: "/{$}", Perm: auth.PermRead, handler: c.overview},
		{Method: "GET", Pattern: "/live", Perm: auth.PermRead, handler: c.live},
		{Method: "GET", Pattern: "/devices", Perm: auth.PermRead, handler: c.devices},
		{Method: "GET", Pattern: "/devices/{id}", Perm: auth.PermRead, handler: c.device},
		{Method: "POST", Pattern: "/devices/{id}/isolate", Perm: auth.PermWrite, handler: c.isolate}, // POST /api/v1/devices/{id}/isolate
		{Method: "GET", Pattern: "/alerts", Perm: auth.PermRead, handler: c.alerts},
		{Method: "GET", Pattern: "/alerts/{id}", Perm: auth.PermRead, handler: c.alert},
		{Method: "POST", Pattern: "/alerts/{id}/normal", Perm: auth.PermWrite, handler: c.alertNormal}, // POST /api/v1/baseline/normal
		{Method: "GET", Pattern: "/incidents", Perm: auth.PermRead, handler: c.incidents},
		{Method: "GET", Pattern: "/incidents/{id}", Perm: auth.PermRead, handler: c.incident},
		{Method: "GET", Pattern: "/incidents/{id}/report", Perm: auth.PermRead, handler: c.report},     // GET /api/v1/incidents/{id}/report
		{Method: "POST", Pattern: "/incidents/{id}/resolve", Perm: auth.PermWrite, handler: c.resolve}, // POST /api/v1/incidents/{id}/resolve
		{Method: "GET", Pattern: "/actions", Perm: auth.PermRead, handler: c.actions},
		{Method: "POST", Pattern: "/actions/{id}/approve", Perm: auth.PermWrite, handler: c.decide(true)}, // POST /api/v1/actions/{id}/approve
		{Method: "POST", Pattern: "/actions/{id}/deny", Perm: auth.PermWrite, handler: c.decide(false)},   // POST /api/v1/actions/{id}/deny
		{Method: "GET", Pattern: "/rules", Perm: auth.PermRead, handler: c.rules},
		{Method: "POST", Pattern: "/rules/toggle", Perm: auth.PermWrite, handler: c.toggleRule}, // POST /api/v1/rules/enable|disable
		{Method: "POST", Pattern: "/rules/test", Perm: auth.PermWrite, handler: c.testRule},     // POST /api/v1/rules/test
		{Method: "GET", Pattern: "/intel", Perm: auth.PermRead, handler: c.intel},
		{Method: "GET", Pattern: "/hunt", Perm: auth.PermRead, handler: c.hunt},                              // POST /api/v1/hunt (read; audited hunt.run)
		{Method: "POST", Pattern: "/hunt/saved", Perm: auth.PermWrite, handler: c.saveQuery},                 // POST /api/v1/hunt/saved
		{Method: "POST", Pattern: "/hunt/saved/{name}/delete", Perm: auth.PermWrite, handler: c.deleteQuery}, // DELETE /api/v1/hunt/saved/{name}
		{Method: "GET", Pattern: "/exceptions", Perm: auth.PermRead, handler: c.exceptions},
		{Method: "POST", Pattern: "/exceptions", Perm: auth.PermWrite, handler: c.createException},             // POST /api/v1/exceptions
		{Method: "POST", Pattern: "/exceptions/{id}/delete", Perm: auth.PermWrite, handler: c.deleteException}, // DELETE /api/v1/exceptions/{id}
		{Method: "GET", Pattern: "/audit", Perm: auth.PermAdmin, handler: c.audit},
		{Method: "GET", Pattern: "/settings", Perm: auth.PermAdmin, handler: c.settings},
		{Method: "POST", Pattern: "/settings/users", Perm: auth.PermAdmin, handler: c.createUser},                // POST /api/v1/users
		{Method: "POST", Pattern: "/settings/users/{name}/delete", Perm: auth.PermAdmin, handler: c.deleteUser},  // DELETE /api/v1/users/{name}
		{Method: "POST", Pattern: "/settings/tokens", Perm: auth.PermAdmin, handler: c.createToken},              // POST /api/v1/tokens
		{Method: "POST", Pattern: "/settings/tokens/{id}/revoke", Perm: auth.PermAdmin, handler: c.revokeToken},  // DELETE /api/v1/tokens/{id}
		{Method: "POST", Pattern: "/settings/enroll", Perm: auth.PermAdmin, handler: c.createEnroll},             // POST /api/v1/enroll-tokens
		{Method: "POST", Pattern: "/settings/enroll/{id}/delete", Perm: auth.PermAdmin, handler: c.deleteEnroll}, // DELETE /api/v1/enroll-tokens/{id}
	}
}

// listLimit is the size of one page of a list.
const listLimit = 50

// ---- overview

type overviewData struct {
	Fleet       fleetStats
	BySeverity  []countRow
	ByPriority  []countRow
	TopOpen     []vigil.Incident // the open queue, highest priority first
	OpenTotal   int
	OpenCapped  bool
	Recent      []vigil.Incident
	AlertsByRul []countRow
	AlertsN     int
	AlertsCap   bool
	AlertChart  chart
	MTTD, MTTC  time.Duration
	Measured    int
	TimesChart  chart
	IngestRate  float64
	HaveRate    bool
	BusLag      float64
	HaveLag     bool
	Posture     *posture
	Silent      []vigil.Device
	Built       time.Time // when the device index was read
}

type countRow struct {
	Key   string
	Count int
	Class string
}

type posture struct {
	Findings, KEV, Exposed, Devices int
	BySeverity                      []countRow
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx := r.Context()
	now := c.clock.Now()
	d := overviewData{}
	idx, err := c.devicesIndex(ctx)
	if err != nil {
		return err
	}
	d.Fleet, d.Built = idx.stats(now), idx.built
	d.Silent = idx.silent(now, 10)

	// Open and contained incidents by severity: at most one page of each.
	sev := map[vigil.Severity]int{}
	var open []vigil.Incident
	for _, st := range []vigil.IncidentStatus{vigil.IncidentOpen, vigil.IncidentContained} {
		incs, next, err := c.opts.Store.ListIncidents(ctx, store.IncidentFilter{Status: st, Page: store.Page{Limit: store.MaxLimit}})
		if err != nil {
			return err
		}
		d.OpenCapped = d.OpenCapped || next != ""
		for _, in := range incs {
			sev[in.Severity]++
			d.OpenTotal++
		}
		open = append(open, incs...)
	}
	d.ByPriority = byPriority(open)
	if d.TopOpen, _, err = c.opts.Store.ListIncidents(ctx, store.IncidentFilter{Status: vigil.IncidentOpen, Sort: store.SortPriority, Page: store.Page{Limit: 8}}); err != nil {
		return err
	}
	for _, sv := range []vigil.Severity{vigil.SeverityCritical, vigil.SeverityHigh, vigil.SeverityMedium, vigil.SeverityLow, vigil.SeverityInfo} {
		d.BySeverity = append(d.BySeverity, countRow{Key: sv.String(), Count: sev[sv], Class: "sev-" + sv.String()})
	}
	recent, _, err := c.opts.Store.ListIncidents(ctx, store.IncidentFilter{Page: store.Page{Limit: 200}})
	if err != nil {
		return err
	}
	d.Recent = recent[:min(len(recent), 8)]
	d.MTTD, d.MTTC, d.Measured, d.TimesChart = incidentTimes(recent, now)

	// Alerts of the last 24 hours: the newest page (1000) at most.
	alerts, next, err := c.opts.Store.ListAlerts(ctx, store.AlertFilter{Since: now.Add(-24 * time.Hour), Page: store.Page{Limit: store.MaxLimit}})
	if err != nil {
		return err
	}
	d.AlertsN, d.AlertsCap = len(alerts), next != ""
	byRule := map[string]int{}
	hours := make([]float64, 24)
	for _, a := range alerts {
		byRule[cmp.Or(a.Title, a.RuleID)]++
		if h := int(now.Sub(a.Created) / time.Hour); h >= 0 && h < 24 {
			hours[23-h]++
		}
	}
	d.AlertsByRul = topCounts(byRule, 10)
	labels := make([]string, 24)
	for i := range labels {
		labels[i] = now.Add(-time.Duration(23-i) * time.Hour).UTC().Format("15h")
	}
	d.AlertChart = barChart(wide, "Alerts per hour, last 24 hours", labels, hours, "")
	d.IngestRate, d.HaveRate = c.ingestRate(now)
	d.BusLag, d.HaveLag = c.busLag()
	d.Posture = c.posture(scan.Filter{})
	return c.page(w, r, s, "overview", "Overview", "overview", d)
}

func (c *Console) posture(f scan.Filter) *posture {
	if c.opts.Findings == nil {
		return nil
	}
	p := &posture{}
	devs := map[string]bool{}
	sev := map[string]int{}
	for _, fd := range c.opts.Findings.Findings(f) {
		p.Findings++
		devs[fd.DeviceID] = true
		sev[strings.ToLower(cmp.Or(fd.Severity, "unknown"))]++
		if fd.KEV {
			p.KEV++
		}
		if fd.Exposed {
			p.Exposed++
		}
	}
	p.Devices = len(devs)
	for _, k := range []string{"critical", "high", "medium", "low", "unknown"} {
		if sev[k] > 0 || k != "unknown" {
			p.BySeverity = append(p.BySeverity, countRow{Key: k, Count: sev[k], Class: "sev-" + k})
		}
	}
	return p
}

// incidentTimes returns the mean time to detect and to contain of the
// incidents detected in the last 7 days, and a chart of both per day.
func incidentTimes(incs []vigil.Incident, now time.Time) (mttd, mttc time.Duration, n int, ch chart) {
	var sumD, sumC time.Duration
	var nC int
	perDayD, perDayC := make([]float64, 7), make([]float64, 7)
	cntD, cntC := make([]float64, 7), make([]float64, 7)
	for _, in := range incs {
		age := now.Sub(in.Detected)
		if age < 0 || age >= 7*24*time.Hour {
			continue
		}
		day := 6 - int(age/(24*time.Hour))
		if in.MeasuresDetection() {
			d := in.TimeToDetect()
			sumD += d
			n++
			perDayD[day] += d.Seconds()
			cntD[day]++
		}
		if !in.Contained.IsZero() {
			d := in.TimeToContain()
			sumC += d
			nC++
			perDayC[day] += d.Seconds()
			cntC[day]++
		}
	}
	if n > 0 {
		mttd = sumD / time.Duration(n)
	}
	if nC > 0 {
		mttc = sumC / time.Duration(nC)
	}
	labels := make([]string, 7)
	for i := range 7 {
		labels[i] = now.Add(-time.Duration(6-i) * 24 * time.Hour).UTC().Format("Jan 2")
		if cntD[i] > 0 {
			perDayD[i] /= cntD[i]
		}
		if cntC[i] > 0 {
			perDayC[i] /= cntC[i]
		}
	}
	ch = pairChart(narrow, "Mean time to detect and to contain per day (seconds)", labels, perDayD, perDayC, "detect", "contain")
	return
}

func topCounts(m map[string]int, n int) []countRow {
	out := make([]countRow, 0, len(m))
	for k, v := range m {
		out = append(out, countRow{Key: k, Count: v})
	}
	slices.SortFunc(out, func(a, b countRow) int { return cmp.Or(b.Count-a.Count, strings.Compare(a.Key, b.Key)) })
	return out[:min(len(out), n)]
}

// ---- devices

type devicesData struct {
	Query    url.Values
	Q        string
	Devices  []vigil.Device
	Total    int
	Page     int
	Prev     string
	Next     string
	Facets   []facet
	Built    time.Time
	Findings map[string]int
}

func (c *Console) devices(w http.ResponseWriter, r *http.Request, s *session) error {
	idx, err := c.devicesIndex(r.Context())
	if err != nil {
		return err
	}
	q := r.URL.Query()
	page, _ := strconv.Atoi(q.Get("page"))
	page = max(page, 0)
	res := idx.search(q, page*listLimit, listLimit)
	d := devicesData{Query: q, Q: q.Get("q"), Devices: res.devices, Total: res.total, Page: page, Facets: res.facets, Built: idx.built}
	if page > 0 {
		d.Prev = withParam(q, "page", strconv.Itoa(page-1))
	}
	if (page+1)*listLimit < res.total {
		d.Next = withParam(q, "page", strconv.Itoa(page+1))
	}
	return c.page(w, r, s, "devices", "Devices", "devices", d)
}

// withParam returns the query with one parameter set, as "?...".
func withParam(q url.Values, k, v string) string {
	n := url.Values{}
	for kk, vv := range q {
		n[kk] = slices.Clone(vv)
	}
	if v == "" {
		n.Del(k)
	} else {
		n.Set(k, v)
	}
	if k != "page" {
		n.Del("page")
	}
	return "?" + n.Encode()
}

type deviceData struct {
	Device   vigil.Device
	Chart    chart
	Samples  int
	Software []softwareRow
	Findings int
	KEV      int
	// Listeners are the device's listening ports, when the scanner knows
	// them (Exposure).
	Listeners []scan.Listener
	Alerts    []vigil.Alert
	Incidents []vigil.Incident
	// Commands are the commands and response actions sent to the device,
	// newest first (GET /api/v1/devices/{id}/commands); CommandsMore:
	// there are older ones.
	Commands     []web.DeviceCommand
	CommandsMore bool
	Baseline     string
	// Peers are the device's relations in the entity graph, most
	// recent first (PeersMore: there are more; PeersErr: why none).
	Peers     []peerRow
	PeersMore bool
	PeersErr  string
}

type softwareRow struct {
	vigil.Component
	Findings []vuln.Finding
	KEV      bool
}

// deviceCommands is how many commands the device page shows.
const deviceCommands = 25

func (c *Console) device(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx := r.Context()
	id := r.PathValue("id")
	dev, err := c.opts.Store.GetDevice(ctx, id)
	if err != nil {
		return err
	}
	now := c.clock.Now()
	d := deviceData{Device: dev}
	hist, err := c.opts.Store.HealthHistory(ctx, id, now.Add(-24*time.Hour), time.Time{})
	if err != nil {
		return err
	}
	d.Samples = len(hist)
	d.Chart = healthChart(hist, now)
	var finds []vuln.Finding
	if c.opts.Findings != nil {
		finds = c.opts.Findings.Findings(scan.Filter{DeviceID: id})
	}
	if x, ok := c.opts.Findings.(Exposure); ok {
		d.Listeners = x.Listeners(id)
	}
	byComp := map[string][]vuln.Finding{}
	for _, f := range finds {
		byComp[f.Component+"\x00"+f.ComponentVersion] = append(byComp[f.Component+"\x00"+f.ComponentVersion], f)
		if f.KEV {
			d.KEV++
		}
	}
	d.Findings = len(finds)
	seen := map[string]bool{}
	for _, sw := range dev.Software {
		k := sw.Name + "\x00" + sw.Version
		row := softwareRow{Component: sw, Findings: byComp[k]}
		seen[k] = true
		for _, f := range row.Findings {
			row.KEV = row.KEV || f.KEV
		}
		d.Software = append(d.Software, row)
	}
	for k, fs := range byComp { // findings on components the inventory does not list (firmware)
		if !seen[k] {
			row := softwareRow{Component: vigil.Component{Name: fs[0].Component, Version: fs[0].ComponentVersion}, Findings: fs}
			for _, f := range fs {
				row.KEV = row.KEV || f.KEV
			}
			d.Software = append(d.Software, row)
		}
	}
	slices.SortFunc(d.Software, func(a, b softwareRow) int {
		return cmp.Or(len(b.Findings)-len(a.Findings), strings.Compare(a.Name, b.Name))
	})
	if d.Alerts, _, err = c.opts.Store.ListAlerts(ctx, store.AlertFilter{DeviceID: id, Page: store.Page{Limit: 20}}); err != nil {
		return err
	}
	if d.Incidents, _, err = c.opts.Store.ListIncidents(ctx, store.IncidentFilter{DeviceID: id, Page: store.Page{Limit: 20}}); err != nil {
		return err
	}
	var cmds api.List[web.DeviceCommand]
	if err := c.callAPI(r, s, "GET", api.Prefix+"/devices/"+url.PathEscape(id)+"/commands?limit="+strconv.Itoa(deviceCommands), nil, &cmds); err != nil {
		return err
	}
	d.Commands, d.CommandsMore = cmds.Items, cmds.NextCursor != ""
	var bl json.RawMessage
	if err := c.callAPI(r, s, "GET", api.Prefix+"/baseline/"+url.PathEscape(id), nil, &bl); err == nil {
		d.Baseline = indentJSON(bl)
	}
	d.Peers, d.PeersMore, d.PeersErr = c.peers(r, s, id)
	return c.page(w, r, s, "device", "Device "+cmp.Or(dev.Name, dev.ID), "devices", d)
}

// isolate asks for the isolation of a device: the API creates the action
// through the response engine, held for approval.
func (c *Console) isolate(w http.ResponseWriter, r *http.Request, s *session) error {
	id := r.PathValue("id")
	body := map[string]string{"incident_id": r.PostFormValue("incident")}
	if err := c.callAPI(r, s, "POST", api.Prefix+"/devices/"+url.PathEscape(id)+"/isolate", body, nil); err != nil {
		return err
	}
	http.Redirect(w, r, "/devices/"+url.PathEscape(id)+"?done=isolate", http.StatusSeeOther)
	return nil
}

func indentJSON(b []byte) string {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return ""
	}
	out, _ := json.MarshalIndent(v, "", "  ")
	return string(out)
}

// ---- alerts

type listData[T any] struct {
	Items  []T
	Next   string
	Filter url.Values
	Sort   string // store.SortTime or store.SortPriority
}

func (c *Console) alerts(w http.ResponseWriter, r *http.Request, s *session) error {
	q := r.URL.Query()
	sort, err := listSort(q, store.SortTime)
	if err != nil {
		return err
	}
	f := store.AlertFilter{DeviceID: q.Get("device"), RuleID: q.Get("rule"), IncidentID: q.Get("incident"), Sort: sort,
		Page: store.Page{Limit: listLimit, Cursor: q.Get("cursor")}}
	if v := q.Get("min_severity"); v != "" {
		sv, err := vigil.ParseSeverity(v)
		if err != nil {
			return err
		}
		f.MinSeverity = sv
	}
	items, next, err := c.opts.Store.ListAlerts(r.Context(), f)
	if err != nil {
		return err
	}
	d := listData[vigil.Alert]{Items: items, Filter: q, Sort: sort}
	if next != "" {
		d.Next = withParam(q, "cursor", next)
	}
	return c.page(w, r, s, "alerts", "Alerts", "alerts", d)
}

type alertData struct {
	Alert    vigil.Alert
	Fields   []kv
	Baseline []kv
}

type kv struct{ K, V string }

func (c *Console) alert(w http.ResponseWriter, r *http.Request, s *session) error {
	a, err := c.opts.Store.GetAlert(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	d := alertData{Alert: a}
	for k, v := range a.Fields {
		row := kv{k, vigil.ValueString(v)}
		if strings.HasPrefix(k, "baseline.") {
			d.Baseline = append(d.Baseline, row)
		} else {
			d.Fields = append(d.Fields, row)
		}
	}
	slices.SortFunc(d.Fields, func(a, b kv) int { return strings.Compare(a.K, b.K) })
	slices.SortFunc(d.Baseline, func(a, b kv) int { return strings.Compare(a.K, b.K) })
	return c.page(w, r, s, "alert", a.Title, "alerts", d)
}

func (c *Console) alertNormal(w http.ResponseWriter, r *http.Request, s *session) error {
	id := r.PathValue("id")
	body := map[string]any{"alert_id": id, "cohort": r.PostFormValue("cohort") == "on"}
	if err := c.callAPI(r, s, "POST", api.Prefix+"/baseline/normal", body, nil); err != nil {
		return err
	}
	http.Redirect(w, r, "/alerts/"+url.PathEscape(id)+"?done=normal", http.StatusSeeOther)
	return nil
}

// ---- incidents

func (c *Console) incidents(w http.ResponseWriter, r *http.Request, s *session) error {
	q := r.URL.Query()
	status := vigil.IncidentStatus(q.Get("status"))
	def := store.SortTime
	if status == vigil.IncidentOpen {
		def = store.SortPriority // the open queue, as the API lists it
	}
	sort, err := listSort(q, def)
	if err != nil {
		return err
	}
	f := store.IncidentFilter{Status: status, DeviceID: q.Get("device"), Sort: sort,
		Page: store.Page{Limit: listLimit, Cursor: q.Get("cursor")}}
	items, next, err := c.opts.Store.ListIncidents(r.Context(), f)
	if err != nil {
		return err
	}
	d := listData[vigil.Incident]{Items: items, Filter: q, Sort: sort}
	if next != "" {
		d.Next = withParam(q, "cursor", next)
	}
	return c.page(w, r, s, "incidents", "Incidents", "incidents", d)
}

type incidentData struct {
	Incident api.Incident
	Alerts   []vigil.Alert
	Actions  []vigil.Action
	Timeline []timelineRow
	Open     bool
	TTD, TTC time.Duration
	// Suggestions are the exceptions proposed once it was closed as a
	// false positive.
	Suggestions []suggestionRow
	// Blast is the blast radius; Campaign the campaign it belongs to.
	Blast    *blastData
	Campaign *campaignRow
	// Remediation is the time to remediate of the vulnerability findings
	// of its devices that update plans cover (report.DeviceRemediation,
	// as the posture report); Unplanned the scanner's findings of its
	// devices that no plan covers.
	Remediation []report.FindingTTR
	Unplanned   []vuln.Finding
}

type timelineRow struct {
	Time time.Time
	What string
	Link string
}

func (c *Console) incident(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx := r.Context()
	in, err := c.opts.Store.GetIncident(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	d := incidentData{Incident: api.NewIncident(in), Open: in.Status == vigil.IncidentOpen || in.Status == vigil.IncidentContained}
	d.TTD, d.TTC = d.Incident.Durations()
	if d.Alerts, _, err = c.opts.Store.ListAlerts(ctx, store.AlertFilter{IncidentID: in.ID, Page: store.Page{Limit: 200}}); err != nil {
		return err
	}
	if d.Actions, _, err = c.opts.Store.ListActions(ctx, store.ActionFilter{IncidentID: in.ID, Page: store.Page{Limit: 200}}); err != nil {
		return err
	}
	tl := []timelineRow{}
	if !in.FirstEventTime.IsZero() {
		tl = append(tl, timelineRow{in.FirstEventTime, "first malicious event", ""})
	}
	tl = append(tl, timelineRow{in.Detected, "detected", ""})
	for _, a := range d.Alerts {
		tl = append(tl, timelineRow{a.Created, "alert: " + a.Title + " on " + a.DeviceID, "/alerts/" + url.PathEscape(a.ID)})
	}
	for _, a := range d.Actions {
		tl = append(tl, timelineRow{a.Created, "action " + a.Type + " requested by " + a.RequestedBy, ""})
		if a.Updated.After(a.Created) {
			tl = append(tl, timelineRow{a.Updated, "action " + a.Type + ": " + string(a.State), ""})
		}
	}
	if !in.Contained.IsZero() {
		tl = append(tl, timelineRow{in.Contained, "contained", ""})
	}
	if !in.Resolved.IsZero() {
		tl = append(tl, timelineRow{in.Resolved, "closed as " + string(in.Status), ""})
	}
	slices.SortStableFunc(tl, func(a, b timelineRow) int { return a.Time.Compare(b.Time) })
	d.Timeline = tl
	d.Blast, d.Campaign = c.investigation(r, s, in.ID)
	if d.Remediation, d.Unplanned, err = c.remediation(ctx, in.DeviceIDs); err != nil {
		return err
	}
	if in.Status == vigil.IncidentFalsePositive {
		if d.Suggestions, err = c.suggestions(r, s, in.ID); err != nil {
			return err
		}
	}
	return c.page(w, r, s, "incident", in.Title, "incidents", d)
}

// remediation returns the time to remediate of the findings of devices
// from the update plans, and the scanner's findings of them no plan
// covers (at most 50).
func (c *Console) remediation(ctx context.Context, devices []string) ([]report.FindingTTR, []vuln.Finding, error) {
	if len(devices) == 0 {
		return nil, nil, nil
	}
	plans, err := c.opts.Store.ListUpdatePlans(ctx)
	if err != nil {
		return nil, nil, err
	}
	rows := report.DeviceRemediation(plans, devices, c.clock.Now())
	planned := map[string]bool{}
	for _, r := range rows {
		planned[r.DeviceID+"\x00"+r.Vuln] = true
	}
	var open []vuln.Finding
	if c.opts.Findings != nil {
		for _, dev := range devices {
			for _, f := range c.opts.Findings.Findings(scan.Filter{DeviceID: dev}) {
				if !planned[f.DeviceID+"\x00"+f.Vuln] && len(open) < 50 {
					open = append(open, f)
				}
			}
		}
	}
	return rows, open, nil
}

func (c *Console) resolve(w http.ResponseWriter, r *http.Request, s *session) error {
	id := r.PathValue("id")
	status := vigil.IncidentStatus(r.PostFormValue("status"))
	body := map[string]any{"status": status}
	if reason := strings.TrimSpace(r.PostFormValue("reason")); reason != "" {
		body["reason"] = reason
	}
	if r.PostFormValue("learn") == "on" {
		body["learn"] = true
	}
	if err := c.callAPI(r, s, "POST", api.Prefix+"/incidents/"+url.PathEscape(id)+"/resolve", body, nil); err != nil {
		return err
	}
	done := "resolved"
	if status == vigil.IncidentFalsePositive {
		done = "falsepositive"
	}
	http.Redirect(w, r, "/incidents/"+url.PathEscape(id)+"?done="+done, http.StatusSeeOther)
	return nil
}

// ---- actions

func (c *Console) actions(w http.ResponseWriter, r *http.Request, s *session) error {
	q := r.URL.Query()
	f := store.ActionFilter{State: vigil.ActionState(q.Get("state")), DeviceID: q.Get("device"),
		Page: store.Page{Limit: listLimit, Cursor: q.Get("cursor")}}
	items, next, err := c.opts.Store.ListActions(r.Context(), f)
	if err != nil {
		return err
	}
	pending, _, err := c.opts.Store.ListActions(r.Context(), store.ActionFilter{State: vigil.ActionPendingApproval, Page: store.Page{Limit: 200}})
	if err != nil {
		return err
	}
	d := struct {
		listData[vigil.Action]
		Pending []vigil.Action
		// Playbooks are the response playbooks loaded (GET
		// /api/v1/playbooks); HavePlaybooks is false on a server without
		// a response engine.
		Playbooks     []playbook.Summary
		HavePlaybooks bool
	}{listData: listData[vigil.Action]{Items: items, Filter: q}, Pending: pending}
	if next != "" {
		d.Next = withParam(q, "cursor", next)
	}
	var pbs api.List[playbook.Summary]
	switch err := c.callAPI(r, s, "GET", api.Prefix+"/playbooks", nil, &pbs); {
	case err == nil:
		d.Playbooks, d.HavePlaybooks = pbs.Items, true
	case vigil.ErrorCode(err) != vigil.ENOTFOUND:
		return err
	}
	return c.page(w, r, s, "actions", "Actions", "actions", d)
}

func (c *Console) decide(approve bool) func(w http.ResponseWriter, r *http.Request, s *session) error {
	return func(w http.ResponseWriter, r *http.Request, s *session) error {
		id := r.PathValue("id")
		p, done := api.Prefix+"/actions/"+url.PathEscape(id)+"/approve", "approved"
		var body any
		if !approve {
			p, done = api.Prefix+"/actions/"+url.PathEscape(id)+"/deny", "denied"
			body = map[string]string{"reason": r.PostFormValue("reason")}
		}
		if err := c.callAPI(r, s, "POST", p, body, nil); err != nil {
			return err
		}
		http.Redirect(w, r, backTo(r, "/actions")+"done="+done, http.StatusSeeOther)
		return nil
	}
}

// backTo is the local page a form asked to return to (its "back" field),
// ready for a query parameter to be appended.
func backTo(r *http.Request, def string) string {
	b := r.PostFormValue("back")
	if safeNext(b) != b || b == "/" {
		b = def
	}
	if strings.Contains(b, "?") {
		return b + "&"
	}
	return b + "?"
}

// ---- rules

type ruleInfo struct {
	ID        string   `json:"id"`
	Title     string   `json:"title"`
	Level     string   `json:"level"`
	Tags      []string `json:"tags"`
	Enabled   bool     `json:"enabled"`
	Matches   uint64   `json:"matches"`
	Evals     uint64   `json:"evals"`
	EvalNanos uint64   `json:"eval_nanos"`
}

func (c *Console) rules(w http.ResponseWriter, r *http.Request, s *session) error {
	return c.rulesPage(w, r, s, nil)
}

// rulesPage is the Rules page, with the outcome of a rule test when test
// is not nil.
func (c *Console) rulesPage(w http.ResponseWriter, r *http.Request, s *session, test *ruleTestData) error {
	var rl struct {
		Items []ruleInfo `json:"items"`
		Last  struct {
			Compiled int              `json:"compiled"`
			Rejected []map[string]any `json:"rejected"`
		} `json:"last_load"`
	}
	err := c.callAPI(r, s, "GET", api.Prefix+"/rules", nil, &rl)
	if vigil.ErrorCode(err) == vigil.ENOTFOUND {
		err = nil // no online rules in this server
	}
	if err != nil {
		return err
	}
	q := strings.ToLower(r.URL.Query().Get("q"))
	items := rl.Items[:0]
	for _, x := range rl.Items {
		if q == "" || strings.Contains(strings.ToLower(x.ID+" "+x.Title+" "+strings.Join(x.Tags, " ")), q) {
			items = append(items, x)
		}
	}
	rl.Items = items
	return c.page(w, r, s, "rules", "Rules", "rules", map[string]any{"Rules": rl.Items, "Compiled": rl.Last.Compiled, "Rejected": len(rl.Last.Rejected), "Q": q, "Test": test})
}

func (c *Console) toggleRule(w http.ResponseWriter, r *http.Request, s *session) error {
	sel := r.PostFormValue("rule")
	p := api.Prefix + "/rules/disable"
	if r.PostFormValue("enable") == "true" {
		p = api.Prefix + "/rules/enable"
	}
	if err := c.callAPI(r, s, "POST", p, map[string]string{"selector": sel}, nil); err != nil {
		return err
	}
	http.Redirect(w, r, "/rules?done=rules", http.StatusSeeOther)
	return nil
}

// ---- intel and vulnerabilities

func (c *Console) intel(w http.ResponseWriter, r *http.Request, s *session) error {
	var feeds struct {
		Items []struct {
			Feed struct {
				Name   string `json:"name"`
				Source string `json:"source"`
				Format string `json:"format"`
			} `json:"feed"`
			Count    int       `json:"count"`
			Imported time.Time `json:"imported"`
			Format   string    `json:"format"`
		} `json:"items"`
	}
	err := c.callAPI(r, s, "GET", api.Prefix+"/intel/feeds", nil, &feeds)
	if err != nil && vigil.ErrorCode(err) != vigil.ENOTFOUND {
		return err
	}
	var finds []vuln.Finding
	kev := r.URL.Query().Get("kev") == "true"
	if c.opts.Findings != nil {
		finds = c.opts.Findings.Findings(scan.Filter{KEVOnly: kev})
	}
	total := len(finds)
	finds = finds[:min(len(finds), 200)]
	return c.page(w, r, s, "intel", "Intel and vulnerabilities", "intel", map[string]any{
		"Feeds": feeds.Items, "Findings": finds, "Total": total, "KEVOnly": kev, "Posture": c.posture(scan.Filter{})})
}

// ---- audit

type verifyReport struct {
	Records  int64  `json:"records"`
	LastSeq  int64  `json:"last_seq"`
	LastHash string `json:"last_hash"`
	Keyed    bool   `json:"keyed"`
	Sealed   int64  `json:"sealed"`
	Unsealed int64  `json:"unsealed"`
	OK       bool   `json:"ok"`
	BadSeq   int64  `json:"bad_seq"`
	Problem  string `json:"problem"`
	Detail   string `json:"detail"`
}

func (c *Console) audit(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx := r.Context()
	q := r.URL.Query()
	v := c.verification(r, s, q.Get("verify") == "1")
	last, err := lastAuditSeq(r, c.opts.Store)
	if err != nil {
		return err
	}
	// Newest first: the page that ends before "before" (default: the end).
	before, _ := strconv.ParseInt(q.Get("before"), 10, 64)
	if before <= 0 || before > last+1 {
		before = last + 1
	}
	after := max(before-1-listLimit, 0)
	var recs []vigil.AuditRecord
	if before-1 > after {
		if recs, err = c.opts.Store.ListAudit(ctx, after, int(before-1-after)); err != nil {
			return err
		}
	}
	slices.Reverse(recs)
	d := map[string]any{"Verify": v, "Records": recs, "Older": "", "Last": last}
	if after > 0 {
		d["Older"] = "?before=" + strconv.FormatInt(after+1, 10)
	}
	return c.page(w, r, s, "audit", "Audit trail", "audit", d)
}

// verification is the latest check of the audit trail's chain and seals.
type verification struct {
	Report verifyReport
	Err    string
	At     time.Time
}

// verification returns the cached check of the trail, checking again when
// asked or when it is older than a minute (a check reads the whole trail).
func (c *Console) verification(r *http.Request, s *session, now bool) verification {
	c.rateMu.Lock()
	v := c.verified
	c.rateMu.Unlock()
	t := c.clock.Now()
	if !now && !v.At.IsZero() && t.Sub(v.At) < time.Minute {
		return v
	}
	v = verification{At: t}
	if err := c.callAPI(r, s, "GET", api.Prefix+"/audit/verify", nil, &v.Report); err != nil {
		v.Err = vigil.ErrorMessage(err)
	}
	c.rateMu.Lock()
	c.verified = v
	c.rateMu.Unlock()
	return v
}

// lastAuditSeq finds the sequence number of the newest audit record with
// O(log n) one-record reads (the store lists the trail forward only).
func lastAuditSeq(r *http.Request, st store.Audit) (int64, error) {
	exists := func(seq int64) (bool, error) {
		recs, err := st.ListAudit(r.Context(), seq-1, 1)
		return len(recs) > 0, err
	}
	lo, hi := int64(0), int64(1) // lo exists (0: none), hi is probed
	for {
		ok, err := exists(hi)
		if err != nil {
			return 0, err
		}
		if !ok {
			break
		}
		lo, hi = hi, hi*2
	}
	for hi-lo > 1 { // lo exists, hi does not
		mid := lo + (hi-lo)/2
		ok, err := exists(mid)
		if err != nil {
			return 0, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, nil
}
