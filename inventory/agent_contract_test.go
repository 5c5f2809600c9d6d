package inventory_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/ingest/agent"
	"github.com/vigil-iot/vigil/wire"
)

// TestAgentReportContract runs the agent protocol's example report through
// ingest/agent and this stage, so the two cannot disagree on field names.
func TestAgentReportContract(t *testing.T) {
	for _, tc := range []struct {
		file   string
		format wire.Format
	}{{"report.json", wire.FormatJSON}, {"report.xml", wire.FormatXML}} {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile("../wire/testdata/" + tc.file)
			if err != nil {
				t.Skipf("the agent protocol example is not there: %v", err)
			}
			r, err := wire.DecodeReportBytes(tc.format, data)
			if err != nil {
				t.Fatal(err)
			}
			events, probs := agent.Convert(r, r.Time.Add(time.Second))
			if len(probs) > 0 {
				t.Fatalf("example report has problems: %v", probs)
			}
			st := openStore(t, "")
			s, _ := newStage(t, st)
			handle(t, s, events...)

			d := getDevice(t, st, r.DeviceID)
			want := r.Inventory
			if d.State != vigil.StateActive || d.OS != want.OS.Name+" "+want.OS.Version || d.Kernel != want.OS.Kernel ||
				d.Firmware != want.Firmware.Version || d.Vendor != want.Firmware.Vendor || d.Model != want.Firmware.Model ||
				d.Class != want.Class || len(d.Software) != len(want.Software) {
				t.Errorf("device from the example report = %+v", d)
			}
			for i, c := range want.Software {
				if d.Software[i].Name != c.Name || d.Software[i].Version != c.Version || d.Software[i].PURL != c.PURL || d.Software[i].CPE != c.CPE {
					t.Errorf("software[%d] = %+v, want %+v", i, d.Software[i], c)
				}
			}
			if len(d.Network) != len(r.Network.Interfaces) || d.Network[0].Interface != r.Network.Interfaces[0].Name ||
				len(d.Network[0].Addresses) != len(r.Network.Interfaces[0].Addresses) {
				t.Errorf("network = %+v, want %+v", d.Network, r.Network.Interfaces)
			}
			h := r.Health
			if d.Health == nil || d.Health.CPU != h.CPU || d.Health.Memory != h.Memory || d.Health.Disk != h.Disk ||
				d.Health.Uptime != int64(h.Uptime) || d.Health.Metrics["network.connections"] != float64(r.Network.Connections.Count) {
				t.Errorf("health = %+v, want from %+v", d.Health, h)
			}
			for k, v := range h.Metrics {
				if d.Health.Metrics[k] != v {
					t.Errorf("metric %s = %v, want %v", k, d.Health.Metrics[k], v)
				}
			}
			hist, err := st.HealthHistory(context.Background(), r.DeviceID, r.Time, r.Time.Add(time.Second))
			if err != nil || len(hist) != 1 {
				t.Errorf("history = %v, %v; want one sample", hist, err)
			}
			first, last := events[0].Time, events[0].Time
			for _, e := range events {
				first, last = minTime(first, e.Time), maxTime(last, e.Time)
			}
			if !d.FirstSeen.Equal(first) || !d.LastSeen.Equal(last) {
				t.Errorf("first seen %v, last seen %v; want %v and %v", d.FirstSeen, d.LastSeen, first, last)
			}
		})
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
