package sensor

import (
	"net/netip"
	"path/filepath"
	"testing"
)

func TestFilter(t *testing.T) {
	pk := func(proto uint8, src string, sport uint16, dst string, dport uint16) *packet {
		return &packet{proto: proto, src: netip.MustParseAddr(src), sport: sport, dst: netip.MustParseAddr(dst), dport: dport}
	}
	mqtt := pk(ipTCP, "10.0.0.2", 40000, "10.0.0.1", 1883)
	dns := pk(ipUDP, "10.0.0.2", 5353, "224.0.0.251", 5353)
	v6 := pk(ipUDP, "fe80::1", 1, "fe80::2", 5683)
	f := func(expr string, want ...bool) {
		t.Helper()
		flt, err := parseFilter(expr)
		if err != nil {
			t.Fatalf("%q: %v", expr, err)
		}
		for i, p := range []*packet{mqtt, dns, v6} {
			if got := flt(p); got != want[i] {
				t.Errorf("%q on packet %d: %v, want %v", expr, i, got, want[i])
			}
		}
	}
	f("tcp port 1883", true, false, false)
	f("port 1883 or 5353", true, true, false)
	f("udp and not port 5353", false, false, true)
	f("src host 10.0.0.2", true, true, false)
	f("dst net 224.0.0.0/4", false, true, false)
	f("ip6", false, false, true)
	f("!(tcp || ip6)", false, true, false)
	f("portrange 5000-6000 and udp", false, true, true)
	f("dst port 1883 and src net 10.0.0.0/8", true, false, false)
	f("src or dst host 10.0.0.1", true, false, false)
	for _, bad := range []string{"port x", "host nothost", "tcp port", "(tcp", "foo", "net 10.0.0.0/33", "portrange 9-1", "and tcp"} {
		if _, err := parseFilter(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestFilterOnCapture(t *testing.T) {
	f := filepath.Join(corpusDir(t, "pcap/zeek"), "Traces", "mqtt.pcap")
	all, st := runPcap(t, Config{}, f)
	none, st2 := runPcap(t, Config{BPF: "not tcp port 1883"}, f)
	if st2.Filtered == 0 || st2.Packets != st.Packets || len(none) >= len(all) {
		t.Fatalf("all %+v, filtered %+v", st, st2)
	}
	for _, e := range none {
		if e.Kind == "mqtt" {
			t.Fatal("mqtt event passed the filter")
		}
	}
	if _, err := Run(t.Context(), Config{Pcaps: []string{f}, BPF: "port"}); err == nil {
		t.Fatal("bad filter accepted")
	}
}
