package main

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/enroll"
	"github.com/vigil-iot/vigil/ingest/httpin"
	"github.com/vigil-iot/vigil/pki"
)

func TestSimulate(t *testing.T) {
	dir := t.TempDir()
	ca, _ := pki.EnsureCA(dir)
	cert, _ := ca.EnsureServerCert(dir, nil)
	files, err := enroll.OpenDir(filepath.Join(dir, "data"), nil)
	if err != nil {
		t.Fatal(err)
	}
	sink := &counter{}
	in, _ := httpin.NewHandler(httpin.Options{Publisher: sink})
	h, _ := enroll.New(enroll.Options{CA: ca, Tokens: files.Tokens, Revocations: files.Revocations, CommandKey: files.CommandKey, Commands: commandStore(t), Report: in.Report()})
	srv := httptest.NewUnstartedServer(h.Front(http.NotFoundHandler()))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: ca.Pool(), ClientAuth: tls.VerifyClientCertIfGiven}
	srv.StartTLS()
	defer srv.Close()
	var toks []string
	for range 5 {
		p, _, _ := files.Tokens.Create("sensor", time.Hour)
		toks = append(toks, p)
	}
	tokFile := filepath.Join(dir, "tokens")
	os.WriteFile(tokFile, []byte(strings.Join(toks, "\n")), 0o600)
	var out, errb strings.Builder
	code := run([]string{"simulate", "--count", "5", "--server", srv.URL, "--ca", filepath.Join(dir, pki.CACertFile),
		"--tokens", tokFile, "--interval", "100ms", "--duration", "1s"}, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "enrolled 5 agents") {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	if sink.n.Load() < 5 {
		t.Fatalf("server got %d events", sink.n.Load())
	}
	devs, _ := files.Tokens.List()
	for _, d := range devs {
		if d.UsedBy == "" {
			t.Fatalf("token %s unused", d.ID)
		}
	}
}
