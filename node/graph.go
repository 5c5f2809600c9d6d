package node

import (
	"context"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/graph"
	"github.com/vigil-iot/vigil/investigate"
	"github.com/vigil-iot/vigil/vuln"
	"github.com/vigil-iot/vigil/vuln/scan"
	"github.com/vigil-iot/vigil/web"
)

// runGraph runs the graph stage (package graph) on the server's bus and
// store until ctx ends: its own consumer group, so that the event sink
// never waits for it.
func (a *Node) runGraph(ctx context.Context) error {
	st, err := graph.NewStage(a.bus, a.store, graph.Options{Logger: a.log, Registerer: a.registry})
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	// The graph keeps what events showed as long as the events are kept.
	g.Go(func() error {
		return graph.RunRetention(gctx, a.store, time.Duration(a.cfg.Retention), time.Hour, vigil.SystemClock{}, a.log)
	})
	g.Go(func() error { return st.Run(gctx) })
	return g.Wait()
}

// investigator answers the investigation routes and commands from the
// store and the vulnerability findings.
func (a *Node) investigator() *investigate.Investigator {
	opts := investigate.Options{Store: a.store, Logger: a.log}
	if a.vuln != nil {
		db := a.vuln
		opts.Findings = func(id string) []vuln.Finding { return db.Findings(scan.Filter{DeviceID: id}) }
	}
	return investigate.New(opts)
}

// investigationRoutes are the graph, blast radius, campaign and report
// routes (web.InvestigationRoutes).
func (a *Node) investigationRoutes() []web.Route {
	return web.InvestigationRoutes(web.Investigation{Investigator: a.investigator(), Logger: a.log})
}
