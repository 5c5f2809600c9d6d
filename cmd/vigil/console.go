package main

import (
	"context"
	"net/http"

	"github.com/vigil-iot/vigil/console"
	"github.com/vigil-iot/vigil/web"
)

// consoleRoutes are the API routes of the console's user accounts.
func (a *app) consoleRoutes() []web.Route {
	return console.UserRoutes(a.store, nil)
}

// withConsole serves the web console under "/" on the API's listener:
// the API's paths go to api, every other path to the console. Its live
// streams end when stop is done (shutdown).
func (a *app) withConsole(stop context.Context, api http.Handler) (http.Handler, error) {
	opts := console.Options{
		Store:    a.store,
		API:      api,
		Tokens:   a.tokens,
		Gatherer: a.registry,
		Done:     stop.Done(),
		Logger:   a.log,
	}
	if a.vuln != nil {
		opts.Findings = a.vuln
	}
	c, err := console.New(opts)
	if err != nil {
		return nil, err
	}
	go c.Warm(stop)
	return console.Mount(api, c), nil
}
