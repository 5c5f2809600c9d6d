package ingest

import (
	"strings"
	"testing"

	"github.com/vigil-iot/vigil"
)

func TestRedactorString(t *testing.T) {
	r, err := NewRedactor([]string{`ACME-[0-9]{6}`})
	if err != nil {
		t.Fatal(err)
	}
	f := func(in, want string) {
		t.Helper()
		got, changed := r.String(in)
		if got != want {
			t.Errorf("String(%q)\n got %q\nwant %q", in, got, want)
		}
		if changed != (in != want) {
			t.Errorf("String(%q) changed = %v", in, changed)
		}
	}
	const tok = "vgl_Q2hhbmdlTWVQbGVhc2VJdHNBVGVzdFRva2VuMDAwMDAw"
	f("curl -H 'Authorization: Bearer "+tok+"' https://vigil/api", "curl -H 'Authorization: "+Redacted+"' https://vigil/api")
	f("Authorization: Basic dXNlcjpwYXNz", "Authorization: "+Redacted)
	f("proxy-authorization=xyz", "proxy-authorization="+Redacted)
	f("wget --header=\"bearer abc.def-ghi\" x", "wget --header=\"bearer "+Redacted+"\" x")
	f("vigil-agent --token "+tok, "vigil-agent --token "+Redacted)
	f("agent started with "+tok+" ok", "agent started with vgl_"+Redacted+" ok")
	f("enroll vge_abcdefghijklmnop", "enroll vge_"+Redacted)
	f("login password=hunter2 user=root", "login password="+Redacted+" user=root")
	f("mysql --password s3cret -u root", "mysql --password "+Redacted+" -u root")
	f(`{"passwd": "hunter2", "user": "x"}`, `{"passwd": "`+Redacted+`", "user": "x"}`)
	f("PWD=abc", "PWD="+Redacted)
	f("GET /cb?code=1&token=abc&x=2", "GET /cb?code=1&token="+Redacted+"&x=2")
	f("client_secret: abc123", "client_secret: "+Redacted)
	f("fetch https://admin:hunter2@10.0.0.1/firmware.bin", "fetch https://"+Redacted+"@10.0.0.1/firmware.bin")
	f("order ACME-123456 shipped", "order "+Redacted+" shipped")
	// What holds no credential stays as it is.
	f("", "")
	f("sshd: Failed password for root from 10.0.0.7 port 22", "sshd: Failed password for root from 10.0.0.7 port 22")
	f("https://example.com/path?q=1", "https://example.com/path?q=1")
	f("mailto user@example.com", "mailto user@example.com")
	f("tokens issued: 5", "tokens issued: 5")
	f("/usr/bin/passenger start", "/usr/bin/passenger start")
}

func TestRedactorEvent(t *testing.T) {
	r, _ := NewRedactor(nil)
	list := []string{"a", "password=x"}
	e := vigil.Event{Fields: map[string]any{
		"process.command_line": "curl -u admin:pw https://u:p@h/",
		"process.args":         list,
		"n":                    1.5,
		"user.name":            "root",
	}}
	if !r.Event(&e) {
		t.Fatal("Event reported no change")
	}
	if got := e.Fields["process.command_line"]; got != "curl -u admin:pw https://"+Redacted+"@h/" {
		t.Errorf("command line = %q", got)
	}
	if got := e.Fields["process.args"].([]string); got[1] != "password="+Redacted || list[1] != "password=x" {
		t.Errorf("args = %q (the original list must not change: %q)", got, list)
	}
	if e.Fields["user.name"] != "root" || e.Fields["n"] != 1.5 {
		t.Errorf("other fields changed: %v", e.Fields)
	}
	var nilR *Redactor
	if nilR.Event(&e) {
		t.Error("a nil Redactor changed an event")
	}
}

func TestNewRedactorRefusesBadPatterns(t *testing.T) {
	for _, p := range []string{`(`, `a*`} {
		if _, err := NewRedactor([]string{p}); err == nil || !strings.Contains(err.Error(), "pattern 1") {
			t.Errorf("NewRedactor(%q) err = %v, want one naming pattern 1", p, err)
		}
	}
}

// BenchmarkRedactEvents measures the redactor on the events of
// httpin.BenchmarkBulkHandler (no credentials: the common case, only the
// keyword scan runs) and on events whose command line holds a token.
func BenchmarkRedactEvents(b *testing.B) {
	mk := func(cmd string) []vigil.Event {
		evs := make([]vigil.Event, 1000)
		for i := range evs {
			evs[i].Fields = map[string]any{"source.ip": "203.0.113.7", "user.name": "root", "event.original": "Failed password for root from 203.0.113.7 port 4242 ssh2"}
			if cmd != "" {
				evs[i].Fields["process.command_line"] = cmd
			}
		}
		return evs
	}
	r, _ := NewRedactor(nil)
	for _, c := range []struct{ name, cmd string }{
		{"clean", ""},
		{"token", "vigil-agent --server https://vigil:8443 --token vgl_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0cw"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				evs := mk(c.cmd)
				b.StartTimer()
				r.Events(evs)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(1000*b.N), "ns/event")
		})
	}
}
