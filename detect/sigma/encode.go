package sigma

import (
	"strconv"
	"time"

	"github.com/vigil-iot/vigil"
)

// appendAlert appends an alert as one JSON object (the fields of
// vigil.Alert plus the input line and the rule level), without reflection.
// Alerts with Fields fall back to the caller's encoder. ruleJSON, when not
// nil, is what appendRuleJSON writes for the alert (the caller keeps it
// per rule).
func appendAlert(b []byte, a *vigil.Alert, line int, level string, ruleJSON []byte) []byte {
	b = append(b, `{"id":`...)
	b = vigil.AppendJSONString(b, a.ID)
	b = append(b, `,"dedup_key":`...)
	b = vigil.AppendJSONString(b, a.DedupKey)
	if ruleJSON != nil {
		b = append(b, ruleJSON...)
	} else {
		b = appendRuleJSON(b, a)
	}
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
