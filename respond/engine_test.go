package respond_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/audit"
	"github.com/vigil-iot/vigil/respond"
	"github.com/vigil-iot/vigil/respond/playbook"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/store/sqlite"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time            { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration)       { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func newClock() *clock                     { return &clock{t: time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)} }
func (c *clock) String() string            { return c.Now().String() }
func (c *clock) Since(t time.Time) float64 { return c.Now().Sub(t).Seconds() }

// recorder is a connector that records what it was asked and answers
// with its fn (nil: acknowledged at once, succeeded).
type recorder struct {
	name string
	mu   sync.Mutex
	got  []vigil.Action
	fn   func(ctx context.Context, a vigil.Action) (respond.Result, error)
}

func (r *recorder) Name() string { return r.name }
func (r *recorder) Execute(ctx context.Context, a vigil.Action) (respond.Result, error) {
	r.mu.Lock()
	r.got = append(r.got, a)
	r.mu.Unlock()
	if r.fn != nil {
		return r.fn(ctx, a)
	}
	return respond.Result{Output: "done " + a.Type}, nil
}
func (r *recorder) calls() []vigil.Action {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]vigil.Action(nil), r.got...)
}

type env struct {
	t         *testing.T
	st        *sqlite.Store
	clock     *clock
	eng       *respond.Engine
	agent     *recorder
	mqtt      *recorder
	slack     *recorder
	reg       *prometheus.Registry
	contained map[string]time.Time
	mu        sync.Mutex
}

func parse(t *testing.T, src string) *playbook.Playbook {
	t.Helper()
	pb, errs := playbook.Parse("test.yaml", []byte(src))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return pb
}

func newEnv(t *testing.T, opts respond.Options, pbs ...string) *env {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{t: t, st: st, clock: newClock(), agent: &recorder{name: "agent"}, mqtt: &recorder{name: "mqtt"},
		slack: &recorder{name: "slack"}, reg: prometheus.NewRegistry(), contained: map[string]time.Time{}}
	for _, src := range pbs {
		opts.Playbooks = append(opts.Playbooks, parse(t, src))
	}
	opts.Store = st
	opts.Audit = audit.NewRecorder(st, e.clock, nil)
	opts.Connectors = []respond.Connector{e.agent, e.mqtt, e.slack}
	opts.Clock = e.clock
	opts.Registerer = e.reg
	next := opts.OnContained
	opts.OnContained = func(ctx context.Context, id string, at time.Time) error {
		e.mu.Lock()
		e.contained[id] = at
		inc, err := st.GetIncident(ctx, id)
		if err == nil {
			inc.Contained, inc.Status = at, vigil.IncidentContained
			err = st.PutIncident(ctx, inc)
		}
		e.mu.Unlock()
		if err == nil && next != nil {
			err = next(ctx, id, at)
		}
		return err
	}
	e.eng, err = respond.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.eng.Wait()
		rep, err := audit.Verify(context.Background(), st)
		if err != nil || !rep.OK {
			t.Errorf("audit trail after the test: %v %v", rep, err)
		}
	})
	return e
}

