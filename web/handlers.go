package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/web/api"
)

// maxJSONBody bounds the body of the small JSON requests the API takes.
const maxJSONBody = 64 << 10

// handle adapts a handler that returns an error.
func (s *Server) handle(f func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return ErrorHandler(s.log)(f)
}

// ErrorHandler returns the adapter of handlers that return an error: the
// error is answered with WriteError (logged on log, which may be nil).
// Route sets built outside a Server (hunting, exceptions, the console's
// API routes) use it.
func ErrorHandler(log *slog.Logger) func(f func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return func(f func(w http.ResponseWriter, r *http.Request) error) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := f(w, r); err != nil {
				WriteError(w, r, log, err)
			}
		})
	}
}

func list[T any](w http.ResponseWriter, items []T, next string, err error) error {
	if err != nil {
		return err
	}
	if items == nil {
		items = []T{}
	}
	writeJSON(w, http.StatusOK, api.List[T]{Items: items, NextCursor: next})
	return nil
}

func (s *Server) listDevices(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r.URL, s.clock.Now(), "class", "state", "tag", "limit", "cursor")
	f := store.DeviceFilter{Class: q.str("class"), State: vigil.DeviceState(q.str("state")), Tag: q.str("tag"), Page: q.page()}
	if q.err != nil {
		return q.err
	}
	items, next, err := s.opts.Store.ListDevices(r.Context(), f)
	return list(w, items, next, err)
}

func (s *Server) getDevice(w http.ResponseWriter, r *http.Request) error {
	now := s.clock.Now()
	q := newQuery(r.URL, now, "since", "until")
	since, until := q.time("since"), q.time("until")
	q.timeRange(since, until)
	if q.err != nil {
		return q.err
	}
	if since.IsZero() {
		since = now.Add(-s.opts.HealthWindow)
	}
	id := r.PathValue("id")
	d, err := s.opts.Store.GetDevice(r.Context(), id)
	if err != nil {
		return err
	}
	h, err := s.opts.Store.HealthHistory(r.Context(), id, since, until)
	if err != nil {
		return err
	}
	if h == nil {
		h = []vigil.Health{}
	}
	writeJSON(w, http.StatusOK, api.DeviceDetail{Device: d, HealthHistory: h})
	return nil
}

func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r.URL, s.clock.Now(), "device", "rule", "incident", "min_severity", "since", "until", "sort", "limit", "cursor")
	f := store.AlertFilter{
		DeviceID:    q.str("device"),
		RuleID:      q.str("rule"),
		IncidentID:  q.str("incident"),
		MinSeverity: q.severity("min_severity"),
		Since:       q.time("since"),
		Until:       q.time("until"),
		Sort:        q.str("sort"),
		Page:        q.page(),
	}
	q.sort(f.Sort)
	q.timeRange(f.Since, f.Until)
	if q.err != nil {
		return q.err
	}
	items, next, err := s.opts.Store.ListAlerts(r.Context(), f)
	return list(w, items, next, err)
}

func (s *Server) getAlert(w http.ResponseWriter, r *http.Request) error {
	if err := newQuery(r.URL, s.clock.Now()).err; err != nil {
		return err
	}
	a, err := s.opts.Store.GetAlert(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}

func (s *Server) listIncidents(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r.URL, s.clock.Now(), "status", "device", "updated_since", "sort", "limit", "cursor")
	f := store.IncidentFilter{
		Status:       vigil.IncidentStatus(q.str("status")),
		DeviceID:     q.str("device"),
		UpdatedSince: q.time("updated_since"),
		Sort:         q.str("sort"),
		Page:         q.page(),
	}
	q.sort(f.Sort)
	// The queue of open incidents is by priority unless asked otherwise.
	if f.Sort == "" && f.Status == vigil.IncidentOpen {
		f.Sort = store.SortPriority
	}
	switch f.Status {
	case "", vigil.IncidentOpen, vigil.IncidentContained, vigil.IncidentResolved, vigil.IncidentFalsePositive:
	default:
		q.fail(vigil.Errorf(vigil.EINVALID, "status %q: want open, contained, resolved or false_positive", f.Status))
	}
	if q.err != nil {
		return q.err
	}
	items, next, err := s.opts.Store.ListIncidents(r.Context(), f)
	if err != nil {
		return err
	}
	out := make([]api.Incident, len(items))
	for i, in := range items {
		out[i] = api.NewIncident(in)
	}
	return list(w, out, next, nil)
}

