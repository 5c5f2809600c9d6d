package console

import (
	"cmp"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/graph"
	"github.com/vigil-iot/vigil/investigate"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/web"
	"github.com/vigil-iot/vigil/web/api"
)

// Hunting, blast radius, campaigns, the incident report and a device's
// peers: the console shows what the API's hunting and investigation
// routes answer (docs/hunting.md, docs/investigation.md), called
// in-process as the logged-in user.

// ---- hunt

// huntExamples are the examples of docs/hunting.md, offered as links.
var huntExamples = []string{
	`| stats count by event.kind | sort -count`,
	`kind=auth outcome=failure | top limit=3 user.name`,
	`kind=auth | stats count, dc(user.name) as users by source.ip, device.id`,
	`source.ip=203.0.113.0/24 OR destination.ip=203.0.113.0/24 | table _time device.id event.kind event.action user.name`,
	`earliest=-1h kind=network NOT destination.port=443 | stats count by destination.port, device.id | sort -count | head 10`,
	`device.id=camera-* | bin _time span=1m | stats count by _time, event.kind`,
	`| regex destination.domain="\.(xyz|top)$" | table _time device.id destination.domain`,
}

// huntPage is how many events one page of a hunt shows.
const huntPage = 100

type huntData struct {
	Query    string
	Saved    []store.SavedQuery
	Me       string // the session's actor: the author of its own saved queries
	Admin    bool   // may change and delete every saved query
	Examples []string
	Ran      bool
	Err      string
	Caret    string // the query's prefix up to the error, for the marker
	ErrPos   int    // 1-based position of the error, 0 when none
	Columns  []string
	Rows     [][]string
	Extra    bool // the last column holds the events' other fields
	Chart    *chart
	Result   web.HuntResponse
	Next     string // link to the next page of events
	First    string // link to the first page, when not on it
	Events   bool
}

// errPos finds "at position N" in a query error.
var errPos = regexp.MustCompile(`at position (\d+)`)

// eventColumns lead a table of raw events; the other fields follow in one
// column.
var eventColumns = []string{"_time", "device.id", "event.kind", "event.action", "event.outcome"}

func (c *Console) hunt(w http.ResponseWriter, r *http.Request, s *session) error {
	q := r.URL.Query()
	d := huntData{Query: strings.TrimSpace(q.Get("q")), Examples: huntExamples}
	var err error
	_, d.Me = s.caller()
	d.Admin = s.can(auth.PermAdmin)
	if d.Saved, err = c.savedQueries(r, s); err != nil {
		return err
	}
	if d.Query == "" {
		return c.page(w, r, s, "hunt", "Hunt", "hunt", d)
	}
	d.Ran = true
	cursor := q.Get("cursor")
	err = c.callAPI(r, s, "POST", api.Prefix+"/hunt", web.HuntRequest{Query: d.Query, Limit: huntPage, Cursor: cursor}, &d.Result)
	if err != nil {
		if vigil.ErrorCode(err) != vigil.EINVALID {
			return err
		}
		d.Err = vigil.ErrorMessage(err)
		if m := errPos.FindStringSubmatch(d.Err); m != nil {
			if n, err := strconv.Atoi(m[1]); err == nil && n >= 1 && n <= len(d.Query)+1 {
				d.ErrPos, d.Caret = n, d.Query[:n-1]
			}
		}
		return c.page(w, r, s, "hunt", "Hunt", "hunt", d)
	}
	res := &d.Result
	if len(res.Rows) > 0 || (len(res.Columns) > 0 && len(res.Events) == 0) {
		d.Columns = res.Columns
		for _, row := range res.Rows {
			cells := make([]string, len(row))
			for i, v := range row {
				cells[i] = vigil.ValueString(v)
			}
			d.Rows = append(d.Rows, cells)
		}
		d.Chart = huntChart(res.Columns, d.Rows)
	} else {
		d.Events = true
		d.Columns = res.Columns
		if len(d.Columns) == 0 {
			d.Columns, d.Extra = eventColumns, true
		}
		for _, ev := range res.Events {
			cells := make([]string, 0, len(d.Columns)+1)
			for _, col := range d.Columns {
				cells = append(cells, vigil.ValueString(ev[col]))
			}
			if d.Extra {
				var rest []string
				for k, v := range ev {
					if !slices.Contains(eventColumns, k) {
						rest = append(rest, k+"="+vigil.ValueString(v))
					}
				}
				slices.Sort(rest)
				cells = append(cells, strings.Join(rest, " "))
			}
			d.Rows = append(d.Rows, cells)
		}
		if res.Next != "" {
			d.Next = "/hunt?" + url.Values{"q": {d.Query}, "cursor": {res.Next}}.Encode()
		}
		if cursor != "" {
			d.First = "/hunt?" + url.Values{"q": {d.Query}}.Encode()
		}
	}
	return c.page(w, r, s, "hunt", "Hunt", "hunt", d)
}

