package node

import (
	"context"
	"encoding/json"
	"io"
	"net/http"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/console"
	"github.com/vigil-iot/vigil/respond"
	"github.com/vigil-iot/vigil/web"
	"github.com/vigil-iot/vigil/web/api"
)

// consoleRoutes are the API routes the console adds: the users' accounts,
// and the manual isolation of a device (the console's "isolate" button).
func (a *Node) consoleRoutes() []web.Route {
	rs := console.UserRoutes(a.store, nil)
	if a.respond != nil {
		rs = append(rs, web.Route{Method: "POST", Pattern: api.Prefix + "/devices/{id}/isolate", Perm: auth.PermWrite,
			Action: "device.isolate", Handler: http.HandlerFunc(a.isolateDevice)})
	}
	return rs
}

// isolateRequest is the optional body of POST /api/v1/devices/{id}/isolate.
type isolateRequest struct {
	IncidentID string `json:"incident_id"`
}

// isolateDevice asks the response engine for an isolation of the device,
// held for approval (respond.Engine.Request), and answers the action.
func (a *Node) isolateDevice(w http.ResponseWriter, r *http.Request) {
	var req isolateRequest
	b, err := io.ReadAll(io.LimitReader(r.Body, 8<<10))
	if err == nil && len(b) > 0 {
		err = json.Unmarshal(b, &req)
	}
	if err != nil {
		web.WriteError(w, r, a.log, vigil.Errorf(vigil.EINVALID, "cannot decode body: %v", err))
		return
	}
	tok, _ := auth.FromContext(r.Context())
	id := r.PathValue("id")
	web.Audit(r, "device:"+id, "incident="+req.IncidentID)
	act, err := a.respond.engine.Request(r.Context(), "isolate", id, req.IncidentID, tok.Name)
	if err != nil {
		web.WriteError(w, r, a.log, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(respond.View(act))
}

// withConsole serves the web console under "/" on the API's listener:
// the API's paths go to api, every other path to the console. Its live
// streams end when stop is done (shutdown).
func (a *Node) withConsole(stop context.Context, api http.Handler) (http.Handler, error) {
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
