package thingsboard

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/ingest"
	"github.com/vigil-iot/vigil/proto/twin"
)

// Source is the Event.Source of ThingsBoard events.
const Source = "thingsboard"

// Kind is the Event.Kind of entries that are not twin updates.
const Kind = "cloud"

// Bounds of one entry's fields.
const (
	MaxFields = 256
	MaxDepth  = 8
)

// deviceChanges are the actions on a device entity that change what the
// device runs or who may speak for it (platform_change).
var deviceChanges = map[string]bool{
	"CREDENTIALS_UPDATED": true, "RPC_CALL": true, "DELETED": true, "ASSIGNED_TO_CUSTOMER": true,
	"UNASSIGNED_FROM_CUSTOMER": true, "UPDATED": true, "ATTRIBUTES_UPDATED": true, "ATTRIBUTES_DELETED": true,
	"ASSIGNED_TO_TENANT": true, "PROVISION_SUCCESS": true,
}

// secretFields are the flattened names of credentials in action data.
var secretFields = []string{"actionData.credentials.credentialsId", "actionData.credentials.credentialsValue"}

// Reader reads JSON values one after another: audit log pages
// ({"data": [...]}), arrays of entries and single entries. Errors of one
// entry are *ingest.RecordError.
type Reader = ingest.JSONRecords

// Stats counts what a Reader read.
type Stats = ingest.RecordStats

// NewReader reads r; name names it in errors.
func NewReader(r io.Reader, name string) *Reader {
	return ingest.NewJSONRecords(r, name, list, Convert)
}

// list returns the entries of a page or an array.
func list(v any) ([]any, string, bool) {
	switch x := v.(type) {
	case []any:
		return x, "", true
	case map[string]any:
		if d, ok := x["data"].([]any); ok {
			return d, "data", true
		}
	}
	return nil, "", false
}

// sections maps attribute scopes to twin sections.
var sections = map[string]string{"SHARED_SCOPE": twin.Desired, "SERVER_SCOPE": twin.Desired, "CLIENT_SCOPE": twin.Reported}

// Convert makes an event of one audit log entry.
func Convert(rec map[string]any) (vigil.Event, error) {
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return ingest.ValidUTF8(s) }
	action := str(rec, "actionType")
	if action == "" {
		return vigil.Event{}, errors.New("actionType: missing (not a ThingsBoard audit log entry)")
	}
	ms, ok := rec["createdTime"].(float64)
	if !ok || ms < 0 || ms > 253402300799999 {
		return vigil.Event{}, fmt.Errorf("createdTime: missing or not a time in milliseconds")
	}
	t := time.UnixMilli(int64(ms)).UTC()
	f := make(map[string]any, 24)
	fl := ingest.Flattener{Fields: f, MaxFields: MaxFields, MaxDepth: MaxDepth}
	fl.Add("", rec)
	if fl.Truncated {
		f["thingsboard.truncated"] = true
	}
	// A CREDENTIALS_UPDATED entry carries the device's new credentials:
	// an access token is the credentials id itself, an X.509 or MQTT
	// basic one has a value. Neither is kept.
	for _, k := range secretFields {
		if _, ok := f[k]; ok {
			delete(f, k)
			f["thingsboard.credentials_removed"] = true
		}
	}
	ev := vigil.Event{Time: t, Source: Source, Kind: Kind, Action: action, Fields: f}
	idm, _ := rec["id"].(map[string]any)
	if id := str(idm, "id"); id != "" {
		ev.ID = ingest.DeriveID(t, Source, id)
	}
	f["cloud.provider"] = "thingsboard"
	f["event.provider"] = "thingsboard"
	f["logsource.product"] = "thingsboard"
	f["logsource.service"] = "audit"
	if u := str(rec, "userName"); u != "" {
		f["user.name"] = u
	}
	if tm, _ := rec["tenantId"].(map[string]any); str(tm, "id") != "" {
		f["cloud.account.id"] = str(tm, "id")
	}
	switch str(rec, "actionStatus") {
	case "SUCCESS":
		ev.Outcome = vigil.OutcomeSuccess
	case "FAILURE":
		ev.Outcome = vigil.OutcomeFailure
	}
	data, _ := rec["actionData"].(map[string]any)
	ent, _ := rec["entityId"].(map[string]any)
	device := str(ent, "entityType") == "DEVICE"
	switch action {
	case "LOGIN", "LOGOUT", "LOCKOUT":
		ev.Category = "authentication"
		if a, err := netip.ParseAddr(str(data, "clientAddress")); err == nil {
			ev.Network = &vigil.Network{SrcIP: a.Unmap()}
		}
		if b := str(data, "browser"); b != "" {
			f["user_agent.original"] = b
		}
		if action == "LOGIN" {
			ev.Action = "login"
		}
	default:
		ev.Category = "configuration"
	}
	if device {
		if name := str(rec, "entityName"); name != "" {
			ev.DeviceID = name
		}
		if deviceChanges[action] {
			f["logsource.category"] = "platform_change"
		}
	}
	if device && action == "ATTRIBUTES_UPDATED" && ev.Outcome == vigil.OutcomeSuccess {
		if sec, ok := sections[str(data, "scope")]; ok {
			if attrs, ok := data["attributes"].(map[string]any); ok {
				return twinEvent(ev, attrs, sec), nil
			}
		}
	}
	return ev, nil
}

// twinEvent makes ev, an attribute update of a device, a twin event: its
// numeric attributes become the parameters of section.
func twinEvent(ev vigil.Event, attrs map[string]any, section string) vigil.Event {
	f := ev.Fields
	for k := range f {
		if strings.HasPrefix(k, "logsource.") {
			delete(f, k) // routed by its kind
		}
	}
	ev.Kind, ev.Action = twin.Kind, "update"
	f["twin.platform"] = twin.PlatformThingsBoard
	if ev.DeviceID != "" {
		f["twin.thing"] = ev.DeviceID
	}
	b, err := json.Marshal(attrs)
	if err != nil {
		f["twin.error"] = err.Error()
		return ev
	}
	doc, err := twin.Flatten(b, section, true)
	if err != nil {
		f["twin.error"] = err.Error()
	}
	f["twin.truncated"] = doc.Truncated
	f["twin.params"] = float64(len(doc.Params))
	for _, p := range doc.Params {
		f[twin.FieldPrefix(p.Section)+p.Path] = p.Value
	}
	if len(doc.Params) > 0 {
		f["twin.sections"] = []string{section}
	}
	return ev
}
