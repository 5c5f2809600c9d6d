package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// writeUDPPcap writes a capture of n UDP datagrams between two hosts.
func writeUDPPcap(t *testing.T, name string, n int) string {
	t.Helper()
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{192, 0, 2, 1}, DstIP: net.IP{192, 0, 2, 2}}
	udp := &layers.UDP{SrcPort: 40000, DstPort: 9999}
	udp.SetNetworkLayerForChecksum(ip)
	for i := range n {
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, gopacket.Payload("hello")); err != nil {
			t.Fatal(err)
		}
		b := buf.Bytes()
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(1700000000, 0).Add(time.Duration(i) * time.Millisecond), CaptureLength: len(b), Length: len(b)}
		if err := w.WritePacket(ci, b); err != nil {
			t.Fatal(err)
		}
	}
	return name
}

// TestSensorSeveralPcaps: `vigil sensor --pcap a.pcap b.pcap` (what a shell
// glob expands to) reads both files, as does --pcap repeated; a file
// without --pcap is refused with a reason.
func TestSensorSeveralPcaps(t *testing.T) {
	dir := t.TempDir()
	a := writeUDPPcap(t, filepath.Join(dir, "a.pcap"), 2)
	b := writeUDPPcap(t, filepath.Join(dir, "b.pcap"), 3)
	out := filepath.Join(dir, "out.jsonl")
	for _, args := range [][]string{
		{"sensor", "--pcap", a, b, "--output", out},
		{"sensor", "--output", out, "--pcap", a, "--pcap", b},
	} {
		got, code := run(t, args...)
		if code != 0 || !strings.Contains(got, "packets=5 ") {
			t.Errorf("%s: exit %d, want 0 and packets=5:\n%s", strings.Join(args, " "), code, got)
		}
	}
	if got, code := run(t, "sensor", a, "--output", out); code == 0 || !strings.Contains(got, "capture files follow --pcap") {
		t.Errorf("a file without --pcap: exit %d:\n%s", code, got)
	}
}
