package baseline

import (
	"context"
	"encoding/json"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
)

// stored returns a as the store gives it back (JSON), with the detector
// name the stage sets.
func stored(t *testing.T, a vigil.Alert) vigil.Alert {
	t.Helper()
	a.Detector = Name
	a.ID = "al-1"
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var out vigil.Alert
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// learnedCams makes five cameras that learned for two hours to talk to one
// server.
func learnedCams(t *testing.T) (*fleet, []string) {
	f := &fleet{d: New(Options{Learn: time.Hour})}
	cams := []string{"cam-1", "cam-2", "cam-3", "cam-4", "cam-5"}
	for _, c := range cams {
		f.inventory(0, c, vigil.ClassCamera)
	}
	for m := time.Duration(0); m < 2*time.Hour; m += 5 * time.Minute {
		for _, c := range cams {
			f.connect(m, c, "198.51.100.10", 443)
		}
	}
	return f, cams
}

// TestMarkNormalCohort checks that "this is normal" with cohort scope on a
// new peer of one camera keeps the other cameras from raising it, and that
// with device scope only they still do.
func TestMarkNormalCohort(t *testing.T) {
	for _, cohort := range []bool{false, true} {
		f, cams := learnedCams(t)
		a := f.connect(2*time.Hour, cams[0], "203.0.113.9", 8080)
		if len(a) != 1 {
			t.Fatalf("new peer: %d alerts", len(a))
		}
		fb, err := f.d.MarkNormal(stored(t, a[0]), cohort)
		if err != nil {
			t.Fatal(err)
		}
		if fb.Entity != "cam-1" || len(fb.Partitions) != 1 || (len(fb.Cohorts) == 1) != cohort {
			t.Errorf("feedback %+v", fb)
		}
		b := f.connect(2*time.Hour+time.Minute, cams[1], "203.0.113.9", 8080)
		if raised := len(b) > 0; raised == cohort {
			t.Errorf("cohort scope %v: cam-2 to the peer marked normal raised %v", cohort, raised)
		}
	}
}

// TestMarkNormalSurvivesSnapshot checks that the cohort's normal values
// are in the snapshot.
func TestMarkNormalSurvivesSnapshot(t *testing.T) {
	f, cams := learnedCams(t)
	a := f.connect(2*time.Hour, cams[0], "203.0.113.9", 8080)
	if _, err := f.d.MarkNormal(stored(t, a[0]), true); err != nil {
		t.Fatal(err)
	}
	snap, err := f.d.Snapshot(0)
	if err != nil {
		t.Fatal(err)
	}
	d2 := New(Options{Learn: time.Hour})
	if err := d2.Restore(0, snap); err != nil {
		t.Fatal(err)
	}
	f2 := &fleet{d: d2}
	if b := f2.connect(2*time.Hour+time.Minute, cams[1], "203.0.113.9", 8080); len(b) > 0 {
		t.Errorf("restored: the normal peer raised %s", b[0].Title)
	}
	if b := f2.connect(2*time.Hour+time.Minute, cams[1], "203.0.113.77", 8080); len(b) == 0 {
		t.Errorf("restored: another new peer raised nothing")
	}
}

// TestMarkNormalRate checks that a flood marked normal is within the
// device's bound afterwards.
func TestMarkNormalRate(t *testing.T) {
	f := &fleet{d: New(Options{Learn: time.Hour})}
	pub := func(at time.Duration) []vigil.Alert {
		return f.send(vigil.Event{Time: t0.Add(at), DeviceID: "s-1", Source: "sensor", Kind: "mqtt", Action: "publish",
			Network: &vigil.Network{Transport: "tcp", SrcIP: netip.MustParseAddr("10.0.2.5"), SrcPort: 40000, DstIP: netip.MustParseAddr("10.0.0.2"), DstPort: 1883},
			Fields:  map[string]any{"mqtt.topic": "plant/t", "mqtt.payload_size": 10.0}})
	}
	for m := time.Duration(0); m < 3*time.Hour; m += time.Minute {
		for i := range 30 {
			pub(m + time.Duration(i)*time.Second)
		}
	}
	flood := func(at time.Duration) []vigil.Alert {
		var out []vigil.Alert
		for i := range 400 {
			out = append(out, pub(at+time.Duration(i)*100*time.Millisecond)...)
		}
		return out
	}
	a := flood(3 * time.Hour)
	if len(a) == 0 {
		t.Fatal("the flood raised nothing")
	}
	if _, err := f.d.MarkNormal(stored(t, a[len(a)-1]), false); err != nil {
		t.Fatal(err)
	}
	if b := flood(3*time.Hour + 2*time.Minute); len(b) > 0 {
		t.Errorf("the same flood marked normal raised %s", b[0].Title)
	}
}

// TestMarkNormalRejects checks the errors: another detector's alert, an
// alert without the fields, an unknown entity, cohort scope on the
// unclassified cohort.
func TestMarkNormalRejects(t *testing.T) {
	f, _ := learnedCams(t)
	if _, err := f.d.MarkNormal(vigil.Alert{ID: "x", Detector: "sigma", RuleID: "baseline.new_peer_out"}, false); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Errorf("sigma alert: %v", err)
	}
	if _, err := f.d.MarkNormal(vigil.Alert{ID: "x", Detector: Name, RuleID: "baseline.new_peer_out"}, false); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Errorf("no fields: %v", err)
	}
	ghost := vigil.Alert{ID: "x", Detector: Name, RuleID: "baseline.new_peer_out", Fields: map[string]any{
		learnedField: []any{map[string]any{"entity": "ghost", "feature": "peer.out", "hash": "abc"}}}}
	if _, err := f.d.MarkNormal(ghost, false); vigil.ErrorCode(err) != vigil.ENOTFOUND {
		t.Errorf("unknown device: %v", err)
	}
	f.connect(0, "plain-1", "10.0.0.1", 80)
	plain := ghost
	plain.Fields = map[string]any{learnedField: []any{map[string]any{"entity": "plain-1", "feature": "peer.out", "hash": "abc"}}}
	if _, err := f.d.MarkNormal(plain, true); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Errorf("cohort scope on unclassified: %v", err)
	}
}

