package main

import (
	"context"

	"github.com/vigil-iot/vigil/hunt"
	"github.com/vigil-iot/vigil/web"
)

// huntRoutes are the hunting API routes of vigil serve.
func (a *app) huntRoutes() []web.Route {
	return web.HuntRoutes(&web.Hunt{Src: a.store, Log: a.log})
}

// runHunt seals hunt segments from stored events until ctx ends.
func (a *app) runHunt(ctx context.Context) error {
	(&hunt.Sealer{Src: a.store, Log: a.log}).Run(ctx)
	return nil
}
