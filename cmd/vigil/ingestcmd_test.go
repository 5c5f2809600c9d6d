package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/store"
)

// A Zeek conn log (TSV, as Zeek 6 writes it) of a device that scans
// telnet and talks to a mining pool, and a Suricata alert.
const ingestConnLog = `#separator \x09
#set_separator	,
#empty_field	(empty)
#unset_field	-
#path	conn
#open	2026-03-01-10-00-00
#fields	ts	uid	id.orig_h	id.orig_p	id.resp_h	id.resp_p	proto	service	duration	orig_bytes	resp_bytes	conn_state	local_orig	local_resp	missed_bytes	history	orig_pkts	orig_ip_bytes	resp_pkts	resp_ip_bytes	tunnel_parents
#types	time	string	addr	port	addr	port	enum	string	interval	count	count	string	bool	bool	count	string	count	count	count	count	set[string]
1772359200.000000	C1	192.168.1.20	40000	203.0.113.5	3333	tcp	-	30.5	1200	800	SF	T	F	0	ShADadFf	20	2200	18	1600	-
1772359201.000000	C2	192.168.1.20	40001	198.51.100.1	23	tcp	-	-	-	-	S0	T	F	0	S	1	60	0	0	-
1772359202.000000	C3	192.168.1.20	40002	198.51.100.2	23	tcp	-	-	-	-	S0	T	F	0	S	1	60	0	0	-
#close	2026-03-01-11-00-00
`

const ingestEVE = `{"timestamp":"2026-03-01T10:00:03.000000+0000","flow_id":42,"event_type":"alert","src_ip":"192.168.1.20","src_port":40003,"dest_ip":"203.0.113.9","dest_port":80,"proto":"TCP","alert":{"action":"allowed","gid":1,"signature_id":2024897,"rev":2,"signature":"ET EXPLOIT Possible Mirai Infection Attempt","category":"Attempted Administrator Privilege Gain","severity":1},"app_proto":"http"}
{"timestamp":"2026-03-01T10:00:04.000000+0000","event_type":"stats","stats":{"uptime":1}}
`

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestIngestThenDetect: vigil ingest converts a Zeek conn log and a
// Suricata EVE file (formats guessed) into events that vigil detect's
// whole built-in set detects on: the Sigma pack on Zeek's flows, the ids
// detector on Suricata's alert.
func TestIngestThenDetect(t *testing.T) {
	conn := writeTemp(t, "conn.log", ingestConnLog)
	eve := writeTemp(t, "eve.json", ingestEVE)
	events := filepath.Join(t.TempDir(), "events.jsonl")
	out, code := run(t, "ingest", conn, eve, "--output", events)
	if code != 0 || !strings.Contains(out, "ingest: files=2 records=5 events=4 skipped=1 bad=0") {
		t.Fatalf("ingest: exit %d\n%s", code, out)
	}
	b, _ := os.ReadFile(events)
	if n := strings.Count(string(b), "\n"); n != 4 || !strings.Contains(string(b), `"kind":"flow"`) || !strings.Contains(string(b), `"observer.product":"zeek"`) {
		t.Fatalf("events:\n%s", b)
	}
	out, code = run(t, "detect", "--input", events)
	if code != 0 {
		t.Fatalf("detect: exit %d\n%s", code, out)
	}
	for _, want := range []string{`"rule_id":"suricata:1:2024897"`, `"title":"ET EXPLOIT Possible Mirai Infection Attempt"`, `"severity":"high"`, "mining"} {
		if !strings.Contains(strings.ToLower(out), strings.ToLower(want)) {
			t.Errorf("detect output lacks %s:\n%s", want, out)
		}
	}
}

// TestIngestErrors: bad records are reported with their file and line and
// skipped (exit 1); an unsupported Zeek log is skipped with a note; a file
// whose format cannot be guessed is refused.
func TestIngestErrors(t *testing.T) {
	bad := writeTemp(t, "conn.log", strings.Replace(ingestConnLog, "1772359201.000000", "soon", 1))
	files := writeTemp(t, "files.log", "#separator \\x09\n#path\tfiles\n#fields\tts\tfuid\n1.0\tF1\n")
	out, code := run(t, "ingest", bad, files, "--output", filepath.Join(t.TempDir(), "out.jsonl"))
	if code != 1 || !strings.Contains(out, `conn.log:10: field ts: "soon" is not a time`) ||
		!strings.Contains(out, `cannot convert log "files"`) || !strings.Contains(out, "events=2 skipped=0 bad=1") {
		t.Errorf("exit %d\n%s", code, out)
	}
	text := writeTemp(t, "notes.txt", "hello\n")
	if out, code := run(t, "ingest", text, "--output", "-"); code == 0 || !strings.Contains(out, "cannot guess its format") {
		t.Errorf("exit %d\n%s", code, out)
	}
	if out, code := run(t, "ingest", text, "--format", "pcap", "--output", "-"); code == 0 || !strings.Contains(out, `--format "pcap"`) {
		t.Errorf("exit %d\n%s", code, out)
	}
}

