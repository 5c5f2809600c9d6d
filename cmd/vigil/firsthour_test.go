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

	vagent "github.com/vigil-iot/vigil/agent"
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

// TestEnrollTokenThroughAPI: `vigil ctl enroll-token create` without
// --data-dir asks the configured server's API, and the token it prints
// enrolls a device there; without an API token it fails saying why. No
// command makes a data dir as a side effect: a --data-dir or --data that
// does not exist is refused, and nothing appears in the working directory.
func TestEnrollTokenThroughAPI(t *testing.T) {
	a := startTestApp(t)
	ca := filepath.Join(a.cfg.DataDir, "pki", "ca.crt")
	cwd := t.TempDir()
	t.Chdir(cwd)
	t.Setenv("VIGIL_TOKEN", "")
	t.Setenv("VIGIL_SERVER", a.URL)
	t.Setenv("VIGIL_CA", ca)

	out, code := run(t, "ctl", "enroll-token", "create", "--class", "camera", "--token", a.adminToken)
	if code != 0 {
		t.Fatalf("enroll-token create through the API: exit %d: %s", code, out)
	}
	id, err := vagent.Enroll(t.Context(), vagent.EnrollOptions{Server: a.URL, Token: strings.TrimSpace(out), StateDir: t.TempDir(), CAFile: ca})
	if err != nil {
		t.Fatalf("the printed token does not enroll on the server: %v", err)
	}
	if !strings.HasPrefix(id.DeviceID, "camera-") {
		t.Errorf("enrolled as %q, want a camera", id.DeviceID)
	}

	out, code = run(t, "ctl", "enroll-token", "create", "--class", "camera")
	if code == 0 || !strings.Contains(out, "no API token") || !strings.Contains(out, "--data-dir") {
		t.Errorf("enroll-token create without a token: exit %d, want a failure saying why: %s", code, out)
	}
	out, code = run(t, "ctl", "enroll-token", "create", "--class", "camera", "--data-dir", t.TempDir())
	if code == 0 || !strings.Contains(out, "is it the server's data dir?") {
		t.Errorf("enroll-token create into a dir that is not a data dir: exit %d: %s", code, out)
	}

	missing := filepath.Join(cwd, "no-such-dir")
	nvd := filepath.Join(t.TempDir(), "nvd.json")
	os.WriteFile(nvd, []byte(`{"vulnerabilities":[]}`), 0o600)
	ioc := filepath.Join(t.TempDir(), "ioc.txt")
	os.WriteFile(ioc, []byte("192.0.2.1\n"), 0o600)
	for _, args := range [][]string{
		{"ctl", "enroll-token", "create", "--class", "camera", "--data-dir", missing},
		{"ctl", "token", "create", "--role", "viewer", "--data-dir", missing},
		{"ctl", "token", "list", "--data-dir", missing},
		{"audit", "verify", "--data-dir", missing},
		{"intel", "import", "--name", "x", "--data", missing, ioc},
		{"intel", "list", "--data", missing},
		{"vuln", "import", "--name", "x", "--format", "nvd", "--data", missing, nvd},
	} {
		out, code := run(t, args...)
		if code == 0 || !strings.Contains(out, "does not exist") {
			t.Errorf("%s: exit %d, want a refusal of the missing data dir: %s", strings.Join(args, " "), code, out)
		}
		if _, err := os.Stat(missing); err == nil {
			t.Fatalf("%s made the data dir %s", strings.Join(args, " "), missing)
		}
	}
	if ents, _ := os.ReadDir(cwd); len(ents) > 0 {
		t.Errorf("the commands left %s in the working directory", ents[0].Name())
	}
}
