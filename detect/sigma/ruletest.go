package sigma

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
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
	// Error is set when the line is not a JSON object.
	Error string `json:"error,omitempty"`
}

// TestEvents evaluates every detection rule of rs on each NDJSON event of
// r whatever the event's logsource, for `vigil rules test`. It returns one
// result per (event, rule), and the number of events that matched at least
// one rule. Bad lines yield a result with Error set and do not stop the run.
func (rs *RuleSet) TestEvents(r io.Reader) ([]TestResult, int, error) {
	m := rs.NewMatcher()
	c := m.ctx
	br := bufio.NewReaderSize(r, 1<<20)
	var out []TestResult
	matched := 0
	lineNo := 0
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			lineNo++
			if t := bytes.TrimSpace(line); len(t) > 0 {
				c.reset(len(rs.fieldNames))
				if serr := rs.scanEvent(c, t); serr != nil {
					out = append(out, TestResult{Line: lineNo, Error: fmt.Sprintf("line %d: %v", lineNo, serr)})
				} else {
					m.js.rs, m.js.line, m.js.scanned = rs, t, true
					c.src = &m.js
					any := false
					for _, rule := range rs.Rules {
						res := TestResult{Line: lineNo, RuleID: firstNonEmpty(rule.ID, rule.Name, rule.Title), Title: rule.Title}
						res.Matched = rule.cond.eval(c)
						for _, id := range rule.order {
							if rule.searches[id].eval(c) {
								res.Selections = append(res.Selections, id)
							}
						}
						any = any || res.Matched
						out = append(out, res)
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
	return out, matched, nil
}
