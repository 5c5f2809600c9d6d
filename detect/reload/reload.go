// Package reload keeps the online Sigma detector's rules current: it loads
// the rule sources, reloads them when a rule file changes or when an
// operator asks, and keeps the rules an operator enabled or disabled (by id
// or tag) that way across reloads.
//
// It owns no matching: compiling and evaluating rules is detect/sigma's.
// A reload that rejects some rules still swaps in the rules that compiled,
// and reports the rejected ones with file, line and reason.
package reload

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil/detect/sigma"
)

// Manager owns the rule set of one sigma.Detector. It is safe for
// concurrent use.
type Manager struct {
	det  *sigma.Detector
	srcs []sigma.Source
	dirs []string
	cfg  *sigma.Config
	log  *slog.Logger

	mu        sync.Mutex
	overrides []override // in the order given; later ones win
	rejected  []sigma.FileError
	loaded    time.Time
	print     [sha256.Size]byte

	reloads *prometheus.CounterVec
}

type override struct {
	selector string
	on       bool
}

// Options configure a Manager.
type Options struct {
	// Sources are fixed rule trees (the built-in pack); Dirs are rule
	// directories on disk, loaded after them and watched for changes.
	Sources []sigma.Source
	Dirs    []string
	// Config is the mapping config (nil: sigma.DefaultConfig()).
	Config     *sigma.Config
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Result is the outcome of a load.
type Result struct {
	Compiled int               `json:"compiled"`
	Rejected []sigma.FileError `json:"rejected"`
	Loaded   time.Time         `json:"loaded"`
}

// Load compiles every source and returns the rule set with the load's
// result, for the first detector. It does not need a Manager.
func Load(opts Options) (*sigma.RuleSet, Result) {
	cfg := opts.Config
	if cfg == nil {
		cfg = sigma.DefaultConfig()
	}
	srcs := append([]sigma.Source(nil), opts.Sources...)
	for _, d := range opts.Dirs {
		srcs = append(srcs, sigma.Source{Name: d, FS: os.DirFS(d)})
	}
	rs, errs := sigma.LoadSources(srcs, cfg)
	return rs, Result{Compiled: rs.Compiled(), Rejected: errs, Loaded: time.Now().UTC()}
}

// New returns a manager of det, whose current rules were loaded from opts
// with result first.
func New(det *sigma.Detector, opts Options, first Result) *Manager {
	m := &Manager{det: det, srcs: opts.Sources, dirs: opts.Dirs, cfg: opts.Config, log: opts.Logger,
		rejected: first.Rejected, loaded: first.Loaded}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	m.log = m.log.With("component", "rules")
	m.print = fingerprint(m.dirs)
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_rules_reloads_total", Help: "Rule reloads, by outcome (ok: every rule compiled; partial: some rejected).",
	}, []string{"outcome"})
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(m.reloads)
	}
	return m
}

// Reload compiles the sources again, applies the enable/disable overrides
// and swaps the new rules into the detector. Correlation windows and rule
// counters start afresh.
func (m *Manager) Reload() Result {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reloadLocked()
}

func (m *Manager) reloadLocked() Result {
	rs, res := Load(Options{Sources: m.srcs, Dirs: m.dirs, Config: m.cfg})
	for _, o := range m.overrides {
		rs.SetEnabled(o.selector, o.on)
	}
	m.det.Swap(rs)
	m.rejected, m.loaded, m.print = res.Rejected, res.Loaded, fingerprint(m.dirs)
	outcome := "ok"
	if len(res.Rejected) > 0 {
		outcome = "partial"
	}
	m.reloads.WithLabelValues(outcome).Inc()
	for _, e := range res.Rejected {
		m.log.Error("sigma rule rejected", "err", e)
	}
	m.log.Info("rules reloaded", "compiled", res.Compiled, "rejected", len(res.Rejected))
	return res
}

// Last returns the result of the latest load.
func (m *Manager) Last() Result {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Result{Compiled: m.det.RuleSet().Compiled(), Rejected: m.rejected, Loaded: m.loaded}
}

// SetEnabled enables or disables the rules whose id, name or tag equals
// selector, now and after every later reload, and returns how many rules
// it changed now.
func (m *Manager) SetEnabled(selector string, on bool) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.overrides = append(m.overrides, override{selector, on})
	return m.det.RuleSet().SetEnabled(selector, on)
}

// RuleInfo is one rule as the API lists it.
type RuleInfo struct {
	ID        string   `json:"id"`
	Title     string   `json:"title"`
	Level     string   `json:"level,omitempty"`
	Tags      []string `json:"tags,omitempty"`
	Enabled   bool     `json:"enabled"`
	Matches   uint64   `json:"matches"`
	Evals     uint64   `json:"evals"`
	EvalNanos uint64   `json:"eval_nanos"`
}

// Rules lists the detection rules with their counters, by id.
func (m *Manager) Rules() []RuleInfo {
	rs := m.det.RuleSet()
	stats := map[string]sigma.RuleStats{}
	for _, s := range rs.Stats() {
		stats[s.ID] = s
	}
	out := make([]RuleInfo, 0, len(rs.Rules)+len(rs.Correlations))
	for _, list := range [][]*sigma.Rule{rs.Rules, rs.Correlations} {
		for _, r := range list {
			id := r.ID
			if id == "" {
				id = r.Name
			}
			s := stats[id]
			out = append(out, RuleInfo{ID: id, Title: r.Title, Level: r.Level, Tags: r.Tags, Enabled: r.Enabled(),
				Matches: s.Matches, Evals: s.Evals, EvalNanos: s.EvalNanos})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Watch reloads whenever a file under the watched directories changes
// (is added, removed, resized or touched), checking every interval, until
// ctx ends. It returns nil then.
func (m *Manager) Watch(ctx context.Context, every time.Duration) error {
	if len(m.dirs) == 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		m.mu.Lock()
		if fingerprint(m.dirs) != m.print {
			m.log.Info("rule files changed, reloading")
			m.reloadLocked()
		}
		m.mu.Unlock()
	}
}

// fingerprint hashes the name, size and modification time of every rule
// file under dirs.
func fingerprint(dirs []string) [sha256.Size]byte {
	h := sha256.New()
	var b [8]byte
	for _, d := range dirs {
		_ = filepath.WalkDir(d, func(p string, de fs.DirEntry, err error) error {
			if err != nil || de.IsDir() {
				return nil
			}
			if ext := filepath.Ext(p); ext != ".yml" && ext != ".yaml" {
				return nil
			}
			fi, err := de.Info()
			if err != nil {
				return nil
			}
			h.Write([]byte(p))
			binary.BigEndian.PutUint64(b[:], uint64(fi.Size()))
			h.Write(b[:])
			binary.BigEndian.PutUint64(b[:], uint64(fi.ModTime().UnixNano()))
			h.Write(b[:])
			return nil
		})
	}
	var out [sha256.Size]byte
	copy(out[:], h.Sum(nil))
	return out
}
