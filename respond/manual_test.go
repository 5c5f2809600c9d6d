package respond_test

import (
	"context"
	"testing"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/respond"
)

// TestRequest: a person's request takes the playbook step for the device's
// class, is always held for approval, runs once approved, and is refused
// for a device no playbook covers or that does not exist.
func TestRequest(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, respond.Options{}, isolatePB)
	e.device("cam-1", vigil.ClassCamera)
	e.device("meter-1", vigil.ClassSmartMeter)
	e.incident("inc-1", "cam-1")
	a, err := e.eng.Request(ctx, "isolate", "cam-1", "inc-1", "user:ana")
	if err != nil {
		t.Fatal(err)
	}
	if a.State != vigil.ActionPendingApproval || a.Playbook != "isolate" || a.RequestedBy != "user:ana" || a.IncidentID != "inc-1" ||
		a.Params[respond.MetaConnector] != "agent" || a.Params[respond.MetaUndo] != "restore" || a.Params[respond.MetaHeld] != "requested by user:ana" {
		t.Fatalf("requested action %+v", a)
	}
	if len(e.agent.calls()) != 0 {
		t.Fatal("a request ran before its approval")
	}
	if _, err := e.eng.Approve(ctx, a.ID, "user:bob"); err != nil {
		t.Fatal(err)
	}
	e.eng.Wait()
	if got := e.get(a.ID); got.State != vigil.ActionSucceeded || len(e.agent.calls()) != 1 {
		t.Fatalf("after approval %+v, %d agent calls", got, len(e.agent.calls()))
	}
	if _, err := e.eng.Request(ctx, "isolate", "meter-1", "", "user:ana"); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Fatalf("no playbook for smart meters: %v, want EINVALID", err)
	}
	if _, err := e.eng.Request(ctx, "isolate", "nope", "", "user:ana"); vigil.ErrorCode(err) != vigil.ENOTFOUND {
		t.Fatalf("unknown device: %v, want ENOTFOUND", err)
	}
	if _, err := e.eng.Request(ctx, "isolate", "cam-1", "nope", "user:ana"); vigil.ErrorCode(err) != vigil.ENOTFOUND {
		t.Fatalf("unknown incident: %v, want ENOTFOUND", err)
	}
}