// huntChart draws an aggregation's count column (the first column named
// count, or ending in count) against its other columns, when there is
// one; at most 60 bars.
func huntChart(cols []string, rows [][]string) *chart {
	ci := slices.IndexFunc(cols, func(c string) bool { return c == "count" || strings.HasSuffix(c, "count") })
	if ci < 0 || len(rows) == 0 {
		return nil
	}
	rows = rows[:min(len(rows), 60)]
	labels := make([]string, len(rows))
	values := make([]float64, len(rows))
	for i, row := range rows {
		var parts []string
		for _, v := range row[:ci] { // the groups come before the aggregates
			parts = append(parts, cmp.Or(v, "—"))
		}
		labels[i] = cmp.Or(truncate(strings.Join(parts, " · "), 28), "all")
		values[i], _ = strconv.ParseFloat(row[ci], 64)
	}
	title := cols[ci]
	if ci > 0 {
		title += " by " + strings.Join(cols[:ci], ", ")
	}
	ch := barChart(wide, title, labels, values, "")
	return &ch
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// ---- incident: blast radius, campaign, report

// blastData is the blast radius section of an incident.
type blastData struct {
	Radius investigate.BlastRadius
	Graph  chart
	Err    string // the radius could not be computed: why
}

// campaignRow is the campaign an incident belongs to.
type campaignRow struct {
	investigate.Campaign
	Others []string // the other incidents of the campaign
}

// investigation fills an incident's blast radius and campaign. Neither
// stops the page: when the API cannot answer, the page says why.
// The two are asked at once: each walks the store on its own (see
// docs/benchmarks.md for what they cost).
func (c *Console) investigation(r *http.Request, s *session, id string) (*blastData, *campaignRow) {
	b := &blastData{}
	var cs api.List[investigate.Campaign]
	var csErr error
	var wg sync.WaitGroup
	wg.Go(func() { cs.Items, csErr = c.campaignList(r, s) })
	if err := c.callAPI(r, s, "GET", api.Prefix+"/incidents/"+url.PathEscape(id)+"/blast-radius", nil, &b.Radius); err != nil {
		b.Err = vigil.ErrorMessage(err)
	} else {
		b.Graph = blastGraph(b.Radius)
	}
	wg.Wait()
	if csErr != nil {
		return b, nil
	}
	for _, cp := range cs.Items {
		if slices.Contains(cp.Incidents, id) {
			row := &campaignRow{Campaign: cp}
			for _, o := range cp.Incidents {
				if o != id {
					row.Others = append(row.Others, o)
				}
			}
			return b, row
		}
	}
	return b, nil
}

// campaignTTL is how long the console keeps the campaign list: finding
// campaigns reads every incident of 30 days and their alerts, the same
// for every reader, and an analyst views incident after incident.
const campaignTTL = 30 * time.Second

// campaignCache is the campaign list last read, and when.
type campaignCache struct {
	items []investigate.Campaign
	read  time.Time
}

// campaignList returns the campaigns (GET /api/v1/campaigns), read again
// when older than campaignTTL. Every caller of it holds the read
// permission the route needs (the incident page needs it too).
func (c *Console) campaignList(r *http.Request, s *session) ([]investigate.Campaign, error) {
	now := c.clock.Now()
	c.campMu.Lock()
	cc := c.campaigns
	c.campMu.Unlock()
	if !cc.read.IsZero() && now.Sub(cc.read) < campaignTTL && now.Sub(cc.read) >= 0 {
		return cc.items, nil
	}
	var cs api.List[investigate.Campaign]
	if err := c.callAPI(r, s, "GET", api.Prefix+"/campaigns", nil, &cs); err != nil {
		return nil, err
	}
	c.campMu.Lock()
	c.campaigns = campaignCache{items: cs.Items, read: now}
	c.campMu.Unlock()
	return cs.Items, nil
}

// blastNodes bounds the entities drawn around the compromised devices.
const blastNodes = 14

// blastGraph draws a blast radius: the compromised devices in the centre,
// the highest ranked entities around them, each joined to the device its
// evidence starts from by a line labelled with its strongest reason.
// Colours come from the stylesheet (classes by entity type).
func blastGraph(br investigate.BlastRadius) chart {
	const w, h = 900, 460
	cx, cy := float64(w)/2, float64(h)/2
	var b strings.Builder
	title := fmt.Sprintf("Blast radius of %s", br.IncidentID)
	fmt.Fprintf(&b, `<svg class="chart graph" viewBox="0 0 %d %d" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg"><title>%s</title>`, w, h, esc(title), esc(title))
	centre := map[string][2]float64{}
	nc := len(br.Compromised)
	for i, d := range br.Compromised {
		x, y := cx, cy
		if nc > 1 {
			a := 2 * math.Pi * float64(i) / float64(nc)
			x, y = cx+60*math.Cos(a), cy+40*math.Sin(a)
		}
		centre[store.EntityKey(store.EntityDevice, d)] = [2]float64{x, y}
	}
	items := br.Items[:min(len(br.Items), blastNodes)]
	type node struct {
		x, y  float64
		label string
		cls   string
		tip   string
	}
	var nodes []node
	for i, it := range items {
		a := 2*math.Pi*float64(i)/float64(max(len(items), 1)) - math.Pi/2
		x, y := cx+330*math.Cos(a), cy+175*math.Sin(a)
		from := [2]float64{cx, cy}
		if nc > 0 {
			from = centre[store.EntityKey(store.EntityDevice, br.Compromised[0])]
		}
		var reason string
		if len(it.Reasons) > 0 {
			reason = it.Reasons[0].Code
			for _, rs := range it.Reasons {
				for _, rel := range rs.Relations {
					for _, k := range []string{rel.From, rel.To} {
						if p, ok := centre[k]; ok {
							from = p
						}
					}
				}
			}
		}
		fmt.Fprintf(&b, `<line class="edge" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`, from[0], from[1], x, y)
		lx, ly := from[0]+(x-from[0])*0.55, from[1]+(y-from[1])*0.55
		fmt.Fprintf(&b, `<text class="elabel" x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, lx, ly, esc(reason))
		typ, val, _ := store.SplitEntityKey(it.Entity)
		var why []string
		for _, rs := range it.Reasons {
			why = append(why, rs.Detail)
		}
		nodes = append(nodes, node{x, y, truncate(val, 24), "n-" + strings.ReplaceAll(cmp.Or(typ, "other"), ".", "-"), fmt.Sprintf("%s (score %s): %s", it.Entity, fmtNum(it.Score), strings.Join(why, "; "))})
	}
	for _, n := range nodes {
		anchor, dx := "start", 11.0
		if n.x < cx-1 {
			anchor, dx = "end", -11
		} else if math.Abs(n.x-cx) < 1 {
			anchor, dx = "middle", 0
		}
		dy := 4.0
		if anchor == "middle" {
			dy = -13
			if n.y > cy {
				dy = 22
			}
		}
		fmt.Fprintf(&b, `<g class="node %s"><circle cx="%.1f" cy="%.1f" r="8"/><text x="%.1f" y="%.1f" text-anchor="%s">%s</text><title>%s</title></g>`,
			n.cls, n.x, n.y, n.x+dx, n.y+dy, anchor, esc(n.label), esc(n.tip))
	}
	for _, d := range br.Compromised {
		p := centre[store.EntityKey(store.EntityDevice, d)]
		fmt.Fprintf(&b, `<g class="node n-compromised"><circle cx="%.1f" cy="%.1f" r="14"/><text x="%.1f" y="%.1f" text-anchor="middle">%s</text><title>%s: compromised</title></g>`,
			p[0], p[1], p[0], p[1]+30, esc(truncate(d, 24)), esc(d))
	}
	b.WriteString(`</svg>`)
	desc := fmt.Sprintf("%d compromised %s; %d entities in the blast radius", nc, plural(nc, "device", "devices"), br.Total)
	if len(items) < br.Total {
		desc += fmt.Sprintf(", the %d highest ranked drawn", len(items))
	}
	return chart{SVG: template.HTML(b.String()), Desc: desc + "."}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// report serves the API's printable incident report through the console
// session. The report is a page of its own, with the API's headers: its
// CSP allows its inline style and nothing else (no script at all).
func (c *Console) report(w http.ResponseWriter, r *http.Request, s *session) error {
	rec, err := c.apiRaw(r, s, "GET", api.Prefix+"/incidents/"+url.PathEscape(r.PathValue("id"))+"/report", nil)
	if err != nil {
		return err
	}
	for _, k := range []string{"Content-Type", "Content-Security-Policy"} {
		if v := rec.h.Get(k); v != "" {
			w.Header().Set(k, v)
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(rec.body.Bytes())
	if err != nil {
		c.log.Debug("cannot write report", "err", err)
	}
	return nil
}

// ---- device peers

// peerLimit bounds the peers a device page lists.
const peerLimit = 25

type peerRow struct {
	Rel    string
	Out    bool // the device is the relation's subject
	Entity string
	Type   string
	Value  string
	Device string // when the peer is a device, or an address of one
	store.Relation
}

// peers returns a device's relations in the entity graph, most recently
// seen first; "" and an error message when the API cannot answer.
func (c *Console) peers(r *http.Request, s *session, id string) ([]peerRow, bool, string) {
	key := store.EntityKey(store.EntityDevice, id)
	var v graph.View
	q := url.Values{"entity": {key}, "depth": {"1"}, "limit": {"200"}}
	if err := c.callAPI(r, s, "GET", api.Prefix+"/graph?"+q.Encode(), nil, &v); err != nil {
		if vigil.ErrorCode(err) == vigil.ENOTFOUND {
			return nil, false, ""
		}
		return nil, false, vigil.ErrorMessage(err)
	}
	rels := slices.Clone(v.Relations)
	slices.SortStableFunc(rels, func(a, b store.Relation) int { return b.LastSeen.Compare(a.LastSeen) })
	var out []peerRow
	for _, rel := range rels {
		if rel.From != key && rel.To != key {
			continue
		}
		p := peerRow{Rel: strings.ReplaceAll(rel.Rel, "_", " "), Out: rel.From == key, Entity: rel.To, Relation: rel}
		if !p.Out {
			p.Entity = rel.From
		}
		p.Type, p.Value, _ = store.SplitEntityKey(p.Entity)
		if p.Type == store.EntityDevice {
			p.Device = p.Value
		}
		out = append(out, p)
	}
	more := v.Truncated || len(out) > peerLimit
	out = out[:min(len(out), peerLimit)]
	c.nameAddresses(r, out)
	return out, more, ""
}

// nameAddresses names the inventoried device of each address peer, from
// the device index (one pass over it).
func (c *Console) nameAddresses(r *http.Request, ps []peerRow) {
	want := map[string][]int{}
	for i, p := range ps {
		if p.Type == store.EntityIP {
			want[p.Value] = append(want[p.Value], i)
		}
	}
	if len(want) == 0 {
		return
	}
	idx, err := c.devicesIndex(r.Context())
	if err != nil {
		return
	}
	for _, d := range idx.devices {
		for _, n := range d.Network {
			for _, a := range n.Addresses {
				a, _, _ = strings.Cut(a, "/")
				for _, i := range want[a] {
					ps[i].Device = d.ID
				}
			}
		}
	}
}

// evidenceCount is the number of events behind a blast radius entry's
// reasons (the relations' counts), or of its shared vulnerabilities.
func evidenceCount(rs []investigate.Reason) string {
	var n int64
	var vulns int
	for _, r := range rs {
		for _, rel := range r.Relations {
			n += rel.Count
		}
		vulns += len(r.Vulns)
	}
	switch {
	case n > 0 && vulns > 0:
		return fmt.Sprintf("%d %s, %d %s", n, plural(int(n), "event", "events"), vulns, plural(vulns, "vulnerability", "vulnerabilities"))
	case n > 0:
		return fmt.Sprintf("%d %s", n, plural(int(n), "event", "events"))
	case vulns > 0:
		return fmt.Sprintf("%d %s", vulns, plural(vulns, "vulnerability", "vulnerabilities"))
	}
	return "inventory"
}
