package alert_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/alert"
	"github.com/vigil-iot/vigil/bus/natsbus"
	"github.com/vigil-iot/vigil/incident"
	"github.com/vigil-iot/vigil/store"
)

func TestStageOnEmbeddedBus(t *testing.T)  { testStageOnBus(t, false) }
func TestStageOnExternalNATS(t *testing.T) { testStageOnBus(t, true) }

func testStageOnBus(t *testing.T, external bool) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := natsbus.Config{DataDir: t.TempDir(), FetchWait: 100 * time.Millisecond}
	if external {
		cfg.URL = os.Getenv("VIGIL_TEST_NATS_URL")
		if cfg.URL == "" {
			t.Skip("VIGIL_TEST_NATS_URL is not set (e.g. nats://127.0.0.1:4222)")
		}
		cfg.Prefix = fmt.Sprintf("test_alert_%d", time.Now().UnixNano())
	}
	b, err := natsbus.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if external {
		defer b.DeleteStreams(context.Background())
	}
	st := openStore(t, "")
	corr, err := incident.NewCorrelator(ctx, st, incident.Options{Clock: fixedClock(t0)})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s, err := alert.NewStage(b, st, alert.Options{Assigner: corr, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	// A brute force raised three times (one alert), then a telnet listener
	// on the same device (a second alert, same incident).
	telnet := raised("t1", 4, vigil.SeverityHigh, "e9")
	telnet.RuleID, telnet.Title, telnet.Tags = "telnet-listener", "New telnet listener", []string{"attack.t1059.004"}
	in := []vigil.Alert{
		raised("a1", 0, vigil.SeverityMedium, "e1"),
		raised("a2", 1, vigil.SeverityMedium, "e2"),
		raised("a3", 2, vigil.SeverityMedium, "e3"),
		telnet,
	}
	if err := b.PublishAlerts(ctx, in); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	deadline := time.Now().Add(30 * time.Second)
	var got []vigil.Alert
	for {
		got, _, err = st.ListAlerts(ctx, store.AlertFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 2 && counter(t, reg, "vigil_alerts_total", "") == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s: %d alerts stored, %v counted; want 2 and 4", len(got), counter(t, reg, "vigil_alerts_total", ""))
		}
		time.Sleep(20 * time.Millisecond)
	}
	byID := map[string]vigil.Alert{}
	for _, a := range got {
		byID[a.ID] = a
	}
	a1, t1 := byID["a1"], byID["t1"]
	if a1.Count != 3 || len(a1.EventIDs) != 3 || t1.Count != 1 || a1.IncidentID == "" || a1.IncidentID != t1.IncidentID {
		t.Errorf("stored alerts: a1 count %d events %v incident %q; t1 count %d incident %q",
			a1.Count, a1.EventIDs, a1.IncidentID, t1.Count, t1.IncidentID)
	}
	inc, err := st.GetIncident(ctx, a1.IncidentID)
	if err != nil {
		t.Fatal(err)
	}
	if inc.Title != "New telnet listener on cam-1" || inc.Severity != vigil.SeverityHigh || inc.TimeToDetect() != 30*time.Second {
		t.Errorf("incident %q severity %s time to detect %v", inc.Title, inc.Severity, inc.TimeToDetect())
	}
	if n := counter(t, reg, "vigil_alerts_deduplicated_total", ""); n != 2 {
		t.Errorf("deduplicated = %v, want 2", n)
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v", err)
	}
}
