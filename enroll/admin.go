package enroll

import (
	"fmt"
	"net/http"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/agent/command"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/web"
)

// Paths of the administrative routes.
const (
	PathTokens        = "/api/v1/enroll-tokens"
	PathToken         = "/api/v1/enroll-tokens/{id}"
	PathRevokeDevice  = "/api/v1/devices/{id}/revoke"
	PathDeviceCommand = "/api/v1/devices/{id}/commands"
	PathCommand       = "/api/v1/commands/{id}"
)

// TokenRequest is the body of POST /api/v1/enroll-tokens.
type TokenRequest struct {
	Class string `json:"class"`
	TTL   string `json:"ttl"` // Go duration, default 1h
}

// TokenAnswer is the answer: the plaintext is shown once.
type TokenAnswer struct {
	Token   string    `json:"token"`
	ID      string    `json:"id"`
	Class   string    `json:"class"`
	Expires time.Time `json:"expires"`
}

// CommandRequest is the body of POST /api/v1/devices/{id}/commands.
type CommandRequest struct {
	Action string            `json:"action"`
	Params map[string]string `json:"params,omitempty"`
	TTL    string            `json:"ttl,omitempty"` // default 5m
}

// CommandAnswer is the answer of GET /api/v1/commands/{id}.
type CommandAnswer struct {
	Command command.Command `json:"command"`
	Result  *command.Result `json:"result,omitempty"`
}

// AdminRoutes returns the administrative routes to mount on the web
// server (web.Options.Extra): enrollment tokens (admin), device
// revocation (admin), issuing a command (write) and reading its result
// (read).
func (h *Handler) AdminRoutes() []web.Route {
	return []web.Route{
		{Method: "POST", Pattern: PathTokens, Perm: auth.PermAdmin, Handler: http.HandlerFunc(h.createToken), Action: "enroll_token.create"},
		{Method: "GET", Pattern: PathTokens, Perm: auth.PermAdmin, Handler: http.HandlerFunc(h.listTokens)},
		{Method: "DELETE", Pattern: PathToken, Perm: auth.PermAdmin, Handler: http.HandlerFunc(h.deleteToken), Action: "enroll_token.delete"},
		{Method: "POST", Pattern: PathRevokeDevice, Perm: auth.PermAdmin, Handler: http.HandlerFunc(h.revokeDevice), Action: "device.revoke"},
		{Method: "POST", Pattern: PathDeviceCommand, Perm: auth.PermWrite, Handler: http.HandlerFunc(h.sendCommand), Action: "command.send"},
		{Method: "GET", Pattern: PathCommand, Perm: auth.PermRead, Handler: http.HandlerFunc(h.getCommand)},
	}
}

func parseTTL(s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, vigil.Errorf(vigil.EINVALID, "ttl %q: want a duration such as 1h", s)
	}
	return d, nil
}

func (h *Handler) createToken(w http.ResponseWriter, r *http.Request) {
	var req TokenRequest
	if err := decodeBody(r, &req, true); err != nil {
		web.WriteError(w, r, h.log, err)
		return
	}
	ttl, err := parseTTL(req.TTL, time.Hour)
	if err != nil {
		web.WriteError(w, r, h.log, err)
		return
	}
	plain, tok, err := h.opts.Tokens.Create(req.Class, ttl)
	if err != nil {
		web.WriteError(w, r, h.log, err)
		return
	}
	web.Audit(r, "enroll-token:"+tok.ID, fmt.Sprintf("class=%q expires=%s", tok.Class, tok.Expires.Format(time.RFC3339)))
	writeJSON(w, http.StatusCreated, TokenAnswer{Token: plain, ID: tok.ID, Class: tok.Class, Expires: tok.Expires})
}

func (h *Handler) listTokens(w http.ResponseWriter, r *http.Request) {
	toks, err := h.opts.Tokens.List()
	if err != nil {
		web.WriteError(w, r, h.log, err)
		return
	}
	if toks == nil {
		toks = []Token{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": toks})
}

func (h *Handler) deleteToken(w http.ResponseWriter, r *http.Request) {
	web.Audit(r, "enroll-token:"+r.PathValue("id"), "")
	if err := h.opts.Tokens.Revoke(r.PathValue("id")); err != nil {
		web.WriteError(w, r, h.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) revokeDevice(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	web.Audit(r, "device:"+id, "")
	if err := h.opts.Revocations.RevokeDevice(id); err != nil {
		web.WriteError(w, r, h.log, err)
		return
	}
	h.log.Warn("device revoked", "device_id", id)
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) sendCommand(w http.ResponseWriter, r *http.Request) {
	var req CommandRequest
	if err := decodeBody(r, &req, true); err != nil {
		web.WriteError(w, r, h.log, err)
		return
	}
	ttl, err := parseTTL(req.TTL, DefaultCommandTTL)
	if err != nil {
		web.WriteError(w, r, h.log, err)
		return
	}
	web.Audit(r, "device:"+r.PathValue("id"), fmt.Sprintf("action=%q", req.Action))
	c, err := h.SendAs(web.Actor(r.Context()), r.PathValue("id"), req.Action, req.Params, ttl)
	if err != nil {
		web.WriteError(w, r, h.log, err)
		return
	}
	web.Audit(r, "device:"+c.DeviceID, fmt.Sprintf("action=%q command=%s", c.Action, c.ID))
	writeJSON(w, http.StatusCreated, CommandAnswer{Command: c})
}

func (h *Handler) getCommand(w http.ResponseWriter, r *http.Request) {
	c, res, done := h.Result(r.PathValue("id"))
	if c.ID == "" {
		web.WriteError(w, r, h.log, vigil.Errorf(vigil.ENOTFOUND, "no command %q", r.PathValue("id")))
		return
	}
	a := CommandAnswer{Command: c}
	if done {
		a.Result = &res
	}
	writeJSON(w, http.StatusOK, a)
}
