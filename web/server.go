package web

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/web/api"
)

// Paths of the endpoints that are not under the API prefix.
const (
	PathMetrics = "/metrics"
	PathHealthz = "/healthz"
	PathReadyz  = "/readyz"
	// PathAgentReport and PathBulkEvents are the ingest endpoints.
	PathAgentReport = api.Prefix + "/agent/report"
	PathBulkEvents  = api.Prefix + "/events"
)

// Options configures a Server.
type Options struct {
	// Store is what the read API reads. Required.
	Store store.Store
	// Tokens verifies bearer tokens and backs /api/v1/tokens. Required.
	Tokens auth.Store
	// AgentReport handles POST /api/v1/agent/report and BulkEvents handles
	// POST /api/v1/events, for callers with the ingest permission (roles
	// agent and admin). A nil handler leaves its route out. The caller's
	// token is in the request context (auth.FromContext).
	AgentReport http.Handler
	BulkEvents  http.Handler
	// Intel, when set, serves /api/v1/intel, /api/v1/vuln and
	// /api/v1/report/posture.
	Intel *Intel
	// Rules, when set, serves /api/v1/rules: list with counters (read),
	// reload and enable/disable (write).
	Rules RuleManager
	// Extra are more routes, registered and authorized like the built-in
	// ones.
	Extra []Route
	// Gatherer is what /metrics exposes; nil leaves /metrics out.
	Gatherer prometheus.Gatherer
	// MetricsAuth makes /metrics require a token with read permission.
	MetricsAuth bool
	// Ready reports whether the server can do its work (store and bus
	// reachable); /readyz answers 503 while it returns an error. Nil means
	// always ready.
	Ready func(context.Context) error
	// HealthWindow is how much health history device detail returns when
	// the request gives no since (default 1h).
	HealthWindow time.Duration
	// Registerer receives the server's request metrics (nil: not registered).
	Registerer prometheus.Registerer
	// Logger receives request logs (component=web is added).
	Logger *slog.Logger
	// Clock tells the time for default time windows and the
	// authentication throttle (default: system clock).
	Clock vigil.Clock
	// AuthThrottle limits failed authentications per client address.
	AuthThrottle AuthThrottle
}

// Route is one endpoint: a method and a ServeMux path pattern, the
// permission a caller needs, and the handler.
type Route struct {
	Method  string
	Pattern string // path pattern, e.g. "/api/v1/devices/{id}"
	// Perm is the permission a caller's role must hold. It must be set
	// unless Public is true.
	Perm auth.Permission
	// Public routes need no token (probes, metrics).
	Public  bool
	Handler http.Handler
	// Quiet routes log successful requests at debug level only (ingest,
	// probes, metrics: they are frequent).
	Quiet bool
	// Action names the audit record of a write route (see Audited), e.g.
	// "token.create". Empty: the action the handler gives (Server.audit),
	// else the method and pattern ("POST /api/v1/actions/{id}/approve").
	Action string
}

// Audited reports whether the server audits every request to rt that
// carries a valid token: every write route (any method but GET and HEAD),
// except the data path (routes that need only the ingest permission: the
// events they carry record their own provenance).
func Audited(rt Route) bool {
	return rt.Method != http.MethodGet && rt.Method != http.MethodHead && !rt.Public && rt.Perm != auth.PermIngest
}

// Server is Vigil's HTTP handler.
type Server struct {
	opts   Options
	log    *slog.Logger
	clock  vigil.Clock
	mux    *http.ServeMux
	routes []Route

	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	authFails *failLimiter // nil: no throttle
}

var _ http.Handler = (*Server)(nil)

