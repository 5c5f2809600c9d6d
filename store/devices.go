package store

import (
	"slices"

	"github.com/vigil-iot/vigil"
)

// MergeDeviceReport returns the stored device updated with what a device
// report carries. It is the one rule of who owns which device field:
//
//   - Reports own the inventory: Name, Class, Vendor, Model, Firmware, OS
//     and Kernel take the report's value when it has one; Software and
//     Network the report's list when it has one; Health the later sample.
//   - FirstSeen is the earlier and LastSeen the later of both.
//   - Operators (and enrollment) own Tags and Enrolled: always as stored
//     (Enrolled the report's only when none is stored).
//   - State: a quarantined or retired device stays so (set by a response
//     action or an operator); an active one is not put back to discovered
//     by a sensor's report; otherwise the report's state.
//
// Neither argument is modified; the result may share slices with both.
func MergeDeviceReport(stored, report vigil.Device) vigil.Device {
	d := stored
	str := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	str(&d.Name, report.Name)
	str(&d.Class, report.Class)
	str(&d.Vendor, report.Vendor)
	str(&d.Model, report.Model)
	str(&d.Firmware, report.Firmware)
	str(&d.OS, report.OS)
	str(&d.Kernel, report.Kernel)
	if report.Software != nil {
		d.Software = report.Software
	}
	if report.Network != nil {
		d.Network = report.Network
	}
	if report.Health != nil && (d.Health == nil || report.Health.Time.After(d.Health.Time)) {
		d.Health = report.Health
	}
	if !report.FirstSeen.IsZero() && (d.FirstSeen.IsZero() || report.FirstSeen.Before(d.FirstSeen)) {
		d.FirstSeen = report.FirstSeen
	}
	if report.LastSeen.After(d.LastSeen) {
		d.LastSeen = report.LastSeen
	}
	if d.Enrolled.IsZero() {
		d.Enrolled = report.Enrolled
	}
	switch {
	case report.State == "":
	case slices.Contains([]vigil.DeviceState{vigil.StateQuarantined, vigil.StateRetired}, stored.State):
	case stored.State == vigil.StateActive && report.State == vigil.StateDiscovered:
	default:
		d.State = report.State
	}
	return d
}
