package node

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/bus"
	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/detect/baseline"
)

// TestBaselineCheckpointPeriodic checks that a running server saves its
// baseline every baseline.checkpoint without a shutdown (what a SIGKILL
// leaves), and that the saved state restores on another detector, as on
// another node with the same store.
func TestBaselineCheckpointPeriodic(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.LogLevel = t.TempDir(), "127.0.0.1:0", "warn"
	cfg.Baseline.Checkpoint = Duration(time.Second)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a := openTestApp(t, cfg)
	defer a.Close()
	c, err := client.New(a.URL(), a.AdminToken(), client.TLSConfig(a.CAPool()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PostEvents(t.Context(), modbusPolling(time.Now().UTC().Add(-5*time.Minute))); err != nil {
		t.Fatal(err)
	}
	p := bus.Partition("scada-1", cfg.Partitions)
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := a.Store().GetBaseline(t.Context(), p)
		if err == nil {
			state, err := gunzip(b.State)
			if err != nil {
				t.Fatal(err)
			}
			other := baseline.New(baseline.Options{})
			if err := other.Restore(p, state); err != nil {
				t.Fatal(err)
			}
			if v, err := other.Show("scada-1"); err == nil && v.Devices[0].Events > 0 {
				return
			}
		} else if vigil.ErrorCode(err) != vigil.ENOTFOUND {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint of scada-1's partition within 30 s at a 1 s interval")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func openTestApp(t *testing.T, cfg Config) *Node {
	t.Helper()
	a, err := Open(t.Context(), cfg, newLogger(os.Stderr, "warn"))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		a.Close()
		t.Fatal(err)
	}
	return a
}

// modbusPolling returns NDJSON of three minutes of Modbus polling that
// ends, at 3 minutes, with a write to 10.0.4.20 from 10.0.4.66 (which only
// ever read 10.0.4.21): the learned baseline's new writer.
func modbusPolling(start time.Time) []byte {
	var b strings.Builder
	modbus := func(at time.Duration, dev, src, dst string, fc int) {
		ev, _ := json.Marshal(map[string]any{
			"time": start.Add(at).Format(time.RFC3339Nano), "device_id": dev, "source": "sensor", "kind": "modbus", "action": "request",
			"network": map[string]any{"transport": "tcp", "src_ip": src, "src_port": 50211, "dst_ip": dst, "dst_port": 502},
			"fields":  map[string]any{"modbus.function_code": fc, "modbus.unit_id": 1, "modbus.address": 100, "modbus.table": "holding_registers", "modbus.write": fc == 6 || fc == 16},
		})
		b.Write(ev)
		b.WriteByte('\n')
	}
	for s := time.Duration(0); s < 3*time.Minute; s += 5 * time.Second {
		modbus(s, "scada-1", "10.0.4.9", "10.0.4.20", 3)
		if s%(30*time.Second) == 0 {
			modbus(s, "scada-1", "10.0.4.9", "10.0.4.20", 6)
		}
		modbus(s, "hmi-7", "10.0.4.66", "10.0.4.21", 3)
	}
	modbus(3*time.Minute, "hmi-7", "10.0.4.66", "10.0.4.20", 16)
	return []byte(b.String())
}
