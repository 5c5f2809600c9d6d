package gcp

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/ingest"
)

// Source is the Event.Source of GCP audit events.
const Source = "gcp"

// Kind is their Event.Kind; their logsource.* fields route them to the
// Sigma rules of product gcp, service gcp.audit.
const Kind = "cloud"

// Limits of one record (see ingest.Flattener).
const (
	MaxFields = 2048
	MaxDepth  = 32
)

// rawObjects are the AuditLog's objects also kept whole, as compact
// JSON, under their own name: rules search them with contains or
// keywords (a Kubernetes object's annotations, a policy's bindings).
var rawObjects = []string{"request", "response"}

// RecordError is an error in one record of the input.
type RecordError = ingest.RecordError

// Unwrap returns the LogEntry a Pub/Sub push envelope carries
// ({"message":{"data":"<base64>"},"subscription":...}), decoded, or rec
// itself when it is not one.
func Unwrap(rec map[string]any) (map[string]any, error) {
	msg, ok := rec["message"].(map[string]any)
	if !ok {
		return rec, nil
	}
	data, ok := msg["data"].(string)
	if !ok {
		return rec, nil
	}
	b, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		if b, err = base64.URLEncoding.DecodeString(data); err != nil {
			return nil, errors.New("message.data: not base64 (a Pub/Sub push message)")
		}
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return nil, errors.New("message.data: not a JSON object (a Pub/Sub push message of a log sink holds a LogEntry)")
	}
	return m, nil
}

