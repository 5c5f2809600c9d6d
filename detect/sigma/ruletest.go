package sigma

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/vigil-iot/vigil"
)

// TestResult is the outcome of one rule on one event in TestEvents.
type TestResult struct {
	// Line is the event's line number in the input (1-based).
	Line    int    `json:"line"`
	RuleID  string `json:"rule_id"`
	Title   string `json:"title"`
	Matched bool   `json:"matched"`
	// Selections are the search identifiers that matched the event (in
	// the rule's order), which explains why the condition held or not.
	Selections []string `json:"selections,omitempty"`
	// Matches are the event's values that made those selections match,
	// with the rule's values they matched.
	Matches []vigil.Match `json:"matches,omitempty"`
	// Error is set when the line is not a JSON object.
	Error string `json:"error,omitempty"`
	// FeedsOnly is set on the results of a rule that only feeds a
	// correlation (no generate: true): its matches alone alert nothing and
	// do not make the event count as matched.
	FeedsOnly bool `json:"feeds_only,omitempty"`
	// Correlation is set when a correlation rule fired at this event (or,
	// for upper-bound conditions, when its window closed at the end of the
	// input): its type, group, measured value and the events it counted.
	Correlation *TestCorrelation `json:"correlation,omitempty"`
}

// TestCorrelation describes a correlation that fired in TestEvents.
type TestCorrelation struct {
	Type   string    `json:"type"`
	Group  string    `json:"group,omitempty"`
	Value  float64   `json:"value"`
	Events int       `json:"events"`
	First  time.Time `json:"first"`
	Last   time.Time `json:"last"`
}

// TestEvents evaluates every detection rule of rs on each NDJSON event of
// r whatever the event's logsource, for `vigil rules test`. It returns one
// result per (event, rule), and the number of events that matched at least
// one rule. The correlation rules of rs run on the matches in input order
// (event time from the @timestamp/time field) and add a result, with
// Correlation set, each time one fires; an event that makes a correlation
// fire counts as matched. Bad lines yield a result with Error set and do
// not stop the run.
func (rs *RuleSet) TestEvents(r io.Reader) ([]TestResult, int, error) {
	var out []TestResult
	m := rs.NewMatcher()
	c := m.ctx
	corr := newCorrelator(0, 0, &dropCounters{})
	fired := func(line int) func(corrFire) {
		return func(f corrFire) {
			rule := f.rule
			out = append(out, TestResult{Line: line, RuleID: firstNonEmpty(rule.ID, rule.Name, rule.Title), Title: rule.Title, Matched: true,
				Correlation: &TestCorrelation{Type: rule.Correlation.Type, Group: f.group, Value: f.value, Events: f.count, First: f.first, Last: f.last}})
		}
	}
	br := bufio.NewReaderSize(r, 1<<20)
	matched := 0
	lineNo := 0
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			lineNo++
			if t := bytes.TrimSpace(line); len(t) > 0 {
				c.reset(len(rs.fieldNames))
				if serr := rs.scanEvent(c, t); serr != nil {
					out = append(out, TestResult{Line: lineNo, Error: fmt.Sprintf("line %d: %s", lineNo, badLine(t, serr))})
				} else {
					m.js.rs, m.js.line = rs, t
					c.src = &m.js
					any := false
					for _, rule := range rs.Rules {
						res := TestResult{Line: lineNo, RuleID: firstNonEmpty(rule.ID, rule.Name, rule.Title), Title: rule.Title, FeedsOnly: rule.silent}
						res.Matched = rule.cond.eval(c)
						for _, id := range rule.order {
							if rule.searches[id].eval(c) {
								res.Selections = append(res.Selections, id)
							}
						}
						if len(res.Selections) > 0 {
							res.Matches, _ = rs.explainMatches(rule, c)
						}
						any = any || (res.Matched && !rule.silent)
						out = append(out, res)
						if res.Matched && len(rule.feeds) > 0 {
							n := len(out)
							et, _ := m.times.eventTime(m.str(slotTime))
							corr.hit(m, rule, et, fired(lineNo), 0)
							any = any || len(out) > n
						}
					}
					c.src = nil
					if any {
						matched++
					}
				}
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return out, matched, fmt.Errorf("cannot read events: %w", err)
		}
	}
	// The input has ended: the windows of upper-bound correlations close.
	n := len(out)
	corr.closeExpired(time.Unix(0, math.MaxInt64), fired(lineNo))
	if len(out) > n && matched == 0 {
		matched = 1
	}
	return out, matched, nil
}