// NewServer builds the server and registers every route.
func NewServer(opts Options) (*Server, error) {
	if opts.Store == nil {
		return nil, errors.New("cannot create web server: no store")
	}
	if opts.Tokens == nil {
		return nil, errors.New("cannot create web server: no token store")
	}
	if opts.HealthWindow <= 0 {
		opts.HealthWindow = time.Hour
	}
	s := &Server{opts: opts, mux: http.NewServeMux(), clock: opts.Clock, log: opts.Logger, authFails: newFailLimiter(opts.AuthThrottle)}
	if s.clock == nil {
		s.clock = vigil.SystemClock{}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "web")
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "vigil", Subsystem: "http", Name: "requests_total",
		Help: "HTTP requests answered, by route pattern and status code.",
	}, []string{"route", "code"})
	s.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "vigil", Subsystem: "http", Name: "request_duration_seconds",
		Help:    "Time to answer an HTTP request, by route pattern.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"route"})
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{s.requests, s.duration} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("cannot register web metrics: %w", err)
			}
		}
	}

	p := api.Prefix
	routes := []Route{
		{Method: "GET", Pattern: PathHealthz, Public: true, Quiet: true, Handler: http.HandlerFunc(s.healthz)},
		{Method: "GET", Pattern: PathReadyz, Public: true, Quiet: true, Handler: http.HandlerFunc(s.readyz)},

		{Method: "GET", Pattern: p + "/devices", Perm: auth.PermRead, Handler: s.handle(s.listDevices)},
		{Method: "GET", Pattern: p + "/devices/{id}", Perm: auth.PermRead, Handler: s.handle(s.getDevice)},
		{Method: "GET", Pattern: p + "/devices/{id}/commands", Perm: auth.PermRead, Handler: s.handle(s.deviceCommands)},
		{Method: "GET", Pattern: p + "/alerts", Perm: auth.PermRead, Handler: s.handle(s.listAlerts)},
		{Method: "GET", Pattern: p + "/alerts/{id}", Perm: auth.PermRead, Handler: s.handle(s.getAlert)},
		{Method: "GET", Pattern: p + "/incidents", Perm: auth.PermRead, Handler: s.handle(s.listIncidents)},
		{Method: "GET", Pattern: p + "/incidents/{id}", Perm: auth.PermRead, Handler: s.handle(s.getIncident)},
		{Method: "GET", Pattern: p + "/events", Perm: auth.PermRead, Handler: s.handle(s.listEvents)},
		{Method: "GET", Pattern: p + "/events/{id}", Perm: auth.PermRead, Handler: s.handle(s.getEvent)},

		{Method: "GET", Pattern: p + "/tokens", Perm: auth.PermAdmin, Handler: s.handle(s.listTokens)},
		{Method: "POST", Pattern: p + "/tokens", Perm: auth.PermAdmin, Handler: s.handle(s.createToken), Action: "token.create"},
		{Method: "DELETE", Pattern: p + "/tokens/{id}", Perm: auth.PermAdmin, Handler: s.handle(s.revokeToken), Action: "token.revoke"},
	}
	if opts.Gatherer != nil {
		r := Route{Method: "GET", Pattern: PathMetrics, Public: !opts.MetricsAuth, Quiet: true,
			Handler: promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{ErrorLog: slogPrinter{s.log}})}
		if opts.MetricsAuth {
			r.Perm = auth.PermRead
		}
		routes = append(routes, r)
	}
	if opts.AgentReport != nil {
		routes = append(routes, Route{Method: "POST", Pattern: PathAgentReport, Perm: auth.PermIngest, Quiet: true, Handler: opts.AgentReport})
	}
	if opts.BulkEvents != nil {
		routes = append(routes, Route{Method: "POST", Pattern: PathBulkEvents, Perm: auth.PermIngest, Quiet: true, Handler: opts.BulkEvents})
	}
	if opts.Rules != nil {
		routes = append(routes,
			Route{Method: "GET", Pattern: p + "/rules", Perm: auth.PermRead, Handler: s.handle(s.listRules)},
			Route{Method: "POST", Pattern: p + "/rules/reload", Perm: auth.PermWrite, Handler: s.handle(s.reloadRules), Action: "rules.reload"},
			Route{Method: "POST", Pattern: p + "/rules/enable", Perm: auth.PermWrite, Handler: s.handle(s.toggleRules(true)), Action: "rules.enable"},
			Route{Method: "POST", Pattern: p + "/rules/disable", Perm: auth.PermWrite, Handler: s.handle(s.toggleRules(false)), Action: "rules.disable"},
		)
	}
	if opts.Intel != nil {
		routes = append(routes, s.intelRoutes(opts.Intel)...)
	}
	routes = append(routes, opts.Extra...)
	for _, rt := range routes {
		if err := s.register(rt); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// register checks a route and mounts it behind logging, metrics and auth.
func (s *Server) register(rt Route) (err error) {
	if rt.Handler == nil || rt.Method == "" || !strings.HasPrefix(rt.Pattern, "/") {
		return fmt.Errorf("cannot register route %s %s: method, path pattern and handler are required", rt.Method, rt.Pattern)
	}
	if !rt.Public && !slices.Contains(auth.Permissions(), rt.Perm) {
		return fmt.Errorf("cannot register route %s %s: it is not public and needs a permission, got %q", rt.Method, rt.Pattern, rt.Perm)
	}
	if rt.Public && strings.HasPrefix(rt.Pattern, api.Prefix+"/") {
		return fmt.Errorf("cannot register route %s %s: API routes cannot be public", rt.Method, rt.Pattern)
	}
	defer func() {
		// ServeMux panics on conflicting patterns; report it as an error.
		if p := recover(); p != nil {
			err = fmt.Errorf("cannot register route %s %s: %v", rt.Method, rt.Pattern, p)
		}
	}()
	h := rt.Handler
	if !rt.Public {
		h = s.authorize(rt.Perm, h)
	}
	pattern := rt.Method + " " + rt.Pattern
	if Audited(rt) {
		h = s.audited(rt, pattern, h)
	}
	s.mux.Handle(pattern, s.observe(pattern, rt.Quiet, h))
	s.routes = append(s.routes, rt)
	return nil
}

// auditNote is what a write request's handler tells its audit record.
type auditNote struct{ action, object, detail string }

type auditKey struct{}

// Audit tells the audit record of a write request what it was done to
// (object, e.g. "device:cam-1") and how (detail; never a secret). Without
// it the record's object is the request path. A request that is not
// audited (a read) ignores it.
func Audit(r *http.Request, object, detail string) {
	if n, ok := r.Context().Value(auditKey{}).(*auditNote); ok {
		n.object, n.detail = object, detail
	}
}

// audited appends one audit record per request to a write route that
// carried a valid token, whatever its outcome: actor "token:<name>", the
// route's action, the object and detail the handler gave (Audit), and the
// outcome of the status (ok, denied, refused, failed). It sits between
// observe, whose recorder gives the status and token name, and authorize.
// Requests without a valid token leave no record (they cannot flood the
// trail); they are logged.
func (s *Server) audited(rt Route, pattern string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := &auditNote{}
		done := false
		defer func() {
			rec, ok := w.(*responseRecorder)
			if !ok || rec.who == "" {
				return
			}
			outcome := vigil.OutcomeOK
			switch st := rec.status; {
			case !done || st >= 500:
				outcome = vigil.OutcomeFailed
			case st == http.StatusUnauthorized || st == http.StatusForbidden:
				outcome = vigil.OutcomeDenied
			case st >= 400:
				outcome = vigil.OutcomeRefused
			}
			action := cmp.Or(rt.Action, n.action, pattern)
			ar := vigil.AuditRecord{Time: s.clock.Now().UTC(), Actor: cmp.Or(rec.actor, "token:"+rec.who), Action: action,
				Object: cmp.Or(n.object, r.URL.Path), Detail: n.detail, Outcome: outcome}
			if _, err := s.opts.Store.AppendAudit(context.WithoutCancel(r.Context()), ar); err != nil {
				s.log.Error("cannot append audit record", "action", action, "object", ar.Object, "err", err)
			}
		}()
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), auditKey{}, n)))
		done = true
	})
}