// TestIngestToServer: vigil ingest --server posts the events to a running
// server, which stores them as sensor events.
func TestIngestToServer(t *testing.T) {
	a := startTestApp(t)
	conn := writeTemp(t, "conn.log", ingestConnLog)
	out, code := run(t, "ingest", "--format", "zeek", conn, "--server", a.URL(), "--token", a.AdminToken(),
		"--ca", filepath.Join(a.Config().DataDir, "pki", "ca.crt"))
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		evs, _, err := a.Store().ListEvents(t.Context(), store.EventFilter{Kind: "flow"})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 3 {
			if evs[0].Source != "sensor" || evs[0].Fields["observer.product"] != "zeek" {
				t.Fatalf("%+v", evs[0])
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d flow events stored, want 3", len(evs))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestIngestSyslogFile: a file of syslog lines (format guessed) becomes
// events of kind syslog; a line that breaks RFC 5424 is reported.
func TestIngestSyslogFile(t *testing.T) {
	f := writeTemp(t, "messages", "<38>1 2026-01-05T11:00:00Z gw-1 sshd 77 - - Accepted publickey for root\n"+
		"<86>Jan  5 11:00:01 cam-7 dropbear[9]: Bad password attempt for 'admin'\n"+
		"<38>1 yesterday gw-1 sshd 77 - - x\n")
	out, code := run(t, "ingest", f, "--output", "-")
	if code != 1 || strings.Count(out, `"kind":"syslog"`) != 2 || !strings.Contains(out, `"process.name":"dropbear"`) ||
		!strings.Contains(out, `messages:3: rfc5424: TIMESTAMP`) || !strings.Contains(out, "records=3 events=2 skipped=0 bad=1") {
		t.Errorf("exit %d\n%s", code, out)
	}
}

// TestIngestFollow: vigil ingest --follow reads a Suricata EVE file as it
// grows and after it is rotated (a new file at its name), sends what it
// reads within about a second, and ends cleanly when interrupted.
func TestIngestFollow(t *testing.T) {
	dir := t.TempDir()
	eve := filepath.Join(dir, "eve.json")
	lines := strings.Split(strings.TrimSpace(ingestEVE), "\n")
	alert := lines[0]
	if err := os.WriteFile(eve, []byte(alert+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "events.jsonl")
	ctx, cancel := context.WithCancel(t.Context())
	var stderr strings.Builder
	done := make(chan error, 1)
	go func() {
		cmd := newRootCmd()
		cmd.SetOut(&stderr)
		cmd.SetErr(&stderr)
		cmd.SetArgs([]string{"ingest", "--follow", eve, "--output", out})
		done <- cmd.ExecuteContext(ctx)
	}()
	count := func() int {
		b, _ := os.ReadFile(out)
		return strings.Count(string(b), `"kind":"alert"`)
	}
	waitFor := func(n int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for count() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d alert events written, want %d", count(), n)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor(1)
	// The file grows, a line in two writes.
	f, err := os.OpenFile(eve, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(alert[:40])
	f.Sync()
	time.Sleep(300 * time.Millisecond)
	f.WriteString(alert[40:] + "\n")
	f.Close()
	waitFor(2)
	// Rotation: the file is renamed and a new one takes its name.
	if err := os.Rename(eve, eve+".1"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(eve, []byte(alert+"\n"+alert+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(4)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "ingest: files=1 records=4 events=4") {
		t.Errorf("%s", stderr.String())
	}
}

// TestIngestPipeDetect runs the documented pipe with the real binary in a
// shell: vigil ingest --format zeek conn.log --output - | vigil detect --input -
func TestIngestPipeDetect(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the vigil binary; skipped with -short")
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skipf("no shell: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "vigil")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("cannot build vigil: %v\n%s", err, out)
	}
	conn := writeTemp(t, "conn.log", ingestConnLog)
	cmd := exec.Command(sh, "-c", `"$0" ingest --format zeek "$1" --output - | "$0" detect --input -`, bin, conn)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(string(out), "Outbound connection to a mining pool port") || !strings.Contains(string(out), "ingest: files=1 records=3 events=3") {
		t.Errorf("%s", out)
	}
}
