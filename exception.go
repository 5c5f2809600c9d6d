package vigil

import (
	"fmt"
	"strings"
	"time"
)

// Exception keeps one rule from raising alerts on a scope: one device, a
// cohort of devices (a class, or a vendor and model), or alerts with one
// field value (source.ip=10.0.0.5), until it expires. It names who made it
// and why. An alert it matches is not raised; the exception counts it
// (Suppressed, LastSuppressed, LastAlert), so nothing is lost silently.
//
// The scope members that are set must all match: an exception with a
// device and a field value matches that device's alerts with that value.
type Exception struct {
	ID string `json:"id"`
	// RuleID is the rule whose alerts it silences (Alert.RuleID). Required.
	RuleID string `json:"rule_id"`
	// DeviceID limits it to one device.
	DeviceID string `json:"device_id,omitempty"`
	// Class, Vendor and Model limit it to a cohort of devices.
	Class  string `json:"class,omitempty"`
	Vendor string `json:"vendor,omitempty"`
	Model  string `json:"model,omitempty"`
	// Field and Value limit it to alerts where that field has that value
	// (the alert's fields, its explanation's matched values or evidence).
	Field string `json:"field,omitempty"`
	Value string `json:"value,omitempty"`

	// Expires is when it stops applying (exclusive). Required.
	Expires time.Time `json:"expires"`
	Reason  string    `json:"reason"`
	Author  string    `json:"author"`
	Created time.Time `json:"created"`

	// Suppressed counts the alerts it kept from being raised; the store
	// adds to it (store.Exceptions.RecordSuppressed).
	Suppressed int64 `json:"suppressed"`
	// LastSuppressed is when it last did; LastAlert says what ("<rule> on
	// <device>: <title>").
	LastSuppressed time.Time `json:"last_suppressed,omitzero"`
	LastAlert      string    `json:"last_alert,omitempty"`
}

// MaxExceptionText bounds the text members of an Exception (bytes).
const MaxExceptionText = 1024

// Check reports what is wrong with e as an exception to create: EINVALID
// when it has no rule, no scope (it would silence the rule everywhere: a
// rule is disabled, not excepted), no expiry, no reason or author, a field
// without a value or the reverse, or text over MaxExceptionText.
func (e *Exception) Check() error {
	bad := func(format string, args ...any) error {
		return Errorf(EINVALID, "exception %s: %s", e.ID, fmt.Sprintf(format, args...))
	}
	for name, v := range map[string]string{"id": e.ID, "rule_id": e.RuleID, "device_id": e.DeviceID, "class": e.Class,
		"vendor": e.Vendor, "model": e.Model, "field": e.Field, "value": e.Value, "reason": e.Reason, "author": e.Author} {
		if len(v) > MaxExceptionText {
			return bad("%s is %d bytes, over %d", name, len(v), MaxExceptionText)
		}
	}
	switch {
	case e.ID == "":
		return Errorf(EINVALID, "exception has no id")
	case e.RuleID == "":
		return bad("rule_id is required")
	case e.DeviceID == "" && e.Class == "" && e.Vendor == "" && e.Model == "" && e.Field == "":
		return bad("needs a scope: device_id, class, vendor and model, or field and value (to silence a rule everywhere, disable it)")
	case e.Model != "" && e.Vendor == "":
		return bad("model %q needs its vendor", e.Model)
	case (e.Field == "") != (e.Value == ""):
		return bad("field and value go together (field %q, value %q)", e.Field, e.Value)
	case e.Expires.IsZero():
		return bad("expires is required")
	case strings.TrimSpace(e.Reason) == "":
		return bad("reason is required")
	case e.Author == "":
		return bad("author is required")
	}
	return nil
}

// Active reports whether e applies at now: it has not expired.
func (e *Exception) Active(now time.Time) bool { return now.Before(e.Expires) }

// NeedsDevice reports whether matching e needs the alert's device record
// (a cohort scope).
func (e *Exception) NeedsDevice() bool { return e.Class != "" || e.Vendor != "" || e.Model != "" }

// Matches reports whether e silences alert a raised at now. d is a's
// device, needed for a cohort scope (nil: a cohort exception does not
// match). Vendor and model compare without case.
func (e *Exception) Matches(a *Alert, d *Device, now time.Time) bool {
	if !e.Active(now) || e.RuleID != a.RuleID {
		return false
	}
	if e.DeviceID != "" && e.DeviceID != a.DeviceID {
		return false
	}
	if e.NeedsDevice() {
		if d == nil || d.ID != a.DeviceID {
			return false
		}
		if e.Class != "" && !strings.EqualFold(e.Class, d.Class) ||
			e.Vendor != "" && !strings.EqualFold(e.Vendor, d.Vendor) ||
			e.Model != "" && !strings.EqualFold(e.Model, d.Model) {
			return false
		}
	}
	return e.Field == "" || AlertHasValue(a, e.Field, e.Value)
}

// Scope describes what e covers, for people: "device cam-1",
// "class camera", "vendor acme model X", "source.ip=10.0.0.5", joined by
// " and ".
func (e *Exception) Scope() string {
	var parts []string
	if e.DeviceID != "" {
		parts = append(parts, "device "+e.DeviceID)
	}
	if e.Class != "" {
		parts = append(parts, "class "+e.Class)
	}
	if e.Vendor != "" {
		s := "vendor " + e.Vendor
		if e.Model != "" {
			s += " model " + e.Model
		}
		parts = append(parts, s)
	}
	if e.Field != "" {
		parts = append(parts, e.Field+"="+e.Value)
	}
	return strings.Join(parts, " and ")
}

// AlertHasValue reports whether the alert shows value for field: in its
// Fields, the values its explanation matched, or its evidence excerpts;
// "device.id" is its device, and a field named like an entity type (ip,
// user, mqtt.client_id) matches the alert's entity "<type>:<value>"
// whatever role it had (source or destination).
func AlertHasValue(a *Alert, field, value string) bool {
	if field == "device.id" && a.DeviceID == value {
		return true
	}
	if v, ok := a.Fields[field]; ok && v != nil && ValueString(v) == value {
		return true
	}
	if x := a.Explanation; x != nil {
		for _, m := range x.Matches {
			if m.Field == field && m.Value == value {
				return true
			}
		}
		for _, ev := range x.Evidence {
			if v, ok := ev.Fields[field]; ok && v == value {
				return true
			}
		}
	}
	for _, en := range a.Entities {
		typ, v, ok := strings.Cut(en, ":")
		if ok && typ == field && v == value {
			return true
		}
	}
	return false
}
