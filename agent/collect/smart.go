package collect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"time"

	"github.com/vigil-iot/vigil/wire"
)

// ActionDiskFailing is a disk whose own SMART self-assessment failed, or
// one of whose pre-failure attributes is at or below its threshold now.
const ActionDiskFailing = "disk_failing"

// SMART reports failing disks from smartctl's JSON output (smartmontools
// 7.0 or later) where smartctl exists: the drive's overall self-assessment
// (smart_status, exit status bit 3), ATA pre-failure attributes failing
// now (when_failed "now", exit status bit 4) and NVMe critical warnings as
// disk_failing; reallocated, pending and offline-uncorrectable sectors
// (ATA attributes 5, 197, 198) and NVMe media errors that grew since the
// previous reading as storage_error; NVMe percentage used at or above
// WearPercent as flash_wear. Each condition is reported when it starts,
// not at every reading.
//
// A reading runs smartctl once per disk, at most every Interval (reading
// SMART wakes sleeping disks). Without smartctl it does nothing (most
// devices have neither smartctl nor a disk with SMART); a disk
// smartctl cannot read is an error once, naming the disk and smartctl's
// message.
type SMART struct {
	Env Env
	// Command is smartctl's path (default "smartctl" from PATH).
	Command string
	// Devices are the disks to read (default: what `smartctl --scan-open`
	// finds at each reading).
	Devices []string
	// Interval is the time between readings (default 1h).
	Interval time.Duration
	// WearPercent is the NVMe "percentage used" reported as wear
	// (default 90).
	WearPercent int

	last  time.Time
	read  bool
	disks map[string]*smartDisk
}

// smartDisk is what the previous reading of a disk said.
type smartDisk struct {
	failing, worn bool
	sectors       [3]uint64 // reallocated, pending, offline uncorrectable
	mediaErrors   uint64
	errSaid       bool
}

// SMARTReport is the part of smartctl's JSON output the collector reads.
type SMARTReport struct {
	Smartctl struct {
		ExitStatus int `json:"exit_status"`
		Messages   []struct {
			String   string `json:"string"`
			Severity string `json:"severity"`
		} `json:"messages"`
	} `json:"smartctl"`
	Device struct {
		Name     string `json:"name"`
		Protocol string `json:"protocol"`
	} `json:"device"`
	ModelName    string `json:"model_name"`
	SerialNumber string `json:"serial_number"`
	SmartStatus  *struct {
		Passed bool `json:"passed"`
	} `json:"smart_status"`
	ATAAttributes struct {
		Table []struct {
			ID         int    `json:"id"`
			Name       string `json:"name"`
			Value      int    `json:"value"`
			Thresh     int    `json:"thresh"`
			WhenFailed string `json:"when_failed"`
			Raw        struct {
				Value uint64 `json:"value"`
			} `json:"raw"`
		} `json:"table"`
	} `json:"ata_smart_attributes"`
	NVMe *struct {
		CriticalWarning int    `json:"critical_warning"`
		PercentageUsed  int    `json:"percentage_used"`
		MediaErrors     uint64 `json:"media_errors"`
	} `json:"nvme_smart_health_information_log"`
	Devices []struct {
		Name string `json:"name"`
		Type string `json:"type"`
	} `json:"devices"`
}

