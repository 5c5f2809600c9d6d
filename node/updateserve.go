package node

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/internal/egress"
	"github.com/vigil-iot/vigil/remediate"
	"github.com/vigil-iot/vigil/respond/playbook"
	"github.com/vigil-iot/vigil/update"
	"github.com/vigil-iot/vigil/update/repo"
	"github.com/vigil-iot/vigil/vuln"
	"github.com/vigil-iot/vigil/vuln/scan"
	"github.com/vigil-iot/vigil/web"
)

// UpdateConfig is the update section of the server's configuration:
//
//	update:
//	  auto:              # when a plan runs without approval (default: KEV and exposed)
//	    - {kev: true, exposed: true}
//	  canary: 0.2        # share of a cohort in the first wave
//	  wave_timeout: 30m  # a device's time to report success, the new version and normal health
//	  tick: 10s          # how often the plan engine runs
//
// An empty auto list ("auto: []") makes every plan wait for approval.
type UpdateConfig struct {
	Auto        *[]AutoCondition `yaml:"auto"`
	Canary      float64          `yaml:"canary"`
	WaveTimeout Duration         `yaml:"wave_timeout"`
	Tick        Duration         `yaml:"tick"`
	MaxCPU      float64          `yaml:"max_cpu"`
	MaxMemory   float64          `yaml:"max_memory"`
	// Settle is how long an updated device is watched (its alerts, its
	// health against its learned normal) before it passes.
	Settle Duration `yaml:"settle"`
	// Repositories are read by one node of a cluster at a time; their new
	// artifacts are stored signed with the update key, like uploads.
	Repositories []RepositoryConfig `yaml:"repositories"`
}

// RepositoryConfig is one entry of update.repositories: the URL of an
// index in Vigil's format (docs/response.md), https or http to a loopback
// address, fetched through the outbound policy (outbound.allow).
type RepositoryConfig struct {
	Name     string   `yaml:"name"`
	URL      string   `yaml:"url"`
	Interval Duration `yaml:"interval"`
	Products []string `yaml:"products"`
}

// validateRepositories checks update.repositories: a unique name (one
// word), an https URL (http only to a loopback address, for tests and a
// local mirror), an interval of a minute or more (0: an hour), products
// as an upload has them.
func (c UpdateConfig) validateRepositories() error {
	seen := map[string]bool{}
	for i, r := range c.Repositories {
		at := fmt.Sprintf("update.repositories[%d]", i)
		if !update.ValidLabel(r.Name) {
			return fmt.Errorf("%s.name: %q: want one word of 1 to 128 printable characters", at, r.Name)
		}
		if seen[r.Name] {
			return fmt.Errorf("%s.name: %q is there twice", at, r.Name)
		}
		seen[r.Name] = true
		u, err := url.Parse(r.URL)
		if err != nil || u.Host == "" {
			return fmt.Errorf("%s.url: %q is not an absolute URL", at, egress.Redact(r.URL))
		}
		switch u.Scheme {
		case "https":
		case "http":
			if ip, err := netip.ParseAddr(u.Hostname()); u.Hostname() != "localhost" && (err != nil || !ip.IsLoopback()) {
				return fmt.Errorf("%s.url: %s: http only to a loopback address; use https", at, egress.Redact(r.URL))
			}
		default:
			return fmt.Errorf("%s.url: %s: want https", at, egress.Redact(r.URL))
		}
		if r.Interval != 0 && time.Duration(r.Interval) < time.Minute {
			return fmt.Errorf("%s.interval: %s is under a minute", at, time.Duration(r.Interval))
		}
		for _, p := range r.Products {
			if !update.ValidLabel(p) {
				return fmt.Errorf("%s.products: %q: want one word of 1 to 128 printable characters", at, p)
			}
		}
	}
	return nil
}

// validate checks what remediate.New would refuse, so that a mistake
// stops the server instead of disabling update plans.
func (c UpdateConfig) validate() error {
	wt := time.Duration(c.WaveTimeout)
	if wt <= 0 {
		wt = 30 * time.Minute // remediate's default
	}
	if c.Settle > 0 && time.Duration(c.Settle) >= wt {
		return fmt.Errorf("update.settle: %s is not shorter than update.wave_timeout %s", time.Duration(c.Settle), wt)
	}
	return c.validateRepositories()
}

// AutoCondition is when an update plan starts without approval.
type AutoCondition struct {
	KEV     bool    `yaml:"kev"`
	Exposed bool    `yaml:"exposed"`
	MinCVSS float64 `yaml:"min_cvss"`
}

