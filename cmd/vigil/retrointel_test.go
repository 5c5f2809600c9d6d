package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/store"
)

// TestNewIndicatorsHuntedInHistory: a device talked to an address before
// any feed named it; when a feed naming it is imported, vigil serve
// hunts the new indicator over the stored history (retro_intel) and
// raises an alert marked retro on that device.
func TestNewIndicatorsHuntedInHistory(t *testing.T) {
	a := startTestApp(t)
	c, err := client.New(a.URL(), a.AdminToken(), client.TLSConfig(a.CAPool()))
	if err != nil {
		t.Fatal(err)
	}
	ev, _ := json.Marshal(map[string]any{
		"time": time.Now().UTC().Add(-time.Hour).Format(time.RFC3339Nano), "device_id": "retro-cam-1", "kind": "network", "action": "connect",
		"network": map[string]any{"transport": "tcp", "src_ip": "10.0.0.9", "dst_ip": "198.51.100.77", "dst_port": 443},
	})
	if _, err := c.PostEvents(t.Context(), append(ev, '\n')); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the event stored", func() (bool, string) {
		evs, _, err := a.Store().ListEvents(t.Context(), store.EventFilter{DeviceID: "retro-cam-1"})
		return err == nil && len(evs) == 1, "not stored yet"
	})
	if as, _, _ := a.Store().ListAlerts(t.Context(), store.AlertFilter{DeviceID: "retro-cam-1"}); len(as) != 0 {
		t.Fatalf("an alert before any feed named the address: %+v", as[0])
	}
	feed := filepath.Join(t.TempDir(), "c2.txt")
	if err := os.WriteFile(feed, []byte("# c2 servers\n198.51.100.77\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conn := []string{"--server", a.URL(), "--token", a.AdminToken(), "--ca", filepath.Join(a.Config().DataDir, "pki", "ca.crt")}
	if out, code := run(t, append([]string{"intel", "import", "--name", "late-c2", feed}, conn...)...); code != 0 {
		t.Fatalf("intel import: exit %d: %s", code, out)
	}
	waitFor(t, "a retro alert for the indicator found in history", func() (bool, string) {
		as, _, err := a.Store().ListAlerts(t.Context(), store.AlertFilter{DeviceID: "retro-cam-1"})
		if err != nil {
			return false, err.Error()
		}
		for _, al := range as {
			if al.Retro && strings.Contains(al.RuleID, "late-c2") {
				return true, ""
			}
		}
		return false, "no retro alert naming the feed yet"
	})
}
