package playbook_test

import (
	"testing"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/respond/playbook"
)

func TestExamples(t *testing.T) {
	pbs, errs := playbook.Load("examples")
	for _, e := range errs {
		t.Error(e)
	}
	if len(pbs) != 4 {
		t.Fatalf("%d examples", len(pbs))
	}
	var q *playbook.Playbook
	for _, pb := range pbs {
		if pb.Name == "quarantine-mqtt-client" {
			q = pb
		}
	}
	in := &playbook.Input{Alert: vigil.Alert{Severity: vigil.SeverityHigh, Tags: []string{"attack.t1110.001"},
		Entities: []string{"ip:10.0.0.5", "mqtt.client_id:cam-7"}}}
	if !q.Trigger.MatchAlert(&in.Alert, &in.Device) {
		t.Fatal("no match")
	}
	if ok, err := q.Eval(in); !ok || err != nil {
		t.Fatalf("eval %v %v", ok, err)
	}
	p, err := q.Steps[0].Render(in)
	if err != nil || p["username"] != "cam-7" {
		t.Fatalf("%v %v", p, err)
	}
	in.Alert.Entities = append(in.Alert.Entities, "mqtt.username:plant-sensor")
	if p, _ := q.Steps[0].Render(in); p["username"] != "plant-sensor" {
		t.Fatalf("%v", p)
	}
	in.Alert.Entities = nil
	if ok, err := q.Eval(in); ok || err != nil {
		t.Fatalf("eval without entities %v %v", ok, err)
	}
}
