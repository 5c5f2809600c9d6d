package collect

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/wire"
)

func readSMART(t *testing.T, s *SMART, dev, name string) []wire.SecurityEvent {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata/smart", name))
	if err != nil {
		t.Fatal(err)
	}
	if s.disks == nil {
		s.disks = map[string]*smartDisk{}
	}
	var r wire.Report
	if err := s.disk(&r, s.Env.now(), dev, b); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return r.Events
}

func actions(evs []wire.SecurityEvent) string {
	var a []string
	for _, e := range evs {
		a = append(a, e.Action)
	}
	return strings.Join(a, ",")
}

// A disk's readings over its life: each condition is reported when it
// starts, not at every reading.
func TestSMARTReadings(t *testing.T) {
	s := &SMART{}
	for _, step := range []struct{ file, want string }{
		{"ata_healthy.json", "storage_error"}, // the first reading: 2 reallocated sectors
		{"ata_healthy.json", ""},
		{"ata_sectors.json", "storage_error"}, // 40 reallocated, 8 pending
		{"ata_sectors.json", ""},
		{"ata_failing.json", "disk_failing,storage_error"},
		{"ata_failing.json", ""},
	} {
		evs := readSMART(t, s, "/dev/sda", step.file)
		if got := actions(evs); got != step.want {
			t.Fatalf("%s: got %q, want %q: %v", step.file, got, step.want, evs)
		}
		for _, e := range evs {
			if e.Action == ActionDiskFailing {
				if !strings.Contains(e.Fields["hardware.disk.reason"], "self-assessment failed") ||
					!strings.Contains(e.Fields["hardware.disk.reason"], "Reallocated_Sector_Ct at 5, threshold 10") {
					t.Errorf("reason: %v", e.Fields)
				}
				if e.Severity != "critical" || e.Fields["hardware.disk.model"] != "Industrial SSD 32GB" {
					t.Errorf("event: %+v", e)
				}
			}
		}
	}
	if got := actions(readSMART(t, s, "/dev/sda", "ata_sectors.json")); got != "" {
		t.Fatalf("recovered disk: got %q", got) // fewer sectors: nothing new
	}
	if got := actions(readSMART(t, s, "/dev/sda", "ata_failing.json")); got != "disk_failing,storage_error" {
		t.Fatalf("failing again: got %q", got)
	}

	n := &SMART{}
	if got := actions(readSMART(t, n, "/dev/nvme0", "nvme_worn.json")); got != "flash_wear" {
		t.Fatalf("worn NVMe: got %q", got)
	}
	evs := readSMART(t, n, "/dev/nvme0", "nvme_warning.json")
	if got := actions(evs); got != "disk_failing,storage_error" {
		t.Fatalf("NVMe critical warning: got %q", got)
	}
	if r := evs[0].Fields["hardware.disk.reason"]; !strings.Contains(r, "critical warning 0x04") {
		t.Errorf("reason %q", r)
	}
}

// The output smartctl gave on this project's CI machine for a virtual
// disk without SMART: an error naming the disk, once.
func TestSMARTUnreadableDisk(t *testing.T) {
	s := &SMART{disks: map[string]*smartDisk{}}
	b, _ := os.ReadFile("testdata/smart/unreadable.json")
	var r wire.Report
	err := s.disk(&r, time.Now(), "/dev/vda", b)
	if err == nil || !strings.Contains(err.Error(), "/dev/vda") || !strings.Contains(err.Error(), "Unable to detect device type") {
		t.Fatalf("want an error naming the disk and smartctl's message, got %v", err)
	}
	if err := s.disk(&r, time.Now(), "/dev/vda", b); err != nil || len(r.Events) != 0 {
		t.Fatalf("second reading: want silence, got %v %v", err, r.Events)
	}
	if err := s.disk(&r, time.Now(), "/dev/vda", []byte(`{"a":1}`)); err != nil {
		t.Fatalf("still unreadable: want silence, got %v", err)
	}
	if _, err := ParseSMART([]byte(`{"a":1}`)); err == nil || !strings.Contains(err.Error(), "no \"smartctl\"") {
		t.Fatalf("not smartctl's output: %v", err)
	}
}

// The real smartctl, when installed: the disks it finds are read and the
// collector reads again only after its interval; without smartctl it does
// nothing.
func TestSMARTWithSmartctl(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	env := Env{Now: func() time.Time { return now }}
	missing := &SMART{Env: env, Command: "vigil-no-such-smartctl"}
	var r wire.Report
	if err := missing.Collect(context.Background(), &r); err != nil || len(r.Events) != 0 {
		t.Fatalf("without smartctl: want nothing, got %v %v", err, r.Events)
	}

	path, err := exec.LookPath("smartctl")
	if err != nil {
		if path, err = exec.LookPath("/usr/sbin/smartctl"); err != nil {
			t.Skip("smartctl (smartmontools) is not installed")
		}
	}
	s := &SMART{Env: env, Command: path}
	if err := s.Collect(context.Background(), &r); err != nil {
		// Disks smartctl lists but cannot read are said once.
		t.Logf("first reading: %v", err)
	}
	if err := s.Collect(context.Background(), &r); err != nil {
		t.Fatalf("a reading within the interval runs nothing, got %v", err)
	}
	// A file is no disk: smartctl's own message, naming it.
	img := filepath.Join(t.TempDir(), "disk.img")
	os.WriteFile(img, make([]byte, 1<<16), 0o600)
	s = &SMART{Env: env, Command: path, Devices: []string{img}}
	err = s.Collect(context.Background(), &r)
	if err == nil || !strings.Contains(err.Error(), img) {
		t.Fatalf("want an error naming %s, got %v", img, err)
	}
	t.Logf("%v", err)
	for _, e := range r.Events {
		t.Errorf("no event expected, got %+v", e)
	}
}

func FuzzParseSMART(f *testing.F) {
	names, _ := filepath.Glob("testdata/smart/*.json")
	for _, n := range names {
		b, _ := os.ReadFile(n)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := ParseSMART(b); err != nil {
			return
		}
		s := &SMART{disks: map[string]*smartDisk{}}
		var r wire.Report
		_ = s.disk(&r, time.Time{}, "/dev/x", b)
		for _, e := range r.Events {
			if e.Fields["hardware.device"] != "/dev/x" {
				t.Fatalf("event without its disk: %+v", e)
			}
		}
	})
}
