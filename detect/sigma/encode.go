package sigma

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unsafe"

	"github.com/vigil-iot/vigil"
)

// appendAlert appends an alert as one JSON object (the fields of
// vigil.Alert plus the input line and the rule level), without reflection.
// Alerts with Fields fall back to the caller's encoder.
func appendAlert(b []byte, a *vigil.Alert, line int, level string) []byte {
	b = append(b, `{"id":`...)
	b = vigil.AppendJSONString(b, a.ID)
	b = append(b, `,"dedup_key":`...)
	b = vigil.AppendJSONString(b, a.DedupKey)
	b = appendRuleJSON(b, a)
	if a.DeviceID != "" {
		b = append(b, `,"device_id":`...)
		b = vigil.AppendJSONString(b, a.DeviceID)
	}
	b = appendStrings(b, "entities", a.Entities)
	b = appendStrings(b, "event_ids", a.EventIDs)
	b = append(b, `,"first_event_time":`...)
	b = appendTime(b, a.FirstEventTime)
	b = append(b, `,"last_event_time":`...)
	b = appendTime(b, a.LastEventTime)
	b = append(b, `,"created":`...)
	b = appendTime(b, a.Created)
	b = append(b, `,"count":`...)
	b = strconv.AppendInt(b, int64(a.Count), 10)
	b = append(b, `,"line":`...)
	b = strconv.AppendInt(b, int64(line), 10)
	if level != "" {
		b = append(b, `,"level":`...)
		b = vigil.AppendJSONString(b, level)
	}
	return append(b, "}\n"...)
}

// appendRuleJSON appends the members of an alert that its rule decides:
// detector, rule id, title, severity, tags and techniques.
func appendRuleJSON(b []byte, a *vigil.Alert) []byte {
	b = append(b, `,"detector":`...)
	b = vigil.AppendJSONString(b, a.Detector)
	b = append(b, `,"rule_id":`...)
	b = vigil.AppendJSONString(b, a.RuleID)
	b = append(b, `,"title":`...)
	b = vigil.AppendJSONString(b, a.Title)
	b = append(b, `,"severity":`...)
	b = vigil.AppendJSONString(b, a.Severity.String())
	b = appendStrings(b, "tags", a.Tags)
	return appendStrings(b, "techniques", a.Techniques)
}

func appendStrings(b []byte, name string, xs []string) []byte {
	if len(xs) == 0 {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':', '[')
	for i, x := range xs {
		if i > 0 {
			b = append(b, ',')
		}
		b = vigil.AppendJSONString(b, x)
	}
	return append(b, ']')
}

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = vigil.AppendTime(b, t)
	return append(b, '"')
}

// matchWriter encodes DetectStream's alerts straight from the matcher's
// current event: the bytes appendAlert writes for the alert of r built from the event's
// device, entity, event id and time slots,
// without building the alert (no entity or dedup-key strings).
type matchWriter struct {
	created  []byte   // the quoted creation time, the same for every alert
	ruleJSON [][]byte // per rule index, what its alerts share
	tmp      []byte
}

func newMatchWriter(rs *RuleSet, now time.Time) *matchWriter {
	return &matchWriter{created: appendTime(nil, now), ruleJSON: make([][]byte, len(rs.Rules))}
}