// TestShowAndReset checks show of a device and a cohort, and that a reset
// device learns again (its new peers held back or judged by its cohort).
func TestShowAndReset(t *testing.T) {
	f, cams := learnedCams(t)
	v, err := f.d.Show("cam-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Devices) != 1 || v.Devices[0].Cohort != vigil.ClassCamera || v.Devices[0].JudgedAgainst != "device" || v.Devices[0].Values["peer.out"] != 1 {
		t.Errorf("show cam-1: %+v", v)
	}
	v, err = f.d.Show(vigil.ClassCamera)
	if err != nil || len(v.Cohorts) != 1 || v.Cohorts[0].Members != 5 || v.Cohorts[0].Learning {
		t.Errorf("show camera: %+v %v", v, err)
	}
	if _, err := f.d.Show("nobody"); vigil.ErrorCode(err) != vigil.ENOTFOUND {
		t.Errorf("show nobody: %v", err)
	}
	if _, err := f.d.Reset("cam-1", ""); err != nil {
		t.Fatal(err)
	}
	v, _ = f.d.Show("cam-1")
	if len(v.Devices) != 1 || v.Devices[0].JudgedAgainst != "cohort" || len(v.Devices[0].Values) != 0 {
		t.Errorf("after reset: %+v", v.Devices)
	}
	if _, err := f.d.Reset(vigil.ClassCamera, KindCohort); err != nil {
		t.Fatal(err)
	}
	// Everything learns again: a new peer is held back.
	if a := f.connect(2*time.Hour+time.Minute, cams[2], "203.0.113.9", 8080); len(a) > 0 {
		t.Errorf("after the cohort's reset, a new peer raised %s", a[0].Title)
	}
	if _, err := f.d.Reset("nobody", ""); vigil.ErrorCode(err) != vigil.ENOTFOUND {
		t.Errorf("reset nobody: %v", err)
	}
}

// TestFeedbackConcurrent runs feedback, show, snapshots and dirty marks
// while the stage's calls run (go test -race finds a data race).
func TestFeedbackConcurrent(t *testing.T) {
	f, cams := learnedCams(t)
	a := f.connect(2*time.Hour, cams[0], "203.0.113.9", 8080)
	al := stored(t, a[0])
	evs := benchEvents(50, 100)
	var wg sync.WaitGroup
	for p := range 2 {
		wg.Go(func() {
			for i := range evs {
				ev := evs[i]
				f.d.Enrich(context.Background(), p, &ev)
				f.d.Detect(context.Background(), p, &ev, func(vigil.Alert) {})
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			if _, err := f.d.MarkNormal(al, true); err != nil {
				t.Error(err)
				return
			}
			f.d.Show("cam-1")
			f.d.Snapshot(1)
			f.d.TakeDirty()
			f.d.Stats()
		}
	})
	wg.Wait()
}

// TestMarkNormalCohortLaterPartition checks that a value marked normal for
// a cohort holds in a partition where that cohort appears only later.
func TestMarkNormalCohortLaterPartition(t *testing.T) {
	for _, mark := range []bool{false, true} {
		f, cams := learnedCams(t)
		a := f.connect(2*time.Hour, cams[0], "203.0.113.9", 8080)
		if mark {
			if _, err := f.d.MarkNormal(stored(t, a[0]), true); err != nil {
				t.Fatal(err)
			}
		}
		// Partition 1 meets its first cameras after the feedback.
		send := func(at time.Duration, ev vigil.Event) []vigil.Alert {
			ev.Time = t0.Add(at)
			var out []vigil.Alert
			f.d.Enrich(context.Background(), 1, &ev)
			f.d.Detect(context.Background(), 1, &ev, func(a vigil.Alert) { out = append(out, a) })
			return out
		}
		others := []string{"cam-11", "cam-12", "cam-13"}
		for _, c := range others {
			send(3*time.Hour, vigil.Event{DeviceID: c, Source: "agent", Kind: vigil.KindInventory, Fields: map[string]any{"device.class": vigil.ClassCamera}})
		}
		conn := func(at time.Duration, dev, dst string) []vigil.Alert {
			return send(at, vigil.Event{DeviceID: dev, Source: "agent", Kind: vigil.KindNetwork, Action: "connect",
				Network: &vigil.Network{Transport: "tcp", SrcIP: netip.MustParseAddr("10.0.1.3"), SrcPort: 40000, DstIP: netip.MustParseAddr(dst), DstPort: 8080}})
		}
		for m := 3 * time.Hour; m < 5*time.Hour; m += 5 * time.Minute {
			for _, c := range others {
				conn(m, c, "198.51.100.10")
			}
		}
		if raised := len(conn(5*time.Hour, others[0], "203.0.113.9")) > 0; raised == mark {
			t.Errorf("marked normal for the cohort %v: a camera of a later partition raised %v", mark, raised)
		}
	}
}
