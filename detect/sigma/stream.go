package sigma

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
)

// Stats summarizes an offline detection run.
type Stats struct {
	Events  int `json:"events"`
	Matches int `json:"matches"`
	// BadLines counts lines that are not JSON objects (skipped).
	BadLines int `json:"bad_lines"`
	// FirstBad describes the first bad line.
	FirstBad        string  `json:"first_bad,omitempty"`
	Seconds         float64 `json:"seconds"`
	EventsPerSecond float64 `json:"events_per_second"`
}

// String is the summary line `vigil detect` prints on stderr.
func (s Stats) String() string {
	return fmt.Sprintf("detect: events=%d matches=%d seconds=%.3f events_per_second=%.0f", s.Events, s.Matches, s.Seconds, s.EventsPerSecond)
}

// MatchLine evaluates the rule set on one NDJSON event routed by its
// logsource.* fields (or its kind field) and calls hit for each match. The
// line must stay unchanged until MatchLine returns.
func (m *Matcher) MatchLine(line []byte, hit func(r *Rule)) (int, error) {
	rs, c := m.rs, m.ctx
	c.reset(len(rs.fieldNames))
	if err := rs.scanEvent(c, line); err != nil {
		return 0, err
	}
	m.js.rs, m.js.line = rs, line
	c.src = &m.js
	defer func() { c.src = nil; m.js.line = nil }()
	ls := Logsource{Product: m.str(slotProduct), Category: m.str(slotCategory), Service: m.str(slotService)}
	var rt *route
	if ls == (Logsource{}) {
		rt = rs.routeFor(ls, m.str(slotKind))
	} else {
		rt = m.lastRoute(ls)
	}
	m.seq++
	return rs.evalRoute(c, rt, m.seq, hit), nil
}

// lastRoute finds the route of a logsource among the recently used ones
// (a feed has few logsources; they are not reordered, which would copy
// entries on every event of an interleaved feed), then asks the rule set.
func (m *Matcher) lastRoute(ls Logsource) *route {
	for i := range m.recent {
		r := &m.recent[i]
		if r.rt == nil {
			break
		}
		if r.ls == ls {
			return r.rt
		}
	}
	rt := m.rs.routeFor(ls, "")
	// The strings point into the line: keep copies. When all entries are
	// taken, they are replaced in turn.
	i := m.nrecent % len(m.recent)
	m.nrecent++
	m.recent[i] = recentRoute{ls: Logsource{Product: strings.Clone(ls.Product), Category: strings.Clone(ls.Category), Service: strings.Clone(ls.Service)}, rt: rt}
	return rt
}

type recentRoute struct {
	ls Logsource
	rt *route
}

// str returns a string field of the current event ("" when absent).
func (m *Matcher) str(f int) string {
	s := m.ctx.get(f)
	if !s.present || s.null || s.isList {
		return ""
	}
	return s.s
}

// entitySlots are the slots alerts name as entities, in order.
var entitySlots = [...]struct {
	slot int
	kind string
}{{slotEntIP, "ip"}, {slotEntUser, "user"}, {slotEntHost, "host"}}

func (m *Matcher) entities() []string {
	var out []string
	for _, e := range entitySlots {
		if v := m.str(e.slot); v != "" {
			out = append(out, e.kind+":"+v)
		}
	}
	return out
}

// streamAlert is one NDJSON output line of DetectStream.
type streamAlert struct {
	vigil.Alert
	Line  int    `json:"line"`
	Level string `json:"level,omitempty"`
}

// DetectStream reads NDJSON events from r, evaluates rs on each (routed by
// logsource), writes each match to w as an NDJSON alert, and returns the
// run's statistics. Lines that are not JSON objects are counted and
// skipped. Correlation rules run too (partition 0, event time from the
// @timestamp/time field); rules that only feed a correlation (generate:
// false) do not alert on their own. Matches counts alerts written. Each
// alert carries its explanation, as the online detector gives it: the
// rule, the values that matched and an excerpt of the event (line).
func DetectStream(r io.Reader, w io.Writer, rs *RuleSet) (Stats, error) {
	return DetectStreamWith(r, w, rs, StreamOptions{})
}

// StreamOptions tune DetectStreamWith.
type StreamOptions struct {
	// NoExplain leaves explanations out of the alerts of detection
	// rules (correlations keep theirs): for the fastest run.
	NoExplain bool
}

