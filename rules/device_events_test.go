package rules

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/agent/collect"
	"github.com/vigil-iot/vigil/ingest/agent"
	"github.com/vigil-iot/vigil/wire"
)

// TestPackCatchesDeviceDoSAndHardware runs the agent's dos and hardware
// collectors on the kernel counters recorded during real floods
// (agent/collect/testdata/dos) and on a kernel log and boot state of a
// device that failed, sends their reports through the server's conversion
// (ingest/agent.Convert) and the pack: the flood, storage and reboot rules
// must fire.
func TestPackCatchesDeviceDoSAndHardware(t *testing.T) {
	files := readPack(t)
	rs := loadPack(t, files)
	ids := packIDs(t, files)
	root, state := t.TempDir(), filepath.Join(t.TempDir(), "boot.json")
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	write := func(p, content string) {
		t.Helper()
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	load := func(snapshot string) {
		t.Helper()
		for _, f := range []string{"snmp", "netstat", "tcp", "dev"} {
			b, err := os.ReadFile(filepath.Join("../agent/collect/testdata/dos", snapshot, "proc/net", f))
			if err != nil {
				t.Fatal(err)
			}
			write("/proc/net/"+f, string(b))
		}
	}
	// The previous run of the agent, on another boot, never stopped.
	if err := os.WriteFile(state, []byte(`{"boot_id":"old-boot","running":true}`), 0o600); err != nil {
		t.Fatal(err)
	}
	write("/proc/sys/kernel/random/boot_id", "new-boot\n")
	write("/proc/uptime", "42.00 40.00\n")
	write("/dev/kmsg", "")
	env := collect.Env{Root: root, Now: func() time.Time { return now }}
	cs := []collect.Collector{&collect.DoS{Env: env}, &collect.Hardware{Env: env, StateFile: state}}
	var evs []vigil.Event
	seq := uint64(0)
	report := func() {
		t.Helper()
		seq++
		r := &wire.Report{Version: wire.Version, DeviceID: "cam-0042", Time: now, Sequence: seq, Agent: wire.Agent{Version: "test"}}
		for _, c := range cs {
			if err := c.Collect(context.Background(), r); err != nil {
				t.Fatalf("%s: %v", c.Name(), err)
			}
		}
		out, probs := agent.Convert(r, now)
		if len(probs) > 0 {
			t.Fatalf("report rejected: %v", probs)
		}
		evs = append(evs, out...)
	}
	load("before")
	report()
	load("syn")
	now = now.Add(10 * time.Second)
	report()
	load("udp")
	f, err := os.OpenFile(filepath.Join(root, "/dev/kmsg"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("3,101,6000,-;I/O error, dev mmcblk0, sector 123456 op 0x1:(WRITE) flags 0x800 phys_seg 1 prio class 0\n")
	f.Close()
	now = now.Add(10 * time.Second)
	report()
	got := detect(rs, evs)
	for _, stem := range []string{"dos_syn_flood", "dos_udp_icmp_flood", "hw_storage_failure", "hw_unexpected_reboot"} {
		if got[ids[stem]] == 0 {
			t.Errorf("the device's reports did not raise %s (%s); raised %v", stem, ids[stem], got)
		}
	}
	t.Logf("raised %d distinct rules from %d events", len(got), len(evs))
}
