package sim

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/wire"
)

// Profile describes one class of device.
type Profile struct {
	Class    string
	Vendor   string
	Model    string
	Firmware string
	OS       string
	Kernel   string
	// Ports are the TCP ports the device normally listens on.
	Ports []uint16
	// Software is the installed software.
	Software []wire.Component
	// CPU and Temp are the typical CPU percent and temperature.
	CPU, Temp float64
}

// Profiles are the fleet's device classes, in the order devices cycle through them.
var Profiles = []Profile{
	{
		Class: vigil.ClassCamera, Vendor: "Hikvision", Model: "DS-2CD2143G2", Firmware: "V5.7.3",
		OS: "Linux", Kernel: "4.9.118", Ports: []uint16{80, 443, 554}, CPU: 35, Temp: 52,
		Software: []wire.Component{
			{Name: "busybox", Version: "1.31.1", Type: "package", Source: "opkg"},
			{Name: "lighttpd", Version: "1.4.59", Type: "package", Source: "opkg"},
			{Name: "openssl", Version: "1.1.1k", Type: "library", Source: "opkg"},
		},
	},
	{
		Class: vigil.ClassThermostat, Vendor: "Honeywell", Model: "T6-Pro", Firmware: "3.4.1",
		OS: "Linux", Kernel: "5.4.77", Ports: []uint16{443}, CPU: 8, Temp: 31,
		Software: []wire.Component{
			{Name: "busybox", Version: "1.33.2", Type: "package", Source: "opkg"},
			{Name: "mosquitto-client", Version: "2.0.11", Type: "package", Source: "opkg"},
		},
	},
	{
		Class: vigil.ClassPLCGateway, Vendor: "Moxa", Model: "MGate-5105", Firmware: "4.2",
		OS: "Linux", Kernel: "4.4.190", Ports: []uint16{443, 502, 1883}, CPU: 22, Temp: 45,
		Software: []wire.Component{
			{Name: "busybox", Version: "1.30.1", Type: "package", Source: "dpkg"},
			{Name: "openssh-server", Version: "8.4p1", Type: "package", Source: "dpkg"},
			{Name: "mosquitto", Version: "2.0.11", Type: "package", Source: "dpkg"},
		},
	},
	{
		Class: vigil.ClassSmartMeter, Vendor: "Landis+Gyr", Model: "E360", Firmware: "2.19.0",
		OS: "Linux", Kernel: "4.14.98", Ports: []uint16{443}, CPU: 12, Temp: 38,
		Software: []wire.Component{
			{Name: "busybox", Version: "1.29.3", Type: "package", Source: "apk"},
			{Name: "dropbear", Version: "2020.81", Type: "package", Source: "apk"},
		},
	},
}

// Device is one simulated device.
type Device struct {
	ID      string
	Profile Profile
	IP      netip.Addr
	MAC     string

	booted time.Time
	seq    uint64
	// extra are listeners added by an attack.
	extra []wire.Listener
	// cpuOverride, when positive, replaces the normal CPU load.
	cpuOverride float64
}

// Fleet is a set of simulated devices.
type Fleet struct {
	Devices []*Device
	rng     *rand.Rand
}

// NewFleet makes n devices cycling through Profiles.
func NewFleet(n int, seed uint64, now time.Time) *Fleet {
	f := &Fleet{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	for i := range n {
		p := Profiles[i%len(Profiles)]
		ip := netip.AddrFrom4([4]byte{10, 20, byte(i / 250), byte(i%250 + 2)})
		d := &Device{
			ID:      fmt.Sprintf("%s-%03d", p.Class, i+1),
			Profile: p,
			IP:      ip,
			MAC:     fmt.Sprintf("02:00:%02x:%02x:%02x:%02x", i>>24&0xff, i>>16&0xff, i>>8&0xff, i&0xff),
			booted:  now.Add(-time.Duration(f.rng.IntN(30*24*3600)) * time.Second),
		}
		f.Devices = append(f.Devices, d)
	}
	return f
}

// Device returns the device with the id, or nil.
func (f *Fleet) Device(id string) *Device {
	for _, d := range f.Devices {
		if d.ID == id {
			return d
		}
	}
	return nil
}

// Report returns d's routine report at now: health and network always,
// inventory on the first report and every tenth after it.
func (f *Fleet) Report(d *Device, now time.Time) *wire.Report {
	d.seq++
	p := d.Profile
	cpu := clamp(p.CPU+f.rng.NormFloat64()*5, 0, 85)
	if d.cpuOverride > 0 {
		cpu = clamp(d.cpuOverride+f.rng.Float64()*2, 0, 100)
	}
	temp := p.Temp + f.rng.NormFloat64()*1.5
	r := &wire.Report{
		Version:  wire.Version,
		DeviceID: d.ID,
		Time:     now.UTC(),
		Sequence: d.seq,
		Agent:    wire.Agent{Version: "sim-1.0"},
		Health: &wire.Health{
			CPU:         round1(cpu),
			Memory:      round1(clamp(40+f.rng.NormFloat64()*8, 5, 90)),
			Disk:        round1(clamp(30+f.rng.NormFloat64()*3, 5, 90)),
			Temperature: ptr(round1(temp)),
			Uptime:      uint64(now.Sub(d.booted) / time.Second),
			Metrics:     wire.Metrics{"net.rx_kbps": round1(50 + f.rng.Float64()*200)},
		},
		Network: &wire.Network{
			Interfaces: []wire.Interface{{Name: "eth0", MAC: d.MAC, Addresses: []string{d.IP.String() + "/16"}}},
			Listening:  d.listeners(),
			Connections: &wire.Connections{
				Count:           uint64(2 + f.rng.IntN(6)),
				DistinctRemotes: uint64(1 + f.rng.IntN(3)),
				BytesIn:         uint64(10000 + f.rng.IntN(50000)),
				BytesOut:        uint64(10000 + f.rng.IntN(90000)),
			},
		},
	}
	if d.seq%10 == 1 {
		r.Inventory = &wire.Inventory{
			OS:       wire.OS{Name: p.OS, Kernel: p.Kernel},
			Firmware: wire.Firmware{Version: p.Firmware, Vendor: p.Vendor, Model: p.Model},
			Class:    p.Class,
			Software: p.Software,
		}
	}
	return r
}

func (d *Device) listeners() []wire.Listener {
	var ls []wire.Listener
	for _, port := range d.Profile.Ports {
		ls = append(ls, wire.Listener{Proto: "tcp", Addr: "0.0.0.0", Port: port, Process: processFor(port)})
	}
	return append(ls, d.extra...)
}

func processFor(port uint16) string {
	switch port {
	case 80, 443:
		return "lighttpd"
	case 554:
		return "rtspd"
	case 502:
		return "mbgateway"
	case 1883:
		return "mosquitto"
	}
	return "daemon-" + strconv.Itoa(int(port))
}

func clamp(v, lo, hi float64) float64 { return max(lo, min(hi, v)) }

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }

func ptr[T any](v T) *T { return &v }