// ParseSMART reads smartctl's JSON output. Output without the "smartctl"
// object is not smartctl's and is an error.
func ParseSMART(b []byte) (*SMARTReport, error) {
	var probe struct {
		Smartctl json.RawMessage `json:"smartctl"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf("cannot parse smartctl output: %w", err)
	}
	if len(probe.Smartctl) == 0 {
		return nil, errors.New("cannot parse smartctl output: no \"smartctl\" object")
	}
	var r SMARTReport
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("cannot parse smartctl output: %w", err)
	}
	return &r, nil
}

// Name returns "smart".
func (s *SMART) Name() string { return "smart" }

// Collect reads every disk when a reading is due.
func (s *SMART) Collect(ctx context.Context, r *wire.Report) error {
	now := s.Env.now()
	iv := s.Interval
	if iv <= 0 {
		iv = time.Hour
	}
	if s.read && now.Sub(s.last) < iv {
		return nil
	}
	s.read, s.last = true, now
	cmd := s.Command
	if cmd == "" {
		cmd = "smartctl"
	}
	path, err := exec.LookPath(cmd)
	if err != nil {
		return nil // most devices have no smartctl, and no disk with SMART
	}
	if s.disks == nil {
		s.disks = map[string]*smartDisk{}
	}
	devs := s.Devices
	if len(devs) == 0 {
		out, _ := s.run(ctx, path, "--scan-open")
		rep, err := ParseSMART(out)
		if err != nil {
			return fmt.Errorf("cannot list disks: %w", err)
		}
		for _, d := range rep.Devices {
			devs = append(devs, d.Name)
		}
	}
	var errs []error
	for _, dev := range devs {
		out, _ := s.run(ctx, path, "-H", "-A", dev)
		if err := s.disk(r, now, dev, out); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// run runs smartctl with JSON output. Its exit status is a bit mask of
// findings, not only of failures: the output is read whatever it is.
func (s *SMART) run(ctx context.Context, path string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return exec.CommandContext(ctx, path, append([]string{"--json=c"}, args...)...).Output()
}

// disk compares one disk's reading with the previous one and reports the
// conditions that started.
func (s *SMART) disk(r *wire.Report, now time.Time, dev string, out []byte) error {
	st := s.disks[dev]
	if st == nil {
		st = &smartDisk{}
		s.disks[dev] = st
	}
	rep, err := ParseSMART(out)
	if err == nil && rep.SmartStatus == nil && rep.NVMe == nil && len(rep.ATAAttributes.Table) == 0 {
		msg := "no SMART data"
		for _, m := range rep.Smartctl.Messages {
			if m.Severity == "error" {
				msg = m.String
			}
		}
		err = errors.New(msg)
	}
	if err != nil {
		if st.errSaid {
			return nil
		}
		st.errSaid = true
		return fmt.Errorf("cannot read SMART of %s: %w", dev, err)
	}
	st.errSaid = false
	fields := func(kv ...string) []string {
		return append([]string{"hardware.device", dev, "hardware.disk.model", rep.ModelName, "hardware.disk.serial", rep.SerialNumber}, kv...)
	}
	event := func(action, severity string, kv ...string) {
		f := wire.Fields{}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] != "" {
				f[kv[i]] = kv[i+1]
			}
		}
		r.Events = append(r.Events, newEvent(now, KindHardware, "host", action, "failure", severity, f))
	}

	var why []string
	if rep.SmartStatus != nil && !rep.SmartStatus.Passed || rep.Smartctl.ExitStatus&(1<<3) != 0 {
		why = append(why, "self-assessment failed")
	}
	for _, a := range rep.ATAAttributes.Table {
		if a.WhenFailed == "now" {
			why = append(why, fmt.Sprintf("attribute %d %s at %d, threshold %d", a.ID, a.Name, a.Value, a.Thresh))
		}
	}
	if rep.NVMe != nil && rep.NVMe.CriticalWarning != 0 {
		why = append(why, fmt.Sprintf("NVMe critical warning 0x%02x", rep.NVMe.CriticalWarning))
	}
	failing := len(why) > 0
	if failing && !st.failing {
		reason := why[0]
		for _, w := range why[1:] {
			reason += "; " + w
		}
		event(ActionDiskFailing, "critical", fields("hardware.disk.reason", reason, "hardware.disk.smartctl_exit_status", strconv.Itoa(rep.Smartctl.ExitStatus))...)
	}
	st.failing = failing

	var sectors [3]uint64
	for _, a := range rep.ATAAttributes.Table {
		switch a.ID {
		case 5:
			sectors[0] = a.Raw.Value
		case 197:
			sectors[1] = a.Raw.Value
		case 198:
			sectors[2] = a.Raw.Value
		}
	}
	var media uint64
	if rep.NVMe != nil {
		media = rep.NVMe.MediaErrors
	}
	grew := media > st.mediaErrors
	for i := range sectors {
		grew = grew || sectors[i] > st.sectors[i]
	}
	if grew {
		event(ActionStorageError, "high", fields(
			"hardware.disk.reallocated_sectors", strconv.FormatUint(sectors[0], 10),
			"hardware.disk.pending_sectors", strconv.FormatUint(sectors[1], 10),
			"hardware.disk.uncorrectable_sectors", strconv.FormatUint(sectors[2], 10),
			"hardware.disk.media_errors", strconv.FormatUint(media, 10))...)
	}
	st.sectors, st.mediaErrors = sectors, media

	wear := s.WearPercent
	if wear <= 0 {
		wear = 90
	}
	worn := rep.NVMe != nil && rep.NVMe.PercentageUsed >= wear
	if worn && !st.worn {
		event(ActionFlashWear, "high", fields("hardware.flash.used_pct", strconv.Itoa(rep.NVMe.PercentageUsed))...)
	}
	st.worn = worn
	return nil
}
