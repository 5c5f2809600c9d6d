package azure

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/ingest"
)

// Source is the Event.Source of Azure events.
const Source = "azure"

// Kind is their Event.Kind; their logsource.* fields route them to the
// Sigma rules of product azure.
const Kind = "cloud"

// Limits of one record (see ingest.Flattener).
const (
	MaxFields = 2048
	MaxDepth  = 32
)

// RecordError is an error in one record of the input.
type RecordError = ingest.RecordError

// Service returns the SigmaHQ logsource service of a record's category:
// activitylogs, signinlogs, auditlogs, iothub, or "" (unknown).
func Service(category, resourceID string) string {
	switch c := strings.ToLower(category); {
	case strings.Contains(strings.ToUpper(resourceID), "/PROVIDERS/MICROSOFT.DEVICES/IOTHUBS/"):
		return "iothub"
	case strings.HasSuffix(c, "signinlogs"):
		return "signinlogs"
	case c == "auditlogs":
		return "auditlogs"
	case c == "administrative" || c == "security" || c == "policy" || c == "servicehealth" || c == "alert" ||
		c == "recommendation" || c == "autoscale" || c == "resourcehealth":
		return "activitylogs"
	}
	return ""
}

// Convert returns the event of a decoded record; time, operationName and
// category are required.
func Convert(rec map[string]any) (vigil.Event, error) {
	str := func(k string) string { s, _ := rec[k].(string); return ingest.ValidUTF8(s) }
	ts := str("time")
	if ts == "" {
		ts = str("TimeGenerated")
	}
	if ts == "" {
		return vigil.Event{}, errors.New("time: missing (not an Azure resource log record)")
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil || t.Year() < 1970 || t.Year() > 9999 {
		return vigil.Event{}, fmt.Errorf("time %q: not an ISO 8601 time", ingest.Clip(ts))
	}
	op, cat := str("operationName"), str("category")
	if op == "" || cat == "" {
		return vigil.Event{}, errors.New("operationName or category: missing (not an Azure resource log record)")
	}
	rid := str("resourceId")
	svc := Service(cat, rid)
	// IoT Hub (and some other services) write properties as a JSON string.
	if p, ok := rec["properties"].(string); ok && strings.HasPrefix(strings.TrimSpace(p), "{") {
		var m map[string]any
		if json.Unmarshal([]byte(p), &m) == nil && m != nil {
			rec["properties"] = m
		}
	}
	f := make(map[string]any, 32)
	fl := ingest.Flattener{Fields: f, MaxFields: MaxFields, MaxDepth: MaxDepth}
	fl.Add("", rec)
	if fl.Truncated {
		f["azure.truncated"] = true
	}
	props, _ := rec["properties"].(map[string]any)
	pstr := func(k string) string { s, _ := props[k].(string); return ingest.ValidUTF8(s) }

	ev := vigil.Event{Time: t.UTC(), Source: Source, Kind: Kind, Action: op, Fields: f}
	f["logsource.product"] = "azure"
	if svc != "" {
		f["logsource.service"] = svc
	}
	f["cloud.provider"] = "azure"
	if sub := between(strings.ToUpper(rid), "/SUBSCRIPTIONS/", "/"); sub != "" {
		f["cloud.account.id"] = strings.ToLower(sub)
	} else if tn := cmp.Or(str("tenantId"), between(strings.ToUpper(rid), "/TENANTS/", "/")); tn != "" {
		f["cloud.account.id"] = strings.ToLower(tn)
	}
	if prov, _, ok := strings.Cut(op, "/"); ok && strings.Contains(prov, ".") {
		f["event.provider"] = prov
	}
	ip := cmp.Or(str("callerIpAddress"), pstr("ipAddress"))
	if a, err := netip.ParseAddr(ip); err == nil {
		ev.Network = &vigil.Network{SrcIP: a.Unmap()}
	} else if ip != "" {
		f["source.address"] = ip
	}
	if ua := pstr("userAgent"); ua != "" {
		f["user_agent.original"] = ua
	}
	res := str("resultType")
	switch svc {
	case "signinlogs":
		ev.Category = "authentication"
		ev.Outcome = "success"
		if res != "" && res != "0" {
			ev.Outcome = "failure"
			f["error.code"] = res
		}
		if u := cmp.Or(pstr("userPrincipalName"), str("identity")); u != "" {
			f["user.name"] = u
		}
		if id := pstr("userId"); id != "" {
			f["user.id"] = id
		}
		if loc, _ := rec["location"].(string); len(loc) == 2 {
			f["source.geo.country_iso_code"] = loc
		}
	case "iothub":
		ev.Category = "configuration"
		if d := pstr("deviceId"); d != "" {
			ev.DeviceID = d
		}
		if l := str("level"); strings.EqualFold(l, "Error") {
			ev.Outcome = "failure"
		}
	default:
		ev.Category = "configuration"
		if svc == "auditlogs" {
			ev.Category = "iam"
		}
		switch strings.ToLower(res) {
		case "success", "succeeded":
			ev.Outcome = "success"
		case "failure", "failed":
			ev.Outcome = "failure"
		}
		if loc := str("location"); loc != "" && loc != "global" {
			f["cloud.region"] = loc
		}
		if id, ok := rec["identity"].(map[string]any); ok {
			claims, _ := id["claims"].(map[string]any)
			for _, k := range []string{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn", "upn", "name", "appid"} {
				if s, _ := claims[k].(string); s != "" {
					f["user.name"] = ingest.ValidUTF8(s)
					break
				}
			}
			if s, _ := claims["http://schemas.microsoft.com/identity/claims/objectidentifier"].(string); s != "" {
				f["user.id"] = ingest.ValidUTF8(s)
			}
		}
	}
	if d, _ := rec["deviceId"].(string); d != "" && ev.DeviceID == "" && svc == "iothub" {
		ev.DeviceID = ingest.ValidUTF8(d)
	}
	return ev, nil
}

func between(s, start, end string) string {
	_, rest, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, end)
	return v
}

// Stats counts what a Reader read.
type Stats = ingest.RecordStats

// Reader reads JSON values one after another ({"records":[...]} as an
// event hub or a storage account receives them, an array of records, or
// a record; on one line or several). JSON that does not parse ends the
// input (the error says where). Errors of one record are *RecordError.
type Reader = ingest.JSONRecords

// NewReader reads r; name names it in errors.
func NewReader(r io.Reader, name string) *Reader {
	return ingest.NewJSONRecords(r, name, records, Convert)
}

// records returns the records of an array or of {"records":[...]}.
func records(v any) ([]any, string, bool) {
	switch x := v.(type) {
	case []any:
		return x, "records", true
	case map[string]any:
		if l, ok := x["records"].([]any); ok {
			return l, "records", true
		}
	}
	return nil, "", false
}
