package collect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-iot/vigil/wire"
)

// KindHardware is the kind of the failing-hardware events Hardware emits.
const KindHardware = "hardware"

// Hardware actions.
const (
	ActionMemoryError        = "memory_error"
	ActionStorageError       = "storage_error"
	ActionFilesystemReadOnly = "filesystem_readonly"
	ActionFlashWear          = "flash_wear"
	ActionThermalThrottle    = "thermal_throttle"
	ActionUnderVoltage       = "under_voltage"
	ActionVoltageAlarm       = "voltage_alarm"
	ActionOOMKill            = "oom_kill"
	ActionMachineCheck       = "machine_check"
	ActionUnexpectedReboot   = "unexpected_reboot"
	ActionClockJump          = "clock_jump"
)

// Hardware reports failing hardware: memory errors (EDAC counters),
// storage I/O errors and machine checks (kernel log), file systems that
// were writable and are now read-only (/proc/mounts), eMMC/SD wear (the
// card's life-time estimates), thermal throttling (per-CPU throttle
// counters, the Raspberry Pi firmware's flags), under-voltage (Raspberry
// Pi flags, hwmon voltage alarms), OOM kills (/proc/vmstat and the kernel
// log), unexpected reboots (a new boot id while the state file says the
// agent had not stopped) and clock jumps (the wall clock moving apart from
// the time since boot).
//
// Counters (EDAC, throttle counts, oom_kill) and the mount table are
// baselined at the first call: what happened before the agent started is
// not reported, except a reboot, found from the state file, and wear and
// voltage states, reported when first seen. The kernel log is read from the
// agent's start (/dev/kmsg, nonblocking; without permission it is skipped
// and said once).
type Hardware struct {
	Env Env
	// StateFile keeps the boot id and whether the agent is running across
	// restarts (in the agent's state directory); empty: no reboot events.
	StateFile string
	// ClockJump is the divergence of the wall clock from the time since
	// boot between two calls that counts as a jump (default 1m).
	ClockJump time.Duration
	// WearLevel is the eMMC life-time estimate (1 = 0-10% used ... 10 =
	// 90-100%, 11 = exceeded) from which wear is reported (default 9).
	WearLevel int

	started  bool
	kmsg     int // fd, -1 when closed or unusable
	kmsgBuf  []byte
	kmsgPart []byte
	kmsgErr  bool

	edac     map[string][2]uint64
	throttle map[string]uint64
	oomKill  uint64
	haveOOM  bool
	mountsRO map[string]bool
	wear     map[string]int
	alarms   map[string]bool
	rpiFlags uint64
	bootID   string

	prevWall   time.Time
	prevUptime float64
	haveClock  bool

	paths hwPaths
}

// hwPaths are the sysfs files found at the first call.
type hwPaths struct {
	edac, throttle, lifeTime, preEOL, alarms []string
}

type bootState struct {
	BootID  string `json:"boot_id"`
	Running bool   `json:"running"`
}

// Name returns "hardware".
func (h *Hardware) Name() string { return "hardware" }

// event emits a hardware event with fields given as name, value pairs.
func (h *Hardware) event(r *wire.Report, action, severity string, kv ...string) {
	h.eventAt(r, h.Env.now(), action, severity, kv...)
}

func (h *Hardware) eventAt(r *wire.Report, t time.Time, action, severity string, kv ...string) {
	f := make(wire.Fields, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			f[kv[i]] = kv[i+1]
		}
	}
	r.Events = append(r.Events, newEvent(t, KindHardware, "host", action, "failure", severity, f))
}

// Collect reports what changed since the previous call.
func (h *Hardware) Collect(_ context.Context, r *wire.Report) error {
	first := !h.started
	var errs []error
	if first {
		h.started = true
		h.kmsg = -1
		if err := h.openKmsg(); err != nil {
			errs = append(errs, err)
		}
		h.glob()
		if err := h.boot(r); err != nil {
			errs = append(errs, err)
		}
	}
	oomFromLog := 0
	if err := h.readKmsg(r, &oomFromLog); err != nil {
		errs = append(errs, err)
	}
	h.counters(r, first, oomFromLog)
	h.mounts(r, first)
	h.states(r)
	h.clock(r)
	return errors.Join(errs...)
}

