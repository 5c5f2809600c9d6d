package node

import (
	"context"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/detect/sigma"
	"github.com/vigil-iot/vigil/feeds"
	"github.com/vigil-iot/vigil/hunt"
	"github.com/vigil-iot/vigil/rules"
	"github.com/vigil-iot/vigil/web"
)

// huntState is vigil serve's hunting: the retro-hunt jobs (run in their
// own context, ended when the server stops) and the indicators already
// known, so that a feed's new ones are hunted for in stored history.
type huntState struct {
	retro  *hunt.Retro
	jobs   context.Context
	cancel context.CancelFunc

	mu    sync.Mutex
	known map[string]bool // feed|type|value; nil until the first load
}

// huntState returns the app's hunting state, made on first use.
func (a *Node) huntState() *huntState {
	a.huntOnce.Do(func() {
		jobs, cancel := context.WithCancel(context.Background())
		a.hunt = &huntState{jobs: jobs, cancel: cancel, retro: &hunt.Retro{Src: a.store, Store: a.store, Publish: a.bus.PublishAlerts, Log: a.log}}
	})
	return a.hunt
}

// builtinRules loads the built-in Sigma pack (with the configured mapping).
func (a *Node) builtinRules() (*sigma.RuleSet, error) {
	pack, err := fs.Sub(rules.Sigma, "sigma")
	if err != nil {
		return nil, fmt.Errorf("cannot read built-in sigma rules: %w", err)
	}
	var mapping *sigma.Config
	if a.cfg.SigmaMapping != "" {
		if mapping, err = sigma.LoadConfig(a.cfg.SigmaMapping); err != nil {
			return nil, err
		}
	}
	rs, errs := sigma.LoadSources([]sigma.Source{{Name: "builtin:sigma", FS: pack}}, mapping)
	if len(errs) > 0 {
		a.log.Warn("built-in sigma rules rejected for a retro-hunt", "component", "hunt", "errors", len(errs))
	}
	return rs, nil
}

// huntRoutes are the hunting and retro-hunt API routes of vigil serve.
func (a *Node) huntRoutes() []web.Route {
	hs := a.huntState()
	var mapping *sigma.Config
	if a.cfg.SigmaMapping != "" {
		var err error
		if mapping, err = sigma.LoadConfig(a.cfg.SigmaMapping); err != nil {
			a.log.Warn("rule tests use the default Sigma mapping", "component", "hunt", "err", err)
		}
	}
	rs := append(web.HuntRoutes(&web.Hunt{Src: a.store, Log: a.log}),
		web.RetrohuntRoutes(&web.Retrohunt{Retro: hs.retro, Builtin: a.builtinRules, Jobs: hs.jobs})...)
	rs = append(rs, web.SavedQueryRoutes(web.SavedQueriesAPI{Store: a.store, Logger: a.log})...)
	return append(rs, web.RuleTestRoutes(&web.RuleTest{Store: a.store, Config: mapping, Logger: a.log})...)
}

// runHunt seals hunt segments from stored events until ctx ends, then
// stops the retro-hunt jobs.
func (a *Node) runHunt(ctx context.Context) error {
	hs := a.huntState()
	err := a.runSingleton(ctx, jobSealer, func(ctx context.Context) error {
		(&hunt.Sealer{Src: a.store, Log: a.log}).Run(ctx)
		return nil
	})
	hs.cancel()
	hs.retro.Wait()
	return err
}

// onIndicators wraps the intel catalog's change callback: after the
// first load (the catalog opening), the indicators a change adds are
// checked against the events of the last retro_intel (a retro-hunt).
func (a *Node) onIndicators(load func([]feeds.Indicator)) func([]feeds.Indicator) {
	return func(ins []feeds.Indicator) {
		load(ins)
		hs := a.huntState()
		hs.mu.Lock()
		first := hs.known == nil
		known := make(map[string]bool, len(ins))
		var fresh []feeds.Indicator
		names := map[string]bool{}
		for _, in := range ins {
			k := in.Feed + "|" + string(in.Type) + "|" + in.Value
			known[k] = true
			if !first && !hs.known[k] {
				fresh = append(fresh, in)
				names[in.Feed] = true
			}
		}
		hs.known = known
		hs.mu.Unlock()
		window := time.Duration(a.cfg.RetroIntel)
		if len(fresh) == 0 || window <= 0 {
			return
		}
		var src string
		for n := range names {
			if src != "" {
				src += ","
			}
			src += n
		}
		now := vigil.SystemClock{}.Now()
		id, err := hs.retro.Start(hs.jobs, hunt.RetroSpec{Intel: fresh, IndicatorSource: src, Since: now.Add(-window)})
		if err != nil {
			a.log.Warn("cannot start the retro-hunt of new indicators", "component", "hunt", "err", err)
			return
		}
		a.log.Info("retro-hunt of new indicators started", "component", "hunt", "job", id, "indicators", len(fresh), "feeds", src, "since", now.Add(-window).Format(time.RFC3339))
	}
}
