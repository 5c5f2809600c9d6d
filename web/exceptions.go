package web

import (
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/alert"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/web/api"
)

// MaxExceptionTTL is how far in the future an exception may expire: an
// exception is a decision to look at again, not a way to disable a rule.
const MaxExceptionTTL = 366 * 24 * time.Hour

// ExceptionRequest is the body of POST /api/v1/exceptions: the exception's
// rule, scope, reason and expiry (Expires, or TTL from now: a Go duration
// or a number of days, "720h", "30d"). The server sets its id, author
// (the caller's token), creation time and counters, so a suggested
// exception (alert.Suggestion.Exception) is accepted as it is.
type ExceptionRequest struct {
	vigil.Exception
	TTL string `json:"ttl,omitempty"`
}

// ExceptionView is one exception as the API lists it: with its scope
// described and whether it still applies.
type ExceptionView struct {
	vigil.Exception
	Scope  string `json:"scope"`
	Active bool   `json:"active"`
}

// ExceptionsAPI is what the exception routes need.
type ExceptionsAPI struct {
	Store store.Store
	// Changed is called after an exception was created or deleted (the
	// alert stage's alert.Excepter.Invalidate); nil: nothing.
	Changed func()
	Clock   vigil.Clock
	Logger  *slog.Logger
}

// ParseTTL reads a time to live: a Go duration ("720h") or whole days
// ("30d"). EINVALID when it is neither or not positive.
func ParseTTL(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		if n, ok := strings.CutSuffix(s, "d"); ok {
			if days, err2 := strconv.Atoi(n); err2 == nil && days > 0 && days <= 100000 {
				d, err = time.Duration(days)*24*time.Hour, nil
			}
		}
	}
	if err != nil || d <= 0 {
		return 0, vigil.Errorf(vigil.EINVALID, "ttl %q: want a positive duration (720h) or days (30d)", s)
	}
	return d, nil
}

// ExceptionRoutes are /api/v1/exceptions (list: read; create and delete:
// write, audited as exception.create and exception.delete) and
// /api/v1/incidents/{id}/exception-suggestions (read: the exceptions
// alert.SuggestExceptions proposes for the incident; ?days=N counts the
// matching alerts of the last N days).
func ExceptionRoutes(x ExceptionsAPI) []Route {
	if x.Clock == nil {
		x.Clock = vigil.SystemClock{}
	}
	if x.Logger == nil {
		x.Logger = slog.New(slog.DiscardHandler)
	}
	log := x.Logger.With("component", "web")
	handle := ErrorHandler(log)
	changed := func() {
		if x.Changed != nil {
			x.Changed()
		}
	}
	p := api.Prefix
	return []Route{
		{Method: "GET", Pattern: p + "/exceptions", Perm: auth.PermRead, Handler: handle(func(w http.ResponseWriter, r *http.Request) error {
			q := newQuery(r.URL, x.Clock.Now(), "rule", "active")
			rule, active := q.str("rule"), q.str("active")
			if active != "" && active != "true" && active != "false" {
				q.fail(vigil.Errorf(vigil.EINVALID, "active %q: want true or false", active))
			}
			if q.err != nil {
				return q.err
			}
			list, err := x.Store.ListExceptions(r.Context())
			if err != nil {
				return err
			}
			now := x.Clock.Now()
			items := []ExceptionView{}
			for _, e := range list {
				v := ExceptionView{Exception: e, Scope: e.Scope(), Active: e.Active(now)}
				if rule != "" && e.RuleID != rule || active != "" && strconv.FormatBool(v.Active) != active {
					continue
				}
				items = append(items, v)
			}
			writeJSON(w, http.StatusOK, api.List[ExceptionView]{Items: items})
			return nil
		})},
		{Method: "POST", Pattern: p + "/exceptions", Perm: auth.PermWrite, Action: "exception.create", Handler: handle(func(w http.ResponseWriter, r *http.Request) error {
			var in ExceptionRequest
			if err := decodeJSON(w, r, &in); err != nil {
				return err
			}
			now := x.Clock.Now().UTC()
			e := in.Exception
			e.ID, e.Created = vigil.NewID(), now
			e.Suppressed, e.LastSuppressed, e.LastAlert = 0, time.Time{}, ""
			e.Author = Actor(r.Context())
			switch {
			case in.TTL != "" && !e.Expires.IsZero():
				return vigil.Errorf(vigil.EINVALID, "give expires or ttl, not both")
			case in.TTL != "":
				d, err := ParseTTL(in.TTL)
				if err != nil {
					return err
				}
				e.Expires = now.Add(d)
			case e.Expires.IsZero():
				return vigil.Errorf(vigil.EINVALID, "an exception needs an expiry: expires (a time) or ttl (720h, 30d)")
			}
			e.Expires = e.Expires.UTC()
			if !e.Expires.After(now) {
				return vigil.Errorf(vigil.EINVALID, "expires %s is not in the future", e.Expires.Format(time.RFC3339))
			}
			if e.Expires.Sub(now) > MaxExceptionTTL {
				return vigil.Errorf(vigil.EINVALID, "expires %s is more than %d days away", e.Expires.Format(time.RFC3339), MaxExceptionTTL/(24*time.Hour))
			}
			if err := x.Store.PutException(r.Context(), e); err != nil {
				return err
			}
			changed()
			Audit(r, "exception:"+e.ID, fmt.Sprintf("rule %s, %s, until %s: %s", e.RuleID, e.Scope(), e.Expires.Format(time.RFC3339), e.Reason))
			writeJSON(w, http.StatusCreated, ExceptionView{Exception: e, Scope: e.Scope(), Active: true})
			return nil
		})},
		{Method: "DELETE", Pattern: p + "/exceptions/{id}", Perm: auth.PermWrite, Action: "exception.delete", Handler: handle(func(w http.ResponseWriter, r *http.Request) error {
			id := r.PathValue("id")
			e, err := x.Store.GetException(r.Context(), id)
			if err != nil {
				return err
			}
			if err := x.Store.DeleteException(r.Context(), id); err != nil {
				return err
			}
			changed()
			Audit(r, "exception:"+id, fmt.Sprintf("rule %s, %s; had suppressed %d alerts", e.RuleID, e.Scope(), e.Suppressed))
			w.WriteHeader(http.StatusNoContent)
			return nil
		})},
		{Method: "GET", Pattern: p + "/incidents/{id}/exception-suggestions", Perm: auth.PermRead, Handler: handle(func(w http.ResponseWriter, r *http.Request) error {
			q := newQuery(r.URL, x.Clock.Now(), "days")
			days := 0
			if s := q.str("days"); s != "" {
				n, err := strconv.Atoi(s)
				if err != nil || n <= 0 || n > 3660 {
					q.fail(vigil.Errorf(vigil.EINVALID, "days %q: want a whole number of days from 1 to 3660", s))
				}
				days = n
			}
			if q.err != nil {
				return q.err
			}
			inc, err := x.Store.GetIncident(r.Context(), r.PathValue("id"))
			if err != nil {
				return err
			}
			ss, err := alert.SuggestExceptions(r.Context(), x.Store, inc, x.Clock.Now(), days, 0)
			if err != nil {
				return err
			}
			if ss == nil {
				ss = []alert.Suggestion{}
			}
			writeJSON(w, http.StatusOK, api.List[alert.Suggestion]{Items: ss})
			return nil
		})},
	}
}
