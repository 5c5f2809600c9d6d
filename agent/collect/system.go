package collect

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/vigil-iot/vigil/wire"
)

// System fills inventory.os, inventory.firmware and inventory.class from
// /etc/os-release (or /etc/openwrt_release), /proc/sys/kernel/osrelease and
// the configured firmware source.
type System struct {
	Env Env
	// Class is the device class to report (camera, gateway, ...).
	Class string
	// FirmwareFile is read for the firmware version (first non-empty
	// line, or a VERSION= / DISTRIB_REVISION= line); FirmwareCommand is run
	// instead when set, its first output line is the version.
	FirmwareFile    string
	FirmwareCommand []string
	// Vendor and Model are reported as the firmware's maker and model.
	Vendor, Model string
}

// Name returns "system".
func (s *System) Name() string { return "system" }

// Collect fills the inventory's os, firmware and class.
func (s *System) Collect(ctx context.Context, r *wire.Report) error {
	inv := ensureInventory(r)
	inv.Class = s.Class
	inv.Firmware.Vendor, inv.Firmware.Model = s.Vendor, s.Model
	osr := readKV(s.Env.path("/etc/os-release"))
	if len(osr) == 0 {
		osr = readKV(s.Env.path("/usr/lib/os-release"))
	}
	inv.OS.Name = osr["NAME"]
	inv.OS.Version = osr["VERSION_ID"]
	if inv.OS.Version == "" {
		inv.OS.Version = osr["VERSION"]
	}
	if ow := readKV(s.Env.path("/etc/openwrt_release")); len(ow) > 0 {
		if inv.OS.Name == "" {
			inv.OS.Name = ow["DISTRIB_ID"]
		}
		if inv.OS.Version == "" {
			inv.OS.Version = ow["DISTRIB_RELEASE"]
		}
	}
	if b, err := os.ReadFile(s.Env.path("/proc/sys/kernel/osrelease")); err == nil {
		inv.OS.Kernel = strings.TrimSpace(string(b))
	}
	fw, err := s.firmware(ctx)
	inv.Firmware.Version = fw
	return err
}

func (s *System) firmware(ctx context.Context) (string, error) {
	switch {
	case len(s.FirmwareCommand) > 0:
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, s.FirmwareCommand[0], s.FirmwareCommand[1:]...).Output()
		if err != nil {
			return "", fmt.Errorf("cannot run firmware command %q: %w", s.FirmwareCommand[0], err)
		}
		return firstLine(out), nil
	case s.FirmwareFile != "":
		b, err := os.ReadFile(s.FirmwareFile)
		if err != nil {
			return "", fmt.Errorf("cannot read firmware version: %w", err)
		}
		kv := parseKV(b)
		for _, k := range []string{"VERSION", "FIRMWARE_VERSION", "DISTRIB_REVISION", "BUILD_ID"} {
			if v := kv[k]; v != "" {
				return v, nil
			}
		}
		return firstLine(b), nil
	}
	return "", nil
}

func firstLine(b []byte) string {
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}

// readKV reads a shell-style KEY=value file; a missing file is empty.
func readKV(path string) map[string]string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return parseKV(b)
}

func parseKV(b []byte) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		m[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"'`)
	}
	return m
}

func ensureInventory(r *wire.Report) *wire.Inventory {
	if r.Inventory == nil {
		r.Inventory = &wire.Inventory{}
	}
	return r.Inventory
}

func ensureHealth(r *wire.Report) *wire.Health {
	if r.Health == nil {
		r.Health = &wire.Health{}
	}
	return r.Health
}

func ensureNetwork(r *wire.Report) *wire.Network {
	if r.Network == nil {
		r.Network = &wire.Network{}
	}
	return r.Network
}
