package vigil

import "time"

// Device classes Vigil knows; others are accepted as they are.
const (
	ClassCamera     = "camera"
	ClassThermostat = "thermostat"
	ClassPLCGateway = "plc-gateway"
	ClassSmartMeter = "smart-meter"
	ClassGateway    = "gateway"
	ClassSensor     = "sensor"
)

// DeviceState is where a device stands in Vigil's eyes.
type DeviceState string

// Device states.
const (
	StateActive      DeviceState = "active"      // reporting
	StateDiscovered  DeviceState = "discovered"  // seen on the wire, not enrolled
	StateQuarantined DeviceState = "quarantined" // isolated by a response action
	StateOffline     DeviceState = "offline"     // stopped reporting
	StateRetired     DeviceState = "retired"
)

// Device is one inventory record.
type Device struct {
	ID       string `json:"id"`
	Name     string `json:"name,omitempty"`
	Class    string `json:"class,omitempty"`
	Vendor   string `json:"vendor,omitempty"`
	Model    string `json:"model,omitempty"`
	Firmware string `json:"firmware,omitempty"`
	OS       string `json:"os,omitempty"`
	Kernel   string `json:"kernel,omitempty"`

	Software []Component   `json:"software,omitempty"`
	Network  []NetIdentity `json:"network,omitempty"`
	Tags     []string      `json:"tags,omitempty"`

	State     DeviceState `json:"state"`
	FirstSeen time.Time   `json:"first_seen"`
	LastSeen  time.Time   `json:"last_seen"`
	// Enrolled is when the device enrolled and got its client certificate;
	// zero for a device known only from events. A device with an enrolled
	// identity speaks for itself: no API token may send its events.
	Enrolled time.Time `json:"enrolled,omitzero"`

	// Health is the latest health sample, when the device reports one.
	Health *Health `json:"health,omitempty"`
}

// Component is one piece of software on a device.
type Component struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	Type    string `json:"type,omitempty"`   // package, firmware, library, application
	Source  string `json:"source,omitempty"` // dpkg, opkg, apk, sbom, banner, ...
	PURL    string `json:"purl,omitempty"`
	CPE     string `json:"cpe,omitempty"`
}

// NetIdentity is one network interface of a device and its addresses.
type NetIdentity struct {
	Interface string   `json:"interface,omitempty"`
	MAC       string   `json:"mac,omitempty"`
	Addresses []string `json:"addresses,omitempty"`
}

// Health is one health sample of a device.
type Health struct {
	DeviceID    string             `json:"device_id,omitempty"`
	Time        time.Time          `json:"time"`
	CPU         float64            `json:"cpu_pct"`
	Memory      float64            `json:"memory_pct"`
	Disk        float64            `json:"disk_pct"`
	Temperature float64            `json:"temperature_c,omitempty"`
	Uptime      int64              `json:"uptime_s,omitempty"`
	Metrics     map[string]float64 `json:"metrics,omitempty"`
}
