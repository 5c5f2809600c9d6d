package investigate

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/graph"
	"github.com/vigil-iot/vigil/store"
)

// Indicator kinds that link incidents into a campaign.
const (
	IndicatorSource     = "source"     // an address the attack came from (source.ip, a download host)
	IndicatorDomain     = "domain"     // a domain resolved, contacted or downloaded from
	IndicatorFile       = "file"       // a file or program hash
	IndicatorCredential = "credential" // an account logged in with or tried
	IndicatorTechniques = "techniques" // the same sequence of ATT&CK techniques
)

// Campaign is incidents on several devices linked by shared indicators,
// with one timeline.
type Campaign struct {
	// ID is derived from the campaign's earliest incident: it stays while
	// that incident is stored and in the window.
	ID         string         `json:"id"`
	Title      string         `json:"title"`
	Severity   vigil.Severity `json:"severity"`
	Incidents  []string       `json:"incidents"`
	Devices    []string       `json:"devices"`
	Techniques []string       `json:"techniques,omitempty"`
	// Indicators are those shared by at least two of its incidents.
	Indicators []Indicator `json:"indicators"`
	First      time.Time   `json:"first"`
	Last       time.Time   `json:"last"`
	// Timeline is the alerts and the response actions of every incident,
	// oldest first (only in Campaign, not in the list).
	Timeline []Entry `json:"timeline,omitempty"`
}

// Indicator is one thing incidents share.
type Indicator struct {
	Kind      string   `json:"kind"`
	Value     string   `json:"value"`
	Incidents []string `json:"incidents"`
}

// Entry is one line of a timeline.
type Entry struct {
	Time       time.Time      `json:"time"`
	What       string         `json:"what"` // alert, action, event
	IncidentID string         `json:"incident_id,omitempty"`
	DeviceID   string         `json:"device_id,omitempty"`
	Severity   vigil.Severity `json:"severity,omitempty"`
	Title      string         `json:"title"`
	// Ref is the id of the alert, action or event.
	Ref string `json:"ref"`
}

// CampaignQuery selects the incidents campaigns are built from.
type CampaignQuery struct {
	// Since keeps incidents detected at or after it (default: 30 days
	// before the clock's now).
	Since time.Time
}

// Bounds of the work one campaign request does.
const (
	maxCampaignIncidents = 2000 // incidents read
	maxEvidenceEvents    = 20   // evidence events read per incident
)

// extractor is the graph's built-in extractor, compiled once.
var extractor = sync.OnceValue(graph.DefaultExtractor)

// incidentIndicators are the indicators of one incident.
type incidentIndicators struct {
	inc  vigil.Incident
	keys map[string]bool // "kind\x00value"
}

// Campaigns returns the campaigns among the incidents detected since
// q.Since, newest first (by their last incident), without timelines.
func (iv *Investigator) Campaigns(ctx context.Context, q CampaignQuery) ([]Campaign, error) {
	cs, err := iv.campaigns(ctx, q)
	if err != nil {
		return nil, err
	}
	for i := range cs {
		cs[i].Timeline = nil
	}
	return cs, nil
}

// Campaign returns one campaign with its timeline. ENOTFOUND when no
// campaign of that id is in the window.
func (iv *Investigator) Campaign(ctx context.Context, id string, q CampaignQuery) (Campaign, error) {
	cs, err := iv.campaigns(ctx, q)
	if err != nil {
		return Campaign{}, err
	}
	for _, c := range cs {
		if c.ID == id {
			return c, iv.timeline(ctx, &c)
		}
	}
	return Campaign{}, vigil.Errorf(vigil.ENOTFOUND, "campaign %q not found among the incidents detected since %s", id, iv.since(q).Format(time.RFC3339))
}

func (iv *Investigator) since(q CampaignQuery) time.Time {
	if q.Since.IsZero() {
		return iv.clock.Now().Add(-30 * 24 * time.Hour)
	}
	return q.Since
}

