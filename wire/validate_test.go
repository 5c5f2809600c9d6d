package wire

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func validReport(t *testing.T) *Report {
	t.Helper()
	r, err := DecodeReportBytes(FormatJSON, readFile(t, "testdata/report.json"))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func problemStrings(ps []Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Error())
	}
	return out
}

func TestFilterDropsOnlyBadParts(t *testing.T) {
	f := func(name string, edit func(r *Report), want []string, check func(t *testing.T, orig, out *Report)) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			r := validReport(t)
			edit(r)
			out, probs := r.Filter()
			if got := problemStrings(probs); !slices.Equal(got, want) {
				t.Fatalf("problems:\n got %q\nwant %q", got, want)
			}
			var ve *ValidationError
			if err := r.Validate(); len(want) > 0 && !errors.As(err, &ve) {
				t.Fatalf("Validate = %v, want *ValidationError", err)
			}
			check(t, r, out)
		})
	}
	temp := 900.0
	f("health", func(r *Report) {
		r.Health.CPU = 150
		r.Health.Disk = math.NaN()
		r.Health.Temperature = &temp
		r.Health.Metrics["bad name"] = 1
		r.Health.Metrics["inf"] = math.Inf(1)
	}, []string{
		"health.cpu_pct: must be 0..100",
		"health.disk_pct: must be 0..100",
		"health.temperature_c: must be -100..300",
		`health.metrics["bad name"]: name must hold only letters, digits, '.', '_', ':', '@', '/' or '-'`,
		`health.metrics["inf"]: must be a finite number`,
	}, func(t *testing.T, orig, out *Report) {
		if out.Health != nil || out.Inventory == nil || len(out.Events) != 2 || orig.Health == nil {
			t.Fatalf("want only health dropped, got %+v", out)
		}
	})
	f("one bad event", func(r *Report) {
		r.Events[1].Time = time.Time{}
		r.Events[1].Severity = "urgent"
		r.Events = append(r.Events, SecurityEvent{Time: r.Time, Kind: "health"}, SecurityEvent{Time: r.Time, Kind: "Auth!", Outcome: "maybe"})
	}, []string{
		"events[1].time: missing",
		`events[1].severity: unknown severity "urgent": want informational, low, medium, high or critical`,
		`events[2].kind: "health" is reserved for the health section`,
		`events[3].kind: "Auth!": want a lowercase word of letters, digits, '_', '-' or '.'`,
		`events[3].outcome: unknown outcome "maybe": want success, failure or unknown`,
	}, func(t *testing.T, orig, out *Report) {
		if len(out.Events) != 1 || out.Events[0].ID != "cam-0042-1841-0" || len(orig.Events) != 4 {
			t.Fatalf("want events[0] kept alone, got %+v", out.Events)
		}
		if out.Health == nil || out.Inventory == nil || out.Network == nil {
			t.Fatal("sections dropped")
		}
	})
	f("event fields", func(r *Report) {
		r.Events[0].Fields["x\ny"] = "1"
		r.Events[0].Fields["msg"] = "a\x00b"
		r.Events[0].Fields["ok"] = "line1\nline2\ttab"
		r.Events[0].ID = "has space"
	}, []string{
		`events[0].id: "has space": want letters, digits, '.', '_', ':', '@' or '-'`,
		`events[0].fields["msg"]: holds a control character or invalid UTF-8`,
		`events[0].fields["x\ny"]: name must hold only letters, digits, '.', '_', ':', '@', '/' or '-'`,
	}, func(t *testing.T, orig, out *Report) {
		if len(out.Events) != 1 || out.Events[0].Kind != "process" {
			t.Fatalf("got %+v", out.Events)
		}
	})
	f("inventory", func(r *Report) {
		r.Inventory.Software[1].Name = ""
		r.Inventory.Software[0].PURL = "busybox"
		r.Inventory.OS.Name = strings.Repeat("x", MaxTextLen+1)
	}, []string{
		"inventory.os.name: longer than 1024 bytes",
		`inventory.software[0].purl: must start with "pkg:"`,
		"inventory.software[1].name: missing",
	}, func(t *testing.T, orig, out *Report) {
		if out.Inventory != nil || out.Health == nil {
			t.Fatalf("want inventory dropped, got %+v", out)
		}
	})
	f("network items", func(r *Report) {
		r.Network.Interfaces = append(r.Network.Interfaces, Interface{Name: "wlan0", MAC: "zz", Addresses: []string{"10.0.0.1", "nope"}})
		r.Network.Listening[0].Proto = "icmp"
		r.Network.Listening[1].Port = 0
		r.Network.Listening = append(r.Network.Listening, Listener{Proto: "udp6", Addr: "::", Port: 5683}, Listener{Proto: "tcp", Addr: "localhost", Port: 1})
	}, []string{
		`network.interfaces[1].mac: cannot parse "zz" as a MAC address`,
		`network.interfaces[1].addresses[1]: cannot parse "nope" as an IP address`,
		`network.listening[0].proto: unknown protocol "icmp": want tcp, udp or sctp`,
		"network.listening[1].port: must be 1..65535",
		`network.listening[3].addr: cannot parse "localhost" as an IP address`,
	}, func(t *testing.T, orig, out *Report) {
		if len(out.Network.Interfaces) != 1 || len(out.Network.Listening) != 1 || out.Network.Listening[0].Port != 5683 || out.Network.Connections == nil {
			t.Fatalf("got %+v", out.Network)
		}
		if len(orig.Network.Listening) != 4 {
			t.Fatal("Filter changed its input")
		}
	})
	f("envelope", func(r *Report) {
		r.DeviceID = ""
		r.Time = time.Time{}
		r.Health.CPU = -1
	}, []string{
		"device_id: missing",
		"time: missing",
		"health.cpu_pct: must be 0..100",
	}, func(t *testing.T, orig, out *Report) {
		if out != nil {
			t.Fatal("want the whole report rejected")
		}
	})
	f("valid", func(r *Report) {}, nil, func(t *testing.T, orig, out *Report) {
		if out == nil || len(out.Events) != 2 || out.Health == nil {
			t.Fatal("valid report changed")
		}
		if err := orig.Validate(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestProblemIndex(t *testing.T) {
	r := validReport(t)
	r.Events[1].Kind = ""
	r.Health.CPU = 101
	_, probs := r.Filter()
	if len(probs) != 2 || probs[0].Index != -1 || probs[1].Index != 1 {
		t.Fatalf("got %+v", probs)
	}
	ve := &ValidationError{Problems: probs}
	if got, want := ve.Error(), "invalid report: health.cpu_pct: must be 0..100; events[1].kind: missing"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
