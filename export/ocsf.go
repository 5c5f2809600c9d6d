package export

import (
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
)

// OCSFVersion is the OCSF schema version the documents follow.
const OCSFVersion = "1.3.0"

// OCSF class and enumeration values used, from the schema's definition of
// the Detection Finding class (Findings category).
const (
	ocsfCategoryFindings = 2
	ocsfClassDetection   = 2004
	ocsfActivityCreate   = 1
	ocsfStatusNew        = 1
	ocsfDeviceIoT        = 7 // device.type_id "IOT"
	ocsfAnalyticRule     = 1 // analytic.type_id "Rule"
	ocsfObservableHost   = 1 // observable type_id "Hostname"
	ocsfObservableIP     = 2 // "IP Address"
	ocsfObservableUser   = 4 // "User Name"
)

// ocsfSeverity maps Vigil's severities to OCSF severity_id and its
// caption: the five levels are the same (1 Informational ... 5 Critical);
// an unset severity is 0 Unknown.
var ocsfSeverity = [...]string{"Unknown", "Informational", "Low", "Medium", "High", "Critical"}

// OCSF encodes an alert as an OCSF Detection Finding (class_uid 2004,
// activity Create, type_uid 200401): finding_info carries the alert id,
// title, times, detector and rule (analytic) and the ATT&CK techniques
// (attacks); the device is an IOT device; entities that are addresses,
// users or host names are observables; the evidence event ids are
// finding_info.related_events; what OCSF has no attribute for is under
// "unmapped". Times are milliseconds since the epoch (OCSF timestamp_t).
func OCSF(a vigil.Alert) ([]byte, error) {
	sev := int(a.Severity)
	if sev < 0 || sev >= len(ocsfSeverity) {
		sev = 0
	}
	fi := map[string]any{
		"uid":          a.ID,
		"title":        a.Title,
		"created_time": ms(a.Created),
		"types":        []string{a.Detector},
		"product_uid":  "vigil",
	}
	if !a.FirstEventTime.IsZero() {
		fi["first_seen_time"] = ms(a.FirstEventTime)
	}
	if !a.LastEventTime.IsZero() {
		fi["last_seen_time"] = ms(a.LastEventTime)
	}
	if a.RuleID != "" {
		fi["analytic"] = map[string]any{"uid": a.RuleID, "name": a.Title, "type_id": ocsfAnalyticRule, "type": "Rule", "category": a.Detector}
	}
	if len(a.Techniques) > 0 {
		var attacks []map[string]any
		for _, t := range a.Techniques {
			at := map[string]any{}
			if parent, _, ok := strings.Cut(t, "."); ok {
				at["technique"] = map[string]any{"uid": parent}
				at["sub_technique"] = map[string]any{"uid": t}
			} else {
				at["technique"] = map[string]any{"uid": t}
			}
			attacks = append(attacks, at)
		}
		fi["attacks"] = attacks
	}
	if len(a.EventIDs) > 0 {
		rel := make([]map[string]any, len(a.EventIDs))
		for i, id := range a.EventIDs {
			rel[i] = map[string]any{"uid": id}
		}
		fi["related_events"] = rel
	}
	doc := map[string]any{
		"category_uid":  ocsfCategoryFindings,
		"category_name": "Findings",
		"class_uid":     ocsfClassDetection,
		"class_name":    "Detection Finding",
		"activity_id":   ocsfActivityCreate,
		"activity_name": "Create",
		"type_uid":      ocsfClassDetection*100 + ocsfActivityCreate,
		"type_name":     "Detection Finding: Create",
		"severity_id":   sev,
		"severity":      ocsfSeverity[sev],
		"status_id":     ocsfStatusNew,
		"status":        "New",
		"time":          ms(a.Created),
		"message":       a.Title,
		"count":         max(a.Count, 1),
		"finding_info":  fi,
		"metadata": map[string]any{
			"version": OCSFVersion,
			"uid":     a.ID,
			"product": map[string]any{"name": "Vigil", "vendor_name": "Vigil"},
		},
	}
	if a.DedupKey != "" {
		doc["metadata"].(map[string]any)["correlation_uid"] = a.DedupKey
	}
	if len(a.Tags) > 0 {
		doc["metadata"].(map[string]any)["labels"] = a.Tags
	}
	if a.DeviceID != "" {
		doc["device"] = map[string]any{"uid": a.DeviceID, "type_id": ocsfDeviceIoT, "type": "IOT"}
	}
	var obs []map[string]any
	for _, e := range a.Entities {
		typ, v, _ := strings.Cut(e, ":")
		switch typ {
		case "ip":
			obs = append(obs, map[string]any{"name": "ip", "type_id": ocsfObservableIP, "type": "IP Address", "value": v})
		case "user":
			obs = append(obs, map[string]any{"name": "user", "type_id": ocsfObservableUser, "type": "User Name", "value": v})
		case "host", "hostname", "domain":
			obs = append(obs, map[string]any{"name": typ, "type_id": ocsfObservableHost, "type": "Hostname", "value": v})
		}
	}
	if len(obs) > 0 {
		doc["observables"] = obs
	}
	doc["unmapped"] = vigilExtras(a)
	return marshal(doc)
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}