// Close marks a clean stop in the state file and closes the kernel log.
func (h *Hardware) Close() error {
	if h.started && h.kmsg >= 0 {
		syscall.Close(h.kmsg)
		h.kmsg = -1
	}
	if h.StateFile == "" || h.bootID == "" {
		return nil
	}
	return writeBootState(h.StateFile, bootState{BootID: h.bootID, Running: false})
}

func (h *Hardware) glob() {
	g := func(pattern string) []string {
		m, _ := filepath.Glob(h.Env.path(pattern))
		return m
	}
	h.paths.edac = g("/sys/devices/system/edac/mc/mc*")
	h.paths.throttle = append(g("/sys/devices/system/cpu/cpu*/thermal_throttle/core_throttle_count"),
		g("/sys/devices/system/cpu/cpu*/thermal_throttle/package_throttle_count")...)
	h.paths.lifeTime = g("/sys/class/mmc_host/mmc*/mmc*:*/life_time")
	h.paths.preEOL = g("/sys/class/mmc_host/mmc*/mmc*:*/pre_eol_info")
	h.paths.alarms = g("/sys/class/hwmon/hwmon*/in*_alarm")
}

// boot compares the boot id with the state file's: a new boot after a
// run that did not stop is an unexpected reboot; every new boot is a
// system boot event.
func (h *Hardware) boot(r *wire.Report) error {
	b, err := os.ReadFile(h.Env.path("/proc/sys/kernel/random/boot_id"))
	if err != nil || h.StateFile == "" {
		return nil // no boot id: no reboot detection
	}
	h.bootID = strings.TrimSpace(string(b))
	var prev bootState
	if b, err := os.ReadFile(h.StateFile); err == nil {
		if err := json.Unmarshal(b, &prev); err != nil {
			return fmt.Errorf("cannot read boot state %s: %w", h.StateFile, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cannot read boot state: %w", err)
	}
	if prev.BootID != "" && prev.BootID != h.bootID {
		up := ""
		if v := h.uptime(); v > 0 {
			up = strconv.FormatInt(int64(v), 10)
		}
		clean := "true"
		if prev.Running {
			clean = "false"
			h.event(r, ActionUnexpectedReboot, "high", "host.boot.id", h.bootID, "host.boot.previous_id", prev.BootID, "host.uptime", up,
				"host.boot.watchdog", h.watchdogReset(),
				"event.reason", "the device restarted while the agent was running: power loss, watchdog, kernel panic or a forced reset")
		}
		f := wire.Fields{"host.boot.id": h.bootID, "host.boot.previous_id": prev.BootID, "host.boot.clean": clean}
		if up != "" {
			f["host.uptime"] = up
		}
		r.Events = append(r.Events, newEvent(h.Env.now(), KindSystem, "host", "boot", "success", "informational", f))
	}
	return writeBootState(h.StateFile, bootState{BootID: h.bootID, Running: true})
}

// watchdogReset names the watchdog whose driver says the last reboot was
// its doing (WDIOF_CARDRESET in bootstatus), or returns "".
func (h *Hardware) watchdogReset() string {
	m, _ := filepath.Glob(h.Env.path("/sys/class/watchdog/watchdog*/bootstatus"))
	for _, p := range m {
		if v, ok := readUint(p); ok && v&0x20 != 0 {
			return filepath.Base(filepath.Dir(p))
		}
	}
	return ""
}

func writeBootState(path string, s bootState) error {
	b, _ := json.Marshal(s)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("cannot write boot state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("cannot write boot state: %w", err)
	}
	return nil
}

func (h *Hardware) uptime() float64 {
	b, err := os.ReadFile(h.Env.path("/proc/uptime"))
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(b), " ")
	v, err := strconv.ParseFloat(strings.TrimSpace(first), 64)
	if err != nil {
		return 0
	}
	return v
}

// openKmsg opens the kernel log at its end; without one (or without
// permission: dmesg_restrict and no CAP_SYSLOG) the log is skipped, said
// once by the error.
func (h *Hardware) openKmsg() error {
	fd, err := syscall.Open(h.Env.path("/dev/kmsg"), syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err == syscall.ENOENT {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot read the kernel log, storage errors and OOM kills from it are not reported: %w", err)
	}
	// From the agent's start: past records are not replayed.
	if _, err := syscall.Seek(fd, 0, 2); err != nil {
		syscall.Close(fd)
		return fmt.Errorf("cannot read the kernel log: %w", err)
	}
	h.kmsg = fd
	h.kmsgBuf = make([]byte, 8192) // the kernel's own bound on a formatted record
	return nil
}

// readKmsg reads the records logged since the previous call (at most 1000
// a call) and emits those that report hardware trouble or OOM kills.
func (h *Hardware) readKmsg(r *wire.Report, ooms *int) error {
	if h.kmsg < 0 {
		return nil
	}
	// A record's time is the boot time plus its microseconds since boot.
	now := h.Env.now()
	boot := time.Time{}
	if up := h.uptime(); up > 0 {
		boot = now.Add(-time.Duration(up * float64(time.Second)))
	}
	for i := 0; i < 1000; i++ {
		n, err := syscall.Read(h.kmsg, h.kmsgBuf)
		if err == syscall.EPIPE {
			continue // records were overwritten before we read them
		}
		if err == syscall.EAGAIN || n == 0 {
			break
		}
		if err != nil {
			if !h.kmsgErr {
				h.kmsgErr = true
				return fmt.Errorf("cannot read the kernel log: %w", err)
			}
			break
		}
		data := h.kmsgBuf[:n]
		if len(h.kmsgPart) > 0 { // a regular file may end mid-line
			data = append(h.kmsgPart, data...)
			h.kmsgPart = nil
		}
		for len(data) > 0 {
			nl := bytes.IndexByte(data, '\n')
			if nl < 0 {
				h.kmsgPart = append([]byte(nil), data...)
				break
			}
			if rec, ok := ParseKmsgLine(data[:nl]); ok {
				t := now
				if at := boot.Add(time.Duration(rec.Usec) * time.Microsecond); !boot.IsZero() && at.Before(now) {
					t = at
				}
				h.kmsgRecord(r, t, rec, ooms)
			}
			data = data[nl+1:]
		}
	}
	return nil
}

func (h *Hardware) kmsgRecord(r *wire.Report, t time.Time, rec KmsgRecord, ooms *int) {
	k, ok := ClassifyKmsg(rec.Message)
	if !ok {
		return
	}
	sev, pid := "high", ""
	if k.Action == ActionOOMKill {
		*ooms++
		sev = "medium"
	}
	if k.PID > 0 {
		pid = strconv.Itoa(k.PID)
	}
	h.eventAt(r, t, k.Action, sev, "message", truncate(rec.Message, 1024), "log.syslog.priority", strconv.Itoa(rec.Priority),
		"process.pid", pid, "process.name", k.Process, "hardware.device", k.Device)
}

// readUint reads a file holding one decimal number.
func readUint(p string) (uint64, bool) {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, false
	}
	v, err := strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64)
	return v, err == nil
}