// updateRoutes are the update-artifact routes, on the store and the update
// key (data dir pki/update.key, never the command key), and the plan
// routes.
func (a *Node) updateRoutes() []web.Route {
	rs := web.UpdateRoutes(&web.Updates{Store: a.store, Key: a.updateKey, Clock: vigil.SystemClock{}, Logger: a.log.With("component", "update")})
	rs = append(rs, a.updateRepos().Routes()...)
	if e := a.remediationEngine(); e != nil {
		rs = append(rs, e.Routes()...)
	}
	return rs
}

// updateRepos builds the repository fetcher once: the configured
// repositories, fetched with the outbound policy's client (as the feeds
// are), their artifacts signed with the update key.
func (a *Node) updateRepos() *repo.Fetcher {
	if a.repos != nil {
		return a.repos
	}
	var rs []repo.Repository
	for _, r := range a.cfg.Update.Repositories {
		rs = append(rs, repo.Repository{Name: r.Name, URL: r.URL, Interval: time.Duration(r.Interval), Products: r.Products})
	}
	a.repos = &repo.Fetcher{Repositories: rs, Store: a.store, Key: a.updateKey,
		HTTP:  a.cfg.egress().Client(10 * time.Minute), // an artifact is at most 64 MiB
		Clock: vigil.SystemClock{}, Logger: a.log.With("component", "update-repo")}
	if rec := a.auditRecorder(); rec != nil {
		a.repos.Audit = rec
	}
	return a.repos
}

// runUpdateRepos reads the repositories until ctx ends, on one node of a
// cluster at a time (two would download each artifact twice).
func (a *Node) runUpdateRepos(ctx context.Context) error {
	if len(a.cfg.Update.Repositories) == 0 {
		return nil
	}
	f := a.updateRepos()
	return a.runSingleton(ctx, jobUpdateRepos, f.Run)
}

// remediationEngine builds the plan engine once (nil when it cannot be).
func (a *Node) remediationEngine() *remediate.Engine {
	if a.remediate != nil || a.enroll == nil || a.vuln == nil {
		return a.remediate
	}
	cfg := a.cfg.Update
	var auto []remediate.Condition
	if cfg.Auto != nil {
		auto = []remediate.Condition{}
		for _, c := range *cfg.Auto {
			auto = append(auto, remediate.Condition{KEV: c.KEV, Exposed: c.Exposed, MinCVSS: c.MinCVSS})
		}
	}
	guards := playbook.Guards{MaxActions: a.cfg.Response.MaxActions, Window: time.Duration(a.cfg.Response.Window)}
	if guards.MaxActions == 0 {
		guards.MaxActions = 20
	}
	if guards.Window == 0 {
		guards.Window = 10 * time.Minute
	}
	var learned remediate.Baselines
	if a.baseline != nil {
		learned = a.baseline.det
	}
	e, err := remediate.New(remediate.Options{
		Store:       a.store,
		Commands:    a.enroll,
		Findings:    func() []vuln.Finding { return a.vuln.Findings(scan.Filter{}) },
		Audit:       a.auditRecorder(),
		Alert:       a.vulnAlerts.add,
		Auto:        auto,
		Guards:      guards,
		Canary:      cfg.Canary,
		WaveTimeout: time.Duration(cfg.WaveTimeout),
		Healthy:     remediate.HealthBelow(cmpOr0(cfg.MaxCPU, 95), cmpOr0(cfg.MaxMemory, 95)),
		Alerts:      a.store,
		Baselines:   learned,
		Settle:      time.Duration(cfg.Settle),
		Clock:       vigil.SystemClock{},
		Logger:      a.log,
	})
	if err != nil {
		a.log.Error("update plans disabled", "err", err)
		return nil
	}
	a.remediate = e
	return e
}

// runRemediation ticks the plan engine until ctx ends.
func (a *Node) runRemediation(ctx context.Context) error {
	e := a.remediationEngine()
	if e == nil {
		return nil
	}
	tick := time.Duration(a.cfg.Update.Tick)
	if tick <= 0 {
		tick = 10 * time.Second
	}
	// One node of a cluster at a time proposes plans and advances them:
	// two would propose a plan twice and send a wave's updates twice.
	return a.runSingleton(ctx, jobUpdatePlans, func(ctx context.Context) error { return e.Run(ctx, tick) })
}

// withArtifactDelivery serves GET /api/v1/agent/artifacts/{id} to devices
// authenticated by their client certificate (enroll's RequireDevice) and
// passes every other request to next.
func (a *Node) withArtifactDelivery(next http.Handler) http.Handler {
	d := a.enroll.RequireDevice(&remediate.Delivery{Store: a.store, Logger: a.log.With("component", "update")})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, remediate.PathAgentArtifact) && r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			d.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func cmpOr0(v, def float64) float64 {
	if v <= 0 {
		return def
	}
	return v
}
