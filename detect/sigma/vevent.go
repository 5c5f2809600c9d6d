package sigma

import (
	"time"

	"github.com/vigil-iot/vigil"
)

// eventSource reads a vigil.Event lazily through its Field method; a
// rule field is looked up under each of its names in turn.
type eventSource struct {
	rs *RuleSet
	ev *vigil.Event
}

func (e *eventSource) load(c *evalCtx, f int, s *slot) {
	for _, name := range e.rs.fieldNames[f] {
		v, ok := e.ev.Field(name)
		if !ok {
			// The event time, for the time modifiers (time|hour).
			switch name {
			case "time", "@timestamp", "timestamp", "event.created":
				if !e.ev.Time.IsZero() {
					s.present = true
					s.s = e.ev.Time.UTC().Format(time.RFC3339Nano)
					return
				}
			}
			continue
		}
		s.present = true
		switch x := v.(type) {
		case nil:
			s.null = true
		case string:
			s.s = x
		case []string:
			s.isList = true
			s.list = append(s.list[:0], x...)
		case []any:
			s.isList = true
			s.list = s.list[:0]
			for _, y := range x {
				s.list = append(s.list, vigil.ValueString(y))
			}
		default:
			s.s = vigil.ValueString(v)
		}
		return
	}
}

func (e *eventSource) strings(c *evalCtx, fn func(string) bool) bool {
	ev := e.ev
	for _, s := range []string{ev.Category, ev.Action, ev.Outcome} {
		if s != "" && !fn(s) {
			return false
		}
	}
	for k, v := range ev.Fields {
		if envelopeNames[k] {
			continue
		}
		switch x := v.(type) {
		case string:
			if !fn(x) {
				return false
			}
		case []string:
			for _, y := range x {
				if !fn(y) {
					return false
				}
			}
		case []any:
			for _, y := range x {
				if s, ok := y.(string); ok && !fn(s) {
					return false
				}
			}
		}
	}
	return true
}

// eventLogsource returns an event's logsource from its logsource.* fields.
func eventLogsource(ev *vigil.Event) Logsource {
	var ls Logsource
	ls.Product, _ = ev.FieldString("logsource.product")
	ls.Category, _ = ev.FieldString("logsource.category")
	ls.Service, _ = ev.FieldString("logsource.service")
	return ls
}

// MatchEvent evaluates the rule set on a vigil.Event routed by its
// logsource fields or, without them, by its kind. It calls hit for every
// matching rule (including rules silenced by a correlation).
func (rs *RuleSet) MatchEvent(c *Matcher, ev *vigil.Event, hit func(r *Rule)) int {
	cx := c.ctx
	cx.reset(len(rs.fieldNames))
	src := eventSource{rs: rs, ev: ev}
	cx.src = &src
	rt := rs.routeFor(eventLogsource(ev), ev.Kind)
	c.seq++
	n := rs.evalRoute(cx, rt, c.seq, hit)
	cx.src = nil
	return n
}

// Matcher is per-goroutine evaluation state for a rule set. It is not
// safe for concurrent use; make one per goroutine.
type Matcher struct {
	rs      *RuleSet
	ctx     *evalCtx
	seq     uint64
	js      jsonSource
	recent  [16]recentRoute
	nrecent int // routes added to recent
	times   minuteCache
	// keepIDs: correlation windows keep the ids of their latest events
	// (the online detector's alerts reference them).
	keepIDs bool
}

// NewMatcher returns evaluation state for rs.
func (rs *RuleSet) NewMatcher() *Matcher {
	return &Matcher{rs: rs, ctx: rs.newCtx()}
}
