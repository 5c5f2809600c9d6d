package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/node"
	"github.com/vigil-iot/vigil/store"
)

// TestBaselineLearnFileServe learns a baseline file from three minutes of
// Modbus polling (vigil baseline learn --input), starts a server from it
// with the default learning period of 24 h (vigil serve --baseline), and
// posts only the write from a new writer: it is raised at once, because
// the file's learning is complete. A file learned for other partitions
// or another window is refused.
func TestBaselineLearnFileServe(t *testing.T) {
	dir := t.TempDir()
	start := time.Now().UTC().Add(-10 * time.Minute)
	all := modbusPolling(start)
	lines := bytes.Split(bytes.TrimSpace(all), []byte("\n"))
	learn := filepath.Join(dir, "learn.jsonl")
	os.WriteFile(learn, bytes.Join(lines[:len(lines)-1], []byte("\n")), 0o600)
	file := filepath.Join(dir, "baseline.json")
	out, code := run(t, "baseline", "learn", "--input", learn, "--output", file)
	if code != 0 || !strings.Contains(out, "learned=") {
		t.Fatalf("baseline learn: exit %d: %s", code, out)
	}
	// From a capture, through the sensor.
	pcap := filepath.Join("..", "..", "sensor", "testdata", "ipfrag", "coap-udp-mtu1280.pcapng")
	if out, code := run(t, "baseline", "learn", "--pcap", pcap, "--output", filepath.Join(dir, "pcap.json")); code != 0 || !strings.Contains(out, "learned=11 ") {
		t.Errorf("baseline learn --pcap: exit %d: %s", code, out)
	}
	if out, code := run(t, "baseline", "learn", "--input", learn, "--pcap", "x.pcap", "--output", file); code == 0 {
		t.Errorf("baseline learn with --input and --pcap: exit 0: %s", out)
	}

	cfg := node.DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.LogLevel = t.TempDir(), "127.0.0.1:0", "warn"
	cfg.Baseline.File = file
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(c *node.Config){
		"partitions": func(c *node.Config) { c.Partitions = 4 },
		"window":     func(c *node.Config) { c.Baseline.Window = node.Duration(5 * time.Second) },
	} {
		bad := cfg
		bad.DataDir = t.TempDir()
		mod(&bad)
		if a, err := node.Open(t.Context(), bad, newLogger(os.Stderr, "error")); err == nil || !strings.Contains(err.Error(), "baseline file") {
			if a != nil {
				a.Close()
			}
			t.Errorf("a file learned with other %s: %v", name, err)
		}
	}

	a := openTestApp(t, cfg)
	defer a.Close()
	c, err := client.New(a.URL(), a.AdminToken(), client.TLSConfig(a.CAPool()))
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.PostEvents(t.Context(), append(lines[len(lines)-1], '\n'))
	if err != nil || res.Accepted != 1 {
		t.Fatalf("post: %+v %v", res, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		alerts, _, err := c.ListAlerts(t.Context(), store.AlertFilter{RuleID: "baseline.new_modbus_writer"})
		if err != nil {
			t.Fatal(err)
		}
		if len(alerts) == 1 {
			if alerts[0].Fields["baseline.peer"] != "10.0.4.66" {
				t.Errorf("alert: %+v", alerts[0].Fields)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no new writer alert from a server started from the baseline file")
		}
		time.Sleep(200 * time.Millisecond)
	}
	var bf node.BaselineFile
	b, _ := os.ReadFile(file)
	if err := json.Unmarshal(b, &bf); err != nil || bf.Learned != len(lines)-1 || bf.Partitions != 8 {
		t.Errorf("file: learned %d, partitions %d, %v", bf.Learned, bf.Partitions, err)
	}
}
