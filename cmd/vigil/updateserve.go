package main

import (
	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/web"
)

// updateRoutes are the update-artifact routes, on the store and the update
// key (data dir pki/update.key, never the command key).
func (a *app) updateRoutes() []web.Route {
	return web.UpdateRoutes(&web.Updates{Store: a.store, Key: a.updateKey, Clock: vigil.SystemClock{}, Logger: a.log.With("component", "update")})
}