// Routes returns every registered route, in registration order.
func (s *Server) Routes() []Route {
	out := make([]Route, len(s.routes))
	copy(out, s.routes)
	return out
}

// ServeHTTP dispatches a request. Requests no route matches get a JSON 404
// or 405 instead of the mux's plain-text answers.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, pattern := s.mux.Handler(r)
	if pattern != "" {
		s.mux.ServeHTTP(w, r)
		return
	}
	// Let the mux decide between 404 and 405 (and set Allow), then answer
	// in JSON.
	rec := &headerRecorder{h: http.Header{}}
	h.ServeHTTP(rec, r)
	if allow := rec.h.Get("Allow"); allow != "" {
		w.Header().Set("Allow", allow)
	}
	status := rec.status
	if status == 0 || status < 400 {
		// A redirect (trailing slash, cleaned path): pass it on as is.
		for k, v := range rec.h {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.status)
		return
	}
	msg := fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path)
	if status == http.StatusMethodNotAllowed {
		msg = fmt.Sprintf("method %s not allowed on %s", r.Method, r.URL.Path)
	}
	s.requests.WithLabelValues("unmatched", fmt.Sprint(status)).Inc()
	s.log.Info("request", "method", r.Method, "path", r.URL.Path, "status", status, "remote", r.RemoteAddr)
	writeJSON(w, status, api.ErrorBody{Error: api.ErrorDetail{Code: codeOfStatus(status), Message: msg}})
}

// headerRecorder captures the status and headers a handler writes and
// drops the body.
type headerRecorder struct {
	h      http.Header
	status int
}

func (r *headerRecorder) Header() http.Header { return r.h }
func (r *headerRecorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}
func (r *headerRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return len(b), nil
}

// slogPrinter lets promhttp log through slog.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Error(fmt.Sprint(v...)) }

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, api.Health{Status: "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.opts.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if err := s.opts.Ready(ctx); err != nil {
			s.log.Warn("not ready", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, api.Health{Status: "not ready", Error: err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, api.Health{Status: "ok"})
}
