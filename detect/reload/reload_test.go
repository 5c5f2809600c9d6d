package reload

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/detect/sigma"
)

const ruleV1 = `title: Wget run
id: 11111111-1111-4111-8111-111111111111
tags: [attack.t1105]
logsource: {product: linux, category: process_creation}
detection:
  sel: {process.command_line|contains: wget}
  condition: sel
level: high
`

const ruleV2 = `title: Curl run
id: 11111111-1111-4111-8111-111111111111
tags: [attack.t1105]
logsource: {product: linux, category: process_creation}
detection:
  sel: {process.command_line|contains: curl}
  condition: sel
level: high
`

func detected(d *sigma.Detector, cmdline string) bool {
	ev := vigil.Event{ID: vigil.NewID(), Time: time.Now(), DeviceID: "cam-1", Kind: vigil.KindProcess,
		Fields: map[string]any{"process.command_line": cmdline}}
	hit := false
	d.Detect(context.Background(), 0, &ev, func(vigil.Alert) { hit = true })
	return hit
}

func TestReloadOnChangeKeepsOverrides(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "r.yml")
	if err := os.WriteFile(file, []byte(ruleV1), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := Options{Dirs: []string{dir}}
	rs, first := Load(opts)
	if first.Compiled != 1 || len(first.Rejected) != 0 {
		t.Fatalf("first load: %+v", first)
	}
	det := sigma.NewDetector(rs, sigma.DetectorOptions{})
	m := New(det, opts, first)
	if !detected(det, "busybox wget http://x/y") {
		t.Fatal("v1 rule does not match wget")
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Watch(ctx, 10*time.Millisecond) }()
	// A new modification time and size: the watcher must reload.
	if err := os.WriteFile(file, []byte(ruleV2), 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Second)
	os.Chtimes(file, later, later)
	deadline := time.Now().Add(5 * time.Second)
	for !detected(det, "curl -O http://x/y") {
		if time.Now().After(deadline) {
			t.Fatal("the changed rule was not reloaded")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if detected(det, "busybox wget http://x/y") {
		t.Error("the old rule still runs after reload")
	}

	// Disabled by tag: stays disabled across a reload.
	if n := m.SetEnabled("attack.t1105", false); n != 1 {
		t.Fatalf("SetEnabled changed %d rules, want 1", n)
	}
	if detected(det, "curl x") {
		t.Fatal("a disabled rule matched")
	}
	m.Reload()
	if detected(det, "curl x") {
		t.Fatal("a disabled rule matched after reload")
	}
	if rules := m.Rules(); len(rules) != 1 || rules[0].Enabled {
		t.Fatalf("Rules() = %+v, want one disabled rule", rules)
	}
	m.SetEnabled("11111111-1111-4111-8111-111111111111", true)
	if !detected(det, "curl x") {
		t.Fatal("a re-enabled rule does not match")
	}
}

func TestReloadReportsRejectedRules(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "good.yml"), []byte(ruleV1), 0o644)
	os.WriteFile(filepath.Join(dir, "bad.yml"), []byte("title: x\nlogsource: {product: linux}\ndetection:\n  sel: {a|nosuchmodifier: 1}\n  condition: sel\n"), 0o644)
	rs, res := Load(Options{Dirs: []string{dir}})
	if res.Compiled != 1 || len(res.Rejected) != 1 {
		t.Fatalf("load: compiled %d rejected %+v; want 1 and 1", res.Compiled, res.Rejected)
	}
	if got := res.Rejected[0]; got.Line == 0 || filepath.Base(got.File) != "bad.yml" {
		t.Errorf("rejection %+v should name bad.yml and a line", got)
	}
	m := New(sigma.NewDetector(rs, sigma.DetectorOptions{}), Options{Dirs: []string{dir}}, res)
	if r := m.Reload(); r.Compiled != 1 || len(r.Rejected) != 1 {
		t.Fatalf("reload: %+v", r)
	}
}