func (s *Server) getIncident(w http.ResponseWriter, r *http.Request) error {
	if err := newQuery(r.URL, s.clock.Now()).err; err != nil {
		return err
	}
	in, err := s.opts.Store.GetIncident(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.NewIncident(in))
	return nil
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r.URL, s.clock.Now(), "device", "kind", "since", "until", "limit", "cursor", "field.")
	f := store.EventFilter{
		DeviceID: q.str("device"),
		Kind:     q.str("kind"),
		Since:    q.time("since"),
		Until:    q.time("until"),
		Fields:   q.prefixed("field."),
		Page:     q.page(),
	}
	q.timeRange(f.Since, f.Until)
	if q.err != nil {
		return q.err
	}
	items, next, err := s.opts.Store.ListEvents(r.Context(), f)
	return list(w, items, next, err)
}

func (s *Server) getEvent(w http.ResponseWriter, r *http.Request) error {
	if err := newQuery(r.URL, s.clock.Now()).err; err != nil {
		return err
	}
	e, err := s.opts.Store.GetEvent(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, e)
	return nil
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) error {
	if err := newQuery(r.URL, s.clock.Now()).err; err != nil {
		return err
	}
	toks, err := s.opts.Tokens.List()
	return list(w, toks, "", err)
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) error {
	var req api.CreateTokenRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	role, err := auth.ParseRole(string(req.Role))
	if err != nil {
		return err
	}
	var o auth.CreateOptions
	if req.TTL != "" {
		if o.TTL, err = time.ParseDuration(req.TTL); err != nil || o.TTL <= 0 {
			return vigil.Errorf(vigil.EINVALID, "ttl %q: want a positive duration such as 720h", req.TTL)
		}
	}
	o.Devices = req.Devices
	plain, tok, err := s.opts.Tokens.CreateWith(req.Name, role, o)
	if err != nil {
		return err
	}
	detail := fmt.Sprintf("name=%q role=%s", tok.Name, tok.Role)
	if !tok.Expires.IsZero() {
		detail += " expires=" + tok.Expires.Format(time.RFC3339)
	}
	if len(tok.Devices) > 0 {
		detail += fmt.Sprintf(" devices=%q", tok.Devices)
	}
	s.audit(r, "token.create", "token:"+tok.ID, detail)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, api.CreatedToken{Secret: plain, Token: tok})
	return nil
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := s.opts.Tokens.Revoke(id); err != nil {
		return err
	}
	s.audit(r, "token.revoke", "token:"+id, "")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// audit appends a record of a change to the audit trail. A failure is
// logged: the change itself is already made.
func (s *Server) audit(r *http.Request, action, object, detail string) {
	if n, ok := r.Context().Value(auditKey{}).(*auditNote); ok { // the request's own record (audited)
		n.action, n.object, n.detail = action, object, detail
		return
	}
	rec := vigil.AuditRecord{Time: s.clock.Now().UTC(), Actor: Actor(r.Context()), Action: action, Object: object, Detail: detail}
	if _, err := s.opts.Store.AppendAudit(r.Context(), rec); err != nil {
		s.log.Error("cannot append audit record", "action", action, "object", object, "err", err)
	}
}

// decodeJSON reads a small JSON body strictly: one object, known fields only.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	return decodeJSONLimit(w, r, v, maxJSONBody)
}

// decodeJSONLimit is decodeJSON with a body limit of its own.
func decodeJSONLimit(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return vigil.Errorf(vigil.EINVALID, "content type %q: want application/json", ct)
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return vigil.Errorf(vigil.ETOOLARGE, "request body is over %d bytes", mb.Limit)
		}
		return vigil.Errorf(vigil.EINVALID, "cannot decode request body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return vigil.Errorf(vigil.EINVALID, "cannot decode request body: data after the JSON object")
	}
	return nil
}
