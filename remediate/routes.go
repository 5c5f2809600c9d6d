package remediate

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/ingest/httpin"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/web"
	"github.com/vigil-iot/vigil/web/api"
)

// Paths of the plan routes and of the device artifact download.
const (
	PathPlans         = api.Prefix + "/update/plans"
	PathPlan          = api.Prefix + "/update/plans/{id}"
	PathAgentArtifact = api.Prefix + "/agent/artifacts/"
)

// PlanView is a plan as the API shows it, with its time to remediate.
type PlanView struct {
	vigil.UpdatePlan
	// Open and Closed count its findings; TTR is the mean time to
	// remediate of the closed ones, in seconds.
	Open   int     `json:"open"`
	Closed int     `json:"closed"`
	TTR    float64 `json:"ttr_s,omitempty"`
}

// View returns the API view of a plan.
func View(p vigil.UpdatePlan) PlanView {
	v := PlanView{UpdatePlan: p}
	var sum time.Duration
	for _, f := range p.Findings {
		if f.Closed.IsZero() {
			v.Open++
			continue
		}
		v.Closed++
		sum += f.TimeToRemediate()
	}
	if v.Closed > 0 {
		v.TTR = (sum / time.Duration(v.Closed)).Seconds()
	}
	return v
}

// HaltRequest is the optional body of POST /api/v1/update/plans/{id}/halt.
type HaltRequest struct {
	Reason string `json:"reason"`
}

// Routes are the plan API, for web.Options.Extra:
//
//	GET  /api/v1/update/plans[?state=S]       (read)  api.List[PlanView], oldest first
//	GET  /api/v1/update/plans/{id}            (read)  PlanView
//	POST /api/v1/update/plans/{id}/approve    (write, audited update_plan.approve)
//	POST /api/v1/update/plans/{id}/halt       (write, audited update_plan.halt) {"reason": "..."} optional
func (e *Engine) Routes() []web.Route {
	h := web.ErrorHandler(e.log)
	return []web.Route{
		{Method: "GET", Pattern: PathPlans, Perm: auth.PermRead, Handler: h(e.listPlans)},
		{Method: "GET", Pattern: PathPlan, Perm: auth.PermRead, Handler: h(e.getPlan)},
		{Method: "POST", Pattern: PathPlan + "/approve", Perm: auth.PermWrite, Action: AuditApprove, Handler: h(e.approvePlan)},
		{Method: "POST", Pattern: PathPlan + "/halt", Perm: auth.PermWrite, Action: AuditHalt, Handler: h(e.haltPlan)},
	}
}

func (e *Engine) listPlans(w http.ResponseWriter, r *http.Request) error {
	var states []string
	if s := r.URL.Query().Get("state"); s != "" {
		if !slices.Contains(store.PlanStates, s) {
			return vigil.Errorf(vigil.EINVALID, "unknown plan state %q", s)
		}
		states = append(states, s)
	}
	ps, err := e.o.Store.ListUpdatePlans(r.Context(), states...)
	if err != nil {
		return err
	}
	out := api.List[PlanView]{Items: make([]PlanView, 0, len(ps))}
	for _, p := range ps {
		out.Items = append(out.Items, View(p))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (e *Engine) getPlan(w http.ResponseWriter, r *http.Request) error {
	p, err := e.o.Store.GetUpdatePlan(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, View(p))
}

func caller(r *http.Request) (string, error) {
	t, ok := auth.FromContext(r.Context())
	if !ok || t.Name == "" {
		return "", vigil.Errorf(vigil.EUNAUTHORIZED, "approving or halting a plan needs a named caller")
	}
	return t.Name, nil
}

func (e *Engine) approvePlan(w http.ResponseWriter, r *http.Request) error {
	user, err := caller(r)
	if err != nil {
		return err
	}
	p, err := e.Approve(r.Context(), r.PathValue("id"), user)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, View(p))
}

func (e *Engine) haltPlan(w http.ResponseWriter, r *http.Request) error {
	user, err := caller(r)
	if err != nil {
		return err
	}
	var req HaltRequest
	b, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		return vigil.Errorf(vigil.EINVALID, "cannot read body: %v", err)
	}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &req); err != nil {
			return vigil.Errorf(vigil.EINVALID, "cannot decode body: %v", err)
		}
	}
	p, err := e.Halt(r.Context(), r.PathValue("id"), user, req.Reason)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, View(p))
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
	return nil
}

// DeliveryStore is what the artifact download reads.
type DeliveryStore interface {
	GetArtifact(ctx context.Context, id string) (vigil.Artifact, error)
	ArtifactData(ctx context.Context, id string) ([]byte, error)
	GetDevice(ctx context.Context, id string) (vigil.Device, error)
	ListUpdatePlans(ctx context.Context, states ...string) ([]vigil.UpdatePlan, error)
}

// Delivery serves update artifacts to agents: GET
// /api/v1/agent/artifacts/{id} behind the device authentication of the
// mutual-TLS channel (the device id in the request context, from
// httpin.WithDevice). An enrolled device may download an artifact that a
// running plan targets it with, or one made for its class and model;
// any other request is EFORBIDDEN (ENOTFOUND for no artifact), so one
// device's certificate does not fetch every firmware image.
type Delivery struct {
	Store  DeliveryStore
	Logger *slog.Logger
}

// ServeHTTP serves one artifact's bytes.
func (d *Delivery) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := d.serve(w, r); err != nil {
		log.Info("artifact download refused", "path", r.URL.Path, "err", err)
		web.WriteError(w, r, log, err)
	}
}

func (d *Delivery) serve(w http.ResponseWriter, r *http.Request) error {
	dev, ok := httpin.DeviceFrom(r.Context())
	if !ok || dev == "" {
		return vigil.Errorf(vigil.EUNAUTHORIZED, "artifacts are for enrolled devices over mutual TLS")
	}
	if r.Method != http.MethodGet {
		return vigil.Errorf(vigil.EINVALID, "method %s: want GET", r.Method)
	}
	id := r.URL.Path[len(PathAgentArtifact):]
	a, err := d.Store.GetArtifact(r.Context(), id)
	if err != nil {
		return err
	}
	device, err := d.Store.GetDevice(r.Context(), dev)
	if err != nil || device.Enrolled.IsZero() {
		return vigil.Errorf(vigil.EFORBIDDEN, "device %s is not enrolled", dev)
	}
	if !fits(a, device) && !d.targeted(r.Context(), a.ID, dev) {
		return vigil.Errorf(vigil.EFORBIDDEN, "artifact %s is not for device %s (class %q, model %q) and no plan sends it there", a.ID, dev, device.Class, device.Model)
	}
	data, err := d.Store.ArtifactData(r.Context(), a.ID)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.Header().Set("X-Vigil-Artifact-Sha256", a.SHA256)
	_, _ = w.Write(data)
	return nil
}

// targeted reports whether a running plan sends artifact id to device.
func (d *Delivery) targeted(ctx context.Context, id, device string) bool {
	ps, err := d.Store.ListUpdatePlans(ctx, vigil.PlanRunning)
	if err != nil {
		return false
	}
	for _, p := range ps {
		if p.ArtifactID != id {
			continue
		}
		for _, w := range p.Waves {
			for _, t := range w.Targets {
				if t.DeviceID == device {
					return true
				}
			}
		}
	}
	return false
}
