package intel

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/feeds"
	"github.com/vigil-iot/vigil/feeds/plain"
	"github.com/vigil-iot/vigil/feeds/stix"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func ind(typ feeds.Type, v string) feeds.Indicator {
	return feeds.Indicator{ID: string(typ) + ":" + v, Feed: "test", Type: typ, Value: v, Confidence: 80}
}

func TestPrefixesAgainstBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var ins []feeds.Indicator
	var pfx []netip.Prefix
	for range 3000 {
		var a netip.Addr
		var bits int
		if rng.IntN(4) == 0 {
			var b [16]byte
			b[0], b[1], b[2] = 0x20, 0x01, byte(rng.IntN(4))
			a = netip.AddrFrom16(b)
			bits = 16 + rng.IntN(113)
		} else {
			a = netip.AddrFrom4([4]byte{10, byte(rng.IntN(4)), byte(rng.IntN(8)), byte(rng.IntN(256))})
			bits = 8 + rng.IntN(25)
		}
		p := netip.PrefixFrom(a, bits).Masked()
		pfx = append(pfx, p)
		v, err := feeds.Normalize(feeds.TypeIP, p.String())
		if err != nil {
			t.Fatal(err)
		}
		ins = append(ins, ind(feeds.TypeIP, v))
	}
	s := Build(ins)
	for range 20000 {
		var a netip.Addr
		if rng.IntN(4) == 0 {
			var b [16]byte
			b[0], b[1], b[2], b[15] = 0x20, 0x01, byte(rng.IntN(4)), byte(rng.IntN(256))
			a = netip.AddrFrom16(b)
		} else {
			a = netip.AddrFrom4([4]byte{10, byte(rng.IntN(5)), byte(rng.IntN(8)), byte(rng.IntN(256))})
		}
		want := 0
		for _, p := range pfx {
			if p.Contains(a) {
				want++
			}
		}
		if got := s.CountAddr(a, time.Time{}); got != want {
			t.Fatalf("%s: %d matches, want %d", a, got, want)
		}
	}
}

func TestLookup(t *testing.T) {
	expired := ind(feeds.TypeIP, "192.0.2.9")
	expired.ValidUntil = t0.Add(-time.Hour)
	future := ind(feeds.TypeDomain, "later.example")
	future.ValidFrom = t0.Add(time.Hour)
	s := Build([]feeds.Indicator{
		ind(feeds.TypeIP, "10.0.0.0/8"), ind(feeds.TypeIP, "10.1.0.0/16"), ind(feeds.TypeIP, "10.1.2.3"),
		ind(feeds.TypeIP, "2001:db8:bad::/48"), ind(feeds.TypeIP, "2001:db8::1"), expired,
		ind(feeds.TypeDomain, "evil.example"), future,
		{ID: "dup", Feed: "other", Type: feeds.TypeIP, Value: "10.1.2.3", Confidence: 20},
	})
	f := func(a string, want int) {
		t.Helper()
		if got := s.CountAddr(netip.MustParseAddr(a), t0); got != want {
			t.Errorf("%s: %d matches, want %d", a, got, want)
		}
	}
	f("10.1.2.3", 4) // exact twice, /16, /8
	f("::ffff:10.1.2.3", 4)
	f("10.1.9.9", 2)
	f("10.200.0.1", 1)
	f("11.0.0.1", 0)
	f("2001:db8:bad:1::5", 1)
	f("2001:db8::1", 1)
	f("2001:db8::2", 0)
	f("192.0.2.9", 0) // expired
	if got := s.CountAddr(netip.MustParseAddr("192.0.2.9"), t0.Add(-2*time.Hour)); got != 1 {
		t.Errorf("before expiry: %d", got)
	}
	d := func(n string, want int) {
		t.Helper()
		if got := s.CountDomain(n, t0); got != want {
			t.Errorf("%s: %d matches, want %d", n, got, want)
		}
	}
	d("evil.example", 1)
	d("A.B.Evil.Example.", 1)
	d("notevil.example", 0)
	d("evil.example.com", 0)
	d("later.example", 0)
	m := s.LookupAddr(netip.MustParseAddr("10.1.2.3"), t0)
	if m[0].Value != "10.1.2.3" || m[len(m)-1].Value != "10.0.0.0/8" {
		t.Errorf("order: exact first, widest last: %+v", m)
	}
}

