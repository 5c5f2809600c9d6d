package vigil

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Event kinds produced by Vigil's own sources. A kind names what an event
// describes; detectors and Sigma logsources route on it.
const (
	KindHealth    = "health"    // one health sample of a device (host.* and metric.* fields)
	KindInventory = "inventory" // a device's inventory as reported (os, firmware, software)
	KindAuth      = "auth"      // a login attempt (success or failure)
	KindProcess   = "process"   // a process start
	KindNetwork   = "network"   // a connection or a listener
	KindFile      = "file"      // a file change (integrity monitoring)
	KindConfig    = "config"    // a configuration change
	KindSystem    = "system"    // boot, reboot, service state, kernel messages
)

// Outcomes, as in ECS event.outcome.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
	OutcomeUnknown = "unknown"
)

// Provenance kinds: how the sender of an event was authenticated at
// ingest. Event.Provenance is "<kind>:<who>", made with NewProvenance.
const (
	// ProvenanceDevice: the device's own client certificate (who is the
	// device id); the device reports about itself.
	ProvenanceDevice = "device-cert"
	// ProvenanceSensor: an enrolled sensor's client certificate (who is
	// the sensor id); the sensor reports about the devices it sees.
	ProvenanceSensor = "sensor-cert"
	// ProvenanceMQTT: a report on the device's own MQTT topic, the device
	// authenticated by the broker (who is the device id).
	ProvenanceMQTT = "mqtt"
	// ProvenanceToken: an API token (who is the token's name). Anyone
	// holding the token may have sent it.
	ProvenanceToken = "token"
)

// NewProvenance returns the provenance of kind for who.
func NewProvenance(kind, who string) string { return kind + ":" + who }

// TrustedProvenance reports whether evidence of provenance p about the
// device deviceID comes from a source Vigil authenticated as able to speak
// for it: the device itself (its certificate, or its broker-authenticated
// MQTT topic) or an enrolled sensor. Tokens, an empty provenance and
// anything else are not trusted.
func TrustedProvenance(p, deviceID string) bool {
	kind, who, ok := strings.Cut(p, ":")
	if !ok || who == "" {
		return false
	}
	switch kind {
	case ProvenanceSensor:
		return true
	case ProvenanceDevice, ProvenanceMQTT:
		return deviceID != "" && who == deviceID
	}
	return false
}

// Event is one normalized observation, whatever its source. The fixed fields
// are the ones every stage needs; everything else lives in Fields under
// ECS-style dotted names ("user.name", "process.command_line", "mqtt.topic").
//
// Events are immutable once published on the bus.
type Event struct {
	// ID is unique per event. Sources that retry (agents) set it so the
	// store can deduplicate; otherwise ingest assigns one.
	ID string `json:"id"`
	// Time is when the event happened, according to its source.
	Time time.Time `json:"time"`
	// Received is when Vigil ingested it.
	Received time.Time `json:"received,omitzero"`
	// DeviceID identifies the device the event is about.
	DeviceID string `json:"device_id,omitempty"`
	// Source names what produced the event: "agent", "sensor", "bulk", ...
	Source string `json:"source,omitempty"`
	// Provenance says how the sender of the event was authenticated, as
	// "<kind>:<who>" (see the Provenance* constants): set by the server at
	// ingest, never taken from what a source sends.
	Provenance string `json:"provenance,omitempty"`

	Kind     string   `json:"kind"`               // Vigil's event kind, see Kind* constants
	Category string   `json:"category,omitempty"` // ECS event.category: authentication, process, network, ...
	Action   string   `json:"action,omitempty"`   // ECS event.action: "login", "listen", "exec", ...
	Outcome  string   `json:"outcome,omitempty"`  // success, failure, unknown
	Severity Severity `json:"severity,omitempty"`

	// Network is the 5-tuple, when the event has one.
	Network *Network `json:"network,omitempty"`

	// Fields holds every other attribute under ECS-style dotted names.
	// Values are strings, float64, bool, or []string.
	Fields map[string]any `json:"fields,omitempty"`
}

// Field is one event field: a dotted name and its value, for code that
// builds an event's fields as a list rather than a map (the sensor does,
// see AppendJSONFields). In a list, a name may occur more than once: the
// last occurrence counts, as when the list is stored into a map in order.
//
// A string value made with StringField is kept as a string, not in Value:
// storing a string in an interface allocates, which the sensor notices.
// Val returns the value either way.
type Field struct {
	Key   string
	Value any
	str   string // the value, when Value is unboxedString{}
}

