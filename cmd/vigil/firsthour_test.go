package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/vigil-iot/vigil"
	vagent "github.com/vigil-iot/vigil/agent"
	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/web/api"
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
	ca := filepath.Join(a.Config().DataDir, "pki", "ca.crt")
	cwd := t.TempDir()
	t.Chdir(cwd)
	t.Setenv("VIGIL_TOKEN", "")
	t.Setenv("VIGIL_SERVER", a.URL())
	t.Setenv("VIGIL_CA", ca)

	out, code := run(t, "ctl", "enroll-token", "create", "--class", "camera", "--token", a.AdminToken())
	if code != 0 {
		t.Fatalf("enroll-token create through the API: exit %d: %s", code, out)
	}
	id, err := vagent.Enroll(t.Context(), vagent.EnrollOptions{Server: a.URL(), Token: strings.TrimSpace(out), StateDir: t.TempDir(), CAFile: ca})
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

// TestCtlShowsOneObject: `vigil ctl alerts|events|incidents|actions ID`
// show one object in full, rules appear by their title (never a rule's
// UUID alone), and a list says when more rows exist and how to get them.
func TestCtlShowsOneObject(t *testing.T) {
	a := startTestApp(t)
	conn := []string{"--server", a.URL(), "--token", a.AdminToken(), "--ca", filepath.Join(a.Config().DataDir, "pki", "ca.crt")}
	ctl := func(args ...string) string {
		t.Helper()
		out, code := run(t, append(append([]string{"ctl"}, args...), conn...)...)
		if code != 0 {
			t.Fatalf("ctl %s: exit %d: %s", strings.Join(args, " "), code, out)
		}
		return out
	}
	c, err := client.New(a.URL(), a.AdminToken(), client.TLSConfig(a.CAPool()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A telnet brute force with a successful login as root: a threshold
	// rule (a readable id) and Sigma rules (UUIDs) alert.
	var b strings.Builder
	now := time.Now().UTC()
	for i := range 7 {
		outcome := "failure"
		if i == 6 {
			outcome = "success"
		}
		ev, _ := json.Marshal(map[string]any{"id": fmt.Sprintf("show-%d", i),
			"time": now.Add(time.Duration(i) * time.Second).Format(time.RFC3339Nano), "device_id": "show-cam-1",
			"kind": "auth", "action": "login", "outcome": outcome,
			"fields": map[string]any{"user.name": "root", "source.ip": "203.0.113.9", "network.protocol": "telnet", "process.name": "telnetd"}})
		b.Write(append(ev, '\n'))
	}
	if res, err := c.PostEvents(t.Context(), []byte(b.String())); err != nil || res.Accepted != 7 {
		t.Fatalf("post: %+v %v", res, err)
	}
	var inc api.Incident
	var alerts []vigil.Alert
	deadline := time.Now().Add(20 * time.Second)
	for {
		incs, _, err := c.ListIncidents(t.Context(), store.IncidentFilter{})
		if err == nil && len(incs) > 0 {
			inc = incs[0]
			if alerts, _, err = c.ListAlerts(t.Context(), store.AlertFilter{IncidentID: inc.ID}); err == nil && len(alerts) >= 2 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no incident with two alerts from a brute force: %+v", incs)
		}
		time.Sleep(100 * time.Millisecond)
	}

	uuid := regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	list := ctl("alerts")
	for _, al := range alerts {
		if !strings.Contains(list, al.Title) {
			t.Errorf("ctl alerts does not name the rule %q:\n%s", al.Title, list)
		}
	}
	if id := uuid.FindString(list); id != "" {
		t.Errorf("ctl alerts shows the rule id %s:\n%s", id, list)
	}
	for _, al := range alerts {
		out := ctl("alerts", al.ID)
		for _, want := range []string{"rule\t" + al.Title + " (" + al.RuleID + ")", "id\t" + al.ID, "event_ids\t", "first_event_time\t", "incident_id\t" + inc.ID} {
			if !hasField(out, want) {
				t.Errorf("ctl alerts %s: no %q:\n%s", al.ID, want, out)
			}
		}
	}
	out := ctl("incidents", inc.ID)
	for _, al := range alerts {
		if want := "alert\t" + al.ID + "  " + al.Severity.String() + "  " + al.Title; !hasField(out, want) {
			t.Errorf("ctl incidents %s: no %q:\n%s", inc.ID, want, out)
		}
	}
	for _, want := range []string{"id\t" + inc.ID, "title\t" + inc.Title, "device_ids\tshow-cam-1", "time_to_detect\t"} {
		if !hasField(out, want) {
			t.Errorf("ctl incidents %s: no %q:\n%s", inc.ID, want, out)
		}
	}
	out = ctl("events", "show-6")
	for _, want := range []string{"id\tshow-6", "outcome\tsuccess", "fields.user.name\troot", "network.src_ip\t203.0.113.9"} {
		if !hasField(out, want) {
			t.Errorf("ctl events show-6: no %q:\n%s", want, out)
		}
	}
	act := vigil.Action{ID: "act-show-1", Type: "isolate", DeviceID: "show-cam-1", IncidentID: inc.ID, AlertID: alerts[0].ID,
		Playbook: "test", State: vigil.ActionPendingApproval, RequestedBy: "test", Created: now, Updated: now}
	if err := a.Store().PutAction(t.Context(), act); err != nil {
		t.Fatal(err)
	}
	out = ctl("actions", act.ID)
	for _, want := range []string{"id\tact-show-1", "type\tisolate", "state\tpending_approval", "alert_id\t" + alerts[0].ID} {
		if !hasField(out, want) {
			t.Errorf("ctl actions %s: no %q:\n%s", act.ID, want, out)
		}
	}

	// Seven events, two a page: the listing says how to go on, and going
	// on gives the next ones.
	page := ctl("events", "--device", "show-cam-1", "--limit", "2")
	m := regexp.MustCompile(`more rows: add --cursor (\S+)`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("ctl events --limit 2 does not say that more rows exist:\n%s", page)
	}
	next := ctl("events", "--device", "show-cam-1", "--limit", "2", "--cursor", m[1])
	if strings.Count(next, "show-cam-1") != 2 || next == page {
		t.Errorf("the next page:\n%s\nafter:\n%s", next, page)
	}
	if out := ctl("alerts", "--limit", "1000"); strings.Contains(out, "more rows") {
		t.Errorf("ctl alerts says more rows exist when all are shown:\n%s", out)
	}

	// A device's field with terminal escapes is shown quoted, not obeyed.
	ev := `{"id":"show-esc","time":"` + now.Format(time.RFC3339Nano) + `","device_id":"show-cam-1","kind":"auth","action":"login","outcome":"failure","fields":{"user.name":"\u001b]0;pwned\u0007\u001b[2Jroot"}}` + "\n"
	if res, err := c.PostEvents(t.Context(), []byte(ev)); err != nil || res.Accepted != 1 {
		t.Fatalf("post: %+v %v", res, err)
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		if _, err := c.GetEvent(t.Context(), "show-esc"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the event with escapes was not stored")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, args := range [][]string{{"events", "show-esc"}, {"events", "--device", "show-cam-1"}} {
		if out := ctl(args...); strings.ContainsAny(out, "\x1b\x07") || !strings.Contains(out, `\x1b]0;pwned`) {
			t.Errorf("ctl %s lets a device's escapes through or hides the field:\n%q", strings.Join(args, " "), out)
		}
	}
}

// hasField says whether a detail printed by ctl has the line "name value"
// (want is "name\tvalue"; the table aligns the value with spaces).
func hasField(out, want string) bool {
	name, value, _ := strings.Cut(want, "\t")
	return regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` +` + regexp.QuoteMeta(value)).MatchString(out)
}

// checkDemoOutput checks what the demo printed: each line once; the
// detection of the attacked camera's incident before its isolation; after
// the isolation no step of the bot on the camera shown as done, only as
// blocked; every incident with one id and one title, from its detection
// to the summary.
func checkDemoOutput(t *testing.T, out string) {
	t.Helper()
	stamp := regexp.MustCompile(`^\s*\+\s*[0-9.]+s\s+`)
	seen := map[string]bool{}
	detected, isolated := -1, -1
	var camera string
	for i, l := range strings.Split(out, "\n") {
		body := stamp.ReplaceAllString(l, "")
		if body == l || body == "" {
			continue // not a line of the run
		}
		if seen[body] {
			t.Errorf("printed twice: %s", body)
		}
		seen[body] = true
		switch f := strings.Fields(body); {
		case f[0] == "attack" && camera == "":
			camera = strings.TrimSuffix(f[1], ":")
		case f[0] == "DETECTED" && detected < 0 && strings.Contains(body, " on "+camera+" "):
			detected = i
		case (f[0] == "AGENT" || f[0] == "CONTAINED") && strings.Contains(body, "isolate") && isolated < 0:
			isolated = i
			if detected < 0 {
				t.Errorf("the isolation is printed before the detection of the camera's incident:\n%s", out)
			}
		case f[0] == "attack" && f[1] == camera+":" && isolated >= 0 && !strings.Contains(body, "blocked"):
			t.Errorf("a step of the bot shown as done after the isolation: %s", body)
		}
	}
	if isolated < 0 {
		t.Errorf("no isolation printed:\n%s", out)
	}
	det := regexp.MustCompile(`DETECTED incident (\S+): (.*) \(severity`).FindAllStringSubmatch(out, -1)
	if len(det) == 0 {
		t.Fatalf("no DETECTED line:\n%s", out)
	}
	for _, m := range det {
		if want := "\nIncident " + m[1] + ": " + m[2] + "\n"; !strings.Contains(out, want) {
			t.Errorf("the summary does not show incident %s as detected (%q):\n%s", m[1], strings.TrimSpace(want), out)
		}
	}
}
