package wire

import (
	"encoding/xml"
	"time"
)

// Version is the schema version this package reads and writes.
const Version = "1"

// Report is one agent report: what a device says about itself at one time.
// Every section is optional; an agent sends what it has.
type Report struct {
	XMLName xml.Name `json:"-" xml:"report"`
	// Version is the schema version, "1".
	Version string `json:"version" xml:"version,attr"`
	// DeviceID is the device's enrolled identity. The server may override
	// it with the identity of the authenticated client.
	DeviceID string `json:"device_id" xml:"device_id"`
	// Time is when the agent assembled the report.
	Time time.Time `json:"time" xml:"time"`
	// Sequence counts reports of one agent run upwards; a retried report
	// keeps its sequence, so the server can recognise it.
	Sequence uint64 `json:"sequence,omitempty" xml:"sequence,omitempty"`
	// Agent describes the reporting agent.
	Agent Agent `json:"agent" xml:"agent"`

	Health    *Health         `json:"health,omitempty" xml:"health,omitempty"`
	Inventory *Inventory      `json:"inventory,omitempty" xml:"inventory,omitempty"`
	Network   *Network        `json:"network,omitempty" xml:"network,omitempty"`
	Events    []SecurityEvent `json:"events,omitempty" xml:"events>event,omitempty"`
}

// Agent describes the reporting agent.
type Agent struct {
	Version string `json:"version,omitempty" xml:"version,omitempty"`
}

// Health is one health sample.
type Health struct {
	// CPU is the CPU use in percent, 0 to 100 (all cores together).
	CPU float64 `json:"cpu_pct" xml:"cpu_pct"`
	// Memory is the memory use in percent, 0 to 100.
	Memory float64 `json:"memory_pct" xml:"memory_pct"`
	// Disk is the use of the fullest writable file system in percent, 0 to 100.
	Disk float64 `json:"disk_pct" xml:"disk_pct"`
	// Temperature is the hottest sensor in degrees Celsius; nil when the
	// device has no sensor.
	Temperature *float64 `json:"temperature_c,omitempty" xml:"temperature_c,omitempty"`
	// Uptime is the time since boot in seconds.
	Uptime uint64 `json:"uptime_s,omitempty" xml:"uptime_s,omitempty"`
	// Metrics are custom numeric metrics by name.
	Metrics Metrics `json:"metrics,omitempty" xml:"metrics,omitempty"`
}

// Inventory is what is installed on the device.
type Inventory struct {
	OS       OS       `json:"os" xml:"os"`
	Firmware Firmware `json:"firmware" xml:"firmware"`
	// Class is the device class: camera, thermostat, plc-gateway,
	// smart-meter, gateway, sensor, or another word.
	Class    string      `json:"class,omitempty" xml:"class,omitempty"`
	Software []Component `json:"software,omitempty" xml:"software>component,omitempty"`
}

// OS is the operating system.
type OS struct {
	Name    string `json:"name,omitempty" xml:"name,omitempty"`
	Version string `json:"version,omitempty" xml:"version,omitempty"`
	Kernel  string `json:"kernel,omitempty" xml:"kernel,omitempty"`
}

// Firmware is the device's firmware and maker.
type Firmware struct {
	Version string `json:"version,omitempty" xml:"version,omitempty"`
	Vendor  string `json:"vendor,omitempty" xml:"vendor,omitempty"`
	Model   string `json:"model,omitempty" xml:"model,omitempty"`
}

// Component is one piece of installed software.
type Component struct {
	Name    string `json:"name" xml:"name"`
	Version string `json:"version,omitempty" xml:"version,omitempty"`
	// Type is package, firmware, library or application.
	Type string `json:"type,omitempty" xml:"type,omitempty"`
	// Source says where the agent found it: dpkg, opkg, apk, sbom, ...
	Source string `json:"source,omitempty" xml:"source,omitempty"`
	PURL   string `json:"purl,omitempty" xml:"purl,omitempty"`
	CPE    string `json:"cpe,omitempty" xml:"cpe,omitempty"`
}

// Network is the device's network state.
type Network struct {
	Interfaces  []Interface  `json:"interfaces,omitempty" xml:"interfaces>interface,omitempty"`
	Listening   []Listener   `json:"listening,omitempty" xml:"listening>listener,omitempty"`
	Connections *Connections `json:"connections,omitempty" xml:"connections,omitempty"`
}

// Interface is one network interface.
type Interface struct {
	Name string `json:"name" xml:"name"`
	// MAC is the hardware address, as "aa:bb:cc:dd:ee:ff".
	MAC string `json:"mac,omitempty" xml:"mac,omitempty"`
	// Addresses are IP addresses, each with or without a prefix length
	// ("192.168.1.20/24", "fe80::1").
	Addresses []string `json:"addresses,omitempty" xml:"addresses>address,omitempty"`
}

// Listener is one listening socket.
type Listener struct {
	// Proto is tcp or udp (tcp6 and udp6 are read as tcp and udp).
	Proto string `json:"proto" xml:"proto"`
	// Addr is the local address it is bound to ("0.0.0.0", "::", "127.0.0.1").
	Addr    string `json:"addr,omitempty" xml:"addr,omitempty"`
	Port    uint16 `json:"port" xml:"port"`
	Process string `json:"process,omitempty" xml:"process,omitempty"`
	PID     int    `json:"pid,omitempty" xml:"pid,omitempty"`
}

// Connections summarises the device's connections since the last report.
type Connections struct {
	// Count is the number of established connections now.
	Count uint64 `json:"count" xml:"count"`
	// DistinctRemotes is the number of distinct remote addresses.
	DistinctRemotes uint64 `json:"distinct_remotes" xml:"distinct_remotes"`
	// BytesIn and BytesOut are bytes received and sent since the last report.
	BytesIn  uint64 `json:"bytes_in" xml:"bytes_in"`
	BytesOut uint64 `json:"bytes_out" xml:"bytes_out"`
}

// SecurityEvent is one security-relevant observation on the device: a
// login, a process start, a file change.
type SecurityEvent struct {
	// ID identifies the event for deduplication when a report is retried;
	// the server assigns one when it is empty.
	ID   string    `json:"id,omitempty" xml:"id,omitempty"`
	Time time.Time `json:"time" xml:"time"`
	// Kind is auth, process, network, file, config or system (or another
	// lowercase word).
	Kind string `json:"kind" xml:"kind"`
	// Category, Action and Outcome are ECS event.category, event.action and
	// event.outcome (success, failure, unknown).
	Category string `json:"category,omitempty" xml:"category,omitempty"`
	Action   string `json:"action,omitempty" xml:"action,omitempty"`
	Outcome  string `json:"outcome,omitempty" xml:"outcome,omitempty"`
	// Severity is informational, low, medium, high or critical.
	Severity string `json:"severity,omitempty" xml:"severity,omitempty"`
	// Fields are the other attributes under ECS dotted names ("user.name",
	// "source.ip", "process.command_line").
	Fields Fields `json:"fields,omitempty" xml:"fields,omitempty"`
}