// counters reports EDAC, throttle and OOM counters that went up.
func (h *Hardware) counters(r *wire.Report, first bool, oomFromLog int) {
	if h.edac == nil {
		h.edac, h.throttle = map[string][2]uint64{}, map[string]uint64{}
	}
	for _, mc := range h.paths.edac {
		ce, ok1 := readUint(filepath.Join(mc, "ce_count"))
		ue, ok2 := readUint(filepath.Join(mc, "ue_count"))
		if !ok1 && !ok2 {
			continue
		}
		prev, seen := h.edac[mc]
		h.edac[mc] = [2]uint64{ce, ue}
		if first || !seen || (ce <= prev[0] && ue <= prev[1]) {
			continue
		}
		sev := "medium"
		if ue > prev[1] {
			sev = "critical"
		}
		h.event(r, ActionMemoryError, sev, "hardware.memory.controller", filepath.Base(mc),
			"hardware.memory.corrected_errors", strconv.FormatUint(sub0(ce, prev[0]), 10),
			"hardware.memory.uncorrected_errors", strconv.FormatUint(sub0(ue, prev[1]), 10),
			"hardware.memory.corrected_errors_total", strconv.FormatUint(ce, 10),
			"hardware.memory.uncorrected_errors_total", strconv.FormatUint(ue, 10))
	}
	var throttled uint64
	var cpus []string
	for _, p := range h.paths.throttle {
		v, ok := readUint(p)
		if !ok {
			continue
		}
		prev, seen := h.throttle[p]
		h.throttle[p] = v
		if !first && seen && v > prev {
			throttled += v - prev
			cpus = append(cpus, filepath.Base(filepath.Dir(filepath.Dir(p))))
		}
	}
	if throttled > 0 {
		h.event(r, ActionThermalThrottle, "medium", "hardware.throttle.events", strconv.FormatUint(throttled, 10),
			"hardware.throttle.cpus", strings.Join(dedupe(cpus), ","))
	}
	if b, err := os.ReadFile(h.Env.path("/proc/vmstat")); err == nil {
		if i := bytes.Index(b, []byte("\noom_kill ")); i >= 0 {
			line, _, _ := bytes.Cut(b[i+len("\noom_kill "):], []byte("\n"))
			if v, err := strconv.ParseUint(string(line), 10, 64); err == nil {
				// The log names the process; the counter alone is reported
				// when the log said nothing (no permission, or lost).
				if h.haveOOM && v > h.oomKill && oomFromLog == 0 {
					h.event(r, ActionOOMKill, "medium", "hardware.oom_kills", strconv.FormatUint(v-h.oomKill, 10))
				}
				h.oomKill, h.haveOOM = v, true
			}
		}
	}
}