// Convert returns the event of a decoded LogEntry; timestamp and
// protoPayload.methodName are required.
func Convert(rec map[string]any) (vigil.Event, error) {
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return ingest.ValidUTF8(s) }
	ts := cmp.Or(str(rec, "timestamp"), str(rec, "receiveTimestamp"))
	if ts == "" {
		return vigil.Event{}, errors.New("timestamp: missing (not a LogEntry)")
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil || t.Year() < 1970 || t.Year() > 9999 {
		return vigil.Event{}, fmt.Errorf("timestamp %q: not an RFC 3339 time", ingest.Clip(ts))
	}
	pp, _ := rec["protoPayload"].(map[string]any)
	method := str(pp, "methodName")
	if method == "" {
		return vigil.Event{}, errors.New("protoPayload.methodName: missing (not a Cloud Audit Logs entry)")
	}
	f := make(map[string]any, 32)
	fl := ingest.Flattener{Fields: f, MaxFields: MaxFields, MaxDepth: MaxDepth}
	fl.Add("", rec)
	if fl.Truncated {
		f["gcp.truncated"] = true
	}
	for _, k := range rawObjects {
		m, ok := pp[k].(map[string]any)
		if !ok {
			continue
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if enc.Encode(m) == nil {
			f["protoPayload."+k] = strings.TrimSuffix(buf.String(), "\n")
		}
	}
	if m, ok := rec["labels"].(map[string]any); ok && len(m) > 0 {
		if b, err := json.Marshal(m); err == nil {
			f["labels"] = string(b)
		}
	}
	ev := vigil.Event{Time: t.UTC(), Source: Source, Kind: Kind, Action: method, Fields: f}
	logName := str(rec, "logName")
	if _, id, ok := strings.Cut(logName, "/logs/"); ok && id != "" {
		f["gcp.audit.log_id"] = id // cloudaudit.googleapis.com%2Factivity
	}
	if id := str(rec, "insertId"); id != "" {
		ev.ID = ingest.DeriveID(t, Source, logName, id)
	}
	f["logsource.product"] = "gcp"
	f["logsource.service"] = "gcp.audit"
	f["cloud.provider"] = "gcp"
	f["gcp.audit.method_name"] = method
	svc := str(pp, "serviceName")
	if svc != "" {
		f["event.provider"] = svc
	}
	res, _ := rec["resource"].(map[string]any)
	labels, _ := res["labels"].(map[string]any)
	project := str(labels, "project_id")
	if project == "" && strings.HasPrefix(logName, "projects/") {
		project, _, _ = strings.Cut(strings.TrimPrefix(logName, "projects/"), "/")
	}
	if project != "" {
		f["cloud.account.id"] = project
	}
	if r := cmp.Or(str(labels, "location"), str(labels, "region"), str(labels, "zone")); r != "" && r != "global" {
		f["cloud.region"] = r
	}
	auth, _ := pp["authenticationInfo"].(map[string]any)
	if u := str(auth, "principalEmail"); u != "" {
		f["user.name"] = u
	} else if u := str(auth, "principalSubject"); u != "" {
		f["user.name"] = u
	}
	md, _ := pp["requestMetadata"].(map[string]any)
	if ip := str(md, "callerIp"); ip != "" {
		if a, err := netip.ParseAddr(ip); err == nil {
			ev.Network = &vigil.Network{SrcIP: a.Unmap()}
		} else {
			f["source.address"] = ip // private, gce-internal-ip
		}
	}
	if ua := str(md, "callerSuppliedUserAgent"); ua != "" {
		f["user_agent.original"] = ua
	}
	ev.Outcome = "success"
	if st, ok := pp["status"].(map[string]any); ok {
		if c, _ := st["code"].(float64); c != 0 {
			ev.Outcome = "failure"
			f["error.code"] = strconv.FormatFloat(c, 'f', -1, 64)
			if m := str(st, "message"); m != "" {
				f["error.message"] = m
			}
		}
	}
	switch {
	case strings.HasSuffix(logName, "policy") || strings.HasSuffix(logName, "%2Fpolicy"):
		ev.Outcome = "failure" // a VPC Service Controls or org policy denial
	}
	switch {
	case svc == "iam.googleapis.com" || svc == "iamcredentials.googleapis.com" || svc == "sts.googleapis.com" ||
		strings.Contains(method, "SetIamPolicy"):
		ev.Category = "iam"
	case svc == "login.googleapis.com" || strings.HasPrefix(method, "google.login."):
		ev.Category = "authentication"
	default:
		ev.Category = "configuration"
	}
	if rn := str(pp, "resourceName"); rn != "" {
		f["gcp.audit.resource_name"] = rn
	}
	if id := iotDevice(res, labels, str(pp, "resourceName")); id != "" {
		ev.DeviceID = id
	}
	return ev, nil
}

// iotDevice names the IoT device an entry acts on, or "".
func iotDevice(res, labels map[string]any, resourceName string) string {
	if t, _ := res["type"].(string); t == "cloudiot_device" {
		if d, _ := labels["device_id"].(string); d != "" {
			return ingest.ValidUTF8(d)
		}
	}
	if _, rest, ok := strings.Cut(resourceName, "/registries/"); ok {
		if _, d, ok := strings.Cut(rest, "/devices/"); ok {
			d, _, _ = strings.Cut(d, "/")
			return ingest.ValidUTF8(d)
		}
	}
	return ""
}

// Stats counts what a Reader read.
type Stats = ingest.RecordStats

// Reader reads JSON values one after another: LogEntry objects (one a
// line, or pretty-printed), arrays of them, and Pub/Sub push envelopes.
// JSON that does not parse ends the input (the error says where). Errors
// of one record are *RecordError.
type Reader = ingest.JSONRecords

// NewReader reads r; name names it in errors.
func NewReader(r io.Reader, name string) *Reader {
	return ingest.NewJSONRecords(r, name, array, unwrapConvert)
}

// array returns the entries of an array.
func array(v any) ([]any, string, bool) {
	l, ok := v.([]any)
	return l, "", ok
}

// unwrapConvert converts a LogEntry, or the one a push envelope carries.
func unwrapConvert(rec map[string]any) (vigil.Event, error) {
	rec, err := Unwrap(rec)
	if err != nil {
		return vigil.Event{}, err
	}
	return Convert(rec)
}
