package export

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
)

// Encoder turns an alert into one JSON document.
type Encoder func(a vigil.Alert) ([]byte, error)

// Formats.
const (
	FormatECS  = "ecs"
	FormatOCSF = "ocsf"
)

// EncoderFor returns the encoder of a format name.
func EncoderFor(format string) (Encoder, error) {
	switch format {
	case FormatECS, "":
		return ECS, nil
	case FormatOCSF:
		return OCSF, nil
	}
	return nil, fmt.Errorf("cannot encode format %q: want ecs or ocsf", format)
}

// ECSVersion is the Elastic Common Schema version the ECS documents follow.
const ECSVersion = "8.11.0"

// ECS encodes an alert as an Elastic Common Schema document: event.kind
// "alert", event.category ["intrusion_detection"], the rule in rule.*,
// the device in host.id, ATT&CK techniques in threat.*, the entities'
// addresses, users and host names in related.*, and what ECS has no field
// for under "vigil".
func ECS(a vigil.Alert) ([]byte, error) {
	ev := map[string]any{
		"kind":     "alert",
		"category": []string{"intrusion_detection"},
		"type":     []string{"info"},
		"id":       a.ID,
		"module":   "vigil",
		"dataset":  "vigil.alert",
		"provider": a.Detector,
		"severity": int(a.Severity),
		"created":  rfc3339(a.Created),
	}
	if !a.FirstEventTime.IsZero() {
		ev["start"] = rfc3339(a.FirstEventTime)
	}
	if !a.LastEventTime.IsZero() {
		ev["end"] = rfc3339(a.LastEventTime)
	}
	doc := map[string]any{
		"@timestamp": rfc3339(a.Created),
		"ecs":        map[string]any{"version": ECSVersion},
		"message":    a.Title,
		"event":      ev,
		"rule":       omitEmpty(map[string]any{"id": a.RuleID, "name": a.Title, "ruleset": a.Detector}),
		"observer":   map[string]any{"vendor": "Vigil", "product": "Vigil", "type": "ids"},
		"log":        map[string]any{"level": a.Severity.String()},
	}
	if len(a.Tags) > 0 {
		doc["tags"] = a.Tags
	}
	if a.DeviceID != "" {
		doc["host"] = map[string]any{"id": a.DeviceID}
	}
	if len(a.Techniques) > 0 {
		var tech, sub []string
		for _, t := range a.Techniques {
			if parent, _, ok := strings.Cut(t, "."); ok {
				sub = append(sub, t)
				tech = appendOnce(tech, parent)
			} else {
				tech = appendOnce(tech, t)
			}
		}
		te := map[string]any{"id": tech}
		if len(sub) > 0 {
			te["subtechnique"] = map[string]any{"id": sub}
		}
		doc["threat"] = map[string]any{"framework": "MITRE ATT&CK", "technique": te}
	}
	rel := map[string][]string{}
	for _, e := range a.Entities {
		typ, v, _ := strings.Cut(e, ":")
		switch typ {
		case "ip":
			rel["ip"] = appendOnce(rel["ip"], v)
		case "user":
			rel["user"] = appendOnce(rel["user"], v)
		case "host", "hostname", "domain":
			rel["hosts"] = appendOnce(rel["hosts"], v)
		}
	}
	if len(rel) > 0 {
		doc["related"] = rel
	}
	doc["vigil"] = vigilExtras(a)
	return marshal(doc)
}

// marshal encodes v as JSON without HTML escaping ("ATT&CK" stays so).
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("cannot encode alert: %w", err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// vigilExtras are the alert's members that neither schema has a field for.
func vigilExtras(a vigil.Alert) map[string]any {
	return omitEmpty(map[string]any{
		"alert_id":    a.ID,
		"dedup_key":   a.DedupKey,
		"count":       a.Count,
		"incident_id": a.IncidentID,
		"device_id":   a.DeviceID,
		"entities":    a.Entities,
		"event_ids":   a.EventIDs,
		"provenance":  a.Provenance,
		"retro":       a.Retro,
		"replayed":    a.Replayed,
		"fields":      a.Fields,
		"explanation": a.Explanation,
	})
}

// omitEmpty drops zero values, so documents carry only what the alert has.
func omitEmpty(m map[string]any) map[string]any {
	for k, v := range m {
		switch x := v.(type) {
		case string:
			if x == "" {
				delete(m, k)
			}
		case int:
			if x == 0 {
				delete(m, k)
			}
		case bool:
			if !x {
				delete(m, k)
			}
		case []string:
			if len(x) == 0 {
				delete(m, k)
			}
		case map[string]any:
			if len(x) == 0 {
				delete(m, k)
			}
		case *vigil.Explanation:
			if x == nil {
				delete(m, k)
			}
		}
	}
	return m
}

func appendOnce(s []string, v string) []string {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func unmarshal(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("cannot decode document: %w", err)
	}
	return nil
}