func (iv *Investigator) campaigns(ctx context.Context, q CampaignQuery) ([]Campaign, error) {
	since := iv.since(q)
	var incs []vigil.Incident
	for cursor := ""; len(incs) < maxCampaignIncidents; {
		page, next, err := iv.st.ListIncidents(ctx, store.IncidentFilter{Page: store.Page{Limit: 1000, Cursor: cursor}})
		if err != nil {
			return nil, err
		}
		done := false
		for _, in := range page {
			if in.Detected.Before(since) {
				done = true // newest first: the rest are older
				break
			}
			if in.Status != vigil.IncidentFalsePositive {
				incs = append(incs, in)
			}
		}
		if done || next == "" {
			break
		}
		cursor = next
	}
	var all []incidentIndicators
	for _, in := range incs {
		ii, err := iv.cachedIndicators(ctx, in)
		if err != nil {
			return nil, err
		}
		all = append(all, ii)
	}
	// Link incidents sharing an indicator (union-find).
	parent := make([]int, len(all))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	holders := map[string][]int{}
	for i, ii := range all {
		for k := range ii.keys {
			holders[k] = append(holders[k], i)
		}
	}
	for _, hs := range holders {
		for _, h := range hs[1:] {
			parent[find(h)] = find(hs[0])
		}
	}
	groups := map[int][]int{}
	for i := range all {
		groups[find(i)] = append(groups[find(i)], i)
	}
	var out []Campaign
	for _, members := range groups {
		if c, ok := makeCampaign(all, members, holders); ok {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b Campaign) int { return cmp.Or(b.Last.Compare(a.Last), cmp.Compare(a.ID, b.ID)) })
	return out, nil
}

// makeCampaign builds the campaign of linked incidents; ok is false when
// they are not a campaign (one incident, or one device).
func makeCampaign(all []incidentIndicators, members []int, holders map[string][]int) (Campaign, bool) {
	if len(members) < 2 {
		return Campaign{}, false
	}
	var c Campaign
	slices.SortFunc(members, func(a, b int) int {
		return cmp.Or(all[a].inc.Detected.Compare(all[b].inc.Detected), cmp.Compare(all[a].inc.ID, all[b].inc.ID))
	})
	for _, m := range members {
		in := all[m].inc
		c.Incidents = append(c.Incidents, in.ID)
		c.Devices = append(c.Devices, in.DeviceIDs...)
		c.Techniques = append(c.Techniques, in.Techniques...)
		c.Severity = max(c.Severity, in.Severity)
		first := cmp.Or(in.FirstEventTime, in.Detected)
		if c.First.IsZero() || first.Before(c.First) {
			c.First = first
		}
		if last := cmp.Or(in.Updated, in.Detected); last.After(c.Last) {
			c.Last = last
		}
	}
	slices.Sort(c.Devices)
	c.Devices = slices.Compact(c.Devices)
	if len(c.Devices) < 2 {
		return Campaign{}, false
	}
	slices.Sort(c.Techniques)
	c.Techniques = slices.Compact(c.Techniques)
	in := map[int]bool{}
	for _, m := range members {
		in[m] = true
	}
	for k, hs := range holders {
		if len(hs) < 2 || !in[hs[0]] {
			continue
		}
		kind, v, _ := strings.Cut(k, "\x00")
		ind := Indicator{Kind: kind, Value: v}
		for _, h := range hs {
			ind.Incidents = append(ind.Incidents, all[h].inc.ID)
		}
		slices.Sort(ind.Incidents)
		c.Indicators = append(c.Indicators, ind)
	}
	slices.SortFunc(c.Indicators, func(a, b Indicator) int {
		return cmp.Or(cmp.Compare(len(b.Incidents), len(a.Incidents)), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Value, b.Value))
	})
	sum := sha256.Sum256([]byte(c.Incidents[0]))
	c.ID = "camp-" + hex.EncodeToString(sum[:6])
	var what []string
	for _, ind := range c.Indicators[:min(3, len(c.Indicators))] {
		what = append(what, ind.Kind+" "+ind.Value)
	}
	c.Title = fmt.Sprintf("%d incidents on %d devices sharing %s", len(c.Incidents), len(c.Devices), strings.Join(what, ", "))
	return c, true
}