func sub0(a, b uint64) uint64 {
	if a < b {
		return a
	}
	return a - b
}

func dedupe(s []string) []string {
	out := s[:0]
	seen := map[string]bool{}
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// mounts reports local file systems that were writable and are now
// read-only.
func (h *Hardware) mounts(r *wire.Report, first bool) {
	b, err := os.ReadFile(h.Env.path("/proc/mounts"))
	if err != nil {
		return
	}
	cur := make(map[string]bool, len(h.mountsRO))
	for len(b) > 0 {
		var l []byte
		l, b, _ = bytes.Cut(b, []byte("\n"))
		f := strings.Fields(string(l))
		if len(f) < 4 || !localFS[f[2]] {
			continue
		}
		mp := unescapeMount(f[1])
		ro := f[3] == "ro" || strings.HasPrefix(f[3], "ro,")
		cur[mp] = ro
		if was, seen := h.mountsRO[mp]; !first && seen && !was && ro {
			h.event(r, ActionFilesystemReadOnly, "high", "mount.point", mp, "mount.device", unescapeMount(f[0]), "mount.fs_type", f[2],
				"event.reason", "a writable file system is now read-only: the kernel remounts on I/O or file system errors")
		}
	}
	h.mountsRO = cur
}

// states reports wear and voltage states when they first appear or get
// worse.
func (h *Hardware) states(r *wire.Report) {
	if h.wear == nil {
		h.wear, h.alarms = map[string]int{}, map[string]bool{}
	}
	level := h.WearLevel
	if level <= 0 {
		level = 9
	}
	for _, p := range h.paths.lifeTime {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		worst := 0
		for _, f := range strings.Fields(string(b)) { // "0x01 0x02": type A and B cells
			if v, err := strconv.ParseUint(strings.TrimPrefix(f, "0x"), 16, 8); err == nil {
				worst = max(worst, int(v))
			}
		}
		if worst >= level && worst > h.wear[p] {
			h.event(r, ActionFlashWear, "high", "hardware.device", filepath.Base(filepath.Dir(p)),
				"hardware.flash.life_time", strings.TrimSpace(string(b)), "hardware.flash.used_pct", lifeTimePct(worst))
		}
		h.wear[p] = max(h.wear[p], worst)
	}
	for _, p := range h.paths.preEOL {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		v, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimSpace(string(b)), "0x"), 16, 8)
		if err != nil {
			continue
		}
		// 1 normal, 2 warning (80% of the reserved blocks used), 3 urgent.
		if int(v) >= 2 && int(v) > h.wear[p] {
			sev := "high"
			if v >= 3 {
				sev = "critical"
			}
			h.event(r, ActionFlashWear, sev, "hardware.device", filepath.Base(filepath.Dir(p)),
				"hardware.flash.pre_eol_info", strings.TrimSpace(string(b)))
		}
		h.wear[p] = max(h.wear[p], int(v))
	}
	for _, p := range h.paths.alarms {
		v, ok := readUint(p)
		on := ok && v != 0
		if on && !h.alarms[p] {
			name, mv := "", ""
			if b, err := os.ReadFile(filepath.Join(filepath.Dir(p), "name")); err == nil {
				name = strings.TrimSpace(string(b))
			}
			if v, ok := readUint(strings.TrimSuffix(p, "_alarm") + "_input"); ok {
				mv = strconv.FormatUint(v, 10)
			}
			h.event(r, ActionVoltageAlarm, "high", "hardware.sensor", filepath.Base(filepath.Dir(p))+"/"+strings.TrimSuffix(filepath.Base(p), "_alarm"),
				"hardware.sensor.name", name, "hardware.voltage.mv", mv)
		}
		h.alarms[p] = on
	}
	// Raspberry Pi firmware: bit 0 under-voltage now, 2 throttled now, 16
	// under-voltage has occurred, 18 throttling has occurred.
	if b, err := os.ReadFile(h.Env.path("/sys/devices/platform/soc/soc:firmware/get_throttled")); err == nil {
		s := strings.TrimPrefix(strings.TrimSpace(string(b)), "0x")
		if v, err := strconv.ParseUint(s, 16, 32); err == nil {
			newly := v &^ h.rpiFlags
			flags := "0x" + strconv.FormatUint(v, 16)
			if newly&(1|1<<16) != 0 {
				h.event(r, ActionUnderVoltage, "high", "hardware.rpi.throttled", flags)
			}
			if newly&(1<<2|1<<18) != 0 {
				h.event(r, ActionThermalThrottle, "medium", "hardware.rpi.throttled", flags)
			}
			h.rpiFlags = v
		}
	}
}

