package console

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/vuln"
	"github.com/vigil-iot/vigil/vuln/scan"
	"github.com/vigil-iot/vigil/web/api"
)

//go:embed static templates
var assets embed.FS

// Defaults of Options.
const (
	DefaultIdleTimeout     = 30 * time.Minute
	DefaultAbsoluteTimeout = 12 * time.Hour
)

// Findings is what the console reads of the vulnerability scanner
// (vuln/scan.DB).
type Findings interface {
	Findings(f scan.Filter) []vuln.Finding
}

var _ Findings = (*scan.DB)(nil)

// Exposure is what the device page reads of how a device is reachable:
// its listening ports (vuln/scan.DB). When Options.Findings implements it
// the device page lists them.
type Exposure interface {
	Listeners(deviceID string) []scan.Listener
}

var _ Exposure = (*scan.DB)(nil)

// Options configures a Console.
type Options struct {
	// Store is what pages read. Required.
	Store store.Store
	// API is the REST API's handler (web.Server), which the console calls
	// in-process for every write and for the reads the store does not
	// answer (rules, intel, audit verification, tokens). Required.
	API http.Handler
	// Tokens verifies the API tokens people log in with. Required.
	Tokens auth.Store
	// Findings, when set, feeds the vulnerability columns and the posture.
	Findings Findings
	// Gatherer, when set, gives the ingest rate (vigil_store_events_stored_total).
	Gatherer prometheus.Gatherer
	// Clock tells the time of sessions and pages (default: system clock).
	Clock vigil.Clock
	// IdleTimeout ends a session unused for that long; AbsoluteTimeout
	// ends any session that old (defaults above).
	IdleTimeout, AbsoluteTimeout time.Duration
	// Done ends the live streams (server-sent events) when closed, so
	// that a shutdown does not wait for them.
	Done <-chan struct{}
	// LiveEvery is how often the live stream looks for changes (default 2s).
	LiveEvery time.Duration
	// Logger receives the console's logs (component=console is added).
	Logger *slog.Logger
}

// Console serves the web console. Build it with New.
type Console struct {
	opts  Options
	log   *slog.Logger
	clock vigil.Clock
	mux   *http.ServeMux
	pages map[string]*template.Template
	login *loginLimiter

	devMu      sync.Mutex
	devIndex   *deviceIndex
	devReading bool // a background read of the index is running

	rateMu   sync.Mutex
	samples  []rateSample
	verified verification

	campMu    sync.Mutex
	campaigns campaignCache

	// routes are the console's own routes with the permission each needs
	// (the permission walk test reads them).
	routes []Route
}

// Route is one console route: a method and a ServeMux pattern, and the
// permission its caller's role needs. A write route (POST) calls the API,
// which checks its own permission again and audits.
type Route struct {
	Method, Pattern string
	Perm            auth.Permission // "" for public routes (login, assets)
	handler         func(w http.ResponseWriter, r *http.Request, s *session) error
}

// New builds the console.
func New(opts Options) (*Console, error) {
	if opts.Store == nil || opts.API == nil || opts.Tokens == nil {
		return nil, errors.New("cannot create console: store, API and token store are required")
	}
	if opts.Clock == nil {
		opts.Clock = vigil.SystemClock{}
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.AbsoluteTimeout <= 0 {
		opts.AbsoluteTimeout = DefaultAbsoluteTimeout
	}
	if opts.LiveEvery <= 0 {
		opts.LiveEvery = 2 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Console{opts: opts, log: opts.Logger.With("component", "console"), clock: opts.Clock, mux: http.NewServeMux(),
		login: newLoginLimiter()}
	var err error
	if c.pages, err = parseTemplates(); err != nil {
		return nil, err
	}
	static, err := fs.Sub(assets, "static")
	if err != nil {
		return nil, err
	}
	c.mux.Handle("GET /static/", http.StripPrefix("/static/", staticHandler(static)))
	c.mux.HandleFunc("GET /login", c.loginPage)
	c.mux.HandleFunc("POST /login", c.loginSubmit)
	c.mux.HandleFunc("POST /logout", c.logout)
	for _, rt := range c.pageRoutes() {
		c.routes = append(c.routes, rt)
		c.mux.Handle(rt.Method+" "+rt.Pattern, c.authed(rt))
	}
	return c, nil
}

// Routes returns the console's authenticated routes.
func (c *Console) Routes() []Route { return append([]Route(nil), c.routes...) }

// ServeHTTP serves the console's pages, with the security headers on
// every answer.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	if r.TLS != nil {
		w.Header().Set("Strict-Transport-Security", "max-age=31536000")
	}
	if _, pattern := c.mux.Handler(r); pattern == "" {
		c.renderError(w, r, c.current(r), vigil.Errorf(vigil.ENOTFOUND, "no page %s %s", r.Method, r.URL.Path))
		return
	}
	c.mux.ServeHTTP(w, r) // sets the path values
}

// securityHeaders are sent with every console answer: a strict CSP (no
// inline script or style, nothing from elsewhere), no framing, no
// sniffing, no referrer.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "+
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

// Mount returns the handler of the whole listener: the API's paths
// (/api/..., /metrics, /healthz, /readyz) go to apiHandler, everything
// else to the console.
func Mount(apiHandler http.Handler, c *Console) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if p == api.Prefix || strings.HasPrefix(p, "/api/") || p == "/metrics" || p == "/healthz" || p == "/readyz" {
			apiHandler.ServeHTTP(w, r)
			return
		}
		c.ServeHTTP(w, r)
	})
}

// staticHandler serves the embedded assets with a long cache lifetime
// (they change only with the binary, and their URLs carry its version).
func staticHandler(fsys fs.FS) http.Handler {
	fh := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") || r.URL.Path == "" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=86400")
		fh.ServeHTTP(w, r)
	})
}

// ctxDone is the context of a live stream: the request's, ended early by
// Options.Done.
func (c *Console) ctxDone(r *http.Request) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(r.Context())
	if c.opts.Done != nil {
		go func() {
			select {
			case <-c.opts.Done:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	return ctx, cancel
}