// IndicatorTTL is how long the indicators read for an incident are kept
// between requests. Reading them is most of a campaign list's cost (the
// alerts of every incident of 30 days and up to 20 evidence events each:
// about 300 ms of CPU for 2,000 incidents), and the incident page, its
// report and the campaign list each need every incident's. An incident
// that changed (Updated, its number of alerts or of entities) is read
// again at once; evidence added to one of its alerts without a change of
// the incident shows after at most IndicatorTTL.
const IndicatorTTL = 5 * time.Minute

// maxCachedIndicators bounds the incidents whose indicators are kept.
const maxCachedIndicators = 4 * maxCampaignIncidents

// cachedIndicators is the indicators of an incident as read at a time.
type cachedIndicators struct {
	version string // what the incident was when read (indicatorVersion)
	at      time.Time
	keys    map[string]bool // shared read-only between requests
}

// indicatorVersion says what of an incident its indicators follow.
func indicatorVersion(in *vigil.Incident) string {
	return fmt.Sprintf("%d/%d/%d", in.Updated.UnixNano(), len(in.AlertIDs), len(in.Entities))
}

// cachedIndicators returns the indicators of an incident, read again when
// it changed or they are older than IndicatorTTL.
func (iv *Investigator) cachedIndicators(ctx context.Context, in vigil.Incident) (incidentIndicators, error) {
	now, version := iv.clock.Now(), indicatorVersion(&in)
	iv.indMu.Lock()
	c, ok := iv.ind[in.ID]
	iv.indMu.Unlock()
	if ok && c.version == version && now.Sub(c.at) < IndicatorTTL && !now.Before(c.at) {
		return incidentIndicators{inc: in, keys: c.keys}, nil
	}
	ii, err := iv.indicators(ctx, in)
	if err != nil {
		return ii, err
	}
	iv.indMu.Lock()
	defer iv.indMu.Unlock()
	if iv.ind == nil || len(iv.ind) >= maxCachedIndicators {
		for id, c := range iv.ind { // expired first; all when still full
			if now.Sub(c.at) >= IndicatorTTL || now.Before(c.at) {
				delete(iv.ind, id)
			}
		}
		if iv.ind == nil || len(iv.ind) >= maxCachedIndicators {
			iv.ind = map[string]cachedIndicators{}
		}
	}
	iv.ind[in.ID] = cachedIndicators{version: version, at: now, keys: ii.keys}
	return ii, nil
}

