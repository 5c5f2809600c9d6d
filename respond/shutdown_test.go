package respond_test

import (
	"strings"
	"testing"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/respond"
	"github.com/vigil-iot/vigil/respond/playbook"
)

const shutdownPB = `
name: shut-down
trigger: {tags: [attack.t1110], min_severity: high, device_classes: [camera]}
steps:
  - action: shutdown
`

// TestShutdownNeverAutomaticOnSafetyCritical: a camera is powered off at
// once; a device tagged safety-critical, and a PLC reached by a playbook
// whose trigger was widened after it loaded (the loader refuses an
// automatic shutdown of a safety-critical class), wait for approval, and
// so does a PLC whose class is reported in capitals.
func TestShutdownNeverAutomaticOnSafetyCritical(t *testing.T) {
	e := newEnv(t, respond.Options{}, shutdownPB)
	e.device("cam-1", "camera")
	if a := e.get(e.alert("al-1", "cam-1", "")[0].ID); a.State != vigil.ActionSucceeded || a.Type != "shutdown" {
		t.Fatalf("shutdown of a camera: %+v", a)
	}
	e.device("cam-sc", "camera", "safety-critical")
	if a := e.get(e.alert("al-2", "cam-sc", "")[0].ID); a.State != vigil.ActionPendingApproval ||
		!strings.Contains(a.Params[respond.MetaHeld], "safety-critical") {
		t.Fatalf("shutdown of a safety-critical camera: %+v", a)
	}

	pb := parse(t, shutdownPB)
	pb.Trigger.DeviceClasses = append(pb.Trigger.DeviceClasses, "plc", "medical")
	e2 := newEnv(t, respond.Options{Playbooks: []*playbook.Playbook{pb}})
	pb.Trigger.DeviceClasses = append(pb.Trigger.DeviceClasses, "PLC") // a class as a device may report it
	for _, class := range []string{"plc", "medical", "PLC"} {
		e2.device(class+"-1", class)
		a := e2.get(e2.alert("al-"+class, class+"-1", "")[0].ID)
		if a.State != vigil.ActionPendingApproval || !strings.Contains(a.Params[respond.MetaHeld], `safety-critical device (class "`+class+`") is never automatic`) {
			t.Fatalf("shutdown of a %s: %+v", class, a)
		}
	}
	if n := len(e.agent.calls()) + len(e2.agent.calls()); n != 1 {
		t.Fatalf("%d shutdowns sent, want 1 (the camera)", n)
	}
}

// TestSafetyCriticalTagAnyCase: the safety-critical tag holds disruptive
// actions whatever its case and surrounding spaces, and a safety-critical
// class is recognised in any case; a tag that only contains the words does
// not count.
func TestSafetyCriticalTagAnyCase(t *testing.T) {
	for _, tag := range []string{"Safety-Critical", "SAFETY-CRITICAL", " safety-critical ", "\tSafety-critical"} {
		for _, pbText := range []string{isolatePB, shutdownPB} {
			e := newEnv(t, respond.Options{}, pbText)
			e.device("cam-1", "camera", "site:hq", tag)
			a := e.get(e.alert("al-1", "cam-1", "")[0].ID)
			if a.State != vigil.ActionPendingApproval || !strings.Contains(a.Params[respond.MetaHeld], "safety-critical") {
				t.Fatalf("tag %q, %s: %+v", tag, a.Type, a)
			}
			if n := len(e.agent.calls()); n != 0 {
				t.Fatalf("tag %q: %d disruptive actions sent to a safety-critical device", tag, n)
			}
		}
	}
	e := newEnv(t, respond.Options{}, shutdownPB)
	e.device("cam-2", "camera", "not-safety-critical")
	if a := e.get(e.alert("al-2", "cam-2", "")[0].ID); a.State != vigil.ActionSucceeded {
		t.Fatalf("tag not-safety-critical held the shutdown: %+v", a)
	}

	pb := parse(t, shutdownPB)
	pb.Trigger.DeviceClasses = append(pb.Trigger.DeviceClasses, "PLC", " Medical ")
	e2 := newEnv(t, respond.Options{Playbooks: []*playbook.Playbook{pb}})
	for _, class := range []string{"PLC", " Medical "} {
		e2.device("dev-1"+class, class)
		a := e2.get(e2.alert("al-"+class, "dev-1"+class, "")[0].ID)
		if a.State != vigil.ActionPendingApproval || !strings.Contains(a.Params[respond.MetaHeld], "is never automatic") {
			t.Fatalf("shutdown of class %q: %+v", class, a)
		}
	}
	if n := len(e2.agent.calls()); n != 0 {
		t.Fatalf("%d shutdowns sent to safety-critical classes", n)
	}
}