// DetectStreamWith is DetectStream with options.
func DetectStreamWith(r io.Reader, w io.Writer, rs *RuleSet, opts StreamOptions) (Stats, error) {
	m := rs.NewMatcher()
	bw := bufio.NewWriterSize(w, 1<<16)
	enc := json.NewEncoder(bw)
	var st Stats
	t0 := time.Now()
	lineNo := 0
	var werr error
	corr := newCorrelator(0, 0, &dropCounters{})
	written := 0
	var out []byte
	mw := newMatchWriter(rs, t0)
	write := func(a vigil.Alert, level string) {
		if werr != nil {
			return
		}
		written++
		if a.Fields != nil {
			werr = enc.Encode(streamAlert{Alert: a, Line: lineNo, Level: level})
			return
		}
		out = appendAlert(out[:0], &a, lineNo, level)
		_, werr = bw.Write(out)
	}
	hit := func(rule *Rule) {
		if rule.disabled.Load() {
			return
		}
		if !rule.silent && werr == nil {
			written++
			var x *vigil.Explanation
			if !opts.NoExplain {
				x = m.explainLine(rule)
			}
			out, werr = mw.append(out[:0], m, rule, lineNo, x)
			if werr == nil {
				_, werr = bw.Write(out)
			}
		}
		if len(rule.feeds) > 0 {
			et, _ := m.times.eventTime(m.str(slotTime))
			corr.hit(m, rule, et, func(f corrFire) {
				a := corrAlert(f, t0)
				a.DeviceID = strings.Clone(m.str(slotDevice))
				a.Entities = m.entities()
				if id := m.str(slotEventID); id != "" {
					a.EventIDs = []string{strings.Clone(id)}
				}
				// An excerpt of the event that made it fire, as online.
				a.Explanation.AddEvidence(vigil.ExcerptOf(m.lineEvent(rule.Fields...), rule.Fields...))
				write(a, f.rule.Level)
			}, 0)
		}
	}
	process := func(line []byte) {
		lineNo++
		if t := bytes.TrimSpace(line); len(t) > 0 {
			if _, merr := m.MatchLine(line, hit); merr != nil {
				st.BadLines++
				if st.FirstBad == "" {
					st.FirstBad = fmt.Sprintf("line %d: %s", lineNo, badLine(line, merr))
				}
			} else {
				st.Events++
			}
		}
	}
	if data, unmap, ok := mapFile(r); ok {
		// A regular file: lines are read in place.
		defer unmap()
		for len(data) > 0 && werr == nil {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				i = len(data) - 1
			}
			process(data[:i+1])
			data = data[i+1:]
		}
	} else {
		br := bufio.NewReaderSize(r, 1<<20)
		var long []byte
		for werr == nil {
			line, err := br.ReadSlice('\n')
			if errors.Is(err, bufio.ErrBufferFull) {
				long = append(long[:0], line...)
				for errors.Is(err, bufio.ErrBufferFull) {
					line, err = br.ReadSlice('\n')
					long = append(long, line...)
				}
				line = long
			}
			if len(line) > 0 {
				process(line)
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				return st, fmt.Errorf("cannot read events: %w", err)
			}
		}
	}
	if werr != nil {
		return st, fmt.Errorf("cannot write alert: %w", werr)
	}
	// Judge the windows of upper-bound correlations that are still open:
	// the input has ended, so they are closed.
	corr.closeExpired(time.Unix(0, math.MaxInt64), func(f corrFire) { write(corrAlert(f, t0), f.rule.Level) })
	if werr != nil {
		return st, fmt.Errorf("cannot write alert: %w", werr)
	}
	if err := bw.Flush(); err != nil {
		return st, fmt.Errorf("cannot write alerts: %w", err)
	}
	st.Matches = written
	st.Seconds = time.Since(t0).Seconds()
	if st.Seconds > 0 {
		st.EventsPerSecond = float64(st.Events) / st.Seconds
	}
	return st, nil
}

// badLine describes why a line could not be matched. The scanner says only
// "invalid JSON" (the hot path keeps no detail); for the report, the line
// is read again by encoding/json, whose error says what was found where.
func badLine(line []byte, err error) string {
	if !errors.Is(err, errJSON) {
		return err.Error()
	}
	var v any
	jerr := json.Unmarshal(line, &v)
	var se *json.SyntaxError
	switch {
	case errors.As(jerr, &se):
		return fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, se)
	case jerr != nil:
		return "invalid JSON: " + jerr.Error()
	}
	if _, ok := v.(map[string]any); !ok {
		return "not a JSON object"
	}
	return err.Error()
}
