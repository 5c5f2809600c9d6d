package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// Record actions Vigil writes. Others are accepted as they are.
const (
	ActionCreate         = "action.create"
	ActionApprove        = "action.approve"
	ActionDeny           = "action.deny"
	ActionTransition     = "action.transition"
	ActionDryRun         = "action.dry_run"
	ActionGuard          = "action.guard"
	PlaybookLoad         = "playbook.load"
	PlaybookChange       = "playbook.change"
	ConfigChange         = "config.change"
	IncidentContainedAct = "incident.contain"
)

// Recorder appends typed records to the audit trail. It is safe for
// concurrent use: the store serialises appends.
type Recorder struct {
	st    store.Audit
	clock vigil.Clock
	log   *slog.Logger
}

// NewRecorder returns a Recorder on st. A nil clock is the system clock; a
// nil logger discards.
func NewRecorder(st store.Audit, clock vigil.Clock, log *slog.Logger) *Recorder {
	if clock == nil {
		clock = vigil.SystemClock{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Recorder{st: st, clock: clock, log: log.With("component", "audit")}
}

// Record appends one record: who (actor: a user, a token name or
// "playbook:<name>") did what (action, e.g. "action.approve") to what
// (object, e.g. "action:<id>"), with a free-form detail. It returns the
// stored record with its Seq and Hash.
func (r *Recorder) Record(ctx context.Context, actor, action, object, detail string) (vigil.AuditRecord, error) {
	rec, err := r.st.AppendAudit(ctx, vigil.AuditRecord{
		Time: r.clock.Now().UTC(), Actor: actor, Action: action, Object: object, Detail: detail,
	})
	if err != nil {
		r.log.Error("cannot append audit record", "actor", actor, "action", action, "object", object, "err", err)
		return vigil.AuditRecord{}, fmt.Errorf("cannot append audit record %s on %s: %w", action, object, err)
	}
	return rec, nil
}

// RecordJSON is Record with detail encoded as JSON (a map or a struct).
func (r *Recorder) RecordJSON(ctx context.Context, actor, action, object string, detail any) (vigil.AuditRecord, error) {
	b, err := json.Marshal(detail)
	if err != nil {
		return vigil.AuditRecord{}, fmt.Errorf("cannot encode audit detail for %s on %s: %w", action, object, err)
	}
	return r.Record(ctx, actor, action, object, string(b))
}
