package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/ingest/devmap"
	"github.com/vigil-iot/vigil/store"
)

// TestDeviceMapping: a camera reports its inventory (its address
// 192.168.1.20) as an agent does; then a Zeek conn log and a syslog file
// that name it by address and by host name are ingested into the server:
// their events are stored under the camera's device id, and so reach the
// graph and the incidents of that device.
func TestDeviceMapping(t *testing.T) {
	a := startTestApp(t)
	c, err := client.New(a.URL(), a.AdminToken(), client.TLSConfig(a.CAPool()))
	if err != nil {
		t.Fatal(err)
	}
	report, err := os.ReadFile(filepath.Join("..", "..", "wire", "testdata", "report.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if res, err := c.PostReport(t.Context(), "application/xml", report); err != nil || res.Accepted == 0 {
		t.Fatalf("report: %+v %v", res, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, err := a.Store().GetDevice(t.Context(), "cam-0042")
		if err == nil && len(d.Network) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the camera is not in the inventory: %+v %v", d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Wait for the index to know it (it reloads within seconds of a miss).
	if err := a.RefreshDeviceIndex(t.Context()); err != nil {
		t.Fatal(err)
	}
	conn := writeTemp(t, "conn.log", ingestConnLog)
	sys := writeTemp(t, "messages", "<38>1 2026-03-01T10:00:05Z CAM-0042 dropbear 77 - - Bad password attempt for 'admin' from 203.0.113.9:5555\n")
	ca := filepath.Join(a.Config().DataDir, "pki", "ca.crt")
	for _, f := range []string{conn, sys} {
		if out, code := run(t, "ingest", f, "--server", a.URL(), "--token", a.AdminToken(), "--ca", ca); code != 0 {
			t.Fatalf("ingest %s: exit %d\n%s", f, code, out)
		}
	}
	for {
		flows, _, err := a.Store().ListEvents(t.Context(), store.EventFilter{Kind: "flow", DeviceID: "cam-0042"})
		if err != nil {
			t.Fatal(err)
		}
		logs, _, err := a.Store().ListEvents(t.Context(), store.EventFilter{Kind: "syslog", DeviceID: "cam-0042"})
		if err != nil {
			t.Fatal(err)
		}
		if len(flows) == 3 && len(logs) == 1 {
			if flows[0].Fields[devmap.FieldMappedFrom] != "source.ip" || logs[0].Fields[devmap.FieldMappedFrom] != "host.hostname" {
				t.Fatalf("mapped from: %v %v", flows[0].Fields, logs[0].Fields)
			}
			return
		}
		if time.Now().After(deadline.Add(30 * time.Second)) {
			t.Fatalf("%d flows and %d syslog events of cam-0042 stored, want 3 and 1", len(flows), len(logs))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