func (e *env) device(id, class string, tags ...string) {
	e.t.Helper()
	if err := e.st.PutDevice(context.Background(), vigil.Device{ID: id, Class: class, Tags: tags, State: vigil.StateActive}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) incident(id string, devices ...string) vigil.Incident {
	e.t.Helper()
	inc := vigil.Incident{ID: id, Status: vigil.IncidentOpen, DeviceIDs: devices, Detected: e.clock.Now(), Updated: e.clock.Now()}
	if err := e.st.PutIncident(context.Background(), inc); err != nil {
		e.t.Fatal(err)
	}
	return inc
}

func (e *env) alert(id, device, incident string) []vigil.Action {
	e.t.Helper()
	a := vigil.Alert{ID: id, RuleID: "ssh-bruteforce", Title: "SSH brute force", Severity: vigil.SeverityHigh,
		Tags: []string{"attack.t1110"}, DeviceID: device, IncidentID: incident, Count: 1,
		Entities: []string{"mqtt.client_id:" + device}, Created: e.clock.Now(),
		Provenance: []string{vigil.NewProvenance(vigil.ProvenanceDevice, device)}}
	acts, err := e.eng.HandleAlert(context.Background(), a)
	if err != nil {
		e.t.Fatal(err)
	}
	e.eng.Wait()
	return acts
}

func (e *env) get(id string) vigil.Action {
	e.t.Helper()
	a, err := e.st.GetAction(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

func (e *env) count(state vigil.ActionState) int {
	e.t.Helper()
	acts, _, err := e.st.ListActions(context.Background(), store.ActionFilter{State: state, Page: store.Page{Limit: 1000}})
	if err != nil {
		e.t.Fatal(err)
	}
	return len(acts)
}

// transitions returns the states an action went through, from the audit trail.
func (e *env) transitions(id string) string {
	e.t.Helper()
	recs, err := e.st.ListAudit(context.Background(), 0, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		if r.Object != "action:"+id {
			continue
		}
		switch r.Action {
		case audit.ActionCreate:
			out = append(out, "create")
		case audit.ActionTransition, audit.ActionApprove, audit.ActionDeny:
			if i := strings.Index(r.Detail, `"to":"`); i >= 0 {
				out = append(out, strings.SplitN(r.Detail[i+6:], `"`, 2)[0])
			} else {
				out = append(out, r.Action)
			}
		}
	}
	return strings.Join(out, " ")
}

const isolatePB = `
name: isolate
trigger: {tags: [attack.t1110], min_severity: high, device_classes: [camera]}
conditions: ['alert.severity_level >= 4']
steps:
  - action: isolate
    params: {reason: "{{.Alert.RuleID}}"}
  - action: notify
    connector: slack
    params: {text: "isolated {{.Device.ID}}"}
rollback: {on_false_positive: true}
`

func TestAutomaticContainment(t *testing.T) {
	e := newEnv(t, respond.Options{}, isolatePB)
	e.device("cam-1", "camera")
	e.incident("inc-1", "cam-1")
	e.clock.Add(1500 * time.Millisecond)
	acts := e.alert("al-1", "cam-1", "inc-1")
	if len(acts) != 2 {
		t.Fatalf("%d actions, want 2", len(acts))
	}
	iso := e.get(acts[0].ID)
	if iso.State != vigil.ActionSucceeded || iso.Type != "isolate" || iso.Result != "done isolate" {
		t.Fatalf("isolate action %+v", iso)
	}
	if got := e.transitions(iso.ID); got != "create sent acknowledged succeeded" {
		t.Fatalf("transitions %q", got)
	}
	calls := e.agent.calls()
	if len(calls) != 1 || calls[0].Params["reason"] != "ssh-bruteforce" || len(calls[0].Params) != 1 {
		t.Fatalf("agent got %+v", calls)
	}
	if s := e.slack.calls(); len(s) != 1 || s[0].Params["text"] != "isolated cam-1" {
		t.Fatalf("slack got %+v", s)
	}
	if at, ok := e.contained["inc-1"]; !ok || !at.Equal(e.clock.Now()) {
		t.Fatalf("contained %v", e.contained)
	}
	h, _ := e.reg.Gather()
	found := false
	for _, mf := range h {
		if mf.GetName() == "vigil_time_to_contain_seconds" {
			found = true
			if c, s := mf.Metric[0].Histogram.GetSampleCount(), mf.Metric[0].Histogram.GetSampleSum(); c != 1 || s != 1.5 {
				t.Fatalf("time to contain: %d samples, sum %v s, want 1 of 1.5", c, s)
			}
		}
	}
	if !found {
		t.Fatal("no vigil_time_to_contain_seconds")
	}
	// The same alert again (redelivery, or merged with a later one): no new action.
	if again := e.alert("al-1", "cam-1", "inc-1"); len(again) != 0 || len(e.agent.calls()) != 1 {
		t.Fatalf("retry made %d actions", len(again))
	}
	// An alert that does not match: a thermostat.
	e.device("th-1", "thermostat")
	if acts := e.alert("al-2", "th-1", ""); len(acts) != 0 {
		t.Fatalf("thermostat got %d actions", len(acts))
	}
}

const approvalPB = `
name: quarantine
trigger: {rules: [ssh-bruteforce]}
steps:
  - action: quarantine_client
    params: {client_id: '{{.Entity "mqtt.client_id"}}'}
approval: {mode: required, approvers: 2, timeout: 30m}
`

func TestApprovalFlow(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, respond.Options{}, approvalPB)
	acts := e.alert("al-1", "cam-1", "")
	id := acts[0].ID
	if a := e.get(id); a.State != vigil.ActionPendingApproval || len(e.mqtt.calls()) != 0 {
		t.Fatalf("action %+v, want pending and not executed", a)
	}
	if _, err := e.eng.Approve(ctx, id, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.eng.Approve(ctx, id, "alice"); vigil.ErrorCode(err) != vigil.ECONFLICT {
		t.Fatalf("second approval by alice: %v, want conflict", err)
	}
	if a := e.get(id); a.State != vigil.ActionPendingApproval || len(a.Approvers) != 1 {
		t.Fatalf("after one approval %+v", a)
	}
	if _, err := e.eng.Approve(ctx, id, "bob"); err != nil {
		t.Fatal(err)
	}
	e.eng.Wait()
	a := e.get(id)
	if a.State != vigil.ActionSucceeded || strings.Join(a.Approvers, ",") != "alice,bob" {
		t.Fatalf("after two approvals %+v", a)
	}
	if c := e.mqtt.calls(); len(c) != 1 || c[0].Params["client_id"] != "cam-1" {
		t.Fatalf("mqtt got %+v", c)
	}
	if got := e.transitions(id); got != "create action.approve approved sent acknowledged succeeded" {
		t.Fatalf("transitions %q", got)
	}
	if _, err := e.eng.Approve(ctx, id, "carol"); vigil.ErrorCode(err) != vigil.ECONFLICT {
		t.Fatalf("approving a done action: %v", err)
	}

	// Deny.
	id2 := e.alert("al-2", "cam-2", "")[0].ID
	if a, err := e.eng.Deny(ctx, id2, "alice", "false alarm"); err != nil || a.State != vigil.ActionDenied {
		t.Fatalf("deny: %+v %v", a, err)
	}
	if _, err := e.eng.Approve(ctx, id2, "bob"); vigil.ErrorCode(err) != vigil.ECONFLICT {
		t.Fatalf("approving a denied action: %v", err)
	}
	if _, err := e.eng.Deny(ctx, "nope", "alice", ""); vigil.ErrorCode(err) != vigil.ENOTFOUND {
		t.Fatalf("deny unknown: %v", err)
	}

	// Timeout.
	id3 := e.alert("al-3", "cam-3", "")[0].ID
	e.clock.Add(29 * time.Minute)
	if err := e.eng.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if a := e.get(id3); a.State != vigil.ActionPendingApproval {
		t.Fatalf("timed out early: %+v", a)
	}
	e.clock.Add(2 * time.Minute)
	if err := e.eng.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if a := e.get(id3); a.State != vigil.ActionTimedOut {
		t.Fatalf("after the deadline %+v", a)
	}
	if len(e.mqtt.calls()) != 1 {
		t.Fatal("a denied or timed out action ran")
	}
}

func TestGuardsFlood(t *testing.T) {
	e := newEnv(t, respond.Options{Guards: playbook.Guards{MaxActions: 5, Window: 10 * time.Minute}}, isolatePB)
	for i := range 100 {
		id := fmt.Sprintf("cam-%03d", i)
		e.device(id, "camera")
		e.alert("al-"+id, id, "")
	}
	if n := len(e.agent.calls()); n != 5 {
		t.Fatalf("%d isolations, want 5 (the guard)", n)
	}
	if s, p := e.count(vigil.ActionSucceeded), e.count(vigil.ActionPendingApproval); s != 5+100 || p != 95 {
		t.Fatalf("succeeded %d (isolate+notify), pending %d", s, p)
	}
	// The window passes: automatic again.
	e.clock.Add(11 * time.Minute)
	e.device("cam-new", "camera")
	if acts := e.alert("al-new", "cam-new", ""); e.get(acts[0].ID).State != vigil.ActionSucceeded {
		t.Fatal("guard still holds after the window")
	}
}

func TestGuardPerClassAndPlaybook(t *testing.T) {
	pb := strings.Replace(isolatePB, "rollback:", "guards: {window: 1h, per_class: {camera: 2}}\nrollback:", 1)
	e := newEnv(t, respond.Options{}, pb)
	var held []string
	for i := range 4 {
		id := fmt.Sprintf("cam-%d", i)
		e.device(id, "camera")
		a := e.get(e.alert("al-"+id, id, "")[0].ID)
		if a.State == vigil.ActionPendingApproval {
			held = append(held, a.Params[respond.MetaHeld])
		}
	}
	if len(held) != 2 || !strings.Contains(held[0], `class "camera"`) {
		t.Fatalf("held %q", held)
	}
	// A held action runs once a person approves it.
	acts, _, _ := e.st.ListActions(context.Background(), store.ActionFilter{State: vigil.ActionPendingApproval})
	if _, err := e.eng.Approve(context.Background(), acts[0].ID, "alice"); err != nil {
		t.Fatal(err)
	}
	e.eng.Wait()
	if len(e.agent.calls()) != 3 {
		t.Fatalf("%d isolations after approval", len(e.agent.calls()))
	}
}

func TestSafetyCritical(t *testing.T) {
	e := newEnv(t, respond.Options{}, isolatePB)
	e.device("cam-plc", "camera", "safety-critical")
	acts := e.alert("al-1", "cam-plc", "")
	if a := e.get(acts[0].ID); a.State != vigil.ActionPendingApproval || !strings.Contains(a.Params[respond.MetaHeld], "safety-critical") {
		t.Fatalf("isolate on a safety-critical device: %+v", a)
	}
	if a := e.get(acts[1].ID); a.State != vigil.ActionSucceeded {
		t.Fatalf("notify should still go: %+v", a)
	}
	if len(e.agent.calls()) != 0 {
		t.Fatal("a safety-critical device was isolated automatically")
	}
}

func TestDryRun(t *testing.T) {
	e := newEnv(t, respond.Options{DryRun: true}, isolatePB)
	e.device("cam-1", "camera")
	e.alert("al-1", "cam-1", "")
	e.alert("al-1", "cam-1", "")
	if len(e.agent.calls())+len(e.slack.calls()) != 0 {
		t.Fatal("dry run executed something")
	}
	acts, _, _ := e.st.ListActions(context.Background(), store.ActionFilter{})
	if len(acts) != 0 {
		t.Fatalf("dry run stored %d actions", len(acts))
	}
	recs, _ := e.st.ListAudit(context.Background(), 0, 0)
	var dry []string
	for _, r := range recs {
		if r.Action == audit.ActionDryRun {
			dry = append(dry, r.Detail)
		}
	}
	if len(dry) != 2 || !strings.Contains(dry[0], `"type":"isolate"`) || !strings.Contains(dry[0], `"reason":"ssh-bruteforce"`) {
		t.Fatalf("dry-run records %q", dry)
	}
}

func TestRollbackOnFalsePositive(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, respond.Options{}, isolatePB)
	e.device("cam-1", "camera")
	inc := e.incident("inc-1", "cam-1")
	iso := e.alert("al-1", "cam-1", "inc-1")[0]
	inc.Status = vigil.IncidentFalsePositive
	acts, err := e.eng.HandleIncident(ctx, inc, playbook.EventFalsePositive)
	if err != nil || len(acts) != 1 || acts[0].Type != "restore" {
		t.Fatalf("rollback actions %+v %v", acts, err)
	}
	e.eng.Wait()
	if a := e.get(iso.ID); a.State != vigil.ActionRolledBack {
		t.Fatalf("isolate after rollback %+v", a)
	}
	if a := e.get(acts[0].ID); a.State != vigil.ActionSucceeded {
		t.Fatalf("restore %+v", a)
	}
	calls := e.agent.calls()
	if len(calls) != 2 || calls[1].Type != "restore" || calls[1].DeviceID != "cam-1" {
		t.Fatalf("agent calls %+v", calls)
	}
	// Closing it again does nothing more.
	if acts, _ := e.eng.HandleIncident(ctx, inc, playbook.EventFalsePositive); len(acts) != 0 {
		t.Fatalf("second rollback made %d actions", len(acts))
	}
}

func TestFailuresAndTimeouts(t *testing.T) {
	e := newEnv(t, respond.Options{AckTimeout: 50 * time.Millisecond}, isolatePB)
	e.device("cam-1", "camera")
	e.device("cam-2", "camera")
	e.device("cam-3", "camera")
	e.agent.fn = func(ctx context.Context, a vigil.Action) (respond.Result, error) {
		switch a.DeviceID {
		case "cam-1":
			return respond.Result{}, errors.New("connection refused")
		case "cam-2":
			return respond.Result{Acknowledged: time.Now(), Output: "nft missing"}, errors.New("exit status 1")
		}
		<-ctx.Done() // never acknowledged
		return respond.Result{}, ctx.Err()
	}
	f := func(dev, want, path string) {
		t.Helper()
		a := e.get(e.alert("al-"+dev, dev, "")[0].ID)
		if string(a.State) != want || e.transitions(a.ID) != path {
			t.Fatalf("%s: %s via %q (%s), want %s via %q", dev, a.State, e.transitions(a.ID), a.Result, want, path)
		}
	}
	f("cam-1", "failed", "create sent failed")
	f("cam-2", "failed", "create sent acknowledged failed")
	f("cam-3", "timed_out", "create sent timed_out")
}

func TestTickRestartsApprovedAndTimesOutSent(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, respond.Options{AckTimeout: time.Minute})
	now := e.clock.Now()
	// As a crash would leave them: one approved never sent, one sent never answered.
	for _, a := range []vigil.Action{
		{ID: "a1", Type: "isolate", DeviceID: "d1", State: vigil.ActionApproved, Params: map[string]string{respond.MetaConnector: "agent"}, Created: now, Updated: now},
		{ID: "a2", Type: "isolate", DeviceID: "d2", State: vigil.ActionSent, Params: map[string]string{respond.MetaConnector: "agent"}, Created: now, Updated: now},
	} {
		if err := e.st.PutAction(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.Add(2 * time.Minute)
	if err := e.eng.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	e.eng.Wait()
	if a := e.get("a1"); a.State != vigil.ActionSucceeded {
		t.Fatalf("a1 %+v", a)
	}
	if a := e.get("a2"); a.State != vigil.ActionTimedOut {
		t.Fatalf("a2 %+v", a)
	}
}

func TestIncidentTrigger(t *testing.T) {
	e := newEnv(t, respond.Options{}, `
name: tell
trigger: {incident: [opened]}
steps:
  - action: notify
    connector: slack
    params: {text: "incident {{.Incident.ID}} {{.Event}} on {{.Device.ID}}"}
`)
	inc := e.incident("inc-9", "d1", "d2")
	acts, err := e.eng.HandleIncident(context.Background(), inc, playbook.EventOpened)
	e.eng.Wait()
	var texts []string
	for _, c := range e.slack.calls() {
		texts = append(texts, c.Params["text"])
	}
	slices.Sort(texts)
	if err != nil || len(acts) != 2 || strings.Join(texts, "|") != "incident inc-9 opened on d1|incident inc-9 opened on d2" {
		t.Fatalf("%+v %v %+v", acts, err, e.slack.calls())
	}
	if acts := e.alert("al-1", "d1", "inc-9"); len(acts) != 0 {
		t.Fatal("an incident playbook ran on an alert")
	}
}

func TestInfoOf(t *testing.T) {
	e := newEnv(t, respond.Options{}, approvalPB)
	a := e.get(e.alert("al-1", "cam-1", "")[0].ID)
	in := respond.InfoOf(a)
	if in.Connector != "mqtt" || in.ApprovalsRequired != 2 || in.Held != "playbook requires approval" ||
		!in.ApprovalDeadline.Equal(e.clock.Now().Add(30*time.Minute)) || in.Undo != "release_client" {
		t.Fatalf("%+v", in)
	}
	if p := respond.PublicParams(a); len(p) != 1 || p["client_id"] != "cam-1" {
		t.Fatalf("public params %v", p)
	}
}

// TestContainedCallbackReentersEngine: the containment callback may run
// the incident's "contained" playbooks (the engine's lock is not held).
func TestContainedCallbackReentersEngine(t *testing.T) {
	var e *env
	done := make(chan []vigil.Action, 1)
	e = newEnv(t, respond.Options{OnContained: func(ctx context.Context, id string, _ time.Time) error {
		inc, err := e.st.GetIncident(ctx, id)
		if err != nil {
			return err
		}
		acts, err := e.eng.HandleIncident(ctx, inc, playbook.EventContained)
		done <- acts
		return err
	}}, isolatePB, `
name: tell-contained
trigger: {incident: [contained]}
steps: [{action: notify, connector: slack, params: {text: "{{.Incident.ID}} contained"}}]
`)
	e.device("cam-1", "camera")
	e.incident("inc-1", "cam-1")
	e.alert("al-1", "cam-1", "inc-1")
	if acts := <-done; len(acts) != 1 {
		t.Fatalf("contained playbook made %d actions", len(acts))
	}
	e.eng.Wait()
	var texts []string
	for _, c := range e.slack.calls() {
		texts = append(texts, c.Params["text"])
	}
	if !slices.Contains(texts, "inc-1 contained") {
		t.Fatalf("slack got %q", texts)
	}
}

func TestRecoverGuards(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, respond.Options{Guards: playbook.Guards{MaxActions: 3, Window: 10 * time.Minute}}, isolatePB)
	for i := range 2 {
		id := fmt.Sprintf("cam-%d", i)
		e.device(id, "camera")
		e.alert("al-"+id, id, "")
	}
	// A new engine on the same store (a restart) remembers the 2 isolations.
	eng2, err := respond.New(respond.Options{Store: e.st, Audit: audit.NewRecorder(e.st, e.clock, nil), Clock: e.clock,
		Playbooks: e.eng.Playbooks(), Connectors: []respond.Connector{e.agent, e.slack},
		Guards: playbook.Guards{MaxActions: 3, Window: 10 * time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng2.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	var states []string
	for i := 2; i < 4; i++ {
		id := fmt.Sprintf("cam-%d", i)
		e.device(id, "camera")
		acts, err := eng2.HandleAlert(ctx, vigil.Alert{ID: "al-" + id, RuleID: "r", Severity: vigil.SeverityHigh,
			Tags: []string{"attack.t1110"}, DeviceID: id, Provenance: []string{"device-cert:" + id}})
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, string(acts[0].State))
	}
	eng2.Wait()
	if strings.Join(states, " ") != "approved pending_approval" {
		t.Fatalf("after restart: %v", states)
	}
}

func TestSetPlaybooksAudited(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, respond.Options{})
	a, b := parse(t, isolatePB), parse(t, approvalPB)
	if err := e.eng.SetPlaybooks(ctx, []*playbook.Playbook{a, b}, "admin"); err != nil {
		t.Fatal(err)
	}
	a2 := parse(t, strings.Replace(isolatePB, "min_severity: high", "min_severity: critical", 1))
	if err := e.eng.SetPlaybooks(ctx, []*playbook.Playbook{a2}, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := e.eng.SetPlaybooks(ctx, []*playbook.Playbook{a2}, "alice"); err != nil { // no change
		t.Fatal(err)
	}
	recs, _ := e.st.ListAudit(ctx, 0, 0)
	var got []string
	for _, r := range recs {
		var d map[string]string
		json.Unmarshal([]byte(r.Detail), &d)
		got = append(got, r.Actor+" "+r.Object+" "+d["change"])
	}
	slices.Sort(got[:2])
	want := "admin playbook:isolate added|admin playbook:quarantine added|alice playbook:isolate modified|alice playbook:quarantine removed"
	if strings.Join(got, "|") != want && strings.Join(got[:2], "|")+"|"+got[3]+"|"+got[2] != want {
		t.Fatalf("audit %q", got)
	}
}

// TestOneContainmentPerIncident: two alerts of one incident (two rules on
// the same brute force) isolate the device once; the notify step, not
// disruptive, runs for each. A failed isolation does not stop a retry by
// the next alert.
func TestOneContainmentPerIncident(t *testing.T) {
	e := newEnv(t, respond.Options{}, isolatePB)
	e.device("cam-1", "camera")
	e.incident("inc-1", "cam-1")
	e.alert("al-1", "cam-1", "inc-1")
	e.alert("al-2", "cam-1", "inc-1")
	if n := len(e.agent.calls()); n != 1 {
		t.Fatalf("%d isolations for one incident, want 1", n)
	}
	if n := len(e.slack.calls()); n != 2 {
		t.Fatalf("%d notifications, want one per alert", n)
	}
	// Another incident of the same device is contained on its own.
	e.incident("inc-2", "cam-1")
	e.alert("al-3", "cam-1", "inc-2")
	if n := len(e.agent.calls()); n != 2 {
		t.Fatalf("%d isolations after an alert of a second incident, want 2", n)
	}
	// An isolation that failed is tried again by the next alert.
	e.agent.fn = func(context.Context, vigil.Action) (respond.Result, error) {
		return respond.Result{}, errors.New("agent away")
	}
	e.incident("inc-3", "cam-1")
	e.alert("al-4", "cam-1", "inc-3")
	e.agent.fn = nil
	e.alert("al-5", "cam-1", "inc-3")
	if n := len(e.agent.calls()); n != 4 {
		t.Fatalf("%d isolations after a failed one and a new alert, want 4", n)
	}
}
