package console

import (
	"cmp"
	"context"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// indexTTL is how long the device index serves before it is read again.
const indexTTL = 15 * time.Second

// deviceIndex is the inventory as the Devices page searches it: read
// whole from the store at most every indexTTL (paged, by id), then
// searched and counted in memory, so that facets over 10,000 devices cost
// no query per page view.
type deviceIndex struct {
	built   time.Time
	devices []vigil.Device
}

// devicesIndex returns the current index. The first call reads the
// inventory and waits for it; afterwards an index older than indexTTL is
// served as it is while one background read replaces it
// (stale-while-revalidate), so that no page view waits for a full read.
// An empty index is read again at once.
func (c *Console) devicesIndex(ctx context.Context) (*deviceIndex, error) {
	c.devMu.Lock()
	idx, busy := c.devIndex, c.devReading
	now := c.clock.Now()
	stale := idx == nil || len(idx.devices) == 0 || now.Sub(idx.built) >= indexTTL || now.Before(idx.built)
	if idx != nil && (!stale || busy) {
		c.devMu.Unlock()
		return idx, nil
	}
	if idx != nil && len(idx.devices) > 0 { // stale: refresh in the background
		c.devReading = true
		c.devMu.Unlock()
		go func() {
			fresh, err := c.readDevices(context.WithoutCancel(ctx))
			c.devMu.Lock()
			defer c.devMu.Unlock()
			c.devReading = false
			if err != nil {
				c.log.Warn("cannot refresh the device index", "err", err)
				return
			}
			c.devIndex = fresh
		}()
		return idx, nil
	}
	// The first read, or the inventory was empty (a new server; reading
	// it again costs nothing): every caller waits for it.
	defer c.devMu.Unlock()
	fresh, err := c.readDevices(ctx)
	if err != nil {
		return nil, err
	}
	c.devIndex = fresh
	return fresh, nil
}

// Warm reads the device index, so that the first page view after a start
// does not wait for it, and takes the first sample of the ingest rate.
// Run it in the background.
func (c *Console) Warm(ctx context.Context) {
	c.ingestRate(c.clock.Now()) // the first sample of the ingest rate
	if _, err := c.devicesIndex(ctx); err != nil {
		c.log.Warn("cannot read the device index", "err", err)
	}
}

// readDevices reads the whole inventory, a page of MaxLimit at a time.
func (c *Console) readDevices(ctx context.Context) (*deviceIndex, error) {
	idx := &deviceIndex{built: c.clock.Now()}
	cursor := ""
	for {
		ds, next, err := c.opts.Store.ListDevices(ctx, store.DeviceFilter{Page: store.Page{Limit: store.MaxLimit, Cursor: cursor}})
		if err != nil {
			return nil, err
		}
		idx.devices = append(idx.devices, ds...)
		if next == "" {
			return idx, nil
		}
		cursor = next
	}
}

// Facets of the Devices page, in the order shown.
var facetNames = []string{"site", "class", "vendor", "model", "firmware", "state"}

// SiteTag is the device tag prefix that names a device's site
// ("site:plant-3"), the Devices page's site facet; devices have no site
// field of their own.
const SiteTag = "site:"

func facetValue(d *vigil.Device, name string) string {
	switch name {
	case "site":
		for _, t := range d.Tags {
			if v, ok := strings.CutPrefix(t, SiteTag); ok {
				return v
			}
		}
		return ""
	case "class":
		return d.Class
	case "vendor":
		return d.Vendor
	case "model":
		return d.Model
	case "firmware":
		return d.Firmware
	case "state":
		return string(d.State)
	}
	return ""
}

type facet struct {
	Name   string
	Values []facetCount
}

type facetCount struct {
	Value    string
	Count    int
	Selected bool
	Link     string // the query that toggles this value
}

type searchResult struct {
	devices []vigil.Device
	total   int
	facets  []facet
}

// matches reports whether a device holds the words of q (all of them, in
// its id, name, vendor, model, firmware, tags or addresses).
func matchesText(d *vigil.Device, words []string) bool {
	if len(words) == 0 {
		return true
	}
	var b strings.Builder
	for _, s := range []string{d.ID, d.Name, d.Class, d.Vendor, d.Model, d.Firmware, d.OS} {
		b.WriteString(strings.ToLower(s))
		b.WriteByte(' ')
	}
	for _, t := range d.Tags {
		b.WriteString(strings.ToLower(t))
		b.WriteByte(' ')
	}
	for _, n := range d.Network {
		b.WriteString(strings.ToLower(n.MAC) + " ")
		for _, a := range n.Addresses {
			b.WriteString(a + " ")
		}
	}
	hay := b.String()
	for _, w := range words {
		if !strings.Contains(hay, w) {
			return false
		}
	}
	return true
}

// search returns one page of the devices matching the query (q: words;
// one parameter per facet: its selected value), and the facets: for each,
// the counts of its values among the devices the other conditions select.
func (x *deviceIndex) search(q url.Values, offset, limit int) searchResult {
	words := strings.Fields(strings.ToLower(q.Get("q")))
	sel := map[string]string{}
	for _, f := range facetNames {
		if v := q.Get(f); v != "" {
			sel[f] = v
		}
	}
	counts := make([]map[string]int, len(facetNames))
	for i := range counts {
		counts[i] = map[string]int{}
	}
	var res searchResult
	for i := range x.devices {
		d := &x.devices[i]
		if !matchesText(d, words) {
			continue
		}
		miss := -1 // the one facet that does not match, or -2 for more
		for fi, f := range facetNames {
			if v, ok := sel[f]; ok && facetValue(d, f) != v {
				if miss == -1 {
					miss = fi
				} else {
					miss = -2
				}
			}
		}
		switch {
		case miss == -1:
			for fi, f := range facetNames {
				counts[fi][facetValue(d, f)]++
			}
			if res.total >= offset && len(res.devices) < limit {
				res.devices = append(res.devices, *d)
			}
			res.total++
		case miss >= 0:
			counts[miss][facetValue(d, facetNames[miss])]++
		}
	}
	for fi, f := range facetNames {
		fc := facet{Name: f}
		for v, n := range counts[fi] {
			link := withParam(q, f, v)
			if sel[f] == v {
				link = withParam(q, f, "")
			}
			fc.Values = append(fc.Values, facetCount{Value: v, Count: n, Selected: sel[f] == v, Link: link})
		}
		slices.SortFunc(fc.Values, func(a, b facetCount) int { return cmp.Or(b.Count-a.Count, strings.Compare(a.Value, b.Value)) })
		fc.Values = fc.Values[:min(len(fc.Values), 12)]
		if len(fc.Values) == 1 && fc.Values[0].Value == "" {
			continue // no device has it (a fleet without site tags): nothing to filter by
		}
		res.facets = append(res.facets, fc)
	}
	return res
}

// silentAfter is how long a device that reported may stay quiet before
// the overview lists it as silent.
const silentAfter = 10 * time.Minute

type fleetStats struct {
	Total, Enrolled int
	ByState         []countRow
	Silent          int
	AvgCPU, AvgMem  float64
	HighLoad        int // CPU or memory at 90% or more
	WithHealth      int
}

func (x *deviceIndex) stats(now time.Time) fleetStats {
	st := fleetStats{Total: len(x.devices)}
	by := map[string]int{}
	for i := range x.devices {
		d := &x.devices[i]
		by[string(d.State)]++
		if !d.Enrolled.IsZero() {
			st.Enrolled++
		}
		if isSilent(d, now) {
			st.Silent++
		}
		if h := d.Health; h != nil {
			st.WithHealth++
			st.AvgCPU += h.CPU
			st.AvgMem += h.Memory
			if h.CPU >= 90 || h.Memory >= 90 {
				st.HighLoad++
			}
		}
	}
	if st.WithHealth > 0 {
		st.AvgCPU /= float64(st.WithHealth)
		st.AvgMem /= float64(st.WithHealth)
	}
	for _, s := range []vigil.DeviceState{vigil.StateActive, vigil.StateDiscovered, vigil.StateQuarantined, vigil.StateOffline, vigil.StateRetired} {
		st.ByState = append(st.ByState, countRow{Key: string(s), Count: by[string(s)], Class: "state-" + string(s)})
	}
	return st
}

func isSilent(d *vigil.Device, now time.Time) bool {
	return d.State != vigil.StateRetired && d.State != vigil.StateDiscovered && !d.LastSeen.IsZero() && now.Sub(d.LastSeen) > silentAfter
}

// silent returns up to n silent devices, longest silent first.
func (x *deviceIndex) silent(now time.Time, n int) []vigil.Device {
	var out []vigil.Device
	for i := range x.devices {
		if isSilent(&x.devices[i], now) {
			out = append(out, x.devices[i])
		}
	}
	slices.SortFunc(out, func(a, b vigil.Device) int { return a.LastSeen.Compare(b.LastSeen) })
	return out[:min(len(out), n)]
}