// unboxedString in Field.Value says that the value is Field.str.
type unboxedString struct{}

// StringField returns the field k with the string value s.
func StringField(k, s string) Field {
	return Field{Key: k, Value: unboxedString{}, str: s}
}

// Set makes f the field k with value v, as Field{Key: k, Value: v}; and
// SetString the field k with the string value s, as StringField(k, s).
// Setting a Field in place costs less than storing a new one while the
// garbage collector runs (no bulk write barrier).
func (f *Field) Set(k string, v any) {
	f.Key, f.Value, f.str = k, v, ""
}

// SetString: see Set.
func (f *Field) SetString(k, s string) {
	f.Key, f.Value, f.str = k, unboxedString{}, s
}

// Val returns the value of the field.
func (f *Field) Val() any {
	if _, ok := f.Value.(unboxedString); ok {
		return f.str
	}
	return f.Value
}

// Network is a connection's 5-tuple.
type Network struct {
	Transport string     `json:"transport,omitempty"` // tcp, udp, icmp, ...
	SrcIP     netip.Addr `json:"src_ip,omitzero"`
	SrcPort   uint16     `json:"src_port,omitempty"`
	DstIP     netip.Addr `json:"dst_ip,omitzero"`
	DstPort   uint16     `json:"dst_port,omitempty"`
}

// Field returns the value of a field by its dotted name, looking at the
// fixed fields first ("device.id", "event.kind", "source.ip", ...) and then
// at Fields. Numbers in the fixed fields are returned as float64, addresses
// as strings. The boolean is false when the event has no such field.
func (e *Event) Field(name string) (any, bool) {
	switch name {
	case "event.id":
		return e.ID, e.ID != ""
	case "device.id":
		return e.DeviceID, e.DeviceID != ""
	case "event.source", "source":
		return e.Source, e.Source != ""
	case "event.provenance":
		return e.Provenance, e.Provenance != ""
	case "event.kind", "kind":
		return e.Kind, e.Kind != ""
	case "event.category", "category":
		return e.Category, e.Category != ""
	case "event.action", "action":
		return e.Action, e.Action != ""
	case "event.outcome", "outcome":
		return e.Outcome, e.Outcome != ""
	case "event.severity", "severity":
		return float64(e.Severity), e.Severity != 0
	case "network.transport":
		if e.Network != nil && e.Network.Transport != "" {
			return e.Network.Transport, true
		}
	case "source.ip":
		if e.Network != nil && e.Network.SrcIP.IsValid() {
			return e.Network.SrcIP.String(), true
		}
	case "source.port":
		if e.Network != nil && e.Network.SrcPort != 0 {
			return float64(e.Network.SrcPort), true
		}
	case "destination.ip":
		if e.Network != nil && e.Network.DstIP.IsValid() {
			return e.Network.DstIP.String(), true
		}
	case "destination.port":
		if e.Network != nil && e.Network.DstPort != 0 {
			return float64(e.Network.DstPort), true
		}
	}
	v, ok := e.Fields[name]
	return v, ok
}

// FieldString returns a field as a string: numbers are formatted, lists
// joined with commas. The boolean is false when the field is absent.
func (e *Event) FieldString(name string) (string, bool) {
	v, ok := e.Field(name)
	if !ok {
		return "", false
	}
	return ValueString(v), true
}

// FieldNumber returns a field as a number: numbers as they are, strings
// parsed. The boolean is false when the field is absent or not numeric.
func (e *Event) FieldNumber(name string) (float64, bool) {
	v, ok := e.Field(name)
	if !ok {
		return 0, false
	}
	switch n := v.(type) {
	case float64:
		return n, true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case string:
		f, err := strconv.ParseFloat(n, 64)
		return f, err == nil
	}
	return 0, false
}

// ValueString formats a field value as text.
func ValueString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case bool:
		return strconv.FormatBool(x)
	case []string:
		s := ""
		for i, p := range x {
			if i > 0 {
				s += ","
			}
			s += p
		}
		return s
	case []any:
		s := ""
		for i, p := range x {
			if i > 0 {
				s += ","
			}
			s += ValueString(p)
		}
		return s
	}
	return ""
}
