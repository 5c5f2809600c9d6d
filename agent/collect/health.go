package collect

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/vigil-iot/vigil/wire"
)

// Health fills the health section: cpu (since the previous call, or since
// boot on the first), memory, the fullest writable disk, the hottest
// temperature sensor and the uptime.
type Health struct {
	Env Env
	// Mounts are the mount points whose use is checked; empty means every
	// writable local file system in /proc/mounts.
	Mounts []string

	prevTotal, prevIdle uint64
}

// Name returns "health".
func (h *Health) Name() string { return "health" }

// Collect fills r.Health.
func (h *Health) Collect(_ context.Context, r *wire.Report) error {
	hs := ensureHealth(r)
	var errs []error
	if cpu, err := h.cpu(); err != nil {
		errs = append(errs, err)
	} else {
		hs.CPU = cpu
	}
	if mem, err := h.memory(); err != nil {
		errs = append(errs, err)
	} else {
		hs.Memory = mem
	}
	hs.Disk = h.disk()
	if t, ok := h.temperature(); ok {
		hs.Temperature = &t
	}
	if b, err := os.ReadFile(h.Env.path("/proc/uptime")); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			if v, err := strconv.ParseFloat(f[0], 64); err == nil {
				hs.Uptime = uint64(v)
			}
		}
	}
	return errors.Join(errs...)
}

func (h *Health) cpu() (float64, error) {
	b, err := os.ReadFile(h.Env.path("/proc/stat"))
	if err != nil {
		return 0, fmt.Errorf("cannot read cpu: %w", err)
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return 0, fmt.Errorf("cannot read cpu: unexpected first line of /proc/stat %q", line)
	}
	var total, idle uint64
	for i, s := range f[1:] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("cannot read cpu: field %d of /proc/stat: %w", i+1, err)
		}
		if i >= 8 { // guest and guest_nice are already in user and nice
			break
		}
		total += v
		if i == 3 || i == 4 { // idle, iowait
			idle += v
		}
	}
	dt, di := total-h.prevTotal, idle-h.prevIdle
	h.prevTotal, h.prevIdle = total, idle
	if dt == 0 {
		return 0, nil
	}
	return clampPct(100 * float64(dt-di) / float64(dt)), nil
}

func (h *Health) memory() (float64, error) {
	b, err := os.ReadFile(h.Env.path("/proc/meminfo"))
	if err != nil {
		return 0, fmt.Errorf("cannot read memory: %w", err)
	}
	m := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseUint(f[0], 10, 64)
		m[k] = n
	}
	total := m["MemTotal"]
	if total == 0 {
		return 0, errors.New("cannot read memory: no MemTotal in /proc/meminfo")
	}
	avail, ok := m["MemAvailable"]
	if !ok { // kernels before 3.14
		avail = m["MemFree"] + m["Buffers"] + m["Cached"]
	}
	return clampPct(100 * float64(total-min(avail, total)) / float64(total)), nil
}

// localFS are the file system types whose fill level matters.
var localFS = map[string]bool{"ext2": true, "ext3": true, "ext4": true, "xfs": true, "btrfs": true, "f2fs": true,
	"ubifs": true, "jffs2": true, "vfat": true, "overlay": true, "zfs": true, "yaffs2": true}

func (h *Health) disk() float64 {
	mounts := h.Mounts
	if len(mounts) == 0 {
		b, err := os.ReadFile(h.Env.path("/proc/mounts"))
		if err != nil {
			return 0
		}
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) < 4 || !localFS[f[2]] || strings.HasPrefix(f[3], "ro,") || f[3] == "ro" {
				continue
			}
			mounts = append(mounts, unescapeMount(f[1]))
		}
	}
	var worst float64
	for _, m := range mounts {
		var st syscall.Statfs_t
		if err := syscall.Statfs(h.Env.path(m), &st); err != nil || st.Blocks == 0 {
			continue
		}
		used := float64(st.Blocks-st.Bfree) / float64(st.Blocks-st.Bfree+st.Bavail)
		worst = max(worst, clampPct(100*used))
	}
	return worst
}

func unescapeMount(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

func (h *Health) temperature() (float64, bool) {
	var paths []string
	for _, g := range []string{"/sys/class/thermal/thermal_zone*/temp", "/sys/class/hwmon/hwmon*/temp*_input"} {
		m, _ := filepath.Glob(h.Env.path(g))
		paths = append(paths, m...)
	}
	found, hot := false, 0.0
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
		if err != nil {
			continue
		}
		c := v / 1000
		if c < -60 || c > 250 {
			continue
		}
		if !found || c > hot {
			found, hot = true, c
		}
	}
	return hot, found
}

func clampPct(v float64) float64 { return min(max(v, 0), 100) }