// append appends the alert of rule r on the matcher's current event, at
// input line line; x, when set, is written as its explanation.
func (w *matchWriter) append(b []byte, m *Matcher, r *Rule, line int, x *vigil.Explanation) ([]byte, error) {
	rj := w.ruleJSON[r.index]
	if rj == nil {
		a := ruleAlert(r)
		rj = appendRuleJSON(nil, &a)
		w.ruleJSON[r.index] = rj
	}
	dev := m.str(slotDevice)
	b = append(b, `{"id":`...)
	b = vigil.AppendJSONString(b, vigil.NewID())
	b = append(b, `,"dedup_key":`...)
	w.tmp = append(append(append(w.tmp[:0], firstNonEmpty(r.ID, r.Name, r.Title)...), '|'), dev...)
	b = vigil.AppendJSONString(b, unsafe.String(unsafe.SliceData(w.tmp), len(w.tmp)))
	b = append(b, rj...)
	if dev != "" {
		b = append(b, `,"device_id":`...)
		b = vigil.AppendJSONString(b, dev)
	}
	n := 0
	for _, e := range entitySlots {
		v := m.str(e.slot)
		if v == "" {
			continue
		}
		if n == 0 {
			b = append(b, `,"entities":[`...)
		} else {
			b = append(b, ',')
		}
		n++
		w.tmp = append(append(append(w.tmp[:0], e.kind...), ':'), v...)
		b = vigil.AppendJSONString(b, unsafe.String(unsafe.SliceData(w.tmp), len(w.tmp)))
	}
	if n > 0 {
		b = append(b, ']')
	}
	if id := m.str(slotEventID); id != "" {
		b = append(b, `,"event_ids":[`...)
		b = vigil.AppendJSONString(b, id)
		b = append(b, ']')
	}
	t, _ := m.times.eventTime(m.str(slotTime))
	b = append(b, `,"first_event_time":`...)
	ts := len(b)
	b = appendTime(b, t)
	te := len(b)
	b = append(b, `,"last_event_time":`...)
	b = append(b, b[ts:te]...) // the same time, formatted once
	b = append(b, `,"created":`...)
	b = append(b, w.created...)
	b = append(b, `,"count":1,"line":`...)
	b = strconv.AppendInt(b, int64(line), 10)
	if r.Level != "" {
		b = append(b, `,"level":`...)
		b = vigil.AppendJSONString(b, r.Level)
	}
	if x != nil {
		b = append(b, `,"explanation":`...)
		if x.Group != nil || x.Window != "" || x.Threshold != nil || x.Indicator != nil {
			j, err := json.Marshal(x)
			if err != nil {
				return b, fmt.Errorf("cannot encode the explanation of rule %s: %w", r.ID, err)
			}
			b = append(b, j...)
		} else {
			b = appendExplanation(b, x)
		}
	}
	return append(b, "}\n"...), nil
}

// appendExplanation appends the explanation of a detection rule's match
// (rule, matches, evidence) as encoding/json would, without reflection:
// the offline stream writes one per alert.
func appendExplanation(b []byte, x *vigil.Explanation) []byte {
	b = append(b, '{')
	sep := func() {
		if b[len(b)-1] != '{' && b[len(b)-1] != '[' {
			b = append(b, ',')
		}
	}
	str := func(name, v string, omitEmpty bool) {
		if omitEmpty && v == "" {
			return
		}
		sep()
		b = vigil.AppendJSONString(b, name)
		b = append(b, ':')
		b = vigil.AppendJSONString(b, v)
	}
	if r := x.Rule; r != nil {
		b = append(b, `"rule":{`...)
		str("id", r.ID, true)
		str("title", r.Title, true)
		str("description", r.Description, true)
		str("level", r.Level, true)
		str("condition", r.Condition, true)
		b = append(b, '}')
	}
	if len(x.Matches) > 0 {
		sep()
		b = append(b, `"matches":[`...)
		for i, m := range x.Matches {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '{')
			str("selection", m.Selection, false)
			str("field", m.Field, true)
			str("value", m.Value, false)
			str("pattern", m.Pattern, true)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if len(x.Evidence) > 0 {
		sep()
		b = append(b, `"evidence":[`...)
		for i, e := range x.Evidence {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '{')
			str("event_id", e.EventID, true)
			if !e.Time.IsZero() {
				sep()
				b = append(b, `"time":`...)
				b = appendTime(b, e.Time)
			}
			str("device_id", e.DeviceID, true)
			str("kind", e.Kind, true)
			if len(e.Fields) > 0 {
				sep()
				b = append(b, `"fields":{`...)
				keys := make([]string, 0, len(e.Fields))
				for k := range e.Fields {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				for _, k := range keys {
					str(k, e.Fields[k], false)
				}
				b = append(b, '}')
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}
