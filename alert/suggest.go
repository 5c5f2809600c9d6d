package alert

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// Defaults of SuggestExceptions.
const (
	// DefaultSuggestDays is how far back matching alerts are counted.
	DefaultSuggestDays = 30
	// DefaultSuggestTTL is how long a suggested exception lasts.
	DefaultSuggestTTL = 30 * 24 * time.Hour
	// maxSuggestScan bounds the alerts read to count one suggestion.
	maxSuggestScan = 10000
)

// Suggestion is an exception proposed when an incident was closed as a
// false positive, with the alerts it would have matched in the last Days
// days. Accept it by creating Exception as it is (POST /api/v1/exceptions
// takes it; Command is the same as a command line).
type Suggestion struct {
	// Exception is ready to create: the server gives it its id, author
	// and creation time.
	Exception vigil.Exception `json:"exception"`
	// Scope says what it covers ("device cam-1", "class camera").
	Scope string `json:"scope"`
	// Alerts is how many stored alerts it matches that were created in
	// the last Days days; Fired counts their repeats too (Alert.Count).
	Alerts int  `json:"alerts"`
	Fired  int  `json:"fired"`
	Days   int  `json:"days"`
	More   bool `json:"more,omitempty"` // counting stopped at a bound
	// Devices is how many devices those alerts were on.
	Devices int `json:"devices"`
	// Command creates it with the CLI.
	Command string `json:"command"`
}

// SuggestStore is what SuggestExceptions reads; store.Store is one.
type SuggestStore interface {
	ListAlerts(ctx context.Context, f store.AlertFilter) ([]vigil.Alert, string, error)
	GetDevice(ctx context.Context, id string) (vigil.Device, error)
}

// SuggestExceptions proposes exceptions for the alerts of an incident
// closed as a false positive: for each rule and device of its alerts one
// on that device, and, when the device has a class, one on the device
// class (the cohort) when that covers other devices too. Each counts the
// alerts of its rule and scope created in the last days days before now
// (DefaultSuggestDays when days <= 0); each expires ttl after now
// (DefaultSuggestTTL when zero).
func SuggestExceptions(ctx context.Context, st SuggestStore, inc vigil.Incident, now time.Time, days int, ttl time.Duration) ([]Suggestion, error) {
	if days <= 0 {
		days = DefaultSuggestDays
	}
	if ttl <= 0 {
		ttl = DefaultSuggestTTL
	}
	alerts, _, err := st.ListAlerts(ctx, store.AlertFilter{IncidentID: inc.ID, Page: store.Page{Limit: store.MaxLimit}})
	if err != nil {
		return nil, fmt.Errorf("cannot list the alerts of incident %s: %w", inc.ID, err)
	}
	devices := map[string]*vigil.Device{}
	device := func(id string) (*vigil.Device, error) {
		if d, ok := devices[id]; ok {
			return d, nil
		}
		d, err := st.GetDevice(ctx, id)
		switch {
		case vigil.ErrorCode(err) == vigil.ENOTFOUND:
			devices[id] = nil
			return nil, nil
		case err != nil:
			return nil, fmt.Errorf("cannot read device %s: %w", id, err)
		}
		devices[id] = &d
		return &d, nil
	}
	since := now.Add(-time.Duration(days) * 24 * time.Hour)
	reason := fmt.Sprintf("false positive: incident %s", inc.ID)
	if inc.Title != "" {
		reason += " (" + inc.Title + ")"
	}
	type key struct{ rule, device, class string }
	seen := map[key]bool{}
	var out []Suggestion
	// Newest first from the store; suggest in the incident's order.
	slices.Reverse(alerts)
	for _, a := range alerts {
		if a.RuleID == "" || a.DeviceID == "" {
			continue
		}
		d, err := device(a.DeviceID)
		if err != nil {
			return nil, err
		}
		scopes := []vigil.Exception{{RuleID: a.RuleID, DeviceID: a.DeviceID}}
		if d != nil && d.Class != "" {
			scopes = append(scopes, vigil.Exception{RuleID: a.RuleID, Class: d.Class})
		}
		for _, e := range scopes {
			k := key{e.RuleID, e.DeviceID, e.Class}
			if seen[k] {
				continue
			}
			seen[k] = true
			e.Expires = now.Add(ttl).UTC()
			e.Reason = reason
			s := Suggestion{Exception: e, Scope: e.Scope(), Days: days}
			onDevices := map[string]bool{}
			f := store.AlertFilter{RuleID: e.RuleID, DeviceID: e.DeviceID, Since: since, Until: now.Add(time.Nanosecond),
				Page: store.Page{Limit: store.MaxLimit}}
			for read := 0; ; {
				page, next, err := st.ListAlerts(ctx, f)
				if err != nil {
					return nil, fmt.Errorf("cannot count the alerts of rule %s: %w", e.RuleID, err)
				}
				for i := range page {
					x := &page[i]
					if e.Class != "" {
						xd, err := device(x.DeviceID)
						if err != nil {
							return nil, err
						}
						if !e.Matches(x, xd, now) {
							continue
						}
					}
					s.Alerts++
					s.Fired += max(x.Count, 1)
					onDevices[x.DeviceID] = true
				}
				read += len(page)
				if next == "" {
					break
				}
				if read >= maxSuggestScan {
					s.More = true
					break
				}
				f.Cursor = next
			}
			s.Devices = len(onDevices)
			// A cohort exception is worth proposing only when it covers
			// more than the device.
			if e.Class != "" && s.Devices <= 1 {
				continue
			}
			s.Command = suggestCommand(e, ttl)
			out = append(out, s)
		}
	}
	return out, nil
}

// suggestCommand is the command line that creates e.
func suggestCommand(e vigil.Exception, ttl time.Duration) string {
	args := []string{"vigil", "ctl", "exceptions", "add", "--rule", shellQuote(e.RuleID)}
	if e.DeviceID != "" {
		args = append(args, "--device", shellQuote(e.DeviceID))
	}
	if e.Class != "" {
		args = append(args, "--class", shellQuote(e.Class))
	}
	exp := ttl.String()
	if ttl%(24*time.Hour) == 0 {
		exp = fmt.Sprintf("%dd", ttl/(24*time.Hour))
	}
	args = append(args, "--expires", exp, "--reason", shellQuote(e.Reason))
	return strings.Join(args, " ")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@%+,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
