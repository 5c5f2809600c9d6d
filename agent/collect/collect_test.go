package collect

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/wire"
)

var t0 = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

func fixedEnv(root string) Env { return Env{Root: root, Now: func() time.Time { return t0 }} }

func TestPackageParsers(t *testing.T) {
	f := func(file string, parse func(r *os.File) ([]wire.Component, error), want ...string) {
		t.Helper()
		fh, err := os.Open(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		comps, err := parse(fh)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		var got []string
		for _, c := range comps {
			got = append(got, c.Name+"@"+c.Version+" "+c.PURL)
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s:\ngot  %q\nwant %q", file, got, want)
		}
	}
	f("dpkg-status", func(r *os.File) ([]wire.Component, error) { return ParseDpkgStatus(r) },
		"libc6@2.36-9+deb12u4 pkg:deb/libc6@2.36-9+deb12u4?arch=amd64",
		"openssh-server@1:9.2p1-2+deb12u2 pkg:deb/openssh-server@1:9.2p1-2+deb12u2?arch=amd64",
		"busybox@1:1.35.0-4+b3 pkg:deb/busybox@1:1.35.0-4+b3?arch=amd64")
	f("opkg-status", func(r *os.File) ([]wire.Component, error) { return ParseOpkgStatus(r) },
		"dropbear@2022.82-2 pkg:opkg/dropbear@2022.82-2?arch=mipsel_24kc",
		"busybox@1.36.1-1 pkg:opkg/busybox@1.36.1-1?arch=mipsel_24kc",
		"uhttpd@2023-06-25-34a8a74d-2 pkg:opkg/uhttpd@2023-06-25-34a8a74d-2?arch=mipsel_24kc")
	f("apk-installed", func(r *os.File) ([]wire.Component, error) { return ParseApkInstalled(r) },
		"musl@1.2.4-r2 pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64",
		"busybox@1.36.1-r15 pkg:apk/alpine/busybox@1.36.1-r15?arch=x86_64")
}

func TestParseDpkgStatusBadLine(t *testing.T) {
	_, err := ParseDpkgStatus(strings.NewReader("Package: a\nno colon here\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("want an error naming line 2, got %v", err)
	}
}

func TestPackagesOnThisMachine(t *testing.T) {
	if _, err := os.Stat(DpkgStatus); err != nil {
		t.Skip("no dpkg database on this machine")
	}
	var r wire.Report
	if err := (&Packages{}).Collect(context.Background(), &r); err != nil {
		t.Fatal(err)
	}
	if r.Inventory == nil || len(r.Inventory.Software) < 10 {
		t.Fatalf("want the installed packages, got %+v", r.Inventory)
	}
}

func TestParseAuthLines(t *testing.T) {
	b, err := os.ReadFile("testdata/auth.log")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		ev, ok := ParseAuthLine(l, t0)
		if !ok {
			got = append(got, "-")
			continue
		}
		if ev.Kind != KindAuth || ev.Category != "authentication" || ev.Action != "login" {
			t.Errorf("%q: event %+v", l, ev)
		}
		got = append(got, ev.Outcome+" "+ev.Fields["service.name"]+" "+ev.Fields["user.name"]+" "+ev.Fields["source.ip"]+ev.Fields["source.address"]+" "+ev.Fields["source.port"])
	}
	want := []string{
		"success sshd admin 192.0.2.10 51514",
		"failure sshd root 203.0.113.5 40022",
		"failure sshd ubnt 203.0.113.5 40023",
		"failure sshd support 203.0.113.6 40100",
		"success sshd ops 2001:db8::5 60000",
		"success dropbear root 192.0.2.11 40211",
		"failure dropbear root 203.0.113.7 5555",
		"failure dropbear guest 203.0.113.8 5556",
		"failure login admin 203.0.113.9 ",
		"success login root  ",
		"success login root 192.0.2.12 ",
		"failure login admin  ",
		"success login root  ",
		"-",
		"-",
	}
	if len(got) != len(want) {
		t.Fatalf("got %d lines, want %d: %q", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: got %q, want %q", i+1, got[i], want[i])
		}
	}
}

func TestAuthLogFollows(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "auth.log")
	old := "Nov 22 02:00:00 cam sshd[1]: Failed password for root from 203.0.113.1 port 1 ssh2\n"
	if err := os.WriteFile(log, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	a := &AuthLog{Env: fixedEnv(""), Files: []string{log}}
	collect := func() []wire.SecurityEvent {
		t.Helper()
		var r wire.Report
		if err := a.Collect(context.Background(), &r); err != nil {
			t.Fatal(err)
		}
		return r.Events
	}
	if evs := collect(); len(evs) != 0 {
		t.Fatalf("history replayed: %+v", evs)
	}
	fh, _ := os.OpenFile(log, os.O_APPEND|os.O_WRONLY, 0)
	fh.WriteString("Nov 22 03:00:07 cam dropbear[881]: Bad password attempt for 'root' from 203.0.113.7:5555\nNov 22 03:00:08 cam dropbear[881]: Bad pass")
	fh.Close()
	if evs := collect(); len(evs) != 1 || evs[0].Fields["source.ip"] != "203.0.113.7" {
		t.Fatalf("want the one new complete line, got %+v", evs)
	}
	fh, _ = os.OpenFile(log, os.O_APPEND|os.O_WRONLY, 0)
	fh.WriteString("word attempt for 'admin' from 203.0.113.8:1\n")
	fh.Close()
	if evs := collect(); len(evs) != 1 || evs[0].Fields["user.name"] != "admin" {
		t.Fatalf("want the completed line, got %+v", evs)
	}
	// Rotation: a new file in its place is read from its start.
	os.Rename(log, log+".1")
	os.WriteFile(log, []byte("Nov 22 03:01:00 cam sshd[2]: Accepted password for ops from 192.0.2.1 port 2 ssh2\n"), 0o600)
	if evs := collect(); len(evs) != 1 || evs[0].Outcome != "success" {
		t.Fatalf("want the rotated file's line, got %+v", evs)
	}
}

func TestFIM(t *testing.T) {
	dir := t.TempDir()
	watched := filepath.Join(dir, "etc")
	os.Mkdir(watched, 0o755)
	os.WriteFile(filepath.Join(watched, "passwd"), []byte("root:x:0:0\n"), 0o644)
	os.WriteFile(filepath.Join(watched, "shadow"), []byte("root:*\n"), 0o600)
	state := filepath.Join(dir, "fim.json")
	run := func(f *FIM) []wire.SecurityEvent {
		t.Helper()
		var r wire.Report
		if err := f.Collect(context.Background(), &r); err != nil {
			t.Fatal(err)
		}
		return r.Events
	}
	f := &FIM{Env: fixedEnv(""), Paths: []string{watched}, StateFile: state}
	if evs := run(f); len(evs) != 0 {
		t.Fatalf("first run reported %+v", evs)
	}
	os.WriteFile(filepath.Join(watched, "passwd"), []byte("root:x:0:0\nevil:x:0:0\n"), 0o644)
	os.Remove(filepath.Join(watched, "shadow"))
	os.WriteFile(filepath.Join(watched, "rc.local"), []byte("nc -l -p 4444\n"), 0o755)
	// A new agent process: the baseline comes from the state file.
	f2 := &FIM{Env: fixedEnv(""), Paths: []string{watched}, StateFile: state}
	evs := run(f2)
	var got []string
	for _, e := range evs {
		got = append(got, e.Action+" "+filepath.Base(e.Fields["file.path"])+" "+strconv.FormatBool(e.Fields["file.hash.sha256"] != "")+" "+strconv.FormatBool(e.Fields["file.hash.sha256_before"] != ""))
	}
	want := "changed passwd true true,created rc.local true false,deleted shadow false true"
	if strings.Join(got, ",") != want {
		t.Fatalf("got %q, want %q", strings.Join(got, ","), want)
	}
	if evs := run(f2); len(evs) != 0 {
		t.Fatalf("no change, got %+v", evs)
	}
}

func TestParseMetrics(t *testing.T) {
	m, err := ParseMetrics([]byte("# comment\nfan_rpm 1200\n\nqueue_depth 3.5\nbad line here\nx NaN\n"))
	if m["fan_rpm"] != 1200 || m["queue_depth"] != 3.5 || len(m) != 2 {
		t.Errorf("got %v", m)
	}
	if err == nil || !strings.Contains(err.Error(), "line 5") || !strings.Contains(err.Error(), "line 6") {
		t.Errorf("want errors naming lines 5 and 6, got %v", err)
	}
}

func TestMetricsCommand(t *testing.T) {
	var r wire.Report
	err := (&Metrics{Command: []string{"/bin/sh", "-c", "echo 'sensors_ok 1'; echo 'door_open 0'"}}).Collect(context.Background(), &r)
	if err != nil {
		t.Fatal(err)
	}
	if r.Health.Metrics["sensors_ok"] != 1 || len(r.Health.Metrics) != 2 {
		t.Fatalf("got %v", r.Health.Metrics)
	}
}

func TestSystem(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.MkdirAll(filepath.Join(root, "proc/sys/kernel"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/openwrt_release"), []byte("DISTRIB_ID='OpenWrt'\nDISTRIB_RELEASE='23.05.2'\nDISTRIB_REVISION='r23630'\n"), 0o644)
	os.WriteFile(filepath.Join(root, "proc/sys/kernel/osrelease"), []byte("5.15.137\n"), 0o644)
	fw := filepath.Join(root, "fw")
	os.WriteFile(fw, []byte("VERSION=\"CAM-2.4.1\"\n"), 0o644)
	var r wire.Report
	s := &System{Env: fixedEnv(root), Class: "camera", FirmwareFile: fw, Vendor: "Acme"}
	if err := s.Collect(context.Background(), &r); err != nil {
		t.Fatal(err)
	}
	inv := r.Inventory
	if inv.OS.Name != "OpenWrt" || inv.OS.Version != "23.05.2" || inv.OS.Kernel != "5.15.137" || inv.Firmware.Version != "CAM-2.4.1" || inv.Class != "camera" {
		t.Fatalf("got %+v", inv)
	}
	s.FirmwareCommand = []string{"/bin/echo", "fw-9"}
	if err := s.Collect(context.Background(), &r); err != nil || r.Inventory.Firmware.Version != "fw-9" {
		t.Fatalf("command: %v %+v", err, r.Inventory.Firmware)
	}
}

func TestHealthOnThisMachine(t *testing.T) {
	h := &Health{}
	var r wire.Report
	if err := h.Collect(context.Background(), &r); err != nil {
		t.Fatal(err)
	}
	if err := h.Collect(context.Background(), &r); err != nil {
		t.Fatal(err)
	}
	hs := r.Health
	if hs.Memory <= 0 || hs.Memory > 100 || hs.Uptime == 0 || hs.Disk <= 0 {
		t.Fatalf("implausible health %+v", hs)
	}
	rep := &wire.Report{Version: "1", DeviceID: "d", Time: t0, Health: hs}
	if err := rep.Validate(); err != nil {
		t.Fatalf("health does not validate: %v", err)
	}
}

func TestParseSockets(t *testing.T) {
	tcp := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: 0100007F:0277 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1077 1 0 100 0 0 10 0\n" +
		"   1: 0F02000A:0016 0100000A:D431 01 00000000:00000000 00:00000000 00000000     0        0 2000 1 0 100 0 0 10 0\n"
	s, err := ParseSockets([]byte(tcp), "tcp")
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 2 || s[0].Local.String() != "127.0.0.1:631" || !s[0].Listening() || s[0].Inode != 1077 ||
		s[1].Remote.String() != "10.0.0.1:54321" || s[1].State != TCPEstablished || s[1].Listening() {
		t.Fatalf("got %+v", s)
	}
	tcp6 := "header\n   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 3000 1\n" +
		"   1: 0000000000000000FFFF00000100007F:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 3001 1\n"
	s, err = ParseSockets([]byte(tcp6), "tcp")
	if err != nil {
		t.Fatal(err)
	}
	if s[0].Local.String() != "[::1]:8080" || s[1].Local.String() != "127.0.0.1:80" {
		t.Fatalf("got %v %v", s[0].Local, s[1].Local)
	}
}

func TestNetworkOnThisMachine(t *testing.T) {
	n := &Network{Env: Env{}}
	var r wire.Report
	if err := n.Collect(context.Background(), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Events) != 0 {
		t.Fatalf("first call reported listeners as new: %+v", r.Events)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	r = wire.Report{}
	if err := n.Collect(context.Background(), &r); err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, e := range r.Events {
		if e.Action == "listen" && e.Fields["destination.port"] == port {
			found = true
			if e.Fields["process.pid"] != strconv.Itoa(os.Getpid()) {
				t.Errorf("listener owner: got pid %s, want %d", e.Fields["process.pid"], os.Getpid())
			}
		}
	}
	if !found {
		t.Fatalf("no new-listener event for port %s in %+v", port, r.Events)
	}
	if len(r.Network.Interfaces) == 0 || r.Network.Connections == nil {
		t.Fatalf("network section %+v", r.Network)
	}
}

func TestProcessesOnThisMachine(t *testing.T) {
	p := &Processes{}
	var r wire.Report
	if err := p.Collect(context.Background(), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Events) != 0 {
		t.Fatalf("first call reported %d processes", len(r.Events))
	}
	cmd := exec.Command("/bin/sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// exec(2) closes the parent's close-on-exec pipe, so Start returns,
	// before the kernel has set the new command line: a poll in that
	// window sees an empty one and leaves the process to the next poll.
	// On a busy machine the window is long enough to be hit, so the test
	// polls a few times, as the agent does every interval.
	pid := strconv.Itoa(cmd.Process.Pid)
	polls := 0
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		polls++
		r = wire.Report{}
		if err := p.Collect(context.Background(), &r); err != nil {
			t.Fatal(err)
		}
		for _, e := range r.Events {
			if e.Fields["process.pid"] == pid {
				if e.Fields["process.command_line"] != "/bin/sleep 30" || !strings.HasSuffix(e.Fields["process.executable"], "sleep") ||
					e.Fields["process.parent.pid"] != strconv.Itoa(os.Getpid()) || e.Fields["user.id"] != strconv.Itoa(os.Getuid()) || e.Action != "exec" {
					t.Fatalf("event %+v", e.Fields)
				}
				return
			}
		}
	}
	t.Fatalf("no event for pid %s after %d polls", pid, polls)
}

func TestPackagesCacheFollowsTheFile(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "lib/apk/db"), 0o755)
	db := filepath.Join(root, ApkDB)
	os.WriteFile(db, []byte("P:musl\nV:1.2.4-r2\n\n"), 0o644)
	p := &Packages{Env: fixedEnv(root)}
	names := func() string {
		t.Helper()
		var r wire.Report
		if err := p.Collect(context.Background(), &r); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range r.Inventory.Software {
			out = append(out, c.Name+"@"+c.Version)
		}
		return strings.Join(out, ",")
	}
	if got := names(); got != "musl@1.2.4-r2" {
		t.Fatal(got)
	}
	if got := names(); got != "musl@1.2.4-r2" {
		t.Fatalf("cached: %s", got)
	}
	os.WriteFile(db, []byte("P:musl\nV:1.2.5-r0\n\nP:busybox\nV:1.36.1-r15\n\n"), 0o644)
	os.Chtimes(db, time.Now().Add(time.Minute), time.Now().Add(time.Minute))
	if got := names(); got != "musl@1.2.5-r0,busybox@1.36.1-r15" {
		t.Fatalf("after an upgrade: %s", got)
	}
}
