package agent

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/agent/command"
	"github.com/vigil-iot/vigil/agent/mqtt"
	"github.com/vigil-iot/vigil/enroll"
	"github.com/vigil-iot/vigil/ingest/mqtt/mqtttest"
	"github.com/vigil-iot/vigil/pki"
	"github.com/vigil-iot/vigil/wire"
)

// TestMQTTTransport reports and takes commands over a Mosquitto with a
// mutual-TLS listener that the test starts (skipped without mosquitto).
func TestMQTTTransport(t *testing.T) {
	dir := t.TempDir()
	ca, _ := pki.EnsureCA(dir)
	ca.EnsureServerCert(dir, nil)
	files, err := enroll.OpenDir(filepath.Join(dir, "data"), nil)
	if err != nil {
		t.Fatal(err)
	}
	// The device's identity, made as enrollment would.
	state := filepath.Join(dir, "state")
	srv := newServerWith(t, ca, files)
	tok, _, _ := files.Tokens.Create("camera", time.Hour)
	if _, err := Enroll(context.Background(), EnrollOptions{Server: srv.srv.URL, Token: tok, StateDir: state, CAFile: filepath.Join(dir, pki.CACertFile)}); err != nil {
		t.Fatal(err)
	}

	addr, _ := mqtttest.StartTLSBroker(t, dir, "allow_anonymous true\n")

	// The server side: a client of the broker (here with the device's
	// certificate, for brevity).
	id, err := LoadIdentity(state)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	server, err := mqtt.Dial(ctx, mqtt.Options{Addr: addr, TLS: id.TLSConfig(), ClientID: "vigil-server-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	if err := server.Subscribe(ctx, "vigil/+/report"); err != nil {
		t.Fatal(err)
	}
	if err := server.Subscribe(ctx, "vigil/+/result"); err != nil {
		t.Fatal(err)
	}

	policy := filepath.Join(state, "policy.json")
	os.WriteFile(policy, []byte(`{"allow":["restore"]}`), 0o600)
	rec := &recorder{}
	a, err := New(Config{StateDir: state, Transport: "mqtt", MQTTBroker: addr, Commands: true, PolicyFile: policy,
		Disable: []string{"processes", "packages"}}, Options{Executor: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Once(ctx); err != nil {
		t.Fatal(err)
	}
	next := func(suffix string) mqtt.Message {
		t.Helper()
		for {
			select {
			case m := <-server.Messages():
				if strings.HasSuffix(m.Topic, suffix) {
					return m
				}
			case <-ctx.Done():
				t.Fatalf("nothing on */%s", suffix)
			}
		}
	}
	m := next("/report")
	if m.Topic != MQTTTopic(a.DeviceID(), "report") {
		t.Fatalf("topic %s", m.Topic)
	}
	zr, err := gzip.NewReader(bytes.NewReader(m.Payload))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(zr)
	r, err := wire.DecodeReportBytes(wire.FormatJSON, raw)
	if err != nil || r.DeviceID != a.DeviceID() || r.Health == nil {
		t.Fatalf("report %v %+v", err, r)
	}

	// A signed command on the device's command topic runs; its result
	// comes back on the result topic.
	go a.commands(ctx)
	now := time.Now()
	for _, c := range []command.Command{
		{ID: "c1", DeviceID: a.DeviceID(), Action: command.ActionRestore, Issued: now, Expires: now.Add(time.Minute)},
		{ID: "c2", DeviceID: a.DeviceID(), Action: command.ActionReboot, Issued: now, Expires: now.Add(time.Minute)},
	} {
		s, _ := command.Sign(files.CommandKey, c)
		b, _ := json.Marshal(s)
		// The subscription may not be in place yet: publish until answered.
		var res command.Result
		for res.CommandID != c.ID {
			if err := server.Publish(ctx, MQTTTopic(a.DeviceID(), "cmd"), b, true); err != nil {
				t.Fatal(err)
			}
			select {
			case m := <-server.Messages():
				if strings.HasSuffix(m.Topic, "/result") {
					json.Unmarshal(m.Payload, &res)
				}
			case <-time.After(500 * time.Millisecond):
			case <-ctx.Done():
				t.Fatal("no command result")
			}
		}
		want := map[string]string{"c1": command.StatusSucceeded, "c2": command.StatusRefused}[c.ID]
		if res.Status != want {
			t.Fatalf("%s: result %+v, want %s", c.ID, res, want)
		}
	}
	if strings.Join(rec.runs, ",") != "restore" {
		t.Fatalf("executed %v", rec.runs)
	}
}

// newServerWith is newServer on a given CA and data directory.
func newServerWith(t *testing.T, ca *pki.CA, files enroll.Files) *server {
	t.Helper()
	dir := t.TempDir()
	cert, err := ca.EnsureServerCert(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := enroll.New(enroll.Options{CA: ca, Tokens: files.Tokens, Revocations: files.Revocations, CommandKey: files.CommandKey, Commands: commandStore(t)})
	if err != nil {
		t.Fatal(err)
	}
	s := &server{h: h, toks: files.Tokens}
	s.tls = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: ca.Pool(), ClientAuth: tls.VerifyClientCertIfGiven}
	s.srv = newTLSServer(t, h, s.tls)
	return s
}