// lifeTimePct turns an eMMC life-time estimate into the used share it
// stands for ("80-90"; 11: "exceeded").
func lifeTimePct(v int) string {
	if v >= 11 {
		return "exceeded"
	}
	return strconv.Itoa((v-1)*10) + "-" + strconv.Itoa(v*10)
}

// clock reports the wall clock moving apart from the time since boot
// (/proc/uptime, which counts suspended time too).
func (h *Hardware) clock(r *wire.Report) {
	wall, up := h.Env.now().Round(0), h.uptime()
	if up == 0 {
		return
	}
	limit := h.ClockJump
	if limit <= 0 {
		limit = time.Minute
	}
	if h.haveClock {
		dWall := wall.Sub(h.prevWall).Seconds()
		dUp := up - h.prevUptime
		if jump := dWall - dUp; math.Abs(jump) >= limit.Seconds() {
			h.event(r, ActionClockJump, "medium", "clock.jump_seconds", strconv.FormatFloat(math.Round(jump*100)/100, 'f', -1, 64),
				"clock.before", h.prevWall.UTC().Format(time.RFC3339), "clock.after", wall.UTC().Format(time.RFC3339),
				"event.reason", "the wall clock moved apart from the time since boot: set by hand, by NTP after a long drift, or a spoofed time source")
		}
	}
	h.prevWall, h.prevUptime, h.haveClock = wall, up, true
}
