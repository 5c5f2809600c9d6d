package inventory

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/vigil-iot/vigil"
)

// Event fields the stage reads, as ingest/agent writes them (see its package
// doc). Health events (kind "health") carry the host.* numbers and any
// number of "metric.<name>" fields; other numeric host.* fields
// ("host.network.connections") are kept as metrics named without "host.".
// Inventory events (kind "inventory") carry the rest. Software and
// interfaces are JSON arrays in a string field, since event field values
// are flat. A field that is absent was not reported: the device keeps what
// it had.
const (
	FieldCPU         = "host.cpu.pct"
	FieldMemory      = "host.memory.pct"
	FieldDisk        = "host.disk.pct"
	FieldTemperature = "host.temperature"
	FieldUptime      = "host.uptime"
	FieldMetric      = "metric." // prefix of custom metrics

	FieldOSName     = "os.name"
	FieldOSVersion  = "os.version"
	FieldOSKernel   = "os.kernel"
	FieldFirmware   = "device.firmware.version"
	FieldVendor     = "device.vendor"
	FieldModel      = "device.model"
	FieldClass      = "device.class"
	FieldName       = "device.name"
	FieldSoftware   = "software"   // JSON array of vigil.Component
	FieldInterfaces = "interfaces" // JSON array of vigil.NetIdentity (or {"name","mac","addresses"})
)

// SourceSensor is the Event.Source of the passive network sensor: devices
// it names first are "discovered", not "active".
const SourceSensor = "sensor"

// knownHost are the host.* fields with a place of their own in vigil.Health.
var knownHost = map[string]bool{
	FieldCPU: true, FieldMemory: true, FieldDisk: true, FieldTemperature: true, FieldUptime: true,
}

// healthSample returns the health sample an event carries, and false when
// it carries none of the health fields.
func healthSample(ev *vigil.Event) (vigil.Health, bool) {
	h := vigil.Health{DeviceID: ev.DeviceID, Time: ev.Time}
	found := false
	num := func(name string, dst *float64) {
		if v, ok := ev.FieldNumber(name); ok {
			*dst = v
			found = true
		}
	}
	num(FieldCPU, &h.CPU)
	num(FieldMemory, &h.Memory)
	num(FieldDisk, &h.Disk)
	num(FieldTemperature, &h.Temperature)
	var up float64
	num(FieldUptime, &up)
	h.Uptime = int64(up)
	for k := range ev.Fields {
		name, ok := strings.CutPrefix(k, FieldMetric)
		if !ok {
			// Other host numbers (host.network.connections, ...) are
			// kept as metrics under their name without "host.".
			name, ok = strings.CutPrefix(k, "host.")
			if !ok || knownHost[k] {
				continue
			}
		}
		if name == "" {
			continue
		}
		if v, ok := ev.FieldNumber(k); ok {
			if h.Metrics == nil {
				h.Metrics = map[string]float64{}
			}
			h.Metrics[name] = v
			found = true
		}
	}
	return h, found
}

// iface is an interface as agents may encode it: NetIdentity's own names,
// or the agent protocol's ("name").
type iface struct {
	Interface string   `json:"interface"`
	Name      string   `json:"name"`
	MAC       string   `json:"mac"`
	Addresses []string `json:"addresses"`
}

// jsonList decodes a field holding a JSON array (as a string) into dst.
// It reports whether the field was there.
func jsonList(ev *vigil.Event, name string, dst any) (bool, error) {
	v, ok := ev.Fields[name]
	if !ok {
		return false, nil
	}
	s, ok := v.(string)
	if !ok {
		return true, fmt.Errorf("event %s: field %s: want a JSON array in a string, got %T", ev.ID, name, v)
	}
	if err := json.Unmarshal([]byte(s), dst); err != nil {
		return true, fmt.Errorf("event %s: field %s: cannot decode: %w", ev.ID, name, err)
	}
	return true, nil
}

// software returns the software list of an inventory event.
func software(ev *vigil.Event) ([]vigil.Component, bool, error) {
	var list []vigil.Component
	ok, err := jsonList(ev, FieldSoftware, &list)
	if err != nil || !ok {
		return nil, ok, err
	}
	for i, c := range list {
		if c.Name == "" {
			return nil, true, fmt.Errorf("event %s: field %s[%d]: component without a name", ev.ID, FieldSoftware, i)
		}
	}
	return list, true, nil
}

// interfaces returns the network identities of an event.
func interfaces(ev *vigil.Event) ([]vigil.NetIdentity, bool, error) {
	var list []iface
	ok, err := jsonList(ev, FieldInterfaces, &list)
	if err != nil || !ok {
		return nil, ok, err
	}
	out := make([]vigil.NetIdentity, 0, len(list))
	for _, x := range list {
		n := vigil.NetIdentity{Interface: x.Interface, MAC: x.MAC, Addresses: x.Addresses}
		if n.Interface == "" {
			n.Interface = x.Name
		}
		out = append(out, n)
	}
	return out, true, nil
}