func detectAll(d *Detector, ev *vigil.Event) []vigil.Alert {
	var out []vigil.Alert
	d.Detect(context.Background(), 0, ev, func(a vigil.Alert) { out = append(out, a) })
	return out
}

func TestDetector(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "feeds", "stix", "testdata", "bundle21.json"))
	if err != nil {
		t.Fatal(err)
	}
	ins, _, err := stix.Parse(strings.NewReader(string(raw)), &feeds.Feed{Name: "cti"}, t0)
	if err != nil {
		t.Fatal(err)
	}
	d := New(nil, nil)
	if got := detectAll(d, &vigil.Event{ID: "e0", Time: t0, Network: &vigil.Network{DstIP: netip.MustParseAddr("198.51.100.7")}}); len(got) != 0 {
		t.Fatalf("empty set raised %d alerts", len(got))
	}
	d.Load(ins)

	f := func(name string, ev vigil.Event, wantRule, wantField string) {
		t.Helper()
		ev.ID, ev.Time, ev.DeviceID = name, t0, "cam-1"
		got := detectAll(d, &ev)
		if wantRule == "" {
			if len(got) != 0 {
				t.Errorf("%s: unexpected alerts %+v", name, got)
			}
			return
		}
		if len(got) != 1 {
			t.Fatalf("%s: %d alerts, want 1: %+v", name, len(got), got)
		}
		a := got[0]
		if a.RuleID != wantRule || a.Fields["intel.matched.field"] != wantField || a.Detector != "intel" ||
			a.DeviceID != "cam-1" || a.EventIDs[0] != name || a.Fields["intel.feed"] != "cti" || a.Fields["intel.confidence"] == nil {
			t.Errorf("%s: alert %+v", name, a)
		}
		// The explanation names the indicator, its feed and confidence,
		// and the field and value that matched it.
		x := a.Explanation
		if x == nil || x.Indicator == nil || "intel:cti:"+x.Indicator.ID != wantRule || x.Indicator.Feed != "cti" || x.Indicator.Confidence == 0 ||
			x.Indicator.Value == "" || x.Indicator.Field != wantField || x.Indicator.Matched != a.Fields["intel.matched.value"] {
			t.Errorf("%s: explanation %+v", name, x)
		} else if len(x.Evidence) != 1 || x.Evidence[0].EventID != name {
			t.Errorf("%s: evidence %+v", name, x.Evidence)
		}
	}
	net := func(src, dst string, port uint16) *vigil.Network {
		return &vigil.Network{Transport: "tcp", SrcIP: netip.MustParseAddr(src), DstIP: netip.MustParseAddr(dst), DstPort: port}
	}
	f("c2", vigil.Event{Kind: "network", Network: net("10.0.0.5", "198.51.100.7", 443)}, "intel:cti:indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", "destination.ip")
	f("range", vigil.Event{Kind: "network", Network: net("203.0.113.77", "10.0.0.5", 22)}, "intel:cti:indicator--a1f2b3c4-0000-4000-8000-000000000002", "source.ip")
	f("auth", vigil.Event{Kind: "auth", Fields: map[string]any{"source.ip": "203.0.113.8"}}, "intel:cti:indicator--a1f2b3c4-0000-4000-8000-000000000002", "source.ip")
	f("dns", vigil.Event{Kind: "dns", Fields: map[string]any{"dns.question.name": "cdn.EVIL-UPDATE.example."}}, "intel:cti:indicator--a1f2b3c4-0000-4000-8000-000000000003", "dns.question.name")
	f("dns-answer", vigil.Event{Kind: "dns", Fields: map[string]any{"dns.question.name": "ok.example", "dns.answers.data": []string{"192.0.2.1", "198.51.100.7"}}}, "intel:cti:indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f", "dns.answers.data")
	f("sni", vigil.Event{Kind: "tls", Fields: map[string]any{"tls.client.server_name": "evil-update.example"}}, "intel:cti:indicator--a1f2b3c4-0000-4000-8000-000000000003", "tls.client.server_name")
	f("mqtt", vigil.Event{Kind: "config", Fields: map[string]any{"mqtt.broker": "mqtts://user@mqtt.bad.example:8883"}}, "intel:cti:indicator--a1f2b3c4-0000-4000-8000-000000000007", "mqtt.broker")
	f("mqtt-port-ok", vigil.Event{Kind: "mqtt", Network: net("10.0.0.5", "192.0.2.99", 1883)}, "intel:cti:indicator--a1f2b3c4-0000-4000-8000-000000000007", "destination.ip")
	f("mqtt-port-other", vigil.Event{Kind: "mqtt", Network: net("10.0.0.5", "192.0.2.99", 8883)}, "", "")
	f("fim-and", vigil.Event{Kind: "file", Fields: map[string]any{"file.path": "/tmp/mozi.a", "file.hash.sha256": "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"}}, "intel:cti:indicator--a1f2b3c4-0000-4000-8000-000000000004", "file.hash.sha256")
	f("fim-and-other-name", vigil.Event{Kind: "file", Fields: map[string]any{"file.path": "/tmp/x", "file.hash.sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}}, "", "")
	f("clean", vigil.Event{Kind: "network", Network: net("10.0.0.5", "192.0.2.200", 443), Fields: map[string]any{"dns.question.name": "example.org"}}, "", "")

	// http.host matches the domain (parent match) and host+path the URL.
	ev := vigil.Event{ID: "h", Time: t0, Kind: "http", Fields: map[string]any{"http.host": "Evil-Update.example:80", "http.path": "/fw.bin"}}
	got := detectAll(d, &ev)
	if len(got) != 2 {
		t.Fatalf("http: %d alerts: %+v", len(got), got)
	}
	// Expired: the bundle's range indicator expires with no valid_until
	// only through feed expiry; reload with a 1h expiry from 2024.
	ins2, _, _ := stix.Parse(strings.NewReader(string(raw)), &feeds.Feed{Name: "cti", Expiry: time.Hour}, t0)
	d.Load(ins2)
	f("range-expired", vigil.Event{Kind: "network", Network: net("203.0.113.77", "10.0.0.5", 22)}, "", "")
}

func TestDetectorThreatFox(t *testing.T) {
	p := filepath.Join("..", "..", "..", "shared", "corpus", "intel", "threatfox-ips.txt")
	fh, err := os.Open(p)
	if err != nil {
		t.Skipf("corpus file %s absent: %v", p, err)
	}
	defer fh.Close()
	ins, _, err := plain.ParseList(fh, &feeds.Feed{Name: "threatfox", Confidence: 75}, t0)
	if err != nil {
		t.Fatal(err)
	}
	d := New(nil, nil)
	d.Load(ins)
	if d.Set().Len() != len(ins) {
		t.Fatalf("set has %d of %d", d.Set().Len(), len(ins))
	}
	last := ins[len(ins)-1].Value
	got := detectAll(d, &vigil.Event{ID: "x", Time: t0, DeviceID: "gw", Kind: "network",
		Network: &vigil.Network{SrcIP: netip.MustParseAddr("10.0.0.2"), DstIP: netip.MustParseAddr(last), DstPort: 443}})
	if len(got) != 1 || got[0].Severity != vigil.SeverityMedium || got[0].Entities[0] != "ip:"+last {
		t.Fatalf("alerts %+v", got)
	}
}

// TestHotSwap runs detection while sets are swapped (run with -race).
func TestHotSwap(t *testing.T) {
	d := New(nil, nil)
	a := []feeds.Indicator{ind(feeds.TypeIP, "192.0.2.1")}
	b := []feeds.Indicator{ind(feeds.TypeIP, "192.0.2.2")}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			if i%2 == 0 {
				d.Load(a)
			} else {
				d.Load(b)
			}
		}
	}()
	ev := &vigil.Event{ID: "e", Time: t0, Network: &vigil.Network{DstIP: netip.MustParseAddr("192.0.2.1")}}
	for {
		select {
		case <-done:
			d.Load(a)
			if n := len(detectAll(d, ev)); n != 1 {
				t.Fatalf("%d alerts after the last swap", n)
			}
			return
		default:
			if n := len(detectAll(d, ev)); n > 1 {
				t.Fatalf("%d alerts", n)
			}
		}
	}
}
