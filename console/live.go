package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/vigil-iot/vigil/store"
)

// liveStream is how long one stream of server-sent events lasts: then
// the browser reconnects (EventSource does on its own, with Last-Event-ID),
// which keeps it under the listener's write timeout.
const liveStream = 90 * time.Second

// liveItem is one server-sent event: a new or updated alert or incident.
type liveItem struct {
	Kind     string `json:"kind"` // alert or incident
	ID       string `json:"id"`
	Title    string `json:"title"`
	Severity string `json:"severity"`
	Status   string `json:"status,omitempty"`
	Device   string `json:"device,omitempty"`
	URL      string `json:"url"`
	Time     string `json:"time"`
}

// live streams new alerts and incident changes as server-sent events
// (event: alert | incident), looking every LiveEvery with indexed queries
// (alerts by creation time, incidents by update time). The event id is
// the time looked up to, so a reconnecting browser misses nothing.
func (c *Console) live(w http.ResponseWriter, r *http.Request, s *session) error {
	rc := http.NewResponseController(w)
	ctx, cancel := c.ctxDone(r)
	defer cancel()
	// From the time the page was rendered (?since=), or the last event
	// the browser got (Last-Event-ID) when it reconnects: what happened
	// while the page loaded is sent too. At most 10 minutes back.
	now := c.clock.Now()
	since := now
	for _, v := range []string{r.URL.Query().Get("since"), r.Header.Get("Last-Event-ID")} {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			if t := time.Unix(0, n); now.Sub(t) < 10*time.Minute && !t.After(now) {
				since = t
			}
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: 3000\n\n")
	_ = rc.Flush()
	_ = rc.SetWriteDeadline(time.Now().Add(liveStream + 30*time.Second))
	tick := time.NewTicker(c.opts.LiveEvery)
	defer tick.Stop()
	end := time.NewTimer(liveStream)
	defer end.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-end.C:
			return nil
		case <-tick.C:
		}
		now := c.clock.Now()
		c.ingestRate(now) // keeps the overview's rate samples warm
		items, err := c.changes(r, since, now)
		if err != nil {
			c.log.Warn("live updates failed", "err", err)
			continue
		}
		for _, it := range items {
			b, _ := json.Marshal(it)
			fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", now.UnixNano(), it.Kind, b)
		}
		if len(items) == 0 {
			fmt.Fprintf(w, ": keep-alive\n\n")
		}
		if err := rc.Flush(); err != nil {
			return nil
		}
		since = now
	}
}

// changes returns the alerts created and incidents updated in [since, now).
func (c *Console) changes(r *http.Request, since, now time.Time) ([]liveItem, error) {
	ctx := r.Context()
	var out []liveItem
	alerts, _, err := c.opts.Store.ListAlerts(ctx, store.AlertFilter{Since: since, Until: now, Page: store.Page{Limit: 20}})
	if err != nil {
		return nil, err
	}
	for i := len(alerts) - 1; i >= 0; i-- {
		a := alerts[i]
		out = append(out, liveItem{Kind: "alert", ID: a.ID, Title: a.Title, Severity: a.Severity.String(), Device: a.DeviceID,
			URL: "/alerts/" + url.PathEscape(a.ID), Time: fmtTime(a.Created)})
	}
	incs, _, err := c.opts.Store.ListIncidents(ctx, store.IncidentFilter{UpdatedSince: since, Page: store.Page{Limit: 20}})
	if err != nil {
		return nil, err
	}
	for _, in := range incs {
		if !in.Updated.Before(now) {
			continue // seen on the next look
		}
		out = append(out, liveItem{Kind: "incident", ID: in.ID, Title: in.Title, Severity: in.Severity.String(), Status: string(in.Status),
			URL: "/incidents/" + url.PathEscape(in.ID), Time: fmtTime(in.Updated)})
	}
	return out, nil
}
