package web

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/detect/sigma"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/web/api"
)

// Bounds of a rule test.
const (
	// DefaultRuleTestEvents is how many of the most recent stored events a
	// rule test reads when the request does not say.
	DefaultRuleTestEvents = 10000
	// MaxRuleTestEvents is the most it reads.
	MaxRuleTestEvents = 100000
	// MaxRuleTestMatches is how many matches its answer lists at most.
	MaxRuleTestMatches = 500
	maxRuleTestBody    = 1 << 20
)

// RuleTestRequest is the body of POST /api/v1/rules/test: Sigma rules
// (one YAML file, several documents allowed) and which stored events to
// evaluate them on: the Limit most recent (default
// DefaultRuleTestEvents, at most MaxRuleTestEvents), within Since and
// Until when given (RFC 3339, a date, or relative to now as -24h).
type RuleTestRequest struct {
	RuleYAML string `json:"rule_yaml"`
	Limit    int    `json:"limit,omitempty"`
	Since    string `json:"since,omitempty"`
	Until    string `json:"until,omitempty"`
}

// RuleTestMatch is one stored event a rule matched, with why.
type RuleTestMatch struct {
	EventID  string    `json:"event_id"`
	Time     time.Time `json:"time"`
	DeviceID string    `json:"device_id"`
	Kind     string    `json:"kind"`
	RuleID   string    `json:"rule_id"`
	Title    string    `json:"title"`
	// Selections are the search identifiers that matched, Matches the
	// event's values that made them match.
	Selections []string      `json:"selections,omitempty"`
	Matches    []vigil.Match `json:"matches,omitempty"`
	// Correlation is set when a correlation rule fired at this event.
	Correlation *sigma.TestCorrelation `json:"correlation,omitempty"`
}

// RuleTestResponse is the answer: how many rules and events, how many
// events matched, and the matches (the MaxRuleTestMatches most recent,
// newest first; Truncated when there were more).
type RuleTestResponse struct {
	Rules     int             `json:"rules"`
	Scanned   int             `json:"scanned"`
	Matched   int             `json:"matched"`
	From      time.Time       `json:"from,omitzero"`
	To        time.Time       `json:"to,omitzero"`
	Items     []RuleTestMatch `json:"items"`
	Truncated bool            `json:"truncated,omitempty"`
	Millis    float64         `json:"millis"`
}

// RuleTest evaluates uploaded Sigma rules on stored events.
type RuleTest struct {
	Store store.Events
	// Config maps Sigma fields (nil: the default mapping).
	Config *sigma.Config
	Clock  vigil.Clock
	Logger *slog.Logger
}

// RuleTestRoutes is POST /api/v1/rules/test (write, audited as
// rules.test): the rules of the body are compiled and evaluated on
// the most recent stored events whatever their logsource, as `vigil
// rules test` does on a file; nothing is stored and no alert is raised.
// A rule that does not load is EINVALID with its line.
func RuleTestRoutes(rt *RuleTest) []Route {
	clock := rt.Clock
	if clock == nil {
		clock = vigil.SystemClock{}
	}
	log := rt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "web")
	return []Route{{Method: "POST", Pattern: api.Prefix + "/rules/test", Perm: auth.PermWrite, Action: "rules.test",
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var in RuleTestRequest
			if err := decodeJSONLimit(w, r, &in, maxRuleTestBody); err != nil {
				WriteError(w, r, log, err)
				return
			}
			res, err := rt.Test(r, in, clock.Now())
			if err != nil {
				WriteError(w, r, log, err)
				return
			}
			Audit(r, "rules", fmt.Sprintf("tested %d rule(s) on %d events: %d matched", res.Rules, res.Scanned, res.Matched))
			writeJSON(w, http.StatusOK, res)
		})}}
}

// LoadRuleYAML compiles Sigma rules given as text; EINVALID naming the
// line of each error.
func LoadRuleYAML(text string, cfg *sigma.Config) (*sigma.RuleSet, error) {
	if strings.TrimSpace(text) == "" {
		return nil, vigil.Errorf(vigil.EINVALID, "rule_yaml: paste a Sigma rule")
	}
	rs, errs := sigma.LoadBytes("rule", []byte(text), cfg)
	if len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = fmt.Sprintf("line %d: %s", e.Line, e.Reason)
			if e.Rule != "" {
				msgs[i] = fmt.Sprintf("line %d: rule %q: %s", e.Line, e.Rule, e.Reason)
			}
		}
		return nil, vigil.Errorf(vigil.EINVALID, "the rule does not load: %s", strings.Join(msgs, "; "))
	}
	if rs.Compiled() == 0 {
		return nil, vigil.Errorf(vigil.EINVALID, "rule_yaml holds no rule")
	}
	return rs, nil
}

// Test runs a rule test.
func (rt *RuleTest) Test(r *http.Request, in RuleTestRequest, now time.Time) (RuleTestResponse, error) {
	start := time.Now()
	res := RuleTestResponse{Items: []RuleTestMatch{}}
	switch {
	case in.Limit == 0:
		in.Limit = DefaultRuleTestEvents
	case in.Limit < 0 || in.Limit > MaxRuleTestEvents:
		return res, vigil.Errorf(vigil.EINVALID, "limit %d: want 1 to %d events", in.Limit, MaxRuleTestEvents)
	}
	rs, err := LoadRuleYAML(in.RuleYAML, rt.Config)
	if err != nil {
		return res, err
	}
	res.Rules = rs.Compiled()
	f := store.EventFilter{Page: store.Page{Limit: 1000}}
	if f.Since, err = retroTime("since", in.Since, now); err != nil {
		return res, err
	}
	if f.Until, err = retroTime("until", in.Until, now); err != nil {
		return res, err
	}
	// The most recent events, newest first; evaluated oldest first, as
	// they happened (correlations count in that order).
	var evs []vigil.Event
	for len(evs) < in.Limit {
		f.Limit = min(1000, in.Limit-len(evs))
		page, next, err := rt.Store.ListEvents(r.Context(), f)
		if err != nil {
			return res, err
		}
		evs = append(evs, page...)
		if next == "" {
			break
		}
		f.Cursor = next
	}
	slices.Reverse(evs)
	var buf bytes.Buffer
	var b []byte
	for i := range evs {
		if b, err = evs[i].AppendJSON(b[:0], false); err != nil {
			return res, fmt.Errorf("cannot encode event %s: %w", evs[i].ID, err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	results, matched, err := rs.TestEvents(&buf)
	if err != nil {
		return res, err
	}
	res.Scanned, res.Matched = len(evs), matched
	if len(evs) > 0 {
		res.From, res.To = evs[0].Time.UTC(), evs[len(evs)-1].Time.UTC()
	}
	for i := len(results) - 1; i >= 0; i-- {
		t := results[i]
		if !t.Matched || t.FeedsOnly && t.Correlation == nil || t.Line < 1 || t.Line > len(evs) {
			continue
		}
		if len(res.Items) == MaxRuleTestMatches {
			res.Truncated = true
			break
		}
		ev := &evs[t.Line-1]
		res.Items = append(res.Items, RuleTestMatch{EventID: ev.ID, Time: ev.Time.UTC(), DeviceID: ev.DeviceID, Kind: ev.Kind,
			RuleID: t.RuleID, Title: t.Title, Selections: t.Selections, Matches: t.Matches, Correlation: t.Correlation})
	}
	res.Millis = float64(time.Since(start).Microseconds()) / 1000
	return res, nil
}
