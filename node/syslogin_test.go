package node

import (
	"crypto/tls"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/store"
)

// TestServeSyslog: vigil serve with a syslog section receives syslog from
// logger over TCP and over TLS with the server's own certificate, and
// stores the messages as events of kind syslog, credentials redacted,
// and nginx's access log lines as web events.
func TestServeSyslog(t *testing.T) {
	logger, err := exec.LookPath("logger")
	if err != nil {
		t.Skipf("logger (util-linux) is not installed: %v", err)
	}
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.LogLevel = t.TempDir(), "127.0.0.1:0", "warn"
	cfg.SigmaDirs = []string{t.TempDir()}
	tcpAddr, tlsAddr := freeAddr(t), freeAddr(t)
	cfg.Syslog = &SyslogInConfig{TCP: tcpAddr, TLS: tlsAddr}
	a := runTestApp(t, cfg)
	_, port, _ := net.SplitHostPort(tcpAddr)
	var out []byte
	deadline := time.Now().Add(30 * time.Second)
	for {
		// The receiver starts with the stages: retry until it listens.
		out, err = exec.Command(logger, "--server", "127.0.0.1", "--port", port, "--tcp", "--rfc5424", "-t", "dropbear",
			"login attempt password=hunter2 for admin").CombinedOutput()
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("logger: %v\n%s", err, out)
	}
	if out, err := exec.Command(logger, "--server", "127.0.0.1", "--port", port, "--tcp", "--rfc3164", "-t", "nginx",
		`10.0.0.5 - - [05/Jan/2026:11:00:00 +0000] "GET /cgi-bin/read?file=../../../etc/passwd HTTP/1.1" 404 153 "-" "curl/8.0"`).CombinedOutput(); err != nil {
		t.Fatalf("logger: %v\n%s", err, out)
	}
	conn, err := tls.Dial("tcp", tlsAddr, &tls.Config{RootCAs: a.ca.Pool(), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	m := "<38>1 2026-01-05T11:00:00Z gw-1 sshd 77 - - Accepted publickey for root"
	fmt.Fprintf(conn, "%d %s", len(m), m)
	conn.Close()
	for {
		evs, _, err := a.store.ListEvents(t.Context(), store.EventFilter{Kind: "syslog"})
		if err != nil {
			t.Fatal(err)
		}
		web, _, err := a.store.ListEvents(t.Context(), store.EventFilter{Kind: "web"})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 2 && len(web) == 1 {
			if w := web[0]; w.Source != "weblog" || w.Fields["url.query"] != "file=../../../etc/passwd" || w.Network == nil ||
				w.Network.SrcIP.String() != "10.0.0.5" || w.Fields["process.name"] != "nginx" {
				t.Errorf("nginx over syslog: %+v", w)
			}
			for _, ev := range evs {
				msg, _ := ev.Fields["message"].(string)
				switch ev.Action {
				case "dropbear":
					if msg == "" || slices.Contains([]string{msg}, "login attempt password=hunter2 for admin") || ev.Fields["network.transport"] != "tcp" {
						t.Errorf("tcp (the password must be redacted): %+v", ev)
					}
				case "sshd":
					if msg != "Accepted publickey for root" || ev.Fields["network.transport"] != "tls" || ev.Fields["host.hostname"] != "gw-1" {
						t.Errorf("tls: %+v", ev)
					}
				default:
					t.Errorf("%+v", ev)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d syslog events and %d web events stored, want 2 and 1", len(evs), len(web))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
