package playbook_test

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/respond/playbook"
)

func TestInvalid(t *testing.T) {
	files, _ := filepath.Glob("testdata/invalid/*.yaml")
	if len(files) < 15 {
		t.Fatalf("only %d invalid cases", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			want := wantLine(t, f)
			data, _ := os.ReadFile(f)
			pb, errs := playbook.Parse(filepath.Base(f), data)
			if pb != nil || len(errs) == 0 {
				t.Fatalf("parsed, want error %q", want)
			}
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if !strings.HasPrefix(got[0], want) && !strings.Contains(got[0], want) {
				t.Fatalf("errors:\n%s\nwant one starting with %q", strings.Join(got, "\n"), want)
			}
		})
	}
}

func wantLine(t *testing.T, f string) string {
	fh, err := os.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	sc.Scan()
	w, ok := strings.CutPrefix(sc.Text(), "# want: ")
	if !ok {
		t.Fatalf("%s: first line is not '# want: <error>'", f)
	}
	return strings.TrimRight(w, " ")
}

func TestLoadValid(t *testing.T) {
	pbs, errs := playbook.Load("testdata/valid")
	for _, e := range errs {
		t.Error(e)
	}
	if len(pbs) != 3 {
		t.Fatalf("%d playbooks, want 3", len(pbs))
	}
	if err := playbook.Check("testdata/valid"); err != nil {
		t.Fatal(err)
	}
	if err := playbook.Check("testdata/invalid"); err == nil || strings.Count(err.Error(), "\n") < 15 {
		t.Fatalf("Check(invalid) = %v, want one error per file", err)
	}
	sums, err := playbook.List("testdata/valid")
	if err != nil || len(sums) != 3 || sums[0].Name != "isolate-attacked-camera" ||
		strings.Join(sums[0].Steps, " ") != "isolate:isolate@agent tell-soc:notify@slack" ||
		sums[1].Approval != "required x2 within 30m0s" || !sums[2].DryRun {
		t.Fatalf("List = %+v, %v", sums, err)
	}
}

func TestMatchEvalRender(t *testing.T) {
	pbs, _ := playbook.Load("testdata/valid")
	cam := pbs[0]
	a := vigil.Alert{ID: "a1", RuleID: "ssh-bruteforce", Title: "SSH brute force", Severity: vigil.SeverityHigh,
		Tags: []string{"attack.T1110"}, Count: 2, DeviceID: "cam-1"}
	d := vigil.Device{ID: "cam-1", Class: "camera"}
	if !cam.Trigger.MatchAlert(&a, &d) {
		t.Fatal("trigger does not match")
	}
	f := func(a vigil.Alert, d vigil.Device, want bool) {
		t.Helper()
		ok := cam.Trigger.MatchAlert(&a, &d)
		if ok {
			ok, _ = cam.Eval(&playbook.Input{Alert: a, Device: d})
		}
		if ok != want {
			t.Fatalf("alert %+v device %+v: %v, want %v", a, d, ok, want)
		}
	}
	low := a
	low.Severity = vigil.SeverityMedium
	f(low, d, false)
	f(a, vigil.Device{ID: "t", Class: "thermostat"}, false)
	f(a, vigil.Device{ID: "cam-2", Class: "camera", Tags: []string{"lab"}}, false)
	f(a, d, true)

	params, err := cam.Steps[0].Render(&playbook.Input{Alert: a, Device: d})
	if err != nil || params["reason"] != "ssh-bruteforce: SSH brute force" {
		t.Fatalf("render = %v, %v", params, err)
	}
	q := pbs[1]
	params, err = q.Steps[0].Render(&playbook.Input{Alert: vigil.Alert{Entities: []string{"ip:1.2.3.4", "mqtt.client_id:cam-7"}}})
	if err != nil || params["client_id"] != "cam-7" {
		t.Fatalf("render = %v, %v", params, err)
	}
	if !pbs[2].Trigger.MatchIncident(playbook.EventFalsePositive) || pbs[2].Trigger.MatchAlert(&a, &d) {
		t.Fatal("incident trigger")
	}
}

func TestRenderMissingKey(t *testing.T) {
	pb, errs := playbook.Parse("x.yaml", []byte("name: x\ntrigger: {rules: [r]}\nsteps:\n  - action: set_param\n    params: {key: '{{.Alert.Fields.nope}}'}\n"))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if _, err := pb.Steps[0].Render(&playbook.Input{Alert: vigil.Alert{Fields: map[string]any{"a": 1}}}); err == nil {
		t.Fatal("rendered a missing field, want an error")
	}
}
