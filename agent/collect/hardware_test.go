package collect

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/wire"
)

// hwRoot is a file tree the Hardware collector reads.
type hwRoot struct {
	t    *testing.T
	root string
	now  time.Time
}

func newHWRoot(t *testing.T) *hwRoot {
	r := &hwRoot{t: t, root: t.TempDir(), now: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	r.write("/proc/uptime", "1000.00 1900.00\n")
	r.write("/proc/sys/kernel/random/boot_id", "11111111-2222-3333-4444-555555555555\n")
	r.write("/dev/kmsg", "")
	return r
}

func (r *hwRoot) env() Env { return Env{Root: r.root, Now: func() time.Time { return r.now }} }

func (r *hwRoot) write(p, content string) {
	r.t.Helper()
	full := filepath.Join(r.root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

func (r *hwRoot) appendKmsg(lines ...string) {
	r.t.Helper()
	f, err := os.OpenFile(filepath.Join(r.root, "/dev/kmsg"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		r.t.Fatal(err)
	}
	defer f.Close()
	for _, l := range lines {
		fmt.Fprintln(f, l)
	}
}

// tick moves the wall clock and the time since boot by d.
func (r *hwRoot) tick(d time.Duration) {
	r.now = r.now.Add(d)
	b, _ := os.ReadFile(filepath.Join(r.root, "/proc/uptime"))
	var up float64
	fmt.Sscan(string(b), &up)
	r.write("/proc/uptime", fmt.Sprintf("%.2f 0.00\n", up+d.Seconds()))
}

// collectHW runs one collection and returns "action" per event (sorted)
// and the events.
func collectHW(t *testing.T, h *Hardware) ([]string, []wire.SecurityEvent) {
	t.Helper()
	var rep wire.Report
	if err := h.Collect(context.Background(), &rep); err != nil {
		t.Fatalf("collect: %v", err)
	}
	var out []string
	for _, e := range rep.Events {
		out = append(out, e.Kind+"/"+e.Action)
	}
	sort.Strings(out)
	return out, rep.Events
}

func expectHW(t *testing.T, h *Hardware, step string, want ...string) []wire.SecurityEvent {
	t.Helper()
	got, evs := collectHW(t, h)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s: got %v, want %v (%v)", step, got, want, evs)
	}
	return evs
}

func field(t *testing.T, evs []wire.SecurityEvent, action, name, want string) {
	t.Helper()
	for _, e := range evs {
		if e.Action == action {
			if e.Fields[name] != want {
				t.Errorf("%s: %s = %q, want %q (%v)", action, name, e.Fields[name], want, e.Fields)
			}
			return
		}
	}
	t.Errorf("no %s event in %v", action, evs)
}

func TestHardwareFromSysfs(t *testing.T) {
	r := newHWRoot(t)
	mc := "/sys/devices/system/edac/mc/mc0/"
	r.write(mc+"ce_count", "3\n")
	r.write(mc+"ue_count", "0\n")
	cpu := "/sys/devices/system/cpu/cpu0/thermal_throttle/"
	r.write(cpu+"core_throttle_count", "10\n")
	r.write(cpu+"package_throttle_count", "2\n")
	card := "/sys/class/mmc_host/mmc0/mmc0:0001/"
	r.write(card+"life_time", "0x02 0x03\n")
	r.write(card+"pre_eol_info", "0x01\n")
	hw := "/sys/class/hwmon/hwmon2/"
	r.write(hw+"name", "rpi_volt\n")
	r.write(hw+"in0_alarm", "0\n")
	r.write(hw+"in0_input", "4950\n")
	rpi := "/sys/devices/platform/soc/soc:firmware/get_throttled"
	r.write(rpi, "0x0\n")
	r.write("/proc/vmstat", "nr_free_pages 1000\noom_kill 1\nnr_foo 2\n")
	mounts := "/dev/mmcblk0p2 / ext4 rw,noatime 0 0\n/dev/sda1 /mnt/data\\040disk ext4 rw,relatime 0 0\nproc /proc proc rw 0 0\n"
	r.write("/proc/mounts", mounts)
	h := &Hardware{Env: r.env()}
	expectHW(t, h, "first collection (baseline)")
	r.tick(time.Minute)
	expectHW(t, h, "nothing changed")

	r.write(mc+"ce_count", "5\n")
	r.write(cpu+"core_throttle_count", "14\n")
	r.write("/proc/vmstat", "nr_free_pages 1000\noom_kill 3\nnr_foo 2\n")
	r.write("/proc/mounts", strings.Replace(mounts, "/mnt/data\\040disk ext4 rw,", "/mnt/data\\040disk ext4 ro,", 1))
	r.tick(time.Minute)
	evs := expectHW(t, h, "counters up, a remount", "hardware/filesystem_readonly", "hardware/memory_error", "hardware/oom_kill", "hardware/thermal_throttle")
	field(t, evs, ActionMemoryError, "hardware.memory.corrected_errors", "2")
	field(t, evs, ActionMemoryError, "hardware.memory.controller", "mc0")
	field(t, evs, ActionThermalThrottle, "hardware.throttle.events", "4")
	field(t, evs, ActionThermalThrottle, "hardware.throttle.cpus", "cpu0")
	field(t, evs, ActionOOMKill, "hardware.oom_kills", "2")
	field(t, evs, ActionFilesystemReadOnly, "mount.point", "/mnt/data disk")
	field(t, evs, ActionFilesystemReadOnly, "mount.device", "/dev/sda1")
	r.tick(time.Minute)
	expectHW(t, h, "still read-only, counters flat")

	r.write(mc+"ue_count", "1\n")
	r.write(card+"life_time", "0x09 0x03\n")
	r.write(card+"pre_eol_info", "0x02\n")
	r.write(hw+"in0_alarm", "1\n")
	r.write(rpi, "0x50005\n")
	r.tick(time.Minute)
	evs = expectHW(t, h, "wear, alarms, an uncorrected error", "hardware/flash_wear", "hardware/flash_wear",
		"hardware/memory_error", "hardware/thermal_throttle", "hardware/under_voltage", "hardware/voltage_alarm")
	for _, e := range evs {
		if e.Action == ActionMemoryError && e.Severity != "critical" {
			t.Errorf("an uncorrected memory error: severity %q, want critical", e.Severity)
		}
	}
	field(t, evs, ActionVoltageAlarm, "hardware.sensor", "hwmon2/in0")
	field(t, evs, ActionVoltageAlarm, "hardware.sensor.name", "rpi_volt")
	field(t, evs, ActionVoltageAlarm, "hardware.voltage.mv", "4950")
	field(t, evs, ActionUnderVoltage, "hardware.rpi.throttled", "0x50005")
	r.tick(time.Minute)
	expectHW(t, h, "the same states: no repeat")
	r.write(rpi, "0x50000\n") // the "now" bits clear
	r.tick(time.Minute)
	expectHW(t, h, "under-voltage over")
	r.write(rpi, "0x50001\n")
	r.tick(time.Minute)
	expectHW(t, h, "under-voltage again", "hardware/under_voltage")
}

func TestHardwareKmsgFromTheStart(t *testing.T) {
	r := newHWRoot(t)
	r.appendKmsg("3,100,5000,-;blk_update_request: I/O error, dev sdz, sector 1 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0")
	r.write("/proc/vmstat", "oom_kill 0\n")
	h := &Hardware{Env: r.env()}
	expectHW(t, h, "history is not replayed")
	r.appendKmsg(
		"3,101,6000,-;I/O error, dev mmcblk0, sector 123456 op 0x1:(WRITE) flags 0x800 phys_seg 1 prio class 0",
		" SUBSYSTEM=block",
		" DEVICE=b179:0",
		"6,102,6001,-;usb 1-1: new high-speed USB device number 3 using xhci_hcd",
		"2,103,6002,-;EXT4-fs error (device mmcblk0p2): ext4_find_entry:1455: inode #2: comm ls: reading directory lblock 0",
		"3,104,6003,-;Out of memory: Killed process 977 (camera\\x2dd) total-vm:123456kB, anon-rss:100000kB",
		"4,105,6004,-;mce: [Hardware Error]: Machine check events logged",
		"4,106,6005,-;hwmon hwmon1: Undervoltage detected!",
		"3,107,6006,-;Buffer I/O error on dev sda1, logical block 0, lost async page write")
	r.write("/proc/vmstat", "oom_kill 1\n") // the log names it: no second event
	r.tick(time.Minute)
	evs := expectHW(t, h, "new records", "hardware/machine_check", "hardware/oom_kill", "hardware/storage_error",
		"hardware/storage_error", "hardware/storage_error", "hardware/under_voltage")
	var devs []string
	for _, e := range evs {
		if e.Action == ActionStorageError {
			devs = append(devs, e.Fields["hardware.device"])
		}
		if e.Fields["message"] == "" {
			t.Errorf("%s without message", e.Action)
		}
	}
	if fmt.Sprint(devs) != "[mmcblk0 mmcblk0p2 sda1]" {
		t.Errorf("storage devices %v", devs)
	}
	for _, e := range evs {
		// Dated by the record: boot (now − 1060 s of uptime) + its 6.00x s.
		if boot := r.now.Add(-1060 * time.Second); e.Time.Before(boot.Add(6*time.Millisecond)) || e.Time.After(boot.Add(7*time.Millisecond)) {
			t.Errorf("%s dated %v, want the record's time, 6 ms after the boot at %v", e.Action, e.Time, boot)
		}
	}
	field(t, evs, ActionOOMKill, "process.name", "camera-d")
	field(t, evs, ActionOOMKill, "process.pid", "977")
	// A record cut in the middle is read whole at the next call.
	f, _ := os.OpenFile(filepath.Join(r.root, "/dev/kmsg"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("3,108,7000,-;I/O error, dev s")
	f.Close()
	r.tick(time.Minute)
	expectHW(t, h, "half a record")
	r.appendKmsg("db, sector 9 op 0x1:(WRITE)")
	r.tick(time.Minute)
	evs = expectHW(t, h, "the rest of it", "hardware/storage_error")
	field(t, evs, ActionStorageError, "hardware.device", "sdb")
}

func TestHardwareUncleanReboot(t *testing.T) {
	r := newHWRoot(t)
	state := filepath.Join(t.TempDir(), "boot.json")
	start := func() *Hardware {
		h := &Hardware{Env: r.env(), StateFile: state}
		return h
	}
	h := start()
	expectHW(t, h, "first start ever: nothing to compare")
	h.Close()
	h = start()
	expectHW(t, h, "restart, same boot")
	h.Close()

	r.write("/proc/sys/kernel/random/boot_id", "22222222-2222-3333-4444-555555555555\n")
	r.write("/proc/uptime", "35.10 60.00\n")
	h = start()
	evs := expectHW(t, h, "a reboot after a clean stop", "system/boot")
	field(t, evs, "boot", "host.boot.clean", "true")
	field(t, evs, "boot", "host.boot.previous_id", "11111111-2222-3333-4444-555555555555")
	field(t, evs, "boot", "host.uptime", "35")
	// No Close: the watchdog reset the device.
	r.write("/proc/sys/kernel/random/boot_id", "33333333-2222-3333-4444-555555555555\n")
	r.write("/sys/class/watchdog/watchdog0/bootstatus", "0\n")
	r.write("/sys/class/watchdog/watchdog1/bootstatus", "32\n")
	h = start()
	evs = expectHW(t, h, "a reboot while running", "hardware/unexpected_reboot", "system/boot")
	field(t, evs, "boot", "host.boot.clean", "false")
	field(t, evs, ActionUnexpectedReboot, "host.boot.id", "33333333-2222-3333-4444-555555555555")
	field(t, evs, ActionUnexpectedReboot, "host.boot.previous_id", "22222222-2222-3333-4444-555555555555")
	field(t, evs, ActionUnexpectedReboot, "host.boot.watchdog", "watchdog1")
	// The agent itself crashing (same boot) is no reboot.
	h = start()
	expectHW(t, h, "agent restarted after a crash, same boot")
	h.Close()

	os.WriteFile(state, []byte("{not json"), 0o600)
	h = start()
	var rep wire.Report
	if err := h.Collect(context.Background(), &rep); err == nil || !strings.Contains(err.Error(), state) {
		t.Errorf("a broken state file: got %v, want an error naming it", err)
	}
}

func TestHardwareClockJump(t *testing.T) {
	r := newHWRoot(t)
	h := &Hardware{Env: r.env()}
	expectHW(t, h, "first")
	r.tick(time.Minute)
	expectHW(t, h, "both clocks move together")
	r.now = r.now.Add(50 * time.Second) // NTP slewing a few seconds is not a jump; 50s under 1m is not either
	r.tick(time.Minute)
	expectHW(t, h, "50s apart")
	r.now = r.now.Add(-3 * time.Hour)
	r.tick(time.Minute)
	evs := expectHW(t, h, "set back 3h", "hardware/clock_jump")
	field(t, evs, ActionClockJump, "clock.jump_seconds", "-10800")
	r.tick(time.Minute)
	expectHW(t, h, "steady again")
}

func TestParseKmsgLine(t *testing.T) {
	f := func(in string, ok bool, want KmsgRecord) {
		t.Helper()
		got, gotOK := ParseKmsgLine([]byte(in))
		if gotOK != ok || got != want {
			t.Errorf("%q: got %+v %v, want %+v %v", in, got, gotOK, want, ok)
		}
	}
	f("6,339,5140900,-;NET: Registered protocol family 10\n", true, KmsgRecord{Priority: 6, Seq: 339, Usec: 5140900, Message: "NET: Registered protocol family 10"})
	f("14,2,3,c,more;user line", true, KmsgRecord{Priority: 14, Seq: 2, Usec: 3, Message: "user line"})
	f("3,1,1,-;tab\there \\x1b[31m", true, KmsgRecord{Priority: 3, Seq: 1, Usec: 1, Message: "tab here  [31m"})
	f(" SUBSYSTEM=block", false, KmsgRecord{})
	f("no header", false, KmsgRecord{})
	f("x,1,1,-;m", false, KmsgRecord{})
	f("1,2;m", false, KmsgRecord{})
	f("", false, KmsgRecord{})
	if r, _ := ParseKmsgLine([]byte("14,2,3,-;x")); r.Facility() != 1 || r.Level() != 6 {
		t.Errorf("priority 14: facility %d level %d, want 1 and 6", r.Facility(), r.Level())
	}
}

func FuzzParseKmsgLine(f *testing.F) {
	for _, s := range []string{
		"6,339,5140900,-;NET: Registered protocol family 10",
		"3,101,6000,-;I/O error, dev mmcblk0, sector 123456 op 0x1:(WRITE)",
		"3,104,6003,-;Out of memory: Killed process 977 (camera\\x2dd) total-vm:1kB",
		"2,103,6002,-;EXT4-fs error (device mmcblk0p2): ext4_find_entry",
		" DEVICE=b179:0", "3,1,1,-;\\x", "3,1,1,-;Killed process (", "1,1,1;EXT4-fs (",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, ok := ParseKmsgLine(b)
		if !ok {
			return
		}
		if !printable([]byte(r.Message)) {
			t.Fatalf("control characters left in %q", r.Message)
		}
		if k, ok := ClassifyKmsg(r.Message); ok {
			if k.Action == "" || len(k.Device) > 64 || k.PID < 0 {
				t.Fatalf("%q: bad classification %+v", r.Message, k)
			}
		}
	})
}

// BenchmarkHardwareCollect is one collection of the hardware collector on
// this machine's own /proc and /sys (the kernel log read, nothing new in
// it).
func BenchmarkHardwareCollect(b *testing.B) {
	h := &Hardware{}
	defer h.Close()
	var rep wire.Report
	b.ReportAllocs()
	for b.Loop() {
		rep.Events = rep.Events[:0]
		if err := h.Collect(context.Background(), &rep); err != nil {
			b.Fatal(err)
		}
	}
}
