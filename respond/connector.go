package respond

import (
	"context"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
)

// Connector carries out actions of some types against the outside world:
// an agent, a broker, a gateway, a notification channel.
//
// Execute is called once per action, in its own goroutine, with a ctx
// whose deadline is the acknowledgement timeout. It returns when the
// target acknowledged the action and it is done (nil error), or when it
// failed. A non-zero Result.Acknowledged with an error means the target
// received the action but could not carry it out; a zero one means it
// never confirmed receipt (the ctx deadline makes the action timed_out).
// Action.Params holds the rendered step parameters only (Vigil's own
// "vigil." keys are removed). Execute must be safe for concurrent use and
// should be idempotent for one Action.ID: the engine may retry after a
// restart.
type Connector interface {
	Name() string
	Execute(ctx context.Context, a vigil.Action) (Result, error)
}

// Result is what a connector reports about an action it carried out.
type Result struct {
	// Acknowledged is when the target confirmed the action (zero: the
	// engine's clock when Execute returned without error).
	Acknowledged time.Time
	// Output is a short text stored in Action.Result.
	Output string
}

// Keys under which the engine keeps its own bookkeeping in Action.Params
// (vigil.Action has no fields for them). Connectors never see them.
const (
	MetaPrefix      = "vigil."
	MetaConnector   = "vigil.connector"
	MetaStep        = "vigil.step"
	MetaApprovals   = "vigil.approvals_required"
	MetaDeadline    = "vigil.approval_deadline"
	MetaHeld        = "vigil.held"
	MetaUndo        = "vigil.undo"
	MetaRollbackFP  = "vigil.rollback_on_false_positive"
	MetaContainment = "vigil.containment"
	MetaRollbackOf  = "vigil.rollback_of"
	MetaDeviceClass = "vigil.device_class"
)

// PublicParams returns a's parameters without the engine's "vigil." keys.
func PublicParams(a vigil.Action) map[string]string {
	out := make(map[string]string, len(a.Params))
	for k, v := range a.Params {
		if !strings.HasPrefix(k, MetaPrefix) {
			out[k] = v
		}
	}
	return out
}

func withMeta(params map[string]string, meta map[string]string) map[string]string {
	out := maps.Clone(params)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, meta)
	return out
}

// Info is the engine's bookkeeping on an action, for the API and CLI.
type Info struct {
	Connector         string    `json:"connector,omitempty"`
	Step              string    `json:"step,omitempty"`
	Held              string    `json:"held,omitempty"` // why it waits for approval
	ApprovalsRequired int       `json:"approvals_required,omitempty"`
	ApprovalDeadline  time.Time `json:"approval_deadline,omitzero"`
	RollbackOf        string    `json:"rollback_of,omitempty"`
	Undo              string    `json:"undo,omitempty"`
}

// InfoOf reads the engine's bookkeeping from an action's params.
func InfoOf(a vigil.Action) Info {
	p := a.Params
	in := Info{Connector: p[MetaConnector], Step: p[MetaStep], Held: p[MetaHeld], RollbackOf: p[MetaRollbackOf], Undo: p[MetaUndo]}
	in.ApprovalsRequired, _ = strconv.Atoi(p[MetaApprovals])
	in.ApprovalDeadline, _ = time.Parse(time.RFC3339Nano, p[MetaDeadline])
	return in
}
