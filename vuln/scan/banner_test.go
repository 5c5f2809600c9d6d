package scan

import (
	"net/netip"
	"testing"

	"github.com/vigil-iot/vigil"
)

func TestBannerComponent(t *testing.T) {
	f := func(b, wantCPE string) {
		t.Helper()
		c, ok := BannerComponent(b)
		if wantCPE == "" {
			if ok {
				t.Errorf("%q: component %+v, want none", b, c)
			}
			return
		}
		if !ok || c.CPE != wantCPE || c.Source != "banner" {
			t.Errorf("%q: %+v %v, want %s", b, c, ok, wantCPE)
		}
	}
	f("lighttpd/1.4.59", "cpe:2.3:a:lighttpd:lighttpd:1.4.59:*:*:*:*:*:*:*")
	f("Apache/2.4.41 (Ubuntu)", "cpe:2.3:a:apache:http_server:2.4.41:*:*:*:*:*:*:*")
	f("SSH-2.0-dropbear_2020.81", "cpe:2.3:a:dropbear_ssh_project:dropbear_ssh:2020.81:*:*:*:*:*:*:*")
	f("SSH-2.0-OpenSSH_8.2p1 Ubuntu-4ubuntu0.5", "cpe:2.3:a:openbsd:openssh:8.2p1:*:*:*:*:*:*:*")
	f("GoAhead-Webs/2.5.0", "cpe:2.3:a:embedthis:goahead:2.5.0:*:*:*:*:*:*:*")
	f("nginx", "")                  // no version
	f("lighttpd-custom/1.4.59", "") // not in the table: no similarity match
	f("Microsoft-IIS/10.0", "")
	f("lighttpd/secret", "")
}

func TestObserveBanner(t *testing.T) {
	db, _, _ := open(t)
	mustImport(t, db, csafDoc, ImportOptions{}, 2)
	db.Observe(&vigil.Event{ID: "r1", DeviceID: "cam-9", Source: "sensor", Kind: "http", Action: "response",
		Network: &vigil.Network{Transport: "tcp", SrcIP: netip.MustParseAddr("10.0.0.9"), SrcPort: 80, DstIP: netip.MustParseAddr("10.0.0.2"), DstPort: 50123},
		Fields:  map[string]any{"http.server": "lighttpd/1.4.59"}})
	fs := db.Findings(Filter{DeviceID: "cam-9"})
	if len(fs) != 1 || fs[0].Vuln != "CVE-2024-99902" || !fs[0].Exposed || fs[0].Evidence[0].Component != "lighttpd 1.4.59 (cpe:2.3:a:lighttpd:lighttpd:1.4.59:*:*:*:*:*:*:*) from banner" {
		t.Fatalf("findings %+v", fs)
	}
	// The server is upgraded: the finding goes.
	db.Observe(&vigil.Event{ID: "r2", DeviceID: "cam-9", Source: "sensor", Kind: "http", Fields: map[string]any{"http.server": "lighttpd/1.4.76"}})
	if fs := db.Findings(Filter{DeviceID: "cam-9"}); len(fs) != 0 {
		t.Errorf("after upgrade %+v", fs)
	}
}

func TestObserveTraffic(t *testing.T) {
	db, _, _ := open(t)
	mustImport(t, db, csafDoc, ImportOptions{}, 2)
	db.UpdateDevice(vigil.Device{ID: "gw-2", Vendor: "Acme", Model: "Gateway G2", Firmware: "4.1.0",
		Network: []vigil.NetIdentity{{Interface: "eth0", Addresses: []string{"10.0.0.20/24"}}}})
	ev := func(dst string, port uint16) *vigil.Event {
		return &vigil.Event{DeviceID: "gw-2", Source: "sensor", Kind: "tls",
			Network: &vigil.Network{Transport: "tcp", SrcIP: netip.MustParseAddr("10.0.0.2"), SrcPort: 40000, DstIP: netip.MustParseAddr(dst), DstPort: port}}
	}
	db.Observe(ev("93.184.216.34", 443)) // the device is not the destination
	if fs := db.Findings(Filter{DeviceID: "gw-2"}); len(fs) != 1 || fs[0].Exposed {
		t.Fatalf("outbound traffic made it exposed: %+v", fs)
	}
	db.Observe(ev("10.0.0.20", 443))
	fs := db.Findings(Filter{DeviceID: "gw-2"})
	if len(fs) != 1 || !fs[0].Exposed || fs[0].Exposure != "device firmware; traffic seen to tcp/443" || fs[0].Rank != 7.5+2 {
		t.Fatalf("inbound traffic: %+v", fs)
	}
}