// indicators reads the indicators of an incident: its entities, and what
// the evidence events of its alerts show (addresses the attack came
// from, domains, hashes, accounts), and its sequence of techniques.
func (iv *Investigator) indicators(ctx context.Context, in vigil.Incident) (incidentIndicators, error) {
	ii := incidentIndicators{inc: in, keys: map[string]bool{}}
	add := func(kind, v string) {
		if v != "" {
			ii.keys[kind+"\x00"+v] = true
		}
	}
	for _, e := range in.Entities {
		typ, v, _ := store.SplitEntityKey(e)
		switch typ {
		case store.EntityIP:
			add(IndicatorSource, v)
		case store.EntityDomain:
			add(IndicatorDomain, v)
		case store.EntityUser:
			add(IndicatorCredential, v)
		case store.EntityFile:
			add(IndicatorFile, v)
		}
	}
	alerts, _, err := iv.st.ListAlerts(ctx, store.AlertFilter{IncidentID: in.ID, Page: store.Page{Limit: 1000}})
	if err != nil {
		return ii, err
	}
	slices.SortFunc(alerts, func(a, b vigil.Alert) int { return a.FirstEventTime.Compare(b.FirstEventTime) })
	// The sequence of techniques: each alert's first technique without
	// its sub-technique (T1110.001 is T1110), repeats dropped; two alerts
	// of one step (two brute-force rules) make no sequence.
	var seq []string
	var evIDs []string
	for _, a := range alerts {
		if len(a.Techniques) > 0 {
			t, _, _ := strings.Cut(a.Techniques[0], ".")
			if !slices.Contains(seq, t) {
				seq = append(seq, t)
			}
		}
		for _, id := range a.EventIDs {
			if len(evIDs) < maxEvidenceEvents && !slices.Contains(evIDs, id) {
				evIDs = append(evIDs, id)
			}
		}
	}
	if len(seq) >= 2 {
		add(IndicatorTechniques, strings.Join(seq, ">"))
	}
	x := extractor()
	for _, id := range evIDs {
		ev, err := iv.st.GetEvent(ctx, id)
		if vigil.ErrorCode(err) == vigil.ENOTFOUND {
			continue // removed by retention
		} else if err != nil {
			return ii, err
		}
		if ev.Network != nil && ev.Network.SrcIP.IsValid() && ev.Kind == vigil.KindAuth {
			add(IndicatorSource, ev.Network.SrcIP.String())
		}
		b := graph.NewBatch()
		x.Add(b, &ev)
		for _, r := range b.Flush().Relations {
			typ, v, _ := store.SplitEntityKey(r.To)
			switch {
			case r.Rel == "downloaded_from" && typ == store.EntityIP, r.Rel == "logged_in_to" && typeOf(r.From) == store.EntityIP:
				if r.Rel == "logged_in_to" {
					v = value(r.From)
				}
				if a, err := netip.ParseAddr(v); err == nil && !a.IsLoopback() {
					add(IndicatorSource, v)
				}
			case typ == store.EntityDomain:
				add(IndicatorDomain, v)
			case typ == store.EntityFile:
				add(IndicatorFile, v)
			case typ == store.EntityUser && (r.Rel == "logged_in_as" || r.Rel == "failed_login_as"):
				add(IndicatorCredential, v)
			}
		}
	}
	return ii, nil
}

// timeline fills c.Timeline: the alerts and actions of its incidents.
func (iv *Investigator) timeline(ctx context.Context, c *Campaign) error {
	for _, id := range c.Incidents {
		es, err := iv.incidentTimeline(ctx, id)
		if err != nil {
			return err
		}
		c.Timeline = append(c.Timeline, es...)
	}
	sortTimeline(c.Timeline)
	return nil
}

func sortTimeline(es []Entry) {
	slices.SortStableFunc(es, func(a, b Entry) int { return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.Ref, b.Ref)) })
}

// incidentTimeline returns the alerts and actions of one incident.
func (iv *Investigator) incidentTimeline(ctx context.Context, incidentID string) ([]Entry, error) {
	var out []Entry
	alerts, _, err := iv.st.ListAlerts(ctx, store.AlertFilter{IncidentID: incidentID, Page: store.Page{Limit: 1000}})
	if err != nil {
		return nil, err
	}
	for _, a := range alerts {
		title := cmp.Or(a.Title, a.RuleID)
		if a.Count > 1 {
			title += fmt.Sprintf(" (×%d)", a.Count)
		}
		if len(a.Techniques) > 0 {
			title += " [" + strings.Join(a.Techniques, ", ") + "]"
		}
		out = append(out, Entry{Time: a.FirstEventTime, What: "alert", IncidentID: incidentID, DeviceID: a.DeviceID, Severity: a.Severity, Title: title, Ref: a.ID})
	}
	acts, _, err := iv.st.ListActions(ctx, store.ActionFilter{IncidentID: incidentID, Page: store.Page{Limit: 1000}})
	if err != nil {
		return nil, err
	}
	for _, x := range acts {
		title := fmt.Sprintf("%s %s: %s", x.Type, x.DeviceID, x.State)
		if x.Playbook != "" {
			title += " (playbook " + x.Playbook + ")"
		}
		if x.Result != "" {
			title += " — " + x.Result
		}
		out = append(out, Entry{Time: x.Created, What: "action", IncidentID: incidentID, DeviceID: x.DeviceID, Title: title, Ref: x.ID})
	}
	sortTimeline(out)
	return out, nil
}
